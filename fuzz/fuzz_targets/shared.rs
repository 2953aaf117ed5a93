//! Call sequences on memories that can share pages (spec §8) through the real wasm
//! boundary against the reference model: `vm_remap`, memory entries and `vm_map` succeed
//! there, so writes through aliases and entries, freed and overwritten mappings,
//! `VM_PROT_COPY`, copies between aliases, port names and share modes are compared with
//! the model's objects. Any divergence is a finding.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use machvm::testing::fuzzing::{minimize, run_ops, Constraints, Scenario};

fuzz_target!(|data: &[u8]| {
    let constraints = Constraints {
        backed: Some(true),
        ..Constraints::default()
    };
    let Ok(scenario) = Scenario::generate(&mut Unstructured::new(data), &constraints) else {
        return;
    };
    if let Err(d) = scenario.run() {
        let ops = minimize(&d.setup, &d.ops);
        let short = run_ops(&d.setup, &ops).err().map(|d| d.to_string());
        panic!("{d}\nminimised:\n{}", short.unwrap_or_default());
    }
});
