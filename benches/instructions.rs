//! The hot paths in instructions, counted by callgrind: repeatable on a noisy machine, where
//! the criterion benches (`benches/vm.rs`) give times. Run through `benches/callgrind.sh`,
//! which runs this binary under `valgrind --tool=callgrind`, collecting only inside `run`,
//! once with `n` calls and once with `n + 10,000`, and prints the difference / 10,000:
//! the instructions of one call (with its share of the guest's loop), free of set-up costs.
//!
//! `instructions <case> <n>`: cases are the exports of `wat/bench.wat` that repeat one call
//! (`noop`, `noop4`, `task_self`, `host_page_size`, `vm_copy0`) and two 4 KiB copies,
//! `vm_copy_4KiB` and `memory.copy_4KiB` (the guest's own, as plain Wasmtime runs it).
//! `vm_copy` is served in wasm once a copy opened the task's windows (the warm-up does
//! that for `vm_copy_4KiB`, a one-byte copy for `vm_copy0_in-wasm`); `vm_copy0` stays a
//! host call, and the `_host` suffix turns `KernelConfig::copy_in_wasm` off.
//! `memory.copy_4KiB_enforced` is the guest's `memory.copy` with enforcement's check. The
//! `_runner` suffix sets the store up as `machvm run` does (`install_handlers` and a
//! `ResourceLimiter`): `noop_runner` against `noop` is a host call's cost there.
//! Without valgrind it runs the same work, uncounted.

mod common;

use common::{engine, guest_with, Guest};
use machvm::KernelConfig;

/// The work that callgrind counts (`--toggle-collect=*instructions::run*`).
#[inline(never)]
fn run(g: &mut Guest, case: &str, n: u32) -> i32 {
    match case {
        "vm_copy_4KiB" | "memory.copy_4KiB" => {
            let export = if case == "vm_copy_4KiB" {
                "vm_copy"
            } else {
                "memory_copy"
            };
            let f = g.func::<(u32, u32, u32, u32), i32>(export);
            f.call(&mut g.store, (0, 4096, 64 << 20, n)).unwrap()
        }
        _ => {
            let f = g.func::<u32, i32>(case);
            f.call(&mut g.store, n).unwrap()
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` runs every bench target with `--bench`: nothing to count then.
    let (Some(case), Some(n)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: instructions <case> <n> (see benches/callgrind.sh)");
        return;
    };
    let n: u32 = n.parse().expect("n is a number");
    let engine = engine(false);
    let (case, runner) = match case.strip_suffix("_runner") {
        Some(c) => (c, true),
        None => (case.as_str(), false),
    };
    let (case, host) = match case.strip_suffix("_host") {
        Some(c) => (c, true),
        None => (case, false),
    };
    let (case, enforced) = match case.strip_suffix("_enforced") {
        Some(c) => (c, true),
        None => (case, false),
    };
    // The machvm rows run with enforcement, the plain memory.copy without machvm's check
    // (`_enforced`: with it).
    let config = KernelConfig::default()
        .enforce(case != "memory.copy_4KiB" || enforced)
        .copy_in_wasm(!host);
    let mut g = guest_with(&engine, config);
    if runner {
        machvm::install_handlers(&mut g.store);
        g.store.limiter(|s| &mut s.limits);
    }
    let case = match case.strip_suffix("_in-wasm") {
        Some(c) => {
            let f = g.func::<(u32, u32, u32, u32), i32>("vm_copy");
            assert_eq!(f.call(&mut g.store, (0, 1, 0, 1)).unwrap(), 0);
            c
        }
        None => case,
    };
    // Warm up outside the count: first calls compile trampolines and fill caches.
    run(&mut g, case, 1000);
    std::hint::black_box(run(&mut g, case, n));
}
