//! Traps: machvm's signal handler ([`install_handlers`]) and the explanation of a trap that
//! hit a protected page ([`explain_trap`]).

use std::sync::Arc;

use wasmtime::AsContextMut;

use super::{view, KernelView};
use crate::enforce::BadAccess;
use crate::vm::TaskId;

/// Installs machvm's signal handler on `store` (replacing any other): it records where
/// and how (read or write) the store's wasm code faulted, so that [`explain_trap`] can tell
/// the access kind of a load or store that hit a protected page, and, on x86-64 Linux, it
/// keeps write-only pages as XNU does: tasks made after it have their write-only pages
/// inaccessible until the first store, which the handler lets through by making that page
/// read-write (see `docs/enforcement.md`). It lifts no other protection, and traps are clean
/// without it. Host functions never rely on a fault handler: machvm's own, WASI through
/// [`crate::wasi`] and an embedder's that use [`crate::host::check_access`] check the table
/// (and map write-only pages) before they touch guest memory (see `docs/security.md`).
pub fn install_handlers<T: KernelView>(store: &mut wasmtime::Store<T>) {
    let get = view::<T>;
    let kernel = get(store.data_mut());
    if kernel.moved() {
        // Its tasks' records name memories of the store it was taken from, which this one
        // may reuse: the new store's handler must not know them (the kernel refuses every
        // operation anyway).
        kernel.fault = None;
    }
    let record = kernel.fault.get_or_insert_with(Arc::default).clone();
    crate::enforce::install_handler(store, record);
}

/// Explains a trap that a guest load or store got on a page the table protects: which
/// task, the wasm address, the access kind (with [`install_handlers`]) and the page's
/// state, as a [`BadAccess`]. `None` when the error is not such a trap, or when the fault
/// machvm's handler recorded is not this trap's (its wasm address, which Wasmtime gives in
/// the error's context, must be the recorded fault's). Bulk-memory instructions raise a
/// [`BadAccess`] themselves (find it with `error.downcast_ref`).
pub fn explain_trap<T: KernelView>(
    mut store: impl AsContextMut<Data = T>,
    error: &wasmtime::Error,
) -> Option<(TaskId, BadAccess)> {
    let get = view::<T>;
    if error.downcast_ref::<wasmtime::Trap>() != Some(&wasmtime::Trap::MemoryOutOfBounds) {
        return None;
    }
    let wasm_addr = error
        .chain()
        .find_map(|c| crate::enforce::fault_address(&c.to_string()))?;
    let mut cx = store.as_context_mut();
    let kernel = get(cx.data_mut());
    let (host_addr, kind, unmapped) = match kernel.fault.as_ref().and_then(|f| f.take()) {
        Some(f) => (f.0 as usize, f.1, f.2),
        None => return None,
    };
    kernel.tasks.iter().enumerate().find_map(|(i, t)| {
        let (hw_base, hw_size) = t.hardware()?;
        let off = host_addr.checked_sub(hw_base)?;
        if off >= hw_size || off as u64 != wasm_addr {
            return None;
        }
        let addr = off as u64;
        let page = t.vm.table().get(addr >> t.vm.page_shift());
        Some((
            kernel.id_of(i),
            BadAccess {
                instruction: "load or store",
                addr,
                kind,
                page_size: t.vm.page_size(),
                page,
                unmapped,
            },
        ))
    })
}
