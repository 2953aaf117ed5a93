//! Call sequences through the real wasm boundary against the reference model: any
//! divergence (outcome, memory size, page state, allocated bytes) is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machvm::testing::fuzzing::{minimize, run_ops, Scenario};

fuzz_target!(|scenario: Scenario| {
    if let Err(d) = scenario.run() {
        let ops = minimize(&d.setup, &d.ops);
        let short = run_ops(&d.setup, &ops).err().map(|d| d.to_string());
        panic!("{d}\nminimised:\n{}", short.unwrap_or_default());
    }
});
