//! A kernel's protections follow its tasks' memories, not the kernel value: a kernel taken
//! out of its store (`Store::into_data`, `mem::replace`) touches no memory when it is
//! dropped later, a pooled slot it left protected is healed for the next task made there,
//! and a moved kernel refuses every operation. Each scenario runs in a child process: the
//! failures they guard against are crashes.

mod common;

use common::child;

use machvm::abi::*;
use machvm::{host, Kernel, TaskId};
use wasmtime::{Engine, Instance, Linker, Store};

struct State {
    kernel: Kernel,
    wasi: wasmtime_wasi::p1::WasiP1Ctx,
}

fn state() -> State {
    State {
        kernel: Kernel::new().unwrap(),
        wasi: wasmtime_wasi::WasiCtxBuilder::new().build_p1(),
    }
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

const GUEST: &str = r#"(module
    (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
    (memory (export "memory") 4)
    (func (export "random") (param i32) (result i32) (call $random (local.get 0) (i32.const 16)))
    (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
    (func (export "store") (param i32) (i32.store (local.get 0) (i32.const 7))))"#;

/// An engine; with `pooling`, one whose pool has a single memory slot, so every store
/// reuses it.
fn engine(pooling: bool) -> Engine {
    common::engine(pooling.then_some(1))
}

fn task(engine: &Engine) -> (Store<State>, Instance, TaskId) {
    let module = machvm::compile(engine, GUEST.as_bytes()).unwrap();
    let mut store = Store::new(engine, state());
    let mut linker = Linker::new(engine);
    machvm::wasi::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi).unwrap();
    let (instance, task) = machvm::instantiate(&mut store, &linker, &module).unwrap();
    (store, instance, task)
}

fn load(store: &mut Store<State>, instance: &Instance, addr: i32) -> wasmtime::Result<i32> {
    instance
        .get_typed_func::<i32, i32>(&mut *store, "load")?
        .call(&mut *store, addr)
}

fn store_to(store: &mut Store<State>, instance: &Instance, addr: i32) -> wasmtime::Result<()> {
    instance
        .get_typed_func::<i32, ()>(&mut *store, "store")?
        .call(&mut *store, addr)
}

/// `Store::into_data` frees the memories while the kernel lives on; the next store gets the
/// same slot.
fn into_data(pooling: bool) {
    let engine = engine(pooling);
    let (mut a, _, ta) = task(&engine);
    host::protect(&mut a, ta, 0x1000, 0x1000, false, VM_PROT_NONE).unwrap();
    let old = a.into_data();
    // The old kernel refuses everything: its tasks' memories are gone (even in a store
    // that happens to get the old one's address).
    let mut probe = Store::new(&engine, old);
    assert!(host::regions(&mut probe, ta).is_err());
    let old = probe.into_data();

    let (mut b, ib, tb) = task(&engine);
    // The new task's table says rw- everywhere, and the hardware agrees.
    assert_eq!(load(&mut b, &ib, 0x1000).unwrap(), 0);
    assert_eq!(host::read_bytes(&mut b, tb, 0x1000, 4).unwrap(), [0; 4]);
    // Its own protection holds after the old kernel is dropped, which gives the old
    // memory's mappings back to the budget (that memory is gone).
    host::protect(&mut b, tb, 0x1000, 0x1000, false, VM_PROT_READ).unwrap();
    let b_mappings = b.data().kernel.task(tb).unwrap().mappings() as usize;
    assert_eq!(machvm::enforce::mappings_in_use(), 2 + b_mappings);
    drop(old);
    assert_eq!(machvm::enforce::mappings_in_use(), b_mappings);
    assert!(store_to(&mut b, &ib, 0x1000).is_err());
    assert_eq!(load(&mut b, &ib, 0x1000).unwrap(), 0);
}

/// `mem::replace` takes the kernel out while the store and its instance live on.
fn replace() {
    let engine = engine(false);
    let (mut s, instance, t) = task(&engine);
    host::protect(&mut s, t, 0x1000, 0x1000, false, VM_PROT_NONE).unwrap();
    let old = std::mem::replace(&mut s.data_mut().kernel, Kernel::new().unwrap());
    // Neither kernel reaches the task any more ...
    assert!(host::regions(&mut s, t).is_err());
    let mut elsewhere = Store::new(
        &engine,
        State {
            kernel: old,
            ..state()
        },
    );
    assert!(host::regions(&mut elsewhere, t).is_err());
    let old = elsewhere.into_data().kernel;
    // ... the memory keeps its protection: the guest still traps on the page ...
    assert!(load(&mut s, &instance, 0x1000).is_err());
    assert_eq!(load(&mut s, &instance, 0x2000).unwrap(), 0);
    // ... and WASI, which no table can check any more, refuses to touch the memory.
    let random = instance
        .get_typed_func::<i32, i32>(&mut s, "random")
        .unwrap();
    let e = random.call(&mut s, 0x1000).unwrap_err();
    assert!(format!("{e:?}").contains("no longer the store's"), "{e:?}");
    // The memory still holds its mappings after the old kernel is gone, until the store is.
    let held = machvm::enforce::mappings_in_use();
    assert!(held >= 2, "{held}");
    drop(old);
    assert_eq!(machvm::enforce::mappings_in_use(), held);
    assert!(random.call(&mut s, 0x2000).is_err());
    drop(s);
    assert_eq!(machvm::enforce::mappings_in_use(), 0);
}

/// The child side: does nothing unless `MACHVM_CHILD` names a scenario.
#[test]
fn child_entry() {
    child::entry(|scenario| match scenario {
        "into_data_pooling" => into_data(true),
        "into_data" => into_data(false),
        "replace" => replace(),
        other => panic!("unknown scenario {other}"),
    });
}

#[test]
fn t_into_data_pooling() {
    child::run("into_data_pooling");
}

#[test]
fn t_into_data() {
    child::run("into_data");
}

#[test]
fn t_replace() {
    child::run("replace");
}
