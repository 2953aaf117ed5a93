//! WASI preview 1 for tasks, with the page table as a boundary (the contract's "other host
//! functions" rule, `docs/security.md`).
//!
//! [`add_to_linker_sync`] links every `wasi_snapshot_preview1` function, as
//! `wasmtime_wasi::p1::add_to_linker_sync` does, with one difference: before a function does
//! anything, every guest byte it will read must lie in a page the calling task's table
//! allocates with `VM_PROT_READ`, and every byte it will write (data buffers and
//! out-pointers alike) in one allocated with `VM_PROT_WRITE`. When a byte fails, the
//! function returns errno `FAULT` (21) and has no effect: no guest byte written, no input
//! consumed, no output produced, no file changed. (Write-only pages that wait inaccessible
//! for their first store are made writable first; when the process's mapping budget cannot
//! afford that, the function answers `FAULT` the same way.) This is a kernel's copyin/copyout check,
//! done up front. (One more difference: `proc_exit` passes every status on as
//! [`wasmtime_wasi::I32Exit`], as a macOS process's `exit` does, where wasmtime-wasi refuses
//! statuses of 126 and above with an error.)
//!
//! What counts as "will read" and "will write", function by function:
//! - out-pointers (`nread`, `nwritten`, `bufused`, `fd`, sizes, timestamps, `fdstat`,
//!   `filestat`, `prestat`, `roflags`): written, their whole size;
//! - iovec arrays: the array is read; every buffer it names is written (`fd_read`,
//!   `fd_pread`, `sock_recv`) or read (`fd_write`, `fd_pwrite`, `sock_send`), whole, even
//!   when the implementation would use only the first non-empty one;
//! - strings and paths: read, their whole length; `fd_prestat_dir_name`, `fd_readdir`,
//!   `path_readlink` and `random_get` buffers: written, their whole length;
//! - `args_get` / `environ_get`: the pointer array (4 bytes an entry) and the string buffer,
//!   written, their sizes as `args_sizes_get` / `environ_sizes_get` give them;
//! - `poll_oneoff`: the subscriptions read, the events (one per subscription) and `nevents`
//!   written.
//!
//! A range that does not lie wholly inside the linear memory is left to WASI's own rule (it
//! traps). The memory is the caller's export named `memory`, as WASI requires; a memory that
//! is no task's (a plain instance in the same store) is not checked.

use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1 as _};
use wasmtime_wasi::p1::WasiP1Ctx;
use wiggle::GuestMemory;

use crate::abi::{VmProt, VM_PROT_READ, VM_PROT_WRITE};
use crate::embed::{view, GetKernel, KernelView};
use crate::vm::TaskVm;

/// The module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// WASI's errno `FAULT`: a function was refused a guest byte by the page table.
pub const ERRNO_FAULT: i32 = 21;

/// Sizes in guest memory of WASI preview 1's records (witx layout).
const IOVEC: u64 = 8;
const FDSTAT: u64 = 24;
const FILESTAT: u64 = 64;
const PRESTAT: u64 = 8;
const SUBSCRIPTION: u64 = 48;
const EVENT: u64 = 32;

/// The guest bytes a WASI function will touch, checked against the table as they are named.
struct Footprint<'a> {
    /// The caller's linear memory.
    bytes: &'a [u8],
    /// The caller's task; `None` when the memory is no task's (nothing to check).
    vm: Option<&'a TaskVm>,
    /// A named byte failed the table.
    fault: bool,
    /// The ranges that will be written, for [`crate::embed::prepare_task_write`].
    writes: Vec<(u64, u64)>,
}

impl Footprint<'_> {
    /// `[ptr, ptr + len)` of the 32-bit guest must allow `prot`. A range that is not wholly
    /// inside the memory is left to WASI (it traps on it).
    fn range(&mut self, ptr: i32, len: u64, prot: VmProt) {
        let Some(vm) = self.vm else {
            return;
        };
        let addr = u64::from(ptr as u32);
        if len == 0 || self.fault || !self.inside(addr, len) {
            return;
        }
        let (s, e) = vm.pages(addr, len);
        if vm.table().check_access(s, e, prot).is_err() {
            self.fault = true;
        } else if prot == VM_PROT_WRITE {
            self.writes.push((addr, len));
        }
    }

    fn inside(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len)
            .is_some_and(|end| end <= self.bytes.len() as u64)
    }

    fn read(&mut self, ptr: i32, len: u64) {
        self.range(ptr, len, VM_PROT_READ);
    }

    fn write(&mut self, ptr: i32, len: u64) {
        self.range(ptr, len, VM_PROT_WRITE);
    }

    /// A string or path argument: `len` bytes read.
    fn string(&mut self, ptr: i32, len: i32) {
        self.read(ptr, u64::from(len as u32));
    }

    /// An iovec array of `n` entries at `ptr`: the array is read, then every buffer it names
    /// is written (`write`) or read. Entries outside the memory name nothing WASI can reach
    /// (it traps on them).
    fn iovecs(&mut self, ptr: i32, n: i32, write: bool) {
        let (base, n) = (u64::from(ptr as u32), u64::from(n as u32));
        self.read(ptr, n * IOVEC);
        let prot = if write { VM_PROT_WRITE } else { VM_PROT_READ };
        for i in 0..n {
            let at = base + i * IOVEC;
            if self.fault || !self.inside(at, IOVEC) {
                return;
            }
            let at = at as usize;
            let word = |o: usize| {
                let b = &self.bytes[at + o..at + o + 4];
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            };
            let (buf, len) = (word(0), word(4));
            self.range(buf as i32, u64::from(len), prot);
        }
    }
}

/// Checks the caller's memory export (WASI's `memory`) and runs `footprint` on it against
/// the caller's task's table: true when every byte it names is allowed. A memory that no
/// live task owns is not checked, unless it still carries the protections of a kernel taken
/// out of the store: then the call traps (see `embed::task_of_memory`).
fn allowed<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetKernel<T>,
    memory: &Extern,
    footprint: impl FnOnce(&mut Footprint<'_>),
) -> wasmtime::Result<bool> {
    let Extern::Memory(mem) = memory else {
        // A shared memory is never a task's.
        return Ok(true);
    };
    let task = crate::embed::task_of_memory(caller.as_context_mut(), get, *mem)?;
    if let Some(task) = task {
        crate::embed::sync_task(caller.as_context_mut(), get, task);
    }
    let (bytes, data) = mem.data_and_store_mut(&mut *caller);
    let kernel = get(data);
    let mut f = Footprint {
        bytes,
        vm: task.map(|t| &kernel.tasks[t.index()].vm),
        fault: false,
        writes: Vec::new(),
    };
    footprint(&mut f);
    if f.fault {
        return Ok(false);
    }
    // The operating system writes these bytes (a `read` into the buffer): write-only pages
    // there must be writable in hardware first, or it would fail them.
    let writes = std::mem::take(&mut f.writes);
    Ok(match task {
        Some(task) => writes.iter().all(|&(addr, len)| {
            crate::embed::prepare_task_write(caller.as_context_mut(), get, task, addr, len)
        }),
        None => true,
    })
}

/// The caller's `memory` export, as WASI finds it.
fn memory<T>(caller: &mut Caller<'_, T>) -> wasmtime::Result<Extern> {
    match caller.get_export("memory") {
        Some(m @ (Extern::Memory(_) | Extern::SharedMemory(_))) => Ok(m),
        _ => wasmtime::bail!("missing required memory export"),
    }
}

/// Runs `f` with the WASI context and the caller's memory as wiggle's glue does.
fn with_wasi<T: 'static, R>(
    caller: &mut Caller<'_, T>,
    wasi: impl Fn(&mut T) -> &mut WasiP1Ctx,
    memory: &Extern,
    f: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> R,
) -> R {
    let fuel = caller.as_context_mut().hostcall_fuel();
    match memory {
        Extern::SharedMemory(m) => {
            let ctx = wasi(caller.data_mut());
            ctx.set_hostcall_fuel(fuel);
            f(ctx, &mut GuestMemory::Shared(m.data()))
        }
        Extern::Memory(m) => {
            let (bytes, data) = m.data_and_store_mut(caller);
            let ctx = wasi(data);
            ctx.set_hostcall_fuel(fuel);
            f(ctx, &mut GuestMemory::Unshared(bytes))
        }
        _ => unreachable!("`memory` returns memories only"),
    }
}

/// `args_sizes_get` or `environ_sizes_get` as numbers: the entry count and the buffer size.
fn sizes<T: 'static>(
    caller: &mut Caller<'_, T>,
    wasi: impl Fn(&mut T) -> &mut WasiP1Ctx,
    environ: bool,
) -> wasmtime::Result<[u64; 2]> {
    let ctx = wasi(caller.data_mut());
    // These two read no guest memory: their results come back by value.
    let mut none = GuestMemory::Unshared(&mut []);
    let (n, size) = if environ {
        ctx.environ_sizes_get(&mut none)
    } else {
        ctx.args_sizes_get(&mut none)
    }
    .map_err(|e| wasmtime::format_err!("{e:?}"))?;
    Ok([u64::from(n), u64::from(size)])
}

/// Links every WASI preview 1 function into `linker`, checked against the calling task's
/// page table as the module docs say. The store's data finds its kernel through
/// [`KernelView`]; `wasi` projects it to its WASI context.
///
/// ```
/// use machvm::Kernel;
/// use wasmtime::{Engine, Linker, Store};
/// use wasmtime_wasi::p1::WasiP1Ctx;
/// use wasmtime_wasi::WasiCtxBuilder;
///
/// struct State { kernel: Kernel, wasi: WasiP1Ctx }
/// impl machvm::KernelView for State {
///     fn kernel(&mut self) -> &mut Kernel { &mut self.kernel }
/// }
///
/// let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
/// let mut linker = Linker::new(&engine);
/// machvm::wasi::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)?;
/// let module = machvm::compile(&engine, br#"(module
///     (import "mach" "mach_task_self" (func $self (result i32)))
///     (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
///     (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
///     (memory (export "memory") 1)
///     (func (export "run") (result i32)
///         (drop (call $protect (call $self) (i32.const 4096) (i32.const 4096) (i32.const 0) (i32.const 1)))
///         ;; random bytes into the read-only page: errno FAULT, nothing written
///         (call $random (i32.const 4096) (i32.const 16))))"#)?;
/// let state = State { kernel: Kernel::new()?, wasi: WasiCtxBuilder::new().build_p1() };
/// let mut store = Store::new(&engine, state);
/// let (instance, _) = machvm::instantiate(&mut store, &linker, &module)?;
/// let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
/// assert_eq!(run.call(&mut store, ())?, machvm::wasi::ERRNO_FAULT);
/// # Ok::<(), wasmtime::Error>(())
/// ```
///
/// # Errors
///
/// When `linker` already defines one of the functions (and does not allow shadowing).
pub fn add_to_linker_sync<T: KernelView + Send>(
    linker: &mut Linker<T>,
    wasi: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
) -> wasmtime::Result<()> {
    let kernel = view::<T>;
    /// One WASI function: its wasm parameters, whether wiggle's implementation is async,
    /// the sizes it needs first (`args`/`environ` sizes, or none) and its footprint.
    macro_rules! link {
        ($($mode:ident $name:ident ($($a:ident: $t:ty),*) [$aux:ident] => |$f:ident, $n:ident| $fp:block)*) => {$(
            linker.func_wrap(
                MODULE,
                stringify!($name),
                move |mut caller: Caller<'_, T>, $($a: $t),*| -> wasmtime::Result<i32> {
                    let memory = memory(&mut caller)?;
                    #[allow(unused_variables)]
                    let $n: [u64; 2] = link!(@aux $aux, &mut caller);
                    #[allow(unused_variables)]
                    let footprint = |$f: &mut Footprint<'_>| $fp;
                    if !allowed(&mut caller, kernel, &memory, footprint)? {
                        return Ok(ERRNO_FAULT);
                    }
                    with_wasi(&mut caller, wasi, &memory, |ctx, mem| {
                        link!(@call $mode p1::$name(ctx, mem $(, $a)*))
                    })
                },
            )?;
        )*};
        (@aux none, $c:expr) => { [0, 0] };
        (@aux args, $c:expr) => { sizes($c, wasi, false)? };
        (@aux environ, $c:expr) => { sizes($c, wasi, true)? };
        (@call sync $e:expr) => { $e };
        (@call async $e:expr) => { wasmtime_wasi::runtime::in_tokio($e) };
    }
    const W: u64 = 4;
    const U64: u64 = 8;
    link! {
        sync args_get(argv: i32, buf: i32) [args] => |f, n| {
            f.write(argv, n[0] * W);
            f.write(buf, n[1]);
        }
        sync args_sizes_get(argc: i32, size: i32) [none] => |f, n| {
            f.write(argc, W);
            f.write(size, W);
        }
        sync environ_get(environ: i32, buf: i32) [environ] => |f, n| {
            f.write(environ, n[0] * W);
            f.write(buf, n[1]);
        }
        sync environ_sizes_get(count: i32, size: i32) [none] => |f, n| {
            f.write(count, W);
            f.write(size, W);
        }
        sync clock_res_get(id: i32, res: i32) [none] => |f, n| { f.write(res, U64); }
        sync clock_time_get(id: i32, precision: i64, time: i32) [none] => |f, n| {
            f.write(time, U64);
        }
        async fd_advise(fd: i32, offset: i64, len: i64, advice: i32) [none] => |f, n| {}
        sync fd_allocate(fd: i32, offset: i64, len: i64) [none] => |f, n| {}
        async fd_close(fd: i32) [none] => |f, n| {}
        async fd_datasync(fd: i32) [none] => |f, n| {}
        async fd_fdstat_get(fd: i32, stat: i32) [none] => |f, n| { f.write(stat, FDSTAT); }
        sync fd_fdstat_set_flags(fd: i32, flags: i32) [none] => |f, n| {}
        sync fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64) [none] => |f, n| {}
        async fd_filestat_get(fd: i32, stat: i32) [none] => |f, n| { f.write(stat, FILESTAT); }
        async fd_filestat_set_size(fd: i32, size: i64) [none] => |f, n| {}
        async fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32) [none] => |f, n| {}
        async fd_pread(fd: i32, iovs: i32, len: i32, offset: i64, nread: i32) [none] => |f, n| {
            f.iovecs(iovs, len, true);
            f.write(nread, W);
        }
        sync fd_prestat_get(fd: i32, stat: i32) [none] => |f, n| { f.write(stat, PRESTAT); }
        sync fd_prestat_dir_name(fd: i32, path: i32, len: i32) [none] => |f, n| {
            f.write(path, u64::from(len as u32));
        }
        async fd_pwrite(fd: i32, iovs: i32, len: i32, offset: i64, nwritten: i32) [none] => |f, n| {
            f.iovecs(iovs, len, false);
            f.write(nwritten, W);
        }
        async fd_read(fd: i32, iovs: i32, len: i32, nread: i32) [none] => |f, n| {
            f.iovecs(iovs, len, true);
            f.write(nread, W);
        }
        async fd_readdir(fd: i32, buf: i32, len: i32, cookie: i64, bufused: i32) [none] => |f, n| {
            f.write(buf, u64::from(len as u32));
            f.write(bufused, W);
        }
        async fd_renumber(fd: i32, to: i32) [none] => |f, n| {}
        async fd_seek(fd: i32, offset: i64, whence: i32, pos: i32) [none] => |f, n| {
            f.write(pos, U64);
        }
        async fd_sync(fd: i32) [none] => |f, n| {}
        sync fd_tell(fd: i32, pos: i32) [none] => |f, n| { f.write(pos, U64); }
        async fd_write(fd: i32, iovs: i32, len: i32, nwritten: i32) [none] => |f, n| {
            f.iovecs(iovs, len, false);
            f.write(nwritten, W);
        }
        async path_create_directory(fd: i32, path: i32, len: i32) [none] => |f, n| {
            f.string(path, len);
        }
        async path_filestat_get(fd: i32, flags: i32, path: i32, len: i32, stat: i32) [none] => |f, n| {
            f.string(path, len);
            f.write(stat, FILESTAT);
        }
        async path_filestat_set_times(fd: i32, flags: i32, path: i32, len: i32, atim: i64, mtim: i64, fst: i32) [none] => |f, n| {
            f.string(path, len);
        }
        async path_link(old_fd: i32, old_flags: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32) [none] => |f, n| {
            f.string(old, old_len);
            f.string(new, new_len);
        }
        async path_open(fd: i32, dirflags: i32, path: i32, len: i32, oflags: i32, base: i64, inheriting: i64, fdflags: i32, opened: i32) [none] => |f, n| {
            f.string(path, len);
            f.write(opened, W);
        }
        async path_readlink(fd: i32, path: i32, len: i32, buf: i32, buf_len: i32, bufused: i32) [none] => |f, n| {
            f.string(path, len);
            f.write(buf, u64::from(buf_len as u32));
            f.write(bufused, W);
        }
        async path_remove_directory(fd: i32, path: i32, len: i32) [none] => |f, n| {
            f.string(path, len);
        }
        async path_rename(fd: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32) [none] => |f, n| {
            f.string(old, old_len);
            f.string(new, new_len);
        }
        async path_symlink(old: i32, old_len: i32, fd: i32, new: i32, new_len: i32) [none] => |f, n| {
            f.string(old, old_len);
            f.string(new, new_len);
        }
        async path_unlink_file(fd: i32, path: i32, len: i32) [none] => |f, n| {
            f.string(path, len);
        }
        async poll_oneoff(subs: i32, events: i32, count: i32, nevents: i32) [none] => |f, n| {
            let count = u64::from(count as u32);
            f.read(subs, count * SUBSCRIPTION);
            f.write(events, count * EVENT);
            f.write(nevents, W);
        }
        sync proc_raise(sig: i32) [none] => |f, n| {}
        sync sched_yield() [none] => |f, n| {}
        sync random_get(buf: i32, len: i32) [none] => |f, n| {
            f.write(buf, u64::from(len as u32));
        }
        sync sock_accept(fd: i32, flags: i32, accepted: i32) [none] => |f, n| {
            f.write(accepted, W);
        }
        sync sock_recv(fd: i32, iovs: i32, len: i32, flags: i32, size: i32, roflags: i32) [none] => |f, n| {
            f.iovecs(iovs, len, true);
            f.write(size, W);
            f.write(roflags, 2);
        }
        sync sock_send(fd: i32, iovs: i32, len: i32, flags: i32, size: i32) [none] => |f, n| {
            f.iovecs(iovs, len, false);
            f.write(size, W);
        }
        sync sock_shutdown(fd: i32, how: i32) [none] => |f, n| {}
    }
    // `proc_exit` touches no memory and returns nothing. Every status is passed on, as a
    // macOS process's `exit` passes it (`exit(255)`, `return -1` from `main`), where
    // wasmtime-wasi traps on statuses of 126 and above; what the OS keeps of it (the low
    // 8 bits, for `machvm run`) is the embedder's to decide.
    linker.func_wrap(
        MODULE,
        "proc_exit",
        move |_: Caller<'_, T>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime_wasi::I32Exit(code).into())
        },
    )?;
    Ok(())
}
