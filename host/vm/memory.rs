//! The calls that change the map's entries: `vm_allocate`, `vm_deallocate`, `vm_protect`,
//! and `vm_wire`, which is refused.

use super::change::{change, map_new, Edit};
use super::params::{body_task, load_param, resolve, round_wraps, store_param, wraps};
use super::{kr, sync, At, Env, Purgeable, Ret, Step, TaskId, TaskVm};
use crate::abi::*;

/// `vm_allocate` / `mach_vm_allocate` (spec §4).
pub(super) fn allocate<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr_ptr: u64,
    size: u64,
    flags: VmFlags,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    let hint = load_param(env, caller, name, "address", addr_ptr, w.bytes())?;
    let t = resolve(env, caller, task)?;
    let addr = allocate_in(env, t, w, hint, size, flags)?;
    store_param(env, caller, name, "address", addr_ptr, addr, w.bytes())?;
    Ok(KERN_SUCCESS.into())
}

/// `vm_allocate`'s work in task `t`, once its parameters are read: maps `size` bytes at
/// `hint` (or, with `VM_FLAGS_ANYWHERE`, at the lowest free range whose end fits width `w`)
/// and gives the address, 0 for a size of 0.
pub(super) fn allocate_in<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    w: Width,
    hint: u64,
    size: u64,
    flags: VmFlags,
) -> Step<u64> {
    sync(env, t);
    if !VM_FLAGS_USER_ALLOCATE.contains(flags) {
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
        let s = place(vm, w, hint, n, 0, flags)?;
        let purgeable = flags.intersects(VM_FLAGS_PURGABLE);
        map_fresh(env, t, s, s + n, PageAttrs::DEFAULT, purgeable)?;
        s << env.vm(t).page_shift
    };
    Ok(addr)
}

/// Maps task `t`'s pages `[s, e)` as new zero memory with `attrs` (see [`map_new`]); with
/// `purgeable`, a purgeable object of its own, nonvolatile (`VM_FLAGS_PURGABLE`).
pub(super) fn map_fresh<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    s: u64,
    e: u64,
    attrs: PageAttrs,
    purgeable: bool,
) -> Step {
    let object = if purgeable {
        env.vm(t).next_object()
    } else {
        0
    };
    map_new(env, t, s, e, PageAttrs { object, ..attrs })?;
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
    Ok(())
}

/// Where `n` new pages of task `vm` go for address `hint`, `mask` (bytes; the bits that must
/// be clear in the start) and `flags`, as `vm_allocate` and `vm_remap` place them: with
/// `VM_FLAGS_ANYWHERE`, the lowest free range whose start has no bit of `mask` and whose
/// end fits width `w` (`KERN_NO_SPACE` when none); else at `trunc(hint)`, a bit of `mask`
/// in it `KERN_NO_SPACE`, past `2^w` or the map `KERN_INVALID_ADDRESS`, then a page taken
/// `KERN_NO_SPACE` (with `VM_FLAGS_OVERWRITE`: a permanent page, which no overwrite
/// removes). The first page.
pub(super) fn place(
    vm: &TaskVm,
    w: Width,
    hint: u64,
    n: u64,
    mask: u64,
    flags: VmFlags,
) -> Step<u64> {
    let shift = vm.page_shift();
    if flags.intersects(VM_FLAGS_ANYWHERE) {
        // The address must fit the out-parameter: search below 2^width. Bits of the mask
        // below the page are clear in any page's address.
        let below = (w.limit() >> shift).min(u128::from(u64::MAX)) as u64;
        return match vm.table.find_free_aligned(n, below, mask >> shift) {
            Some(s) => Ok(s),
            None => kr(KERN_NO_SPACE),
        };
    }
    let start = hint & !(vm.page_size() - 1);
    if start & mask != 0 {
        return kr(KERN_NO_SPACE);
    }
    let s = start >> shift;
    let end = u128::from(start) + (u128::from(n) << shift);
    if end >= w.limit() || s + n > vm.table.limit() {
        return kr(KERN_INVALID_ADDRESS);
    }
    let taken = if flags.intersects(VM_FLAGS_OVERWRITE) {
        vm.table.any_permanent(s, s + n)
    } else {
        vm.table.any_allocated(s, s + n)
    };
    if taken {
        return kr(KERN_NO_SPACE);
    }
    Ok(s)
}

/// `vm_deallocate` / `mach_vm_deallocate` (spec §4).
pub(super) fn deallocate<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
    let t = resolve(env, caller, task)?;
    sync(env, t);
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

/// `vm_protect` / `mach_vm_protect` (spec §4).
pub(super) fn protect<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    size: u64,
    set_max: u32,
    prot: VmProt,
) -> Step<Ret> {
    let At { caller, w, .. } = at;
    let t = resolve(env, caller, task)?;
    sync(env, t);
    if wraps(addr, size, w) || !prot.without(VM_PROT_ALL | VM_PROT_COPY).is_none() {
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
    let copy = prot.intersects(VM_PROT_COPY);
    // The private copy would replace the range's entries, which a permanent page
    // forbids (XNU's remap cannot overwrite it); holes are reported first.
    if copy && !vm.table.any_unallocated(s, e) && vm.table.any_permanent(s, e) {
        return kr(KERN_NO_SPACE);
    }
    let edit = Edit::Protect {
        set_max: set_max != 0,
        prot: prot.without(VM_PROT_COPY),
        copy,
    };
    change(env, t, s, e, edit, None)?;
    Ok(KERN_SUCCESS.into())
}

/// `vm_wire` / `mach_vm_wire` (spec §9): refused, as for any task without the host-privileged port.
pub(super) fn wire<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    host: MachPort,
    task: MachPort,
) -> Step<Ret> {
    let At { caller, name, .. } = at;
    // The destination is the host-privileged port, which no guest holds: a name
    // for any other port reaches a server that refuses it.
    let vm = env.vm(caller);
    if vm.lookup_port(host).is_none() {
        return kr(MACH_SEND_INVALID_DEST);
    }
    // The task travels as a port in the message body: a name that is not null, not
    // dead and not in the namespace fails the send.
    body_task(env, caller, name, task)?;
    kr(KERN_INVALID_HOST)
}
