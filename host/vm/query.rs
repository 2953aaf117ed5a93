//! The calls that report: `vm_region*`, the page queries, `task_info`, `host_statistics64`.

use super::params::{check_range, load_param, resolve, store_bytes, store_param};
use super::{kr, sync, At, Env, PortTarget, Ret, Step, TaskId, TaskVm};
use crate::abi::*;
use crate::table::Run;

/// `vm_region_64`, `mach_vm_region` and `vm_region` (spec §4 and §9): the region at or after
/// `*address` of task `task`. `ptrs` are the pointers `address`,
/// `size`, `info`, `count` and `object_name`.
pub(super) fn region<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    flavor: u32,
    ptrs: [u64; 5],
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
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
    let (run, start, len) = region_run(env.vm(t), addr, w)?;
    let mut info = [0u8; VM_REGION_BASIC_INFO_SIZE];
    let a = run.attrs;
    if flavor as i32 == VM_REGION_EXTENDED_INFO {
        // protection, user_tag 0, pages_resident, pages_shared_now_private,
        // pages_swapped_out and pages_dirtied 0, ref_count, shadow_depth (2 bytes) and
        // external_pager 0, share_mode, pages_reusable 0.
        let s = sharing(env, t, run.start, run.end, a);
        info[0..4].copy_from_slice(&a.cur.0.to_le_bytes());
        info[8..12].copy_from_slice(&s.resident.to_le_bytes());
        info[24..28].copy_from_slice(&s.ref_count.to_le_bytes());
        info[31] = s.mode;
    } else {
        // protection, max_protection, inheritance, shared (XNU's is_shared, spec §8),
        // reserved 0, offset (in the shared object, else 0: 8 bytes in the 64-bit struct,
        // 4 in the 32-bit one), then behavior and user_wired_count 0.
        info[0..4].copy_from_slice(&a.cur.0.to_le_bytes());
        info[4..8].copy_from_slice(&a.max.0.to_le_bytes());
        info[8..12].copy_from_slice(&a.inherit.0.to_le_bytes());
        info[12..16].copy_from_slice(&u32::from(a.shared).to_le_bytes());
        let offset = a.object_offset(start);
        let at = if info_len == VM_REGION_BASIC_INFO_SIZE {
            info[20..28].copy_from_slice(&offset.to_le_bytes());
            28
        } else {
            info[20..24].copy_from_slice(&(offset as u32).to_le_bytes());
            24
        };
        info[at..at + 4].copy_from_slice(&a.behavior.to_le_bytes());
    }
    store_param(env, caller, name, "address", addr_ptr, start, w.bytes())?;
    store_param(env, caller, name, "size", size_ptr, len, w.bytes())?;
    store_bytes(env, caller, name, "info", info_ptr, &info[..info_len])?;
    store_param(env, caller, name, "count", count_ptr, u64::from(want), 4)?;
    store_param(env, caller, name, "object_name", object_name_ptr, 0, 4)?;
    Ok(KERN_SUCCESS.into())
}

/// The region of `vm` at or after `addr` for a call whose addresses are of width `w`, with
/// its start and length in bytes: `KERN_INVALID_ADDRESS` when there is none, or (a 32-bit
/// guest's word-sized call) when its end does not fit in 32 bits.
fn region_run(vm: &TaskVm, addr: u64, w: Width) -> Step<(Run, u64, u64)> {
    let Some(run) = vm.table.region_at_or_after(vm.trunc_page(addr)) else {
        return kr(KERN_INVALID_ADDRESS);
    };
    let start = run.start << vm.page_shift;
    let len = (run.end - run.start) << vm.page_shift;
    if w == Width::W32 && u128::from(start) + u128::from(len) >= w.limit() {
        return kr(KERN_INVALID_ADDRESS);
    }
    Ok((run, start, len))
}

/// How the pages of a region are shared (spec §8), as `vm_region_recurse_64` and
/// `VM_REGION_EXTENDED_INFO` report it.
struct Sharing {
    /// `SM_EMPTY`, `SM_PRIVATE` or `SM_TRUESHARED`.
    mode: u8,
    /// The mappings (regions, in every task) and live memory entries that refer to the
    /// region's object: 0 for private memory with no page resident (and not purgeable), 1
    /// for other private memory.
    ref_count: u32,
    /// The region's pages resident in host memory.
    resident: u32,
}

/// [`Sharing`] of task `t`'s region `[s, e)` (pages), whose attributes are `a`.
fn sharing<E: Env + ?Sized>(env: &mut E, t: TaskId, s: u64, e: u64, a: PageAttrs) -> Sharing {
    let vm = env.vm(t);
    let inside = (vm.known_size >> vm.page_shift)
        .saturating_sub(s)
        .min(e - s);
    let resident = env.resident(t, s, inside).iter().filter(|&&r| r).count() as u32;
    if a.share == 0 {
        // Private memory: an object once a page of it is resident (XNU makes one at the
        // first fault), none before; a purgeable object from the start.
        let (mode, ref_count) = if resident == 0 && a.object == 0 {
            (SM_EMPTY, 0)
        } else {
            (SM_PRIVATE, 1)
        };
        return Sharing {
            mode,
            ref_count,
            resident,
        };
    }
    let mut refs = 0u64;
    for task in env.tasks() {
        let runs = env.vm(task).table.runs();
        refs += runs.filter(|r| r.attrs.share == a.share).count() as u64;
    }
    if let Some(entries) = env.entries() {
        let naming = entries
            .iter()
            .filter(|(_, en)| en.parts.iter().any(|p| p.share == a.share));
        refs += naming.count() as u64;
    }
    let ref_count = u32::try_from(refs).unwrap_or(u32::MAX);
    Sharing {
        mode: if refs > 1 { SM_TRUESHARED } else { SM_PRIVATE },
        ref_count,
        resident,
    }
}

/// `vm_region_recurse_64` / `mach_vm_region_recurse` (spec §8): the region at or after
/// `*address`, with `vm_region_submap_info_64` (count 16 or more: versions 0, 1 and 2) or
/// the short info (12 to 15). `ptrs` are `address`, `size`, `nesting_depth`, `info` and
/// `count`.
pub(super) fn region_recurse<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    ptrs: [u64; 5],
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    let [addr_ptr, size_ptr, depth_ptr, info_ptr, count_ptr] = ptrs;
    let addr = load_param(env, caller, name, "address", addr_ptr, w.bytes())?;
    load_param(env, caller, name, "nesting_depth", depth_ptr, 4)?;
    // MIG passes at most the info array's bound (19 words).
    let count = load_param(env, caller, name, "count", count_ptr, 4)?.min(19) as u32;
    let t = resolve(env, caller, task)?;
    sync(env, t);
    if count < VM_REGION_SUBMAP_SHORT_INFO_COUNT_64 {
        return kr(KERN_INVALID_ARGUMENT);
    }
    let (run, start, len) = region_run(env.vm(t), addr, w)?;
    let a = run.attrs;
    let s = sharing(env, t, run.start, run.end, a);
    let offset = a.object_offset(start);
    let mut info = [0u8; 76];
    info[0..4].copy_from_slice(&a.cur.0.to_le_bytes());
    info[4..8].copy_from_slice(&a.max.0.to_le_bytes());
    info[8..12].copy_from_slice(&a.inherit.0.to_le_bytes());
    info[12..20].copy_from_slice(&offset.to_le_bytes());
    // user_tag @20 is 0 (machvm keeps no tags).
    let out_count = if count < VM_REGION_SUBMAP_INFO_V0_COUNT_64 {
        // The short info: ref_count, shadow_depth (2 bytes), external_pager, share_mode,
        // is_submap, behavior, object_id, user_wired_count.
        info[24..28].copy_from_slice(&s.ref_count.to_le_bytes());
        info[31] = s.mode;
        info[36..40].copy_from_slice(&a.behavior.to_le_bytes());
        info[40..44].copy_from_slice(&a.share.to_le_bytes());
        VM_REGION_SUBMAP_SHORT_INFO_COUNT_64
    } else {
        // pages_resident, pages_shared_now_private, pages_swapped_out and pages_dirtied
        // (0: machvm does not track them), ref_count, shadow_depth, external_pager,
        // share_mode, is_submap, behavior, object_id, user_wired_count, pages_reusable,
        // object_id_full.
        info[24..28].copy_from_slice(&s.resident.to_le_bytes());
        info[40..44].copy_from_slice(&s.ref_count.to_le_bytes());
        info[47] = s.mode;
        info[52..56].copy_from_slice(&a.behavior.to_le_bytes());
        info[56..60].copy_from_slice(&a.share.to_le_bytes());
        info[68..76].copy_from_slice(&u64::from(a.share).to_le_bytes());
        match count {
            16 => VM_REGION_SUBMAP_INFO_V0_COUNT_64,
            17 | 18 => VM_REGION_SUBMAP_INFO_V1_COUNT_64,
            _ => VM_REGION_SUBMAP_INFO_COUNT_64,
        }
    };
    store_param(env, caller, name, "address", addr_ptr, start, w.bytes())?;
    store_param(env, caller, name, "size", size_ptr, len, w.bytes())?;
    store_param(env, caller, name, "nesting_depth", depth_ptr, 0, 4)?;
    let n = out_count as usize * 4;
    store_bytes(env, caller, name, "info", info_ptr, &info[..n])?;
    store_param(
        env,
        caller,
        name,
        "count",
        count_ptr,
        u64::from(out_count),
        4,
    )?;
    Ok(KERN_SUCCESS.into())
}

/// `vm_map_page_query` / `mach_vm_page_query` (spec §9).
pub(super) fn page_query<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    disposition_ptr: u64,
    ref_count_ptr: u64,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    let t = resolve(env, caller, task)?;
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

/// `mach_vm_page_info` (spec §9).
pub(super) fn page_info<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    flavor: u32,
    info_ptr: u64,
    count_ptr: u64,
) -> Step<Ret> {
    let At { caller, name, .. } = at;
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

/// `mach_vm_page_range_query` (spec §9); `out` is the `dispositions` array in the caller.
pub(super) fn page_range_query<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
    mut out: u64,
    count_ptr: u64,
) -> Step<Ret> {
    let At { caller, name, .. } = at;
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

/// `task_info` (spec §9).
pub(super) fn task_info<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    flavor: u32,
    info_ptr: u64,
    count_ptr: u64,
) -> Step<Ret> {
    let At { caller, name, .. } = at;
    let count = load_param(env, caller, name, "count", count_ptr, 4)?;
    let t = resolve(env, caller, task)?;
    // MIG hands the call at most TASK_INFO_MAX (1024) words.
    let (info, out) = task_info_bytes(env, t, flavor as i32, count.min(1024) as u32)?;
    store_bytes(env, caller, name, "info", info_ptr, &info)?;
    store_param(env, caller, name, "count", count_ptr, out.into(), 4)?;
    Ok(KERN_SUCCESS.into())
}

/// `host_statistics64` (spec §9).
pub(super) fn host_statistics64<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    host: MachPort,
    flavor: u32,
    info_ptr: u64,
    count_ptr: u64,
) -> Step<Ret> {
    let At { caller, name, .. } = at;
    let count = load_param(env, caller, name, "count", count_ptr, 4)?;
    match env.vm(caller).lookup_port(host) {
        None => return kr(MACH_SEND_INVALID_DEST),
        Some(PortTarget::Task(_) | PortTarget::Entry(_)) => return kr(KERN_INVALID_HOST),
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
fn task_info_bytes<E: Env + ?Sized>(
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
