//! Any module run as a task, with fuel and a memory limit: the `guests` fuzz target gives
//! it `wasm-smith` modules that import the `"mach"` functions and (with the `wasi` feature)
//! WASI preview 1's. Traps, link and instantiation errors are normal answers; a host panic,
//! abort or crash is a finding, and so is, after any export call,
//! - a page table that contradicts its memory (a page allocated past the memory's end);
//! - a changed byte in a page that the table allocated without `VM_PROT_WRITE` for the whole
//!   call (spec §5 for the guest's own stores, §6 for WASI and machvm's calls).
//!
//! Before each export call the host protects pages chosen by a [`HostPlan`] (read-only or
//! inaccessible) with [`crate::host::protect`], and the call's arguments are drawn to point
//! into and around the protected pages, so that `"mach"` and WASI calls get pointers there.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use arbitrary::Arbitrary;
use wasmtime::{
    CallHook, Config, Engine, Linker, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder, Val,
    ValType,
};

use crate::abi::Import;
use crate::abi::Width;
use crate::abi::{VM_PROT_NONE, VM_PROT_READ, VM_PROT_WRITE};
use crate::embed::kernel::{Kernel, KernelConfig};
use crate::embed::TaskPre;
use crate::table::Run;
use crate::vm::TaskId;
use crate::Compiled;

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
    /// [`KernelConfig::enforce`]: the guest's own accesses to protected pages trap. The
    /// oracle on protected bytes needs it (without it the guest's own stores may change
    /// any page), and is skipped without it.
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

/// Pages the host protects before one export call: bit `i` names page `i` modulo the
/// memory's pages (so that a named page always exists). A page in `none` becomes
/// `VM_PROT_NONE`, else one in `read` becomes `VM_PROT_READ`; the others keep what they
/// have. When both are 0, page 1 becomes read-only and page 2 inaccessible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Arbitrary)]
pub struct Protections {
    /// Pages made read-only.
    pub read: u16,
    /// Pages made inaccessible.
    pub none: u16,
}

/// An argument of an export call, resolved against the page size, the memory's size and the
/// pages the table allocates without WRITE when the call is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub enum Arg {
    /// 0.
    Zero,
    /// Inside the `k`-th protected page (modulo their number; page `k` when there is none),
    /// `offset` bytes in (modulo the page size).
    InProtected {
        /// Which page.
        k: u8,
        /// Where in it.
        offset: u16,
    },
    /// The start (`k` even) or end (`k` odd) of the `k / 2`-th protected page, `+ delta`:
    /// ranges that straddle its edges.
    ProtectedEdge {
        /// Which page and which edge.
        k: u8,
        /// Bytes added.
        delta: i8,
    },
    /// `(n % 32) × P + delta`.
    Pages {
        /// Pages.
        n: u8,
        /// Bytes added.
        delta: i16,
    },
    /// The memory's size `+ delta`.
    MemEnd {
        /// Bytes added.
        delta: i16,
    },
    /// A small value (a length, a count, a file descriptor).
    Small(u8),
    /// Any value.
    Raw(u64),
}

impl Arg {
    fn resolve(self, p: u64, mem: u64, protected: &[u64]) -> u64 {
        let page = |k: u8| match protected.len() {
            0 => u64::from(k),
            n => protected[usize::from(k) % n],
        };
        match self {
            Arg::Zero => 0,
            Arg::InProtected { k, offset } => page(k) * p + u64::from(offset) % p,
            Arg::ProtectedEdge { k, delta } => {
                ((page(k / 2) + u64::from(k & 1)) * p).wrapping_add_signed(delta.into())
            }
            Arg::Pages { n, delta } => (u64::from(n % 32) * p).wrapping_add_signed(delta.into()),
            Arg::MemEnd { delta } => mem.wrapping_add_signed(delta.into()),
            Arg::Small(v) => v.into(),
            Arg::Raw(v) => v,
        }
    }
}

/// What the host does around a guest's export calls: drawn from the fuzz input, apart from
/// the module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Arbitrary)]
pub struct HostPlan {
    /// The protections set before each export call, in turn (cycled; none: the default of
    /// [`Protections`]).
    pub protections: Vec<Protections>,
    /// The arguments of the export calls, drawn in turn (cycled; none: zeros).
    pub args: Vec<Arg>,
    /// Before the first call, the host writes at the start of each of the first 16 pages an
    /// iovec array naming ranges of the next pages (with lengths of 16 bytes to 2 pages),
    /// so that WASI's `fd_read` / `fd_write` find buffers in protected pages.
    pub bait: bool,
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
    /// How many WASI preview 1 functions it imports.
    pub wasi_imports: usize,
    /// It instantiated (its start function, if any, returned).
    pub instantiated: bool,
    /// Export calls made.
    pub calls: usize,
    /// Export calls that trapped (fuel, a fault, a parameter fault, ...).
    pub traps: usize,
    /// Host functions (`"mach"` or WASI) the guest called, over all export calls.
    pub host_calls: usize,
    /// Export calls that called at least one host function.
    pub calls_with_host_calls: usize,
    /// Export calls after which the protected bytes were compared (the table stayed as it
    /// was through the call, and there were such pages).
    pub checked_calls: usize,
}

/// The watch over a task's table during one export call, kept in the store's data and
/// updated by its call hook after every host function.
#[derive(Default)]
struct Watch {
    /// The task watched, while an export call runs.
    task: Option<TaskId>,
    /// The task's table runs when the call started.
    runs: Vec<Run>,
    /// Some host function returned with the table different from `runs`.
    changed: bool,
    /// Host functions called during the call.
    host_calls: usize,
}

struct State {
    kernel: Kernel,
    limits: StoreLimits,
    watch: Watch,
    #[cfg(feature = "wasi")]
    wasi: wasmtime_wasi::p1::WasiP1Ctx,
}

impl crate::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

/// After each host function: notes whether the watched table moved away from its state
/// at the start of the call. The guest's own code runs only between host functions, so a
/// call with no such note ran all its guest code under the starting table.
fn watch_hook(mut cx: StoreContextMut<'_, State>, hook: CallHook) -> wasmtime::Result<()> {
    let s = cx.data_mut();
    match hook {
        CallHook::CallingHost => s.watch.host_calls += 1,
        CallHook::ReturningFromHost => {
            if let Some(t) = s.watch.task {
                let same = s
                    .kernel
                    .task(t)
                    .is_some_and(|vm| vm.table().runs().eq(s.watch.runs.iter().copied()));
                s.watch.changed |= !same;
            }
        }
        CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
    }
    Ok(())
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

/// The linker of guest runs: WASI preview 1 through [`crate::wasi`] (with the `wasi`
/// feature), nothing else; the `"mach"` imports come from [`TaskPre`]. Made once per process.
fn linker() -> &'static Linker<State> {
    static LINKER: OnceLock<Linker<State>> = OnceLock::new();
    LINKER.get_or_init(|| {
        #[allow(unused_mut)]
        let mut linker = Linker::new(engine());
        #[cfg(feature = "wasi")]
        crate::wasi::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)
            .expect("WASI links into an empty linker");
        linker
    })
}

/// The WASI context of a guest: stdin holds a few bytes, stdout and stderr are in memory,
/// two arguments and two environment variables, no preopened directory.
#[cfg(feature = "wasi")]
fn wasi_ctx() -> wasmtime_wasi::p1::WasiP1Ctx {
    use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
    wasmtime_wasi::WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(&b"stdin bytes for the guest\n"[..]))
        .stdout(MemoryOutputPipe::new(1 << 16))
        .stderr(MemoryOutputPipe::new(1 << 16))
        .args(&["guest", "--flag"])
        .env("HOME", "/home/guest")
        .env("MACHVM", "1")
        .build_p1()
}

/// Modules compiled lately, by their bytes: inputs that differ only in the host's plan run
/// the same module, and compiling dominates a run.
fn compiled(wasm: &[u8]) -> Option<Compiled> {
    const KEEP: usize = 16;
    static CACHE: Mutex<VecDeque<(Vec<u8>, Option<Compiled>)>> = Mutex::new(VecDeque::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = cache.iter().position(|(w, _)| w == wasm) {
        let hit = cache.remove(i).expect("found above");
        let module = hit.1.clone();
        cache.push_front(hit);
        return module;
    }
    let module = crate::compile(engine(), wasm).ok();
    cache.truncate(KEEP - 1);
    cache.push_front((wasm.to_vec(), module.clone()));
    module
}

/// The `(import ...)` lines of every `"mach"` function with the signature spec §3 gives for
/// a memory of width `w`.
fn mach_import_lines(w: Width) -> String {
    let mut wat = String::new();
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
    wat
}

/// WASI preview 1's functions that touch guest memory or a descriptor, with their wasm
/// signatures (`proc_exit`, which ends every call that reaches it, is left out).
pub const WASI_IMPORTS: &[(&str, &str)] = &[
    ("args_get", "i32 i32"),
    ("args_sizes_get", "i32 i32"),
    ("environ_get", "i32 i32"),
    ("environ_sizes_get", "i32 i32"),
    ("clock_res_get", "i32 i32"),
    ("clock_time_get", "i32 i64 i32"),
    ("fd_close", "i32"),
    ("fd_fdstat_get", "i32 i32"),
    ("fd_fdstat_set_flags", "i32 i32"),
    ("fd_filestat_get", "i32 i32"),
    ("fd_pread", "i32 i32 i32 i64 i32"),
    ("fd_prestat_get", "i32 i32"),
    ("fd_prestat_dir_name", "i32 i32 i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32"),
    ("fd_read", "i32 i32 i32 i32"),
    ("fd_readdir", "i32 i32 i32 i64 i32"),
    ("fd_seek", "i32 i64 i32 i32"),
    ("fd_tell", "i32 i32"),
    ("fd_write", "i32 i32 i32 i32"),
    ("path_filestat_get", "i32 i32 i32 i32 i32"),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
    ("path_readlink", "i32 i32 i32 i32 i32 i32"),
    ("path_create_directory", "i32 i32 i32"),
    ("path_unlink_file", "i32 i32 i32"),
    ("poll_oneoff", "i32 i32 i32 i32"),
    ("random_get", "i32 i32"),
    ("sched_yield", ""),
    ("sock_recv", "i32 i32 i32 i32 i32 i32"),
    ("sock_send", "i32 i32 i32 i32 i32"),
];

/// A module that imports every `"mach"` function with the signature spec §3 gives for a
/// memory of width `w`, and nothing else: give it to `wasm-smith` as its available imports.
pub fn mach_imports_module(w: Width) -> Vec<u8> {
    imports_module(w, false).to_vec()
}

/// As [`mach_imports_module`], plus (when `wasi`) the functions of [`WASI_IMPORTS`] from
/// module `wasi_snapshot_preview1`, which [`run_guest`] links (with the `wasi` feature).
/// Made once per process for each width and choice.
pub fn imports_module(w: Width, wasi: bool) -> &'static [u8] {
    static MODULES: [[OnceLock<Vec<u8>>; 2]; 2] = [
        [OnceLock::new(), OnceLock::new()],
        [OnceLock::new(), OnceLock::new()],
    ];
    MODULES[usize::from(w == Width::W64)][usize::from(wasi)].get_or_init(|| make_imports(w, wasi))
}

fn make_imports(w: Width, wasi: bool) -> Vec<u8> {
    let mut wat = String::from("(module\n");
    wat.push_str(&mach_import_lines(w));
    if wasi {
        for (name, params) in WASI_IMPORTS {
            wat.push_str(&format!(
                "  (import \"wasi_snapshot_preview1\" \"{name}\" (func (param {params}) (result i32)))\n"
            ));
        }
    }
    wat.push(')');
    wat::parse_str(&wat).expect("the import module is valid")
}

/// `wasm` with its first memory export renamed `memory`, the name WASI looks for (a
/// `wasm-smith` module names its exports at random). `None` when the module does not parse,
/// exports no memory, or exports something else as `memory`.
pub fn name_memory_export(wasm: &[u8]) -> Option<Vec<u8>> {
    use wasmparser::{ExternalKind, Parser, Payload};
    let mut out = wasm_encoder::Module::new();
    let mut renamed = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.ok()?;
        if let Payload::ExportSection(reader) = &payload {
            let mut section = wasm_encoder::ExportSection::new();
            for export in reader.clone() {
                let e = export.ok()?;
                let name = if e.kind == ExternalKind::Memory && !renamed {
                    renamed = true;
                    "memory"
                } else if e.name == "memory" {
                    return None;
                } else {
                    e.name
                };
                section.export(name, e.kind.into(), e.index);
            }
            out.section(&section);
        } else if let Some((id, range)) = payload.as_section() {
            out.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    renamed.then(|| out.finish())
}

/// The task's page table agrees with its memory: no page at or past the memory's size is
/// allocated (spec §1).
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

/// The bytes of the pages a task's table allocates without WRITE, below the memory's end:
/// what no export call may change while the table stays as it is.
#[derive(Default)]
struct Frozen {
    /// Byte ranges `[start, end)` of the memory, one per run.
    ranges: Vec<(u64, u64, Run)>,
    /// Their bytes, one range after the other.
    bytes: Vec<u8>,
}

impl Frozen {
    /// Records the ranges and reads their bytes (into the buffers it already has).
    fn take(&mut self, store: &Store<State>, task: TaskId) {
        self.ranges.clear();
        self.bytes.clear();
        let kernel = &store.data().kernel;
        let (Some(vm), Some(memory)) = (kernel.task(task), kernel.memory(task)) else {
            return;
        };
        let p = vm.page_size();
        let size = memory.data_size(store) as u64;
        for run in vm.table().runs() {
            let (s, e) = (
                run.start.saturating_mul(p),
                run.end.saturating_mul(p).min(size),
            );
            if !run.attrs.cur.intersects(VM_PROT_WRITE) && s < e {
                self.ranges.push((s, e, run));
            }
        }
        let base = memory.data_ptr(store) as u64;
        for &(s, e, _) in &self.ranges {
            super::read_process(&mut self.bytes, base + s, (e - s) as usize);
        }
    }

    /// The first byte that differs from `before`, read now: its address, the run it is in,
    /// the old and new value.
    fn first_change(
        &mut self,
        before: &Frozen,
        store: &Store<State>,
        task: TaskId,
    ) -> Option<String> {
        let memory = store.data().kernel.memory(task)?;
        let base = memory.data_ptr(store) as u64;
        self.bytes.clear();
        for &(s, e, _) in &before.ranges {
            super::read_process(&mut self.bytes, base + s, (e - s) as usize);
        }
        if self.bytes == before.bytes {
            return None;
        }
        let mut at = 0;
        for &(s, e, run) in &before.ranges {
            let n = (e - s) as usize;
            let (old, new) = (&before.bytes[at..at + n], &self.bytes[at..at + n]);
            if let Some(k) = (0..n).find(|&k| old[k] != new[k]) {
                return Some(format!(
                    "byte {:#x} changed from {:#04x} to {:#04x}, in pages {:#x}..{:#x} allocated \
                     with {:?} from before the call to after it",
                    s + k as u64,
                    old[k],
                    new[k],
                    run.start,
                    run.end,
                    run.attrs
                ));
            }
            at += n;
        }
        None
    }
}

/// The pages the task's table allocates without WRITE below the memory's end, at most 64
/// (the targets of the [`Arg`]s).
fn protected_pages(store: &Store<State>, task: TaskId) -> Vec<u64> {
    let kernel = &store.data().kernel;
    let (Some(vm), Some(memory)) = (kernel.task(task), kernel.memory(task)) else {
        return Vec::new();
    };
    let pages = memory.data_size(store) as u64 / vm.page_size();
    vm.table()
        .runs()
        .filter(|r| !r.attrs.cur.intersects(VM_PROT_WRITE))
        .flat_map(|r| r.start..r.end.min(pages))
        .take(64)
        .collect()
}

/// Sets the protections `prot` before an export call, with the host API: errors (a page
/// the guest deallocated, or whose maximum it lowered) are normal answers.
fn protect(store: &mut Store<State>, task: TaskId, prot: Protections) {
    let Some(vm) = store.data().kernel.task(task) else {
        return;
    };
    let p = vm.page_size();
    let Some(memory) = store.data().kernel.memory(task) else {
        return;
    };
    let pages = memory.data_size(&*store) as u64 / p;
    if pages == 0 {
        return;
    }
    let (read, none) = match prot {
        Protections { read: 0, none: 0 } => (1 << 1, 1 << 2),
        Protections { read, none } => (read, none),
    };
    for bit in 0..16u16 {
        let set = if none & (1 << bit) != 0 {
            VM_PROT_NONE
        } else if read & (1 << bit) != 0 {
            VM_PROT_READ
        } else {
            continue;
        };
        let page = u64::from(bit) % pages;
        let _ = crate::host::protect(&mut *store, task, page * p, p, false, set);
    }
}

/// Writes the iovec arrays of [`HostPlan::bait`]: at the start of each of the first 16
/// pages, four (address, length) entries naming ranges in and across the next pages.
fn bait(store: &mut Store<State>, task: TaskId) {
    let Some(vm) = store.data().kernel.task(task) else {
        return;
    };
    let p = vm.page_size();
    let Some(memory) = store.data().kernel.memory(task) else {
        return;
    };
    let size = memory.data_size(&*store) as u64;
    for page in 0..16u64.min(size / p) {
        let next = (page + 1) * p;
        let entries: [(u64, u64); 4] = [(next, 16), (next - 8, 16), (next + 64, p), (next, 2 * p)];
        let mut bytes = Vec::with_capacity(32);
        for (addr, len) in entries {
            bytes.extend_from_slice(&(addr as u32).to_le_bytes());
            bytes.extend_from_slice(&(len as u32).to_le_bytes());
        }
        let _ = crate::host::write_bytes(&mut *store, task, page * p, &bytes);
    }
}

/// Runs `wasm` as a task: compiles it with [`crate::compile`] (its first memory export
/// renamed `memory`, see [`name_memory_export`]), links the `"mach"` imports and, with the
/// `wasi` feature, WASI preview 1 through [`crate::wasi`] (every other import is left
/// unresolved, so modules that need one fail to instantiate), instantiates it, then calls
/// each exported function in turn (up to `limits.max_calls` calls), each with `limits.fuel`
/// fuel. Before each call the host sets the protections of `plan`, and the call's arguments
/// are `plan`'s.
///
/// # Panics
///
/// On a finding: when the page table contradicts the memory after a call, when a byte of a
/// page that the table kept without WRITE through a call changed in it (with enforcement),
/// or when the host itself panics (that panic passes through).
pub fn run_guest(wasm: &[u8], limits: &GuestLimits, plan: &HostPlan) -> GuestReport {
    let mut report = GuestReport::default();
    let renamed = name_memory_export(wasm);
    let Some(module) = compiled(renamed.as_deref().unwrap_or(wasm)) else {
        return report;
    };
    report.compiled = true;
    let Ok(pre) = TaskPre::new(&module) else {
        return report;
    };
    report.prepared = true;
    report.mach_imports = module.imports().filter(|i| i.module() == "mach").count();
    report.wasi_imports = module
        .imports()
        .filter(|i| i.module() == "wasi_snapshot_preview1")
        .count();
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
        watch: Watch::default(),
        #[cfg(feature = "wasi")]
        wasi: wasi_ctx(),
    };
    let mut store = Store::new(engine(), state);
    store.limiter(|s| &mut s.limits);
    // As an embedder with foreign imports would (WASI, ...): machvm's signal handler.
    crate::install_handlers(&mut store);
    store.call_hook(watch_hook);
    store.set_fuel(limits.fuel).expect("fuel is enabled");
    let Ok((instance, task)) = pre.instantiate(&mut store, linker()) else {
        return report;
    };
    report.instantiated = true;
    if let Err(e) = check_table(&store, task) {
        panic!("after instantiation: {e}");
    }
    if plan.bait {
        bait(&mut store, task);
    }
    let funcs: Vec<_> = instance
        .exports(&mut store)
        .filter_map(|e| e.into_func())
        .collect();
    let (mut before, mut after) = (Frozen::default(), Frozen::default());
    let mut args = plan.args.iter().copied().cycle();
    let mut params = Vec::new();
    let mut results = Vec::new();
    for (i, f) in funcs.into_iter().cycle().take(limits.max_calls).enumerate() {
        let prot = match plan.protections.len() {
            0 => Protections::default(),
            n => plan.protections[i % n],
        };
        protect(&mut store, task, prot);
        let p = limits.page_size;
        let mem = store
            .data()
            .kernel
            .memory(task)
            .map_or(0, |m| m.data_size(&store) as u64);
        let protected = protected_pages(&store, task);
        let ty = f.ty(&store);
        params.clear();
        for t in ty.params() {
            let v = match plan.args.is_empty() {
                true => 0,
                false => args.next().map_or(0, |a| a.resolve(p, mem, &protected)),
            };
            params.push(value(&t, v));
        }
        results.clear();
        results.extend(ty.results().map(|t| value(&t, 0)));
        before.take(&store, task);
        let State {
            kernel: k, watch, ..
        } = store.data_mut();
        watch.changed = false;
        watch.host_calls = 0;
        watch.task = Some(task);
        watch.runs.clear();
        if let Some(vm) = k.task(task) {
            watch.runs.extend(vm.table().runs());
        }
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        report.calls += 1;
        if f.call(&mut store, &params, &mut results).is_err() {
            report.traps += 1;
        }
        let watch = &mut store.data_mut().watch;
        watch.task = None;
        report.host_calls += watch.host_calls;
        report.calls_with_host_calls += usize::from(watch.host_calls > 0);
        let changed = watch.changed;
        if let Err(e) = check_table(&store, task) {
            panic!("after call {}: {e}", report.calls);
        }
        let same_table = !changed
            && store.data().kernel.task(task).is_some_and(|vm| {
                vm.table()
                    .runs()
                    .eq(store.data().watch.runs.iter().copied())
            });
        if limits.enforce && same_table && !before.ranges.is_empty() {
            report.checked_calls += 1;
            if let Some(e) = after.first_change(&before, &store, task) {
                panic!(
                    "after call {} (params {params:x?}): the table stayed as it was through the \
                     call, yet {e}; table: {:?}",
                    report.calls,
                    store.data().watch.runs
                );
            }
        }
    }
    report
}

/// A value of type `t` made from `bits` (null for references).
fn value(t: &ValType, bits: u64) -> Val {
    match t {
        ValType::I32 => Val::I32(bits as u32 as i32),
        ValType::I64 => Val::I64(bits as i64),
        ValType::F32 => Val::F32(bits as u32),
        ValType::F64 => Val::F64(bits),
        ValType::V128 => Val::V128(u128::from(bits).into()),
        ValType::Ref(r) => Val::null_ref(r.heap_type()),
    }
}

#[cfg(all(test, feature = "wasi"))]
mod tests {
    use super::*;

    /// A guest that calls WASI and `vm_protect` with the pointers it is given, and one that
    /// lifts a protection, stores, and puts the protection back.
    const GUEST: &str = r#"(module
        (import "mach" "mach_task_self" (func $self (result i32)))
        (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
        (memory (export "mem") 1)
        (func (export "random") (param i32 i32) (result i32)
            (call $random (local.get 0) (local.get 1)))
        (func (export "read") (param i32 i32 i32 i32) (result i32)
            (call $read (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
        (func (export "lift_store_restore") (result i32)
            (drop (call $protect (call $self) (i32.const 4096) (i32.const 4096) (i32.const 0) (i32.const 3)))
            (i32.store8 (i32.const 4100) (i32.const 0x77))
            (call $protect (call $self) (i32.const 4096) (i32.const 4096) (i32.const 0) (i32.const 1))))"#;

    #[test]
    fn the_memory_export_is_renamed_for_wasi() {
        let wasm = wat::parse_str(GUEST).unwrap();
        let renamed = name_memory_export(&wasm).unwrap();
        let module = wasmparser::Parser::new(0)
            .parse_all(&renamed)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::ExportSection(r) => Some(r),
                _ => None,
            })
            .flat_map(|r| r.into_iter().map(|e| e.unwrap().name.to_string()))
            .collect::<Vec<_>>();
        assert_eq!(module, ["memory", "random", "read", "lift_store_restore"]);
        let clash = wat::parse_str(r#"(module (memory (export "m") 1) (func (export "memory")))"#);
        assert_eq!(name_memory_export(&clash.unwrap()), None);
    }

    #[test]
    fn pointers_into_protected_pages_are_checked_and_a_restored_table_is_not_trusted() {
        if !KernelConfig::default().enforce {
            return;
        }
        let wasm = wat::parse_str(GUEST).unwrap();
        let plan = HostPlan {
            // Page 1 read-only, page 2 inaccessible (the default), then pages 3 and 4.
            protections: vec![
                Protections::default(),
                Protections {
                    read: 1 << 3,
                    none: 1 << 4,
                },
            ],
            args: vec![
                Arg::InProtected { k: 0, offset: 8 },
                Arg::Small(64),
                Arg::ProtectedEdge { k: 3, delta: -8 },
                Arg::Small(1),
            ],
            bait: true,
        };
        let limits = GuestLimits {
            max_calls: 6,
            ..GuestLimits::default()
        };
        let report = run_guest(&wasm, &limits, &plan);
        assert!(report.instantiated, "{report:?}");
        assert_eq!((report.mach_imports, report.wasi_imports), (2, 2));
        assert_eq!(report.calls, 6);
        assert_eq!(report.calls_with_host_calls, 6);
        // random, read: one each; lift_store_restore: four.
        assert_eq!(report.host_calls, 12, "{report:?}");
        // `lift_store_restore` changes its page: its two calls are not compared, the four
        // WASI calls are.
        assert_eq!(report.checked_calls, 4, "{report:?}");
    }
}
