//! The semantics of every Mach call (spec §3 parameters and §4 decision tables), written
//! once against [`Env`], an abstraction of "the tasks and their memory bytes".
//!
//! The Wasmtime imports implement [`Env`] over a `Caller`, the host-side API over a
//! `StoreContextMut`; the logic here holds no Wasmtime type.
//!
//! This file holds a task's VM state ([`TaskVm`]), the [`Env`] it runs against and the
//! dispatch of [`call`]; each call family has a file of its own: `memory` (allocate,
//! deallocate, protect, wire), `transfer` (copy, read, write), `query` (regions, page
//! queries, statistics), `advice` (behavior, msync) and `purgeable`. Beside them: `params`
//! (the checks of ranges, ports and scalar parameters), `change` (the one transaction that
//! changes a table, its hardware and the mapping budget), `windows` (the fast paths and the
//! copy windows) and `budget` (the process's mapping budget).

use crate::abi::*;

mod advice;
pub mod budget;
mod change;
mod entry;
mod memory;
mod params;
mod purgeable;
mod query;
mod share;
#[cfg(test)]
mod tests;
mod transfer;
mod windows;

use crate::table::PageTable;
use change::{boundaries_around, recount, Edit};
use params::store_param;

pub(crate) use change::release_mappings;
#[cfg(feature = "testing")]
pub(crate) use change::reset;
pub use entry::{Entries, Entry, EntryPart};
pub use purgeable::purge_volatile;
pub use windows::{
    allows_fast, close_windows, copy_succeeds, open_windows, window, windows_hold, FAST_WRITE,
};

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

/// A memory entry of a kernel (spec §8): a port that names pages of objects, made by
/// `mach_make_memory_entry_64` and mapped by `vm_map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub(crate) u32);

/// What a port name in a namespace denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortTarget {
    /// A task's task port (a send right to it).
    Task(TaskId),
    /// The host port (`mach_host_self`): not a task.
    Host,
    /// A memory entry (a send right to it): not a task.
    Entry(EntryId),
}

/// A send right a namespace holds under a name of its own (the task's own port and the
/// host port have fixed names and are not among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Right {
    /// A send right to a task's port.
    Task(TaskId),
    /// A send right to a memory entry.
    Entry(EntryId),
}

/// The most names a namespace holds besides its two fixed ones; a call that would add one
/// more answers `KERN_RESOURCE_SHORTAGE` (machvm's bound on a guest's port space).
pub const MAX_NAMES: usize = 1 << 16;

/// The most user references one name holds (XNU's `MACH_PORT_UREFS_MAX`): once there, they
/// stay (neither insertions nor deallocations change them).
const MAX_UREFS: u32 = 0xFFFF;

/// One slot of a namespace: its generation (the name's low byte) and the right it holds
/// with its user references, `None` once the name is deallocated.
#[derive(Clone, Copy, Debug)]
struct Slot {
    gen: u8,
    held: Option<(Right, u32)>,
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
    /// Send rights under names of their own: slot `i` has name `(i + 3) << 8 | gen`, the
    /// generation 3 at first and 4 more each time the slot is used again (so a name once
    /// deallocated names nothing until its slot has gone round 64 times).
    rights: Vec<Slot>,
    me: TaskId,
    /// The copy windows (see [`open_windows`]): read, write, as byte ranges `[lo, hi)`;
    /// `lo == hi` when closed.
    windows: [(u64, u64); 2],
    /// The kernel mappings this task's hardware protections account for, taken from the
    /// process's budget ([`crate::enforce::mapping_budget`]): [`hw_boundaries`](change::hw_boundaries) over its
    /// whole table. Only enforced tasks count (see [`change`]); given back by
    /// [`release_mappings`].
    mappings: u64,
    /// Write-only pages are inaccessible in hardware until their first store (see
    /// [`crate::enforce::hw_prot_of`]), which the counts of [`hw_boundaries`](change::hw_boundaries) follow.
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
    pub fn lookup_port(&self, name: MachPort) -> Option<PortTarget> {
        match name {
            TASK_SELF_NAME => Some(PortTarget::Task(self.me)),
            HOST_SELF_NAME => Some(PortTarget::Host),
            _ => match self.rights[self.slot_of(name)?].held? {
                (Right::Task(t), _) => Some(PortTarget::Task(t)),
                (Right::Entry(e), _) => Some(PortTarget::Entry(e)),
            },
        }
    }

    /// The slot a name of its own denotes, while it holds a right.
    fn slot_of(&self, MachPort(n): MachPort) -> Option<usize> {
        let i = (n >> 8).checked_sub(3)? as usize;
        let slot = self.rights.get(i)?;
        (slot.held.is_some() && u32::from(slot.gen) == n & 0xFF).then_some(i)
    }

    /// The rights this namespace holds under names of its own, with their names, in slot
    /// order.
    pub fn rights(&self) -> impl Iterator<Item = (MachPort, Right)> + '_ {
        self.rights.iter().enumerate().filter_map(|(i, slot)| {
            let (right, _) = slot.held?;
            Some((
                MachPort((((i as u32) + 3) << 8) | u32::from(slot.gen)),
                right,
            ))
        })
    }

    /// Inserts a send right to `to` into this namespace and returns its name: the name the
    /// namespace already has for it, with one more user reference (the task's own port
    /// keeps its fixed name), else a new one. `None` when the namespace holds
    /// [`MAX_NAMES`] names already.
    pub fn insert_right(&mut self, to: TaskId) -> Option<MachPort> {
        if to == self.me {
            return Some(TASK_SELF_NAME);
        }
        self.insert(Right::Task(to))
    }

    /// Inserts a send right (see [`TaskVm::insert_right`]).
    pub(crate) fn insert(&mut self, right: Right) -> Option<MachPort> {
        let name = |i: usize, gen: u8| MachPort((((i as u32) + 3) << 8) | u32::from(gen));
        if let Some(i) = self
            .rights
            .iter()
            .position(|s| s.held.is_some_and(|(r, _)| r == right))
        {
            let slot = &mut self.rights[i];
            if let Some((_, urefs)) = &mut slot.held {
                *urefs = (*urefs + 1).min(MAX_UREFS);
            }
            return Some(name(i, slot.gen));
        }
        let i = match self.rights.iter().position(|s| s.held.is_none()) {
            Some(i) => {
                let slot = &mut self.rights[i];
                slot.gen = slot.gen.wrapping_add(4);
                i
            }
            None if self.rights.len() < MAX_NAMES => {
                self.rights.push(Slot { gen: 3, held: None });
                self.rights.len() - 1
            }
            None => return None,
        };
        self.rights[i].held = Some((right, 1));
        Some(name(i, self.rights[i].gen))
    }

    /// True when a new name would fit (see [`MAX_NAMES`]).
    pub(crate) fn has_room(&self) -> bool {
        self.rights.len() < MAX_NAMES || self.rights.iter().any(|s| s.held.is_none())
    }

    /// Drops one user reference of `name`'s right: the right it held when that was its
    /// last (the name then names nothing), else `None`. `Err(())` when the name holds no
    /// right (not one of the namespace's own names).
    pub(crate) fn drop_name(&mut self, name: MachPort) -> Result<Option<Right>, ()> {
        let i = self.slot_of(name).ok_or(())?;
        let slot = &mut self.rights[i];
        match slot.held {
            Some((right, 1)) => {
                slot.held = None;
                Ok(Some(right))
            }
            // At the most, the references stay (XNU's pegged user references).
            Some((_, MAX_UREFS)) => Ok(None),
            Some((right, urefs)) => {
                slot.held = Some((right, urefs - 1));
                Ok(None)
            }
            None => Err(()),
        }
    }

    /// Drops every name of its own; the rights they held.
    #[cfg(feature = "testing")]
    pub(crate) fn drop_names(&mut self) -> Vec<Right> {
        let dropped = self.rights.iter().filter_map(|s| s.held).map(|(r, _)| r);
        let dropped = dropped.collect();
        self.rights.clear();
        dropped
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

/// What backs part of a range of a task's pages after a change (see [`Env::back`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Fresh pages, reading zero: what a freed or replaced mapping of a shared object gets,
    /// so that the object's other mappings keep their data.
    Fresh,
    /// What backs the pages now (they are not part of the change).
    Keep,
    /// The pages behind task `task`'s bytes from `addr` on: both ranges then show the same
    /// bytes (`vm_remap` without copy). Taken before anything is replaced, so the ranges may
    /// overlap.
    Share {
        /// The task whose pages are shared.
        task: TaskId,
        /// Where they start in its memory (bytes, page-aligned).
        addr: u64,
    },
    /// Fresh pages holding a copy of task `task`'s bytes from `addr` on, read whatever their
    /// protection and before anything is replaced (`vm_remap` with copy, `VM_PROT_COPY`).
    Copy {
        /// The task whose bytes are copied.
        task: TaskId,
        /// Where they start in its memory (bytes, page-aligned).
        addr: u64,
    },
    /// The pages memory entry `entry` holds, from byte `offset` of it on (`vm_map` without
    /// copy).
    Entry {
        /// The entry.
        entry: EntryId,
        /// Where in it (bytes, page-aligned).
        offset: u64,
    },
    /// Fresh pages holding a copy of what memory entry `entry` holds from byte `offset` on
    /// (`vm_map` with copy).
    EntryCopy {
        /// The entry.
        entry: EntryId,
        /// Where in it (bytes, page-aligned).
        offset: u64,
    },
}

/// The pages a new memory entry holds (see [`Env::hold`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The pages behind task `task`'s bytes `[addr, addr + len)`: the entry shares them.
    Share {
        /// The task.
        task: TaskId,
        /// Where they start (bytes, page-aligned).
        addr: u64,
        /// How many bytes (whole pages).
        len: u64,
    },
    /// Fresh pages holding a copy of task `task`'s bytes `[addr, addr + len)`, read
    /// whatever their protection.
    Copy {
        /// The task.
        task: TaskId,
        /// Where they start (bytes, page-aligned).
        addr: u64,
        /// How many bytes (whole pages).
        len: u64,
    },
    /// `len` bytes of fresh zero pages.
    Fresh {
        /// How many bytes (whole pages).
        len: u64,
    },
    /// The pages entry `entry` holds, `[offset, offset + len)` of them.
    Part {
        /// The parent entry.
        entry: EntryId,
        /// Where in it (bytes, page-aligned).
        offset: u64,
        /// How many bytes (whole pages).
        len: u64,
    },
}

/// How [`Env::back`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backed {
    /// The range is backed as asked.
    Done,
    /// Nothing changed (the memory cannot share pages, the mapping budget or the kernel
    /// refused); the range's hardware protection may have changed.
    Refused,
    /// The kernel refused, and part of the range may be left unmapped: the task must stop.
    Hole,
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
    /// True when task `t`'s memory can share pages with other mappings (a memory backed by
    /// shared memory files: spec §8). The default: false.
    fn can_share(&mut self, _t: TaskId) -> bool {
        false
    }
    /// A shared object id that no object of the kernel has had yet (never 0; after 2^32 - 1
    /// objects, the lowest id no page of the kernel's tasks has). The default: always 1
    /// (only asked for on memories that can share, [`Env::can_share`]).
    fn new_share(&mut self) -> u32 {
        1
    }
    /// Replaces what backs task `t`'s bytes from `addr` on (page-aligned, inside its memory)
    /// with `plan`'s parts in order, each `(pages, fill)` in the task's pages. The range is
    /// left inaccessible in hardware when the task is enforced (the caller mirrors its table
    /// over it next), read-write otherwise. Only called on memories that can share
    /// ([`Env::can_share`]). The default refuses.
    fn back(&mut self, _t: TaskId, _addr: u64, _plan: &[(u64, Fill)]) -> Backed {
        Backed::Refused
    }
    /// Takes from the process's mapping budget, before task `t`'s memory grows for a
    /// change whose [`Env::back`] is `plan` at `addr`, what that growth and `plan` could take
    /// at most, so that the memory grows only when `plan` can be afforded; false when the
    /// budget cannot afford it. [`Env::unprepay`] follows, whatever happened. The default
    /// succeeds.
    fn prepay(&mut self, _t: TaskId, _addr: u64, _plan: &[(u64, Fill)]) -> bool {
        true
    }
    /// Gives back what [`Env::prepay`] took and the change did not use. The default does
    /// nothing.
    fn unprepay(&mut self, _t: TaskId) {}
    /// The kernel's memory entries (spec §8); `None` when this environment has none (the
    /// default): the calls that make and map them answer `KERN_NOT_SUPPORTED`.
    fn entries(&mut self) -> Option<&mut Entries> {
        None
    }
    /// Makes the host keep the pages `how` names for entry `e` (just added to
    /// [`Env::entries`]) until [`Env::release_entry`]; false when it cannot (the memory
    /// cannot share, the backing file cannot grow). The default refuses.
    fn hold(&mut self, _e: EntryId, _how: Hold) -> bool {
        false
    }
    /// Gives back the pages entry `e` held: its last name is gone. The default does
    /// nothing.
    fn release_entry(&mut self, _e: EntryId) {}
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

/// `mach_vm_allocate` made by the host in task `t`'s own map: maps `size` bytes, readable
/// and writable and zero, at `addr` (or, with `VM_FLAGS_ANYWHERE` in `flags`, at the lowest
/// free range, `addr` ignored) and gives their address. The decision table is the call's
/// (spec §4), without its address parameter in guest memory.
///
/// # Errors
///
/// The call's `kern_return_t` when it is not `KERN_SUCCESS`.
pub fn allocate<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    addr: u64,
    size: u64,
    flags: VmFlags,
) -> Result<u64, KernReturn> {
    match memory::allocate_in(env, t, Width::W64, addr, size, flags) {
        Ok(at) => Ok(at),
        Err(Stop::Kr(code)) => Err(code),
        // Nothing of the guest's memory is read or written: no parameter can fault.
        Err(Stop::Trap(_)) => Err(KERN_FAILURE),
    }
}

/// What a call that did not stop answers: `KERN_SUCCESS` or, for the `*_self` calls, a
/// port name.
enum Ret {
    Kr(KernReturn),
    Port(MachPort),
}

impl From<KernReturn> for Ret {
    fn from(kr: KernReturn) -> Ret {
        Ret::Kr(kr)
    }
}

/// Who makes a call, and in which widths: what every call needs besides its parameters.
#[derive(Clone, Copy)]
struct At {
    /// The calling task, whose memory holds the call's scalar parameters.
    caller: TaskId,
    /// The call's import name, for traps and traces.
    name: &'static str,
    /// The caller's memory width: its words and buffers.
    gw: Width,
    /// The width of the call's addresses: 64 bits for a `mach_vm_*` form, else the caller's.
    w: Width,
}

/// Runs call `c` of task `caller`: its family's function, which answers or stops early.
fn run<E: Env + ?Sized>(env: &mut E, caller: TaskId, c: &Call) -> Step<Ret> {
    let gw = env.vm(caller).width;
    let at = At {
        caller,
        name: c.import_name(),
        gw,
        w: c.form().map_or(gw, |f| f.address_width(gw)),
    };
    match *c {
        Call::TaskSelf => Ok(Ret::Port(TASK_SELF_NAME)),
        Call::HostSelf => Ok(Ret::Port(HOST_SELF_NAME)),
        Call::HostPageSize { host: _, size_ptr } => {
            let p = env.vm(caller).page_size();
            store_param(env, caller, at.name, "size", size_ptr, p, gw.bytes())?;
            Ok(KERN_SUCCESS.into())
        }
        Call::Allocate {
            task,
            addr_ptr,
            size,
            flags,
            ..
        } => memory::allocate(env, at, task, addr_ptr, size, flags),
        Call::Deallocate {
            task, addr, size, ..
        } => memory::deallocate(env, at, task, addr, size),
        Call::Protect {
            task,
            addr,
            size,
            set_max,
            prot,
            ..
        } => memory::protect(env, at, task, addr, size, set_max, prot),
        Call::Wire { host, task, .. } => memory::wire(env, at, host, task),
        Call::Copy {
            task,
            src,
            size,
            dst,
            ..
        } => transfer::copy(env, at, task, src, size, dst),
        Call::ReadOverwrite {
            task,
            addr,
            size,
            data,
            outsize_ptr,
            ..
        } => transfer::read_overwrite(env, at, task, addr, size, data, outsize_ptr),
        Call::Read {
            task,
            addr,
            size,
            data_ptr,
            count_ptr,
            ..
        } => transfer::read(env, at, task, addr, size, data_ptr, count_ptr),
        Call::Write {
            task,
            addr,
            data,
            count,
            ..
        } => transfer::write(env, at, task, addr, data, count),
        Call::Region {
            task,
            addr_ptr,
            size_ptr,
            flavor,
            info_ptr,
            count_ptr,
            object_name_ptr,
            ..
        }
        | Call::VmRegion {
            task,
            addr_ptr,
            size_ptr,
            flavor,
            info_ptr,
            count_ptr,
            object_name_ptr,
        } => {
            let ptrs = [addr_ptr, size_ptr, info_ptr, count_ptr, object_name_ptr];
            query::region(env, at, task, flavor, ptrs)
        }
        Call::BehaviorSet {
            task,
            addr,
            size,
            behavior,
            ..
        } => advice::behavior_set(env, at, task, addr, size, behavior),
        Call::Inherit {
            task,
            addr,
            size,
            inheritance,
            ..
        } => advice::inherit(env, at, task, addr, size, inheritance),
        Call::Remap {
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
            ..
        } => {
            let target = share::Target {
                task: target_task,
                addr_ptr,
                mask,
                flags,
            };
            let source = share::Source {
                task: src_task,
                addr: src_addr,
                size,
                copy: copy != 0,
            };
            share::remap(env, at, target, source, [cur_ptr, max_ptr], inheritance)
        }
        Call::RegionRecurse {
            task,
            addr_ptr,
            size_ptr,
            depth_ptr,
            info_ptr,
            count_ptr,
            ..
        } => {
            let ptrs = [addr_ptr, size_ptr, depth_ptr, info_ptr, count_ptr];
            query::region_recurse(env, at, task, ptrs)
        }
        Call::MakeEntry {
            task,
            size_ptr,
            offset,
            permission,
            handle_ptr,
            parent,
            ..
        } => entry::make_entry(
            env, at, task, size_ptr, offset, permission, handle_ptr, parent,
        ),
        Call::Map {
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
            ..
        } => {
            let object = entry::Object {
                port: object,
                offset,
                copy: copy != 0,
            };
            entry::map(
                env,
                at,
                task,
                addr_ptr,
                size,
                mask,
                flags,
                object,
                [cur, max],
                inheritance,
            )
        }
        Call::PortDeallocate { task, name } => entry::port_deallocate(env, at, task, name),
        Call::Msync {
            task,
            addr,
            size,
            flags,
            ..
        } => advice::msync(env, at, task, addr, size, flags),
        Call::PageQuery {
            task,
            addr,
            disposition_ptr,
            ref_count_ptr,
            ..
        } => query::page_query(env, at, task, addr, disposition_ptr, ref_count_ptr),
        Call::PageInfo {
            task,
            addr,
            flavor,
            info_ptr,
            count_ptr,
        } => query::page_info(env, at, task, addr, flavor, info_ptr, count_ptr),
        Call::PageRangeQuery {
            task,
            addr,
            size,
            dispositions,
            count_ptr,
        } => query::page_range_query(env, at, task, addr, size, dispositions, count_ptr),
        Call::TaskInfo {
            task,
            flavor,
            info_ptr,
            count_ptr,
        } => query::task_info(env, at, task, flavor, info_ptr, count_ptr),
        Call::HostStatistics64 {
            host,
            flavor,
            info_ptr,
            count_ptr,
        } => query::host_statistics64(env, at, host, flavor, info_ptr, count_ptr),
        Call::PurgableControl {
            task,
            addr,
            control,
            state_ptr,
            ..
        } => purgeable::purgable_control(env, at, task, addr, control, state_ptr),
    }
}
