//! Embedding machvm: a host with two tasks in one store, where one guest copies memory out
//! of the other with `vm_read_overwrite`, through a send right the host gave it.
//!
//! ```sh
//! cargo run --example two_tasks
//! ```
//!
//! The host prepares the guest module once ([`TaskPre`]) and instantiates it twice: a
//! *reader* and a *source*. Before the guests run, it drives the source directly with
//! [`machvm::host`]: it writes a message into it, makes that page read-only and puts a guard
//! page (no access) after it. It then gives the reader a send right to the source
//! ([`Kernel::insert_send_right`]) and calls the reader's export, which copies the message
//! into its own memory; a second copy that touches the guard page is refused with
//! `KERN_PROTECTION_FAILURE`. Finally the host reads the copy and the source's regions.

use std::process::ExitCode;

use machvm::abi::{KernReturn, MachPort, VM_PROT_NONE, VM_PROT_READ};
use machvm::host::{self, Region};
use machvm::{Kernel, TaskPre};
use wasmtime::{Engine, Linker, Store};

/// The guest: `copy_from(port, addr, size)` copies `size` bytes at `addr` of the task named
/// `port` to its own address 0x1000, and returns the `kern_return_t`.
const GUEST: &str = r#"(module
  (import "mach" "vm_read_overwrite"
    (func $vm_read_overwrite (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "copy_from") (param $port i32) (param $addr i32) (param $size i32) (result i32)
    ;; the copy goes to 0x1000, the size copied to 0x0
    (call $vm_read_overwrite (local.get $port) (local.get $addr) (local.get $size)
                             (i32.const 0x1000) (i32.const 0x0))))"#;

/// The message the host plants in the source task.
pub const MESSAGE: &[u8] = b"hello from the other task";

/// Where it is in the source task.
const MESSAGE_AT: u64 = 0x2000;

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
    /// The name of the send right to the source in the reader's namespace.
    pub port: MachPort,
    /// The result of the reader's copy of the message.
    pub copy: KernReturn,
    /// The bytes the reader got, read back from its memory by the host.
    pub copied: Vec<u8>,
    /// The result of the reader's copy across the guard page.
    pub guarded_copy: KernReturn,
    /// The source task's regions at the end.
    pub source_regions: Vec<Region>,
}

/// Runs the example.
///
/// # Errors
///
/// When the guest does not compile or instantiate, or a host operation is refused.
pub fn run() -> wasmtime::Result<Report> {
    // Page-protection enforcement (on by default) wants an engine whose memories never move
    // and modules whose bulk-memory instructions machvm has rewritten.
    let engine = Engine::new(machvm::configure(&mut wasmtime::Config::new()))?;
    let module = machvm::compile(&engine, GUEST.as_bytes())?;
    let mut store = Store::new(
        &engine,
        State {
            kernel: Kernel::new()?,
        },
    );
    // No imports but machvm's: an empty linker (add WASI or your own functions to it).
    let linker = Linker::new(&engine);
    let pre = TaskPre::new(&module)?;
    let (reader_instance, reader) = pre.instantiate(&mut store, &linker)?;
    let (_source_instance, source) = pre.instantiate(&mut store, &linker)?;

    // Set up the source from the host, with the checks a guest would get.
    host::write_bytes(&mut store, source, MESSAGE_AT, MESSAGE)?;
    host::protect(&mut store, source, MESSAGE_AT, 0x1000, false, VM_PROT_READ)?;
    host::protect(
        &mut store,
        source,
        MESSAGE_AT + 0x1000,
        0x1000,
        false,
        VM_PROT_NONE,
    )?;

    // Only a send right lets the reader reach the source.
    let port = store.data_mut().kernel.insert_send_right(reader, source)?;

    let copy_from =
        reader_instance.get_typed_func::<(u32, u32, u32), i32>(&mut store, "copy_from")?;
    let copy = KernReturn(copy_from.call(
        &mut store,
        (port.0, MESSAGE_AT as u32, MESSAGE.len() as u32),
    )?);
    let copied = host::read_bytes(&mut store, reader, 0x1000, MESSAGE.len())?;
    // From the middle of the message page into the guard page: refused, nothing copied.
    let guarded_copy =
        KernReturn(copy_from.call(&mut store, (port.0, MESSAGE_AT as u32 + 0x800, 0x1000))?);

    let source_regions = host::regions(&mut store, source)?;
    Ok(Report {
        port,
        copy,
        copied,
        guarded_copy,
        source_regions,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(r) => {
            println!("send right to the source in the reader: {:#x}", r.port);
            println!(
                "vm_read_overwrite of the message: {} -> {:?}",
                r.copy,
                String::from_utf8_lossy(&r.copied)
            );
            println!(
                "vm_read_overwrite across the guard page: {}",
                r.guarded_copy
            );
            println!("the source's regions:");
            for region in &r.source_regions {
                println!("  {region}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
