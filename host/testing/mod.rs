//! The test machinery (feature `testing`): the reference model, the harness that drives
//! calls through the real wasm boundary, and the generators and oracles of the differential
//! tests and fuzz targets. Embedders do not need it; the tests, benches and `fuzz/` turn it
//! on.

pub mod fuzzing;
pub mod harness;
pub mod model;
pub mod target;

pub use target::{ModelTarget, Target};

/// The deterministic generator of the tests that draw their own inputs (xorshift64*): one
/// for all of them, so a seed means the same sequence everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (0 is replaced: xorshift never leaves it).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` random bytes, e.g. for an `arbitrary::Unstructured`.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next_u64() >> 32) as u8).collect()
    }
}
