//! Permanent pages (`machvm::host::make_permanent`, XNU's permanent map entries): no guest
//! call removes or replaces them, so an embedder's read-only range stays read-only whatever
//! the guest does. Through the forwarding guests, in every configuration and form.

use crate::common::*;
use machvm::abi::*;
use machvm::host;

#[test]
fn a_permanent_read_only_range_stays_read_only() {
    each_machvm(|t| {
        let p = t.p;
        let g = t.g;
        let task = t.harness().task(g);
        let (a, n) = (4 * p, 2 * p);
        t.pattern(a, n, 7);
        let before = t.get(a, n as usize);
        host::protect(t.harness().store(), task, a, n, true, VM_PROT_READ).unwrap();
        host::make_permanent(t.harness().store(), task, a, n).unwrap();
        let ro = Some((VM_PROT_READ, VM_PROT_READ));
        let ctx = t.ctx();
        // VM_PROT_COPY would replace the pages by a writable copy: refused, nothing changes.
        for prot in [VM_PROT_COPY | VM_PROT_DEFAULT, VM_PROT_COPY | VM_PROT_READ] {
            assert_eq!(t.protect(a, n, false, prot), KERN_NO_SPACE, "{ctx}");
            assert_eq!(t.protect(a + p, 1, false, prot), KERN_NO_SPACE, "{ctx}");
        }
        // Raising above the maximum is refused as for any page.
        assert_eq!(
            t.protect(a, n, false, VM_PROT_DEFAULT),
            KERN_PROTECTION_FAILURE,
            "{ctx}"
        );
        // An overwriting allocation cannot replace them; a plain one finds them taken.
        let overwrite = VM_FLAGS_FIXED | VM_FLAGS_OVERWRITE;
        assert_eq!(t.allocate(a, n, overwrite).0, KERN_NO_SPACE, "{ctx}");
        assert_eq!(
            t.allocate(a - p, 2 * p, overwrite).0,
            KERN_NO_SPACE,
            "{ctx}"
        );
        assert_eq!(t.allocate(a, n, VM_FLAGS_FIXED).0, KERN_NO_SPACE, "{ctx}");
        // Writes into them fail as for any read-only page.
        assert_eq!(t.copy(0, 16, a), KERN_PROTECTION_FAILURE, "{ctx}");
        assert_eq!(t.page_prot(a), ro, "{ctx}");
        assert_eq!(t.page_prot(a + p), ro, "{ctx}");
        assert_eq!(t.get(a, n as usize), before, "{ctx}");
        // Lowering is allowed.
        assert_eq!(
            t.protect(a + p, p, true, VM_PROT_NONE),
            KERN_SUCCESS,
            "{ctx}"
        );
        assert_eq!(
            t.page_prot(a + p),
            Some((VM_PROT_NONE, VM_PROT_NONE)),
            "{ctx}"
        );
        // Deallocation leaves them allocated with no access; their neighbours go.
        assert_eq!(t.deallocate(a - p, n + 2 * p), KERN_SUCCESS, "{ctx}");
        assert_eq!(t.page_prot(a - p), None, "{ctx}");
        assert_eq!(t.page_prot(a), Some((VM_PROT_NONE, VM_PROT_NONE)), "{ctx}");
        assert_eq!(
            t.page_prot(a + p),
            Some((VM_PROT_NONE, VM_PROT_NONE)),
            "{ctx}"
        );
        assert_eq!(t.page_prot(a + n), None, "{ctx}");
        assert!(t.page(a).unwrap().permanent, "{ctx}");
        // And no call makes them accessible again.
        assert_eq!(
            t.protect(a, n, false, VM_PROT_READ),
            KERN_PROTECTION_FAILURE,
            "{ctx}"
        );
        assert_eq!(
            t.protect(a, n, false, VM_PROT_COPY | VM_PROT_READ),
            KERN_NO_SPACE,
            "{ctx}"
        );
        assert_eq!(t.allocate(a, n, overwrite).0, KERN_NO_SPACE, "{ctx}");
    });
}

#[test]
fn only_allocated_pages_can_be_made_permanent() {
    let mut t = T::new(machvm::Width::W32, 4096, machvm::Form::Vm, 4, Some(64));
    let g = t.g;
    let task = t.harness().task(g);
    assert_eq!(t.deallocate(0x3000, 0x1000), KERN_SUCCESS);
    let e = host::make_permanent(t.harness().store(), task, 0x2000, 0x2000).unwrap_err();
    assert_eq!(e.code(), KERN_INVALID_ADDRESS);
    assert!(!t.page(0x2000).unwrap().permanent, "nothing changed");
    host::make_permanent(t.harness().store(), task, 0x2000, 0).unwrap();
    let e = host::make_permanent(t.harness().store(), task, 0x3f000, 0x2000).unwrap_err();
    assert_eq!(e.code(), KERN_INVALID_ADDRESS);
}
