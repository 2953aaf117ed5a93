//! Random modules (wasm-smith) that import the `mach` functions with the signatures of
//! their memory's width and export their memory, run as tasks with fuel and a memory limit.
//! Traps and refusals are normal; a host panic, abort or crash, or a page table that
//! contradicts its memory, is a finding. `MACHVM_FUZZ_STATS=1` prints what happened to
//! each input (compiled, prepared, instantiated, export calls, traps, mach imports).
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use machvm::fuzzing::guests::{mach_imports_module, run_guest, GuestLimits};
use machvm::Width;

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let width = if u.arbitrary()? {
        Width::W64
    } else {
        Width::W32
    };
    let page_size = *u.choose(&[4096, 16384])?;
    let config = wasm_smith::Config {
        available_imports: Some(mach_imports_module(width)),
        max_imports: 19,
        min_funcs: 1,
        min_memories: 1,
        max_memories: 1,
        memory64_enabled: width == Width::W64,
        max_memory32_bytes: 4 << 20,
        max_memory64_bytes: 4 << 20,
        export_everything: true,
        // Half of the modules avoid traps of their own, so that they run further.
        disallow_traps: u.arbitrary()?,
        // Features Wasmtime 48 does not enable by default, and shared memories (which
        // cannot be a task's).
        threads_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        custom_page_sizes_enabled: false,
        ..wasm_smith::Config::default()
    };
    let module = wasm_smith::Module::new(config, &mut u)?;
    let limits = GuestLimits {
        page_size,
        ..GuestLimits::default()
    };
    let report = run_guest(&module.to_bytes(), &limits);
    if std::env::var_os("MACHVM_FUZZ_STATS").is_some() {
        eprintln!("machvm-guest {report:?}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
