//! The ABI of spec §2 and §3, as the guest sees it: the constants and their types, one
//! value per call ([`Call`]) and its result ([`Outcome`]), and the `"mach"` imports with
//! their signatures ([`Import`]). Nothing here knows Wasmtime.

mod bits;
mod calls;
mod consts;
mod imports;
mod kern_return;

pub use calls::*;
pub use consts::*;
pub use imports::Import;
pub(crate) use imports::Ty;
pub use kern_return::KernReturn;
