//! The values of machvm's guest ABI (spec §2), shared by the host (`machvm::abi`) and the
//! guest SDK (`machvm-guest`): [`KernReturn`] with XNU's codes, names and messages in one
//! table; the typed values [`VmProt`], [`VmInherit`], [`VmFlags`] and [`MachPort`]; and the
//! constants with XNU's names and values.
//!
//! `no_std`, no dependencies, nothing that knows Wasmtime or a target: both sides of the
//! import boundary agree on these numbers because they are the same items.
#![no_std]
#![warn(missing_docs)]

mod bits;
mod consts;
mod kern_return;

pub use bits::*;
pub use consts::*;
pub use kern_return::*;
