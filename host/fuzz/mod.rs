//! Module rewrites for coverage-guided fuzzing of guests: [`coverage`], the edge counters
//! a fuzzer reads. They use nothing of Wasmtime but its error type.

pub mod coverage;
