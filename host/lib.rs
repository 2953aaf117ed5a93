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
//! Rooms, from the bottom (each uses only the ones above it; `docs/architecture.md`):
//! - [`abi`]: what the guest sees: constants, [`Call`], [`Outcome`], the imports and their
//!   signatures. No Wasmtime.
//! - [`table`]: the page table, as runs. No Wasmtime.
//! - [`vm`]: the semantics: every call's decision table, written once against [`vm::Env`]
//!   (the tasks and their bytes), the copy windows and the mapping budget. No Wasmtime.
//! - [`enforce`]: the table on the guest's own accesses: `mprotect` mirroring, the signal
//!   handler, and [`rewrite`], the module rewrite that checks bulk-memory instructions.
//! - [`fuzz`]: coverage-guided fuzzing of guests: [`fuzz::coverage`], edge counters in a
//!   memory of their own, and [`fuzz::heap`], the guard heap (the guest's `malloc` family
//!   on pages of their own, each block against a page with no access).
//! - [`share`]: shared pages (spec §8): memories made of shared memory files
//!   ([`share::backing`]), so that two addresses can show the same bytes.
//! - Wasmtime: [`Kernel`] (the tasks of a store and their port namespaces), [`compile`],
//!   [`TaskPre`] / [`instantiate`] / [`new_task`] (a module or memory becomes a task), the
//!   `"mach"` imports, [`host`] (the host inspects and drives a task with the checks a guest
//!   gets, and checks guest ranges for its own host functions: [`host::check_access`]),
//!   [`trace`] (one `tracing` event per call, like `dtruss`) and `wasi` (feature `wasi`:
//!   WASI preview 1 with the page table as a boundary, `docs/security.md`).
//! - `testing` (feature `testing`): the reference model, the harness and the fuzzing
//!   generators and oracles, for the tests, benches and fuzz targets.
#![deny(missing_docs)]

pub mod abi;
#[cfg(test)]
mod child;
mod embed;
pub mod enforce;
pub mod fuzz;
pub mod share;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vm;

#[cfg(feature = "wasi")]
pub use embed::wasi;
pub use embed::{host, trace};

pub use abi::{Call, Form, Import, Outcome, PageAttrs, ParamFault, Width};
pub use embed::{
    call, compile, compile_with, explain_trap, install_handlers, instantiate, new_task,
    register_memory, CompileOptions, Compiled, ConfigError, Kernel, KernelConfig, KernelView,
    LinkError, TaskError, TaskModule, TaskPre,
};
pub use enforce::{configure, rewrite};
pub use vm::{TaskId, TaskVm};
