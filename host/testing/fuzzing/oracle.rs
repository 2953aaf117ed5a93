//! The differential oracle: the real implementation through wasm against the model.

use std::fmt;

use crate::abi::{Call, KernReturn, MachPort, Outcome, PageAttrs, Width};
use crate::abi::{
    TASK_VM_INFO_COUNT, VM_FLAGS_ANYWHERE, VM_FLAGS_OVERWRITE, VM_PROT_READ, VM_PROT_WRITE,
};
use crate::embed::kernel::KernelConfig;
use crate::testing::harness::Harness;
use crate::testing::model::Model;
use crate::vm::WASM_PAGE;

/// The most bytes memory entries hold together in a differential (both sides): enough for
/// every size the scenarios draw but the huge ones, which the model would hold in its own
/// memory (it keeps an entry's bytes).
const ENTRY_LIMIT: u64 = 16 << 20;

/// One task of a [`Setup`]: a forwarding guest with its own memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskSpec {
    /// The memory's width.
    pub width: Width,
    /// Initial size, in wasm pages.
    pub initial: u64,
    /// Declared maximum, in wasm pages (at least `initial`), if any.
    pub maximum: Option<u64>,
}

/// The configuration of a differential run: the kernel's settings and its tasks.
///
/// Keep memories small (a few MiB at most): [`Differential::apply`] compares every task's
/// whole memory after every step, and every run ends with such a comparison.
/// A 32-bit memory without a maximum has a 4 GiB map: give it a `memory_limit`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Setup {
    /// The page size `P` of every task (4096 or 16384).
    pub page_size: u64,
    /// [`KernelConfig::memory64_map_limit`]: the map of a 64-bit memory without a maximum.
    pub memory64_map_limit: u64,
    /// [`KernelConfig::memory_limit`]: lowers every task's map (rounded down to 64 KiB).
    pub memory_limit: Option<u64>,
    /// [`KernelConfig::enforce`]: the table is mirrored in hardware page protection.
    pub enforce: bool,
    /// [`KernelConfig::copy_in_wasm`]: copies inside the windows are served in wasm.
    pub copy_in_wasm: bool,
    /// The tasks' memories are backed memories ([`crate::share::backing`]), not Wasmtime's.
    pub backed: bool,
    /// The tasks, guests `0, 1, ...` of the harness and tasks `0, 1, ...` of the model.
    pub tasks: Vec<TaskSpec>,
}

impl Setup {
    /// One task of the given width, with `initial` and `maximum` wasm pages, page size `P`.
    pub fn single(page_size: u64, width: Width, initial: u64, maximum: Option<u64>) -> Setup {
        Setup {
            page_size,
            memory64_map_limit: 1 << 40,
            memory_limit: None,
            enforce: KernelConfig::default().enforce,
            copy_in_wasm: true,
            backed: false,
            tasks: vec![TaskSpec {
                width,
                initial,
                maximum,
            }],
        }
    }

    /// The kernel settings of the harness.
    pub fn kernel_config(&self) -> KernelConfig {
        KernelConfig {
            page_size: self.page_size,
            memory64_map_limit: self.memory64_map_limit,
            memory_limit: self.memory_limit,
            enforce: self.enforce,
            copy_in_wasm: self.copy_in_wasm,
            entry_limit: ENTRY_LIMIT,
        }
    }

    /// The largest size, in bytes, that task `t`'s memory itself accepts (its declared
    /// maximum, else what Wasmtime allows for its width).
    fn declared_limit(&self, t: usize) -> u128 {
        let spec = &self.tasks[t];
        match (spec.maximum, spec.width) {
            (Some(pages), _) => u128::from(pages) * u128::from(WASM_PAGE),
            (None, Width::W32) => 1 << 32,
            (None, Width::W64) => 1 << 64,
        }
    }

    /// The map limit `L` of task `t`, as spec §1 and `docs/semantics.md` define it.
    pub fn map_limit(&self, t: usize) -> u128 {
        let spec = &self.tasks[t];
        map_limit_of(
            spec.width,
            spec.maximum,
            self.memory64_map_limit,
            self.memory_limit,
        )
    }
}

/// The map limit `L` (spec §1) of a memory of `width` that declares `maximum` wasm pages,
/// in a kernel that gives a 64-bit memory without a maximum `memory64_map_limit` bytes and
/// caps every map at `memory_limit`: the tests' own reading of the rule, written apart
/// from machvm's, so that the model it feeds does not inherit a mistake there.
pub fn map_limit_of(
    width: Width,
    maximum: Option<u64>,
    memory64_map_limit: u64,
    memory_limit: Option<u64>,
) -> u128 {
    let declared = match (maximum, width) {
        (Some(pages), _) => u128::from(pages) * u128::from(WASM_PAGE),
        (None, Width::W32) => 1 << 32,
        (None, Width::W64) => u128::from(memory64_map_limit),
    };
    match memory_limit {
        Some(limit) => declared.min(u128::from(limit / WASM_PAGE * WASM_PAGE)),
        None => declared,
    }
}

/// One step of a differential run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Guest `caller` makes `call` through its forwarder (the model: `Model::call`).
    Call {
        /// The calling guest.
        caller: usize,
        /// The call; word-sized values already truncated to the caller's width.
        call: Call,
    },
    /// Guest `task` runs its own `memory.grow` by `delta` wasm pages. Skipped when the new
    /// size passes a map that a `memory_limit` lowered below what the memory itself accepts:
    /// that limit is the embedder's to enforce (with a `ResourceLimiter`), and the harness
    /// has none.
    Grow {
        /// The growing guest.
        task: usize,
        /// Wasm pages to add (truncated to the guest's width).
        delta: u64,
    },
    /// Guest `task` stores `bytes` at `addr` (the test sets up contents and in-out
    /// parameters). Done only where every byte is in the memory on a page that the model
    /// says is allocated with WRITE, and skipped otherwise.
    Poke {
        /// The guest whose memory is written.
        task: usize,
        /// Where.
        addr: u64,
        /// What.
        bytes: Vec<u8>,
    },
    /// The embedder inserts into `from`'s namespace a send right to `to`.
    Right {
        /// The task that receives the right.
        from: usize,
        /// The task it names.
        to: usize,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Call { caller, call } => write!(f, "guest {caller}: {}", rust_call(call)),
            Op::Grow { task, delta } => write!(f, "guest {task}: memory.grow({delta:#x})"),
            Op::Poke { task, addr, bytes } => {
                write!(f, "guest {task}: store {bytes:02x?} at {addr:#x}")
            }
            Op::Right { from, to } => write!(f, "send right: into {from}, to {to}"),
        }
    }
}

/// `call` as a Rust expression with hexadecimal numbers, ready for a regression test with
/// `machvm::abi::*` in scope: `Call::Copy { form: Form::Vm, task: MachPort(0x103), src:
/// 0x1000, ... }` (protections and flags by their constants' names, see their `Debug`).
pub fn rust_call(call: &Call) -> String {
    let debug = format!("{call:x?}");
    let mut out = String::from("Call::");
    for (i, piece) in debug.split(": ").enumerate() {
        if i > 0 {
            out.push_str(": ");
            let end = piece.find([',', ' ']).unwrap_or(piece.len());
            let value = &piece[..end];
            if value.chars().all(|c| c.is_ascii_hexdigit()) {
                out.push_str("0x");
            } else if value == "Vm" || value == "MachVm" {
                out.push_str("Form::");
            }
        }
        out.push_str(piece);
    }
    out
}

/// A difference between the real implementation and the model, with the steps that led
/// to it.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// The configuration.
    pub setup: Setup,
    /// The steps run, the last one being the step after which the difference showed.
    pub ops: Vec<Op>,
    /// What differs.
    pub what: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "divergence: {}", self.what)?;
        writeln!(f, "setup: {:?}", self.setup)?;
        writeln!(f, "steps ({}):", self.ops.len())?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {i:3}: {op}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Divergence {}

/// The contents every task starts with, the same on both sides: bytes that differ from
/// page to page and from task to task, so that a copy from the wrong place shows.
fn pattern(task: usize, addr: usize) -> u8 {
    let x = (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((task as u64 + 1) * 0x51);
    (x >> 56) as u8 | 1
}

/// Calls `f` with the first `len` bytes of task `task`'s [`pattern`], computed once per
/// process and task (runs make many tasks of the same sizes).
fn patterned(task: usize, len: usize, f: impl FnOnce(&[u8])) {
    static CACHE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() <= task {
        cache.resize(task + 1, Vec::new());
    }
    let bytes = &mut cache[task];
    if bytes.len() < len {
        let from = bytes.len();
        bytes.extend((from..len).map(|a| pattern(task, a)));
    }
    f(&bytes[..len]);
}

/// How many differentials [`Differential::recycle`] keeps (per thread): enough for the
/// setups a fuzzer's recent inputs share, few enough that their memories stay small (each
/// task reserves its memory's address space and touches at most 1 MiB).
pub const POOL_SIZE: usize = 1024;

thread_local! {
    /// The differentials kept for reuse, least recently kept first, each with its setup's
    /// [`setup_key`]; boxed, so that taking one out of the middle moves pointers rather than
    /// differentials.
    static POOL: std::cell::RefCell<Vec<(u64, Box<Differential>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A hash of `setup`, to find a kept differential without comparing every setup.
fn setup_key(setup: &Setup) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(setup)
}

/// A differential run: the same tasks in a [`Harness`] (real wasm) and a [`Model`].
pub struct Differential {
    setup: Setup,
    harness: Harness,
    model: Model,
    /// Per task, page ranges the guest grew that the real table may not show yet: the
    /// kernel brings its table up to date at the task's next call, so until then a grown
    /// page may read as unallocated from outside.
    pending: Vec<Vec<(u64, u64)>>,
    ops: Vec<Op>,
    /// The outcome of each call of `ops` (the model's; the real one is the same).
    outcomes: Vec<Option<Outcome>>,
    /// The real bytes being compared, read into this buffer (kept between comparisons).
    buf: Vec<u8>,
    /// The last thing done was a [`Differential::check_state`] that found no difference.
    compared: bool,
}

impl Differential {
    /// Creates the tasks of `setup` on both sides and fills their memories with the same
    /// pattern.
    ///
    /// # Errors
    ///
    /// When the harness cannot create a task.
    ///
    /// # Panics
    ///
    /// When `setup` is one the model refuses (see [`Model::add_task`]).
    pub fn new(setup: &Setup) -> wasmtime::Result<Differential> {
        let mut harness = Harness::with_memories(setup.kernel_config(), setup.backed)?;
        for (i, t) in setup.tasks.iter().enumerate() {
            let g = harness.add_guest(t.width, t.initial, t.maximum)?;
            assert_eq!(g, i, "guest and task indices agree");
        }
        let n = setup.tasks.len();
        let mut d = Differential {
            setup: setup.clone(),
            harness,
            model: Model::new(),
            pending: vec![Vec::new(); n],
            ops: Vec::new(),
            outcomes: Vec::new(),
            buf: Vec::new(),
            compared: false,
        };
        d.start_model();
        Ok(d)
    }

    /// A fresh model of the setup's tasks, and both sides' memories filled with the same
    /// pattern (the harness's tasks are new, of their initial sizes).
    fn start_model(&mut self) {
        let setup = &self.setup;
        let mut model = Model::new();
        model.set_entry_limit(ENTRY_LIMIT);
        for (i, t) in setup.tasks.iter().enumerate() {
            let m = model.add_task(
                t.width,
                setup.page_size,
                t.initial * WASM_PAGE,
                setup.map_limit(i),
            );
            assert_eq!(m, i, "guest and model task indices agree");
            let len = model.memory(m).len();
            let harness = &mut self.harness;
            patterned(i, len, |bytes| {
                model.memory_mut(m).copy_from_slice(bytes);
                harness.memory_mut(i).copy_from_slice(bytes);
            });
            // The pattern is the starting state: nothing written yet.
            model.restart(m);
            model.set_can_share(m, setup.backed);
        }
        self.model = model;
    }

    /// A differential of `setup` in its starting state, and whether it is one that
    /// [`Differential::recycle`] kept (the tasks, their store and kernel made for an earlier
    /// run of the same setup and put back as they were made), rather than a new one.
    ///
    /// Making the harness (a store, memories, forwarder instances) is most of a short run's
    /// time; the `calls` fuzz target reuses it. A difference that a reused differential
    /// shows must also show on a new one ([`Scenario::run`](super::Scenario::run) checks),
    /// since the reset is machvm code like any other.
    ///
    /// # Errors
    ///
    /// As [`Differential::new`].
    pub fn reused(setup: &Setup) -> wasmtime::Result<(Differential, bool)> {
        let key = setup_key(setup);
        let kept = POOL.with_borrow_mut(|pool| {
            let i = pool
                .iter()
                .rposition(|(k, d)| *k == key && d.setup == *setup)?;
            Some(pool.remove(i).1)
        });
        match kept {
            Some(d) => Ok((*d, true)),
            None => Ok((Differential::new(setup)?, false)),
        }
    }

    /// Puts this differential back in its starting state and keeps it for
    /// [`Differential::reused`] (at most `POOL_SIZE` are kept, the oldest dropped first).
    /// Each task of the harness is reset (every page of its memory allocated with the
    /// default attributes, in the table and in hardware, no send rights, the copy windows
    /// closed) and so is the model's; both sides get the starting pattern back in the bytes
    /// the model wrote ([`Model::written`]) and in the pages unallocated at the end, which
    /// is every byte that can differ from it: the other bytes were just compared. The pages
    /// are then compared again (memory sizes, every page's state, the windows).
    ///
    /// Returns false, and drops the differential, when it cannot be put back: anything ran
    /// since a [`Differential::check_state`] that found no difference, or a task's memory
    /// grew (a wasm memory cannot shrink), or it stopped.
    ///
    /// # Errors
    ///
    /// When the harness was put back but differs from a new model: the reset is wrong.
    pub fn recycle(mut self) -> Result<bool, Divergence> {
        // Only bytes the model wrote are put back: every other byte of an allocated page
        // must be known to hold what the model's does, which the last comparison of all
        // bytes showed if nothing ran since.
        if !self.compared {
            return Ok(false);
        }
        let p = self.setup.page_size as usize;
        for (g, t) in self.setup.tasks.iter().enumerate() {
            let size = (t.initial * WASM_PAGE) as usize;
            if self.model.memory(g).len() != size || !self.harness.reset_guest(g, size) {
                return Ok(false);
            }
            // Every byte the model wrote, and the pages unallocated now (their bytes were
            // not compared): from the first to the last.
            let mut back = self.model.written(g);
            let model = &self.model;
            let unallocated = |i: &usize| model.page(g, *i as u64).is_none();
            if let Some(first) = (0..size / p).find(unallocated) {
                let last = (0..size / p).rev().find(unallocated).unwrap_or(first) + 1;
                back = crate::testing::model::cover(back, first * p..last * p);
            }
            // The task's pages lose their shared objects first (as the real reset gave
            // them fresh pages), so that the pattern written below shows through nothing.
            self.model.restart(g);
            if !back.is_empty() {
                let (model, harness) = (&mut self.model, &mut self.harness);
                patterned(g, size, |bytes| {
                    model.poke(g, back.start, &bytes[back.clone()]);
                    harness.memory_mut(g)[back.clone()].copy_from_slice(&bytes[back.clone()]);
                });
            }
            self.model.restart(g);
        }
        // Shared object ids count from 1 again on both sides, as in a new harness.
        if !self.harness.restart_share_ids() {
            return Ok(false);
        }
        self.model.restart_share_ids();
        self.pending.iter_mut().for_each(Vec::clear);
        self.ops.clear();
        self.outcomes.clear();
        if let Err(mut e) = self.check_pages() {
            e.what = format!("after its tasks were reset for reuse: {}", e.what);
            return Err(e);
        }
        POOL.with_borrow_mut(|pool| {
            if pool.len() >= POOL_SIZE {
                pool.remove(0);
            }
            pool.push((setup_key(&self.setup), Box::new(self)));
        });
        Ok(true)
    }

    /// The configuration.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The model's side.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The real side.
    pub fn harness(&self) -> &Harness {
        &self.harness
    }

    /// The steps run so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// For each step run so far, the outcome of its call (`None`: not a call).
    pub fn outcomes(&self) -> &[Option<Outcome>] {
        &self.outcomes
    }

    /// The task that port name `name` denotes in `caller`'s namespace, if any.
    pub fn port_target(&self, caller: usize, port: MachPort) -> Option<usize> {
        self.model.port_task(caller, port)
    }

    /// The names of `task`'s namespace that hold a right (to a task or a memory entry), in
    /// slot order.
    pub fn names(&self, task: usize) -> Vec<MachPort> {
        self.model.names(task)
    }

    fn diverged(&self, what: String) -> Divergence {
        Divergence {
            setup: self.setup.clone(),
            ops: self.ops.clone(),
            what,
        }
    }

    /// True when every byte of `[addr, addr + len)` of task `t` is inside its memory, on a
    /// page the model says is allocated with WRITE in `cur`.
    fn writable(&self, t: usize, addr: u64, len: usize) -> bool {
        let p = self.setup.page_size;
        let Some(end) = addr.checked_add(len as u64) else {
            return false;
        };
        if len == 0 || end > self.model.memory(t).len() as u64 {
            return false;
        }
        (addr / p..end.div_ceil(p)).all(|page| {
            self.model
                .page(t, page)
                .is_some_and(|a| a.cur.intersects(VM_PROT_WRITE))
        })
    }

    /// Runs one step on both sides, then compares them: everything [`Differential::check_state`]
    /// compares.
    ///
    /// # Errors
    ///
    /// The first difference: in the step's outcome, or in any task's state after it.
    pub fn apply(&mut self, op: &Op) -> Result<(), Divergence> {
        self.run_step(op)?;
        self.check_state()
    }

    /// Runs one step on both sides and compares what it may have changed: its outcome, the
    /// memory size, page states and copy windows (as [`Differential::check_state`]) of the
    /// tasks it involves (the caller and the task its port names, or the task that grows or
    /// stores), and the bytes of the allocated pages that the step may write, zero or
    /// deallocate ([`Differential::touched`]), before and after it. The other tasks and
    /// bytes are left to a later step that involves them or to a final
    /// [`Differential::check_state`]: with both, a difference is found whatever step made it
    /// (run the steps again with [`Differential::apply`] to see which).
    ///
    /// # Errors
    ///
    /// The first difference found.
    pub fn step(&mut self, op: &Op) -> Result<(), Divergence> {
        // A write through a shared page shows in every other task that maps its object:
        // while any page is shared, every step compares everything.
        if self.model.any_shared() {
            return self.apply(op);
        }
        let ranges = self.touched(op);
        let grown_from = match *op {
            Op::Grow { task, .. } => self.model.memory(task).len() as u64,
            _ => 0,
        };
        let involved = match *op {
            Op::Call { caller, ref call } => {
                let target = task_port(call).and_then(|name| self.port_target(caller, name));
                [Some(caller), target.filter(|&t| t != caller)]
            }
            Op::Grow { task, .. } | Op::Poke { task, .. } => [Some(task), None],
            Op::Right { .. } => [None, None],
        };
        for &(t, s, e) in &ranges {
            self.compare_bytes(t, s, e, "before the step")?;
        }
        self.run_step(op)?;
        if self.model.any_shared() {
            return self.check_state();
        }
        for t in involved.into_iter().flatten() {
            self.check_task_pages(t)?;
        }
        for &(t, s, e) in ranges.iter().chain(&self.produced(op, grown_from)) {
            self.compare_bytes(t, s, e, "")?;
        }
        Ok(())
    }

    /// Runs one step on both sides and compares its outcome.
    fn run_step(&mut self, op: &Op) -> Result<(), Divergence> {
        self.compared = false;
        self.ops.push(op.clone());
        self.outcomes.push(None);
        match *op {
            Op::Call { caller, ref call } => {
                let in_params = residency_in_params(call, self.harness.width(caller));
                if let Some(in_params) = in_params {
                    // What the model cannot know: which pages the host has resident. The
                    // real call reads its in-parameters first (a page read becomes
                    // resident): so does this, and then both sides see the same.
                    let size = self.harness.memory_size(caller) as u64;
                    for (ptr, len) in in_params {
                        if ptr.checked_add(len).is_some_and(|end| end <= size) {
                            self.harness.read(caller, ptr as usize, len as usize);
                        }
                    }
                    for t in 0..self.setup.tasks.len() {
                        self.model.set_resident(t, self.harness.resident(t));
                    }
                }
                let real = match self.harness.call(caller, call) {
                    Ok(o) => o,
                    Err(e) => return Err(self.diverged(format!("the real call failed: {e:#}"))),
                };
                let model = self.model.call(caller, call);
                *self.outcomes.last_mut().expect("pushed above") = Some(model.clone());
                if !real.same_as(&model) {
                    return Err(self.diverged(format!(
                        "outcome: real {}, model {}",
                        show(&real),
                        show(&model)
                    )));
                }
            }
            Op::Grow { task, delta } => {
                let delta = self.harness.width(task).truncate(delta);
                let old = self.model.memory(task).len() as u128;
                let new = old + u128::from(delta) * u128::from(WASM_PAGE);
                let (map, declared) = (self.setup.map_limit(task), self.setup.declared_limit(task));
                if new <= map || map == declared {
                    let real = match self.harness.grow(task, delta) {
                        Ok(r) => r,
                        Err(e) => return Err(self.diverged(format!("memory.grow trapped: {e:#}"))),
                    };
                    let model = self.model.grow(task, delta);
                    if real != model {
                        return Err(
                            self.diverged(format!("memory.grow: real {real:?}, model {model:?}"))
                        );
                    }
                    if model.is_some() && delta > 0 {
                        let p = u128::from(self.setup.page_size);
                        self.pending[task].push(((old / p) as u64, (new / p) as u64));
                    }
                }
            }
            Op::Poke {
                task,
                addr,
                ref bytes,
            } => {
                if self.writable(task, addr, bytes.len()) {
                    let (a, n) = (addr as usize, bytes.len());
                    self.harness.memory_mut(task)[a..a + n].copy_from_slice(bytes);
                    self.model.poke(task, a, bytes);
                }
            }
            Op::Right { from, to } => {
                let real = match self.harness.insert_send_right(from, to) {
                    Ok(n) => n,
                    Err(e) => return Err(self.diverged(format!("insert_send_right: {e:#}"))),
                };
                let model = self.model.insert_send_right(from, to);
                if real != model {
                    return Err(
                        self.diverged(format!("send right name: real {real:#x}, model {model:#x}"))
                    );
                }
            }
        }
        Ok(())
    }

    /// A little-endian word of `bytes` bytes at `addr` of the model's task `t`, if inside.
    fn model_word(&self, t: usize, addr: u64, bytes: u64) -> Option<u64> {
        let mem = self.model.memory(t);
        let (a, n) = (usize::try_from(addr).ok()?, bytes as usize);
        let word = mem.get(a..a.checked_add(n)?)?;
        Some(word.iter().rev().fold(0, |v, &b| v << 8 | u64::from(b)))
    }

    /// The byte ranges `(task, start, end)` that `op` may write, zero or deallocate, known
    /// before it runs: data and out-parameters, destinations, deallocated and overwritten
    /// ranges (a range may pass the memory's end: only allocated pages inside are compared).
    pub fn touched(&self, op: &Op) -> Vec<(usize, u64, u64)> {
        const OUT: u64 = 8;
        let span = |t: usize, a: u64, n: u64| (t, a, a.saturating_add(n));
        let (caller, call) = match op {
            Op::Poke { task, addr, bytes } => return vec![span(*task, *addr, bytes.len() as u64)],
            Op::Grow { .. } | Op::Right { .. } => return Vec::new(),
            Op::Call { caller, call } => (*caller, call),
        };
        let target = |name: MachPort| self.port_target(caller, name);
        let mut out = Vec::new();
        match *call {
            Call::TaskSelf
            | Call::HostSelf
            | Call::Protect { .. }
            | Call::BehaviorSet { .. }
            | Call::Inherit { .. }
            | Call::Msync { .. }
            | Call::Wire { .. } => {}
            Call::HostPageSize { size_ptr, .. } => out.push(span(caller, size_ptr, OUT)),
            Call::PurgableControl {
                task,
                state_ptr,
                control,
                ..
            } => {
                out.push(span(caller, state_ptr, OUT));
                // Emptying zeroes an object's pages; PURGE_ALL any task's.
                let all = control == crate::abi::VM_PURGABLE_PURGE_ALL as u32;
                for t in 0..self.setup.tasks.len() {
                    if all || Some(t) == target(task) {
                        out.push((t, 0, u64::MAX));
                    }
                }
            }
            Call::PageQuery {
                disposition_ptr,
                ref_count_ptr,
                ..
            } => {
                out.push(span(caller, disposition_ptr, OUT));
                out.push(span(caller, ref_count_ptr, OUT));
            }
            Call::PageInfo {
                info_ptr,
                count_ptr,
                ..
            } => {
                out.push(span(caller, info_ptr, 32));
                out.push(span(caller, count_ptr, OUT));
            }
            Call::PageRangeQuery {
                dispositions,
                count_ptr,
                ..
            } => {
                let aw = crate::abi::Width::W64;
                let count = self.model_word(caller, count_ptr, aw.bytes()).unwrap_or(0);
                out.push(span(caller, dispositions, count.saturating_mul(4)));
                out.push(span(caller, count_ptr, OUT));
            }
            Call::TaskInfo {
                info_ptr,
                count_ptr,
                ..
            }
            | Call::HostStatistics64 {
                info_ptr,
                count_ptr,
                ..
            } => {
                out.push(span(caller, info_ptr, 4 * u64::from(TASK_VM_INFO_COUNT)));
                out.push(span(caller, count_ptr, OUT));
            }
            Call::Remap {
                target_task,
                addr_ptr,
                cur_ptr,
                max_ptr,
                ..
            } => {
                for ptr in [addr_ptr, cur_ptr, max_ptr] {
                    out.push(span(caller, ptr, OUT));
                }
                // Anywhere in the target (the address may be found, or overwrite).
                if let Some(t) = target(target_task) {
                    out.push((t, 0, u64::MAX));
                }
            }
            Call::RegionRecurse {
                addr_ptr,
                size_ptr,
                depth_ptr,
                info_ptr,
                count_ptr,
                ..
            } => {
                for ptr in [addr_ptr, size_ptr, depth_ptr, count_ptr] {
                    out.push(span(caller, ptr, OUT));
                }
                out.push(span(caller, info_ptr, 76));
            }
            Call::MakeEntry {
                size_ptr,
                handle_ptr,
                ..
            } => {
                out.push(span(caller, size_ptr, OUT));
                out.push(span(caller, handle_ptr, OUT));
            }
            Call::Map { task, addr_ptr, .. } => {
                out.push(span(caller, addr_ptr, OUT));
                if let Some(t) = target(task) {
                    out.push((t, 0, u64::MAX));
                }
            }
            Call::PortDeallocate { .. } => {}
            Call::Allocate {
                form,
                task,
                addr_ptr,
                size,
                flags,
            } => {
                out.push(span(caller, addr_ptr, OUT));
                if let Some(t) = target(task) {
                    if !flags.intersects(VM_FLAGS_ANYWHERE) {
                        let aw = form.address_width(self.model.width(caller));
                        if let Some(hint) = self.model_word(caller, addr_ptr, aw.bytes()) {
                            out.push(span(t, hint, size));
                        }
                    } else if flags.intersects(VM_FLAGS_OVERWRITE) {
                        out.push((t, 0, u64::MAX));
                    }
                }
            }
            Call::Deallocate {
                task, addr, size, ..
            } => {
                if let Some(t) = target(task) {
                    out.push(span(t, addr, size));
                }
            }
            Call::Copy {
                task, size, dst, ..
            } => {
                if let Some(t) = target(task) {
                    out.push(span(t, dst, size));
                }
            }
            Call::Read {
                data_ptr,
                count_ptr,
                ..
            } => {
                out.push(span(caller, data_ptr, OUT));
                out.push(span(caller, count_ptr, OUT));
            }
            Call::ReadOverwrite {
                size,
                data,
                outsize_ptr,
                ..
            } => {
                out.push(span(caller, data, size));
                out.push(span(caller, outsize_ptr, OUT));
            }
            Call::Write {
                task, addr, count, ..
            } => {
                if let Some(t) = target(task) {
                    out.push(span(t, addr, count.into()));
                }
            }
            Call::Region {
                addr_ptr,
                size_ptr,
                info_ptr,
                count_ptr,
                object_name_ptr,
                ..
            }
            | Call::VmRegion {
                addr_ptr,
                size_ptr,
                info_ptr,
                count_ptr,
                object_name_ptr,
                ..
            } => {
                for ptr in [addr_ptr, size_ptr, count_ptr, object_name_ptr] {
                    out.push(span(caller, ptr, OUT));
                }
                out.push(span(caller, info_ptr, 64));
            }
        }
        out
    }

    /// The byte ranges that `op`, just run, made: the pages a `memory.grow` added (from
    /// `grown_from`, the size before), the memory an allocation or a `vm_read` made (where
    /// the model says).
    fn produced(&self, op: &Op, grown_from: u64) -> Vec<(usize, u64, u64)> {
        let success = matches!(
            self.outcomes.last(),
            Some(Some(Outcome::Kr(KernReturn::SUCCESS)))
        );
        match *op {
            Op::Grow { task, .. } => vec![(task, grown_from, u64::MAX)],
            Op::Call {
                caller,
                call:
                    Call::Allocate {
                        form,
                        task,
                        addr_ptr,
                        size,
                        ..
                    },
            } if success => {
                let aw = form.address_width(self.model.width(caller));
                match (
                    self.port_target(caller, task),
                    self.model_word(caller, addr_ptr, aw.bytes()),
                ) {
                    (Some(t), Some(a)) => vec![(t, a, a.saturating_add(size))],
                    _ => Vec::new(),
                }
            }
            Op::Call {
                caller,
                call:
                    Call::Read {
                        form,
                        size,
                        data_ptr,
                        ..
                    },
            } if success => {
                let aw = form.address_width(self.model.width(caller));
                match self.model_word(caller, data_ptr, aw.bytes()) {
                    Some(a) => vec![(caller, a, a.saturating_add(size))],
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Compares the bytes of task `t` in `[start, end)` on the pages the model holds
    /// allocated: the real ones read through `/proc/self/mem` (protections ignored).
    fn compare_bytes(
        &mut self,
        t: usize,
        start: u64,
        end: u64,
        when: &str,
    ) -> Result<(), Divergence> {
        let p = self.setup.page_size;
        let size = self.model.memory(t).len() as u64;
        let (first, last) = (start / p, end.min(size).div_ceil(p));
        let mut page = first;
        while page < last {
            if self.model.page(t, page).is_none() {
                page += 1;
                continue;
            }
            let run = page;
            while page < last && self.model.page(t, page).is_some() {
                page += 1;
            }
            let (s, e) = ((run * p) as usize, (page * p) as usize);
            let model = &self.model.memory(t)[s..e];
            // In place where the hardware lets it be read (most pages), else through
            // `/proc/self/mem`.
            let found = match self.harness.bytes_in_place(t, s, e) {
                Some(real) => first_difference(real, model),
                None => {
                    let Some(memory) = self.harness.kernel().memory(self.harness.task(t)) else {
                        return Err(self.diverged(format!("task {t}: the real memory is gone")));
                    };
                    let base = memory.data_ptr(self.harness.store()) as u64;
                    self.buf.clear();
                    super::read_process(&mut self.buf, base + s as u64, e - s);
                    first_difference(&self.buf, model)
                }
            };
            if let Some((k, real)) = found {
                let when = if when.is_empty() {
                    String::new()
                } else {
                    format!(" ({when})")
                };
                return Err(self.diverged(format!(
                    "task {t}: byte at {:#x}{when}: real {real:#04x}, model {:#04x}",
                    s + k,
                    self.model.memory(t)[s + k]
                )));
            }
        }
        Ok(())
    }

    /// Compares every task: memory size, every page's state up to the memory size, and the
    /// bytes of every page the model holds allocated (what unallocated pages hold is not
    /// part of the contract: they read as zero once allocated again).
    ///
    /// # Errors
    ///
    /// The first difference found.
    pub fn check_state(&mut self) -> Result<(), Divergence> {
        self.check_pages()?;
        for t in 0..self.setup.tasks.len() {
            self.compare_bytes(t, 0, u64::MAX, "")?;
        }
        self.compared = true;
        Ok(())
    }

    /// Compares every task's memory size, every page's state up to the memory size and its
    /// copy windows.
    fn check_pages(&mut self) -> Result<(), Divergence> {
        for t in 0..self.setup.tasks.len() {
            self.check_task_pages(t)?;
        }
        Ok(())
    }

    /// [`Differential::check_pages`] for task `t`.
    fn check_task_pages(&mut self, t: usize) -> Result<(), Divergence> {
        let p = self.setup.page_size;
        let real_size = self.harness.memory_size(t);
        let model_size = self.model.memory(t).len();
        if real_size != model_size {
            return Err(self.diverged(format!(
                "task {t}: memory size: real {real_size:#x}, model {model_size:#x}"
            )));
        }
        let pages = model_size as u64 / p;
        // The real table as segments of equal pages (one walk, not a lookup per page).
        let segments: Vec<_> = match self.harness.kernel().task(self.harness.task(t)) {
            Some(vm) => vm.table().segments_iter(0, pages).collect(),
            None => vec![(0, pages, None)],
        };
        for (start, end, real) in segments {
            for page in start..end {
                let model = self.model.page(t, page);
                if real == model {
                    continue;
                }
                let grown = self.pending[t].iter().any(|&(s, e)| (s..e).contains(&page));
                if grown && real.is_none() && model == Some(PageAttrs::DEFAULT) {
                    continue;
                }
                return Err(self.diverged(format!(
                    "task {t}: page {page:#x} (address {:#x}): real {real:?}, model {model:?}",
                    page * p
                )));
            }
        }
        self.check_windows(t)?;
        // A grown range the real table shows is in step from now on.
        let harness = &self.harness;
        self.pending[t].retain(|&(s, e)| (s..e).all(|page| harness.page(t, page).is_none()));
        Ok(())
    }

    /// Task `t`'s copy windows: the guest's globals hold what the kernel recorded, and every
    /// page inside lies in the memory and is allocated with the window's protection, as the
    /// model says (so a copy served in wasm is one the model lets succeed).
    fn check_windows(&mut self, t: usize) -> Result<(), Divergence> {
        let p = self.setup.page_size;
        let id = self.harness.task(t);
        let Some(windows) = self.harness.kernel().task(id).map(|vm| vm.windows()) else {
            return Ok(());
        };
        if let Some(wasm) = self.harness.windows_in_wasm(t) {
            if wasm != windows {
                return Err(self.diverged(format!(
                    "task {t}: copy windows: the guest holds {wasm:x?}, the kernel {windows:x?}"
                )));
            }
        }
        let size = self.model.memory(t).len() as u64;
        let below = match self.setup.tasks[t].width {
            Width::W32 => 1 << 32,
            Width::W64 => u64::MAX,
        };
        for ((lo, hi), prot) in windows.into_iter().zip([VM_PROT_READ, VM_PROT_WRITE]) {
            if lo >= hi {
                continue;
            }
            let bad_page = (lo / p..hi.div_ceil(p))
                .find(|&page| !matches!(self.model.page(t, page), Some(a) if a.cur & prot == prot));
            if hi > size || hi >= below || lo % p != 0 || bad_page.is_some() {
                return Err(self.diverged(format!(
                    "task {t}: copy window {lo:#x}..{hi:#x} (prot {prot}) is not all accessible: \
                     memory size {size:#x}, first bad page {bad_page:#x?}"
                )));
            }
        }
        Ok(())
    }
}

fn show(o: &Outcome) -> String {
    match o {
        Outcome::Kr(kr) => format!("returned {:#x} ({kr})", kr.0),
        Outcome::Port(name) => format!("returned port name {name:#x}"),
        Outcome::Trap(f) => format!("trapped: {f}"),
    }
}

/// The in-parameters `(ptr, bytes)` that `call`, made by a guest of width `gw`, reads before
/// it looks at residency (which reading them may change), for the calls that report it;
/// `None` for the others.
fn residency_in_params(call: &Call, gw: Width) -> Option<Vec<(u64, u64)>> {
    Some(match *call {
        Call::PageQuery { .. } => Vec::new(),
        Call::PageRangeQuery { count_ptr, .. } => vec![(count_ptr, 8)],
        Call::PageInfo { count_ptr, .. }
        | Call::TaskInfo { count_ptr, .. }
        | Call::HostStatistics64 { count_ptr, .. } => vec![(count_ptr, 4)],
        Call::Region {
            form,
            addr_ptr,
            count_ptr,
            ..
        } => vec![(addr_ptr, form.address_width(gw).bytes()), (count_ptr, 4)],
        Call::VmRegion {
            addr_ptr,
            count_ptr,
            ..
        } => vec![(addr_ptr, gw.bytes()), (count_ptr, 4)],
        Call::RegionRecurse {
            form,
            addr_ptr,
            depth_ptr,
            count_ptr,
            ..
        } => vec![
            (addr_ptr, form.address_width(gw).bytes()),
            (depth_ptr, 4),
            (count_ptr, 4),
        ],
        _ => return None,
    })
}

/// The task port that `call` names (its target), if it takes one.
fn task_port(call: &Call) -> Option<MachPort> {
    match *call {
        Call::TaskSelf | Call::HostSelf | Call::HostPageSize { .. } => None,
        Call::Allocate { task, .. }
        | Call::Deallocate { task, .. }
        | Call::Protect { task, .. }
        | Call::Copy { task, .. }
        | Call::Read { task, .. }
        | Call::ReadOverwrite { task, .. }
        | Call::Write { task, .. }
        | Call::Region { task, .. }
        | Call::VmRegion { task, .. }
        | Call::BehaviorSet { task, .. }
        | Call::Inherit { task, .. }
        | Call::Remap {
            target_task: task, ..
        }
        | Call::RegionRecurse { task, .. }
        | Call::MakeEntry { task, .. }
        | Call::Map { task, .. }
        | Call::PortDeallocate { task, .. }
        | Call::Msync { task, .. }
        | Call::PageQuery { task, .. }
        | Call::PageInfo { task, .. }
        | Call::PageRangeQuery { task, .. }
        | Call::TaskInfo { task, .. }
        | Call::PurgableControl { task, .. } => Some(task),
        // host_statistics64 reads every task; it changes none.
        Call::HostStatistics64 { .. } => None,
        // vm_wire's destination is the host-privileged port; its task is never reached.
        Call::Wire { .. } => None,
    }
}

/// The first index at which `real` and `model` (of the same length) differ, and the real
/// byte there.
fn first_difference(real: &[u8], model: &[u8]) -> Option<(usize, u8)> {
    if real == model {
        return None;
    }
    let k = real.iter().zip(model).position(|(a, b)| a != b)?;
    Some((k, real[k]))
}

/// Runs `ops` on a fresh [`Differential`] of `setup`.
///
/// # Errors
///
/// The first divergence.
///
/// # Panics
///
/// When the harness cannot be set up (see [`Differential::new`]).
pub fn run_ops(setup: &Setup, ops: &[Op]) -> Result<(), Divergence> {
    let mut d = Differential::new(setup).expect("the harness sets up");
    let found = ops
        .iter()
        .try_for_each(|op| d.step(op))
        .and_then(|()| d.check_state());
    match found {
        Ok(()) => Ok(()),
        Err(e) => Err(locate(setup, &e.ops).err().unwrap_or(e)),
    }
}

/// Runs `ops` with every byte compared after every step ([`Differential::apply`]): the
/// first step after which anything differs. [`run_ops`] and [`Scenario::run`](super::Scenario::run)
/// compare fewer bytes per step, and call this once they found a difference.
///
/// # Errors
///
/// The first divergence.
///
/// # Panics
///
/// When the harness cannot be set up (see [`Differential::new`]).
pub fn locate(setup: &Setup, ops: &[Op]) -> Result<(), Divergence> {
    let mut d = Differential::new(setup).expect("the harness sets up");
    for op in ops {
        d.apply(op)?;
    }
    Ok(())
}

/// Shrinks a failing sequence: removes chunks of steps, then single steps, as long as the
/// rest still diverges (not necessarily in the same way). Returns `ops` unchanged when it
/// does not fail.
pub fn minimize(setup: &Setup, ops: &[Op]) -> Vec<Op> {
    let fails = |ops: &[Op]| run_ops(setup, ops).err().map(|d| d.ops.len());
    let Some(n) = fails(ops) else {
        return ops.to_vec();
    };
    // Steps after the divergence never matter.
    let mut cur = ops[..n].to_vec();
    let mut chunk = cur.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        let mut removed = false;
        while i < cur.len() {
            let end = (i + chunk).min(cur.len());
            // The last step is where it shows: keep it.
            if end == cur.len() && i == 0 {
                break;
            }
            let mut tried = cur[..i].to_vec();
            tried.extend_from_slice(&cur[end..]);
            match fails(&tried) {
                Some(n) => {
                    tried.truncate(n);
                    cur = tried;
                    removed = true;
                }
                None => i += chunk,
            }
        }
        if chunk == 1 && !removed {
            return cur;
        }
        chunk = (chunk / 2).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{VmProt, TASK_SELF_NAME};

    /// A step prints as the Rust expression that makes it again (`machvm::abi::*` in
    /// scope), typed fields included.
    #[test]
    fn calls_print_as_rust() {
        use crate::abi::{VmFlags, TASK_SELF_NAME, VM_FLAGS_ANYWHERE, VM_PROT_READ};
        let allocate = Call::Allocate {
            form: crate::abi::Form::MachVm,
            task: TASK_SELF_NAME,
            addr_ptr: 0x100,
            size: 0x2000,
            flags: VM_FLAGS_ANYWHERE | VmFlags(0x20),
        };
        assert_eq!(
            rust_call(&allocate),
            "Call::Allocate { form: Form::MachVm, task: MachPort(0x103), addr_ptr: 0x100, \
             size: 0x2000, flags: VM_FLAGS_ANYWHERE | VmFlags(0x20) }"
        );
        let protect = Call::Protect {
            form: crate::abi::Form::Vm,
            task: MachPort(0x303),
            addr: 0x4000,
            size: 0x1000,
            set_max: 1,
            prot: VM_PROT_READ | VmProt(0x40),
        };
        assert_eq!(
            rust_call(&protect),
            "Call::Protect { form: Form::Vm, task: MachPort(0x303), addr: 0x4000, \
             size: 0x1000, set_max: 0x1, prot: VM_PROT_READ | VmProt(0x40) }"
        );
    }

    /// A byte that only the real side changed (as a bug would), at 0x2010.
    fn stray(setup: &Setup) -> (Differential, u8) {
        let mut d = Differential::new(setup).expect("the harness sets up");
        let model = d.model.memory(0)[0x2010];
        d.harness.memory_mut(0)[0x2010] ^= 0xff;
        (d, model)
    }

    #[test]
    fn a_stray_real_write_is_found_at_the_end_or_before_a_step_that_touches_it() {
        let setup = Setup::single(4096, Width::W32, 1, Some(2));
        // Steps elsewhere do not compare that page; the final comparison does.
        let (mut d, _) = stray(&setup);
        d.step(&Op::Poke {
            task: 0,
            addr: 0x100,
            bytes: vec![1, 2],
        })
        .expect("the poked page agrees");
        let e = d.check_state().expect_err("found at the end");
        assert!(e.what.contains("byte at 0x2010"), "{e}");
        // A step that would overwrite it with the model's value finds it first.
        let (mut d, model) = stray(&setup);
        let e = d
            .step(&Op::Poke {
                task: 0,
                addr: 0x2010,
                bytes: vec![model],
            })
            .expect_err("found before the step");
        assert!(e.what.contains("byte at 0x2010 (before the step)"), "{e}");
    }

    #[test]
    fn bytes_are_read_in_place_only_where_the_hardware_lets_them() {
        use crate::abi::Form::Vm;
        let mut h = Harness::with_page_size(4096).expect("sets up");
        let g = h.add_guest(Width::W32, 1, Some(2)).expect("adds");
        let protect = |h: &mut Harness, addr, prot| {
            let call = Call::Protect {
                form: Vm,
                task: TASK_SELF_NAME,
                addr,
                size: 0x1000,
                set_max: 0,
                prot,
            };
            assert_eq!(
                h.call(g, &call).expect("calls"),
                Outcome::Kr(KernReturn::SUCCESS)
            );
        };
        assert!(h.bytes_in_place(g, 0, 0x10000).is_some());
        protect(&mut h, 0x3000, VM_PROT_READ);
        protect(&mut h, 0x5000, VmProt(0));
        let enforced = crate::embed::kernel::KernelConfig::default().enforce;
        assert!(
            h.bytes_in_place(g, 0x2000, 0x5000).is_some(),
            "read-only is readable"
        );
        assert_eq!(h.bytes_in_place(g, 0x4fff, 0x5001).is_some(), !enforced);
        assert_eq!(h.bytes_in_place(g, 0x5000, 0x6000).is_some(), !enforced);
        assert!(
            h.bytes_in_place(g, 0xffff, 0x10001).is_none(),
            "past the memory"
        );
        // The guest's own grow: the table does not show the new page until the next call.
        assert_eq!(h.grow(g, 1).expect("grows"), Some(1));
        assert_eq!(h.bytes_in_place(g, 0x10000, 0x11000).is_some(), !enforced);
        protect(&mut h, 0x6000, VmProt(3));
        assert!(h.bytes_in_place(g, 0x10000, 0x11000).is_some(), "synced");
    }

    fn call(caller: usize, call: Call) -> Op {
        Op::Call { caller, call }
    }

    /// Everything one can observe of a differential's real side and model: each task's
    /// bytes (protected pages too), page states, copy windows in wasm and mappings.
    type Observed = Vec<(
        Vec<u8>,
        Vec<Option<PageAttrs>>,
        Option<[(u64, u64); 2]>,
        u64,
    )>;

    fn observe(d: &mut Differential) -> (Observed, Model) {
        let p = d.setup.page_size;
        let tasks = (0..d.setup.tasks.len())
            .map(|g| {
                let h = &mut d.harness;
                let pages = (0..h.memory_size(g) as u64 / p)
                    .map(|i| h.page(g, i))
                    .collect();
                let mappings = h.kernel().task(h.task(g)).expect("live").mappings();
                (h.memory(g), pages, h.windows_in_wasm(g), mappings)
            })
            .collect();
        (tasks, d.model.clone())
    }

    #[test]
    fn a_recycled_differential_starts_as_a_new_one() {
        recycled_is_new(true);
        recycled_is_new(false);
    }

    /// With shared pages (spec §8): the reset gives every task's shared pages fresh ones,
    /// the model's pattern then shows through nothing, and object ids count from 1 again.
    #[test]
    fn a_recycled_differential_with_shared_pages_starts_as_a_new_one() {
        use crate::abi::Form::Vm;
        let task = TaskSpec {
            width: Width::W32,
            initial: 2,
            maximum: Some(4),
        };
        let setup = Setup {
            tasks: vec![task.clone(), task],
            backed: true,
            ..Setup::single(4096, Width::W32, 2, Some(4))
        };
        let fresh = observe(&mut Differential::new(&setup).expect("sets up"));
        let (mut d, _) = Differential::reused(&setup).expect("sets up");
        let remap = |src_task, src_addr, flags| Call::Remap {
            form: Vm,
            target_task: TASK_SELF_NAME,
            addr_ptr: 0x100,
            size: 0x2000,
            mask: 0,
            flags,
            src_task: MachPort(src_task),
            src_addr,
            copy: 0,
            cur_ptr: 0x108,
            max_ptr: 0x10c,
            inheritance: 1,
        };
        let ops = [
            Op::Right { from: 0, to: 1 },
            // Task 1's pages anywhere in task 0 (in a hole, so that no memory grows), then
            // task 0's first pages over its own 0x8000 (the hint written at 0x100 first).
            call(
                0,
                Call::Deallocate {
                    form: Vm,
                    task: TASK_SELF_NAME,
                    addr: 0x10000,
                    size: 0x2000,
                },
            ),
            call(0, remap(0x303, 0x4000, 1)),
            Op::Poke {
                task: 0,
                addr: 0x100,
                bytes: 0x8000u32.to_le_bytes().to_vec(),
            },
            call(0, remap(0x103, 0, 0x4000)),
            Op::Poke {
                task: 0,
                addr: 0x8010,
                bytes: vec![7; 64],
            },
        ];
        for op in &ops {
            d.apply(op).expect("no divergence");
        }
        assert!(
            d.outcomes
                .iter()
                .flatten()
                .filter(|o| **o == Outcome::Kr(crate::abi::KERN_SUCCESS))
                .count()
                == 3,
            "{:?}",
            d.outcomes
        );
        assert!(d.model.any_shared());
        assert!(d.recycle().expect("the reset agrees with the model"));
        let (mut d, reused) = Differential::reused(&setup).expect("sets up");
        assert!(reused, "the recycled one is reused");
        assert_eq!(observe(&mut d), fresh);
        for op in &ops {
            d.apply(op).expect("no divergence after reuse");
        }
    }

    /// A memory entry's source pages get new backing at the reset, as remapped ones do: the
    /// pattern is put back in them (the `shared` fuzz target found them left zero).
    #[test]
    fn a_recycled_differential_after_a_memory_entry_starts_as_a_new_one() {
        use crate::abi::Form::Vm;
        use crate::abi::{KERN_SUCCESS, MAP_MEM_VM_SHARE};
        let setup = Setup {
            backed: true,
            ..Setup::single(4096, Width::W32, 2, Some(4))
        };
        let fresh = observe(&mut Differential::new(&setup).expect("sets up"));
        let (mut d, _) = Differential::reused(&setup).expect("sets up");
        let ops = [
            Op::Poke {
                task: 0,
                addr: 0x100,
                bytes: 0x2000u32.to_le_bytes().to_vec(),
            },
            call(
                0,
                Call::MakeEntry {
                    form: Vm,
                    task: TASK_SELF_NAME,
                    size_ptr: 0x100,
                    offset: 0x4000,
                    permission: 3 | MAP_MEM_VM_SHARE,
                    handle_ptr: 0x108,
                    parent: MachPort(0),
                },
            ),
        ];
        for op in &ops {
            d.apply(op).expect("no divergence");
        }
        assert_eq!(d.outcomes[1], Some(Outcome::Kr(KERN_SUCCESS)));
        assert!(d.recycle().expect("the reset agrees with the model"));
        let (mut d, reused) = Differential::reused(&setup).expect("sets up");
        assert!(reused, "the recycled one is reused");
        assert_eq!(observe(&mut d), fresh);
    }

    fn recycled_is_new(enforce: bool) {
        use crate::abi::Form::Vm;
        use crate::abi::{KERN_SUCCESS, MACH_SEND_INVALID_DEST};
        let task = |maximum| TaskSpec {
            width: Width::W32,
            initial: 2,
            maximum,
        };
        let setup = Setup {
            tasks: vec![task(Some(4)), task(None)],
            memory_limit: Some(4 * WASM_PAGE),
            enforce,
            ..Setup::single(4096, Width::W32, 2, Some(4))
        };
        let (mut d, reused) = Differential::reused(&setup).expect("sets up");
        assert!(!reused, "nothing was kept yet");
        let fresh = observe(&mut Differential::new(&setup).expect("sets up"));
        assert_eq!(observe(&mut d), fresh);
        // A run that changes every kind of state: rights, protections (split mappings in
        // hardware), holes, copies (open windows), stores, pokes, read-only pages at the end.
        let ops = [
            Op::Right { from: 0, to: 1 },
            call(
                0,
                Call::Protect {
                    form: Vm,
                    task: MachPort(0x303),
                    addr: 0x3000,
                    size: 0x2000,
                    set_max: 0,
                    prot: VmProt(1),
                },
            ),
            call(
                0,
                Call::Deallocate {
                    form: Vm,
                    task: TASK_SELF_NAME,
                    addr: 0x8000,
                    size: 0x3000,
                },
            ),
            call(
                0,
                Call::Copy {
                    form: Vm,
                    task: TASK_SELF_NAME,
                    src: 0x1000,
                    size: 0x1800,
                    dst: 0x14000,
                },
            ),
            call(
                1,
                Call::Write {
                    form: Vm,
                    task: MachPort(0x103),
                    addr: 0x1f000,
                    data: 0x100,
                    count: 0x800,
                },
            ),
            call(
                1,
                Call::HostPageSize {
                    host: MachPort(0x203),
                    size_ptr: 0x1fff0,
                },
            ),
            Op::Poke {
                task: 1,
                addr: 0x500,
                bytes: vec![9; 40],
            },
            call(
                0,
                Call::Protect {
                    form: Vm,
                    task: TASK_SELF_NAME,
                    addr: 0,
                    size: 0x1000,
                    set_max: 1,
                    prot: VmProt(0),
                },
            ),
        ];
        for op in &ops {
            d.step(op).expect("no divergence");
        }
        if !enforce {
            // A real write to a page the table leaves unallocated is not compared; the
            // reset puts such pages back all the same.
            d.harness.memory_mut(0)[0x8010] ^= 0xff;
        }
        assert!(d
            .outcomes
            .iter()
            .flatten()
            .any(|o| *o == Outcome::Kr(KERN_SUCCESS)));
        assert_ne!(observe(&mut d), fresh, "the run changed the state");
        // Kept only after a comparison of everything.
        let (mut probe, _) = Differential::reused(&setup).expect("sets up");
        probe.step(&ops[1]).expect("agrees");
        assert!(
            !probe.recycle().expect("no reset error"),
            "not compared since the step"
        );
        d.check_state().expect("no divergence");
        assert!(d.recycle().expect("the reset agrees with the model"));
        let (mut d, reused) = Differential::reused(&setup).expect("sets up");
        assert!(reused, "the recycled one is reused");
        assert_eq!(observe(&mut d), fresh);
        // The right is gone: the real kernel agrees with the new model's namespace.
        let name_gone = call(
            0,
            Call::Protect {
                form: Vm,
                task: MachPort(0x303),
                addr: 0,
                size: 1,
                set_max: 0,
                prot: VmProt(3),
            },
        );
        d.step(&name_gone).expect("agrees");
        assert_eq!(d.outcomes[0], Some(Outcome::Kr(MACH_SEND_INVALID_DEST)));
        // A grown memory cannot be put back.
        d.step(&Op::Grow { task: 0, delta: 1 }).expect("agrees");
        d.check_state().expect("agrees");
        assert!(!d.recycle().expect("no reset error"));
    }
}
