//! The page table ([`PageTable`]) checked operation by operation against a page-by-page
//! vector: the `table` fuzz target and the table's differential test.
//!
//! The vector covers a window of [`WINDOW`] pages starting at `base`, which is 0, somewhere
//! in the middle, or right below `u64::MAX`, so that page indices near the top of the
//! index space are exercised too; every page below the window is unallocated, and the
//! operations only touch the window.

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::abi::PageAttrs;
use crate::abi::{VmInherit, VmProt, VM_PROT_COPY, VM_PROT_NONE, VM_PROT_READ, VM_PROT_WRITE};
use crate::table::{CheckError, PageTable, Run};

/// Pages of the window.
pub const WINDOW: u64 = 256;

/// A page's attributes, drawn from few values so that neighbours often merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub struct AttrsSpec {
    /// `cur & 7`.
    pub cur: u8,
    /// `max & 7`.
    pub max: u8,
    /// `inherit % 3`.
    pub inherit: u8,
    /// `behavior % 4`.
    pub behavior: u8,
    /// A purgeable object's id (7) or none (0).
    pub object: bool,
}

impl AttrsSpec {
    fn attrs(self) -> PageAttrs {
        PageAttrs {
            cur: VmProt(i32::from(self.cur & 7)),
            max: VmProt(i32::from(self.max & 7)),
            inherit: VmInherit(u32::from(self.inherit % 3)),
            permanent: false,
            behavior: i32::from(self.behavior % 4),
            object: if self.object { 7 } else { 0 },
            ..PageAttrs::DEFAULT
        }
    }
}

/// One operation, in window coordinates (`start`, `len` in pages; reduced modulo the
/// window, a range may run up to the window's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
#[allow(missing_docs)] // the fields are the operation's arguments
pub enum TableOp {
    /// [`PageTable::set`].
    Set {
        start: u16,
        len: u16,
        attrs: AttrsSpec,
    },
    /// [`PageTable::set`] with the default attributes.
    SetDefault { start: u16, len: u16 },
    /// [`PageTable::deallocate`].
    Deallocate { start: u16, len: u16 },
    /// [`PageTable::protect`] (`prot & 0x17`, `VM_PROT_COPY` as `copy`).
    Protect {
        start: u16,
        len: u16,
        set_max: bool,
        prot: u8,
    },
    /// [`PageTable::check_access`] and [`PageTable::allows`].
    CheckAccess { start: u16, len: u16, prot: u8 },
    /// [`PageTable::any_allocated`] and [`PageTable::any_unallocated`].
    Any { start: u16, len: u16 },
    /// [`PageTable::get`].
    Get { page: u16 },
    /// [`PageTable::region_at_or_after`].
    Region { page: u16 },
    /// [`PageTable::find_free`].
    FindFree { n: u16 },
    /// [`PageTable::find_free_below`] (`below` in window coordinates).
    FindFreeBelow { n: u16, below: u16 },
    /// [`PageTable::segments`] of a range (checked), a change inside it (`set` to `attrs`,
    /// or a deallocation when `None`), then [`PageTable::restore`]: the range is as before.
    Undo {
        start: u16,
        len: u16,
        attrs: Option<AttrsSpec>,
    },
    /// [`PageTable::span_where`] for read, write or both (`prot % 3`), unbounded and
    /// bounded to `max_runs % 4` runs.
    SpanAllowing { page: u16, prot: u8, max_runs: u8 },
}

/// A table, its window and a sequence of operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCase {
    /// The window's first page.
    pub base: u64,
    /// The map limit, in pages past `base` (at most [`WINDOW`]).
    pub limit: u64,
    /// The operations.
    pub ops: Vec<TableOp>,
}

impl<'a> Arbitrary<'a> for TableCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let base = *u.choose(&[0, 1 << 20, (1 << 52) - WINDOW, u64::MAX - WINDOW])?;
        let limit = u.int_in_range(0..=WINDOW)?;
        let mut ops = Vec::new();
        while ops.len() < 2000 && !u.is_empty() {
            match u.arbitrary() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        Ok(TableCase { base, limit, ops })
    }
}

/// The reference: one entry per page of the window.
struct Pages {
    base: u64,
    limit: u64,
    pages: Vec<Option<PageAttrs>>,
}

impl Pages {
    fn get(&self, i: u64) -> Option<PageAttrs> {
        self.pages.get(i as usize).copied().flatten()
    }

    /// The first page of `[s, e)` (window coordinates) that is unallocated or that `ok`
    /// refuses.
    fn check(&self, s: u64, e: u64, ok: impl Fn(PageAttrs) -> bool) -> Result2 {
        for i in s..e {
            match self.get(i) {
                None => {
                    return Err(CheckError::Unallocated {
                        page: self.base + i,
                    })
                }
                Some(a) if !ok(a) => {
                    return Err(CheckError::Denied {
                        page: self.base + i,
                        attrs: a,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The lowest absolute page starting `n` free pages that end at or below `below`
    /// (absolute, clipped to the limit). Pages below the window are free.
    fn find_free_below(&self, n: u64, below: u64) -> Option<u64> {
        let limit = below.min(self.base + self.limit);
        if n == 0 {
            return None;
        }
        if n <= limit.min(self.base) {
            return Some(0);
        }
        let mut run_start = 0u64; // absolute
        for i in self.base..limit {
            if self.get(i - self.base).is_some() {
                run_start = i + 1;
            } else if i + 1 - run_start >= n {
                return Some(run_start);
            }
        }
        None
    }

    /// The maximal runs of equal allocated pages, in absolute coordinates.
    fn runs(&self) -> Vec<Run> {
        let mut out: Vec<Run> = Vec::new();
        for (i, a) in self.pages.iter().enumerate() {
            let page = self.base + i as u64;
            let Some(a) = *a else { continue };
            match out.last_mut() {
                Some(r) if r.end == page && r.attrs == a => r.end += 1,
                _ => out.push(Run {
                    start: page,
                    end: page + 1,
                    attrs: a,
                }),
            }
        }
        out
    }
}

type Result2 = std::result::Result<(), CheckError>;

/// What a [`run_table`] that passed saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableRun {
    /// Answers that differed from the reference exactly as a known bug does, tolerated so
    /// that the rest is still checked (none is known now: the last, `find_free_below` not
    /// clipping a gap to its bound, is fixed and kept in `tests/regressions.rs`).
    pub known_bug_hits: usize,
}

/// Runs `case` on a [`PageTable`] and on the reference, comparing every answer and the
/// table's runs (which must be canonical: exactly the maximal runs) after each operation.
///
/// # Errors
///
/// The first difference, described with the operations up to it.
pub fn run_table(case: &TableCase) -> std::result::Result<TableRun, String> {
    let report = TableRun::default();
    let base = case.base;
    let limit = case.limit.min(WINDOW);
    let mut table = PageTable::new(base + limit);
    let mut reference = Pages {
        base,
        limit,
        pages: vec![None; WINDOW as usize],
    };
    // A range in window coordinates: [s, e) with e <= WINDOW.
    let range = |start: u16, len: u16| {
        let s = u64::from(start) % (WINDOW + 1);
        let e = (s + u64::from(len) % (WINDOW + 1)).min(WINDOW);
        (s, e)
    };
    for (k, op) in case.ops.iter().enumerate() {
        let fail = |what: String| {
            Err(format!(
                "table base {base:#x} limit {limit}: op {k} {op:?}: {what}\nops: {:?}",
                &case.ops[..=k]
            ))
        };
        match *op {
            TableOp::Set { start, len, attrs } => {
                let (s, e) = range(start, len);
                table.set(base + s, base + e, attrs.attrs());
                for i in s..e.min(limit) {
                    reference.pages[i as usize] = Some(attrs.attrs());
                }
            }
            TableOp::SetDefault { start, len } => {
                let (s, e) = range(start, len);
                table.set(base + s, base + e, PageAttrs::DEFAULT);
                for i in s..e.min(limit) {
                    reference.pages[i as usize] = Some(PageAttrs::DEFAULT);
                }
            }
            TableOp::Deallocate { start, len } => {
                let (s, e) = range(start, len);
                let holes = table.deallocate(base + s, base + e);
                let want = (s..e).any(|i| reference.get(i).is_none());
                for i in s..e {
                    reference.pages[i as usize] = None;
                }
                if holes != want {
                    return fail(format!("holes: table {holes}, reference {want}"));
                }
            }
            TableOp::Protect {
                start,
                len,
                set_max,
                prot,
            } => {
                let (s, e) = range(start, len);
                let copy = i32::from(prot) & VM_PROT_COPY.0 != 0;
                let prot = VmProt(i32::from(prot & 7));
                let extra = if copy { VM_PROT_WRITE } else { VM_PROT_NONE };
                let got = table.protect(base + s, base + e, set_max, prot, copy);
                let want = reference.check(s, e, |a| (a.max | extra) & prot == prot);
                if got != want {
                    return fail(format!("table {got:?}, reference {want:?}"));
                }
                if want.is_ok() {
                    for i in s..e {
                        let a = reference.pages[i as usize].as_mut().expect("checked");
                        // VM_PROT_COPY: a private copy, no longer the purgeable object.
                        if copy {
                            a.object = 0;
                        }
                        if set_max {
                            a.max = prot;
                            a.cur &= prot;
                        } else {
                            a.max |= extra;
                            a.cur = prot;
                        }
                    }
                }
            }
            TableOp::CheckAccess { start, len, prot } => {
                let (s, e) = range(start, len);
                let prot = VmProt(i32::from(prot & 7));
                let got = table.check_access(base + s, base + e, prot);
                let want = reference.check(s, e, |a| a.cur & prot == prot);
                if got != want {
                    return fail(format!("table {got:?}, reference {want:?}"));
                }
                // The inlined fast form must agree (it answers from the last run found).
                let allows = table.allows(base + s, base + e, prot);
                if allows != want.is_ok() {
                    return fail(format!("allows {allows}, reference {want:?}"));
                }
            }
            TableOp::Any { start, len } => {
                let (s, e) = range(start, len);
                let got = (
                    table.any_allocated(base + s, base + e),
                    table.any_unallocated(base + s, base + e),
                );
                let want = (
                    (s..e).any(|i| reference.get(i).is_some()),
                    (s..e).any(|i| reference.get(i).is_none()),
                );
                if got != want {
                    return fail(format!(
                        "(any allocated, any unallocated): table {got:?}, reference {want:?}"
                    ));
                }
            }
            TableOp::Get { page } => {
                let i = u64::from(page) % WINDOW;
                let (got, want) = (table.get(base + i), reference.get(i));
                if got != want {
                    return fail(format!("table {got:?}, reference {want:?}"));
                }
            }
            TableOp::Region { page } => {
                let i = u64::from(page) % WINDOW;
                let got = table.region_at_or_after(base + i);
                let want = reference.runs().into_iter().find(|r| r.end > base + i);
                if got != want {
                    return fail(format!("table {got:?}, reference {want:?}"));
                }
            }
            TableOp::SpanAllowing {
                page,
                prot,
                max_runs,
            } => {
                // Unbounded, the widest interval of pages with the protection around the
                // page; bounded, a part of it that still holds the page.
                let i = u64::from(page) % WINDOW;
                let prot = [VM_PROT_READ, VM_PROT_WRITE, VM_PROT_READ | VM_PROT_WRITE]
                    [usize::from(prot) % 3];
                let has = |p: u64| matches!(reference.get(p), Some(a) if a.cur & prot == prot);
                let want = has(i).then(|| {
                    let lo = (0..=i).rev().take_while(|&p| has(p)).last().unwrap_or(i);
                    let hi = (i..WINDOW).take_while(|&p| has(p)).last().unwrap_or(i) + 1;
                    base + lo..base + hi
                });
                let got = table.span_where(base + i, |a| a.cur & prot == prot, usize::MAX);
                if got != want {
                    return fail(format!(
                        "page {i:#x} prot {prot}: table {got:?}, reference {want:?}"
                    ));
                }
                let near = table.span_where(
                    base + i,
                    |a| a.cur & prot == prot,
                    usize::from(max_runs) % 4,
                );
                let nested = match (&near, &want) {
                    (None, None) => true,
                    (Some(n), Some(w)) => {
                        w.start <= n.start && n.contains(&(base + i)) && n.end <= w.end
                    }
                    _ => false,
                };
                if !nested {
                    return fail(format!(
                        "page {i:#x} prot {prot} bounded: table {near:?}, widest {want:?}"
                    ));
                }
            }
            TableOp::FindFree { n } => {
                let n = u64::from(n) % (WINDOW + 2);
                let got = table.find_free(n);
                let want = reference.find_free_below(n, u64::MAX);
                if got != want {
                    return fail(format!("n {n}: table {got:?}, reference {want:?}"));
                }
            }
            TableOp::FindFreeBelow { n, below } => {
                let n = u64::from(n) % (WINDOW + 2);
                let below = base + u64::from(below) % (WINDOW + 1);
                let got = table.find_free_below(n, below);
                let want = reference.find_free_below(n, below);
                if got != want {
                    return fail(format!(
                        "n {n} below {below:#x}: table {got:?}, reference {want:?}"
                    ));
                }
            }
            TableOp::Undo { start, len, attrs } => {
                let (s, e) = range(start, len);
                let segments = table.segments(base + s, base + e);
                // Consecutive, covering [s, e), each as the reference says.
                let mut pos = base + s;
                for &(a, b, state) in &segments {
                    let uniform = (a - base..b - base).all(|i| reference.get(i) == state);
                    if a != pos || b <= a || !uniform {
                        return fail(format!("segments {segments:?} do not match the pages"));
                    }
                    pos = b;
                }
                if pos != base + e && s < e {
                    return fail(format!("segments {segments:?} stop before {:#x}", base + e));
                }
                match attrs {
                    Some(a) => table.set(base + s, base + e, a.attrs()),
                    None => {
                        table.deallocate(base + s, base + e);
                    }
                }
                table.restore(&segments);
            }
        }
        let got: Vec<Run> = table.runs().collect();
        let want = reference.runs();
        if got != want {
            return fail(format!("runs: table {got:?}, reference {want:?}"));
        }
        if table.run_count() != want.len() {
            return fail(format!("run_count {} != {}", table.run_count(), want.len()));
        }
        // Every page's lookup right after the change (`get` keeps a cache of the last run).
        for i in 0..WINDOW {
            let (got, want) = (table.get(base + i), reference.get(i));
            if got != want {
                return fail(format!("page {i:#x}: table {got:?}, reference {want:?}"));
            }
        }
    }
    Ok(report)
}
