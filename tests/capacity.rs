//! One store holds 10,000 live tasks at once (issue: "how many live tasks fit in one
//! process, target ≥ 10,000"), each still answering calls and enforcing its own table.
//! `cargo bench --bench vm -- live_tasks` reports how far past that a process goes.

use machvm::abi::*;
use machvm::{Kernel, TaskPre};
use wasmtime::{Config, Engine, Linker, Store};

const GUEST: &str = r#"(module
    (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
    (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1 1)
    (global $id (mut i32) (i32.const 0))
    (func (export "set_id") (param i32) (global.set $id (local.get 0)))
    ;; Writes the task's id, copies it one page up, makes the first page read-only.
    (func (export "work") (result i32)
        (i32.store (i32.const 0) (global.get $id))
        (if (call $copy (i32.const 0x103) (i32.const 0) (i32.const 4) (i32.const 0x1000))
            (then (return (i32.const -1))))
        (call $protect (i32.const 0x103) (i32.const 0) (i32.const 0x1000) (i32.const 0) (i32.const 1)))
    (func (export "peek") (result i32) (i32.load (i32.const 0x1000)))
    (func (export "poke") (i32.store (i32.const 0) (i32.const 7))))"#;

#[test]
fn ten_thousand_live_tasks_in_one_store() {
    const TASKS: u32 = 10_000;
    let engine = Engine::new(machvm::configure(&mut Config::new())).unwrap();
    let module = machvm::compile(&engine, GUEST.as_bytes()).unwrap();
    let pre = TaskPre::new(&module).unwrap();
    let linker = Linker::new(&engine);
    let mut store = Store::new(&engine, Kernel::new().unwrap());
    let mut instances = Vec::new();
    for i in 0..TASKS {
        let (instance, _) = pre
            .instantiate(&mut store, &linker)
            .unwrap_or_else(|e| panic!("task {i}: {e:#}"));
        let set = instance
            .get_typed_func::<i32, ()>(&mut store, "set_id")
            .unwrap();
        set.call(&mut store, i as i32).unwrap();
        instances.push(instance);
    }
    assert_eq!(store.data().task_ids().count(), TASKS as usize);
    // Every task works on its own memory, all alive at once.
    for instance in &instances {
        let work = instance
            .get_typed_func::<(), i32>(&mut store, "work")
            .unwrap();
        assert_eq!(work.call(&mut store, ()).unwrap(), KERN_SUCCESS.0);
    }
    for (i, instance) in instances.iter().enumerate().step_by(997) {
        let peek = instance
            .get_typed_func::<(), i32>(&mut store, "peek")
            .unwrap();
        assert_eq!(peek.call(&mut store, ()).unwrap(), i as i32);
        // Each task's first page is read-only in hardware now.
        let poke = instance
            .get_typed_func::<(), ()>(&mut store, "poke")
            .unwrap();
        assert!(
            poke.call(&mut store, ()).is_err(),
            "task {i} stored to a read-only page"
        );
    }
}
