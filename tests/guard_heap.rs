//! The guard heap as a library (`machvm::fuzz::heap`): a stock C guest's allocator
//! interface served by `GuardHeap` through `add_to_linker`, a 64-bit memory, and how many
//! live blocks fit in the process's mapping budget (spec §7).

mod common;

use machvm::fuzz::heap::{self, AllocFn, GuardHeap, HeapOptions};
use machvm::{CompileOptions, Kernel, KernelView};
use wasmtime::{Engine, Instance, Linker, Store};

struct State {
    kernel: Kernel,
    wasi: wasmtime_wasi::p1::WasiP1Ctx,
    heap: GuardHeap,
}

impl KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

/// `wasm` (a file under `guest/prebuilt/`, or wasm text) as a task whose allocator is the
/// guard heap.
fn task(engine: &Engine, wasm: &[u8], memory64: bool) -> (Store<State>, Instance) {
    let options = CompileOptions::new().guard_heap(true);
    let compiled = machvm::compile_with(engine, wasm, &options).unwrap();
    let mut linker = Linker::new(engine);
    machvm::wasi::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi).unwrap();
    heap::add_to_linker(&mut linker, memory64, |s: &mut State| &mut s.heap).unwrap();
    let mut store = Store::new(
        engine,
        State {
            kernel: Kernel::new().unwrap(),
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build_p1(),
            heap: GuardHeap::new(HeapOptions::new()),
        },
    );
    let (instance, _) = machvm::instantiate(&mut store, &linker, &compiled).unwrap();
    if let Some(init) = instance.get_func(&mut store, "_initialize") {
        init.call(&mut store, &[], &mut []).unwrap();
    }
    (store, instance)
}

fn prebuilt(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/guest/prebuilt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// `tests/fuzz/alloc.c`: `calloc` zeroes and refuses an overflowing product, `realloc`
/// keeps the bytes as it grows and shrinks a block (and is `malloc` for NULL),
/// `posix_memalign` and `aligned_alloc` align and refuse a bad alignment, and every byte
/// `malloc_usable_size` gives can be written: all through the host's guard heap, which
/// each of these functions of wasi-libc was sent to.
#[test]
fn the_c_allocator_interface_works_through_the_guard_heap() {
    let engine = common::engine(None);
    let wasm = prebuilt("guard_alloc.wasm");
    let compiled =
        machvm::compile_with(&engine, &wasm, &CompileOptions::new().guard_heap(true)).unwrap();
    let sent: Vec<AllocFn> = compiled
        .heap_functions()
        .unwrap()
        .iter()
        .map(|f| f.1)
        .collect();
    for f in [
        AllocFn::Malloc,
        AllocFn::Free,
        AllocFn::Calloc,
        AllocFn::Realloc,
        AllocFn::AlignedAlloc,
        AllocFn::PosixMemalign,
        AllocFn::MallocUsableSize,
    ] {
        assert!(
            sent.contains(&f),
            "{f:?} not sent to the guard heap: {sent:?}"
        );
    }
    let (mut store, instance) = task(&engine, &wasm, false);
    for check in [
        "check_calloc",
        "check_realloc",
        "check_aligned",
        "check_usable_size",
    ] {
        let f = instance
            .get_typed_func::<(), i32>(&mut store, check)
            .unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 0, "{check}");
    }
    // Every block went to the host, and every one was freed.
    assert!(store.data().heap.peak_blocks() >= 2);
    assert_eq!(store.data().heap.live_blocks(), 0);
}

/// A 64-bit memory: the allocator's functions take and give 64-bit pointers, and a block's
/// end is against its guard page all the same.
#[test]
fn a_64_bit_guest_gets_guarded_blocks() {
    let wat = r#"(module
        (memory (export "memory") i64 1)
        (func $malloc (param i64) (result i64) (i64.const 0))
        (func $free (param i64))
        (func (export "block") (result i64) (call $malloc (i64.const 96)))
        (func (export "store") (param i64) (i32.store8 (local.get 0) (i32.const 1)))
        (func (export "free") (param i64) (call $free (local.get 0))))"#;
    let engine = common::engine(None);
    let (mut store, instance) = task(&engine, wat.as_bytes(), true);
    let block = instance
        .get_typed_func::<(), i64>(&mut store, "block")
        .unwrap()
        .call(&mut store, ())
        .unwrap() as u64;
    assert_ne!(block, 0);
    let store_at = instance
        .get_typed_func::<i64, ()>(&mut store, "store")
        .unwrap();
    store_at.call(&mut store, block as i64).unwrap();
    store_at.call(&mut store, (block + 95) as i64).unwrap();
    let e = store_at.call(&mut store, (block + 96) as i64).unwrap_err();
    assert!(format!("{e:?}").contains("out of bounds"), "{e:?}");
    let said = store.data().heap.describe(block + 96).unwrap();
    assert!(
        said.contains("0 bytes past the end of the 96-byte block"),
        "{said}"
    );
    // Freed, the block itself has no access.
    let (mut store, instance) = task(&engine, wat.as_bytes(), true);
    let block = instance
        .get_typed_func::<(), i64>(&mut store, "block")
        .unwrap()
        .call(&mut store, ())
        .unwrap();
    instance
        .get_typed_func::<i64, ()>(&mut store, "free")
        .unwrap()
        .call(&mut store, block)
        .unwrap();
    let store_at = instance
        .get_typed_func::<i64, ()>(&mut store, "store")
        .unwrap();
    assert!(store_at.call(&mut store, block).is_err());
}

/// Each live block costs two mappings (its pages, its guard page) of the process's budget:
/// the guest mallocs 16-byte blocks until `malloc` answers NULL, which it does once the
/// budget is spent, with no crash; after it frees them, `malloc` works again. In a child
/// process: the budget is the process's, and running out of it must not crash.
#[test]
fn live_blocks_fill_the_mapping_budget_and_then_malloc_answers_null() {
    common::child::in_child(
        "live_blocks_fill_the_mapping_budget_and_then_malloc_answers_null",
        || {
            let engine = common::engine(None);
            let (mut store, instance) = task(&engine, &prebuilt("guard_alloc.wasm"), false);
            let budget = machvm::enforce::mapping_budget();
            let free = budget - machvm::enforce::mappings_in_use();
            let fill = instance
                .get_typed_func::<i32, i32>(&mut store, "fill")
                .unwrap();
            let started = std::time::Instant::now();
            let blocks = fill.call(&mut store, 16).unwrap();
            println!(
                "live blocks: {blocks} (mapping budget {budget}, {free} free at the start; {:?})",
                started.elapsed()
            );
            assert!(
                blocks > 0,
                "malloc did not come back after the blocks were freed"
            );
            let blocks = blocks as usize;
            assert!(
                blocks <= free / 2 && blocks + 16 >= free / 2,
                "{blocks} blocks in {free} free mappings"
            );
            assert_eq!(store.data().heap.peak_blocks(), blocks as u64);
        },
    );
}
