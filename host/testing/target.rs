//! [`Target`]: the one small interface the spec's rows are written against, so that each row
//! runs against machvm (through real wasm guests: [`Harness`]) and against the independent
//! reference model ([`Model`]) alike, and neither can drift from the contract alone.

use crate::abi::{Call, MachPort, Outcome, PageAttrs, Width};
use crate::testing::fuzzing::map_limit_of;
use crate::testing::harness::Harness;
use crate::testing::model::Model;
use crate::vm::WASM_PAGE;
use crate::KernelConfig;

/// A kernel of tasks that runs Mach calls: machvm's or the model's. Tasks are numbered from
/// 0 in the order [`Target::add_task`] made them; all share one page size.
///
/// The methods panic where a test would fail anyway (a task that does not exist, bytes
/// outside a memory, a guest that traps with something other than a parameter fault).
pub trait Target {
    /// `"machvm"` or `"model"`, for assertion messages.
    fn name(&self) -> &'static str;
    /// Adds a task whose memory has `initial` wasm pages, at most `maximum` (its map is
    /// what [`KernelConfig::default`] gives such a memory); returns its index.
    fn add_task(&mut self, width: Width, initial: u64, maximum: Option<u64>) -> usize;
    /// Runs `call` made by task `task` (its pointers in that task's memory).
    fn call(&mut self, task: usize, call: &Call) -> Outcome;
    /// Task `task`'s bytes `[addr, addr + len)`, whatever their protection.
    fn read(&self, task: usize, addr: u64, len: usize) -> Vec<u8>;
    /// Writes `bytes` at `addr` of task `task`'s memory, as the test's setup (the pages
    /// must be readable and writable in hardware: the table says so).
    fn write(&mut self, task: usize, addr: u64, bytes: &[u8]);
    /// The size of task `task`'s memory in bytes.
    fn memory_size(&self, task: usize) -> u64;
    /// The table's entry for task `task`'s page `index` (`None`: not allocated).
    fn page(&self, task: usize, index: u64) -> Option<PageAttrs>;
    /// Task `task`'s own `memory.grow` by `delta` wasm pages: the old size in wasm pages,
    /// or `None` when refused.
    fn grow(&mut self, task: usize, delta: u64) -> Option<u64>;
    /// Inserts into task `from`'s namespace a send right to task `to`; returns its name.
    fn insert_send_right(&mut self, from: usize, to: usize) -> MachPort;
    /// Copies the send right task `from` names `name` into task `into`'s namespace (as
    /// [`machvm::Kernel::copy_send_right`](crate::Kernel::copy_send_right)); its name
    /// there, `None` when refused.
    fn copy_send_right(&mut self, from: usize, name: MachPort, into: usize) -> Option<MachPort>;
}

impl Target for Harness {
    fn name(&self) -> &'static str {
        "machvm"
    }

    fn add_task(&mut self, width: Width, initial: u64, maximum: Option<u64>) -> usize {
        self.add_guest(width, initial, maximum)
            .expect("the harness makes a guest")
    }

    fn call(&mut self, task: usize, call: &Call) -> Outcome {
        Harness::call(self, task, call)
            .unwrap_or_else(|e| panic!("{call:?} trapped with something else than a fault: {e:?}"))
    }

    fn read(&self, task: usize, addr: u64, len: usize) -> Vec<u8> {
        Harness::read(self, task, addr as usize, len)
    }

    fn write(&mut self, task: usize, addr: u64, bytes: &[u8]) {
        let a = addr as usize;
        self.memory_mut(task)[a..a + bytes.len()].copy_from_slice(bytes);
    }

    fn memory_size(&self, task: usize) -> u64 {
        Harness::memory_size(self, task) as u64
    }

    fn page(&self, task: usize, index: u64) -> Option<PageAttrs> {
        Harness::page(self, task, index)
    }

    fn grow(&mut self, task: usize, delta: u64) -> Option<u64> {
        Harness::grow(self, task, delta).expect("memory.grow does not trap")
    }

    fn insert_send_right(&mut self, from: usize, to: usize) -> MachPort {
        Harness::insert_send_right(self, from, to).expect("both tasks exist")
    }

    fn copy_send_right(&mut self, from: usize, name: MachPort, into: usize) -> Option<MachPort> {
        Harness::copy_send_right(self, from, name, into).ok()
    }
}

/// The reference model as a [`Target`], with the page size and maps machvm's default
/// configuration gives.
#[derive(Debug)]
pub struct ModelTarget {
    /// The model.
    pub model: Model,
    page_size: u64,
    /// Its tasks' memories can share pages (spec §8), as machvm's backed memories do.
    can_share: bool,
}

impl ModelTarget {
    /// A model whose tasks have page size `page_size`.
    pub fn new(page_size: u64) -> ModelTarget {
        ModelTarget {
            model: Model::new(),
            page_size,
            can_share: false,
        }
    }

    /// A model whose tasks' memories can share pages, as machvm's backed memories
    /// ([`Harness::with_memories`]) do.
    pub fn sharing(page_size: u64) -> ModelTarget {
        ModelTarget {
            can_share: true,
            ..ModelTarget::new(page_size)
        }
    }
}

impl Target for ModelTarget {
    fn name(&self) -> &'static str {
        "model"
    }

    fn add_task(&mut self, width: Width, initial: u64, maximum: Option<u64>) -> usize {
        let config = KernelConfig::default();
        let map_limit = map_limit_of(
            width,
            maximum,
            config.memory64_map_limit,
            config.memory_limit,
        );
        let task = self
            .model
            .add_task(width, self.page_size, initial * WASM_PAGE, map_limit);
        // The harness's memories are populated: every page is resident.
        let pages = (initial * WASM_PAGE / self.page_size) as usize;
        self.model.set_resident(task, vec![true; pages]);
        self.model.set_can_share(task, self.can_share);
        task
    }

    fn call(&mut self, task: usize, call: &Call) -> Outcome {
        self.model.call(task, call)
    }

    fn read(&self, task: usize, addr: u64, len: usize) -> Vec<u8> {
        let a = addr as usize;
        self.model.memory(task)[a..a + len].to_vec()
    }

    fn write(&mut self, task: usize, addr: u64, bytes: &[u8]) {
        // A guest's store: seen through every mapping of a shared page.
        self.model.poke(task, addr as usize, bytes);
    }

    fn memory_size(&self, task: usize) -> u64 {
        self.model.memory(task).len() as u64
    }

    fn page(&self, task: usize, index: u64) -> Option<PageAttrs> {
        self.model.page(task, index)
    }

    fn grow(&mut self, task: usize, delta: u64) -> Option<u64> {
        self.model.grow(task, delta)
    }

    fn insert_send_right(&mut self, from: usize, to: usize) -> MachPort {
        self.model.insert_send_right(from, to)
    }

    fn copy_send_right(&mut self, from: usize, name: MachPort, into: usize) -> Option<MachPort> {
        self.model.copy_send_right(from, name, into)
    }
}
