//! Page-table operations against a page-by-page vector: any different answer, or runs that
//! are not exactly the maximal runs of equal pages, is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machvm::testing::fuzzing::table::{run_table, TableCase};

fuzz_target!(|case: TableCase| {
    if let Err(e) = run_table(&case) {
        panic!("{e}");
    }
});
