//! Wasmtime: tasks made of modules and memories ([`TaskPre`], [`new_task`]), the `"mach"`
//! imports as host functions, the store as the semantics' environment, the host API
//! ([`host`]), tracing ([`trace`]) and WASI with the table as its boundary (`wasi`).

mod funcs;
pub(crate) mod kernel;
mod store;
mod task;
mod traps;

pub mod host;
pub mod trace;
#[cfg(feature = "wasi")]
pub mod wasi;

pub use kernel::{Kernel, KernelConfig};
pub(crate) use store::*;
pub use task::{
    call, compile, instantiate, new_task, register_memory, Compiled, TaskModule, TaskPre,
};
pub use traps::{explain_trap, install_handlers};
#[allow(unused_imports)]
use {funcs::*, task::*, traps::*};

/// The projection from a store's data to its [`Kernel`], as in
/// `|state: &mut MyState| &mut state.kernel`.
pub trait GetKernel<T>: Fn(&mut T) -> &mut Kernel + Send + Sync + Copy + 'static {}

impl<T, F> GetKernel<T> for F where F: Fn(&mut T) -> &mut Kernel + Send + Sync + Copy + 'static {}
