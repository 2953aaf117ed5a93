#!/usr/bin/env python3
"""Fuzzes zlib, compiled unmodified, with `machvm fuzz` and with native libFuzzer + ASan.

zlib's C sources come from the `libz-sys` crate (crates.io bundles them: `src/zlib/`); the
fuzz target is `guest/tests/fuzz/zlib.c` (zlib's usual entry points: uncompress() of the
input, then a compress2()/uncompress() round trip). Both engines start from an empty
corpus and run SECONDS side by side, one per core; then each one's corpus is replayed
through the native build (-runs=0), so that both corpora are measured in the same units
(native edges), next to each engine's own counts. Printed: executions, exec/s, coverage,
corpus sizes, findings.

    python3 benches/fuzz_zlib.py [SECONDS]        # default 600

Needs the release build (`cargo build --release`, done here), network access to crates.io
for `libz-sys` (once), and clang-16 with wasi-libc and the libFuzzer/ASan runtimes (Debian:
apt-get install clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 libclang-rt-16-dev).
"""

import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WORK = TARGET / "fuzz-zlib"
LIBZ_SYS = "=1.1.33"
HARNESS = ROOT / "guest" / "tests" / "fuzz" / "zlib.c"
# zlib's library sources (the gz* file functions are not fuzzed).
SOURCES = ["adler32", "compress", "crc32", "deflate", "infback", "inffast", "inflate",
           "inftrees", "trees", "uncompr", "zutil"]


def zlib_sources():
    """The directory of zlib's sources in the libz-sys crate, fetched through cargo."""
    fetch = WORK / "fetch"
    fetch.mkdir(parents=True, exist_ok=True)
    (fetch / "Cargo.toml").write_text(
        '[package]\nname = "fetch-zlib"\nversion = "0.0.0"\nedition = "2021"\n'
        '[lib]\npath = "lib.rs"\n[workspace]\n'
        f'[dependencies]\nlibz-sys = {{ version = "{LIBZ_SYS}", default-features = false }}\n')
    (fetch / "lib.rs").write_text("")
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--quiet"],
                          cwd=fetch, check=True, capture_output=True, text=True).stdout
    for package in json.loads(meta)["packages"]:
        if package["name"] == "libz-sys":
            return pathlib.Path(package["manifest_path"]).parent / "src" / "zlib"
    sys.exit("fuzz_zlib.py: cargo found no libz-sys")


def build(zlib):
    sources = [str(zlib / f"{name}.c") for name in SOURCES] + [str(HARNESS)]
    wasm = WORK / "zlib.wasm"
    subprocess.run(["clang-16", "--target=wasm32-wasi", "--sysroot=/usr", "-O1", "-g",
                    "-mexec-model=reactor", "-Wl,--export=LLVMFuzzerTestOneInput",
                    f"-I{zlib}", "-o", str(wasm)] + sources, check=True)
    native = WORK / "zlib_native_asan"
    subprocess.run(["clang-16", "-O1", "-g", "-fsanitize=fuzzer,address", f"-I{zlib}",
                    "-o", str(native)] + sources, check=True)
    return wasm, native


def last_status(log):
    """(runs, cov, ft, corpus units, exec/s) of the last libFuzzer status line in `log`."""
    lines = [l for l in log.splitlines() if re.match(r"#\d+\s", l)]
    if not lines:
        return None
    line = lines[-1]
    get = lambda key: (re.search(rf"{key}: (\d+)", line) or [None, "?"])[1]
    runs = re.match(r"#(\d+)", line)[1]
    corpus = (re.search(r"corp: (\d+)", line) or [None, "?"])[1]
    return runs, get("cov"), get("ft"), corpus, get("exec/s")


def replay(native, corpus):
    """Native edges and features of a corpus: the native build loads it and stops."""
    done = subprocess.run([str(native), "-runs=0", str(corpus)], capture_output=True,
                          text=True)
    m = re.search(r"INITED cov: (\d+) ft: (\d+)", done.stderr)
    return (m[1], m[2]) if m else ("?", "?")


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    machvm = TARGET / "release" / "machvm"
    zlib = zlib_sources()
    wasm, native = build(zlib)
    runs = {}
    for name in ("machvm", "native"):
        for sub in ("corpus", "artifacts"):
            d = WORK / name / sub
            d.mkdir(parents=True, exist_ok=True)
            for f in d.iterdir():
                f.unlink()
    commands = {
        "machvm": [str(machvm), "fuzz", "--max-total-time", str(seconds), "--artifact-dir",
                   str(WORK / "machvm" / "artifacts"), str(wasm),
                   str(WORK / "machvm" / "corpus")],
        "native": [str(native), f"-max_total_time={seconds}", "-print_final_stats=1",
                   f"-artifact_prefix={WORK / 'native' / 'artifacts'}/",
                   str(WORK / "native" / "corpus")],
    }
    print(f"zlib from libz-sys {LIBZ_SYS} ({zlib}); {seconds} s each, side by side", flush=True)
    # Each engine's log goes to a file: a pipe read after the other engine's end would
    # fill up and stop the engine writing to it.
    procs = {}
    for name, cmd in commands.items():
        with open(WORK / f"{name}.log", "w") as log:
            procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    for name, proc in procs.items():
        proc.wait()
        runs[name] = (proc.returncode, last_status((WORK / f"{name}.log").read_text()))
    for name, (code, status) in runs.items():
        corpus = WORK / name / "corpus"
        findings = sorted(p.name for p in (WORK / name / "artifacts").iterdir())
        cov, ft = replay(native, corpus)
        print(f"{name}: exit {code}; last status {status} (runs, cov, ft, corpus, exec/s); "
              f"{len(list(corpus.iterdir()))} corpus files; native cov of the corpus "
              f"{cov}, ft {ft}; findings: {findings or 'none'}")
    print(f"logs: {WORK}/machvm.log, {WORK}/native.log")


if __name__ == "__main__":
    main()
