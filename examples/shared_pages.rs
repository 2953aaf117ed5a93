//! Embedding machvm: two tasks that share pages (spec §8), each writing bytes the other
//! reads, through `vm_remap` and a send right the host gave one of them.
//!
//! ```sh
//! cargo run --example shared_pages
//! ```
//!
//! The engine's memories are backed by shared memory files ([`machvm::share::configure`]),
//! which is what lets two addresses show the same bytes. The host instantiates the guest
//! twice, a *publisher* and a *subscriber*, plants a greeting in the publisher's page at
//! `0x2000`, and gives the subscriber a send right to the publisher
//! ([`Kernel::insert_send_right`]). The subscriber maps that page into its own memory with
//! `vm_remap` (no copy) and reads the greeting there with its own loads; it then stores a
//! reply through its mapping, which the publisher reads with its own loads at `0x2100`, and
//! the publisher's answer shows through to the subscriber again. Both tasks' `vm_region`
//! report the page `shared`.

use std::process::ExitCode;

use machvm::abi::{KernReturn, MachPort, KERN_SUCCESS};
use machvm::host;
use machvm::{Kernel, TaskId, TaskPre};
use wasmtime::{Engine, Instance, Linker, Store};

/// The guest: `share_from(port, addr, size)` maps `size` bytes at `addr` of the task named
/// `port` anywhere in its own memory (`vm_remap`, shared), stores the address at 0x0 and
/// returns the `kern_return_t`; `put(addr, byte)` and `get(addr)` are its own stores and
/// loads.
const GUEST: &str = r#"(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "vm_remap" (func $vm_remap
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "share_from") (param $port i32) (param $addr i32) (param $size i32)
    (result i32)
    ;; *target_address at 0x0, *cur at 0x8, *max at 0xc; VM_FLAGS_ANYWHERE, no copy,
    ;; VM_INHERIT_SHARE
    (call $vm_remap (call $self) (i32.const 0x0) (local.get $size) (i32.const 0)
      (i32.const 1) (local.get $port) (local.get $addr) (i32.const 0)
      (i32.const 0x8) (i32.const 0xc) (i32.const 0)))
  (func (export "mapped") (result i32) (i32.load (i32.const 0x0)))
  (func (export "put") (param $addr i32) (param $byte i32)
    (i32.store8 (local.get $addr) (local.get $byte)))
  (func (export "get") (param $addr i32) (result i32)
    (i32.load8_u (local.get $addr))))"#;

/// What the host plants in the publisher.
pub const GREETING: &[u8] = b"hello from the publisher";
/// What the subscriber writes back through its mapping.
pub const REPLY: &[u8] = b"reply from the subscriber";
/// What the publisher writes after that.
pub const ANSWER: &[u8] = b"answer from the publisher";

/// The publisher's shared page.
const PAGE: u32 = 0x2000;

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
    /// The name of the send right to the publisher in the subscriber's namespace.
    pub port: MachPort,
    /// `vm_remap`'s answer in the subscriber.
    pub remap: KernReturn,
    /// Where the publisher's page is in the subscriber.
    pub mapped: u32,
    /// The greeting, as the subscriber's loads read it at `mapped`.
    pub greeting: Vec<u8>,
    /// The reply, as the publisher's loads read it at `0x2100`.
    pub reply: Vec<u8>,
    /// The answer, as the subscriber's loads read it at `mapped + 0x200`.
    pub answer: Vec<u8>,
    /// Whether each task's `vm_region` reports the page shared: publisher, subscriber.
    pub shared: [bool; 2],
}

/// One guest's exports.
struct Guest {
    instance: Instance,
}

impl Guest {
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

/// Whether task `task`'s region at `addr` is of a shared object.
fn shared(store: &mut Store<State>, task: TaskId, addr: u32) -> wasmtime::Result<bool> {
    let regions = host::regions(store, task)?;
    Ok(regions
        .iter()
        .any(|r| r.start <= u64::from(addr) && u64::from(addr) < r.end() && r.shared))
}

/// Runs the example.
///
/// # Errors
///
/// When the guest does not compile or instantiate, or a host operation is refused.
pub fn run() -> wasmtime::Result<Report> {
    // Memories that can share pages, with machvm's settings for enforcement.
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
    let (publisher_instance, publisher) = pre.instantiate(&mut store, &linker)?;
    let (subscriber_instance, subscriber) = pre.instantiate(&mut store, &linker)?;
    let (p, s) = (
        Guest {
            instance: publisher_instance,
        },
        Guest {
            instance: subscriber_instance,
        },
    );
    host::write_bytes(&mut store, publisher, u64::from(PAGE), GREETING)?;

    // Only a send right lets the subscriber reach the publisher's pages.
    let port = store
        .data_mut()
        .kernel
        .insert_send_right(subscriber, publisher)?;
    let share_from = s
        .instance
        .get_typed_func::<(u32, u32, u32), i32>(&mut store, "share_from")?;
    let remap = KernReturn(share_from.call(&mut store, (port.0, PAGE, 0x1000))?);
    let mapped = s
        .instance
        .get_typed_func::<(), u32>(&mut store, "mapped")?
        .call(&mut store, ())?;
    if remap != KERN_SUCCESS {
        wasmtime::bail!("vm_remap answered {remap}");
    }
    let greeting = s.get(&mut store, mapped, GREETING.len())?;
    s.put(&mut store, mapped + 0x100, REPLY)?;
    let reply = p.get(&mut store, PAGE + 0x100, REPLY.len())?;
    p.put(&mut store, PAGE + 0x200, ANSWER)?;
    let answer = s.get(&mut store, mapped + 0x200, ANSWER.len())?;
    let shared = [
        shared(&mut store, publisher, PAGE)?,
        shared(&mut store, subscriber, mapped)?,
    ];
    Ok(Report {
        port,
        remap,
        mapped,
        greeting,
        reply,
        answer,
        shared,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(r) => {
            println!(
                "send right to the publisher in the subscriber: {:#x}",
                r.port
            );
            println!("vm_remap: {} at {:#x}", r.remap, r.mapped);
            for (who, bytes) in [
                ("the subscriber reads", &r.greeting),
                ("the publisher reads", &r.reply),
                ("the subscriber reads", &r.answer),
            ] {
                println!("{who}: {:?}", String::from_utf8_lossy(bytes));
            }
            println!(
                "vm_region shared: publisher {}, subscriber {}",
                r.shared[0], r.shared[1]
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
