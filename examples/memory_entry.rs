//! Embedding machvm: two tasks that share pages through a memory entry (spec §8), the way
//! macOS programs share memory without IPC: one guest makes the entry, the host moves its
//! right to the other guest, which maps it with `vm_map`.
//!
//! ```sh
//! cargo run --example memory_entry
//! ```
//!
//! The engine's memories are backed by shared memory files ([`machvm::share::configure`]).
//! The *maker* fills a page at `0x2000` and makes a memory entry of it with
//! `mach_make_memory_entry_64` (`MAP_MEM_VM_SHARE`, read-write): a port named in its own
//! namespace. The host moves that right into the *mapper*'s namespace
//! ([`Kernel::move_send_right`]); the mapper maps the entry with `vm_map` (no copy) and reads
//! the maker's bytes with its own loads, then stores a reply the maker reads at `0x2100`.
//! Last the maker frees its page: the entry's pages live on in the mapper's mapping.

use std::process::ExitCode;

use machvm::abi::{KernReturn, MachPort, KERN_SUCCESS};
use machvm::host;
use machvm::{Kernel, TaskPre};
use wasmtime::{Engine, Instance, Linker, Store};

/// The guest: `make_entry(addr, size)` makes a read-write `MAP_MEM_VM_SHARE` entry of
/// `size` bytes at `addr` (its handle at 0x8); `map_entry(port, size)` maps `size` bytes of
/// entry `port` anywhere, shared (the address at 0x0); `free(addr, size)` is
/// `vm_deallocate`; `put` and `get` are its own stores and loads.
const GUEST: &str = r#"(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "mach_make_memory_entry_64" (func $make
    (param i32 i32 i64 i32 i32 i32) (result i32)))
  (import "mach" "vm_map" (func $vm_map
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_deallocate" (func $vm_deallocate (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "make_entry") (param $addr i32) (param $size i32) (result i32)
    ;; *size (u64) at 0x10, *object_handle at 0x8; VM_PROT_DEFAULT | MAP_MEM_VM_SHARE
    (i64.store (i32.const 0x10) (i64.extend_i32_u (local.get $size)))
    (call $make (call $self) (i32.const 0x10) (i64.extend_i32_u (local.get $addr))
      (i32.const 0x400003) (i32.const 0x8) (i32.const 0)))
  (func (export "handle") (result i32) (i32.load (i32.const 0x8)))
  (func (export "map_entry") (param $port i32) (param $size i32) (result i32)
    ;; *address at 0x0; VM_FLAGS_ANYWHERE, offset 0, no copy, cur = max = RW,
    ;; VM_INHERIT_SHARE
    (call $vm_map (call $self) (i32.const 0x0) (local.get $size) (i32.const 0)
      (i32.const 1) (local.get $port) (i32.const 0) (i32.const 0)
      (i32.const 3) (i32.const 3) (i32.const 0)))
  (func (export "mapped") (result i32) (i32.load (i32.const 0x0)))
  (func (export "free") (param $addr i32) (param $size i32) (result i32)
    (call $vm_deallocate (call $self) (local.get $addr) (local.get $size)))
  (func (export "put") (param $addr i32) (param $byte i32)
    (i32.store8 (local.get $addr) (local.get $byte)))
  (func (export "get") (param $addr i32) (result i32)
    (i32.load8_u (local.get $addr))))"#;

/// What the maker writes before it makes the entry.
pub const MESSAGE: &[u8] = b"bytes of the maker's page";
/// What the mapper writes back through its mapping.
pub const REPLY: &[u8] = b"reply through vm_map";

/// The maker's page.
const PAGE: u32 = 0x2000;
/// One page (the kernel's default page size).
const SIZE: u32 = 0x1000;

/// The store's data: the kernel (and whatever else the host keeps).
struct State {
    kernel: Kernel,
}

impl machvm::KernelView for State {
    fn kernel(&mut self) -> &mut Kernel {
        &mut self.kernel
    }
}

/// What the example saw.
#[derive(Debug)]
pub struct Report {
    /// `mach_make_memory_entry_64`'s answer in the maker, and the entry's name there.
    pub make: (KernReturn, MachPort),
    /// The entry's name in the mapper's namespace, once the host moved it.
    pub moved: MachPort,
    /// Whether the maker still names the entry after the move.
    pub maker_keeps_it: bool,
    /// `vm_map`'s answer in the mapper, and where the page went.
    pub map: (KernReturn, u32),
    /// The maker's bytes, as the mapper's loads read them.
    pub message: Vec<u8>,
    /// The reply, as the maker's loads read it at `0x2100`.
    pub reply: Vec<u8>,
    /// The mapper's bytes once the maker freed its page.
    pub after_free: Vec<u8>,
}

/// One guest's exports.
struct Guest {
    instance: Instance,
}

impl Guest {
    fn call(
        &self,
        store: &mut Store<State>,
        name: &str,
        args: (u32, u32),
    ) -> wasmtime::Result<i32> {
        let f = self
            .instance
            .get_typed_func::<(u32, u32), i32>(&mut *store, name)?;
        f.call(&mut *store, args)
    }

    fn word(&self, store: &mut Store<State>, name: &str) -> wasmtime::Result<u32> {
        let f = self.instance.get_typed_func::<(), u32>(&mut *store, name)?;
        f.call(&mut *store, ())
    }

    fn put(&self, store: &mut Store<State>, at: u32, bytes: &[u8]) -> wasmtime::Result<()> {
        let put = self
            .instance
            .get_typed_func::<(u32, u32), ()>(&mut *store, "put")?;
        for (i, &b) in bytes.iter().enumerate() {
            put.call(&mut *store, (at + i as u32, u32::from(b)))?;
        }
        Ok(())
    }

    fn get(&self, store: &mut Store<State>, at: u32, n: usize) -> wasmtime::Result<Vec<u8>> {
        let get = self
            .instance
            .get_typed_func::<u32, u32>(&mut *store, "get")?;
        (0..n as u32)
            .map(|i| get.call(&mut *store, at + i).map(|b| b as u8))
            .collect()
    }
}

/// Runs the example.
///
/// # Errors
///
/// When the guest does not compile or instantiate, a call fails, or a host operation is
/// refused.
pub fn run() -> wasmtime::Result<Report> {
    let mut config = wasmtime::Config::new();
    let engine = Engine::new(machvm::share::configure(machvm::configure(&mut config)))?;
    let module = machvm::compile(&engine, GUEST.as_bytes())?;
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new()?,
        },
    );
    let linker = Linker::new(&engine);
    let pre = TaskPre::new(&module)?;
    let (maker_instance, maker) = pre.instantiate(&mut store, &linker)?;
    let (mapper_instance, mapper) = pre.instantiate(&mut store, &linker)?;
    let (m, n) = (
        Guest {
            instance: maker_instance,
        },
        Guest {
            instance: mapper_instance,
        },
    );

    // The maker's page, and an entry of it in the maker's namespace.
    m.put(&mut store, PAGE, MESSAGE)?;
    let made = KernReturn(m.call(&mut store, "make_entry", (PAGE, SIZE))?);
    let entry = MachPort(m.word(&mut store, "handle")?);
    if made != KERN_SUCCESS {
        wasmtime::bail!("mach_make_memory_entry_64 answered {made}");
    }

    // The host moves the right: the mapper names it, the maker no longer does.
    let kernel = &mut store.data_mut().kernel;
    let moved = kernel.move_send_right(maker, entry, mapper)?;
    let maker_keeps_it = kernel
        .task(maker)
        .is_some_and(|vm| vm.lookup_port(entry).is_some());

    let map = KernReturn(n.call(&mut store, "map_entry", (moved.0, SIZE))?);
    let mapped = n.word(&mut store, "mapped")?;
    if map != KERN_SUCCESS {
        wasmtime::bail!("vm_map answered {map}");
    }
    let message = n.get(&mut store, mapped, MESSAGE.len())?;
    n.put(&mut store, mapped + 0x100, REPLY)?;
    let reply = m.get(&mut store, PAGE + 0x100, REPLY.len())?;

    // The maker frees its page; the entry's pages live on in the mapper.
    let freed = KernReturn(m.call(&mut store, "free", (PAGE, SIZE))?);
    if freed != KERN_SUCCESS {
        wasmtime::bail!("vm_deallocate answered {freed}");
    }
    let after_free = host::read_bytes(&mut store, mapper, u64::from(mapped), MESSAGE.len())?;
    Ok(Report {
        make: (made, entry),
        moved,
        maker_keeps_it,
        map: (map, mapped),
        message,
        reply,
        after_free,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(r) => {
            println!(
                "mach_make_memory_entry_64 in the maker: {}, entry {:#x}",
                r.make.0, r.make.1
            );
            println!(
                "moved into the mapper as {:#x} (the maker keeps it: {})",
                r.moved, r.maker_keeps_it
            );
            println!("vm_map in the mapper: {} at {:#x}", r.map.0, r.map.1);
            for (who, bytes) in [
                ("the mapper reads", &r.message),
                ("the maker reads", &r.reply),
                (
                    "after the maker's vm_deallocate, the mapper reads",
                    &r.after_free,
                ),
            ] {
                println!("{who}: {:?}", String::from_utf8_lossy(bytes));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
