#!/usr/bin/env bash
# Runs every fuzz target for a fixed short time (default 60 s each, or $1 seconds) from the
# corpus in fuzz/corpus/<target> (created if missing), one target at a time. Fails on the
# first finding; libFuzzer leaves the input in fuzz/artifacts/<target>/.
#
#   bash fuzz/smoke.sh        # 60 s per target
#   bash fuzz/smoke.sh 10     # 10 s per target
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets=(calls table guests)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${seconds}s"
    # -max_total_time stops it; the summary line ("Done N runs in S second(s)") says how much
    # it ran. Keep its last lines only.
    cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1 | tail -n 25
done
