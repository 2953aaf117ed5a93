//! Differential tests: random call sequences through the real wasm boundary against the
//! reference model (`machvm::testing::fuzzing`), and page-table operations against a page-by-page
//! vector. After every step the oracle compares the outcome, each task's memory size,
//! every page's state and the bytes of every allocated page (hence every out-parameter).
//!
//! Each test runs `PROPTEST_CASES` cases (default: a few, so that CI stays fast); run more
//! locally, e.g. `PROPTEST_CASES=500 cargo test --test differential`. A failure prints the
//! diverging step sequence and a minimised one: make the latter a named test in
//! `tests/regressions.rs`.

use arbitrary::Unstructured;
use machvm::abi::KernReturn;
use machvm::testing::fuzzing::table::{run_table, TableCase};
use machvm::testing::fuzzing::{minimize, Constraints, Scenario};
use machvm::testing::Rng;
use machvm::Width;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// `PROPTEST_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        // A failure is minimised by `machvm::testing::fuzzing::minimize` (on the concrete steps),
        // which gives far shorter sequences than shrinking the random bytes would.
        max_shrink_iters: 0,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Scenarios within `c`, drawn from 6 to 12 KiB of random bytes: a few hundred steps.
fn scenarios(c: Constraints) -> impl Strategy<Value = Scenario> {
    proptest::collection::vec(any::<u8>(), 6144..12288).prop_map(move |bytes| {
        Scenario::generate(&mut Unstructured::new(&bytes), &c).expect("enough data")
    })
}

fn check(s: &Scenario) -> Result<(), TestCaseError> {
    match s.run() {
        Ok(()) => Ok(()),
        Err(d) => {
            let ops = minimize(&d.setup, &d.ops);
            let short = machvm::testing::fuzzing::run_ops(&d.setup, &ops)
                .err()
                .map_or_else(|| "(did not reproduce)".to_string(), |d| d.to_string());
            Err(TestCaseError::fail(format!("{d}\nminimised:\n{short}")))
        }
    }
}

fn constraints(page_size: u64, width: Option<Width>) -> Constraints {
    Constraints {
        page_size: Some(page_size),
        width,
        max_tasks: 3,
        max_steps: 600,
        backed: None,
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn calls_32bit_page_4096(s in scenarios(constraints(4096, Some(Width::W32)))) {
        check(&s)?;
    }

    #[test]
    fn calls_32bit_page_16384(s in scenarios(constraints(16384, Some(Width::W32)))) {
        check(&s)?;
    }

    #[test]
    fn calls_64bit_page_4096(s in scenarios(constraints(4096, Some(Width::W64)))) {
        check(&s)?;
    }

    #[test]
    fn calls_64bit_page_16384(s in scenarios(constraints(16384, Some(Width::W64)))) {
        check(&s)?;
    }

    /// 32- and 64-bit tasks in one kernel, calling each other.
    #[test]
    fn calls_mixed_widths(s in scenarios(Constraints {
        max_tasks: 3,
        ..constraints(4096, None)
    })) {
        check(&s)?;
    }

    /// Every task on a backed memory (`machvm::share::backing`, pages of a shared memory
    /// file): the same answers and bytes as the model. (The other cases use one a fifth of
    /// the time.)
    #[test]
    fn calls_on_backed_memories(s in scenarios(Constraints {
        backed: Some(true),
        ..constraints(16384, None)
    })) {
        check(&s)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn page_table_against_a_page_vector(bytes in proptest::collection::vec(any::<u8>(), 0..8192)) {
        let case: TableCase = Unstructured::new(&bytes).arbitrary().expect("enough data");
        if let Err(e) = run_table(&case) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// On backed memories the generator shares pages (spec §8): `vm_remap` without copy
/// succeeds, within a task and through a send right, and calls then write through aliases —
/// which `calls_on_backed_memories` compares with the model's objects.
#[test]
fn backed_scenarios_share_pages() {
    use machvm::testing::fuzzing::Op;
    use machvm::{Call, Outcome};
    let (mut shared, mut across, mut copies, mut after) = (0, 0, 0, 0);
    for seed in 0..8u64 {
        let bytes = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).bytes(8192);
        let c = Constraints {
            backed: Some(true),
            ..Constraints::default()
        };
        let s = Scenario::generate(&mut Unstructured::new(&bytes), &c).expect("enough data");
        let mut sharing = false;
        for (op, outcome) in &s.ops() {
            let Op::Call { call, .. } = op else { continue };
            let ok = outcome == &Some(Outcome::Kr(KernReturn::SUCCESS));
            match *call {
                Call::Remap { copy, src_task, .. } if ok => {
                    if copy == 0 {
                        shared += 1;
                        sharing = true;
                        across += usize::from(src_task.0 != 0x103);
                    } else {
                        copies += 1;
                    }
                }
                Call::Copy { .. } | Call::Write { .. } | Call::Deallocate { .. } if ok => {
                    after += usize::from(sharing);
                }
                _ => {}
            }
        }
    }
    eprintln!("{shared} shared remaps ({across} from another task), {copies} copies, {after} later writes or frees");
    assert!(shared > 0 && across > 0 && copies > 0 && after > 0);
}

/// The generator gives what the tests claim: hundreds of steps, every call of spec §3 both
/// succeeding and failing, traps on out-parameters, cross-task calls, send rights and the
/// guest's own memory.grow — measured on the steps actually run.
#[test]
fn scenarios_cover_every_call_and_cross_task_calls() {
    use machvm::testing::fuzzing::Op;
    use machvm::Outcome;
    use std::collections::BTreeMap;
    // Per call: (successes, failing return codes, traps).
    let mut seen: BTreeMap<&'static str, (usize, usize, usize)> = BTreeMap::new();
    let (mut cross, mut rights, mut grows, mut steps) = (0, 0, 0, 0);
    // Successes of the rows revised most recently: vm_region flavor 10 (the 32-bit struct)
    // and vm_read of an address inside a page (the copy keeps its offset); and of
    // vm_behavior_set recording a behavior that vm_region then reports.
    let (mut flavor10, mut read_offset, mut behavior) = (0, 0, 0);
    // ... and of vm_purgable_control setting the state of a purgeable object.
    let mut purgeable = 0;
    for seed in 0..16u64 {
        let bytes = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).bytes(8192);
        let s = Scenario::generate(&mut Unstructured::new(&bytes), &Constraints::default())
            .expect("enough data");
        let ops = s.ops();
        steps += ops.len();
        for (op, outcome) in &ops {
            match op {
                Op::Call { call, .. } => {
                    let e = seen.entry(call.import_name()).or_default();
                    match outcome {
                        Some(Outcome::Kr(KernReturn::SUCCESS)) => e.0 += 1,
                        Some(Outcome::Kr(_) | Outcome::Port(_)) => e.1 += 1,
                        _ => e.2 += 1,
                    }
                    let args = call.args();
                    if args.first().is_some_and(|&t| t & 0xFF == 3 && t >> 8 >= 3) {
                        cross += 1;
                    }
                    if outcome == &Some(Outcome::Kr(KernReturn::SUCCESS)) {
                        match *call {
                            machvm::Call::Region { flavor: 10, .. } => flavor10 += 1,
                            machvm::Call::BehaviorSet {
                                behavior: 1..=3,
                                size: 1..,
                                ..
                            } => behavior += 1,
                            machvm::Call::PurgableControl { control: 0, .. } => purgeable += 1,
                            machvm::Call::Read { addr, size, .. }
                                if size > 0 && addr % s.setup.page_size != 0 =>
                            {
                                read_offset += 1
                            }
                            _ => {}
                        }
                    }
                }
                Op::Right { .. } => rights += 1,
                Op::Grow { .. } => grows += 1,
                Op::Poke { .. } => {}
            }
        }
    }
    eprintln!("{steps} steps; (ok, error, trap) per call {seen:?}; cross-task {cross}, rights {rights}, grows {grows}");
    assert!(steps >= 16 * 200, "{steps} steps in 16 scenarios");
    assert_eq!(
        seen.len(),
        machvm::Import::ALL.len(),
        "calls seen: {seen:?}"
    );
    for (call, &(ok, err, _)) in &seen {
        if call.ends_with("vm_wire") {
            // No guest holds the host-privileged port: vm_wire never succeeds.
            assert!(ok == 0 && err > 0, "{call}: {ok} successes, {err} errors");
        } else if !call.ends_with("_self") && *call != "host_page_size" {
            assert!(ok > 0 && err > 0, "{call}: {ok} successes, {err} errors");
        }
    }
    assert!(
        cross > 0 && rights > 0 && grows > 0,
        "{cross} {rights} {grows}"
    );
    assert!(
        flavor10 > 0 && read_offset > 0 && behavior > 0 && purgeable > 0,
        "{flavor10} flavor-10 regions, {read_offset} vm_reads inside a page, \
         {behavior} behaviors recorded, {purgeable} purgeable states set"
    );
}
