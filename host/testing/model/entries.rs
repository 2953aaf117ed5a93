//! The model's port namespaces and memory entries (spec §8): `mach_make_memory_entry_64`,
//! `vm_map`, `mach_port_deallocate`, written from the contract alone (none of it is shared
//! with `crate::vm`).

use super::{fail, round, trunc, Handled, Model, Store};
use crate::abi::*;

/// What a name of a namespace holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Held {
    /// A send right to task `usize`.
    Task(usize),
    /// A send right to memory entry `usize`.
    Entry(usize),
}

/// One slot of a namespace: name `(i + 3) << 8 | gen`; the generation starts at 3 and
/// grows by 4 each time the slot is used again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    gen: u8,
    /// The right and its user references; `None` once deallocated.
    held: Option<(Held, u32)>,
}

/// The most names a namespace holds besides its two fixed ones.
const MAX_NAMES: usize = 1 << 16;

/// A memory entry: its size, data offset, protection, kind, the objects it names (pages,
/// object, offset of the first page) and their bytes, and how many namespaces name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    size: u64,
    page_size: u64,
    data_offset: u64,
    protection: VmProt,
    is_copy: bool,
    access: u32,
    parts: Vec<(u64, u32, u64)>,
    bytes: Vec<u8>,
    names: u32,
}

impl Entry {
    /// The parts of its pages `[first, first + n)`.
    fn parts_within(&self, first: u64, n: u64) -> Vec<(u64, u32, u64)> {
        let mut out = Vec::new();
        let mut pos = 0;
        for &(pages, share, offset) in &self.parts {
            let (lo, hi) = (pos.max(first), (pos + pages).min(first + n));
            if lo < hi {
                out.push((hi - lo, share, offset + (lo - pos) * self.page_size));
            }
            pos += pages;
        }
        out
    }
}

/// A name for slot `i` of generation `gen`.
fn name(i: usize, gen: u8) -> MachPort {
    MachPort((((i as u32) + 3) << 8) | u32::from(gen))
}

impl Model {
    /// What `port` names in `task`'s namespace, if it is one of its own names.
    pub(super) fn named(&self, task: usize, port: MachPort) -> Option<Held> {
        let i = (port.0 >> 8).checked_sub(3)? as usize;
        let slot = self.tasks[task].rights.get(i)?;
        let (held, _) = slot.held?;
        (u32::from(slot.gen) == port.0 & 0xFF).then_some(held)
    }

    /// The task that `port` names in `task`'s namespace (its own port included), if any.
    pub fn port_task(&self, task: usize, port: MachPort) -> Option<usize> {
        match port {
            TASK_SELF_NAME => Some(task),
            _ => match self.named(task, port)? {
                Held::Task(t) => Some(t),
                Held::Entry(_) => None,
            },
        }
    }

    /// The names of `task`'s namespace that hold a right, in slot order (the fixed names
    /// of the task's own port and the host port are not among them).
    pub fn names(&self, task: usize) -> Vec<MachPort> {
        let slots = self.tasks[task].rights.iter().enumerate();
        slots
            .filter(|(_, s)| s.held.is_some())
            .map(|(i, s)| name(i, s.gen))
            .collect()
    }

    /// Inserts `held` into `task`'s namespace: the name it has there with one more user
    /// reference, else the lowest free slot's next name. `None` when the namespace is full.
    pub(super) fn insert(&mut self, task: usize, held: Held) -> Option<MachPort> {
        let rights = &mut self.tasks[task].rights;
        if let Some(i) = rights
            .iter()
            .position(|s| s.held.is_some_and(|(h, _)| h == held))
        {
            let slot = &mut rights[i];
            if let Some((_, urefs)) = &mut slot.held {
                *urefs = (*urefs + 1).min(0xFFFF);
            }
            return Some(name(i, slot.gen));
        }
        let i = match rights.iter().position(|s| s.held.is_none()) {
            Some(i) => {
                rights[i].gen = rights[i].gen.wrapping_add(4);
                i
            }
            None if rights.len() < MAX_NAMES => {
                rights.push(Slot { gen: 3, held: None });
                rights.len() - 1
            }
            None => return None,
        };
        rights[i].held = Some((held, 1));
        if let Held::Entry(e) = held {
            if let Some(Some(entry)) = self.entries.get_mut(e) {
                entry.names += 1;
            }
        }
        Some(name(i, rights[i].gen))
    }

    /// True when `task`'s namespace has room for a new name.
    fn has_room(&self, task: usize) -> bool {
        let rights = &self.tasks[task].rights;
        rights.len() < MAX_NAMES || rights.iter().any(|s| s.held.is_none())
    }

    /// Drops one user reference of `port` in `task`'s namespace; an entry whose last name
    /// goes is forgotten. False when `port` is not one of its names.
    pub(super) fn drop_name(&mut self, task: usize, port: MachPort) -> bool {
        if self.named(task, port).is_none() {
            return false;
        }
        let i = (port.0 >> 8) as usize - 3;
        let slot = &mut self.tasks[task].rights[i];
        let Some((held, urefs)) = slot.held else {
            return false;
        };
        if urefs == 0xFFFF {
            return true; // pegged
        }
        if urefs > 1 {
            slot.held = Some((held, urefs - 1));
            return true;
        }
        slot.held = None;
        if let Held::Entry(e) = held {
            self.unname(e);
        }
        true
    }

    /// Drops every name of `task`'s namespace (a restart).
    pub(super) fn drop_names(&mut self, task: usize) {
        let held: Vec<Held> = self.tasks[task]
            .rights
            .iter()
            .filter_map(|s| s.held.map(|(h, _)| h))
            .collect();
        self.tasks[task].rights.clear();
        for h in held {
            if let Held::Entry(e) = h {
                self.unname(e);
            }
        }
    }

    /// One namespace less names entry `e`: gone with its last.
    fn unname(&mut self, e: usize) {
        let Some(slot) = self.entries.get_mut(e) else {
            return;
        };
        if let Some(entry) = slot {
            entry.names -= 1;
            if entry.names == 0 {
                self.entry_bytes -= entry.size;
                *slot = None;
                // No trailing dead slots: a model whose entries all went equals a new one.
                while self.entries.last().is_some_and(Option::is_none) {
                    self.entries.pop();
                }
            }
        }
    }

    /// Sets the most bytes the entries may hold together (the kernel's `entry_limit`).
    pub fn set_entry_limit(&mut self, limit: u64) {
        self.entry_limit = limit;
    }

    /// How many live entries name shared object `share`.
    pub(super) fn entries_naming(&self, share: u32) -> u64 {
        let entries = self.entries.iter().flatten();
        entries
            .filter(|e| e.parts.iter().any(|&(_, s, _)| s == share))
            .count() as u64
    }

    /// True when a live entry exists.
    pub(super) fn any_entry(&self) -> bool {
        self.entries.iter().any(Option::is_some)
    }

    /// Copies bytes `[within, within + bytes.len())` of the page at object offset `offset`
    /// of object `share` (page size `p`) into every live entry that holds that page.
    pub(super) fn show_in_entries(
        &mut self,
        share: u32,
        offset: u64,
        p: u64,
        within: usize,
        bytes: &[u8],
    ) {
        for entry in self.entries.iter_mut().flatten() {
            if entry.page_size != p {
                continue;
            }
            let mut pos = 0u64;
            for &(pages, s, o) in &entry.parts {
                let (lo, hi) = (o, o.wrapping_add(pages * p));
                if s == share && offset.wrapping_sub(lo) < hi.wrapping_sub(lo) {
                    let at = (pos * p + offset.wrapping_sub(lo)) as usize + within;
                    entry.bytes[at..at + bytes.len()].copy_from_slice(bytes);
                }
                pos += pages;
            }
        }
    }

    /// A port in a message body: `None` for null and dead, `Err(MACH_SEND_INVALID_RIGHT)`
    /// for a name the caller does not hold, else what it names (`Held::Task(caller)` for
    /// the task's own port; `Some(None)` for the host port).
    fn body_port(
        &self,
        caller: usize,
        port: MachPort,
    ) -> Result<Option<Option<Held>>, super::Outcome> {
        match port {
            MACH_PORT_NULL | MACH_PORT_DEAD => Ok(None),
            TASK_SELF_NAME => Ok(Some(Some(Held::Task(caller)))),
            HOST_SELF_NAME => Ok(Some(None)),
            _ => match self.named(caller, port) {
                Some(h) => Ok(Some(Some(h))),
                None => fail(MACH_SEND_INVALID_RIGHT),
            },
        }
    }

    /// `mach_make_memory_entry_64` / `mach_make_memory_entry` (spec §8): `aw` is the width
    /// of `*size` and `offset`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn make_entry(
        &mut self,
        caller: usize,
        call: &'static str,
        aw: Width,
        task: MachPort,
        [size_ptr, handle_ptr]: [u64; 2],
        offset: u64,
        permission: u32,
        parent: MachPort,
    ) -> Handled {
        let size = self.read_param(caller, call, "size", size_ptr, aw.bytes())?;
        let t = self.resolve(caller, task)?;
        let parent = match self.body_port(caller, parent)? {
            Some(Some(Held::Entry(e))) => self.entries[e].clone().map(|p| (e, p)),
            _ => None,
        };
        let flag = |f: u32| permission & f != 0;
        if permission & 0x00FF_FF00 & !0x00FF_E000 != 0 {
            return fail(KERN_INVALID_VALUE);
        }
        if parent.as_ref().is_some_and(|(_, p)| p.is_copy) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let p = self.tasks[t].page_size;
        let end = u128::from(offset) + u128::from(size);
        if size != 0 && round(end, p) > u128::from(u64::MAX) {
            return fail(KERN_INVALID_ADDRESS);
        }
        let prot = VmProt((permission & 7) as i32);
        let is_mask = flag(0x40);
        let access = permission >> 24;
        let data_addr = flag(MAP_MEM_USE_DATA_ADDR | MAP_MEM_4K_DATA_ADDR);
        let map_start = trunc(u128::from(offset), p) as u64;
        // Rounded, `end` wraps to 0 at most (size 0 only), as in XNU.
        let map_end = round(end, p) as u64;
        let map_size = map_end.wrapping_sub(map_start);
        let in_page = |start: u64| match (data_addr, flag(MAP_MEM_4K_DATA_ADDR)) {
            (false, _) => 0,
            (true, true) => (offset - start) & !0xFFF,
            (true, false) => offset - start,
        };
        let done = |size: u64, handle: MachPort| {
            Ok(vec![
                Store::word("size", size_ptr, aw.truncate(size), aw.bytes()),
                Store::word("object_handle", handle_ptr, u64::from(handle.0), 4),
            ])
        };
        if flag(MAP_MEM_ONLY) {
            let Some((e, parent)) = parent.filter(|_| !data_addr) else {
                return fail(KERN_INVALID_ARGUMENT);
            };
            if access != parent.access && !parent.protection.intersects(VM_PROT_WRITE) {
                return fail(KERN_INVALID_RIGHT);
            }
            if access != 0 {
                if let Some(Some(entry)) = self.entries.get_mut(e) {
                    entry.access = access;
                }
            }
            return done(size, MACH_PORT_NULL);
        }
        let pages = |first: u64, n: u64| first * p..(first + n) * p;
        let (entry, bytes) = if flag(MAP_MEM_NAMED_CREATE) {
            if map_size == 0 {
                return done(0, MACH_PORT_NULL);
            }
            if map_end == 0 {
                return fail(KERN_INVALID_ARGUMENT);
            }
            if data_addr {
                return fail(KERN_INVALID_ARGUMENT);
            }
            if map_size / p > u64::from(u32::MAX) {
                return fail(KERN_FAILURE);
            }
            if flag(MAP_MEM_PURGABLE) && !prot.intersects(VM_PROT_WRITE) {
                return fail(KERN_INVALID_ARGUMENT);
            }
            if !self.tasks[t].can_share {
                return fail(KERN_NOT_SUPPORTED);
            }
            self.room(caller, map_size)?;
            let share = self.new_share();
            let entry = (map_size, 0, prot, false, vec![(map_size / p, share, 0)]);
            (entry, vec![0; map_size as usize])
        } else if flag(MAP_MEM_VM_COPY) {
            if map_size == 0 || map_end == 0 {
                return fail(KERN_INVALID_ARGUMENT);
            }
            let (s, e) = (map_start / p, map_end / p);
            for i in s..e {
                match self.tasks[t].attrs(u128::from(i)) {
                    _ if u128::from(i) * u128::from(p) >= self.tasks[t].map_limit => {
                        return fail(KERN_INVALID_ADDRESS)
                    }
                    None => return fail(KERN_INVALID_ADDRESS),
                    Some(a)
                        if !a.cur.intersects(VM_PROT_READ) || !a.max.intersects(VM_PROT_READ) =>
                    {
                        return fail(KERN_PROTECTION_FAILURE)
                    }
                    Some(_) => {}
                }
            }
            if !self.tasks[t].can_share {
                return fail(KERN_NOT_SUPPORTED);
            }
            self.room(caller, map_size)?;
            let share = self.new_share();
            let r = pages(s, e - s);
            let bytes = self.tasks[t].memory[r.start as usize..r.end as usize].to_vec();
            let entry = (
                map_size,
                in_page(map_start),
                prot,
                true,
                vec![(e - s, share, 0)],
            );
            (entry, bytes)
        } else if flag(MAP_MEM_VM_SHARE) || parent.is_none() || flag(MAP_MEM_NAMED_REUSE) {
            if map_size == 0 || map_end == 0 {
                return fail(KERN_INVALID_ARGUMENT);
            }
            let share_whole = flag(MAP_MEM_VM_SHARE);
            let (s, mut e) = (map_start / p, map_end / p);
            let task = &self.tasks[t];
            if !share_whole {
                // The first region: the pages of equal state from the first on.
                let Some(first) = task
                    .attrs(u128::from(s))
                    .filter(|_| u128::from(s) * u128::from(p) < task.map_limit)
                else {
                    return fail(KERN_INVALID_ADDRESS);
                };
                let mut j = s + 1;
                while j < e && task.attrs(u128::from(j)) == Some(first) {
                    j += 1;
                }
                e = j;
            }
            let mut cur = VM_PROT_ALL;
            for i in s..e {
                let a = match task.attrs(u128::from(i)) {
                    Some(a) if u128::from(i) * u128::from(p) < task.map_limit => a,
                    _ => return fail(KERN_INVALID_ADDRESS),
                };
                let allows = a.cur.contains(prot) && a.max.contains(prot);
                if !is_mask && !allows {
                    return fail(KERN_PROTECTION_FAILURE);
                }
                cur &= a.cur;
            }
            let prot = if is_mask { prot & cur } else { prot };
            if is_mask && prot.is_none() {
                return fail(KERN_PROTECTION_FAILURE);
            }
            if !self.tasks[t].can_share {
                return fail(KERN_NOT_SUPPORTED);
            }
            let size = (e - s) * p;
            let data_offset = in_page(map_start);
            // NAMED_REUSE: the parent itself when it names what the new entry would.
            if let Some((pe, parent)) = &parent {
                if flag(MAP_MEM_NAMED_REUSE)
                    && !share_whole
                    && self.objects_of(t, s, e).as_ref() == Some(&parent.parts)
                    && parent.size == size
                    && parent.data_offset == data_offset
                    && parent.parts.first().is_some_and(|&(_, _, o)| o == 0)
                {
                    self.give_objects(t, s, e);
                    let handle = self
                        .insert(caller, Held::Entry(*pe))
                        .expect("named already");
                    return done(parent.size - parent.data_offset, handle);
                }
            }
            self.room(caller, size)?;
            let parts = self.give_objects(t, s, e);
            let r = pages(s, e - s);
            let bytes = self.tasks[t].memory[r.start as usize..r.end as usize].to_vec();
            ((size, data_offset, prot, share_whole, parts), bytes)
        } else {
            let Some((_, parent)) = parent.filter(|(_, e)| e.page_size == p) else {
                return fail(KERN_INVALID_ARGUMENT);
            };
            let (start, data_offset, size) = if data_addr {
                let whole = u128::from(offset) + u128::from(size) + u128::from(parent.data_offset);
                if whole > u128::from(u64::MAX) || whole > u128::from(parent.size) {
                    return fail(KERN_INVALID_ARGUMENT);
                }
                let from = offset + parent.data_offset;
                let start = trunc(u128::from(from), p) as u64;
                let in_page = if flag(MAP_MEM_4K_DATA_ADDR) {
                    (from - start) & !0xFFF
                } else {
                    from - start
                };
                let end = round(u128::from(from) + u128::from(size), p);
                if end > u128::from(u64::MAX) {
                    return fail(KERN_INVALID_ARGUMENT);
                }
                (start, in_page, end as u64 - start)
            } else {
                if map_end == 0 && size != 0 {
                    return fail(KERN_INVALID_ARGUMENT);
                }
                if u128::from(offset) + u128::from(map_size) > u128::from(parent.size) {
                    return fail(KERN_INVALID_ARGUMENT);
                }
                (map_start, 0, map_size)
            };
            let prot = if is_mask {
                prot & parent.protection
            } else {
                prot
            };
            if !parent.protection.contains(prot) {
                return fail(KERN_PROTECTION_FAILURE);
            }
            self.room(caller, size)?;
            let parts = parent.parts_within(start / p, size / p);
            let bytes = parent.bytes[start as usize..(start + size) as usize].to_vec();
            let entry = Entry {
                size,
                page_size: p,
                data_offset,
                protection: prot,
                is_copy: false,
                access,
                parts,
                bytes,
                names: 0,
            };
            let handle = self.add_entry(caller, entry);
            return done(size - data_offset, handle);
        };
        let (size, data_offset, protection, is_copy, parts) = entry;
        let entry = Entry {
            size,
            page_size: p,
            data_offset,
            protection,
            is_copy,
            access,
            parts,
            bytes,
            names: 0,
        };
        let handle = self.add_entry(caller, entry);
        done(size - data_offset, handle)
    }

    /// Refuses an entry of `size` bytes more than the limit allows, or a name more than
    /// `caller`'s namespace holds.
    fn room(&self, caller: usize, size: u64) -> Result<(), super::Outcome> {
        let fits = self
            .entry_bytes
            .checked_add(size)
            .is_some_and(|b| b <= self.entry_limit);
        if !fits || !self.has_room(caller) {
            return fail(KERN_RESOURCE_SHORTAGE);
        }
        Ok(())
    }

    /// Adds `entry` at the lowest free id and names it in `caller`'s namespace.
    fn add_entry(&mut self, caller: usize, entry: Entry) -> MachPort {
        self.entry_bytes += entry.size;
        let e = match self.entries.iter().position(Option::is_none) {
            Some(e) => {
                self.entries[e] = Some(entry);
                e
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.insert(caller, Held::Entry(e)).expect("room checked")
    }

    /// The objects of `t`'s pages `[s, e)`, `None` when one of them is private.
    fn objects_of(&self, t: usize, s: u64, e: u64) -> Option<Vec<(u64, u32, u64)>> {
        let p = self.tasks[t].page_size;
        let mut parts: Vec<(u64, u32, u64)> = Vec::new();
        for i in s..e {
            let a = self.tasks[t]
                .attrs(u128::from(i))
                .filter(|a| a.share != 0)?;
            let (share, offset) = (a.share, (i * p).wrapping_add(a.share_offset));
            match parts.last_mut() {
                Some(last) if last.1 == share && last.2.wrapping_add(last.0 * p) == offset => {
                    last.0 += 1;
                }
                _ => parts.push((1, share, offset)),
            }
        }
        Some(parts)
    }

    /// Gives `t`'s private pages `[s, e)` one new shared object (offset 0 at page `s`) and
    /// marks every page shared, as sharing them without copy does; their objects.
    fn give_objects(&mut self, t: usize, s: u64, e: u64) -> Vec<(u64, u32, u64)> {
        let p = self.tasks[t].page_size;
        let private = (s..e).any(|i| {
            self.tasks[t]
                .attrs(u128::from(i))
                .is_some_and(|a| a.share == 0)
        });
        let id = if private { self.new_share() } else { 0 };
        for i in s..e {
            let a = self.tasks[t].pages[i as usize].as_mut().expect("allocated");
            if a.share == 0 {
                a.share = id;
                a.share_offset = 0u64.wrapping_sub(s * p);
            }
            a.shared = true;
        }
        // A reset gives shared pages new backing: they count as written (`Model::written`).
        self.tasks[t].wrote((s * p) as usize, (e * p) as usize);
        self.objects_of(t, s, e)
            .expect("every page has an object now")
    }

    /// `vm_map` / `mach_vm_map` (spec §8): `values` are the size, mask and offset; `words`
    /// the flags, copy and inheritance.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn map(
        &mut self,
        caller: usize,
        call: &'static str,
        aw: Width,
        (task, object): (MachPort, MachPort),
        addr_ptr: u64,
        [size, mask, offset]: [u64; 3],
        [flags, copy, inheritance]: [u32; 3],
        [cur, max]: [VmProt; 2],
    ) -> Handled {
        let hint = self.read_param(caller, call, "address", addr_ptr, aw.bytes())?;
        let t = self.resolve(caller, task)?;
        let object = self.body_port(caller, object)?;
        if flags & !0xFF97_509F != 0 {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let (mask_cur, mask_max) = (cur.0 & 0x40 != 0, max.0 & 0x40 != 0);
        let (mut cur, mut max) = (VmProt(cur.0 & !0x40), VmProt(max.0 & !0x40));
        if cur.0 & !7 != 0 || max.0 & !7 != 0 || inheritance > 2 || size == 0 || cur & max != cur {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let p = self.tasks[t].page_size;
        let map_size = round(u128::from(size), p);
        if map_size > u128::from(u64::MAX) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let map_size = map_size as u64;
        let data_addr = flags & (0x10_0000 | 0x80_0000) != 0;
        let place =
            |model: &Model, n: u64| model.tasks[t].place(u128::from(n), hint, mask, flags, aw);
        let Some(object) = object else {
            // Fresh memory, as vm_allocate with these protections.
            let n = map_size / p;
            let purgeable = flags & 2 != 0;
            if purgeable && n > u64::from(u32::MAX) {
                return fail(KERN_INVALID_ARGUMENT);
            }
            let first = place(self, n)?;
            self.fresh_memory(t, first, u128::from(n), purgeable)?;
            for i in first..first + u128::from(n) {
                let a = self.tasks[t].pages[i as usize].as_mut().expect("mapped");
                (a.cur, a.max, a.inherit) = (cur, max, VmInherit(inheritance));
            }
            let addr = (first * u128::from(p)) as u64;
            return Ok(vec![Store::word("address", addr_ptr, addr, aw.bytes())]);
        };
        let Some(Held::Entry(e)) = object else {
            return fail(KERN_INVALID_OBJECT);
        };
        let entry = self.entries[e].clone().expect("named entries live");
        let mut offset = offset;
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
            return fail(KERN_INVALID_RIGHT);
        }
        if offset.checked_add(map_size).is_none_or(|x| x <= offset) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if u128::from(entry.size) < u128::from(offset) + u128::from(size) {
            return fail(KERN_INVALID_ARGUMENT);
        }
        if entry.page_size != p {
            return fail(KERN_INVALID_ARGUMENT);
        }
        let (first, n, in_mapping) = if entry.is_copy {
            if flags & !(1 | 0x4000 | 0x10_0000 | 0x80_0000 | 0xFF00_0000) != 0 {
                return fail(KERN_INVALID_ARGUMENT);
            }
            let in_mapping = match (data_addr, flags & 0x80_0000 != 0) {
                (false, _) => 0,
                (true, true) => (offset % p) & !0xFFF,
                (true, false) => offset % p,
            };
            (0, entry.size / p, in_mapping)
        } else {
            let (offset, len, in_mapping) = if data_addr {
                let in_page = offset % p;
                let in_mapping = if flags & 0x80_0000 != 0 {
                    in_page & !0xFFF
                } else {
                    in_page
                };
                let len = round(u128::from(in_mapping) + u128::from(size), p) as u64;
                (offset - in_page, len, in_mapping)
            } else {
                (offset, map_size, 0)
            };
            if flags & 2 != 0 || offset % p != 0 {
                return fail(KERN_INVALID_ARGUMENT);
            }
            (offset / p, len / p, in_mapping)
        };
        let to = place(self, n)?;
        if !self.tasks[t].can_share {
            return fail(KERN_NOT_SUPPORTED);
        }
        // Grow the target (a refused growth may empty volatile objects first).
        let pp = u128::from(p);
        self.tasks[t].grow_for((to + u128::from(n)) * pp)?;
        let copy = copy != 0;
        let target = &mut self.tasks[t];
        let mut k = 0u64;
        for (pages, share, obj) in entry.parts_within(first, n) {
            for j in 0..pages {
                let at = (to as u64 + k + j) * p;
                target.pages[(to as u64 + k + j) as usize] = Some(PageAttrs {
                    cur,
                    max,
                    inherit: VmInherit(inheritance),
                    share: if copy { 0 } else { share },
                    share_offset: if copy {
                        0
                    } else {
                        (obj + j * p).wrapping_sub(at)
                    },
                    ..PageAttrs::DEFAULT
                });
            }
            k += pages;
        }
        let (ta, len) = ((to * pp) as usize, (n * p) as usize);
        let from = (first * p) as usize;
        target.memory[ta..ta + len].copy_from_slice(&entry.bytes[from..from + len]);
        target.wrote(ta, ta + len);
        let addr = (to * pp) as u64 + in_mapping;
        Ok(vec![Store::word("address", addr_ptr, addr, aw.bytes())])
    }

    /// `mach_port_deallocate(task, name)` (spec §8).
    pub(super) fn port_deallocate(
        &mut self,
        caller: usize,
        task: MachPort,
        port: MachPort,
    ) -> Handled {
        let t = self.resolve(caller, task)?;
        match port {
            MACH_PORT_NULL | MACH_PORT_DEAD => Ok(Vec::new()),
            TASK_SELF_NAME | HOST_SELF_NAME => fail(KERN_INVALID_RIGHT),
            _ if self.drop_name(t, port) => Ok(Vec::new()),
            _ => fail(KERN_INVALID_NAME),
        }
    }
}
