//! Wasmtime: tasks made of modules and memories ([`TaskPre`], [`new_task`]), the `"mach"`
//! imports as host functions, the store as the semantics' environment, the host API
//! ([`host`]), tracing ([`trace`]) and WASI with the table as its boundary (`wasi`).

mod error;
mod funcs;
pub(crate) mod kernel;
mod state;
mod store;
mod task;
mod traps;

pub mod host;
pub mod trace;
#[cfg(feature = "wasi")]
pub mod wasi;

pub use error::{ConfigError, LinkError, TaskError};
pub use kernel::{Kernel, KernelConfig};
pub(crate) use store::*;
pub use task::{
    call, compile, compile_with, instantiate, new_task, register_memory, CompileOptions, Compiled,
    TaskModule, TaskPre,
};
pub use traps::{explain_trap, install_handlers};

/// A store's data that holds a [`Kernel`], as wasmtime-wasi's `WasiView` holds a WASI
/// context: machvm's functions find the kernel of a store through it.
///
/// ```
/// use machvm::{Kernel, KernelView};
///
/// struct State {
///     kernel: Kernel,
///     // ... the embedder's own state
/// }
///
/// impl KernelView for State {
///     fn kernel(&mut self) -> &mut Kernel {
///         &mut self.kernel
///     }
/// }
/// ```
///
/// A store whose data is the [`Kernel`] itself needs nothing: `Kernel` implements it.
pub trait KernelView: 'static {
    /// The store's kernel.
    fn kernel(&mut self) -> &mut Kernel;
}

impl KernelView for Kernel {
    fn kernel(&mut self) -> &mut Kernel {
        self
    }
}

/// The projection the internals pass around: a zero-sized function item per store type.
pub(crate) trait GetKernel<T>:
    Fn(&mut T) -> &mut Kernel + Send + Sync + Copy + 'static
{
}

impl<T, F> GetKernel<T> for F where F: Fn(&mut T) -> &mut Kernel + Send + Sync + Copy + 'static {}

/// [`KernelView::kernel`] as a function item.
pub(crate) fn view<T: KernelView>(data: &mut T) -> &mut Kernel {
    data.kernel()
}
