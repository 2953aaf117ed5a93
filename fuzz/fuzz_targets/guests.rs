//! Random modules (wasm-smith) that import the `mach` functions with the signatures of
//! their memory's width and WASI preview 1's functions, and export their memory, run as
//! tasks with fuel and a memory limit. Before each export call the host protects pages
//! (read-only, inaccessible), and the call's arguments point into and around them.
//! Traps and refusals are normal; a host panic, abort or crash, a page table that
//! contradicts its memory, or a changed byte of a page the table kept without WRITE through
//! a call, is a finding. `MACHVM_FUZZ_STATS=1` prints what happened to each input
//! (`machvm-guest GuestReport { .. }`).
//!
//! Input: the first `HEAD` bytes are the host's side (width, page size, the `HostPlan`),
//! the rest is wasm-smith's; inputs that differ only in the head run the same module (the
//! library keeps the last compiled ones).
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use machvm::testing::fuzzing::guests::{imports_module, run_guest, GuestLimits, HostPlan};
use machvm::Width;

/// Bytes of the input that describe the host's side.
const HEAD: usize = 64;

fn run(data: &[u8]) -> Result<()> {
    let (head, rest) = data.split_at(data.len().min(HEAD));
    let mut h = Unstructured::new(head);
    let width = if h.arbitrary()? {
        Width::W64
    } else {
        Width::W32
    };
    let page_size = if h.arbitrary()? { 16384 } else { 4096 };
    // Half of the modules avoid traps of their own, so that they run further.
    let disallow_traps = h.arbitrary()?;
    let plan: HostPlan = h.arbitrary()?;
    let config = wasm_smith::Config {
        available_imports: Some(imports_module(width, true).to_vec()),
        max_imports: 48,
        min_funcs: 1,
        min_memories: 1,
        max_memories: 1,
        memory64_enabled: width == Width::W64,
        max_memory32_bytes: 4 << 20,
        max_memory64_bytes: 4 << 20,
        export_everything: true,
        disallow_traps,
        // Features Wasmtime 48 does not enable by default, and shared memories (which
        // cannot be a task's).
        threads_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        custom_page_sizes_enabled: false,
        ..wasm_smith::Config::default()
    };
    let module = wasm_smith::Module::new(config, &mut Unstructured::new(rest))?;
    let limits = GuestLimits {
        page_size,
        ..GuestLimits::default()
    };
    let report = run_guest(&module.to_bytes(), &limits, &plan);
    if std::env::var_os("MACHVM_FUZZ_STATS").is_some() {
        eprintln!("machvm-guest {report:?}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
