//! Enforcement of the page table on the guest's own memory accesses (spec §5).
//!
//! The design, chosen with measurements (see `docs/enforcement.md`):
//! - **Plain loads and stores** (any width, SIMD included) are checked by the MMU: every
//!   table change is mirrored with `mprotect` on the linear memory's host pages, and a
//!   guest access to a protected page faults, which Wasmtime turns into a clean trap. This
//!   costs nothing on the access path.
//! - **`memory.copy`, `memory.fill`, `memory.init`** run in Wasmtime's host code, where a
//!   fault would kill the process; [`crate::enforce::rewrite`] turns them into calls to machvm's
//!   checked functions, which look at the table first and trap with [`BadAccess`].
//! - Host code (the imports, these functions, WASI through [`crate::wasi`]) checks the table
//!   before it touches guest memory and only touches pages the table allows; the hardware
//!   always allows at least what the table allows, so it never faults. Nothing lifts a
//!   protection, for any host code.
//! - The memory must not move (`Config::memory_may_move(false)`, see [`configure`]);
//!   protections are restored to read-write before the kernel (and so the store) is dropped,
//!   so a pooling allocator's next instance gets a clean slot.
//!
//! Write-only pages, which x86 page tables cannot express, are kept as XNU keeps them: a
//! page `vm_protect`ed to `VM_PROT_WRITE` alone is inaccessible in hardware until its first
//! store, which machvm's signal handler answers by making that page read-write and resuming
//! the instruction; a load before it traps (see `WriteOnly`). This needs the handler
//! ([`crate::install_handlers`] before the task is made) and x86-64 Linux, where the fault
//! says whether it was a write; elsewhere a write-only page is read-write in hardware and
//! the guest's own loads from it succeed (host-side calls still refuse to read it).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use rustix::mm::MprotectFlags;

use crate::abi::{PageAttrs, VM_PROT_READ, VM_PROT_WRITE};

pub mod rewrite;

pub use crate::vm::budget::{mapping_budget, mappings_in_use, set_mapping_budget};

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
        Some(a) if a.cur.intersects(VM_PROT_WRITE) => MprotectFlags::READ | MprotectFlags::WRITE,
        Some(a) if a.cur.intersects(VM_PROT_READ) => MprotectFlags::READ,
        _ => MprotectFlags::empty(),
    }
}

/// [`hw_prot`] of a task whose write-only pages fault until their first store
/// (`write_only_faults`, see [`WriteOnly`]): such a page is inaccessible in hardware when
/// its table state is set; a store makes it read-write later.
pub(crate) fn hw_prot_of(attrs: Option<PageAttrs>, write_only_faults: bool) -> MprotectFlags {
    match attrs {
        Some(a) if write_only_faults && is_write_only(a) => MprotectFlags::empty(),
        _ => hw_prot(attrs),
    }
}

/// True for a page whose current protection allows writing but not reading.
pub(crate) fn is_write_only(a: PageAttrs) -> bool {
    a.cur & (VM_PROT_READ | VM_PROT_WRITE) == VM_PROT_WRITE
}

/// True where machvm can keep write-only pages exact: the fault tells a store from a load.
pub(crate) const WRITE_ONLY_FAULTS: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

/// Kernel mappings one page made read-write inside an inaccessible range can add: it splits
/// one mapping into three. Taken from the process's budget when a write-only page is first
/// written, given back when its table state is set again or the task goes.
pub(crate) const MAPPINGS_PER_STORE: usize = 2;

/// One run of write-only pages of a task's memory whose hardware state machvm set
/// inaccessible, and which of them a store has made read-write since (one bit per page).
#[derive(Debug)]
struct Seg {
    /// Host address of the first page.
    start: usize,
    /// Number of pages.
    pages: usize,
    page_size: usize,
    /// Bit `i` set: page `i` is read-write in hardware.
    written: Box<[AtomicU64]>,
}

impl Seg {
    fn new(start: usize, pages: usize, page_size: usize) -> Seg {
        Seg {
            start,
            pages,
            page_size,
            written: (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn end(&self) -> usize {
        self.start + self.pages * self.page_size
    }

    fn is_written(&self, i: usize) -> bool {
        self.written[i / 64].load(Ordering::SeqCst) & (1 << (i % 64)) != 0
    }

    /// Pages `[from, to)` of this run as a run of their own, with their bits.
    fn part(&self, from: usize, to: usize) -> Seg {
        let part = Seg::new(
            self.start + from * self.page_size,
            to - from,
            self.page_size,
        );
        for i in from..to {
            if self.is_written(i) {
                part.written[(i - from) / 64].fetch_or(1 << ((i - from) % 64), Ordering::SeqCst);
            }
        }
        part
    }

    /// Number of written pages among `[from, to)`.
    fn count_written(&self, from: usize, to: usize) -> usize {
        (from..to).filter(|&i| self.is_written(i)).count()
    }

    /// Makes page `i` read-write in hardware (taking its mappings from the budget) unless it
    /// is already; false when the budget or `mprotect` refused. Async-signal-safe: atomics
    /// and one system call.
    fn write_page(&self, i: usize) -> bool {
        let (word, bit) = (&self.written[i / 64], 1u64 << (i % 64));
        if word.load(Ordering::SeqCst) & bit != 0 {
            return true;
        }
        if !crate::vm::budget::try_take(MAPPINGS_PER_STORE) {
            return false;
        }
        let rw = MprotectFlags::READ | MprotectFlags::WRITE;
        let addr = self.start + i * self.page_size;
        // SAFETY: the page lies in the accessible part of a live linear memory that a task
        // of the store governs (runs are recorded by the task's mirror and removed before
        // its memory is released); its table state allows writing, so read-write hardware
        // lets through nothing the table refuses but the loads x86 cannot refuse.
        if !unsafe { protect(addr as *mut u8, 0, self.page_size as u64, rw) } {
            crate::vm::budget::give_back(MAPPINGS_PER_STORE);
            return false;
        }
        word.fetch_or(bit, Ordering::SeqCst);
        true
    }
}

/// What a store fault was to [`WriteOnly`].
enum StoreFault {
    /// Not on a write-only page waiting for its first store.
    NotWriteOnly,
    /// The first store to a write-only page, which is read-write now.
    Mapped,
    /// The first store to a write-only page, which the mapping budget could not afford.
    Unaffordable,
}

/// The write-only pages of a store's tasks that are inaccessible in hardware until written.
///
/// XNU maps a write-only page only when it is first written, so a load before any store
/// faults; x86 cannot map a page writable and not readable. machvm keeps such a page
/// inaccessible (its task's mirror records it here), and on a *store* fault there the
/// store's signal handler makes that one page read-write and resumes the instruction; a
/// load still traps. Host code that writes guest memory on the table's say-so makes the
/// pages read-write first ([`WriteOnly::write`]), so it never faults. After the first store
/// the page is readable, as on XNU; setting its protection again makes it inaccessible.
///
/// Each page made read-write takes [`MAPPINGS_PER_STORE`] from the process's mapping
/// budget; when none is left, the store traps as any refused access does.
#[derive(Debug, Default)]
pub(crate) struct WriteOnly {
    segs: std::sync::Mutex<Vec<Seg>>,
}

impl WriteOnly {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Seg>> {
        self.segs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the runs inside `[lo, hi)` (host addresses; parts outside stay) and records
    /// `runs` (host start, pages) there as not written: their pages were just made
    /// inaccessible. Gives back the mappings of the pages written inside.
    pub(crate) fn replace(&self, lo: usize, hi: usize, runs: &[(usize, usize)], page_size: usize) {
        let mut segs = self.lock();
        if runs.is_empty() && !segs.iter().any(|s| s.start < hi && lo < s.end()) {
            // The common case: no write-only page there, before or after.
            return;
        }
        let mut written = 0;
        let mut kept = Vec::with_capacity(segs.len() + 2);
        for seg in segs.drain(..) {
            if seg.end() <= lo || seg.start >= hi {
                kept.push(seg);
                continue;
            }
            let ps = seg.page_size;
            let from = lo.saturating_sub(seg.start).div_ceil(ps).min(seg.pages);
            let to = ((hi.max(seg.start) - seg.start) / ps).min(seg.pages);
            written += seg.count_written(from, to);
            if from > 0 {
                kept.push(seg.part(0, from));
            }
            if to < seg.pages {
                kept.push(seg.part(to, seg.pages));
            }
        }
        kept.extend(
            runs.iter()
                .map(|&(start, pages)| Seg::new(start, pages, page_size)),
        );
        kept.sort_by_key(|s| s.start);
        *segs = kept;
        crate::vm::budget::give_back(written * MAPPINGS_PER_STORE);
    }

    /// Forgets the runs inside `[lo, hi)` without touching the budget (their kernel was
    /// taken out of the store: its store gives the mappings back when it goes).
    pub(crate) fn forget(&self, lo: usize, hi: usize) {
        self.lock().retain(|s| s.end() <= lo || s.start >= hi);
    }

    /// Makes every recorded page that `[addr, addr + len)` touches read-write in hardware,
    /// before host code writes there; false when the mapping budget (or `mprotect`) refused
    /// one (the pages before it stay read-write).
    pub(crate) fn write(&self, addr: usize, len: usize) -> bool {
        if len == 0 {
            return true;
        }
        let end = addr.saturating_add(len);
        let segs = self.lock();
        for seg in segs.iter().filter(|s| s.start < end && addr < s.end()) {
            let ps = seg.page_size;
            let from = addr.saturating_sub(seg.start) / ps;
            let to = (end - seg.start).div_ceil(ps).min(seg.pages);
            if !(from..to).all(|i| seg.write_page(i)) {
                return false;
            }
        }
        true
    }

    /// The signal handler's part: a store faulted at host address `addr`. `Mapped` when
    /// `addr` is on a recorded page that was not written yet and is read-write now (the
    /// store can resume). Async-signal-safe: it only tries the lock (a fault while machvm's
    /// own code holds it is left to Wasmtime) and never allocates.
    fn on_store_fault(&self, addr: usize) -> StoreFault {
        let Ok(segs) = self.segs.try_lock() else {
            return StoreFault::NotWriteOnly;
        };
        let i = segs.partition_point(|s| s.end() <= addr);
        let Some(seg) = segs.get(i).filter(|s| s.start <= addr) else {
            return StoreFault::NotWriteOnly;
        };
        let page = (addr - seg.start) / seg.page_size;
        if seg.is_written(page) {
            // A page written already faults for another reason: not ours to resume.
            StoreFault::NotWriteOnly
        } else if seg.write_page(page) {
            StoreFault::Mapped
        } else {
            StoreFault::Unaffordable
        }
    }

    /// Number of pages inside `[lo, hi)` that a store made read-write.
    pub(crate) fn written_in(&self, lo: usize, hi: usize) -> usize {
        self.lock()
            .iter()
            .filter(|s| s.start < hi && lo < s.end())
            .map(|s| {
                let from = lo
                    .saturating_sub(s.start)
                    .div_ceil(s.page_size)
                    .min(s.pages);
                let to = ((hi.max(s.start) - s.start) / s.page_size).min(s.pages);
                s.count_written(from, to)
            })
            .sum()
    }
}

/// Whether each of the `n` pages of `page_size` bytes from `start` (page aligned) is
/// resident in host memory: any of its host pages is (`mincore`). All false when the
/// kernel cannot tell.
pub(crate) fn resident(start: usize, page_size: u64, n: u64) -> Vec<bool> {
    let host = host_page_size();
    let per = (page_size / host).max(1) as usize;
    let mut vec = vec![0u8; n as usize * per];
    if n == 0 {
        return Vec::new();
    }
    // SAFETY: mincore only reads the kernel's page tables for the range, which lies inside
    // a live linear memory (the caller's pages are inside its memory), and writes one byte
    // per host page into `vec`, which has exactly that many.
    let ok = unsafe {
        libc::mincore(
            start as *mut libc::c_void,
            vec.len() * host as usize,
            vec.as_mut_ptr(),
        )
    } == 0;
    if !ok {
        return vec![false; n as usize];
    }
    vec.chunks(per)
        .map(|c| c.iter().any(|b| b & 1 != 0))
        .collect()
}

/// Writes `len` zero bytes at host address `addr` through `/proc/self/mem`, which writes a
/// private mapping whatever its protection (as a debugger writes a breakpoint); false when
/// the kernel does not allow it (`proc_mem.force_override`, not Linux).
pub(crate) fn write_zeroes_ignoring_protection(addr: usize, len: usize) -> bool {
    use std::os::unix::fs::FileExt;
    // Opened for each write: a file kept open would still name this process's memory in a
    // child it forks, which would then write its zeroes into its parent.
    let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    else {
        return false;
    };
    static ZEROES: [u8; 65536] = [0; 65536];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZEROES.len());
        if file
            .write_all_at(&ZEROES[..n], (addr + done) as u64)
            .is_err()
        {
            return false;
        }
        done += n;
    }
    true
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
    /// The table allows the access (a first store to a write-only page), but the process's
    /// mapping budget could not afford making the page writable.
    pub unmapped: bool,
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
            Some(a) if self.unmapped => write!(
                f,
                "has protection {} (max {}), but the process's mapping budget cannot map it \
                 for its first store",
                a.cur, a.max
            ),
            None => write!(f, "is unallocated"),
            Some(a) => write!(f, "has protection {} (max {})", a.cur, a.max),
        }
    }
}

impl std::error::Error for BadAccess {}

/// What machvm's signal handler shares with the store (async-signal-safe: atomics and a
/// lock it only tries): the last fault of the store's wasm code, its host address and
/// access kind, for [`crate::explain_trap`], and the write-only pages that wait for their
/// first store. The handler lifts one protection only: a store to such a page (see
/// `WriteOnly`). Any other fault ends as Wasmtime ends it (a trap for wasm code; for host
/// code, the process's own crash, which is why host code checks the table, and makes
/// write-only pages writable, before it touches guest memory).
#[derive(Debug, Default)]
pub struct FaultRecord {
    addr: AtomicU64,
    /// 0 nothing, 1 read, 2 write, 3 unknown, 4 a write the mapping budget refused.
    kind: AtomicU8,
    /// The write-only pages of the store's tasks that wait for their first store.
    pub(crate) write_only: WriteOnly,
}

impl FaultRecord {
    /// Takes the recorded fault: its host address, its kind, and whether it was a first
    /// store to a write-only page that the mapping budget could not afford.
    pub fn take(&self) -> Option<(u64, AccessKind, bool)> {
        let (kind, unmapped) = match self.kind.swap(0, Ordering::SeqCst) {
            1 => (AccessKind::Read, false),
            2 => (AccessKind::Write, false),
            3 => (AccessKind::Unknown, false),
            4 => (AccessKind::Write, true),
            _ => return None,
        };
        Some((self.addr.load(Ordering::SeqCst), kind, unmapped))
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
        let mut kind = fault_kind(ctx);
        if kind == 2 {
            match record.write_only.on_store_fault(addr) {
                // A first store to a write-only page: it is read-write now; resume.
                StoreFault::Mapped => return true,
                StoreFault::Unaffordable => kind = 4,
                StoreFault::NotWriteOnly => {}
            }
        }
        record.on_fault(addr, kind);
        false
    };
    // SAFETY: the handler reads the signal's arguments, stores atomics, tries a lock and
    // may call mprotect: all async-signal-safe (it allocates nothing and never blocks).
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
        crate::vm::budget::give_back(self.protected.handed_over.swap(0, Ordering::SeqCst));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A page-aligned anonymous mapping of `pages` pages, read-write, unmapped on drop.
    struct Area {
        base: usize,
        len: usize,
    }

    impl Area {
        fn new(pages: usize) -> Area {
            let len = pages * host_page_size() as usize;
            // SAFETY: a fresh anonymous private mapping, owned by this value alone.
            let base = unsafe {
                rustix::mm::mmap_anonymous(
                    std::ptr::null_mut(),
                    len,
                    rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                    rustix::mm::MapFlags::PRIVATE,
                )
            }
            .expect("mmap");
            Area {
                base: base as usize,
                len,
            }
        }
    }

    impl Drop for Area {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, no reference into it outlives the test.
            unsafe { rustix::mm::munmap(self.base as *mut _, self.len) }.expect("munmap");
        }
    }

    /// Recording, writing and forgetting runs keeps one bit per page where it belongs (the
    /// budget's count, which other tests share, is checked in `tests/enforce.rs`'s child).
    #[test]
    fn runs_split_and_count_their_written_pages() {
        let ps = host_page_size() as usize;
        let area = Area::new(16);
        let at = |i: usize| area.base + i * ps;
        let w = WriteOnly::default();
        // Pages 2..10 are write-only and wait.
        w.replace(at(0), at(16), &[(at(2), 8)], ps);
        assert_eq!(w.written_in(at(0), at(16)), 0);
        // Host writes map pages 3 and 4 (a range straddling them), then 8.
        assert!(w.write(at(3) + 5, ps));
        assert!(w.write(at(8), 1));
        assert!(w.write(at(12), 100), "not write-only: nothing to do");
        assert_eq!(w.written_in(at(0), at(16)), 3);
        // A store fault on a waiting page maps it; on a mapped one, or outside, it is not
        // ours.
        assert!(matches!(w.on_store_fault(at(5) + 7), StoreFault::Mapped));
        assert!(matches!(w.on_store_fault(at(5)), StoreFault::NotWriteOnly));
        assert!(matches!(w.on_store_fault(at(11)), StoreFault::NotWriteOnly));
        assert_eq!(w.written_in(at(0), at(16)), 4);
        // Setting pages 4..6 again: pages 4 and 5 give their mappings back; 3 and 8 keep
        // theirs, in the parts of the run left on each side.
        w.replace(at(4), at(6), &[(at(4), 2)], ps);
        assert_eq!(w.written_in(at(0), at(16)), 2);
        assert_eq!(w.written_in(at(3), at(4)), 1);
        assert_eq!(w.written_in(at(8), at(9)), 1);
        assert!(matches!(w.on_store_fault(at(4)), StoreFault::Mapped));
        // Everything goes: all given back.
        w.replace(at(0), at(16), &[], ps);
        assert_eq!(w.written_in(at(0), at(16)), 0);
        assert!(matches!(w.on_store_fault(at(2)), StoreFault::NotWriteOnly));
    }
}
