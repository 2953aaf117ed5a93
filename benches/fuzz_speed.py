#!/usr/bin/env python3
"""`machvm fuzz`'s speed against the same C target under native libFuzzer.

The target is `guest/tests/fuzz/small.c` (a small "key=value;" parser with no bug: a heap
copy of the input and a strdup per name), as `guest/prebuilt/fuzz_small.wasm` for machvm
and built natively here with clang-16. Four engines run it, interleaved, SAMPLES times:

    native          clang-16 -O1 -fsanitize=fuzzer        (libFuzzer alone: the physical limit)
    native+asan     clang-16 -O1 -fsanitize=fuzzer,address
    machvm          machvm fuzz                           (guard heap)
    machvm-own      machvm fuzz --no-guard-malloc         (the module's own malloc)

Each sample runs an engine twice from an empty corpus with the same seed, with -runs=0 and
with -runs=RUNS; the executions per second are RUNS over the difference of the two wall
times, so start-up (compiling the module, libFuzzer's set-up) is left out and the
first RUNS inputs are the same in both. Printed: each engine's median exec/s with the range
seen, and the ratios to native libFuzzer.

    python3 benches/fuzz_speed.py [RUNS] [SAMPLES]      # default: 200000 runs, 5 samples

Needs the release build (`cargo build --release`, done here) and clang-16 with the
libFuzzer and ASan runtimes (Debian: apt-get install clang-16 libclang-rt-16-dev).
"""

import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
SOURCE = ROOT / "guest" / "tests" / "fuzz" / "small.c"
MODULE = ROOT / "guest" / "prebuilt" / "fuzz_small.wasm"


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    out = TARGET / "fuzz-speed"
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("clang-16") is None:
        sys.exit("fuzz_speed.py: clang-16 is missing (apt-get install clang-16 libclang-rt-16-dev)")
    natives = {}
    for name, sanitizers in (("native", "fuzzer"), ("native+asan", "fuzzer,address")):
        exe = out / name.replace("+", "_")
        subprocess.run(["clang-16", "-O1", "-g", f"-fsanitize={sanitizers}", "-o", str(exe),
                        str(SOURCE)], check=True)
        natives[name] = [str(exe)]
    machvm = str(TARGET / "release" / "machvm")
    return {
        **natives,
        "machvm": [machvm, "fuzz", str(MODULE), "--"],
        "machvm-own": [machvm, "fuzz", "--no-guard-malloc", str(MODULE), "--"],
    }


def wall(cmd, runs, seed, cwd):
    """Seconds one run of `cmd` with libFuzzer's -runs and -seed takes."""
    start = time.perf_counter()
    done = subprocess.run(cmd + [f"-runs={runs}", f"-seed={seed}"], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"fuzz_speed.py: {cmd[0]} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return took


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    samples = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    engines = build()
    seen = {name: [] for name in engines}
    with tempfile.TemporaryDirectory() as cwd:
        for sample in range(1, samples + 1):
            for name, cmd in engines.items():
                t0 = wall(cmd, 0, sample, cwd)
                tn = wall(cmd, runs, sample, cwd)
                rate = runs / max(tn - t0, 1e-9)
                seen[name].append(rate)
                print(f"sample {sample}: {name:12} {rate:10.0f} exec/s "
                      f"(start-up {t0:.2f} s, {runs} runs {tn:.2f} s)", flush=True)
    native = statistics.median(seen["native"])
    print(f"\n{runs} runs per sample, {samples} samples; median (range) exec/s, "
          "and the ratio to native libFuzzer:")
    for name, rates in seen.items():
        m = statistics.median(rates)
        print(f"  {name:12} {m:10.0f}  ({min(rates):.0f}-{max(rates):.0f})  "
              f"{m / native:.3f}x native")


if __name__ == "__main__":
    main()
