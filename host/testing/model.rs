//! The reference model: a second, deliberately simple implementation of spec §3 (what the ABI
//! does with scalar parameters) and §4 (the decision table of every call), with the decisions
//! of `docs/semantics.md`. It is the oracle of the differential tests and the fuzz targets.
//!
//! Each task is a `Vec<u8>` of memory and a `Vec<Option<PageAttrs>>` with one entry per page of
//! the *current* memory size (`None` = unallocated; every page past the memory size is
//! unallocated). Every check walks the pages one by one in address order, and every wrap-around
//! test is done in `u128`, where nothing overflows. The model never panics on any [`Call`]: a
//! call that needs pages at or past the map limit fails as the spec says before anything is
//! allocated, and a growth the process cannot allocate answers `KERN_RESOURCE_SHORTAGE` (as a
//! refused grow does in semantics.md) with nothing changed.
//!
//! Conventions, stated once:
//!
//! - Every pointer of a call, every address and size of a [`Form::Vm`] call and
//!   `mach_vm_write`'s `data` (a `vm_offset_t`) is truncated to the caller's word first, as the
//!   wasm signature would; a [`Form::MachVm`] address or size is taken whole (64 bits).
//! - "Wraps" is `start + size >= 2^width`, "`e` wraps to 0" is
//!   `round(start + size) >= 2^width`, where the width is the call's address width
//!   ([`Form::address_width`] of the *caller's* width); a scalar parameter `[p, p + n)` wraps when
//!   `p + n >= 2^guest bits`.
//! - Target ranges are rounded with the target's page size and checked against the target's
//!   map and table; caller buffers and scalar parameters with the caller's.
//! - In-out parameters are read before anything else (before the task is resolved: the MIG
//!   stub reads them to build its message); out-parameters are stored only on `KERN_SUCCESS`,
//!   after the call's effects, in parameter order.
//! - Deallocated pages keep their bytes in the model; a page is zeroed when it is allocated
//!   again (semantics.md), so only allocated pages' bytes are meaningful to compare.
//! - A `vm_allocate(ANYWHERE)` (and `vm_read`'s buffer) is placed below both the map limit and
//!   `2^width` of its out-parameter, so that the address it returns fits (this matters only
//!   for a 32-bit guest's `vm_allocate` on a 64-bit task). It may end exactly at `2^width`
//!   when the map does (a 32-bit memory of 4 GiB), a range that a `FIXED` allocation, or a
//!   word-sized vm_deallocate / vm_protect, would reject as wrapping.
//! - The "`e` wraps to 0" rule applies where the spec states it (vm_copy's ranges, hence
//!   vm_read's source and vm_read_overwrite's two ranges; vm_write's destination; vm_protect;
//!   vm_deallocate); vm_write's caller buffer and scalar parameters only check `start + size`.
//! - vm_region of a word-sized call fails with `KERN_INVALID_ADDRESS` when the region's end is
//!   `2^32` or more for a 32-bit guest, i.e. whenever it reaches the top of a 4 GiB memory.
//! - [`ParamFault::reason`] is the model's own wording: compare the other fields.
//!
//! [`Form::Vm`]: crate::abi::Form::Vm
//! [`Form::MachVm`]: crate::abi::Form::MachVm
//! [`Form::address_width`]: crate::abi::Form::address_width

mod entries;

use std::fmt;

use crate::abi::KERN_NOT_SUPPORTED;
use crate::abi::{
    region_flavor, KernReturn, VmProt, HOST_SELF_NAME, KERN_INVALID_ADDRESS, KERN_INVALID_ARGUMENT,
    KERN_NO_SPACE, KERN_PROTECTION_FAILURE, KERN_RESOURCE_SHORTAGE, KERN_SUCCESS, MACH_PORT_DEAD,
    MACH_PORT_NULL, MACH_SEND_INVALID_DEST, MACH_SEND_INVALID_MEMORY, TASK_SELF_NAME,
    VM_FLAGS_ANYWHERE, VM_FLAGS_OVERWRITE, VM_FLAGS_USER_ALLOCATE, VM_PROT_ALL, VM_PROT_COPY,
    VM_PROT_NONE, VM_PROT_READ, VM_PROT_WRITE,
};
use crate::abi::{Call, MachPort, Outcome, PageAttrs, ParamFault, VmFlags, VmInherit, Width};
use crate::abi::{
    KERN_FAILURE, KERN_INVALID_HOST, KERN_INVALID_TASK, MACH_SEND_INVALID_RIGHT,
    VM_BEHAVIOR_CAN_REUSE, VM_BEHAVIOR_DEFAULT, VM_BEHAVIOR_DONTNEED, VM_BEHAVIOR_FREE,
    VM_BEHAVIOR_REUSABLE, VM_BEHAVIOR_REUSE, VM_BEHAVIOR_RSEQNTL, VM_BEHAVIOR_WILLNEED,
    VM_BEHAVIOR_ZERO_WIRED_PAGES, VM_REGION_BASIC_INFO_64, VM_SYNC_ASYNCHRONOUS,
    VM_SYNC_CONTIGUOUS, VM_SYNC_SYNCHRONOUS,
};
use crate::abi::{SM_EMPTY, SM_PRIVATE, SM_TRUESHARED, VM_REGION_EXTENDED_INFO};

/// The wasm page: memories grow by whole multiples of it.
const WASM_PAGE: u128 = 65536;

/// `x` rounded down to a multiple of `p`.
fn trunc(x: u128, p: u64) -> u128 {
    x - x % u128::from(p)
}

/// `x` rounded up to a multiple of `p` (`x < 2^66`, so this cannot overflow).
fn round(x: u128, p: u64) -> u128 {
    trunc(x + u128::from(p) - 1, p)
}

/// Why a page check failed, with the address of the first bad page.
enum Bad {
    /// The page is at or past the map limit.
    Outside(u128),
    /// The page is inside the map but unallocated.
    Unallocated(u128),
    /// The page is allocated but its `cur` protection lacks the needed bits.
    Denied(u128),
}

impl Bad {
    /// The return code of a vm_copy-style check: INVALID_ADDRESS or PROTECTION_FAILURE.
    fn kr(&self) -> KernReturn {
        match self {
            Bad::Outside(_) | Bad::Unallocated(_) => KERN_INVALID_ADDRESS,
            Bad::Denied(_) => KERN_PROTECTION_FAILURE,
        }
    }

    /// A reason for people, for a [`ParamFault`].
    fn reason(&self, need: VmProt) -> String {
        match self {
            Bad::Outside(a) => format!("page {a:#x} is outside the map"),
            Bad::Unallocated(a) => format!("page {a:#x} is unallocated"),
            Bad::Denied(a) if need == VM_PROT_READ => format!("page {a:#x} is not readable"),
            Bad::Denied(a) => format!("page {a:#x} is not writable"),
        }
    }
}

/// A scalar out-parameter to store once the call succeeded.
struct Store {
    /// the spec's name of the parameter.
    param: &'static str,
    /// Where, in the caller's memory (already truncated to the caller's width).
    ptr: u64,
    /// The little-endian bytes.
    bytes: Vec<u8>,
}

impl Store {
    /// A `nbytes`-byte (4 or 8) little-endian integer.
    fn word(param: &'static str, ptr: u64, value: u64, nbytes: u64) -> Store {
        let bytes = if nbytes == 4 {
            (value as u32).to_le_bytes().to_vec()
        } else {
            value.to_le_bytes().to_vec()
        };
        Store { param, ptr, bytes }
    }
}

/// What a call handler ends with: the out-parameters to store (the call succeeded), or the
/// outcome to return as is (a failing return code, or a trap on an in-out parameter).
type Handled = Result<Vec<Store>, Outcome>;

/// A failing return code.
fn fail<T>(kr: KernReturn) -> Result<T, Outcome> {
    Err(Outcome::Kr(kr))
}

/// One task: its memory, its page table, its port namespace.
#[derive(Clone)]
struct Task {
    width: Width,
    page_size: u64,
    map_limit: u128,
    memory: Vec<u8>,
    /// One entry per page of the current memory size.
    pages: Vec<Option<PageAttrs>>,
    /// The namespace's own names (`0x303`, `0x403`, ... as slots are taken): send rights
    /// to tasks and memory entries.
    rights: Vec<entries::Slot>,
    /// A range of bytes holding every byte of `memory` written since the task was made or
    /// restarted (empty: none).
    written: std::ops::Range<usize>,
    /// Which pages are resident in the host's memory, as [`Model::set_resident`] last said
    /// (a fact of the host, not of the model; missing pages are not resident).
    resident: Vec<bool>,
    /// The largest resident size `task_info` reported.
    resident_peak: u64,
    /// The largest footprint (resident, less volatile purgeable) `task_info` reported.
    footprint_peak: u64,
    /// Purgeable objects by id: state (0 nonvolatile, 1 volatile, 2 empty) and whether
    /// `VM_PURGABLE_DEBUG_EMPTY` was asked.
    objects: std::collections::BTreeMap<u32, (i32, bool)>,
    /// The last object id given.
    last_object: u32,
    /// Pages of purgeable objects emptied so far.
    purged: u64,
    /// The memory can share pages (spec §8); not state.
    can_share: bool,
    /// Byte ranges zeroed by emptying purgeable objects during the running call, for the
    /// model to show through every other mapping of their shared objects; not state.
    zeroed: Vec<(usize, usize)>,
}

/// Tasks are equal when their state is: what was written since when is not state.
impl PartialEq for Task {
    fn eq(&self, o: &Task) -> bool {
        (self.width, self.page_size, self.map_limit) == (o.width, o.page_size, o.map_limit)
            && self.memory == o.memory
            && self.pages == o.pages
            && self.rights == o.rights
            && self.resident_peak == o.resident_peak
            && self.footprint_peak == o.footprint_peak
            && self.objects == o.objects
            && self.last_object == o.last_object
            && self.purged == o.purged
    }
}

impl Eq for Task {}

/// The smallest range that holds every index of `a` and of `b` (an empty range holds none).
pub(crate) fn cover(
    a: std::ops::Range<usize>,
    b: std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a,
        (true, false) => b,
        (false, false) => a.start.min(b.start)..a.end.max(b.end),
    }
}

impl Task {
    /// Notes that the bytes `[start, end)` of the memory were written.
    fn wrote(&mut self, start: usize, end: usize) {
        self.written = cover(self.written.clone(), start..end);
    }

    /// The state of the page with index `index` (any index: past the memory size, unallocated).
    fn attrs(&self, index: u128) -> Option<PageAttrs> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.pages.get(i).copied())
            .flatten()
    }

    /// Pages touched by `[start, end)` (`start < end`), in address order: each must be inside
    /// the map, allocated, and have every bit of `need` in `cur`.
    ///
    /// Terminates quickly for any range: the first page past the memory size fails.
    fn check(&self, start: u128, end: u128, need: VmProt) -> Result<(), Bad> {
        let p = u128::from(self.page_size);
        let mut a = trunc(start, self.page_size);
        while a < end {
            if a >= self.map_limit {
                return Err(Bad::Outside(a));
            }
            match self.attrs(a / p) {
                None => return Err(Bad::Unallocated(a)),
                Some(x) if x.cur & need != need => return Err(Bad::Denied(a)),
                Some(_) => {}
            }
            a += p;
        }
        Ok(())
    }

    /// `mach_vm_page_query`'s disposition and reference count of page `index`: 0 and 0
    /// unallocated; `PRESENT | REF` when resident (else 0) and 1 allocated.
    fn disposition(&self, index: u128) -> (i32, i32) {
        match self.attrs(index) {
            None => (0, 0),
            Some(_) => {
                let resident = usize::try_from(index)
                    .ok()
                    .and_then(|i| self.resident.get(i).copied())
                    .unwrap_or(false);
                (if resident { 0x1 | 0x4 } else { 0 }, 1)
            }
        }
    }

    /// The number of regions: maximal runs of allocated pages with equal attributes.
    fn run_count(&self) -> usize {
        (0..self.pages.len())
            .filter(|&i| self.pages[i].is_some() && (i == 0 || self.pages[i - 1] != self.pages[i]))
            .count()
    }

    /// Empties purgeable object `object`: its pages are zero, its state `EMPTY`. Returns the
    /// pages emptied.
    fn empty_object(&mut self, object: u32) -> u64 {
        let p = self.page_size as usize;
        let mut pages = 0;
        for i in 0..self.pages.len() {
            if self.pages[i].is_some_and(|a| a.object == object) {
                self.memory[i * p..(i + 1) * p].fill(0);
                self.wrote(i * p, (i + 1) * p);
                self.zeroed.push((i * p, (i + 1) * p));
                pages += 1;
            }
        }
        self.purged += pages;
        if let Some(o) = self.objects.get_mut(&object) {
            o.0 = 2;
        }
        pages
    }

    /// Empties every volatile purgeable object; returns the pages emptied.
    fn empty_volatile(&mut self) -> u64 {
        let volatile: Vec<u32> = self
            .objects
            .iter()
            .filter(|(_, o)| o.0 == 1)
            .map(|(&id, _)| id)
            .collect();
        volatile.into_iter().map(|id| self.empty_object(id)).sum()
    }

    /// The state of page `index`'s purgeable object: `None` unallocated or not purgeable.
    fn purgeable_state(&self, index: usize) -> Option<i32> {
        let a = self.pages.get(index).copied().flatten()?;
        self.objects.get(&a.object).map(|o| o.0)
    }

    /// Allocated pages, and allocated pages resident.
    fn page_counts(&self) -> (u64, u64) {
        let mut counts = (0, 0);
        for i in 0..self.pages.len() {
            let (d, r) = self.disposition(i as u128);
            counts.0 += u64::from(r != 0);
            counts.1 += u64::from(d != 0);
        }
        counts
    }

    /// spec §3 for a scalar parameter `[ptr, ptr + len)` of this (the caller's) task.
    fn scalar_ok(&self, ptr: u64, len: u64, need: VmProt) -> Result<(), String> {
        let end = u128::from(ptr) + u128::from(len);
        if end >= self.width.limit() {
            return Err(format!(
                "[{ptr:#x}, {end:#x}) wraps the {}-bit address space",
                self.width.bits()
            ));
        }
        self.check(u128::from(ptr), end, need)
            .map_err(|b| b.reason(need))
    }

    /// spec §4 vm_copy rows 2-4 for one range of this task: `start + size` wraps or
    /// `round(start + size)` wraps to 0 -> INVALID_ADDRESS; then the pages, in order.
    /// `size > 0`.
    fn check_copy_range(
        &self,
        start: u64,
        size: u64,
        aw: Width,
        need: VmProt,
    ) -> Result<(), Outcome> {
        let end = u128::from(start) + u128::from(size);
        if end >= aw.limit() || round(end, self.page_size) >= aw.limit() {
            return fail(KERN_INVALID_ADDRESS);
        }
        self.check(u128::from(start), end, need)
            .map_err(|b| Outcome::Kr(b.kr()))
    }

    /// Grows the memory to `new_len` bytes (a multiple of 64 KiB, at most the map limit, not
    /// less than the current size); the new pages are zero and unallocated. Fails, changing
    /// nothing, when the process cannot allocate it.
    fn grow_to(&mut self, new_len: u128) -> Result<(), ()> {
        let new_len = usize::try_from(new_len).map_err(|_| ())?;
        let new_pages = new_len / self.page_size as usize;
        self.memory
            .try_reserve_exact(new_len - self.memory.len())
            .map_err(|_| ())?;
        self.pages
            .try_reserve_exact(new_pages - self.pages.len())
            .map_err(|_| ())?;
        let old_len = self.memory.len();
        self.memory.resize(new_len, 0);
        self.pages.resize(new_pages, None);
        self.wrote(old_len, new_len);
        Ok(())
    }

    /// The lowest run of `n >= 1` free pages whose end is at most `limit` bytes and whose
    /// first page has no bit of `mask` (in pages): its first page. Each run of free pages
    /// is tried at its first page so aligned, `(start + mask) & !mask`.
    fn find_free(&self, n: u128, limit: u128, mask: u128) -> Option<u128> {
        let limit_pages = limit / u128::from(self.page_size);
        let fits = |start: u128, end: u128| {
            let aligned = (start + mask) & !mask;
            (aligned + n <= end.min(limit_pages)).then_some(aligned)
        };
        // Every page past the table is free: the last run of free pages goes on to the limit.
        let mut run_start = 0u128;
        for (i, page) in self.pages.iter().enumerate() {
            if page.is_some() {
                if let Some(found) = fits(run_start, i as u128) {
                    return Some(found);
                }
                run_start = i as u128 + 1;
            }
        }
        fits(run_start, limit_pages)
    }

    /// Grows the memory by whole wasm pages to hold `end` bytes, when it does not. A growth
    /// the process refuses empties the task's volatile objects and is tried once more; then
    /// `KERN_RESOURCE_SHORTAGE`.
    fn grow_for(&mut self, end: u128) -> Result<(), Outcome> {
        if end > self.memory.len() as u128 {
            let to = round(end, WASM_PAGE as u64);
            let grown =
                self.grow_to(to).is_ok() || (self.empty_volatile() > 0 && self.grow_to(to).is_ok());
            if !grown {
                return fail(KERN_RESOURCE_SHORTAGE);
            }
        }
        Ok(())
    }

    /// Where `n` new pages go, as `vm_allocate`'s placement with `mask` (bytes) and
    /// `vm_remap`'s and `vm_map`'s flags (`ANYWHERE` 0x1, `OVERWRITE` 0x4000) say, for `hint`
    /// in width `aw`: the first page, or the placement's error.
    fn place(&self, n: u128, hint: u64, mask: u64, flags: u32, aw: Width) -> Result<u128, Outcome> {
        let p = self.page_size;
        let pp = u128::from(p);
        if flags & 1 != 0 {
            return match self.find_free(n, self.map_limit.min(aw.limit()), u128::from(mask) / pp) {
                Some(f) => Ok(f),
                None => fail(KERN_NO_SPACE),
            };
        }
        let start = trunc(u128::from(hint), p);
        if start & u128::from(mask) != 0 {
            return fail(KERN_NO_SPACE);
        }
        let e = start + n * pp;
        if e >= aw.limit() || e > self.map_limit {
            return fail(KERN_INVALID_ADDRESS);
        }
        let f = start / pp;
        let blocked = |x: PageAttrs| flags & 0x4000 == 0 || x.permanent;
        if (f..f + n).any(|i| self.attrs(i).is_some_and(blocked)) {
            return fail(KERN_NO_SPACE);
        }
        Ok(f)
    }

    /// Maps the pages `[first, first + n)` (inside the map) as new memory: zero, DEFAULT
    /// attributes but for purgeable object `object` (0: none), growing the memory by whole
    /// wasm pages when they pass its end. A growth the process refuses empties the task's
    /// volatile objects and is tried once more.
    fn map_new(&mut self, first: u128, n: u128, object: u32) -> Result<(), Outcome> {
        let p = u128::from(self.page_size);
        let end = (first + n) * p;
        self.grow_for(end)?;
        // Every index below is inside the memory now.
        for i in first..first + n {
            self.pages[i as usize] = Some(PageAttrs {
                object,
                ..PageAttrs::DEFAULT
            });
        }
        self.memory[(first * p) as usize..end as usize].fill(0);
        self.wrote((first * p) as usize, end as usize);
        Ok(())
    }
}

/// Without the memory's bytes: the page table as runs of equal states.
impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.page_size as usize;
        let mut runs = Vec::new();
        let mut i = 0;
        while i < self.pages.len() {
            let state = self.pages[i];
            let mut j = i + 1;
            while j < self.pages.len() && self.pages[j] == state {
                j += 1;
            }
            runs.push(match state {
                None => format!("{:#x}..{:#x} unallocated", i * p, j * p),
                Some(a) => format!(
                    "{:#x}..{:#x} {}/{} inherit {}",
                    i * p,
                    j * p,
                    a.cur,
                    a.max,
                    a.inherit
                ),
            });
            i = j;
        }
        f.debug_struct("Task")
            .field("width", &self.width)
            .field("page_size", &self.page_size)
            .field("map_limit", &self.map_limit)
            .field("memory_len", &self.memory.len())
            .field("pages", &runs)
            .field("rights", &self.rights)
            .finish()
    }
}

/// The reference model: a set of tasks (memories, page tables, port namespaces) on which
/// [`Call`]s run as spec §3-§4 and `docs/semantics.md` say.
///
/// `Clone` and `PartialEq` cover everything (memories, page tables, namespaces); `Debug` shows
/// each task's page table as runs, without the memory's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    tasks: Vec<Task>,
    /// The memory entries (spec §8) by id, `None` once their last name went.
    entries: Vec<Option<entries::Entry>>,
    /// The bytes the live entries hold, and the most they may (the kernel's `entry_limit`).
    entry_bytes: u64,
    entry_limit: u64,
    /// The last shared object id given (spec §8): ids count up from 1 across the tasks.
    last_share: u32,
    /// Every id was given once: new ones are the lowest no page has.
    shares_wrapped: bool,
}

impl Model {
    /// A model with no task.
    pub fn new() -> Model {
        Model {
            tasks: Vec::new(),
            entries: Vec::new(),
            entry_bytes: 0,
            entry_limit: 4 << 30,
            last_share: 0,
            shares_wrapped: false,
        }
    }

    /// Says whether `task`'s memory can share pages (a backed memory, spec §8): `vm_remap`
    /// answers `KERN_NOT_SUPPORTED` when the target's or the source's cannot. Tasks are made
    /// unable to.
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn set_can_share(&mut self, task: usize, can: bool) {
        self.tasks[task].can_share = can;
    }

    /// Adds a task whose memory has `initial_bytes` (a multiple of 65536) allocated with
    /// `cur` RW, `max` ALL, inheritance COPY; page size `page_size` (a power of two that
    /// divides 65536 and is at least 4096: 4096 or 16384 in practice); map limit `map_limit`
    /// bytes (a multiple of 65536, at most `2^width`). Returns the task's index.
    ///
    /// # Panics
    ///
    /// When the configuration breaks one of these rules or `initial_bytes > map_limit`.
    pub fn add_task(
        &mut self,
        width: Width,
        page_size: u64,
        initial_bytes: u64,
        map_limit: u128,
    ) -> usize {
        assert!(
            page_size.is_power_of_two() && page_size >= 4096 && 65536u64.is_multiple_of(page_size),
            "page size {page_size:#x} is not a power of two in [4096, 65536]"
        );
        assert!(
            u128::from(initial_bytes).is_multiple_of(WASM_PAGE) && map_limit.is_multiple_of(WASM_PAGE),
            "initial size {initial_bytes:#x} and map limit {map_limit:#x} must be multiples of 64 KiB"
        );
        assert!(
            u128::from(initial_bytes) <= map_limit && map_limit <= width.limit(),
            "initial size {initial_bytes:#x} <= map limit {map_limit:#x} <= 2^{} does not hold",
            width.bits()
        );
        let len = usize::try_from(initial_bytes).expect("initial size fits in usize");
        self.tasks.push(Task {
            width,
            page_size,
            map_limit,
            memory: vec![0; len],
            pages: vec![Some(PageAttrs::DEFAULT); len / page_size as usize],
            rights: Vec::new(),
            written: 0..0,
            resident: Vec::new(),
            resident_peak: 0,
            footprint_peak: 0,
            objects: std::collections::BTreeMap::new(),
            last_object: 0,
            purged: 0,
            can_share: false,
            zeroed: Vec::new(),
        });
        self.tasks.len() - 1
    }

    /// Says which of `task`'s pages are resident in the host's memory (`mincore` of the
    /// real task's memory, one entry per page from page 0): what `mach_vm_page_query`,
    /// `task_info` and `host_statistics64` report of residency, which the model cannot know.
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn set_resident(&mut self, task: usize, resident: Vec<bool>) {
        self.tasks[task].resident = resident;
    }

    /// Inserts into `from`'s namespace a send right to task `to` and returns its name:
    /// `0x303`, `0x403`, ... in insertion order; the existing name when `from` already names
    /// `to`; `0x103` (the task's own port) when `to == from`.
    ///
    /// # Panics
    ///
    /// When `from` or `to` is not a task of this model.
    pub fn insert_send_right(&mut self, from: usize, to: usize) -> MachPort {
        assert!(to < self.tasks.len(), "no task {to}");
        if from == to {
            return TASK_SELF_NAME;
        }
        self.insert(from, entries::Held::Task(to))
            .expect("a namespace holds 65536 names")
    }

    /// Copies the send right task `from` names `name` into task `into`'s namespace (as the
    /// kernel's `copy_send_right`): its name there, `None` when `from` holds no such right.
    pub fn copy_send_right(
        &mut self,
        from: usize,
        name: MachPort,
        into: usize,
    ) -> Option<MachPort> {
        match name {
            TASK_SELF_NAME => Some(self.insert_send_right(into, from)),
            _ => match self.named(from, name)? {
                entries::Held::Task(to) if to == into => Some(TASK_SELF_NAME),
                held => self.insert(into, held),
            },
        }
    }

    /// The guest's own `memory.grow` by `delta` wasm pages: returns the old size in wasm
    /// pages, or `None` (memory.grow's -1, nothing changed) when the new size would pass the
    /// map limit (or the process cannot allocate it). The new pages are allocated with
    /// [`PageAttrs::DEFAULT`] and read as zero.
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn grow(&mut self, task: usize, delta: u64) -> Option<u64> {
        let t = &mut self.tasks[task];
        let old_len = t.memory.len() as u128;
        let new_len = old_len + u128::from(delta) * WASM_PAGE;
        if new_len > t.map_limit {
            return None;
        }
        let first_new = t.pages.len();
        t.grow_to(new_len).ok()?;
        for page in &mut t.pages[first_new..] {
            *page = Some(PageAttrs::DEFAULT);
        }
        Some((old_len / WASM_PAGE) as u64)
    }

    /// Runs one call made by task `caller`; the call's pointers are in `caller`'s memory.
    /// Returns what the guest sees: a return value, or a trap on a scalar parameter.
    ///
    /// Never panics, whatever the call's values.
    ///
    /// # Panics
    ///
    /// Only when `caller` is not a task of this model.
    pub fn call(&mut self, caller: usize, call: &Call) -> Outcome {
        let name = call.import_name();
        let w = self.tasks[caller].width;
        let handled = match *call {
            Call::TaskSelf => return Outcome::Port(TASK_SELF_NAME),
            Call::HostSelf => return Outcome::Port(HOST_SELF_NAME),
            Call::HostPageSize { host: _, size_ptr } => Ok(vec![Store::word(
                "size",
                w.truncate(size_ptr),
                self.tasks[caller].page_size,
                w.bytes(),
            )]),
            Call::Allocate {
                form,
                task,
                addr_ptr,
                size,
                flags,
            } => {
                let aw = form.address_width(w);
                self.allocate(
                    caller,
                    name,
                    aw,
                    task,
                    w.truncate(addr_ptr),
                    aw.truncate(size),
                    flags,
                )
            }
            Call::Deallocate {
                form,
                task,
                addr,
                size,
            } => {
                let aw = form.address_width(w);
                self.deallocate(caller, aw, task, aw.truncate(addr), aw.truncate(size))
            }
            Call::Protect {
                form,
                task,
                addr,
                size,
                set_max,
                prot,
            } => {
                let aw = form.address_width(w);
                self.protect(
                    caller,
                    aw,
                    task,
                    aw.truncate(addr),
                    aw.truncate(size),
                    set_max,
                    prot,
                )
            }
            Call::Copy {
                form,
                task,
                src,
                size,
                dst,
            } => {
                let aw = form.address_width(w);
                self.copy(
                    caller,
                    aw,
                    task,
                    aw.truncate(src),
                    aw.truncate(size),
                    aw.truncate(dst),
                )
            }
            Call::Read {
                form,
                task,
                addr,
                size,
                data_ptr,
                count_ptr,
            } => {
                let aw = form.address_width(w);
                self.read(
                    caller,
                    aw,
                    task,
                    aw.truncate(addr),
                    aw.truncate(size),
                    w.truncate(data_ptr),
                    w.truncate(count_ptr),
                )
            }
            Call::ReadOverwrite {
                form,
                task,
                addr,
                size,
                data,
                outsize_ptr,
            } => {
                let aw = form.address_width(w);
                self.read_overwrite(
                    caller,
                    aw,
                    task,
                    aw.truncate(addr),
                    aw.truncate(size),
                    aw.truncate(data),
                    w.truncate(outsize_ptr),
                )
            }
            Call::Write {
                form,
                task,
                addr,
                data,
                count,
            } => {
                let aw = form.address_width(w);
                // `data` is a vm_offset_t in both forms: the caller's word.
                self.write(caller, aw, task, aw.truncate(addr), w.truncate(data), count)
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
                let aw = form.address_width(w);
                let ptrs = [addr_ptr, size_ptr, info_ptr, count_ptr, object_name_ptr]
                    .map(|p| w.truncate(p));
                self.region(caller, name, aw, task, flavor, ptrs)
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
                let ptrs = [addr_ptr, size_ptr, info_ptr, count_ptr, object_name_ptr]
                    .map(|p| w.truncate(p));
                self.region(caller, name, w, task, flavor, ptrs)
            }
            Call::BehaviorSet {
                form,
                task,
                addr,
                size,
                behavior,
            } => {
                let aw = form.address_width(w);
                let (addr, size) = (aw.truncate(addr), aw.truncate(size));
                self.behavior_set(caller, aw, task, addr, size, behavior as i32)
            }
            Call::Inherit {
                form,
                task,
                addr,
                size,
                inheritance,
            } => {
                let aw = form.address_width(w);
                let (addr, size) = (aw.truncate(addr), aw.truncate(size));
                self.inherit(caller, aw, task, addr, size, inheritance)
            }
            Call::RegionRecurse {
                form,
                task,
                addr_ptr,
                size_ptr,
                depth_ptr,
                info_ptr,
                count_ptr,
            } => {
                let aw = form.address_width(w);
                let ptrs =
                    [addr_ptr, size_ptr, depth_ptr, info_ptr, count_ptr].map(|p| w.truncate(p));
                self.region_recurse(caller, name, aw, task, ptrs)
            }
            Call::MakeEntry {
                form,
                task,
                size_ptr,
                offset,
                permission,
                handle_ptr,
                parent,
            } => {
                let aw = form.address_width(w);
                let ptrs = [size_ptr, handle_ptr].map(|p| w.truncate(p));
                let offset = aw.truncate(offset);
                self.make_entry(caller, name, aw, task, ptrs, offset, permission, parent)
            }
            Call::Map {
                form,
                task,
                addr_ptr,
                size,
                mask,
                flags,
                object,
                offset,
                copy,
                cur,
                max,
                inheritance,
            } => {
                let aw = form.address_width(w);
                let values = [size, mask, offset].map(|v| aw.truncate(v));
                let words = [flags, copy, inheritance];
                let ptr = w.truncate(addr_ptr);
                self.map(
                    caller,
                    name,
                    aw,
                    (task, object),
                    ptr,
                    values,
                    words,
                    [cur, max],
                )
            }
            Call::PortDeallocate { task, name: port } => self.port_deallocate(caller, task, port),
            Call::Remap {
                form,
                target_task,
                addr_ptr,
                size,
                mask,
                flags,
                src_task,
                src_addr,
                copy,
                cur_ptr,
                max_ptr,
                inheritance,
            } => {
                let aw = form.address_width(w);
                let ptrs = [addr_ptr, cur_ptr, max_ptr].map(|p| w.truncate(p));
                let (size, mask, src) =
                    (aw.truncate(size), aw.truncate(mask), aw.truncate(src_addr));
                self.remap(
                    caller,
                    name,
                    aw,
                    (target_task, src_task),
                    ptrs,
                    [size, mask, src],
                    [flags, copy, inheritance],
                )
            }
            Call::Msync {
                form,
                task,
                addr,
                size,
                flags,
            } => {
                let aw = form.address_width(w);
                self.msync(
                    caller,
                    aw,
                    task,
                    aw.truncate(addr),
                    aw.truncate(size),
                    flags,
                )
            }
            Call::PurgableControl {
                form,
                task,
                addr,
                control,
                state_ptr,
            } => {
                let aw = form.address_width(w);
                let at = [aw.truncate(addr), w.truncate(state_ptr)];
                self.purgable_control(caller, name, task, at, control as i32)
            }
            Call::PageQuery {
                form,
                task,
                addr,
                disposition_ptr,
                ref_count_ptr,
            } => {
                let aw = form.address_width(w);
                let ptrs = [disposition_ptr, ref_count_ptr].map(|p| w.truncate(p));
                self.page_query(caller, aw, task, aw.truncate(addr), ptrs)
            }
            Call::PageInfo {
                task,
                addr,
                flavor,
                info_ptr,
                count_ptr,
            } => {
                let ptrs = [info_ptr, count_ptr].map(|p| w.truncate(p));
                self.page_info(caller, name, task, addr, flavor, ptrs)
            }
            Call::PageRangeQuery {
                task,
                addr,
                size,
                dispositions,
                count_ptr,
            } => self.page_range_query(
                caller,
                name,
                task,
                [addr, size, dispositions],
                w.truncate(count_ptr),
            ),
            Call::TaskInfo {
                task,
                flavor,
                info_ptr,
                count_ptr,
            } => {
                let ptrs = [info_ptr, count_ptr].map(|p| w.truncate(p));
                self.task_info(caller, name, task, flavor, ptrs)
            }
            Call::HostStatistics64 {
                host,
                flavor,
                info_ptr,
                count_ptr,
            } => {
                let ptrs = [info_ptr, count_ptr].map(|p| w.truncate(p));
                self.host_statistics64(caller, name, host, flavor, ptrs)
            }
            Call::Wire { host, task, .. } => {
                if !self.holds(caller, host) {
                    fail(MACH_SEND_INVALID_DEST)
                } else if task != MACH_PORT_NULL
                    && task != MACH_PORT_DEAD
                    && !self.holds(caller, task)
                {
                    fail(MACH_SEND_INVALID_RIGHT)
                } else {
                    fail(KERN_INVALID_HOST)
                }
            }
        };
        let outcome = match handled {
            Err(outcome) => outcome,
            Ok(stores) => self.store(caller, name, stores),
        };
        // Purgeable pages emptied on the way are empty through every mapping.
        for t in 0..self.tasks.len() {
            for (a, b) in std::mem::take(&mut self.tasks[t].zeroed) {
                let p = self.tasks[t].page_size as usize;
                for page in (a / p)..b.div_ceil(p) {
                    self.show_through(t, page * p, p);
                }
            }
        }
        outcome
    }

    /// The bytes of `task`'s memory (its current size).
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn memory(&self, task: usize) -> &[u8] {
        &self.tasks[task].memory
    }

    /// The bytes of `task`'s memory, writable (the guest's own stores; the page table is not
    /// consulted). They all count as written (see [`Model::written`]).
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn memory_mut(&mut self, task: usize) -> &mut [u8] {
        let t = &mut self.tasks[task];
        t.wrote(0, t.memory.len());
        &mut t.memory
    }

    /// Writes `bytes` at `addr` of `task`'s memory (the guest's own store; the page table
    /// is not consulted).
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model or the bytes are not all inside its memory.
    pub fn poke(&mut self, task: usize, addr: usize, bytes: &[u8]) {
        self.copy_in(task, addr as u64, bytes);
    }

    /// A range of `task`'s memory that holds every byte written since the task was made or
    /// [`Model::restart`]ed: by a call (stores, copies, zeroed new pages), a grow, or through
    /// [`Model::memory_mut`] (all of it) or [`Model::poke`]. Empty when none was.
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn written(&self, task: usize) -> std::ops::Range<usize> {
        self.tasks[task].written.clone()
    }

    /// Puts `task` back as [`Model::add_task`] makes it, over its current memory size, but
    /// for its bytes, which it leaves as they are: every page allocated with the default
    /// attributes, no send rights, nothing written.
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn restart(&mut self, task: usize) {
        self.drop_names(task);
        let t = &mut self.tasks[task];
        t.pages.fill(Some(PageAttrs::DEFAULT));
        t.written = 0..0;
    }

    /// The state of page `page_index` (of `task`'s page size) of `task`: `None` when it is
    /// unallocated, which every page past the memory size is.
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn page(&self, task: usize, page_index: u64) -> Option<PageAttrs> {
        self.tasks[task].attrs(u128::from(page_index))
    }

    /// Counts shared object ids from 1 again, as a new model does, once no page of any task
    /// belongs to a shared object (after every task was [restarted](Model::restart)).
    pub fn restart_share_ids(&mut self) {
        if !self.any_shared() && !self.any_entry() {
            self.last_share = 0;
            self.shares_wrapped = false;
        }
    }

    /// True when a page of any task belongs to a shared object (spec §8): a write through
    /// it shows through every other mapping of the object, in any task.
    pub fn any_shared(&self) -> bool {
        self.tasks
            .iter()
            .any(|t| t.pages.iter().any(|p| p.is_some_and(|a| a.share != 0)))
    }

    /// The page size of `task` (what `host_page_size` returns to it).
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn page_size(&self, task: usize) -> u64 {
        self.tasks[task].page_size
    }

    /// The width of `task`'s memory.
    ///
    /// # Panics
    ///
    /// When `task` is not a task of this model.
    pub fn width(&self, task: usize) -> Width {
        self.tasks[task].width
    }

    // ---- the ABI (spec §3) ----

    /// Resolves port name `name` in `caller`'s namespace to a task (spec §1).
    fn resolve(&self, caller: usize, port: MachPort) -> Result<usize, Outcome> {
        let name = port.0;
        if port == TASK_SELF_NAME {
            return Ok(caller);
        }
        if port == HOST_SELF_NAME {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let _ = name;
        match self.named(caller, port) {
            Some(entries::Held::Task(t)) => Ok(t),
            // A memory entry is no task, as the host port is not.
            Some(entries::Held::Entry(_)) => fail(KERN_INVALID_ARGUMENT),
            None => fail(MACH_SEND_INVALID_DEST),
        }
    }

    /// True when `name` names a send right in `caller`'s namespace (a task's, an entry's
    /// or the host's).
    fn holds(&self, caller: usize, name: MachPort) -> bool {
        name == HOST_SELF_NAME || name == TASK_SELF_NAME || self.named(caller, name).is_some()
    }

    /// A shared object id no object has had yet; after 2^32 - 1 of them, the lowest id no
    /// page of any task and no live memory entry has.
    fn new_share(&mut self) -> u32 {
        self.last_share = match self.last_share.checked_add(1) {
            Some(id) if !self.shares_wrapped => id,
            _ => {
                self.shares_wrapped = true;
                let used = |id: u32| {
                    let of = |p: &Option<PageAttrs>| p.is_some_and(|a| a.share == id);
                    self.tasks.iter().any(|t| t.pages.iter().any(of)) || self.entries_naming(id) > 0
                };
                (1..=u32::MAX).find(|&id| !used(id)).unwrap_or(1)
            }
        };
        self.last_share
    }

    /// Reads the `nbytes`-byte (4 or 8) little-endian in-out parameter `param` at `ptr` in
    /// `caller`'s memory, or traps.
    fn read_param(
        &self,
        caller: usize,
        call: &'static str,
        param: &'static str,
        ptr: u64,
        nbytes: u64,
    ) -> Result<u64, Outcome> {
        let t = &self.tasks[caller];
        if let Err(reason) = t.scalar_ok(ptr, nbytes, VM_PROT_READ) {
            return Err(Outcome::Trap(ParamFault {
                call,
                param,
                addr: ptr,
                write: false,
                reason,
            }));
        }
        let mut bytes = [0u8; 8];
        let (p, n) = (ptr as usize, nbytes as usize);
        bytes[..n].copy_from_slice(&t.memory[p..p + n]);
        Ok(u64::from_le_bytes(bytes))
    }

    /// Stores the out-parameters of a successful call in order; the first that cannot be
    /// stored traps, the ones before it stay stored.
    fn store(&mut self, caller: usize, call: &'static str, stores: Vec<Store>) -> Outcome {
        for s in stores {
            let t = &self.tasks[caller];
            if let Err(reason) = t.scalar_ok(s.ptr, s.bytes.len() as u64, VM_PROT_WRITE) {
                return Outcome::Trap(ParamFault {
                    call,
                    param: s.param,
                    addr: s.ptr,
                    write: true,
                    reason,
                });
            }
            self.copy_in(caller, s.ptr, &s.bytes);
        }
        Outcome::Kr(KERN_SUCCESS)
    }

    /// Copies `n` bytes from `from`'s `src` to `to`'s `dst`: the whole source read first,
    /// then written ([`Model::copy_in`]); both ranges were checked to be in allocated pages.
    fn copy_bytes(&mut self, from: usize, src: u64, to: usize, dst: u64, n: u64) {
        let (src, n) = (src as usize, n as usize);
        let bytes = self.tasks[from].memory[src..src + n].to_vec();
        self.copy_in(to, dst, &bytes);
    }

    /// Writes `bytes` at `dst` of task `to` (inside its memory), as a copyout does: page by
    /// page in address order, each page's part shown at once through every other mapping
    /// of its shared object (so where two pages of the range map one object page, the
    /// later one's bytes are what every mapping reads).
    fn copy_in(&mut self, to: usize, dst: u64, bytes: &[u8]) {
        let p = self.tasks[to].page_size as usize;
        let dst = dst as usize;
        let mut done = 0;
        while done < bytes.len() {
            let at = dst + done;
            let n = (p - at % p).min(bytes.len() - done);
            self.tasks[to].memory[at..at + n].copy_from_slice(&bytes[done..done + n]);
            self.tasks[to].wrote(at, at + n);
            self.show_through(to, at, n);
            done += n;
        }
    }

    /// Copies task `t`'s bytes `[at, at + n)` (inside one page) to the same place of every
    /// other page, in any task, that maps the same offsets of the same shared object.
    fn show_through(&mut self, t: usize, at: usize, n: usize) {
        let p = self.tasks[t].page_size as usize;
        let page = at / p;
        let Some(a) = self.tasks[t].pages.get(page).copied().flatten() else {
            return;
        };
        if a.share == 0 {
            return;
        }
        let offset = (page as u64 * p as u64).wrapping_add(a.share_offset);
        let bytes = self.tasks[t].memory[at..at + n].to_vec();
        let within = at % p;
        self.show_in_entries(a.share, offset, p as u64, within, &bytes);
        for (u, task) in self.tasks.iter_mut().enumerate() {
            if task.page_size as usize != p {
                continue;
            }
            for j in 0..task.pages.len() {
                let Some(b) = task.pages[j] else { continue };
                let same = b.share == a.share
                    && (j as u64 * p as u64).wrapping_add(b.share_offset) == offset;
                if same && (u, j) != (t, page) {
                    let start = j * p + within;
                    task.memory[start..start + n].copy_from_slice(&bytes);
                    task.wrote(start, start + n);
                }
            }
        }
    }

    // ---- the calls (spec §4) ----

    /// vm_allocate / mach_vm_allocate.
    #[allow(clippy::too_many_arguments)]
    fn allocate(
        &mut self,
        caller: usize,
        call: &'static str,
        aw: Width,
        task: MachPort,
        addr_ptr: u64,
        size: u64,
        flags: VmFlags,
    ) -> Handled {
        let flags = flags.0;
        let hint = self.read_param(caller, call, "address", addr_ptr, aw.bytes())?;
        let t = self.resolve(caller, task)?;
        if flags & !VM_FLAGS_USER_ALLOCATE.0 != 0 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if size == 0 {
            return Ok(vec![Store::word("address", addr_ptr, 0, aw.bytes())]);
        }
        let target = &self.tasks[t];
        let p = target.page_size;
        let rsize = round(u128::from(size), p);
        if rsize >= aw.limit() {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let n = rsize / u128::from(p);
        let first = if flags & VM_FLAGS_ANYWHERE.0 != 0 {
            match target.find_free(n, target.map_limit.min(aw.limit()), 0) {
                Some(first) => first,
                None => return fail(KERN_NO_SPACE),
            }
        } else {
            let start = trunc(u128::from(hint), p);
            let end = start + rsize;
            if end >= aw.limit() || end > target.map_limit {
                return fail(KERN_INVALID_ADDRESS);
            }
            let first = start / u128::from(p);
            let overwrite = flags & VM_FLAGS_OVERWRITE.0 != 0;
            // Pages past the table are unallocated: only the table's part can overlap.
            let table_end = (first + n).min(target.pages.len() as u128);
            if !overwrite && (first..table_end).any(|i| target.attrs(i).is_some()) {
                return fail(KERN_NO_SPACE);
            }
            first
        };
        self.fresh_memory(t, first, n, flags & 2 != 0)?; // VM_FLAGS_PURGABLE
        let start = (first * u128::from(p)) as u64;
        Ok(vec![Store::word("address", addr_ptr, start, aw.bytes())])
    }

    /// Maps `t`'s pages `[first, first + n)` as new zero memory (see `Task::map_new`), a
    /// purgeable object of its own, nonvolatile, when `purgeable`.
    fn fresh_memory(
        &mut self,
        t: usize,
        first: u128,
        n: u128,
        purgeable: bool,
    ) -> Result<(), Outcome> {
        let target = &mut self.tasks[t];
        let object = if purgeable { target.last_object + 1 } else { 0 };
        target.map_new(first, n, object)?;
        if purgeable {
            target.last_object = object;
            target.objects.insert(object, (0, false));
        }
        Ok(())
    }

    /// vm_deallocate / mach_vm_deallocate.
    fn deallocate(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        size: u64,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        let end = u128::from(addr) + u128::from(size);
        if end >= aw.limit() {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if size == 0 {
            return Ok(vec![]);
        }
        let target = &mut self.tasks[t];
        let p = target.page_size;
        let e = round(end, p);
        if e >= aw.limit() || e > target.map_limit {
            return Ok(vec![]); // XNU: a guard exception; nothing is removed.
        }
        let first = trunc(u128::from(addr), p) / u128::from(p);
        let last = (e / u128::from(p)).min(target.pages.len() as u128);
        for i in first..last {
            target.pages[i as usize] = None; // holes stay holes
        }
        Ok(vec![])
    }

    /// vm_protect / mach_vm_protect.
    #[allow(clippy::too_many_arguments)]
    fn protect(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        size: u64,
        set_max: u32,
        prot: VmProt,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        let end = u128::from(addr) + u128::from(size);
        if end >= aw.limit() || !prot.without(VM_PROT_ALL | VM_PROT_COPY).is_none() {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if size == 0 {
            return Ok(vec![]);
        }
        let target = &mut self.tasks[t];
        let p = target.page_size;
        let (s, e) = (trunc(u128::from(addr), p), round(end, p));
        if e >= aw.limit() {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let copy = prot.intersects(VM_PROT_COPY);
        let prot = prot.without(VM_PROT_COPY);
        let max_of = |x: PageAttrs| if copy { x.max | VM_PROT_WRITE } else { x.max };
        // Check every page first.
        let mut a = s;
        while a < e {
            if a >= target.map_limit {
                return fail(KERN_INVALID_ADDRESS);
            }
            match target.attrs(a / u128::from(p)) {
                None => return fail(KERN_INVALID_ADDRESS),
                Some(x) if max_of(x) & prot != prot => return fail(KERN_PROTECTION_FAILURE),
                Some(_) => {}
            }
            a += u128::from(p);
        }
        // Then apply (every page of [s, e) is allocated, hence inside the table).
        for i in s / u128::from(p)..e / u128::from(p) {
            let x = target.pages[i as usize].as_mut().expect("checked above");
            x.max = max_of(*x);
            if copy {
                // A private copy: not the purgeable object, nor the shared object, any more.
                x.object = 0;
                x.share = 0;
                x.share_offset = 0;
                x.shared = false;
            }
            if set_max != 0 {
                x.max = prot;
                x.cur &= prot;
            } else {
                x.cur = prot;
            }
        }
        Ok(vec![])
    }

    /// vm_copy / mach_vm_copy: source and destination in the target task.
    fn copy(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        src: u64,
        size: u64,
        dst: u64,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        if size == 0 {
            return Ok(vec![]);
        }
        self.tasks[t].check_copy_range(src, size, aw, VM_PROT_READ)?;
        self.tasks[t].check_copy_range(dst, size, aw, VM_PROT_WRITE)?;
        self.copy_bytes(t, src, t, dst, size);
        Ok(vec![])
    }

    /// vm_read / mach_vm_read: from the target into a fresh allocation in the caller.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        size: u64,
        data_ptr: u64,
        count_ptr: u64,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        // `*data` is a vm_offset_t: the caller's word, in both forms.
        let word = self.tasks[caller].width;
        if size > u64::from(u32::MAX) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if size == 0 {
            return Ok(vec![
                Store::word("data", data_ptr, 0, word.bytes()),
                Store::word("count", count_ptr, 0, 4),
            ]);
        }
        self.tasks[t].check_copy_range(addr, size, aw, VM_PROT_READ)?;
        // A copy of the whole source pages `[trunc(addr), round(addr + size))` (the
        // source's page size), with `*data` at the copy of `addr`; the caller's pages hold
        // it, zero after it.
        let ps = self.tasks[t].page_size;
        let offset = addr % ps;
        let len = round(u128::from(offset) + u128::from(size), ps);
        let c = &self.tasks[caller];
        let pc = c.page_size;
        let n = round(len, pc) / u128::from(pc);
        let first = match c.find_free(n, c.map_limit.min(word.limit()), 0) {
            Some(first) => first,
            None => return fail(KERN_NO_SPACE),
        };
        self.tasks[caller].map_new(first, n, 0)?;
        let start = (first * u128::from(pc)) as u64;
        self.copy_bytes(t, addr - offset, caller, start, len as u64);
        Ok(vec![
            Store::word("data", data_ptr, start + offset, word.bytes()),
            Store::word("count", count_ptr, size, 4),
        ])
    }

    /// vm_read_overwrite / mach_vm_read_overwrite: from the target into the caller's `data`.
    #[allow(clippy::too_many_arguments)]
    fn read_overwrite(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        size: u64,
        data: u64,
        outsize_ptr: u64,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        if size == 0 {
            return Ok(vec![Store::word("outsize", outsize_ptr, 0, aw.bytes())]);
        }
        self.tasks[t].check_copy_range(addr, size, aw, VM_PROT_READ)?;
        self.tasks[caller].check_copy_range(data, size, aw, VM_PROT_WRITE)?;
        self.copy_bytes(t, addr, caller, data, size);
        Ok(vec![Store::word("outsize", outsize_ptr, size, aw.bytes())])
    }

    /// vm_write / mach_vm_write: from the caller's `data` into the target.
    fn write(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        data: u64,
        count: u32,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        let count = u64::from(count);
        if count == 0 {
            return Ok(vec![]);
        }
        let end = u128::from(data) + u128::from(count);
        if end >= aw.limit()
            || self.tasks[caller]
                .check(u128::from(data), end, VM_PROT_READ)
                .is_err()
        {
            return fail(MACH_SEND_INVALID_MEMORY);
        }
        self.tasks[t].check_copy_range(addr, count, aw, VM_PROT_WRITE)?;
        self.copy_bytes(caller, data, t, addr, count);
        Ok(vec![])
    }

    /// vm_region_64 / mach_vm_region. `ptrs`: address, size, info, count, object_name.
    fn region(
        &mut self,
        caller: usize,
        call: &'static str,
        aw: Width,
        task: MachPort,
        flavor: u32,
        ptrs: [u64; 5],
    ) -> Handled {
        let [addr_ptr, size_ptr, info_ptr, count_ptr, object_name_ptr] = ptrs;
        let addr = self.read_param(caller, call, "address", addr_ptr, aw.bytes())?;
        let count = self.read_param(caller, call, "count", count_ptr, 4)?;
        let t = self.resolve(caller, task)?;
        // Flavor 9 fills the 36-byte `vm_region_basic_info_64` (count 9), flavor 10 the
        // 32-byte `vm_region_basic_info` (count 8, a 32-bit offset).
        let Some((want, info_len)) = region_flavor(flavor as i32) else {
            return fail(KERN_INVALID_ARGUMENT);
        };
        if count < u64::from(want) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let (first, last, attrs) = self.region_at(t, addr, aw)?;
        let p = self.tasks[t].page_size;
        let start = first as u128 * u128::from(p);
        let size = (last - first) as u128 * u128::from(p);
        let mut info = vec![0u8; info_len];
        info[0..4].copy_from_slice(&attrs.cur.0.to_le_bytes());
        if flavor as i32 == VM_REGION_EXTENDED_INFO {
            let (mode, refs, resident) = self.sharing(t, first, last, attrs);
            info[8..12].copy_from_slice(&resident.to_le_bytes());
            info[24..28].copy_from_slice(&refs.to_le_bytes());
            info[31] = mode;
        } else {
            Model::basic_info(&mut info, flavor, start as u64, attrs);
        }
        Ok(vec![
            Store::word("address", addr_ptr, start as u64, aw.bytes()),
            Store::word("size", size_ptr, size as u64, aw.bytes()),
            Store {
                param: "info",
                ptr: info_ptr,
                bytes: info,
            },
            Store::word("count", count_ptr, u64::from(want), 4),
            Store::word("object_name", object_name_ptr, 0, 4),
        ])
    }

    /// Fills a `vm_region_basic_info_64` (flavor 9) or `vm_region_basic_info` (10) of a
    /// region starting at `start` with `attrs`, its protection at 0 already.
    fn basic_info(info: &mut [u8], flavor: u32, start: u64, attrs: PageAttrs) {
        info[4..8].copy_from_slice(&attrs.max.0.to_le_bytes());
        info[8..12].copy_from_slice(&attrs.inherit.0.to_le_bytes());
        // shared @12: XNU's is_shared (shared by a remap or an entry); reserved @16 is 0; the
        // offset @20 is the first page's place in that object (0 without one), 8 bytes in
        // flavor 9 and 4 in flavor 10, and the behavior follows it; user_wired_count is 0.
        info[12] = u8::from(attrs.shared);
        let offset = if attrs.share == 0 {
            0
        } else {
            start.wrapping_add(attrs.share_offset)
        };
        let behavior_at = if flavor as i32 == VM_REGION_BASIC_INFO_64 {
            info[20..28].copy_from_slice(&offset.to_le_bytes());
            28
        } else {
            info[20..24].copy_from_slice(&(offset as u32).to_le_bytes());
            24
        };
        info[behavior_at..behavior_at + 4].copy_from_slice(&attrs.behavior.to_le_bytes());
    }

    /// The region of task `t` at or after `addr` (its pages `[first, last)`, all with
    /// `attrs`), or `KERN_INVALID_ADDRESS` when there is none, or it ends past `aw`.
    fn region_at(
        &self,
        t: usize,
        addr: u64,
        aw: Width,
    ) -> Result<(usize, usize, PageAttrs), Outcome> {
        let target = &self.tasks[t];
        let p = target.page_size;
        let pages = &target.pages;
        // The page of `*address`; past the table (or past usize) there is no region.
        let from = usize::try_from(addr / p).unwrap_or(usize::MAX);
        let Some(j) = (from..pages.len()).find(|&j| pages[j].is_some()) else {
            return fail(KERN_INVALID_ADDRESS);
        };
        let attrs = pages[j];
        let mut first = j;
        while first > 0 && pages[first - 1] == attrs {
            first -= 1;
        }
        let mut last = j + 1;
        while last < pages.len() && pages[last] == attrs {
            last += 1;
        }
        let end = last as u128 * u128::from(p);
        if end >= aw.limit() {
            return fail(KERN_INVALID_ADDRESS);
        }
        Ok((first, last, attrs.expect("found allocated")))
    }

    /// How task `t`'s region `[first, last)` with `attrs` is shared (spec §8): its share
    /// mode, its object's references (every region, in every task, and every live memory
    /// entry naming it; 1 for private memory with a resident page or purgeable, 0 for
    /// other private memory) and its resident pages.
    fn sharing(&self, t: usize, first: usize, last: usize, attrs: PageAttrs) -> (u8, u32, u32) {
        let task = &self.tasks[t];
        let resident = (first..last)
            .filter(|&i| task.resident.get(i).copied().unwrap_or(false))
            .count() as u32;
        if attrs.share == 0 {
            return if resident == 0 && attrs.object == 0 {
                (SM_EMPTY, 0, 0)
            } else {
                (SM_PRIVATE, 1, resident)
            };
        }
        let mut refs = 0u64;
        for task in &self.tasks {
            let mut prev = None;
            for &page in &task.pages {
                if page != prev && page.is_some_and(|a| a.share == attrs.share) {
                    refs += 1;
                }
                prev = page;
            }
        }
        refs += self.entries_naming(attrs.share);
        let mode = if refs > 1 { SM_TRUESHARED } else { SM_PRIVATE };
        (mode, u32::try_from(refs).unwrap_or(u32::MAX), resident)
    }

    /// `vm_region_recurse_64` / `mach_vm_region_recurse` (spec §8): `ptrs` are `address`,
    /// `size`, `nesting_depth`, `info` and `count`.
    fn region_recurse(
        &mut self,
        caller: usize,
        call: &'static str,
        aw: Width,
        task: MachPort,
        ptrs: [u64; 5],
    ) -> Handled {
        let [addr_ptr, size_ptr, depth_ptr, info_ptr, count_ptr] = ptrs;
        let addr = self.read_param(caller, call, "address", addr_ptr, aw.bytes())?;
        self.read_param(caller, call, "nesting_depth", depth_ptr, 4)?;
        let count = self
            .read_param(caller, call, "count", count_ptr, 4)?
            .min(19);
        let t = self.resolve(caller, task)?;
        if count < 12 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let (first, last, a) = self.region_at(t, addr, aw)?;
        let p = self.tasks[t].page_size;
        let start = first as u64 * p;
        let size = (last - first) as u64 * p;
        let (mode, refs, resident) = self.sharing(t, first, last, a);
        let offset = if a.share == 0 {
            0
        } else {
            start.wrapping_add(a.share_offset)
        };
        // vm_region_submap_info_64 (76 bytes) or its short form (48).
        let mut info = vec![0u8; 76];
        info[0..4].copy_from_slice(&a.cur.0.to_le_bytes());
        info[4..8].copy_from_slice(&a.max.0.to_le_bytes());
        info[8..12].copy_from_slice(&a.inherit.0.to_le_bytes());
        info[12..20].copy_from_slice(&offset.to_le_bytes());
        let out: u64 = if count < 16 {
            info[24..28].copy_from_slice(&refs.to_le_bytes());
            info[31] = mode;
            info[36..40].copy_from_slice(&a.behavior.to_le_bytes());
            info[40..44].copy_from_slice(&a.share.to_le_bytes());
            12
        } else {
            info[24..28].copy_from_slice(&resident.to_le_bytes());
            info[40..44].copy_from_slice(&refs.to_le_bytes());
            info[47] = mode;
            info[52..56].copy_from_slice(&a.behavior.to_le_bytes());
            info[56..60].copy_from_slice(&a.share.to_le_bytes());
            info[68..76].copy_from_slice(&u64::from(a.share).to_le_bytes());
            match count {
                16 => 16,
                17 | 18 => 17,
                _ => 19,
            }
        };
        info.truncate(out as usize * 4);
        Ok(vec![
            Store::word("address", addr_ptr, start, aw.bytes()),
            Store::word("size", size_ptr, size, aw.bytes()),
            Store::word("nesting_depth", depth_ptr, 0, 4),
            Store {
                param: "info",
                ptr: info_ptr,
                bytes: info,
            },
            Store::word("count", count_ptr, out, 4),
        ])
    }

    /// vm_behavior_set / mach_vm_behavior_set (spec §9).
    /// `vm_remap` / `mach_vm_remap` (spec §8, the notes' remap table in 10002's legacy
    /// mode), page by page: `ptrs` are `target_address`, `cur_protection` and
    /// `max_protection`; `values` the size, mask and source address; `words` the flags,
    /// `copy` and the inheritance.
    #[allow(clippy::too_many_arguments)]
    fn remap(
        &mut self,
        caller: usize,
        call: &'static str,
        aw: Width,
        (target_task, src_task): (MachPort, MachPort),
        [addr_ptr, cur_ptr, max_ptr]: [u64; 3],
        [size, mask, addr]: [u64; 3],
        [flags, copy, inheritance]: [u32; 3],
    ) -> Handled {
        let hint = self.read_param(caller, call, "target_address", addr_ptr, aw.bytes())?;
        let t = self.resolve(caller, target_task)?;
        // The source travels in the body: a name not held fails the send; null, dead and
        // the host port are no map.
        let src = if [MACH_PORT_NULL, MACH_PORT_DEAD, HOST_SELF_NAME].contains(&src_task) {
            None
        } else if self.holds(caller, src_task) {
            self.resolve(caller, src_task).ok()
        } else {
            return fail(MACH_SEND_INVALID_RIGHT);
        };
        let Some(s) = src else {
            return fail(KERN_INVALID_ARGUMENT);
        };
        // VM_FLAGS_USER_REMAP: ANYWHERE, RANDOM_ADDR, RESILIENT_CODESIGN, RESILIENT_MEDIA,
        // OVERWRITE, RETURN_DATA_ADDR.
        if flags & !(1 | 8 | 0x20 | 0x40 | 0x4000 | 0x10_0000) != 0 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let p = self.tasks[s].page_size;
        let end = u128::from(addr) + u128::from(size);
        if size != 0 && round(end, p) > u128::from(u64::MAX) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if inheritance > 2 || size == 0 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if flags & 0x40 != 0 && copy == 0 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if self.tasks[t].page_size != p {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let pp = u128::from(p);
        let (first, last) = (trunc(u128::from(addr), p) / pp, round(end, p) / pp);
        let n = last - first;
        if (first..last)
            .any(|i| i * pp >= self.tasks[s].map_limit || self.tasks[s].attrs(i).is_none())
        {
            return fail(KERN_INVALID_ADDRESS);
        }
        // The target.
        let to = self.tasks[t].place(n, hint, mask, flags, aw)?;
        if !self.tasks[t].can_share || !self.tasks[s].can_share {
            return fail(KERN_NOT_SUPPORTED);
        }
        let copy = copy != 0;
        let (mut cur, mut max) = (VM_PROT_ALL, VM_PROT_ALL);
        for i in first..last {
            let a = self.tasks[s].pages[i as usize].expect("allocated");
            cur &= a.cur;
            max &= a.max;
        }
        // Sharing gives the source's private pages one new object, whose offset 0 is the
        // first page of the range.
        if !copy
            && (first..last).any(|i| self.tasks[s].pages[i as usize].is_some_and(|a| a.share == 0))
        {
            self.new_share();
            let base = (first * pp) as u64;
            for i in first..last {
                let a = self.tasks[s].pages[i as usize].as_mut().expect("allocated");
                if a.share == 0 {
                    a.share = self.last_share;
                    a.share_offset = 0u64.wrapping_sub(base);
                }
            }
        }
        if !copy {
            for i in first..last {
                let a = self.tasks[s].pages[i as usize].as_mut().expect("allocated");
                a.shared = true;
            }
        }
        // The source's pages were given a new backing too (see `Model::written`).
        self.tasks[s].wrote((first * pp) as usize, (last * pp) as usize);
        // Grow the target, then read the source (a refused growth may have emptied some).
        self.tasks[t].grow_for((to + n) * pp)?;
        let (sa, ta, len) = ((first * pp) as usize, (to * pp) as usize, (n * pp) as usize);
        let bytes = self.tasks[s].memory[sa..sa + len].to_vec();
        let olds: Vec<PageAttrs> = (first..last)
            .map(|i| self.tasks[s].pages[i as usize].expect("allocated"))
            .collect();
        // RESILIENT_CODESIGN: at most read, in the pages and the answer.
        let limit = if flags & 0x20 != 0 {
            VM_PROT_READ
        } else {
            VM_PROT_ALL
        };
        (cur, max) = (cur & limit, max & limit);
        let target = &mut self.tasks[t];
        for (k, x) in olds.into_iter().enumerate() {
            let moved = ((first * pp) as u64).wrapping_sub((to * pp) as u64);
            target.pages[(to as usize) + k] = Some(PageAttrs {
                cur: x.cur & limit,
                max: x.max & limit,
                inherit: VmInherit(inheritance),
                // An alias of a permanent page is permanent; a copy is not.
                permanent: x.permanent && !copy,
                behavior: x.behavior,
                object: if !copy && s == t { x.object } else { 0 },
                share: if copy { 0 } else { x.share },
                share_offset: if copy {
                    0
                } else {
                    x.share_offset.wrapping_add(moved)
                },
                shared: !copy,
            });
        }
        target.memory[ta..ta + len].copy_from_slice(&bytes);
        target.wrote(ta, ta + len);
        let out = (to * pp) as u64 + (addr & (p - 1));
        Ok(vec![
            Store::word("target_address", addr_ptr, out, aw.bytes()),
            Store::word("cur_protection", cur_ptr, cur.0 as u32 as u64, 4),
            Store::word("max_protection", max_ptr, max.0 as u32 as u64, 4),
        ])
    }

    /// `vm_inherit`: the range's allocated pages take the inheritance; holes and pages past
    /// the map are passed over (XNU clamps the range to the map and walks its entries).
    fn inherit(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        size: u64,
        inheritance: u32,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        let end = u128::from(addr) + u128::from(size);
        if end >= aw.limit() || inheritance > 2 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if size == 0 {
            return Ok(vec![]);
        }
        let target = &mut self.tasks[t];
        let p = u128::from(target.page_size);
        let first = u128::from(addr) / p;
        let last = (end.div_ceil(p) * p % aw.limit()) / p;
        let mut i = first;
        while i < last && i * p < target.map_limit {
            if let Some(Some(a)) = target.pages.get_mut(i as usize) {
                a.inherit = crate::abi::VmInherit(inheritance);
            }
            i += 1;
        }
        Ok(vec![])
    }

    fn behavior_set(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        size: u64,
        behavior: i32,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        let end = u128::from(addr) + u128::from(size);
        if end >= aw.limit() {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if size == 0 {
            return Ok(vec![]);
        }
        let target = &mut self.tasks[t];
        let p = target.page_size;
        let s = trunc(u128::from(addr), p);
        // XNU rounds the end before it looks at the range: it may wrap to 0.
        let e = round(end, p) % aw.limit();
        if s > e || e > target.map_limit {
            return fail(KERN_NO_SPACE);
        }
        // XNU's range check: the page at `s` is mapped, and so is every page up to `e`.
        let mapped = target.check(s, e.max(s + 1), VM_PROT_NONE).is_ok();
        match behavior {
            VM_BEHAVIOR_DEFAULT..=VM_BEHAVIOR_RSEQNTL => {
                if !mapped {
                    return fail(KERN_INVALID_ADDRESS);
                }
                let pu = u128::from(p);
                for i in s / pu..e / pu {
                    if let Some(a) = target.pages[i as usize].as_mut() {
                        a.behavior = behavior;
                    }
                }
            }
            VM_BEHAVIOR_WILLNEED
            | VM_BEHAVIOR_ZERO_WIRED_PAGES
            | VM_BEHAVIOR_REUSE
            | VM_BEHAVIOR_CAN_REUSE => {
                if !mapped {
                    return fail(KERN_INVALID_ADDRESS);
                }
            }
            // A contiguous msync of the range: nothing to walk when the end wrapped.
            VM_BEHAVIOR_DONTNEED | VM_BEHAVIOR_FREE => {
                if s < e && target.check(s, e, VM_PROT_NONE).is_err() {
                    return fail(KERN_INVALID_ADDRESS);
                }
            }
            VM_BEHAVIOR_REUSABLE => {
                if !mapped {
                    return fail(KERN_INVALID_ADDRESS);
                }
                if s < e && target.check(s, e, VM_PROT_WRITE).is_err() {
                    return fail(KERN_PROTECTION_FAILURE);
                }
            }
            _ => return fail(KERN_INVALID_ARGUMENT),
        }
        Ok(vec![])
    }

    /// vm_purgable_control / mach_vm_purgable_control (spec §9). `at`: the address (in the
    /// call's width) and the `*state` pointer.
    fn purgable_control(
        &mut self,
        caller: usize,
        call: &'static str,
        task: MachPort,
        at: [u64; 2],
        control: i32,
    ) -> Handled {
        let [addr, state_ptr] = at;
        let state = self.read_param(caller, call, "state", state_ptr, 4)? as u32 as i32;
        let t = self.resolve(caller, task)?;
        let stored = |v: i32| {
            Ok(vec![Store::word(
                "state",
                state_ptr,
                u64::from(v as u32),
                4,
            )])
        };
        match control {
            0 | 1 => {}
            2 => {
                for task in &mut self.tasks {
                    task.empty_volatile();
                }
                return stored(state);
            }
            _ => return fail(KERN_INVALID_ARGUMENT),
        }
        // Bits SET_STATE accepts: state, order, ordering, behavior, group, debug, no aging.
        let all_masks = 0x3 | 0x10 | 0x20 | 0x40 | 0x700 | 0x3000 | 0x1_0000;
        if control == 0 && state & !all_masks != 0 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let target = &mut self.tasks[t];
        let index = addr / target.page_size;
        let Some(attrs) = target.attrs(u128::from(index)) else {
            return fail(KERN_INVALID_ADDRESS);
        };
        if !attrs.cur.intersects(VM_PROT_WRITE) && control == 0 {
            return fail(KERN_PROTECTION_FAILURE);
        }
        let Some(&(old, mut volatile_empty)) = target.objects.get(&attrs.object) else {
            return fail(KERN_INVALID_ARGUMENT);
        };
        if control == 0 {
            if state & 0x1000 != 0 {
                volatile_empty = true;
            }
            target.objects.insert(attrs.object, (old, volatile_empty));
            let new = match state & 3 {
                1 if old == 2 || volatile_empty => 2,
                s => s,
            };
            match new {
                3 => return fail(KERN_INVALID_ARGUMENT),
                2 => {
                    target.empty_object(attrs.object);
                }
                s => {
                    target.objects.insert(attrs.object, (s, volatile_empty));
                }
            }
        }
        stored(old)
    }

    /// vm_map_page_query / mach_vm_page_query (spec §9). `ptrs`: disposition, ref_count.
    fn page_query(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        ptrs: [u64; 2],
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        let target = &self.tasks[t];
        let p = target.page_size;
        let s = trunc(u128::from(addr), p);
        if s + u128::from(p) >= aw.limit() {
            return fail(KERN_INVALID_ADDRESS);
        }
        let (d, r) = target.disposition(s / u128::from(p));
        Ok(vec![
            Store::word("disposition", ptrs[0], u64::from(d as u32), 4),
            Store::word("ref_count", ptrs[1], u64::from(r as u32), 4),
        ])
    }

    /// mach_vm_page_info (spec §9). `ptrs`: info, count.
    fn page_info(
        &mut self,
        caller: usize,
        call: &'static str,
        task: MachPort,
        addr: u64,
        flavor: u32,
        ptrs: [u64; 2],
    ) -> Handled {
        let [info_ptr, count_ptr] = ptrs;
        let count = self.read_param(caller, call, "count", count_ptr, 4)?;
        let t = self.resolve(caller, task)?;
        let count = count.min(32);
        if flavor != 1 || !(count == 8 || count == 7) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let target = &self.tasks[t];
        let p = target.page_size;
        let s = trunc(u128::from(addr), p);
        if s + u128::from(p) >= 1 << 64 {
            return fail(KERN_INVALID_ADDRESS);
        }
        let (d, r) = target.disposition(s / u128::from(p));
        let offset = if r != 0 { addr % p } else { 0 };
        let mut info = Vec::with_capacity(32);
        info.extend(d.to_le_bytes());
        info.extend(r.to_le_bytes());
        info.extend(0u64.to_le_bytes()); // object_id
        info.extend(offset.to_le_bytes());
        info.extend(0u64.to_le_bytes()); // depth and pad
        info.truncate(count as usize * 4);
        Ok(vec![
            Store {
                param: "info",
                ptr: info_ptr,
                bytes: info,
            },
            Store::word("count", count_ptr, count, 4),
        ])
    }

    /// mach_vm_page_range_query (spec §9): XNU's loop, step for step. `args`: address,
    /// size, dispositions (all 64-bit).
    fn page_range_query(
        &mut self,
        caller: usize,
        call: &'static str,
        task: MachPort,
        args: [u64; 3],
        count_ptr: u64,
    ) -> Handled {
        let [addr, mut size, mut out] = args;
        let count = self.read_param(caller, call, "dispositions_count", count_ptr, 8)?;
        let t = self.resolve(caller, task)?;
        let Some(mut want) = count.checked_mul(4) else {
            return fail(KERN_INVALID_ARGUMENT);
        };
        let p = self.tasks[t].page_size;
        let start = u128::from(addr) - u128::from(addr) % u128::from(p);
        // `addr + size`, rounded, modulo 2^64.
        let end = round((u128::from(addr) + u128::from(size)) % (1 << 64), p) % (1 << 64);
        if end < start || end - start < u128::from(size) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if want == 0 || end == start {
            return Ok(vec![Store::word("dispositions_count", count_ptr, count, 8)]);
        }
        let mut first = start / u128::from(p);
        let mut chunk = (end - start).min(1 << 30) as u64;
        let mut total = 0;
        loop {
            let pages = chunk / p;
            let mut ints = Vec::new();
            for i in 0..pages {
                ints.extend(
                    self.tasks[t]
                        .disposition(first + u128::from(i))
                        .0
                        .to_le_bytes(),
                );
            }
            let n = want.min(pages * 4);
            // The copyout into the caller: its EFAULT (14) is the answer.
            let c = &self.tasks[caller];
            let end_out = u128::from(out) + u128::from(n);
            if end_out >= 1 << 64 || c.check(u128::from(out), end_out, VM_PROT_WRITE).is_err() {
                return fail(crate::abi::KERN_ABORTED);
            }
            self.copy_in(caller, out, &ints[..n as usize]);
            first += u128::from(chunk / p);
            want -= n;
            total += n;
            if want == 0 || chunk >= size {
                break;
            }
            out = out.wrapping_add(n);
            size -= chunk;
            chunk = (round(u128::from(size), p) as u64).min(1 << 30);
        }
        Ok(vec![Store::word(
            "dispositions_count",
            count_ptr,
            total / 4,
            8,
        )])
    }

    /// task_info (spec §9). `ptrs`: info, count.
    fn task_info(
        &mut self,
        caller: usize,
        call: &'static str,
        task: MachPort,
        flavor: u32,
        ptrs: [u64; 2],
    ) -> Handled {
        let [info_ptr, count_ptr] = ptrs;
        let count = self
            .read_param(caller, call, "count", count_ptr, 4)?
            .min(1024);
        let t = self.resolve(caller, task)?;
        let target = &mut self.tasks[t];
        let p = target.page_size;
        let (pages, resident_pages) = target.page_counts();
        let (virtual_size, resident) = (pages * p, resident_pages * p);
        // Pages of volatile or emptied purgeable objects, and those resident.
        let (mut volatile, mut volatile_resident) = (0, 0);
        for i in 0..target.pages.len() {
            if matches!(target.purgeable_state(i), Some(1 | 2)) {
                volatile += p;
                volatile_resident += p * u64::from(target.disposition(i as u128).0 != 0);
            }
        }
        let footprint = resident - volatile_resident;
        let (info, out): (Vec<u8>, u64) = match flavor {
            20 => {
                if count < 12 {
                    return fail(KERN_INVALID_ARGUMENT);
                }
                target.resident_peak = target.resident_peak.max(resident);
                target.footprint_peak = target.footprint_peak.max(footprint);
                let mut info = Vec::new();
                info.extend(virtual_size.to_le_bytes());
                info.extend(resident.to_le_bytes());
                info.extend(target.resident_peak.to_le_bytes());
                info.extend([0u8; 16]); // user_time, system_time
                info.extend(1i32.to_le_bytes()); // POLICY_TIMESHARE
                info.extend(0i32.to_le_bytes()); // suspend_count
                (info, 12)
            }
            22 | 23 => {
                let Some(rev) = [89u64, 87, 86, 84, 42, 38, 36]
                    .into_iter()
                    .find(|&c| c <= count)
                else {
                    return fail(KERN_INVALID_ARGUMENT);
                };
                target.resident_peak = target.resident_peak.max(resident);
                target.footprint_peak = target.footprint_peak.max(footprint);
                let peak = target.resident_peak;
                let mut info = Vec::new();
                info.extend(virtual_size.to_le_bytes());
                info.extend((target.run_count() as u32).to_le_bytes());
                info.extend((p as u32).to_le_bytes());
                info.extend(resident.to_le_bytes());
                info.extend(peak.to_le_bytes());
                info.extend([0u8; 16]); // device, device_peak
                info.extend(resident.to_le_bytes()); // internal
                info.extend(peak.to_le_bytes()); // internal_peak
                info.extend([0u8; 32]); // external, external_peak, reusable, reusable_peak
                let (pmap, virt) = if flavor == 23 {
                    (volatile_resident, volatile)
                } else {
                    (0, 0)
                };
                info.extend(pmap.to_le_bytes()); // purgeable_volatile_pmap
                info.extend(pmap.to_le_bytes()); // purgeable_volatile_resident
                info.extend(virt.to_le_bytes()); // purgeable_volatile_virtual
                info.extend([0u8; 24]); // compressed, compressed_peak, compressed_lifetime
                info.extend(footprint.to_le_bytes()); // phys_footprint
                info.extend(0u64.to_le_bytes()); // min_address
                info.extend((target.map_limit.min(u128::from(u64::MAX)) as u64).to_le_bytes());
                info.extend(target.footprint_peak.to_le_bytes()); // ledger_phys_footprint_peak
                info.resize(89 * 4, 0);
                info.truncate(rev as usize * 4);
                (info, rev)
            }
            _ => return fail(KERN_INVALID_ARGUMENT),
        };
        Ok(vec![
            Store {
                param: "info",
                ptr: info_ptr,
                bytes: info,
            },
            Store::word("count", count_ptr, out, 4),
        ])
    }

    /// host_statistics64 (spec §9). `ptrs`: info, count.
    fn host_statistics64(
        &mut self,
        caller: usize,
        call: &'static str,
        host: MachPort,
        flavor: u32,
        ptrs: [u64; 2],
    ) -> Handled {
        let [info_ptr, count_ptr] = ptrs;
        let count = self
            .read_param(caller, call, "count", count_ptr, 4)?
            .min(256);
        if host != HOST_SELF_NAME {
            return fail(if self.holds(caller, host) {
                KERN_INVALID_HOST
            } else {
                MACH_SEND_INVALID_DEST
            });
        }
        if flavor != 4 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if count < 24 {
            return fail(KERN_FAILURE);
        }
        let (mut free, mut resident, mut purgeable, mut purges) = (0u64, 0u64, 0u64, 0u64);
        for t in &self.tasks {
            let p = u128::from(t.page_size);
            let left =
                ((t.map_limit / p) as u64).saturating_sub(t.memory.len() as u64 / t.page_size);
            free = free.saturating_add(left);
            resident += t.page_counts().1;
            purges += t.purged;
            purgeable += (0..t.pages.len())
                .filter(|&i| t.purgeable_state(i) == Some(1) && t.disposition(i as u128).0 != 0)
                .count() as u64;
        }
        let natural = |v: u64| v.min(u64::from(u32::MAX)) as u32;
        let mut info = vec![0u8; 152];
        info[0..4].copy_from_slice(&natural(free).to_le_bytes());
        info[4..8].copy_from_slice(&natural(resident).to_le_bytes());
        info[80..88].copy_from_slice(&purges.to_le_bytes());
        info[88..92].copy_from_slice(&natural(purgeable).to_le_bytes());
        info[140..144].copy_from_slice(&natural(resident).to_le_bytes());
        let out = if count >= 38 { 38 } else { 24 };
        info.truncate(out * 4);
        Ok(vec![
            Store {
                param: "info",
                ptr: info_ptr,
                bytes: info,
            },
            Store::word("count", count_ptr, out as u64, 4),
        ])
    }

    /// vm_msync / mach_vm_msync (spec §9).
    fn msync(
        &mut self,
        caller: usize,
        aw: Width,
        task: MachPort,
        addr: u64,
        size: u64,
        flags: u32,
    ) -> Handled {
        if task == HOST_SELF_NAME
            || matches!(self.named(caller, task), Some(entries::Held::Entry(_)))
        {
            return fail(KERN_INVALID_TASK);
        }
        let t = self.resolve(caller, task)?;
        if flags & VM_SYNC_ASYNCHRONOUS != 0 && flags & VM_SYNC_SYNCHRONOUS != 0 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let target = &self.tasks[t];
        let p = target.page_size;
        let end = u128::from(addr) + u128::from(size);
        if size != 0 && (end >= aw.limit() || round(end, p) >= aw.limit()) {
            return fail(KERN_INVALID_ADDRESS);
        }
        // `[trunc(addr), round(addr + size))`, rounded before the size is looked at.
        let (s, e) = (trunc(u128::from(addr), p), round(end, p));
        if s < e && flags & VM_SYNC_CONTIGUOUS != 0 && target.check(s, e, VM_PROT_NONE).is_err() {
            return fail(KERN_INVALID_ADDRESS);
        }
        Ok(vec![])
    }
}

/// The model's own tests. The spec's rows run against the model in `tests/spec`
/// (`machvm::testing::Target`); the tests here hold what those rows do not reach: the edges
/// at exactly `2^width`, the memory's end and the map limit, out-parameters left untouched,
/// values outside the caller's width, tasks of different page sizes, and the model's
/// invariants under random calls.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Form;
    use crate::abi::*;

    const ME: MachPort = TASK_SELF_NAME;
    /// Initial memory of a test task: 4 wasm pages.
    const INIT: u64 = 0x4_0000;
    /// Map limit of a test task: 16 wasm pages.
    const MAP: u128 = 0x10_0000;
    /// Scratch out-parameters, in page 0.
    const SCR: u64 = 0x100;
    const SCR2: u64 = 0x180;
    const INFO: u64 = 0x200;
    const RW: VmProt = VM_PROT_DEFAULT;
    const R: VmProt = VM_PROT_READ;
    const W: VmProt = VM_PROT_WRITE;

    #[derive(Clone, Copy, Debug)]
    struct Cfg {
        w: Width,
        f: Form,
        ps: u64,
    }

    /// Every width, form and page size.
    fn cfgs() -> Vec<Cfg> {
        let mut v = Vec::new();
        for w in [Width::W32, Width::W64] {
            for f in [Form::Vm, Form::MachVm] {
                for ps in [4096, 16384] {
                    v.push(Cfg { w, f, ps });
                }
            }
        }
        v
    }

    fn ok() -> Outcome {
        Outcome::Kr(KERN_SUCCESS)
    }

    fn kr(k: KernReturn) -> Outcome {
        Outcome::Kr(k)
    }

    /// Asserts that two models are equal without printing whole memories.
    #[track_caller]
    fn assert_same(a: &Model, b: &Model) {
        if a == b {
            return;
        }
        for (i, (x, y)) in a.tasks.iter().zip(&b.tasks).enumerate() {
            if let Some(k) =
                (0..x.memory.len().min(y.memory.len())).find(|&k| x.memory[k] != y.memory[k])
            {
                panic!(
                    "task {i}: byte {k:#x} differs: {:#x} != {:#x}",
                    x.memory[k], y.memory[k]
                );
            }
            if let Some(k) =
                (0..x.pages.len().min(y.pages.len())).find(|&k| x.pages[k] != y.pages[k])
            {
                panic!(
                    "task {i}: page {k:#x} differs: {:?} != {:?}",
                    x.pages[k], y.pages[k]
                );
            }
            assert_eq!(
                x.memory.len(),
                y.memory.len(),
                "task {i}: memory sizes differ"
            );
            assert_eq!(x.rights, y.rights, "task {i}: namespaces differ");
        }
        panic!("models differ");
    }

    fn trap(o: &Outcome) -> &ParamFault {
        match o {
            Outcome::Trap(f) => f,
            r => panic!("expected a trap, got {r:?}"),
        }
    }

    fn attrs(cur: VmProt, max: VmProt) -> Option<PageAttrs> {
        Some(PageAttrs {
            cur,
            max,
            inherit: VM_INHERIT_COPY,
            permanent: false,
            behavior: 0,
            ..PageAttrs::DEFAULT
        })
    }

    /// One task with INIT bytes of memory and a MAP-byte map, calling itself.
    struct Env {
        m: Model,
        t: usize,
        c: Cfg,
    }

    impl Env {
        fn new(c: Cfg) -> Env {
            let mut m = Model::new();
            let t = m.add_task(c.w, c.ps, INIT, MAP);
            Env { m, t, c }
        }
        fn p(&self) -> u64 {
            self.c.ps
        }
        /// 2^(address width of the call).
        fn lim(&self) -> u128 {
            self.c.f.address_width(self.c.w).limit()
        }
        /// `lim() - k` as a u64 (k > 0).
        fn top(&self, k: u64) -> u64 {
            (self.lim() - u128::from(k)) as u64
        }
        /// Bytes of an address-typed out-parameter.
        fn ab(&self) -> u64 {
            self.c.f.address_width(self.c.w).bytes()
        }
        fn run(&mut self, call: Call) -> Outcome {
            self.m.call(self.t, &call)
        }
        fn get(&self, addr: u64, n: u64) -> u64 {
            let mut b = [0u8; 8];
            let a = addr as usize;
            b[..n as usize].copy_from_slice(&self.m.memory(self.t)[a..a + n as usize]);
            u64::from_le_bytes(b)
        }
        fn put(&mut self, addr: u64, v: u64, n: u64) {
            let a = addr as usize;
            self.m.memory_mut(self.t)[a..a + n as usize]
                .copy_from_slice(&v.to_le_bytes()[..n as usize]);
        }
        fn bytes(&self, addr: u64, n: u64) -> Vec<u8> {
            self.m.memory(self.t)[addr as usize..(addr + n) as usize].to_vec()
        }
        fn pattern(&mut self, addr: u64, n: u64, seed: u8) {
            for i in 0..n {
                self.m.memory_mut(self.t)[(addr + i) as usize] =
                    seed.wrapping_add((i * 7) as u8) | 1;
            }
        }
        fn at(&self, addr: u64) -> Option<PageAttrs> {
            self.m.page(self.t, addr / self.p())
        }
        fn copy(&mut self, src: u64, size: u64, dst: u64) -> Outcome {
            let form = self.c.f;
            self.run(Call::Copy {
                form,
                task: ME,
                src,
                size,
                dst,
            })
        }
        fn protect(&mut self, addr: u64, size: u64, set_max: u32, prot: VmProt) -> Outcome {
            let form = self.c.f;
            self.run(Call::Protect {
                form,
                task: ME,
                addr,
                size,
                set_max,
                prot,
            })
        }
        /// `cur = prot` on whole pages, which must succeed.
        fn set(&mut self, addr: u64, size: u64, prot: VmProt) {
            assert_eq!(self.protect(addr, size, 0, prot), ok());
        }
        fn set_max(&mut self, addr: u64, size: u64, prot: VmProt) {
            assert_eq!(self.protect(addr, size, 1, prot), ok());
        }
        /// vm_allocate with `*address = hint` at SCR; returns the outcome and `*address`.
        fn alloc(&mut self, hint: u64, size: u64, flags: u32) -> (Outcome, u64) {
            let ab = self.ab();
            self.put(SCR, hint, ab);
            let form = self.c.f;
            let o = self.run(Call::Allocate {
                form,
                task: ME,
                addr_ptr: SCR,
                size,
                flags: VmFlags(flags),
            });
            (o, self.get(SCR, ab))
        }
        fn dealloc(&mut self, addr: u64, size: u64) -> Outcome {
            let form = self.c.f;
            self.run(Call::Deallocate {
                form,
                task: ME,
                addr,
                size,
            })
        }
        /// vm_read with data at SCR, count at SCR2 (both preset to garbage).
        fn read(&mut self, addr: u64, size: u64) -> (Outcome, u64, u64) {
            self.put(SCR, u64::MAX, 8);
            self.put(SCR2, u64::MAX, 8);
            let form = self.c.f;
            let o = self.run(Call::Read {
                form,
                task: ME,
                addr,
                size,
                data_ptr: SCR,
                count_ptr: SCR2,
            });
            let wb = self.c.w.bytes();
            (o, self.get(SCR, wb), self.get(SCR2, 4))
        }
        /// vm_read_overwrite with outsize at SCR (preset to garbage).
        fn read_ow(&mut self, addr: u64, size: u64, data: u64) -> (Outcome, u64) {
            self.put(SCR, u64::MAX, 8);
            let form = self.c.f;
            let o = self.run(Call::ReadOverwrite {
                form,
                task: ME,
                addr,
                size,
                data,
                outsize_ptr: SCR,
            });
            let ab = self.ab();
            (o, self.get(SCR, ab))
        }
        fn write(&mut self, addr: u64, data: u64, count: u32) -> Outcome {
            let form = self.c.f;
            self.run(Call::Write {
                form,
                task: ME,
                addr,
                data,
                count,
            })
        }
        /// vm_region with address at SCR, size at SCR+8, count at SCR2, object_name at SCR2+8,
        /// info at INFO; returns (outcome, address, size, info, count, object_name).
        fn region(
            &mut self,
            addr: u64,
            flavor: u32,
            count: u32,
        ) -> (Outcome, u64, u64, Vec<u8>, u64, u64) {
            let ab = self.ab();
            self.put(SCR, u64::MAX, 8);
            self.put(SCR + 8, u64::MAX, 8);
            self.put(SCR, addr, ab);
            self.put(SCR2, u64::MAX, 8);
            self.put(SCR2, u64::from(count), 4);
            self.put(SCR2 + 8, 0xFFFF_FFFF, 4);
            self.pattern(INFO, 40, 0x55);
            let form = self.c.f;
            let o = self.run(Call::Region {
                form,
                task: ME,
                addr_ptr: SCR,
                size_ptr: SCR + 8,
                flavor,
                info_ptr: INFO,
                count_ptr: SCR2,
                object_name_ptr: SCR2 + 8,
            });
            (
                o,
                self.get(SCR, ab),
                self.get(SCR + 8, ab),
                self.bytes(INFO, 36),
                self.get(SCR2, 4),
                self.get(SCR2 + 8, 4),
            )
        }
    }

    /// One call of each vm kind, with `task` and arguments that would fail some other way.
    fn every_vm_call(f: Form, task: MachPort) -> Vec<Call> {
        vec![
            Call::Allocate {
                form: f,
                task,
                addr_ptr: SCR,
                size: 1,
                flags: VmFlags(0x20),
            },
            Call::Deallocate {
                form: f,
                task,
                addr: u64::MAX,
                size: u64::MAX,
            },
            Call::Protect {
                form: f,
                task,
                addr: 0,
                size: 0,
                set_max: 0,
                prot: VmProt(0x20),
            },
            Call::Copy {
                form: f,
                task,
                src: 0x7FF_0000,
                size: 1,
                dst: 0,
            },
            Call::Read {
                form: f,
                task,
                addr: 0x7FF_0000,
                size: 1,
                data_ptr: SCR,
                count_ptr: SCR2,
            },
            Call::ReadOverwrite {
                form: f,
                task,
                addr: 0x7FF_0000,
                size: 1,
                data: 0,
                outsize_ptr: SCR,
            },
            Call::Write {
                form: f,
                task,
                addr: 0,
                data: 0x7FF_0000,
                count: 1,
            },
            Call::Region {
                form: f,
                task,
                addr_ptr: SCR,
                size_ptr: SCR,
                flavor: 77,
                info_ptr: INFO,
                count_ptr: SCR2,
                object_name_ptr: SCR2,
            },
        ]
    }

    // ---- ports (spec §1) ----

    #[test]
    fn invalid_names_give_send_invalid_dest_before_any_other_check() {
        for c in cfgs() {
            let mut e = Env::new(c);
            e.put(SCR2, 9, 4);
            let before = e.m.clone();
            for name in [
                0,
                0xFFFF_FFFF,
                0x303,
                0x403,
                0x102,
                0x104,
                0x3,
                0x300,
                0x1_0303,
            ] {
                for call in every_vm_call(c.f, MachPort(name)) {
                    assert_eq!(
                        e.run(call.clone()),
                        kr(MACH_SEND_INVALID_DEST),
                        "{name:#x} {call:?}"
                    );
                }
            }
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn host_port_gives_invalid_argument_for_every_vm_call() {
        for c in cfgs() {
            let mut e = Env::new(c);
            e.put(SCR2, 9, 4);
            let before = e.m.clone();
            for call in every_vm_call(c.f, HOST_SELF_NAME) {
                assert_eq!(e.run(call.clone()), kr(KERN_INVALID_ARGUMENT), "{call:?}");
            }
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn send_rights_are_named_in_insertion_order() {
        let mut m = Model::new();
        let a = m.add_task(Width::W32, 4096, INIT, MAP);
        let b = m.add_task(Width::W64, 16384, INIT, MAP);
        let c = m.add_task(Width::W32, 16384, INIT, MAP);
        assert_eq!(m.insert_send_right(a, a), MachPort(0x103));
        assert_eq!(m.insert_send_right(a, b), MachPort(0x303));
        assert_eq!(m.insert_send_right(a, c), MachPort(0x403));
        assert_eq!(m.insert_send_right(a, b), MachPort(0x303));
        assert_eq!(m.insert_send_right(b, a), MachPort(0x303));
        assert_eq!(m.insert_send_right(b, b), MachPort(0x103));
        // c's namespace holds nothing inserted.
        let call = Call::Deallocate {
            form: Form::MachVm,
            task: MachPort(0x303),
            addr: 0,
            size: 1,
        };
        assert_eq!(m.call(c, &call), kr(MACH_SEND_INVALID_DEST));
        // a reaches b through 0x303 and c through 0x403.
        assert_eq!(m.call(a, &call), ok());
        assert_eq!(m.page(b, 0), None);
        assert_eq!(m.page(a, 0), Some(PageAttrs::DEFAULT));
        let call = Call::Deallocate {
            form: Form::MachVm,
            task: MachPort(0x403),
            addr: 0x4000,
            size: 1,
        };
        assert_eq!(m.call(a, &call), ok());
        assert_eq!(m.page(c, 0), Some(PageAttrs::DEFAULT));
        assert_eq!(m.page(c, 1), None);
        assert_eq!(m.page(a, 4), Some(PageAttrs::DEFAULT));
    }

    #[test]
    fn in_out_parameters_are_read_before_the_task_is_resolved() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.dealloc(p, p);
            let before = e.m.clone();
            for task in [MACH_PORT_NULL, HOST_SELF_NAME, ME] {
                let o = e.run(Call::Allocate {
                    form: c.f,
                    task,
                    addr_ptr: p + 8,
                    size: 1,
                    flags: VmFlags(0x20),
                });
                let f = trap(&o);
                assert_eq!((f.param, f.addr, f.write), ("address", p + 8, false));
                assert_eq!(
                    f.call,
                    if c.f == Form::Vm {
                        "vm_allocate"
                    } else {
                        "mach_vm_allocate"
                    }
                );
                // vm_region: address first, then count.
                let call = |addr_ptr, count_ptr| Call::Region {
                    form: c.f,
                    task,
                    addr_ptr,
                    size_ptr: SCR,
                    flavor: 77,
                    info_ptr: INFO,
                    count_ptr,
                    object_name_ptr: SCR,
                };
                let o = e.run(call(p, p));
                let f = trap(&o);
                assert_eq!((f.param, f.addr, f.write), ("address", p, false));
                assert_eq!(
                    f.call,
                    if c.f == Form::Vm {
                        "vm_region_64"
                    } else {
                        "mach_vm_region"
                    }
                );
                let o = e.run(call(SCR, p + 4));
                let f = trap(&o);
                assert_eq!((f.param, f.addr, f.write), ("count", p + 4, false));
            }
            assert_same(&e.m, &before);
        }
    }

    // ---- host_page_size ----

    #[test]
    fn host_page_size_stores_the_callers_page_size_as_a_word() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let wb = c.w.bytes();
            for host in [
                HOST_SELF_NAME,
                MACH_PORT_NULL,
                MACH_PORT_DEAD,
                ME,
                MachPort(0x1234),
            ] {
                e.put(SCR, u64::MAX, 8);
                assert_eq!(
                    e.run(Call::HostPageSize {
                        host,
                        size_ptr: SCR
                    }),
                    ok()
                );
                assert_eq!(e.get(SCR, wb), c.ps);
                // A 32-bit guest's store is 4 bytes: the next ones are untouched.
                assert_eq!(
                    e.get(SCR, 8),
                    if wb == 4 {
                        0xFFFF_FFFF_0000_0000 | c.ps
                    } else {
                        c.ps
                    }
                );
            }
            // Unwritable: trap, nothing stored.
            e.set(2 * c.ps, c.ps, R);
            e.put(2 * c.ps, 0x77, 8);
            let o = e.run(Call::HostPageSize {
                host: MachPort(0),
                size_ptr: 2 * c.ps,
            });
            let f = trap(&o);
            assert_eq!(
                (f.call, f.param, f.addr, f.write),
                ("host_page_size", "size", 2 * c.ps, true)
            );
            assert_eq!(e.get(2 * c.ps, 8), 0x77);
        }
    }

    #[test]
    fn host_page_size_of_each_task_in_a_cross_task_model() {
        let mut m = Model::new();
        let a = m.add_task(Width::W32, 4096, INIT, MAP);
        let b = m.add_task(Width::W64, 16384, INIT, MAP);
        for (t, ps, n) in [(a, 4096, 4), (b, 16384, 8)] {
            assert_eq!(
                m.call(
                    t,
                    &Call::HostPageSize {
                        host: HOST_SELF_NAME,
                        size_ptr: 8
                    }
                ),
                ok()
            );
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(&m.memory(t)[8..8 + n]);
            assert_eq!(u64::from_le_bytes(buf), ps);
            assert_eq!(m.page_size(t), ps);
        }
        assert_eq!(m.width(a), Width::W32);
        assert_eq!(m.width(b), Width::W64);
    }

    // ---- vm_copy ----

    #[test]
    fn copy_row2_and_4_wrapping_ranges_are_invalid_address() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.pattern(0, 4 * p, 1);
            let before = e.m.clone();
            let ia = kr(KERN_INVALID_ADDRESS);
            // The source: passes 2^width, reaches it exactly, or rounds up to it.
            assert_eq!(e.copy(e.top(p), 2 * p, 0), ia);
            assert_eq!(e.copy(e.top(p), p, 0), ia);
            assert_eq!(e.copy(e.top(p) + 1, p - 2, 0), ia);
            assert_eq!(e.copy(e.top(1), 1, 0), ia);
            assert_eq!(e.copy(p, e.top(1), 0), ia);
            // The destination, after a valid source.
            assert_eq!(e.copy(0, 2 * p, e.top(p)), ia);
            assert_eq!(e.copy(0, p, e.top(p)), ia);
            assert_eq!(e.copy(0, p - 2, e.top(p) + 1), ia);
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn copy_row3_source_pages_in_address_order() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let (ia, pf) = (kr(KERN_INVALID_ADDRESS), kr(KERN_PROTECTION_FAILURE));
            e.set(p, p, W); // page 1: no READ
            assert_eq!(e.dealloc(2 * p, p), ok()); // page 2: unallocated
            assert_eq!(e.dealloc(4 * p, p), ok()); // page 4: unallocated
            e.set(5 * p, p, VM_PROT_NONE); // page 5: no access
            e.set(6 * p, p, R); // page 6: read-only
            e.set(7 * p, p, VM_PROT_EXECUTE); // page 7: execute only
            let before = e.m.clone();
            let d = 10 * p;
            assert_eq!(e.copy(p, 2 * p, d), pf);
            assert_eq!(e.copy(2 * p - 1, 2, d), pf);
            assert_eq!(e.copy(2 * p, 1, d), ia);
            assert_eq!(e.copy(4 * p, 2 * p, d), ia);
            assert_eq!(e.copy(5 * p, 1, d), pf);
            assert_eq!(e.copy(7 * p + 5, 1, d), pf);
            assert_eq!(e.copy(0, p + 1, d), pf);
            assert_eq!(e.copy(3 * p, p + 1, d), ia);
            // Past the memory size (unallocated) and past the map.
            assert_eq!(e.copy(INIT - 8, 16, d), ia);
            assert_eq!(e.copy(INIT, 1, d), ia);
            assert_eq!(e.copy(MAP as u64 - 1, 1, d), ia);
            assert_eq!(e.copy(MAP as u64, 1, d), ia);
            assert_eq!(e.copy(u64::MAX >> 1, 1, d), ia);
            assert_same(&e.m, &before);
            // A range that ends where a bad page starts does not touch it; read-only is enough.
            assert_eq!(e.copy(0, p, d), ok());
            assert_eq!(e.copy(3 * p, p, d), ok());
            assert_eq!(e.copy(6 * p, p, d), ok());
        }
    }

    #[test]
    fn copy_row4_destination_checked_after_the_whole_source() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let (ia, pf) = (kr(KERN_INVALID_ADDRESS), kr(KERN_PROTECTION_FAILURE));
            e.set(p, p, W); // page 1: write-only
            assert_eq!(e.dealloc(3 * p, p), ok()); // page 3: unallocated
            e.set(4 * p, p, R); // page 4: read-only
            e.set(5 * p, p, VM_PROT_NONE); // page 5: none
            let before = e.m.clone();
            // The source's error wins over the destination's.
            assert_eq!(e.copy(p, 1, 3 * p), pf);
            assert_eq!(e.copy(3 * p, 1, 4 * p), ia);
            // The destination, in address order.
            assert_eq!(e.copy(0, 1, 3 * p), ia);
            assert_eq!(e.copy(0, 1, 4 * p), pf);
            assert_eq!(e.copy(0, 2, 4 * p - 1), ia);
            assert_eq!(e.copy(0, 2, 5 * p - 1), pf);
            assert_eq!(e.copy(0, 1, 5 * p), pf);
            assert_eq!(e.copy(6 * p, 2 * p, 2 * p), ia);
            assert_eq!(e.copy(0, 1, INIT), ia);
            assert_eq!(e.copy(0, 1, MAP as u64), ia);
            assert_eq!(e.copy(0, 16, MAP as u64 - 8), ia);
            assert_same(&e.m, &before);
            // Write-only is enough for a destination.
            assert_eq!(e.copy(0, 16, p + 3), ok());
        }
    }

    #[test]
    fn copy_row5_all_or_nothing() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.pattern(0, 4 * p, 3);
            e.set(7 * p, p, R);
            assert_eq!(e.dealloc(9 * p, p), ok());
            let before = e.m.clone();
            // The first destination page is writable, the second is not: nothing is written.
            assert_eq!(e.copy(0, 2 * p, 6 * p), kr(KERN_PROTECTION_FAILURE));
            assert_eq!(e.copy(0, 2 * p, 8 * p + 1), kr(KERN_INVALID_ADDRESS));
            assert_eq!(e.copy(0, 3 * p, 8 * p), kr(KERN_INVALID_ADDRESS));
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn copy_row5_memmove_semantics_any_alignment() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.pattern(0, 4 * p, 9);
            let orig = e.bytes(0, 4 * p);
            // Forward overlap, unaligned, across pages.
            assert_eq!(e.copy(1, 2 * p, 5), ok());
            let mut want = orig.clone();
            want.copy_within(1..1 + 2 * p as usize, 5);
            assert_eq!(e.bytes(0, 4 * p), want);
            // Backward overlap.
            assert_eq!(e.copy(p + 7, p + 3, 3), ok());
            want.copy_within((p + 7) as usize..(2 * p + 10) as usize, 3);
            assert_eq!(e.bytes(0, 4 * p), want);
            // Same place.
            assert_eq!(e.copy(11, 100, 11), ok());
            assert_eq!(e.bytes(0, 4 * p), want);
            // Exactly `size` bytes: a single byte to the last byte of the memory.
            assert_eq!(e.copy(0, 1, INIT - 1), ok());
            assert_eq!(e.bytes(INIT - 2, 2), vec![0, want[0]]);
        }
    }

    #[test]
    fn copy_through_a_send_right_stays_in_the_target() {
        for (wa, wb) in [(Width::W32, Width::W64), (Width::W64, Width::W32)] {
            for f in [Form::Vm, Form::MachVm] {
                let mut m = Model::new();
                let a = m.add_task(wa, 4096, INIT, MAP);
                let b = m.add_task(wb, 16384, INIT, MAP);
                let name = m.insert_send_right(a, b);
                for (i, x) in m.memory_mut(b).iter_mut().enumerate() {
                    *x = i as u8;
                }
                let a_before = m.memory(a).to_vec();
                let call = Call::Copy {
                    form: f,
                    task: name,
                    src: 0x4001,
                    size: 0x5000,
                    dst: 0x10003,
                };
                assert_eq!(m.call(a, &call), ok());
                assert_eq!(m.memory(a), &a_before[..]);
                let want: Vec<u8> = (0x4001..0x9001).map(|i: usize| i as u8).collect();
                assert_eq!(&m.memory(b)[0x10003..0x15003], &want[..]);
                // The target's page size rounds: 16 KiB pages, so 0x8000 is page 2.
                let call = Call::Protect {
                    form: f,
                    task: name,
                    addr: 0x8000,
                    size: 1,
                    set_max: 0,
                    prot: VmProt(1),
                };
                assert_eq!(m.call(a, &call), ok());
                let call = Call::Copy {
                    form: f,
                    task: name,
                    src: 0,
                    size: 1,
                    dst: 0xBFFF,
                };
                assert_eq!(m.call(a, &call), kr(KERN_PROTECTION_FAILURE));
                let call = Call::Copy {
                    form: f,
                    task: name,
                    src: 0,
                    size: 1,
                    dst: 0xC000,
                };
                assert_eq!(m.call(a, &call), ok());
            }
        }
    }

    // ---- vm_protect ----

    #[test]
    fn protect_row2_size_zero_succeeds() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let before = e.m.clone();
            for a in [0, INIT, MAP as u64, e.top(1), u64::MAX >> 1] {
                assert_eq!(e.protect(a, 0, 0, VM_PROT_NONE), ok());
                assert_eq!(e.protect(a, 0, 1, VM_PROT_ALL | VM_PROT_COPY), ok());
            }
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn protect_row4_copy_gives_max_write() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.set_max(p, 2 * p, R); // pages 1-2: cur R, max R
            assert_eq!(e.at(p), attrs(R, R));
            assert_eq!(e.protect(p, 1, 0, RW), kr(KERN_PROTECTION_FAILURE));
            assert_eq!(
                e.protect(p, 1, 0, VM_PROT_ALL | VM_PROT_COPY),
                kr(KERN_PROTECTION_FAILURE)
            );
            assert_eq!(e.protect(p, 1, 0, RW | VM_PROT_COPY), ok());
            assert_eq!(e.at(p), attrs(RW, R | W));
            assert_eq!(e.at(2 * p), attrs(R, R));
            // COPY with a cur that needs no write still adds write to max.
            assert_eq!(e.protect(2 * p, p, 0, VM_PROT_NONE | VM_PROT_COPY), ok());
            assert_eq!(e.at(2 * p), attrs(VM_PROT_NONE, R | W));
            // COPY with set_max: max = prot.
            e.set_max(3 * p, p, R);
            assert_eq!(e.protect(3 * p, p, 1, RW | VM_PROT_COPY), ok());
            assert_eq!(e.at(3 * p), attrs(R, RW));
            assert_eq!(e.protect(3 * p, p, 1, W | VM_PROT_COPY), ok());
            assert_eq!(e.at(3 * p), attrs(VM_PROT_NONE, W));
            // The check is against max | WRITE: a max without READ stays without it.
            assert_eq!(
                e.protect(3 * p, p, 1, R | VM_PROT_COPY),
                kr(KERN_PROTECTION_FAILURE)
            );
            assert_eq!(e.at(3 * p), attrs(VM_PROT_NONE, W));
            // COPY on a range with a hole changes nothing.
            e.set_max(5 * p, p, R);
            assert_eq!(e.dealloc(6 * p, p), ok());
            let before = e.m.clone();
            assert_eq!(
                e.protect(5 * p, 2 * p, 0, RW | VM_PROT_COPY),
                kr(KERN_INVALID_ADDRESS)
            );
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn protect_row5_pages_checked_in_order_before_any_change() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let (ia, pf) = (kr(KERN_INVALID_ADDRESS), kr(KERN_PROTECTION_FAILURE));
            e.set_max(2 * p, p, R); // page 2: max R
            assert_eq!(e.dealloc(3 * p, p), ok()); // page 3: hole
            let before = e.m.clone();
            assert_eq!(e.protect(p, 3 * p, 0, RW), pf);
            assert_eq!(e.protect(p, 3 * p, 0, R), ia);
            assert_eq!(e.protect(3 * p, 2 * p, 0, VM_PROT_ALL), ia);
            assert_eq!(e.protect(2 * p + 1, p, 0, W), pf);
            assert_eq!(e.protect(2 * p, p, 0, VM_PROT_EXECUTE), pf);
            assert_eq!(e.protect(INIT - p, 2 * p, 0, R), ia);
            assert_eq!(e.protect(MAP as u64, p, 0, R), ia);
            assert_eq!(e.protect(0, MAP as u64 + 1, 0, R), ia);
            assert_same(&e.m, &before);
            // Page 2's max allows these.
            assert_eq!(e.protect(2 * p + 1, 1, 0, VM_PROT_NONE), ok());
            assert_eq!(e.protect(p, 2 * p, 0, R), ok());
            assert_eq!(e.at(p), attrs(R, VM_PROT_ALL));
        }
    }

    #[test]
    fn protect_row6_set_max_or_cur() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            // cur = prot, rounded out to whole pages.
            assert_eq!(e.protect(p + 1, p, 0, R), ok());
            assert_eq!(
                (e.at(0), e.at(p), e.at(2 * p), e.at(3 * p)),
                (
                    attrs(RW, VM_PROT_ALL),
                    attrs(R, VM_PROT_ALL),
                    attrs(R, VM_PROT_ALL),
                    attrs(RW, VM_PROT_ALL)
                )
            );
            // set_max: max = prot, cur = cur & prot; any non-zero set_max counts.
            assert_eq!(e.protect(p, p, 1, R | VM_PROT_EXECUTE), ok());
            assert_eq!(e.at(p), attrs(R, R | VM_PROT_EXECUTE));
            assert_eq!(e.protect(4 * p, p, 0xFFFF_FFFF, W), ok());
            assert_eq!(e.at(4 * p), attrs(W, W));
            assert_eq!(e.protect(5 * p, p, 2, VM_PROT_EXECUTE), ok());
            assert_eq!(e.at(5 * p), attrs(VM_PROT_NONE, VM_PROT_EXECUTE));
            // cur may be anything within max, including none.
            assert_eq!(e.protect(5 * p, p, 0, VM_PROT_NONE), ok());
            assert_eq!(e.protect(5 * p, p, 0, VM_PROT_EXECUTE), ok());
            assert_eq!(e.at(5 * p), attrs(VM_PROT_EXECUTE, VM_PROT_EXECUTE));
            // The whole map up to the end of memory.
            assert_eq!(
                e.protect(0, INIT, 0, VM_PROT_EXECUTE),
                kr(KERN_PROTECTION_FAILURE)
            );
            // Protection never changes inheritance.
            assert!((0..INIT / p).all(|i| e.m.page(e.t, i).unwrap().inherit == VM_INHERIT_COPY));
        }
    }

    // ---- vm_allocate ----

    const ANY: u32 = VM_FLAGS_ANYWHERE.0;
    const OVER: u32 = VM_FLAGS_OVERWRITE.0;

    #[test]
    fn allocate_bad_flags_are_invalid_argument_even_for_size_zero() {
        for c in cfgs() {
            let mut e = Env::new(c);
            e.put(SCR, 0x1234, 8);
            for flags in [
                0x20, 0x40, 0x100, 0x800, 0x2000, 0x8000, 0x8_0000, 0x80_0000, 0x21,
            ] {
                for size in [0, 1, e.p()] {
                    let before = e.m.clone();
                    let (o, addr) = e.alloc(0x1234, size, flags);
                    assert_eq!(o, kr(KERN_INVALID_ARGUMENT), "{flags:#x}");
                    assert_eq!(addr, 0x1234, "no store on failure");
                    assert_same(&e.m, &before);
                }
            }
            // Accepted bits that mean nothing here.
            for flags in [0x2, 0x4, 0x8, 0x10, 0x80, 0x1000, 0x7_0000, 0xFF00_0000] {
                assert_eq!(e.alloc(0, 1, ANY | flags).0, ok(), "{flags:#x}");
            }
        }
    }

    #[test]
    fn allocate_size_zero_stores_zero() {
        for c in cfgs() {
            let mut e = Env::new(c);
            for flags in [0, ANY, OVER, ANY | OVER] {
                let before_pages: Vec<_> =
                    (0..MAP as u64 / c.ps).map(|i| e.m.page(e.t, i)).collect();
                assert_eq!(e.alloc(0x5000, 0, flags), (ok(), 0));
                assert_eq!(e.alloc(e.top(1), 0, flags), (ok(), 0));
                let after: Vec<_> = (0..MAP as u64 / c.ps).map(|i| e.m.page(e.t, i)).collect();
                assert_eq!(before_pages, after);
                assert_eq!(e.m.memory(e.t).len() as u64, INIT);
            }
        }
    }

    #[test]
    fn allocate_rounded_size_wrapping_to_zero_is_invalid_argument() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let before = e.m.clone();
            for flags in [0, ANY] {
                // (u64::MAX is truncated to 0xFFFF_FFFF for a 32-bit guest's vm_allocate.)
                for size in [e.top(1), e.top(p) + 1, u64::MAX] {
                    assert_eq!(
                        e.alloc(0, size, flags).0,
                        kr(KERN_INVALID_ARGUMENT),
                        "{size:#x}"
                    );
                }
                // One page less fits the width but not the map.
                let (o, _) = e.alloc(0, e.top(p), flags);
                assert_eq!(
                    o,
                    kr(if flags == ANY {
                        KERN_NO_SPACE
                    } else {
                        KERN_INVALID_ADDRESS
                    })
                );
            }
            e.put(SCR, 0, 8);
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn allocate_anywhere_takes_the_lowest_free_run_and_grows() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            // Everything below INIT is allocated: the first run is past the memory size.
            let (o, a) = e.alloc(2 * p, 1, ANY);
            assert_eq!((o, a), (ok(), INIT), "the hint is ignored");
            assert_eq!(
                e.m.memory(e.t).len() as u64,
                INIT + 0x1_0000,
                "grown by one wasm page"
            );
            assert_eq!(e.at(INIT), Some(PageAttrs::DEFAULT));
            assert_eq!(
                e.at(INIT + p),
                None,
                "grown pages outside the allocation stay unallocated"
            );
            assert!(e.bytes(INIT, 0x1_0000).iter().all(|&b| b == 0));
            // Holes: page 2 (one page), pages 5..8 (three pages).
            e.pattern(0, 10 * p, 7);
            assert_eq!(e.dealloc(2 * p, p), ok());
            assert_eq!(e.dealloc(5 * p, 3 * p), ok());
            assert_eq!(e.alloc(0, 2 * p, ANY), (ok(), 5 * p));
            assert!(
                e.bytes(5 * p, 2 * p).iter().all(|&b| b == 0),
                "re-used pages are zero"
            );
            assert_eq!(e.bytes(7 * p, 1), vec![e.bytes(7 * p, 1)[0]]);
            assert_eq!(
                e.alloc(7 * p, p + 1, ANY),
                (ok(), INIT + p),
                "two pages: past INIT"
            );
            assert_eq!(e.alloc(0, p, ANY), (ok(), 2 * p));
            assert_eq!(e.alloc(0, p, ANY), (ok(), 7 * p));
            // OVERWRITE is ignored with ANYWHERE.
            let page1 = e.bytes(p, p);
            assert_eq!(e.alloc(p, p, ANY | OVER), (ok(), INIT + 3 * p));
            assert_eq!(e.bytes(p, p), page1);
            // A run that needs several wasm pages grows by all of them.
            let len = e.m.memory(e.t).len() as u64;
            let (o, a) = e.alloc(0, 0x2_0000, ANY);
            assert_eq!((o, a), (ok(), INIT + 4 * p));
            assert_eq!(
                e.m.memory(e.t).len() as u64,
                (a + 0x2_0000).div_ceil(0x1_0000) * 0x1_0000
            );
            assert!(len < e.m.memory(e.t).len() as u64);
        }
    }

    #[test]
    fn allocate_anywhere_includes_page_zero() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            assert_eq!(e.dealloc(0, p), ok());
            let ptr = 3 * p;
            e.put(ptr, 0x3000, 8);
            let o = e.run(Call::Allocate {
                form: c.f,
                task: ME,
                addr_ptr: ptr,
                size: 1,
                flags: VmFlags(ANY),
            });
            assert_eq!(o, ok());
            assert_eq!(e.get(ptr, e.ab()), 0);
            assert_eq!(e.at(0), Some(PageAttrs::DEFAULT));
        }
    }

    #[test]
    fn allocate_anywhere_no_room_is_no_space() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let before = e.m.clone();
            assert_eq!(e.alloc(0, MAP as u64, ANY), (kr(KERN_NO_SPACE), 0));
            assert_eq!(
                e.alloc(0, MAP as u64 - INIT + 1, ANY),
                (kr(KERN_NO_SPACE), 0)
            );
            e.put(SCR, 0, 8);
            assert_same(&e.m, &before);
            assert_eq!(e.alloc(0, MAP as u64 - INIT, ANY), (ok(), INIT));
            assert_eq!(e.m.memory(e.t).len() as u128, MAP);
            assert_eq!(e.alloc(0, 1, ANY), (kr(KERN_NO_SPACE), 0));
            assert_eq!(e.dealloc(9 * p, 2 * p), ok());
            assert_eq!(e.alloc(0, 3 * p, ANY), (kr(KERN_NO_SPACE), 0));
            assert_eq!(e.alloc(0, 2 * p, ANY), (ok(), 9 * p));
        }
    }

    #[test]
    fn allocate_fixed_past_the_map_or_wrapping_is_invalid_address() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let m = MAP as u64;
            let before = e.m.clone();
            for (hint, size) in [
                (m - p, 2 * p),
                (m, 1),
                (m - 1, p + 2),
                (e.top(p), p),
                (e.top(p), 2 * p),
                (e.top(1), 1),
                (INIT, m),
            ] {
                assert_eq!(
                    e.alloc(hint, size, 0).0,
                    kr(KERN_INVALID_ADDRESS),
                    "{hint:#x} {size:#x}"
                );
                assert_eq!(
                    e.alloc(hint, size, OVER).0,
                    kr(KERN_INVALID_ADDRESS),
                    "{hint:#x} {size:#x}"
                );
            }
            e.put(SCR, 0, 8);
            assert_same(&e.m, &before);
            // Up to the map's end exactly. `[trunc(addr), trunc(addr) + round(size))` is mapped
            // (as XNU does), which need not cover `[addr, addr + size)`.
            assert_eq!(e.alloc(m - 1, 2, 0), (ok(), m - p));
            assert_eq!(e.at(m - p), Some(PageAttrs::DEFAULT));
            assert_eq!(e.m.memory(e.t).len() as u128, MAP);
        }
    }

    #[test]
    fn allocate_fixed_overlap_is_no_space_unless_overwrite() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.pattern(p, 3 * p, 5);
            e.set_max(2 * p, p, R);
            let before = e.m.clone();
            assert_eq!(e.alloc(2 * p, p, 0), (kr(KERN_NO_SPACE), 2 * p));
            assert_eq!(e.alloc(INIT - p, 2 * p, 0), (kr(KERN_NO_SPACE), INIT - p));
            e.put(SCR, 0, 8);
            assert_same(&e.m, &before);
            // OVERWRITE: zero, default attributes, the neighbours untouched.
            let (p1, p3) = (e.bytes(p, p), e.bytes(3 * p, p));
            assert_eq!(e.alloc(2 * p + 9, p - 9, OVER), (ok(), 2 * p));
            assert_eq!(e.at(2 * p), Some(PageAttrs::DEFAULT));
            assert!(e.bytes(2 * p, p).iter().all(|&b| b == 0));
            assert_eq!((e.bytes(p, p), e.bytes(3 * p, p)), (p1, p3));
            // OVERWRITE across the end of the memory: allocated, new and grown.
            assert_eq!(e.alloc(INIT - p, 2 * p, OVER), (ok(), INIT - p));
            assert_eq!(
                (e.at(INIT - p), e.at(INIT), e.at(INIT + p)),
                (Some(PageAttrs::DEFAULT), Some(PageAttrs::DEFAULT), None)
            );
        }
    }

    #[test]
    fn allocate_fixed_maps_truncated_address_and_grows_by_wasm_pages() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            assert_eq!(e.alloc(0x8_0003, 0x1_0000, 0), (ok(), 0x8_0000));
            assert_eq!(e.m.memory(e.t).len(), 0x9_0000);
            assert_eq!(e.at(0x8_0000 - p), None);
            assert_eq!(e.at(INIT), None);
            assert_eq!(e.at(0x8_0000), Some(PageAttrs::DEFAULT));
            assert_eq!(e.at(0x8_FFFF), Some(PageAttrs::DEFAULT));
            // Unaligned: one byte past a page boundary takes two pages.
            assert_eq!(e.alloc(0x6_0000 - 1, 2, 0), (ok(), 0x6_0000 - p));
            assert_eq!(
                (e.at(0x6_0000 - p), e.at(0x6_0000), e.at(0x6_0000 + p)),
                (Some(PageAttrs::DEFAULT), None, None)
            );
            // Reused (deallocated then allocated again) pages are zero.
            e.pattern(0x8_0000, p, 1);
            assert_eq!(e.dealloc(0x8_0000, p), ok());
            assert_eq!(e.alloc(0x8_0000, p, 0), (ok(), 0x8_0000));
            assert!(e.bytes(0x8_0000, p).iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn allocate_reads_and_stores_address_in_its_width() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            // The hint's upper half is only read by a 64-bit parameter.
            e.put(SCR, (1 << 32) | (INIT + p), 8);
            let o = e.run(Call::Allocate {
                form: c.f,
                task: ME,
                addr_ptr: SCR,
                size: 1,
                flags: VmFlags(0),
            });
            if e.ab() == 4 {
                assert_eq!(o, ok());
                assert_eq!(e.get(SCR, 8), (1 << 32) | (INIT + p));
            } else {
                assert_eq!(o, kr(KERN_INVALID_ADDRESS));
                assert_eq!(e.get(SCR, 8), (1 << 32) | (INIT + p));
                assert_eq!(e.alloc(INIT + p, 1, 0), (ok(), INIT + p));
                assert_eq!(e.get(SCR, 8), INIT + p);
            }
            // A Vm size of a 32-bit guest is truncated to 32 bits.
            let (o, a) = e.alloc(0, (1 << 32) + 1, ANY);
            if c.f == Form::Vm && c.w == Width::W32 {
                assert_eq!((o, a), (ok(), INIT));
            } else {
                assert_eq!((o, a), (kr(KERN_NO_SPACE), 0));
            }
        }
    }

    #[test]
    fn allocate_address_parameter_traps() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let ab = e.ab();
            assert_eq!(e.dealloc(2 * p, p), ok());
            e.set(3 * p, p, R);
            e.set(4 * p, p, W);
            let call = |ptr| Call::Allocate {
                form: c.f,
                task: ME,
                addr_ptr: ptr,
                size: 1,
                flags: VmFlags(ANY),
            };
            let before = e.m.clone();
            // Unreadable: unallocated, write-only, straddling into an unallocated page.
            for ptr in [
                2 * p,
                4 * p + 8,
                2 * p - ab + 1,
                INIT,
                MAP as u64,
                MAP as u64 + 0x1000,
            ] {
                let o = e.run(call(ptr));
                let f = trap(&o);
                assert_eq!(
                    (f.param, f.addr, f.write),
                    ("address", ptr, false),
                    "{ptr:#x}"
                );
                assert_same(&e.m, &before);
            }
            // Readable but not writable: the allocation happens, the store traps.
            let o = e.run(call(3 * p));
            let f = trap(&o);
            assert_eq!((f.param, f.addr, f.write), ("address", 3 * p, true));
            assert_eq!(
                e.at(2 * p),
                Some(PageAttrs::DEFAULT),
                "the lowest free run: page 2"
            );
            assert_eq!(e.get(3 * p, 8), 0);
            // Straddling a writable and a read-only page: nothing stored.
            e.put(3 * p - 4, 0xAAAA_AAAA, 4);
            let o = e.run(call(3 * p - 4));
            if ab == 8 {
                let f = trap(&o);
                assert_eq!((f.param, f.addr, f.write), ("address", 3 * p - 4, true));
                assert_eq!(e.get(3 * p - 4, 4), 0xAAAA_AAAA);
            } else {
                assert_eq!(o, ok());
                assert_eq!(e.get(3 * p - 4, 4), INIT);
            }
        }
    }

    #[test]
    fn allocate_through_a_send_right_uses_the_targets_page_size() {
        let mut m = Model::new();
        let a = m.add_task(Width::W32, 4096, INIT, MAP);
        let b = m.add_task(Width::W64, 16384, INIT, MAP);
        let name = m.insert_send_right(a, b);
        for (hint, flags, want) in [(0x5_0000u64, ANY, INIT), (0x5_1001, 0, 0x5_0000)] {
            m.memory_mut(a)[SCR as usize..SCR as usize + 4]
                .copy_from_slice(&(hint as u32).to_le_bytes());
            let call = Call::Allocate {
                form: Form::Vm,
                task: name,
                addr_ptr: SCR,
                size: 0x1001,
                flags: VmFlags(flags),
            };
            assert_eq!(m.call(a, &call), ok());
            let got = u32::from_le_bytes(
                m.memory(a)[SCR as usize..SCR as usize + 4]
                    .try_into()
                    .unwrap(),
            );
            assert_eq!(u64::from(got), want);
            assert_eq!(m.page(b, want / 16384), Some(PageAttrs::DEFAULT));
            assert_eq!(m.page(b, want / 16384 + 1), None);
        }
        assert_eq!(m.memory(a).len() as u64, INIT);
    }

    #[test]
    fn allocate_word_sized_from_a_32_bit_guest_stays_below_4_gib() {
        // A 32-bit guest's vm_allocate on a 64-bit task with a map past 4 GiB: the address must
        // fit the u32 out-parameter, so the run is searched below 2^32 (and nothing is grown).
        let mut m = Model::new();
        let a = m.add_task(Width::W32, 4096, INIT, MAP);
        let b = m.add_task(Width::W64, 4096, INIT, 1 << 33);
        let name = m.insert_send_right(a, b);
        let size = (1u64 << 32) - 0x1000;
        let call = Call::Allocate {
            form: Form::Vm,
            task: name,
            addr_ptr: SCR,
            size,
            flags: VmFlags(ANY),
        };
        assert_eq!(m.call(a, &call), kr(KERN_NO_SPACE));
        assert_eq!(m.memory(b).len() as u64, INIT);
        // FIXED: the end must stay below 2^32.
        let call = Call::Allocate {
            form: Form::Vm,
            task: name,
            addr_ptr: SCR,
            size: 0x1000,
            flags: VmFlags(0),
        };
        m.memory_mut(a)[SCR as usize..SCR as usize + 4]
            .copy_from_slice(&0xFFFF_F000u32.to_le_bytes());
        assert_eq!(m.call(a, &call), kr(KERN_INVALID_ADDRESS));
        assert_eq!(m.memory(b).len() as u64, INIT);
    }

    // ---- vm_deallocate ----

    #[test]
    fn deallocate_row2_size_zero_succeeds() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let before = e.m.clone();
            for a in [0, 1, INIT, MAP as u64, e.top(1)] {
                assert_eq!(e.dealloc(a, 0), ok());
            }
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn deallocate_row4_removes_allocated_pages_and_skips_holes() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            assert_eq!(e.dealloc(p + 1, p), ok());
            assert_eq!(
                (e.at(0), e.at(p), e.at(2 * p), e.at(3 * p)),
                (
                    Some(PageAttrs::DEFAULT),
                    None,
                    None,
                    Some(PageAttrs::DEFAULT)
                )
            );
            e.set(3 * p, p, VM_PROT_NONE);
            assert_eq!(
                e.dealloc(p, 3 * p),
                ok(),
                "holes are skipped, any protection goes"
            );
            assert_eq!(
                (e.at(p), e.at(2 * p), e.at(3 * p), e.at(4 * p)),
                (None, None, None, Some(PageAttrs::DEFAULT))
            );
            assert_eq!(
                e.dealloc(INIT, p),
                ok(),
                "past the memory size, inside the map"
            );
            assert_eq!(
                e.dealloc(0, MAP as u64),
                ok(),
                "up to the map's end exactly"
            );
            assert!((0..MAP as u64 / p).all(|i| e.m.page(e.t, i).is_none()));
            assert_eq!(
                e.m.memory(e.t).len() as u64,
                INIT,
                "the memory never shrinks"
            );
        }
    }

    #[test]
    fn deallocate_through_a_send_right_uses_the_targets_page_size() {
        let mut m = Model::new();
        let a = m.add_task(Width::W64, 4096, INIT, MAP);
        let b = m.add_task(Width::W32, 16384, INIT, MAP);
        let name = m.insert_send_right(a, b);
        let call = Call::Deallocate {
            form: Form::Vm,
            task: name,
            addr: 0x5000,
            size: 0x4000,
        };
        assert_eq!(m.call(a, &call), ok());
        assert_eq!(
            (m.page(b, 0), m.page(b, 1), m.page(b, 2), m.page(b, 3)),
            (
                Some(PageAttrs::DEFAULT),
                None,
                None,
                Some(PageAttrs::DEFAULT)
            )
        );
        assert!((0..INIT / 4096).all(|i| m.page(a, i).is_some()));
    }

    // ---- memory.grow ----

    #[test]
    fn grow_allocates_default_pages_up_to_the_map_limit() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            assert_eq!(e.dealloc(0, p), ok());
            assert_eq!(e.m.grow(e.t, 0), Some(4));
            assert_eq!(e.m.grow(e.t, 2), Some(4));
            assert_eq!(e.m.memory(e.t).len(), 6 * 0x1_0000);
            assert_eq!(e.at(INIT), Some(PageAttrs::DEFAULT));
            assert_eq!(e.at(6 * 0x1_0000 - 1), Some(PageAttrs::DEFAULT));
            assert_eq!(e.at(6 * 0x1_0000), None);
            assert_eq!(e.at(0), None, "existing pages untouched");
            let before = e.m.clone();
            assert_eq!(e.m.grow(e.t, 11), None);
            assert_eq!(e.m.grow(e.t, u64::MAX), None);
            assert_same(&e.m, &before);
            assert_eq!(e.m.grow(e.t, 10), Some(6));
            assert_eq!(e.m.memory(e.t).len() as u128, MAP);
            assert_eq!(e.m.grow(e.t, 1), None);
            assert_eq!(e.m.grow(e.t, 0), Some(16));
        }
    }

    #[test]
    fn grow_after_a_host_growth_keeps_unallocated_pages() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            assert_eq!(e.alloc(0, p, ANY), (ok(), INIT));
            assert_eq!(e.m.grow(e.t, 1), Some(5));
            assert_eq!(
                e.at(INIT + p),
                None,
                "the host's grown pages stay unallocated"
            );
            assert_eq!(e.at(5 * 0x1_0000), Some(PageAttrs::DEFAULT));
        }
    }

    // ---- vm_read_overwrite ----

    #[test]
    fn read_overwrite_row1_size_zero_stores_zero() {
        for c in cfgs() {
            let mut e = Env::new(c);
            e.put(SCR, u64::MAX, 8);
            let before = e.m.clone();
            assert_eq!(e.read_ow(u64::MAX, 0, u64::MAX), (ok(), 0));
            assert_eq!(e.read_ow(MAP as u64, 0, INIT), (ok(), 0));
            // Only the parameter's own bytes are stored.
            assert_eq!(
                e.get(SCR, 8),
                if e.ab() == 4 {
                    0xFFFF_FFFF_0000_0000
                } else {
                    0
                }
            );
            e.put(SCR, u64::MAX, 8);
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn read_overwrite_row2_source_as_copy_source() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let (ia, pf) = (kr(KERN_INVALID_ADDRESS), kr(KERN_PROTECTION_FAILURE));
            e.set(p, p, W);
            assert_eq!(e.dealloc(2 * p, p), ok());
            e.put(SCR, u64::MAX, 8);
            let before = e.m.clone();
            let d = 8 * p;
            for (a, s, want) in [
                (p, 1, &pf),
                (p - 1, 2, &pf),
                (2 * p, 1, &ia),
                (e.top(p), p, &ia),
                (e.top(p) + 1, p - 2, &ia),
                (INIT, 1, &ia),
                (MAP as u64, 1, &ia),
                (0, e.top(1), &ia),
            ] {
                assert_eq!(&e.read_ow(a, s, d).0, want, "{a:#x} {s:#x}");
                assert_eq!(e.get(SCR, 8), u64::MAX, "no store on failure");
            }
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn read_overwrite_row3_destination_in_the_caller_as_copy_destination() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let (ia, pf) = (kr(KERN_INVALID_ADDRESS), kr(KERN_PROTECTION_FAILURE));
            e.set(p, p, VM_PROT_NONE);
            assert_eq!(e.dealloc(3 * p, p), ok());
            e.set(4 * p, p, R);
            e.set(6 * p, p, R);
            e.pattern(8 * p, 2 * p, 1);
            e.put(SCR, u64::MAX, 8);
            let before = e.m.clone();
            for (a, s, d, want) in [
                (p, 1, 3 * p, &pf), // the source's error first
                (8 * p, 1, 3 * p, &ia),
                (8 * p, 1, 4 * p, &pf),
                (8 * p, 2, 4 * p - 1, &ia),
                (8 * p, 2 * p, 5 * p, &pf), // page 5 writable, page 6 not: nothing written
                (8 * p, p, e.top(p), &ia),
                (8 * p, p - 2, e.top(p) + 1, &ia),
                (8 * p, 1, INIT, &ia),
                (8 * p, 1, MAP as u64, &ia),
            ] {
                assert_eq!(&e.read_ow(a, s, d).0, want, "{a:#x} {s:#x} {d:#x}");
            }
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn read_overwrite_row4_copies_and_stores_outsize() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.pattern(p, 3 * p, 2);
            let src = e.bytes(p + 3, p + 5);
            assert_eq!(e.read_ow(p + 3, p + 5, 6 * p + 1), (ok(), p + 5));
            assert_eq!(e.bytes(6 * p + 1, p + 5), src);
            assert_eq!(e.bytes(6 * p, 1), vec![0]);
            assert_eq!(e.bytes(7 * p + 6, 1), vec![0]);
            if e.ab() == 4 {
                assert_eq!(e.get(SCR + 4, 4), 0xFFFF_FFFF);
            }
            // Inside one task the copy is a memmove.
            let mut want = e.bytes(0, 4 * p);
            want.copy_within(p as usize..3 * p as usize, p as usize + 5);
            assert_eq!(e.read_ow(p, 2 * p, p + 5), (ok(), 2 * p));
            assert_eq!(e.bytes(SCR + 8, 4 * p - SCR - 8), want[SCR as usize + 8..]);
        }
    }

    #[test]
    fn read_overwrite_between_tasks() {
        for f in [Form::Vm, Form::MachVm] {
            let mut m = Model::new();
            let a = m.add_task(Width::W32, 4096, INIT, MAP);
            let b = m.add_task(Width::W64, 16384, INIT, MAP);
            let name = m.insert_send_right(a, b);
            for (i, x) in m.memory_mut(b).iter_mut().enumerate() {
                *x = (i % 251) as u8;
            }
            let call = |addr, size, data| Call::ReadOverwrite {
                form: f,
                task: name,
                addr,
                size,
                data,
                outsize_ptr: SCR,
            };
            assert_eq!(m.call(a, &call(0x4FFF, 0x3002, 0x2001)), ok());
            assert_eq!(
                &m.memory(a)[0x2001..0x5003],
                &m.memory(b)[0x4FFF..0x8001].to_vec()[..]
            );
            // The caller's buffer is checked with the caller's 4 KiB pages.
            let p = Call::Protect {
                form: f,
                task: ME,
                addr: 0x5000,
                size: 1,
                set_max: 0,
                prot: VmProt(1),
            };
            assert_eq!(m.call(a, &p), ok());
            assert_eq!(m.call(a, &call(0, 2, 0x4FFF)), kr(KERN_PROTECTION_FAILURE));
            assert_eq!(m.call(a, &call(0, 1, 0x4FFF)), ok());
            assert_eq!(m.call(a, &call(0, 1, 0x6000)), ok());
            // A 32-bit guest's mach_vm_read_overwrite takes a 64-bit data address.
            let o = m.call(a, &call(0, 1, (1 << 32) | 0x6000));
            assert_eq!(
                o,
                if f == Form::Vm {
                    ok()
                } else {
                    kr(KERN_INVALID_ADDRESS)
                }
            );
            // The target's 16 KiB pages: unallocating 0x4000 takes 0x4000..0x8000.
            let d = Call::Deallocate {
                form: f,
                task: name,
                addr: 0x4000,
                size: 1,
            };
            assert_eq!(m.call(a, &d), ok());
            assert_eq!(
                m.call(a, &call(0x7FFF, 1, 0x1000)),
                kr(KERN_INVALID_ADDRESS)
            );
            assert_eq!(m.call(a, &call(0x3FFF, 1, 0x1000)), ok());
        }
    }

    #[test]
    fn read_overwrite_outsize_trap_comes_after_the_copy() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.set(2 * p, p, R);
            e.pattern(p, 8, 3);
            let o = e.run(Call::ReadOverwrite {
                form: c.f,
                task: ME,
                addr: p,
                size: 8,
                data: 3 * p,
                outsize_ptr: 2 * p,
            });
            let f = trap(&o);
            let name = if c.f == Form::Vm {
                "vm_read_overwrite"
            } else {
                "mach_vm_read_overwrite"
            };
            assert_eq!(
                (f.call, f.param, f.addr, f.write),
                (name, "outsize", 2 * p, true)
            );
            assert_eq!(e.bytes(3 * p, 8), e.bytes(p, 8));
            assert_eq!(e.get(2 * p, 8), 0);
        }
    }

    // ---- vm_read ----

    #[test]
    fn read_row1_size_past_32_bits_is_invalid_argument() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let before_len = e.m.memory(e.t).len();
            let narrow = c.f == Form::Vm && c.w == Width::W32;
            // 2^32 is truncated to 0 by a 32-bit guest's vm_read.
            let (o, d, n) = e.read(0, 1 << 32);
            if narrow {
                assert_eq!((o, d, n), (ok(), 0, 0));
            } else {
                assert_eq!(o, kr(KERN_INVALID_ARGUMENT));
                assert_eq!((e.get(SCR, 8), e.get(SCR2, 8)), (u64::MAX, u64::MAX));
            }
            // The size check comes before the source check.
            let (o, _, _) = e.read(u64::MAX, u64::MAX);
            assert_eq!(
                o,
                kr(if narrow {
                    KERN_INVALID_ADDRESS
                } else {
                    KERN_INVALID_ARGUMENT
                })
            );
            // 0xFFFF_FFFF fits: the source is checked next.
            assert_eq!(e.read(0, 0xFFFF_FFFF).0, kr(KERN_INVALID_ADDRESS));
            assert_eq!(e.m.memory(e.t).len(), before_len);
        }
    }

    #[test]
    fn read_row2_size_zero_stores_zeroes() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let (o, d, n) = e.read(u64::MAX, 0);
            assert_eq!((o, d, n), (ok(), 0, 0));
            // data is a word, count is 4 bytes.
            let wb = c.w.bytes();
            assert_eq!(
                e.get(SCR, 8),
                if wb == 4 { 0xFFFF_FFFF_0000_0000 } else { 0 }
            );
            assert_eq!(e.get(SCR2, 8), 0xFFFF_FFFF_0000_0000);
            assert_eq!(e.m.memory(e.t).len() as u64, INIT);
        }
    }

    #[test]
    fn read_row3_source_as_copy_source() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let (ia, pf) = (kr(KERN_INVALID_ADDRESS), kr(KERN_PROTECTION_FAILURE));
            e.set(p, p, VM_PROT_EXECUTE);
            assert_eq!(e.dealloc(2 * p, p), ok());
            e.put(SCR, u64::MAX, 8);
            e.put(SCR2, u64::MAX, 8);
            for (a, s, want) in [
                (p, 1, &pf),
                (p - 1, 2, &pf),
                (2 * p, 1, &ia),
                (3 * p - 1, 2, &ia),
                (e.top(p), p, &ia),
                (e.top(p) + 1, p - 2, &ia),
                (INIT - 1, 2, &ia),
                (MAP as u64, 1, &ia),
            ] {
                let before = e.m.clone();
                let (o, d, n) = e.read(a, s);
                assert_eq!(
                    (&o, d, n),
                    (want, u64::MAX >> (64 - 8 * c.w.bytes()), 0xFFFF_FFFF),
                    "{a:#x} {s:#x}"
                );
                assert_same(&e.m, &before);
            }
        }
    }

    #[test]
    fn read_row4_allocates_a_fresh_buffer_in_the_caller() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.pattern(p, 4 * p, 4);
            e.set(p, 4 * p, R);
            // Every page the range touches is copied, and `*data` keeps the offset of
            // `addr` within its page (as XNU's "Read address has the correct boundary
            // offset").
            let pages = e.bytes(p, 3 * p);
            let (o, d, n) = e.read(p + 5, 2 * p + 3);
            assert_eq!((o, d, n), (ok(), INIT + 5, 2 * p + 3));
            assert_eq!(e.bytes(INIT, 3 * p), pages);
            for k in 0..3 {
                assert_eq!(e.at(INIT + k * p), Some(PageAttrs::DEFAULT));
            }
            assert_eq!(e.at(INIT + 3 * p), None);
            assert_eq!(e.m.memory(e.t).len() as u64, INIT + 0x1_0000);
            // The next one goes after it; a hole below is taken first, and overwritten.
            assert_eq!(e.read(p, 1).1, INIT + 3 * p);
            assert_eq!(e.dealloc(6 * p, p), ok());
            let (o, d, n) = e.read(p + 7, 1);
            assert_eq!((o, d, n), (ok(), 6 * p + 7, 1));
            assert_eq!(e.bytes(6 * p, p), e.bytes(p, p));
            // A 32-bit guest's data out-parameter is 4 bytes, whatever the form.
            if c.w == Width::W32 {
                assert_eq!(e.get(SCR + 4, 4), 0xFFFF_FFFF);
            }
            assert_eq!(e.get(SCR2 + 4, 4), 0xFFFF_FFFF);
        }
    }

    #[test]
    fn read_no_room_is_no_space() {
        for c in cfgs() {
            let mut e = Env::new(c);
            assert_eq!(e.alloc(0, MAP as u64 - INIT, ANY).0, ok());
            let before = e.m.clone();
            let (o, d, n) = e.read(0, 1);
            assert_eq!(
                (o, d, n),
                (
                    kr(KERN_NO_SPACE),
                    u64::MAX >> (64 - 8 * c.w.bytes()),
                    0xFFFF_FFFF
                )
            );
            e.put(SCR, u64::MAX, 8);
            e.put(SCR2, u64::MAX, 8);
            let mut before = before;
            before.memory_mut(e.t)[SCR as usize..SCR as usize + 8].fill(0xFF);
            before.memory_mut(e.t)[SCR2 as usize..SCR2 as usize + 8].fill(0xFF);
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn read_between_tasks_allocates_with_the_callers_page_size() {
        for f in [Form::Vm, Form::MachVm] {
            let mut m = Model::new();
            let a = m.add_task(Width::W32, 16384, INIT, MAP);
            let b = m.add_task(Width::W64, 4096, INIT, MAP);
            let ab = m.insert_send_right(a, b);
            let ba = m.insert_send_right(b, a);
            for (i, x) in m.memory_mut(b).iter_mut().enumerate() {
                *x = (i % 253) as u8 | 1;
            }
            let b_before = m.clone();
            let call = Call::Read {
                form: f,
                task: ab,
                addr: 0x1001,
                size: 0x10,
                data_ptr: SCR,
                count_ptr: SCR2,
            };
            assert_eq!(m.call(a, &call), ok());
            let data = u32::from_le_bytes(
                m.memory(a)[SCR as usize..SCR as usize + 4]
                    .try_into()
                    .unwrap(),
            );
            // The source's 4 KiB page at the offset of `addr` within it, in a 16 KiB
            // page of the caller, zero after it.
            assert_eq!(u64::from(data), INIT + 1);
            assert_eq!(
                &m.memory(a)[INIT as usize..INIT as usize + 0x1000],
                &b_before.memory(b)[0x1000..0x2000]
            );
            assert!(m.memory(a)[INIT as usize + 0x1000..INIT as usize + 0x4000]
                .iter()
                .all(|&x| x == 0));
            assert_eq!(
                (m.page(a, INIT / 16384), m.page(a, INIT / 16384 + 1)),
                (Some(PageAttrs::DEFAULT), None)
            );
            assert_eq!(m.memory(b), b_before.memory(b));
            // The other way: a 4 KiB caller reads 0x5000 bytes from a 16 KiB task.
            let call = Call::Read {
                form: f,
                task: ba,
                addr: 0x10,
                size: 0x5000,
                data_ptr: SCR,
                count_ptr: SCR2,
            };
            assert_eq!(m.call(b, &call), ok());
            let data = u64::from_le_bytes(
                m.memory(b)[SCR as usize..SCR as usize + 8]
                    .try_into()
                    .unwrap(),
            );
            // Two 16 KiB source pages, in eight 4 KiB pages of the caller.
            assert_eq!(data, INIT + 0x10);
            assert!((0..8).all(|k| m.page(b, INIT / 4096 + k) == Some(PageAttrs::DEFAULT)));
            assert_eq!(m.page(b, INIT / 4096 + 8), None);
            assert_eq!(
                &m.memory(b)[INIT as usize..INIT as usize + 0x8000],
                &m.memory(a)[..0x8000].to_vec()[..]
            );
        }
    }

    #[test]
    fn read_stores_come_after_the_allocation() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.pattern(p, p, 6);
            // `*data` points into memory the call itself allocates: the store succeeds there.
            let o = e.run(Call::Read {
                form: c.f,
                task: ME,
                addr: p,
                size: 16,
                data_ptr: INIT + 8,
                count_ptr: SCR2,
            });
            assert_eq!(o, ok());
            assert_eq!(e.get(INIT + 8, c.w.bytes()), INIT);
            assert_eq!(e.bytes(INIT, 8), e.bytes(p, 8));
            assert_eq!(e.get(SCR2, 4), 16);
            // `*count` not writable: data stored, then the trap; the allocation stays.
            e.set(2 * p, p, R);
            e.put(SCR, 0, 8);
            let o = e.run(Call::Read {
                form: c.f,
                task: ME,
                addr: p,
                size: 16,
                data_ptr: SCR,
                count_ptr: 2 * p + 4,
            });
            let f = trap(&o);
            let name = if c.f == Form::Vm {
                "vm_read"
            } else {
                "mach_vm_read"
            };
            assert_eq!(
                (f.call, f.param, f.addr, f.write),
                (name, "count", 2 * p + 4, true)
            );
            assert_eq!(e.get(SCR, c.w.bytes()), INIT + p);
            assert_eq!(e.at(INIT + p), Some(PageAttrs::DEFAULT));
            // `*data` not writable: nothing stored.
            let o = e.run(Call::Read {
                form: c.f,
                task: ME,
                addr: p,
                size: 16,
                data_ptr: 2 * p,
                count_ptr: SCR2,
            });
            assert_eq!(trap(&o).param, "data");
            assert_eq!(e.get(SCR2, 4), 16);
            assert_eq!(e.at(INIT + 2 * p), Some(PageAttrs::DEFAULT));
        }
    }

    // ---- vm_write ----

    #[test]
    fn write_row1_count_zero_succeeds() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let before = e.m.clone();
            assert_eq!(e.write(u64::MAX, u64::MAX, 0), ok());
            assert_eq!(e.write(MAP as u64, INIT, 0), ok());
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn write_row2_bad_caller_buffer_is_send_invalid_memory() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let im = kr(MACH_SEND_INVALID_MEMORY);
            e.set(p, p, W);
            assert_eq!(e.dealloc(2 * p, p), ok());
            e.set(4 * p, p, R);
            let before = e.m.clone();
            let d = 8 * p;
            for (data, count) in [
                (p, 1),
                (p - 1, 2),
                (2 * p, 1),
                (3 * p - 1, 2),
                (INIT - 1, 2),
                (MAP as u64, 1),
                (e.top(4), 8),
                (e.top(p), p as u32),
            ] {
                assert_eq!(e.write(d, data, count), im, "{data:#x} {count:#x}");
                // Checked before the destination.
                assert_eq!(e.write(2 * p, data, count), im);
            }
            assert_same(&e.m, &before);
            // A read-only buffer is enough.
            assert_eq!(e.write(d, 4 * p, 16), ok());
        }
    }

    #[test]
    fn write_row3_destination_as_copy_destination() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let (ia, pf) = (kr(KERN_INVALID_ADDRESS), kr(KERN_PROTECTION_FAILURE));
            assert_eq!(e.dealloc(3 * p, p), ok());
            e.set(4 * p, p, R);
            e.set(7 * p, p, VM_PROT_NONE);
            e.pattern(p, 2 * p, 8);
            let before = e.m.clone();
            for (addr, count, want) in [
                (3 * p, 1, &ia),
                (4 * p, 1, &pf),
                (4 * p - 1, 2, &ia),
                (6 * p, 2 * p as u32, &pf),
                (e.top(p), p as u32, &ia),
                (e.top(p) + 1, p as u32 - 2, &ia),
                (INIT, 1, &ia),
                (MAP as u64, 1, &ia),
            ] {
                assert_eq!(&e.write(addr, p, count), want, "{addr:#x} {count:#x}");
            }
            assert_same(&e.m, &before);
        }
    }

    #[test]
    fn write_between_tasks() {
        for f in [Form::Vm, Form::MachVm] {
            let mut m = Model::new();
            let a = m.add_task(Width::W32, 4096, INIT, MAP);
            let b = m.add_task(Width::W64, 16384, INIT, MAP);
            let name = m.insert_send_right(a, b);
            for (i, x) in m.memory_mut(a).iter_mut().enumerate() {
                *x = (i % 241) as u8 | 1;
            }
            let call = |addr, data, count| Call::Write {
                form: f,
                task: name,
                addr,
                data,
                count,
            };
            // data is a vm_offset_t: a 32-bit guest's is truncated in both forms.
            assert_eq!(m.call(a, &call(0x4001, (1 << 32) | 0x3001, 0x2000)), ok());
            assert_eq!(
                &m.memory(b)[0x4001..0x6001],
                &m.memory(a)[0x3001..0x5001].to_vec()[..]
            );
            // The caller's 4 KiB pages and the target's 16 KiB pages.
            let p = Call::Protect {
                form: f,
                task: ME,
                addr: 0x5000,
                size: 1,
                set_max: 0,
                prot: VmProt(2),
            };
            assert_eq!(m.call(a, &p), ok());
            assert_eq!(m.call(a, &call(0, 0x4FFF, 2)), kr(MACH_SEND_INVALID_MEMORY));
            assert_eq!(m.call(a, &call(0, 0x4FFF, 1)), ok());
            let p = Call::Protect {
                form: f,
                task: name,
                addr: 0x9000,
                size: 1,
                set_max: 0,
                prot: VmProt(1),
            };
            assert_eq!(m.call(a, &p), ok());
            assert_eq!(m.call(a, &call(0x7FFF, 0, 1)), ok());
            assert_eq!(m.call(a, &call(0x8000, 0, 1)), kr(KERN_PROTECTION_FAILURE));
        }
    }

    // ---- vm_region ----

    #[test]
    fn region_row1_bad_flavor_or_short_count_is_invalid_argument() {
        for c in cfgs() {
            let mut e = Env::new(c);
            for (flavor, count) in [
                (0, 9),
                (8, 9),
                (11, 9),
                (0xFFFF_FFFF, 9),
                (9, 8),
                (10, 7),
                (10, 0),
                (7, 0),
            ] {
                let (o, a, s, info, n, obj) = e.region(0, flavor, count);
                assert_eq!(o, kr(KERN_INVALID_ARGUMENT), "{flavor} {count}");
                assert_eq!((a, n, obj), (0, u64::from(count), 0xFFFF_FFFF));
                assert_eq!(s, u64::MAX >> (64 - 8 * e.ab()));
                assert_ne!(info, vec![0; 36]);
            }
            // Flavor 9: count 9, 36 bytes; flavor 10: count 8, 32 bytes and nothing after.
            for (flavor, count, want) in [
                (9, 9, 9),
                (9, 10, 9),
                (10, 8, 8),
                (10, 9, 8),
                (10, 0xFFFF_FFFF, 8),
            ] {
                let (o, a, s, info, n, obj) = e.region(0, flavor, count);
                assert_eq!((o, a, s, n, obj), (ok(), 0, INIT, want, 0));
                let written = if flavor == 9 { 36 } else { 32 };
                assert!(info[12..written].iter().all(|&b| b == 0), "{flavor}");
                assert!(info[written..].iter().all(|&b| b != 0), "{flavor}");
            }
        }
    }

    #[test]
    fn region_row2_nothing_at_or_after_the_address_is_invalid_address() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            for addr in [INIT, INIT + 5, MAP as u64, e.top(1), e.top(p)] {
                let (o, a, ..) = e.region(addr, 9, 9);
                assert_eq!(o, kr(KERN_INVALID_ADDRESS), "{addr:#x}");
                assert_eq!(a, addr, "no store on failure");
            }
            assert_eq!(e.dealloc(INIT - 2 * p, 2 * p), ok());
            assert_eq!(e.region(INIT - 2 * p, 9, 9).0, kr(KERN_INVALID_ADDRESS));
            assert_eq!(e.region(INIT - 2 * p - 1, 9, 9).0, ok());
        }
    }

    #[test]
    fn region_row3_containing_or_next_region() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let info = |cur: VmProt, max: VmProt| {
                let mut v = vec![0u8; 36];
                v[0..4].copy_from_slice(&cur.0.to_le_bytes());
                v[4..8].copy_from_slice(&max.0.to_le_bytes());
                v[8..12].copy_from_slice(&VM_INHERIT_COPY.0.to_le_bytes());
                v
            };
            // One region at start.
            assert_eq!(
                e.region(0, 9, 9),
                (ok(), 0, INIT, info(RW, VM_PROT_ALL), 9, 0)
            );
            let (o, a, size, got, n, obj) = e.region(INIT - 1, 10, 9);
            assert_eq!((o, a, size, n, obj), (ok(), 0, INIT, 8, 0));
            assert_eq!(got[..32], info(RW, VM_PROT_ALL)[..32]);
            // Regions split on cur, max (and inheritance).
            e.set(2 * p, 2 * p, R);
            e.set_max(8 * p, p, R);
            assert_eq!(e.dealloc(5 * p, 2 * p), ok());
            assert_eq!(
                e.region(3 * p + 5, 9, 9),
                (ok(), 2 * p, 2 * p, info(R, VM_PROT_ALL), 9, 0)
            );
            assert_eq!(
                e.region(p, 9, 9),
                (ok(), 0, 2 * p, info(RW, VM_PROT_ALL), 9, 0)
            );
            assert_eq!(
                e.region(4 * p, 9, 9),
                (ok(), 4 * p, p, info(RW, VM_PROT_ALL), 9, 0)
            );
            assert_eq!(
                e.region(5 * p + 1, 9, 9),
                (ok(), 7 * p, p, info(RW, VM_PROT_ALL), 9, 0)
            );
            assert_eq!(
                e.region(6 * p, 9, 9),
                (ok(), 7 * p, p, info(RW, VM_PROT_ALL), 9, 0)
            );
            assert_eq!(e.region(8 * p, 9, 9), (ok(), 8 * p, p, info(R, R), 9, 0));
            assert_eq!(
                e.region(9 * p, 9, 9),
                (ok(), 9 * p, INIT - 9 * p, info(RW, VM_PROT_ALL), 9, 0)
            );
            // Pages the host grew and allocated join the region below them.
            assert_eq!(e.alloc(0, p, ANY), (ok(), 5 * p));
            assert_eq!(e.alloc(0, 2 * p, ANY), (ok(), INIT));
            assert_eq!(
                e.region(INIT, 9, 9),
                (ok(), 9 * p, INIT - 7 * p, info(RW, VM_PROT_ALL), 9, 0)
            );
            assert_eq!(e.region(INIT + 2 * p, 9, 9).0, kr(KERN_INVALID_ADDRESS));
            // Only the parameters' own bytes are stored.
            if e.ab() == 4 {
                assert_eq!(
                    (e.get(SCR + 4, 4), e.get(SCR + 12, 4)),
                    (0xFFFF_FFFF, 0xFFFF_FFFF)
                );
            }
            assert_eq!(e.get(SCR2 + 4, 4), 0xFFFF_FFFF);
            assert_ne!(e.bytes(INFO + 36, 4), vec![0; 4]);
        }
    }

    #[test]
    fn region_reads_address_in_its_width() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.put(SCR, (1 << 32) | p, 8);
            e.put(SCR2, 9, 4);
            let o = e.run(Call::Region {
                form: c.f,
                task: ME,
                addr_ptr: SCR,
                size_ptr: SCR + 8,
                flavor: 9,
                info_ptr: INFO,
                count_ptr: SCR2,
                object_name_ptr: SCR2 + 4,
            });
            if e.ab() == 4 {
                assert_eq!(o, ok());
                assert_eq!((e.get(SCR, 8), e.get(SCR + 8, 4)), ((1 << 32), INIT));
            } else {
                assert_eq!(o, kr(KERN_INVALID_ADDRESS));
            }
        }
    }

    #[test]
    fn region_stores_in_order_and_traps_on_the_first_bad_one() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            let ab = e.ab();
            e.set(2 * p, p, R); // read-only
            assert_eq!(e.dealloc(4 * p, p), ok()); // unallocated
            let name = if c.f == Form::Vm {
                "vm_region_64"
            } else {
                "mach_vm_region"
            };
            let run = |e: &mut Env, size_ptr, info_ptr, count_ptr, object_name_ptr| {
                for x in [SCR, SCR + 8, INFO, SCR2, SCR2 + 8, 3 * p, 3 * p + 64] {
                    e.put(x, u64::MAX, 8);
                }
                e.put(SCR, p, ab);
                e.put(count_ptr, 9, 4);
                e.run(Call::Region {
                    form: c.f,
                    task: ME,
                    addr_ptr: SCR,
                    size_ptr,
                    flavor: 9,
                    info_ptr,
                    count_ptr,
                    object_name_ptr,
                })
            };
            // size read-only: address stored, nothing after it.
            let o = run(&mut e, 2 * p, INFO, SCR2, SCR2 + 8);
            assert_eq!(
                (trap(&o).call, trap(&o).param, trap(&o).addr, trap(&o).write),
                (name, "size", 2 * p, true)
            );
            assert_eq!(e.get(SCR, ab), 0);
            assert_eq!((e.get(INFO, 8), e.get(SCR2, 4)), (u64::MAX, 9));
            // info straddling into an unallocated page: address and size stored.
            let o = run(&mut e, SCR + 8, 4 * p - 20, SCR2, SCR2 + 8);
            assert_eq!((trap(&o).param, trap(&o).addr), ("info", 4 * p - 20));
            assert_eq!((e.get(SCR, ab), e.get(SCR + 8, ab)), (0, 2 * p));
            assert_eq!(e.get(SCR2, 4), 9);
            // count readable but not writable: the in-out read passes, the store traps.
            let o = run(&mut e, SCR + 8, INFO, 2 * p + 4, SCR2 + 8);
            assert_eq!(
                (trap(&o).param, trap(&o).addr, trap(&o).write),
                ("count", 2 * p + 4, true)
            );
            assert_eq!(e.get(INFO, 4), RW.0 as u64);
            assert_eq!(e.get(SCR2 + 8, 4), 0xFFFF_FFFF);
            // object_name last.
            let o = run(&mut e, SCR + 8, INFO, SCR2, 4 * p);
            assert_eq!((trap(&o).param, trap(&o).addr), ("object_name", 4 * p));
            assert_eq!(e.get(SCR2, 4), 9);
            // count unreadable (write-only page): a read trap before anything.
            e.set(3 * p, p, W);
            let o = run(&mut e, SCR + 8, INFO, 3 * p, SCR2 + 8);
            assert_eq!(
                (trap(&o).param, trap(&o).addr, trap(&o).write),
                ("count", 3 * p, false)
            );
            assert_eq!(e.get(SCR, ab), p);
        }
    }

    #[test]
    fn region_through_a_send_right_uses_the_targets_pages() {
        let mut m = Model::new();
        let a = m.add_task(Width::W32, 4096, INIT, MAP);
        let b = m.add_task(Width::W64, 16384, INIT, MAP);
        let name = m.insert_send_right(a, b);
        let p = Call::Protect {
            form: Form::MachVm,
            task: name,
            addr: 0x5000,
            size: 1,
            set_max: 1,
            prot: VmProt(5),
        };
        assert_eq!(m.call(a, &p), ok());
        m.memory_mut(a)[SCR as usize..SCR as usize + 4].copy_from_slice(&0x7FFFu32.to_le_bytes());
        m.memory_mut(a)[SCR2 as usize..SCR2 as usize + 4].copy_from_slice(&9u32.to_le_bytes());
        let r = Call::Region {
            form: Form::Vm,
            task: name,
            addr_ptr: SCR,
            size_ptr: SCR + 4,
            flavor: 9,
            info_ptr: INFO,
            count_ptr: SCR2,
            object_name_ptr: SCR2 + 4,
        };
        assert_eq!(m.call(a, &r), ok());
        let mem = m.memory(a);
        let word = |x: u64| u32::from_le_bytes(mem[x as usize..x as usize + 4].try_into().unwrap());
        assert_eq!((word(SCR), word(SCR + 4)), (0x4000, 0x4000));
        // set_max: max = R|X, cur = RW & (R|X) = R.
        assert_eq!((word(INFO), word(INFO + 4), word(INFO + 8)), (1, 5, 1));
    }

    // ---- scalar parameters (spec §3) ----

    #[test]
    fn scalar_pointer_ranges_wrap_in_the_guest_width() {
        for w in [Width::W32, Width::W64] {
            let mut m = Model::new();
            let t = m.add_task(w, 4096, INIT, MAP);
            let n = w.bytes();
            let top = (w.limit() - u128::from(n)) as u64;
            // Reaching 2^width exactly counts as wrapping, as does passing it.
            for ptr in [top, top + 1, top + (n - 1)] {
                let o = m.call(
                    t,
                    &Call::HostPageSize {
                        host: MachPort(0),
                        size_ptr: ptr,
                    },
                );
                let f = trap(&o);
                assert_eq!((f.param, f.addr, f.write), ("size", ptr, true));
                assert!(f.reason.contains("wraps"), "{}", f.reason);
            }
            // One byte lower it is merely outside the map.
            let o = m.call(
                t,
                &Call::HostPageSize {
                    host: MachPort(0),
                    size_ptr: top - 1,
                },
            );
            assert!(
                trap(&o).reason.contains("outside the map"),
                "{}",
                trap(&o).reason
            );
            // A 32-bit guest's pointer is truncated to 32 bits.
            let o = m.call(
                t,
                &Call::HostPageSize {
                    host: MachPort(0),
                    size_ptr: (1 << 32) | SCR,
                },
            );
            if w == Width::W32 {
                assert_eq!(o, ok());
                assert_eq!(m.memory(t)[SCR as usize], 0x00);
                assert_eq!(m.memory(t)[SCR as usize + 1], 0x10);
            } else {
                assert!(trap(&o).reason.contains("outside the map"));
            }
        }
    }

    #[test]
    fn scalar_in_out_read_needs_read_and_store_needs_write() {
        for c in cfgs() {
            let mut e = Env::new(c);
            let p = e.p();
            e.set(2 * p, p, W);
            e.set(3 * p, p, R);
            // Stores only need WRITE.
            assert_eq!(
                e.run(Call::HostPageSize {
                    host: MachPort(0),
                    size_ptr: 2 * p
                }),
                ok()
            );
            let o = e.run(Call::HostPageSize {
                host: MachPort(0),
                size_ptr: 3 * p,
            });
            assert!(trap(&o).reason.contains("not writable"));
            // Straddling two pages: each page must allow it.
            let o = e.run(Call::HostPageSize {
                host: MachPort(0),
                size_ptr: 3 * p - 2,
            });
            assert_eq!(trap(&o).addr, 3 * p - 2);
            // In-out reads need READ.
            let o = e.run(Call::Allocate {
                form: c.f,
                task: ME,
                addr_ptr: 2 * p,
                size: 1,
                flags: VmFlags(ANY),
            });
            assert!(trap(&o).reason.contains("not readable"));
            assert!(!trap(&o).write);
            // The Display of the fault names the call, parameter and address.
            let msg = trap(&o).to_string();
            assert!(
                msg.contains("address") && msg.contains(&format!("{:#x}", 2 * p)),
                "{msg}"
            );
        }
    }

    // ---- widths across tasks ----

    #[test]
    fn word_sized_calls_compute_in_the_callers_width() {
        let mut m = Model::new();
        let a = m.add_task(Width::W32, 4096, INIT, MAP);
        let b = m.add_task(Width::W64, 4096, INIT, MAP);
        let to_b = m.insert_send_right(a, b);
        let to_a = m.insert_send_right(b, a);
        // A 32-bit guest's vm_* call on a 64-bit task: values are 32-bit words.
        let copy = Call::Copy {
            form: Form::Vm,
            task: to_b,
            src: (1 << 32) | 0x1000,
            size: 0x10,
            dst: 0x2000,
        };
        assert_eq!(m.call(a, &copy), ok());
        let prot = |form, task, addr| Call::Protect {
            form,
            task,
            addr,
            size: 0x1000,
            set_max: 0,
            prot: VmProt(1),
        };
        assert_eq!(
            m.call(a, &prot(Form::Vm, to_b, 0xFFFF_F000)),
            kr(KERN_INVALID_ARGUMENT)
        );
        assert_eq!(
            m.call(a, &prot(Form::MachVm, to_b, 0xFFFF_F000)),
            kr(KERN_INVALID_ADDRESS)
        );
        // A 64-bit guest's vm_* call on a 32-bit task: 64-bit words.
        assert_eq!(
            m.call(b, &prot(Form::Vm, to_a, 0xFFFF_F000)),
            kr(KERN_INVALID_ADDRESS)
        );
        assert_eq!(
            m.call(b, &prot(Form::Vm, to_a, u64::MAX - 0xFFF)),
            kr(KERN_INVALID_ARGUMENT)
        );
        let copy = Call::Copy {
            form: Form::Vm,
            task: to_a,
            src: (1 << 32) | 0x1000,
            size: 0x10,
            dst: 0x2000,
        };
        assert_eq!(m.call(b, &copy), kr(KERN_INVALID_ADDRESS));
    }

    // ---- never panic ----

    use crate::testing::Rng;

    /// Addresses and sizes near the interesting places.
    trait Values {
        fn value(&mut self, ps: u64) -> u64;
    }

    impl Values for Rng {
        fn value(&mut self, ps: u64) -> u64 {
            let jitter = [0, 1, ps - 1, ps, 0xFFF][self.below(5) as usize];
            match self.below(10) {
                0 => self.next_u64(),
                1 | 2 => self.below(0x12_0000),
                3 | 4 => self.below(0x120) * ps + jitter,
                5 => u64::MAX - self.below(0x2_0000),
                6 => 0xFFFF_FFFF - self.below(0x2_0000),
                7 => 0x1_0000_0000 + self.below(0x2_0000),
                8 => [0, 1, ps, 0x1_0000, 0x10_0000, 0xF_F000, 0x4_0000][self.below(7) as usize],
                _ => self.below(0x100),
            }
        }
    }

    fn random_call(r: &mut Rng, ps: u64) -> Call {
        let form = if r.below(2) == 0 {
            Form::Vm
        } else {
            Form::MachVm
        };
        let task = [
            ME,
            ME,
            ME,
            MachPort(0x303),
            MachPort(0x403),
            HOST_SELF_NAME,
            MACH_PORT_NULL,
            MACH_PORT_DEAD,
            MachPort(r.next_u64() as u32),
        ][r.below(9) as usize];
        let ptr = |r: &mut Rng| {
            if r.below(4) == 0 {
                r.value(ps)
            } else {
                r.below(0x4_0000)
            }
        };
        match r.below(12) {
            0 => Call::TaskSelf,
            1 => Call::HostSelf,
            2 => Call::HostPageSize {
                host: MachPort(r.next_u64() as u32),
                size_ptr: ptr(r),
            },
            3 => {
                let flags = [0, 1, 0x4000, 0x4001, 0x20, r.next_u64() as u32][r.below(6) as usize];
                Call::Allocate {
                    form,
                    task,
                    addr_ptr: ptr(r),
                    size: r.value(ps),
                    flags: VmFlags(flags),
                }
            }
            4 => Call::Deallocate {
                form,
                task,
                addr: r.value(ps),
                size: r.value(ps),
            },
            5 => {
                let prot = [0, 1, 2, 3, 4, 7, 0x10, 0x13, 0x17, 0x8, r.next_u64() as u32]
                    [r.below(11) as usize];
                Call::Protect {
                    form,
                    task,
                    addr: r.value(ps),
                    size: r.value(ps),
                    set_max: r.below(3) as u32,
                    prot: VmProt(prot as i32),
                }
            }
            6 => Call::Copy {
                form,
                task,
                src: r.value(ps),
                size: r.value(ps),
                dst: r.value(ps),
            },
            7 => Call::Read {
                form,
                task,
                addr: r.value(ps),
                size: r.value(ps),
                data_ptr: ptr(r),
                count_ptr: ptr(r),
            },
            8 => Call::ReadOverwrite {
                form,
                task,
                addr: r.value(ps),
                size: r.value(ps),
                data: r.value(ps),
                outsize_ptr: ptr(r),
            },
            9 => Call::Write {
                form,
                task,
                addr: r.value(ps),
                data: r.value(ps),
                count: r.value(ps) as u32,
            },
            _ => Call::Region {
                form,
                task,
                addr_ptr: ptr(r),
                size_ptr: ptr(r),
                flavor: [9, 10, 8, r.next_u64() as u32][r.below(4) as usize],
                info_ptr: ptr(r),
                count_ptr: ptr(r),
                object_name_ptr: ptr(r),
            },
        }
    }

    fn check_invariants(m: &Model) {
        for t in &m.tasks {
            assert_eq!(t.memory.len() % 0x1_0000, 0);
            assert!(t.memory.len() as u128 <= t.map_limit);
            assert_eq!(t.pages.len() as u64 * t.page_size, t.memory.len() as u64);
        }
    }

    #[test]
    fn random_calls_never_panic_and_keep_the_invariants() {
        let mut r = Rng::new(0x9E37_79B9_7F4A_7C15);
        for round in 0..24 {
            let mut m = Model::new();
            let w = |r: &mut Rng| {
                if r.below(2) == 0 {
                    Width::W32
                } else {
                    Width::W64
                }
            };
            let ps = |r: &mut Rng| if r.below(2) == 0 { 4096 } else { 16384 };
            let tasks: Vec<usize> = (0..3)
                .map(|_| {
                    let (w, ps) = (w(&mut r), ps(&mut r));
                    let init = r.below(5) * 0x1_0000;
                    m.add_task(w, ps, init, 0x4_0000 + u128::from(r.below(13)) * 0x1_0000)
                })
                .collect();
            for &a in &tasks {
                for &b in &tasks {
                    if r.below(3) > 0 {
                        m.insert_send_right(a, b);
                    }
                }
            }
            for _ in 0..3000 {
                let caller = tasks[r.below(3) as usize];
                if r.below(50) == 0 {
                    m.grow(caller, r.below(3));
                    continue;
                }
                let call = random_call(&mut r, m.page_size(caller));
                let o = m.call(caller, &call);
                match o {
                    Outcome::Kr(kr) => {
                        let known = [
                            KERN_SUCCESS,
                            KERN_INVALID_ADDRESS,
                            KERN_PROTECTION_FAILURE,
                            KERN_NO_SPACE,
                            KERN_INVALID_ARGUMENT,
                            KERN_RESOURCE_SHORTAGE,
                            MACH_SEND_INVALID_DEST,
                            MACH_SEND_INVALID_MEMORY,
                        ];
                        assert!(known.contains(&kr), "round {round}: {call:?} gave {kr}");
                    }
                    Outcome::Port(name) => assert!(
                        [TASK_SELF_NAME, HOST_SELF_NAME].contains(&name),
                        "round {round}: {call:?} gave port {name:#x}"
                    ),
                    Outcome::Trap(_) => {}
                }
                check_invariants(&m);
            }
        }
    }

    #[test]
    fn maps_as_large_as_the_address_space_fail_without_allocating() {
        for ps in [4096, 16384] {
            let mut m = Model::new();
            let a = m.add_task(Width::W64, ps, INIT, 1 << 64);
            let b = m.add_task(Width::W32, ps, INIT, 1 << 32);
            let before = m.clone();
            let put = |m: &mut Model, t: usize, v: u64| {
                m.memory_mut(t)[SCR as usize..SCR as usize + 8].copy_from_slice(&v.to_le_bytes())
            };
            // Growth the process cannot hold: KERN_RESOURCE_SHORTAGE, nothing changed.
            for (hint, size, flags) in [
                (1u64 << 63, ps, 0),
                (u64::MAX - 2 * ps + 1, ps, 0),
                (0, 1 << 63, ANY),
                (0, u64::MAX - 2 * ps, OVER),
            ] {
                put(&mut m, a, hint);
                let call = Call::Allocate {
                    form: Form::Vm,
                    task: ME,
                    addr_ptr: SCR,
                    size,
                    flags: VmFlags(flags),
                };
                assert_eq!(
                    m.call(a, &call),
                    kr(KERN_RESOURCE_SHORTAGE),
                    "{hint:#x} {size:#x}"
                );
            }
            // Runs that do not fit below 2^64.
            put(&mut m, a, 0);
            let call = Call::Allocate {
                form: Form::MachVm,
                task: ME,
                addr_ptr: SCR,
                size: u64::MAX - 2 * ps,
                flags: VmFlags(ANY),
            };
            assert_eq!(m.call(a, &call), kr(KERN_NO_SPACE));
            put(&mut m, a, u64::MAX - ps + 1);
            let call = Call::Allocate {
                form: Form::MachVm,
                task: ME,
                addr_ptr: SCR,
                size: 1,
                flags: VmFlags(0),
            };
            assert_eq!(m.call(a, &call), kr(KERN_INVALID_ADDRESS));
            put(&mut m, b, 0xFFFF_F000);
            let call = Call::Allocate {
                form: Form::Vm,
                task: ME,
                addr_ptr: SCR,
                size: 1,
                flags: VmFlags(0),
            };
            assert_eq!(m.call(b, &call), kr(KERN_INVALID_ADDRESS));
            put(&mut m, a, 0);
            put(&mut m, b, 0);
            assert_same(&m, &before);
            // Everything else answers at once.
            for (t, top) in [(a, u64::MAX), (b, 0xFFFF_FFFF)] {
                for f in [Form::Vm, Form::MachVm] {
                    let calls = [
                        Call::Copy {
                            form: f,
                            task: ME,
                            src: 0,
                            size: top - ps,
                            dst: 0,
                        },
                        Call::Copy {
                            form: f,
                            task: ME,
                            src: 0,
                            size: 0x10,
                            dst: top - 0x2_0000,
                        },
                        Call::Protect {
                            form: f,
                            task: ME,
                            addr: 0,
                            size: top - 2 * ps,
                            set_max: 0,
                            prot: VmProt(1),
                        },
                        Call::Protect {
                            form: f,
                            task: ME,
                            addr: INIT,
                            size: top - INIT - 2 * ps,
                            set_max: 0,
                            prot: VmProt(1),
                        },
                        Call::ReadOverwrite {
                            form: f,
                            task: ME,
                            addr: top - 0x3_0000,
                            size: 0x100,
                            data: 0,
                            outsize_ptr: SCR,
                        },
                        Call::Write {
                            form: f,
                            task: ME,
                            addr: top - 0x3_0000,
                            data: 0,
                            count: u32::MAX,
                        },
                        Call::Read {
                            form: f,
                            task: ME,
                            addr: 0,
                            size: 0xFFFF_FFFF,
                            data_ptr: SCR,
                            count_ptr: SCR2,
                        },
                    ];
                    for call in calls {
                        assert!(
                            matches!(m.call(t, &call), Outcome::Kr(r) if r != KERN_SUCCESS),
                            "{call:?}"
                        );
                    }
                }
            }
            assert_same(&m, &before);
            // The whole map: every page goes, the memory stays.
            for (t, top) in [(a, u64::MAX), (b, 0xFFFF_FFFF)] {
                let call = Call::Deallocate {
                    form: Form::MachVm,
                    task: ME,
                    addr: 0,
                    size: top - ps,
                };
                assert_eq!(m.call(t, &call), ok());
                assert!((0..INIT / ps).all(|i| m.page(t, i).is_none()));
                assert_eq!(m.memory(t).len() as u64, INIT);
            }
        }
    }

    /// A 32-bit guest whose memory is the whole 4 GiB (calloc'ed, so only touched pages cost):
    /// the edge where `end == 2^32` counts as wrapping for word-sized calls.
    #[test]
    fn a_full_4_gib_memory_at_the_top_edge() {
        for ps in [4096u64, 16384] {
            let mut m = Model::new();
            let t = m.add_task(Width::W32, ps, 1 << 32, 1 << 32);
            let last = (1u64 << 32) - ps;
            let word = |m: &Model, x: u64| {
                u64::from(u32::from_le_bytes(
                    m.memory(t)[x as usize..x as usize + 4].try_into().unwrap(),
                ))
            };
            let put = |m: &mut Model, x: u64, v: u32| {
                m.memory_mut(t)[x as usize..x as usize + 4].copy_from_slice(&v.to_le_bytes())
            };
            let region = |form| Call::Region {
                form,
                task: ME,
                addr_ptr: SCR,
                size_ptr: SCR + 8,
                flavor: 9,
                info_ptr: INFO,
                count_ptr: SCR2,
                object_name_ptr: SCR2 + 8,
            };
            put(&mut m, SCR2, 9);
            // One region covering 4 GiB: its end does not fit in 32 bits.
            put(&mut m, SCR, 0);
            assert_eq!(m.call(t, &region(Form::Vm)), kr(KERN_INVALID_ADDRESS));
            assert_eq!(m.call(t, &region(Form::MachVm)), ok());
            assert_eq!(
                u64::from_le_bytes(
                    m.memory(t)[SCR as usize + 8..SCR as usize + 16]
                        .try_into()
                        .unwrap()
                ),
                1 << 32
            );
            // A region that ends at 2^32 without covering it all: likewise (its end is 2^32).
            let prot = |form, addr, size| Call::Protect {
                form,
                task: ME,
                addr,
                size,
                set_max: 0,
                prot: VmProt(1),
            };
            assert_eq!(
                m.call(t, &prot(Form::Vm, last, ps)),
                kr(KERN_INVALID_ARGUMENT),
                "end == 2^32 wraps"
            );
            assert_eq!(m.call(t, &prot(Form::MachVm, last, ps)), ok());
            put(&mut m, SCR, 0);
            assert_eq!(m.call(t, &region(Form::Vm)), ok());
            assert_eq!((word(&m, SCR), word(&m, SCR + 8)), (0, last));
            put(&mut m, SCR, last as u32);
            assert_eq!(m.call(t, &region(Form::Vm)), kr(KERN_INVALID_ADDRESS));
            // vm_copy into the last page: round(dst + size) wraps to 0 in 32 bits only.
            let copy = |form, dst| Call::Copy {
                form,
                task: ME,
                src: 0,
                size: 0x10,
                dst,
            };
            assert_eq!(m.call(t, &prot(Form::MachVm, last, ps)), ok());
            let rw = Call::Protect {
                form: Form::MachVm,
                task: ME,
                addr: last,
                size: ps,
                set_max: 0,
                prot: VmProt(3),
            };
            assert_eq!(m.call(t, &rw), ok());
            assert_eq!(m.call(t, &copy(Form::Vm, last)), kr(KERN_INVALID_ADDRESS));
            assert_eq!(m.call(t, &copy(Form::MachVm, last)), ok());
            // Scalar parameters: [p, p + 4) reaching 2^32 wraps, one word lower is fine.
            let hps = |size_ptr| Call::HostPageSize {
                host: MachPort(0),
                size_ptr,
            };
            assert!(trap(&m.call(t, &hps(0xFFFF_FFFC))).reason.contains("wraps"));
            assert_eq!(m.call(t, &hps(0xFFFF_FFF8)), ok());
            // vm_deallocate of the last page wraps; mach_vm_deallocate removes it.
            let dealloc = |form| Call::Deallocate {
                form,
                task: ME,
                addr: last,
                size: ps,
            };
            assert_eq!(m.call(t, &dealloc(Form::Vm)), kr(KERN_INVALID_ARGUMENT));
            assert_eq!(m.page(t, last / ps), Some(PageAttrs::DEFAULT));
            assert_eq!(m.call(t, &dealloc(Form::MachVm)), ok());
            assert_eq!(m.page(t, last / ps), None);
            // FIXED there: the word-sized form wraps, the 64-bit form maps it (zeroed).
            let alloc = |form, flags| Call::Allocate {
                form,
                task: ME,
                addr_ptr: SCR,
                size: ps,
                flags,
            };
            put(&mut m, SCR, last as u32);
            m.memory_mut(t)[SCR as usize + 4..SCR as usize + 8].fill(0);
            assert_eq!(
                m.call(t, &alloc(Form::Vm, VmFlags(0))),
                kr(KERN_INVALID_ADDRESS)
            );
            assert_eq!(m.call(t, &alloc(Form::MachVm, VmFlags(0))), ok());
            assert!(m.memory(t)[last as usize..].iter().all(|&b| b == 0));
            // ANYWHERE searches all of [0, L): the word-sized form may hand out the last page.
            assert_eq!(m.call(t, &dealloc(Form::MachVm)), ok());
            assert_eq!(m.call(t, &alloc(Form::Vm, VmFlags(ANY))), ok());
            assert_eq!(word(&m, SCR), last);
            assert_eq!(m.memory(t).len() as u64, 1 << 32);
            assert_eq!(m.call(t, &alloc(Form::Vm, VmFlags(ANY))), kr(KERN_NO_SPACE));
        }
    }
}
