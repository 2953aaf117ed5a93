#!/usr/bin/env python3
"""Writes the seed corpus of the `guests` target into fuzz/seeds/guests/.

Candidates are drawn from a fixed pseudo-random stream (64 head bytes for the host's plan,
then 300 to 700 bytes for wasm-smith); each runs once through the built target with
MACHVM_FUZZ_STATS=1, and a candidate is kept when its module instantiated, imports both
"mach" and WASI functions, and made host calls. Run from fuzz/ after
`cargo +nightly fuzz build -O guests`:

    python3 seeds/make_guests.py [how many to keep, default 40]
"""
import os
import random
import re
import subprocess
import sys
import tempfile

KEEP = int(sys.argv[1]) if len(sys.argv) > 1 else 40
HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
BIN = os.path.join(FUZZ, "target", "x86_64-unknown-linux-gnu", "release", "guests")
OUT = os.path.join(HERE, "guests")

rng = random.Random(20261130)
os.makedirs(OUT, exist_ok=True)
kept = 0
with tempfile.TemporaryDirectory() as tmp:
    for batch in range(50):
        paths = []
        for i in range(40):
            data = bytes(rng.getrandbits(8) for _ in range(64 + rng.randint(300, 700)))
            path = os.path.join(tmp, f"c{batch}_{i}")
            with open(path, "wb") as f:
                f.write(data)
            paths.append(path)
        env = dict(os.environ, MACHVM_FUZZ_STATS="1")
        run = subprocess.run([BIN, *paths], env=env, capture_output=True, text=True)
        current = None
        for line in run.stderr.splitlines():
            m = re.match(r"Running: (\S+)", line)
            if m:
                current = m.group(1)
                continue
            if current and line.startswith("machvm-guest "):
                nums = dict(re.findall(r"(\w+): (\w+)", line))
                good = (
                    nums.get("instantiated") == "true"
                    and int(nums.get("mach_imports", 0)) > 0
                    and int(nums.get("wasi_imports", 0)) > 0
                    and int(nums.get("calls_with_host_calls", 0)) > 0
                )
                if good and kept < KEEP:
                    with open(current, "rb") as f:
                        data = f.read()
                    with open(os.path.join(OUT, f"seed{kept:03}"), "wb") as f:
                        f.write(data)
                    kept += 1
                current = None
        if kept >= KEEP:
            break
print(f"kept {kept} seeds in {OUT}")
