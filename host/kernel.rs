//! The kernel: the tasks of one Wasmtime store and their port namespaces.

use std::sync::Arc;

use wasmtime::{Global, Memory, MemoryType};

use crate::calls::Width;
use crate::enforce::FaultRecord;
use crate::vm::{TaskId, TaskVm, WASM_PAGE};

/// Settings of a [`Kernel`], applied to the tasks it creates.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// instructions (SPEC §5) with hardware page protection. On by default where the
    /// platform supports it (Linux). It needs an engine configured with
    /// [`crate::configure`] and modules compiled with [`crate::compile`].
    pub enforce: bool,
    /// Serve `vm_copy` / `mach_vm_copy` calls of a task's own memory, and the enforcement
    /// checks of its bulk-memory instructions, in wasm, without a host call, when the
    /// ranges lie in the copy windows the host keeps over pages its table allows (see
    /// [`crate::rewrite`]; on by default). It needs modules compiled with
    /// [`crate::compile`]; answers are the same either way. Copies served in wasm are not
    /// traced: windows stay closed while a `tracing` subscriber wants
    /// [`crate::trace::CALL_TARGET`] events, and a task's windows close at its next
    /// `"mach"` call once one does.
    pub copy_in_wasm: bool,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            page_size: 4096,
            memory64_map_limit: 1 << 40,
            memory_limit: None,
            enforce: cfg!(target_os = "linux"),
            copy_in_wasm: true,
        }
    }
}

impl KernelConfig {
    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// When the page size is not a power of two from 4096 to 65536, or when enforcement is
    /// asked for where it is not supported (not Linux, or a page size smaller than the
    /// host's).
    pub fn validate(&self) -> wasmtime::Result<()> {
        let p = self.page_size;
        if !p.is_power_of_two() || !(4096..=WASM_PAGE).contains(&p) {
            wasmtime::bail!(
                "machvm: page size {p} is not supported: use a power of two from 4096 to 65536 \
                 (4096 is macOS x86_64's, 16384 Apple silicon's)"
            );
        }
        if self.enforce {
            if !cfg!(target_os = "linux") {
                wasmtime::bail!("machvm: page-protection enforcement is only supported on Linux");
            }
            let host = crate::enforce::host_page_size();
            if !p.is_multiple_of(host) {
                wasmtime::bail!(
                    "machvm: enforcement needs the page size ({p}) to be a multiple of the \
                     host's page size ({host})"
                );
            }
        }
        Ok(())
    }
}

/// One task: its VM state and, once known, its linear memory.
#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) vm: TaskVm,
    pub(crate) memory: Option<Memory>,
    /// Name of the export holding the memory, to find it while the instance is starting.
    pub(crate) memory_export: Option<String>,
    /// Whether the table is mirrored in hardware.
    pub(crate) enforce: bool,
    /// The memory's base and size when protections were last applied (0, 0: never).
    pub(crate) hw_base: usize,
    pub(crate) hw_size: usize,
    /// The memory's base address when the engine guarantees it never moves (see
    /// [`memory_never_moves`]), for the calls' fast paths; 0 when unknown or movable.
    pub(crate) fixed_base: usize,
    /// The globals that hold the task's copy windows in wasm (read lo, hi, write lo, hi:
    /// [`crate::rewrite::WINDOW_GLOBALS`]), when its module serves copies in wasm; they
    /// follow [`TaskVm::windows`].
    pub(crate) window_globals: Option<[Global; 4]>,
}

/// True when `engine` never moves a linear memory's base: it was configured with
/// `Config::memory_may_move(false)` (as [`crate::configure`] does), so a memory cannot grow
/// past its reservation and Wasmtime asserts that growth inside it keeps the base. Only then
/// may a task keep its memory's base address between calls.
///
/// Wasmtime 48 has no getter for the setting; its `Config` debug output lists every option
/// set explicitly, so this reads it there, once per engine (the verdict is kept while the
/// engine lives). A Wasmtime that printed it differently would make this false: calls
/// would take their slower path, never an unsound one, and a unit test would fail.
pub(crate) fn memory_never_moves(engine: &wasmtime::Engine) -> bool {
    use std::sync::Mutex;
    static VERDICTS: Mutex<Vec<(wasmtime::EngineWeak, bool)>> = Mutex::new(Vec::new());
    let mut verdicts = VERDICTS.lock().unwrap_or_else(|e| e.into_inner());
    verdicts.retain(|(weak, _)| weak.upgrade().is_some());
    let known = verdicts.iter().find_map(|(weak, fixed)| {
        let e = weak.upgrade()?;
        wasmtime::Engine::same(&e, engine).then_some(*fixed)
    });
    known.unwrap_or_else(|| {
        let fixed = format!("{:?}", engine.config()).contains("memory_may_move: false");
        verdicts.push((engine.weak(), fixed));
        fixed
    })
}

/// The Mach kernel of one Wasmtime store: its tasks, each a linear memory with a page table
/// beside it, and their port namespaces. Keep it in the store's data and give machvm a
/// projection to it (`|state: &mut MyState| &mut state.kernel`).
#[derive(Debug, Default)]
pub struct Kernel {
    pub(crate) tasks: Vec<Task>,
    config: KernelConfig,
    /// What the store's signal handler shares with machvm, once `install_handlers` ran.
    pub(crate) fault: Option<Arc<FaultRecord>>,
}

impl Kernel {
    /// A kernel with the default settings (page size 4096).
    pub fn new() -> Kernel {
        Kernel::default()
    }

    /// A kernel with the given settings.
    ///
    /// # Errors
    ///
    /// When the settings are not valid (see [`KernelConfig::validate`]).
    pub fn with_config(config: KernelConfig) -> wasmtime::Result<Kernel> {
        config.validate()?;
        Ok(Kernel {
            tasks: Vec::new(),
            config,
            fault: None,
        })
    }

    /// The kernel's settings.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// The ids of every task, in creation order.
    pub fn task_ids(&self) -> impl Iterator<Item = TaskId> + '_ {
        (0..self.tasks.len()).map(|i| TaskId(i as u32))
    }

    /// The VM state (page table, page size, map) of a task.
    pub fn task(&self, task: TaskId) -> Option<&TaskVm> {
        self.tasks.get(task.index()).map(|t| &t.vm)
    }

    /// The linear memory of a task, once it is known.
    pub fn memory(&self, task: TaskId) -> Option<Memory> {
        self.tasks.get(task.index()).and_then(|t| t.memory)
    }

    /// Inserts into `into`'s port namespace a send right to the task port of `to`, and
    /// returns its name there. Only through such a right can a guest reach another task.
    ///
    /// ```
    /// use machvm::Kernel;
    /// use wasmtime::{Engine, MemoryType, Store};
    ///
    /// struct State { kernel: Kernel }
    /// fn get(s: &mut State) -> &mut Kernel { &mut s.kernel }
    ///
    /// let mut store = Store::new(&Engine::default(), State { kernel: Kernel::new() });
    /// let a = machvm::new_task(&mut store, get, MemoryType::new(1, None))?;
    /// let b = machvm::new_task(&mut store, get, MemoryType::new(1, None))?;
    /// let kernel = &mut store.data_mut().kernel;
    /// // XNU's name layout: 0x303, 0x403, ...; one name per port in a namespace.
    /// assert_eq!(kernel.insert_send_right(a, b)?, 0x303);
    /// assert_eq!(kernel.insert_send_right(a, b)?, 0x303);
    /// assert_eq!(kernel.insert_send_right(a, a)?, machvm::consts::TASK_SELF_NAME);
    /// // `a`'s guest now reaches `b` as port 0x303, e.g. vm_copy(0x303, ...).
    /// # Ok::<(), wasmtime::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// When either id is not a task of this kernel.
    pub fn insert_send_right(&mut self, into: TaskId, to: TaskId) -> wasmtime::Result<u32> {
        if to.index() >= self.tasks.len() {
            wasmtime::bail!("machvm: {to:?} is not a task of this kernel");
        }
        match self.tasks.get_mut(into.index()) {
            Some(t) => Ok(t.vm.insert_right(to)),
            None => wasmtime::bail!("machvm: {into:?} is not a task of this kernel"),
        }
    }

    /// Checks that `task` belongs to this kernel.
    pub(crate) fn check_task(&self, task: TaskId) -> wasmtime::Result<()> {
        if task.index() >= self.tasks.len() {
            wasmtime::bail!("machvm: {task:?} is not a task of this kernel");
        }
        Ok(())
    }

    /// The map limit `L` (SPEC §1) of a task whose memory has type `ty`.
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
        let id = TaskId(u32::try_from(self.tasks.len())?);
        let width = if ty.is_64() { Width::W64 } else { Width::W32 };
        let vm = TaskVm::new(id, width, self.config.page_size, self.map_limit(ty));
        self.tasks.push(Task {
            vm,
            memory,
            memory_export,
            enforce: self.config.enforce,
            hw_base: 0,
            hw_size: 0,
            fixed_base: 0,
            window_globals: None,
        });
        Ok(id)
    }
}

impl Drop for Kernel {
    /// Gives every enforced memory back its read-write protection, so that whatever reuses
    /// it (a pooling allocator's next instance, Wasmtime's own teardown) finds it as
    /// Wasmtime left it, and its mappings back to the process's budget. A store drops its
    /// data before its instances and memories, so the memories are still mapped here.
    fn drop(&mut self) {
        for (i, t) in self.tasks.iter_mut().enumerate() {
            if let Some(f) = &self.fault {
                f.set_range(i, 0, 0);
            }
            // The memory is read-write again below (or was never protected): its
            // boundaries leave the process's mapping budget.
            crate::vm::release_mappings(&mut t.vm);
            if t.enforce && t.hw_base != 0 {
                let flags = rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE;
                // SAFETY: [hw_base, hw_base + hw_size) is the accessible part of a memory of
                // this kernel's store, still mapped (see above); making it read-write again
                // is what Wasmtime expects of it.
                unsafe {
                    crate::enforce::protect(t.hw_base as *mut u8, 0, t.hw_size as u64, flags)
                };
            }
        }
    }
}

/// Refuses memories a task cannot be made of.
pub(crate) fn check_memory_type(ty: &MemoryType) -> wasmtime::Result<()> {
    if ty.is_shared() {
        wasmtime::bail!("machvm: a shared memory cannot be a task's memory");
    }
    if ty.page_size() != WASM_PAGE {
        wasmtime::bail!(
            "machvm: the task's memory has a custom page size of {} bytes; only 64 KiB wasm pages are supported",
            ty.page_size()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::memory_never_moves;
    use wasmtime::{Config, Engine};

    /// Reading the setting from the `Config` debug output is pinned to Wasmtime's format:
    /// this fails (rather than the fast paths silently turning off) if it changes.
    #[test]
    fn memory_never_moves_reads_the_engines_setting() {
        let fixed = Engine::new(crate::configure(&mut Config::new())).unwrap();
        let movable = Engine::new(&Config::new()).unwrap();
        let mut set_back = Config::new();
        crate::configure(&mut set_back).memory_may_move(true);
        let set_back = Engine::new(&set_back).unwrap();
        for _ in 0..2 {
            // The second round answers from the kept verdicts.
            assert!(memory_never_moves(&fixed));
            assert!(!memory_never_moves(&movable));
            assert!(!memory_never_moves(&set_back));
        }
        assert!(
            memory_never_moves(&fixed.clone()),
            "a clone is the same engine"
        );
    }
}
