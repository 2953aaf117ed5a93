//! Shared pages (spec §8): what makes two addresses show the same bytes.
//!
//! XNU shares backing objects, not addresses: a mapping names pages of an object, and the
//! object's data lives while any mapping (or a memory-entry port) refers to it. machvm does
//! the same for linear memories, on Linux, with [`backing`]: memories whose pages belong to
//! shared memory files (`memfd`), mapped into the memory's reservation with fixed shared
//! mappings, each page of a file counted by the mappings that refer to it.
//!
//! This room is hardware and Wasmtime's custom-memory interface only; the calls of spec §8
//! (`vm_remap`, memory entries, `vm_map`, `vm_inherit`, `vm_region_recurse_64`) are not
//! linked yet, and no engine uses these memories unless it is set up with
//! [`backing::BackedMemoryCreator`].

pub mod backing;
