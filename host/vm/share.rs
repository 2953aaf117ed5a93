//! The calls that make two addresses show the same bytes (spec §8): `vm_remap`.
//!
//! A page's shared object is in its attributes ([`PageAttrs::share`], with
//! [`PageAttrs::share_offset`] for where it lies in the object); the pages behind the table
//! are replaced through [`Env::back`], inside the table-change transaction
//! ([`change_backed`]).

use super::change::{change, change_backed, growth_for, Edit, Plan};
use super::memory::place;
use super::params::{body_task, load_param, resolve, store_param};
use super::{kr, sync, At, Env, Fill, Ret, Step, TaskId, TaskVm};
use crate::abi::*;

/// Where `vm_remap` maps: the target task, the in-out address, the mask and the flags.
pub(super) struct Target {
    pub(super) task: MachPort,
    pub(super) addr_ptr: u64,
    pub(super) mask: u64,
    pub(super) flags: u32,
}

/// What `vm_remap` maps: the source task (a port in the message body), its range, and
/// whether the new pages are a copy.
pub(super) struct Source {
    pub(super) task: MachPort,
    pub(super) addr: u64,
    pub(super) size: u64,
    pub(super) copy: bool,
}

/// `vm_remap` / `mach_vm_remap` (spec §8; the notes' remap table, legacy mode): maps the
/// source's pages `[trunc(src), round(src + size))` at the target, shared or copied, and
/// answers the address (keeping the source's offset in its page), and the AND of the source
/// pages' current and maximum protections. `prot_ptrs` are `cur_protection` and
/// `max_protection`.
pub(super) fn remap<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    target: Target,
    source: Source,
    prot_ptrs: [u64; 2],
    inheritance: u32,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    // The in-out address is read to build the message; then the destination port, then
    // the ports of the body.
    let hint = load_param(
        env,
        caller,
        name,
        "target_address",
        target.addr_ptr,
        w.bytes(),
    )?;
    let t = resolve(env, caller, target.task)?;
    let Some(src) = body_task(env, caller, name, source.task)? else {
        return kr(KERN_INVALID_ARGUMENT);
    };
    sync(env, t);
    sync(env, src);
    if !VM_FLAGS_USER_REMAP.contains(VmFlags(target.flags)) {
        return kr(KERN_INVALID_ARGUMENT);
    }
    let Source {
        addr, size, copy, ..
    } = source;
    // The range in 64 bits (a word-sized call's values are zero-extended): `addr + size`
    // must not overflow, nor its rounded end wrap to 0 (only when size is not 0).
    let p = env.vm(src).page_size();
    let end = u128::from(addr) + u128::from(size);
    if size != 0 && (end > u128::from(u64::MAX) || (end + u128::from(p - 1)) >> 64 != 0) {
        return kr(KERN_INVALID_ARGUMENT);
    }
    if inheritance > VM_INHERIT_NONE.0 || size == 0 {
        return kr(KERN_INVALID_ARGUMENT);
    }
    if VmFlags(target.flags).intersects(VM_FLAGS_RESILIENT_MEDIA) && !copy {
        return kr(KERN_INVALID_ARGUMENT);
    }
    // machvm's rule: the two tasks' pages must be the same size.
    if env.vm(t).page_size() != p {
        return kr(KERN_INVALID_ARGUMENT);
    }
    // The source: every page allocated, whatever its protection.
    let vm = env.vm(src);
    let shift = vm.page_shift();
    let (ss, se) = vm.pages(addr, size);
    if vm.table.any_unallocated(ss, se) {
        return kr(KERN_INVALID_ADDRESS);
    }
    let n = se - ss;
    // The target, in its own map.
    let ts = place(env.vm(t), w, hint, n, target.mask, VmFlags(target.flags))?;
    if !env.can_share(t) || !env.can_share(src) {
        return kr(KERN_NOT_SUPPORTED);
    }
    // The source pages, given an object first where they have none (copy = FALSE).
    let segments = if copy {
        allocated_segments(env.vm(src), ss, se)
    } else {
        give_objects(env, src, ss, se)?
    };
    let (mut cur, mut max) = (VM_PROT_ALL, VM_PROT_ALL);
    for (_, _, a) in &segments {
        cur &= a.cur;
        max &= a.max;
    }
    // RESILIENT_CODESIGN: read-only, as XNU makes it, but never more than the source
    // allows (machvm: no page gains an access).
    let limit = if VmFlags(target.flags).intersects(VM_FLAGS_RESILIENT_CODESIGN) {
        VM_PROT_READ
    } else {
        VM_PROT_ALL
    };
    (cur, max) = (cur & limit, max & limit);
    // The new pages: each source page's protections and behavior, the inheritance asked;
    // an alias of a permanent page is permanent too (machvm: what no guest call may remove
    // stays so through every mapping of it).
    let delta = (ss << shift).wrapping_sub(ts << shift);
    let new: Vec<(u64, PageAttrs)> = segments
        .iter()
        .map(|&(_, b, x)| {
            let attrs = PageAttrs {
                cur: x.cur & limit,
                max: x.max & limit,
                inherit: VmInherit(inheritance),
                permanent: x.permanent && !copy,
                behavior: x.behavior,
                object: if !copy && src == t { x.object } else { 0 },
                share: if copy { 0 } else { x.share },
                share_offset: if copy {
                    0
                } else {
                    x.share_offset.wrapping_add(delta)
                },
                shared: !copy,
            };
            (b - ss, attrs)
        })
        .collect();
    let from = ss << shift;
    let fill = if copy {
        Fill::Copy {
            task: src,
            addr: from,
        }
    } else {
        Fill::Share {
            task: src,
            addr: from,
        }
    };
    map_backed(env, t, ts, n, new, fill)?;
    let out = (ts << shift) + (addr & (p - 1));
    store_param(
        env,
        caller,
        name,
        "target_address",
        target.addr_ptr,
        out,
        w.bytes(),
    )?;
    let [cur_ptr, max_ptr] = prot_ptrs;
    store_param(
        env,
        caller,
        name,
        "cur_protection",
        cur_ptr,
        cur.0 as u32 as u64,
        4,
    )?;
    store_param(
        env,
        caller,
        name,
        "max_protection",
        max_ptr,
        max.0 as u32 as u64,
        4,
    )?;
    Ok(KERN_SUCCESS.into())
}

/// The segments of task `vm`'s pages `[ss, se)`, every one allocated: `(start, end, attrs)`.
pub(super) fn allocated_segments(vm: &TaskVm, ss: u64, se: u64) -> Vec<(u64, u64, PageAttrs)> {
    let segments = vm.table.segments_iter(ss, se);
    segments
        .map(|(a, b, x)| (a, b, x.unwrap_or(PageAttrs::DEFAULT)))
        .collect()
}

/// What sharing task `t`'s pages `[ss, se)` (every one allocated) needs first, as XNU's
/// extraction of them without copy does: its private pages become one new shared object,
/// whose offset 0 is page `ss`, and every page is marked shared ([`PageAttrs::shared`]). The
/// range's segments afterwards: `(start, end, attrs)`.
pub(super) fn give_objects<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    ss: u64,
    se: u64,
) -> Step<Vec<(u64, u64, PageAttrs)>> {
    let vm = env.vm(t);
    let shift = vm.page_shift();
    let mut segments = allocated_segments(vm, ss, se);
    if segments.iter().all(|(_, _, a)| a.share != 0 && a.shared) {
        return Ok(segments);
    }
    let id = if segments.iter().any(|(_, _, a)| a.share == 0) {
        env.new_share()
    } else {
        0
    };
    let offset = 0u64.wrapping_sub(ss << shift);
    for (_, _, a) in &mut segments {
        if a.share == 0 {
            a.share = id;
            a.share_offset = offset;
        }
        a.shared = true;
    }
    let given = segments.iter().map(|&(_, b, x)| (b - ss, x)).collect();
    change(env, t, ss, se, Edit::Segments(given), None)?;
    Ok(segments)
}

/// Maps task `t`'s pages `[ts, ts + n)` with `new` (each part's end, counted from `ts`, and
/// attributes), backed by `fill` (`vm_remap`'s and `vm_map`'s new pages), growing the memory
/// first when they pass its end (see [`change_backed`]).
pub(super) fn map_backed<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    ts: u64,
    n: u64,
    new: Vec<(u64, PageAttrs)>,
    fill: Fill,
) -> Step {
    let plan: Plan = vec![(n, fill)];
    let grow_to = growth_for(env, t, ts + n)?;
    change_backed(
        env,
        t,
        ts,
        ts + n,
        Edit::Segments(new),
        grow_to,
        Some((ts, plan)),
    )
}
