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
    # `guests` starts from its committed seeds, with the flags fuzz/README.md explains.
    extra=()
    dirs=("corpus/$t")
    if [ "$t" = guests ]; then
        dirs+=(seeds/guests)
        extra=(-max_len=2048 -len_control=0 -entropic=0 -rss_limit_mb=4096)
    fi
    # -max_total_time stops it; the summary line ("Done N runs in S second(s)") says how much
    # it ran. Keep its last lines only.
    cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" 2>&1 | tail -n 25
done
