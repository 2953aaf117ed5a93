//! A store as the semantics' environment: [`StoreEnv`] implements [`vm::Env`] over a
//! Wasmtime store, with the unsafe code that reads and writes a task's memory.

use std::ptr;
use std::sync::Arc;

use rustix::mm::ProtFlags;

use wasmtime::{AsContextMut, Memory, StoreContextMut};

use super::funcs::publish_windows;
use super::GetKernel;
#[cfg(feature = "wasi")]
use super::{funcs::task_stopped, task::find_task};
use crate::share::backing::{Held, MemoryMap, PlaceError, Source};
use crate::trace::ParamLog;
use crate::vm::{self, Env, TaskId, TaskVm, WASM_PAGE};
/// [`Env`] over a store: the tasks' state in the kernel, their bytes in their memories.
pub(crate) struct StoreEnv<'a, T: 'static, G> {
    pub(crate) cx: StoreContextMut<'a, T>,
    pub(crate) get: G,
    /// The parameter values of the running call, collected only while it is traced.
    pub(crate) log: Option<ParamLog>,
    /// Base and size of the memories this call touched (at most two tasks: the caller and
    /// the target), so that each costs one store lookup per call. Cleared by a grow.
    cache: [Option<(TaskId, *mut u8, u64)>; 2],
}

impl<'a, T: 'static, G: GetKernel<T>> StoreEnv<'a, T, G> {
    /// An environment over `cx` that does not trace.
    pub(crate) fn new(cx: StoreContextMut<'a, T>, get: G) -> Self {
        StoreEnv {
            cx,
            get,
            log: None,
            cache: [None; 2],
        }
    }

    fn memory(&mut self, t: TaskId) -> Option<Memory> {
        (self.get)(self.cx.data_mut())
            .tasks
            .get(t.index())
            .and_then(|t| t.memory)
    }

    /// The memory's bytes as a raw pointer and length (cached for the rest of the call).
    fn raw(&mut self, t: TaskId) -> Option<(*mut u8, u64)> {
        for (tc, p, l) in self.cache.iter().flatten() {
            if *tc == t {
                return Some((*p, *l));
            }
        }
        if (self.get)(self.cx.data_mut()).tasks[t.index()].stopped() {
            // Its memory is inaccessible: no byte of it is touched any more.
            return None;
        }
        let m = self.memory(t)?;
        // One store lookup for both (`data_ptr` and `data_size` would make two).
        let bytes = m.data_mut(&mut self.cx);
        let (base, size) = (bytes.as_mut_ptr(), bytes.len() as u64);
        // An enforced memory never moves: tasks are refused on engines whose memories may
        // (`kernel::check_engine`).
        let slot = if self.cache[0].is_none() { 0 } else { 1 };
        self.cache[slot] = Some((t, base, size));
        Some((base, size))
    }

    /// The extents of task `t`'s memory, when it is a backed memory (spec §8) and the task
    /// runs.
    fn backed(&mut self, t: TaskId) -> Option<Arc<MemoryMap>> {
        let (base, _) = self.raw(t)?;
        MemoryMap::of(base)
    }

    /// `f` over task `t`'s extents and `plan` in bytes and memories (what
    /// [`MemoryMap::replace`] takes); `None` when a task's memory is not backed.
    fn with_parts<R>(
        &mut self,
        t: TaskId,
        plan: &[(u64, vm::Fill)],
        f: impl FnOnce(&MemoryMap, &[(usize, Source<'_>)]) -> R,
    ) -> Option<R> {
        let map = self.backed(t)?;
        let shift = self.vm(t).page_shift();
        let mut maps = Vec::new();
        let mut helds = Vec::new();
        for &(_, fill) in plan {
            match fill {
                vm::Fill::Share { task, .. } | vm::Fill::Copy { task, .. } => {
                    maps.push(self.backed(task)?);
                }
                vm::Fill::Entry { entry, .. } | vm::Fill::EntryCopy { entry, .. } => {
                    let kernel = (self.get)(self.cx.data_mut());
                    helds.push(kernel.held.get(&entry)?.clone());
                }
                vm::Fill::Fresh | vm::Fill::Keep => {}
            }
        }
        let (mut from, mut held) = (maps.iter(), helds.iter());
        let mut parts = Vec::with_capacity(plan.len());
        for &(pages, fill) in plan {
            let len = (pages << shift) as usize;
            let source = match fill {
                vm::Fill::Fresh => Source::Fresh,
                vm::Fill::Keep => Source::Keep,
                vm::Fill::Share { addr, .. } => Source::Share(from.next()?, addr as usize),
                vm::Fill::Copy { addr, .. } => Source::Copy(from.next()?, addr as usize),
                vm::Fill::Entry { offset, .. } => Source::Held(held.next()?, offset as usize),
                vm::Fill::EntryCopy { offset, .. } => {
                    Source::HeldCopy(held.next()?, offset as usize)
                }
            };
            parts.push((len, source));
        }
        Some(f(&map, &parts))
    }

    /// The pointer to `[addr, addr + len)` of task `t`'s memory, when it lies inside.
    fn range(&mut self, t: TaskId, addr: u64, len: usize) -> Option<*mut u8> {
        let (base, size) = self.raw(t)?;
        let end = addr.checked_add(len as u64)?;
        // `addr < size <= isize::MAX` once the range is inside, so the cast is exact.
        (end <= size).then(|| base.wrapping_add(addr as usize))
    }
}

impl<T: 'static, G: GetKernel<T>> Env for StoreEnv<'_, T, G> {
    fn vm(&mut self, t: TaskId) -> &mut TaskVm {
        &mut (self.get)(self.cx.data_mut()).tasks[t.index()].vm
    }

    fn windows_closed(&mut self, t: TaskId) {
        publish_windows(self.cx.as_context_mut(), self.get, t);
    }

    fn memory_size(&mut self, t: TaskId) -> u64 {
        self.raw(t).map_or(0, |(_, size)| size)
    }

    fn enforcing(&mut self, t: TaskId) -> bool {
        (self.get)(self.cx.data_mut()).tasks[t.index()].enforced()
    }

    fn mirror(&mut self, t: TaskId, start: u64, end: u64) -> bool {
        if (self.get)(self.cx.data_mut()).tasks[t.index()].stopped() {
            // A stopped task's memory stays inaccessible.
            return false;
        }
        let Some(m) = self.memory(t) else {
            return true;
        };
        let base = m.data_ptr(&self.cx);
        let size = m.data_size(&self.cx);
        let kernel = (self.get)(self.cx.data_mut());
        let (protected, task) = (&kernel.protected, &mut kernel.tasks[t.index()]);
        // SAFETY: `base` and `size` are the task's memory's current bytes, a live memory of
        // this store; no Rust reference into them is alive during a host call's change.
        unsafe { task.mirror(protected, t.index(), (base, size), start, end) }
    }

    fn resident(&mut self, t: TaskId, first: u64, n: u64) -> Vec<bool> {
        let shift = self.vm(t).page_shift();
        let page = self.vm(t).page_size();
        match self.raw(t) {
            // The pages are inside the memory (the caller's promise); check it all the same.
            Some((base, size)) if (first + n) << shift <= size => {
                crate::enforce::resident(base as usize + (first << shift) as usize, page, n)
            }
            _ => vec![false; n as usize],
        }
    }

    fn tasks(&mut self) -> Vec<TaskId> {
        let kernel = (self.get)(self.cx.data_mut());
        (0..kernel.tasks.len())
            .map(|i| kernel.id_of(i))
            .filter(|&t| kernel.live_here(t).is_some_and(|t| t.memory.is_some()))
            .collect()
    }

    fn prepare_write(&mut self, t: TaskId, addr: u64, len: u64) -> bool {
        (self.get)(self.cx.data_mut()).tasks[t.index()].prepare_write(addr, len)
    }

    fn out_of_line(&mut self, t: TaskId) {
        // No window may serve a copy any more, and no page may stay accessible: the
        // hardware no longer says what the table says.
        vm::close_windows(self, t, 0, u64::MAX);
        self.cache = [None; 2];
        if !(self.get)(self.cx.data_mut()).tasks[t.index()].stop() {
            tracing::error!(target: "machvm::enforce", "could not make task {t:?}'s memory inaccessible");
        }
    }

    fn grow_memory(&mut self, t: TaskId, new_size: u64) -> bool {
        let Some(m) = self.memory(t) else {
            return false;
        };
        let cur = m.data_size(&self.cx) as u64;
        if new_size <= cur {
            return true;
        }
        self.cache = [None; 2];
        m.grow(&mut self.cx, (new_size - cur).div_ceil(WASM_PAGE))
            .is_ok()
    }

    fn copy(&mut self, src_task: TaskId, src: u64, dst_task: TaskId, dst: u64, len: u64) -> bool {
        let src_raw = self.raw(src_task);
        let dst_raw = if dst_task == src_task {
            src_raw
        } else {
            self.raw(dst_task)
        };
        let (Some((sp, sl)), Some((dp, dl))) = (src_raw, dst_raw) else {
            return false;
        };
        let fits = |a: u64, l: u64| a.checked_add(len).is_some_and(|e| e <= l);
        if !fits(src, sl) || !fits(dst, dl) {
            return false;
        }
        // SAFETY: both ranges were just checked to lie inside their memories' current
        // bytes (`data_ptr`/`data_size` of live memories of this store, which we hold
        // exclusively through `&mut self.cx`, so nothing else accesses them meanwhile), and
        // `ptr::copy` is a memmove: the ranges may overlap (same task, or two tasks made of
        // one memory). The offsets fit in usize because they are below the memory sizes.
        unsafe {
            ptr::copy(sp.add(src as usize), dp.add(dst as usize), len as usize);
        }
        true
    }

    fn zero(&mut self, t: TaskId, addr: u64, len: u64) -> bool {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let Some(p) = self.range(t, addr, len) else {
            return false;
        };
        // SAFETY: `range` checked that [addr, addr + len) lies inside the memory's current
        // bytes; the store is borrowed exclusively, so nothing else touches them.
        unsafe { ptr::write_bytes(p, 0, len) };
        true
    }

    fn purge_zero(&mut self, t: TaskId, addr: u64, len: u64) -> bool {
        let Ok(n) = usize::try_from(len) else {
            return false;
        };
        let Some(p) = self.range(t, addr, n) else {
            return false;
        };
        if (self.get)(self.cx.data_mut()).tasks[t.index()]
            .hardware()
            .is_none()
        {
            return self.zero(t, addr, len);
        }
        // The pages may be read-only or inaccessible in hardware: write through the kernel,
        // which ignores a private mapping's protection (as a debugger writes), or, where it
        // is not allowed to, lift the protection for the time of the write.
        if crate::enforce::write_zeroes_ignoring_protection(p as usize, n) {
            return true;
        }
        let rw = rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE;
        // SAFETY: [p, p + n) lies inside the memory's current bytes (`range`), page
        // aligned (whole pages of the task); no Rust reference into them is alive.
        if !unsafe { crate::enforce::protect(p, 0, len, rw) } {
            return false;
        }
        // SAFETY: as above, and the range is read-write now.
        unsafe { ptr::write_bytes(p, 0, n) };
        let shift = self.vm(t).page_shift();
        let (s, e) = (addr >> shift, (addr + len) >> shift);
        if !self.mirror(t, s, e) {
            self.out_of_line(t);
        }
        true
    }

    fn load(&mut self, t: TaskId, addr: u64, buf: &mut [u8]) -> bool {
        let Some(p) = self.range(t, addr, buf.len()) else {
            return false;
        };
        // SAFETY: as in `zero`; `buf` is host memory, disjoint from the guest's.
        unsafe { ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
        true
    }

    fn store(&mut self, t: TaskId, addr: u64, bytes: &[u8]) -> bool {
        let Some(p) = self.range(t, addr, bytes.len()) else {
            return false;
        };
        // SAFETY: as in `zero`; `bytes` is host memory, disjoint from the guest's.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        true
    }

    fn can_share(&mut self, t: TaskId) -> bool {
        self.backed(t).is_some()
    }

    fn new_share(&mut self) -> u32 {
        let kernel = (self.get)(self.cx.data_mut());
        match kernel.last_share.checked_add(1) {
            Some(id) if !kernel.shares_wrapped => kernel.last_share = id,
            // After 2^32 - 1 objects: each time the lowest id no page of the kernel's tasks
            // has.
            _ => {
                kernel.shares_wrapped = true;
                // The objects of live memory entries are in use too.
                let used: std::collections::BTreeSet<u32> = kernel
                    .tasks
                    .iter()
                    .flat_map(|t| t.vm.table().runs().map(|r| r.attrs.share))
                    .chain(kernel.entries.shares())
                    .collect();
                kernel.last_share = (1..=u32::MAX).find(|id| !used.contains(id)).unwrap_or(1);
            }
        }
        kernel.last_share
    }

    fn entries(&mut self) -> Option<&mut vm::Entries> {
        Some(&mut (self.get)(self.cx.data_mut()).entries)
    }

    fn hold(&mut self, e: vm::EntryId, how: vm::Hold) -> bool {
        let held = match how {
            vm::Hold::Fresh { len } => usize::try_from(len)
                .map_err(|_| ())
                .and_then(|len| Held::fresh(len).map_err(|_| ())),
            vm::Hold::Share { task, addr, len } | vm::Hold::Copy { task, addr, len } => {
                let Some(map) = self.backed(task) else {
                    return false;
                };
                let (at, len) = (addr as usize, len as usize);
                if matches!(how, vm::Hold::Share { .. }) {
                    map.hold(at, len).map_err(|_| ())
                } else {
                    map.hold_copy(at, len).map_err(|_| ())
                }
            }
            vm::Hold::Part { entry, offset, len } => {
                let kernel = (self.get)(self.cx.data_mut());
                match kernel.held.get(&entry) {
                    Some(parent) => parent.part(offset as usize, len as usize).map_err(|_| ()),
                    None => Err(()),
                }
            }
        };
        match held {
            Ok(held) => {
                let kernel = (self.get)(self.cx.data_mut());
                kernel.held.insert(e, Arc::new(held));
                true
            }
            Err(()) => false,
        }
    }

    fn release_entry(&mut self, e: vm::EntryId) {
        (self.get)(self.cx.data_mut()).held.remove(&e);
    }

    fn back(&mut self, t: TaskId, addr: u64, plan: &[(u64, vm::Fill)]) -> vm::Backed {
        // An enforced task's pages stay inaccessible until its table is mirrored over them.
        let prot = if self.enforcing(t) {
            ProtFlags::empty()
        } else {
            ProtFlags::READ | ProtFlags::WRITE
        };
        let placed = self.with_parts(t, plan, |map, parts| {
            map.replace(addr as usize, parts, prot)
        });
        match placed {
            Some(Ok(())) => vm::Backed::Done,
            Some(Err(PlaceError::Hole(_))) => vm::Backed::Hole,
            Some(Err(e)) => {
                tracing::debug!(target: "machvm::share", "task {t:?}: {e}");
                vm::Backed::Refused
            }
            None => vm::Backed::Refused,
        }
    }

    fn prepay(&mut self, t: TaskId, addr: u64, plan: &[(u64, vm::Fill)]) -> bool {
        self.with_parts(t, plan, |map, parts| map.prepay(addr as usize, parts))
            .unwrap_or(false)
    }

    fn unprepay(&mut self, t: TaskId) {
        // Even when the change stopped the task: what it prepaid goes back all the same.
        let map = self
            .memory(t)
            .and_then(|m| MemoryMap::of(m.data_ptr(&self.cx)));
        if let Some(map) = map {
            map.unprepay();
        }
    }

    #[inline]
    fn log_param(&mut self, param: &'static str, write: bool, value: u64) {
        if let Some(log) = &mut self.log {
            log.push(param, write, value);
        }
    }
}

/// The task whose memory is `memory`, if any: compared by base address, which is unique
/// among the live memories of a store.
///
/// # Errors
///
/// When the memory is no live task's but still carries a kernel's protections (that kernel
/// was taken out of the store), or the store's kernel was moved: nothing can check an
/// access to it then.
#[cfg(feature = "wasi")]
pub(crate) fn task_of_memory<T: 'static>(
    mut cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    memory: Memory,
) -> wasmtime::Result<Option<TaskId>> {
    let base = memory.data_ptr(&cx) as usize;
    get(cx.data_mut()).check_home()?;
    let found = find_task(&mut cx, get, base);
    if let Some(t) = found {
        if get(cx.data_mut()).tasks[t.index()].stopped() {
            return Err(task_stopped(t));
        }
    }
    if found.is_none() && crate::enforce::governed(base) {
        wasmtime::bail!(
            "machvm: this memory is protected by a kernel that is no longer the store's; no \
             host function may touch it"
        );
    }
    Ok(found)
}

/// Makes task `task`'s bytes `[addr, addr + len)`, which its table allows writing, writable
/// in hardware (see [`Env::prepare_write`]); false when the mapping budget refused.
#[cfg(feature = "wasi")]
pub(crate) fn prepare_task_write<T: 'static>(
    cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    task: TaskId,
    addr: u64,
    len: u64,
) -> bool {
    StoreEnv::new(cx, get).prepare_write(task, addr, len)
}

/// Brings task `task`'s table up to date with its memory (pages the guest grew).
#[cfg(feature = "wasi")]
pub(crate) fn sync_task<T: 'static>(
    cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    task: TaskId,
) {
    vm::sync(&mut StoreEnv::new(cx, get), task);
}

/// Puts task `task` back as it is when made (see [`vm::reset`]); false when it is not a
/// live, running task of the kernel, or cannot be put back.
#[cfg(feature = "testing")]
pub(crate) fn reset_task<T: 'static>(
    mut cx: StoreContextMut<'_, T>,
    get: impl GetKernel<T>,
    task: TaskId,
) -> bool {
    let running = get(cx.data_mut())
        .live(task)
        .is_some_and(|t| !t.stopped() && t.memory.is_some());
    running && vm::reset(&mut StoreEnv::new(cx, get), task)
}
