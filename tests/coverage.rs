//! A task compiled with edge coverage (`machvm::compile_with`, `CompileOptions::coverage`):
//! its counters count, the page table still governs every access of the guest, traps
//! still name the instruction as written, and a module cannot pass its own second memory
//! off as the counters'.

mod common;

use machvm::abi::*;
use machvm::enforce::BadAccess;
use machvm::{CompileOptions, Compiled, Kernel, LinkError, TaskPre};
use wasmparser::{Operator, Parser, Payload};
use wasmtime::{Config, Engine, Instance, Linker, Store, WasmBacktrace};

const GUEST: &str = r#"(module
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "classify") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 10))
      (then (i32.const 1))
      (else (i32.const 2))))
  (func (export "protect") (result i32)
    (call $protect (i32.const 0x103) (i32.const 0x10000) (i32.const 0x1000) (i32.const 0)
      (i32.const 1)))
  (func (export "poke") (i32.store (i32.const 0x10000) (i32.const 7)))
  (func (export "copy_into") (memory.copy (i32.const 0x10000) (i32.const 0) (i32.const 16))))"#;

struct State {
    kernel: Kernel,
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

/// `GUEST` compiled with coverage and instantiated as a task with enforcement, in a store
/// whose faults `machvm::explain_trap` can explain.
fn guest() -> (Store<State>, Instance, Compiled) {
    let engine = common::engine(None);
    let compiled = machvm::compile_with(
        &engine,
        GUEST.as_bytes(),
        &CompileOptions::new().coverage(true),
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    machvm::install_handlers(&mut store);
    let pre = TaskPre::new(&compiled).unwrap();
    let (instance, _) = pre.instantiate(&mut store, &Linker::new(&engine)).unwrap();
    (store, instance, compiled)
}

fn counters(store: &mut Store<State>, instance: &Instance, compiled: &Compiled) -> Vec<u8> {
    let coverage = compiled.coverage().expect("compiled with coverage");
    let memory = instance.get_memory(&mut *store, &coverage.export).unwrap();
    memory.data(&*store)[..coverage.edges as usize].to_vec()
}

/// Selects an instruction.
type Pick = fn(&Operator<'_>) -> bool;

/// The offset in `GUEST` as written of the first instruction `pick` selects.
fn offset_of(pick: Pick) -> usize {
    let wasm = wat::parse_str(GUEST).unwrap();
    for payload in Parser::new(0).parse_all(&wasm) {
        if let Payload::CodeSectionEntry(body) = payload.unwrap() {
            let mut r = body.get_operators_reader().unwrap();
            while !r.eof() {
                let at = r.original_position();
                if pick(&r.read().unwrap()) {
                    return at;
                }
            }
        }
    }
    panic!("no such instruction");
}

#[test]
fn a_task_counts_its_edges() {
    let (mut store, instance, compiled) = guest();
    // classify: entry, then, else, join; protect, poke, copy_into: their entries.
    assert_eq!(compiled.coverage().unwrap().edges, 7);
    let classify = instance
        .get_typed_func::<i32, i32>(&mut store, "classify")
        .unwrap();
    assert_eq!(counters(&mut store, &instance, &compiled), [0; 7]);
    for (x, want) in [(3, 1), (30, 2), (40, 2)] {
        assert_eq!(classify.call(&mut store, x).unwrap(), want);
    }
    assert_eq!(
        counters(&mut store, &instance, &compiled),
        [3, 1, 2, 3, 0, 0, 0]
    );
    // The task is the guest's own memory, not the counters'.
    let task = store.data().kernel.task_ids().next().unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    memory.data_mut(&mut store)[0x20] = 0x5a;
    assert_eq!(
        machvm::host::read_bytes(&mut store, task, 0x20, 1).unwrap(),
        [0x5a]
    );
}

#[test]
fn the_table_still_governs_the_guest_and_traps_name_the_instruction_as_written() {
    let (mut store, instance, compiled) = guest();
    let protect = instance
        .get_typed_func::<(), i32>(&mut store, "protect")
        .unwrap();
    assert_eq!(
        KernReturn(protect.call(&mut store, ()).unwrap()),
        KERN_SUCCESS
    );
    let picks: [(&str, Pick); 2] = [
        ("poke", |op| matches!(op, Operator::I32Store { .. })),
        ("copy_into", |op| matches!(op, Operator::MemoryCopy { .. })),
    ];
    for (name, pick) in picks {
        let f = instance.get_typed_func::<(), ()>(&mut store, name).unwrap();
        let err = f.call(&mut store, ()).unwrap_err();
        // A store faults in hardware; a bulk instruction's check traps before it runs.
        let bad = match err.downcast_ref::<BadAccess>() {
            Some(bad) => bad.clone(),
            None => {
                machvm::explain_trap(&mut store, &err)
                    .unwrap_or_else(|| panic!("{name}: not a protection trap: {err:?}"))
                    .1
            }
        };
        assert_eq!(bad.addr, 0x10000, "{name}");
        // The innermost frame of the guest's own code (the check's helper has none).
        let original = err
            .downcast_ref::<WasmBacktrace>()
            .unwrap()
            .frames()
            .iter()
            .find_map(|frame| compiled.original_offset(frame.module_offset()?));
        assert_eq!(original, Some(offset_of(pick)), "{name}");
    }
    // Both entries counted, the page unchanged.
    assert_eq!(counters(&mut store, &instance, &compiled)[4..], [1, 1, 1]);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(memory.data(&store)[0x10000], 0);
}

#[test]
fn a_module_cannot_pass_its_own_memory_off_as_the_counters() {
    // Two memories of its own, one exported under the counters' name: refused plainly...
    let forged = r#"(module (memory (export "memory") 1)
        (memory (export "machvm:coverage") 1))"#;
    let engine = common::engine(None);
    let compiled = machvm::compile(&engine, forged.as_bytes()).unwrap();
    assert!(compiled.coverage().is_none());
    let err = TaskPre::<State>::new(&compiled).err().unwrap();
    assert!(
        matches!(
            err.downcast_ref::<LinkError>(),
            Some(LinkError::Memories { defined: 2, .. })
        ),
        "{err:?}"
    );
    // ... and with coverage, before anything is added.
    let err = machvm::compile_with(
        &engine,
        forged.as_bytes(),
        &CompileOptions::new().coverage(true),
    )
    .unwrap_err();
    assert!(err.to_string().contains("exactly one memory"), "{err}");
}

#[test]
fn a_pooled_engine_instantiates_it_with_two_memories_per_module() {
    let mut config = Config::new();
    machvm::configure(&mut config);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_memories(8)
        .total_core_instances(4)
        .max_memories_per_module(2)
        .max_memory_size(64 << 16);
    config.allocation_strategy(pool);
    let engine = Engine::new(&config).unwrap();
    let options = CompileOptions::new().coverage(true);
    let compiled = machvm::compile_with(&engine, GUEST.as_bytes(), &options).unwrap();
    for _ in 0..3 {
        let mut store = Store::new(
            &engine,
            State {
                kernel: Kernel::new().unwrap(),
            },
        );
        let pre = TaskPre::new(&compiled).unwrap();
        let (instance, _) = pre.instantiate(&mut store, &Linker::new(&engine)).unwrap();
        let classify = instance
            .get_typed_func::<i32, i32>(&mut store, "classify")
            .unwrap();
        assert_eq!(classify.call(&mut store, 3).unwrap(), 1);
        // A fresh instance starts from zero counters, even in a reused slot.
        assert_eq!(
            counters(&mut store, &instance, &compiled),
            [1, 1, 0, 1, 0, 0, 0]
        );
    }
}

/// The counters' memory does not cost a task its copy windows: a `vm_copy` inside them is
/// still served in wasm, with no host call.
#[test]
fn copies_inside_the_windows_stay_in_wasm() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let guest = r#"(module
      (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 2)
      (func (export "copy") (param i32 i32 i32) (result i32)
        (call $copy (i32.const 0x103) (local.get 0) (local.get 1) (local.get 2))))"#;
    let engine = common::engine(None);
    let options = CompileOptions::new().coverage(true);
    let compiled = machvm::compile_with(&engine, guest.as_bytes(), &options).unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let host_calls = Arc::new(AtomicUsize::new(0));
    let counted = host_calls.clone();
    store.call_hook(move |_, hook| {
        if matches!(hook, wasmtime::CallHook::CallingHost) {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let pre = TaskPre::new(&compiled).unwrap();
    let (instance, _) = pre.instantiate(&mut store, &Linker::new(&engine)).unwrap();
    let copy = instance
        .get_typed_func::<(u32, u32, u32), i32>(&mut store, "copy")
        .unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    memory.data_mut(&mut store)[0x100..0x110].copy_from_slice(&[7; 16]);
    assert_eq!(copy.call(&mut store, (0x100, 16, 0x2000)).unwrap(), 0);
    assert_eq!(
        host_calls.load(Ordering::Relaxed),
        1,
        "the first copy opens the windows"
    );
    assert_eq!(copy.call(&mut store, (0x2000, 16, 0x3000)).unwrap(), 0);
    assert_eq!(host_calls.load(Ordering::Relaxed), 1, "served in wasm");
    assert_eq!(memory.data(&store)[0x3000..0x3010], [7; 16]);
    assert_eq!(counters(&mut store, &instance, &compiled), [2]);
}
