#!/usr/bin/env python3
"""The ratios of PERFORMANCE.md, over several runs of the criterion benches.

This machine is shared: one run's ratios move by 10-20% with the neighbours' load, while
criterion's interval for each row stays narrow. So this runs `benches/vm.rs` RUNS times
(each comparison side by side in every run), reads criterion's estimates after each run,
and prints every ratio as its median with the smallest and largest value seen.

    python3 benches/ratios.py [RUNS] [FILTER]     # default: 5 runs of the hot-path rows

FILTER is criterion's (a regex over benchmark ids); the default takes the rows with
targets that a few nanoseconds decide: 4 KiB and 1 MiB copies and the call overheads.
"""

import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
HOT = "copy/.*/(4KiB|64KiB|1MiB)$|call/"

# (label, numerator id, denominator id, target): the ratio of the two mean times per
# operation, so below 1 means "faster than the baseline"; for throughput targets
# (">= 0.95x memmove") the ratio is the baseline's time over ours, as a throughput ratio.
TIME, THROUGHPUT = "time", "throughput"
RATIOS = []
for kind in ("disjoint", "overlapping"):
    for size in ("4KiB", "64KiB"):
        target = "<= 1.3" if size == "4KiB" else "-"
        for row, label, tgt in (
                ("vm_copy", f"vm_copy {size} {kind}", target),
                ("vm_copy-host", f"vm_copy {size} {kind}, a host call each", "-"),
                ("memory.copy+check", f"enforced guest memory.copy {size} {kind}", "-")):
            RATIOS.append((f"{label} / memory.copy", f"copy_{kind}/{row}/{size}",
                           f"copy_{kind}/memory.copy/{size}", TIME, tgt))
for kind in ("disjoint", "overlapping"):
    for size in ("1MiB", "16MiB", "64MiB"):
        for base in ("memmove", "memmove-guest-memory"):
            RATIOS.append((f"vm_copy {size} {kind}, throughput / {base}",
                           f"copy_{kind}/vm_copy/{size}", f"copy_{kind}/{base}/{size}",
                           THROUGHPUT, ">= 0.95"))
for call in ("task_self", "host_page_size", "vm_copy0", "vm_copy0/in-wasm", "noop4"):
    RATIOS.append((f"call {call} / noop", f"call/{call}", "call/noop", TIME,
                   "<= 2" if call != "noop4" else "-"))
RATIOS += [
    ("call noop with install_handlers / noop", "call/noop/handlers", "call/noop", TIME, "-"),
    # Per call: an iteration makes 10 calls of 1 GiB, 1,000 of one page.
    ("vm_protect 1 GiB / 1 page (1-run table)", "protect/1GiB/1runs", "protect/1page/1runs",
     (TIME, 1000 / 10), "<= 2"),
    ("instantiate on-demand, machvm / wasmtime", "instantiate/machvm/on-demand",
     "instantiate/wasmtime/on-demand", TIME, "<= 1.2"),
    ("instantiate pooling, machvm / wasmtime", "instantiate/machvm/pooling",
     "instantiate/wasmtime/pooling", TIME, "<= 1.2"),
    ("instantiate on-demand, with vm_copy, machvm / wasmtime",
     "instantiate/machvm+vm_copy/on-demand", "instantiate/wasmtime+vm_copy/on-demand", TIME,
     "<= 1.2"),
    ("instantiate pooling, with vm_copy, machvm / wasmtime",
     "instantiate/machvm+vm_copy/pooling", "instantiate/wasmtime+vm_copy/pooling", TIME,
     "<= 1.2"),
    ("checksum guest, enforcement on / off", "enforce/checksum16MiB/on",
     "enforce/checksum16MiB/off", TIME, "<= 1.1"),
]


def mean(bench_id):
    """Criterion's mean estimate (ns per iteration) of the last run of `bench_id`."""
    path = CRITERION / bench_id / "new" / "estimates.json"
    try:
        return json.loads(path.read_text())["mean"]["point_estimate"]
    except (OSError, ValueError, KeyError):
        return None


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    filt = sys.argv[2] if len(sys.argv) > 2 else HOT
    subprocess.run(["cargo", "bench", "--bench", "vm", "--no-run"], cwd=ROOT, check=True,
                   stderr=subprocess.DEVNULL)
    seen = {label: [] for label, *_ in RATIOS}
    for i in range(runs):
        print(f"run {i + 1}/{runs} ...", file=sys.stderr, flush=True)
        # Clear the last estimates, so that rows the filter skips are not read stale.
        for est in CRITERION.glob("**/new/estimates.json"):
            est.unlink()
        subprocess.run(["cargo", "bench", "--bench", "vm", "--", filt], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for label, num, den, kind, _ in RATIOS:
            a, b = mean(num), mean(den)
            if a and b:
                # `kind` may carry the ratio of the two rows' calls per iteration.
                kind, scale = kind if isinstance(kind, tuple) else (kind, 1)
                seen[label].append(scale * (a / b if kind == TIME else b / a))
    print(f"| ratio | median of {runs} runs | min-max | target |")
    print("|---|---|---|---|")
    for label, _, _, _, target in RATIOS:
        v = seen[label]
        if v:
            print(f"| {label} | {statistics.median(v):.2f} | {min(v):.2f}-{max(v):.2f} "
                  f"| {target} |")


if __name__ == "__main__":
    main()
