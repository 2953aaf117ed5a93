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
# The build settings fuzz/README.md explains: `calls` without ASan, the others with it.
flags_of() {
    if [ "$1" = calls ]; then
        echo "-O -s none --no-trace-compares"
    else
        echo "-O"
    fi
}
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${seconds}s"
    # `guests` starts from its committed seeds, with the flags fuzz/README.md explains.
    extra=()
    dirs=("corpus/$t")
    case "$t" in
    guests)
        dirs+=(seeds/guests)
        extra=(-max_len=2048 -len_control=0 -entropic=0 -detect_leaks=0 -rss_limit_mb=4096 -reload=0)
        export ASAN_OPTIONS=malloc_context_size=0:detect_stack_use_after_return=0
        ;;
    calls) extra=(-max_len=512 -entropic=0 -reload=0) ;;
    esac
    # -max_total_time stops it; the summary line ("Done N runs in S second(s)") says how much
    # it ran. Keep its last lines only.
    # shellcheck disable=SC2046 # the flags are words
    cargo +nightly fuzz run $(flags_of "$t") "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" 2>&1 | tail -n 25
done
