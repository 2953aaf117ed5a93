//! Purgeable objects: `vm_purgable_control`, and emptying volatile objects under pressure.

use super::params::{load_param, resolve, store_param};
use super::{kr, sync, At, Env, Ret, Step, TaskId};
use crate::abi::*;

/// `vm_purgable_control` / `mach_vm_purgable_control` (spec §9).
pub(super) fn purgable_control<E: Env + ?Sized>(
    env: &mut E,
    at: At,
    task: MachPort,
    addr: u64,
    control: u32,
    state_ptr: u64,
) -> Step<Ret> {
    let At {
        caller, name, w, ..
    } = at;
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
    let vm = env.vm(t);
    let Some(attrs) = vm.table.get(w.truncate(addr) >> vm.page_shift) else {
        return kr(KERN_INVALID_ADDRESS);
    };
    if !attrs.cur.intersects(VM_PROT_WRITE) && control != VM_PURGABLE_GET_STATE {
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
        if new == VM_PURGABLE_VOLATILE && (old == VM_PURGABLE_EMPTY || object.volatile_empty) {
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
pub(super) fn empty_volatile<E: Env + ?Sized>(env: &mut E, tasks: &[TaskId]) -> u64 {
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
