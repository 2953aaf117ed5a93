//! The fast paths' tests and the copy windows: what lets a guest's `vm_copy` and bulk-memory
//! checks skip the full path when the table certainly allows them.

use super::{Env, TaskId, TaskVm};
use crate::abi::*;

/// The fast path's test of one range: `[addr, addr + size)` (size > 0) of the task lies
/// inside the memory bytes the table knows, which lie below `2^w`, and is allocated with
/// `prot`. True means every check of [`call`](super::call) on that range passes (it does not wrap `w`,
/// nor round up to `2^w`, and the table allows it); false means nothing (the full path
/// decides).
///
/// All in 64-bit arithmetic: `known_size` is a multiple of 64 KiB below `2^w`, so a range
/// ending inside it cannot wrap, and its rounded end is inside it too.
#[inline]
fn fast_range(vm: &TaskVm, addr: u64, size: u64, w: Width, prot: VmProt) -> bool {
    fast_range_where(vm, addr, size, w, |a| a.cur & prot == prot)
}

/// [`fast_range`] with the pages' test `ok`.
#[inline]
fn fast_range_where(
    vm: &TaskVm,
    addr: u64,
    size: u64,
    w: Width,
    ok: impl Fn(PageAttrs) -> bool,
) -> bool {
    let Some(end) = addr.checked_add(size) else {
        return false;
    };
    let below_limit = match w {
        Width::W32 => vm.known_size < 1 << 32,
        Width::W64 => true,
    };
    let (s, e) = vm.pages(addr, size);
    below_limit && end <= vm.known_size && vm.table.allows_where(s, e, ok)
}

/// What a page must be to be written by a copy served without the full path: readable and
/// writable ([`FAST_WRITE`]) and private. A page of a shared object may alias other pages of
/// the destination or the source, which only the full path's write, page by page after a
/// whole read, gets right (spec §8).
#[inline]
fn fast_write(a: PageAttrs) -> bool {
    a.cur & FAST_WRITE == FAST_WRITE && a.share == 0
}

/// The fast path of `vm_copy` / `mach_vm_copy` (address width `w`) on the caller's own task,
/// which is what a guest copying its own memory does: true when [`call`](super::call) would certainly
/// answer `KERN_SUCCESS` (`port` is `mach_task_self`'s name, and the size is 0 or both
/// ranges are allocated and readable / writable inside the known memory bytes). Then the
/// caller may do the `memmove` itself. False decides nothing: run [`call`](super::call).
///
/// It reads the table and never changes it (no sync: the table may not know the newest
/// pages yet, which only makes the test say false).
#[inline]
pub fn copy_succeeds(vm: &TaskVm, port: MachPort, src: u64, size: u64, dst: u64, w: Width) -> bool {
    port == TASK_SELF_NAME
        && (size == 0
            || (fast_range(vm, src, size, w, VM_PROT_READ)
                && fast_range_where(vm, dst, size, w, fast_write)))
}

/// What the fast paths and the copy windows need of a page to write it without the full
/// path: read and write, so never a write-only page, which may be inaccessible in hardware
/// until its first store ([`Env::prepare_write`] makes it writable on the full path).
pub const FAST_WRITE: VmProt = VM_PROT_READ.union(VM_PROT_WRITE);

/// The fast path's test of `[addr, addr + len)` (len > 0) of the task's own memory, in its
/// own width: true when it lies inside the memory bytes the table knows (so in bounds) and
/// the table allows `prot` on every page, so that every check of it passes: a scalar
/// parameter's (WRITE for a store) or a bulk-memory instruction's. False decides nothing.
#[inline]
pub fn allows_fast(vm: &TaskVm, addr: u64, len: u64, prot: VmProt) -> bool {
    fast_range(vm, addr, len, vm.width, prot)
}

/// How many runs on each side of its own a window may reach across: opening a window costs
/// a walk over them, once per table change that closed it.
const WINDOW_RUNS: usize = 16;

/// The widest window around `[addr, addr + size)` (size > 0) of pages that the table
/// allocates with `prot`, inside the memory bytes it knows and, for a 32-bit memory, ending
/// below `2^32` (its last page is left out, so that `hi` fits the window's i32 global and no
/// range inside wraps or rounds up to `2^32`). `None` when the range is not inside one.
pub fn window(vm: &TaskVm, addr: u64, size: u64, prot: VmProt) -> Option<(u64, u64)> {
    let shift = vm.page_shift;
    // A window that writes holds only private pages (see `fast_write`).
    let ok =
        |a: PageAttrs| a.cur & prot == prot && (!prot.intersects(VM_PROT_WRITE) || a.share == 0);
    let span = vm.table.span_where(addr >> shift, ok, WINDOW_RUNS)?;
    let mut end = span.end.min(vm.known_size >> shift);
    if vm.width == Width::W32 {
        end = end.min((1u64 << (32 - shift)) - 1);
    }
    // `end` is at most the known size in pages, so the shift cannot overflow.
    let w = (span.start << shift, end << shift);
    holds(w, addr, size).then_some(w)
}

/// True when window `(lo, hi)` holds `[addr, addr + size)`: `lo <= addr < hi` and
/// `addr + size <= hi`, as the wasm side of [`crate::enforce::rewrite`] tests it (a closed window,
/// `lo == hi`, holds nothing).
fn holds((lo, hi): (u64, u64), addr: u64, size: u64) -> bool {
    lo <= addr && addr < hi && size <= hi - addr
}

/// True when task `vm`'s read window holds `[src, src + size)` (or there is no source) and
/// its write window holds `[dst, dst + size)`: [`open_windows`] would change nothing.
#[inline]
pub fn windows_hold(vm: &TaskVm, src: Option<u64>, size: u64, dst: u64) -> bool {
    src.is_none_or(|s| holds(vm.windows[0], s, size)) && holds(vm.windows[1], dst, size)
}

/// After a `vm_copy` of task `vm`'s own memory from `[src, src + size)` to
/// `[dst, dst + size)` succeeded (size > 0), or a bulk-memory instruction's check passed
/// (no source for `memory.fill` and `memory.init`), opens the read window around the source
/// and the write window around the destination, where they do not cover them yet and the
/// table allows ([`window`]). Returns true when a window changed.
///
/// The windows let the guest serve later copies and checks inside them without a host call
/// ([`crate::enforce::rewrite`]): [`call`](super::call) closes every window that a table change overlaps, before
/// the change, and tells the [`Env`] ([`Env::windows_closed`]).
pub fn open_windows(vm: &mut TaskVm, src: Option<u64>, size: u64, dst: u64) -> bool {
    let mut changed = false;
    let ranges = [(0, src, VM_PROT_READ), (1, Some(dst), FAST_WRITE)];
    for (k, addr, prot) in ranges {
        let Some(addr) = addr else { continue };
        if holds(vm.windows[k], addr, size) {
            continue;
        }
        if let Some(w) = window(vm, addr, size, prot) {
            vm.windows[k] = w;
            changed = true;
        }
    }
    changed
}

/// Closes task `t`'s copy windows that overlap its pages `[start, end)` (which are about to
/// change), and tells the [`Env`] when one closed.
pub fn close_windows<E: Env + ?Sized>(env: &mut E, t: TaskId, start: u64, end: u64) {
    let vm = env.vm(t);
    let shift = vm.page_shift;
    let mut closed = false;
    for w in &mut vm.windows {
        if w.0 < w.1 && (w.0 >> shift) < end && start < (w.1 >> shift) {
            w.1 = w.0;
            closed = true;
        }
    }
    if closed {
        env.windows_closed(t);
    }
}
