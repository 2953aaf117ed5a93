//! The calls that move bytes: `vm_copy`, `vm_read`, `vm_read_overwrite`, `vm_write`.

use super::change::map_new;
use super::params::{access, check_range, resolve, store_param, wraps};
use super::{kr, sync, At, Env, Ret, Step, TaskId};
use crate::abi::*;

/// `vm_copy` / `mach_vm_copy` (spec §4).
pub(super) fn copy<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    src: u64,
    size: u64,
    dst: u64,
) -> Step<Ret> {
    let At { caller, w, .. } = at;
    let t = resolve(env, caller, task)?;
    if size == 0 {
        return Ok(KERN_SUCCESS.into());
    }
    check_range(env, t, src, size, w, VM_PROT_READ)?;
    check_range(env, t, dst, size, w, VM_PROT_WRITE)?;
    if !env.prepare_write(t, dst, size) {
        return kr(KERN_RESOURCE_SHORTAGE);
    }
    if !move_bytes(env, t, src, t, dst, size) {
        return kr(KERN_FAILURE);
    }
    Ok(KERN_SUCCESS.into())
}

/// `vm_read_overwrite` / `mach_vm_read_overwrite` (spec §4).
pub(super) fn read_overwrite<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
    data: u64,
    outsize_ptr: u64,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    let t = resolve(env, caller, task)?;
    if size != 0 {
        check_range(env, t, addr, size, w, VM_PROT_READ)?;
        check_range(env, caller, data, size, w, VM_PROT_WRITE)?;
        if !env.prepare_write(caller, data, size) {
            return kr(KERN_RESOURCE_SHORTAGE);
        }
        if !move_bytes(env, t, addr, caller, data, size) {
            return kr(KERN_FAILURE);
        }
    }
    store_param(env, caller, name, "outsize", outsize_ptr, size, w.bytes())?;
    Ok(KERN_SUCCESS.into())
}

/// `vm_read` / `mach_vm_read` (spec §4): the copy lands in new pages of the caller.
pub(super) fn read<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
    data_ptr: u64,
    count_ptr: u64,
) -> Step<Ret> {
    let At {
        caller,
        name,
        gw,
        w,
    } = at;
    sync(env, caller);
    let t = resolve(env, caller, task)?;
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
    store_param(env, caller, name, "data", data_ptr, data, gw.bytes())?;
    store_param(env, caller, name, "count", count_ptr, size, 4)?;
    Ok(KERN_SUCCESS.into())
}

/// `vm_write` / `mach_vm_write` (spec §4).
pub(super) fn write<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    data: u64,
    count: u32,
) -> Step<Ret> {
    let At { caller, gw, w, .. } = at;
    let t = resolve(env, caller, task)?;
    if count == 0 {
        return Ok(KERN_SUCCESS.into());
    }
    let size = u64::from(count);
    // The caller's buffer is a vm_offset_t: the guest's gw.bytes().
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
    if !move_bytes(env, caller, data, t, addr, size) {
        return kr(KERN_FAILURE);
    }
    Ok(KERN_SUCCESS.into())
}

/// Copies `len` bytes from task `st`'s `src` to task `dt`'s `dst`, both checked allocated,
/// readable and writable; false when the host could not (its memory, for a copy that must
/// be read whole first). Into private pages, a `memmove`. Into pages of shared objects
/// (spec §8), which may alias each other, the destination is written page by page in
/// address order (so where two destination pages map one object page, the later one's
/// bytes are what every mapping reads), never with a `memmove` over addresses that alias:
/// straight from the source when it cannot alias the destination (its pages are private,
/// mapped nowhere else, and the two ranges do not overlap), else from a copy of the whole
/// source read first.
fn move_bytes<E: Env + ?Sized>(
    env: &mut E,
    st: TaskId,
    src: u64,
    dt: TaskId,
    dst: u64,
    len: u64,
) -> bool {
    let private = |env: &mut E, t: TaskId, addr: u64| {
        let vm = env.vm(t);
        let (s, e) = vm.pages(addr, len);
        vm.table.check(s, e, |a| a.share == 0).is_ok()
    };
    if private(env, dt, dst) {
        return env.copy(st, src, dt, dst, len);
    }
    // Compared as addresses even across tasks: two tasks may be made of one memory.
    let apart = src.saturating_add(len) <= dst || dst.saturating_add(len) <= src;
    let snapshot = if apart && private(env, st, src) {
        None
    } else {
        let Ok(n) = usize::try_from(len) else {
            return false;
        };
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact(n).is_err() {
            return false;
        }
        bytes.resize(n, 0);
        if !env.load(st, src, &mut bytes) {
            return false;
        }
        Some(bytes)
    };
    let page = env.vm(dt).page_size();
    let mut done = 0u64;
    while done < len {
        let at = dst + done;
        let k = (page - (at & (page - 1))).min(len - done);
        let ok = match &snapshot {
            Some(bytes) => env.store(dt, at, &bytes[done as usize..(done + k) as usize]),
            None => env.copy(st, src + done, dt, at, k),
        };
        if !ok {
            return false;
        }
        done += k;
    }
    true
}
