//! spec §3 linking: the variant that matches the memory's width, clear refusals, and the
//! embedding API.

use machvm::abi::*;
use machvm::{instantiate, Call, Kernel, Outcome, TaskPre};
use wasmtime::{Config, Engine, Linker, Memory, MemoryType, Module, Store};

struct State {
    kernel: Kernel,
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

fn engine() -> Engine {
    Engine::new(machvm::configure(&mut Config::new())).unwrap()
}

/// A store whose kernel does not enforce the table on the guest's own accesses.
fn store_without_enforcement(engine: &Engine) -> Store<State> {
    let config = machvm::KernelConfig::default().enforce(false);
    let kernel = Kernel::with_config(config).unwrap();
    Store::new(engine, State { kernel })
}

fn link_error(wat: &str) -> String {
    let engine = engine();
    let module = Module::new(&engine, wat).unwrap();
    match TaskPre::<State>::new(&module) {
        Ok(_) => panic!("linked"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_mismatched_signature_is_refused_naming_import_and_expected_signature() {
    let e = link_error(
        r#"(module (import "mach" "vm_copy" (func (param i32 i32 i32) (result i32))) (memory (export "memory") 1))"#,
    );
    assert!(e.contains("`mach::vm_copy`"), "{e}");
    assert!(e.contains("(i32, i32, i32) -> i32"), "{e}");
    assert!(e.contains("expects (i32, i32, i32, i32) -> i32"), "{e}");
    // The 32-bit signature in a 64-bit guest.
    let e = link_error(
        r#"(module (import "mach" "vm_copy" (func (param i32 i32 i32 i32) (result i32))) (memory (export "memory") i64 1))"#,
    );
    assert!(
        e.contains("64-bit memory") && e.contains("expects (i32, i64, i64, i64) -> i32"),
        "{e}"
    );
    // mach_vm_write keeps a word-sized data pointer.
    let e = link_error(
        r#"(module (import "mach" "mach_vm_write" (func (param i32 i64 i64 i32) (result i32))) (memory (export "memory") 1))"#,
    );
    assert!(e.contains("expects (i32, i64, i32, i32) -> i32"), "{e}");
    // No result.
    let e = link_error(
        r#"(module (import "mach" "mach_task_self" (func)) (memory (export "memory") 1))"#,
    );
    assert!(
        e.contains("has signature () -> ()") && e.contains("expects () -> i32"),
        "{e}"
    );
    // Not a function.
    let e = link_error(
        r#"(module (import "mach" "vm_copy" (global i32)) (memory (export "memory") 1))"#,
    );
    assert!(e.contains("is not a function"), "{e}");
}

#[test]
fn unknown_imports_and_missing_memories_are_refused() {
    let e = link_error(
        r#"(module (import "mach" "vm_frobnicate" (func (result i32))) (memory (export "memory") 1))"#,
    );
    assert!(
        e.contains("unknown import `mach::vm_frobnicate`") && e.contains("vm_copy"),
        "{e}"
    );
    let e = link_error(r#"(module (import "mach" "mach_task_self" (func (result i32))))"#);
    assert!(e.contains("exactly one linear memory"), "{e}");
    let e = link_error(r#"(module (memory 1))"#);
    assert!(e.contains("does not export it"), "{e}");
    let e = link_error(r#"(module (memory (export "a") 1) (memory (export "b") 1))"#);
    assert!(e.contains("has 2"), "{e}");
}

#[test]
fn every_import_links_in_both_widths() {
    for (wat, bits) in [
        (machvm::testing::harness::FORWARD32_WAT, 32),
        (machvm::testing::harness::FORWARD64_WAT, 64),
    ] {
        let engine = engine();
        let module = Module::new(&engine, wat).unwrap();
        let mut names: Vec<&str> = module
            .imports()
            .filter(|i| i.module() == "mach")
            .map(|i| i.name())
            .collect();
        let mut all: Vec<&str> = machvm::Import::ALL.iter().map(|i| i.name()).collect();
        names.sort_unstable();
        all.sort_unstable();
        assert_eq!(names, all, "{bits}-bit forwarder imports every function");
        TaskPre::<State>::new(&module).unwrap();
    }
}

/// Every import builds the call of its own name from its wasm arguments, and gives them
/// back in the same order: the dynamically typed imports depend on it.
#[test]
fn every_import_makes_its_call_from_its_arguments() {
    for import in machvm::Import::ALL {
        for bits in [32, 64] {
            let width = if bits == 32 {
                machvm::Width::W32
            } else {
                machvm::Width::W64
            };
            let n = import.signature(width).matches("i32").count()
                + import.signature(width).matches("i64").count()
                - 1; // the result
            let args: Vec<u64> = (0..n as u64).map(|k| 0x1000 + k).collect();
            let call = import.call(&args);
            assert_eq!(call.import_name(), import.name());
            assert_eq!(call.args(), args, "{}", import.name());
        }
    }
}

#[test]
fn the_start_function_may_call_mach() {
    let engine = engine();
    let module = machvm::compile(
        &engine,
        br#"(module
            (import "mach" "mach_task_self" (func $self (result i32)))
            (import "mach" "vm_allocate" (func $alloc (param i32 i32 i32 i32) (result i32)))
            (memory (export "mem") 1)
            (global $r (mut i32) (i32.const -1))
            (func $start (global.set $r (call $alloc (call $self) (i32.const 8) (i32.const 4096) (i32.const 1))))
            (start $start)
            (func (export "result") (result i32) (global.get $r))
            (func (export "addr") (result i32) (i32.load (i32.const 8))))"#,
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let (instance, task) = instantiate(&mut store, &Linker::new(&engine), &module).unwrap();
    let result = instance
        .get_typed_func::<(), i32>(&mut store, "result")
        .unwrap();
    assert_eq!(result.call(&mut store, ()).unwrap(), KERN_SUCCESS.0);
    let addr = instance
        .get_typed_func::<(), i32>(&mut store, "addr")
        .unwrap();
    assert_eq!(addr.call(&mut store, ()).unwrap(), 0x10000);
    let table = store.data().kernel.task(task).unwrap().table();
    assert_eq!(
        table.run_count(),
        1,
        "one region: the initial page and the new one"
    );
}

#[test]
fn host_created_tasks_and_host_calls() {
    let engine = engine();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let t = machvm::new_task(&mut store, MemoryType::new(2, Some(4))).unwrap();
    // A memory machvm did not create is refused while enforcement is on ...
    let mem = Memory::new(&mut store, MemoryType::new64(1, None)).unwrap();
    let e = machvm::register_memory(&mut store, mem).unwrap_err();
    assert!(e.to_string().contains("use `new_task`"), "{e}");
    // ... and becomes a task without it.
    let mut plain = store_without_enforcement(&engine);
    let mem = Memory::new(&mut plain, MemoryType::new64(1, None)).unwrap();
    let u = machvm::register_memory(&mut plain, mem).unwrap();
    assert_eq!(plain.data().kernel.task(u).unwrap().map_limit(), 1 << 40);
    assert_eq!(store.data().kernel.task(t).unwrap().map_limit(), 4 * 65536);
    // The host drives a task with the guest's checks: a guard page before the guest runs.
    let c = Call::Protect {
        form: machvm::Form::Vm,
        task: TASK_SELF_NAME,
        addr: 0x1000,
        size: 0x1000,
        set_max: 1,
        prot: VmProt(0),
    };
    assert_eq!(
        machvm::call(&mut store, t, &c).unwrap(),
        Outcome::Kr(KERN_SUCCESS)
    );
    let c = Call::Copy {
        form: machvm::Form::Vm,
        task: TASK_SELF_NAME,
        src: 0,
        size: 16,
        dst: 0x1000,
    };
    assert_eq!(
        machvm::call(&mut store, t, &c).unwrap(),
        Outcome::Kr(KERN_PROTECTION_FAILURE)
    );
    // A task of another kernel is refused, even where that kernel has a task of the same
    // index.
    let mut other = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    assert!(machvm::call(&mut other, t, &c).is_err());
    let o = machvm::new_task(&mut other, MemoryType::new(1, None)).unwrap();
    assert_eq!(o.index(), t.index());
    assert!(machvm::call(&mut other, t, &c).is_err());
    assert!(machvm::host::regions(&mut other, t).is_err());
    assert!(store.data().kernel.task(o).is_none());
    assert!(store.data_mut().kernel.insert_send_right(t, u).is_err());
    let v = machvm::new_task(&mut store, MemoryType::new64(1, None)).unwrap();
    assert_eq!(
        store.data_mut().kernel.insert_send_right(t, v).unwrap(),
        MachPort(0x303)
    );
}

#[test]
fn enforcement_needs_modules_compiled_by_machvm() {
    let engine = engine();
    let wat = r#"(module (memory (export "memory") 1) (func (export "f") (memory.fill (i32.const 0) (i32.const 1) (i32.const 8))))"#;
    let plain = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let err = instantiate(&mut store, &Linker::new(&engine), &plain).unwrap_err();
    assert!(
        format!("{err:#}").contains("was not compiled with `machvm::compile`"),
        "{err:#}"
    );
    // Without enforcement a plain module is fine.
    let mut store = store_without_enforcement(&engine);
    instantiate(&mut store, &Linker::new(&engine), &plain).unwrap();
    // The compiled module works with enforcement.
    let compiled = machvm::compile(&engine, wat.as_bytes()).unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let (instance, _) = instantiate(&mut store, &Linker::new(&engine), &compiled).unwrap();
    let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
    f.call(&mut store, ()).unwrap();
}

/// An engine that may move memories (not set up by `machvm::configure`) gets the same
/// answers: the calls then look the memory up every time instead of keeping its base.
#[test]
fn an_engine_whose_memories_may_move_gets_the_same_answers() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
            (import "mach" "host_page_size" (func $hps (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0x100) "machvm")
            (func (export "run") (result i32)
                (drop (memory.grow (i32.const 1)))
                (if (call $copy (i32.const 0x103) (i32.const 0x100) (i32.const 6) (i32.const 0x10100))
                    (then (return (i32.const -1))))
                (if (call $hps (i32.const 0x203) (i32.const 0x10200))
                    (then (return (i32.const -2))))
                ;; Into a page past the memory: KERN_INVALID_ADDRESS.
                (call $copy (i32.const 0x103) (i32.const 0x100) (i32.const 6) (i32.const 0x20000))))"#,
    )
    .unwrap();
    let mut store = store_without_enforcement(&engine);
    let (instance, _) = instantiate(&mut store, &Linker::new(&engine), &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), KERN_INVALID_ADDRESS.0);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let bytes = memory.data(&store);
    assert_eq!(&bytes[0x10100..0x10106], b"machvm");
    assert_eq!(&bytes[0x10200..0x10204], &4096u32.to_le_bytes());
}

/// A module whose start function protects a page of its (imported) memory and then traps:
/// instantiation fails, no task is left behind, and the memory, which outlives the failure,
/// is read-write again (the host reads the page without a fault).
#[test]
fn a_failed_instantiation_leaves_no_task() {
    let engine = engine();
    let module = machvm::compile(
        &engine,
        br#"(module
            (import "env" "memory" (memory 1))
            (import "mach" "mach_task_self" (func $self (result i32)))
            (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
            (func $start
              (drop (call $protect (call $self) (i32.const 0x1000) (i32.const 0x1000) (i32.const 0) (i32.const 0)))
              unreachable)
            (start $start))"#,
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let memory = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    let mut linker = Linker::new(&engine);
    linker.define(&store, "env", "memory", memory).unwrap();
    let err = instantiate(&mut store, &linker, &module).unwrap_err();
    assert!(format!("{err:?}").contains("unreachable"), "{err:?}");
    assert_eq!(store.data().kernel.task_ids().count(), 0);
    assert_eq!(memory.data(&store)[0x1000], 0, "the page is readable again");
    memory.data_mut(&mut store)[0x1000] = 1;
    // The memory can become a task after all, and ids never repeat the failed one.
    let ok = machvm::compile(&engine, br#"(module (import "env" "memory" (memory 1)))"#).unwrap();
    let (_, task) = instantiate(&mut store, &linker, &ok).unwrap();
    assert_eq!(task.index(), 1);
    assert_eq!(store.data().kernel.task_ids().collect::<Vec<_>>(), [task]);
}

/// Enforcement refuses engines it cannot rely on: memories that may move (a moving grow
/// drops every protection), and traps without signals (a guest access to a protected page
/// would crash the process). Without enforcement both engines are fine.
#[test]
fn enforcement_refuses_engines_it_cannot_rely_on() {
    let mut movable = Config::new();
    machvm::configure(&mut movable).memory_may_move(true);
    let mut no_signals = Config::new();
    machvm::configure(&mut no_signals).signals_based_traps(false);
    for (config, says) in [(movable, "never move"), (no_signals, "signal-based traps")] {
        let engine = Engine::new(&config).unwrap();
        let module = machvm::compile(&engine, br#"(module (memory (export "memory") 1))"#).unwrap();
        let mut store = Store::new(
            &engine,
            State {
                kernel: Kernel::new().unwrap(),
            },
        );
        let e = instantiate(&mut store, &Linker::new(&engine), &module).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
        let e = machvm::new_task(&mut store, MemoryType::new(1, None)).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
        assert_eq!(store.data().kernel.task_ids().count(), 0);
        let mut plain = store_without_enforcement(&engine);
        instantiate(&mut plain, &Linker::new(&engine), &module).unwrap();
    }
}

/// Only `machvm::compile` proves a module's bulk-memory instructions are checked: a plain
/// module exporting the names the rewrite uses is refused all the same, and a module that
/// exports those names itself still compiles and runs.
#[test]
fn the_compiled_proof_cannot_be_forged_and_exports_never_clash() {
    let engine = engine();
    let wat = r#"(module
        (memory (export "machvm:rewritten") 1)
        (export "machvm:memory" (memory 0))
        (func (export "fill") (memory.fill (i32.const 0x1000) (i32.const 1) (i32.const 8))))"#;
    let new_store = || {
        Store::new(
            &engine,
            State {
                kernel: Kernel::new().unwrap(),
            },
        )
    };
    let forged = Module::new(&engine, wat).unwrap();
    let e = instantiate(&mut new_store(), &Linker::new(&engine), &forged).unwrap_err();
    assert!(e.to_string().contains("machvm::compile"), "{e}");
    let compiled = machvm::compile(&engine, wat.as_bytes()).unwrap();
    let mut store = new_store();
    let (instance, task) = instantiate(&mut store, &Linker::new(&engine), &compiled).unwrap();
    machvm::host::protect(&mut store, task, 0x1000, 0x1000, false, VM_PROT_NONE).unwrap();
    let fill = instance
        .get_typed_func::<(), ()>(&mut store, "fill")
        .unwrap();
    let e = fill.call(&mut store, ()).unwrap_err();
    assert!(
        e.downcast_ref::<machvm::enforce::BadAccess>().is_some(),
        "{e:?}"
    );
}

/// `explain_trap` explains a trap only with its own fault: an out-of-bounds load after an
/// earlier protection fault is not explained with the earlier one.
#[test]
fn explain_trap_matches_the_fault_to_the_trap() {
    let engine = engine();
    let module = machvm::compile(
        &engine,
        br#"(module (memory (export "memory") i64 1 1)
            (func (export "load") (param i64) (result i32) (i32.load (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    machvm::install_handlers(&mut store);
    let (instance, task) = instantiate(&mut store, &Linker::new(&engine), &module).unwrap();
    machvm::host::protect(&mut store, task, 0x1000, 0x1000, false, VM_PROT_NONE).unwrap();
    let load = instance
        .get_typed_func::<i64, i32>(&mut store, "load")
        .unwrap();
    let protected = load.call(&mut store, 0x1004).unwrap_err();
    // A 64-bit memory's bounds are checked explicitly: this trap comes with no fault of
    // its own, while the protection fault's record is still there.
    let oob = load.call(&mut store, 0x10000).unwrap_err();
    assert!(format!("{oob:?}").contains("0x10000"), "{oob:?}");
    assert!(machvm::explain_trap(&mut store, &oob).is_none());
    // ... and a protection fault gets its own.
    let again = load.call(&mut store, 0x1008).unwrap_err();
    let (t, bad) = machvm::explain_trap(&mut store, &again).unwrap();
    assert_eq!((t, bad.addr), (task, 0x1008));
    drop(protected);
}

/// The embedder's own host functions follow the table with `host::check_access` (nothing
/// lifts protections for them), in every one of many tasks, whenever `install_handlers`
/// ran: here after the guard pages were made, and for 200 tasks.
#[test]
fn embedder_host_functions_check_guest_ranges_in_every_task() {
    let engine = engine();
    let module = machvm::compile(
        &engine,
        br#"(module
            (import "env" "peek" (func $peek (param i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "peek") (param i32) (result i32) (call $peek (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let mut linker = Linker::new(&engine);
    // The embedder's function: the byte at `ptr`, or -1 when the table refuses the read.
    linker
        .func_wrap(
            "env",
            "peek",
            |mut caller: wasmtime::Caller<'_, State>, ptr: i32| -> i32 {
                let Some(wasmtime::Extern::Memory(m)) = caller.get_export("memory") else {
                    return -2;
                };
                let base = m.data_ptr(&caller);
                let task = caller
                    .data()
                    .kernel
                    .task_ids()
                    .find(|&t| caller.data().kernel.memory(t).unwrap().data_ptr(&caller) == base)
                    .unwrap();
                let addr = ptr as u32 as u64;
                match machvm::host::check_access(&mut caller, task, addr, 1, VM_PROT_READ) {
                    Ok(()) => i32::from(m.data(&caller)[addr as usize]),
                    Err(_) => -1,
                }
            },
        )
        .unwrap();
    let pre = TaskPre::new(&module).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (instance, task) = pre.instantiate(&mut store, &linker).unwrap();
        machvm::host::write_bytes(&mut store, task, 0x1000, &[42]).unwrap();
        machvm::host::protect(&mut store, task, 0x2000, 0x1000, false, VM_PROT_NONE).unwrap();
        tasks.push(instance);
    }
    machvm::install_handlers(&mut store);
    for instance in tasks {
        let peek = instance
            .get_typed_func::<i32, i32>(&mut store, "peek")
            .unwrap();
        assert_eq!(peek.call(&mut store, 0x1000).unwrap(), 42);
        assert_eq!(peek.call(&mut store, 0x2000).unwrap(), -1);
    }
}

/// The embedding API's errors are typed: a caller matches them by variant, with the import,
/// the expected and the found signature in a link error.
#[test]
fn errors_are_typed_and_matched_by_variant() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module (import "mach" "vm_copy" (func (param i32) (result i32))) (memory (export "memory") 1))"#,
    )
    .unwrap();
    let e = TaskPre::<State>::new(&module).err().unwrap();
    match e.downcast_ref::<machvm::LinkError>() {
        Some(machvm::LinkError::Signature {
            import,
            width,
            expected,
            found,
        }) => {
            assert_eq!(import, "mach::vm_copy");
            assert_eq!(*width, machvm::Width::W32);
            assert_eq!(expected, "(i32, i32, i32, i32) -> i32");
            assert_eq!(found, "has signature (i32) -> i32");
        }
        other => panic!("{other:?}: {e}"),
    }
    let module = Module::new(
        &engine,
        r#"(module (import "env" "f" (func)) (memory (export "memory") 1))"#,
    )
    .unwrap();
    let mut store = store_without_enforcement(&engine);
    let e = TaskPre::<State>::new(&module)
        .unwrap()
        .instantiate(&mut store, &Linker::new(&engine))
        .err()
        .unwrap();
    assert_eq!(
        e.downcast_ref::<machvm::LinkError>(),
        Some(&machvm::LinkError::Undefined {
            import: "env::f".into()
        })
    );
    // Enforcement needs a compiled module.
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let module = Module::new(&engine, r#"(module (memory (export "memory") 1))"#).unwrap();
    let e = instantiate(&mut store, &Linker::new(&engine), &module)
        .err()
        .unwrap();
    assert_eq!(
        e.downcast_ref::<machvm::LinkError>(),
        Some(&machvm::LinkError::NotCompiled)
    );
    // A bad page size.
    let e = Kernel::with_config(machvm::KernelConfig::default().page_size(12288))
        .err()
        .unwrap();
    assert_eq!(
        e.downcast_ref::<machvm::ConfigError>(),
        Some(&machvm::ConfigError::PageSize(12288))
    );
    // A task of another kernel.
    let mut other = Store::new(
        &engine,
        State {
            kernel: Kernel::new().unwrap(),
        },
    );
    let foreign = machvm::new_task(&mut other, MemoryType::new(1, None)).unwrap();
    let e = machvm::call(&mut store, foreign, &Call::TaskSelf)
        .err()
        .unwrap();
    assert_eq!(
        e.downcast_ref::<machvm::TaskError>(),
        Some(&machvm::TaskError::NoSuchTask(foreign))
    );
}
