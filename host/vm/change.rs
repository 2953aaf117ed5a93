//! The table-change transaction: every change of a task's pages goes through [`change`], which
//! checks, accounts for the mapping budget, changes the table and mirrors it in hardware, or
//! changes nothing.

use super::params::check_error_kr;
use super::purgeable::empty_volatile;
use super::windows::close_windows;
use super::{kr, sync, Backed, Env, Fill, Step, TaskId, TaskVm, WASM_PAGE};
use crate::abi::*;
use crate::table::{CheckError, PageTable};

/// The hardware-protection boundaries of `table` for a memory of `k` pages, counted at the
/// pages `i` of `[lo, hi]` inside `[0, k]`: one where pages `i - 1` and `i` have different
/// [`crate::enforce::hw_prot`], the pages just outside the memory (`-1` and `k`) counting as
/// read-write. Nothing is allocated.
///
/// Over `[0, k]` this is what an enforced task accounts for ([`TaskVm::mappings`]): each
/// boundary splits at most one kernel mapping, and the outside pages counting as read-write
/// makes the count an upper bound whatever lies around the memory (Wasmtime's guard pages,
/// or read-write pages a guest `memory.grow` added that the table does not know yet). A
/// change of pages `[start, end)` only moves the boundaries at `start..=end`, so a change
/// is accounted for by this count over those pages, before and after ([`boundaries_around`]).
pub(crate) fn hw_boundaries(table: &PageTable, wo: bool, k: u64, lo: u64, hi: u64) -> u64 {
    boundaries_around(table, wo, k, k, lo, hi, None).0
}

/// Counts boundaries: pages' hardware protections pushed in address order.
#[derive(Default)]
struct Boundaries {
    last: Option<rustix::mm::MprotectFlags>,
    count: u64,
}

impl Boundaries {
    fn push(&mut self, class: rustix::mm::MprotectFlags) {
        if self.last.is_some_and(|l| l != class) {
            self.count += 1;
        }
        self.last = Some(class);
    }
}

/// [`hw_boundaries`] of `[lo, hi]` twice in one walk over the table: as it is, for a memory
/// of `k` pages, and as it would be for a memory of `k2 >= k` pages once `edit`, if given as
/// `(start, end, e)`, changed its pages `[start, end)` (`end` at most the map limit). `wo`:
/// write-only pages are inaccessible ([`crate::enforce::hw_prot_of`]).
pub(super) fn boundaries_around(
    table: &PageTable,
    wo: bool,
    k: u64,
    k2: u64,
    lo: u64,
    hi: u64,
    edit: Option<(u64, u64, &Edit)>,
) -> (u64, u64) {
    let hw_prot = |a| crate::enforce::hw_prot_of(a, wo);
    debug_assert!(k <= k2);
    let (hb, ha) = (hi.min(k), hi.min(k2));
    if lo > ha {
        return (0, 0);
    }
    let outside = hw_prot(Some(PageAttrs::DEFAULT));
    let (mut before, mut after) = (Boundaries::default(), Boundaries::default());
    let counts_before = lo <= hb;
    if lo == 0 {
        if counts_before {
            before.push(outside);
        }
        after.push(outside);
    }
    // The pages lo - 1 ..= hi inside the memory; those below `bound` are in it before too.
    let (s, e) = (lo.saturating_sub(1), (ha + 1).min(k2));
    let bound = if counts_before { (hb + 1).min(k) } else { s };
    let (es, ee) = edit.map_or((e, e), |(es, ee, _)| (es, ee));
    for (a, b, attrs) in table.segments_iter(s, e) {
        // The pieces of the segment outside, inside and past the edited pages.
        let cuts = [a, es.clamp(a, b), ee.clamp(a, b).max(es.clamp(a, b)), b];
        for (i, piece) in cuts.windows(2).enumerate() {
            if piece[0] >= piece[1] {
                continue;
            }
            match edit {
                Some((es, _, edit)) if i == 1 => {
                    edit.each_part(es, piece[0], piece[1], attrs, |new| {
                        after.push(hw_prot(new))
                    })
                }
                _ => after.push(hw_prot(attrs)),
            }
            if piece[0] < bound {
                before.push(hw_prot(attrs));
            }
        }
    }
    if counts_before && hb == k {
        before.push(outside);
    }
    if ha == k2 {
        after.push(outside);
    }
    (before.count, after.count)
}

/// Moves task `vm`'s count of mappings from `from` to `to` (of the same pages), whatever
/// the budget: for changes that have happened (or been undone) already.
pub(super) fn recount(vm: &mut TaskVm, from: u64, to: u64) {
    if to > from {
        crate::vm::budget::force_take((to - from) as usize);
    } else {
        crate::vm::budget::give_back((from - to) as usize);
    }
    vm.mappings = vm.mappings + to - from;
}

/// Gives task `vm`'s mappings back to the process's budget, when its memory stops being
/// enforced (its kernel is dropped).
pub(crate) fn release_mappings(vm: &mut TaskVm) {
    crate::vm::budget::give_back(vm.mappings as usize);
    vm.mappings = 0;
}

/// A change of the pages of a table, as [`change`] makes it.
pub(crate) enum Edit {
    /// The pages become allocated with these attributes (pages at or past the map limit
    /// stay unallocated).
    Set(PageAttrs),
    /// The pages become unallocated, except permanent ones, which lose every access
    /// (cur and max none) and stay.
    Deallocate,
    /// vm_protect's table step ([`PageTable::protect`]).
    Protect {
        /// `set_maximum`.
        set_max: bool,
        /// The new protection, without `VM_PROT_COPY`.
        prot: VmProt,
        /// `VM_PROT_COPY` was asked for.
        copy: bool,
    },
    /// The pages become allocated with these attributes, in order: `(end, attrs)` tiling
    /// the range, each `end` the page its part ends at, counted from the range's start
    /// (`vm_remap`'s new mapping, or its source's pages given an object).
    Segments(Vec<(u64, PageAttrs)>),
}

impl Edit {
    /// What the change makes of a page whose attributes are `a` (for [`Edit::Segments`],
    /// which depends on the page: see [`Edit::each_part`]).
    fn attrs(&self, a: Option<PageAttrs>) -> Option<PageAttrs> {
        match *self {
            Edit::Set(attrs) => Some(attrs),
            Edit::Deallocate => crate::table::deallocated(a),
            Edit::Protect {
                set_max,
                prot,
                copy,
            } => a.map(|a| crate::table::protected(a, set_max, prot, copy)),
            Edit::Segments(_) => a,
        }
    }

    /// Calls `f` with what the change, made from page `start` on, makes of the pages
    /// `[a, b)` (inside its range) whose attributes are `old`, part by part in address
    /// order (one part unless the edit is [`Edit::Segments`]).
    fn each_part(
        &self,
        start: u64,
        a: u64,
        b: u64,
        old: Option<PageAttrs>,
        mut f: impl FnMut(Option<PageAttrs>),
    ) {
        let Edit::Segments(segments) = self else {
            return f(self.attrs(old));
        };
        // The first part that ends past `a`, found by its end (the parts are in order).
        let first = segments.partition_point(|&(end, _)| start + end <= a);
        for &(end, attrs) in &segments[first..] {
            f(Some(attrs));
            if start + end >= b {
                break;
            }
        }
    }

    /// Checks that the change may be made to `[start, end)` (only vm_protect can refuse).
    fn check(&self, table: &PageTable, start: u64, end: u64) -> Result<(), CheckError> {
        match *self {
            Edit::Protect { prot, copy, .. } => {
                let extra = if copy { VM_PROT_WRITE } else { VM_PROT_NONE };
                table.check(start, end, |a| (a.max | extra) & prot == prot)
            }
            Edit::Set(_) | Edit::Deallocate | Edit::Segments(_) => Ok(()),
        }
    }

    /// Makes the change.
    fn apply(&self, table: &mut PageTable, start: u64, end: u64) -> Result<(), CheckError> {
        match *self {
            Edit::Set(attrs) => table.set(start, end, attrs),
            Edit::Segments(ref segments) => {
                let mut pos = start;
                for &(part_end, attrs) in segments {
                    let e = (start + part_end).min(end);
                    table.set(pos, e, attrs);
                    pos = e;
                }
            }
            Edit::Deallocate => {
                table.deallocate(start, end);
            }
            Edit::Protect {
                set_max,
                prot,
                copy,
            } => table.protect(start, end, set_max, prot, copy)?,
        }
        Ok(())
    }
}

/// What backs a range of a task's pages after a change, part by part: `(pages, fill)`
/// in address order (see [`Env::back`]).
pub(crate) type Plan = Vec<(u64, Fill)>;

/// The plan a change of task `t`'s pages `[start, end)` with `edit` needs of its own: the
/// shared pages it turns into private memory (spec §8) get fresh pages (deallocated or
/// replaced) or a private copy (`VM_PROT_COPY`), so that every other mapping of their object
/// keeps its data. `None` when no page of the range is shared (always, on a memory that
/// cannot share). The plan runs from the first such page to the last; the pages between
/// them keep what backs them.
fn unshare_plan(
    table: &PageTable,
    t: TaskId,
    shift: u32,
    start: u64,
    end: u64,
    edit: &Edit,
) -> Option<(u64, Plan)> {
    let mut plan: Plan = Vec::new();
    let mut first = None;
    let mut kept = 0;
    for (a, b, attrs) in table.segments_iter(start, end) {
        let fill = match (attrs, edit) {
            (Some(x), Edit::Deallocate) if x.share != 0 && !x.permanent => Some(Fill::Fresh),
            (Some(x), Edit::Set(_)) if x.share != 0 => Some(Fill::Fresh),
            (Some(x), Edit::Protect { copy: true, .. }) if x.share != 0 => Some(Fill::Copy {
                task: t,
                addr: a << shift,
            }),
            _ => None,
        };
        match fill {
            None if first.is_some() => kept += b - a,
            None => {}
            Some(fill) => {
                first.get_or_insert(a);
                if kept > 0 {
                    plan.push((kept, Fill::Keep));
                    kept = 0;
                }
                plan.push((b - a, fill));
            }
        }
    }
    first.map(|f| (f, plan))
}

/// Changes task `t`'s table over the pages `[start, end)` with `edit`, first growing its
/// memory to `grow_to` bytes if given, then mirrors the change in hardware.
///
/// Everything that can refuse is decided before anything changes: `edit`'s check, then, for
/// an enforced task, the process's mapping budget for the table as it would be (counted over
/// the changed pages only: [`boundaries_around`]), then the growth; a refusal answers its error
/// (`KERN_RESOURCE_SHORTAGE` for the budget and the growth) with the table, the memory and
/// the budget as they were. If `mprotect` fails all the same (a budget set above what the
/// kernel allows), the table (and, as far as it can, the hardware) is put back and the call
/// answers `KERN_RESOURCE_SHORTAGE`: the table and the hardware never disagree. (The memory
/// stays grown then: a wasm memory cannot shrink.)
///
/// Shared pages (spec §8) that the change makes private are given fresh pages or a private
/// copy first ([`unshare_plan`]); see [`change_backed`].
pub(super) fn change<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    start: u64,
    end: u64,
    edit: Edit,
    grow_to: Option<u64>,
) -> Step {
    change_backed(env, t, start, end, edit, grow_to, None)
}

/// [`change`], with what backs the pages from page `plan.0` on replaced by `plan.1` (see
/// [`Env::back`]) once the table is changed and before the hardware protections follow it
/// (the new pages are inaccessible until then). When the plan cannot be carried out (the
/// mapping budget, or the kernel), the table is put back as for a failed `mprotect` and the
/// call answers `KERN_RESOURCE_SHORTAGE`; if the kernel left part of the range unmapped, the
/// task is stopped ([`Env::out_of_line`]).
pub(super) fn change_backed<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    start: u64,
    end: u64,
    edit: Edit,
    grow_to: Option<u64>,
    plan: Option<(u64, Plan)>,
) -> Step {
    let vm = env.vm(t);
    let shift = vm.page_shift;
    let plan = plan.or_else(|| unshare_plan(&vm.table, t, shift, start, end, &edit));
    // A growth cannot be undone: the plan's mappings are taken from the budget first.
    let prepaid = match (&plan, grow_to) {
        (Some((at, parts)), Some(_)) => {
            if !env.prepay(t, at << shift, parts) {
                return kr(KERN_RESOURCE_SHORTAGE);
            }
            true
        }
        _ => false,
    };
    let done = change_planned(env, t, start, end, edit, grow_to, plan);
    if prepaid {
        env.unprepay(t);
    }
    done
}

/// [`change_backed`] once the plan is known (and, for a growth, paid for).
fn change_planned<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    start: u64,
    end: u64,
    edit: Edit,
    grow_to: Option<u64>,
    plan: Option<(u64, Plan)>,
) -> Step {
    close_windows(env, t, start, end);
    let enforcing = env.enforcing(t);
    let vm = env.vm(t);
    let shift = vm.page_shift;
    if !enforcing && grow_to.is_none() {
        // Nothing to count, nothing to grow: `apply` checks, then changes.
        return apply_unmirrored(env, t, start, end, &edit, plan);
    }
    let end = match edit {
        Edit::Set(_) | Edit::Segments(_) => end.min(vm.table.limit()).max(start),
        _ => end,
    };
    edit.check(&vm.table, start, end)
        .or_else(|err| kr(check_error_kr(err)))?;
    let k = vm.known_size >> shift;
    let k2 = grow_to.map_or(k, |size| (size >> shift).max(k));
    // The pages whose hardware state changes: the changed ones, and any grown pages.
    let (lo, hi) = match grow_to {
        Some(_) => (start.min(k), end.max(k2)),
        None => (start, end),
    };
    let counts = if enforcing {
        let wo = vm.write_only_faults;
        let (before, after) =
            boundaries_around(&vm.table, wo, k, k2, lo, hi, Some((start, end, &edit)));
        if after > before && !crate::vm::budget::try_take((after - before) as usize) {
            return kr(KERN_RESOURCE_SHORTAGE);
        }
        if before > after {
            crate::vm::budget::give_back((before - after) as usize);
        }
        vm.mappings = vm.mappings + after - before;
        Some((before, after))
    } else {
        None
    };
    if let Some(size) = grow_to {
        // Refused: the task's volatile memory is emptied (spec §9), and the growth tried
        // once more (an embedder's limiter may count what emptying gave back).
        let grown =
            env.grow_memory(t, size) || (empty_volatile(env, &[t]) > 0 && env.grow_memory(t, size));
        if !grown {
            if let Some((before, after)) = counts {
                recount(env.vm(t), after, before);
            }
            return kr(KERN_RESOURCE_SHORTAGE);
        }
        // The grown pages outside [start, end) stay unallocated (inaccessible): the table
        // is in step with the new size.
        env.vm(t).known_size = k2 << shift;
    }
    let Some((_, after)) = counts else {
        return apply_unmirrored(env, t, start, end, &edit, plan);
    };
    let vm = env.vm(t);
    let saved = vm.table.segments(lo, hi);
    edit.apply(&mut vm.table, start, end)
        .or_else(|err| kr(check_error_kr(err)))?;
    let saved_plan = plan.is_some();
    let backed = match plan {
        Some((at, plan)) => env.back(t, at << shift, &plan),
        None => Backed::Done,
    };
    let planned = backed == Backed::Done && saved_plan;
    if backed != Backed::Done || !env.mirror(t, lo, hi) {
        let vm = env.vm(t);
        vm.table.restore(&saved);
        let now = hw_boundaries(&vm.table, vm.write_only_faults, k2, lo, hi);
        recount(vm, after, now);
        // What backs the pages changed and cannot be put back: the table no longer
        // describes them, so the task stops, as when the hardware cannot be put back.
        if backed == Backed::Hole || planned || !env.mirror(t, lo, hi) {
            tracing::error!(
                target: "machvm::enforce",
                "could not restore the hardware of pages {lo:#x}..{hi:#x}: the task is stopped"
            );
            env.out_of_line(t);
        }
        return kr(KERN_RESOURCE_SHORTAGE);
    }
    Ok(())
}

/// The end of [`change_backed`] for a task whose table is not mirrored in hardware:
/// applies `edit`, then carries out `plan`, putting the table back if it cannot be.
fn apply_unmirrored<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    start: u64,
    end: u64,
    edit: &Edit,
    plan: Option<(u64, Plan)>,
) -> Step {
    let vm = env.vm(t);
    let shift = vm.page_shift;
    let saved = plan.as_ref().map(|_| vm.table.segments(start, end));
    edit.apply(&mut vm.table, start, end)
        .or_else(|err| kr(check_error_kr(err)))?;
    let (Some((at, plan)), Some(saved)) = (plan, saved) else {
        return Ok(());
    };
    let backed = env.back(t, at << shift, &plan);
    if backed != Backed::Done {
        env.vm(t).table.restore(&saved);
        if backed == Backed::Hole {
            env.out_of_line(t);
        }
        return kr(KERN_RESOURCE_SHORTAGE);
    }
    Ok(())
}

/// Maps `[s, e)` (pages) of task `t` as new zeroed memory with `attrs`, growing the memory
/// when needed (only once everything else that can refuse has agreed: see [`change`]).
pub(super) fn map_new<E: Env + ?Sized>(
    env: &mut E,
    t: TaskId,
    s: u64,
    e: u64,
    attrs: PageAttrs,
) -> Step {
    // The table must know every page of the memory before it grows (the callers synced).
    sync(env, t);
    let size = env.memory_size(t);
    let shift = env.vm(t).page_shift;
    let grow_to = growth_for(env, t, e)?;
    change(env, t, s, e, Edit::Set(attrs), grow_to)?;
    // Zero once the pages are mapped; grown pages are zero already. Pages the new
    // protection does not let the host write as it is (`vm_map` asks for any) are zeroed
    // whatever their hardware protection.
    let start = s << shift;
    let stop = (u128::from(e) << shift).min(u128::from(size)) as u64;
    let writable = attrs.cur.contains(VM_PROT_DEFAULT);
    let zeroed = start >= stop
        || if writable {
            env.zero(t, start, stop - start)
        } else {
            env.purge_zero(t, start, stop - start)
        };
    if !zeroed {
        return kr(KERN_FAILURE);
    }
    Ok(())
}

/// The size task `t`'s memory must grow to for its pages to reach page `e`: `None` when they
/// lie inside it already. When no memory can be that large (the end rounded up to whole wasm
/// pages passes 2^64), the growth is refused as any other: the task's volatile memory is
/// emptied (spec §9) and the answer is `KERN_RESOURCE_SHORTAGE`.
pub(super) fn growth_for<E: Env + ?Sized>(env: &mut E, t: TaskId, e: u64) -> Step<Option<u64>> {
    let size = env.memory_size(t);
    let end = u128::from(e) << env.vm(t).page_shift;
    if end <= u128::from(size) {
        return Ok(None);
    }
    let wasm = u128::from(WASM_PAGE);
    match u64::try_from(end.div_ceil(wasm) * wasm) {
        Ok(to) => Ok(Some(to)),
        Err(_) => {
            empty_volatile(env, &[t]);
            kr(KERN_RESOURCE_SHORTAGE)
        }
    }
}

/// Puts task `t` back as it is when made over a memory of its current size: every page of
/// the memory allocated with the default attributes (and mirrored so in hardware), none past
/// it, no send rights, its copy windows closed. The fuzzing oracle reuses tasks between runs
/// this way (`crate::testing::fuzzing::Differential::recycle`). False when it could not be done: the
/// task holds permanent pages or pages past its memory's end (a reset cannot give those
/// back), or the hardware could not follow.
#[cfg(feature = "testing")]
pub(crate) fn reset<E: Env + ?Sized>(env: &mut E, t: TaskId) -> bool {
    sync(env, t);
    let vm = env.vm(t);
    let k = vm.known_size >> vm.page_shift;
    let limit = vm.table.limit();
    if vm.table.any_allocated(k, limit.max(k)) || vm.table.any_permanent(0, k) {
        return false;
    }
    let dropped = vm.drop_names();
    super::entry::rights_dropped(env, &dropped);
    if change(env, t, 0, k, Edit::Set(PageAttrs::DEFAULT), None).is_err() {
        return false;
    }
    env.vm(t).windows = [(0, 0); 2];
    env.windows_closed(t);
    true
}
