//! Coverage-guided fuzzing of guests: [`coverage`], the edge counters a fuzzer reads (a
//! module rewrite), and [`heap`], the guard heap (a rewrite that sends the guest's `malloc`
//! family to the host, and the allocator that serves it there on guard pages).
//! [`crate::compile_with`] applies the rewrites.

pub mod coverage;
pub mod heap;
