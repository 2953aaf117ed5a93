//! spec §4 vm_protect, every row, through the wasm forwarders.

use crate::common::*;
use machvm::abi::*;

#[test]
fn row1_wrap_and_bad_bits_are_invalid_argument() {
    each(|t| {
        let top = t.amax();
        let before = t.pages();
        assert_eq!(
            t.protect(top - 7, 16, false, R),
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.protect(top - 15, 16, false, R),
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        for bad in [0x8, 0x20, 0x100, -1].map(VmProt) {
            assert_eq!(
                t.protect(DATA, t.p, false, bad),
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
            // Rejected even when size is 0.
            assert_eq!(
                t.protect(DATA, 0, false, bad),
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
            assert_eq!(
                t.protect(DATA, 0, true, bad | R),
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
        }
        assert_eq!(t.pages(), before);
    });
}

#[test]
fn row2_size_zero_succeeds_anywhere() {
    each(|t| {
        let top = t.amax();
        assert_eq!(t.protect(top, 0, false, R), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(
            t.protect(4 << 20, 0, true, VM_PROT_NONE),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.page_prot(DATA), Some((RW, ALL)));
    });
}

#[test]
fn row3_end_rounding_to_zero_is_invalid_argument() {
    each(|t| {
        let top = t.amax();
        let p = t.p;
        // addr + size = 2^w - 1 fits, round(addr + size) = 2^w does not.
        assert_eq!(
            t.protect(top - p + 1, p - 1, false, R),
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.protect(top - 2 * p + 2, p, false, R),
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        // One page lower it rounds to 2^w - P: outside the map, so INVALID_ADDRESS.
        assert_eq!(
            t.protect(top - 2 * p + 1, p - 1, false, R),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
    });
}

#[test]
fn row4_prot_copy_gives_max_write() {
    each(|t| {
        let p = t.p;
        // max = READ: asking for write fails ...
        assert_eq!(t.protect(DATA, p, true, R), KERN_SUCCESS);
        assert_eq!(t.page_prot(DATA), Some((R, R)));
        assert_eq!(
            t.protect(DATA, p, false, RW),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // ... but with VM_PROT_COPY the private copy's max gains WRITE.
        assert_eq!(
            t.protect(DATA, p, false, RW | VM_PROT_COPY),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.page_prot(DATA), Some((RW, RW)), "{}", t.ctx());
        // COPY does not grant EXECUTE.
        assert_eq!(
            t.protect(DATA, p, false, ALL | VM_PROT_COPY),
            KERN_PROTECTION_FAILURE
        );
        // With set_maximum: max = prot, cur = cur & prot.
        assert_eq!(t.protect(DATA + p, p, true, VM_PROT_NONE), KERN_SUCCESS);
        assert_eq!(
            t.protect(DATA + p, p, true, R | VM_PROT_COPY),
            KERN_PROTECTION_FAILURE
        );
        assert_eq!(
            t.protect(DATA + p, p, true, W | VM_PROT_COPY),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.page_prot(DATA + p),
            Some((VM_PROT_NONE, W)),
            "{}",
            t.ctx()
        );
        // A COPY request that fails changes nothing (max keeps no WRITE).
        assert_eq!(t.deallocate(DATA + 3 * p, p), KERN_SUCCESS);
        assert_eq!(t.protect(DATA + 2 * p, p, true, R), KERN_SUCCESS);
        assert_eq!(
            t.protect(DATA + 2 * p, 2 * p, false, RW | VM_PROT_COPY),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.page_prot(DATA + 2 * p), Some((R, R)), "{}", t.ctx());
    });
}

#[test]
fn row5_whole_range_checked_first_in_address_order() {
    each(|t| {
        let p = t.p;
        assert_eq!(t.deallocate(DATA + 2 * p, p), KERN_SUCCESS);
        assert_eq!(t.protect(DATA + 4 * p, p, true, R), KERN_SUCCESS);
        let before = t.pages();
        // A hole anywhere in the range: nothing changes.
        assert_eq!(
            t.protect(DATA, 3 * p, false, R),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.protect(DATA + p + 1, p, false, R),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // max lacks a bit: PROTECTION_FAILURE, nothing changes.
        assert_eq!(
            t.protect(DATA + 3 * p, 2 * p, false, RW),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // First bad page decides: hole (page 2) before max-lacking (page 4).
        assert_eq!(
            t.protect(DATA, 5 * p, false, RW),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // ... and max-lacking (page 4) before a hole (page 6).
        assert_eq!(t.deallocate(DATA + 6 * p, p), KERN_SUCCESS);
        let before6 = t.pages();
        assert_eq!(
            t.protect(DATA + 3 * p, 4 * p, false, RW),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        assert_eq!(t.pages(), before6, "{}", t.ctx());
        // Outside the map and past the memory.
        assert_eq!(
            t.protect(4 << 20, p, false, R),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.protect(0x40000 - p, 2 * p, false, R),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        let _ = before;
        assert_eq!(t.page_prot(0x40000 - p), Some((RW, ALL)));
    });
}

#[test]
fn row6_set_maximum_lowers_cur_and_cannot_raise() {
    each(|t| {
        let p = t.p;
        // Unaligned address and size cover whole pages: [trunc(addr), round(addr + size)).
        assert_eq!(
            t.protect(DATA + p - 1, 2, false, R),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.page_prot(DATA), Some((R, ALL)));
        assert_eq!(t.page_prot(DATA + p), Some((R, ALL)));
        assert_eq!(t.page_prot(DATA + 2 * p), Some((RW, ALL)));
        // Lowering max lowers cur.
        assert_eq!(
            t.protect(DATA, p, true, VM_PROT_WRITE | VM_PROT_EXECUTE),
            KERN_SUCCESS
        );
        assert_eq!(t.page_prot(DATA), Some((VM_PROT_NONE, W | VM_PROT_EXECUTE)));
        // cur can be set up to max.
        assert_eq!(t.protect(DATA, p, false, W), KERN_SUCCESS);
        assert_eq!(t.page_prot(DATA), Some((W, W | VM_PROT_EXECUTE)));
        // Raising max fails and changes nothing.
        assert_eq!(
            t.protect(DATA, p, true, ALL),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        assert_eq!(t.page_prot(DATA), Some((W, W | VM_PROT_EXECUTE)));
        // The result is visible through vm_region.
        let (r, addr, size, info, count) = t.region(DATA);
        assert_eq!(r, KERN_SUCCESS);
        assert_eq!(
            (addr, size, info, count),
            (
                DATA,
                p,
                [W.0, (W | VM_PROT_EXECUTE).0, VM_INHERIT_COPY.0 as i32],
                9
            )
        );
        let (r, addr, size, info, _) = t.region(DATA + p + 5);
        assert_eq!(r, KERN_SUCCESS);
        assert_eq!(
            (addr, size, info),
            (DATA + p, p, [R.0, ALL.0, 1]),
            "{}",
            t.ctx()
        );
    });
}
