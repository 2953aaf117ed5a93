//! `vm_copy` served in wasm (`machvm::rewrite`, "vm_copy in wasm"): copies inside the copy
//! windows make no host call, every other copy does, and a table change closes the windows
//! it touches before the guest runs again. Host calls are counted with a call hook, so
//! these tests see which side answered; the spec rows (`tests/spec`) and the differential
//! tests check that both sides answer alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use machvm::abi::*;
use machvm::{Kernel, KernelConfig, TaskId, TaskPre};
use wasmtime::{CallHook, Config, Engine, Instance, Linker, Module, Store};

const GUEST: &str = r#"(module
  (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
  (import "mach" "mach_vm_copy" (func $mcopy (param i32 i64 i64 i64) (result i32)))
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (global $g (mut i32) (i32.const 7))
  (memory (export "memory") 4 64)
  (func (export "copy") (param i32 i32 i32 i32) (result i32)
    (call $copy (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "mcopy") (param i64 i64 i64) (result i32)
    (call $mcopy (i32.const 0x103) (local.get 0) (local.get 1) (local.get 2)))
  (func (export "tail") (param i32 i32 i32) (result i32)
    (return_call $copy (i32.const 0x103) (local.get 0) (local.get 1) (local.get 2)))
  (func (export "protect") (param i32 i32 i32) (result i32)
    (call $protect (i32.const 0x103) (local.get 0) (local.get 1) (i32.const 0) (local.get 2)))
  (func (export "grow") (result i32) (memory.grow (i32.const 1)))
  (func (export "global") (result i32) (global.set $g (i32.add (global.get $g) (i32.const 1))) (global.get $g)))"#;

struct State {
    kernel: Kernel,
    host_calls: Arc<AtomicUsize>,
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

/// A task of a test: one of the guests below, in a store that counts host calls.
struct Guest {
    store: Store<State>,
    instance: Instance,
    task: TaskId,
}

/// `wat` compiled with `machvm::compile` and instantiated as a task of a kernel with
/// `config`, in a store whose call hook counts host calls.
fn task(config: KernelConfig, wat: &str) -> (Store<State>, Instance, TaskId) {
    let engine = Engine::new(machvm::configure(&mut Config::new())).unwrap();
    let module = machvm::compile(&engine, wat.as_bytes()).unwrap();
    let host_calls = Arc::new(AtomicUsize::new(0));
    let kernel = Kernel::with_config(config).unwrap();
    let mut store = Store::new(
        &engine,
        State {
            kernel,
            host_calls: host_calls.clone(),
        },
    );
    store.call_hook(move |_, hook| {
        if matches!(hook, CallHook::CallingHost) {
            host_calls.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let pre = TaskPre::new(&module).unwrap();
    let (instance, task) = pre.instantiate(&mut store, &Linker::new(&engine)).unwrap();
    (store, instance, task)
}

impl Guest {
    fn new(config: KernelConfig, wat: &str) -> Guest {
        let (store, instance, task) = task(config, wat);
        Guest {
            store,
            instance,
            task,
        }
    }

    fn host_calls(&self) -> usize {
        self.store.data().host_calls.load(Ordering::Relaxed)
    }

    fn copy(&mut self, src: u32, size: u32, dst: u32) -> KernReturn {
        self.copy_as(TASK_SELF_NAME.0, src, size, dst)
    }

    fn copy_as(&mut self, port: u32, src: u32, size: u32, dst: u32) -> KernReturn {
        KernReturn(self.call("copy", (port, src, size, dst)))
    }

    fn try_call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
        p: P,
    ) -> wasmtime::Result<R> {
        let f = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, p)
    }

    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(&mut self, name: &str, p: P) -> R {
        self.try_call(name, p).unwrap()
    }

    /// The guest's `vm_protect` of its own pages, which must succeed.
    fn protect(&mut self, addr: u32, size: u32, prot: VmProt) {
        assert_eq!(self.call::<_, i32>("protect", (addr, size, prot.0)), 0);
    }

    fn windows(&self) -> [(u64, u64); 2] {
        self.store.data().kernel.task(self.task).unwrap().windows()
    }

    fn memory(&mut self) -> &mut [u8] {
        let m = self.instance.get_memory(&mut self.store, "memory").unwrap();
        m.data_mut(&mut self.store)
    }

    fn bytes(&mut self, addr: usize, len: usize) -> Vec<u8> {
        self.memory()[addr..addr + len].to_vec()
    }

    /// Fills `[addr, addr + len)` with a pattern that differs per address.
    fn pattern(&mut self, addr: usize, len: usize) {
        for (i, b) in self.memory()[addr..addr + len].iter_mut().enumerate() {
            *b = (i * 7 + addr) as u8 | 1;
        }
    }
}

const MEM: u64 = 4 << 16;

#[test]
fn copies_inside_the_windows_are_served_without_a_host_call() {
    let mut g = Guest::new(KernelConfig::default(), GUEST);
    assert_eq!(g.windows(), [(0, 0); 2], "closed until the first copy");
    g.pattern(0x100, 0x400);
    assert_eq!(g.copy(0x100, 16, 0x2000), KERN_SUCCESS);
    assert_eq!(g.host_calls(), 1, "the first copy opens the windows");
    assert_eq!(g.windows(), [(0, MEM); 2]);
    assert_eq!(g.copy(0x200, 64, 0x3000), KERN_SUCCESS);
    assert_eq!(g.call::<_, i32>("mcopy", (0x300i64, 64i64, 0x3100i64)), 0);
    assert_eq!(g.call::<_, i32>("tail", (0x400u32, 64u32, 0x3200u32)), 0);
    // Overlapping, and touching the window's last byte.
    assert_eq!(g.copy(0x100, 0x100, 0x180), KERN_SUCCESS);
    assert_eq!(g.copy(0x2000, 16, MEM as u32 - 16), KERN_SUCCESS);
    assert_eq!(g.host_calls(), 1, "served in wasm");
    // The bytes moved as memmove moves them.
    let m = g.memory().to_vec();
    let want = {
        let mut g = Guest::new(KernelConfig::default(), GUEST);
        g.pattern(0x100, 0x400);
        let mut b = g.memory().to_vec();
        b.copy_within(0x100..0x110, 0x2000);
        b.copy_within(0x200..0x240, 0x3000);
        b.copy_within(0x300..0x340, 0x3100);
        b.copy_within(0x400..0x440, 0x3200);
        b.copy_within(0x100..0x200, 0x180);
        b.copy_within(0x2000..0x2010, MEM as usize - 16);
        b
    };
    assert!(
        m == want,
        "the copies served in wasm moved the same bytes as memmove"
    );
}

#[test]
fn everything_outside_the_windows_goes_to_the_host() {
    let mut g = Guest::new(KernelConfig::default(), GUEST);
    assert_eq!(g.copy(0, 1, 0), KERN_SUCCESS);
    let n = g.host_calls();
    // Another port, past the memory, wrapping, past the window's end.
    assert_eq!(g.copy_as(0, 0, 16, 0x100), MACH_SEND_INVALID_DEST);
    assert_eq!(
        g.copy_as(HOST_SELF_NAME.0, 0, 16, 0x100),
        KERN_INVALID_ARGUMENT
    );
    assert_eq!(g.copy(MEM as u32, 16, 0x100), KERN_INVALID_ADDRESS);
    assert_eq!(g.copy(0x100, 16, MEM as u32 - 8), KERN_INVALID_ADDRESS);
    assert_eq!(g.copy(0xFFFF_FFF8, 16, 0x100), KERN_INVALID_ADDRESS);
    assert_eq!(g.copy(0x100, u32::MAX, 0x100), KERN_INVALID_ADDRESS);
    assert_eq!(g.host_calls(), n + 6);
}

#[test]
fn a_table_change_closes_the_windows_it_touches() {
    let mut g = Guest::new(KernelConfig::default(), GUEST);
    g.pattern(0, 0x1000);
    assert_eq!(g.copy(0, 16, 0x8000), KERN_SUCCESS);
    // Read-only page at 0x3000: both windows cover it, both close.
    g.protect(0x3000, 0x1000, VM_PROT_READ);
    assert_eq!(g.windows(), [(0, 0); 2]);
    let n = g.host_calls();
    let before = g.memory()[0x3000..0x3040].to_vec();
    assert_eq!(g.copy(0, 64, 0x3000), KERN_PROTECTION_FAILURE);
    assert_eq!(g.memory()[0x3000..0x3040], before[..], "all or nothing");
    assert_eq!(g.host_calls(), n + 1);
    // A copy past the read-only page opens the read window over the whole memory (every
    // page is readable) and the write window after it ...
    assert_eq!(g.copy(0, 64, 0x5000), KERN_SUCCESS);
    assert_eq!(g.windows(), [(0, MEM), (0x4000, MEM)]);
    assert_eq!(g.copy(0, 64, 0x6000), KERN_SUCCESS);
    assert_eq!(g.host_calls(), n + 2);
    // ... and one before it moves the window there.
    assert_eq!(g.copy(0, 64, 0x2000), KERN_SUCCESS);
    assert_eq!(g.windows(), [(0, MEM), (0, 0x3000)]);
    assert_eq!(g.host_calls(), n + 3);
    // A source on the read-only page is readable: in the read window.
    assert_eq!(g.copy(0x3000, 64, 0x1000), KERN_SUCCESS);
    assert_eq!(g.host_calls(), n + 3);
    // Unreadable source page: the read window closes, the write window (which ends
    // before the page) stays, and the host refuses.
    g.protect(0x3000, 0x1000, VM_PROT_NONE);
    assert_eq!(g.windows(), [(0, 0), (0, 0x3000)]);
    assert_eq!(g.copy(0x3000, 64, 0x1000), KERN_PROTECTION_FAILURE);
    // Grown pages join a window only once a copy there opens it again.
    assert_eq!(g.call::<_, i32>("grow", ()), 4);
    assert_eq!(g.copy(0, 64, MEM as u32), KERN_SUCCESS);
    assert_eq!(g.windows(), [(0, 0x3000), (0x4000, MEM + 0x10000)]);
}

#[test]
fn the_modules_own_globals_keep_their_indices() {
    let mut g = Guest::new(KernelConfig::default(), GUEST);
    assert_eq!(g.call::<_, i32>("global", ()), 8);
    assert_eq!(g.call::<_, i32>("global", ()), 9);
}

#[test]
fn with_copy_in_wasm_off_every_copy_is_a_host_call() {
    let config = KernelConfig::default().copy_in_wasm(false);
    let mut g = Guest::new(config, GUEST);
    for k in 1..=3 {
        assert_eq!(g.copy(0, 64, 0x1000), KERN_SUCCESS);
        assert_eq!(g.host_calls(), k);
    }
    assert_eq!(g.windows(), [(0, 0); 2]);
}

#[test]
fn without_enforcement_the_windows_work_alike() {
    let config = KernelConfig::default().enforce(false);
    let mut g = Guest::new(config, GUEST);
    assert_eq!(g.copy(0, 64, 0x1000), KERN_SUCCESS);
    assert_eq!(g.copy(0, 64, 0x2000), KERN_SUCCESS);
    assert_eq!(g.host_calls(), 1);
    g.protect(0x2000, 0x1000, VM_PROT_READ);
    assert_eq!(g.copy(0, 64, 0x2000), KERN_PROTECTION_FAILURE);
}

#[test]
fn traced_copies_all_go_to_the_host() {
    // Windows opened before a subscriber listens close at the task's next host call.
    let mut g = Guest::new(KernelConfig::default(), GUEST);
    assert_eq!(g.copy(0, 64, 0x1000), KERN_SUCCESS);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let n = g.host_calls();
        assert_eq!(g.copy_as(0, 0, 64, 0x1000), MACH_SEND_INVALID_DEST);
        assert_eq!(g.windows(), [(0, 0); 2]);
        for k in 1..=3 {
            assert_eq!(g.copy(0, 64, 0x1000), KERN_SUCCESS);
            assert_eq!(g.host_calls(), n + 1 + k);
        }
        assert_eq!(g.windows(), [(0, 0); 2]);
    });
}

/// The window globals reach only the functions the rewrite adds: a module that imports
/// one itself (it could write it) is refused once compiled.
#[test]
fn a_module_that_imports_a_window_global_is_refused() {
    let engine = Engine::new(machvm::configure(&mut Config::new())).unwrap();
    let wat = r#"(module
      (import "machvm:copy" "write_hi" (global (mut i32)))
      (import "mach" "vm_copy" (func $copy (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "run") (result i32)
        (global.set 0 (i32.const -1))
        (call $copy (i32.const 0x103) (i32.const 0) (i32.const 16) (i32.const 0x100))))"#;
    let module = machvm::compile(&engine, wat.as_bytes()).unwrap();
    let err = match TaskPre::<State>::new(&module) {
        Ok(_) => panic!("linked"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("`machvm:copy::write_hi`"), "{err}");
    assert!(err.contains("imported twice"), "{err}");
    let _ = Module::new(&engine, wat).unwrap();
}

/// A guest whose bulk-memory instructions enforcement checks: before each, the rewrite's
/// window test, which calls the host check only outside the windows.
const BULK: &str = r#"(module
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data $d "0123456789abcdef")
  (func (export "fill") (param i32 i32) (memory.fill (local.get 0) (i32.const 0x5a) (local.get 1)))
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32) (memory.init $d (local.get 0) (i32.const 0) (local.get 1)))
  (func (export "protect") (param i32 i32 i32) (result i32)
    (call $protect (i32.const 0x103) (local.get 0) (local.get 1) (i32.const 0) (local.get 2))))"#;

#[test]
fn bulk_memory_checks_inside_the_windows_make_no_host_call() {
    let mut g = Guest::new(KernelConfig::default(), BULK);
    g.try_call::<_, ()>("fill", (0x1000u32, 64u32)).unwrap();
    assert_eq!(g.host_calls(), 1, "the first check opens the write window");
    assert_eq!(g.windows(), [(0, 0), (0, MEM)]);
    g.try_call::<_, ()>("fill", (0x2000u32, 64u32)).unwrap();
    g.try_call::<_, ()>("init", (0x3000u32, 16u32)).unwrap();
    assert_eq!(g.host_calls(), 1);
    g.try_call::<_, ()>("copy", (0x4000u32, 0x1000u32, 64u32))
        .unwrap();
    assert_eq!(g.host_calls(), 2, "the source needs the read window");
    g.try_call::<_, ()>("copy", (0x5000u32, 0x3000u32, 16u32))
        .unwrap();
    assert_eq!(g.host_calls(), 2);
    assert_eq!(g.bytes(0x4000, 64), vec![0x5a; 64]);
    assert_eq!(g.bytes(0x5000, 16), b"0123456789abcdef");
    // Out of bounds: the window test lets the instruction trap as wasm says.
    assert!(g
        .try_call::<_, ()>("fill", (MEM as u32 - 8, 16u32))
        .is_err());
    assert!(g
        .try_call::<_, ()>("copy", (0u32, MEM as u32, 1u32))
        .is_err());
}

#[test]
fn bulk_memory_on_a_page_protected_after_the_windows_opened_traps() {
    let mut g = Guest::new(KernelConfig::default(), BULK);
    g.try_call::<_, ()>("copy", (0x1000u32, 0u32, 64u32))
        .unwrap();
    assert_eq!(g.windows(), [(0, MEM); 2]);
    g.protect(0x2000, 0x1000, VM_PROT_READ);
    assert_eq!(g.windows(), [(0, 0); 2]);
    let before = g.bytes(0x2000, 64);
    let err = g.try_call::<_, ()>("fill", (0x2000u32, 64u32)).unwrap_err();
    assert!(format!("{err:?}").contains("memory.fill"), "{err:?}");
    let err = g.try_call::<_, ()>("init", (0x2ff8u32, 16u32)).unwrap_err();
    assert!(format!("{err:?}").contains("memory.init"), "{err:?}");
    assert_eq!(g.bytes(0x2000, 64), before);
    // Reading the read-only page is allowed, and opens the read window over it.
    g.try_call::<_, ()>("copy", (0x1000u32, 0x2000u32, 64u32))
        .unwrap();
    assert_eq!(g.windows(), [(0, MEM), (0, 0x2000)]);
    g.protect(0x2000, 0x1000, VM_PROT_NONE);
    let err = g
        .try_call::<_, ()>("copy", (0x1000u32, 0x2000u32, 64u32))
        .unwrap_err();
    assert!(format!("{err:?}").contains("memory.copy"), "{err:?}");
}

#[test]
fn without_enforcement_bulk_memory_runs_on_protected_pages() {
    let config = KernelConfig::default().enforce(false);
    let mut g = Guest::new(config, BULK);
    g.protect(0x2000, 0x1000, VM_PROT_READ);
    g.try_call::<_, ()>("fill", (0x2000u32, 64u32)).unwrap();
    assert_eq!(g.bytes(0x2000, 64), vec![0x5a; 64]);
    // The windows still follow the table: the page is outside the write window.
    assert_eq!(g.windows(), [(0, 0), (0, 0)]);
    g.try_call::<_, ()>("fill", (0x1000u32, 64u32)).unwrap();
    assert_eq!(g.windows(), [(0, 0), (0, 0x2000)]);
}
