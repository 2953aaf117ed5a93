//! Parameter checks: ranges of a task (spec §4's rows on wrapping, allocation and
//! protection), port names, and the scalar parameters a call loads from and stores into the
//! caller's memory (spec §3).

use super::{kr, sync, Env, PortTarget, Step, TaskId};
use crate::abi::*;
use crate::table::CheckError;

/// Checks that task `t`'s pages `[s, e)` are allocated with `prot`, syncing the table with
/// the memory first if (and only if) an unallocated page is found (see [`sync`]).
pub(super) fn access<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    s: u64,
    e: u64,
    prot: VmProt,
) -> Result<(), CheckError> {
    match env.vm(t).table.check_access(s, e, prot) {
        Err(CheckError::Unallocated { .. }) if sync(env, t) => {
            env.vm(t).table.check_access(s, e, prot)
        }
        r => r,
    }
}

/// `start + size` does not fit in `w`.
pub(super) fn wraps(start: u64, size: u64, w: Width) -> bool {
    u128::from(start) + u128::from(size) >= w.limit()
}

/// `round(start + size)` does not fit in `w` (it "wraps to 0").
pub(super) fn round_wraps(start: u64, size: u64, w: Width, page: u64) -> bool {
    debug_assert!(page.is_power_of_two());
    let mask = u128::from(page - 1);
    ((u128::from(start) + u128::from(size) + mask) & !mask) >= w.limit()
}

pub(super) fn check_error_kr(e: CheckError) -> KernReturn {
    match e {
        CheckError::Unallocated { .. } => KERN_INVALID_ADDRESS,
        CheckError::Denied { .. } => KERN_PROTECTION_FAILURE,
    }
}

/// spec §4 vm_copy rows 2-4 for one range `[addr, addr+size)` (size > 0) of task `t`.
pub(super) fn check_range<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    addr: u64,
    size: u64,
    w: Width,
    prot: VmProt,
) -> Step {
    let vm = env.vm(t);
    if wraps(addr, size, w) || round_wraps(addr, size, w, vm.page_size()) {
        return kr(KERN_INVALID_ADDRESS);
    }
    let (s, e) = vm.pages(addr, size);
    access(env, t, s, e, prot).or_else(|err| kr(check_error_kr(err)))
}

pub(super) fn resolve<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: MachPort,
) -> Step<TaskId> {
    match env.vm(caller).lookup_port(name) {
        None => kr(MACH_SEND_INVALID_DEST),
        Some(PortTarget::Host | PortTarget::Entry(_)) => kr(KERN_INVALID_ARGUMENT),
        Some(PortTarget::Task(t)) => Ok(t),
    }
}

/// A port passed in a message's body (not its destination) by call `name`: `None` for
/// null and dead; a name not in the caller's namespace fails the send
/// (`MACH_SEND_INVALID_RIGHT`, with XNU's guard exception); else what it names.
pub(super) fn body_port<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    port: MachPort,
) -> Step<Option<PortTarget>> {
    if port == MACH_PORT_NULL || port == MACH_PORT_DEAD {
        return Ok(None);
    }
    match env.vm(caller).lookup_port(port) {
        None => {
            tracing::warn!(
                target: "machvm::guard",
                call = name,
                name = format_args!("{port:#x}"),
                "guard exception: the message names a port right the task does not hold"
            );
            kr(MACH_SEND_INVALID_RIGHT)
        }
        Some(target) => Ok(Some(target)),
    }
}

/// A task port passed in a message's body ([`body_port`]): the task it names, `None` for
/// null, dead, the host port and memory entries (no task).
pub(super) fn body_task<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    port: MachPort,
) -> Step<Option<TaskId>> {
    Ok(match body_port(env, caller, name, port)? {
        Some(PortTarget::Task(t)) => Some(t),
        _ => None,
    })
}

/// Checks a scalar parameter `[ptr, ptr+len)` of the caller for a load (`write == false`,
/// needs READ) or a store (needs WRITE).
fn check_param<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    len: u64,
    write: bool,
) -> Result<(), ParamFault> {
    let fault = |reason: String| ParamFault {
        call: name,
        param,
        addr: ptr,
        write,
        reason,
    };
    let vm = env.vm(caller);
    if wraps(ptr, len, vm.width) {
        return Err(fault(format!(
            "the {len}-byte parameter wraps around the {}-bit address space",
            vm.width.bits()
        )));
    }
    let (s, e) = vm.pages(ptr, len);
    let prot = if write { VM_PROT_WRITE } else { VM_PROT_READ };
    let checked = access(env, caller, s, e, prot);
    let vm = env.vm(caller);
    match checked {
        Ok(()) => Ok(()),
        Err(CheckError::Unallocated { page }) => {
            let at = u128::from(page) << vm.page_shift;
            Err(fault(if at >= vm.map_limit() {
                format!("page {at:#x} is outside the task's map")
            } else {
                format!("page {at:#x} is unallocated")
            }))
        }
        Err(CheckError::Denied { page, attrs }) => Err(fault(format!(
            "page {:#x} is not {} (protection {})",
            u128::from(page) << vm.page_shift,
            if write { "writable" } else { "readable" },
            attrs.cur
        ))),
    }
}

pub(super) fn load_param<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    bytes: u64,
) -> Result<u64, ParamFault> {
    check_param(env, caller, name, param, ptr, bytes, false)?;
    let mut buf = [0u8; 8];
    if !env.load(caller, ptr, &mut buf[..bytes as usize]) {
        return Err(internal_fault(name, param, ptr, false));
    }
    let value = u64::from_le_bytes(buf);
    env.log_param(param, false, value);
    Ok(value)
}

pub(super) fn store_bytes<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    bytes: &[u8],
) -> Result<(), ParamFault> {
    check_param(env, caller, name, param, ptr, bytes.len() as u64, true)?;
    if !env.prepare_write(caller, ptr, bytes.len() as u64) {
        return Err(ParamFault {
            call: name,
            param,
            addr: ptr,
            write: true,
            reason: "its write-only page cannot be mapped: the process's mapping budget is \
                     exhausted"
                .into(),
        });
    }
    if !env.store(caller, ptr, bytes) {
        return Err(internal_fault(name, param, ptr, true));
    }
    Ok(())
}

pub(super) fn store_param<E: Env + ?Sized>(
    env: &mut E,
    caller: TaskId,
    name: &'static str,
    param: &'static str,
    ptr: u64,
    value: u64,
    bytes: u64,
) -> Result<(), ParamFault> {
    store_bytes(
        env,
        caller,
        name,
        param,
        ptr,
        &value.to_le_bytes()[..bytes as usize],
    )?;
    env.log_param(param, true, value);
    Ok(())
}

fn internal_fault(name: &'static str, param: &'static str, ptr: u64, write: bool) -> ParamFault {
    ParamFault {
        call: name,
        param,
        addr: ptr,
        write,
        reason: "the page table and the memory disagree (machvm bug)".into(),
    }
}
