//! The test machinery (feature `testing`): the reference model, the harness that drives
//! calls through the real wasm boundary, and the generators and oracles of the differential
//! tests and fuzz targets. Embedders do not need it; the tests, benches and `fuzz/` turn it
//! on.

pub mod fuzzing;
pub mod harness;
pub mod model;
