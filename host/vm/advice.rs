//! The calls that advise about pages and change no access: `vm_behavior_set`, `vm_msync`.

use super::params::{check_error_kr, resolve, round_wraps, wraps};
use super::{kr, sync, At, Env, PortTarget, Ret, Step};
use crate::abi::*;

/// `vm_inherit` / `mach_vm_inherit` (spec §8; XNU's `mach_vm_inherit` and
/// `vm_map_inherit`): an invalid name or the host port as for every call; `addr + size`
/// wraps in the call's width, or an inheritance past `VM_INHERIT_NONE`,
/// `KERN_INVALID_ARGUMENT`; `size == 0` `KERN_SUCCESS`; then `[trunc(addr), round(addr +
/// size))` (the end modulo 2^width), clamped to the map, gets the inheritance on every
/// allocated page: holes are ignored, and the answer is `KERN_SUCCESS`.
pub(super) fn inherit<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
    inheritance: u32,
) -> Step<Ret> {
    let At { caller, w, .. } = at;
    let t = resolve(env, caller, task)?;
    if wraps(addr, size, w) || inheritance > VM_INHERIT_LAST_VALID.0 {
        return kr(KERN_INVALID_ARGUMENT);
    }
    if size == 0 {
        return Ok(KERN_SUCCESS.into());
    }
    sync(env, t);
    let vm = env.vm(t);
    let p = u128::from(vm.page_size());
    let limit = vm.map_limit();
    // XNU's VM_MAP_RANGE_CHECK: the end clamped to the map, the start to the end.
    let e = ((u128::from(addr) + u128::from(size)).div_ceil(p) * p % w.limit()).min(limit);
    let s = (u128::from(addr) / p * p).min(e);
    let (s, e) = ((s / p) as u64, (e / p) as u64);
    // Inheritance changes no access: no window, no hardware to touch.
    vm.table.set_inherit(s, e, VmInherit(inheritance));
    Ok(KERN_SUCCESS.into())
}

/// `vm_behavior_set` / `mach_vm_behavior_set` (spec §9).
pub(super) fn behavior_set<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
    behavior: u32,
) -> Step<Ret> {
    let At { caller, w, .. } = at;
    let t = resolve(env, caller, task)?;
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
        VM_BEHAVIOR_DEFAULT | VM_BEHAVIOR_RANDOM | VM_BEHAVIOR_SEQUENTIAL | VM_BEHAVIOR_RSEQNTL => {
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
                    .check(s, e, |a| a.cur.intersects(VM_PROT_WRITE))
                    .is_err()
            {
                return kr(KERN_PROTECTION_FAILURE);
            }
        }
        _ => return kr(KERN_INVALID_ARGUMENT),
    }
    Ok(KERN_SUCCESS.into())
}

/// `vm_msync` / `mach_vm_msync` (spec §9).
pub(super) fn msync<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
    flags: u32,
) -> Step<Ret> {
    let At { caller, w, .. } = at;
    let t = match env.vm(caller).lookup_port(task) {
        None => return kr(MACH_SEND_INVALID_DEST),
        Some(PortTarget::Host | PortTarget::Entry(_)) => return kr(KERN_INVALID_TASK),
        Some(PortTarget::Task(t)) => t,
    };
    if flags & VM_SYNC_ASYNCHRONOUS != 0 && flags & VM_SYNC_SYNCHRONOUS != 0 {
        return kr(KERN_INVALID_ARGUMENT);
    }
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
