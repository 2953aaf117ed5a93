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
//! - Host code (the imports, these functions, WASI through [`crate::wasi`]) checks the table
//!   before it touches guest memory and only touches pages the table allows; the hardware
//!   always allows at least what the table allows, so it never faults. Nothing lifts a
//!   protection, for any host code.
//! - The memory must not move (`Config::memory_may_move(false)`, see [`configure`]);
//!   protections are restored to read-write before the kernel (and so the store) is dropped,
//!   so a pooling allocator's next instance gets a clean slot.
//!
//! The one protection x86 page tables cannot express is write-only: such a page is
//! readable by the guest's own loads (host-side calls still refuse to read it).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
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

/// What machvm's signal handler shares with the store (async-signal-safe: only atomics):
/// the last fault of the store's wasm code, its host address and access kind, for
/// [`crate::explain_trap`]. The handler only records: it never changes a protection, so a
/// fault always ends as Wasmtime ends it (a trap for wasm code; for host code, the process's
/// own crash, which is why host code checks the table before it touches guest memory).
#[derive(Debug, Default)]
pub struct FaultRecord {
    addr: AtomicU64,
    /// 0 nothing, 1 read, 2 write, 3 unknown.
    kind: AtomicU8,
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

    /// The signal handler's work: records the fault for [`crate::explain_trap`] and leaves
    /// it to Wasmtime.
    fn on_fault(&self, addr: usize, kind: u8) {
        self.addr.store(addr as u64, Ordering::SeqCst);
        self.kind.store(kind, Ordering::SeqCst);
    }
}

/// The wasm address in Wasmtime's context line of a memory-fault trap, `memory fault at wasm
/// address 0x... in linear memory of size 0x...`; `None` for any other text.
pub fn fault_address(text: &str) -> Option<u64> {
    let rest = text.strip_prefix("memory fault at wasm address 0x")?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&hex, 16).ok()
}

/// Installs machvm's signal handler on the store (replacing any other). It records faults
/// for [`crate::explain_trap`] and lets Wasmtime handle them as it would without it.
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
        record.on_fault(addr, fault_kind(ctx));
        false
    };
    // SAFETY: the handler only reads the signal's arguments and stores atomics, both
    // async-signal-safe.
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

/// The memory ranges (base, size) whose protections a kernel's tasks hold, by task index,
/// shared between the kernel and a [`Sentinel`] in the tasks' store.
#[derive(Debug, Default)]
pub(crate) struct Protected {
    ranges: std::sync::Mutex<std::collections::HashMap<usize, (usize, usize)>>,
    /// Mappings of the process's budget that a kernel moved out of its store left to the
    /// store's sentinel to give back (its memories hold them until the store goes).
    handed_over: std::sync::atomic::AtomicUsize,
}

impl Protected {
    /// A new record, known to [`governed`].
    pub(crate) fn register() -> Arc<Protected> {
        let p = Arc::new(Protected::default());
        let mut all = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&p));
        p
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<usize, (usize, usize)>> {
        self.ranges.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Task `task` holds protections over `[base, base + size)`.
    pub(crate) fn set(&self, task: usize, base: usize, size: usize) {
        self.lock().insert(task, (base, size));
    }

    /// Task `task` holds no protection any more.
    pub(crate) fn clear(&self, task: usize) {
        self.lock().remove(&task);
    }

    /// The store's sentinel gives `n` mappings back to the budget when the store goes.
    pub(crate) fn hand_over_mappings(&self, n: usize) {
        self.handed_over.fetch_add(n, Ordering::SeqCst);
    }
}

/// Every kernel's [`Protected`], to tell whether a memory that is no live task's still
/// carries a kernel's protections (its kernel was taken out of the store).
static KERNELS: std::sync::Mutex<Vec<std::sync::Weak<Protected>>> =
    std::sync::Mutex::new(Vec::new());

/// True when the memory at `base` holds some kernel's protections.
#[cfg(feature = "wasi")]
pub(crate) fn governed(base: usize) -> bool {
    let all = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    all.iter()
        .filter_map(std::sync::Weak::upgrade)
        .any(|p| p.lock().values().any(|&(b, _)| b == base))
}

/// Kept alive by the store the kernel's tasks live in (captured by a function of the
/// store), so it is dropped when the store is, after the store's memories were freed. Any
/// range still recorded then was never given back read-write (the kernel was taken out of
/// the store, by `Store::into_data` say, and outlived it): a pooling allocator may hand
/// that memory to a later instance with the old protections, so the range is remembered as
/// stale and healed when a task is next made of memory there ([`heal_stale`]).
#[derive(Debug)]
pub(crate) struct Sentinel {
    pub(crate) protected: Arc<Protected>,
    /// The kernel holds a weak reference: dead once the store is.
    pub(crate) _alive: Arc<()>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        crate::budget::give_back(self.protected.handed_over.swap(0, Ordering::SeqCst));
        let left: Vec<(usize, usize)> = self.protected.lock().drain().map(|(_, r)| r).collect();
        if !left.is_empty() {
            let mut stale = STALE.lock().unwrap_or_else(|e| e.into_inner());
            stale.extend(left);
            STALE_COUNT.store(stale.len(), Ordering::SeqCst);
        }
    }
}

/// Ranges of freed memories that may still carry a task's protections.
static STALE: std::sync::Mutex<Vec<(usize, usize)>> = std::sync::Mutex::new(Vec::new());
static STALE_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Makes the stale part of a new task's memory `[base, base + size)` (its accessible bytes)
/// read-write again, as Wasmtime left it, and forgets it. Nothing outside the new memory's
/// accessible bytes is touched (its guard region stays inaccessible). Costs one atomic load
/// when nothing is stale.
pub(crate) fn heal_stale(base: usize, size: usize) {
    if STALE_COUNT.load(Ordering::SeqCst) == 0 || size == 0 {
        return;
    }
    let mut stale = STALE.lock().unwrap_or_else(|e| e.into_inner());
    let end = base + size;
    let mut kept = Vec::with_capacity(stale.len());
    for &(s, len) in stale.iter() {
        let e = s + len;
        let (lo, hi) = (s.max(base), e.min(end));
        if lo >= hi {
            kept.push((s, len));
            continue;
        }
        // SAFETY: [lo, hi) lies inside the accessible bytes of a live memory of the store
        // that is making a task of it (the caller's `[base, base + size)`), before any
        // guest code of that task ran; read-write is what Wasmtime expects there. Both ends
        // are page aligned (memory bases and sizes are).
        let rw = MprotectFlags::READ | MprotectFlags::WRITE;
        unsafe { protect(lo as *mut u8, 0, (hi - lo) as u64, rw) };
        if s < lo {
            kept.push((s, lo - s));
        }
        if hi < e {
            kept.push((hi, e - hi));
        }
    }
    *stale = kept;
    STALE_COUNT.store(stale.len(), Ordering::SeqCst);
}
