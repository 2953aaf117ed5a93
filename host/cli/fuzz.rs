//! What `machvm fuzz` does: coverage-guided fuzzing of a guest's `LLVMFuzzerTestOneInput`
//! with libFuzzer as the engine.
//!
//! The module is compiled with edge counters (`machvm::compile_with`, `coverage`), whose
//! counts libFuzzer reads from a table of this process after each input, as it reads the
//! inline 8-bit counters of a native target. Each input runs in a task of its own,
//! instantiated fresh from a pool: nothing of one input's run (heap, globals, page
//! protections) is left for the next, so a finding replays from its artifact alone. The
//! input is copied to the end of read-only pages whose next page has no access: reading past
//! it or writing it traps at the instruction that does.
//!
//! A finding (a trap, a timeout, the guest calling `exit`) is printed as `machvm run` prints
//! a trap, its input is written to `ARTIFACT_DIR/KIND-SHA1`, and the process exits with
//! status 1 at once (libFuzzer's exit handlers would call it a crash of their own).

use std::ffi::{c_char, c_int, CString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use machvm::abi::{VM_FLAGS_ANYWHERE, VM_PROT_NONE, VM_PROT_READ};
use machvm::fuzz::heap::{self, GuardHeap, HeapOptions};
use machvm::{host, CompileOptions, Compiled, Kernel, KernelConfig, TaskId, TaskPre};
use wasmtime::{
    Config, Engine, Instance, Linker, PoolingAllocationConfig, Store, StoreLimitsBuilder, Trap,
    Val, ValType,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

use crate::runner::{self, chain, failure, say, Failure, Stage, State, EXIT_TRAP, WASI_MODULE};

/// The guest's entry point, libFuzzer's convention.
const TEST_ONE_INPUT: &str = "LLVMFuzzerTestOneInput";
/// The guest's optional initialisation, called with `argc` and `argv` before its first input.
const INITIALIZE: &str = "LLVMFuzzerInitialize";

/// libFuzzer's flags that re-run the process's command line in child processes, which
/// would start `machvm` without `fuzz` and the module: refused.
const CHILD_PROCESS_FLAGS: &[&str] = &[
    "fork",
    "jobs",
    "workers",
    "merge",
    "set_cover_merge",
    "minimize_crash",
    "cleanse_crash",
    "merge_control_file",
];

/// libFuzzer's flags that would take the process's fault signals from Wasmtime, which turns
/// the guest's faults into traps: only `=0` (machvm's own setting) is accepted.
const SIGNAL_FLAGS: &[&str] = &["handle_segv", "handle_bus", "handle_ill", "handle_fpe"];

/// How often the epoch ticks at most: the precision of `--timeout`.
const MAX_TICK: Duration = Duration::from_millis(100);

/// What libFuzzer's own per-input alarm gets beyond `--timeout`: it catches a guest blocked
/// in a host call, where the epoch cannot stop it.
const ALARM_GRACE_SECS: u64 = 10;

/// What to fuzz, and how.
pub struct FuzzOptions {
    /// The module file (.wasm or .wat).
    pub module: PathBuf,
    /// Corpus directories and inputs to replay, handed to libFuzzer as they are.
    pub inputs: Vec<PathBuf>,
    /// Stop after this many seconds.
    pub max_total_time: Option<u64>,
    /// Stop after this many inputs.
    pub runs: Option<u64>,
    /// Where findings are written.
    pub artifact_dir: PathBuf,
    /// How long one input may run.
    pub timeout: Duration,
    /// libFuzzer's random seed.
    pub seed: Option<u32>,
    /// The task's page size.
    pub page_size: u64,
    /// The memory cap in bytes.
    pub max_memory: Option<u64>,
    /// libFuzzer's own flags, as given after `--`.
    pub libfuzzer: Vec<String>,
    /// The guest's `malloc` family on the guard heap; `None`: the guest's own allocator.
    pub guard_heap: Option<HeapOptions>,
}

// libFuzzer (the `libfuzzer-sys` crate's build of LLVM's sources).
extern "C" {
    fn LLVMFuzzerRunDriver(
        argc: *mut c_int,
        argv: *mut *mut *mut c_char,
        callback: extern "C" fn(*const u8, usize) -> c_int,
    ) -> c_int;
    fn __sanitizer_cov_8bit_counters_init(start: *mut u8, stop: *mut u8);
    fn __sanitizer_cov_pcs_init(start: *const usize, stop: *const usize);
}

/// `libfuzzer-sys` defines `LLVMFuzzerTestOneInput` as a call of this function (the
/// `fuzz_target!` macro's); machvm hands libFuzzer [`one_input`] instead, but the symbol
/// must exist for the archive to link. Its declaration there takes the slice as it is
/// (a Rust caller in Rust's layout), hence the lint.
#[no_mangle]
#[allow(improper_ctypes_definitions)]
pub extern "C" fn rust_fuzzer_test_input(bytes: &[u8]) -> i32 {
    run_input(bytes)
}

/// libFuzzer's callback: runs one input.
extern "C" fn one_input(data: *const u8, size: usize) -> c_int {
    let bytes: &[u8] = if size == 0 {
        &[]
    } else {
        // SAFETY: libFuzzer passes `size` readable bytes at `data`, which stay valid and
        // unchanged until the callback returns.
        unsafe { std::slice::from_raw_parts(data, size) }
    };
    run_input(bytes)
}

thread_local! {
    /// The target libFuzzer's callback runs; set before the driver starts, on its thread.
    static TARGET: std::cell::RefCell<Option<Target>> = const { std::cell::RefCell::new(None) };
}

fn run_input(bytes: &[u8]) -> i32 {
    TARGET.with(|t| match t.borrow_mut().as_mut() {
        Some(target) => target.run(bytes),
        None => {
            say(format_args!(
                "error: machvm fuzz: libFuzzer called the target before it was set up"
            ));
            exit_now(runner::EXIT_LOAD)
        }
    })
}

/// Everything an input's run needs, made once.
struct Target {
    engine: Engine,
    compiled: Compiled,
    wasm: Vec<u8>,
    pre: TaskPre<State>,
    linker: Linker<State>,
    /// For trap reports, as `machvm run` makes them.
    report: runner::Options,
    /// The module imports WASI.
    wasi: bool,
    /// `LLVMFuzzerTestOneInput` takes 64-bit pointers (a 64-bit memory).
    memory64: bool,
    /// The module exports `LLVMFuzzerInitialize`.
    initialize: bool,
    /// The module's own `malloc` and `free` are exported, to be called before anything is
    /// mapped (`--no-guard-malloc`).
    heap_first: bool,
    /// `argv` for `LLVMFuzzerInitialize`.
    argv: Vec<String>,
    /// The epoch ticks an input may run.
    deadline: u64,
    /// libFuzzer's view of the counters: the guest's are copied here after each input.
    counters: &'static mut [u8],
    artifact_dir: PathBuf,
    page_size: u64,
    max_memory: Option<u64>,
    /// How the guard heap places blocks.
    heap: HeapOptions,
    /// Where the input being run lies: (address, length).
    input: (u64, u64),
}

/// Why an input's run is a finding.
struct Finding {
    /// The artifact's prefix (`crash`, `timeout`).
    kind: &'static str,
    /// One line for libFuzzer's `SUMMARY`.
    summary: String,
    /// The report, as `machvm run` prints it.
    message: String,
}

/// Sets libFuzzer up on the module and runs it; returns only when the module cannot be
/// fuzzed (libFuzzer ends the process itself).
pub fn fuzz(opts: &FuzzOptions) -> Failure {
    match prepare(opts) {
        Ok((target, argv)) => drive(target, argv),
        Err(f) => f,
    }
}

fn prepare(opts: &FuzzOptions) -> Result<(Target, Vec<String>), Failure> {
    for flag in &opts.libfuzzer {
        check_flag(flag)?;
    }
    let tick = (opts.timeout / 10).clamp(Duration::from_millis(1), MAX_TICK);
    let deadline = opts.timeout.as_nanos().div_ceil(tick.as_nanos()) as u64 + 1;
    let engine = engine(opts.max_memory)?;
    let wasm = runner::read_module(&opts.module)?;
    let options = CompileOptions::new()
        .coverage(true)
        .guard_heap(opts.guard_heap.is_some())
        .export_allocator(opts.guard_heap.is_none());
    let compiled = machvm::compile_with(&engine, &wasm, &options).map_err(|e| {
        let hint = if opts.guard_heap.is_some() && chain(&e).contains("guard heap") {
            " (or fuzz it with its own allocator: --no-guard-malloc)"
        } else {
            ""
        };
        Failure::Load(format!(
            "`{}` cannot be fuzzed: {}{hint}",
            opts.module.display(),
            chain(&e)
        ))
    })?;
    let module = compiled.module();
    let memory64 = match module
        .get_export(TEST_ONE_INPUT)
        .and_then(|e| e.func().cloned())
    {
        Some(ty) => {
            let params: Vec<ValType> = ty.params().collect();
            let results: Vec<ValType> = ty.results().collect();
            match (&params[..], &results[..]) {
                ([ValType::I32, ValType::I32], [ValType::I32]) => false,
                ([ValType::I64, ValType::I64], [ValType::I32]) => true,
                _ => {
                    return Err(Failure::Load(format!(
                        "`{TEST_ONE_INPUT}` of `{}` has type {ty}; a fuzz target's is \
                         (ptr, len) -> i32, `int {TEST_ONE_INPUT}(const uint8_t *, size_t)`",
                        opts.module.display()
                    )))
                }
            }
        }
        None => {
            return Err(Failure::Load(format!(
                "`{}` does not export `{TEST_ONE_INPUT}`: build the fuzz target as a reactor \
                 that exports it (clang: -mexec-model=reactor \
                 -Wl,--export={TEST_ONE_INPUT})",
                opts.module.display()
            )))
        }
    };
    let initialize = module.get_export(INITIALIZE).is_some();
    let heap_first = opts.guard_heap.is_none()
        && compiled
            .heap_functions()
            .is_some_and(|functions| !functions.is_empty());
    if opts.guard_heap.is_none() && !heap_first && heap::may_have_malloc(&wasm) {
        warn_own_malloc();
    }
    let wasi = module.imports().any(|i| i.module() == WASI_MODULE);
    let pre = TaskPre::new(&compiled).map_err(|e| {
        Failure::Load(format!(
            "cannot link `{}`: {}",
            opts.module.display(),
            chain(&e)
        ))
    })?;
    let mut linker = Linker::new(&engine);
    if wasi {
        machvm::wasi::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)
            .map_err(|e| Failure::Load(format!("cannot link WASI: {}", chain(&e))))?;
    }
    if opts.guard_heap.is_some() {
        heap::add_to_linker(&mut linker, memory64, |s: &mut State| &mut s.heap)
            .map_err(|e| Failure::Load(format!("cannot link the guard heap: {}", chain(&e))))?;
    }
    let edges = compiled.coverage().map_or(0, |c| c.edges as usize);
    let sites = compiled.coverage().map_or(&[][..], |c| &c.sites);
    let counters = register_counters(edges, sites);
    let report = runner::Options {
        module: opts.module.clone(),
        invoke: Some(TEST_ONE_INPUT.to_string()),
        args: Vec::new(),
        dirs: Vec::new(),
        envs: Vec::new(),
        page_size: opts.page_size,
        max_memory: opts.max_memory,
        fuel: None,
        timeout: Some(opts.timeout),
        trace: false,
        enforce: true,
        pagezero: false,
    };
    let argv = libfuzzer_argv(opts);
    let mut target = Target {
        engine: engine.clone(),
        compiled,
        wasm,
        pre,
        linker,
        report,
        wasi,
        memory64,
        initialize,
        heap_first,
        argv: argv.clone(),
        deadline,
        counters,
        artifact_dir: opts.artifact_dir.clone(),
        page_size: opts.page_size,
        max_memory: opts.max_memory,
        heap: opts.guard_heap.unwrap_or_default(),
        input: (0, 0),
    };
    // One run without an input: the module links and initialises, or the error is the
    // module's, not an input's.
    target.dry_run()?;
    start_ticker(engine, tick);
    Ok((target, argv))
}

/// `--no-guard-malloc` on a module whose `malloc` cannot be found (it is stripped of its
/// names and does not export it) or used (not of C's type, or the names machvm would export
/// it under are taken): machvm cannot start its heap before it maps the input
/// ([`heap::export_allocator`]). wasi-libc's malloc up to 2022 (Debian 12's) takes, at its
/// first call, every page up to the memory's end as heap, the input's pages included; it
/// then writes its chunk headers into the input's guard page and traps in `dlmalloc`, a
/// finding that is not the target's.
fn warn_own_malloc() {
    say(format_args!(
        "warning: --no-guard-malloc: the module's `malloc` cannot be found (no name \
         section, no export) or used (not of C's type), so its heap cannot be started before \
         the input is placed; if it has a wasi-libc malloc older than 2023 (Debian 12's), its \
         first call takes the input's pages as heap and traps in dlmalloc, which is not the \
         target's bug (keep the name section, or export malloc)"
    ));
}

/// The engine: machvm's settings, epochs for `--timeout`, and a pool for one task at a time
/// (its memory and the counters' memory).
fn engine(max_memory: Option<u64>) -> Result<Engine, Failure> {
    let mut config = Config::new();
    machvm::configure(&mut config);
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(2)
        .total_memories(4)
        .max_memories_per_module(2)
        .total_tables(2)
        .max_memory_size(max_memory.map_or(1 << 32, |m| m.div_ceil(65536) * 65536) as usize);
    config.allocation_strategy(pool);
    Engine::new(&config)
        .map_err(|e| Failure::Load(format!("cannot set up Wasmtime: {}", chain(&e))))
}

/// The epoch advances every `tick` for as long as the process runs.
fn start_ticker(engine: Engine, tick: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(tick);
        engine.increment_epoch();
    });
}

/// Refuses the libFuzzer flags machvm cannot honour, with the reason.
fn check_flag(flag: &str) -> Result<(), Failure> {
    let Some(body) = flag.strip_prefix('-') else {
        return Err(Failure::Usage(format!(
            "`{flag}` after `--` is not a libFuzzer flag (-name=value); corpus directories \
             and inputs go before `--`"
        )));
    };
    let (name, value) = body.split_once('=').unwrap_or((body, ""));
    if CHILD_PROCESS_FLAGS.contains(&name) {
        return Err(Failure::Usage(format!(
            "libFuzzer's -{name} is not supported by machvm fuzz: it re-runs the command \
             line in child processes; run several `machvm fuzz` processes on one corpus \
             directory instead"
        )));
    }
    if SIGNAL_FLAGS.contains(&name) && value != "0" {
        return Err(Failure::Usage(format!(
            "libFuzzer's -{name} must stay 0 under machvm fuzz: Wasmtime handles the \
             signal, turning the guest's faults into traps"
        )));
    }
    Ok(())
}

/// libFuzzer's command line: the process's name, machvm's settings, the user's flags
/// (later flags win), then the corpus directories and inputs.
fn libfuzzer_argv(opts: &FuzzOptions) -> Vec<String> {
    let exe = std::env::args()
        .next()
        .unwrap_or_else(|| "machvm".to_string());
    let mut prefix = opts.artifact_dir.to_string_lossy().into_owned();
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    let mut argv = vec![
        exe,
        "-handle_segv=0".to_string(),
        "-handle_bus=0".to_string(),
        "-handle_ill=0".to_string(),
        "-handle_fpe=0".to_string(),
        "-error_exitcode=1".to_string(),
        "-timeout_exitcode=1".to_string(),
        "-print_final_stats=1".to_string(),
        format!("-artifact_prefix={prefix}"),
        format!(
            "-timeout={}",
            opts.timeout.as_secs().saturating_add(ALARM_GRACE_SECS)
        ),
    ];
    if let Some(t) = opts.max_total_time {
        argv.push(format!("-max_total_time={t}"));
    }
    if let Some(n) = opts.runs {
        argv.push(format!("-runs={n}"));
    }
    if let Some(s) = opts.seed {
        argv.push(format!("-seed={s}"));
    }
    argv.extend(opts.libfuzzer.iter().cloned());
    argv.extend(opts.inputs.iter().map(|p| p.to_string_lossy().into_owned()));
    argv
}

/// Gives libFuzzer a counter per edge, and a program-counter table whose entry for each is
/// the offset of its instruction in the module (flag 1: a function's entry), as a native
/// target's `-fsanitize-coverage=inline-8bit-counters,pc-table` would. Both live as long as
/// the process.
fn register_counters(edges: usize, sites: &[machvm::fuzz::coverage::Site]) -> &'static mut [u8] {
    // libFuzzer wants a non-empty table: a module without code still gets one counter.
    let n = edges.max(1);
    let counters: &'static mut [u8] = Box::leak(vec![0u8; n].into_boxed_slice());
    let mut pcs: Vec<usize> = Vec::with_capacity(2 * n);
    for i in 0..n {
        let site = sites.get(i);
        pcs.push(site.map_or(0, |s| s.offset as usize));
        pcs.push(usize::from(site.is_some_and(|s| s.entry)));
    }
    let pcs: &'static [usize] = Box::leak(pcs.into_boxed_slice());
    let range = counters.as_mut_ptr_range();
    // SAFETY: both tables are leaked, so they live as long as the process; libFuzzer keeps
    // the pointers, reads the counters and zeroes them between inputs on this thread, which
    // is the only one that runs inputs. machvm writes the counters only from the callback,
    // while libFuzzer waits for it; the program-counter table is never written again.
    unsafe {
        __sanitizer_cov_8bit_counters_init(range.start, range.end);
        let pcs = pcs.as_ptr_range();
        __sanitizer_cov_pcs_init(pcs.start, pcs.end);
    }
    counters
}

/// Hands the process to libFuzzer: it runs the inputs, prints its progress and exits.
fn drive(target: Target, argv: Vec<String>) -> Failure {
    TARGET.with(|t| *t.borrow_mut() = Some(target));
    let args: Result<Vec<CString>, _> = argv.into_iter().map(CString::new).collect();
    let Ok(args) = args else {
        return Failure::Usage("an argument holds a NUL byte".to_string());
    };
    // libFuzzer's argv keeps pointing here: leaked, it lives as long as the process.
    let args: &'static [CString] = Box::leak(args.into_boxed_slice());
    let mut ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    ptrs.push(std::ptr::null_mut());
    let ptrs: &'static mut [*mut c_char] = Box::leak(ptrs.into_boxed_slice());
    let mut argc = (ptrs.len() - 1) as c_int;
    let mut argv = ptrs.as_mut_ptr();
    // SAFETY: argc and argv describe NUL-terminated strings followed by a null pointer, all
    // leaked so that they outlive the driver (libFuzzer keeps and may reorder the pointer
    // array, never the strings); the callback takes libFuzzer's (data, size) as documented.
    let status = unsafe { LLVMFuzzerRunDriver(&mut argc, &mut argv, one_input) };
    // libFuzzer exits the process itself at the end of its work; should it return, its
    // status is the process's.
    exit_now(u8::try_from(status).unwrap_or(EXIT_TRAP))
}

/// Ends the process with `status` now, without running exit handlers: libFuzzer's would
/// report the exit as a crash of the target.
fn exit_now(status: u8) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process; nothing of this process runs after it.
    unsafe { libc::_exit(c_int::from(status)) }
}

impl Target {
    /// A store with a fresh kernel and WASI context, its clock started.
    fn store(&self) -> Result<Store<State>, wasmtime::Error> {
        let kernel = Kernel::with_config(
            KernelConfig::default()
                .page_size(self.page_size)
                .memory_limit(self.max_memory),
        )?;
        let mut limits = StoreLimitsBuilder::new();
        if let Some(max) = self.max_memory {
            limits = limits.memory_size(usize::try_from(max).unwrap_or(usize::MAX));
        }
        let mut store = Store::new(
            &self.engine,
            State {
                kernel,
                wasi: self.wasi_context(),
                limits: limits.build(),
                heap: GuardHeap::new(self.heap),
            },
        );
        store.limiter(|s| &mut s.limits);
        machvm::install_handlers(&mut store);
        store.set_epoch_deadline(self.deadline);
        Ok(store)
    }

    fn wasi_context(&self) -> WasiP1Ctx {
        let mut b = WasiCtxBuilder::new();
        if self.wasi {
            b.inherit_stdio().allow_blocking_current_thread(true);
            b.arg(self.report.module.to_string_lossy());
        }
        b.build_p1()
    }

    /// Instantiates the module as a fresh task and initialises it: `_initialize`, then
    /// `LLVMFuzzerInitialize(&argc, &argv)`.
    fn start(&self, store: &mut Store<State>) -> Result<(Instance, TaskId), Stop> {
        let (instance, task) = self
            .pre
            .instantiate(&mut *store, &self.linker)
            .map_err(|e| Stop::Error(e, Stage::Instantiate))?;
        // Each export is looked up once: a missing one is not called.
        let call = |store: &mut Store<State>, name: &str, args: &[Val]| {
            let Some(f) = instance.get_func(&mut *store, name) else {
                return Ok(());
            };
            let mut results = vec![Val::I32(0); f.ty(&*store).results().len()];
            f.call(&mut *store, args, &mut results)
                .map_err(|e| Stop::Error(e, Stage::Call))
        };
        call(store, "_initialize", &[])?;
        if self.heap_first {
            // The module's own heap first: everything machvm maps lies past it
            // (`heap::export_allocator`).
            let mut ptr = [self.pointer(0)];
            if let Some(malloc) = instance.get_func(&mut *store, heap::OWN_MALLOC_EXPORT) {
                malloc
                    .call(&mut *store, &[self.pointer(1)], &mut ptr)
                    .map_err(|e| Stop::Error(e, Stage::Call))?;
            }
            if let Some(free) = instance.get_func(&mut *store, heap::OWN_FREE_EXPORT) {
                free.call(&mut *store, &ptr, &mut [])
                    .map_err(|e| Stop::Error(e, Stage::Call))?;
            }
        }
        if self.initialize {
            let (argc, argv) = self.place_argv(store, task).map_err(Stop::Host)?;
            call(store, INITIALIZE, &[self.pointer(argc), self.pointer(argv)])?;
        }
        Ok((instance, task))
    }

    /// A guest pointer as the target's functions take it.
    fn pointer(&self, at: u64) -> Val {
        if self.memory64 {
            Val::I64(at as i64)
        } else {
            Val::I32(at as u32 as i32)
        }
    }

    /// Writes `int argc` and `char **argv` for `LLVMFuzzerInitialize` to fresh pages of the
    /// task; gives their addresses.
    fn place_argv(&self, store: &mut Store<State>, task: TaskId) -> Result<(u64, u64), String> {
        let word = if self.memory64 { 8 } else { 4 };
        let strings: usize = self.argv.iter().map(|a| a.len() + 1).sum();
        let size = (8 + word * (self.argv.len() + 2) + strings) as u64;
        let base = host::allocate(&mut *store, task, 0, size, VM_FLAGS_ANYWHERE)
            .map_err(|e| format!("cannot allocate argv: {e}"))?;
        let argc_at = base;
        let argv_ptr_at = base + 8;
        let array_at = argv_ptr_at + word as u64;
        let mut text_at = array_at + (word * (self.argv.len() + 1)) as u64;
        let mut bytes = Vec::with_capacity(size as usize);
        bytes.extend_from_slice(&(self.argv.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let push_word = |bytes: &mut Vec<u8>, v: u64| {
            bytes.extend_from_slice(&v.to_le_bytes()[..word]);
        };
        push_word(&mut bytes, array_at);
        for a in &self.argv {
            push_word(&mut bytes, text_at);
            text_at += a.len() as u64 + 1;
        }
        push_word(&mut bytes, 0);
        for a in &self.argv {
            bytes.extend_from_slice(a.as_bytes());
            bytes.push(0);
        }
        host::write_bytes(&mut *store, task, base, &bytes)
            .map_err(|e| format!("cannot write argv: {e}"))?;
        Ok((argc_at, argv_ptr_at))
    }

    /// Copies `input` to the end of fresh read-only pages followed by a page with no access;
    /// gives its address (that page's start for an empty input).
    fn place_input(
        &self,
        store: &mut Store<State>,
        task: TaskId,
        input: &[u8],
    ) -> Result<u64, String> {
        let p = self.page_size;
        let len = input.len() as u64;
        let pages = len.div_ceil(p);
        let base = host::allocate(&mut *store, task, 0, (pages + 1) * p, VM_FLAGS_ANYWHERE)
            .map_err(|e| format!("cannot allocate {} bytes for the input: {e}", len))?;
        let guard = base + pages * p;
        host::protect(&mut *store, task, guard, p, false, VM_PROT_NONE)
            .map_err(|e| format!("cannot protect the input's guard page: {e}"))?;
        let at = guard - len;
        if pages > 0 {
            host::write_bytes(&mut *store, task, at, input)
                .map_err(|e| format!("cannot write the input: {e}"))?;
            host::protect(&mut *store, task, base, pages * p, false, VM_PROT_READ)
                .map_err(|e| format!("cannot protect the input: {e}"))?;
        }
        Ok(at)
    }

    /// One run without an input, at start-up: instantiation and initialisation.
    fn dry_run(&mut self) -> Result<(), Failure> {
        let mut store = self
            .store()
            .map_err(|e| Failure::Load(format!("cannot make a task: {}", chain(&e))))?;
        match self.start(&mut store) {
            Ok(_) => Ok(()),
            Err(Stop::Host(m)) => Err(Failure::Load(m)),
            Err(Stop::Error(e, stage)) => {
                // The module's own failure, before any input: no artifact to write.
                match self.classify(e, &mut store, stage) {
                    Ok(f) => Err(Failure::Trap(format!(
                        "{}\n(before any input: while the task was instantiated and \
                         initialised)",
                        f.message
                    ))),
                    Err(load) => Err(load),
                }
            }
        }
    }

    /// Runs one input in a fresh task; a finding ends the process.
    fn run(&mut self, input: &[u8]) -> i32 {
        let mut store = match self.store() {
            Ok(s) => s,
            Err(e) => {
                say(format_args!("error: cannot make a task: {}", chain(&e)));
                exit_now(runner::EXIT_LOAD)
            }
        };
        let result = self.start(&mut store).and_then(|(instance, task)| {
            let at = self
                .place_input(&mut store, task, input)
                .map_err(Stop::Host)?;
            self.input = (at, input.len() as u64);
            let f = instance
                .get_func(&mut store, TEST_ONE_INPUT)
                .ok_or_else(|| Stop::Host(format!("no export `{TEST_ONE_INPUT}`")))?;
            let args = [self.pointer(at), self.len(input.len())];
            let mut ret = [Val::I32(0)];
            f.call(&mut store, &args, &mut ret)
                .map_err(|e| Stop::Error(e, Stage::Call))?;
            self.copy_counters(&mut store, &instance);
            Ok(ret[0].i32().unwrap_or(0))
        });
        match result {
            Ok(code) => code,
            Err(Stop::Host(m)) => {
                say(format_args!("error: machvm fuzz: {m}"));
                exit_now(runner::EXIT_LOAD)
            }
            Err(Stop::Error(e, stage)) => match self.classify(e, &mut store, stage) {
                Ok(finding) => self.report(finding, input),
                Err(load) => exit_now(runner::exit(Err(load))),
            },
        }
    }

    /// `size_t len` as the target's function takes it.
    fn len(&self, len: usize) -> Val {
        self.pointer(len as u64)
    }

    /// libFuzzer's counters become this run's counts.
    fn copy_counters(&mut self, store: &mut Store<State>, instance: &Instance) {
        let Some(cov) = self.compiled.coverage() else {
            return;
        };
        if let Some(mem) = instance.get_memory(&mut *store, &cov.export) {
            let data = mem.data(&*store);
            let n = self.counters.len().min(data.len()).min(cov.edges as usize);
            self.counters[..n].copy_from_slice(&data[..n]);
        }
    }

    /// A run's error as a finding, or (`Err`) as a failure of machvm or of the module that
    /// is no input's fault.
    fn classify(
        &self,
        e: wasmtime::Error,
        store: &mut Store<State>,
        stage: Stage,
    ) -> Result<Finding, Failure> {
        if let Some(exit) = e.downcast_ref::<I32Exit>() {
            return Ok(Finding {
                kind: "crash",
                summary: format!("the fuzz target called exit({})", exit.0),
                message: format!(
                    "the fuzz target called exit({}): a fuzz target must return from \
                     {TEST_ONE_INPUT}",
                    exit.0
                ),
            });
        }
        let timeout = e.downcast_ref::<Trap>() == Some(&Trap::Interrupt);
        let root = e.root_cause().to_string();
        let place = e
            .chain()
            .find_map(|c| machvm::enforce::fault_address(&c.to_string()))
            .and_then(|addr| self.describe(store, addr));
        let summary = match &place {
            Some(p) => format!("{root}: {p}"),
            None => root.clone(),
        };
        let with_place = |message: String| match &place {
            Some(p) => format!("{message}\n  {p}"),
            None => message,
        };
        match failure(e, store, (&self.compiled, &self.wasm), &self.report, stage) {
            Err(Failure::Timeout(message)) if timeout => Ok(Finding {
                kind: "timeout",
                summary: "timeout".to_string(),
                message,
            }),
            Err(Failure::Trap(message)) => Ok(Finding {
                kind: "crash",
                summary,
                message: with_place(message),
            }),
            Err(other) => Err(other),
            Ok(status) => Ok(Finding {
                kind: "crash",
                summary: format!("the fuzz target called exit({status})"),
                message: format!("the fuzz target called exit({status})"),
            }),
        }
    }

    /// What the fault address `addr` is: a place in the input or in a block of the guard
    /// heap.
    fn describe(&self, store: &Store<State>, addr: u64) -> Option<String> {
        let (at, len) = self.input;
        let page = self.page_size;
        if len > 0 && addr >= at && addr < at + len {
            return Some(format!(
                "{addr:#x} is {} bytes inside the {len}-byte input at {at:#x} (read-only)",
                addr - at
            ));
        }
        if addr >= at + len && addr < at + len + page {
            return Some(format!(
                "{addr:#x} is {} bytes past the end of the {len}-byte input at {at:#x}",
                addr - (at + len)
            ));
        }
        store.data().heap.describe(addr)
    }

    /// Prints the finding as `machvm run` prints a trap, writes its artifact, and ends the
    /// process with status 1.
    fn report(&self, finding: Finding, input: &[u8]) -> ! {
        let pid = std::process::id();
        let mut text = format!(
            "=={pid}== ERROR: machvm fuzz: a finding\nerror: {}\n",
            finding.message
        );
        let name = format!("{}-{}", finding.kind, sha1_smol::Sha1::from(input).digest());
        let path = self.artifact_dir.join(&name);
        match std::fs::write(&path, input) {
            Ok(()) => {
                let _ = writeln!(
                    text,
                    "artifact_prefix='{}/'; Test unit written to {}",
                    self.artifact_dir.display(),
                    path.display()
                );
            }
            Err(e) => {
                let _ = writeln!(text, "error: cannot write {}: {e}", path.display());
            }
        }
        if input.len() <= 64 {
            let _ = writeln!(text, "input ({} bytes): {}", input.len(), hex(input));
        }
        let _ = writeln!(text, "SUMMARY: machvm fuzz: {}", finding.summary);
        let _ = std::io::stderr().write_all(text.as_bytes());
        exit_now(EXIT_TRAP)
    }
}

/// Why starting or running an input stopped.
enum Stop {
    /// The guest's error (a trap, an exit) at that stage.
    Error(wasmtime::Error, Stage),
    /// machvm could not set the task up.
    Host(String),
}

/// `0x01 0x02 ...`, for a short input in a report.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 5);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:#04x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_that_spawn_children_or_take_signals_are_refused() {
        assert!(check_flag("-max_len=64").is_ok());
        assert!(check_flag("-handle_segv=0").is_ok());
        assert!(check_flag("-fork=2").is_err());
        assert!(check_flag("-jobs=4").is_err());
        assert!(check_flag("-merge=1").is_err());
        assert!(check_flag("-handle_segv=1").is_err());
        assert!(check_flag("-handle_bus").is_err());
        assert!(check_flag("corpus").is_err());
    }

    #[test]
    fn short_inputs_print_as_hex() {
        assert_eq!(hex(b"\x00A\xff"), "0x00 0x41 0xff");
        assert_eq!(hex(b""), "");
    }
}
