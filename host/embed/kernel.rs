//! The kernel: the tasks of one Wasmtime store and their port namespaces.

use std::sync::Arc;

use wasmtime::{Memory, MemoryType};

use super::state::Task;

use crate::abi::{MachPort, Width};
use crate::embed::{ConfigError, LinkError, TaskError};
use crate::enforce::{FaultRecord, Protected};
use crate::share::backing::Held;
use crate::vm::{EntryId, PortTarget, Right, TaskId, TaskVm, WASM_PAGE};

/// Settings of a [`Kernel`], applied to the tasks it creates: start from `default()` and
/// set what differs; [`Kernel::with_config`] checks them ([`KernelConfig::validate`]).
///
/// ```
/// use machvm::{ConfigError, Kernel, KernelConfig};
///
/// let config = KernelConfig::default().page_size(16384).copy_in_wasm(false);
/// assert_eq!(config.page_size, 16384);
/// let kernel = Kernel::with_config(config)?;
/// let bad = Kernel::with_config(KernelConfig::default().page_size(5000)).unwrap_err();
/// assert_eq!(bad.downcast_ref(), Some(&ConfigError::PageSize(5000)));
/// # Ok::<(), wasmtime::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelConfig {
    /// The VM page size `P` of new tasks: a power of two from 4096 to 65536 (default 4096;
    /// 16384 is Apple silicon's).
    pub page_size: u64,
    /// The map size of a 64-bit memory that declares no maximum (default 2^40, 1 TiB).
    pub memory64_map_limit: u64,
    /// The embedder's memory limit in bytes, if any (e.g. the same value as a
    /// `ResourceLimiter`'s cap): it lowers every new task's map, rounded down to 64 KiB.
    pub memory_limit: Option<u64>,
    /// Enforce the page table on the guest's own loads, stores and bulk-memory
    /// instructions (spec §5) with hardware page protection. On by default where the
    /// platform supports it (Linux). It needs an engine configured with
    /// [`crate::configure`] and modules compiled with [`crate::compile`].
    pub enforce: bool,
    /// Serve `vm_copy` / `mach_vm_copy` calls of a task's own memory, and the enforcement
    /// checks of its bulk-memory instructions, in wasm, without a host call, when the
    /// ranges lie in the copy windows the host keeps over pages its table allows (see
    /// [`crate::enforce::rewrite`]; on by default). It needs modules compiled with
    /// [`crate::compile`]; answers are the same either way. Copies served in wasm are not
    /// traced: windows stay closed while a `tracing` subscriber wants
    /// [`crate::trace::CALL_TARGET`] events, and a task's windows close at its next
    /// `"mach"` call once one does.
    pub copy_in_wasm: bool,
    /// The most bytes the kernel's memory entries (spec §8) may hold together (default
    /// 4 GiB): a `mach_make_memory_entry_64` past it answers `KERN_RESOURCE_SHORTAGE`.
    /// An entry keeps its pages alive after every mapping of them is gone, so this bounds
    /// what guests can keep that no memory accounts for.
    pub entry_limit: u64,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            page_size: 4096,
            memory64_map_limit: 1 << 40,
            memory_limit: None,
            enforce: cfg!(target_os = "linux"),
            copy_in_wasm: true,
            entry_limit: 4 << 30,
        }
    }
}

impl KernelConfig {
    /// Sets [`page_size`](Self::page_size).
    pub fn page_size(mut self, page_size: u64) -> Self {
        self.page_size = page_size;
        self
    }

    /// Sets [`memory64_map_limit`](Self::memory64_map_limit).
    pub fn memory64_map_limit(mut self, limit: u64) -> Self {
        self.memory64_map_limit = limit;
        self
    }

    /// Sets [`memory_limit`](Self::memory_limit).
    pub fn memory_limit(mut self, limit: Option<u64>) -> Self {
        self.memory_limit = limit;
        self
    }

    /// Sets [`enforce`](Self::enforce).
    pub fn enforce(mut self, enforce: bool) -> Self {
        self.enforce = enforce;
        self
    }

    /// Sets [`copy_in_wasm`](Self::copy_in_wasm).
    pub fn copy_in_wasm(mut self, copy_in_wasm: bool) -> Self {
        self.copy_in_wasm = copy_in_wasm;
        self
    }

    /// Sets [`entry_limit`](Self::entry_limit).
    pub fn entry_limit(mut self, limit: u64) -> Self {
        self.entry_limit = limit;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// When the page size is not a power of two from 4096 to 65536, or when enforcement is
    /// asked for where it is not supported (not Linux, or a page size smaller than the
    /// host's).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = self.page_size;
        if !p.is_power_of_two() || !(4096..=WASM_PAGE).contains(&p) {
            return Err(ConfigError::PageSize(p));
        }
        if self.enforce {
            if !cfg!(target_os = "linux") {
                return Err(ConfigError::EnforcementUnsupported);
            }
            let host = crate::enforce::host_page_size();
            if !p.is_multiple_of(host) {
                return Err(ConfigError::PageSizeBelowHost { page_size: p, host });
            }
        }
        Ok(())
    }
}

/// True when `engine` never moves a linear memory's base: it was configured with
/// `Config::memory_may_move(false)` (as [`crate::configure`] does), so a memory cannot grow
/// past its reservation and Wasmtime asserts that growth inside it keeps the base. Only then
/// may a task keep its memory's base address between calls.
pub(crate) fn memory_never_moves(engine: &wasmtime::Engine) -> bool {
    !engine.get_memory_may_move()
}

/// Refuses an engine that enforcement cannot rely on: memories that may move (a moving
/// grow would drop every protection) or traps without signals (a guest access to a
/// protected page would then crash the process instead of trapping).
pub(crate) fn check_engine(engine: &wasmtime::Engine) -> Result<(), ConfigError> {
    if engine.get_memory_may_move() {
        return Err(ConfigError::MemoryMayMove);
    }
    if !engine.get_signals_based_traps() {
        return Err(ConfigError::NoSignalTraps);
    }
    Ok(())
}

/// The Mach kernel of one Wasmtime store: its tasks, each a linear memory with a page table
/// beside it, and their port namespaces. Keep it in the store's data and give machvm a
/// way to it ([`KernelView`](crate::KernelView)).
#[derive(Debug)]
pub struct Kernel {
    /// The kernel's identity, unique in the process: it is part of every [`TaskId`].
    id: u32,
    /// Where the kernel was when its first task was made (0: no task yet). Its tasks'
    /// memories belong to the store whose data held it there; moved anywhere else (taken
    /// out of the store, swapped with another kernel), it refuses every operation and its
    /// drop leaves the hardware alone.
    home: usize,
    /// The ranges its tasks hold protected, shared with the store's `enforce::Sentinel`.
    pub(crate) protected: Arc<Protected>,
    /// Alive while the store of its tasks is (the store's `enforce::Sentinel` holds it);
    /// `None` until the first task's store holds one.
    pub(crate) store_alive: Option<std::sync::Weak<()>>,
    pub(crate) tasks: Vec<Task>,
    config: KernelConfig,
    /// What the store's signal handler shares with machvm, once `install_handlers` ran.
    pub(crate) fault: Option<Arc<FaultRecord>>,
    /// The last shared object id given to its tasks' pages (spec §8).
    pub(crate) last_share: u32,
    /// Every id was given once: new ones are the lowest no page has.
    pub(crate) shares_wrapped: bool,
    /// The memory entries its tasks' namespaces name (spec §8).
    pub(crate) entries: crate::vm::Entries,
    /// The pages each entry holds, by entry id.
    pub(crate) held: std::collections::HashMap<EntryId, Arc<Held>>,
}

impl Kernel {
    /// A kernel with the default settings (page size 4096; enforcement on Linux).
    ///
    /// # Errors
    ///
    /// When the defaults are not valid on this host (see [`KernelConfig::validate`]: a host
    /// page larger than 4096 bytes with enforcement on).
    pub fn new() -> wasmtime::Result<Kernel> {
        Kernel::with_config(KernelConfig::default())
    }

    /// A kernel with the given settings.
    ///
    /// # Errors
    ///
    /// When the settings are not valid (see [`KernelConfig::validate`]).
    pub fn with_config(config: KernelConfig) -> wasmtime::Result<Kernel> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(1);
        config.validate()?;
        let id = NEXT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| ConfigError::TooManyKernels)?;
        let entry_limit = config.entry_limit;
        Ok(Kernel {
            id,
            home: 0,
            protected: Protected::register(),
            store_alive: None,
            tasks: Vec::new(),
            config,
            fault: None,
            last_share: 0,
            shares_wrapped: false,
            entries: crate::vm::Entries::new(entry_limit),
            held: std::collections::HashMap::new(),
        })
    }

    /// The task `task`, when it is a live task of this kernel (not another kernel's, not
    /// one whose instantiation failed).
    pub(crate) fn live(&self, task: TaskId) -> Option<&Task> {
        if self.moved() {
            return None;
        }
        self.live_here(task)
    }

    /// [`Kernel::live`] for a host function of the task's own store: the store is alive
    /// (it is running the function), so only the kernel's place needs checking. A kernel
    /// moved into another store that happens to sit at the same address cannot be reached
    /// with its own task ids from there: no function there was made for them (a moved
    /// kernel makes no task).
    #[inline]
    pub(crate) fn live_here(&self, task: TaskId) -> Option<&Task> {
        if task.kernel() != self.id || (self.home != self as *const Kernel as usize) {
            return None;
        }
        self.tasks.get(task.index()).filter(|t| !t.gone())
    }

    /// True when the kernel is no longer where its tasks were made (see `home`), or their
    /// store is gone (a new store may have been given the same address).
    #[inline]
    pub(crate) fn moved(&self) -> bool {
        self.home != 0
            && (self.home != self as *const Kernel as usize
                || self
                    .store_alive
                    .as_ref()
                    .is_some_and(|w| w.strong_count() == 0))
    }

    /// The id of this kernel's `index`-th task.
    pub(crate) fn id_of(&self, index: usize) -> TaskId {
        TaskId::new(self.id, index as u32)
    }

    /// The kernel's settings.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// The ids of every task, in creation order.
    pub fn task_ids(&self) -> impl Iterator<Item = TaskId> + '_ {
        (0..self.tasks.len())
            .filter(|&i| !self.tasks[i].gone())
            .map(|i| self.id_of(i))
    }

    /// The VM state (page table, page size, map) of a task.
    pub fn task(&self, task: TaskId) -> Option<&TaskVm> {
        self.live(task).map(|t| &t.vm)
    }

    /// The linear memory of a task, once it is known.
    pub fn memory(&self, task: TaskId) -> Option<Memory> {
        self.live(task).and_then(|t| t.memory)
    }

    /// Inserts into `into`'s port namespace a send right to the task port of `to`, and
    /// returns its name there. Only through such a right can a guest reach another task.
    ///
    /// ```
    /// use machvm::Kernel;
    /// use wasmtime::{Engine, MemoryType, Store};
    ///
    /// struct State { kernel: Kernel }
    /// impl machvm::KernelView for State { fn kernel(&mut self) -> &mut Kernel { &mut self.kernel } }
    ///
    /// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
    /// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
    /// let a = machvm::new_task(&mut store, MemoryType::new(1, None))?;
    /// let b = machvm::new_task(&mut store, MemoryType::new(1, None))?;
    /// let kernel = &mut store.data_mut().kernel;
    /// // XNU's name layout: 0x303, 0x403, ...; one name per port in a namespace.
    /// assert_eq!(kernel.insert_send_right(a, b)?, machvm::abi::MachPort(0x303));
    /// assert_eq!(kernel.insert_send_right(a, b)?, machvm::abi::MachPort(0x303));
    /// assert_eq!(kernel.insert_send_right(a, a)?, machvm::abi::TASK_SELF_NAME);
    /// // `a`'s guest now reaches `b` as port 0x303, e.g. vm_copy(0x303, ...).
    /// # Ok::<(), wasmtime::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When either id is not a task of this kernel.
    pub fn insert_send_right(&mut self, into: TaskId, to: TaskId) -> wasmtime::Result<MachPort> {
        self.check_task(to)?;
        self.check_task(into)?;
        match self.tasks[into.index()].vm.insert_right(to) {
            Some(name) => Ok(name),
            None => Err(TaskError::NamespaceFull(into).into()),
        }
    }

    /// Copies the send right that `from`'s namespace names `name` (a task port, or a memory
    /// entry made by `mach_make_memory_entry_64`, spec §8) into `into`'s namespace, and
    /// returns its name there: the name `into` has for that port already, with one more
    /// user reference, or a new one. This is how a memory entry made by one guest reaches
    /// another without IPC: `into`'s guest maps it with `vm_map`.
    ///
    /// # Errors
    ///
    /// When either id is not a task of this kernel, `from` holds no right named `name`
    /// (the host port included: it is every task's already), or `into`'s namespace is full.
    pub fn copy_send_right(
        &mut self,
        from: TaskId,
        name: MachPort,
        into: TaskId,
    ) -> wasmtime::Result<MachPort> {
        self.check_task(from)?;
        self.check_task(into)?;
        let right = match self.tasks[from.index()].vm.lookup_port(name) {
            Some(PortTarget::Task(t)) => Right::Task(t),
            Some(PortTarget::Entry(e)) => Right::Entry(e),
            Some(PortTarget::Host) | None => return Err(TaskError::NoSuchName(from, name).into()),
        };
        let vm = &mut self.tasks[into.index()].vm;
        let had = vm.rights().any(|(_, r)| r == right);
        let inserted = match right {
            Right::Task(t) => vm.insert_right(t),
            Right::Entry(_) => vm.insert(right),
        };
        let Some(new) = inserted else {
            return Err(TaskError::NamespaceFull(into).into());
        };
        if let (Right::Entry(e), false) = (right, had) {
            self.entries.named(e);
        }
        Ok(new)
    }

    /// Moves the send right that `from`'s namespace names `name` into `into`'s namespace
    /// ([`copy_send_right`](Self::copy_send_right), then one user reference of `name`
    /// dropped in `from`: the name goes when that was its last) and returns its name there.
    ///
    /// # Errors
    ///
    /// As [`copy_send_right`](Self::copy_send_right); also for the task's own port, which a
    /// namespace cannot give away.
    pub fn move_send_right(
        &mut self,
        from: TaskId,
        name: MachPort,
        into: TaskId,
    ) -> wasmtime::Result<MachPort> {
        if name == crate::abi::TASK_SELF_NAME {
            return Err(TaskError::NoSuchName(from, name).into());
        }
        let new = self.copy_send_right(from, name, into)?;
        if let Ok(Some(Right::Entry(e))) = self.tasks[from.index()].vm.drop_name(name) {
            self.entry_unnamed(e);
        }
        Ok(new)
    }

    /// Counts one name less for entry `e`, and gives back its pages when that was its last.
    pub(crate) fn entry_unnamed(&mut self, e: EntryId) {
        if self.entries.unnamed(e) {
            self.held.remove(&e);
        }
    }

    /// The memory entries the kernel's namespaces name (spec §8).
    pub fn entries(&self) -> &crate::vm::Entries {
        &self.entries
    }

    /// Checks that `task` belongs to this kernel.
    pub(crate) fn check_task(&self, task: TaskId) -> Result<(), TaskError> {
        self.check_home()?;
        match self.live(task) {
            None => Err(TaskError::NoSuchTask(task)),
            Some(t) if t.stopped() => Err(TaskError::Stopped(task)),
            Some(_) => Ok(()),
        }
    }

    /// Refuses a kernel that was moved away from its tasks' store.
    pub(crate) fn check_home(&self) -> Result<(), TaskError> {
        if self.moved() {
            return Err(TaskError::KernelMoved);
        }
        Ok(())
    }

    /// The map limit `L` (spec §1) of a task whose memory has type `ty`.
    pub(crate) fn map_limit(&self, ty: &MemoryType) -> u128 {
        let declared = match ty.maximum() {
            Some(pages) => u128::from(pages) * u128::from(WASM_PAGE),
            None if ty.is_64() => u128::from(self.config.memory64_map_limit),
            None => 1 << 32,
        };
        match self.config.memory_limit {
            Some(limit) => declared.min(u128::from(limit / WASM_PAGE * WASM_PAGE)),
            None => declared,
        }
    }

    /// Creates a task for a memory of type `ty` (the memory itself may come later).
    pub(crate) fn create_task(
        &mut self,
        ty: &MemoryType,
        memory: Option<Memory>,
        memory_export: Option<String>,
    ) -> wasmtime::Result<TaskId> {
        check_memory_type(ty)?;
        self.check_home()?;
        self.home = self as *const Kernel as usize;
        let id = TaskId::new(self.id, u32::try_from(self.tasks.len())?);
        let width = if ty.is_64() { Width::W64 } else { Width::W32 };
        let mut vm = TaskVm::new(id, width, self.config.page_size, self.map_limit(ty));
        // Write-only pages fault until their first store where the store's handler can tell
        // a store from a load and make the page writable.
        let write_only = match &self.fault {
            Some(record) if self.config.enforce && crate::enforce::WRITE_ONLY_FAULTS => {
                Some(record.clone())
            }
            _ => None,
        };
        vm.set_write_only_faults(write_only.is_some());
        let enforce = self.config.enforce;
        self.tasks
            .push(Task::new(vm, memory, memory_export, enforce, write_only));
        Ok(id)
    }
}

impl Drop for Kernel {
    /// Gives every enforced memory back its read-write protection, so that whatever reuses
    /// it (a pooling allocator's next instance, Wasmtime's own teardown) finds it as
    /// Wasmtime left it, and its mappings back to the process's budget. A store drops its
    /// data before its instances and memories, so the memories are still mapped here. A
    /// kernel that was moved out of its store touches nothing: its store's sentinel records
    /// the ranges to heal (`enforce::heal_stale`) and gives the mappings back when the
    /// store (and so the memories) goes.
    fn drop(&mut self) {
        if self.moved() {
            let n: u64 = self
                .tasks
                .iter()
                .map(|t| t.vm.mappings() + t.write_only_mappings() as u64)
                .sum();
            let store_gone = self
                .store_alive
                .as_ref()
                .is_none_or(|w| w.strong_count() == 0);
            if store_gone {
                crate::vm::budget::give_back(n as usize);
            } else {
                self.protected.hand_over_mappings(n as usize);
            }
            // Its write-only pages are no task's any more: a store there traps.
            for t in &self.tasks {
                t.disown_write_only();
            }
            return;
        }
        for (i, t) in self.tasks.iter_mut().enumerate() {
            t.release_hardware();
            self.protected.clear(i);
        }
    }
}

/// Refuses memories a task cannot be made of.
pub(crate) fn check_memory_type(ty: &MemoryType) -> Result<(), LinkError> {
    if ty.is_shared() {
        return Err(LinkError::SharedMemory);
    }
    if ty.page_size() != WASM_PAGE {
        return Err(LinkError::CustomPageSize(ty.page_size()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::memory_never_moves;
    use wasmtime::{Config, Engine};

    /// The engine's own setting decides (and a clone is the same engine).
    #[test]
    fn memory_never_moves_reads_the_engines_setting() {
        let fixed = Engine::new(crate::configure(&mut Config::new())).unwrap();
        let movable = Engine::new(&Config::new()).unwrap();
        let mut set_back = Config::new();
        crate::configure(&mut set_back).memory_may_move(true);
        let set_back = Engine::new(&set_back).unwrap();
        assert!(memory_never_moves(&fixed));
        assert!(memory_never_moves(&fixed.clone()));
        assert!(!memory_never_moves(&movable));
        assert!(!memory_never_moves(&set_back));
    }
}
