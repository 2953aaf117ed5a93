//! The `"mach"` imports as host functions. Each task gets its own, closures that know the
//! task they serve: a call finds its task with no lookup at all. They are thin: they decode
//! the wasm arguments into a [`Call`], run [`vm::call`] and encode the result; the fast
//! paths (`vm_copy` inside the copy windows, `host_page_size`), the publishing of the window
//! globals and the bulk-memory checks that the rewrite calls live here too.

use wasmtime::{AsContextMut, Caller, Extern, Func, StoreContextMut, Val, ValType, WasmTy};

use super::store::StoreEnv;
use super::task::{remember_base, BulkCheck};
use super::GetKernel;
use crate::abi::*;
use crate::embed::kernel::Kernel;
use crate::enforce::{AccessKind, BadAccess};
use crate::trace::{self, ParamLog};
use crate::vm::{self, Env, TaskId};
/// A guest word: `u32` for a 32-bit memory, `u64` for a 64-bit one.
pub(super) trait Word: WasmTy + Copy + Send + Sync + 'static {
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
pub(super) fn task_stopped(task: TaskId) -> wasmtime::Error {
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
        Some(t) if t.stopped() => return Err(task_stopped(task)),
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
    if get(caller.data_mut()).tasks[task.index()].stopped() {
        return Err(task_stopped(task));
    }
    outcome.wire().map_err(wasmtime::Error::new)
}

/// The fast path of `vm_copy` / `mach_vm_copy` (see [`vm::copy_succeeds`]): a guest copying
/// inside its own memory, with every check passing, gets its `memmove` without the general
/// machinery. `None` when the call needs the full path (another task, a failing check, a
/// memory that may move, a trace being written).
#[inline]
fn fast_copy(
    kernel: &Kernel,
    task: TaskId,
    form: Form,
    port: MachPort,
    args: [u64; 3],
) -> Option<i32> {
    let [src, size, dst] = args;
    let t = kernel.live_here(task)?;
    if (size != 0 && t.fixed_base() == 0) || t.stopped() || trace::enabled() {
        return None;
    }
    let w = form.address_width(t.vm.width());
    if !vm::copy_succeeds(&t.vm, port, src, size, dst, w) {
        return None;
    }
    if size != 0 {
        let base = t.fixed_base() as *mut u8;
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
    Some(KERN_SUCCESS.0)
}

/// `vm_copy` / `mach_vm_copy` made by task `task` with `args` = `[src, size, dst]`: the
/// fast path, else the full one.
#[inline]
fn copy<T: 'static, G: GetKernel<T>>(
    caller: &mut Caller<'_, T>,
    get: G,
    task: TaskId,
    form: Form,
    port: MachPort,
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
    if r == KERN_SUCCESS.0 && size != 0 && port == TASK_SELF_NAME {
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
    let Some(t) = kernel.live_here(task).filter(|t| !t.stopped()) else {
        return;
    };
    // The common case, in the caller: both ranges inside the open windows already (the
    // call went to the host anyway: through `call_indirect`, say).
    if t.window_globals().is_none() || vm::windows_hold(&t.vm, src, size, dst) {
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
pub(super) fn publish_windows<T: 'static, G: GetKernel<T>>(
    mut cx: StoreContextMut<'_, T>,
    get: G,
    task: TaskId,
) {
    let Some(values) = get(cx.data_mut()).tasks[task.index()].window_values() else {
        return;
    };
    for (g, v) in values {
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
    if t.fixed_base() == 0 || t.stopped() || trace::enabled() {
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
        let dst = (t.fixed_base() as *mut u8).add(size_ptr as usize);
        match word {
            4 => dst.cast::<u32>().write_unaligned((size as u32).to_le()),
            _ => dst.cast::<u64>().write_unaligned(size.to_le()),
        }
    }
    Some(KERN_SUCCESS.0)
}

/// The host function of `mach_task_self` or `mach_host_self`: returns `name`, traced like
/// the other calls.
fn self_func<T: 'static>(
    store: impl AsContextMut<Data = T>,
    task: TaskId,
    call: Call,
    name: MachPort,
) -> Func {
    Func::wrap(store, move || {
        if trace::enabled() {
            trace::emit(task, &call, &ParamLog::new(), &Outcome::Port(name));
        }
        name.0 as i32
    })
}

/// Creates the host function of `import` for task `task`, for a guest whose words are `W`.
pub(super) fn make_func<T: 'static, G: GetKernel<T>, W: Word>(
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
                    host: MachPort(host),
                    size_ptr: size_ptr.get(),
                };
                dispatch(&mut caller, get, task, call)
            },
        ),
        Import::Allocate(Vm) => wrap!(|t: u32, addr_ptr: W, size: W, flags: u32| {
            Call::Allocate {
                form: Vm,
                task: MachPort(t),
                addr_ptr: addr_ptr.get(),
                size: size.get(),
                flags: VmFlags(flags),
            }
        }),
        Import::Allocate(MachVm) => wrap!(|t: u32, addr_ptr: W, size: u64, flags: u32| {
            Call::Allocate {
                form: MachVm,
                task: MachPort(t),
                addr_ptr: addr_ptr.get(),
                size,
                flags: VmFlags(flags),
            }
        }),
        Import::Deallocate(Vm) => wrap!(|t: u32, addr: W, size: W| Call::Deallocate {
            form: Vm,
            task: MachPort(t),
            addr: addr.get(),
            size: size.get()
        }),
        Import::Deallocate(MachVm) => wrap!(|t: u32, addr: u64, size: u64| Call::Deallocate {
            form: MachVm,
            task: MachPort(t),
            addr,
            size
        }),
        Import::Protect(Vm) => {
            wrap!(
                |t: u32, addr: W, size: W, set_max: u32, prot: u32| Call::Protect {
                    form: Vm,
                    task: MachPort(t),
                    addr: addr.get(),
                    size: size.get(),
                    set_max,
                    prot: VmProt(prot as i32)
                }
            )
        }
        Import::Protect(MachVm) => {
            wrap!(
                |t: u32, addr: u64, size: u64, set_max: u32, prot: u32| Call::Protect {
                    form: MachVm,
                    task: MachPort(t),
                    addr,
                    size,
                    set_max,
                    prot: VmProt(prot as i32)
                }
            )
        }
        Import::Copy(Vm) => Func::wrap(
            store,
            move |mut caller: Caller<'_, T>, t: u32, src: W, size: W, dst: W| {
                let args = [src.get(), size.get(), dst.get()];
                copy(&mut caller, get, task, Vm, MachPort(t), args)
            },
        ),
        Import::Copy(MachVm) => Func::wrap(
            store,
            move |mut caller: Caller<'_, T>, t: u32, src: u64, size: u64, dst: u64| {
                copy(
                    &mut caller,
                    get,
                    task,
                    MachVm,
                    MachPort(t),
                    [src, size, dst],
                )
            },
        ),
        Import::Read(Vm) => wrap!(|t: u32, addr: W, size: W, data_ptr: W, count_ptr: W| {
            Call::Read {
                form: Vm,
                task: MachPort(t),
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
                    task: MachPort(t),
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
                    task: MachPort(t),
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
                    task: MachPort(t),
                    addr,
                    size,
                    data,
                    outsize_ptr: outsize_ptr.get(),
                }
            })
        }
        Import::Write(Vm) => wrap!(|t: u32, addr: W, data: W, count: u32| Call::Write {
            form: Vm,
            task: MachPort(t),
            addr: addr.get(),
            data: data.get(),
            count
        }),
        Import::Write(MachVm) => wrap!(|t: u32, addr: u64, data: W, count: u32| Call::Write {
            form: MachVm,
            task: MachPort(t),
            addr,
            data: data.get(),
            count
        }),
        // The calls no program makes in a loop go through one dynamically typed function.
        Import::VmRegion
        | Import::BehaviorSet(_)
        | Import::Inherit(_)
        | Import::Remap(_)
        | Import::RegionRecurse(_)
        | Import::MakeEntry(_)
        | Import::Map(_)
        | Import::PortDeallocate
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
                task: MachPort(t),
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

/// Creates the bulk-memory check `check` for task `task` (see [`crate::enforce::rewrite`]).
pub(super) fn bulk_func<T: 'static, G: GetKernel<T>, W: Word>(
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
    if t.stopped() {
        return Err(task_stopped(task));
    }
    if len == 0 {
        return Ok(());
    }
    // The fast path: every range inside the bytes the table knows (so in bounds) and
    // allowed by the table, with no look at the memory itself. Without enforcement every
    // check passes.
    if !t.enforced()
        || (vm::allows_fast(&t.vm, dst, len, vm::FAST_WRITE)
            && src.is_none_or(|s| vm::allows_fast(&t.vm, s, len, crate::abi::VM_PROT_READ)))
    {
        // The next instructions there are checked in wasm (`crate::enforce::rewrite`).
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
        .map(|s| (s, AccessKind::Read, crate::abi::VM_PROT_READ))
        .into_iter()
        .chain([(dst, AccessKind::Write, crate::abi::VM_PROT_WRITE)]);
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
