//! spec §4 vm_copy, every row, through the wasm forwarders.

use crate::common::*;
use machvm::abi::*;

#[test]
fn row1_size_zero_succeeds_without_looking_at_addresses() {
    each(|t| {
        let before = t.mem();
        let top = t.amax();
        assert_eq!(t.copy(top, 0, top), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.copy(0x7FFF_0000, 0, 3), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.mem(), before);
    });
}

#[test]
fn row2_source_wrap_and_round_wrap_are_invalid_address() {
    each(|t| {
        let before = t.mem();
        let top = t.amax();
        // src + size does not fit in the width.
        assert_eq!(
            t.copy(top - 7, 16, DATA),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // src + size is exactly 2^width: does not fit either.
        assert_eq!(
            t.copy(top - 15, 16, DATA),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // round(src + size) wraps to 0.
        let p = t.p;
        assert_eq!(
            t.copy(top - p + 1, p - 2, DATA),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.mem(), before, "{}", t.ctx());
    });
}

#[test]
fn row2_wrap_is_checked_in_the_calls_width() {
    // For a 32-bit guest, vm_copy wraps at 2^32 while mach_vm_copy does not: the same
    // range is then simply outside the map (still INVALID_ADDRESS, but after the source
    // protection check order shows which rule fired).
    each(|t| {
        if t.w != machvm::Width::W32 {
            return;
        }
        // Page 0 unreadable: a wrapping range is refused before pages are looked at, a
        // non-wrapping one reports the first page.
        assert_eq!(t.protect(0, 1, false, VM_PROT_NONE), KERN_SUCCESS);
        let size = 0xFFFF_FFF0u64;
        let r = t.copy(0x20, size, DATA);
        match t.form {
            machvm::Form::Vm => assert_eq!(r, KERN_INVALID_ADDRESS, "{}", t.ctx()),
            machvm::Form::MachVm => assert_eq!(r, KERN_PROTECTION_FAILURE, "{}", t.ctx()),
        }
    });
}

#[test]
fn row3_source_pages_in_order() {
    each(|t| {
        let p = t.p;
        // An unallocated source page.
        assert_eq!(t.deallocate(DATA + p, p), KERN_SUCCESS);
        let before = t.mem();
        assert_eq!(
            t.copy(DATA, 3 * p, DATA + 8 * p),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // A source page without READ.
        assert_eq!(
            t.protect(DATA + 2 * p, p, false, VM_PROT_WRITE),
            KERN_SUCCESS
        );
        assert_eq!(
            t.copy(DATA + 2 * p, p, DATA + 8 * p),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // The first bad page decides: unallocated then unreadable -> INVALID_ADDRESS ...
        assert_eq!(
            t.copy(DATA + p, 2 * p, DATA + 8 * p),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // ... unreadable then unallocated -> PROTECTION_FAILURE.
        assert_eq!(t.protect(DATA, p, false, VM_PROT_NONE), KERN_SUCCESS);
        assert_eq!(
            t.copy(DATA + 100, 2 * p, DATA + 8 * p),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // Outside the map (4 MiB here) and past the memory: INVALID_ADDRESS.
        assert_eq!(
            t.copy(4 << 20, 16, DATA + 8 * p),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.copy(0x40000 - 8, 16, DATA + 8 * p),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.mem(), before, "{}", t.ctx());
    });
}

#[test]
fn row4_destination_after_the_whole_source() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 4 * p, 1);
        assert_eq!(
            t.protect(DATA + 4 * p, p, false, VM_PROT_READ),
            KERN_SUCCESS
        );
        assert_eq!(t.deallocate(DATA + 6 * p, p), KERN_SUCCESS);
        assert_eq!(
            t.protect(DATA + 7 * p, p, false, VM_PROT_NONE),
            KERN_SUCCESS
        );
        let before = t.mem();
        // Destination without WRITE.
        assert_eq!(
            t.copy(DATA, 16, DATA + 4 * p + 5),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // Destination unallocated.
        assert_eq!(
            t.copy(DATA, 16, DATA + 6 * p),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // First bad destination page decides: read-only (page 4) before the hole (page 6).
        assert_eq!(
            t.copy(DATA, 3 * p, DATA + 4 * p),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // Hole (page 6) before nothing else: writable page 5 then hole.
        assert_eq!(
            t.copy(DATA, 2 * p, DATA + 5 * p),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // The source is checked first: bad source and bad destination -> the source's code.
        assert_eq!(
            t.copy(DATA + 6 * p, 16, DATA + 4 * p),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.copy(DATA + 7 * p, 16, DATA + 6 * p),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // Destination wrap.
        let top = t.amax();
        assert_eq!(
            t.copy(DATA, 16, top - 7),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.copy(DATA, p - 2, top - p + 1),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // Destination outside the map.
        assert_eq!(
            t.copy(DATA, 16, (4 << 20) - 8),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // All or nothing: no byte changed by any of the failures.
        assert_eq!(t.mem(), before, "{}", t.ctx());
    });
}

#[test]
fn row5_copies_exactly_size_bytes_unaligned() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 4 * p, 7);
        for (src_off, dst_off, size) in [
            (3, 5, 1),
            (1, 2 * p + 7, p + 13),
            (0, 2 * p, p),
            (17, 3 * p - 1, 2),
        ] {
            let (src, dst) = (DATA + src_off, DATA + dst_off);
            let mut want = t.mem();
            want.copy_within(src as usize..(src + size) as usize, dst as usize);
            assert_eq!(t.copy(src, size, dst), KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(
                t.mem(),
                want,
                "{} copy {src:#x} {size:#x} {dst:#x}",
                t.ctx()
            );
        }
    });
}

#[test]
fn row5_overlap_in_both_directions_is_memmove() {
    each(|t| {
        let p = t.p;
        for (src, dst, size) in [
            (DATA, DATA + 1, 2 * p),           // forward overlap
            (DATA + 1, DATA, 2 * p),           // backward overlap
            (DATA + 100, DATA + p - 3, 3 * p), // across page boundaries
            (DATA + 5, DATA + 5, p),           // onto itself
        ] {
            t.pattern(DATA, 4 * p, 3);
            let mut want = t.mem();
            want.copy_within(src as usize..(src + size) as usize, dst as usize);
            assert_eq!(t.copy(src, size, dst), KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(t.mem(), want, "{} overlap {src:#x} -> {dst:#x}", t.ctx());
        }
    });
}

#[test]
fn copies_into_write_only_pages_and_out_of_read_only_ones() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, p, 9);
        assert_eq!(t.protect(DATA, p, false, VM_PROT_READ), KERN_SUCCESS);
        assert_eq!(t.protect(DATA + p, p, false, VM_PROT_WRITE), KERN_SUCCESS);
        let want = t.get(DATA, 64);
        assert_eq!(t.copy(DATA, 64, DATA + p), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(DATA + p, 64), want);
    });
}
