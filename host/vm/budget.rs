//! The process-wide mapping budget (spec §7 "Mappings").
//!
//! Every hardware protection boundary inside an enforced linear memory splits a kernel
//! mapping, and Linux allows a process `vm.max_map_count` of them. machvm counts, per
//! enforced task, the boundaries its protections create (see [`crate::vm`]'s `change`), and
//! keeps the sum across every kernel of the process under a budget, with the mappings that
//! backed memories' extents add (`crate::share::backing`: an alias or a fresh range is a
//! mapping of its own): a table change that
//! would pass it answers `KERN_RESOURCE_SHORTAGE` and changes nothing, before `mprotect`
//! could run out and leave the rest of the process (Wasmtime, WASI, the allocator, threads)
//! without mappings. See `docs/enforcement.md` for the default.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget; `UNSET` until first asked for or set.
static BUDGET: AtomicUsize = AtomicUsize::new(UNSET);
/// The sum of every live enforced task's count.
static IN_USE: AtomicUsize = AtomicUsize::new(0);

const UNSET: usize = usize::MAX;

/// `vm.max_map_count` when /proc cannot tell (Linux's default).
const DEFAULT_MAX_MAP_COUNT: usize = 65_530;

/// Sets the number of kernel mappings that the page protections of every enforced task of
/// the process may create together (the process-wide mapping budget).
///
/// A table change that would take the total past it answers `KERN_RESOURCE_SHORTAGE` and
/// changes nothing; changes that remove boundaries always succeed. Setting a budget below
/// [`mappings_in_use`] takes nothing away: it only refuses changes that add boundaries until
/// the total is below it again. Set it above what the operating system allows and a change
/// may still fail in `mprotect`, which machvm then undoes the same way.
///
/// The default is half of `vm.max_map_count` (see [`mapping_budget`]).
pub fn set_mapping_budget(mappings: usize) {
    BUDGET.store(mappings.min(UNSET - 1), Ordering::SeqCst);
}

/// The process-wide mapping budget (see [`set_mapping_budget`]).
///
/// Unless set, it is half of `/proc/sys/vm/max_map_count`, read at the first use (65,530,
/// Linux's default, when it cannot be read): 32,765 mappings with Linux's default. The
/// other half is the reserve for the rest of the process: Wasmtime's own mappings (about
/// two per live linear memory, plus code, signal and thread stacks), the allocator, WASI
/// and the embedder.
pub fn mapping_budget() -> usize {
    match BUDGET.load(Ordering::SeqCst) {
        UNSET => {
            let default = default_budget();
            // Another thread (or a setter) may have got there first: keep what it stored.
            match BUDGET.compare_exchange(UNSET, default, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => default,
                Err(set) => set,
            }
        }
        b => b,
    }
}

/// The number of kernel mappings that the page protections of the process's live enforced
/// tasks account for now (a conservative count: at least the number the kernel made).
pub fn mappings_in_use() -> usize {
    IN_USE.load(Ordering::SeqCst)
}

/// Half of `vm.max_map_count`.
fn default_budget() -> usize {
    let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_MAX_MAP_COUNT);
    max / 2
}

/// Takes `n` more mappings if the total stays within the budget; false (nothing taken)
/// otherwise. Allocates nothing.
pub(crate) fn try_take(n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let budget = mapping_budget();
    IN_USE
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            used.checked_add(n).filter(|&total| total <= budget)
        })
        .is_ok()
}

/// Takes `n` more mappings whatever the budget (for changes that have happened already).
pub(crate) fn force_take(n: usize) {
    IN_USE.fetch_add(n, Ordering::SeqCst);
}

/// Gives back `n` mappings taken before.
pub(crate) fn give_back(n: usize) {
    let _ = IN_USE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
        Some(used.saturating_sub(n))
    });
}
