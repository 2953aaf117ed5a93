#!/usr/bin/env bash
# The rustc wrapper of the fuzz build (.cargo/config.toml): libFuzzer's coverage counters
# and comparison hooks go into machvm and the fuzz targets only. Every other crate
# (Wasmtime, Cranelift, wasm-smith, the standard crates) keeps AddressSanitizer and
# loses the `sancov-module` pass that cargo-fuzz asks for in RUSTFLAGS, so that each
# execution's feedback is machvm's own behaviour and libFuzzer scans a few ten thousand
# counters rather than over a million (see README.md, "Coverage").
set -euo pipefail
rustc=$1
shift
crate=
prev=
for arg in "$@"; do
    if [ "$prev" = --crate-name ]; then
        crate=$arg
    fi
    prev=$arg
done
case "$crate" in
machvm | machvm_fuzz | calls | guests | table) exec "$rustc" "$@" ;;
esac
args=()
for arg in "$@"; do
    case "$arg" in
    -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage-*) ;;
    *) args+=("$arg") ;;
    esac
done
exec "$rustc" "${args[@]}"
