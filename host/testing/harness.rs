//! A test harness that drives Mach calls through the real wasm boundary: each task is an
//! instance of a forwarding guest (`wat/forward32.wat`, `wat/forward64.wat`) whose exports
//! call the `"mach"` imports with the arguments they are given. Shared by the integration
//! tests, the differential tests and the fuzz targets.

use std::collections::HashMap;
use std::sync::OnceLock;

use wasmtime::{
    AsContextMut, Config, Engine, Func, Linker, Memory, MemoryType, Store, Val, ValType,
};

use crate::abi::{Call, MachPort, Outcome, PageAttrs, ParamFault, Width};
use crate::embed::kernel::{Kernel, KernelConfig};
use crate::embed::TaskPre;
use crate::vm::TaskId;

/// The forwarding guest for a 32-bit memory.
pub const FORWARD32_WAT: &str = include_str!("../../wat/forward32.wat");
/// The forwarding guest for a 64-bit memory.
pub const FORWARD64_WAT: &str = include_str!("../../wat/forward64.wat");

/// The store data of a [`Harness`].
pub struct HarnessState {
    /// The kernel of the harness's tasks.
    pub kernel: Kernel,
}

impl crate::KernelView for HarnessState {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

struct Shared {
    engine: Engine,
    /// The forwarders, prepared as tasks: for a 32-bit memory, for a 64-bit one.
    pre: [TaskPre<HarnessState>; 2],
    /// Their exports' names (the same for both), and each one's index in that list.
    exports: HashMap<String, usize>,
    /// Per export, its parameter types and number of results: for a 32-bit memory, for a
    /// 64-bit one.
    sigs: [Vec<(Vec<ValType>, usize)>; 2],
}

/// The engine and the compiled forwarders, made once per process; with `backed`, an engine
/// whose memories are backed memories ([`crate::share::configure`]).
fn shared(backed: bool) -> wasmtime::Result<&'static Shared> {
    static SHARED: [OnceLock<Shared>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = &SHARED[usize::from(backed)];
    if let Some(s) = slot.get() {
        return Ok(s);
    }
    let mut config = Config::new();
    crate::configure(&mut config);
    if backed {
        crate::share::configure(&mut config);
    }
    let engine = Engine::new(&config)?;
    let forward32 = crate::compile(&engine, FORWARD32_WAT.as_bytes())?;
    let forward64 = crate::compile(&engine, FORWARD64_WAT.as_bytes())?;
    let exports: HashMap<String, usize> = forward32
        .exports()
        .enumerate()
        .map(|(i, e)| (e.name().to_string(), i))
        .collect();
    let sigs = [&forward32, &forward64].map(|m| {
        m.exports()
            .map(|e| match e.ty() {
                wasmtime::ExternType::Func(f) => (f.params().collect(), f.results().len()),
                _ => (Vec::new(), 0),
            })
            .collect()
    });
    let pre = [TaskPre::new(&forward32)?, TaskPre::new(&forward64)?];
    Ok(slot.get_or_init(|| Shared {
        engine,
        pre,
        exports,
        sigs,
    }))
}

/// Maps every page of `bytes` (a new memory, whose bytes a test fills next) in one system
/// call, rather than one page fault per page as the test writes them: a fuzz target makes
/// many harnesses, and in a virtual machine a page fault costs several microseconds. Only a
/// hint: where the kernel refuses (Linux before 5.14, other systems), the faults come later.
fn populate(bytes: &mut [u8]) {
    #[cfg(target_os = "linux")]
    if !bytes.is_empty() {
        // SAFETY: `bytes` is a live mapping we hold exclusively (the `&mut` borrow);
        // MADV_POPULATE_WRITE only maps its pages (reading as they read now, zero for a new
        // memory) and changes no byte, protection or mapping.
        let _ = unsafe {
            rustix::mm::madvise(
                bytes.as_mut_ptr().cast(),
                bytes.len(),
                rustix::mm::Advice::LinuxPopulateWrite,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// One guest task of a harness.
pub struct Guest {
    task: TaskId,
    width: Width,
    memory: Memory,
    /// The forwarder's exported functions, by their index in [`Shared::exports`].
    funcs: Vec<Option<Func>>,
}

/// Tasks made of forwarding guests in one store, called through wasm.
pub struct Harness {
    store: Store<HarnessState>,
    guests: Vec<Guest>,
    shared: &'static Shared,
    /// Its tasks' memories are backed memories.
    backed: bool,
}

impl Harness {
    /// A harness whose kernel uses the given settings.
    ///
    /// # Errors
    ///
    /// When the settings are not valid or the forwarders do not compile.
    pub fn new(config: KernelConfig) -> wasmtime::Result<Harness> {
        Harness::with_memories(config, false)
    }

    /// [`Harness::new`]; with `backed`, its tasks' memories are backed memories
    /// ([`crate::share::backing`]).
    ///
    /// # Errors
    ///
    /// As [`Harness::new`].
    pub fn with_memories(config: KernelConfig, backed: bool) -> wasmtime::Result<Harness> {
        let shared = shared(backed)?;
        let kernel = Kernel::with_config(config)?;
        Ok(Harness {
            store: Store::new(&shared.engine, HarnessState { kernel }),
            guests: Vec::new(),
            shared,
            backed,
        })
    }

    /// A harness with page size `page_size` and otherwise default settings.
    ///
    /// # Errors
    ///
    /// As [`Harness::new`].
    pub fn with_page_size(page_size: u64) -> wasmtime::Result<Harness> {
        Harness::new(KernelConfig {
            page_size,
            ..KernelConfig::default()
        })
    }

    /// Adds a guest task with a memory of `initial` wasm pages and maximum `maximum` pages;
    /// returns its index (which is also its [`TaskId`]'s index).
    ///
    /// # Errors
    ///
    /// When the memory cannot be created or instantiation fails.
    pub fn add_guest(
        &mut self,
        width: Width,
        initial: u64,
        maximum: Option<u64>,
    ) -> wasmtime::Result<usize> {
        let shared = self.shared;
        let memory = if self.backed {
            // `Memory::new` takes no notice of the engine's memory creator: a module's own
            // memory does.
            let max = maximum.map_or(String::new(), |m| m.to_string());
            let i64 = if width == Width::W64 { "i64" } else { "" };
            let wat = format!(r#"(module (memory (export "memory") {i64} {initial} {max}))"#);
            let module = wasmtime::Module::new(&shared.engine, wat)?;
            let instance = wasmtime::Instance::new(&mut self.store, &module, &[])?;
            let memory = instance
                .get_memory(&mut self.store, "memory")
                .ok_or_else(|| wasmtime::format_err!("no memory"))?;
            if crate::share::backing::MemoryMap::of(memory.data_ptr(&self.store)).is_none() {
                wasmtime::bail!("machvm: the harness's memory is not a backed memory");
            }
            memory
        } else {
            let ty = match width {
                Width::W32 => MemoryType::new(
                    u32::try_from(initial)?,
                    maximum.map(u32::try_from).transpose()?,
                ),
                Width::W64 => MemoryType::new64(initial, maximum),
            };
            Memory::new(&mut self.store, ty)?
        };
        populate(memory.data_mut(&mut self.store));
        let mut linker = Linker::new(&shared.engine);
        linker.define(&self.store, "env", "memory", memory)?;
        let pre = match width {
            Width::W32 => &shared.pre[0],
            Width::W64 => &shared.pre[1],
        };
        let (instance, task) = pre.instantiate(&mut self.store, &linker)?;
        let funcs = instance
            .exports(&mut self.store)
            .map(|e| e.into_func())
            .collect();
        self.guests.push(Guest {
            task,
            width,
            memory,
            funcs,
        });
        Ok(self.guests.len() - 1)
    }

    /// Puts guest `g`'s task back as it was when [`Harness::add_guest`] made it, but for its
    /// memory's bytes: every page allocated read-write (current) and all (maximum), no send
    /// rights, the copy windows closed. False, with the task in an unknown state, when that
    /// cannot be done: its memory has grown past `size` bytes, or the task stopped.
    pub fn reset_guest(&mut self, g: usize, size: usize) -> bool {
        if self.memory_size(g) != size {
            return false;
        }
        let task = self.guests[g].task;
        crate::embed::reset_task(self.store.as_context_mut(), crate::embed::view, task)
    }

    /// Counts shared object ids from 1 again (spec §8), as a new kernel does, once no page
    /// of any guest belongs to a shared object and no memory entry lives (after every guest
    /// was reset); false, changing nothing, while one does.
    pub fn restart_share_ids(&mut self) -> bool {
        let kernel = &mut self.store.data_mut().kernel;
        let shared = kernel
            .tasks
            .iter()
            .any(|t| t.vm.table().runs().any(|r| r.attrs.share != 0))
            || kernel.entries.iter().next().is_some();
        if !shared {
            kernel.last_share = 0;
            kernel.shares_wrapped = false;
        }
        !shared
    }

    /// The store.
    pub fn store(&mut self) -> &mut Store<HarnessState> {
        &mut self.store
    }

    /// The kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.store.data().kernel
    }

    /// The task id of guest `g`.
    pub fn task(&self, g: usize) -> TaskId {
        self.guests[g].task
    }

    /// The width of guest `g`.
    pub fn width(&self, g: usize) -> Width {
        self.guests[g].width
    }

    /// Inserts into guest `from`'s namespace a send right to guest `to`'s task.
    ///
    /// # Errors
    ///
    /// As [`Kernel::insert_send_right`].
    pub fn insert_send_right(&mut self, from: usize, to: usize) -> wasmtime::Result<MachPort> {
        let (f, t) = (self.guests[from].task, self.guests[to].task);
        self.store.data_mut().kernel.insert_send_right(f, t)
    }

    /// Copies the send right guest `from` names `name` into guest `into`'s namespace (see
    /// [`Kernel::copy_send_right`](crate::Kernel::copy_send_right)).
    ///
    /// # Errors
    ///
    /// When `from` holds no right of that name, or `into`'s namespace is full.
    pub fn copy_send_right(
        &mut self,
        from: usize,
        name: MachPort,
        into: usize,
    ) -> wasmtime::Result<MachPort> {
        let (f, t) = (self.guests[from].task, self.guests[into].task);
        self.store.data_mut().kernel.copy_send_right(f, name, t)
    }

    /// Calls the forwarder's export `name` of guest `g` with `args` (each truncated to its
    /// parameter's type); its result, if it has one.
    fn invoke(&mut self, g: usize, name: &str, args: &[u64]) -> wasmtime::Result<Option<Val>> {
        let shared = self.shared;
        let guest = &self.guests[g];
        let found = shared.exports.get(name).and_then(|&i| {
            let f = (*guest.funcs.get(i)?)?;
            Some((f, &shared.sigs[usize::from(guest.width == Width::W64)][i]))
        });
        let Some((f, (params, results))) = found else {
            wasmtime::bail!("the forwarder has no function `{name}`");
        };
        let mut vals = [Val::I32(0); 12];
        if params.len() != args.len() || args.len() > vals.len() || *results > 1 {
            wasmtime::bail!("`{name}` takes {} arguments", params.len());
        }
        for ((v, t), &a) in vals.iter_mut().zip(params).zip(args) {
            *v = match t {
                ValType::I64 => Val::I64(a as i64),
                _ => Val::I32(a as u32 as i32),
            };
        }
        let mut out = [Val::I32(0)];
        f.call(&mut self.store, &vals[..args.len()], &mut out[..*results])?;
        Ok((*results == 1).then_some(out[0]))
    }

    /// Makes `call` from guest `g` through its forwarder. Word-sized arguments are truncated
    /// to the guest's width, as the wasm types do.
    ///
    /// # Errors
    ///
    /// When the guest traps with anything but a [`ParamFault`].
    pub fn call(&mut self, g: usize, call: &Call) -> wasmtime::Result<Outcome> {
        match self.invoke(g, call.import_name(), &call.args()) {
            Ok(r) => match r {
                Some(Val::I32(v)) => Ok(Outcome::from_wire(call, v)),
                other => wasmtime::bail!("unexpected result {other:?}"),
            },
            Err(e) => match e.downcast::<ParamFault>() {
                Ok(fault) => Ok(Outcome::Trap(fault)),
                Err(e) => Err(e),
            },
        }
    }

    /// The guest's own `memory.grow` by `delta` wasm pages: the old size, or `None` for -1.
    ///
    /// # Errors
    ///
    /// When the guest traps.
    pub fn grow(&mut self, g: usize, delta: u64) -> wasmtime::Result<Option<u64>> {
        let r = self.invoke(g, "grow", &[delta])?;
        Ok(match r {
            Some(Val::I32(-1)) | Some(Val::I64(-1)) => None,
            Some(Val::I32(v)) => Some(u64::from(v as u32)),
            Some(Val::I64(v)) => Some(v as u64),
            _ => None,
        })
    }

    /// The guest's own `i32.load8_u` at `addr`: the byte, or the trap (a page the table
    /// does not let it read).
    ///
    /// # Errors
    ///
    /// The trap.
    pub fn load8(&mut self, g: usize, addr: u64) -> wasmtime::Result<u8> {
        match self.invoke(g, "load8", &[addr])? {
            Some(Val::I32(v)) => Ok(v as u8),
            other => wasmtime::bail!("unexpected result {other:?}"),
        }
    }

    /// The guest's own `i32.store8` of `value` at `addr`.
    ///
    /// # Errors
    ///
    /// The trap (a page the table does not let it write).
    pub fn store8(&mut self, g: usize, addr: u64, value: u8) -> wasmtime::Result<()> {
        self.invoke(g, "store8", &[addr, u64::from(value)])?;
        Ok(())
    }

    /// Whether each page of guest `g`'s memory is resident in the host's memory (`mincore`),
    /// from page 0: what `mach_vm_page_query` reports as `PRESENT`.
    pub fn resident(&self, g: usize) -> Vec<bool> {
        let mem = self.guests[g].memory;
        let (ptr, size) = (mem.data_ptr(&self.store), mem.data_size(&self.store));
        let page = self.store.data().kernel.config().page_size;
        crate::enforce::resident(ptr as usize, page, size as u64 / page)
    }

    /// A copy of guest `g`'s memory bytes, protected pages included: it is read through
    /// `/proc/self/mem`, which ignores page protections, so it never faults whatever the
    /// table and the hardware protections say.
    ///
    /// # Panics
    ///
    /// When `/proc/self/mem` cannot be read (not Linux).
    pub fn memory(&self, g: usize) -> Vec<u8> {
        self.read(g, 0, self.memory_size(g))
    }

    /// The size in bytes of guest `g`'s memory.
    pub fn memory_size(&self, g: usize) -> usize {
        self.guests[g].memory.data_size(&self.store)
    }

    /// A copy of `len` bytes at `addr` of guest `g`'s memory, read as [`Harness::memory`]
    /// does (protections ignored).
    ///
    /// # Panics
    ///
    /// When the range is outside the memory or `/proc/self/mem` cannot be read.
    pub fn read(&self, g: usize, addr: usize, len: usize) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let mem = self.guests[g].memory;
        let (ptr, size) = (mem.data_ptr(&self.store), mem.data_size(&self.store));
        assert!(
            addr.checked_add(len).is_some_and(|e| e <= size),
            "outside the memory"
        );
        let mut out = vec![0u8; len];
        let file = std::fs::File::open("/proc/self/mem").expect("/proc/self/mem is readable");
        file.read_exact_at(&mut out, ptr as u64 + addr as u64)
            .expect("the memory's pages are mapped");
        out
    }

    /// Guest `g`'s bytes `[start, end)`, read in place (without a copy or a system call)
    /// when the hardware lets them be read: the task runs (it is not stopped) and each page
    /// they touch is readable as its table says (every page when the table is not
    /// enforced); `None` otherwise, or outside the memory. Pages the table does not show
    /// yet (grown since the last call) count as unreadable.
    ///
    /// Enforcement keeps the hardware in line with the table, so these bytes never fault;
    /// were it not, reading them would crash the process, which a fuzzer reports too.
    pub fn bytes_in_place(&self, g: usize, start: usize, end: usize) -> Option<&[u8]> {
        let guest = &self.guests[g];
        let kernel = self.kernel();
        let task = kernel.live(guest.task).filter(|t| !t.stopped())?;
        let bytes = guest.memory.data(&self.store).get(start..end)?;
        if task.enforced() {
            let (first, last) = task.vm.pages(start as u64, (end - start) as u64);
            let readable = |a| crate::enforce::hw_prot(a).contains(rustix::mm::MprotectFlags::READ);
            let mut segments = task.vm.table().segments_iter(first, last);
            if !segments.all(|(_, _, attrs)| readable(attrs)) {
                return None;
            }
        }
        Some(bytes)
    }

    /// Guest `g`'s memory bytes, for the test to set up contents.
    pub fn memory_mut(&mut self, g: usize) -> &mut [u8] {
        self.guests[g].memory.data_mut(&mut self.store)
    }

    /// What guest `g`'s copy-window globals hold (read, write; see [`crate::enforce::rewrite`]), or
    /// `None` when its module serves no copy in wasm.
    pub fn windows_in_wasm(&mut self, g: usize) -> Option<[(u64, u64); 2]> {
        let task = self.guests[g].task;
        let globals = self.store.data().kernel.tasks[task.index()].window_globals()?;
        let v = globals.map(|gl| match gl.get(&mut self.store) {
            Val::I32(x) => u64::from(x as u32),
            Val::I64(x) => x as u64,
            _ => u64::MAX,
        });
        Some([(v[0], v[1]), (v[2], v[3])])
    }

    /// The attributes of page `page` of guest `g` (`None`: unallocated), as the kernel's
    /// table holds them after the last call.
    pub fn page(&self, g: usize, page: u64) -> Option<PageAttrs> {
        self.kernel()
            .task(self.guests[g].task)
            .and_then(|t| t.table().get(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{KERN_SUCCESS, TASK_SELF_NAME};
    use crate::Form;

    /// Once every shared object id was given, each new one is the lowest no page has: never
    /// one a live object still has.
    #[test]
    fn object_ids_after_the_last_are_the_lowest_unused() {
        let mut h = Harness::with_memories(KernelConfig::default(), true).unwrap();
        let g = h.add_guest(Width::W32, 2, Some(4)).unwrap();
        h.store.data_mut().kernel.last_share = u32::MAX - 1;
        // Shares page 8 + i at page 16 + i, FIXED|OVERWRITE: its object's id.
        let share = |h: &mut Harness, i: u64| {
            h.memory_mut(g)[0x100..0x104].copy_from_slice(&((16 + i) * 0x1000).to_le_bytes()[..4]);
            let remap = Call::Remap {
                form: Form::Vm,
                target_task: TASK_SELF_NAME,
                addr_ptr: 0x100,
                size: 0x1000,
                mask: 0,
                flags: 0x4000,
                src_task: TASK_SELF_NAME,
                src_addr: (8 + i) * 0x1000,
                copy: 0,
                cur_ptr: 0x108,
                max_ptr: 0x10c,
                inheritance: 1,
            };
            assert_eq!(h.call(g, &remap).unwrap(), Outcome::Kr(KERN_SUCCESS));
            h.page(g, 16 + i).unwrap().share
        };
        assert_eq!(share(&mut h, 0), u32::MAX);
        assert_eq!(share(&mut h, 1), 1);
        assert_eq!(share(&mut h, 2), 2);
        // Id 1's pages go: it is the lowest unused again.
        for page in [9, 17] {
            let free = Call::Deallocate {
                form: Form::Vm,
                task: TASK_SELF_NAME,
                addr: page * 0x1000,
                size: 0x1000,
            };
            assert_eq!(h.call(g, &free).unwrap(), Outcome::Kr(KERN_SUCCESS));
        }
        assert_eq!(share(&mut h, 3), 1);
        assert_eq!(share(&mut h, 4), 3);
    }
}
