//! Inspecting and driving a task from the host, with exactly the checks a guest gets.
//!
//! These are typed conveniences over the kernel: read a task's regions, allocate, change
//! protections, copy, deallocate, and read or write its bytes, before a guest runs (to set up guard pages
//! or load data) or after (to collect results). Each operation follows the page table as the
//! matching Mach call does: [`read_bytes`] needs every page allocated and readable, as
//! `vm_read_overwrite`'s source; [`write_bytes`] needs them allocated and writable, as
//! `vm_write`'s destination. The host never touches a byte the table does not allow, so this
//! stays correct when the memory's pages are protected in hardware too.
//!
//! Addresses and sizes are 64-bit (the `mach_vm_*` forms) whatever the task's width; a task
//! of a 32-bit memory simply has nothing mapped past 4 GiB.
//!
//! ```
//! use machvm::abi::{VM_PROT_NONE, VM_PROT_READ, VM_PROT_DEFAULT, KERN_PROTECTION_FAILURE};
//! use machvm::{host, Kernel};
//! use wasmtime::{Engine, MemoryType, Store};
//!
//! struct State { kernel: Kernel }
//! impl machvm::KernelView for State { fn kernel(&mut self) -> &mut Kernel { &mut self.kernel } }
//!
//! let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
//! let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
//! let task = machvm::new_task(&mut store, MemoryType::new(1, Some(4)))?;
//!
//! // Load some data, then make its page read-only and the next one a guard page.
//! host::write_bytes(&mut store, task, 0x2000, b"hello")?;
//! host::protect(&mut store, task, 0x2000, 0x1000, false, VM_PROT_READ)?;
//! host::protect(&mut store, task, 0x3000, 0x1000, false, VM_PROT_NONE)?;
//!
//! assert_eq!(host::read_bytes(&mut store, task, 0x2000, 5)?, b"hello");
//! let err = host::write_bytes(&mut store, task, 0x2000, b"bye").unwrap_err();
//! assert_eq!(err.code(), KERN_PROTECTION_FAILURE);
//!
//! let regions = host::regions(&mut store, task)?;
//! assert_eq!(regions.len(), 4);
//! assert_eq!((regions[1].start, regions[1].size, regions[1].protection), (0x2000, 0x1000, VM_PROT_READ));
//! assert_eq!((regions[3].start, regions[3].end()), (0x4000, 0x10000));
//! assert_eq!(regions[3].protection, VM_PROT_DEFAULT);
//! # Ok::<(), wasmtime::Error>(())
//! ```

use std::fmt;

use wasmtime::AsContextMut;

use crate::abi::*;
use crate::abi::{Call, Form, Outcome};
use crate::embed::{view, GetKernel, KernelView, StoreEnv};
use crate::table::{CheckError, Run};
use crate::vm::{self, Env, TaskId};

/// A region of a task: a maximal run of allocated pages with equal protections and
/// inheritance, as `vm_region` reports it, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The first address of the region (page-aligned).
    pub start: u64,
    /// The region's length in bytes (whole pages).
    pub size: u64,
    /// The current protection (`VM_PROT_*` bits).
    pub protection: VmProt,
    /// The maximum protection (`VM_PROT_*` bits).
    pub max_protection: VmProt,
    /// The inheritance (`VM_INHERIT_*`).
    pub inheritance: VmInherit,
    /// `vm_region`'s `shared` (spec §8): the pages were shared with `vm_remap` or made into
    /// a memory entry (XNU's `is_shared`; pages a `vm_map` of an entry made are of a shared
    /// object without it).
    pub shared: bool,
    /// The region's place in its shared object, 0 for private memory: `vm_region`'s
    /// `offset`.
    pub offset: u64,
}

impl Region {
    /// One past the region's last address.
    pub fn end(&self) -> u64 {
        self.start + self.size
    }

    fn from_run(run: Run, page_size: u64) -> Region {
        Region {
            start: run.start * page_size,
            size: (run.end - run.start) * page_size,
            protection: run.attrs.cur,
            max_protection: run.attrs.max,
            inheritance: run.attrs.inherit,
            shared: run.attrs.shared,
            offset: run.attrs.object_offset(run.start * page_size),
        }
    }
}

impl fmt::Display for Region {
    /// `0x2000-0x3000 r--/rwx`, as `vmmap` shows a region, then ` SHM` when `shared` (as
    /// `vmmap`'s share mode column has it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x}-{:#x} {}/{}",
            self.start,
            self.end(),
            self.protection,
            self.max_protection
        )?;
        if self.shared {
            f.write_str(" SHM")?;
        }
        Ok(())
    }
}

/// Why a host operation on a task failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The id is not a task of the store's kernel.
    NoSuchTask(TaskId),
    /// The operation was refused as the Mach call would refuse it.
    Kern {
        /// The operation (`read_bytes`, `vm_protect`, ...).
        op: &'static str,
        /// The `kern_return_t` the call would give.
        code: KernReturn,
        /// The first page that failed the check, when known.
        page: Option<u64>,
    },
}

impl HostError {
    /// The `kern_return_t` of the failure (`MACH_SEND_INVALID_DEST` for an unknown task, as
    /// for a port name that denotes nothing).
    pub fn code(&self) -> KernReturn {
        match *self {
            HostError::NoSuchTask(_) => MACH_SEND_INVALID_DEST,
            HostError::Kern { code, .. } => code,
        }
    }

    fn kern(op: &'static str, code: KernReturn) -> HostError {
        HostError::Kern {
            op,
            code,
            page: None,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HostError::NoSuchTask(t) => write!(f, "machvm: {t:?} is not a task of this kernel"),
            HostError::Kern { op, code, page } => {
                write!(f, "{op}: {}", code)?;
                if let Some(p) = page {
                    write!(f, " at page {p:#x}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for HostError {}

/// The environment of a host operation on `task`, after checking the task exists and bringing
/// its table up to date with its memory.
fn env<'a, T: 'static, G: GetKernel<T>>(
    store: &'a mut impl AsContextMut<Data = T>,
    get: G,
    task: TaskId,
) -> Result<StoreEnv<'a, T, G>, HostError> {
    let mut cx = store.as_context_mut();
    if get(cx.data_mut()).check_task(task).is_err() {
        return Err(HostError::NoSuchTask(task));
    }
    let mut env = StoreEnv::new(cx, get);
    vm::sync(&mut env, task);
    Ok(env)
}

/// Runs `call` as made by `task` itself and maps its return code.
fn run_call<T: 'static>(
    mut store: impl AsContextMut<Data = T>,
    get: impl GetKernel<T>,
    task: TaskId,
    call: Call,
) -> Result<(), HostError> {
    let op = call.import_name();
    let mut env = env(&mut store, get, task)?;
    match vm::call(&mut env, task, &call) {
        Outcome::Kr(KERN_SUCCESS) => Ok(()),
        Outcome::Kr(code) => Err(HostError::kern(op, code)),
        // Only the `*_self` calls answer a port name.
        Outcome::Port(_) => Err(HostError::kern(op, KERN_FAILURE)),
        // These calls have no pointer parameter: they cannot fault.
        Outcome::Trap(_) => Err(HostError::kern(op, KERN_FAILURE)),
    }
}

/// Memory pressure: empties every volatile purgeable object of the kernel's tasks, as
/// XNU's pageout does before it runs out of memory (`vm_purgable_control` with
/// `VM_PURGABLE_VOLATILE` made them so). Their pages read as zero from then on and their
/// state is `VM_PURGABLE_EMPTY`, which the guest learns the next time it sets or asks the
/// state. Returns the number of pages emptied.
///
/// # Errors
///
/// When the kernel is not the store's (it was moved out of it).
///
/// ```
/// use machvm::{host, Kernel};
/// use wasmtime::{Engine, Linker, Store};
///
/// struct State { kernel: Kernel }
/// impl machvm::KernelView for State { fn kernel(&mut self) -> &mut Kernel { &mut self.kernel } }
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let module = machvm::compile(&engine, br#"(module (memory (export "memory") 1))"#)?;
/// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
/// machvm::instantiate(&mut store, &Linker::new(&engine), &module)?;
/// // Nothing is volatile yet: nothing to empty.
/// assert_eq!(host::purge_volatile(&mut store)?, 0);
/// # Ok::<(), wasmtime::Error>(())
/// ```
pub fn purge_volatile<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
) -> wasmtime::Result<u64> {
    let get = view::<T>;
    let mut cx = store.as_context_mut();
    get(cx.data_mut()).check_home()?;
    Ok(vm::purge_volatile(&mut StoreEnv::new(cx, get)))
}

/// Every region of `task`, in address order (the task's page table, in bytes).
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel.
pub fn regions<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
) -> Result<Vec<Region>, HostError> {
    let get = view::<T>;
    let mut env = env(&mut store, get, task)?;
    let vm = env.vm(task);
    let p = vm.page_size();
    Ok(vm
        .table()
        .runs()
        .map(|run| Region::from_run(run, p))
        .collect())
}

/// The region of `task` that contains `addr`, or else the first one after it, as
/// `mach_vm_region` finds it.
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; `KERN_INVALID_ADDRESS`
/// when no region contains or follows `addr`.
pub fn region<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
) -> Result<Region, HostError> {
    let get = view::<T>;
    let mut env = env(&mut store, get, task)?;
    let vm = env.vm(task);
    let p = vm.page_size();
    vm.table()
        .region_at_or_after(addr / p)
        .map(|run| Region::from_run(run, p))
        .ok_or(HostError::kern("mach_vm_region", KERN_INVALID_ADDRESS))
}

/// `mach_vm_protect(task, addr, size, set_max, prot)` on `task`'s own map: sets the current
/// (or, with `set_max`, the maximum) protection of the pages of `[addr, addr + size)`.
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; otherwise the call's
/// `kern_return_t` when it is not `KERN_SUCCESS` (spec §4: `KERN_INVALID_ADDRESS` for an
/// unallocated page, `KERN_PROTECTION_FAILURE` above the maximum protection,
/// `KERN_INVALID_ARGUMENT` for bad bits, ...).
pub fn protect<T: KernelView>(
    store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
    size: u64,
    set_max: bool,
    prot: VmProt,
) -> Result<(), HostError> {
    let get = view::<T>;
    let call = Call::Protect {
        form: Form::MachVm,
        task: TASK_SELF_NAME,
        addr,
        size,
        set_max: u32::from(set_max),
        prot,
    };
    run_call(store, get, task, call)
}

/// Makes the pages of `[addr, addr + size)` of `task` permanent, as XNU's permanent map
/// entries are: no guest call removes or replaces them. `vm_deallocate` leaves a permanent
/// page allocated with no access (current and maximum protection none), and
/// `vm_protect(VM_PROT_COPY)` or an overwriting `vm_allocate` over one answers
/// `KERN_NO_SPACE`, so its maximum protection can only go down. Lower the maximum first
/// (`protect(.., set_max: true, VM_PROT_READ)`) for a range that stays read-only whatever
/// the guest does. It lasts as long as the task.
///
/// Like every protection, permanence belongs to the mapping it is given to: pages of the
/// range that the guest already shared elsewhere (`vm_remap`, spec §8; [`regions`] reports
/// `shared`) keep their other mappings' protections. Make the range permanent before the
/// guest runs, or protect every mapping.
///
/// ```
/// use machvm::{abi::*, host, Kernel};
/// use wasmtime::{Engine, MemoryType, Store};
///
/// struct State { kernel: Kernel }
/// impl machvm::KernelView for State { fn kernel(&mut self) -> &mut Kernel { &mut self.kernel } }
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
/// let task = machvm::new_task(&mut store, MemoryType::new(1, None))?;
/// host::protect(&mut store, task, 0x1000, 0x1000, true, VM_PROT_READ)?;
/// host::make_permanent(&mut store, task, 0x1000, 0x1000)?;
/// // VM_PROT_COPY would give the range a writable maximum: refused.
/// let e = host::protect(&mut store, task, 0x1000, 0x1000, false, VM_PROT_COPY | VM_PROT_DEFAULT);
/// assert_eq!(e.unwrap_err().code(), KERN_NO_SPACE);
/// # Ok::<(), wasmtime::Error>(())
/// ```
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; `KERN_INVALID_ADDRESS`
/// (nothing changed) when a page of the range is unallocated or outside the map.
pub fn make_permanent<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
    size: u64,
) -> Result<(), HostError> {
    let get = view::<T>;
    let mut env = env(&mut store, get, task)?;
    if size == 0 {
        return Ok(());
    }
    let vm = env.vm(task);
    let p = u128::from(vm.page_size());
    let end = (u128::from(addr) + u128::from(size)).div_ceil(p);
    let (s, e) = (addr / vm.page_size(), end.min(u128::from(u64::MAX)) as u64);
    vm.table_mut()
        .make_permanent(s, e)
        .map_err(|err| HostError::Kern {
            op: "make_permanent",
            code: KERN_INVALID_ADDRESS,
            page: Some(err.page().saturating_mul(p as u64)),
        })
}

/// `mach_vm_allocate(task, &addr, size, flags)` on `task`'s own map: maps `size` bytes
/// (rounded up to whole pages), zero, readable and writable, at `addr`, or with
/// `VM_FLAGS_ANYWHERE` at the lowest free range (`addr` is then ignored), growing the
/// memory when the range lies past its end. Gives the address.
///
/// ```
/// use machvm::{abi::*, host, Kernel};
/// use wasmtime::{Engine, MemoryType, Store};
///
/// struct State { kernel: Kernel }
/// impl machvm::KernelView for State { fn kernel(&mut self) -> &mut Kernel { &mut self.kernel } }
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let mut store = Store::new(&engine, State { kernel: Kernel::new()? });
/// let task = machvm::new_task(&mut store, MemoryType::new(1, Some(4)))?;
/// // The memory's one wasm page is allocated: the first free page follows it.
/// let at = host::allocate(&mut store, task, 0, 0x1000, VM_FLAGS_ANYWHERE)?;
/// assert_eq!(at, 0x10000);
/// let e = host::allocate(&mut store, task, at, 0x1000, VM_FLAGS_FIXED).unwrap_err();
/// assert_eq!(e.code(), KERN_NO_SPACE);
/// # Ok::<(), wasmtime::Error>(())
/// ```
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; otherwise the call's
/// `kern_return_t` (spec §4: `KERN_NO_SPACE` when no free range is large enough or the fixed
/// range is taken, `KERN_INVALID_ADDRESS` past the map, `KERN_INVALID_ARGUMENT` for flags
/// a user allocation may not pass).
pub fn allocate<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
    size: u64,
    flags: VmFlags,
) -> Result<u64, HostError> {
    let get = view::<T>;
    let mut env = env(&mut store, get, task)?;
    vm::allocate(&mut env, task, addr, size, flags)
        .map_err(|code| HostError::kern("mach_vm_allocate", code))
}

/// `mach_vm_deallocate(task, addr, size)` on `task`'s own map.
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; `KERN_INVALID_ARGUMENT`
/// when the range wraps. Holes and out-of-map ranges are not errors (spec §4); they are
/// reported as guard exceptions through `tracing`.
pub fn deallocate<T: KernelView>(
    store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
    size: u64,
) -> Result<(), HostError> {
    let get = view::<T>;
    let call = Call::Deallocate {
        form: Form::MachVm,
        task: TASK_SELF_NAME,
        addr,
        size,
    };
    run_call(store, get, task, call)
}

/// `mach_vm_copy(task, src, size, dst)` inside `task`: all or nothing, with `memmove`
/// semantics.
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; otherwise the call's
/// `kern_return_t` (`KERN_INVALID_ADDRESS`, `KERN_PROTECTION_FAILURE`).
pub fn copy<T: KernelView>(
    store: impl AsContextMut<Data = T>,
    task: TaskId,
    src: u64,
    size: u64,
    dst: u64,
) -> Result<(), HostError> {
    let get = view::<T>;
    let call = Call::Copy {
        form: Form::MachVm,
        task: TASK_SELF_NAME,
        src,
        size,
        dst,
    };
    run_call(store, get, task, call)
}

/// Checks `[addr, addr + len)` of `task` for `prot` as a call's range: every page allocated
/// and allowing `prot`.
fn check<T: 'static, G: GetKernel<T>>(
    env: &mut StoreEnv<'_, T, G>,
    op: &'static str,
    task: TaskId,
    addr: u64,
    len: u64,
    prot: VmProt,
) -> Result<(), HostError> {
    let vm = env.vm(task);
    let p = u128::from(vm.page_size());
    let end = u128::from(addr) + u128::from(len);
    let (s, e) = (
        addr / vm.page_size(),
        end.div_ceil(p).min(u128::from(u64::MAX)) as u64,
    );
    vm.table()
        .check_access(s, e, prot)
        .map_err(|err| HostError::Kern {
            op,
            code: match err {
                CheckError::Unallocated { .. } => KERN_INVALID_ADDRESS,
                CheckError::Denied { .. } => KERN_PROTECTION_FAILURE,
            },
            page: Some(err.page().saturating_mul(vm.page_size())),
        })
}

/// Checks that every byte of `[addr, addr + len)` of `task` lies in a page its table
/// allocates with `prot` (`VM_PROT_READ` for bytes a host function will read,
/// `VM_PROT_WRITE` for bytes it will write): the copyin/copyout check that an embedder's own
/// host function makes before it touches guest memory (`docs/security.md`). Once it passes,
/// the hardware allows the access too, until the task's table next changes (a write-only
/// page that waited inaccessible for its first store is made writable). A length of 0
/// always passes.
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; `KERN_INVALID_ADDRESS`
/// when a page is unallocated or outside the map, `KERN_PROTECTION_FAILURE` when one lacks
/// `prot` (the error names the first such page); `KERN_RESOURCE_SHORTAGE` when a write-only
/// page cannot be made writable (the process's mapping budget).
pub fn check_access<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
    len: u64,
    prot: VmProt,
) -> Result<(), HostError> {
    let get = view::<T>;
    let mut env = env(&mut store, get, task)?;
    if len == 0 {
        return Ok(());
    }
    check(&mut env, "check_access", task, addr, len, prot)?;
    // Write-only pages that wait inaccessible for their first store become writable now,
    // so that the promise holds for them too.
    if prot.intersects(VM_PROT_WRITE) && !env.prepare_write(task, addr, len) {
        return Err(HostError::kern("check_access", KERN_RESOURCE_SHORTAGE));
    }
    Ok(())
}

/// Reads `len` bytes at `addr` of `task`. Every page of the range must be allocated and
/// readable, as for the source of `vm_read_overwrite`.
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; `KERN_INVALID_ADDRESS`
/// when a page is unallocated or outside the map, `KERN_PROTECTION_FAILURE` when one is not
/// readable (the error names the first such page).
pub fn read_bytes<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
    len: usize,
) -> Result<Vec<u8>, HostError> {
    let get = view::<T>;
    let mut env = env(&mut store, get, task)?;
    if len == 0 {
        return Ok(Vec::new());
    }
    // The table allows the range before anything is allocated for it: an allowed range lies
    // inside the memory, so the buffer is never larger than the guest's own memory.
    check(&mut env, "read_bytes", task, addr, len as u64, VM_PROT_READ)?;
    let mut buf = vec![0; len];
    if !env.load(task, addr, &mut buf) {
        return Err(HostError::kern("read_bytes", KERN_FAILURE));
    }
    Ok(buf)
}

/// Writes `bytes` at `addr` of `task`. Every page of the range must be allocated and
/// writable, as for the destination of `vm_write`.
///
/// # Errors
///
/// [`HostError::NoSuchTask`] when `task` is not a task of the kernel; `KERN_INVALID_ADDRESS`
/// when a page is unallocated or outside the map, `KERN_PROTECTION_FAILURE` when one is not
/// writable (the error names the first such page), `KERN_RESOURCE_SHORTAGE` when a
/// write-only page cannot be made writable (the process's mapping budget). Nothing is
/// written then.
pub fn write_bytes<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    task: TaskId,
    addr: u64,
    bytes: &[u8],
) -> Result<(), HostError> {
    let get = view::<T>;
    let mut env = env(&mut store, get, task)?;
    if bytes.is_empty() {
        return Ok(());
    }
    check(
        &mut env,
        "write_bytes",
        task,
        addr,
        bytes.len() as u64,
        VM_PROT_WRITE,
    )?;
    if !env.prepare_write(task, addr, bytes.len() as u64) {
        return Err(HostError::kern("write_bytes", KERN_RESOURCE_SHORTAGE));
    }
    if !env.store(task, addr, bytes) {
        return Err(HostError::kern("write_bytes", KERN_FAILURE));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::kernel::Kernel;
    use wasmtime::{Engine, MemoryType, Store};

    fn store() -> Store<Kernel> {
        Store::new(
            &Engine::new(crate::configure(&mut wasmtime::Config::new())).unwrap(),
            Kernel::new().unwrap(),
        )
    }

    #[test]
    fn reads_and_writes_follow_the_table() {
        let mut store = store();
        let t = crate::new_task(&mut store, MemoryType::new(1, Some(2))).unwrap();
        write_bytes(&mut store, t, 0xfffe, b"abcd").unwrap_err();
        write_bytes(&mut store, t, 0xfff0, b"abcd").unwrap();
        assert_eq!(read_bytes(&mut store, t, 0xfff0, 4).unwrap(), b"abcd");
        // Past the memory: unallocated, inside the map.
        let e = read_bytes(&mut store, t, 0xfff0, 0x20).unwrap_err();
        assert_eq!(
            e,
            HostError::Kern {
                op: "read_bytes",
                code: KERN_INVALID_ADDRESS,
                page: Some(0x10000)
            }
        );
        assert_eq!(
            e.to_string(),
            "read_bytes: KERN_INVALID_ADDRESS at page 0x10000"
        );
        // Far outside the map, and wrapping the 64-bit space.
        let e = read_bytes(&mut store, t, u64::MAX - 1, 4).unwrap_err();
        assert_eq!(e.code(), KERN_INVALID_ADDRESS);
        // Write-only and no-access pages.
        protect(&mut store, t, 0x1000, 0x1000, false, VM_PROT_WRITE).unwrap();
        protect(&mut store, t, 0x2000, 0x1000, false, VM_PROT_NONE).unwrap();
        write_bytes(&mut store, t, 0x1ff0, b"xy").unwrap();
        let e = read_bytes(&mut store, t, 0x1ff0, 2).unwrap_err();
        assert_eq!(e.code(), KERN_PROTECTION_FAILURE);
        let e = write_bytes(&mut store, t, 0x1ff0, &[1; 0x20]).unwrap_err();
        assert_eq!(
            e,
            HostError::Kern {
                op: "write_bytes",
                code: KERN_PROTECTION_FAILURE,
                page: Some(0x2000)
            }
        );
        // Nothing was written by the refused write.
        protect(&mut store, t, 0x1000, 0x2000, false, VM_PROT_READ).unwrap();
        assert_eq!(
            read_bytes(&mut store, t, 0x1ff0, 0x20).unwrap(),
            [b"xy".as_slice(), &[0; 0x1e]].concat()
        );
        assert_eq!(read_bytes(&mut store, t, 0x50000, 0).unwrap(), b"");
    }

    #[test]
    fn regions_protect_copy_and_deallocate() {
        let mut store = store();
        let t = crate::new_task(&mut store, MemoryType::new(1, None)).unwrap();
        assert_eq!(
            regions(&mut store, t).unwrap(),
            [Region {
                start: 0,
                size: 0x10000,
                protection: VM_PROT_DEFAULT,
                max_protection: VM_PROT_ALL,
                inheritance: VM_INHERIT_COPY,
                shared: false,
                offset: 0,
            }]
        );
        protect(&mut store, t, 0x3000, 0x1000, true, VM_PROT_READ).unwrap();
        let e = protect(&mut store, t, 0x3000, 0x1000, false, VM_PROT_DEFAULT).unwrap_err();
        assert_eq!(e.code(), KERN_PROTECTION_FAILURE);
        assert_eq!(e.to_string(), "mach_vm_protect: KERN_PROTECTION_FAILURE");
        let r = region(&mut store, t, 0x3800).unwrap();
        assert_eq!(r.to_string(), "0x3000-0x4000 r--/r--");
        write_bytes(&mut store, t, 0x100, b"copied").unwrap();
        copy(&mut store, t, 0x100, 6, 0x5000).unwrap();
        assert_eq!(read_bytes(&mut store, t, 0x5000, 6).unwrap(), b"copied");
        assert_eq!(
            copy(&mut store, t, 0x100, 6, 0x3000).unwrap_err().code(),
            KERN_PROTECTION_FAILURE
        );
        deallocate(&mut store, t, 0x8000, 0x8000).unwrap();
        assert_eq!(
            region(&mut store, t, 0x8000).unwrap_err().code(),
            KERN_INVALID_ADDRESS
        );
        assert_eq!(regions(&mut store, t).unwrap().len(), 3);
        // The memory grew behind the table's back: the new pages are allocated.
        let mem = store.data().memory(t).unwrap();
        mem.grow(&mut store, 1).unwrap();
        let last = *regions(&mut store, t).unwrap().last().unwrap();
        assert_eq!((last.start, last.end()), (0x10000, 0x20000));
    }

    #[test]
    fn an_unknown_task_is_refused() {
        let mut store = store();
        let e = regions(&mut store, TaskId::new(0, 3)).unwrap_err();
        assert_eq!(e, HostError::NoSuchTask(TaskId::new(0, 3)));
        assert_eq!(e.code(), MACH_SEND_INVALID_DEST);
        assert!(read_bytes(&mut store, TaskId::new(0, 0), 0, 1).is_err());
        assert!(write_bytes(&mut store, TaskId::new(0, 0), 0, b"x").is_err());
        assert!(protect(&mut store, TaskId::new(0, 0), 0, 1, false, VM_PROT_NONE).is_err());
        // Empty ranges still name a task.
        let none = TaskId::new(0, 0);
        assert!(read_bytes(&mut store, none, 0, 0).is_err());
        assert!(write_bytes(&mut store, none, 0, b"").is_err());
        assert!(check_access(&mut store, none, 0, 0, VM_PROT_READ).is_err());
    }

    /// Lengths past the memory are refused before anything is allocated for them (the
    /// process would abort on a 64 TiB allocation).
    #[test]
    fn huge_reads_are_refused_before_allocating() {
        let mut store = store();
        let t = crate::new_task(&mut store, MemoryType::new(1, None)).unwrap();
        for len in [1 << 46, usize::MAX, 0x10001] {
            let e = read_bytes(&mut store, t, 0, len).unwrap_err();
            assert_eq!(e.code(), KERN_INVALID_ADDRESS, "{len:#x}");
        }
        assert_eq!(read_bytes(&mut store, t, 0, 0).unwrap(), b"");
        assert_eq!(
            read_bytes(&mut store, t, 0, 0x10000).unwrap().len(),
            0x10000
        );
    }

    #[test]
    fn check_access_follows_the_table() {
        let mut store = store();
        let t = crate::new_task(&mut store, MemoryType::new(1, None)).unwrap();
        protect(&mut store, t, 0x2000, 0x1000, false, VM_PROT_READ).unwrap();
        check_access(&mut store, t, 0x1000, 0x2000, VM_PROT_READ).unwrap();
        let e = check_access(&mut store, t, 0x1000, 0x2000, VM_PROT_WRITE).unwrap_err();
        assert_eq!(e.code(), KERN_PROTECTION_FAILURE);
        assert_eq!(
            e.to_string(),
            "check_access: KERN_PROTECTION_FAILURE at page 0x2000"
        );
        let e = check_access(&mut store, t, 0xffff, 2, VM_PROT_READ).unwrap_err();
        assert_eq!(e.code(), KERN_INVALID_ADDRESS);
        check_access(&mut store, t, 0x2000, 0, VM_PROT_WRITE).unwrap();
    }
}
