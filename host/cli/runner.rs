//! What `machvm run` does: load the module, link the `"mach"` imports and WASI, set the
//! limits, run it, and turn every failure into a message a person can act on and an exit
//! status.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use machvm::fuzz::heap::GuardHeap;
use machvm::trace::{CALL_TARGET, GUARD_TARGET};
use machvm::{host, Compiled, Kernel, KernelConfig, ParamFault, TaskId, TaskPre};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use wasmtime::{
    Config, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, Val, ValType,
    WasmBacktrace,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// Exit status when the guest trapped.
pub const EXIT_TRAP: u8 = 1;
/// Exit status of a usage error (as clap's).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the module could not be loaded, linked, instantiated or called.
pub const EXIT_LOAD: u8 = 3;
/// Exit status when the guest ran out of fuel.
pub const EXIT_FUEL: u8 = 4;
/// Exit status when the guest ran past its time limit.
pub const EXIT_TIMEOUT: u8 = 5;

/// The WASI module name machvm links.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// How long a guest that is blocked in a host call when its time is up may take to come back
/// to wasm code (where the epoch stops it) before the process is stopped.
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// What to run, and how.
pub struct Options {
    /// The module file (.wasm or .wat).
    pub module: PathBuf,
    /// The export to call instead of `_start`.
    pub invoke: Option<String>,
    /// The guest's argv after the module, or the invoked export's arguments.
    pub args: Vec<String>,
    /// Preopened directories: host path, guest path.
    pub dirs: Vec<(PathBuf, String)>,
    /// Environment variables; `None` passes the host's value.
    pub envs: Vec<(String, Option<String>)>,
    /// The task's page size.
    pub page_size: u64,
    /// The memory cap in bytes.
    pub max_memory: Option<u64>,
    /// The fuel the guest may use.
    pub fuel: Option<u64>,
    /// The wall-clock time the guest may run.
    pub timeout: Option<Duration>,
    /// Print a line per Mach call on stderr.
    pub trace: bool,
    /// Enforce the page table on the guest's own memory accesses (spec §5).
    pub enforce: bool,
    /// Make page 0 inaccessible before the guest runs, as macOS's `__PAGEZERO`.
    pub pagezero: bool,
}

/// Why a run failed; each kind has its own exit status.
pub enum Failure {
    /// An option or argument cannot be used.
    Usage(String),
    /// The module could not be loaded, linked, instantiated or called.
    Load(String),
    /// The guest trapped.
    Trap(String),
    /// The guest ran out of fuel.
    Fuel(String),
    /// The guest ran past its time limit.
    Timeout(String),
}

/// Prints a failure's message on stderr and gives the process's exit status; a success
/// gives the guest's own status.
pub fn exit(result: Result<i32, Failure>) -> u8 {
    let (code, msg) = match result {
        // The status as the OS passes it on: its low byte.
        Ok(status) => return (status & 0xff) as u8,
        Err(Failure::Usage(m)) => (EXIT_USAGE, m),
        Err(Failure::Load(m)) => (EXIT_LOAD, m),
        Err(Failure::Trap(m)) => (EXIT_TRAP, m),
        Err(Failure::Fuel(m)) => (EXIT_FUEL, m),
        Err(Failure::Timeout(m)) => (EXIT_TIMEOUT, m),
    };
    say(format_args!("error: {msg}"));
    code
}

/// Writes a line on stderr. A closed or full stderr is no reason to panic: the exit status
/// still tells.
pub fn say(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A store's data: the kernel of the task, WASI's context and the memory cap.
pub struct State {
    /// The task's kernel.
    pub kernel: Kernel,
    /// WASI preview 1.
    pub wasi: WasiP1Ctx,
    /// `--max-memory`.
    pub limits: StoreLimits,
    /// The guard heap of `machvm fuzz` (unused by a module that does not import it).
    pub heap: GuardHeap,
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

/// The error's message and its causes, `outer: inner: ...`.
pub fn chain(e: &wasmtime::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Runs the module as `opts` says. `Ok` holds the exit status: 0, or the guest's own.
///
/// # Errors
///
/// Every way the run can fail, each with its message.
pub fn run(opts: &Options) -> Result<i32, Failure> {
    if opts.trace {
        install_trace_output();
    }
    let mut config = Config::new();
    // Memories that can share pages (spec §8: vm_remap), which the runner's guests may use.
    machvm::share::configure(machvm::configure(&mut config));
    config.consume_fuel(opts.fuel.is_some());
    config.epoch_interruption(opts.timeout.is_some());
    let engine = Engine::new(&config)
        .map_err(|e| Failure::Load(format!("cannot set up Wasmtime: {}", chain(&e))))?;
    let (module, wasm) = load_module(&engine, &opts.module)?;
    if opts.pagezero && !opts.enforce {
        say(format_args!(
            "warning: with --no-enforce, --pagezero keeps the Mach calls out of page 0 but the \
             guest's own loads and stores (a NULL dereference) still reach it"
        ));
    }
    if opts.pagezero {
        if let Some(what) = data_in_page_zero(&wasm, opts.page_size) {
            return Err(Failure::Load(format!(
                "--pagezero: `{}` has {what} (page 0 is its first {} bytes); link it with \
                 -Wl,--global-base=16384 to start its data after page 0",
                opts.module.display(),
                opts.page_size
            )));
        }
    }
    let kernel = Kernel::with_config(
        KernelConfig::default()
            .page_size(opts.page_size)
            .memory_limit(opts.max_memory)
            .enforce(opts.enforce),
    )
    .map_err(|e| Failure::Load(chain(&e)))?;

    let uses_wasi = module.imports().any(|i| i.module() == WASI_MODULE);
    if !uses_wasi && (!opts.dirs.is_empty() || !opts.envs.is_empty()) {
        say(format_args!(
            "warning: --dir and --env have no effect: the module does not import WASI \
             (`{WASI_MODULE}`)"
        ));
    }
    let wasi = wasi_context(opts, uses_wasi)?;
    let mut limits = StoreLimitsBuilder::new();
    if let Some(max) = opts.max_memory {
        limits = limits.memory_size(usize::try_from(max).unwrap_or(usize::MAX));
    }
    let mut store = Store::new(
        &engine,
        State {
            kernel,
            wasi,
            limits: limits.build(),
            heap: GuardHeap::default(),
        },
    );
    store.limiter(|s| &mut s.limits);
    if opts.enforce {
        machvm::install_handlers(&mut store);
    }
    if let Some(fuel) = opts.fuel {
        store
            .set_fuel(fuel)
            .map_err(|e| Failure::Load(format!("cannot set the fuel: {}", chain(&e))))?;
    }
    let mut linker = Linker::new(&engine);
    if uses_wasi {
        // Every WASI function checks the guest bytes it touches against the task's table.
        machvm::wasi::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)
            .map_err(|e| Failure::Load(format!("cannot link WASI: {}", chain(&e))))?;
    }
    // A module with no memory and no `mach` import is plain wasm: it runs without a task.
    let plain = memory_count(&module) == 0 && !module.imports().any(|i| i.module() == "mach");
    let pre = if plain {
        None
    } else {
        Some(TaskPre::new(&module).map_err(|e| {
            Failure::Load(format!(
                "cannot link `{}`: {}",
                opts.module.display(),
                chain(&e)
            ))
        })?)
    };

    // The clock starts with the guest's own code (the start function), after compilation.
    if let Some(limit) = opts.timeout {
        store.set_epoch_deadline(1);
        start_timer(&engine, limit);
    }
    let instantiated = match &pre {
        Some(pre) => pre
            .instantiate(&mut store, &linker)
            .map(|(instance, task)| (instance, Some(task))),
        None => linker
            .instantiate(&mut store, &module)
            .map(|instance| (instance, None)),
    };
    let (instance, task) = match instantiated {
        Ok(instance) => instance,
        Err(e) => return failure(e, &mut store, (&module, &wasm), opts, Stage::Instantiate),
    };
    if let (true, Some(task)) = (opts.pagezero, task) {
        pagezero(&mut store, task, opts.page_size)?;
    }

    let name = opts.invoke.as_deref().unwrap_or("_start");
    let Some(func) = instance.get_func(&mut store, name) else {
        return Err(missing_export(&module, name, opts.invoke.is_none()));
    };
    let ty = func.ty(&store);
    let params: Vec<ValType> = ty.params().collect();
    let vals = if opts.invoke.is_none() {
        if !params.is_empty() {
            return Err(Failure::Load(format!(
                "`_start` takes {} parameter(s) ({}); ARGS are the guest's argv, pass \
                 parameters with --invoke _start ARGS",
                params.len(),
                type_list(&params)
            )));
        }
        Vec::new()
    } else {
        parse_args(name, &params, &opts.args)?
    };
    // A reactor is initialised before any of its exports is called.
    if name != "_initialize" {
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            if let Err(e) = init.call(&mut store, ()) {
                return failure(e, &mut store, (&module, &wasm), opts, Stage::Call);
            }
        }
    }
    let mut results = vec![Val::I32(0); ty.results().len()];
    if let Err(e) = func.call(&mut store, &vals, &mut results) {
        return failure(e, &mut store, (&module, &wasm), opts, Stage::Call);
    }
    // A closed stdout (`| head -0`) loses the results but is not an error of the guest.
    let mut out = std::io::stdout().lock();
    for r in &results {
        let _ = writeln!(out, "{}", show_val(r));
    }
    let _ = out.flush();
    Ok(0)
}

/// Reads and compiles the module with `machvm::compile`, in both modes: the same modules
/// are accepted with enforcement on and off. Also gives the module's bytes (text parsed).
fn load_module(engine: &Engine, path: &Path) -> Result<(Compiled, Vec<u8>), Failure> {
    let wasm = read_module(path)?;
    let module = machvm::compile(engine, &wasm).map_err(|e| {
        Failure::Load(format!(
            "`{}` is not a valid WebAssembly module: {}",
            path.display(),
            chain(&e)
        ))
    })?;
    Ok((module, wasm))
}

/// The binary module in the file at `path` (.wasm, or .wat text parsed).
pub fn read_module(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Load(format!("cannot read `{}`: {e}", path.display())))?;
    let wasm = wat::parse_bytes(&bytes).map_err(|mut e| {
        e.set_path(path);
        Failure::Load(format!(
            "`{}` is not valid WebAssembly text: {e}",
            path.display()
        ))
    })?;
    Ok(wasm.into_owned())
}

/// `--pagezero`: page 0 of `task` gets no access, current and maximum, and is made
/// permanent (`host::make_permanent`), as the __PAGEZERO segment of a macOS executable, so
/// that no guest call can open it again: `vm_deallocate` leaves it allocated with no access,
/// `VM_PROT_COPY` and an overwriting `vm_allocate` answer `KERN_NO_SPACE`. A memory that has
/// no page 0 now (it starts empty, or the start function deallocated it) is refused: the
/// page would become ordinary memory when allocated or grown.
fn pagezero(store: &mut Store<State>, task: TaskId, page: u64) -> Result<(), Failure> {
    let none = machvm::abi::VM_PROT_NONE;
    let done = host::protect(&mut *store, task, 0, page, true, none)
        .and_then(|()| host::make_permanent(&mut *store, task, 0, page));
    done.map_err(|e| {
        Failure::Load(if e.code() == machvm::abi::KERN_INVALID_ADDRESS {
            "--pagezero: the task has no page 0 to protect (its memory starts empty, or its \
             start function deallocated the page)"
                .to_string()
        } else {
            format!("--pagezero: {e}")
        })
    })
}

/// What of the module's data lies in page 0 (the first `page` bytes) of memory 0: `data at
/// ADDR, in page 0` for the lowest byte an active segment at a constant offset puts there, or `data at
/// an offset that is not a constant` (an extended constant expression or a global's value,
/// not known before instantiation, so not known to be outside page 0). `None`: nothing.
fn data_in_page_zero(wasm: &[u8], page: u64) -> Option<String> {
    use wasmparser::{DataKind, Operator, Parser, Payload};
    let mut lowest: Option<u64> = None;
    let mut unknown = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(Payload::DataSection(reader)) = payload else {
            continue;
        };
        for data in reader.into_iter().flatten() {
            let DataKind::Active {
                memory_index: 0,
                offset_expr,
            } = data.kind
            else {
                continue;
            };
            let mut ops = offset_expr.get_operators_reader();
            let at = match (ops.read(), ops.read()) {
                (Ok(Operator::I32Const { value }), Ok(Operator::End)) => u64::from(value as u32),
                (Ok(Operator::I64Const { value }), Ok(Operator::End)) => value as u64,
                _ => {
                    unknown |= !data.data.is_empty();
                    continue;
                }
            };
            if !data.data.is_empty() && at < page {
                lowest = Some(lowest.map_or(at, |l| l.min(at)));
            }
        }
    }
    match (lowest, unknown) {
        (Some(at), _) => Some(format!("data at {at:#x}, in page 0")),
        (None, true) => {
            Some("data at an offset that is not a constant, which may be in page 0".to_string())
        }
        (None, false) => None,
    }
}

/// The number of memories the module imports or defines.
fn memory_count(module: &Module) -> usize {
    let imported = module
        .imports()
        .filter(|i| i.ty().memory().is_some())
        .count();
    imported + module.resources_required().num_memories as usize
}

fn wasi_context(opts: &Options, uses_wasi: bool) -> Result<WasiP1Ctx, Failure> {
    let mut b = WasiCtxBuilder::new();
    b.inherit_stdio().allow_blocking_current_thread(true);
    b.arg(opts.module.to_string_lossy());
    for a in &opts.args {
        b.arg(a);
    }
    for (name, value) in &opts.envs {
        match value {
            Some(v) => {
                b.env(name, v);
            }
            None => {
                if let Ok(v) = std::env::var(name) {
                    b.env(name, v);
                }
            }
        }
    }
    if uses_wasi {
        for (host, guest) in &opts.dirs {
            b.preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(|e| {
                    Failure::Load(format!(
                        "cannot open directory `{}` for --dir: {}",
                        host.display(),
                        chain(&e)
                    ))
                })?;
        }
    }
    Ok(b.build_p1())
}

/// Stops the guest when `limit` has passed: the epoch tick makes its wasm code trap; if it
/// is blocked in a host call instead, the process stops after a grace period.
fn start_timer(engine: &Engine, limit: Duration) {
    let engine = engine.clone();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        engine.increment_epoch();
        std::thread::sleep(TIMEOUT_GRACE);
        say(format_args!(
            "error: the guest was stopped after {limit:?} (--timeout) while it was blocked in \
             a host call"
        ));
        std::process::exit(i32::from(EXIT_TIMEOUT));
    });
}

fn type_list(types: &[ValType]) -> String {
    types
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing_export(module: &Module, name: &str, default: bool) -> Failure {
    let exports: Vec<String> = module
        .exports()
        .filter(|e| e.ty().func().is_some())
        .map(|e| e.name().to_string())
        .collect();
    let list = if exports.is_empty() {
        "none".to_string()
    } else {
        exports.join(", ")
    };
    let hint = if default {
        "; it is not a command module: name the export to call with --invoke NAME"
    } else {
        ""
    };
    Failure::Load(format!(
        "the module has no exported function `{name}` (exported functions: {list}){hint}"
    ))
}

fn parse_args(name: &str, params: &[ValType], args: &[String]) -> Result<Vec<Val>, Failure> {
    if params.len() != args.len() {
        return Err(Failure::Load(format!(
            "`{name}` takes {} argument(s) ({}), {} given",
            params.len(),
            type_list(params),
            args.len()
        )));
    }
    args.iter()
        .zip(params)
        .enumerate()
        .map(|(i, (a, t))| {
            parse_arg(a, t)
                .map_err(|m| Failure::Load(format!("argument {} of `{name}`: {m}", i + 1)))
        })
        .collect()
}

fn parse_arg(text: &str, ty: &ValType) -> Result<Val, String> {
    fn int(text: &str) -> Option<i128> {
        let (neg, t) = match text.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, text),
        };
        let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => i128::from_str_radix(h, 16).ok()?,
            None => t.parse::<i128>().ok()?,
        };
        Some(if neg { -v } else { v })
    }
    let bad = || format!("`{text}` is not a valid {ty}");
    Ok(match ty {
        ValType::I32 => {
            let v = int(text).ok_or_else(bad)?;
            if !(i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&v) {
                return Err(format!("`{text}` does not fit in an i32"));
            }
            Val::I32(v as i32)
        }
        ValType::I64 => {
            let v = int(text).ok_or_else(bad)?;
            if !(i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&v) {
                return Err(format!("`{text}` does not fit in an i64"));
            }
            Val::I64(v as i64)
        }
        ValType::F32 => Val::F32(text.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>().map_err(|_| bad())?.to_bits()),
        other => {
            return Err(format!(
                "parameters of type {other} cannot be passed from the command line"
            ))
        }
    })
}

fn show_val(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(x) => f32::from_bits(*x).to_string(),
        Val::F64(x) => f64::from_bits(*x).to_string(),
        Val::V128(x) => format!("{:#034x}", x.as_u128()),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::AnyRef(None) | Val::ExnRef(None) => {
            "null".to_string()
        }
        other => format!("{other:?}"),
    }
}

/// Where a failure happened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Instantiation, with the start function.
    Instantiate,
    /// A call of an export.
    Call,
}

/// Classifies an error of instantiation or of the call: the guest's exit, fuel, timeout, a
/// trap, or (instantiation only) a module that cannot be instantiated.
pub fn failure(
    e: wasmtime::Error,
    store: &mut Store<State>,
    (module, wasm): (&Compiled, &[u8]),
    opts: &Options,
    stage: Stage,
) -> Result<i32, Failure> {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    let bt = e.downcast_ref::<WasmBacktrace>();
    let bt_text = bt
        .map(|bt| backtrace(bt, &opts.module, module, wasm))
        .unwrap_or_default();
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return Err(Failure::Fuel(format!(
                "the guest ran out of fuel: it used all {} units given by --fuel{bt_text}",
                opts.fuel.unwrap_or(0)
            )))
        }
        Some(Trap::Interrupt) if opts.timeout.is_some() => {
            return Err(Failure::Timeout(format!(
                "the guest was stopped after {:?} (--timeout){bt_text}",
                opts.timeout.unwrap_or_default()
            )))
        }
        _ => {}
    }
    let trapped = stage == Stage::Call || e.is::<Trap>() || e.is::<ParamFault>() || bt.is_some();
    if !trapped {
        let mut msg = format!(
            "cannot instantiate `{}`: {}",
            opts.module.display(),
            chain(&e)
        );
        // machvm's link errors by variant; a module that is no task (no memory) goes through
        // Wasmtime's linker, whose error for a missing import is only a message.
        let unknown = matches!(
            e.downcast_ref::<machvm::LinkError>(),
            Some(machvm::LinkError::UnknownMachImport { .. } | machvm::LinkError::Undefined { .. })
        ) || msg.contains("unknown import");
        if unknown {
            msg.push_str(
                "; machvm provides the `mach` imports and WASI preview 1 \
                 (`wasi_snapshot_preview1`)",
            );
        }
        if let (Some(max), true) = (opts.max_memory, msg.contains("exceeds memory limits")) {
            let _ = match memory_minimum(module) {
                Some(min) => write!(
                    msg,
                    "; the module's memory starts at {min} bytes, more than --max-memory {max}"
                ),
                None => write!(msg, "; raise --max-memory ({max} bytes)"),
            };
        }
        return Err(Failure::Load(msg));
    }
    let pagezero = opts.pagezero.then_some(opts.page_size);
    Err(Failure::Trap(
        trap_message(&e, store, bt, pagezero) + &bt_text,
    ))
}

/// The initial size in bytes of the module's (first) memory.
fn memory_minimum(module: &Module) -> Option<u64> {
    module
        .imports()
        .map(|i| i.ty())
        .chain(module.exports().map(|e| e.ty()))
        .find_map(|t| {
            t.memory()
                .map(|m| m.minimum().saturating_mul(m.page_size()))
        })
}

/// `the guest trapped: KIND`, then the other causes (the faulting wasm address), and what the
/// page table says of the page of a memory fault; with `pagezero` (its size), a fault in
/// page 0 is called what it most likely is.
fn trap_message(
    e: &wasmtime::Error,
    store: &mut Store<State>,
    bt: Option<&WasmBacktrace>,
    pagezero: Option<u64>,
) -> String {
    let root = e.root_cause().to_string();
    let mut msg = format!("the guest trapped: {root}");
    // A protected page: what the table says, like EXC_BAD_ACCESS (a bulk-memory
    // instruction's BadAccess is the root cause already).
    let mut explained = match e.downcast_ref::<machvm::enforce::BadAccess>() {
        Some(_) => None,
        None => machvm::explain_trap(&mut *store, e).map(|(_, bad)| bad.to_string()),
    };
    let bt = bt.map(|b| b.to_string());
    for cause in e.chain() {
        let text = cause.to_string();
        if text == root || Some(&text) == bt.as_ref() {
            continue;
        }
        let _ = write!(msg, "\n  {text}");
        if let Some(addr) = machvm::enforce::fault_address(&text) {
            // After the faulting address, what the table says of its page.
            if let Some(info) = explained.take().or_else(|| page_info(store, addr)) {
                let _ = write!(msg, "\n  {info}");
            }
            if pagezero.is_some_and(|p| addr < p) {
                let _ = write!(
                    msg,
                    "\n  page 0 is __PAGEZERO (--pagezero): a NULL pointer was dereferenced"
                );
            }
        }
    }
    if let Some(info) = explained {
        let _ = write!(msg, "\n  {info}");
    }
    msg
}

/// What the task's page table says of the page holding `addr`.
fn page_info(store: &mut Store<State>, addr: u64) -> Option<String> {
    let task: TaskId = store.data().kernel.task_ids().next()?;
    let vm = store.data().kernel.task(task)?;
    let (page_size, limit) = (vm.page_size(), vm.map_limit());
    let page = addr / page_size * page_size;
    let size = store
        .data()
        .kernel
        .memory(task)
        .map_or(0, |m| m.data_size(&*store) as u64);
    if u128::from(addr) >= limit {
        return Some(format!(
            "page {page:#x} is outside the task's map, which ends at {limit:#x}"
        ));
    }
    let region = host::region(&mut *store, task, addr)
        .ok()
        .filter(|r| r.start <= addr);
    Some(match region {
        Some(r) => format!(
            "page {page:#x} is allocated with protection {} (maximum {})",
            r.protection, r.max_protection
        ),
        None if addr >= size => format!(
            "page {page:#x} is unallocated: it is past the end of the memory ({size:#x} bytes)"
        ),
        None => format!("page {page:#x} is unallocated"),
    })
}

/// The wasm backtrace, innermost frame first: each frame's function (with the index it has
/// in the module as written: the rewrite added imports before the defined functions) and,
/// when the module carries DWARF line tables (a `-g` build), the file and line. The rewrite
/// moved the code, so a frame's offset goes back to the module as written first
/// ([`Compiled::original_offset`]).
fn backtrace(bt: &WasmBacktrace, path: &Path, compiled: &Compiled, wasm: &[u8]) -> String {
    if bt.frames().is_empty() {
        return String::new();
    }
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let sections = DebugSections::of(wasm);
    let lines = sections.as_ref().and_then(Lines::new);
    let mut s = String::from("\nwasm backtrace:");
    for (i, frame) in bt.frames().iter().enumerate() {
        let module = frame.module().name().unwrap_or(&file);
        let func = match frame.func_name() {
            Some(n) => n.to_string(),
            // The rewrite added its imports before every defined function.
            None => format!(
                "<wasm function {}>",
                frame
                    .func_index()
                    .saturating_sub(machvm::rewrite::added_imports(frame.module()))
            ),
        };
        let _ = write!(s, "\n  {i:>3}: {module}!{func}");
        let at = frame
            .module_offset()
            .and_then(|o| compiled.original_offset(o))
            .and_then(|o| lines.as_ref()?.find(o));
        if let Some(at) = at {
            let _ = write!(s, "\n         at {at}");
        }
    }
    s
}

/// A module's `.debug_*` custom sections, and where its code section's contents start
/// (DWARF addresses in wasm count from there).
struct DebugSections<'a> {
    sections: std::collections::HashMap<&'a str, &'a [u8]>,
    code: usize,
}

impl<'a> DebugSections<'a> {
    /// `None` without a line table or a code section.
    fn of(wasm: &'a [u8]) -> Option<DebugSections<'a>> {
        let mut sections = std::collections::HashMap::new();
        let mut code = None;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload.ok()? {
                wasmparser::Payload::CodeSectionStart { range, .. } => code = Some(range.start),
                wasmparser::Payload::CustomSection(c) if c.name().starts_with(".debug_") => {
                    sections.insert(c.name(), c.data());
                }
                _ => {}
            }
        }
        sections.contains_key(".debug_line").then_some(())?;
        Some(DebugSections {
            sections,
            code: code?,
        })
    }
}

type Reader<'a> = gimli::EndianSlice<'a, gimli::LittleEndian>;

/// The DWARF line tables of a module as written. A lookup scans the line programs and
/// renders the one file it finds, with each part of its path cut at
/// [`Lines::MAX_PATH_PART`]: a module is the guest's, and its DWARF may be built to make a
/// reader allocate without bound (a long compilation directory joined to every file entry).
struct Lines<'a> {
    dwarf: gimli::Dwarf<Reader<'a>>,
    code: usize,
}

impl<'a> Lines<'a> {
    /// The most bytes of each part of a path (directory, name) shown.
    const MAX_PATH_PART: usize = 1024;

    /// `None` when the DWARF does not parse.
    fn new(debug: &DebugSections<'a>) -> Option<Lines<'a>> {
        let dwarf = gimli::Dwarf::load(|id| {
            let data = debug.sections.get(id.name()).copied().unwrap_or_default();
            Ok::<_, ()>(gimli::EndianSlice::new(data, gimli::LittleEndian))
        })
        .ok()?;
        Some(Lines {
            dwarf,
            code: debug.code,
        })
    }

    /// `file:line:column` of the instruction at `offset` of the module.
    fn find(&self, offset: usize) -> Option<String> {
        let probe = offset.checked_sub(self.code)? as u64;
        let mut units = self.dwarf.units();
        while let Ok(Some(header)) = units.next() {
            let Ok(unit) = self.dwarf.unit(header) else {
                continue;
            };
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            if let Ok(Some(at)) = self.find_in(&unit, program, probe) {
                return Some(at);
            }
        }
        None
    }

    /// The row of `program` whose address range holds `probe`, rendered.
    fn find_in(
        &self,
        unit: &gimli::Unit<Reader<'a>>,
        program: gimli::IncompleteLineProgram<Reader<'a>>,
        probe: u64,
    ) -> gimli::Result<Option<String>> {
        let mut rows = program.rows();
        // The previous row of the sequence: (address, file, line, column).
        let mut prev: Option<(u64, u64, u64, u64)> = None;
        while let Some((header, row)) = rows.next_row()? {
            if let Some((addr, file, line, column)) = prev {
                if addr <= probe && probe < row.address() {
                    return Ok(Some(self.render(unit, header, file, line, column)));
                }
            }
            prev = (!row.end_sequence()).then(|| {
                let column = match row.column() {
                    gimli::ColumnType::LeftEdge => 0,
                    gimli::ColumnType::Column(c) => c.get(),
                };
                let line = row.line().map_or(0, |l| l.get());
                (row.address(), row.file_index(), line, column)
            });
        }
        Ok(None)
    }

    /// `dir/name:line:column` of file `file` of a line program.
    fn render(
        &self,
        unit: &gimli::Unit<Reader<'a>>,
        header: &gimli::LineProgramHeader<Reader<'a>>,
        file: u64,
        line: u64,
        column: u64,
    ) -> String {
        let text = |r: Reader<'a>| {
            let bytes = r.slice();
            String::from_utf8_lossy(&bytes[..bytes.len().min(Self::MAX_PATH_PART)]).into_owned()
        };
        let attr = |v| self.dwarf.attr_string(unit, v).ok().map(text);
        let mut path = String::new();
        if let Some(f) = header.file(file) {
            let name = attr(f.path_name()).unwrap_or_default();
            if !name.starts_with('/') {
                let dir = f.directory(header).and_then(attr).unwrap_or_default();
                if !dir.starts_with('/') {
                    if let Some(comp) = unit.comp_dir.map(text) {
                        path.push_str(&comp);
                        path.push('/');
                    }
                }
                if !dir.is_empty() {
                    path.push_str(&dir);
                    path.push('/');
                }
            }
            path.push_str(&name);
        }
        let mut s = if path.is_empty() {
            "?".to_string()
        } else {
            path
        };
        if line > 0 {
            let _ = write!(s, ":{line}");
            if column > 0 {
                let _ = write!(s, ":{column}");
            }
        }
        s
    }
}

/// `--trace`: the call and guard events of machvm, one line each, on stderr.
fn install_trace_output() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter = Targets::new()
        .with_target(CALL_TARGET, Level::DEBUG)
        .with_target(GUARD_TARGET, Level::TRACE);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(TraceFormat)
        .with_filter(filter);
    // Fails only when a subscriber is already set, and none is.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
}

/// Call events as their message alone (`vm_copy(...) = KERN_SUCCESS`); other events as
/// `target: message (field=value, ...)`.
struct TraceFormat;

impl<S, N> FormatEvent<S, N> for TraceFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        if meta.target() == CALL_TARGET {
            return writeln!(w, "{}", fields.message);
        }
        write!(w, "{}: {}", meta.target(), fields.message)?;
        if !fields.others.is_empty() {
            write!(w, " ({})", fields.others.join(", "))?;
        }
        writeln!(w)
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others.push(format!("{}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.others.push(format!("{}={value:?}", field.name()));
        }
    }
}
