//! The page table of one task: which pages are allocated, and with what protection.
//!
//! It knows nothing of Wasmtime: it works in page indices, and is tested and fuzzed on its
//! own. Pages are stored as *runs* (maximal intervals of allocated pages with equal
//! attributes) in a `BTreeMap` keyed by the first page, so a check or a change over a range
//! costs O(log runs + runs touched) whatever the number of pages, and a 4 GiB memory with a
//! handful of regions takes a few hundred bytes. Unallocated pages are the gaps between runs.
//!
//! The table is kept canonical: no run is empty and no two adjacent runs have equal
//! attributes, so a run is exactly a region in the sense of `vm_region`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;

use crate::abi::{PageAttrs, VmInherit, VmProt};

/// Why a range check failed, at the first failing page in address order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The page is unallocated (or outside the map, where nothing is ever allocated).
    Unallocated {
        /// The failing page's index.
        page: u64,
    },
    /// The page is allocated but its protection lacks a required bit.
    Denied {
        /// The failing page's index.
        page: u64,
        /// The page's attributes.
        attrs: PageAttrs,
    },
}

impl CheckError {
    /// The index of the page the check stopped at.
    pub fn page(&self) -> u64 {
        match *self {
            CheckError::Unallocated { page } | CheckError::Denied { page, .. } => page,
        }
    }
}

/// A region: a maximal run of allocated pages with equal attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First page of the run.
    pub start: u64,
    /// One past the last page of the run.
    pub end: u64,
    /// The attributes of every page of the run.
    pub attrs: PageAttrs,
}

/// The page table of one task (spec §1), in page indices.
#[derive(Clone, Debug)]
pub struct PageTable {
    /// start page -> (end page, attributes); only allocated runs.
    runs: BTreeMap<u64, (u64, PageAttrs)>,
    /// The map's size in pages: no page at or past it is ever allocated.
    limit: u64,
    /// The run last found, so that the common check (inside the run of the previous one)
    /// costs no tree search. Cleared by every change.
    last: Cell<Option<Run>>,
}

impl PageTable {
    /// An empty table (every page unallocated) for a map of `limit` pages.
    pub fn new(limit: u64) -> PageTable {
        PageTable {
            runs: BTreeMap::new(),
            limit,
            last: Cell::new(None),
        }
    }

    /// The map's size in pages.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Number of runs (regions) in the table.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// All runs in address order.
    pub fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        self.runs
            .iter()
            .map(|(&start, &(end, attrs))| Run { start, end, attrs })
    }

    /// The attributes of `page`, `None` when it is unallocated.
    pub fn get(&self, page: u64) -> Option<PageAttrs> {
        self.run_at(page).map(|r| r.attrs)
    }

    /// The run containing `page`.
    pub(crate) fn run_at(&self, page: u64) -> Option<Run> {
        if let Some(r) = self.last.get() {
            if r.start <= page && page < r.end {
                return Some(r);
            }
        }
        match self.runs.range(..=page).next_back() {
            Some((&start, &(end, attrs))) if end > page => {
                let r = Run { start, end, attrs };
                self.last.set(Some(r));
                Some(r)
            }
            _ => None,
        }
    }

    /// The runs that intersect `[start, end)`, in address order (not clipped).
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = Run> + '_ {
        let first = self
            .runs
            .range(..start)
            .next_back()
            .filter(|(_, &(e, _))| e > start && start < end);
        let rest = if start < end {
            Some(self.runs.range(start..end))
        } else {
            None
        };
        first
            .into_iter()
            .chain(rest.into_iter().flatten())
            .map(|(&start, &(end, attrs))| Run { start, end, attrs })
    }

    /// Checks that every page of `[start, end)` is allocated and that `ok` accepts its
    /// attributes; reports the first page, in address order, that fails.
    ///
    /// # Errors
    ///
    /// [`CheckError::Unallocated`] or [`CheckError::Denied`] at the first failing page.
    pub fn check(
        &self,
        start: u64,
        end: u64,
        ok: impl Fn(PageAttrs) -> bool,
    ) -> Result<(), CheckError> {
        // Fast path: one run holds the whole range.
        if start < end {
            if let Some(r) = self.run_at(start) {
                if end <= r.end && ok(r.attrs) {
                    return Ok(());
                }
            }
        }
        let mut pos = start;
        for run in self.overlapping(start, end) {
            if run.start > pos {
                return Err(CheckError::Unallocated { page: pos });
            }
            if !ok(run.attrs) {
                return Err(CheckError::Denied {
                    page: pos,
                    attrs: run.attrs,
                });
            }
            pos = run.end;
            if pos >= end {
                return Ok(());
            }
        }
        if pos < end {
            Err(CheckError::Unallocated { page: pos })
        } else {
            Ok(())
        }
    }

    /// Checks that every page of `[start, end)` is allocated with all of `prot` in its
    /// current protection.
    ///
    /// # Errors
    ///
    /// As [`PageTable::check`].
    pub fn check_access(&self, start: u64, end: u64, prot: VmProt) -> Result<(), CheckError> {
        self.check(start, end, |a| a.cur & prot == prot)
    }

    /// True when every page of `[start, end)` is allocated with all of `prot` in its current
    /// protection: `check_access(..).is_ok()`, with the common case (the range lies in the
    /// run found last) inlined into the caller.
    #[inline]
    pub fn allows(&self, start: u64, end: u64, prot: VmProt) -> bool {
        self.allows_where(start, end, |a| a.cur & prot == prot)
    }

    /// True when every page of `[start, end)` is allocated and `ok` accepts its attributes:
    /// `check(..).is_ok()`, with the common case (the range lies in the run found last)
    /// inlined into the caller.
    #[inline]
    pub fn allows_where(&self, start: u64, end: u64, ok: impl Fn(PageAttrs) -> bool) -> bool {
        if let Some(r) = self.last.get() {
            if r.start <= start && start < end && end <= r.end {
                return ok(r.attrs);
            }
        }
        self.check(start, end, ok).is_ok()
    }

    /// The widest range of consecutive pages around `page` that are all allocated with
    /// attributes `ok` accepts, looking at most `max_runs` runs past `page`'s own on each
    /// side; `None` when `page` itself is not such a page.
    pub fn span_where(
        &self,
        page: u64,
        ok: impl Fn(PageAttrs) -> bool,
        max_runs: usize,
    ) -> Option<Range<u64>> {
        let run = self.run_at(page).filter(|r| ok(r.attrs))?;
        let (mut start, mut end) = (run.start, run.end);
        for (&s, &(e, attrs)) in self.runs.range(..run.start).rev().take(max_runs) {
            if e != start || !ok(attrs) {
                break;
            }
            start = s;
        }
        for (&s, &(e, attrs)) in self.runs.range(run.end..).take(max_runs) {
            if s != end || !ok(attrs) {
                break;
            }
            end = e;
        }
        Some(start..end)
    }

    /// True when any page of `[start, end)` is allocated.
    pub fn any_allocated(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).next().is_some()
    }

    /// True when any page of `[start, end)` is allocated and permanent.
    pub fn any_permanent(&self, start: u64, end: u64) -> bool {
        self.overlapping(start, end).any(|r| r.attrs.permanent)
    }

    /// Makes every page of `[start, end)` permanent; refused, with nothing changed, when one
    /// is unallocated.
    pub(crate) fn make_permanent(&mut self, start: u64, end: u64) -> Result<(), CheckError> {
        self.check(start, end, |_| true)?;
        if start < end {
            self.rewrite(start, end, |a| {
                a.map(|a| PageAttrs {
                    permanent: true,
                    ..a
                })
            });
        }
        Ok(())
    }

    /// Records `behavior` on every page of `[start, end)`; refused, with nothing changed,
    /// when one is unallocated (`vm_behavior_set`'s range check).
    pub(crate) fn set_behavior(
        &mut self,
        start: u64,
        end: u64,
        behavior: i32,
    ) -> Result<(), CheckError> {
        self.check(start, end, |_| true)?;
        if start < end {
            self.rewrite(start, end, |a| a.map(|a| PageAttrs { behavior, ..a }));
        }
        Ok(())
    }

    /// Records `inherit` on every allocated page of `[start, end)`; unallocated pages stay
    /// so (`vm_inherit` ignores holes).
    pub(crate) fn set_inherit(&mut self, start: u64, end: u64, inherit: VmInherit) {
        if start < end {
            self.rewrite(start, end, |a| a.map(|a| PageAttrs { inherit, ..a }));
        }
    }

    /// True when any page of `[start, end)` is unallocated.
    pub fn any_unallocated(&self, start: u64, end: u64) -> bool {
        self.check(start, end, |_| true).is_err()
    }

    /// The region containing `page`, or else the first one after it.
    pub fn region_at_or_after(&self, page: u64) -> Option<Run> {
        if let Some((&start, &(end, attrs))) = self.runs.range(..=page).next_back() {
            if end > page {
                return Some(Run { start, end, attrs });
            }
        }
        self.runs
            .range(page.saturating_add(1)..)
            .next()
            .map(|(&start, &(end, attrs))| Run { start, end, attrs })
    }

    /// The lowest page-aligned run of `n` unallocated pages inside the map.
    pub fn find_free(&self, n: u64) -> Option<u64> {
        self.find_free_below(n, self.limit)
    }

    /// The lowest run of `n` unallocated pages ending at or below page `below` (and inside
    /// the map).
    pub fn find_free_below(&self, n: u64, below: u64) -> Option<u64> {
        self.find_free_aligned(n, below, 0)
    }

    /// The lowest run of `n` unallocated pages ending at or below page `below` (and inside
    /// the map) whose first page has no bit of `mask` set (`mask` in pages; 0: any page).
    /// Each gap is tried at its first page so aligned (`(page + mask) & !mask`, as XNU's
    /// address search aligns), so for a mask that is not one less than a power of two, a
    /// run further into a gap may be passed over.
    pub fn find_free_aligned(&self, n: u64, below: u64, mask: u64) -> Option<u64> {
        let limit = below.min(self.limit);
        if n == 0 || n > limit {
            return None;
        }
        let fits = |gap_start: u64, gap_end: u64| {
            let s = (u128::from(gap_start) + u128::from(mask)) & !u128::from(mask);
            (s + u128::from(n) <= u128::from(gap_end.min(limit))).then_some(s as u64)
        };
        let mut pos = 0u64;
        for (&start, &(end, _)) in &self.runs {
            if let Some(s) = fits(pos, start) {
                return Some(s);
            }
            pos = end;
            if pos >= limit {
                return None;
            }
        }
        fits(pos, limit)
    }

    /// vm_protect's table step (spec §4 rows 4-6) over the pages `[start, end)`: checks the
    /// whole range first (allocated, and `max` — with WRITE added when `copy` — holding every
    /// bit of `prot`), then applies. `prot` must not contain `VM_PROT_COPY`.
    ///
    /// # Errors
    ///
    /// The first failing page; nothing is changed then.
    pub fn protect(
        &mut self,
        start: u64,
        end: u64,
        set_max: bool,
        prot: VmProt,
        copy: bool,
    ) -> Result<(), CheckError> {
        let extra = if copy {
            crate::abi::VM_PROT_WRITE
        } else {
            crate::abi::VM_PROT_NONE
        };
        self.check(start, end, |a| (a.max | extra) & prot == prot)?;
        if start >= end {
            return Ok(());
        }
        self.rewrite(start, end, |a| a.map(|a| protected(a, set_max, prot, copy)));
        Ok(())
    }

    /// Sets every page of `[start, end)` to `attrs` (allocating the unallocated ones).
    /// Pages at or past the map limit are never allocated: the range is clipped to it.
    pub fn set(&mut self, start: u64, end: u64, attrs: PageAttrs) {
        let end = end.min(self.limit);
        if start < end {
            self.rewrite(start, end, |_| Some(attrs));
        }
    }

    /// Makes every page of `[start, end)` unallocated, except permanent pages, which stay
    /// allocated with no access (current and maximum protection none, as XNU leaves a
    /// permanent entry). Returns true when the range held unallocated pages (XNU's guard
    /// exception for holes).
    pub fn deallocate(&mut self, start: u64, end: u64) -> bool {
        let holes = self.any_unallocated(start, end);
        if self.any_allocated(start, end) {
            self.rewrite(start, end, deallocated);
        }
        holes
    }

    /// The state of `[start, end)` as consecutive segments `(start, end, attrs)` covering the
    /// whole range, gaps (`None`) included; [`PageTable::restore`] puts them back.
    pub fn segments(&self, start: u64, end: u64) -> Vec<(u64, u64, Option<PageAttrs>)> {
        self.segments_iter(start, end).collect()
    }

    /// [`PageTable::segments`] without the vector: the segments of `[start, end)` in address
    /// order, computed as they are read (nothing is allocated).
    pub(crate) fn segments_iter(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, Option<PageAttrs>)> + '_ {
        let mut runs = self.overlapping(start, end).peekable();
        let mut pos = start;
        std::iter::from_fn(move || {
            if pos >= end {
                return None;
            }
            match runs.peek() {
                Some(run) if run.start.max(start) > pos => {
                    let s = run.start;
                    let gap = (pos, s, None);
                    pos = s;
                    Some(gap)
                }
                Some(_) => {
                    let run = runs.next()?;
                    let (s, e) = (run.start.max(start), run.end.min(end));
                    pos = e;
                    Some((s, e, Some(run.attrs)))
                }
                None => {
                    let gap = (pos, end, None);
                    pos = end;
                    Some(gap)
                }
            }
        })
    }

    /// Puts back segments taken by [`PageTable::segments`] (pages past the map stay
    /// unallocated).
    pub fn restore(&mut self, segments: &[(u64, u64, Option<PageAttrs>)]) {
        for &(s, e, attrs) in segments {
            let e = if attrs.is_some() {
                e.min(self.limit)
            } else {
                e
            };
            if s < e {
                self.rewrite(s, e, |_| attrs);
            }
        }
    }

    /// Replaces the attributes of every page in `[start, end)` by `f(old)` (`None` is
    /// unallocated), then restores the canonical form around the range.
    fn rewrite(
        &mut self,
        start: u64,
        end: u64,
        f: impl Fn(Option<PageAttrs>) -> Option<PageAttrs>,
    ) {
        debug_assert!(start < end);
        self.last.set(None);
        // Pieces of the new layout of [lo, hi): lo/hi extend to the runs cut by the range
        // and to the neighbours touching it, so that merging sees them.
        let mut pieces: Vec<(Range<u64>, Option<PageAttrs>)> = Vec::new();
        let mut lo = start;
        let mut hi = end;
        if let Some((&s, &(e, a))) = self.runs.range(..start).next_back() {
            if e >= start {
                lo = s;
                pieces.push((s..start, Some(a)));
            }
        }
        let mut pos = start;
        let touched: Vec<Run> = self.overlapping(start, end).collect();
        for run in &touched {
            let s = run.start.max(start);
            if s > pos {
                pieces.push((pos..s, f(None)));
            }
            let e = run.end.min(end);
            pieces.push((s..e, f(Some(run.attrs))));
            pos = e;
        }
        if pos < end {
            pieces.push((pos..end, f(None)));
        }
        // The tail of a run cut at `end`, or the run starting right at `end`.
        let tail = touched
            .last()
            .filter(|r| r.end > end)
            .map(|r| (end..r.end, r.attrs))
            .or_else(|| self.runs.get(&end).map(|&(e, a)| (end..e, a)));
        if let Some((range, attrs)) = tail {
            hi = range.end;
            pieces.push((range, Some(attrs)));
        }
        // Remove every run inside [lo, hi) and insert the merged pieces.
        let keys: Vec<u64> = self.runs.range(lo..hi).map(|(&k, _)| k).collect();
        for k in keys {
            self.runs.remove(&k);
        }
        let mut current: Option<(u64, u64, PageAttrs)> = None;
        for (range, attrs) in pieces {
            if range.is_empty() {
                continue;
            }
            match (attrs, current.as_mut()) {
                (Some(a), Some(cur)) if cur.1 == range.start && cur.2 == a => cur.1 = range.end,
                (a, _) => {
                    if let Some((s, e, ca)) = current.take() {
                        self.runs.insert(s, (e, ca));
                    }
                    current = a.map(|a| (range.start, range.end, a));
                }
            }
        }
        if let Some((s, e, a)) = current {
            self.runs.insert(s, (e, a));
        }
    }

    /// Approximate heap bytes held by the table (for the table-size benchmarks).
    pub fn heap_bytes(&self) -> usize {
        // A BTreeMap leaf holds up to 11 entries of key + value plus a header.
        let entry = std::mem::size_of::<u64>() + std::mem::size_of::<(u64, PageAttrs)>();
        self.runs.len().div_ceil(11) * (11 * entry + 16)
    }
}

/// What deallocation leaves of a page whose attributes are `a`: nothing (unallocated),
/// except a permanent page, which stays allocated with no access (current and maximum
/// protection none, as XNU leaves a permanent entry).
pub(crate) fn deallocated(a: Option<PageAttrs>) -> Option<PageAttrs> {
    a.filter(|a| a.permanent).map(|a| PageAttrs {
        cur: crate::abi::VM_PROT_NONE,
        max: crate::abi::VM_PROT_NONE,
        ..a
    })
}

/// The attributes vm_protect gives an allocated page that has `a` (spec §4 row 6, with
/// row 4's `VM_PROT_COPY` as `copy`; `prot` without the COPY bit), once the range passed
/// [`PageTable::protect`]'s check.
pub(crate) fn protected(a: PageAttrs, set_max: bool, prot: VmProt, copy: bool) -> PageAttrs {
    // VM_PROT_COPY makes the range a private copy: new memory of its own, not the
    // purgeable object or the shared object it was.
    let a = if copy {
        PageAttrs {
            object: 0,
            share: 0,
            share_offset: 0,
            shared: false,
            ..a
        }
    } else {
        a
    };
    if set_max {
        PageAttrs {
            cur: a.cur & prot,
            max: prot,
            ..a
        }
    } else {
        let extra = if copy {
            crate::abi::VM_PROT_WRITE
        } else {
            crate::abi::VM_PROT_NONE
        };
        PageAttrs {
            cur: prot,
            max: a.max | extra,
            ..a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;

    const RW: PageAttrs = PageAttrs::DEFAULT;
    const RO: PageAttrs = PageAttrs {
        cur: VM_PROT_READ,
        max: VM_PROT_ALL,
        inherit: VM_INHERIT_COPY,
        permanent: false,
        behavior: VM_BEHAVIOR_DEFAULT,
        ..PageAttrs::DEFAULT
    };

    /// Page-by-page reference of the table, to compare after each operation.
    fn pages(t: &PageTable, n: u64) -> Vec<Option<PageAttrs>> {
        (0..n).map(|p| t.get(p)).collect()
    }

    fn assert_canonical(t: &PageTable) {
        let runs: Vec<Run> = t.runs().collect();
        for r in &runs {
            assert!(r.start < r.end, "empty run {r:?}");
            assert!(r.end <= t.limit(), "run past the limit {r:?}");
        }
        for w in runs.windows(2) {
            assert!(w[0].end <= w[1].start, "overlap {w:?}");
            assert!(
                !(w[0].end == w[1].start && w[0].attrs == w[1].attrs),
                "not merged {w:?}"
            );
        }
    }

    #[test]
    fn set_merges_and_splits() {
        let mut t = PageTable::new(100);
        t.set(0, 10, RW);
        t.set(10, 20, RW);
        assert_eq!(t.run_count(), 1);
        t.set(5, 6, RO);
        assert_eq!(t.run_count(), 3);
        t.set(5, 6, RW);
        assert_eq!(t.run_count(), 1);
        assert_canonical(&t);
        t.set(90, 200, RW);
        assert_eq!(t.get(99), Some(RW));
        assert_eq!(t.get(100), None);
        assert_canonical(&t);
    }

    #[test]
    fn check_reports_first_failing_page() {
        let mut t = PageTable::new(100);
        t.set(0, 4, RW);
        t.set(4, 6, RO);
        t.set(8, 10, RW);
        assert_eq!(t.check_access(0, 4, VM_PROT_WRITE), Ok(()));
        assert_eq!(
            t.check_access(2, 9, VM_PROT_WRITE),
            Err(CheckError::Denied { page: 4, attrs: RO })
        );
        assert_eq!(
            t.check_access(2, 9, VM_PROT_READ),
            Err(CheckError::Unallocated { page: 6 })
        );
        assert_eq!(
            t.check_access(9, 11, VM_PROT_READ),
            Err(CheckError::Unallocated { page: 10 })
        );
        assert_eq!(t.check_access(5, 5, VM_PROT_READ), Ok(()));
    }

    #[test]
    fn protect_checks_whole_range_first() {
        let mut t = PageTable::new(100);
        t.set(0, 4, RW);
        t.set(5, 8, RW);
        let before = pages(&t, 10);
        assert_eq!(
            t.protect(0, 8, false, VM_PROT_READ, false),
            Err(CheckError::Unallocated { page: 4 })
        );
        assert_eq!(pages(&t, 10), before);
        t.protect(1, 3, true, VM_PROT_READ, false).unwrap();
        assert_eq!(
            t.get(1),
            Some(PageAttrs {
                cur: VM_PROT_READ,
                max: VM_PROT_READ,
                inherit: VM_INHERIT_COPY,
                permanent: false,
                behavior: 0,
                ..PageAttrs::DEFAULT
            })
        );
        // Raising max fails, without change.
        assert!(matches!(
            t.protect(0, 4, false, VM_PROT_DEFAULT, false),
            Err(CheckError::Denied { page: 1, .. })
        ));
        // VM_PROT_COPY adds write to max.
        t.protect(1, 3, false, VM_PROT_DEFAULT, true).unwrap();
        assert_eq!(
            t.get(2),
            Some(PageAttrs {
                cur: VM_PROT_DEFAULT,
                max: VM_PROT_READ | VM_PROT_WRITE,
                inherit: VM_INHERIT_COPY,
                permanent: false,
                behavior: 0,
                ..PageAttrs::DEFAULT
            })
        );
        assert_canonical(&t);
    }

    #[test]
    fn find_free_takes_lowest_hole() {
        let mut t = PageTable::new(16);
        assert_eq!(t.find_free(16), Some(0));
        assert_eq!(t.find_free(17), None);
        t.set(0, 4, RW);
        t.set(6, 8, RW);
        assert_eq!(t.find_free(2), Some(4));
        assert_eq!(t.find_free(3), Some(8));
        assert_eq!(t.find_free(8), Some(8));
        assert_eq!(t.find_free(9), None);
    }

    #[test]
    fn deallocate_reports_holes() {
        let mut t = PageTable::new(16);
        t.set(0, 8, RW);
        assert!(!t.deallocate(2, 4));
        assert!(t.deallocate(1, 5));
        assert_eq!(t.runs().count(), 2);
        assert_eq!(t.get(0), Some(RW));
        assert_eq!(t.get(1), None);
        assert_eq!(t.get(5), Some(RW));
        assert_canonical(&t);
    }

    #[test]
    fn regions() {
        let mut t = PageTable::new(64);
        t.set(4, 8, RW);
        t.set(8, 10, RO);
        assert_eq!(
            t.region_at_or_after(0).map(|r| (r.start, r.end)),
            Some((4, 8))
        );
        assert_eq!(
            t.region_at_or_after(6).map(|r| (r.start, r.end)),
            Some((4, 8))
        );
        assert_eq!(
            t.region_at_or_after(8).map(|r| (r.start, r.end)),
            Some((8, 10))
        );
        assert_eq!(t.region_at_or_after(10), None);
        assert_eq!(t.region_at_or_after(u64::MAX), None);
    }

    /// Random operations against the page-by-page reference of `testing::fuzzing::table`
    /// (the one the `table` fuzz target uses).
    #[test]
    fn random_ops_match_page_vector() {
        use crate::testing::fuzzing::table::{run_table, TableCase};
        use arbitrary::{Arbitrary, Unstructured};
        let mut rng = crate::testing::Rng::new(0x2545_f491_4f6c_dd1d);
        for _ in 0..64 {
            let bytes = rng.bytes(8192);
            let case = TableCase::arbitrary(&mut Unstructured::new(&bytes)).unwrap();
            if let Err(e) = run_table(&case) {
                panic!("{e}");
            }
        }
    }
}
