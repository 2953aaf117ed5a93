//! Enforcement of the page table on the guest's own memory accesses (SPEC §5).
//!
//! The design, chosen with measurements (see `docs/enforcement.md`):
//! - **Plain loads and stores** (any width, SIMD included) are checked by the MMU: every
//!   table change is mirrored with `mprotect` on the linear memory's host pages, and a
//!   guest access to a protected page faults, which Wasmtime turns into a clean trap. This
//!   costs nothing on the access path.
//! - **`memory.copy`, `memory.fill`, `memory.init`** run in Wasmtime's host code, where a
//!   fault would kill the process; [`crate::rewrite`] turns them into calls to machvm's
//!   checked functions, which look at the table first and trap with [`BadAccess`].
//! - Host code (the imports, these functions) only touches pages the table allows, and the
//!   hardware always allows at least what the table allows, so it never faults.
//! - The memory must not move (`Config::memory_may_move(false)`, see [`configure`]);
//!   protections are restored to read-write before the kernel (and so the store) is dropped,
//!   so a pooling allocator's next instance gets a clean slot.
//!
//! The one protection x86 page tables cannot express is write-only: such a page is
//! readable by the guest's own loads (host-side calls still refuse to read it).

use std::fmt;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use rustix::mm::MprotectFlags;

use crate::calls::PageAttrs;
use crate::consts::{prot_string, VM_PROT_READ, VM_PROT_WRITE};

pub use crate::budget::{mapping_budget, mappings_in_use, set_mapping_budget};

/// Sets the Wasmtime options enforcement needs: memories that never move (a grow that
/// moved a memory would silently drop its protections), 64-bit memories enabled, and
/// signal-based traps (the default) so that a guest access to a protected page traps.
pub fn configure(config: &mut wasmtime::Config) -> &mut wasmtime::Config {
    config
        .memory_may_move(false)
        .wasm_memory64(true)
        .signals_based_traps(true)
}

/// The host's page size.
pub fn host_page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// The hardware protection that mirrors a page's table state: unallocated pages and pages
/// without READ or WRITE are inaccessible, READ is read-only, WRITE (alone or with READ)
/// is read-write (x86 cannot express write-only). EXECUTE has no meaning for wasm data.
pub fn hw_prot(attrs: Option<PageAttrs>) -> MprotectFlags {
    match attrs {
        Some(a) if a.cur & VM_PROT_WRITE != 0 => MprotectFlags::READ | MprotectFlags::WRITE,
        Some(a) if a.cur & VM_PROT_READ != 0 => MprotectFlags::READ,
        _ => MprotectFlags::empty(),
    }
}

/// Applies `flags` to `[base + offset, base + offset + len)`.
///
/// # Safety
///
/// The range must lie inside one live linear memory whose pages machvm governs (page
/// aligned, within its accessible size), so that no Rust reference to those bytes is in
/// use while protections drop.
pub(crate) unsafe fn protect(base: *mut u8, offset: u64, len: u64, flags: MprotectFlags) -> bool {
    if len == 0 {
        return true;
    }
    // SAFETY: the caller guarantees the range is inside a live mapping we govern.
    unsafe { rustix::mm::mprotect(base.add(offset as usize).cast(), len as usize, flags).is_ok() }
}

/// The kind of a guest memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// A load, or the source of a copy.
    Read,
    /// A store, or the destination of a copy or fill.
    Write,
    /// The hardware did not say (a fault on a platform where machvm cannot read it).
    Unknown,
}

/// A guest access that the page table refuses: the wasm trap machvm raises, the
/// equivalent of Mach's `EXC_BAD_ACCESS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadAccess {
    /// The instruction (`i32.store`, `memory.copy`, ...; `load or store` for a hardware
    /// fault, whose instruction the signal does not tell).
    pub instruction: &'static str,
    /// The wasm address of the first refused byte.
    pub addr: u64,
    /// The access kind.
    pub kind: AccessKind,
    /// The page size of the task.
    pub page_size: u64,
    /// The page's state: `None` when unallocated.
    pub page: Option<PageAttrs>,
}

impl fmt::Display for BadAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
            AccessKind::Unknown => "access",
        };
        let page = self.addr & !(self.page_size - 1);
        write!(
            f,
            "EXC_BAD_ACCESS: {} {kind} at wasm address {:#x}: page {page:#x} ",
            self.instruction, self.addr
        )?;
        match self.page {
            None => write!(f, "is unallocated"),
            Some(a) => write!(
                f,
                "has protection {} (max {})",
                prot_string(a.cur),
                prot_string(a.max)
            ),
        }
    }
}

impl std::error::Error for BadAccess {}

/// How many tasks of a store the signal handler can lift protections for.
pub(crate) const MAX_LIFT: usize = 64;

/// State shared between a store and machvm's signal handler (async-signal-safe: only
/// atomics): the last guest fault, for [`crate::explain_trap`]; whether the thread is in
/// host code; and where the enforced memories are, so that a fault of *host* code (WASI's
/// `fd_write` reading a protected guest buffer, say) lifts the protections instead of killing
/// the process.
#[derive(Debug)]
pub struct FaultRecord {
    addr: AtomicU64,
    /// 0 nothing, 1 read, 2 write, 3 unknown.
    kind: AtomicU8,
    /// The thread runs host code called from wasm (set by the store's call hook).
    in_host: AtomicBool,
    /// A host-code fault lifted the protections: they must be put back before wasm runs.
    lifted: AtomicBool,
    /// Base and size of each enforced memory (by task index), 0 when none.
    ranges: [(AtomicUsize, AtomicUsize); MAX_LIFT],
}

impl Default for FaultRecord {
    fn default() -> Self {
        FaultRecord {
            addr: AtomicU64::new(0),
            kind: AtomicU8::new(0),
            in_host: AtomicBool::new(false),
            lifted: AtomicBool::new(false),
            ranges: std::array::from_fn(|_| (AtomicUsize::new(0), AtomicUsize::new(0))),
        }
    }
}

impl FaultRecord {
    /// Takes the recorded fault: its host address and kind.
    pub fn take(&self) -> Option<(u64, AccessKind)> {
        let kind = match self.kind.swap(0, Ordering::SeqCst) {
            1 => AccessKind::Read,
            2 => AccessKind::Write,
            3 => AccessKind::Unknown,
            _ => return None,
        };
        Some((self.addr.load(Ordering::SeqCst), kind))
    }

    /// Records where task `index`'s enforced memory is.
    pub(crate) fn set_range(&self, index: usize, base: usize, size: usize) {
        if let Some((b, s)) = self.ranges.get(index) {
            s.store(0, Ordering::SeqCst);
            b.store(base, Ordering::SeqCst);
            s.store(size, Ordering::SeqCst);
        }
    }

    /// Sets whether the thread runs host code; returns true when protections were lifted
    /// meanwhile and must be put back (only when leaving host code).
    ///
    /// It runs twice per host call (the call hook), so it is two plain stores and a load:
    /// the signal handler that reads and sets these flags runs on the same thread, in the
    /// middle of host code (a fault is synchronous), so it needs no cross-thread ordering,
    /// only that the compiler keeps these accesses where they are relative to the host
    /// code around them (`compiler_fence`). After `in_host` is false no handler sets
    /// `lifted` (a fault in wasm code lifts nothing), so the load-then-clear is not racy.
    #[inline]
    pub(crate) fn set_in_host(&self, in_host: bool) -> bool {
        compiler_fence(Ordering::SeqCst);
        self.in_host.store(in_host, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        if in_host || !self.lifted.load(Ordering::Relaxed) {
            return false;
        }
        self.lifted.store(false, Ordering::Relaxed);
        true
    }

    /// The signal handler's work: a fault of host code inside an enforced memory lifts that
    /// memory's protections (true: retry the instruction); anything else is recorded for
    /// [`crate::explain_trap`] and left to Wasmtime (false).
    fn on_fault(&self, addr: usize, kind: u8) -> bool {
        if self.in_host.load(Ordering::SeqCst) {
            for (b, s) in &self.ranges {
                let (base, size) = (b.load(Ordering::SeqCst), s.load(Ordering::SeqCst));
                if size != 0 && addr >= base && addr - base < size {
                    let flags = MprotectFlags::READ | MprotectFlags::WRITE;
                    // SAFETY: [base, base + size) is an enforced memory of this store, still
                    // mapped (ranges are cleared before a memory goes away); mprotect is a
                    // plain system call, async-signal-safe.
                    let ok = unsafe { protect(base as *mut u8, 0, size as u64, flags) };
                    if ok {
                        self.lifted.store(true, Ordering::SeqCst);
                    }
                    return ok;
                }
            }
        }
        self.addr.store(addr as u64, Ordering::SeqCst);
        self.kind.store(kind, Ordering::SeqCst);
        false
    }
}

/// Installs machvm's signal handler on the store (replacing any other). It records guest
/// faults for [`crate::explain_trap`], and lifts protections for host code that faults on
/// an enforced memory (the call hook puts them back before wasm runs again).
pub(crate) fn install_handler<T>(store: &mut wasmtime::Store<T>, record: Arc<FaultRecord>) {
    use wasmtime::unix::StoreExt;
    let handler = move |signum: libc::c_int,
                        info: *const libc::siginfo_t,
                        ctx: *const libc::c_void|
          -> bool {
        if signum != libc::SIGSEGV && signum != libc::SIGBUS {
            return false;
        }
        // SAFETY: the kernel passes a valid siginfo_t for SIGSEGV/SIGBUS; si_addr is the
        // faulting address.
        let addr = unsafe { (*info).si_addr() } as usize;
        record.on_fault(addr, fault_kind(ctx))
    };
    // SAFETY: the handler only reads the signal's arguments, loads and stores atomics and
    // calls mprotect, all async-signal-safe.
    unsafe { store.set_signal_handler(handler) };
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn fault_kind(ctx: *const libc::c_void) -> u8 {
    if ctx.is_null() {
        return 3;
    }
    // SAFETY: for a SIGSEGV delivered with SA_SIGINFO, the third argument is the
    // interrupted context, a valid ucontext_t; on x86_64 REG_ERR holds the page-fault error
    // code whose bit 1 is set for a write.
    let err =
        unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_ERR as usize] };
    if err & 2 != 0 {
        2
    } else {
        1
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn fault_kind(_ctx: *const libc::c_void) -> u8 {
    3
}
