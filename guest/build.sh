#!/usr/bin/env bash
# Builds every machvm guest into guest/prebuilt/ and writes prebuilt/MANIFEST.
#
#   bash guest/build.sh            build into guest/prebuilt/
#   bash guest/build.sh --check    rebuild into a temporary directory and fail
#                                  if any output differs byte for byte from
#                                  the committed guest/prebuilt/ (CI runs this)
#   --no-rust                      skip the Rust guest (rust_guard.wasm): it is
#                                  then only checked against its MANIFEST hash
#                                  (also: MACHVM_GUEST_NO_RUST=1)
#
# Toolchains (Debian 12 packages; installed with apt-get when missing and the
# script runs as root):
#   C:    clang-16 lld-16 wabt wasi-libc libclang-rt-16-dev-wasm32
#         libc++-16-dev-wasm32 libc++abi-16-dev-wasm32 (C++)
#   Rust: rustc-web cargo-web rust-web-src lld-22 (about 890 MB; RUSTC_BOOTSTRAP
#         and -Zbuild-std=core,panic_abort; the std sources' dependencies come
#         from crates.io)
#
# Outputs are reproducible: no debug info, no paths (-ffile-prefix-map,
# --remap-path-prefix, --strip-debug), no timestamps. MANIFEST has one line
# per file: "<sha256>  <file>  <toolchain>", then "#" lines that list every
# module's imports and exports with their wasm signatures.
set -euo pipefail

GUEST="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE=build
RUST=1
[ "${MACHVM_GUEST_NO_RUST:-0}" = 1 ] && RUST=0
for arg in "$@"; do
	case "$arg" in
	--check) MODE=check ;;
	--no-rust) RUST=0 ;;
	-h | --help)
		sed -n '2,23p' "$0"
		exit 0
		;;
	*)
		echo "build.sh: unknown argument $arg" >&2
		exit 2
		;;
	esac
done

log() { echo "build.sh: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# --- toolchains -------------------------------------------------------------

C_PACKAGES="clang-16 lld-16 wabt wasi-libc libclang-rt-16-dev-wasm32 libc++-16-dev-wasm32 libc++abi-16-dev-wasm32"
RUST_PACKAGES="rustc-web cargo-web rust-web-src lld-22"
WASI_RT=/usr/lib/llvm-16/lib/clang/16/lib/wasi/libclang_rt.builtins-wasm32.a
RUST_SRC=/usr/lib/rustlib/src/rust/library

missing_packages() {
	local missing=""
	command -v clang-16 >/dev/null || missing+=" clang-16"
	command -v wasm-ld-16 >/dev/null || missing+=" lld-16"
	command -v wasm-objdump >/dev/null || missing+=" wabt"
	[ -f /usr/lib/wasm32-wasi/libc.a ] || missing+=" wasi-libc"
	[ -f "$WASI_RT" ] || missing+=" libclang-rt-16-dev-wasm32"
	[ -f /usr/lib/wasm32-wasi/libc++.a ] || missing+=" libc++-16-dev-wasm32"
	[ -f /usr/lib/wasm32-wasi/libc++abi.a ] || missing+=" libc++abi-16-dev-wasm32"
	if [ "$RUST" = 1 ]; then
		[ -x /usr/bin/rustc ] && /usr/bin/rustc --version 2>/dev/null | grep -q . || missing+=" rustc-web"
		[ -x /usr/bin/cargo ] || missing+=" cargo-web"
		[ -d "$RUST_SRC/core" ] || missing+=" rust-web-src"
		command -v wasm-ld-22 >/dev/null || missing+=" lld-22"
	fi
	echo "$missing"
}

ensure_toolchains() {
	local missing
	missing="$(missing_packages)"
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing:$missing"
		apt-get update -qq >&2
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
	fi
	missing="$(missing_packages)"
	[ -z "$missing" ] || die "missing toolchain packages:$missing (apt-get install --no-install-recommends$missing)"
}

C_TOOLCHAIN() { echo "$(clang-16 --version | head -n1); $(wasm-ld-16 --version | head -n1)"; }
WASI_TOOLCHAIN() { echo "$(C_TOOLCHAIN); wasi-libc $(dpkg-query -W -f='${Version}' wasi-libc)"; }
RUST_TOOLCHAIN() { echo "$(/usr/bin/rustc --version | cut -d" " -f1-2) (Debian rustc-web $(dpkg-query -W -f='${Version}' rustc-web)); $(wasm-ld-22 --version | head -n1)"; }

# --- builders ---------------------------------------------------------------

CFLAGS=(-O2 -mbulk-memory -Wall -Wextra -Werror -I"$GUEST/include" -ffile-prefix-map="$GUEST"=.)

# build_c OUTDIR NAME TARGET SOURCE EXPORT...: a freestanding guest.
build_c() {
	local out="$1" name="$2" target="$3" src="$4"
	shift 4
	local exports=()
	for e in "$@"; do exports+=("-Wl,--export=$e"); done
	clang-16 --target="$target" -nostdlib "${CFLAGS[@]}" \
		-Wl,--no-entry -Wl,--export-memory -Wl,--strip-debug "${exports[@]}" \
		-o "$out/$name" "$GUEST/$src"
	echo "$name	$(C_TOOLCHAIN)" >>"$out/.toolchains"
}

# build_wasi OUTDIR NAME SOURCE [FLAG...]: a WASI command (exports _start) with
# wasi-libc.
build_wasi() {
	local out="$1" name="$2" src="$3"
	shift 3
	clang-16 --target=wasm32-wasi --sysroot=/usr "${CFLAGS[@]}" "$@" \
		-Wl,--strip-debug -o "$out/$name" "$GUEST/$src"
	echo "$name	$(WASI_TOOLCHAIN)" >>"$out/.toolchains"
}

# build_wasi_debug OUTDIR NAME SOURCE [FLAG...]: a WASI command with its DWARF (-g), for
# backtraces with file and line; source paths are recorded relative to the repository
# (guest/...), so the bytes do not depend on where it is built.
build_wasi_debug() {
	local out="$1" name="$2" src="$3"
	shift 3
	clang-16 --target=wasm32-wasi --sysroot=/usr \
		"${CFLAGS[@]/#-ffile-prefix-map=*/-ffile-prefix-map=$GUEST=guest}" "$@" \
		-g -fdebug-compilation-dir=. -o "$out/$name" "$GUEST/$src"
	echo "$name	$(WASI_TOOLCHAIN)" >>"$out/.toolchains"
}

# build_wasi_cxx OUTDIR NAME SOURCE [FLAG...]: the same in C++ with libc++ (no
# exceptions: Debian's wasm32 libc++abi has none).
build_wasi_cxx() {
	local out="$1" name="$2" src="$3"
	shift 3
	clang++-16 --target=wasm32-wasi --sysroot=/usr -isystem /usr/include/wasm32-wasi/c++/v1 \
		-x c++ -std=c++17 -fno-exceptions "${CFLAGS[@]}" "$@" \
		-Wl,--strip-debug -o "$out/$name" "$GUEST/$src"
	echo "$name	$(WASI_TOOLCHAIN); libc++ $(dpkg-query -W -f='${Version}' libc++-16-dev-wasm32)" >>"$out/.toolchains"
}

# build_rust OUTDIR NAME CRATE_DIR ARTIFACT: a Rust cdylib for wasm32-unknown-unknown.
build_rust() {
	local out="$1" name="$2" crate="$3" artifact="$4" target_dir
	target_dir="$(mktemp -d)"
	(
		cd "$GUEST/$crate"
		env PATH=/usr/bin:/bin RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
			CARGO_TARGET_DIR="$target_dir" \
			CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
			RUSTFLAGS="--remap-path-prefix=$GUEST=/machvm/guest --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
			/usr/bin/cargo build --quiet --locked --release --target wasm32-unknown-unknown \
			-Zbuild-std=core,panic_abort >&2
	)
	cp "$target_dir/wasm32-unknown-unknown/release/$artifact" "$out/$name"
	rm -rf "$target_dir"
	echo "$name	$(RUST_TOOLCHAIN)" >>"$out/.toolchains"
}

# --- module interfaces (from wasm-objdump -x) ---------------------------------

# interface FILE: "import MODULE.NAME SIG", "export NAME SIG" and "memory ..." lines.
interface() {
	wasm-objdump -x "$1" | awk '
		/^[A-Z][A-Za-z]*(\[[0-9]+\])?:/ {
			sec = $1; sub(/\[.*$/, "", sec); sub(/:$/, "", sec); next
		}
		sec == "Type" && /- type\[/ {
			i = $2; sub(/^type\[/, "", i); sub(/\]$/, "", i)
			s = $0; sub(/^[^]]*\] /, "", s); types[i] = s; next
		}
		sec == "Import" && /- func\[/ {
			i = $2; sub(/^func\[/, "", i); sub(/\]$/, "", i)
			g = $3; sub(/^sig=/, "", g); fsig[i] = g
			print "import " $NF " " types[g]; next
		}
		sec == "Function" && /- func\[/ {
			i = $2; sub(/^func\[/, "", i); sub(/\]$/, "", i)
			g = $3; sub(/^sig=/, "", g); fsig[i] = g; next
		}
		sec == "Memory" && /- memory\[/ {
			s = $0; sub(/^ - memory\[[0-9]+\] /, "", s); print "memory " s; next
		}
		sec == "Export" && /- func\[/ {
			i = $2; sub(/^func\[/, "", i); sub(/\]$/, "", i)
			n = $NF; gsub(/"/, "", n); print "export " n " " types[fsig[i]]; next
		}
		sec == "Export" && /- memory\[/ {
			n = $NF; gsub(/"/, "", n); print "export " n " memory"; next
		}
	'
}

# check_abi DIR: every "mach" import of every module has spec §3's signature
# (tests/abi32.expected, tests/abi64.expected), and the ABI modules import
# every call.
check_abi() {
	local dir="$1" f width imports expected
	for f in "$dir"/*.wasm; do
		# grep without -q reads to the end: with -q it may exit first, and the
		# writer's SIGPIPE would fail the pipeline under pipefail.
		if interface "$f" | grep '^memory .* i64$' >/dev/null; then width=64; else width=32; fi
		expected="$GUEST/tests/abi$width.expected"
		imports="$(interface "$f" | grep '^import mach\.' || true)"
		while IFS= read -r line; do
			[ -z "$line" ] && continue
			grep -qxF "$line" "$expected" || die "$(basename "$f"): $line is not the spec §3 signature ($expected)"
		done <<<"$imports"
	done
	diff <(interface "$dir/abi.wasm" | grep '^import ' | sort) <(sort "$GUEST/tests/abi32.expected") >&2 ||
		die "abi.wasm does not import every call of tests/abi32.expected"
	diff <(interface "$dir/abi64.wasm" | grep '^import ' | sort) <(sort "$GUEST/tests/abi64.expected") >&2 ||
		die "abi64.wasm does not import every call of tests/abi64.expected"
}

# check_headers: tests/compat.c (macOS-style Mach code) compiles unchanged
# for every target the SDK supports, as C (C99 and C11, -Wpedantic) and as
# C++; tests/cdefs.c (Apple's <sys/cdefs.h> macros) with `-include
# sys/cdefs.h` and with its own includes.
check_headers() {
	local warn=(-fsyntax-only -Wall -Wextra -Werror -I"$GUEST/include")
	local std wasi=(--target=wasm32-wasi --sysroot=/usr)
	for std in -std=c99 -std=c11; do
		clang-16 --target=wasm32 "$std" -Wpedantic "${warn[@]}" "$GUEST/tests/compat.c"
		clang-16 --target=wasm64 "$std" -Wpedantic "${warn[@]}" "$GUEST/tests/compat.c"
		clang-16 "${wasi[@]}" "$std" -Wpedantic "${warn[@]}" "$GUEST/tests/compat.c"
		clang-16 --target=wasm32 "$std" -Wpedantic "${warn[@]}" -include sys/cdefs.h "$GUEST/tests/cdefs.c"
		clang-16 "${wasi[@]}" "$std" -Wpedantic "${warn[@]}" -DCDEFS_INCLUDED "$GUEST/tests/cdefs.c"
	done
	clang-16 "${wasi[@]}" -x c++ -std=c++17 "${warn[@]}" "$GUEST/tests/compat.c"
	clang-16 "${wasi[@]}" -x c++ -std=c++17 "${warn[@]}" -include sys/cdefs.h "$GUEST/tests/cdefs.c"
}

# --- the guests ---------------------------------------------------------------

ABI_EXPORTS=(x_mach_task_self x_mach_host_self x_host_page_size x_vm_allocate x_vm_deallocate
	x_vm_protect x_vm_copy x_vm_read x_vm_read_overwrite x_vm_write x_vm_region_64
	x_mach_vm_allocate x_mach_vm_deallocate x_mach_vm_protect x_mach_vm_copy x_mach_vm_read
	x_mach_vm_read_overwrite x_mach_vm_write x_mach_vm_region x_vm_region x_vm_behavior_set
	x_mach_vm_behavior_set x_vm_inherit x_mach_vm_inherit x_vm_remap x_mach_vm_remap
	x_vm_region_recurse_64 x_mach_vm_region_recurse x_mach_make_memory_entry_64 x_mach_make_memory_entry x_vm_map x_mach_vm_map x_mach_port_deallocate x_vm_msync x_mach_vm_msync x_vm_wire x_mach_vm_wire
	x_vm_map_page_query x_mach_vm_page_query x_mach_vm_page_info x_mach_vm_page_range_query
	x_task_info x_host_statistics64 x_vm_purgable_control x_mach_vm_purgable_control x_load32 x_load64 x_store32 x_store64)
RINGBUF_EXPORTS=(ringbuf_selftest ringbuf_checksum ringbuf_touch_guard ringbuf_page_size last_kr)
SNAPSHOT_EXPORTS=(snapshot_selftest snapshot_dirty_pages last_kr)
CONFORM_EXPORTS=(conform_selftest last_kr task_self_name host_self_name)
PURGECACHE_EXPORTS=(cache_init cache_sum cache_refills cache_state cache_selftest last_kr)

build_all() {
	local out="$1"
	check_headers
	: >"$out/.toolchains"
	build_c "$out" abi.wasm wasm32 tests/abi.c "${ABI_EXPORTS[@]}"
	build_c "$out" abi64.wasm wasm64 tests/abi.c "${ABI_EXPORTS[@]}"
	build_c "$out" ringbuf.wasm wasm32 examples/ringbuf.c "${RINGBUF_EXPORTS[@]}"
	build_c "$out" ringbuf64.wasm wasm64 examples/ringbuf.c "${RINGBUF_EXPORTS[@]}"
	build_c "$out" snapshot.wasm wasm32 examples/snapshot.c "${SNAPSHOT_EXPORTS[@]}"
	build_c "$out" snapshot64.wasm wasm64 examples/snapshot.c "${SNAPSHOT_EXPORTS[@]}"
	build_c "$out" conform.wasm wasm32 examples/conform.c "${CONFORM_EXPORTS[@]}"
	build_c "$out" conform64.wasm wasm64 examples/conform.c "${CONFORM_EXPORTS[@]}"
	build_c "$out" purgecache.wasm wasm32 examples/purgecache.c "${PURGECACHE_EXPORTS[@]}"
	build_c "$out" purgecache64.wasm wasm64 examples/purgecache.c "${PURGECACHE_EXPORTS[@]}"
	build_wasi "$out" regions.wasm examples/regions.c
	build_wasi "$out" magicring.wasm examples/magicring.c
	build_wasi "$out" heap.wasm tests/heap.c
	build_wasi_cxx "$out" heapxx.wasm tests/heap.c
	build_wasi "$out" sdk.wasm tests/sdk.c
	build_wasi "$out" nullptr.wasm tests/nullptr.c -Wl,--global-base=16384
	build_wasi_debug "$out" writeonly.wasm tests/writeonly.c
	# The planted heap bugs of `machvm fuzz` (tests/fuzz.rs), fuzz targets as a stock
	# toolchain builds them: reactors exporting LLVMFuzzerTestOneInput, with DWARF.
	local bug=1 name
	for name in overflow_read overflow_write underflow uaf_read uaf_write double_free past_input; do
		build_wasi_debug "$out" "fuzz_$name.wasm" tests/fuzz/planted.c -O1 -DBUG=$bug \
			-mexec-model=reactor -Wl,--export=LLVMFuzzerTestOneInput
		bug=$((bug + 1))
	done
	# A small target with no bug: machvm fuzz's speed against native libFuzzer.
	build_wasi_debug "$out" fuzz_small.wasm tests/fuzz/small.c -O1 \
		-mexec-model=reactor -Wl,--export=LLVMFuzzerTestOneInput
	# The C allocator's interface through the guard heap (tests/guard_heap.rs).
	build_wasi "$out" guard_alloc.wasm tests/fuzz/alloc.c -mexec-model=reactor \
		-Wl,--export=check_calloc -Wl,--export=check_realloc -Wl,--export=check_aligned \
		-Wl,--export=check_usable_size -Wl,--export=fill
	# The same without the SDK's heap-first constructor: shows what it prevents.
	build_wasi "$out" heap_unguarded.wasm tests/heap.c -DMACHVM_NO_HEAP_FIRST
	if [ "$RUST" = 1 ]; then
		build_rust "$out" rust_guard.wasm rust/example machvm_guest_example.wasm
	fi
	check_abi "$out"
	chmod 644 "$out"/*.wasm
}

# write_manifest DIR: MANIFEST from DIR/.toolchains (plus the committed line of
# any module not rebuilt, i.e. the Rust guest under --no-rust).
write_manifest() {
	local dir="$1" name toolchain f
	{
		echo "# machvm guest modules, built by guest/build.sh. Columns: sha256, file, toolchain."
		echo "# Rebuild and compare: bash guest/build.sh --check"
		while IFS='	' read -r name toolchain; do
			printf '%s  %s  %s\n' "$(sha256sum "$dir/$name" | cut -d' ' -f1)" "$name" "$toolchain"
		done < <(sort "$dir/.toolchains")
		echo "#"
		echo "# Interfaces (wasm signatures; 'memory' is the declared memory, pages of 64 KiB)."
		for f in $(sort "$dir/.toolchains" | cut -f1); do
			interface "$dir/$f" | sed "s|^|# $f |"
		done
	}
}

ensure_toolchains
case "$MODE" in
build)
	out="$GUEST/prebuilt"
	mkdir -p "$out"
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	build_all "$tmp"
	if [ "$RUST" = 0 ] && [ -f "$out/rust_guard.wasm" ]; then
		cp "$out/rust_guard.wasm" "$tmp/"
		grep -P '^[0-9a-f]{64}  rust_guard\.wasm  ' "$out/MANIFEST" | cut -d' ' -f5- |
			sed 's/^/rust_guard.wasm\t/' >>"$tmp/.toolchains"
	fi
	write_manifest "$tmp" >"$tmp/MANIFEST"
	rm -f "$out"/*.wasm
	cp "$tmp"/*.wasm "$tmp/MANIFEST" "$out/"
	log "wrote $(ls "$out"/*.wasm | wc -l) modules and MANIFEST into $out"
	;;
check)
	out="$GUEST/prebuilt"
	[ -f "$out/MANIFEST" ] || die "no $out/MANIFEST: run bash guest/build.sh first"
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	build_all "$tmp"
	status=0
	if [ "$RUST" = 0 ]; then
		# Not rebuilt: the committed module must still match its MANIFEST hash.
		line="$(grep -P '^[0-9a-f]{64}  rust_guard\.wasm  ' "$out/MANIFEST" || true)"
		if [ -n "$line" ]; then
			[ "$(sha256sum "$out/rust_guard.wasm" | cut -d' ' -f1)" = "${line%%  *}" ] ||
				{ log "rust_guard.wasm does not match its MANIFEST hash"; status=1; }
			cp "$out/rust_guard.wasm" "$tmp/"
			echo "rust_guard.wasm	${line#*  rust_guard.wasm  }" >>"$tmp/.toolchains"
		fi
	fi
	write_manifest "$tmp" >"$tmp/MANIFEST"
	for f in "$tmp"/*.wasm "$tmp/MANIFEST"; do
		name="$(basename "$f")"
		if [ ! -f "$out/$name" ]; then
			log "$name: not in $out (run bash guest/build.sh and commit)"
			status=1
		elif ! cmp -s "$f" "$out/$name"; then
			log "$name: differs from the committed file"
			[ "$name" = MANIFEST ] && diff "$out/MANIFEST" "$f" >&2 || true
			status=1
		fi
	done
	for f in "$out"/*.wasm; do
		[ -f "$tmp/$(basename "$f")" ] || { log "$(basename "$f"): committed but no longer built"; status=1; }
	done
	[ "$status" = 0 ] || die "prebuilt guests are out of date"
	log "check passed: $(ls "$tmp"/*.wasm | wc -l) modules and MANIFEST identical"
	;;
esac
