//! Modules and memories becoming tasks: [`compile`] (the bulk-memory rewrite), [`TaskPre`]
//! (a module's imports matched against the ABI once), [`instantiate`], [`new_task`] and
//! [`register_memory`], and [`call`] (a Mach call made by the host for a task).

use std::fmt;
use std::sync::Arc;

use wasmtime::{
    AsContextMut, Extern, ExternType, Func, Global, GlobalType, Instance, Linker, Memory,
    MemoryType, Module, Mutability, StoreContextMut, Val, ValType,
};

use super::funcs::{bulk_func, make_func};
use super::store::StoreEnv;
use super::{view, GetKernel, KernelView};
use crate::abi::*;
use crate::embed::{ConfigError, LinkError};
use crate::enforce::rewrite;
use crate::fuzz::coverage::Coverage;
use crate::fuzz::heap::AllocFn;
use crate::vm::{self, TaskId};

fn signature_of(ty: &wasmtime::FuncType) -> Option<(Vec<Ty>, Vec<Ty>)> {
    let conv = |v: ValType| match v {
        ValType::I32 => Some(Ty::I32),
        ValType::I64 => Some(Ty::I64),
        _ => None,
    };
    let params = ty.params().map(conv).collect::<Option<Vec<_>>>()?;
    let results = ty.results().map(conv).collect::<Option<Vec<_>>>()?;
    Some((params, results))
}

fn describe(ty: &wasmtime::FuncType) -> String {
    let p: Vec<String> = ty.params().map(|v| v.to_string()).collect();
    let r: Vec<String> = ty.results().map(|v| v.to_string()).collect();
    let r = match r.len() {
        0 => "()".to_string(),
        1 => r[0].clone(),
        _ => format!("({})", r.join(", ")),
    };
    format!("({}) -> {}", p.join(", "), r)
}

/// How an import of the module is satisfied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// By machvm, with this function.
    Mach(Import),
    /// By machvm: a bulk-memory check added by [`crate::enforce::rewrite`].
    Bulk(BulkCheck),
    /// By machvm: the `k`-th copy-window global added by [`crate::enforce::rewrite`].
    Window(usize),
    /// By the embedder's linker.
    Linker,
}

/// The checking functions [`crate::enforce::rewrite`] adds before bulk-memory instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BulkCheck {
    Copy,
    Fill,
    Init,
}

impl BulkCheck {
    fn from_name(name: &str) -> Option<BulkCheck> {
        Some(match name {
            rewrite::CHECK_COPY => BulkCheck::Copy,
            rewrite::CHECK_FILL => BulkCheck::Fill,
            rewrite::CHECK_INIT => BulkCheck::Init,
            _ => return None,
        })
    }

    fn params(self, w: Width) -> Vec<Ty> {
        let a = match w {
            Width::W32 => Ty::I32,
            Width::W64 => Ty::I64,
        };
        match self {
            BulkCheck::Copy => vec![a, a, a],
            BulkCheck::Fill => vec![a, a],
            BulkCheck::Init => vec![a, Ty::I32],
        }
    }
}

/// Where the task's memory comes from.
#[derive(Clone, Debug)]
enum MemorySource {
    /// Imported: the `n`-th import of the module.
    Imported(usize),
    /// Defined and exported under this name.
    Exported(String),
}

/// A module checked and prepared for instantiation as tasks, in the manner of Wasmtime's
/// `InstancePre`: its `mach` imports are matched against the ABI once, here, and every
/// instantiation only creates the task's functions.
pub struct TaskPre<T> {
    module: Module,
    slots: Vec<Slot>,
    /// The module went through [`crate::enforce::rewrite`] (it exports the marker).
    rewritten: bool,
    memory_ty: MemoryType,
    memory: MemorySource,
    _marker: std::marker::PhantomData<fn(T)>,
}

impl<T> Clone for TaskPre<T> {
    fn clone(&self) -> Self {
        TaskPre {
            module: self.module.clone(),
            slots: self.slots.clone(),
            rewritten: self.rewritten,
            memory_ty: self.memory_ty.clone(),
            memory: self.memory.clone(),
            _marker: std::marker::PhantomData,
        }
    }
}

impl<T: KernelView> TaskPre<T> {
    /// Checks `module`'s `"mach"` imports against the ABI of its memory's width and prepares
    /// it for instantiation as a task of the [`Kernel`](crate::Kernel) the store's data holds
    /// ([`KernelView`]).
    ///
    /// # Errors
    ///
    /// When the module has not exactly one linear memory (imported, or defined and
    /// exported), when its memory cannot be a task's (shared, custom page size), when it
    /// imports an unknown `mach` function, or one whose signature is not the one spec §3
    /// gives for its memory's width (the error names the import and the expected signature).
    ///
    /// ```
    /// use machvm::{Kernel, TaskPre};
    /// use wasmtime::{Engine, Linker, Module, Store};
    ///
    /// struct State { kernel: Kernel }
    /// impl machvm::KernelView for State { fn kernel(&mut self) -> &mut Kernel { &mut self.kernel } }
    ///
    /// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
    /// let module = machvm::compile(&engine, br#"(module
    ///     (import "mach" "vm_copy" (func (param i32 i32 i32 i32) (result i32)))
    ///     (memory (export "memory") 1))"#)?;
    /// // Checked once, instantiated as many tasks as needed.
    /// let pre = TaskPre::new(&module)?;
    /// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
    /// let linker = Linker::new(&engine);
    /// let (_, a) = pre.instantiate(&mut store, &linker)?;
    /// let (_, b) = pre.instantiate(&mut store, &linker)?;
    /// assert_eq!(store.data().kernel.task_ids().collect::<Vec<_>>(), [a, b]);
    ///
    /// // A mistyped import is refused with the signature machvm expects.
    /// let bad = Module::new(&engine, r#"(module
    ///     (import "mach" "vm_copy" (func (param i32) (result i32)))
    ///     (memory (export "memory") 1))"#)?;
    /// let err = TaskPre::<State>::new(&bad).err().unwrap();
    /// assert!(err.to_string().contains("machvm expects (i32, i32, i32, i32) -> i32"));
    /// # Ok::<(), wasmtime::Error>(())
    /// ```
    pub fn new<M: TaskModule + ?Sized>(module: &M) -> wasmtime::Result<Self> {
        let rewritten = module.bulk_checked();
        // The edge counters' memory (compile_with's coverage) is not the task's.
        let coverage = module.coverage_export();
        let module = module.as_module();
        let mut memory: Option<(MemoryType, MemorySource)> = None;
        let mut imported_memories = 0;
        for (i, imp) in module.imports().enumerate() {
            if let ExternType::Memory(ty) = imp.ty() {
                imported_memories += 1;
                memory.get_or_insert((ty, MemorySource::Imported(i)));
            }
        }
        let defined = module.resources_required().num_memories;
        if imported_memories + defined != 1 + u32::from(coverage.is_some()) {
            return Err(LinkError::Memories {
                imported: imported_memories,
                defined,
            }
            .into());
        }
        if memory.is_none() {
            let export = module
                .exports()
                .filter(|e| Some(e.name()) != coverage)
                .find_map(|e| match e.ty() {
                    ExternType::Memory(ty) => Some((ty, MemorySource::Exported(e.name().into()))),
                    _ => None,
                })
                .ok_or(LinkError::MemoryNotExported)?;
            memory = Some(export);
        }
        let (memory_ty, memory_source) = memory.expect("set above");
        crate::embed::kernel::check_memory_type(&memory_ty)?;
        let width = if memory_ty.is_64() {
            Width::W64
        } else {
            Width::W32
        };
        let mut slots = Vec::new();
        for imp in module.imports() {
            if imp.module() == rewrite::BULK_MODULE {
                let check = BulkCheck::from_name(imp.name()).filter(|c| {
                    matches!(imp.ty(), ExternType::Func(ft)
                        if signature_of(&ft) == Some((c.params(width), vec![])))
                });
                let Some(check) = check else {
                    return Err(LinkError::NotABulkCheck {
                        import: format!("{}::{}", imp.module(), imp.name()),
                        width,
                    }
                    .into());
                };
                slots.push(Slot::Bulk(check));
                continue;
            }
            if imp.module() == rewrite::WINDOW_MODULE {
                let addr = if width == Width::W64 {
                    ValType::I64
                } else {
                    ValType::I32
                };
                let k = rewrite::WINDOW_GLOBALS
                    .iter()
                    .position(|&n| n == imp.name())
                    .filter(|_| {
                        matches!(imp.ty(), ExternType::Global(g)
                            if g.mutability() == Mutability::Var && g.content().matches(&addr))
                    });
                // Each window global is given once: the rewrite's functions read them, and
                // no other import may reach them (it could write them).
                let Some(k) = k.filter(|&k| !slots.contains(&Slot::Window(k))) else {
                    return Err(LinkError::NotFromTheRewrite {
                        import: format!("{}::{}", imp.module(), imp.name()),
                        width,
                    }
                    .into());
                };
                slots.push(Slot::Window(k));
                continue;
            }
            if imp.module() != "mach" {
                slots.push(Slot::Linker);
                continue;
            }
            let Some(import) = Import::from_name(imp.name()) else {
                return Err(LinkError::UnknownMachImport {
                    name: imp.name().into(),
                    provided: Import::ALL.map(|i| i.name()).join(", "),
                }
                .into());
            };
            let want = (import.params(width), vec![Ty::I32]);
            let ok = match imp.ty() {
                ExternType::Func(ft) => signature_of(&ft).as_ref() == Some(&want),
                _ => false,
            };
            if !ok {
                let got = match imp.ty() {
                    ExternType::Func(ft) => format!("has signature {}", describe(&ft)),
                    other => format!("is not a function but {other:?}"),
                };
                return Err(LinkError::Signature {
                    import: format!("mach::{}", imp.name()),
                    width,
                    expected: import.signature(width),
                    found: got,
                }
                .into());
            }
            slots.push(Slot::Mach(import));
        }
        Ok(TaskPre {
            module: module.clone(),
            slots,
            rewritten,
            memory_ty,
            memory: memory_source,
            _marker: std::marker::PhantomData,
        })
    }

    /// The module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Instantiates the module as a new task of the store's kernel. Imports from `"mach"` are
    /// machvm's, every other import comes from `linker`.
    ///
    /// # Errors
    ///
    /// When an import is missing from `linker`, or instantiation fails (a trap in the start
    /// function, resource limits).
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        linker: &Linker<T>,
    ) -> wasmtime::Result<(Instance, TaskId)> {
        let mut store = store.as_context_mut();
        let get = view::<T>;
        if get(store.data_mut()).config().enforce {
            crate::embed::kernel::check_engine(store.engine())?;
            if !self.rewritten {
                return Err(LinkError::NotCompiled.into());
            }
        }
        let mut externs: Vec<Extern> = Vec::with_capacity(self.slots.len());
        let mut task_memory = None;
        let mut windows: [Option<Global>; 4] = [None; 4];
        // The task's id is known before it exists: the functions need it.
        let kernel = get(store.data_mut());
        let id = kernel.id_of(kernel.tasks.len());
        for (slot, imp) in self.slots.iter().zip(self.module.imports()) {
            match *slot {
                Slot::Mach(import) => {
                    let f = match self.memory_ty.is_64() {
                        false => make_func::<T, _, u32>(&mut store, import, id, get),
                        true => make_func::<T, _, u64>(&mut store, import, id, get),
                    };
                    externs.push(f.into());
                }
                Slot::Bulk(check) => {
                    let f = match self.memory_ty.is_64() {
                        false => bulk_func::<T, _, u32>(&mut store, check, id, get),
                        true => bulk_func::<T, _, u64>(&mut store, check, id, get),
                    };
                    externs.push(f.into());
                }
                Slot::Window(k) => {
                    let (ty, zero) = match self.memory_ty.is_64() {
                        false => (ValType::I32, Val::I32(0)),
                        true => (ValType::I64, Val::I64(0)),
                    };
                    // Closed (lo == hi == 0) until the task's first copy opens it.
                    let g = Global::new(&mut store, GlobalType::new(ty, Mutability::Var), zero)?;
                    windows[k] = Some(g);
                    externs.push(g.into());
                }
                Slot::Linker => {
                    let ext = linker.get_by_import(&mut store, &imp).ok_or_else(|| {
                        LinkError::Undefined {
                            import: format!("{}::{}", imp.module(), imp.name()),
                        }
                    })?;
                    externs.push(ext);
                }
            }
        }
        // An imported memory's map follows the memory given, not the import's declaration.
        let mut ty = self.memory_ty.clone();
        let export = match &self.memory {
            MemorySource::Imported(i) => {
                task_memory = externs.get(*i).and_then(|e| e.clone().into_memory());
                if let Some(m) = task_memory {
                    ty = m.ty(&store);
                }
                None
            }
            MemorySource::Exported(name) => Some(name.clone()),
        };
        if let Some(m) = task_memory {
            check_not_a_task(&mut store, get, m)?;
        }
        let kernel = get(store.data_mut());
        let created = kernel.create_task(&ty, task_memory, export)?;
        debug_assert_eq!(created, id);
        // With `copy_in_wasm` off the globals stay closed, and every copy is the host's.
        if let ([Some(a), Some(b), Some(c), Some(d)], true) =
            (windows, kernel.config().copy_in_wasm)
        {
            kernel.tasks[id.index()].serve_windows([a, b, c, d]);
        }
        let instance = match Instance::new(&mut store, &self.module, &externs) {
            Ok(instance) => instance,
            Err(e) => {
                // The start function may have changed the memory's protections (an
                // imported memory outlives this failure): give it back read-write, and
                // retire the task's id.
                let kernel = get(store.data_mut());
                kernel.protected.clear(id.index());
                kernel.tasks[id.index()].retire();
                return Err(e);
            }
        };
        if let MemorySource::Exported(name) = &self.memory {
            let mem = instance.get_memory(&mut store, name);
            get(store.data_mut()).tasks[id.index()].memory = mem;
        }
        remember_base(&mut store, get, id);
        vm::sync(&mut StoreEnv::new(store, get), id);
        Ok((instance, id))
    }
}

/// Instantiates `module` as a new task of the kernel in `store`'s data ([`KernelView`]):
/// `"mach"` imports are machvm's (the variant that matches the memory's width), every other
/// import comes from `linker`. Use [`TaskPre`] to instantiate one module many times.
///
/// ```
/// use machvm::{Kernel, instantiate};
/// use wasmtime::{Engine, Linker, Store};
///
/// // The store's data can be the kernel itself.
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let module = machvm::compile(&engine, br#"(module
///     (import "mach" "mach_task_self" (func $self (result i32)))
///     (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
///     (memory (export "memory") 1)
///     (func (export "run") (result i32)
///         ;; make page 1 read-only
///         (call $protect (call $self) (i32.const 4096) (i32.const 4096) (i32.const 0) (i32.const 1))))"#)?;
/// let mut store = Store::new(&engine, Kernel::new()?);
/// let linker = Linker::new(&engine);
/// let (instance, task) = instantiate(&mut store, &linker, &module)?;
/// let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
/// assert_eq!(run.call(&mut store, ())?, machvm::abi::KERN_SUCCESS.0);
/// let page = store.data().task(task).unwrap().table().get(1).unwrap();
/// assert_eq!(page.cur, machvm::abi::VM_PROT_READ);
/// # Ok::<(), wasmtime::Error>(())
/// ```
///
/// # Errors
///
/// As [`TaskPre::new`] and [`TaskPre::instantiate`].
pub fn instantiate<T: KernelView, M: TaskModule + ?Sized>(
    store: impl AsContextMut<Data = T>,
    linker: &Linker<T>,
    module: &M,
) -> wasmtime::Result<(Instance, TaskId)> {
    TaskPre::new(module)?.instantiate(store, linker)
}

/// Keeps the base address of task `id`'s memory in the task when the engine never moves
/// memories, for the fast paths of the calls.
pub(super) fn remember_base<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    id: TaskId,
) {
    let Some(memory) = get(store.data_mut()).tasks[id.index()].memory else {
        return;
    };
    if get(store.data_mut()).tasks[id.index()].enforced() {
        // A pooled slot freed by a store whose kernel had been taken out of it may still
        // carry that kernel's protections: give the new task's bytes back read-write.
        let (base, size) = (memory.data_ptr(&*store) as usize, memory.data_size(&*store));
        crate::enforce::heal_stale(base, size);
    }
    place_sentinel(store, get);
    if crate::embed::kernel::memory_never_moves(store.engine()) {
        let base = memory.data_ptr(&*store) as usize;
        get(store.data_mut()).tasks[id.index()].set_fixed_base(base);
    }
}

/// Gives the store of the kernel's tasks its `enforce::Sentinel` (once per kernel): a
/// function of the store that keeps it, dropped with the store.
fn place_sentinel<T: 'static>(store: &mut StoreContextMut<'_, T>, get: impl GetKernel<T>) {
    let kernel = get(store.data_mut());
    if kernel.store_alive.is_some() {
        return;
    }
    let alive = Arc::new(());
    kernel.store_alive = Some(Arc::downgrade(&alive));
    let sentinel = crate::enforce::Sentinel {
        protected: kernel.protected.clone(),
        _alive: alive,
    };
    // Never called: the store owns it, and drops it (and the sentinel) with itself.
    Func::wrap(&mut *store, move || {
        let _ = &sentinel;
    });
}

/// Refuses a memory that is already a task's: two tables cannot govern one memory.
fn check_not_a_task<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    memory: Memory,
) -> wasmtime::Result<()> {
    let base = memory.data_ptr(&*store) as usize;
    if find_task(store, get, base).is_some() {
        return Err(LinkError::AlreadyATask.into());
    }
    Ok(())
}

/// The live task whose memory's base is `base`, if any (base addresses are unique among a
/// store's live memories).
pub(super) fn find_task<T: 'static>(
    cx: &mut StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    base: usize,
) -> Option<TaskId> {
    let n = get(cx.data_mut()).tasks.len();
    (0..n).find_map(|i| {
        let t = &get(cx.data_mut()).tasks[i];
        let (fixed, mem, t_gone) = (t.fixed_base(), t.memory?, t.gone());
        let known = match fixed {
            0 => mem.data_ptr(&*cx) as usize,
            fixed => fixed,
        };
        (known == base && !t_gone).then(|| get(cx.data_mut()).id_of(i))
    })
}

/// Makes an existing memory a new task of the kernel; the table allocates the memory's
/// current pages. Only for kernels without enforcement: machvm cannot know what code
/// already uses a memory it did not create, and a module not compiled with
/// [`compile`] that defines or imports it would run unchecked bulk-memory instructions on
/// pages the guest protected. With enforcement, use [`new_task`] (machvm creates the memory)
/// or [`TaskPre`].
///
/// # Errors
///
/// When the kernel enforces protections, or the memory is shared, has a custom page size or
/// is a task's already.
pub fn register_memory<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    memory: Memory,
) -> wasmtime::Result<TaskId> {
    let get = view::<T>;
    let mut store = store.as_context_mut();
    if get(store.data_mut()).config().enforce {
        return Err(ConfigError::RegisterWithEnforcement.into());
    }
    register(&mut store, get, memory)
}

/// Makes `memory` a task (see [`register_memory`] and [`new_task`]).
fn register<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    memory: Memory,
) -> wasmtime::Result<TaskId> {
    let ty = memory.ty(&*store);
    if get(store.data_mut()).config().enforce {
        crate::embed::kernel::check_engine(store.engine())?;
    }
    check_not_a_task(store, get, memory)?;
    let id = get(store.data_mut()).create_task(&ty, Some(memory), None)?;
    remember_base(store, get, id);
    vm::sync(&mut StoreEnv::new(store.as_context_mut(), get), id);
    Ok(id)
}

/// Creates a memory of type `ty` in the store and makes it a new task (a task with no
/// instance: guests reach it through send rights, the host through [`call`] and
/// [`host`](crate::host)).
///
/// ```
/// use machvm::{host, Kernel};
/// use wasmtime::{Engine, MemoryType, Store};
///
/// struct State { kernel: Kernel }
/// impl machvm::KernelView for State { fn kernel(&mut self) -> &mut Kernel { &mut self.kernel } }
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
/// // Two wasm pages, at most 16: the map is 1 MiB, the first 128 KiB are allocated.
/// let task = machvm::new_task(&mut store, MemoryType::new(2, Some(16)))?;
/// assert_eq!(store.data().kernel.task(task).unwrap().map_limit(), 16 * 65536);
/// let regions = host::regions(&mut store, task)?;
/// assert_eq!((regions[0].start, regions[0].size), (0, 2 * 65536));
/// # Ok::<(), wasmtime::Error>(())
/// ```
///
/// # Errors
///
/// When the memory cannot be created or cannot be a task's.
pub fn new_task<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    ty: MemoryType,
) -> wasmtime::Result<TaskId> {
    let get = view::<T>;
    crate::embed::kernel::check_memory_type(&ty)?;
    let mut store = store.as_context_mut();
    if get(store.data_mut()).config().enforce {
        crate::embed::kernel::check_engine(store.engine())?;
    }
    let memory = Memory::new(&mut store, ty)?;
    register(&mut store, get, memory)
}

/// Runs a Mach call on behalf of `task` from the host, with exactly the checks a guest call
/// gets: scalar pointers in the call are in `task`'s memory, port names in its namespace.
///
/// # Errors
///
/// When `task` is not a task of the kernel. The call's own outcome, a `kern_return_t` or a
/// fault on a scalar parameter, is the `Ok` value.
pub fn call<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
    call: &Call,
) -> wasmtime::Result<Outcome> {
    let get = view::<T>;
    let mut cx = store.as_context_mut();
    get(cx.data_mut()).check_task(task)?;
    Ok(vm::call(&mut StoreEnv::new(cx, get), task, call))
}

/// A module compiled by [`compile`]: its bulk-memory instructions are preceded by
/// page-table checks, which enforcement needs. Only [`compile`] makes one, so holding one
/// proves it; it is used as the [`Module`] it derefs to.
#[derive(Clone)]
pub struct Compiled {
    module: Module,
    /// The rewrites' maps, from the compiled module back to the module as written: the
    /// bulk-memory checks', then the coverage's and the guard heap's when there.
    source_maps: Arc<Vec<rewrite::SourceMap>>,
    /// The edge counters [`compile_with`] added.
    coverage: Option<Arc<Coverage>>,
    /// The allocator functions [`compile_with`] sent to the guard heap or exported.
    heap: Option<Arc<Vec<(u32, AllocFn, String)>>>,
}

impl Compiled {
    /// The Wasmtime module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Where an offset of the compiled module (a backtrace frame's
    /// [`wasmtime::FrameInfo::module_offset`]) lies in the module as written, where its
    /// DWARF line tables point: the rewrites moved the code.
    pub fn original_offset(&self, module_offset: usize) -> Option<usize> {
        self.source_maps
            .iter()
            .try_fold(module_offset, |offset, map| map.original(offset))
    }

    /// Where the module counts its edges, when it was compiled with
    /// [`CompileOptions::coverage`]: an instance's memory exported as
    /// [`Coverage::export`] holds one 8-bit counter per edge.
    pub fn coverage(&self) -> Option<&Coverage> {
        self.coverage.as_deref()
    }

    /// The module's allocator functions that [`compile_with`] rewrote: with
    /// [`CompileOptions::guard_heap`], those that call the guard heap's imports; with
    /// [`CompileOptions::export_allocator`] alone, its `malloc` and `free`, exported (none
    /// when they were not found). Each one's index in the module as
    /// written, what it is and its name there.
    pub fn heap_functions(&self) -> Option<&[(u32, AllocFn, String)]> {
        self.heap.as_deref().map(Vec::as_slice)
    }
}

/// How [`compile_with`] prepares a module, beyond what [`compile`] does.
///
/// ```
/// let engine = wasmtime::Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let options = machvm::CompileOptions::new().coverage(true);
/// let wat = r#"(module (memory 1) (func (export "f") (param i32)
///     (if (local.get 0) (then (nop)))))"#;
/// let compiled = machvm::compile_with(&engine, wat.as_bytes(), &options)?;
/// // The entry, the `then` arm, the edge that skips it and the join after the `if`.
/// assert_eq!(compiled.coverage().unwrap().edges, 4);
/// # Ok::<(), wasmtime::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompileOptions {
    /// Count the module's edges in counters of their own (see [`crate::fuzz::coverage`]),
    /// for coverage-guided fuzzing. The counters are a second memory of the module: an
    /// engine with Wasmtime's pooling allocator needs
    /// `PoolingAllocationConfig::max_memories_per_module(2)` to instantiate it.
    pub coverage: bool,
    /// Send the module's `malloc` family to the host's guard heap (see
    /// [`crate::fuzz::heap`]): the module then imports [`crate::fuzz::heap::HEAP_MODULE`]'s
    /// functions, which [`crate::fuzz::heap::add_to_linker`] defines.
    pub guard_heap: bool,
    /// Export the module's own `malloc` and `free` as
    /// [`crate::fuzz::heap::OWN_MALLOC_EXPORT`] and [`crate::fuzz::heap::OWN_FREE_EXPORT`]
    /// (see [`crate::fuzz::heap::export_allocator`]), so that the host can start the
    /// module's heap before it maps pages of its own. No effect with
    /// [`guard_heap`](CompileOptions::guard_heap), whose allocator is the host's.
    pub export_allocator: bool,
}

impl CompileOptions {
    /// What [`compile`] does: the bulk-memory checks only.
    pub fn new() -> CompileOptions {
        CompileOptions::default()
    }

    /// With `on`, the module counts its edges ([`Compiled::coverage`]).
    pub fn coverage(mut self, on: bool) -> CompileOptions {
        self.coverage = on;
        self
    }

    /// With `on`, the module's allocator is the guard heap ([`Compiled::heap_functions`]).
    pub fn guard_heap(mut self, on: bool) -> CompileOptions {
        self.guard_heap = on;
        self
    }

    /// With `on`, the module exports its own `malloc` and `free`
    /// ([`Compiled::heap_functions`]).
    pub fn export_allocator(mut self, on: bool) -> CompileOptions {
        self.export_allocator = on;
        self
    }
}

impl std::ops::Deref for Compiled {
    type Target = Module;

    fn deref(&self) -> &Module {
        &self.module
    }
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Compiled")
            .field(&self.module.name())
            .finish()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for wasmtime::Module {}
    impl Sealed for super::Compiled {}
}

/// What a task can be made of ([`TaskPre::new`], [`instantiate`]): a [`Compiled`] module,
/// or a plain [`Module`], whose bulk-memory instructions are not checked and which is
/// therefore refused while enforcement is on.
pub trait TaskModule: sealed::Sealed {
    /// The Wasmtime module.
    fn as_module(&self) -> &Module;
    /// True when the module went through [`compile`]'s rewrite.
    fn bulk_checked(&self) -> bool;
    /// The export name of the edge counters' memory that [`compile_with`] added: a second
    /// memory, which is not the task's.
    fn coverage_export(&self) -> Option<&str> {
        None
    }
}

impl TaskModule for Module {
    fn as_module(&self) -> &Module {
        self
    }

    fn bulk_checked(&self) -> bool {
        false
    }
}

impl TaskModule for Compiled {
    fn as_module(&self) -> &Module {
        &self.module
    }

    fn bulk_checked(&self) -> bool {
        true
    }

    fn coverage_export(&self) -> Option<&str> {
        self.coverage().map(|c| c.export.as_str())
    }
}

/// Compiles a module (binary or text) for machvm: its bulk-memory instructions are
/// preceded by page-table checks (see [`crate::enforce::rewrite`]), which enforcement needs; the
/// module is otherwise unchanged. Use an engine set up with [`crate::configure`].
///
/// # Errors
///
/// When the bytes are not a valid module (text errors carry their line and column), or
/// Wasmtime cannot compile it.
pub fn compile(engine: &wasmtime::Engine, bytes: &[u8]) -> wasmtime::Result<Compiled> {
    compile_with(engine, bytes, &CompileOptions::new())
}

/// [`compile`], with the additions `options` asks for, in this order: with
/// [`guard_heap`](CompileOptions::guard_heap), the module's allocator calls the host
/// ([`crate::fuzz::heap::redirect`]), or with
/// [`export_allocator`](CompileOptions::export_allocator) it exports its own
/// ([`crate::fuzz::heap::export_allocator`]); with [`coverage`](CompileOptions::coverage), it gets
/// its edge counters ([`crate::fuzz::coverage::instrument`]; the allocator's replaced bodies
/// count too); then the bulk-memory checks.
///
/// # Errors
///
/// As [`compile`]; with coverage, also when the module does not have exactly one memory;
/// with the guard heap, when its `malloc` and `free` cannot be found.
pub fn compile_with(
    engine: &wasmtime::Engine,
    bytes: &[u8],
    options: &CompileOptions,
) -> wasmtime::Result<Compiled> {
    let mut wasm = wat::parse_bytes(bytes).map_err(|e| wasmtime::format_err!("{e}"))?;
    // Applied first, mapped back last.
    let mut maps = Vec::new();
    let heap = if options.guard_heap || options.export_allocator {
        let r = if options.guard_heap {
            crate::fuzz::heap::redirect(&wasm)?
        } else {
            crate::fuzz::heap::export_allocator(&wasm)?
        };
        maps.push(r.source_map);
        wasm = r.wasm.into();
        Some(Arc::new(r.functions))
    } else {
        None
    };
    let coverage = if options.coverage {
        let i = crate::fuzz::coverage::instrument(&wasm)?;
        maps.push(i.source_map);
        wasm = i.wasm.into();
        Some(Arc::new(i.coverage))
    } else {
        None
    };
    let (wasm, source_map) = rewrite::rewrite_mapped(&wasm)?;
    maps.push(source_map);
    maps.reverse();
    Ok(Compiled {
        module: Module::new(engine, &wasm)?,
        source_maps: Arc::new(maps),
        coverage,
        heap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{KERN_SUCCESS, VM_PROT_READ};
    use crate::embed::Kernel;
    use crate::vm::Env;
    use wasmtime::{Config, Engine, Store};

    const GUEST: &str = r#"(module
        (import "mach" "mach_task_self" (func $self (result i32)))
        (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
        (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
        (import "mach" "host_page_size" (func $hps (param i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "load") (result i32) (i32.load (i32.const 0x2000)))
        (func (export "protect") (result i32)
          (call $protect (call $self) (i32.const 0x3000) (i32.const 0x1000) (i32.const 0) (i32.const 1)))
        (func (export "copy") (result i32)
          (call $copy (call $self) (i32.const 0x2000) (i32.const 16) (i32.const 0x4000)))
        (func (export "page_size") (result i32) (call $hps (i32.const 0) (i32.const 0x10)))
        (func (export "fill") (memory.fill (i32.const 0x2000) (i32.const 1) (i32.const 16))))"#;

    /// A task whose hardware could not be brought back in line with its table is stopped:
    /// every call traps saying why, every load traps, and no host path touches its memory
    /// (the fast paths included, which would fault on it). In a child process: a path that
    /// touched the memory would kill it.
    #[test]
    fn a_stopped_task_runs_no_more_guest_code_that_touches_memory() {
        let test = format!(
            "{}::a_stopped_task_runs_no_more_guest_code_that_touches_memory",
            module_path!().trim_start_matches("machvm::")
        );
        if !crate::child::in_child(&test, "stopped task: done") {
            return;
        }
        let engine = Engine::new(crate::configure(&mut Config::new())).unwrap();
        let module = compile(&engine, GUEST.as_bytes()).unwrap();
        let mut store = Store::new(&engine, Kernel::new().unwrap());
        let (instance, task) = instantiate(&mut store, &Linker::new(&engine), &module).unwrap();
        let run = |store: &mut Store<Kernel>, name: &str| {
            instance
                .get_typed_func::<(), i32>(&mut *store, name)
                .unwrap()
                .call(&mut *store, ())
        };
        // Before: everything works, and a copy opens the windows.
        assert_eq!(run(&mut store, "copy").unwrap(), KERN_SUCCESS.0);
        assert_eq!(run(&mut store, "page_size").unwrap(), KERN_SUCCESS.0);
        crate::host::protect(&mut store, task, 0x5000, 0x1000, false, VM_PROT_READ).unwrap();
        StoreEnv::new(store.as_context_mut(), crate::embed::view).out_of_line(task);
        for name in ["protect", "copy", "page_size"] {
            let e = run(&mut store, name).unwrap_err();
            assert!(format!("{e:?}").contains("is stopped"), "{name}: {e:?}");
        }
        let fill = instance
            .get_typed_func::<(), ()>(&mut store, "fill")
            .unwrap();
        let e = fill.call(&mut store, ()).unwrap_err();
        assert!(format!("{e:?}").contains("is stopped"), "fill: {e:?}");
        assert!(run(&mut store, "load").is_err());
        // The host API refuses it too, instead of touching its memory.
        assert!(crate::host::read_bytes(&mut store, task, 0x2000, 4).is_err());
        assert!(crate::host::protect(
            &mut store,
            task,
            0x5000,
            0x1000,
            false,
            crate::abi::VM_PROT_DEFAULT
        )
        .is_err());
        println!("stopped task: done");
    }
}
