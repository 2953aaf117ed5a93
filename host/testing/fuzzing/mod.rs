//! Generators and oracles for the differential tests and the fuzz targets: they live in the
//! library so that `tests/differential.rs` (proptest), `tests/regressions.rs` and the
//! cargo-fuzz targets under `fuzz/` share them, and each of those is thin glue.
//!
//! - [`Setup`] and [`Op`]: a configuration of tasks (memory widths, sizes, maxima, page size,
//!   limits) and concrete steps (a [`Call`](crate::Call) made by a guest, the guest's own
//!   `memory.grow`, its own stores, an inserted send right).
//! - [`Differential`]: the oracle. It runs every [`Op`] through the real wasm boundary
//!   ([`Harness`](crate::testing::harness::Harness)) and on the reference [`Model`](crate::testing::model::Model),
//!   and after every step compares the outcome, the memory sizes, every page's state and the
//!   bytes of every allocated page of every task ([`Differential::apply`]), or the bytes of
//!   the pages the step touches, before and after it, with every byte compared at the end of
//!   the run ([`Differential::step`], what [`run_ops`] and [`Scenario::run`] use; a difference
//!   found is then [`locate`]d at the first step after which anything differs).
//! - [`Scenario`]: an [`arbitrary::Arbitrary`] call sequence whose arguments are drawn to hit
//!   the edges of spec §4 (0, 1, P−1, P, P+1, near 2^31, 2^32 and 2^64, the memory's end, the
//!   map's end, unaligned, overlapping ranges, out-parameters straddling pages); it is resolved
//!   into [`Op`]s against the state as it goes.
//! - [`minimize`]: shrinks a failing [`Op`] sequence to a short one for a regression test.
//! - [`table`]: page-table operations checked against a page-by-page vector.
//! - [`guests`]: runs any module as a task with fuel and a memory limit (the `guests` fuzz
//!   target feeds it `wasm-smith` modules).

mod oracle;
mod scenario;

pub mod guests;
pub mod table;

pub use oracle::{
    locate, map_limit_of, minimize, run_ops, rust_call, Differential, Divergence, Op, Setup,
    TaskSpec,
};
pub use scenario::{
    BehaviorSpec, CallSpec, Constraints, CountSpec, DstSpec, FlagsSpec, FlavorSpec, InfoSpec, Num,
    PortSpec, ProtSpec, PtrSpec, RangeCountSpec, Scenario, SetMaxSpec, SizeSpec, StateSpec,
    StepSpec, SyncSpec,
};

/// `/proc/self/mem`, which reads pages whatever their protection, opened once.
fn proc_mem() -> &'static std::fs::File {
    static FILE: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    FILE.get_or_init(|| std::fs::File::open("/proc/self/mem").expect("/proc/self/mem is readable"))
}

/// Appends to `buf` the `len` bytes of this process at `addr`, read through `/proc/self/mem`
/// (page protections ignored: a task's protected pages never fault).
///
/// # Panics
///
/// When the bytes are not mapped or `/proc/self/mem` cannot be read (not Linux).
fn read_process(buf: &mut Vec<u8>, addr: u64, len: usize) {
    use std::os::unix::fs::FileExt;
    let at = buf.len();
    buf.resize(at + len, 0);
    proc_mem()
        .read_exact_at(&mut buf[at..], addr)
        .expect("a memory's pages are mapped");
}
