//! Memory entries (spec §8): `mach_make_memory_entry_64` makes one, `vm_map` maps one (or
//! fresh memory), `mach_port_deallocate` drops a name of one.
//!
//! An entry is a port of the kernel, named in one or more namespaces ([`super::Right`]);
//! its state is an [`Entry`] in the kernel's [`Entries`]: the objects it names, part by part
//! (the same share ids and object offsets as the pages that map them), and the pages
//! themselves, which the host keeps alive for it ([`Env::hold`]) until its last name goes.

use super::memory::{map_fresh, place};
use super::params::{body_port, check_error_kr, load_param, resolve, store_param};
use super::share::{give_objects, map_backed};
use super::{kr, sync, At, EntryId, Env, Fill, Hold, PortTarget, Ret, Right, Step, TaskId};
use crate::abi::*;

/// One part of an entry: `pages` pages of shared object `share`, the first at object offset
/// `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryPart {
    /// How many pages.
    pub pages: u64,
    /// The shared object ([`PageAttrs::share`]), never 0.
    pub share: u32,
    /// The object offset of the first page.
    pub offset: u64,
}

/// A memory entry's state (XNU's `vm_named_entry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its size in bytes, whole pages of the task that made it.
    pub size: u64,
    /// log2 of that task's page size.
    pub page_shift: u32,
    /// Where the data starts in the first page (`MAP_MEM_USE_DATA_ADDR`), else 0.
    pub data_offset: u64,
    /// The most any mapping of it may allow (the permission's protection bits).
    pub protection: VmProt,
    /// Made with `MAP_MEM_VM_SHARE` or `MAP_MEM_VM_COPY` (XNU's `is_copy`): it cannot be a
    /// parent, and `vm_map` maps it whole.
    pub is_copy: bool,
    /// The cache mode last set (the permission's top byte; `MAP_MEM_ONLY` changes it).
    pub access: u32,
    /// The objects it names, in order, tiling its pages.
    pub parts: Vec<EntryPart>,
    /// The namespaces' names for it (a name with several user references counts once).
    names: u32,
}

impl Entry {
    /// The parts of its pages `[first, first + n)`.
    fn parts_within(&self, first: u64, n: u64) -> Vec<EntryPart> {
        let mut out = Vec::new();
        let mut pos = 0;
        for p in &self.parts {
            let (lo, hi) = (pos.max(first), (pos + p.pages).min(first + n));
            if lo < hi {
                out.push(EntryPart {
                    pages: hi - lo,
                    share: p.share,
                    offset: p.offset + ((lo - pos) << self.page_shift),
                });
            }
            pos += p.pages;
        }
        out
    }
}

/// The memory entries of a kernel, by id, and the bytes they hold.
#[derive(Clone, Debug)]
pub struct Entries {
    slots: Vec<Option<Entry>>,
    bytes: u64,
    limit: u64,
}

impl Entries {
    /// No entries; together they may hold at most `limit` bytes (a kernel setting): an
    /// entry past it is refused with `KERN_RESOURCE_SHORTAGE`.
    pub fn new(limit: u64) -> Entries {
        Entries {
            slots: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// The entry `id`, while a name refers to it.
    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    /// The entry `id`, to change.
    fn get_mut(&mut self, id: EntryId) -> Option<&mut Entry> {
        self.slots.get_mut(id.0 as usize)?.as_mut()
    }

    /// Every live entry, with its id.
    pub fn iter(&self) -> impl Iterator<Item = (EntryId, &Entry)> + '_ {
        let live = self.slots.iter().enumerate();
        live.filter_map(|(i, e)| Some((EntryId(i as u32), e.as_ref()?)))
    }

    /// The bytes the live entries hold together.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True when an entry of `size` bytes more fits the limit.
    fn fits(&self, size: u64) -> bool {
        self.bytes
            .checked_add(size)
            .is_some_and(|b| b <= self.limit)
    }

    /// Adds `entry` (named nowhere yet: [`Entries::named`] follows) at the lowest free id.
    fn add(&mut self, entry: Entry) -> EntryId {
        self.bytes += entry.size;
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(entry);
                EntryId(i as u32)
            }
            None => {
                self.slots.push(Some(entry));
                EntryId((self.slots.len() - 1) as u32)
            }
        }
    }

    /// Counts one more name for `id`.
    pub(crate) fn named(&mut self, id: EntryId) {
        if let Some(Some(e)) = self.slots.get_mut(id.0 as usize) {
            e.names += 1;
        }
    }

    /// Counts one name less for `id`; true when that was its last (it is gone then).
    pub(crate) fn unnamed(&mut self, id: EntryId) -> bool {
        let Some(slot) = self.slots.get_mut(id.0 as usize) else {
            return false;
        };
        let Some(e) = slot else {
            return false;
        };
        e.names = e.names.saturating_sub(1);
        if e.names > 0 {
            return false;
        }
        self.bytes -= e.size;
        *slot = None;
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        true
    }

    /// The shared objects the live entries name.
    pub fn shares(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter()
            .flat_map(|(_, e)| e.parts.iter().map(|p| p.share))
    }
}

/// Drops rights that left a namespace: an entry whose last name went is forgotten and its
/// pages given back ([`Env::release_entry`]).
pub(crate) fn rights_dropped<E: Env + ?Sized>(env: &mut E, rights: &[Right]) {
    for &right in rights {
        if let Right::Entry(id) = right {
            if env.entries().is_some_and(|es| es.unnamed(id)) {
                env.release_entry(id);
            }
        }
    }
}

/// A memory-entry port passed in a message's body ([`body_port`]): the entry it names,
/// `None` for null, dead and every port that is not an entry.
fn body_entry<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    port: MachPort,
) -> Step<Option<EntryId>> {
    Ok(match body_port(env, caller, name, port)? {
        Some(PortTarget::Entry(e)) => Some(e),
        _ => None,
    })
}

/// The answer of `mach_make_memory_entry_64` once the entry is decided: its handle (a new
/// entry, an existing one named again, or none) and `*size`.
enum Made {
    /// A new entry, the pages it holds, and whether it is a new object of its own (whose
    /// id is taken once its pages are held).
    New(Entry, Hold, bool),
    Again(EntryId, u64),
    Null(u64),
}

/// `mach_make_memory_entry_64` / `mach_make_memory_entry` (spec §8, XNU 10002's table).
#[allow(clippy::too_many_arguments)]
pub(super) fn make_entry<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    size_ptr: u64,
    offset: u64,
    permission: u32,
    handle_ptr: u64,
    parent: MachPort,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    // The in-out size is read to build the message; then the destination, the body's port.
    let size = load_param(env, caller, name, "size", size_ptr, w.bytes())?;
    let t = resolve(env, caller, task)?;
    let parent = body_entry(env, caller, name, parent)?;
    sync(env, t);
    let made = decide(env, caller, t, size, offset, permission, parent)?;
    // Every check passed: the entry, its name, then the pages it holds.
    let (handle, size_out) = match made {
        Made::Null(size) => (MACH_PORT_NULL, size),
        Made::Again(id, size) => {
            let Some(handle) = env.vm(caller).insert(Right::Entry(id)) else {
                return kr(KERN_RESOURCE_SHORTAGE);
            };
            (handle, size)
        }
        Made::New(entry, hold, new_object) => {
            let size = entry.size - entry.data_offset;
            // `decide` found room for it.
            let Some(entries) = env.entries() else {
                return kr(KERN_NOT_SUPPORTED);
            };
            let id = entries.add(entry);
            entries.named(id);
            if !env.hold(id, hold) {
                rights_dropped(env, &[Right::Entry(id)]);
                return kr(KERN_RESOURCE_SHORTAGE);
            }
            if new_object {
                let share = env.new_share();
                if let Some(e) = env.entries().and_then(|es| es.get_mut(id)) {
                    let pages = e.size >> e.page_shift;
                    e.parts = vec![EntryPart {
                        pages,
                        share,
                        offset: 0,
                    }];
                }
            }
            let Some(handle) = env.vm(caller).insert(Right::Entry(id)) else {
                rights_dropped(env, &[Right::Entry(id)]);
                return kr(KERN_RESOURCE_SHORTAGE);
            };
            (handle, size)
        }
    };
    store_param(
        env,
        caller,
        name,
        "size",
        size_ptr,
        w.truncate(size_out),
        w.bytes(),
    )?;
    store_param(
        env,
        caller,
        name,
        "object_handle",
        handle_ptr,
        u64::from(handle.0),
        4,
    )?;
    Ok(KERN_SUCCESS.into())
}

/// The rows of `mach_make_memory_entry_64`, in XNU's order, for task `t` (synced), made by
/// `caller`: what the call makes, or its error. Once every row passed, a new entry must fit
/// the kernel's limit and `caller`'s namespace (`KERN_RESOURCE_SHORTAGE`); only then does
/// anything change: the source's pages' objects (a range that is shared is given objects
/// first, as XNU marks its entries shared) and the next object id.
fn decide<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    t: TaskId,
    size: u64,
    offset: u64,
    permission: u32,
    parent: Option<EntryId>,
) -> Step<Made> {
    let flag = |f: u32| permission & f != 0;
    if permission & MAP_MEM_FLAGS_MASK & !MAP_MEM_FLAGS_USER != 0 {
        return kr(KERN_INVALID_VALUE);
    }
    let parent = parent.and_then(|id| Some((id, env.entries()?.get(id)?.clone())));
    if parent.as_ref().is_some_and(|(_, p)| p.is_copy) {
        return kr(KERN_INVALID_ARGUMENT);
    }
    let vm = env.vm(t);
    let shift = vm.page_shift();
    let p = vm.page_size();
    // vm_map_range_overflows, in 64 bits.
    let end = u128::from(offset) + u128::from(size);
    let round = |x: u128| (x + u128::from(p - 1)) & !u128::from(p - 1);
    if size != 0 && (end > u128::from(u64::MAX) || round(end) > u128::from(u64::MAX)) {
        return kr(KERN_INVALID_ADDRESS);
    }
    let prot = VmProt(permission as i32) & VM_PROT_ALL;
    let is_mask = flag(VM_PROT_IS_MASK.0 as u32);
    let access = permission >> 24;
    let data_addr = flag(MAP_MEM_USE_DATA_ADDR) || flag(MAP_MEM_4K_DATA_ADDR);
    let map_start = offset & !(p - 1);
    // `end` fits 64 bits; rounded, it wraps to 0 at most (size 0 only), as in XNU.
    let map_end = round(end) as u64;
    let map_size = map_end.wrapping_sub(map_start);
    let in_page = |start: u64| {
        if !data_addr {
            0
        } else if flag(MAP_MEM_4K_DATA_ADDR) {
            (offset - start) & !0xFFF
        } else {
            offset - start
        }
    };
    if flag(MAP_MEM_ONLY) {
        // Only a parent object's cache mode: no entry, a null handle.
        let Some((id, parent)) = parent.filter(|_| !data_addr) else {
            return kr(KERN_INVALID_ARGUMENT);
        };
        if access != parent.access && !parent.protection.intersects(VM_PROT_WRITE) {
            return kr(KERN_INVALID_RIGHT);
        }
        if let Some(e) = env
            .entries()
            .and_then(|es| es.slots[id.0 as usize].as_mut())
        {
            if access != 0 {
                e.access = access;
            }
        }
        return Ok(Made::Null(size));
    }
    if flag(MAP_MEM_NAMED_CREATE) {
        if map_size == 0 {
            return Ok(Made::Null(0));
        }
        if map_end == 0 {
            return kr(KERN_INVALID_ARGUMENT);
        }
        if data_addr {
            return kr(KERN_INVALID_ARGUMENT);
        }
        // ANON_MAX_SIZE: 2^32 - 1 pages.
        if map_size >> shift > u64::from(u32::MAX) {
            return kr(KERN_FAILURE);
        }
        if flag(MAP_MEM_PURGABLE) && !prot.intersects(VM_PROT_WRITE) {
            return kr(KERN_INVALID_ARGUMENT);
        }
        if !env.can_share(t) {
            return kr(KERN_NOT_SUPPORTED);
        }
        room(env, caller, map_size)?;
        let entry = new_entry(shift, map_size, 0, prot, false, access);
        return Ok(Made::New(entry, Hold::Fresh { len: map_size }, true));
    }
    if flag(MAP_MEM_VM_COPY) {
        if map_size == 0 || map_end == 0 {
            return kr(KERN_INVALID_ARGUMENT);
        }
        let data_offset = in_page(map_start);
        // vm_map_copyin: the range allocated and readable, in address order.
        let (s, e) = (map_start >> shift, map_end >> shift);
        let readable =
            |a: PageAttrs| a.cur.intersects(VM_PROT_READ) && a.max.intersects(VM_PROT_READ);
        if let Err(err) = env.vm(t).table.check(s, e, readable) {
            return kr(check_error_kr(err));
        }
        if !env.can_share(t) {
            return kr(KERN_NOT_SUPPORTED);
        }
        room(env, caller, map_size)?;
        let entry = new_entry(shift, map_size, data_offset, prot, true, access);
        let hold = Hold::Copy {
            task: t,
            addr: map_start,
            len: map_size,
        };
        return Ok(Made::New(entry, hold, true));
    }
    let share_whole = flag(MAP_MEM_VM_SHARE);
    if share_whole || parent.is_none() || flag(MAP_MEM_NAMED_REUSE) {
        if map_size == 0 || map_end == 0 {
            return kr(KERN_INVALID_ARGUMENT);
        }
        let data_offset = in_page(map_start);
        let (s, e) = (map_start >> shift, map_end >> shift);
        // The pages: every one (VM_SHARE) or the first region's (a single object).
        let vm = env.vm(t);
        let e = if share_whole {
            e
        } else {
            match vm.table.run_at(s) {
                Some(run) => run.end.min(e),
                None => return kr(KERN_INVALID_ADDRESS),
            }
        };
        // Without VM_PROT_IS_MASK every page must allow `prot` (current and maximum);
        // with it, the entry gets what all of them allow of it.
        let check = if is_mask {
            vm.table.check(s, e, |_| true)
        } else {
            vm.table
                .check(s, e, |a| a.cur.contains(prot) && a.max.contains(prot))
        };
        if let Err(err) = check {
            return kr(check_error_kr(err));
        }
        let mut prot = prot;
        if is_mask {
            prot &= vm
                .table
                .segments_iter(s, e)
                .fold(VM_PROT_ALL, |c, (_, _, a)| {
                    c & a.map_or(VM_PROT_ALL, |a| a.cur)
                });
            if prot.is_none() {
                return kr(KERN_PROTECTION_FAILURE);
            }
        }
        if !env.can_share(t) {
            return kr(KERN_NOT_SUPPORTED);
        }
        let map_size = (e - s) << shift;
        // NAMED_REUSE: the parent itself when the new entry would name what it names (its
        // pages are objects already: a private page would be a new one).
        if let Some((id, parent)) = &parent {
            let segments = super::share::allocated_segments(env.vm(t), s, e);
            if flag(MAP_MEM_NAMED_REUSE)
                && !share_whole
                && segments.iter().all(|(_, _, a)| a.share != 0)
                && parent.parts == parts_of(&segments, shift)
                && parent.size == map_size
                && parent.data_offset == data_offset
                && parent.parts.first().is_some_and(|p| p.offset == 0)
            {
                give_objects(env, t, s, e)?;
                return Ok(Made::Again(*id, parent.size - parent.data_offset));
            }
        }
        room(env, caller, map_size)?;
        let parts = parts_of(&give_objects(env, t, s, e)?, shift);
        let mut entry = new_entry(shift, map_size, data_offset, prot, share_whole, access);
        entry.parts = parts;
        let hold = Hold::Share {
            task: t,
            addr: map_start,
            len: map_size,
        };
        return Ok(Made::New(entry, hold, false));
    }
    // A part of the parent's object (machvm: made in a task of this page size).
    let Some((id, parent)) = parent.filter(|(_, p)| p.page_shift == shift) else {
        return kr(KERN_INVALID_ARGUMENT);
    };
    let bad = || kr(KERN_INVALID_ARGUMENT);
    let (start, data_offset, map_size) = if data_addr {
        let Some(whole) = offset
            .checked_add(size)
            .and_then(|x| x.checked_add(parent.data_offset))
        else {
            return bad();
        };
        if whole > parent.size {
            return bad();
        }
        let from = offset + parent.data_offset;
        let start = from & !(p - 1);
        let in_page = if flag(MAP_MEM_4K_DATA_ADDR) {
            (from - start) & !0xFFF
        } else {
            from - start
        };
        let end = u128::from(from) + u128::from(size);
        if round(end) > u128::from(u64::MAX) {
            return bad();
        }
        (start, in_page, round(end) as u64 - start)
    } else {
        if map_end == 0 && size != 0 {
            return bad();
        }
        match offset.checked_add(map_size) {
            Some(x) if x <= parent.size => {}
            _ => return bad(),
        }
        (map_start, 0, map_size)
    };
    let prot = if is_mask {
        prot & parent.protection
    } else {
        prot
    };
    if !parent.protection.contains(prot) {
        return kr(KERN_PROTECTION_FAILURE);
    }
    room(env, caller, map_size)?;
    // The cache mode is the one asked (none: 0), not the parent's, as XNU's new entry.
    let mut entry = new_entry(shift, map_size, data_offset, prot, false, access);
    entry.parts = parent.parts_within(start >> shift, map_size >> shift);
    let hold = Hold::Part {
        entry: id,
        offset: start,
        len: map_size,
    };
    Ok(Made::New(entry, hold, false))
}

/// Refuses a new entry of `size` bytes that the kernel's limit, or a new name that
/// `caller`'s namespace, has no room for.
fn room<E: Env + ?Sized>(env: &mut E, caller: TaskId, size: u64) -> Step {
    let fits = env.entries().is_some_and(|es| es.fits(size));
    if !fits || !env.vm(caller).has_room() {
        return kr(KERN_RESOURCE_SHORTAGE);
    }
    Ok(())
}

/// An entry of `size` bytes of no part yet, named nowhere yet.
fn new_entry(
    page_shift: u32,
    size: u64,
    data_offset: u64,
    protection: VmProt,
    is_copy: bool,
    access: u32,
) -> Entry {
    Entry {
        size,
        page_shift,
        data_offset,
        protection,
        is_copy,
        access,
        parts: Vec::new(),
        names: 0,
    }
}

/// What `vm_map` maps: the object port, the offset in it, and whether the new pages are a
/// copy.
pub(super) struct Object {
    pub(super) port: MachPort,
    pub(super) offset: u64,
    pub(super) copy: bool,
}

/// `vm_map` / `mach_vm_map` (spec §8, XNU 10002's table): maps fresh memory (object
/// `MACH_PORT_NULL`) or a memory entry's pages, shared or copied, and answers the address.
#[allow(clippy::too_many_arguments)]
pub(super) fn map<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr_ptr: u64,
    size: u64,
    mask: u64,
    flags: u32,
    object: Object,
    prots: [VmProt; 2],
    inheritance: u32,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    let hint = load_param(env, caller, name, "address", addr_ptr, w.bytes())?;
    let t = resolve(env, caller, task)?;
    // The object travels in the body: null and dead ask for fresh memory.
    let port = body_port(env, caller, name, object.port)?;
    sync(env, t);
    let flags = VmFlags(flags);
    if !VM_FLAGS_USER_MAP.contains(flags) {
        return kr(KERN_INVALID_ARGUMENT);
    }
    let [mut cur, mut max] = prots;
    let (mask_cur, mask_max) = (
        cur.intersects(VM_PROT_IS_MASK),
        max.intersects(VM_PROT_IS_MASK),
    );
    (cur, max) = (cur.without(VM_PROT_IS_MASK), max.without(VM_PROT_IS_MASK));
    // machvm also refuses a cur not within max (as XNU from 11215 on; 10002 kept both).
    if !cur.without(VM_PROT_ALL).is_none()
        || !max.without(VM_PROT_ALL).is_none()
        || inheritance > VM_INHERIT_LAST_VALID.0
        || size == 0
        || cur & max != cur
    {
        return kr(KERN_INVALID_ARGUMENT);
    }
    let vm = env.vm(t);
    let (shift, p) = (vm.page_shift(), vm.page_size());
    // round(size) in 64 bits; 0 when it wraps.
    let Some(map_size) = size.checked_add(p - 1).map(|x| x & !(p - 1)) else {
        return kr(KERN_INVALID_ARGUMENT);
    };
    let data_addr = flags.intersects(VM_FLAGS_RETURN_DATA_ADDR | VM_FLAGS_RETURN_4K_DATA_ADDR);
    let Some(port) = port else {
        // Fresh memory (the offset and copy do not count): vm_allocate's placement, with
        // the mask and the protections and inheritance asked.
        let n = map_size >> shift;
        // A purgeable object is at most ANON_MAX_SIZE (2^32 - 1 pages).
        let purgeable = flags.intersects(VM_FLAGS_PURGABLE);
        if purgeable && n > u64::from(u32::MAX) {
            return kr(KERN_INVALID_ARGUMENT);
        }
        let s = place(env.vm(t), w, hint, n, mask, flags)?;
        let attrs = PageAttrs {
            cur,
            max,
            inherit: VmInherit(inheritance),
            ..PageAttrs::DEFAULT
        };
        map_fresh(env, t, s, s + n, attrs, purgeable)?;
        store_param(
            env,
            caller,
            name,
            "address",
            addr_ptr,
            s << shift,
            w.bytes(),
        )?;
        return Ok(KERN_SUCCESS.into());
    };
    let PortTarget::Entry(id) = port else {
        return kr(KERN_INVALID_OBJECT);
    };
    let Some(entry) = env.entries().and_then(|es| es.get(id)).cloned() else {
        return kr(KERN_INVALID_OBJECT);
    };
    let mut offset = object.offset;
    if data_addr {
        offset = offset.wrapping_add(entry.data_offset);
    }
    if mask_max {
        max &= entry.protection;
    }
    if mask_cur {
        cur &= entry.protection;
    }
    if !entry.protection.contains(max) || !entry.protection.contains(cur) {
        return kr(KERN_INVALID_RIGHT);
    }
    // vm_object_round_page(size): offset + it must not wrap.
    match offset.checked_add(map_size) {
        Some(x) if x > offset => {}
        _ => return kr(KERN_INVALID_ARGUMENT),
    }
    if u128::from(entry.size) < u128::from(offset) + u128::from(size) {
        return kr(KERN_INVALID_ARGUMENT);
    }
    // machvm: the entry's task and this one have pages of one size.
    if entry.page_shift != shift {
        return kr(KERN_INVALID_ARGUMENT);
    }
    // Which of the entry's pages, and where the data is in the first one.
    let (first, n, in_mapping) = if entry.is_copy {
        // A copy (VM_SHARE, VM_COPY) is mapped whole, whatever the offset and size, with
        // the flags of a fixed or anywhere placement only.
        let allowed = VM_FLAGS_ANYWHERE
            | VM_FLAGS_OVERWRITE
            | VM_FLAGS_RETURN_DATA_ADDR
            | VM_FLAGS_RETURN_4K_DATA_ADDR
            | VmFlags(0xFF00_0000);
        if !allowed.contains(flags) {
            return kr(KERN_INVALID_ARGUMENT);
        }
        let in_mapping = match (data_addr, flags.intersects(VM_FLAGS_RETURN_4K_DATA_ADDR)) {
            (false, _) => 0,
            (true, true) => offset & (p - 1) & !0xFFF,
            (true, false) => offset & (p - 1),
        };
        (0, entry.size >> shift, in_mapping)
    } else {
        let (offset, map_size, in_mapping) = if data_addr {
            let in_page = offset & (p - 1);
            let start = offset - in_page;
            let in_mapping = if flags.intersects(VM_FLAGS_RETURN_4K_DATA_ADDR) {
                in_page & !0xFFF
            } else {
                in_page
            };
            let len = (u128::from(in_mapping) + u128::from(size) + u128::from(p - 1))
                & !u128::from(p - 1);
            (start, len as u64, in_mapping)
        } else {
            (offset, map_size, 0)
        };
        // Purgeable objects are never entries here, and an object offset is whole pages.
        if flags.intersects(VM_FLAGS_PURGABLE) || offset & (p - 1) != 0 {
            return kr(KERN_INVALID_ARGUMENT);
        }
        (offset >> shift, map_size >> shift, in_mapping)
    };
    let ts = place(env.vm(t), w, hint, n, mask, flags)?;
    if !env.can_share(t) {
        return kr(KERN_NOT_SUPPORTED);
    }
    // The new pages: the entry's objects, or a private copy of them.
    let mut new = Vec::new();
    let mut pos = 0;
    for part in entry.parts_within(first, n) {
        pos += part.pages;
        let here = (ts + pos - part.pages) << shift;
        let (share, share_offset) = if object.copy {
            (0, 0)
        } else {
            (part.share, part.offset.wrapping_sub(here))
        };
        let attrs = PageAttrs {
            cur,
            max,
            inherit: VmInherit(inheritance),
            share,
            share_offset,
            ..PageAttrs::DEFAULT
        };
        new.push((pos, attrs));
    }
    let from = first << shift;
    let fill = if object.copy {
        Fill::EntryCopy {
            entry: id,
            offset: from,
        }
    } else {
        Fill::Entry {
            entry: id,
            offset: from,
        }
    };
    map_backed(env, t, ts, n, new, fill)?;
    let out = (ts << shift) + in_mapping;
    store_param(env, caller, name, "address", addr_ptr, out, w.bytes())?;
    Ok(KERN_SUCCESS.into())
}

/// `mach_port_deallocate(task, name)` (spec §8): drops a user reference of a name of the
/// task's namespace; the entry behind the last name of it goes with it.
pub(super) fn port_deallocate<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    port: MachPort,
) -> Step<Ret> {
    let t = resolve(env, at.caller, task)?;
    if port == MACH_PORT_NULL || port == MACH_PORT_DEAD {
        return Ok(KERN_SUCCESS.into());
    }
    let vm = env.vm(t);
    match port {
        // The task's own port and the host port: rights no task may drop.
        TASK_SELF_NAME | HOST_SELF_NAME => kr(KERN_INVALID_RIGHT),
        _ => match vm.drop_name(port) {
            Err(()) => {
                tracing::warn!(
                    target: "machvm::guard",
                    call = at.name,
                    name = format_args!("{port:#x}"),
                    "guard exception: mach_port_deallocate of a name the task does not hold"
                );
                kr(KERN_INVALID_NAME)
            }
            Ok(dropped) => {
                rights_dropped(env, &dropped.into_iter().collect::<Vec<_>>());
                Ok(KERN_SUCCESS.into())
            }
        },
    }
}

/// The parts of shared pages' segments (see [`give_objects`]): runs of one object at
/// consecutive offsets.
fn parts_of(segments: &[(u64, u64, PageAttrs)], shift: u32) -> Vec<EntryPart> {
    let mut parts: Vec<EntryPart> = Vec::new();
    for &(a, b, x) in segments {
        let offset = x.object_offset(a << shift);
        match parts.last_mut() {
            Some(last)
                if last.share == x.share
                    && last.offset.wrapping_add(last.pages << shift) == offset =>
            {
                last.pages += b - a;
            }
            _ => parts.push(EntryPart {
                pages: b - a,
                share: x.share,
                offset,
            }),
        }
    }
    parts
}
