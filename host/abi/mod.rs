//! The ABI of spec §2 and §3, as the guest sees it: the constants and their types (the
//! `machvm-abi` crate, which the guest SDK shares), one value per call ([`Call`]) and its
//! result ([`Outcome`]), and the `"mach"` imports with their signatures ([`Import`]).
//! Nothing here knows Wasmtime.

mod calls;
mod imports;

pub use calls::*;
pub use imports::Import;
pub(crate) use imports::Ty;
pub use machvm_abi::*;
