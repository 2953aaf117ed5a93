//! Any module run as a task, with fuel and a memory limit: the `guests` fuzz target gives
//! it `wasm-smith` modules that import the `"mach"` functions. Traps, link and
//! instantiation errors are normal answers; a host panic, abort or crash is a finding, and
//! so is a page table that contradicts its memory (checked after every export call).

use std::sync::OnceLock;

use wasmtime::{Config, Engine, Linker, Store, StoreLimits, StoreLimitsBuilder, Val, ValType};

use crate::calls::Width;
use crate::kernel::{Kernel, KernelConfig};
use crate::linker::{Import, TaskPre};
use crate::vm::TaskId;

/// Limits and settings of a guest run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestLimits {
    /// The task's page size.
    pub page_size: u64,
    /// Fuel for instantiation (the start function) and for each export call.
    pub fuel: u64,
    /// The store's memory limit in bytes (a `StoreLimits` cap, and the kernel's
    /// `memory_limit`, so that the map and the limiter agree).
    pub memory_bytes: usize,
    /// Most export calls.
    pub max_calls: usize,
    /// [`KernelConfig::enforce`]: the guest's own accesses to protected pages trap.
    pub enforce: bool,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            page_size: 4096,
            fuel: 100_000,
            memory_bytes: 4 << 20,
            max_calls: 16,
            enforce: KernelConfig::default().enforce,
        }
    }
}

/// What happened to a guest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestReport {
    /// The module compiled.
    pub compiled: bool,
    /// machvm accepted its imports and memory.
    pub prepared: bool,
    /// How many `"mach"` functions it imports.
    pub mach_imports: usize,
    /// It instantiated (its start function, if any, returned).
    pub instantiated: bool,
    /// Export calls made.
    pub calls: usize,
    /// Export calls that trapped (fuel, a fault, a parameter fault, ...).
    pub traps: usize,
}

struct State {
    kernel: Kernel,
    limits: StoreLimits,
}

fn kernel(s: &mut State) -> &mut Kernel {
    &mut s.kernel
}

/// The engine of guest runs: as [`crate::configure`] makes it (for enforcement), with fuel;
/// made once per process.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        crate::configure(&mut config).consume_fuel(true);
        Engine::new(&config).expect("the guest engine's settings are valid")
    })
}

/// A module that imports every `"mach"` function with the signature SPEC §3 gives for a
/// memory of width `w`, and nothing else: give it to `wasm-smith` as its available imports.
pub fn mach_imports_module(w: Width) -> Vec<u8> {
    let mut wat = String::from("(module\n");
    for import in Import::ALL {
        // `signature` reads "(i32, i64) -> i32".
        let sig = import.signature(w);
        let params = sig
            .trim_start_matches('(')
            .split(')')
            .next()
            .unwrap_or_default()
            .replace(',', "");
        wat.push_str(&format!(
            "  (import \"mach\" \"{}\" (func (param {params}) (result i32)))\n",
            import.name()
        ));
    }
    wat.push(')');
    wat::parse_str(&wat).expect("the import module is valid")
}

/// The task's page table agrees with its memory: no page at or past the memory's size is
/// allocated (SPEC §1).
fn check_table(store: &Store<State>, task: TaskId) -> Result<(), String> {
    let kernel = &store.data().kernel;
    let (Some(vm), Some(memory)) = (kernel.task(task), kernel.memory(task)) else {
        return Ok(());
    };
    let pages = memory.data_size(store) as u64 / vm.page_size();
    match vm.table().runs().last() {
        Some(run) if run.end > pages => Err(format!(
            "page {:#x} is allocated past the memory's {pages:#x} pages: {:?}",
            run.end - 1,
            vm.table().runs().collect::<Vec<_>>()
        )),
        _ => Ok(()),
    }
}

/// Runs `wasm` as a task: compiles it with [`crate::compile`], links the `"mach"` imports (every other import is
/// left unresolved, so modules that need one fail to instantiate), instantiates it, then
/// calls each exported function (up to `limits.max_calls` calls) with zero arguments, each
/// with `limits.fuel` fuel.
///
/// # Panics
///
/// On a finding: when the page table contradicts the memory after a call, or when the host
/// itself panics (that panic passes through).
pub fn run_guest(wasm: &[u8], limits: &GuestLimits) -> GuestReport {
    let mut report = GuestReport::default();
    let engine = engine();
    let Ok(module) = crate::compile(engine, wasm) else {
        return report;
    };
    report.compiled = true;
    let Ok(pre) = TaskPre::new(&module, kernel) else {
        return report;
    };
    report.prepared = true;
    report.mach_imports = module.imports().filter(|i| i.module() == "mach").count();
    let config = KernelConfig {
        page_size: limits.page_size,
        memory_limit: Some(limits.memory_bytes as u64),
        enforce: limits.enforce,
        ..KernelConfig::default()
    };
    let Ok(k) = Kernel::with_config(config) else {
        return report;
    };
    let state = State {
        kernel: k,
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .table_elements(10_000)
            .instances(1)
            .tables(4)
            .memories(1)
            .build(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // As an embedder with foreign imports would (WASI, ...): machvm's signal handler and
    // call hook.
    crate::install_handlers(&mut store, kernel);
    store.set_fuel(limits.fuel).expect("fuel is enabled");
    let linker = Linker::new(engine);
    let Ok((instance, task)) = pre.instantiate(&mut store, &linker) else {
        return report;
    };
    report.instantiated = true;
    if let Err(e) = check_table(&store, task) {
        panic!("after instantiation: {e}");
    }
    let funcs: Vec<_> = instance
        .exports(&mut store)
        .filter_map(|e| e.into_func())
        .collect();
    for f in funcs.into_iter().cycle().take(limits.max_calls) {
        let ty = f.ty(&store);
        let params: Vec<Val> = ty.params().map(|t| zero(&t)).collect();
        let mut results: Vec<Val> = ty.results().map(|t| zero(&t)).collect();
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        report.calls += 1;
        if f.call(&mut store, &params, &mut results).is_err() {
            report.traps += 1;
        }
        if let Err(e) = check_table(&store, task) {
            panic!("after call {}: {e}", report.calls);
        }
    }
    report
}

/// A zero (or null) value of type `t`.
fn zero(t: &ValType) -> Val {
    match t {
        ValType::I32 => Val::I32(0),
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(0),
        ValType::F64 => Val::F64(0),
        ValType::V128 => Val::V128(0u128.into()),
        ValType::Ref(r) => Val::null_ref(r.heap_type()),
    }
}
