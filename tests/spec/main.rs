//! Conformance to `docs/spec.md`: every row of spec §4 for every call, in the `vm_*` and
//! `mach_vm_*` forms, for 32-bit and 64-bit memories, with page sizes 4096 and 16384, run
//! against machvm through real wasm guests (`wat/forward32.wat`, `wat/forward64.wat`) and
//! against the reference model (`machvm::testing::Target`), so that neither drifts alone.
//! The few rows the model does not describe (residency in host memory, the host API, the
//! copy windows) run on machvm only (`each_machvm`).

mod advice;
mod allocate;
mod common;
mod copy;
mod entries;
mod inherit;
mod linking;
mod params;
mod permanent;
mod ports;
mod protect;
mod recurse;
mod remap;
mod transfer;
