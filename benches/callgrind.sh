#!/usr/bin/env bash
# Instructions per call of machvm's hot paths, against a no-op import and the guest's own
# memory.copy, counted by callgrind (benches/instructions.rs). Repeatable whatever else the
# machine does; PERFORMANCE.md quotes it. Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench instructions --no-run 2>/dev/null
bin=$(cargo bench --bench instructions --no-run --message-format=json 2>/dev/null |
	sed -n 's/.*"executable":"\([^"]*instructions[^"]*\)".*/\1/p' | tail -1)
count() { # case n -> instructions collected inside `run`
	valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*instructions::run*' \
		"$bin" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-32s %s\n' case instructions/call
for case in noop noop_runner noop4 task_self host_page_size vm_copy0 vm_copy0_in-wasm vm_copy_4KiB \
	vm_copy_4KiB_host memory.copy_4KiB memory.copy_4KiB_enforced memory.copy_4KiB_enforced_host; do
	a=$(count "$case" 1000)
	b=$(count "$case" 11000)
	printf '%-32s %s\n' "$case" $(( (b - a) / 10000 ))
done
