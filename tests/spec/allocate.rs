//! spec §4 vm_allocate and vm_deallocate, every row, through the wasm forwarders.

use crate::common::*;
use machvm::abi::*;
use machvm::Call;

const ANYWHERE: VmFlags = VM_FLAGS_ANYWHERE;
const FIXED: VmFlags = VM_FLAGS_FIXED;
const OVERWRITE: VmFlags = VM_FLAGS_OVERWRITE;

#[test]
fn bad_flags_are_invalid_argument_and_user_bits_are_ignored() {
    each(|t| {
        let before = t.pages();
        for bad in [0x20, 0x100, 0x2000, 0x8000, 0x0008_0000].map(VmFlags) {
            let (r, addr) = t.allocate(0x1234, t.p, ANYWHERE | bad);
            assert_eq!(
                (r, addr),
                (KERN_INVALID_ARGUMENT, 0x1234),
                "{} flags {bad:?}",
                t.ctx()
            );
            // Even with size 0.
            assert_eq!(
                t.allocate(7, 0, bad).0,
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
        }
        assert_eq!(t.pages(), before);
        // Bits inside VM_FLAGS_USER_ALLOCATE are accepted (purgable 0x2, a tag in the top byte).
        let (r, _) = t.allocate(0, t.p, ANYWHERE | VmFlags(0x2 | 0x0100_0000));
        assert_eq!(r, KERN_SUCCESS, "{}", t.ctx());
    });
}

#[test]
fn size_zero_succeeds_with_address_zero() {
    each(|t| {
        let before = t.pages();
        assert_eq!(
            t.allocate(0x5000, 0, ANYWHERE),
            (KERN_SUCCESS, 0),
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.allocate(0x5000, 0, FIXED),
            (KERN_SUCCESS, 0),
            "{}",
            t.ctx()
        );
        assert_eq!(t.pages(), before);
    });
}

#[test]
fn size_rounding_to_zero_is_invalid_argument() {
    each(|t| {
        let top = t.amax();
        assert_eq!(
            t.allocate(0, top, ANYWHERE).0,
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.allocate(0, top - t.p + 2, FIXED).0,
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        // Just below: fits the width, too big for the map.
        assert_eq!(
            t.allocate(0, top - t.p + 1, ANYWHERE).0,
            KERN_NO_SPACE,
            "{}",
            t.ctx()
        );
    });
}

#[test]
fn anywhere_takes_the_lowest_free_run_and_grows_the_memory() {
    each(|t| {
        let p = t.p;
        // The memory (256 KiB) is fully allocated: the first free run is right past it.
        let size0 = t.memory_size();
        let (r, a) = t.allocate(0xdead_0000, 3 * p, ANYWHERE);
        assert_eq!((r, a), (KERN_SUCCESS, size0), "{}", t.ctx());
        assert_eq!(
            t.memory_size(),
            size0 + 65536,
            "{} grew by one wasm page",
            t.ctx()
        );
        for i in 0..3 {
            assert_eq!(t.page_prot(a + i * p), Some((RW, ALL)));
        }
        // Grown pages outside the allocation stay unallocated.
        if 3 * p < 65536 {
            assert_eq!(t.page(a + 3 * p), None, "{}", t.ctx());
        }
        // The rest of the grown wasm page is the next lowest run.
        let (r, b) = t.allocate(0, p, ANYWHERE);
        assert_eq!(r, KERN_SUCCESS);
        assert_eq!(
            b,
            if 4 * p <= 65536 { a + 3 * p } else { a + 65536 },
            "{}",
            t.ctx()
        );
        // A deallocated hole is reused.
        assert_eq!(t.deallocate(DATA + p, 2 * p), KERN_SUCCESS);
        assert_eq!(
            t.allocate(0, 2 * p, ANYWHERE),
            (KERN_SUCCESS, DATA + p),
            "{}",
            t.ctx()
        );
        // Too small a hole is skipped.
        assert_eq!(t.deallocate(DATA, p), KERN_SUCCESS);
        let (r, c) = t.allocate(0, 2 * p, ANYWHERE);
        assert_eq!(r, KERN_SUCCESS);
        assert!(c > DATA, "{}", t.ctx());
    });
}

#[test]
fn anywhere_without_room_is_no_space() {
    each_with(4, Some(8), |t| {
        // Map of 8 wasm pages (512 KiB); 256 KiB are in use.
        let before = t.memory_size() as usize;
        assert_eq!(
            t.allocate(0, 0x40001, ANYWHERE).0,
            KERN_NO_SPACE,
            "{}",
            t.ctx()
        );
        assert_eq!(t.memory_size() as usize, before, "no growth on failure");
        assert_eq!(
            t.allocate(0, 0x40000, ANYWHERE),
            (KERN_SUCCESS, 0x40000),
            "{}",
            t.ctx()
        );
        assert_eq!(t.allocate(0, 1, ANYWHERE).0, KERN_NO_SPACE, "{}", t.ctx());
    });
}

#[test]
fn fixed_maps_trunc_address_and_round_size() {
    each(|t| {
        let p = t.p;
        let at = 0x50000u64;
        let (r, a) = t.allocate(at + 5, p + 1, FIXED);
        assert_eq!((r, a), (KERN_SUCCESS, at), "{}", t.ctx());
        assert_eq!(t.page_prot(at), Some((RW, ALL)));
        assert_eq!(t.page_prot(at + p), Some((RW, ALL)));
        assert_eq!(t.page(at + 2 * p), None);
        assert_eq!(t.page(at - p), None, "{} below the fixed range", t.ctx());
        assert!(t.memory_size() >= at + 2 * p);
    });
}

#[test]
fn fixed_past_the_map_or_wrapping_is_invalid_address() {
    each(|t| {
        let p = t.p;
        let top = t.amax();
        assert_eq!(
            t.allocate(4 << 20, p, FIXED).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.allocate((4 << 20) - p, 2 * p, FIXED).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.allocate(top - p + 1, 2 * p, FIXED).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.allocate(top - p + 1, p, OVERWRITE).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // The last page of the map is fine.
        assert_eq!(
            t.allocate((4 << 20) - p, p, FIXED),
            (KERN_SUCCESS, (4 << 20) - p),
            "{}",
            t.ctx()
        );
        assert_eq!(t.memory_size() as usize, 4 << 20);
    });
}

#[test]
fn fixed_over_allocated_pages_is_no_space_unless_overwrite() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 2 * p, 5);
        assert_eq!(t.deallocate(DATA + p, p), KERN_SUCCESS);
        let before = t.mem()[DATA as usize..].to_vec();
        // Partly allocated: NO_SPACE, nothing changes.
        assert_eq!(
            t.allocate(DATA, 2 * p, FIXED),
            (KERN_NO_SPACE, DATA),
            "{}",
            t.ctx()
        );
        assert_eq!(t.mem()[DATA as usize..], before[..]);
        assert_eq!(t.page(DATA + p), None);
        // OVERWRITE replaces them with zeroed RW pages.
        assert_eq!(t.protect(DATA, p, true, R), KERN_SUCCESS);
        assert_eq!(
            t.allocate(DATA, 2 * p, FIXED | OVERWRITE),
            (KERN_SUCCESS, DATA),
            "{}",
            t.ctx()
        );
        let got = t.get(DATA, 2 * p as usize);
        assert_eq!(got.iter().position(|&b| b != 0), None, "{}", t.ctx());
        assert_eq!(t.page_prot(DATA), Some((RW, ALL)));
        assert_eq!(t.page_prot(DATA + p), Some((RW, ALL)));
        // ANYWHERE ignores OVERWRITE (and the hint).
        let (r, a) = t.allocate(DATA, p, ANYWHERE | OVERWRITE);
        assert_eq!(r, KERN_SUCCESS);
        assert_ne!(a, DATA, "{}", t.ctx());
    });
}

#[test]
fn deallocated_pages_come_back_zeroed() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 3 * p, 1);
        assert_eq!(t.deallocate(DATA + p, p), KERN_SUCCESS);
        assert_eq!(t.page(DATA + p), None);
        let (r, a) = t.allocate(DATA + p, p, FIXED);
        assert_eq!((r, a), (KERN_SUCCESS, DATA + p));
        assert_eq!(
            t.get(DATA + p, p as usize),
            vec![0; p as usize],
            "{}",
            t.ctx()
        );
        // Neighbours untouched.
        assert_ne!(t.get(DATA, p as usize), vec![0; p as usize]);
        assert_ne!(t.get(DATA + 2 * p, p as usize), vec![0; p as usize]);
        // Through ANYWHERE too.
        t.pattern(DATA, 3 * p, 2);
        assert_eq!(t.deallocate(DATA, 3 * p), KERN_SUCCESS);
        let (r, a) = t.allocate(0, 3 * p, ANYWHERE);
        assert_eq!((r, a), (KERN_SUCCESS, DATA), "{}", t.ctx());
        assert!(t.get(DATA, 3 * p as usize).iter().all(|&b| b == 0));
    });
}

#[test]
fn deallocate_rows() {
    each(|t| {
        let p = t.p;
        let top = t.amax();
        let before = t.pages();
        // Wrap: INVALID_ARGUMENT.
        assert_eq!(
            t.deallocate(top - 7, 16),
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        assert_eq!(t.deallocate(top, 1), KERN_INVALID_ARGUMENT, "{}", t.ctx());
        // Size 0: SUCCESS.
        assert_eq!(t.deallocate(DATA, 0), KERN_SUCCESS);
        // e wraps to 0: SUCCESS, nothing removed.
        assert_eq!(
            t.deallocate(top - p + 1, p - 1),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        // e past the map: SUCCESS, nothing removed, even the pages inside the map.
        assert_eq!(t.deallocate(DATA, 4 << 20), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.pages(), before, "{}", t.ctx());
        // Holes are skipped.
        assert_eq!(t.deallocate(DATA + p, p), KERN_SUCCESS);
        assert_eq!(t.deallocate(DATA + 3, 3 * p), KERN_SUCCESS, "{}", t.ctx());
        for i in 0..4 {
            assert_eq!(t.page_prot(DATA + i * p), None, "{} page {i}", t.ctx());
        }
        assert_eq!(t.page_prot(DATA + 4 * p), Some((RW, ALL)), "{}", t.ctx());
        // Protection does not matter.
        assert_eq!(t.protect(DATA + 5 * p, p, true, VM_PROT_NONE), KERN_SUCCESS);
        assert_eq!(t.deallocate(DATA + 5 * p, p), KERN_SUCCESS);
        assert_eq!(t.page(DATA + 5 * p), None);
        // The map's last page can be deallocated: e = L is not past the map.
        assert_eq!(t.allocate((4 << 20) - p, p, FIXED).0, KERN_SUCCESS);
        assert_eq!(t.deallocate((4 << 20) - p, p), KERN_SUCCESS);
        assert_eq!(t.page((4 << 20) - p), None, "{}", t.ctx());
    });
}

#[test]
fn guest_memory_grow_allocates_the_new_pages() {
    for (on, (w, p)) in on_configs() {
        let mut t = T::on(on, w, p, machvm::Form::Vm, 1, Some(8));
        assert_eq!(t.grow(2), Some(1));
        // The next call sees pages [64 KiB, 192 KiB) allocated RW/ALL.
        assert_eq!(
            t.protect(0x10000, 0x20000, false, R),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.page_prot(0x2FFFF), Some((R, ALL)));
        // vm_allocate grows it further; the guest's grow then continues after it.
        let (r, a) = t.allocate(0, p, ANYWHERE);
        assert_eq!((r, a), (KERN_SUCCESS, 0x30000));
        assert_eq!(t.grow(1), Some(4));
        assert_eq!(
            t.page(0x30000 + p),
            None,
            "host-grown pages stay unallocated"
        );
        assert_eq!(t.deallocate(0x40000, 0x10000), KERN_SUCCESS);
        assert_eq!(t.page(0x40000), None, "{}", t.ctx());
        // Growing past the maximum fails in the guest, as usual.
        assert_eq!(t.grow(100), None);
    }
}

/// Calls that only check ranges bring the table up to date lazily, when they meet an
/// unallocated page (docs/semantics.md): right after the guest's `memory.grow`, every call
/// sees the new pages allocated, whether it checks them as a range, a scalar parameter or
/// a source buffer, and whichever path (fast or full) answers it.
#[test]
fn checking_calls_see_pages_the_guest_just_grew() {
    for (on, (w, p)) in on_configs() {
        for form in FORMS {
            let mut t = T::on(on, w, p, form, 1, Some(8));
            let word = t.word() as u64;
            t.pattern(0x100, 0x400, 7);
            // One call of each kind, each right after its own grow: nothing else looked
            // at the table since.
            let first = t.grow(1).unwrap() << 16;
            assert_eq!(
                t.copy(0x100, 0x400, first + 0x100),
                KERN_SUCCESS,
                "{}",
                t.ctx()
            );
            assert_eq!(t.get(first + 0x100, 0x400), t.get(0x100, 0x400));

            let next = t.grow(1).unwrap() << 16;
            let r = t.ret(Call::HostPageSize {
                host: machvm::abi::HOST_SELF_NAME,
                size_ptr: next + 8,
            });
            assert_eq!((r, t.get_uint(next + 8, word as usize)), (KERN_SUCCESS, p));

            let next = t.grow(1).unwrap() << 16;
            let r = t.ret(Call::ReadOverwrite {
                form,
                task: TASK_SELF_NAME,
                addr: 0x100,
                size: 0x40,
                data: next,
                outsize_ptr: next + 0x1000,
            });
            assert_eq!(r, KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(t.get(next, 0x40), t.get(0x100, 0x40));
            assert_eq!(t.get_uint(next + 0x1000, t.aword()), 0x40);

            let next = t.grow(1).unwrap() << 16;
            t.pattern(next, 0x40, 9);
            let r = t.ret(Call::Write {
                form,
                task: TASK_SELF_NAME,
                addr: 0x800,
                data: next,
                count: 0x40,
            });
            assert_eq!(r, KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(t.get(0x800, 0x40), t.get(next, 0x40));
            // The table knows every grown page now, and they are all read-write.
            let pages = t.pages();
            assert_eq!(pages.len() as u64, (5 << 16) / p);
            assert!(pages.iter().all(|a| a.is_some_and(|a| a.cur == RW)));
        }
    }
}
