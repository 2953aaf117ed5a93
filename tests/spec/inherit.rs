//! spec §8: `vm_inherit` / `mach_vm_inherit`, row by row (XNU's `mach_vm_inherit` and
//! `vm_map_inherit`), in both forms, both widths and both page sizes, against machvm and
//! the model.

use crate::common::*;
use machvm::abi::*;
use machvm::Call;

impl T {
    fn inherit(&mut self, addr: u64, size: u64, inheritance: u32) -> KernReturn {
        let form = self.form;
        self.ret(Call::Inherit {
            form,
            task: TASK_SELF_NAME,
            addr,
            size,
            inheritance,
        })
    }

    /// The inheritance of every page up to the memory's size (`None`: unallocated).
    fn inheritances(&self) -> Vec<Option<u32>> {
        self.pages()
            .into_iter()
            .map(|a| a.map(|a| a.inherit.0))
            .collect()
    }
}

#[test]
fn inherit_row1_names_resolve_first() {
    each(|t| {
        let form = t.form;
        t.names_resolve_first(|task, valid| Call::Inherit {
            form,
            task,
            addr: if valid { DATA } else { 1 },
            size: if valid { 0x1000 } else { u64::MAX },
            inheritance: if valid { 0 } else { 99 },
        });
    });
}

#[test]
fn inherit_row2_a_wrapping_range_or_an_unknown_inheritance_is_invalid_argument() {
    each(|t| {
        let before = t.pages();
        let amax = t.amax();
        for i in [0, 2] {
            assert_eq!(t.inherit(amax, 1, i), KERN_INVALID_ARGUMENT, "{}", t.ctx());
            assert_eq!(t.inherit(1, amax, i), KERN_INVALID_ARGUMENT, "{}", t.ctx());
        }
        // DONATE_COPY and anything past NONE, whatever the size (checked before it).
        for i in [VM_INHERIT_DONATE_COPY.0, 4, u32::MAX] {
            assert_eq!(
                t.inherit(DATA, t.p, i),
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
            assert_eq!(t.inherit(DATA, 0, i), KERN_INVALID_ARGUMENT, "{}", t.ctx());
        }
        assert_eq!(t.pages(), before, "{}", t.ctx());
    });
}

#[test]
fn inherit_row3_size_zero_succeeds_and_changes_nothing() {
    each(|t| {
        let before = t.pages();
        for addr in [0, DATA, t.amax(), 0x7FFF_0000] {
            assert_eq!(t.inherit(addr, 0, 0), KERN_SUCCESS, "{}", t.ctx());
        }
        assert_eq!(t.pages(), before, "{}", t.ctx());
    });
}

#[test]
fn inherit_row4_the_rounded_range_takes_it_and_regions_split_there() {
    each(|t| {
        let p = t.p;
        let before = t.pages();
        // One byte into the page, one page long: two pages.
        for i in [
            VM_INHERIT_SHARE,
            VM_INHERIT_NONE,
            VM_INHERIT_COPY,
            VM_INHERIT_NONE,
        ] {
            assert_eq!(t.inherit(DATA + 1, p, i.0), KERN_SUCCESS, "{}", t.ctx());
        }
        let got = t.inheritances();
        let first = (DATA / p) as usize;
        for (k, page) in got.iter().enumerate() {
            let want = if k == first || k == first + 1 { 2 } else { 1 };
            assert_eq!(*page, Some(want), "{} page {k}", t.ctx());
        }
        // Nothing else of the pages changed.
        let rest: Vec<_> = t
            .pages()
            .into_iter()
            .map(|a| {
                a.map(|a| PageAttrs {
                    inherit: VM_INHERIT_COPY,
                    ..a
                })
            })
            .collect();
        assert_eq!(rest, before, "{}", t.ctx());
        // vm_region reports it, one region of the two pages.
        let (r, addr, size, info, _) = t.region(DATA);
        assert_eq!(r, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!((addr, size, info[2]), (DATA, 2 * p, 2), "{}", t.ctx());
        let (_, addr, _, info, _) = t.region(DATA + 2 * p);
        assert_eq!((addr, info[2]), (DATA + 2 * p, 1), "{}", t.ctx());
        // vm_protect keeps it.
        assert_eq!(t.protect(DATA, p, false, R), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.inheritances()[first], Some(2), "{}", t.ctx());
    });
}

#[test]
fn inherit_row5_holes_are_passed_over() {
    each(|t| {
        let p = t.p;
        assert_eq!(t.deallocate(DATA + p, p), KERN_SUCCESS, "{}", t.ctx());
        // From the hole, across it, and a range that is all hole: all succeed.
        assert_eq!(t.inherit(DATA + p, p, 0), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.inherit(DATA, 3 * p, 0), KERN_SUCCESS, "{}", t.ctx());
        let got = t.inheritances();
        let first = (DATA / p) as usize;
        assert_eq!(
            got[first..first + 3],
            [Some(0), None, Some(0)],
            "{}",
            t.ctx()
        );
    });
}

#[test]
fn inherit_row6_the_range_is_clamped_to_the_map() {
    each(|t| {
        let p = t.p;
        let map = 64 * 65536u64;
        let size = t.memory_size();
        // Past the map, from the last page of memory: that page takes it.
        assert_eq!(t.inherit(size - p, map, 2), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.inheritances().last(), Some(&Some(2)), "{}", t.ctx());
        // An end that rounds to 0 (past the top of the word): clamped to nothing.
        let before = t.pages();
        let last = t.amax() & !(p - 1);
        assert_eq!(t.inherit(last, p - 1, 0), KERN_SUCCESS, "{}", t.ctx());
        // From page 0 to the top of the word: wraps to 0 too, nothing changes.
        assert_eq!(t.inherit(0, t.amax(), 0), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.pages(), before, "{}", t.ctx());
    });
}
