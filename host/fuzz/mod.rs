//! What `machvm fuzz` adds to a guest module, as module rewrites that know nothing of
//! Wasmtime's runtime: [`coverage`], the edge counters a coverage-guided fuzzer reads.

pub mod coverage;
