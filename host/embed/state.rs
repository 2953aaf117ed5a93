//! One task's state in its kernel, and the invariants it keeps: its memory's hardware
//! protection follows its table ([`Task::mirror`], [`Task::stop`], [`Task::release_hardware`]),
//! and its copy-window globals follow its windows ([`Task::window_values`]).
//!
//! Only this file touches the fields those invariants bind; the rest of `embed` asks.

use std::sync::Arc;

use wasmtime::{Global, Memory, Val};

use crate::abi::Width;
use crate::enforce::{FaultRecord, Protected};
use crate::vm::TaskVm;

/// One task: its VM state and, once known, its linear memory.
#[derive(Debug)]
pub(crate) struct Task {
    /// The table, windows and port namespace. Its table changes only through `vm::call`
    /// and the host API, which mirror each change through [`Task::mirror`].
    pub(crate) vm: TaskVm,
    pub(crate) memory: Option<Memory>,
    /// Name of the export holding the memory, to find it while the instance is starting.
    pub(crate) memory_export: Option<String>,
    /// Whether the table is mirrored in hardware.
    enforce: bool,
    /// The memory's base and size when protections were last applied (0, 0: never).
    hw_base: usize,
    hw_size: usize,
    /// The memory's base address when the engine guarantees it never moves (see
    /// [`super::kernel::memory_never_moves`]), for the calls' fast paths; 0 when unknown or
    /// movable.
    fixed_base: usize,
    /// The globals that hold the task's copy windows in wasm (read lo, hi, write lo, hi:
    /// [`crate::enforce::rewrite::WINDOW_GLOBALS`]), when its module serves copies in wasm;
    /// they follow [`TaskVm::windows`].
    window_globals: Option<[Global; 4]>,
    /// The task's instantiation failed: it is no task any more (its id stays taken, so
    /// that no function made for it can ever reach another task).
    gone: bool,
    /// Its hardware protection could not be brought back in line with its table: its memory
    /// is made inaccessible and every call it makes traps; it runs no guest code that
    /// touches memory again.
    stopped: bool,
    /// Where its write-only pages wait for their first store (the store's signal handler
    /// shares it), when they are inaccessible until then ([`TaskVm::write_only_faults`]).
    write_only: Option<Arc<FaultRecord>>,
}

impl Task {
    /// A task with VM state `vm`, whose table is mirrored in hardware when `enforce`, with
    /// `write_only` the record of its write-only pages when they fault until written.
    pub(crate) fn new(
        vm: TaskVm,
        memory: Option<Memory>,
        memory_export: Option<String>,
        enforce: bool,
        write_only: Option<Arc<FaultRecord>>,
    ) -> Task {
        Task {
            vm,
            memory,
            memory_export,
            enforce,
            hw_base: 0,
            hw_size: 0,
            fixed_base: 0,
            window_globals: None,
            gone: false,
            stopped: false,
            write_only,
        }
    }

    /// Whether the task's table is mirrored in hardware.
    pub(crate) fn enforced(&self) -> bool {
        self.enforce
    }

    /// Whether the task's hardware fell out of line with its table ([`Task::stop`]).
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Whether the task's instantiation failed ([`Task::retire`]).
    pub(crate) fn gone(&self) -> bool {
        self.gone
    }

    /// The memory's base when the engine never moves it; 0 when unknown or movable.
    pub(crate) fn fixed_base(&self) -> usize {
        self.fixed_base
    }

    /// Records `base` as the memory's base, which the engine never moves.
    pub(crate) fn set_fixed_base(&mut self, base: usize) {
        self.fixed_base = base;
    }

    /// The memory's base and size where its protections were last applied, for an
    /// enforced task that has had them applied.
    pub(crate) fn hardware(&self) -> Option<(usize, usize)> {
        (self.enforce && self.hw_base != 0).then_some((self.hw_base, self.hw_size))
    }

    /// The globals of the task's copy windows, when its module serves copies in wasm.
    pub(crate) fn window_globals(&self) -> Option<[Global; 4]> {
        self.window_globals
    }

    /// Makes the task serve copies in wasm through `globals` (read lo, hi, write lo, hi),
    /// which hold closed windows now: set once, when the task is made.
    pub(crate) fn serve_windows(&mut self, globals: [Global; 4]) {
        self.window_globals = Some(globals);
    }

    /// What each window global must hold for the globals to follow the windows of the
    /// table; `None` when the task has no globals. Whoever changes the windows
    /// (`vm::open_windows`, `vm::close_windows`) sets these before the guest runs again.
    pub(crate) fn window_values(&self) -> Option<[(Global, Val); 4]> {
        let globals = self.window_globals?;
        let [(rlo, rhi), (wlo, whi)] = self.vm.windows();
        let w64 = self.vm.width() == Width::W64;
        // Windows of a 32-bit memory end below 2^32 (`vm::window`): the i32 holds them.
        let val = |v: u64| {
            if w64 {
                Val::I64(v as i64)
            } else {
                Val::I32(v as u32 as i32)
            }
        };
        let [a, b, c, d] = globals;
        Some([(a, val(rlo)), (b, val(rhi)), (c, val(wlo)), (d, val(whi))])
    }

    /// Makes the hardware protection of the task's pages `[start, end)` follow its table,
    /// for its memory at `base` of `size` bytes now (`protected` records it for the signal
    /// handler, as task `index`); false when `mprotect` refused. Nothing to do for a task
    /// that is not enforced; false for a stopped one, whose memory stays inaccessible.
    ///
    /// # Safety
    ///
    /// `[base, base + size)` is the task's memory's current bytes, in a live mapping of a
    /// memory of the kernel's store, and no Rust reference into them is alive.
    pub(crate) unsafe fn mirror(
        &mut self,
        protected: &Protected,
        index: usize,
        (base, size): (*mut u8, usize),
        start: u64,
        end: u64,
    ) -> bool {
        if self.stopped {
            return false;
        }
        if !self.enforce {
            return true;
        }
        if (self.hw_base, self.hw_size) != (base as usize, size) {
            self.hw_base = base as usize;
            self.hw_size = size;
            protected.set(index, base as usize, size);
        }
        let shift = self.vm.page_shift();
        let end = end.min(size as u64 >> shift);
        if start >= end {
            return true;
        }
        let wo = self.vm.write_only_faults();
        let mut write_only = Vec::new();
        for (s, e, attrs) in self.vm.table().segments(start, end) {
            let flags = crate::enforce::hw_prot_of(attrs, wo);
            // SAFETY: [s, e) pages lie below the memory's current size (clipped above), in
            // the live mapping of the task's memory (this function's contract), which no
            // Rust reference points into.
            if !unsafe { crate::enforce::protect(base, s << shift, (e - s) << shift, flags) } {
                return false;
            }
            if wo && attrs.is_some_and(crate::enforce::is_write_only) {
                write_only.push((base as usize + (s << shift) as usize, (e - s) as usize));
            }
        }
        // The write-only pages of the range wait for their first store again.
        if let Some(record) = &self.write_only {
            let (lo, hi) = (
                base as usize + (start << shift) as usize,
                base as usize + (end << shift) as usize,
            );
            record.write_only.replace(lo, hi, &write_only, 1 << shift);
        }
        true
    }

    /// Makes the task's bytes `[addr, addr + len)`, which its table allows writing,
    /// writable in hardware before host code writes them (a write-only page waits for its
    /// first store inaccessible); false when the mapping budget refused.
    pub(crate) fn prepare_write(&self, addr: u64, len: u64) -> bool {
        match &self.write_only {
            // Only pages the table allows writing are written, which are inside the memory
            // whose protections were last set at `hw_base`.
            Some(record) if self.hw_base != 0 => {
                let addr = self.hw_base.saturating_add(addr as usize);
                record.write_only.write(addr, len as usize)
            }
            _ => true,
        }
    }

    /// Stops the task, whose hardware could not be brought back in line with its table:
    /// every later call traps, and its memory becomes inaccessible, so that no page stays
    /// more open than the table says. (Its windows must be closed first.) False when the
    /// memory could not be made inaccessible.
    #[must_use]
    pub(crate) fn stop(&mut self) -> bool {
        self.stopped = true;
        self.forget_write_only();
        if self.hw_base != 0 {
            // SAFETY: [hw_base, hw_base + hw_size) is the accessible part of this task's
            // live memory (where `mirror` last applied its protections); no Rust reference
            // into it is alive during a host call. Making it inaccessible merges its
            // mappings (it needs none of its own).
            let none = rustix::mm::MprotectFlags::empty();
            return unsafe {
                crate::enforce::protect(self.hw_base as *mut u8, 0, self.hw_size as u64, none)
            };
        }
        true
    }

    /// Gives the task's memory back the read-write protection Wasmtime left it with, and its
    /// mappings back to the process's budget, and stops mirroring the table: the memory is
    /// no longer governed (its kernel goes away, or its instantiation failed).
    pub(crate) fn release_hardware(&mut self) {
        // The memory is read-write again below (or was never protected): its boundaries
        // leave the process's mapping budget, and so do its written write-only pages.
        crate::vm::release_mappings(&mut self.vm);
        self.forget_write_only();
        if self.enforce && self.hw_base != 0 {
            let flags = rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE;
            // SAFETY: [hw_base, hw_base + hw_size) is the accessible part of a memory of
            // this kernel's store, still mapped while the store lives (the kernel is dropped
            // before the store's memories, and a failed instantiation leaves them alive);
            // making it read-write again is what Wasmtime expects of it.
            unsafe {
                crate::enforce::protect(self.hw_base as *mut u8, 0, self.hw_size as u64, flags)
            };
        }
        self.hw_base = 0;
        self.hw_size = 0;
    }

    /// Retires a task whose instantiation failed: its memory is given back
    /// ([`Task::release_hardware`]) and its id stays taken by no task.
    pub(crate) fn retire(&mut self) {
        self.release_hardware();
        self.gone = true;
    }

    /// Forgets the task's write-only pages, giving back the mappings of those written (its
    /// whole memory is about to get one protection).
    fn forget_write_only(&mut self) {
        if let Some(record) = &self.write_only {
            if self.hw_base != 0 {
                let end = self.hw_base + self.hw_size;
                record.write_only.replace(self.hw_base, end, &[], 1);
            }
        }
    }

    /// Makes the task's write-only pages no task's (its kernel leaves a store that keeps
    /// the memory): a store there then traps instead of being let through.
    pub(crate) fn disown_write_only(&self) {
        if let Some(record) = &self.write_only {
            record
                .write_only
                .forget(self.hw_base, self.hw_base + self.hw_size);
        }
    }

    /// The mappings the task's written write-only pages took from the process's budget.
    pub(crate) fn write_only_mappings(&self) -> usize {
        match &self.write_only {
            Some(record) if self.hw_base != 0 => {
                let end = self.hw_base + self.hw_size;
                record.write_only.written_in(self.hw_base, end) * crate::enforce::MAPPINGS_PER_STORE
            }
            _ => 0,
        }
    }
}
