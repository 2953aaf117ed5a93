//! # machvm
//!
//! Mach virtual-memory calls — `vm_copy`, `vm_protect`, `vm_allocate`, `vm_deallocate`,
//! `vm_read`, `vm_read_overwrite`, `vm_write`, `vm_region`, `host_page_size`,
//! `mach_task_self` — for WebAssembly guests, served by a Wasmtime embedder.
//!
//! Each Mach *task* is a guest linear memory with a page table kept beside it on the host
//! ([`table::PageTable`]). Every call checks bounds and protections on the host and answers
//! with the `kern_return_t` XNU would give. The semantics are `docs/spec.md`'s (see the README and
//! `docs/semantics.md`).
//!
//! Layers, from the bottom:
//! - [`table`]: the page table, as runs; no Wasmtime types.
//! - [`vm`]: every call's decision table, written once against [`vm::Env`].
//! - [`Kernel`]: the tasks of a store and their port namespaces.
//! - [`TaskPre`] / [`instantiate`]: the `"mach"` imports; a module becomes a task.
//! - [`host`]: the host inspects and drives a task (regions, protections, bytes, permanent
//!   ranges) with the checks a guest gets, and checks guest ranges for its own host
//!   functions ([`host::check_access`]); [`trace`]: one `tracing` event per call, like
//!   `dtruss`.
//! - `wasi` (feature `wasi`): WASI preview 1 with the page table as a boundary: every
//!   function checks the guest bytes it touches first (`docs/security.md`).
//! - [`model`]: an independent, deliberately simple reference implementation, the oracle
//!   of the differential tests and fuzz targets; [`fuzzing`]: their generators and oracles.
#![deny(missing_docs)]

mod budget;
pub mod calls;
pub mod consts;
pub mod enforce;
pub mod fuzzing;
pub mod harness;
#[path = "host_api.rs"]
pub mod host;
mod kernel;
mod linker;
pub mod model;
pub mod rewrite;
pub mod table;
pub mod trace;
pub mod vm;
#[cfg(feature = "wasi")]
pub mod wasi;

pub use calls::{Call, Form, Outcome, PageAttrs, ParamFault, Width};
pub use enforce::configure;
pub use kernel::{Kernel, KernelConfig};
pub use linker::{
    call, compile, explain_trap, install_handlers, instantiate, new_task, register_memory,
    Compiled, GetKernel, Import, TaskModule, TaskPre,
};
pub use vm::{TaskId, TaskVm};
