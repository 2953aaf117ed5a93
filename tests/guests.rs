//! The prebuilt guests of `guest/prebuilt/` (C and Rust programs built by `guest/build.sh`)
//! run through the real host library: every export in a fresh store and instance, with page
//! sizes 4096 and 16384, with page protection enforced (spec §5, where the platform supports
//! it) and without, and the results `guest/README.md` promises. The modules are read from
//! the checkout at run time, so these tests need no guest compiler. They run as an embedder
//! would: engine from `machvm::configure`, modules from `machvm::compile`. One more mode runs
//! every guest on backed memories (`machvm::share::backing`, pages of a shared memory file:
//! what spec §8's sharing stands on), which must behave as Wasmtime's own.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use machvm::abi::*;
use machvm::enforce::AccessKind;
use machvm::{Kernel, KernelConfig, TaskPre};
use wasmtime::{
    Config, Engine, ExternType, FuncType, Instance, Linker, Module, Store, Val, ValType,
    WasmParams, WasmResults,
};

/// A task's settings under test: the page size, whether protections are enforced, and
/// whether the memory is a backed one.
#[derive(Clone, Copy, Debug)]
struct Mode {
    page: u64,
    enforce: bool,
    backed: bool,
}

impl Mode {
    fn config(self) -> KernelConfig {
        KernelConfig::default()
            .page_size(self.page)
            .enforce(self.enforce)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = if self.enforce {
            "enforced"
        } else {
            "not enforced"
        };
        let b = if self.backed { ", backed memory" } else { "" };
        write!(f, "[page size {}, {e}{b}]", self.page)
    }
}

/// Whether this platform enforces protections (the default where it can).
fn enforcement() -> bool {
    KernelConfig::default().enforce
}

/// Page sizes 4096 and 16384, each with enforcement (where supported) and without.
fn modes() -> Vec<Mode> {
    let mut modes = Vec::new();
    for page in [4096, 16384] {
        if enforcement() {
            modes.push(Mode {
                page,
                enforce: true,
                backed: false,
            });
        }
        modes.push(Mode {
            page,
            enforce: false,
            backed: false,
        });
    }
    modes.push(Mode {
        page: 16384,
        enforce: enforcement(),
        backed: true,
    });
    modes
}

/// Runs `f` on each of the `names` prebuilt guests (compiled once), with its name, in every
/// mode.
fn each_guest_and_mode(names: [&'static str; 2], f: impl Fn(&Guest, &str, Mode)) {
    for name in names {
        let g = Guest::load(name);
        for mode in modes() {
            f(&g, name, mode);
        }
    }
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(machvm::configure(&mut Config::new())).unwrap())
}

/// An engine whose memories are backed memories.
fn backed_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        machvm::share::configure(machvm::configure(&mut config));
        Engine::new(&config).unwrap()
    })
}

impl Mode {
    fn engine(self) -> &'static Engine {
        if self.backed {
            backed_engine()
        } else {
            engine()
        }
    }
}

fn prebuilt_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("guest/prebuilt")
}

/// A prebuilt module, compiled once per test (and once more for the backed engine).
struct Guest {
    name: &'static str,
    module: machvm::Compiled,
    backed: machvm::Compiled,
}

impl Guest {
    fn load(name: &'static str) -> Guest {
        let path = prebuilt_dir().join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let compile = |engine| {
            machvm::compile(engine, &bytes).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
        };
        Guest {
            name,
            module: compile(engine()),
            backed: compile(backed_engine()),
        }
    }

    /// A fresh store (a kernel in `mode`) and instance: one task.
    fn instance(&self, mode: Mode) -> (Store<Kernel>, Instance) {
        let kernel = Kernel::with_config(mode.config()).unwrap();
        let mut store = Store::new(mode.engine(), kernel);
        machvm::install_handlers(&mut store);
        let linker = Linker::new(mode.engine());
        let module = if mode.backed {
            &self.backed
        } else {
            &self.module
        };
        let (instance, _task) = TaskPre::new(module)
            .and_then(|pre| pre.instantiate(&mut store, &linker))
            .unwrap_or_else(|e| panic!("{} {mode}: {e:#}", self.name));
        if let Some(memory) = instance.get_memory(&mut store, "memory") {
            let backed = machvm::share::backing::MemoryMap::of(memory.data_ptr(&store));
            assert_eq!(backed.is_some(), mode.backed, "{} {mode}", self.name);
        }
        (store, instance)
    }

    /// Calls `export` in a fresh instance.
    fn call<P: WasmParams, R: WasmResults>(
        &self,
        mode: Mode,
        export: &str,
        args: P,
    ) -> wasmtime::Result<R> {
        let (mut store, instance) = self.instance(mode);
        instance
            .get_typed_func::<P, R>(&mut store, export)?
            .call(&mut store, args)
    }

    /// Calls `export() -> i32` in a fresh instance, which must not trap.
    fn ret(&self, mode: Mode, export: &str) -> i32 {
        self.call::<(), i32>(mode, export, ())
            .unwrap_or_else(|e| panic!("{} {export}() {mode}: {e:?}", self.name))
    }

    /// Runs `selftest() -> i32` in a fresh instance and asserts it returns 0; on failure the
    /// message names the failing step and what `last_kr()` (same instance) says about it.
    fn selftest(&self, mode: Mode, selftest: &str) {
        let (mut store, instance) = self.instance(mode);
        let step = instance
            .get_typed_func::<(), i32>(&mut store, selftest)
            .unwrap()
            .call(&mut store, ())
            .unwrap_or_else(|e| panic!("{} {selftest}() {mode}: {e:?}", self.name));
        let kr = instance
            .get_typed_func::<(), i32>(&mut store, "last_kr")
            .unwrap()
            .call(&mut store, ())
            .unwrap();
        assert_eq!(
            (step, kr),
            (0, 0),
            "{} {selftest}() {mode} failed at step {step}, last_kr() = {kr} ({})",
            self.name,
            kr_name(kr)
        );
    }
}

fn kr_name(kr: i32) -> &'static str {
    match kr {
        -1 => "a check on data",
        kr => KernReturn(kr).name().unwrap_or("(unknown kern_return_t)"),
    }
}

// --- purgecache -------------------------------------------------------------------------

const PURGECACHE: [&str; 2] = ["purgecache.wasm", "purgecache64.wasm"];

#[test]
fn purgecache_selftest_passes() {
    each_guest_and_mode(PURGECACHE, |g, _, mode| {
        g.selftest(mode, "cache_selftest");
    });
}

/// The example's cache survives the embedder's memory pressure by being emptied, not by
/// failing: after `host::purge_volatile` its state is EMPTY, the pages are zero, and the
/// next use computes it again with the same result; a use without pressure does not.
#[test]
fn purgecache_survives_pressure_by_being_emptied() {
    each_guest_and_mode(PURGECACHE, |g, name, mode| {
        let ctx = format!("{name} {mode}");
        let (mut store, instance) = g.instance(mode);
        let call = |store: &mut Store<Kernel>, export: &str, arg: Option<i32>| -> i64 {
            let f = instance.get_func(&mut *store, export).unwrap();
            let args: Vec<Val> = arg.into_iter().map(Val::I32).collect();
            let mut out = [Val::I32(0)];
            f.call(&mut *store, &args, &mut out)
                .unwrap_or_else(|e| panic!("{export}: {e:?}"));
            match out[0] {
                Val::I64(v) => v,
                ref v => i64::from(v.unwrap_i32()),
            }
        };
        assert_eq!(call(&mut store, "cache_init", Some(4)), 0, "{ctx}");
        let sum = call(&mut store, "cache_sum", None);
        assert!(sum > 0, "{ctx}: {sum}");
        assert_eq!(call(&mut store, "cache_sum", None), sum, "{ctx}");
        assert_eq!(call(&mut store, "cache_refills", None), 1, "{ctx}: kept");
        assert_eq!(call(&mut store, "cache_state", None), 1, "{ctx}: volatile");
        let pages = machvm::host::purge_volatile(&mut store).unwrap();
        assert_eq!(pages, 4, "{ctx}: its four pages emptied");
        assert_eq!(call(&mut store, "cache_state", None), 2, "{ctx}: empty");
        assert_eq!(
            call(&mut store, "cache_sum", None),
            sum,
            "{ctx}: computed again"
        );
        assert_eq!(call(&mut store, "cache_refills", None), 2, "{ctx}");
        // Nothing volatile is left to take while it is in use... and it is volatile again.
        assert_eq!(call(&mut store, "cache_state", None), 1, "{ctx}");
        assert_eq!(machvm::host::purge_volatile(&mut store).unwrap(), 4);
    });
}

// --- ringbuf ---------------------------------------------------------------------------

const RINGBUF: [&str; 2] = ["ringbuf.wasm", "ringbuf64.wasm"];

#[test]
fn ringbuf_selftest_passes() {
    each_guest_and_mode(RINGBUF, |g, _, mode| {
        g.selftest(mode, "ringbuf_selftest");
    });
}

#[test]
fn ringbuf_checksum_matches_the_reference_values() {
    each_guest_and_mode(RINGBUF, |g, name, mode| {
        for (n, want) in [
            (1_000_000, 1_130_538_875),
            (1000, 1_847_643_480),
            (0, 18_652_613),
            (-1, -8),
        ] {
            let got: i32 = g
                .call(mode, "ringbuf_checksum", n)
                .unwrap_or_else(|e| panic!("{name} ringbuf_checksum({n}): {e:?}"));
            assert_eq!(got, want, "{name} ringbuf_checksum({n}) {mode}");
        }
    });
}

#[test]
fn ringbuf_page_size_and_last_kr() {
    each_guest_and_mode(RINGBUF, |g, name, mode| {
        let page = g.ret(mode, "ringbuf_page_size");
        assert_eq!(page, mode.page as i32, "{name} {mode}");
        assert_eq!(g.ret(mode, "last_kr"), 0, "{name} {mode}");
    });
}

/// spec §5: with enforcement (the default on Linux) the guest's own store into its
/// `VM_PROT_NONE` guard page traps, and the trap is explained as a write to that page.
#[test]
fn ringbuf_touch_guard_traps() {
    if !enforcement() {
        eprintln!("page protection is not enforced on this platform");
        return;
    }
    for name in RINGBUF {
        let g = Guest::load(name);
        for mode in modes().into_iter().filter(|m| m.enforce) {
            let ctx = format!("{name} ringbuf_touch_guard() {mode}");
            let (mut store, instance) = g.instance(mode);
            let f = instance
                .get_typed_func::<(), i32>(&mut store, "ringbuf_touch_guard")
                .unwrap();
            let e = match f.call(&mut store, ()) {
                Ok(100) => panic!("{ctx}: the store into the guard page went through"),
                Ok(r) => panic!("{ctx}: the guard could not be set up ({r})"),
                Err(e) => e,
            };
            // The ring's 2 data pages are the first free ones, past the initial 128 KiB.
            let guard = 0x20000 + 2 * mode.page;
            let (_task, bad) = machvm::explain_trap(&mut store, &e)
                .unwrap_or_else(|| panic!("{ctx}: not a bad access: {e:?}"));
            assert_eq!(bad.addr, guard, "{ctx}: {bad}");
            assert!(matches!(bad.kind, AccessKind::Write), "{ctx}: {bad}");
            assert_eq!(bad.page.map(|a| a.cur), Some(VM_PROT_NONE), "{ctx}: {bad}");
        }
    }
}

/// Without enforcement the calls still answer as spec §4 says, but the store goes through.
#[test]
fn ringbuf_touch_guard_without_enforcement_returns_100() {
    for name in RINGBUF {
        let g = Guest::load(name);
        for mode in modes().into_iter().filter(|m| !m.enforce) {
            let r = g
                .call::<(), i32>(mode, "ringbuf_touch_guard", ())
                .unwrap_or_else(|e| panic!("{name} {mode}: {e:?}"));
            assert_eq!(r, 100, "{name} ringbuf_touch_guard() {mode}");
        }
    }
}

// --- snapshot --------------------------------------------------------------------------

const SNAPSHOT: [&str; 2] = ["snapshot.wasm", "snapshot64.wasm"];

#[test]
fn snapshot_selftest_passes() {
    each_guest_and_mode(SNAPSHOT, |g, _, mode| {
        g.selftest(mode, "snapshot_selftest");
    });
}

#[test]
fn snapshot_finds_three_dirty_pages() {
    each_guest_and_mode(SNAPSHOT, |g, name, mode| {
        assert_eq!(g.ret(mode, "snapshot_dirty_pages"), 3, "{name} {mode}");
        assert_eq!(g.ret(mode, "last_kr"), 0, "{name} {mode}");
    });
}

// --- conform ---------------------------------------------------------------------------

const CONFORM: [&str; 2] = ["conform.wasm", "conform64.wasm"];

#[test]
fn conform_selftest_passes() {
    each_guest_and_mode(CONFORM, |g, _, mode| {
        g.selftest(mode, "conform_selftest");
    });
}

#[test]
fn conform_port_names() {
    each_guest_and_mode(CONFORM, |g, name, mode| {
        assert_eq!(g.ret(mode, "task_self_name"), 259, "{name} {mode}");
        assert_eq!(g.ret(mode, "host_self_name"), 515, "{name} {mode}");
        assert_eq!(g.ret(mode, "last_kr"), 0, "{name} {mode}");
    });
}

// --- rust_guard ------------------------------------------------------------------------

#[test]
fn rust_guard_selftest_passes() {
    let g = Guest::load("rust_guard.wasm");
    for mode in modes() {
        g.selftest(mode, "rust_selftest");
        assert_eq!(g.ret(mode, "rust_page_size"), mode.page as i32, "{mode}");
        assert_eq!(g.ret(mode, "last_kr"), 0, "{mode}");
    }
}

// --- regions (WASI, through the runner) ------------------------------------------------

/// Runs the `machvm` binary; `None` when it is not built (without the `cli` feature).
fn machvm(args: &[&str]) -> Option<Output> {
    let bin = option_env!("CARGO_BIN_EXE_machvm")?;
    let output = Command::new(bin)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the machvm binary runs");
    Some(output)
}

#[test]
fn regions_prints_the_address_space() {
    let expected_4k = "\
page size 4096
START              END                SIZE     PRT/MAX  INHERIT
0x0000000000000000-0x0000000000021000 132K     rw-/rwx  copy
0x0000000000021000-0x0000000000022000 4K       r--/rwx  copy
0x0000000000022000-0x0000000000023000 4K       ---/rwx  copy
0x0000000000023000-0x0000000000024000 4K       r--/r--  copy
4 regions
";
    let expected_16k = "\
page size 16384
START              END                SIZE     PRT/MAX  INHERIT
0x0000000000000000-0x0000000000024000 144K     rw-/rwx  copy
0x0000000000024000-0x0000000000028000 16K      r--/rwx  copy
0x0000000000028000-0x000000000002c000 16K      ---/rwx  copy
0x000000000002c000-0x0000000000030000 16K      r--/r--  copy
4 regions
";
    for (page, expected) in [("4096", expected_4k), ("16384", expected_16k)] {
        let Some(stdout) = run_at_page_size(page, "guest/prebuilt/regions.wasm") else {
            return;
        };
        assert_eq!(stdout, expected, "page size {page}");
    }
}

/// `machvm run --page-size page module`: its stdout, once it exited 0 with nothing on
/// stderr; `None` without the runner (the `cli` feature off).
fn run_at_page_size(page: &str, module: &str) -> Option<String> {
    let Some(o) = machvm(&["run", "--page-size", page, module]) else {
        eprintln!("no machvm binary (the `cli` feature is off)");
        return None;
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "page size {page}: {stderr}");
    assert!(stderr.is_empty(), "page size {page}: {stderr}");
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The magic ring buffer (guest/examples/magicring.c), written as macOS code writes it and
/// compiled against the SDK, runs under `machvm run` at both page sizes: `vm_remap` shares
/// the lower half at the upper one, so that the stream of bytes it carries reads back whole
/// across the end (the same sequence and checksum as ringbuf.wasm's).
#[test]
fn the_magic_ring_buffer_runs_under_the_runner() {
    for (page, len) in [("4096", 12288), ("16384", 49152)] {
        let Some(stdout) = run_at_page_size(page, "guest/prebuilt/magicring.wasm") else {
            return;
        };
        assert_eq!(
            stdout,
            format!(
                "magicring: {len} bytes, cur 3 max 7, both halves shared; 1000000 bytes \
                 through, FNV-1a 0x4362a77b\n"
            ),
            "page size {page}"
        );
    }
}

/// The runner calls a guest's exports (as guest/README.md shows) and exits with 1 and the
/// faulting address when the guest touches its guard page.
#[test]
fn the_runner_invokes_guest_exports() {
    let ringbuf = "guest/prebuilt/ringbuf.wasm";
    let Some(o) = machvm(&["run", "--invoke", "ringbuf_checksum", ringbuf, "1000"]) else {
        eprintln!("no machvm binary (the `cli` feature is off)");
        return;
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1847643480\n");
    let args = [
        "run",
        "--page-size",
        "16384",
        "--invoke",
        "ringbuf_selftest",
        ringbuf,
    ];
    let o = machvm(&args).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n");
    let o = machvm(&["run", "--invoke", "ringbuf_touch_guard", ringbuf]).unwrap();
    if enforcement() {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("0x22000"), "{}", stderr(&o));
    } else {
        assert_eq!(String::from_utf8_lossy(&o.stdout), "100\n");
    }
}

// --- heap: malloc beside the Mach calls (WASI, through the runner) ----------------------

/// Runs `machvm run [--page-size P] [--no-enforce] heap-module` with `steps` on its stdin.
fn run_heap(module: &str, mode: Mode, steps: &str) -> Option<Output> {
    use std::io::Write;
    let bin = option_env!("CARGO_BIN_EXE_machvm")?;
    let page = mode.page.to_string();
    let mut args = vec!["run", "--page-size", &page];
    if !mode.enforce {
        args.push("--no-enforce");
    }
    let path = format!("guest/prebuilt/{module}");
    args.push(&path);
    let mut child = Command::new(bin)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the machvm binary runs");
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(steps.as_bytes())
        .expect("the guest reads its steps");
    drop(stdin);
    Some(child.wait_with_output().expect("the machvm binary runs"))
}

/// A C or C++ program's allocator (wasi-libc's malloc, libc++'s `new` over it, as
/// `guest/build.sh` builds them) and the Mach calls never hand out the same byte, whichever
/// comes first: every Mach call that maps pages
/// (`vm_allocate` anywhere and fixed past the memory's end, `mach_vm_allocate`, `vm_read`)
/// before and after small, large and growing mallocs, in every mode. `heap.c` fills each
/// block with a byte of its own and checks after every step that the blocks are apart and
/// intact.
#[test]
fn malloc_and_the_mach_calls_never_share_memory() {
    let mach = ["a", "A", "f", "ar"];
    let heap = ["m", "s", "c", "g"];
    let mut sequences = Vec::new();
    for m in mach {
        for h in heap {
            sequences.push(format!("{m}{h}"));
            sequences.push(format!("{h}{m}"));
        }
    }
    sequences.extend(["famgAcsrgm", "gafmrAm", "aaaammmmgf", "sAgrfc"].map(String::from));
    // The same program as C++ (libc++): `new[]` and `std::vector` too.
    let mut cxx = sequences.clone();
    cxx.extend(["an", "na", "av", "va", "fnv", "Avnrg"].map(String::from));
    let runs = [("heap.wasm", &sequences), ("heapxx.wasm", &cxx)];
    for mode in modes() {
        for (module, steps) in runs
            .iter()
            .flat_map(|(m, s)| s.iter().map(move |s| (*m, s)))
        {
            let Some(o) = run_heap(module, mode, steps) else {
                eprintln!("no machvm binary (the `cli` feature is off)");
                return;
            };
            let out = String::from_utf8_lossy(&o.stdout);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{module} {steps} {mode}: {out}{err}"
            );
            // Every step makes a block (each `r` follows a Mach block to read).
            assert_eq!(
                out,
                format!("heap: ok, {} blocks\n", steps.len()),
                "{steps} {mode}"
            );
        }
    }
}

/// What the SDK's heap-first constructor prevents: built without it, a program whose first
/// allocation is a Mach call gets those pages from malloc too. With 4 KiB pages and
/// protections enforced, malloc traps on the unallocated rest of the wasm page the call
/// grew; otherwise (16 KiB pages fill that wasm page) malloc overwrites the allocation.
#[test]
fn without_the_sdk_malloc_takes_the_pages_a_mach_call_mapped_first() {
    for mode in modes() {
        let Some(o) = run_heap("heap_unguarded.wasm", mode, "am") else {
            eprintln!("no machvm binary (the `cli` feature is off)");
            return;
        };
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{mode}: {out}{err}");
        if mode.enforce && mode.page == 4096 {
            assert!(
                err.contains("is unallocated") && err.contains("dlmalloc"),
                "{mode}: {err}"
            );
        } else {
            assert!(
                out.starts_with("heap: a byte changed: block 0 ('a'"),
                "{mode}: {out}"
            );
        }
        // Malloc first, it is fine.
        let o = run_heap("heap_unguarded.wasm", mode, "ma").unwrap();
        assert_eq!(o.status.code(), Some(0), "{mode}");
    }
}

// --- sdk: the C SDK's conveniences at run time (WASI, through the runner) --------------

/// `tests/sdk.c`: `mach_task_self()` asks the host once however often the program uses
/// it, `trunc_page`/`round_page` keep a 64-bit value's high bits in a wasm32 guest, flavor
/// `VM_REGION_BASIC_INFO` fills the 32-byte struct and count 8 and nothing past it,
/// `mach_error()` prints as XNU's does, and `mach_absolute_time()` is a monotonic clock with
/// timebase 1/1.
#[test]
fn the_c_sdk_behaves_as_macos_headers_do() {
    for page in ["4096", "16384"] {
        let Some(o) = machvm(&[
            "run",
            "--trace",
            "--page-size",
            page,
            "guest/prebuilt/sdk.wasm",
        ]) else {
            eprintln!("no machvm binary (the `cli` feature is off)");
            return;
        };
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{page}: {out}{err}");
        let (trunc, round) = if page == "4096" {
            ("0x123456000", "0x123457000")
        } else {
            ("0x123454000", "0x123458000")
        };
        assert_eq!(
            out,
            format!(
                "task self 0x103 0x103 0x103\n\
                 trunc_page {trunc} round_page {round}\n\
                 vm_kernel_page_size {page}\n\
                 vm_region flavor 10: 0 count 8 size one page prot 1/7 offset 0 behavior 0, \
                 0 bytes past\n\
                 timebase 0 1/1, clock monotonic\n"
            ),
            "{page}"
        );
        assert_eq!(
            err.matches("mach_task_self() = 0x103").count(),
            1,
            "{page}: {err}"
        );
        assert!(
            err.contains("flavor=VM_REGION_BASIC_INFO, *info, *count=8 -> 8"),
            "{err}"
        );
        assert!(
            err.contains("\nknown: (os/kern) invalid address\n"),
            "{err}"
        );
        assert!(
            err.contains("\nunknown: (os/kern) unknown error code (4d)\n"),
            "{err}"
        );
    }
}

// --- abi: every import, driven directly ------------------------------------------------

const ABI: [&str; 2] = ["abi.wasm", "abi64.wasm"];

/// `abi.wasm` re-exports every `mach` import as `x_<name>` with the same signature.
#[test]
fn abi_reexports_every_import() {
    fn sig(t: &FuncType) -> String {
        format!(
            "{:?} -> {:?}",
            t.params().map(|p| p.to_string()).collect::<Vec<_>>(),
            t.results().map(|r| r.to_string()).collect::<Vec<_>>()
        )
    }
    for name in ABI {
        // The module as built (machvm::compile adds imports of its own).
        let module = Module::from_file(engine(), prebuilt_dir().join(name)).unwrap();
        let width = if name.contains("64") {
            machvm::Width::W64
        } else {
            machvm::Width::W32
        };
        let mut names = Vec::new();
        for import in module.imports() {
            assert_eq!(import.module(), "mach", "{name}");
            let ExternType::Func(want) = import.ty() else {
                panic!("{name}: {} is not a function", import.name())
            };
            let export = format!("x_{}", import.name());
            let Some(ExternType::Func(got)) = module.get_export(&export) else {
                panic!("{name}: no function export {export}")
            };
            assert_eq!(sig(&got), sig(&want), "{name}: {export}");
            // The SDK's declaration gives the signature machvm links.
            let abi = machvm::Import::from_name(import.name()).expect("a machvm import");
            let params: Vec<String> = want.params().map(|p| p.to_string()).collect();
            assert_eq!(
                format!("({}) -> i32", params.join(", ")),
                abi.signature(width),
                "{name}: {}",
                import.name()
            );
            names.push(import.name().to_string());
        }
        names.sort_unstable();
        let mut all: Vec<String> = machvm::Import::ALL
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        all.sort_unstable();
        assert_eq!(names, all, "{name} imports every call machvm has");
    }
}

/// One task of `abi.wasm`/`abi64.wasm`, driven export by export in one instance.
struct Abi {
    store: Store<Kernel>,
    instance: Instance,
    w64: bool,
    name: &'static str,
}

/// Scratch memory for out-parameters: the top of the initial 2 wasm pages, above the C
/// stack (which ends at 66560) and unused by the guest.
const SCRATCH: u64 = 0x1f000;

impl Abi {
    fn new(g: &Guest, mode: Mode) -> Abi {
        let (store, instance) = g.instance(mode);
        Abi {
            store,
            instance,
            w64: g.name.contains("64"),
            name: g.name,
        }
    }

    /// Calls `export` with `args` converted to its parameter types; returns its result (0
    /// when it has none).
    fn x(&mut self, export: &str, args: &[u64]) -> wasmtime::Result<i64> {
        let f = self
            .instance
            .get_func(&mut self.store, export)
            .unwrap_or_else(|| panic!("{}: no export {export}", self.name));
        let ty = f.ty(&self.store);
        let params: Vec<Val> = ty
            .params()
            .zip(args)
            .map(|(t, &a)| match t {
                ValType::I32 => Val::I32(a as i32),
                ValType::I64 => Val::I64(a as i64),
                t => panic!("{export}: parameter type {t}"),
            })
            .collect();
        assert_eq!(params.len(), args.len(), "{export}: argument count");
        let mut results = vec![Val::I32(0); ty.results().len()];
        f.call(&mut self.store, &params, &mut results)?;
        Ok(match results.first() {
            None => 0,
            Some(Val::I32(v)) => i64::from(*v),
            Some(Val::I64(v)) => *v,
            Some(v) => panic!("{export}: result {v:?}"),
        })
    }

    /// A call that must not trap; its `kern_return_t`.
    fn kr(&mut self, export: &str, args: &[u64]) -> i32 {
        let r = self
            .x(export, args)
            .unwrap_or_else(|e| panic!("{} {export}{args:x?}: {e:?}", self.name));
        r as i32
    }

    fn load32(&mut self, p: u64) -> u32 {
        self.kr("x_load32", &[p]) as u32
    }

    fn load64(&mut self, p: u64) -> u64 {
        self.x("x_load64", &[p]).unwrap() as u64
    }

    fn store32(&mut self, p: u64, v: u32) {
        self.x("x_store32", &[p, u64::from(v)]).unwrap();
    }

    fn store64(&mut self, p: u64, v: u64) {
        self.x("x_store64", &[p, v]).unwrap();
    }

    /// A guest word (`vm_address_t`, `vm_size_t`): u32 or u64.
    fn load_word(&mut self, p: u64) -> u64 {
        if self.w64 {
            self.load64(p)
        } else {
            u64::from(self.load32(p))
        }
    }

    fn store_word(&mut self, p: u64, v: u64) {
        if self.w64 {
            self.store64(p, v)
        } else {
            self.store32(p, v as u32)
        }
    }
}

/// A scenario over the raw ABI in both widths and page sizes: ports, `host_page_size`,
/// allocation past the initial memory, a guard page refusing a copy with nothing written,
/// regions, `vm_read`'s fresh buffer, `mach_vm_*` forms, and an out-parameter fault.
#[test]
fn abi_drives_every_call_family() {
    let s = SCRATCH;
    each_guest_and_mode(ABI, |g, name, mode| {
        let ctx = format!("{name} {mode}");
        let page = mode.page;
        let mut t = Abi::new(g, mode);
        let me = u64::from(t.kr("x_mach_task_self", &[]) as u32);
        assert_eq!(me, u64::from(TASK_SELF_NAME), "{ctx}");
        let host = u64::from(t.kr("x_mach_host_self", &[]) as u32);
        assert_eq!(host, u64::from(HOST_SELF_NAME), "{ctx}");

        // host_page_size writes a word.
        t.store_word(s, u64::MAX);
        assert_eq!(t.kr("x_host_page_size", &[host, s]), 0, "{ctx}");
        assert_eq!(t.load_word(s), page, "{ctx}");

        // Three fresh pages, the lowest free ones: just past the initial 128 KiB.
        t.store_word(s, 0);
        let flags = u64::from(VM_FLAGS_ANYWHERE.0);
        assert_eq!(t.kr("x_vm_allocate", &[me, s, 3 * page, flags]), 0, "{ctx}");
        let a = t.load_word(s);
        assert_eq!(a, 0x20000, "{ctx}");
        assert_eq!(t.load32(a), 0, "{ctx}: fresh pages are zero");
        t.store32(a, 0xdead_beef);

        // A guard in the middle page: a copy into it is refused and writes nothing.
        assert_eq!(
            t.kr("x_vm_protect", &[me, a + page, page, 0, 0]),
            0,
            "{ctx}"
        );
        assert_eq!(
            t.kr("x_vm_copy", &[me, a, 8, a + page - 4]),
            KERN_PROTECTION_FAILURE.0,
            "{ctx}"
        );
        assert_eq!(t.load32(a + page - 4), 0, "{ctx}: all or nothing");
        assert_eq!(t.kr("x_vm_copy", &[me, a, 4, a + 2 * page]), 0, "{ctx}");
        assert_eq!(t.load32(a + 2 * page), 0xdead_beef, "{ctx}");

        // vm_region_64 finds the guard: (addr, size) words, info at s+16, count at s+64.
        t.store_word(s, a + page);
        t.store32(s + 64, 9);
        assert_eq!(
            t.kr("x_vm_region_64", &[me, s, s + 8, 9, s + 16, s + 64, s + 68]),
            0,
            "{ctx}"
        );
        assert_eq!(
            (t.load_word(s), t.load_word(s + 8)),
            (a + page, page),
            "{ctx}"
        );
        assert_eq!(
            (t.load32(s + 16), t.load32(s + 20)),
            (0, 7),
            "{ctx}: ---/rwx"
        );
        assert_eq!(t.load32(s + 24), VM_INHERIT_COPY.0, "{ctx}");
        assert_eq!(t.load32(s + 64), 9, "{ctx}: count");
        // mach_vm_region: u64 address and size.
        t.store64(s, a + 2 * page);
        t.store32(s + 64, 9);
        assert_eq!(
            t.kr(
                "x_mach_vm_region",
                &[me, s, s + 8, 9, s + 16, s + 64, s + 68]
            ),
            0,
            "{ctx}"
        );
        assert_eq!(
            (t.load64(s), t.load64(s + 8)),
            (a + 2 * page, page),
            "{ctx}"
        );
        assert_eq!(t.load32(s + 16), 3, "{ctx}: rw-");

        // vm_read: a fresh page-aligned buffer after the three pages, *count = size.
        assert_eq!(t.kr("x_vm_read", &[me, a, 4, s, s + 8]), 0, "{ctx}");
        let buf = t.load_word(s);
        assert_eq!(buf, a + 3 * page, "{ctx}");
        assert_eq!(t.load32(s + 8), 4, "{ctx}");
        assert_eq!(t.load32(buf), 0xdead_beef, "{ctx}");
        assert_eq!(t.kr("x_vm_deallocate", &[me, buf, page]), 0, "{ctx}");

        // mach_vm_read_overwrite reads the guard: refused; of the data: *outsize (u64).
        assert_eq!(
            t.kr("x_mach_vm_read_overwrite", &[me, a + page, 4, a + 8, s]),
            KERN_PROTECTION_FAILURE.0,
            "{ctx}"
        );
        assert_eq!(
            t.kr("x_mach_vm_read_overwrite", &[me, a, 4, a + 8, s]),
            0,
            "{ctx}"
        );
        assert_eq!((t.load64(s), t.load32(a + 8)), (4, 0xdead_beef), "{ctx}");

        // mach_vm_write from a buffer in the guard: MACH_SEND_INVALID_MEMORY.
        assert_eq!(
            t.kr("x_mach_vm_write", &[me, a, a + page, 4]),
            MACH_SEND_INVALID_MEMORY.0,
            "{ctx}"
        );

        // An unknown port.
        assert_eq!(
            t.kr("x_vm_deallocate", &[0x999, a, page]),
            MACH_SEND_INVALID_DEST.0,
            "{ctx}"
        );

        // A scalar in-out parameter in the guard page traps, naming the call.
        let e = t
            .x("x_mach_vm_allocate", &[me, a + page, page, flags])
            .expect_err("an out-parameter in a VM_PROT_NONE page traps");
        let msg = format!("{e:?}");
        assert!(msg.contains("mach_vm_allocate"), "{ctx}: {msg}");

        // spec §5, where enforced: the guest's own loads and stores obey the table.
        if mode.enforce {
            let guard = a + page;
            assert!(t.x("x_load32", &[guard]).is_err(), "{ctx}: load from ---");
            assert!(
                t.x("x_store32", &[guard, 1]).is_err(),
                "{ctx}: store to ---"
            );
            let read = VM_PROT_READ.0 as u64;
            assert_eq!(
                t.kr("x_vm_protect", &[me, guard, page, 0, read]),
                0,
                "{ctx}"
            );
            assert_eq!(t.load32(guard), 0, "{ctx}: load from r--");
            assert!(
                t.x("x_store32", &[guard, 1]).is_err(),
                "{ctx}: store to r--"
            );
            assert_eq!(t.load32(guard), 0, "{ctx}: the refused store wrote nothing");
        }

        // Freeing everything leaves the initial region only.
        assert_eq!(t.kr("x_mach_vm_deallocate", &[me, a, 3 * page]), 0, "{ctx}");
    });
}

// --- MANIFEST --------------------------------------------------------------------------

/// `prebuilt/MANIFEST` lists every module with the imports, memory and exports the
/// committed file has (what CI checks for the Rust guest, which it does not rebuild), and
/// every module has its line. `build.sh --check` checks the hashes.
#[test]
fn manifest_matches_the_committed_modules() {
    fn sig(t: &FuncType) -> String {
        let list = |v: Vec<String>| v.join(", ");
        let results: Vec<String> = t.results().map(|r| r.to_string()).collect();
        format!(
            "({}) -> {}",
            list(t.params().map(|p| p.to_string()).collect()),
            if results.is_empty() {
                "nil".to_string()
            } else {
                list(results)
            }
        )
    }
    let manifest = std::fs::read_to_string(prebuilt_dir().join("MANIFEST")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(prebuilt_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".wasm"))
        .collect();
    files.sort();
    let hashed: Vec<&str> = manifest
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split("  ").nth(1).unwrap())
        .collect();
    assert_eq!(
        hashed, files,
        "MANIFEST's hash lines and guest/prebuilt/*.wasm"
    );
    for file in &files {
        let module = Module::from_file(engine(), prebuilt_dir().join(file)).unwrap();
        let mut lines = Vec::new();
        for i in module.imports() {
            let ExternType::Func(t) = i.ty() else {
                panic!("{file}: import {} is not a function", i.name())
            };
            lines.push(format!("import {}.{} {}", i.module(), i.name(), sig(&t)));
        }
        for m in module.exports().filter_map(|e| e.ty().memory().cloned()) {
            let mut l = format!("memory pages: initial={}", m.minimum());
            if let Some(max) = m.maximum() {
                l += &format!(" max={max}");
            }
            if m.is_64() {
                l += " i64";
            }
            lines.push(l);
        }
        // MANIFEST lists the function and memory exports (not the linker's globals, such
        // as the Rust guest's `__data_end` and `__heap_base`).
        for e in module.exports() {
            match e.ty() {
                ExternType::Func(t) => lines.push(format!("export {} {}", e.name(), sig(&t))),
                ExternType::Memory(_) => lines.push(format!("export {} memory", e.name())),
                _ => {}
            }
        }
        let prefix = format!("# {file} ");
        let listed: Vec<&str> = manifest
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        assert_eq!(listed, lines, "{file}: MANIFEST and the module's interface");
    }
}
