//! The `"mach"` imports, and instantiating modules as tasks.
//!
//! Each task gets its own host functions, closures that know the task they serve: a call
//! finds its task with no lookup at all. The import functions are thin: they decode the
//! wasm arguments into a [`Call`], run [`vm::call`] and encode the result.

use std::fmt;
use std::ptr;
use std::sync::Arc;

use wasmtime::{
    AsContextMut, Caller, Extern, ExternType, Func, Global, GlobalType, Instance, Linker, Memory,
    MemoryType, Module, Mutability, StoreContextMut, Val, ValType, WasmTy,
};

use crate::calls::{Call, Form, Outcome, Width};
use crate::consts::{HOST_SELF_NAME, TASK_SELF_NAME};
use crate::enforce::{AccessKind, BadAccess};
use crate::kernel::Kernel;
use crate::rewrite;
use crate::trace::{self, ParamLog};
use crate::vm::{self, Env, TaskId, TaskVm, WASM_PAGE};

/// The projection from a store's data to its [`Kernel`], as in
/// `|state: &mut MyState| &mut state.kernel`.
pub trait GetKernel<T>: Fn(&mut T) -> &mut Kernel + Send + Sync + Copy + 'static {}

impl<T, F> GetKernel<T> for F where F: Fn(&mut T) -> &mut Kernel + Send + Sync + Copy + 'static {}

/// One import of module `"mach"` (spec §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Import {
    /// `mach_task_self`.
    TaskSelf,
    /// `mach_host_self`.
    HostSelf,
    /// `host_page_size`.
    HostPageSize,
    /// `vm_allocate` / `mach_vm_allocate`.
    Allocate(Form),
    /// `vm_deallocate` / `mach_vm_deallocate`.
    Deallocate(Form),
    /// `vm_protect` / `mach_vm_protect`.
    Protect(Form),
    /// `vm_copy` / `mach_vm_copy`.
    Copy(Form),
    /// `vm_read` / `mach_vm_read`.
    Read(Form),
    /// `vm_read_overwrite` / `mach_vm_read_overwrite`.
    ReadOverwrite(Form),
    /// `vm_write` / `mach_vm_write`.
    Write(Form),
    /// `vm_region_64` / `mach_vm_region`.
    Region(Form),
    /// `vm_region`, the word-sized form of `vm_region_64` (spec §9).
    VmRegion,
    /// `vm_behavior_set` / `mach_vm_behavior_set`.
    BehaviorSet(Form),
    /// `vm_msync` / `mach_vm_msync`.
    Msync(Form),
    /// `vm_wire` / `mach_vm_wire`.
    Wire(Form),
    /// `vm_map_page_query` / `mach_vm_page_query`.
    PageQuery(Form),
    /// `mach_vm_page_info`.
    PageInfo,
    /// `mach_vm_page_range_query`.
    PageRangeQuery,
    /// `task_info`.
    TaskInfo,
    /// `host_statistics64`.
    HostStatistics64,
    /// `vm_purgable_control` / `mach_vm_purgable_control`.
    PurgableControl(Form),
}

/// A wasm value type of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    I32,
    I64,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::I32 => "i32",
            Ty::I64 => "i64",
        })
    }
}

impl Import {
    /// Every import, `vm_*` and `mach_vm_*` forms.
    pub const ALL: [Import; 34] = {
        use Form::*;
        use Import::*;
        [
            TaskSelf,
            HostSelf,
            HostPageSize,
            Allocate(Vm),
            Deallocate(Vm),
            Protect(Vm),
            Copy(Vm),
            Read(Vm),
            ReadOverwrite(Vm),
            Write(Vm),
            Region(Vm),
            Allocate(MachVm),
            Deallocate(MachVm),
            Protect(MachVm),
            Copy(MachVm),
            Read(MachVm),
            ReadOverwrite(MachVm),
            Write(MachVm),
            Region(MachVm),
            VmRegion,
            BehaviorSet(Vm),
            BehaviorSet(MachVm),
            Msync(Vm),
            Msync(MachVm),
            Wire(Vm),
            Wire(MachVm),
            PageQuery(Vm),
            PageQuery(MachVm),
            PageInfo,
            PageRangeQuery,
            TaskInfo,
            HostStatistics64,
            PurgableControl(Vm),
            PurgableControl(MachVm),
        ]
    };

    /// The import's name in module `"mach"`.
    pub fn name(self) -> &'static str {
        use Form::*;
        use Import::*;
        match self {
            TaskSelf => "mach_task_self",
            HostSelf => "mach_host_self",
            HostPageSize => "host_page_size",
            Allocate(Vm) => "vm_allocate",
            Deallocate(Vm) => "vm_deallocate",
            Protect(Vm) => "vm_protect",
            Copy(Vm) => "vm_copy",
            Read(Vm) => "vm_read",
            ReadOverwrite(Vm) => "vm_read_overwrite",
            Write(Vm) => "vm_write",
            Region(Vm) => "vm_region_64",
            Allocate(MachVm) => "mach_vm_allocate",
            Deallocate(MachVm) => "mach_vm_deallocate",
            Protect(MachVm) => "mach_vm_protect",
            Copy(MachVm) => "mach_vm_copy",
            Read(MachVm) => "mach_vm_read",
            ReadOverwrite(MachVm) => "mach_vm_read_overwrite",
            Write(MachVm) => "mach_vm_write",
            Region(MachVm) => "mach_vm_region",
            VmRegion => "vm_region",
            BehaviorSet(Vm) => "vm_behavior_set",
            BehaviorSet(MachVm) => "mach_vm_behavior_set",
            Msync(Vm) => "vm_msync",
            Msync(MachVm) => "mach_vm_msync",
            Wire(Vm) => "vm_wire",
            Wire(MachVm) => "mach_vm_wire",
            PageQuery(Vm) => "vm_map_page_query",
            PageQuery(MachVm) => "mach_vm_page_query",
            PageInfo => "mach_vm_page_info",
            PageRangeQuery => "mach_vm_page_range_query",
            TaskInfo => "task_info",
            HostStatistics64 => "host_statistics64",
            PurgableControl(Vm) => "vm_purgable_control",
            PurgableControl(MachVm) => "mach_vm_purgable_control",
        }
    }

    /// The import of that name.
    pub fn from_name(name: &str) -> Option<Import> {
        Import::ALL.into_iter().find(|i| i.name() == name)
    }

    /// The wasm parameter types for a guest of width `w` (the result is always one i32).
    fn params(self, w: Width) -> Vec<Ty> {
        use Import::*;
        let word = match w {
            Width::W32 => Ty::I32,
            Width::W64 => Ty::I64,
        };
        let (i, p) = (Ty::I32, word);
        let a = |f: Form| match f {
            Form::Vm => word,
            Form::MachVm => Ty::I64,
        };
        match self {
            TaskSelf | HostSelf => vec![],
            HostPageSize => vec![i, p],
            Allocate(f) => vec![i, p, a(f), i],
            Deallocate(f) => vec![i, a(f), a(f)],
            Protect(f) => vec![i, a(f), a(f), i, i],
            Copy(f) => vec![i, a(f), a(f), a(f)],
            Read(f) => vec![i, a(f), a(f), p, p],
            ReadOverwrite(f) => vec![i, a(f), a(f), a(f), p],
            Write(f) => vec![i, a(f), word, i],
            Region(_) | VmRegion => vec![i, p, p, i, p, p, p],
            BehaviorSet(f) | Msync(f) => vec![i, a(f), a(f), i],
            Wire(f) => vec![i, i, a(f), a(f), i],
            PageQuery(f) => vec![i, a(f), p, p],
            PageInfo => vec![i, Ty::I64, i, p, p],
            PageRangeQuery => vec![i, Ty::I64, Ty::I64, Ty::I64, p],
            TaskInfo | HostStatistics64 => vec![i, i, p, p],
            PurgableControl(f) => vec![i, a(f), i, p],
        }
    }

    /// The call this import makes with `args`, the wasm arguments in parameter order, each
    /// zero-extended to `u64` (the inverse of [`Call::args`]). Missing arguments read as 0.
    pub fn call(self, args: &[u64]) -> Call {
        use Import::*;
        let a = |k: usize| args.get(k).copied().unwrap_or(0);
        // Ports, flags, protections and flavors are i32 in every signature.
        let n = |k: usize| a(k) as u32;
        match self {
            TaskSelf => Call::TaskSelf,
            HostSelf => Call::HostSelf,
            HostPageSize => Call::HostPageSize {
                host: n(0),
                size_ptr: a(1),
            },
            Allocate(form) => Call::Allocate {
                form,
                task: n(0),
                addr_ptr: a(1),
                size: a(2),
                flags: n(3),
            },
            Deallocate(form) => Call::Deallocate {
                form,
                task: n(0),
                addr: a(1),
                size: a(2),
            },
            Protect(form) => Call::Protect {
                form,
                task: n(0),
                addr: a(1),
                size: a(2),
                set_max: n(3),
                prot: n(4),
            },
            Copy(form) => Call::Copy {
                form,
                task: n(0),
                src: a(1),
                size: a(2),
                dst: a(3),
            },
            Read(form) => Call::Read {
                form,
                task: n(0),
                addr: a(1),
                size: a(2),
                data_ptr: a(3),
                count_ptr: a(4),
            },
            ReadOverwrite(form) => Call::ReadOverwrite {
                form,
                task: n(0),
                addr: a(1),
                size: a(2),
                data: a(3),
                outsize_ptr: a(4),
            },
            Write(form) => Call::Write {
                form,
                task: n(0),
                addr: a(1),
                data: a(2),
                count: n(3),
            },
            Region(form) => Call::Region {
                form,
                task: n(0),
                addr_ptr: a(1),
                size_ptr: a(2),
                flavor: n(3),
                info_ptr: a(4),
                count_ptr: a(5),
                object_name_ptr: a(6),
            },
            VmRegion => Call::VmRegion {
                task: n(0),
                addr_ptr: a(1),
                size_ptr: a(2),
                flavor: n(3),
                info_ptr: a(4),
                count_ptr: a(5),
                object_name_ptr: a(6),
            },
            BehaviorSet(form) => Call::BehaviorSet {
                form,
                task: n(0),
                addr: a(1),
                size: a(2),
                behavior: n(3),
            },
            Msync(form) => Call::Msync {
                form,
                task: n(0),
                addr: a(1),
                size: a(2),
                flags: n(3),
            },
            Wire(form) => Call::Wire {
                form,
                host: n(0),
                task: n(1),
                addr: a(2),
                size: a(3),
                prot: n(4),
            },
            PageQuery(form) => Call::PageQuery {
                form,
                task: n(0),
                addr: a(1),
                disposition_ptr: a(2),
                ref_count_ptr: a(3),
            },
            PageInfo => Call::PageInfo {
                task: n(0),
                addr: a(1),
                flavor: n(2),
                info_ptr: a(3),
                count_ptr: a(4),
            },
            PageRangeQuery => Call::PageRangeQuery {
                task: n(0),
                addr: a(1),
                size: a(2),
                dispositions: a(3),
                count_ptr: a(4),
            },
            TaskInfo => Call::TaskInfo {
                task: n(0),
                flavor: n(1),
                info_ptr: a(2),
                count_ptr: a(3),
            },
            HostStatistics64 => Call::HostStatistics64 {
                host: n(0),
                flavor: n(1),
                info_ptr: a(2),
                count_ptr: a(3),
            },
            PurgableControl(form) => Call::PurgableControl {
                form,
                task: n(0),
                addr: a(1),
                control: n(2),
                state_ptr: a(3),
            },
        }
    }

    /// The signature for a guest of width `w`, as `(i32, i64) -> i32`.
    pub fn signature(self, w: Width) -> String {
        let params: Vec<String> = self.params(w).iter().map(|t| t.to_string()).collect();
        format!("({}) -> i32", params.join(", "))
    }
}

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
    /// By machvm: a bulk-memory check added by [`crate::rewrite`].
    Bulk(BulkCheck),
    /// By machvm: the `k`-th copy-window global added by [`crate::rewrite`].
    Window(usize),
    /// By the embedder's linker.
    Linker,
}

/// The checking functions [`crate::rewrite`] adds before bulk-memory instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BulkCheck {
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
pub struct TaskPre<T, G> {
    module: Module,
    slots: Vec<Slot>,
    /// The module went through [`crate::rewrite`] (it exports the marker).
    rewritten: bool,
    memory_ty: MemoryType,
    memory: MemorySource,
    get: G,
    _marker: std::marker::PhantomData<fn(T)>,
}

impl<T, G> Clone for TaskPre<T, G>
where
    G: Copy,
{
    fn clone(&self) -> Self {
        TaskPre {
            module: self.module.clone(),
            slots: self.slots.clone(),
            rewritten: self.rewritten,
            memory_ty: self.memory_ty.clone(),
            memory: self.memory.clone(),
            get: self.get,
            _marker: std::marker::PhantomData,
        }
    }
}

impl<T: 'static, G: GetKernel<T>> TaskPre<T, G> {
    /// Checks `module`'s `"mach"` imports against the ABI of its memory's width and prepares
    /// it for instantiation as a task. `get` projects the store's data to its [`Kernel`].
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
    /// fn get(s: &mut State) -> &mut Kernel { &mut s.kernel }
    ///
    /// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
    /// let module = machvm::compile(&engine, br#"(module
    ///     (import "mach" "vm_copy" (func (param i32 i32 i32 i32) (result i32)))
    ///     (memory (export "memory") 1))"#)?;
    /// // Checked once, instantiated as many tasks as needed.
    /// let pre = TaskPre::new(&module, get)?;
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
    /// let err = TaskPre::new(&bad, get).err().unwrap();
    /// assert!(err.to_string().contains("machvm expects (i32, i32, i32, i32) -> i32"));
    /// # Ok::<(), wasmtime::Error>(())
    /// ```
    pub fn new<M: TaskModule + ?Sized>(module: &M, get: G) -> wasmtime::Result<Self> {
        let rewritten = module.bulk_checked();
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
        if imported_memories + defined != 1 {
            wasmtime::bail!(
                "machvm: a task's module must have exactly one linear memory; this one has {} \
                 ({imported_memories} imported, {defined} defined)",
                imported_memories + defined
            );
        }
        if memory.is_none() {
            let export = module
                .exports()
                .find_map(|e| match e.ty() {
                    ExternType::Memory(ty) => Some((ty, MemorySource::Exported(e.name().into()))),
                    _ => None,
                })
                .ok_or_else(|| {
                    wasmtime::format_err!(
                        "machvm: the module defines its memory but does not export it; machvm \
                         needs it exported (C: link with -Wl,--export-memory)"
                    )
                })?;
            memory = Some(export);
        }
        let (memory_ty, memory_source) = memory.expect("set above");
        crate::kernel::check_memory_type(&memory_ty)?;
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
                    wasmtime::bail!(
                        "machvm: import `{}::{}` is not one machvm's bulk-memory rewrite makes \
                         (for a {}-bit memory)",
                        imp.module(),
                        imp.name(),
                        width.bits()
                    );
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
                    wasmtime::bail!(
                        "machvm: import `{}::{}` is not one machvm's rewrite makes (for a \
                         {}-bit memory), or is imported twice",
                        imp.module(),
                        imp.name(),
                        width.bits()
                    );
                };
                slots.push(Slot::Window(k));
                continue;
            }
            if imp.module() != "mach" {
                slots.push(Slot::Linker);
                continue;
            }
            let Some(import) = Import::from_name(imp.name()) else {
                wasmtime::bail!(
                    "machvm: unknown import `mach::{}`; machvm provides {}",
                    imp.name(),
                    Import::ALL.map(|i| i.name()).join(", ")
                );
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
                wasmtime::bail!(
                    "machvm: import `mach::{}` {got}; for a {}-bit memory machvm expects {}",
                    imp.name(),
                    width.bits(),
                    import.signature(width)
                );
            }
            slots.push(Slot::Mach(import));
        }
        Ok(TaskPre {
            module: module.clone(),
            slots,
            rewritten,
            memory_ty,
            memory: memory_source,
            get,
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
        let get = self.get;
        if get(store.data_mut()).config().enforce {
            crate::kernel::check_engine(store.engine())?;
            if !self.rewritten {
                wasmtime::bail!(
                    "machvm: page-protection enforcement is on, but the module was not \
                     compiled with `machvm::compile`, which makes its bulk-memory instructions \
                     safe to run on protected memory (or turn enforcement off: \
                     `KernelConfig::enforce`)"
                );
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
                        false => make_func::<T, G, u32>(&mut store, import, id, get),
                        true => make_func::<T, G, u64>(&mut store, import, id, get),
                    };
                    externs.push(f.into());
                }
                Slot::Bulk(check) => {
                    let f = match self.memory_ty.is_64() {
                        false => bulk_func::<T, G, u32>(&mut store, check, id, get),
                        true => bulk_func::<T, G, u64>(&mut store, check, id, get),
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
                        wasmtime::format_err!(
                            "unknown import: `{}::{}` has not been defined",
                            imp.module(),
                            imp.name()
                        )
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
            kernel.tasks[id.index()].window_globals = Some([a, b, c, d]);
        }
        let instance = match Instance::new(&mut store, &self.module, &externs) {
            Ok(instance) => instance,
            Err(e) => {
                // The start function may have changed the memory's protections (an
                // imported memory outlives this failure): give it back read-write, and
                // retire the task's id.
                let kernel = get(store.data_mut());
                kernel.protected.clear(id.index());
                let task = &mut kernel.tasks[id.index()];
                task.release_hardware();
                task.gone = true;
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

/// Instantiates `module` as a new task of the kernel that `get` finds in `store`'s data:
/// `"mach"` imports are machvm's (the variant that matches the memory's width), every other
/// import comes from `linker`. Use [`TaskPre`] to instantiate one module many times.
///
/// ```
/// use machvm::{Kernel, instantiate};
/// use wasmtime::{Engine, Linker, Store};
///
/// struct State { kernel: Kernel }
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let module = machvm::compile(&engine, br#"(module
///     (import "mach" "mach_task_self" (func $self (result i32)))
///     (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
///     (memory (export "memory") 1)
///     (func (export "run") (result i32)
///         ;; make page 1 read-only
///         (call $protect (call $self) (i32.const 4096) (i32.const 4096) (i32.const 0) (i32.const 1))))"#)?;
/// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
/// let linker = Linker::new(&engine);
/// let (instance, task) = instantiate(&mut store, &linker, &module, |s: &mut State| &mut s.kernel)?;
/// let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
/// assert_eq!(run.call(&mut store, ())?, machvm::consts::KERN_SUCCESS);
/// let page = store.data().kernel.task(task).unwrap().table().get(1).unwrap();
/// assert_eq!(page.cur, machvm::consts::VM_PROT_READ);
/// # Ok::<(), wasmtime::Error>(())
/// ```
///
/// # Errors
///
/// As [`TaskPre::new`] and [`TaskPre::instantiate`].
pub fn instantiate<T: 'static, G: GetKernel<T>, M: TaskModule + ?Sized>(
    store: impl AsContextMut<Data = T>,
    linker: &Linker<T>,
    module: &M,
    get: G,
) -> wasmtime::Result<(Instance, TaskId)> {
    TaskPre::new(module, get)?.instantiate(store, linker)
}

/// Keeps the base address of task `id`'s memory in the task when the engine never moves
/// memories, for the fast paths of the calls.
fn remember_base<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    id: TaskId,
) {
    let Some(memory) = get(store.data_mut()).tasks[id.index()].memory else {
        return;
    };
    if get(store.data_mut()).tasks[id.index()].enforce {
        // A pooled slot freed by a store whose kernel had been taken out of it may still
        // carry that kernel's protections: give the new task's bytes back read-write.
        let (base, size) = (memory.data_ptr(&*store) as usize, memory.data_size(&*store));
        crate::enforce::heal_stale(base, size);
    }
    place_sentinel(store, get);
    if crate::kernel::memory_never_moves(store.engine()) {
        let base = memory.data_ptr(&*store) as usize;
        get(store.data_mut()).tasks[id.index()].fixed_base = base;
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
        wasmtime::bail!("machvm: that memory is already a task's memory");
    }
    Ok(())
}

/// The live task whose memory's base is `base`, if any (base addresses are unique among a
/// store's live memories).
fn find_task<T: 'static>(
    cx: &mut StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    base: usize,
) -> Option<TaskId> {
    let n = get(cx.data_mut()).tasks.len();
    (0..n).find_map(|i| {
        let t = &get(cx.data_mut()).tasks[i];
        let (fixed, mem, t_gone) = (t.fixed_base, t.memory?, t.gone);
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
pub fn register_memory<T: 'static>(
    mut store: impl AsContextMut<Data = T>,
    get: impl GetKernel<T>,
    memory: Memory,
) -> wasmtime::Result<TaskId> {
    let mut store = store.as_context_mut();
    if get(store.data_mut()).config().enforce {
        wasmtime::bail!(
            "machvm: `register_memory` is refused while enforcement is on: machvm cannot \
             know what code uses a memory it did not create (use `new_task` or `TaskPre`)"
        );
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
        crate::kernel::check_engine(store.engine())?;
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
/// fn get(s: &mut State) -> &mut Kernel { &mut s.kernel }
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
/// // Two wasm pages, at most 16: the map is 1 MiB, the first 128 KiB are allocated.
/// let task = machvm::new_task(&mut store, get, MemoryType::new(2, Some(16)))?;
/// assert_eq!(store.data().kernel.task(task).unwrap().map_limit(), 16 * 65536);
/// let regions = host::regions(&mut store, get, task)?;
/// assert_eq!((regions[0].start, regions[0].size), (0, 2 * 65536));
/// # Ok::<(), wasmtime::Error>(())
/// ```
///
/// # Errors
///
/// When the memory cannot be created or cannot be a task's.
pub fn new_task<T: 'static>(
    mut store: impl AsContextMut<Data = T>,
    get: impl GetKernel<T>,
    ty: MemoryType,
) -> wasmtime::Result<TaskId> {
    crate::kernel::check_memory_type(&ty)?;
    let mut store = store.as_context_mut();
    if get(store.data_mut()).config().enforce {
        crate::kernel::check_engine(store.engine())?;
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
pub fn call<T: 'static>(
    mut store: impl AsContextMut<Data = T>,
    get: impl GetKernel<T>,
    task: TaskId,
    call: &Call,
) -> wasmtime::Result<Outcome> {
    let mut cx = store.as_context_mut();
    get(cx.data_mut()).check_task(task)?;
    Ok(vm::call(&mut StoreEnv::new(cx, get), task, call))
}

/// [`Env`] over a store: the tasks' state in the kernel, their bytes in their memories.
pub(crate) struct StoreEnv<'a, T: 'static, G> {
    pub(crate) cx: StoreContextMut<'a, T>,
    pub(crate) get: G,
    /// The parameter values of the running call, collected only while it is traced.
    pub(crate) log: Option<ParamLog>,
    /// Base and size of the memories this call touched (at most two tasks: the caller and
    /// the target), so that each costs one store lookup per call. Cleared by a grow.
    cache: [Option<(TaskId, *mut u8, u64)>; 2],
}

impl<'a, T: 'static, G: GetKernel<T>> StoreEnv<'a, T, G> {
    /// An environment over `cx` that does not trace.
    pub(crate) fn new(cx: StoreContextMut<'a, T>, get: G) -> Self {
        StoreEnv {
            cx,
            get,
            log: None,
            cache: [None; 2],
        }
    }

    fn memory(&mut self, t: TaskId) -> Option<Memory> {
        (self.get)(self.cx.data_mut())
            .tasks
            .get(t.index())
            .and_then(|t| t.memory)
    }

    /// The memory's bytes as a raw pointer and length (cached for the rest of the call).
    fn raw(&mut self, t: TaskId) -> Option<(*mut u8, u64)> {
        for (tc, p, l) in self.cache.iter().flatten() {
            if *tc == t {
                return Some((*p, *l));
            }
        }
        if (self.get)(self.cx.data_mut()).tasks[t.index()].stopped {
            // Its memory is inaccessible: no byte of it is touched any more.
            return None;
        }
        let m = self.memory(t)?;
        // One store lookup for both (`data_ptr` and `data_size` would make two).
        let bytes = m.data_mut(&mut self.cx);
        let (base, size) = (bytes.as_mut_ptr(), bytes.len() as u64);
        // An enforced memory never moves: tasks are refused on engines whose memories may
        // (`kernel::check_engine`).
        let slot = if self.cache[0].is_none() { 0 } else { 1 };
        self.cache[slot] = Some((t, base, size));
        Some((base, size))
    }

    /// The pointer to `[addr, addr + len)` of task `t`'s memory, when it lies inside.
    fn range(&mut self, t: TaskId, addr: u64, len: usize) -> Option<*mut u8> {
        let (base, size) = self.raw(t)?;
        let end = addr.checked_add(len as u64)?;
        // `addr < size <= isize::MAX` once the range is inside, so the cast is exact.
        (end <= size).then(|| base.wrapping_add(addr as usize))
    }
}

impl<T: 'static, G: GetKernel<T>> Env for StoreEnv<'_, T, G> {
    fn vm(&mut self, t: TaskId) -> &mut TaskVm {
        &mut (self.get)(self.cx.data_mut()).tasks[t.index()].vm
    }

    fn windows_closed(&mut self, t: TaskId) {
        publish_windows(self.cx.as_context_mut(), self.get, t);
    }

    fn memory_size(&mut self, t: TaskId) -> u64 {
        self.raw(t).map_or(0, |(_, size)| size)
    }

    fn enforcing(&mut self, t: TaskId) -> bool {
        (self.get)(self.cx.data_mut()).tasks[t.index()].enforce
    }

    fn mirror(&mut self, t: TaskId, start: u64, end: u64) -> bool {
        if (self.get)(self.cx.data_mut()).tasks[t.index()].stopped {
            // A stopped task's memory stays inaccessible.
            return false;
        }
        let Some(m) = self.memory(t) else {
            return true;
        };
        let base = m.data_ptr(&self.cx);
        let size = m.data_size(&self.cx);
        let kernel = (self.get)(self.cx.data_mut());
        let (protected, task) = (&kernel.protected, &mut kernel.tasks[t.index()]);
        if !task.enforce {
            return true;
        }
        if (task.hw_base, task.hw_size) != (base as usize, size) {
            task.hw_base = base as usize;
            task.hw_size = size;
            protected.set(t.index(), base as usize, size);
        }
        let shift = task.vm.page_shift();
        let end = end.min(size as u64 >> shift);
        if start >= end {
            return true;
        }
        let wo = task.vm.write_only_faults();
        let mut write_only = Vec::new();
        for (s, e, attrs) in task.vm.table().segments(start, end) {
            let flags = crate::enforce::hw_prot_of(attrs, wo);
            // SAFETY: [s, e) pages lie below the memory's current size (clipped above), in
            // the live mapping of a memory of this store that this task governs; no Rust
            // reference into these bytes is alive during a host call's table change.
            if !unsafe { crate::enforce::protect(base, s << shift, (e - s) << shift, flags) } {
                return false;
            }
            if wo && attrs.is_some_and(crate::enforce::is_write_only) {
                write_only.push((base as usize + (s << shift) as usize, (e - s) as usize));
            }
        }
        // The write-only pages of the range wait for their first store again.
        if let Some(record) = &task.write_only {
            let (lo, hi) = (
                base as usize + (start << shift) as usize,
                base as usize + (end << shift) as usize,
            );
            record.write_only.replace(lo, hi, &write_only, 1 << shift);
        }
        true
    }

    fn resident(&mut self, t: TaskId, first: u64, n: u64) -> Vec<bool> {
        let shift = self.vm(t).page_shift();
        let page = self.vm(t).page_size();
        match self.raw(t) {
            // The pages are inside the memory (the caller's promise); check it all the same.
            Some((base, size)) if (first + n) << shift <= size => {
                crate::enforce::resident(base as usize + (first << shift) as usize, page, n)
            }
            _ => vec![false; n as usize],
        }
    }

    fn tasks(&mut self) -> Vec<TaskId> {
        let kernel = (self.get)(self.cx.data_mut());
        (0..kernel.tasks.len())
            .map(|i| kernel.id_of(i))
            .filter(|&t| kernel.live_here(t).is_some_and(|t| t.memory.is_some()))
            .collect()
    }

    fn prepare_write(&mut self, t: TaskId, addr: u64, len: u64) -> bool {
        let task = &(self.get)(self.cx.data_mut()).tasks[t.index()];
        match &task.write_only {
            // Only pages the table allows writing are written, which are inside the memory
            // whose protections were last set at `hw_base`.
            Some(record) if task.hw_base != 0 => {
                let addr = task.hw_base.saturating_add(addr as usize);
                record.write_only.write(addr, len as usize)
            }
            _ => true,
        }
    }

    fn out_of_line(&mut self, t: TaskId) {
        // No window may serve a copy any more, and no page may stay accessible: the
        // hardware no longer says what the table says.
        vm::close_windows(self, t, 0, u64::MAX);
        self.cache = [None; 2];
        let task = &mut (self.get)(self.cx.data_mut()).tasks[t.index()];
        task.stopped = true;
        task.forget_write_only();
        if task.hw_base != 0 {
            // SAFETY: [hw_base, hw_base + hw_size) is the accessible part of this task's
            // live memory; no Rust reference into it is alive during a host call. Making it
            // inaccessible merges its mappings (it needs none of its own).
            let none = rustix::mm::MprotectFlags::empty();
            if !unsafe {
                crate::enforce::protect(task.hw_base as *mut u8, 0, task.hw_size as u64, none)
            } {
                tracing::error!(target: "machvm::enforce", "could not make task {t:?}'s memory inaccessible");
            }
        }
    }

    fn grow_memory(&mut self, t: TaskId, new_size: u64) -> bool {
        let Some(m) = self.memory(t) else {
            return false;
        };
        let cur = m.data_size(&self.cx) as u64;
        if new_size <= cur {
            return true;
        }
        self.cache = [None; 2];
        m.grow(&mut self.cx, (new_size - cur).div_ceil(WASM_PAGE))
            .is_ok()
    }

    fn copy(&mut self, src_task: TaskId, src: u64, dst_task: TaskId, dst: u64, len: u64) -> bool {
        let src_raw = self.raw(src_task);
        let dst_raw = if dst_task == src_task {
            src_raw
        } else {
            self.raw(dst_task)
        };
        let (Some((sp, sl)), Some((dp, dl))) = (src_raw, dst_raw) else {
            return false;
        };
        let fits = |a: u64, l: u64| a.checked_add(len).is_some_and(|e| e <= l);
        if !fits(src, sl) || !fits(dst, dl) {
            return false;
        }
        // SAFETY: both ranges were just checked to lie inside their memories' current
        // bytes (`data_ptr`/`data_size` of live memories of this store, which we hold
        // exclusively through `&mut self.cx`, so nothing else accesses them meanwhile), and
        // `ptr::copy` is a memmove: the ranges may overlap (same task, or two tasks made of
        // one memory). The offsets fit in usize because they are below the memory sizes.
        unsafe {
            ptr::copy(sp.add(src as usize), dp.add(dst as usize), len as usize);
        }
        true
    }

    fn zero(&mut self, t: TaskId, addr: u64, len: u64) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let Some(p) = self.range(t, addr, len) else {
            return false;
        };
        // SAFETY: `range` checked that [addr, addr + len) lies inside the memory's current
        // bytes; the store is borrowed exclusively, so nothing else touches them.
        unsafe { ptr::write_bytes(p, 0, len) };
        true
    }

    fn purge_zero(&mut self, t: TaskId, addr: u64, len: u64) -> bool {
        let Ok(n) = usize::try_from(len) else {
            return false;
        };
        let Some(p) = self.range(t, addr, n) else {
            return false;
        };
        let task = &(self.get)(self.cx.data_mut()).tasks[t.index()];
        if !task.enforce || task.hw_base == 0 {
            return self.zero(t, addr, len);
        }
        // The pages may be read-only or inaccessible in hardware: write through the kernel,
        // which ignores a private mapping's protection (as a debugger writes), or, where it
        // is not allowed to, lift the protection for the time of the write.
        if crate::enforce::write_zeroes_ignoring_protection(p as usize, n) {
            return true;
        }
        let rw = rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE;
        // SAFETY: [p, p + n) lies inside the memory's current bytes (`range`), page
        // aligned (whole pages of the task); no Rust reference into them is alive.
        if !unsafe { crate::enforce::protect(p, 0, len, rw) } {
            return false;
        }
        // SAFETY: as above, and the range is read-write now.
        unsafe { ptr::write_bytes(p, 0, n) };
        let shift = self.vm(t).page_shift();
        let (s, e) = (addr >> shift, (addr + len) >> shift);
        if !self.mirror(t, s, e) {
            self.out_of_line(t);
        }
        true
    }

    fn load(&mut self, t: TaskId, addr: u64, buf: &mut [u8]) -> bool {
        let Some(p) = self.range(t, addr, buf.len()) else {
            return false;
        };
        // SAFETY: as in `zero`; `buf` is host memory, disjoint from the guest's.
        unsafe { ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        true
    }

    fn store(&mut self, t: TaskId, addr: u64, bytes: &[u8]) -> bool {
        let Some(p) = self.range(t, addr, bytes.len()) else {
            return false;
        };
        // SAFETY: as in `zero`; `bytes` is host memory, disjoint from the guest's.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        true
    }

    #[inline]
    fn log_param(&mut self, param: &'static str, write: bool, value: u64) {
        if let Some(log) = &mut self.log {
            log.push(param, write, value);
        }
    }
}

/// A guest word: `u32` for a 32-bit memory, `u64` for a 64-bit one.
trait Word: WasmTy + Copy + Send + Sync + 'static {
    /// The guest width whose word this is.
    const WIDTH: Width;
    fn get(self) -> u64;
}

impl Word for u32 {
    const WIDTH: Width = Width::W32;
    fn get(self) -> u64 {
        u64::from(self)
    }
}

impl Word for u64 {
    const WIDTH: Width = Width::W64;
    fn get(self) -> u64 {
        self
    }
}

/// The trap of a host function whose task is no longer its store's: the store's kernel was
/// replaced, or the task's instantiation failed.
#[cold]
fn task_gone(task: TaskId) -> wasmtime::Error {
    wasmtime::format_err!(
        "machvm: {task:?} is not a task of the store's kernel (the kernel was replaced, or \
         the task's instantiation failed)"
    )
}

/// The trap of every host function of a task that [`vm::Env::out_of_line`] stopped.
#[cold]
fn task_stopped(task: TaskId) -> wasmtime::Error {
    wasmtime::format_err!(
        "machvm: {task:?} is stopped: its page protections could not be brought back in line \
         with its page table (the kernel refused the mappings), so it runs no more guest code \
         that touches memory"
    )
}

/// Runs a call made by the guest of task `task` and turns its outcome into the import's
/// result: the return value, or a trap.
fn dispatch<T: 'static, G: GetKernel<T>>(
    caller: &mut Caller<'_, T>,
    get: G,
    task: TaskId,
    call: Call,
) -> wasmtime::Result<i32> {
    let kernel = get(caller.data_mut());
    match kernel.live_here(task) {
        None => return Err(task_gone(task)),
        Some(t) if t.stopped => return Err(task_stopped(task)),
        Some(_) => {}
    }
    if let Some(t) = kernel.tasks.get_mut(task.index()) {
        if t.memory.is_none() {
            // The start function runs before instantiation returns the memory.
            if let Some(name) = t.memory_export.clone() {
                let mem = caller.get_export(&name).and_then(Extern::into_memory);
                get(caller.data_mut()).tasks[task.index()].memory = mem;
                remember_base(&mut caller.as_context_mut(), get, task);
            }
        }
    }
    let mut env = StoreEnv::new(caller.as_context_mut(), get);
    // Tracing costs one check of the subscriber's filter when nobody listens.
    let outcome = if trace::enabled() {
        env.log = Some(ParamLog::new());
        // Copies served in wasm would not be traced: from now on the host serves them.
        vm::close_windows(&mut env, task, 0, u64::MAX);
        let outcome = vm::call(&mut env, task, &call);
        trace::emit(task, &call, &env.log.unwrap_or_default(), &outcome);
        outcome
    } else {
        vm::call(&mut env, task, &call)
    };
    if get(caller.data_mut()).tasks[task.index()].stopped {
        return Err(task_stopped(task));
    }
    match outcome {
        Outcome::Ret(v) => Ok(v),
        Outcome::Trap(fault) => Err(wasmtime::Error::new(fault)),
    }
}

/// The fast path of `vm_copy` / `mach_vm_copy` (see [`vm::copy_succeeds`]): a guest copying
/// inside its own memory, with every check passing, gets its `memmove` without the general
/// machinery. `None` when the call needs the full path (another task, a failing check, a
/// memory that may move, a trace being written).
#[inline]
fn fast_copy(kernel: &Kernel, task: TaskId, form: Form, port: u32, args: [u64; 3]) -> Option<i32> {
    let [src, size, dst] = args;
    let t = kernel.live_here(task)?;
    if (size != 0 && t.fixed_base == 0) || t.stopped || trace::enabled() {
        return None;
    }
    let w = form.address_width(t.vm.width());
    if !vm::copy_succeeds(&t.vm, port, src, size, dst, w) {
        return None;
    }
    if size != 0 {
        let base = t.fixed_base as *mut u8;
        // SAFETY: `copy_succeeds` found both ranges allocated in the table, readable and
        // writable, and below the memory size the table knows, which the memory still has
        // (memories never shrink). `fixed_base` is the memory's base, which the engine never
        // moves (`remember_base`). Hardware protection mirrors the table, so neither range
        // faults. The store is borrowed exclusively by this host call, so no reference to
        // these bytes is alive; `ptr::copy` is a memmove, so overlap is allowed.
        unsafe {
            std::ptr::copy(
                base.add(src as usize),
                base.add(dst as usize),
                size as usize,
            );
        }
    }
    Some(crate::consts::KERN_SUCCESS)
}

/// `vm_copy` / `mach_vm_copy` made by task `task` with `args` = `[src, size, dst]`: the
/// fast path, else the full one.
#[inline]
fn copy<T: 'static, G: GetKernel<T>>(
    caller: &mut Caller<'_, T>,
    get: G,
    task: TaskId,
    form: Form,
    port: u32,
    args: [u64; 3],
) -> wasmtime::Result<i32> {
    let [src, size, dst] = args;
    if let Some(r) = fast_copy(get(caller.data_mut()), task, form, port, args) {
        // The fast path answers only KERN_SUCCESS, and only for the caller's own task.
        if size != 0 {
            open_windows(caller.as_context_mut(), get, task, Some(src), size, dst);
        }
        return Ok(r);
    }
    let call = Call::Copy {
        form,
        task: port,
        src,
        size,
        dst,
    };
    let r = dispatch(caller, get, task, call)?;
    if r == crate::consts::KERN_SUCCESS && size != 0 && port == TASK_SELF_NAME {
        open_windows(caller.as_context_mut(), get, task, Some(src), size, dst);
    }
    Ok(r)
}

/// After task `task` copied `[src, src + size)` to `[dst, dst + size)` of its own memory
/// (`vm_copy`, or a bulk-memory instruction whose check passed; no source: `memory.fill`
/// and `memory.init`), opens its copy windows around them (see [`vm::open_windows`]), so
/// that its next copies and checks there are done in wasm; only when its module does them
/// in wasm, the kernel allows it, and no subscriber wants call events (copies served in
/// wasm are not traced).
#[inline]
fn open_windows<T: 'static, G: GetKernel<T>>(
    mut cx: StoreContextMut<'_, T>,
    get: G,
    task: TaskId,
    src: Option<u64>,
    size: u64,
    dst: u64,
) {
    let kernel = get(cx.data_mut());
    let Some(t) = kernel.live_here(task).filter(|t| !t.stopped) else {
        return;
    };
    // The common case, in the caller: both ranges inside the open windows already (the
    // call went to the host anyway: through `call_indirect`, say).
    if t.window_globals.is_none() || vm::windows_hold(&t.vm, src, size, dst) {
        return;
    }
    open_windows_slow(cx, get, task, src, size, dst);
}

#[cold]
#[inline(never)]
fn open_windows_slow<T: 'static, G: GetKernel<T>>(
    mut cx: StoreContextMut<'_, T>,
    get: G,
    task: TaskId,
    src: Option<u64>,
    size: u64,
    dst: u64,
) {
    let kernel = get(cx.data_mut());
    if trace::enabled() {
        return;
    }
    if vm::open_windows(&mut kernel.tasks[task.index()].vm, src, size, dst) {
        publish_windows(cx, get, task);
    }
}

/// Sets task `task`'s copy-window globals to the windows its table holds.
fn publish_windows<T: 'static, G: GetKernel<T>>(
    mut cx: StoreContextMut<'_, T>,
    get: G,
    task: TaskId,
) {
    let t = &get(cx.data_mut()).tasks[task.index()];
    let Some(globals) = t.window_globals else {
        return;
    };
    let [(rlo, rhi), (wlo, whi)] = t.vm.windows();
    let w64 = t.vm.width() == Width::W64;
    for (g, v) in globals.into_iter().zip([rlo, rhi, wlo, whi]) {
        // Windows of a 32-bit memory end below 2^32 (`vm::window`): the i32 holds them.
        let v = if w64 {
            Val::I64(v as i64)
        } else {
            Val::I32(v as u32 as i32)
        };
        // The global is the task's own, in this store, mutable, of this type: `set` cannot
        // fail. Were it to, a closed window could stay open in wasm: never ignore it.
        g.set(&mut cx, v)
            .expect("machvm: a copy-window global of the task refused its value");
    }
}

/// The fast path of `host_page_size`: stores the page size at `size_ptr` when the full
/// path's check of that word certainly passes (see [`vm::allows_fast`]).
#[inline]
fn fast_page_size(kernel: &Kernel, task: TaskId, size_ptr: u64) -> Option<i32> {
    let t = kernel.live_here(task)?;
    if t.fixed_base == 0 || t.stopped || trace::enabled() {
        return None;
    }
    let word = t.vm.width().bytes();
    if !vm::allows_fast(&t.vm, size_ptr, word, vm::FAST_WRITE) {
        return None;
    }
    let size = t.vm.page_size();
    // SAFETY: as in `fast_copy`: the `word` bytes at `size_ptr` are allocated, writable and
    // inside the memory, whose base never moves (wasm memory is little-endian: `to_le`).
    unsafe {
        let dst = (t.fixed_base as *mut u8).add(size_ptr as usize);
        match word {
            4 => dst.cast::<u32>().write_unaligned((size as u32).to_le()),
            _ => dst.cast::<u64>().write_unaligned(size.to_le()),
        }
    }
    Some(crate::consts::KERN_SUCCESS)
}

/// The host function of `mach_task_self` or `mach_host_self`: returns `name`, traced like
/// the other calls.
fn self_func<T: 'static>(
    store: impl AsContextMut<Data = T>,
    task: TaskId,
    call: Call,
    name: u32,
) -> Func {
    Func::wrap(store, move || {
        if trace::enabled() {
            trace::emit(task, &call, &ParamLog::new(), &Outcome::Ret(name as i32));
        }
        name as i32
    })
}

/// Creates the host function of `import` for task `task`, for a guest whose words are `W`.
fn make_func<T: 'static, G: GetKernel<T>, W: Word>(
    store: impl AsContextMut<Data = T>,
    import: Import,
    task: TaskId,
    get: G,
) -> Func {
    use Form::{MachVm, Vm};
    macro_rules! wrap {
        (|$($arg:ident : $ty:ty),*| $call:expr) => {
            Func::wrap(store, move |mut caller: Caller<'_, T>, $($arg: $ty),*| {
                dispatch(&mut caller, get, task, $call)
            })
        };
    }
    match import {
        Import::TaskSelf => self_func(store, task, Call::TaskSelf, TASK_SELF_NAME),
        Import::HostSelf => self_func(store, task, Call::HostSelf, HOST_SELF_NAME),
        Import::HostPageSize => Func::wrap(
            store,
            move |mut caller: Caller<'_, T>, host: u32, size_ptr: W| {
                if let Some(r) = fast_page_size(get(caller.data_mut()), task, size_ptr.get()) {
                    return Ok(r);
                }
                let call = Call::HostPageSize {
                    host,
                    size_ptr: size_ptr.get(),
                };
                dispatch(&mut caller, get, task, call)
            },
        ),
        Import::Allocate(Vm) => wrap!(|t: u32, addr_ptr: W, size: W, flags: u32| {
            Call::Allocate {
                form: Vm,
                task: t,
                addr_ptr: addr_ptr.get(),
                size: size.get(),
                flags,
            }
        }),
        Import::Allocate(MachVm) => wrap!(|t: u32, addr_ptr: W, size: u64, flags: u32| {
            Call::Allocate {
                form: MachVm,
                task: t,
                addr_ptr: addr_ptr.get(),
                size,
                flags,
            }
        }),
        Import::Deallocate(Vm) => wrap!(|t: u32, addr: W, size: W| Call::Deallocate {
            form: Vm,
            task: t,
            addr: addr.get(),
            size: size.get()
        }),
        Import::Deallocate(MachVm) => wrap!(|t: u32, addr: u64, size: u64| Call::Deallocate {
            form: MachVm,
            task: t,
            addr,
            size
        }),
        Import::Protect(Vm) => {
            wrap!(
                |t: u32, addr: W, size: W, set_max: u32, prot: u32| Call::Protect {
                    form: Vm,
                    task: t,
                    addr: addr.get(),
                    size: size.get(),
                    set_max,
                    prot
                }
            )
        }
        Import::Protect(MachVm) => {
            wrap!(
                |t: u32, addr: u64, size: u64, set_max: u32, prot: u32| Call::Protect {
                    form: MachVm,
                    task: t,
                    addr,
                    size,
                    set_max,
                    prot
                }
            )
        }
        Import::Copy(Vm) => Func::wrap(
            store,
            move |mut caller: Caller<'_, T>, t: u32, src: W, size: W, dst: W| {
                let args = [src.get(), size.get(), dst.get()];
                copy(&mut caller, get, task, Vm, t, args)
            },
        ),
        Import::Copy(MachVm) => Func::wrap(
            store,
            move |mut caller: Caller<'_, T>, t: u32, src: u64, size: u64, dst: u64| {
                copy(&mut caller, get, task, MachVm, t, [src, size, dst])
            },
        ),
        Import::Read(Vm) => wrap!(|t: u32, addr: W, size: W, data_ptr: W, count_ptr: W| {
            Call::Read {
                form: Vm,
                task: t,
                addr: addr.get(),
                size: size.get(),
                data_ptr: data_ptr.get(),
                count_ptr: count_ptr.get(),
            }
        }),
        Import::Read(MachVm) => {
            wrap!(
                |t: u32, addr: u64, size: u64, data_ptr: W, count_ptr: W| Call::Read {
                    form: MachVm,
                    task: t,
                    addr,
                    size,
                    data_ptr: data_ptr.get(),
                    count_ptr: count_ptr.get(),
                }
            )
        }
        Import::ReadOverwrite(Vm) => {
            wrap!(
                |t: u32, addr: W, size: W, data: W, outsize_ptr: W| Call::ReadOverwrite {
                    form: Vm,
                    task: t,
                    addr: addr.get(),
                    size: size.get(),
                    data: data.get(),
                    outsize_ptr: outsize_ptr.get(),
                }
            )
        }
        Import::ReadOverwrite(MachVm) => {
            wrap!(|t: u32, addr: u64, size: u64, data: u64, outsize_ptr: W| {
                Call::ReadOverwrite {
                    form: MachVm,
                    task: t,
                    addr,
                    size,
                    data,
                    outsize_ptr: outsize_ptr.get(),
                }
            })
        }
        Import::Write(Vm) => wrap!(|t: u32, addr: W, data: W, count: u32| Call::Write {
            form: Vm,
            task: t,
            addr: addr.get(),
            data: data.get(),
            count
        }),
        Import::Write(MachVm) => wrap!(|t: u32, addr: u64, data: W, count: u32| Call::Write {
            form: MachVm,
            task: t,
            addr,
            data: data.get(),
            count
        }),
        // The calls no program makes in a loop go through one dynamically typed function.
        Import::VmRegion
        | Import::BehaviorSet(_)
        | Import::Msync(_)
        | Import::Wire(_)
        | Import::PageQuery(_)
        | Import::PageInfo
        | Import::PageRangeQuery
        | Import::TaskInfo
        | Import::HostStatistics64
        | Import::PurgableControl(_) => dynamic_func::<T, G, W>(store, import, task, get),
        Import::Region(form) => wrap!(|t: u32,
                                       addr_ptr: W,
                                       size_ptr: W,
                                       flavor: u32,
                                       info_ptr: W,
                                       count_ptr: W,
                                       object_name_ptr: W| {
            Call::Region {
                form,
                task: t,
                addr_ptr: addr_ptr.get(),
                size_ptr: size_ptr.get(),
                flavor,
                info_ptr: info_ptr.get(),
                count_ptr: count_ptr.get(),
                object_name_ptr: object_name_ptr.get(),
            }
        }),
    }
}

/// Creates import `import` for task `task` as one function whose arguments are converted at
/// run time ([`Import::call`]): for the calls whose cost is not in their argument passing.
fn dynamic_func<T: 'static, G: GetKernel<T>, W: Word>(
    mut store: impl AsContextMut<Data = T>,
    import: Import,
    task: TaskId,
    get: G,
) -> Func {
    let params = import.params(W::WIDTH).into_iter().map(|t| match t {
        Ty::I32 => ValType::I32,
        Ty::I64 => ValType::I64,
    });
    let ty = wasmtime::FuncType::new(store.as_context_mut().engine(), params, [ValType::I32]);
    Func::new(
        store,
        ty,
        move |mut caller: Caller<'_, T>, args: &[Val], results: &mut [Val]| {
            // The signature was checked at link time: every argument is an i32 or an i64.
            let args: Vec<u64> = args
                .iter()
                .map(|v| match *v {
                    Val::I32(x) => u64::from(x as u32),
                    Val::I64(x) => x as u64,
                    _ => 0,
                })
                .collect();
            results[0] = Val::I32(dispatch(&mut caller, get, task, import.call(&args))?);
            Ok(())
        },
    )
}

/// Creates the bulk-memory check `check` for task `task` (see [`crate::rewrite`]).
fn bulk_func<T: 'static, G: GetKernel<T>, W: Word>(
    store: impl AsContextMut<Data = T>,
    check: BulkCheck,
    task: TaskId,
    get: G,
) -> Func {
    match check {
        BulkCheck::Copy => Func::wrap(
            store,
            move |mut c: Caller<'_, T>, dst: W, src: W, len: W| {
                check_bulk(
                    &mut c,
                    get,
                    task,
                    "memory.copy",
                    Some(src.get()),
                    dst.get(),
                    len.get(),
                )
            },
        ),
        BulkCheck::Fill => Func::wrap(store, move |mut c: Caller<'_, T>, dst: W, len: W| {
            check_bulk(&mut c, get, task, "memory.fill", None, dst.get(), len.get())
        }),
        BulkCheck::Init => Func::wrap(store, move |mut c: Caller<'_, T>, dst: W, len: u32| {
            check_bulk(
                &mut c,
                get,
                task,
                "memory.init",
                None,
                dst.get(),
                u64::from(len),
            )
        }),
    }
}

/// The check before a bulk-memory instruction: when the ranges are in bounds (else the
/// instruction itself traps, as wasm says) every page they touch must be allocated with
/// READ (the source) or WRITE (the destination); otherwise the guest traps with
/// [`BadAccess`] and the instruction does not run.
fn check_bulk<T: 'static, G: GetKernel<T>>(
    caller: &mut Caller<'_, T>,
    get: G,
    task: TaskId,
    instruction: &'static str,
    src: Option<u64>,
    dst: u64,
    len: u64,
) -> wasmtime::Result<()> {
    let Some(t) = get(caller.data_mut()).live_here(task) else {
        return Err(task_gone(task));
    };
    if t.stopped {
        return Err(task_stopped(task));
    }
    if len == 0 {
        return Ok(());
    }
    // The fast path: every range inside the bytes the table knows (so in bounds) and
    // allowed by the table, with no look at the memory itself. Without enforcement every
    // check passes.
    if !t.enforce
        || (vm::allows_fast(&t.vm, dst, len, vm::FAST_WRITE)
            && src.is_none_or(|s| vm::allows_fast(&t.vm, s, len, crate::consts::VM_PROT_READ)))
    {
        // The next instructions there are checked in wasm (`crate::rewrite`).
        open_windows(caller.as_context_mut(), get, task, src, len, dst);
        return Ok(());
    }
    let mut env = StoreEnv::new(caller.as_context_mut(), get);
    vm::sync(&mut env, task);
    let size = env.memory_size(task);
    let in_bounds = |a: u64| a.checked_add(len).is_some_and(|e| e <= size);
    if !in_bounds(dst) || src.is_some_and(|s| !in_bounds(s)) {
        return Ok(());
    }
    let vm = env.vm(task);
    let shift = vm.page_shift();
    let ranges = src
        .map(|s| (s, AccessKind::Read, crate::consts::VM_PROT_READ))
        .into_iter()
        .chain([(dst, AccessKind::Write, crate::consts::VM_PROT_WRITE)]);
    for (start, kind, prot) in ranges {
        let (s, e) = vm.pages(start, len);
        if let Err(err) = vm.table().check_access(s, e, prot) {
            let page = err.page();
            return Err(wasmtime::Error::new(BadAccess {
                instruction,
                addr: start.max(page << shift),
                kind,
                page_size: vm.page_size(),
                page: vm.table().get(page),
                unmapped: false,
            }));
        }
    }
    // Wasmtime's host code writes the destination next: its write-only pages must be
    // writable in hardware.
    if !env.prepare_write(task, dst, len) {
        wasmtime::bail!(
            "machvm: {instruction} to wasm address {dst:#x}: a write-only page of the \
             destination cannot be mapped: the process's mapping budget is exhausted"
        );
    }
    open_windows(caller.as_context_mut(), get, task, src, len, dst);
    Ok(())
}

/// A module compiled by [`compile`]: its bulk-memory instructions are preceded by
/// page-table checks, which enforcement needs. Only [`compile`] makes one, so holding one
/// proves it; it is used as the [`Module`] it derefs to.
#[derive(Clone)]
pub struct Compiled {
    module: Module,
    source_map: Arc<rewrite::SourceMap>,
}

impl Compiled {
    /// The Wasmtime module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Where an offset of the compiled module (a backtrace frame's
    /// [`wasmtime::FrameInfo::module_offset`]) lies in the module as written, where its
    /// DWARF line tables point: the rewrite moved the code.
    pub fn original_offset(&self, module_offset: usize) -> Option<usize> {
        self.source_map.original(module_offset)
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
}

/// Compiles a module (binary or text) for machvm: its bulk-memory instructions are
/// preceded by page-table checks (see [`crate::rewrite`]), which enforcement needs; the
/// module is otherwise unchanged. Use an engine set up with [`crate::configure`].
///
/// # Errors
///
/// When the bytes are not a valid module (text errors carry their line and column), or
/// Wasmtime cannot compile it.
pub fn compile(engine: &wasmtime::Engine, bytes: &[u8]) -> wasmtime::Result<Compiled> {
    let wasm = wat::parse_bytes(bytes).map_err(|e| wasmtime::format_err!("{e}"))?;
    let (wasm, source_map) = rewrite::rewrite_mapped(&wasm)?;
    Ok(Compiled {
        module: Module::new(engine, &wasm)?,
        source_map: Arc::new(source_map),
    })
}

/// Installs machvm's signal handler on `store` (replacing any other): it records where
/// and how (read or write) the store's wasm code faulted, so that [`explain_trap`] can tell
/// the access kind of a load or store that hit a protected page, and, on x86-64 Linux, it
/// keeps write-only pages as XNU does: tasks made after it have their write-only pages
/// inaccessible until the first store, which the handler lets through by making that page
/// read-write (see `docs/enforcement.md`). It lifts no other protection, and traps are clean
/// without it. Host functions never rely on a fault handler: machvm's own, WASI through
/// [`crate::wasi`] and an embedder's that use [`crate::host::check_access`] check the table
/// (and map write-only pages) before they touch guest memory (see `docs/security.md`).
pub fn install_handlers<T: 'static>(store: &mut wasmtime::Store<T>, get: impl GetKernel<T>) {
    let kernel = get(store.data_mut());
    if kernel.moved() {
        // Its tasks' records name memories of the store it was taken from, which this one
        // may reuse: the new store's handler must not know them (the kernel refuses every
        // operation anyway).
        kernel.fault = None;
    }
    let record = kernel.fault.get_or_insert_with(Arc::default).clone();
    crate::enforce::install_handler(store, record);
}

/// Explains a trap that a guest load or store got on a page the table protects: which
/// task, the wasm address, the access kind (with [`install_handlers`]) and the page's
/// state, as a [`BadAccess`]. `None` when the error is not such a trap, or when the fault
/// machvm's handler recorded is not this trap's (its wasm address, which Wasmtime gives in
/// the error's context, must be the recorded fault's). Bulk-memory instructions raise a
/// [`BadAccess`] themselves (find it with `error.downcast_ref`).
pub fn explain_trap<T: 'static>(
    mut store: impl AsContextMut<Data = T>,
    get: impl GetKernel<T>,
    error: &wasmtime::Error,
) -> Option<(TaskId, BadAccess)> {
    if error.downcast_ref::<wasmtime::Trap>() != Some(&wasmtime::Trap::MemoryOutOfBounds) {
        return None;
    }
    let wasm_addr = error
        .chain()
        .find_map(|c| crate::enforce::fault_address(&c.to_string()))?;
    let mut cx = store.as_context_mut();
    let kernel = get(cx.data_mut());
    let (host_addr, kind, unmapped) = match kernel.fault.as_ref().and_then(|f| f.take()) {
        Some(f) => (f.0 as usize, f.1, f.2),
        None => return None,
    };
    kernel.tasks.iter().enumerate().find_map(|(i, t)| {
        if !t.enforce || t.hw_base == 0 {
            return None;
        }
        let off = host_addr.checked_sub(t.hw_base)?;
        if off >= t.hw_size || off as u64 != wasm_addr {
            return None;
        }
        let addr = off as u64;
        let page = t.vm.table().get(addr >> t.vm.page_shift());
        Some((
            kernel.id_of(i),
            BadAccess {
                instruction: "load or store",
                addr,
                kind,
                page_size: t.vm.page_size(),
                page,
                unmapped,
            },
        ))
    })
}

/// The task whose memory is `memory`, if any: compared by base address, which is unique
/// among the live memories of a store.
///
/// # Errors
///
/// When the memory is no live task's but still carries a kernel's protections (that kernel
/// was taken out of the store), or the store's kernel was moved: nothing can check an
/// access to it then.
#[cfg(feature = "wasi")]
pub(crate) fn task_of_memory<T: 'static>(
    mut cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    memory: Memory,
) -> wasmtime::Result<Option<TaskId>> {
    let base = memory.data_ptr(&cx) as usize;
    get(cx.data_mut()).check_home()?;
    let found = find_task(&mut cx, get, base);
    if let Some(t) = found {
        if get(cx.data_mut()).tasks[t.index()].stopped {
            return Err(task_stopped(t));
        }
    }
    if found.is_none() && crate::enforce::governed(base) {
        wasmtime::bail!(
            "machvm: this memory is protected by a kernel that is no longer the store's; no \
             host function may touch it"
        );
    }
    Ok(found)
}

/// Makes task `task`'s bytes `[addr, addr + len)`, which its table allows writing, writable
/// in hardware (see [`Env::prepare_write`]); false when the mapping budget refused.
pub(crate) fn prepare_task_write<T: 'static>(
    cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    task: TaskId,
    addr: u64,
    len: u64,
) -> bool {
    StoreEnv::new(cx, get).prepare_write(task, addr, len)
}

/// Brings task `task`'s table up to date with its memory (pages the guest grew).
#[cfg(feature = "wasi")]
pub(crate) fn sync_task<T: 'static>(
    cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    task: TaskId,
) {
    vm::sync(&mut StoreEnv::new(cx, get), task);
}

/// Puts task `task` back as it is when made (see [`vm::reset`]); false when it is not a
/// live, running task of the kernel, or cannot be put back.
pub(crate) fn reset_task<T: 'static>(
    mut cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    task: TaskId,
) -> bool {
    let running = get(cx.data_mut())
        .live(task)
        .is_some_and(|t| !t.stopped && t.memory.is_some());
    running && vm::reset(&mut StoreEnv::new(cx, get), task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{KERN_SUCCESS, VM_PROT_READ};
    use wasmtime::{Config, Engine, Store};

    struct State {
        kernel: Kernel,
    }

    fn get(s: &mut State) -> &mut Kernel {
        &mut s.kernel
    }

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
        if std::env::var_os("MACHVM_CHILD").is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "linker::tests::a_stopped_task_runs_no_more_guest_code_that_touches_memory",
                    "--nocapture",
                ])
                .env("MACHVM_CHILD", "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("stopped task: done"),
                "{:?}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        let engine = Engine::new(crate::configure(&mut Config::new())).unwrap();
        let module = compile(&engine, GUEST.as_bytes()).unwrap();
        let mut store = Store::new(
            &engine,
            State {
                kernel: Kernel::new().unwrap(),
            },
        );
        let (instance, task) =
            instantiate(&mut store, &Linker::new(&engine), &module, get).unwrap();
        let run = |store: &mut Store<State>, name: &str| {
            instance
                .get_typed_func::<(), i32>(&mut *store, name)
                .unwrap()
                .call(&mut *store, ())
        };
        // Before: everything works, and a copy opens the windows.
        assert_eq!(run(&mut store, "copy").unwrap(), KERN_SUCCESS);
        assert_eq!(run(&mut store, "page_size").unwrap(), KERN_SUCCESS);
        crate::host::protect(&mut store, get, task, 0x5000, 0x1000, false, VM_PROT_READ).unwrap();
        StoreEnv::new(store.as_context_mut(), get).out_of_line(task);
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
        assert!(crate::host::read_bytes(&mut store, get, task, 0x2000, 4).is_err());
        assert!(crate::host::protect(&mut store, get, task, 0x5000, 0x1000, false, 3).is_err());
        println!("stopped task: done");
    }
}
