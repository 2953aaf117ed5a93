//! The regression corpus: every divergence the differential tests and the fuzz targets
//! found, as a named test, with the side that was wrong and why.
//!
//! A test marked `#[ignore = "..."]` is a bug of the real implementation that is reported
//! and not fixed yet (the oracles may tolerate exactly its behaviour meanwhile); run them with
//! `cargo test --test regressions -- --ignored`, and remove the `ignore` with the fix.

use machvm::abi::*;
use machvm::table::PageTable;
use machvm::testing::fuzzing::{run_ops, Op, Setup, TaskSpec};
use machvm::testing::harness::Harness;
use machvm::{Call, Form, KernelConfig, Outcome, PageAttrs, Width};

/// `PageTable::find_free_below(n, below)` must return a run that ends at or below `below`
/// (its documentation: "the lowest run of `n` unallocated pages ending at or below page
/// `below`"). It returned the gap before an allocated run lying past `below` whenever the
/// gap was long enough, without clipping the gap to `below`.
///
/// Found by the `page_table_against_a_page_vector` differential test. Real side wrong
/// (host/table.rs).
#[test]
fn table_find_free_below_stays_below_its_bound() {
    let mut t = PageTable::new(300);
    t.set(0, 10, PageAttrs::DEFAULT);
    t.set(200, 210, PageAttrs::DEFAULT);
    // Pages [10, 200) are free, but a run of 165 pages from 10 ends at 175 > 170.
    assert_eq!(t.find_free_below(165, 170), None);
    assert_eq!(t.find_free_below(160, 170), Some(10));
}

/// The same bug through the wasm boundary: a 32-bit guest's `vm_allocate(ANYWHERE)` in a
/// 64-bit task whose map passes 4 GiB must place the whole allocation below 2^32 (the
/// word-sized call cannot describe anything past it: `vm_deallocate` of that range would
/// "wrap"; the semantics say "search below 2^width"), so with no such room it answers
/// `KERN_NO_SPACE`, as the model does. The real side returned `KERN_SUCCESS` with an
/// allocation `[0x10000, 0x1_0000_f000)` that crosses 4 GiB.
///
/// Not reachable by the random differential tests (their maps stay small so that every step
/// can compare whole memories); written from the table bug above.
#[test]
fn vm_allocate_anywhere_of_a_32_bit_caller_stays_below_4_gib() {
    let mut h = Harness::new(KernelConfig::default()).unwrap();
    let big = h.add_guest(Width::W64, 1, None).unwrap(); // map: 1 TiB
    let small = h.add_guest(Width::W32, 1, Some(1)).unwrap();
    let name = h.insert_send_right(small, big).unwrap();
    // The 64-bit task maps the last 64 KiB below 4 GiB (its memory grows to 4 GiB: with
    // `machvm::configure` memories never move, so they cannot grow past their 4 GiB
    // reservation; its map still reaches 1 TiB).
    h.memory_mut(big)[0x100..0x108].copy_from_slice(&0xffff_0000u64.to_le_bytes());
    let fixed = Call::Allocate {
        form: Form::MachVm,
        task: TASK_SELF_NAME,
        addr_ptr: 0x100,
        size: 0x10000,
        flags: VM_FLAGS_FIXED,
    };
    assert_eq!(h.call(big, &fixed).unwrap(), Outcome::Kr(KERN_SUCCESS));
    // Free below 4 GiB: [0x10000, 2^32 - 0x10000). Ask for more; the free run past 4 GiB
    // is no answer for a 32-bit caller.
    let anywhere = Call::Allocate {
        form: Form::Vm,
        task: name,
        addr_ptr: 0x100,
        size: 0xfffe_1000,
        flags: VM_FLAGS_ANYWHERE,
    };
    assert_eq!(
        h.call(small, &anywhere).unwrap(),
        Outcome::Kr(KERN_NO_SPACE)
    );
    // Nothing was mapped past the 64 KiB the task started with and the fixed allocation.
    assert_eq!(h.page(big, 0x10), None);
}

/// The oracle on a fixed cross-task sequence (no divergence: a guard for the corpus's
/// own machinery): two tasks of different widths with send rights both ways, under the same
/// names, copying, writing and reading across, with protections in between.
#[test]
fn cross_task_sequence_agrees_with_the_model() {
    let setup = Setup {
        page_size: 16384,
        memory64_map_limit: 8 << 16,
        memory_limit: None,
        enforce: true,
        copy_in_wasm: true,
        backed: false,
        tasks: vec![
            TaskSpec {
                width: Width::W32,
                initial: 2,
                maximum: Some(8),
            },
            TaskSpec {
                width: Width::W64,
                initial: 1,
                maximum: None,
            },
        ],
    };
    let right = ((3u32) << 8) | 3;
    let ops = vec![
        Op::Right { from: 0, to: 1 },
        Op::Right { from: 1, to: 0 },
        Op::Right { from: 0, to: 1 }, // the same name again
        Op::Call {
            caller: 0,
            call: Call::Protect {
                form: Form::Vm,
                task: MachPort(right),
                addr: 0x4000,
                size: 0x4000,
                set_max: 0,
                prot: VM_PROT_READ,
            },
        },
        // Into the read-only page of the other task: PROTECTION_FAILURE, nothing written.
        Op::Call {
            caller: 0,
            call: Call::Write {
                form: Form::Vm,
                task: MachPort(right),
                addr: 0x3ff0,
                data: 0x100,
                count: 0x20,
            },
        },
        Op::Call {
            caller: 1,
            call: Call::ReadOverwrite {
                form: Form::MachVm,
                task: MachPort(right),
                addr: 0x1fff0,
                size: 0x20,
                data: 0x10,
                outsize_ptr: 0x8,
            },
        },
        Op::Call {
            caller: 1,
            call: Call::Read {
                form: Form::Vm,
                task: MachPort(right),
                addr: 0x1,
                size: 0x8001,
                data_ptr: 0x100,
                count_ptr: 0x108,
            },
        },
        Op::Grow { task: 1, delta: 2 },
        Op::Call {
            caller: 0,
            call: Call::Copy {
                form: Form::MachVm,
                task: MachPort(right),
                src: 0x2_0000,
                size: 0x1_0000,
                dst: 0x2_8000,
            },
        },
        Op::Call {
            caller: 0,
            call: Call::Deallocate {
                form: Form::Vm,
                task: MACH_PORT_NULL,
                addr: 0,
                size: 0x4000,
            },
        },
    ];
    if let Err(d) = run_ops(&setup, &ops) {
        panic!("{d}");
    }
}
