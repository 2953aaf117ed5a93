//! The semantics of every Mach call (spec §3 parameters and §4 decision tables), written
//! once against [`Env`], an abstraction of "the tasks and their memory bytes".
//!
//! The Wasmtime imports implement [`Env`] over a `Caller`, the host-side API over a
//! `StoreContextMut`; the logic here holds no Wasmtime type.

use crate::abi::*;

pub mod budget;
use crate::table::{CheckError, PageTable};

/// The size of a wasm page in bytes.
pub const WASM_PAGE: u64 = 65536;

/// A task of one kernel: the kernel's identity (unique in the process) and the task's
/// index in it. A kernel refuses the ids of another kernel's tasks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    kernel: u32,
    index: u32,
}

impl TaskId {
    /// The id of task `index` of kernel `kernel`.
    pub(crate) const fn new(kernel: u32, index: u32) -> TaskId {
        TaskId { kernel, index }
    }

    /// The task's index in its kernel (0 for the first task created).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The identity of the kernel the task belongs to.
    pub(crate) fn kernel(self) -> u32 {
        self.kernel
    }
}

impl std::fmt::Debug for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {} of kernel {}", self.index, self.kernel)
    }
}

/// What a port name in a namespace denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortTarget {
    /// A task's task port (a send right to it).
    Task(TaskId),
    /// The host port (`mach_host_self`): not a task.
    Host,
}

/// The VM state of one task that is not its memory bytes: page table, page size, map limit,
/// width and port namespace.
#[derive(Clone, Debug)]
pub struct TaskVm {
    table: PageTable,
    page_shift: u32,
    width: Width,
    /// Bytes of memory the table has been synchronised with (see [`sync`]).
    known_size: u64,
    /// Inserted send rights, in insertion order: the i-th has name `(i + 3) << 8 | 3`.
    rights: Vec<TaskId>,
    me: TaskId,
    /// The copy windows (see [`open_windows`]): read, write, as byte ranges `[lo, hi)`;
    /// `lo == hi` when closed.
    windows: [(u64, u64); 2],
    /// The kernel mappings this task's hardware protections account for, taken from the
    /// process's budget ([`crate::enforce::mapping_budget`]): [`hw_boundaries`] over its
    /// whole table. Only enforced tasks count (see [`change`]); given back by
    /// [`release_mappings`].
    mappings: u64,
    /// Write-only pages are inaccessible in hardware until their first store (see
    /// [`crate::enforce::hw_prot_of`]), which the counts of [`hw_boundaries`] follow.
    write_only_faults: bool,
    /// The largest resident size `task_info` has reported for the task (its peak).
    resident_peak: u64,
    /// The task's purgeable objects by id ([`PageAttrs::object`]), and the last id given.
    objects: std::collections::BTreeMap<u32, Purgeable>,
    last_object: u32,
    /// Pages of the task's purgeable objects emptied so far.
    purged: u64,
    /// The largest footprint (resident, less volatile purgeable) `task_info` has reported.
    footprint_peak: u64,
}

/// The state of one purgeable object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purgeable {
    /// `VM_PURGABLE_NONVOLATILE`, `VOLATILE` or `EMPTY`.
    pub state: i32,
    /// `VM_PURGABLE_DEBUG_EMPTY` was asked: made volatile, it is emptied at once.
    pub volatile_empty: bool,
}

impl TaskVm {
    /// A task `me` with page size `page_size` (a power of two from 4096 to 65536), memory width
    /// `width` and map limit `map_limit` bytes (rounded down to whole pages). The table is
    /// empty: [`sync`] allocates the memory's current pages at the first call.
    pub fn new(me: TaskId, width: Width, page_size: u64, map_limit: u128) -> TaskVm {
        debug_assert!(page_size.is_power_of_two());
        let page_shift = page_size.trailing_zeros();
        let limit_pages = (map_limit >> page_shift).min(u128::from(u64::MAX)) as u64;
        TaskVm {
            table: PageTable::new(limit_pages),
            page_shift,
            width,
            known_size: 0,
            rights: Vec::new(),
            me,
            windows: [(0, 0); 2],
            mappings: 0,
            write_only_faults: false,
            resident_peak: 0,
            objects: std::collections::BTreeMap::new(),
            last_object: 0,
            purged: 0,
            footprint_peak: 0,
        }
    }

    /// The id the next purgeable object gets. Objects no page belongs to any more are
    /// forgotten first when they outnumber the regions (so that allocating and freeing
    /// purgeable memory forever takes no more host memory than the regions do); after
    /// 2^32 - 1 objects, the lowest id no object has is taken again.
    fn next_object(&mut self) -> u32 {
        if self.objects.len() > 2 * self.table.run_count() + 16 {
            let live: std::collections::BTreeSet<u32> =
                self.table.runs().map(|r| r.attrs.object).collect();
            self.objects.retain(|id, _| live.contains(id));
        }
        match self.last_object.checked_add(1) {
            Some(id) => id,
            None => (1..)
                .find(|id| !self.objects.contains_key(id))
                .unwrap_or(u32::MAX),
        }
    }

    /// The state of purgeable object `object` of this task (see [`PageAttrs::object`]), if
    /// it has one of that id.
    pub fn purgeable_state(&self, object: u32) -> Option<Purgeable> {
        self.objects.get(&object).copied()
    }

    /// Makes write-only pages inaccessible in hardware until their first store; set before
    /// the task's table is first mirrored.
    pub(crate) fn set_write_only_faults(&mut self, on: bool) {
        self.write_only_faults = on;
    }

    /// True when write-only pages are inaccessible in hardware until their first store.
    pub fn write_only_faults(&self) -> bool {
        self.write_only_faults
    }

    /// The kernel mappings that this task's hardware protections account for in the
    /// process's mapping budget (see [`crate::enforce::mapping_budget`]): the protection
    /// boundaries inside its memory, 0 when it is not enforced.
    pub fn mappings(&self) -> u64 {
        self.mappings
    }

    /// The copy windows, read then write, as byte ranges `[lo, hi)` (`lo == hi`: closed).
    /// Every page of the read window is allocated and readable, every page of the write
    /// window allocated and writable, inside the memory and below `2^w`: a `vm_copy` from
    /// inside the first to inside the second succeeds (see [`open_windows`]).
    pub fn windows(&self) -> [(u64, u64); 2] {
        self.windows
    }

    /// The task's page table.
    pub fn table(&self) -> &PageTable {
        &self.table
    }

    /// The page table, to change attributes that neither the hardware nor the copy
    /// windows see (permanence).
    pub(crate) fn table_mut(&mut self) -> &mut PageTable {
        &mut self.table
    }

    /// log2 of the task's page size.
    pub fn page_shift(&self) -> u32 {
        self.page_shift
    }

    /// The task's page size in bytes.
    pub fn page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// The width of the task's memory (and of its word-sized calls).
    pub fn width(&self) -> Width {
        self.width
    }

    /// The map limit `L` in bytes.
    pub fn map_limit(&self) -> u128 {
        u128::from(self.table.limit()) << self.page_shift
    }

    /// Resolves a port name of this task's namespace.
    pub fn lookup_port(&self, name: u32) -> Option<PortTarget> {
        match name {
            TASK_SELF_NAME => Some(PortTarget::Task(self.me)),
            HOST_SELF_NAME => Some(PortTarget::Host),
            _ if name & 0xFF == 3 => {
                let i = (name >> 8).checked_sub(3)? as usize;
                self.rights.get(i).map(|&t| PortTarget::Task(t))
            }
            _ => None,
        }
    }

    /// Inserts a send right to `to` into this namespace and returns its name (the existing
    /// name when the namespace already holds one).
    pub fn insert_right(&mut self, to: TaskId) -> u32 {
        if to == self.me {
            return TASK_SELF_NAME;
        }
        let i = match self.rights.iter().position(|&t| t == to) {
            Some(i) => i,
            None => {
                self.rights.push(to);
                self.rights.len() - 1
            }
        };
        ((i as u32 + 3) << 8) | 3
    }

    #[inline]
    fn trunc_page(&self, addr: u64) -> u64 {
        addr >> self.page_shift
    }

    /// Index one past the last page touched by `[.., end)` (`end` in bytes, may be 2^64).
    #[inline]
    fn round_page(&self, end: u128) -> u64 {
        // `end < 2^65`, so adding the page mask cannot overflow; a shift, not a division
        // (u128 division is a library call on the hot path).
        let mask = u128::from(self.page_size() - 1);
        ((end + mask) >> self.page_shift).min(u128::from(u64::MAX)) as u64
    }

    /// The pages `[trunc(start), round(start + size))` that the byte range touches.
    #[inline]
    pub fn pages(&self, start: u64, size: u64) -> (u64, u64) {
        // In 64 bits when the end fits (the common case, on every hot path), else in 128.
        let end = match start.checked_add(size) {
            Some(end) => (end >> self.page_shift) + u64::from(end & (self.page_size() - 1) != 0),
            None => self.round_page(u128::from(start) + u128::from(size)),
        };
        (self.trunc_page(start), end)
    }
}

/// Access to the tasks' state and memory bytes, for [`call`].
///
/// The byte methods are only called on ranges that the table has allocated, which lie
/// inside the memory; implementations still bounds-check and return `false` instead of
/// touching anything outside (the call then answers `KERN_FAILURE`).
pub trait Env {
    /// The VM state of task `t`.
    fn vm(&mut self, t: TaskId) -> &mut TaskVm;
    /// The current size of task `t`'s memory in bytes.
    fn memory_size(&mut self, t: TaskId) -> u64;
    /// Grows task `t`'s memory to `new_size` bytes (a multiple of 64 KiB); false if refused.
    fn grow_memory(&mut self, t: TaskId, new_size: u64) -> bool;
    /// `memmove` of `len` bytes from `src` in task `src_task` to `dst` in task `dst_task`.
    fn copy(&mut self, src_task: TaskId, src: u64, dst_task: TaskId, dst: u64, len: u64) -> bool;
    /// Zeroes `len` bytes at `addr` in task `t`.
    fn zero(&mut self, t: TaskId, addr: u64, len: u64) -> bool;
    /// Reads `buf.len()` bytes at `addr` in task `t`.
    fn load(&mut self, t: TaskId, addr: u64, buf: &mut [u8]) -> bool;
    /// Writes `bytes` at `addr` in task `t`.
    fn store(&mut self, t: TaskId, addr: u64, bytes: &[u8]) -> bool;
    /// True when task `t`'s table is mirrored in hardware (spec §5): table changes are
    /// then undone when [`Env::mirror`] fails. The default is false.
    fn enforcing(&mut self, _t: TaskId) -> bool {
        false
    }
    /// Called when [`call`] closed some of task `t`'s copy windows ([`TaskVm::windows`]),
    /// before the table changes under them: whoever serves copies from the windows must
    /// stop doing so before the guest runs again.
    fn windows_closed(&mut self, t: TaskId);
    /// Makes the hardware protection of task `t`'s pages `[start, end)` follow its table;
    /// false when it could not (e.g. the kernel ran out of mappings). The default does
    /// nothing and succeeds.
    fn mirror(&mut self, _t: TaskId, _start: u64, _end: u64) -> bool {
        true
    }
    /// Makes task `t`'s bytes `[addr, addr + len)`, which the table allows writing, writable
    /// in hardware before host code writes them (write-only pages wait for their first
    /// store inaccessible: see `docs/enforcement.md`); false when that could not be
    /// done (the process's mapping budget). The default does nothing and succeeds.
    fn prepare_write(&mut self, _t: TaskId, _addr: u64, _len: u64) -> bool {
        true
    }
    /// Whether each of task `t`'s pages `[first, first + n)`, all inside its memory, is
    /// resident in host memory (`mincore`), for `mach_vm_page_query`'s `PRESENT` and
    /// `task_info`'s resident size. The default: none is.
    fn resident(&mut self, _t: TaskId, _first: u64, n: u64) -> Vec<bool> {
        vec![false; n as usize]
    }
    /// Zeroes `len` bytes at `addr` of task `t` whatever their hardware protection: the
    /// pages of a purgeable object being emptied, which may be read-only or inaccessible
    /// by then. The default is [`Env::zero`].
    fn purge_zero(&mut self, t: TaskId, addr: u64, len: u64) -> bool {
        self.zero(t, addr, len)
    }
    /// The live tasks of the kernel, for `host_statistics64`. The default: none.
    fn tasks(&mut self) -> Vec<TaskId> {
        Vec::new()
    }
    /// Called when task `t`'s hardware protection could not be brought back in line with
    /// its table (a change failed to mirror, and so did putting it back): the task must run
    /// no guest code again. The default does nothing.
    fn out_of_line(&mut self, _t: TaskId) {}
    /// Called for each scalar parameter value the call read (`write == false`, the value
    /// loaded) or stored (`write == true`, the value stored; for `info`, 0), for traces.
    /// The default does nothing.
    fn log_param(&mut self, _param: &'static str, _write: bool, _value: u64) {}
}

/// Brings task `t`'s table up to date with its memory: pages that appeared since the last
/// call (the guest's or the embedder's own `memory.grow`) become allocated RW/ALL/COPY.
/// Returns true when the table changed.
///
/// Calls that search or change the table sync first. Calls that only check ranges sync
/// lazily (in `access`): syncing only adds allocated pages past every allocated one, so a
/// check that passes (or is denied at an allocated page) gives the same answer either way,
/// and only an unallocated page is worth a look at the memory's size. This keeps the
/// memory lookup off the path of calls that touch no memory (`vm_copy` of 0 bytes).
pub fn sync<E: Env + ?Sized>(env: &mut E, t: TaskId) -> bool {
    let size = env.memory_size(t);
    if size <= env.vm(t).known_size {
        return false;
    }
    let enforcing = env.enforcing(t);
    let vm = env.vm(t);
    // Pages the guest grew are read-write in hardware already, as the table says.
    let (k, k2) = (vm.known_size >> vm.page_shift, size >> vm.page_shift);
    if enforcing {
        // The page past the memory counts as read-write (see `hw_boundaries`), so this is
        // 0 unless the map limit cuts the new pages short; it cannot be refused: the memory
        // has grown already.
        let edit = Edit::Set(PageAttrs::DEFAULT);
        let e = k2.min(vm.table.limit());
        let wo = vm.write_only_faults;
        let (before, after) = boundaries_around(&vm.table, wo, k, k2, k, k2, Some((k, e, &edit)));
        recount(vm, before, after);
    }
    vm.known_size = size;
    vm.table.set(k, k2, PageAttrs::DEFAULT);
    true
}

/// The hardware-protection boundaries of `table` for a memory of `k` pages, counted at the
/// pages `i` of `[lo, hi]` inside `[0, k]`: one where pages `i - 1` and `i` have different
/// [`crate::enforce::hw_prot`], the pages just outside the memory (`-1` and `k`) counting as
/// read-write. Nothing is allocated.
///
/// Over `[0, k]` this is what an enforced task accounts for ([`TaskVm::mappings`]): each
/// boundary splits at most one kernel mapping, and the outside pages counting as read-write
/// makes the count an upper bound whatever lies around the memory (Wasmtime's guard pages,
/// or read-write pages a guest `memory.grow` added that the table does not know yet). A
/// change of pages `[start, end)` only moves the boundaries at `start..=end`, so a change
/// is accounted for by this count over those pages, before and after ([`boundaries_around`]).
pub(crate) fn hw_boundaries(table: &PageTable, wo: bool, k: u64, lo: u64, hi: u64) -> u64 {
    boundaries_around(table, wo, k, k, lo, hi, None).0
}

/// Counts boundaries: pages' hardware protections pushed in address order.
#[derive(Default)]
struct Boundaries {
    last: Option<rustix::mm::MprotectFlags>,
    count: u64,
}

impl Boundaries {
    fn push(&mut self, class: rustix::mm::MprotectFlags) {
        if self.last.is_some_and(|l| l != class) {
            self.count += 1;
        }
        self.last = Some(class);
    }
}

/// [`hw_boundaries`] of `[lo, hi]` twice in one walk over the table: as it is, for a memory
/// of `k` pages, and as it would be for a memory of `k2 >= k` pages once `edit`, if given as
/// `(start, end, e)`, changed its pages `[start, end)` (`end` at most the map limit). `wo`:
/// write-only pages are inaccessible ([`crate::enforce::hw_prot_of`]).
fn boundaries_around(
    table: &PageTable,
    wo: bool,
    k: u64,
    k2: u64,
    lo: u64,
    hi: u64,
    edit: Option<(u64, u64, &Edit)>,
) -> (u64, u64) {
    let hw_prot = |a| crate::enforce::hw_prot_of(a, wo);
    debug_assert!(k <= k2);
    let (hb, ha) = (hi.min(k), hi.min(k2));
    if lo > ha {
        return (0, 0);
    }
    let outside = hw_prot(Some(PageAttrs::DEFAULT));
    let (mut before, mut after) = (Boundaries::default(), Boundaries::default());
    let counts_before = lo <= hb;
    if lo == 0 {
        if counts_before {
            before.push(outside);
        }
        after.push(outside);
    }
    // The pages lo - 1 ..= hi inside the memory; those below `bound` are in it before too.
    let (s, e) = (lo.saturating_sub(1), (ha + 1).min(k2));
    let bound = if counts_before { (hb + 1).min(k) } else { s };
    let (es, ee) = edit.map_or((e, e), |(es, ee, _)| (es, ee));
    for (a, b, attrs) in table.segments_iter(s, e) {
        // The pieces of the segment outside, inside and past the edited pages.
        let cuts = [a, es.clamp(a, b), ee.clamp(a, b).max(es.clamp(a, b)), b];
        for (i, piece) in cuts.windows(2).enumerate() {
            if piece[0] >= piece[1] {
                continue;
            }
            let new = match edit {
                Some((_, _, edit)) if i == 1 => edit.attrs(attrs),
                _ => attrs,
            };
            after.push(hw_prot(new));
            if piece[0] < bound {
                before.push(hw_prot(attrs));
            }
        }
    }
    if counts_before && hb == k {
        before.push(outside);
    }
    if ha == k2 {
        after.push(outside);
    }
    (before.count, after.count)
}

/// Moves task `vm`'s count of mappings from `from` to `to` (of the same pages), whatever
/// the budget: for changes that have happened (or been undone) already.
fn recount(vm: &mut TaskVm, from: u64, to: u64) {
    if to > from {
        crate::vm::budget::force_take((to - from) as usize);
    } else {
        crate::vm::budget::give_back((from - to) as usize);
    }
    vm.mappings = vm.mappings + to - from;
}

/// Gives task `vm`'s mappings back to the process's budget, when its memory stops being
/// enforced (its kernel is dropped).
pub(crate) fn release_mappings(vm: &mut TaskVm) {
    crate::vm::budget::give_back(vm.mappings as usize);
    vm.mappings = 0;
}

/// Checks that task `t`'s pages `[s, e)` are allocated with `prot`, syncing the table with
/// the memory first if (and only if) an unallocated page is found (see [`sync`]).
fn access<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    s: u64,
    e: u64,
    prot: i32,
) -> Result<(), CheckError> {
    match env.vm(t).table.check_access(s, e, prot) {
        Err(CheckError::Unallocated { .. }) if sync(env, t) => {
            env.vm(t).table.check_access(s, e, prot)
        }
        r => r,
    }
}

/// The fast path's test of one range: `[addr, addr + size)` (size > 0) of the task lies
/// inside the memory bytes the table knows, which lie below `2^w`, and is allocated with
/// `prot`. True means every check of [`call`] on that range passes (it does not wrap `w`,
/// nor round up to `2^w`, and the table allows it); false means nothing (the full path
/// decides).
///
/// All in 64-bit arithmetic: `known_size` is a multiple of 64 KiB below `2^w`, so a range
/// ending inside it cannot wrap, and its rounded end is inside it too.
#[inline]
fn fast_range(vm: &TaskVm, addr: u64, size: u64, w: Width, prot: i32) -> bool {
    let Some(end) = addr.checked_add(size) else {
        return false;
    };
    let below_limit = match w {
        Width::W32 => vm.known_size < 1 << 32,
        Width::W64 => true,
    };
    let (s, e) = vm.pages(addr, size);
    below_limit && end <= vm.known_size && vm.table.allows(s, e, prot)
}

/// The fast path of `vm_copy` / `mach_vm_copy` (address width `w`) on the caller's own task,
/// which is what a guest copying its own memory does: true when [`call`] would certainly
/// answer `KERN_SUCCESS` (`port` is `mach_task_self`'s name, and the size is 0 or both
/// ranges are allocated and readable / writable inside the known memory bytes). Then the
/// caller may do the `memmove` itself. False decides nothing: run [`call`].
///
/// It reads the table and never changes it (no sync: the table may not know the newest
/// pages yet, which only makes the test say false).
#[inline]
pub fn copy_succeeds(vm: &TaskVm, port: u32, src: u64, size: u64, dst: u64, w: Width) -> bool {
    port == TASK_SELF_NAME
        && (size == 0
            || (fast_range(vm, src, size, w, VM_PROT_READ)
                && fast_range(vm, dst, size, w, FAST_WRITE)))
}

/// What the fast paths and the copy windows need of a page to write it without the full
/// path: read and write, so never a write-only page, which may be inaccessible in hardware
/// until its first store ([`Env::prepare_write`] makes it writable on the full path).
pub const FAST_WRITE: i32 = VM_PROT_READ | VM_PROT_WRITE;

/// The fast path's test of `[addr, addr + len)` (len > 0) of the task's own memory, in its
/// own width: true when it lies inside the memory bytes the table knows (so in bounds) and
/// the table allows `prot` on every page, so that every check of it passes: a scalar
/// parameter's (WRITE for a store) or a bulk-memory instruction's. False decides nothing.
#[inline]
pub fn allows_fast(vm: &TaskVm, addr: u64, len: u64, prot: i32) -> bool {
    fast_range(vm, addr, len, vm.width, prot)
}

/// How many runs on each side of its own a window may reach across: opening a window costs
/// a walk over them, once per table change that closed it.
const WINDOW_RUNS: usize = 16;

/// The widest window around `[addr, addr + size)` (size > 0) of pages that the table
/// allocates with `prot`, inside the memory bytes it knows and, for a 32-bit memory, ending
/// below `2^32` (its last page is left out, so that `hi` fits the window's i32 global and no
/// range inside wraps or rounds up to `2^32`). `None` when the range is not inside one.
pub fn window(vm: &TaskVm, addr: u64, size: u64, prot: i32) -> Option<(u64, u64)> {
    let shift = vm.page_shift;
    let span = vm.table.span_allowing(addr >> shift, prot, WINDOW_RUNS)?;
    let mut end = span.end.min(vm.known_size >> shift);
    if vm.width == Width::W32 {
        end = end.min((1u64 << (32 - shift)) - 1);
    }
    // `end` is at most the known size in pages, so the shift cannot overflow.
    let w = (span.start << shift, end << shift);
    holds(w, addr, size).then_some(w)
}

/// True when window `(lo, hi)` holds `[addr, addr + size)`: `lo <= addr < hi` and
/// `addr + size <= hi`, as the wasm side of [`crate::enforce::rewrite`] tests it (a closed window,
/// `lo == hi`, holds nothing).
fn holds((lo, hi): (u64, u64), addr: u64, size: u64) -> bool {
    lo <= addr && addr < hi && size <= hi - addr
}

/// True when task `vm`'s read window holds `[src, src + size)` (or there is no source) and
/// its write window holds `[dst, dst + size)`: [`open_windows`] would change nothing.
#[inline]
pub fn windows_hold(vm: &TaskVm, src: Option<u64>, size: u64, dst: u64) -> bool {
    src.is_none_or(|s| holds(vm.windows[0], s, size)) && holds(vm.windows[1], dst, size)
}

/// After a `vm_copy` of task `vm`'s own memory from `[src, src + size)` to
/// `[dst, dst + size)` succeeded (size > 0), or a bulk-memory instruction's check passed
/// (no source for `memory.fill` and `memory.init`), opens the read window around the source
/// and the write window around the destination, where they do not cover them yet and the
/// table allows ([`window`]). Returns true when a window changed.
///
/// The windows let the guest serve later copies and checks inside them without a host call
/// ([`crate::enforce::rewrite`]): [`call`] closes every window that a table change overlaps, before
/// the change, and tells the [`Env`] ([`Env::windows_closed`]).
pub fn open_windows(vm: &mut TaskVm, src: Option<u64>, size: u64, dst: u64) -> bool {
    let mut changed = false;
    let ranges = [(0, src, VM_PROT_READ), (1, Some(dst), FAST_WRITE)];
    for (k, addr, prot) in ranges {
        let Some(addr) = addr else { continue };
        if holds(vm.windows[k], addr, size) {
            continue;
        }
        if let Some(w) = window(vm, addr, size, prot) {
            vm.windows[k] = w;
            changed = true;
        }
    }
    changed
}

/// Puts task `t` back as it is when made over a memory of its current size: every page of
/// the memory allocated with the default attributes (and mirrored so in hardware), none past
/// it, no send rights, its copy windows closed. The fuzzing oracle reuses tasks between runs
/// this way (`crate::testing::fuzzing::Differential::recycle`). False when it could not be done: the
/// task holds permanent pages or pages past its memory's end (a reset cannot give those
/// back), or the hardware could not follow.
#[cfg(feature = "testing")]
pub(crate) fn reset<E: Env + ?Sized>(env: &mut E, t: TaskId) -> bool {
    sync(env, t);
    let vm = env.vm(t);
    let k = vm.known_size >> vm.page_shift;
    let limit = vm.table.limit();
    if vm.table.any_allocated(k, limit.max(k)) || vm.table.any_permanent(0, k) {
        return false;
    }
    vm.rights.clear();
    if change(env, t, 0, k, Edit::Set(PageAttrs::DEFAULT), None).is_err() {
        return false;
    }
    env.vm(t).windows = [(0, 0); 2];
    env.windows_closed(t);
    true
}

/// Closes task `t`'s copy windows that overlap its pages `[start, end)` (which are about to
/// change), and tells the [`Env`] when one closed.
pub fn close_windows<E: Env + ?Sized>(env: &mut E, t: TaskId, start: u64, end: u64) {
    let vm = env.vm(t);
    let shift = vm.page_shift;
    let mut closed = false;
    for w in &mut vm.windows {
        if w.0 < w.1 && (w.0 >> shift) < end && start < (w.1 >> shift) {
            w.1 = w.0;
            closed = true;
        }
    }
    if closed {
        env.windows_closed(t);
    }
}

/// A change of the pages of a table, as [`change`] makes it.
pub(crate) enum Edit {
    /// The pages become allocated with these attributes (pages at or past the map limit
    /// stay unallocated).
    Set(PageAttrs),
    /// The pages become unallocated, except permanent ones, which lose every access
    /// (cur and max none) and stay.
    Deallocate,
    /// vm_protect's table step ([`PageTable::protect`]).
    Protect {
        /// `set_maximum`.
        set_max: bool,
        /// The new protection, without `VM_PROT_COPY`.
        prot: i32,
        /// `VM_PROT_COPY` was asked for.
        copy: bool,
    },
}

impl Edit {
    /// What the change makes of a page whose attributes are `a`.
    fn attrs(&self, a: Option<PageAttrs>) -> Option<PageAttrs> {
        match *self {
            Edit::Set(attrs) => Some(attrs),
            Edit::Deallocate => crate::table::deallocated(a),
            Edit::Protect {
                set_max,
                prot,
                copy,
            } => a.map(|a| crate::table::protected(a, set_max, prot, copy)),
        }
    }

    /// Checks that the change may be made to `[start, end)` (only vm_protect can refuse).
    fn check(&self, table: &PageTable, start: u64, end: u64) -> Result<(), CheckError> {
        match *self {
            Edit::Protect { prot, copy, .. } => {
                let extra = if copy { VM_PROT_WRITE } else { 0 };
                table.check(start, end, |a| (a.max | extra) & prot == prot)
            }
            Edit::Set(_) | Edit::Deallocate => Ok(()),
        }
    }

    /// Makes the change.
    fn apply(&self, table: &mut PageTable, start: u64, end: u64) -> Result<(), CheckError> {
        match *self {
            Edit::Set(attrs) => table.set(start, end, attrs),
            Edit::Deallocate => {
                table.deallocate(start, end);
            }
            Edit::Protect {
                set_max,
                prot,
                copy,
            } => table.protect(start, end, set_max, prot, copy)?,
        }
        Ok(())
    }
}

/// Changes task `t`'s table over the pages `[start, end)` with `edit`, first growing its
/// memory to `grow_to` bytes if given, then mirrors the change in hardware.
///
/// Everything that can refuse is decided before anything changes: `edit`'s check, then, for
/// an enforced task, the process's mapping budget for the table as it would be (counted over
/// the changed pages only: [`boundaries_around`]), then the growth; a refusal answers its error
/// (`KERN_RESOURCE_SHORTAGE` for the budget and the growth) with the table, the memory and
/// the budget as they were. If `mprotect` fails all the same (a budget set above what the
/// kernel allows), the table (and, as far as it can, the hardware) is put back and the call
/// answers `KERN_RESOURCE_SHORTAGE`: the table and the hardware never disagree. (The memory
/// stays grown then: a wasm memory cannot shrink.)
fn change<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    start: u64,
    end: u64,
    edit: Edit,
    grow_to: Option<u64>,
) -> Step {
    close_windows(env, t, start, end);
    let enforcing = env.enforcing(t);
    if !enforcing && grow_to.is_none() {
        // Nothing to count, nothing to grow: `apply` checks, then changes.
        return edit
            .apply(&mut env.vm(t).table, start, end)
            .or_else(|err| kr(check_error_kr(err)));
    }
    let vm = env.vm(t);
    let end = match edit {
        Edit::Set(_) => end.min(vm.table.limit()).max(start),
        _ => end,
    };
    edit.check(&vm.table, start, end)
        .or_else(|err| kr(check_error_kr(err)))?;
    let shift = vm.page_shift;
    let k = vm.known_size >> shift;
    let k2 = grow_to.map_or(k, |size| (size >> shift).max(k));
    // The pages whose hardware state changes: the changed ones, and any grown pages.
    let (lo, hi) = match grow_to {
        Some(_) => (start.min(k), end.max(k2)),
        None => (start, end),
    };
    let counts = if enforcing {
        let wo = vm.write_only_faults;
        let (before, after) =
            boundaries_around(&vm.table, wo, k, k2, lo, hi, Some((start, end, &edit)));
        if after > before && !crate::vm::budget::try_take((after - before) as usize) {
            return kr(KERN_RESOURCE_SHORTAGE);
        }
        if before > after {
            crate::vm::budget::give_back((before - after) as usize);
        }
        vm.mappings = vm.mappings + after - before;
        Some((before, after))
    } else {
        None
    };
    if let Some(size) = grow_to {
        // Refused: the task's volatile memory is emptied (spec §9), and the growth tried
        // once more (an embedder's limiter may count what emptying gave back).
        let grown =
            env.grow_memory(t, size) || (empty_volatile(env, &[t]) > 0 && env.grow_memory(t, size));
        if !grown {
            if let Some((before, after)) = counts {
                recount(env.vm(t), after, before);
            }
            return kr(KERN_RESOURCE_SHORTAGE);
        }
        // The grown pages outside [start, end) stay unallocated (inaccessible): the table
        // is in step with the new size.
        env.vm(t).known_size = k2 << shift;
    }
    let Some((_, after)) = counts else {
        return edit
            .apply(&mut env.vm(t).table, start, end)
            .or_else(|err| kr(check_error_kr(err)));
    };
    let vm = env.vm(t);
    let saved = vm.table.segments(lo, hi);
    edit.apply(&mut vm.table, start, end)
        .or_else(|err| kr(check_error_kr(err)))?;
    if !env.mirror(t, lo, hi) {
        let vm = env.vm(t);
        vm.table.restore(&saved);
        let now = hw_boundaries(&vm.table, vm.write_only_faults, k2, lo, hi);
        recount(vm, after, now);
        if !env.mirror(t, lo, hi) {
            tracing::error!(
                target: "machvm::enforce",
                "could not restore the hardware protection of pages {lo:#x}..{hi:#x}: \
                 the task is stopped"
            );
            env.out_of_line(t);
        }
        return kr(KERN_RESOURCE_SHORTAGE);
    }
    Ok(())
}

/// Why a call stopped early.
enum Stop {
    Kr(KernReturn),
    Trap(ParamFault),
}

impl From<ParamFault> for Stop {
    fn from(f: ParamFault) -> Stop {
        Stop::Trap(f)
    }
}

type Step<T = ()> = Result<T, Stop>;

fn kr<T>(code: KernReturn) -> Step<T> {
    Err(Stop::Kr(code))
}

/// Runs one Mach call made by task `caller`. Scalar pointers of the call are in the caller's
/// memory. Never panics, whatever the arguments.
pub fn call<E: Env + ?Sized>(env: &mut E, caller: TaskId, call: &Call) -> Outcome {
    match run(env, caller, call) {
        Ok(Ret::Kr(code)) | Err(Stop::Kr(code)) => Outcome::Kr(code),
        Ok(Ret::Port(name)) => Outcome::Port(name),
        Err(Stop::Trap(f)) => Outcome::Trap(f),
    }
}

/// `start + size` does not fit in `w`.
fn wraps(start: u64, size: u64, w: Width) -> bool {
    u128::from(start) + u128::from(size) >= w.limit()
}

/// `round(start + size)` does not fit in `w` (it "wraps to 0").
fn round_wraps(start: u64, size: u64, w: Width, page: u64) -> bool {
    debug_assert!(page.is_power_of_two());
    let mask = u128::from(page - 1);
    ((u128::from(start) + u128::from(size) + mask) & !mask) >= w.limit()
}

fn check_error_kr(e: CheckError) -> KernReturn {
    match e {
        CheckError::Unallocated { .. } => KERN_INVALID_ADDRESS,
        CheckError::Denied { .. } => KERN_PROTECTION_FAILURE,
    }
}

/// spec §4 vm_copy rows 2-4 for one range `[addr, addr+size)` (size > 0) of task `t`.
fn check_range<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    addr: u64,
    size: u64,
    w: Width,
    prot: i32,
) -> Step {
    let vm = env.vm(t);
    if wraps(addr, size, w) || round_wraps(addr, size, w, vm.page_size()) {
        return kr(KERN_INVALID_ADDRESS);
    }
    let (s, e) = vm.pages(addr, size);
    access(env, t, s, e, prot).or_else(|err| kr(check_error_kr(err)))
}

fn resolve<E: Env + ?Sized>(env: &mut E, caller: TaskId, name: u32) -> Step<TaskId> {
    match env.vm(caller).lookup_port(name) {
        None => kr(MACH_SEND_INVALID_DEST),
        Some(PortTarget::Host) => kr(KERN_INVALID_ARGUMENT),
        Some(PortTarget::Task(t)) => Ok(t),
    }
}

/// Checks a scalar parameter `[ptr, ptr+len)` of the caller for a load (`write == false`,
/// needs READ) or a store (needs WRITE).
fn check_param<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    len: u64,
    write: bool,
) -> Result<(), ParamFault> {
    let fault = |reason: String| ParamFault {
        call: name,
        param,
        addr: ptr,
        write,
        reason,
    };
    let vm = env.vm(caller);
    if wraps(ptr, len, vm.width) {
        return Err(fault(format!(
            "the {len}-byte parameter wraps around the {}-bit address space",
            vm.width.bits()
        )));
    }
    let (s, e) = vm.pages(ptr, len);
    let prot = if write { VM_PROT_WRITE } else { VM_PROT_READ };
    let checked = access(env, caller, s, e, prot);
    let vm = env.vm(caller);
    match checked {
        Ok(()) => Ok(()),
        Err(CheckError::Unallocated { page }) => {
            let at = u128::from(page) << vm.page_shift;
            Err(fault(if at >= vm.map_limit() {
                format!("page {at:#x} is outside the task's map")
            } else {
                format!("page {at:#x} is unallocated")
            }))
        }
        Err(CheckError::Denied { page, attrs }) => Err(fault(format!(
            "page {:#x} is not {} (protection {})",
            u128::from(page) << vm.page_shift,
            if write { "writable" } else { "readable" },
            prot_string(attrs.cur)
        ))),
    }
}

fn load_param<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    bytes: u64,
) -> Result<u64, ParamFault> {
    check_param(env, caller, name, param, ptr, bytes, false)?;
    let mut buf = [0u8; 8];
    if !env.load(caller, ptr, &mut buf[..bytes as usize]) {
        return Err(internal_fault(name, param, ptr, false));
    }
    let value = u64::from_le_bytes(buf);
    env.log_param(param, false, value);
    Ok(value)
}

fn store_bytes<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    bytes: &[u8],
) -> Result<(), ParamFault> {
    check_param(env, caller, name, param, ptr, bytes.len() as u64, true)?;
    if !env.prepare_write(caller, ptr, bytes.len() as u64) {
        return Err(ParamFault {
            call: name,
            param,
            addr: ptr,
            write: true,
            reason: "its write-only page cannot be mapped: the process's mapping budget is \
                     exhausted"
                .into(),
        });
    }
    if !env.store(caller, ptr, bytes) {
        return Err(internal_fault(name, param, ptr, true));
    }
    Ok(())
}

fn store_param<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    value: u64,
    bytes: u64,
) -> Result<(), ParamFault> {
    store_bytes(
        env,
        caller,
        name,
        param,
        ptr,
        &value.to_le_bytes()[..bytes as usize],
    )?;
    env.log_param(param, true, value);
    Ok(())
}

fn internal_fault(name: &'static str, param: &'static str, ptr: u64, write: bool) -> ParamFault {
    ParamFault {
        call: name,
        param,
        addr: ptr,
        write,
        reason: "the page table and the memory disagree (machvm bug)".into(),
    }
}

/// Maps `[s, e)` (pages) of task `t` as new zeroed memory with `attrs`, growing the memory
/// when needed (only once everything else that can refuse has agreed: see [`change`]).
fn map_new<E: Env + ?Sized>(env: &mut E, t: TaskId, s: u64, e: u64, attrs: PageAttrs) -> Step {
    // The table must know every page of the memory before it grows (the callers synced).
    sync(env, t);
    let size = env.memory_size(t);
    let shift = env.vm(t).page_shift;
    let end = e << shift;
    let grow_to = (end > size).then(|| end.div_ceil(WASM_PAGE) * WASM_PAGE);
    change(env, t, s, e, Edit::Set(attrs), grow_to)?;
    // Zero after the pages became writable; grown pages are zero already.
    let start = s << shift;
    if start < size && !env.zero(t, start, end.min(size) - start) {
        return kr(KERN_FAILURE);
    }
    Ok(())
}

/// What a call that did not stop answers: `KERN_SUCCESS` or, for the `*_self` calls, a
/// port name.
enum Ret {
    Kr(KernReturn),
    Port(u32),
}

impl From<KernReturn> for Ret {
    fn from(kr: KernReturn) -> Ret {
        Ret::Kr(kr)
    }
}

fn run<E: Env + ?Sized>(env: &mut E, caller: TaskId, c: &Call) -> Step<Ret> {
    let name = c.import_name();
    let gw = env.vm(caller).width;
    let word = gw.bytes();
    match *c {
        Call::TaskSelf => Ok(Ret::Port(TASK_SELF_NAME)),
        Call::HostSelf => Ok(Ret::Port(HOST_SELF_NAME)),
        Call::HostPageSize { host: _, size_ptr } => {
            let p = env.vm(caller).page_size();
            store_param(env, caller, name, "size", size_ptr, p, word)?;
            Ok(KERN_SUCCESS.into())
        }
        Call::Allocate {
            form,
            task,
            addr_ptr,
            size,
            flags,
        } => {
            let w = form.address_width(gw);
            let hint = load_param(env, caller, name, "address", addr_ptr, w.bytes())?;
            let t = resolve(env, caller, task)?;
            sync(env, t);
            if flags & !VM_FLAGS_USER_ALLOCATE != 0 {
                return kr(KERN_INVALID_ARGUMENT);
            }
            let addr = if size == 0 {
                0
            } else {
                let vm = env.vm(t);
                let p = vm.page_size();
                if round_wraps(0, size, w, p) {
                    return kr(KERN_INVALID_ARGUMENT);
                }
                let n = vm.round_page(u128::from(size));
                let s = if flags as i32 & VM_FLAGS_ANYWHERE != 0 {
                    // The address must fit the out-parameter: search below 2^width.
                    let below = (w.limit() >> vm.page_shift).min(u128::from(u64::MAX)) as u64;
                    match vm.table.find_free_below(n, below) {
                        Some(s) => s,
                        None => return kr(KERN_NO_SPACE),
                    }
                } else {
                    let s = vm.trunc_page(hint);
                    let end = (u128::from(s) << vm.page_shift) + (u128::from(n) << vm.page_shift);
                    if end >= w.limit() || s + n > vm.table.limit() {
                        return kr(KERN_INVALID_ADDRESS);
                    }
                    if flags as i32 & VM_FLAGS_OVERWRITE == 0 && vm.table.any_allocated(s, s + n) {
                        return kr(KERN_NO_SPACE);
                    }
                    // An overwrite cannot remove a permanent page (XNU's permanent entries).
                    if vm.table.any_permanent(s, s + n) {
                        return kr(KERN_NO_SPACE);
                    }
                    s
                };
                // A purgeable allocation is an object of its own, nonvolatile.
                let purgeable = flags as i32 & VM_FLAGS_PURGABLE != 0;
                let object = if purgeable {
                    env.vm(t).next_object()
                } else {
                    0
                };
                map_new(
                    env,
                    t,
                    s,
                    s + n,
                    PageAttrs {
                        object,
                        ..PageAttrs::DEFAULT
                    },
                )?;
                if purgeable {
                    let vm = env.vm(t);
                    // Once the ids ran out, every later one is searched for too.
                    vm.last_object = vm.last_object.max(object);
                    let fresh = Purgeable {
                        state: VM_PURGABLE_NONVOLATILE,
                        volatile_empty: false,
                    };
                    vm.objects.insert(object, fresh);
                }
                s << env.vm(t).page_shift
            };
            store_param(env, caller, name, "address", addr_ptr, addr, w.bytes())?;
            Ok(KERN_SUCCESS.into())
        }
        Call::Deallocate {
            form,
            task,
            addr,
            size,
        } => {
            let t = resolve(env, caller, task)?;
            sync(env, t);
            let w = form.address_width(gw);
            if wraps(addr, size, w) {
                return kr(KERN_INVALID_ARGUMENT);
            }
            if size == 0 {
                return Ok(KERN_SUCCESS.into());
            }
            let vm = env.vm(t);
            let end = u128::from(addr) + u128::from(size);
            if round_wraps(addr, size, w, vm.page_size()) || end > vm.map_limit() {
                tracing::warn!(
                    target: "machvm::guard",
                    call = name,
                    address = format_args!("{addr:#x}"),
                    size = format_args!("{size:#x}"),
                    "guard exception: deallocation range is outside the map; nothing removed"
                );
                return Ok(KERN_SUCCESS.into());
            }
            let (s, e) = (vm.trunc_page(addr), vm.round_page(end));
            let holes = vm.table.any_unallocated(s, e);
            change(env, t, s, e, Edit::Deallocate, None)?;
            if holes {
                tracing::warn!(
                    target: "machvm::guard",
                    call = name,
                    address = format_args!("{addr:#x}"),
                    size = format_args!("{size:#x}"),
                    "guard exception: deallocation range holds unallocated pages"
                );
            }
            Ok(KERN_SUCCESS.into())
        }
        Call::Protect {
            form,
            task,
            addr,
            size,
            set_max,
            prot,
        } => {
            let t = resolve(env, caller, task)?;
            sync(env, t);
            let w = form.address_width(gw);
            let prot = prot as i32;
            if wraps(addr, size, w) || prot & !(VM_PROT_ALL | VM_PROT_COPY) != 0 {
                return kr(KERN_INVALID_ARGUMENT);
            }
            if size == 0 {
                return Ok(KERN_SUCCESS.into());
            }
            let vm = env.vm(t);
            if round_wraps(addr, size, w, vm.page_size()) {
                return kr(KERN_INVALID_ARGUMENT);
            }
            let (s, e) = vm.pages(addr, size);
            let copy = prot & VM_PROT_COPY != 0;
            // The private copy would replace the range's entries, which a permanent page
            // forbids (XNU's remap cannot overwrite it); holes are reported first.
            if copy && !vm.table.any_unallocated(s, e) && vm.table.any_permanent(s, e) {
                return kr(KERN_NO_SPACE);
            }
            let edit = Edit::Protect {
                set_max: set_max != 0,
                prot: prot & !VM_PROT_COPY,
                copy,
            };
            change(env, t, s, e, edit, None)?;
            Ok(KERN_SUCCESS.into())
        }
        Call::Copy {
            form,
            task,
            src,
            size,
            dst,
        } => {
            let t = resolve(env, caller, task)?;
            if size == 0 {
                return Ok(KERN_SUCCESS.into());
            }
            let w = form.address_width(gw);
            check_range(env, t, src, size, w, VM_PROT_READ)?;
            check_range(env, t, dst, size, w, VM_PROT_WRITE)?;
            if !env.prepare_write(t, dst, size) {
                return kr(KERN_RESOURCE_SHORTAGE);
            }
            if !env.copy(t, src, t, dst, size) {
                return kr(KERN_FAILURE);
            }
            Ok(KERN_SUCCESS.into())
        }
        Call::ReadOverwrite {
            form,
            task,
            addr,
            size,
            data,
            outsize_ptr,
        } => {
            let t = resolve(env, caller, task)?;
            let w = form.address_width(gw);
            if size != 0 {
                check_range(env, t, addr, size, w, VM_PROT_READ)?;
                check_range(env, caller, data, size, w, VM_PROT_WRITE)?;
                if !env.prepare_write(caller, data, size) {
                    return kr(KERN_RESOURCE_SHORTAGE);
                }
                if !env.copy(t, addr, caller, data, size) {
                    return kr(KERN_FAILURE);
                }
            }
            store_param(env, caller, name, "outsize", outsize_ptr, size, w.bytes())?;
            Ok(KERN_SUCCESS.into())
        }
        Call::Read {
            form,
            task,
            addr,
            size,
            data_ptr,
            count_ptr,
        } => {
            sync(env, caller);
            let t = resolve(env, caller, task)?;
            let w = form.address_width(gw);
            if size > u64::from(u32::MAX) {
                return kr(KERN_INVALID_ARGUMENT);
            }
            let mut data = 0;
            if size != 0 {
                check_range(env, t, addr, size, w, VM_PROT_READ)?;
                // As XNU: the copy is of the whole source pages, and `*data` points at the
                // copy of `addr` (the same offset within its page).
                let src = env.vm(t);
                let offset = addr & (src.page_size() - 1);
                let len = src.round_page(u128::from(offset) + u128::from(size)) << src.page_shift;
                let vm = env.vm(caller);
                let n = vm.round_page(u128::from(len));
                let s = match vm.table.find_free(n) {
                    Some(s) => s,
                    None => return kr(KERN_NO_SPACE),
                };
                map_new(env, caller, s, s + n, PageAttrs::DEFAULT)?;
                let start = s << env.vm(caller).page_shift;
                if !env.copy(t, addr - offset, caller, start, len) {
                    return kr(KERN_FAILURE);
                }
                data = start + offset;
            }
            store_param(env, caller, name, "data", data_ptr, data, word)?;
            store_param(env, caller, name, "count", count_ptr, size, 4)?;
            Ok(KERN_SUCCESS.into())
        }
        Call::Write {
            form,
            task,
            addr,
            data,
            count,
        } => {
            let t = resolve(env, caller, task)?;
            if count == 0 {
                return Ok(KERN_SUCCESS.into());
            }
            let size = u64::from(count);
            let w = form.address_width(gw);
            // The caller's buffer is a vm_offset_t: the guest's word.
            if wraps(data, size, gw) {
                return kr(MACH_SEND_INVALID_MEMORY);
            }
            let (s, e) = env.vm(caller).pages(data, size);
            if access(env, caller, s, e, VM_PROT_READ).is_err() {
                return kr(MACH_SEND_INVALID_MEMORY);
            }
            check_range(env, t, addr, size, w, VM_PROT_WRITE)?;
            if !env.prepare_write(t, addr, size) {
                return kr(KERN_RESOURCE_SHORTAGE);
            }
            if !env.copy(caller, data, t, addr, size) {
                return kr(KERN_FAILURE);
            }
            Ok(KERN_SUCCESS.into())
        }
        Call::Region {
            form,
            task,
            addr_ptr,
            size_ptr,
            flavor,
            info_ptr,
            count_ptr,
            object_name_ptr,
        } => {
            let ptrs = [addr_ptr, size_ptr, info_ptr, count_ptr, object_name_ptr];
            region(
                env,
                caller,
                name,
                form.address_width(gw),
                task,
                flavor,
                ptrs,
            )
        }
        Call::VmRegion {
            task,
            addr_ptr,
            size_ptr,
            flavor,
            info_ptr,
            count_ptr,
            object_name_ptr,
        } => {
            let ptrs = [addr_ptr, size_ptr, info_ptr, count_ptr, object_name_ptr];
            region(env, caller, name, gw, task, flavor, ptrs)
        }
        Call::BehaviorSet {
            form,
            task,
            addr,
            size,
            behavior,
        } => {
            let t = resolve(env, caller, task)?;
            let w = form.address_width(gw);
            if wraps(addr, size, w) {
                return kr(KERN_INVALID_ARGUMENT);
            }
            if size == 0 {
                return Ok(KERN_SUCCESS.into());
            }
            sync(env, t);
            let vm = env.vm(t);
            let p = u128::from(vm.page_size());
            let s = u128::from(addr) / p * p;
            // Rounded in the call's width: the end may wrap to 0.
            let e = (u128::from(addr) + u128::from(size)).div_ceil(p) * p % w.limit();
            if s > e || e > vm.map_limit() {
                return kr(KERN_NO_SPACE);
            }
            let (s, e) = ((s / p) as u64, (e / p) as u64);
            // XNU's range check: the page at the start, and every page up to the end, mapped
            // (with `s == e`, after an end that wrapped to 0, only the first).
            let mapped = !vm.table.any_unallocated(s, e.max(s + 1));
            let behavior = behavior as i32;
            match behavior {
                VM_BEHAVIOR_DEFAULT
                | VM_BEHAVIOR_RANDOM
                | VM_BEHAVIOR_SEQUENTIAL
                | VM_BEHAVIOR_RSEQNTL => {
                    if !mapped {
                        return kr(KERN_INVALID_ADDRESS);
                    }
                    // Behavior changes no access: no window, no hardware to touch.
                    vm.table
                        .set_behavior(s, e, behavior)
                        .or_else(|err| kr(check_error_kr(err)))?;
                }
                // A flag on the range that only wiring would use; vm_region does not show it.
                VM_BEHAVIOR_ZERO_WIRED_PAGES
                | VM_BEHAVIOR_WILLNEED
                | VM_BEHAVIOR_REUSE
                | VM_BEHAVIOR_CAN_REUSE => {
                    if !mapped {
                        return kr(KERN_INVALID_ADDRESS);
                    }
                }
                // XNU's contiguous vm_msync over `[s, e)` (nothing when the end wrapped).
                VM_BEHAVIOR_DONTNEED | VM_BEHAVIOR_FREE => {
                    if e > s && vm.table.any_unallocated(s, e) {
                        return kr(KERN_INVALID_ADDRESS);
                    }
                }
                VM_BEHAVIOR_REUSABLE => {
                    if !mapped {
                        return kr(KERN_INVALID_ADDRESS);
                    }
                    if e > s
                        && vm
                            .table
                            .check(s, e, |a| a.cur & VM_PROT_WRITE != 0)
                            .is_err()
                    {
                        return kr(KERN_PROTECTION_FAILURE);
                    }
                }
                _ => return kr(KERN_INVALID_ARGUMENT),
            }
            Ok(KERN_SUCCESS.into())
        }
        Call::Msync {
            form,
            task,
            addr,
            size,
            flags,
        } => {
            let t = match env.vm(caller).lookup_port(task) {
                None => return kr(MACH_SEND_INVALID_DEST),
                Some(PortTarget::Host) => return kr(KERN_INVALID_TASK),
                Some(PortTarget::Task(t)) => t,
            };
            if flags & VM_SYNC_ASYNCHRONOUS != 0 && flags & VM_SYNC_SYNCHRONOUS != 0 {
                return kr(KERN_INVALID_ARGUMENT);
            }
            let w = form.address_width(gw);
            let vm = env.vm(t);
            if size != 0 && (wraps(addr, size, w) || round_wraps(addr, size, w, vm.page_size())) {
                return kr(KERN_INVALID_ADDRESS);
            }
            // The pages of `[trunc(addr), round(addr + size))`: one page for an unaligned
            // `addr` with size 0, as XNU rounds before it looks at the size.
            let (s, e) = vm.pages(addr, size);
            if s == e {
                return Ok(KERN_SUCCESS.into());
            }
            sync(env, t);
            // Anonymous memory has nothing to write back, and machvm keeps the contents of
            // pages XNU may discard (KILLPAGES, DEACTIVATE): only holes change the answer.
            let vm = env.vm(t);
            if flags & VM_SYNC_CONTIGUOUS != 0 && vm.table.any_unallocated(s, e) {
                return kr(KERN_INVALID_ADDRESS);
            }
            Ok(KERN_SUCCESS.into())
        }
        Call::PageQuery {
            form,
            task,
            addr,
            disposition_ptr,
            ref_count_ptr,
        } => {
            let t = resolve(env, caller, task)?;
            let w = form.address_width(gw);
            sync(env, t);
            let vm = env.vm(t);
            let s = addr & !(vm.page_size() - 1);
            // XNU looks at `[s, s + 1)`: its rounded end must not wrap.
            if u128::from(s) + u128::from(vm.page_size()) >= w.limit() {
                return kr(KERN_INVALID_ADDRESS);
            }
            let page = s >> vm.page_shift;
            let (disposition, refs) = dispositions(env, t, page, 1)[0];
            let (d, r) = (disposition as u32 as u64, refs as u32 as u64);
            store_param(env, caller, name, "disposition", disposition_ptr, d, 4)?;
            store_param(env, caller, name, "ref_count", ref_count_ptr, r, 4)?;
            Ok(KERN_SUCCESS.into())
        }
        Call::PageInfo {
            task,
            addr,
            flavor,
            info_ptr,
            count_ptr,
        } => {
            let count = load_param(env, caller, name, "count", count_ptr, 4)?;
            let t = resolve(env, caller, task)?;
            // MIG hands the call at most the array's bound (32 words).
            let count = count.min(32) as u32;
            if flavor as i32 != VM_PAGE_INFO_BASIC
                || (count != VM_PAGE_INFO_BASIC_COUNT && count != VM_PAGE_INFO_BASIC_COUNT - 1)
            {
                return kr(KERN_INVALID_ARGUMENT);
            }
            sync(env, t);
            let vm = env.vm(t);
            let mask = vm.page_size() - 1;
            if u128::from(addr & !mask) + u128::from(vm.page_size()) >= Width::W64.limit() {
                return kr(KERN_INVALID_ADDRESS);
            }
            let page = addr >> vm.page_shift;
            let (disposition, refs) = dispositions(env, t, page, 1)[0];
            // vm_page_info_basic: disposition, ref_count, object_id (machvm has no VM
            // objects: 0), offset (in the page, for an allocated one), depth, pad.
            let mut info = [0u8; 32];
            info[0..4].copy_from_slice(&disposition.to_le_bytes());
            info[4..8].copy_from_slice(&refs.to_le_bytes());
            if refs != 0 {
                info[16..24].copy_from_slice(&(addr & mask).to_le_bytes());
            }
            store_bytes(
                env,
                caller,
                name,
                "info",
                info_ptr,
                &info[..count as usize * 4],
            )?;
            store_param(env, caller, name, "count", count_ptr, count.into(), 4)?;
            Ok(KERN_SUCCESS.into())
        }
        Call::PageRangeQuery {
            task,
            addr,
            size,
            dispositions: mut out,
            count_ptr,
        } => {
            let count = load_param(env, caller, name, "dispositions_count", count_ptr, 8)?;
            let t = resolve(env, caller, task)?;
            let Some(mut want) = count.checked_mul(4) else {
                return kr(KERN_INVALID_ARGUMENT);
            };
            sync(env, t);
            let vm = env.vm(t);
            let (shift, mask) = (vm.page_shift, vm.page_size() - 1);
            // In 64-bit arithmetic that wraps, as XNU computes them.
            let mut start = addr & !mask;
            let end = addr.wrapping_add(size).wrapping_add(mask) & !mask;
            if end < start || end - start < size {
                return kr(KERN_INVALID_ARGUMENT);
            }
            if want == 0 || end == start {
                store_param(env, caller, name, "dispositions_count", count_ptr, count, 8)?;
                return Ok(KERN_SUCCESS.into());
            }
            // XNU's loop, a gigabyte of the range at a time.
            let mut size = size;
            let mut chunk = (end - start).min(MAX_PAGE_RANGE_QUERY);
            let mut total = 0u64;
            loop {
                let pages = chunk >> shift;
                let ints: Vec<u8> = dispositions(env, t, start >> shift, pages)
                    .iter()
                    .flat_map(|&(d, _)| d.to_le_bytes())
                    .collect();
                let n = want.min(pages * 4);
                let bytes = &ints[..n as usize];
                // A copyout into the caller's buffer: its failure (EFAULT) is the answer.
                if check_range(env, caller, out, n, Width::W64, VM_PROT_WRITE).is_err()
                    || !env.prepare_write(caller, out, n)
                    || !env.store(caller, out, bytes)
                {
                    return kr(KERN_ABORTED);
                }
                start = start.wrapping_add(chunk);
                want -= n;
                total += n;
                if want == 0 || chunk >= size {
                    break;
                }
                out = out.wrapping_add(n);
                size -= chunk;
                chunk = (size.wrapping_add(mask) & !mask).min(MAX_PAGE_RANGE_QUERY);
            }
            store_param(
                env,
                caller,
                name,
                "dispositions_count",
                count_ptr,
                total / 4,
                8,
            )?;
            Ok(KERN_SUCCESS.into())
        }
        Call::TaskInfo {
            task,
            flavor,
            info_ptr,
            count_ptr,
        } => {
            let count = load_param(env, caller, name, "count", count_ptr, 4)?;
            let t = resolve(env, caller, task)?;
            // MIG hands the call at most TASK_INFO_MAX (1024) words.
            let (info, out) = task_info(env, t, flavor as i32, count.min(1024) as u32)?;
            store_bytes(env, caller, name, "info", info_ptr, &info)?;
            store_param(env, caller, name, "count", count_ptr, out.into(), 4)?;
            Ok(KERN_SUCCESS.into())
        }
        Call::HostStatistics64 {
            host,
            flavor,
            info_ptr,
            count_ptr,
        } => {
            let count = load_param(env, caller, name, "count", count_ptr, 4)?;
            match env.vm(caller).lookup_port(host) {
                None => return kr(MACH_SEND_INVALID_DEST),
                Some(PortTarget::Task(_)) => return kr(KERN_INVALID_HOST),
                Some(PortTarget::Host) => {}
            }
            if flavor as i32 != HOST_VM_INFO64 {
                return kr(KERN_INVALID_ARGUMENT);
            }
            // MIG hands the call at most HOST_INFO64_MAX (256) words.
            let (info, out) = vm_statistics(env, count.min(256) as u32)?;
            store_bytes(env, caller, name, "info", info_ptr, &info)?;
            store_param(env, caller, name, "count", count_ptr, out.into(), 4)?;
            Ok(KERN_SUCCESS.into())
        }
        Call::PurgableControl {
            form,
            task,
            addr,
            control,
            state_ptr,
        } => {
            let state = load_param(env, caller, name, "state", state_ptr, 4)? as u32 as i32;
            let t = resolve(env, caller, task)?;
            let control = control as i32;
            if !(VM_PURGABLE_SET_STATE..=VM_PURGABLE_PURGE_ALL).contains(&control) {
                // SET_STATE_FROM_KERNEL too: not allowed from a task.
                return kr(KERN_INVALID_ARGUMENT);
            }
            if control == VM_PURGABLE_PURGE_ALL {
                purge_volatile(env);
                store_param(
                    env,
                    caller,
                    name,
                    "state",
                    state_ptr,
                    u64::from(state as u32),
                    4,
                )?;
                return Ok(KERN_SUCCESS.into());
            }
            if control == VM_PURGABLE_SET_STATE && state & !VM_PURGABLE_ALL_MASKS != 0 {
                return kr(KERN_INVALID_ARGUMENT);
            }
            sync(env, t);
            let w = form.address_width(gw);
            let vm = env.vm(t);
            let Some(attrs) = vm.table.get(w.truncate(addr) >> vm.page_shift) else {
                return kr(KERN_INVALID_ADDRESS);
            };
            if attrs.cur & VM_PROT_WRITE == 0 && control != VM_PURGABLE_GET_STATE {
                return kr(KERN_PROTECTION_FAILURE);
            }
            let Some(object) = vm.objects.get_mut(&attrs.object) else {
                return kr(KERN_INVALID_ARGUMENT);
            };
            let old = object.state;
            if control == VM_PURGABLE_SET_STATE {
                if state & VM_PURGABLE_DEBUG_EMPTY != 0 {
                    object.volatile_empty = true;
                }
                let mut new = state & VM_PURGABLE_STATE_MASK;
                if new == VM_PURGABLE_VOLATILE
                    && (old == VM_PURGABLE_EMPTY || object.volatile_empty)
                {
                    // What has been emptied stays empty.
                    new = VM_PURGABLE_EMPTY;
                }
                match new {
                    VM_PURGABLE_DENY => return kr(KERN_INVALID_ARGUMENT),
                    VM_PURGABLE_EMPTY => {
                        empty_object(env, t, attrs.object);
                    }
                    _ => object.state = new,
                }
            }
            store_param(
                env,
                caller,
                name,
                "state",
                state_ptr,
                u64::from(old as u32),
                4,
            )?;
            Ok(KERN_SUCCESS.into())
        }
        Call::Wire { host, task, .. } => {
            // The destination is the host-privileged port, which no guest holds: a name
            // for any other port reaches a server that refuses it.
            let vm = env.vm(caller);
            if vm.lookup_port(host).is_none() {
                return kr(MACH_SEND_INVALID_DEST);
            }
            // The task travels as a port in the message body: a name that is not null, not
            // dead and not in the namespace fails the send.
            if task != MACH_PORT_NULL && task != MACH_PORT_DEAD && vm.lookup_port(task).is_none() {
                tracing::warn!(
                    target: "machvm::guard",
                    call = name,
                    name = format_args!("{task:#x}"),
                    "guard exception: the message names a port right the task does not hold"
                );
                return kr(MACH_SEND_INVALID_RIGHT);
            }
            kr(KERN_INVALID_HOST)
        }
    }
}

/// The dispositions and reference counts (`mach_vm_page_query`) of task `t`'s pages
/// `[first, first + n)`: 0 and 0 for a page that is not allocated (past the memory or the
/// map included); `PRESENT | REF` when resident (else 0) and a reference count of 1 for an
/// allocated one. machvm cannot tell a page written from one only read: no `DIRTY`.
fn dispositions<E: Env + ?Sized>(env: &mut E, t: TaskId, first: u64, n: u64) -> Vec<(i32, i32)> {
    let vm = env.vm(t);
    let inside = (vm.known_size >> vm.page_shift)
        .saturating_sub(first)
        .min(n);
    let mut allocated = vec![false; n as usize];
    for (s, e, attrs) in vm.table.segments_iter(first, first + inside) {
        if attrs.is_some() {
            allocated[(s - first) as usize..(e - first) as usize].fill(true);
        }
    }
    let resident = env.resident(t, first, inside);
    allocated
        .iter()
        .enumerate()
        .map(
            |(i, &a)| match (a, resident.get(i).copied().unwrap_or(false)) {
                (false, _) => (0, 0),
                (true, true) => (VM_PAGE_QUERY_PAGE_PRESENT | VM_PAGE_QUERY_PAGE_REF, 1),
                (true, false) => (0, 1),
            },
        )
        .collect()
}

/// What `task_info` and `host_statistics64` report of a task's memory, in bytes.
#[derive(Default)]
struct Sizes {
    /// Allocated.
    allocated: u64,
    /// Allocated and resident in host memory.
    resident: u64,
    /// Allocated in purgeable objects that are volatile or emptied.
    volatile: u64,
    /// The same, resident.
    volatile_resident: u64,
    /// Resident in purgeable objects that are volatile (not emptied).
    purgeable: u64,
}

/// Task `t`'s [`Sizes`].
fn sizes<E: Env + ?Sized>(env: &mut E, t: TaskId) -> Sizes {
    sync(env, t);
    let vm = env.vm(t);
    let (shift, k) = (vm.page_shift, vm.known_size >> vm.page_shift);
    let segments: Vec<(u64, u64, PageAttrs)> = vm
        .table
        .segments_iter(0, k)
        .filter_map(|(s, e, a)| a.map(|a| (s, e, a)))
        .collect();
    let states: Vec<i32> = segments
        .iter()
        .map(|(_, _, a)| vm.objects.get(&a.object).map_or(-1, |o| o.state))
        .collect();
    let resident = env.resident(t, 0, k);
    let mut z = Sizes::default();
    for ((s, e, _), state) in segments.iter().zip(states) {
        let n = e - s;
        let r = resident[*s as usize..*e as usize]
            .iter()
            .filter(|&&r| r)
            .count() as u64;
        z.allocated += n;
        z.resident += r;
        if state == VM_PURGABLE_VOLATILE || state == VM_PURGABLE_EMPTY {
            z.volatile += n;
            z.volatile_resident += r;
        }
        if state == VM_PURGABLE_VOLATILE {
            z.purgeable += r;
        }
    }
    for v in [
        &mut z.allocated,
        &mut z.resident,
        &mut z.volatile,
        &mut z.volatile_resident,
        &mut z.purgeable,
    ] {
        *v <<= shift;
    }
    z
}

/// `task_info` (spec §9) for task `t`, `count` the caller's count (at most `TASK_INFO_MAX`):
/// the info's bytes and the count to answer.
fn task_info<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    flavor: i32,
    count: u32,
) -> Step<(Vec<u8>, u32)> {
    let z = sizes(env, t);
    // Volatile purgeable memory is not the task's footprint (as on XNU).
    let footprint = z.resident - z.volatile_resident;
    let vm = env.vm(t);
    match flavor {
        MACH_TASK_BASIC_INFO => {
            if count < MACH_TASK_BASIC_INFO_COUNT {
                return kr(KERN_INVALID_ARGUMENT);
            }
            vm.resident_peak = vm.resident_peak.max(z.resident);
            vm.footprint_peak = vm.footprint_peak.max(footprint);
            let mut info = vec![0u8; 48];
            info[0..8].copy_from_slice(&z.allocated.to_le_bytes());
            info[8..16].copy_from_slice(&z.resident.to_le_bytes());
            info[16..24].copy_from_slice(&vm.resident_peak.to_le_bytes());
            // user_time and system_time (seconds, microseconds) stay 0.
            info[40..44].copy_from_slice(&POLICY_TIMESHARE.to_le_bytes());
            Ok((info, MACH_TASK_BASIC_INFO_COUNT))
        }
        TASK_VM_INFO | TASK_VM_INFO_PURGEABLE => {
            let Some(&rev) = TASK_VM_INFO_REV_COUNTS.iter().rev().find(|&&c| c <= count) else {
                return kr(KERN_INVALID_ARGUMENT);
            };
            vm.resident_peak = vm.resident_peak.max(z.resident);
            vm.footprint_peak = vm.footprint_peak.max(footprint);
            let peak = vm.resident_peak;
            let mut info = vec![0u8; TASK_VM_INFO_COUNT as usize * 4];
            let mut put = |at: usize, v: u64| info[at..at + 8].copy_from_slice(&v.to_le_bytes());
            put(0, z.allocated);
            put(16, z.resident);
            put(24, peak);
            put(48, z.resident); // internal: every resident page is anonymous
            put(56, peak);
            if flavor == TASK_VM_INFO_PURGEABLE {
                put(96, z.volatile_resident); // purgeable_volatile_pmap
                put(104, z.volatile_resident); // purgeable_volatile_resident
                put(112, z.volatile); // purgeable_volatile_virtual
            }
            put(144, footprint); // phys_footprint
            put(152, 0); // min_address
            put(160, vm.map_limit().min(u128::from(u64::MAX)) as u64); // max_address
            put(168, vm.footprint_peak); // ledger_phys_footprint_peak
            info[8..12].copy_from_slice(&(vm.table.run_count() as u32).to_le_bytes());
            info[12..16].copy_from_slice(&(vm.page_size() as u32).to_le_bytes());
            info.truncate(rev as usize * 4);
            Ok((info, rev))
        }
        _ => kr(KERN_INVALID_ARGUMENT),
    }
}

/// `host_statistics64(HOST_VM_INFO64)` (spec §9) over the kernel's tasks, `count` the
/// caller's count: the info's bytes and the count to answer.
fn vm_statistics<E: Env + ?Sized>(env: &mut E, count: u32) -> Step<(Vec<u8>, u32)> {
    if count < HOST_VM_INFO64_REV0_COUNT {
        return kr(KERN_FAILURE);
    }
    let (mut free, mut resident, mut purgeable, mut purges) = (0u64, 0u64, 0u64, 0u64);
    for t in env.tasks() {
        let z = sizes(env, t);
        let vm = env.vm(t);
        resident += z.resident >> vm.page_shift;
        purgeable += z.purgeable >> vm.page_shift;
        purges += vm.purged;
        // What the task's map can still take: its pages past the memory's end.
        let map_pages = (vm.map_limit() >> vm.page_shift).min(u128::from(u64::MAX)) as u64;
        free = free.saturating_add(map_pages.saturating_sub(vm.known_size >> vm.page_shift));
    }
    let natural = |v: u64| (v.min(u64::from(u32::MAX)) as u32).to_le_bytes();
    let mut info = vec![0u8; HOST_VM_INFO64_COUNT as usize * 4];
    info[0..4].copy_from_slice(&natural(free)); // free_count
    info[4..8].copy_from_slice(&natural(resident)); // active_count
    info[80..88].copy_from_slice(&purges.to_le_bytes()); // purges
    info[88..92].copy_from_slice(&natural(purgeable)); // purgeable_count
    info[140..144].copy_from_slice(&natural(resident)); // internal_page_count
    let out = if count >= HOST_VM_INFO64_COUNT {
        HOST_VM_INFO64_COUNT
    } else {
        HOST_VM_INFO64_REV0_COUNT
    };
    info.truncate(out as usize * 4);
    Ok((info, out))
}

/// Empties purgeable object `object` of task `t`: its pages read as zero (whatever their
/// protection), its state is `EMPTY`. Returns the pages emptied.
fn empty_object<E: Env + ?Sized>(env: &mut E, t: TaskId, object: u32) -> u64 {
    let vm = env.vm(t);
    let shift = vm.page_shift;
    let runs: Vec<(u64, u64)> = vm
        .table
        .runs()
        .filter(|r| r.attrs.object == object)
        .map(|r| (r.start, r.end))
        .collect();
    let mut pages = 0;
    for (s, e) in runs {
        // Allocated pages lie inside the memory: zeroing cannot fail but for a machvm bug,
        // which leaves the bytes (the state still says EMPTY).
        let _ = env.purge_zero(t, s << shift, (e - s) << shift);
        pages += e - s;
    }
    let vm = env.vm(t);
    vm.purged += pages;
    if let Some(o) = vm.objects.get_mut(&object) {
        o.state = VM_PURGABLE_EMPTY;
    }
    pages
}

/// Empties every volatile purgeable object of `tasks`; returns the pages emptied.
fn empty_volatile<E: Env + ?Sized>(env: &mut E, tasks: &[TaskId]) -> u64 {
    let mut pages = 0;
    for &t in tasks {
        let volatile: Vec<u32> = env
            .vm(t)
            .objects
            .iter()
            .filter(|(_, o)| o.state == VM_PURGABLE_VOLATILE)
            .map(|(&id, _)| id)
            .collect();
        for object in volatile {
            pages += empty_object(env, t, object);
        }
    }
    pages
}

/// Empties every volatile purgeable object of the kernel (memory pressure, as XNU's
/// `vm_purgeable_object_purge_all`); returns the pages emptied.
pub fn purge_volatile<E: Env + ?Sized>(env: &mut E) -> u64 {
    let tasks = env.tasks();
    for &t in &tasks {
        sync(env, t);
    }
    empty_volatile(env, &tasks)
}

/// `vm_region_64`, `mach_vm_region` and `vm_region` (spec §4 and §9): the region at or after
/// `*address` of task `task`, for addresses of width `w`. `ptrs` are the pointers `address`,
/// `size`, `info`, `count` and `object_name`.
fn region<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    w: Width,
    task: u32,
    flavor: u32,
    ptrs: [u64; 5],
) -> Step<Ret> {
    let [addr_ptr, size_ptr, info_ptr, count_ptr, object_name_ptr] = ptrs;
    let addr = load_param(env, caller, name, "address", addr_ptr, w.bytes())?;
    let count = load_param(env, caller, name, "count", count_ptr, 4)?;
    let t = resolve(env, caller, task)?;
    sync(env, t);
    let Some((want, info_len)) = crate::abi::region_flavor(flavor as i32) else {
        return kr(KERN_INVALID_ARGUMENT);
    };
    if count < u64::from(want) {
        return kr(KERN_INVALID_ARGUMENT);
    }
    let vm = env.vm(t);
    let Some(run) = vm.table.region_at_or_after(vm.trunc_page(addr)) else {
        return kr(KERN_INVALID_ADDRESS);
    };
    let start = run.start << vm.page_shift;
    let len = (run.end - run.start) << vm.page_shift;
    // A 32-bit guest's word-sized call: the region's end must fit in 32 bits.
    if w == Width::W32 && u128::from(start) + u128::from(len) >= w.limit() {
        return kr(KERN_INVALID_ADDRESS);
    }
    // protection, max_protection, inheritance; shared, reserved and offset 0; then behavior
    // (at 28 in the 64-bit struct, after its 8-byte offset; at 24 in the 32-bit one) and
    // user_wired_count 0.
    let mut info = [0u8; VM_REGION_BASIC_INFO_SIZE];
    info[0..4].copy_from_slice(&run.attrs.cur.to_le_bytes());
    info[4..8].copy_from_slice(&run.attrs.max.to_le_bytes());
    info[8..12].copy_from_slice(&run.attrs.inherit.to_le_bytes());
    let at = if info_len == VM_REGION_BASIC_INFO_SIZE {
        28
    } else {
        24
    };
    info[at..at + 4].copy_from_slice(&run.attrs.behavior.to_le_bytes());
    store_param(env, caller, name, "address", addr_ptr, start, w.bytes())?;
    store_param(env, caller, name, "size", size_ptr, len, w.bytes())?;
    store_bytes(env, caller, name, "info", info_ptr, &info[..info_len])?;
    store_param(env, caller, name, "count", count_ptr, u64::from(want), 4)?;
    store_param(env, caller, name, "object_name", object_name_ptr, 0, 4)?;
    Ok(KERN_SUCCESS.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Form;
    use proptest::prelude::*;

    /// One task whose memory is a byte vector: the smallest [`Env`], to test the logic of
    /// this module on its own.
    struct VecEnv {
        vm: TaskVm,
        bytes: Vec<u8>,
        /// Whether the task counts as enforced (its mappings are accounted for).
        enforce: bool,
        /// How many of the next `mirror` calls fail.
        mirror_failures: u32,
        /// `out_of_line` was called.
        out_of_line: bool,
    }

    impl Drop for VecEnv {
        fn drop(&mut self) {
            release_mappings(&mut self.vm);
        }
    }

    const ME: TaskId = TaskId::new(0, 0);

    impl VecEnv {
        fn new(width: Width, page_size: u64, wasm_pages: u64) -> VecEnv {
            let mut env = VecEnv {
                vm: TaskVm::new(ME, width, page_size, 8 * u128::from(WASM_PAGE)),
                bytes: vec![0; (wasm_pages * WASM_PAGE) as usize],
                enforce: false,
                mirror_failures: 0,
                out_of_line: false,
            };
            sync(&mut env, ME);
            env
        }

        fn range(&self, addr: u64, len: u64) -> Option<std::ops::Range<usize>> {
            let end = addr.checked_add(len)?;
            (end <= self.bytes.len() as u64).then_some(addr as usize..end as usize)
        }
    }

    impl Env for VecEnv {
        fn vm(&mut self, _: TaskId) -> &mut TaskVm {
            &mut self.vm
        }
        fn windows_closed(&mut self, _: TaskId) {}
        fn enforcing(&mut self, _: TaskId) -> bool {
            self.enforce
        }
        fn mirror(&mut self, _: TaskId, _: u64, _: u64) -> bool {
            if self.mirror_failures > 0 {
                self.mirror_failures -= 1;
                return false;
            }
            true
        }
        fn out_of_line(&mut self, _: TaskId) {
            self.out_of_line = true;
        }
        fn memory_size(&mut self, _: TaskId) -> u64 {
            self.bytes.len() as u64
        }
        fn grow_memory(&mut self, _: TaskId, new_size: u64) -> bool {
            if new_size > 8 * WASM_PAGE {
                return false;
            }
            let new_size = (new_size as usize).max(self.bytes.len());
            self.bytes.resize(new_size, 0);
            true
        }
        fn copy(&mut self, _: TaskId, src: u64, _: TaskId, dst: u64, len: u64) -> bool {
            match (self.range(src, len), self.range(dst, len)) {
                (Some(s), Some(d)) => {
                    self.bytes.copy_within(s, d.start);
                    true
                }
                _ => false,
            }
        }
        fn zero(&mut self, _: TaskId, addr: u64, len: u64) -> bool {
            self.range(addr, len)
                .map(|r| self.bytes[r].fill(0))
                .is_some()
        }
        fn load(&mut self, _: TaskId, addr: u64, buf: &mut [u8]) -> bool {
            self.range(addr, buf.len() as u64)
                .map(|r| buf.copy_from_slice(&self.bytes[r]))
                .is_some()
        }
        fn store(&mut self, _: TaskId, addr: u64, bytes: &[u8]) -> bool {
            self.range(addr, bytes.len() as u64)
                .map(|r| self.bytes[r].copy_from_slice(bytes))
                .is_some()
        }
    }

    fn copy_call(form: Form, port: u32, src: u64, size: u64, dst: u64) -> Call {
        Call::Copy {
            form,
            task: port,
            src,
            size,
            dst,
        }
    }

    /// Allocating and freeing purgeable memory forever keeps the task's record of objects
    /// as small as its regions: objects no page belongs to are forgotten. Their ids are not
    /// given again (until 2^32 - 1 were).
    #[test]
    fn freed_purgeable_objects_are_forgotten() {
        let mut env = VecEnv::new(Width::W32, 4096, 1);
        env.bytes[0x100..0x104].copy_from_slice(&0u32.to_le_bytes());
        let allocate = Call::Allocate {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr_ptr: 0x100,
            size: 0x1000,
            flags: (VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE) as u32,
        };
        let mut last = 0;
        for _ in 0..1000 {
            assert_eq!(call(&mut env, ME, &allocate), Outcome::Kr(KERN_SUCCESS));
            let addr = u64::from(u32::from_le_bytes(
                env.bytes[0x100..0x104].try_into().unwrap(),
            ));
            let object = env.vm.table.get(addr >> 12).unwrap().object;
            assert!(object > last, "a new id");
            last = object;
            let free = Call::Deallocate {
                form: Form::Vm,
                task: TASK_SELF_NAME,
                addr,
                size: 0x1000,
            };
            assert_eq!(call(&mut env, ME, &free), Outcome::Kr(KERN_SUCCESS));
            assert!(env.vm.objects.len() <= 2 * env.vm.table.run_count() + 17);
        }
        // Past the last id, a free one is taken, and the next ones are searched for too.
        env.vm.last_object = u32::MAX;
        assert_eq!(call(&mut env, ME, &allocate), Outcome::Kr(KERN_SUCCESS));
        let a = u64::from(u32::from_le_bytes(
            env.bytes[0x100..0x104].try_into().unwrap(),
        ));
        assert_eq!(call(&mut env, ME, &allocate), Outcome::Kr(KERN_SUCCESS));
        let b = u64::from(u32::from_le_bytes(
            env.bytes[0x100..0x104].try_into().unwrap(),
        ));
        let (x, y) = (env.vm.table.get(a >> 12), env.vm.table.get(b >> 12));
        assert!(x.unwrap().object != y.unwrap().object, "{x:?} {y:?}");
    }

    /// A change whose mirror fails is put back and answers `KERN_RESOURCE_SHORTAGE`; when
    /// putting it back fails too, the task is out of line with its table and is stopped.
    #[test]
    fn a_failed_restore_stops_the_task() {
        let protect = Call::Protect {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr: 0x1000,
            size: 0x1000,
            set_max: 0,
            prot: VM_PROT_READ as u32,
        };
        for (failures, stopped) in [(1, false), (2, true)] {
            let mut env = VecEnv::new(Width::W32, 4096, 1);
            env.enforce = true;
            env.mirror_failures = failures;
            let before = env.vm.table.get(1);
            assert_eq!(
                call(&mut env, ME, &protect),
                Outcome::Kr(KERN_RESOURCE_SHORTAGE)
            );
            assert_eq!(env.vm.table.get(1), before, "the table is put back");
            assert_eq!(env.out_of_line, stopped, "{failures} failures");
        }
    }

    #[test]
    fn the_fast_paths_take_the_common_case_and_leave_the_rest() {
        let mut env = VecEnv::new(Width::W32, 4096, 2);
        let (w, me) = (Width::W32, TASK_SELF_NAME);
        assert!(copy_succeeds(&env.vm, me, 0, 0x1000, 0x2000, w));
        assert!(copy_succeeds(&env.vm, me, 0, 0, 0x1_0000_0000, w), "size 0");
        assert!(
            copy_succeeds(&env.vm, me, 0x10, 0x1_0000, 0x8, w),
            "overlapping"
        );
        assert!(allows_fast(&env.vm, 0x1ffc, 4, VM_PROT_WRITE));
        // Another port, a range past the memory, past 2^32: the full path decides.
        assert!(!copy_succeeds(
            &env.vm,
            HOST_SELF_NAME,
            0,
            0x1000,
            0x2000,
            w
        ));
        assert!(!copy_succeeds(&env.vm, me, 0, 0x1000, 0x2_0000, w));
        assert!(!copy_succeeds(&env.vm, me, 0, 0x1000, u64::MAX - 0x10, w));
        assert!(!allows_fast(&env.vm, 0x1_fffe, 4, VM_PROT_WRITE));
        // A read-only destination page.
        let c = Call::Protect {
            form: Form::Vm,
            task: me,
            addr: 0x2000,
            size: 1,
            set_max: 0,
            prot: VM_PROT_READ as u32,
        };
        assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
        assert!(copy_succeeds(&env.vm, me, 0x2000, 0x1000, 0x3000, w));
        assert!(!copy_succeeds(&env.vm, me, 0x3000, 0x1000, 0x2000, w));
        assert!(!allows_fast(&env.vm, 0x2000, 4, VM_PROT_WRITE));
        // Pages grown behind the table's back: the fast path declines, the full one syncs.
        env.bytes.resize(3 * WASM_PAGE as usize, 0);
        assert!(!copy_succeeds(&env.vm, me, 0, 0x1000, 0x2_0000, w));
        let c = copy_call(Form::Vm, me, 0, 0x1000, 0x2_0000);
        assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
        assert!(copy_succeeds(&env.vm, me, 0, 0x1000, 0x2_0000, w));
    }

    /// `pages` in 64-bit arithmetic agrees with the plain 128-bit rounding, at the edges.
    #[test]
    fn pages_rounds_like_the_128_bit_formula() {
        let edges = [
            0,
            1,
            0xfff,
            0x1000,
            0x1001,
            0xffff_ffff,
            1 << 32,
            u64::MAX - 0x1000,
            u64::MAX - 1,
            u64::MAX,
        ];
        for page in [4096u64, 16384, 65536] {
            let vm = TaskVm::new(ME, Width::W64, page, 1 << 40);
            for &start in &edges {
                for &size in &edges {
                    let end = u128::from(start) + u128::from(size);
                    let want = (
                        start / page,
                        end.div_ceil(u128::from(page)).min(u128::from(u64::MAX)) as u64,
                    );
                    assert_eq!(vm.pages(start, size), want, "{start:#x}+{size:#x} / {page}");
                }
            }
        }
    }

    /// Addresses and sizes around pages, the memory's end, and the width limits.
    fn value() -> impl Strategy<Value = u64> {
        prop_oneof![
            6 => 0u64..0x5_0000,
            2 => (0u64..6, -2i64..=2).prop_map(|(k, d)| (k * 0x1_0000).wrapping_add_signed(d)),
            1 => (-0x2_0000i64..=0x2_0000).prop_map(|d| (1u64 << 32).wrapping_add_signed(d)),
            1 => (0u64..0x2_0000).prop_map(|d| u64::MAX - d),
        ]
    }

    #[derive(Clone, Debug)]
    enum Shape {
        Protect(u64, u64, i32),
        Deallocate(u64, u64),
        /// A guest `memory.grow` by one wasm page, which the table does not know yet.
        Grow,
        /// `mach_vm_allocate` at this hint with these flags (FIXED, OVERWRITE, ANYWHERE).
        Allocate(u64, u64, i32),
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            (0u64..0x4_0000, 1u64..0x2_0000, 0i32..8).prop_map(|(a, s, p)| Shape::Protect(a, s, p)),
            (0u64..0x4_0000, 1u64..0x1_0000).prop_map(|(a, s)| Shape::Deallocate(a, s)),
            Just(Shape::Grow),
        ]
    }

    /// Runs `shapes` on the task: calls, and guest growth the table does not know yet.
    fn apply(env: &mut VecEnv, shapes: Vec<Shape>) {
        for s in shapes {
            let c = match s {
                Shape::Protect(addr, size, prot) => Call::Protect {
                    form: Form::MachVm,
                    task: TASK_SELF_NAME,
                    addr,
                    size,
                    set_max: 0,
                    prot: prot as u32,
                },
                Shape::Deallocate(addr, size) => Call::Deallocate {
                    form: Form::MachVm,
                    task: TASK_SELF_NAME,
                    addr,
                    size,
                },
                Shape::Allocate(hint, size, flags) => {
                    // The in-out address parameter lives at 0 (if the page allows).
                    env.bytes[..8].copy_from_slice(&hint.to_le_bytes());
                    Call::Allocate {
                        form: Form::MachVm,
                        task: TASK_SELF_NAME,
                        addr_ptr: 0,
                        size,
                        flags: flags as u32,
                    }
                }
                Shape::Grow => {
                    if env.bytes.len() < 8 * WASM_PAGE as usize {
                        env.bytes.resize(env.bytes.len() + WASM_PAGE as usize, 0);
                    }
                    continue;
                }
            };
            call(env, ME, &c);
        }
    }

    /// A 32-bit memory's windows end below its last page under 4 GiB, so that `hi` fits an
    /// i32 and no range inside ends at 2^32.
    #[test]
    fn a_32_bit_window_stops_below_the_last_page() {
        let mut vm = TaskVm::new(ME, Width::W32, 4096, 1 << 32);
        vm.known_size = 1 << 32;
        vm.table.set(0, 1 << 20, PageAttrs::DEFAULT);
        let top = (1u64 << 32) - 4096;
        assert_eq!(window(&vm, 0xFFFF_0000, 16, VM_PROT_READ), Some((0, top)));
        assert_eq!(window(&vm, top - 16, 16, VM_PROT_WRITE), Some((0, top)));
        assert_eq!(window(&vm, top - 16, 17, VM_PROT_WRITE), None);
        assert_eq!(window(&vm, top, 1, VM_PROT_READ), None);
        // A 64-bit memory keeps the page.
        let mut vm = TaskVm::new(ME, Width::W64, 4096, 1 << 33);
        vm.known_size = 1 << 32;
        vm.table.set(0, 1 << 20, PageAttrs::DEFAULT);
        assert_eq!(window(&vm, top, 4096, VM_PROT_READ), Some((0, 1 << 32)));
    }

    /// Every boundary of an enforced task, page by page: the count [`TaskVm::mappings`]
    /// must equal, written independently of [`hw_boundaries`].
    fn full_recount(vm: &TaskVm) -> u64 {
        let k = (vm.known_size >> vm.page_shift) as i64;
        let class = |i: i64| {
            let attrs = if (0..k).contains(&i) {
                vm.table.get(i as u64)
            } else {
                Some(PageAttrs::DEFAULT)
            };
            crate::enforce::hw_prot(attrs)
        };
        (0..=k).filter(|&i| class(i - 1) != class(i)).count() as u64
    }

    /// Table changes of every kind, around the memory's end and past it, with the table and
    /// the memory growing.
    fn change_shape() -> impl Strategy<Value = Shape> {
        let page = prop_oneof![
            0u64..0x4_0000,
            (1u64..10).prop_map(|k| k * 0x1_0000 - 0x1000)
        ];
        prop_oneof![
            4 => (page.clone(), 1u64..0x2_0000, 0i32..8)
                .prop_map(|(a, s, p)| Shape::Protect(a, s, p)),
            2 => (page.clone(), 1u64..0x2_0000).prop_map(|(a, s)| Shape::Deallocate(a, s)),
            2 => (page, 1u64..0x2_0000, prop_oneof![Just(0), Just(1), Just(4)])
                .prop_map(|(a, s, f)| Shape::Allocate(a, s, f)),
            1 => Just(Shape::Grow),
        ]
    }

    #[test]
    fn a_dropped_task_gives_its_mappings_back() {
        let mut env = VecEnv::new(Width::W32, 4096, 2);
        env.enforce = true;
        let c = Call::Protect {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr: 0x3000,
            size: 0x1000,
            set_max: 0,
            prot: VM_PROT_READ as u32,
        };
        assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
        assert_eq!(env.vm.mappings(), 2);
        assert!(crate::vm::budget::mappings_in_use() >= 2);
        release_mappings(&mut env.vm);
        assert_eq!(env.vm.mappings(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The count of an enforced task's boundaries, kept change by change from the
        /// changed pages only, is the full recount of its table after any sequence of
        /// calls (refused ones included) and guest growth.
        #[test]
        fn the_incremental_mapping_count_is_a_full_recount(
            big_pages in any::<bool>(),
            wasm_pages in 1u64..=4,
            shapes in proptest::collection::vec(change_shape(), 1..24),
        ) {
            let page = if big_pages { 16384 } else { 4096 };
            let mut env = VecEnv::new(Width::W64, page, wasm_pages);
            env.enforce = true;
            for s in shapes {
                apply(&mut env, vec![s]);
                prop_assert_eq!(env.vm.mappings(), full_recount(&env.vm));
            }
            sync(&mut env, ME);
            prop_assert_eq!(env.vm.mappings(), full_recount(&env.vm));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Windows opened after copies and kept across table changes only hold ranges whose
        /// `vm_copy` the full path lets succeed, in either form: what the wasm side of
        /// `crate::enforce::rewrite` relies on to answer without the host.
        #[test]
        fn a_copy_inside_the_windows_succeeds(
            w64 in any::<bool>(),
            big_pages in any::<bool>(),
            wasm_pages in 1u64..=4,
            opens in proptest::collection::vec((value(), 1u64..0x3000, value()), 1..4),
            shapes in proptest::collection::vec(proptest::collection::vec(shape(), 0..3), 1..4),
            (src_at, size, dst_at) in (any::<u64>(), 0u64..0x3000, any::<u64>()),
            mach_form in any::<bool>(),
        ) {
            let width = if w64 { Width::W64 } else { Width::W32 };
            let page = if big_pages { 16384 } else { 4096 };
            let mut env = VecEnv::new(width, page, wasm_pages);
            for (i, b) in env.bytes.iter_mut().enumerate() {
                *b = (i * 7 % 251) as u8;
            }
            for ((a, n, b), shapes) in opens.into_iter().zip(shapes) {
                sync(&mut env, ME);
                open_windows(&mut env.vm, Some(a), n, b);
                apply(&mut env, shapes);
            }
            let [(rlo, rhi), (wlo, whi)] = env.vm.windows();
            if rlo == rhi || wlo == whi {
                // A change closed one (or no copy could open it): nothing to serve in wasm.
                return Ok(());
            }
            // A range inside each window (the wasm test: lo <= addr < hi, addr + size <= hi).
            let size = size.min(rhi - rlo).min(whi - wlo);
            let src = rlo + src_at % (rhi - rlo - size + 1);
            let dst = wlo + dst_at % (whi - wlo - size + 1);
            let mut expected = env.bytes.clone();
            let (s, d) = (src as usize, dst as usize);
            expected.copy_within(s..s + size as usize, d);
            let form = if mach_form { Form::MachVm } else { Form::Vm };
            let out = call(&mut env, ME, &copy_call(form, TASK_SELF_NAME, src, size, dst));
            prop_assert_eq!(out, Outcome::Kr(KERN_SUCCESS));
            prop_assert_eq!(&env.bytes, &expected);
        }

        /// Whenever a fast path says a call succeeds, the full path agrees, with the same
        /// effect on memory.
        #[test]
        fn a_fast_yes_is_the_full_paths_answer(
            w64 in any::<bool>(),
            big_pages in any::<bool>(),
            wasm_pages in 1u64..=4,
            shapes in proptest::collection::vec(shape(), 0..6),
            mach_form in any::<bool>(),
            port in prop_oneof![4 => Just(TASK_SELF_NAME), 1 => Just(HOST_SELF_NAME), 1 => Just(0x303u32)],
            (src, size, dst) in (value(), prop_oneof![3 => 0u64..0x3000, 1 => value()], value()),
            ptr in value(),
        ) {
            let width = if w64 { Width::W64 } else { Width::W32 };
            let page = if big_pages { 16384 } else { 4096 };
            let mut env = VecEnv::new(width, page, wasm_pages);
            for (i, b) in env.bytes.iter_mut().enumerate() {
                *b = (i * 7 % 251) as u8;
            }
            apply(&mut env, shapes);
            let form = if mach_form { Form::MachVm } else { Form::Vm };
            let aw = form.address_width(width);
            if copy_succeeds(&env.vm, port, src, size, dst, aw) {
                let mut expected = env.bytes.clone();
                if size != 0 {
                    let (s, d) = (src as usize, dst as usize);
                    expected.copy_within(s..s + size as usize, d);
                }
                let out = call(&mut env, ME, &copy_call(form, port, src, size, dst));
                prop_assert_eq!(out, Outcome::Kr(KERN_SUCCESS));
                prop_assert_eq!(&env.bytes, &expected);
            }
            let word = width.bytes();
            if allows_fast(&env.vm, ptr, word, VM_PROT_WRITE) {
                let c = Call::HostPageSize { host: HOST_SELF_NAME, size_ptr: ptr };
                prop_assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
                let mut got = [0u8; 8];
                got[..word as usize].copy_from_slice(&env.bytes[ptr as usize..(ptr + word) as usize]);
                prop_assert_eq!(u64::from_le_bytes(got), page);
            }
        }
    }
}
