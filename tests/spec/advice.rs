//! SPEC §9: `vm_behavior_set`, `vm_msync`, `vm_wire` and the word-sized `vm_region`, row by
//! row, in both forms, both widths and both page sizes.

use crate::common::*;
use machvm::consts::*;
use machvm::Call;

impl T {
    fn behavior(&mut self, addr: u64, size: u64, behavior: i32) -> i32 {
        let form = self.form;
        self.ret(Call::BehaviorSet {
            form,
            task: SELF,
            addr,
            size,
            behavior: behavior as u32,
        })
    }

    fn msync(&mut self, addr: u64, size: u64, flags: u32) -> i32 {
        let form = self.form;
        self.ret(Call::Msync {
            form,
            task: SELF,
            addr,
            size,
            flags,
        })
    }

    /// The `behavior` word of the region at `addr`, in both flavors (they must agree).
    fn region_behavior(&mut self, addr: u64) -> i32 {
        let mut got = [0; 2];
        for (k, (flavor, count, at)) in [(9u32, 9u32, 28u64), (10, 8, 24)].into_iter().enumerate() {
            let (r, ..) = self.region_with(addr, flavor, count);
            assert_eq!(r, KERN_SUCCESS, "{}", self.ctx());
            got[k] = self.get_uint(INFO + at, 4) as i32;
        }
        assert_eq!(got[0], got[1], "{} flavors 9 and 10 disagree", self.ctx());
        got[0]
    }
}

/// Persistent behaviors: recorded on the range, reported by vm_region, regions split on them.
const PERSISTENT: [i32; 4] = [
    VM_BEHAVIOR_DEFAULT,
    VM_BEHAVIOR_RANDOM,
    VM_BEHAVIOR_SEQUENTIAL,
    VM_BEHAVIOR_RSEQNTL,
];

/// Every value vm_behavior_set accepts.
const ACCEPTED: [i32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

#[test]
fn behavior_row1_names_resolve_first() {
    each(|t| {
        for name in [MACH_PORT_NULL, MACH_PORT_DEAD, 0x303, 0x12345] {
            let c = Call::BehaviorSet {
                form: t.form,
                task: name,
                addr: 1,
                size: u64::MAX,
                behavior: 99,
            };
            assert_eq!(t.ret(c), MACH_SEND_INVALID_DEST, "{}", t.ctx());
        }
        let c = Call::BehaviorSet {
            form: t.form,
            task: HOST_SELF_NAME,
            addr: DATA,
            size: t.p,
            behavior: 0,
        };
        assert_eq!(t.ret(c), KERN_INVALID_ARGUMENT, "{}", t.ctx());
    });
}

#[test]
fn behavior_row2_a_wrapping_range_is_invalid_argument() {
    each(|t| {
        let amax = t.amax();
        for b in [0, 5, 99] {
            assert_eq!(t.behavior(amax, 1, b), KERN_INVALID_ARGUMENT, "{}", t.ctx());
            assert_eq!(t.behavior(1, amax, b), KERN_INVALID_ARGUMENT, "{}", t.ctx());
        }
    });
}

#[test]
fn behavior_row3_size_zero_succeeds_whatever_the_address_and_behavior() {
    each(|t| {
        let before = t.pages();
        for (addr, b) in [(0, 99), (DATA, -1), (t.amax(), 11), (0x7FFF_0000, 4)] {
            assert_eq!(t.behavior(addr, 0, b), KERN_SUCCESS, "{}", t.ctx());
        }
        assert_eq!(t.pages(), before, "{}", t.ctx());
    });
}

#[test]
fn behavior_row4_an_end_past_the_map_or_wrapping_to_zero_is_no_space() {
    each(|t| {
        let p = t.p;
        let map = 64 * 65536u64;
        let last = t.amax() & !(p - 1);
        for b in [0, 4, 5, 8, 99] {
            // Past the map (an unknown behavior is looked at after the range).
            assert_eq!(t.behavior(map - p, 2 * p, b), KERN_NO_SPACE, "{}", t.ctx());
            // `start + size` fits, its rounding wraps to 0 below the start.
            assert_eq!(t.behavior(last, p - 1, b), KERN_NO_SPACE, "{}", t.ctx());
        }
        // From page 0 the wrapped end equals the start: only page 0 is looked at.
        let before = t.pages();
        for b in PERSISTENT.into_iter().chain([4, 5, 6, 7, 8, 9, 10]) {
            assert_eq!(t.behavior(0, t.amax(), b), KERN_SUCCESS, "{} {b}", t.ctx());
        }
        assert_eq!(t.pages(), before, "{} nothing recorded", t.ctx());
        assert_eq!(t.deallocate(0, p), KERN_SUCCESS);
        assert_eq!(
            t.behavior(0, t.amax(), 0),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
    });
}

#[test]
fn behavior_row5_unknown_behaviors_are_invalid_argument() {
    each(|t| {
        for b in [VM_BEHAVIOR_PAGEOUT, 12, -1, i32::MAX] {
            assert_eq!(
                t.behavior(DATA, t.p, b),
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
        }
    });
}

#[test]
fn behavior_row6_persistent_behaviors_are_recorded_and_reported() {
    each(|t| {
        let p = t.p;
        // A hole anywhere in the range: KERN_INVALID_ADDRESS, nothing recorded.
        assert_eq!(t.deallocate(DATA + 2 * p, p), KERN_SUCCESS);
        let before = t.pages();
        for b in ACCEPTED.into_iter().filter(|&b| b != 5 && b != 6) {
            assert_eq!(
                t.behavior(DATA, 3 * p, b),
                KERN_INVALID_ADDRESS,
                "{} {b}",
                t.ctx()
            );
            assert_eq!(
                t.behavior(DATA + 2 * p, 1, b),
                KERN_INVALID_ADDRESS,
                "{}",
                t.ctx()
            );
        }
        assert_eq!(t.pages(), before, "{}", t.ctx());
        for b in PERSISTENT {
            // An unaligned range covers its whole pages.
            assert_eq!(t.behavior(DATA + 1, p, b), KERN_SUCCESS, "{} {b}", t.ctx());
            assert_eq!(t.page(DATA).unwrap().behavior, b);
            assert_eq!(t.page(DATA + p).unwrap().behavior, b);
            assert_eq!(t.page(DATA - p).unwrap().behavior, 0);
            assert_eq!(t.region_behavior(DATA), b, "{}", t.ctx());
            // The region is exactly the two pages when the behavior is not the default.
            let (_, start, size, ..) = t.region(DATA);
            if b != VM_BEHAVIOR_DEFAULT {
                assert_eq!((start, size), (DATA, 2 * p), "{}", t.ctx());
            }
        }
        // vm_protect keeps the behavior; new memory has the default.
        assert_eq!(t.behavior(DATA, p, VM_BEHAVIOR_RANDOM), KERN_SUCCESS);
        assert_eq!(t.protect(DATA, p, false, R), KERN_SUCCESS);
        assert_eq!(t.page(DATA).unwrap().behavior, VM_BEHAVIOR_RANDOM);
        let (r, a) = t.allocate(DATA, p, VM_FLAGS_OVERWRITE);
        assert_eq!((r, a), (KERN_SUCCESS, DATA), "{}", t.ctx());
        assert_eq!(t.page(DATA).unwrap().behavior, VM_BEHAVIOR_DEFAULT);
    });
}

#[test]
fn behavior_row7_advice_needs_the_range_mapped_and_keeps_the_contents() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 4 * p, 7);
        let before = (t.mem(), t.pages());
        for b in [
            VM_BEHAVIOR_WILLNEED,
            VM_BEHAVIOR_DONTNEED,
            VM_BEHAVIOR_FREE,
            VM_BEHAVIOR_ZERO_WIRED_PAGES,
            VM_BEHAVIOR_REUSABLE,
            VM_BEHAVIOR_REUSE,
            VM_BEHAVIOR_CAN_REUSE,
        ] {
            assert_eq!(t.behavior(DATA, 4 * p, b), KERN_SUCCESS, "{} {b}", t.ctx());
        }
        assert_eq!((t.mem(), t.pages()), before, "{}", t.ctx());
        assert_eq!(t.deallocate(DATA + 3 * p, p), KERN_SUCCESS);
        for b in 4..=10 {
            assert_eq!(
                t.behavior(DATA, 4 * p, b),
                KERN_INVALID_ADDRESS,
                "{} {b}",
                t.ctx()
            );
        }
    });
}

#[test]
fn behavior_row8_reusable_needs_write_access_after_the_range_check() {
    each(|t| {
        let p = t.p;
        assert_eq!(t.protect(DATA + p, p, false, R), KERN_SUCCESS);
        let b = VM_BEHAVIOR_REUSABLE;
        assert_eq!(
            t.behavior(DATA, 3 * p, b),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // Only REUSABLE looks at the protection.
        assert_eq!(t.behavior(DATA, 3 * p, VM_BEHAVIOR_REUSE), KERN_SUCCESS);
        assert_eq!(t.behavior(DATA, 3 * p, VM_BEHAVIOR_FREE), KERN_SUCCESS);
        // A hole anywhere wins over the read-only page before it.
        assert_eq!(t.deallocate(DATA + 3 * p, p), KERN_SUCCESS);
        assert_eq!(
            t.behavior(DATA, 4 * p, b),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
    });
}

#[test]
fn msync_row1_names_and_the_host_port() {
    each(|t| {
        for name in [MACH_PORT_NULL, MACH_PORT_DEAD, 0x303] {
            let c = Call::Msync {
                form: t.form,
                task: name,
                addr: DATA,
                size: t.p,
                flags: 3,
            };
            assert_eq!(t.ret(c), MACH_SEND_INVALID_DEST, "{}", t.ctx());
        }
        let c = Call::Msync {
            form: t.form,
            task: HOST_SELF_NAME,
            addr: DATA,
            size: t.p,
            flags: 3,
        };
        assert_eq!(t.ret(c), KERN_INVALID_TASK, "{}", t.ctx());
    });
}

#[test]
fn msync_row2_synchronous_with_asynchronous_is_invalid_argument() {
    each(|t| {
        let both = VM_SYNC_SYNCHRONOUS | VM_SYNC_ASYNCHRONOUS;
        for (addr, size) in [(DATA, 0), (t.amax(), 2), (0x7FFF_0000, 1)] {
            let flags = both | VM_SYNC_CONTIGUOUS;
            assert_eq!(
                t.msync(addr, size, flags),
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
        }
    });
}

#[test]
fn msync_row3_a_wrapping_range_is_invalid_address() {
    each(|t| {
        let p = t.p;
        let last = t.amax() & !(p - 1);
        for flags in [0, VM_SYNC_SYNCHRONOUS] {
            assert_eq!(
                t.msync(t.amax(), 1, flags),
                KERN_INVALID_ADDRESS,
                "{}",
                t.ctx()
            );
            assert_eq!(
                t.msync(last, p - 1, flags),
                KERN_INVALID_ADDRESS,
                "{}",
                t.ctx()
            );
        }
    });
}

#[test]
fn msync_row4_holes_matter_only_with_contiguous() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 4 * p, 3);
        assert_eq!(t.deallocate(DATA + 2 * p, p), KERN_SUCCESS);
        let before = (t.mem(), t.pages());
        let c = VM_SYNC_CONTIGUOUS;
        for flags in [
            VM_SYNC_SYNCHRONOUS,
            VM_SYNC_ASYNCHRONOUS | VM_SYNC_INVALIDATE,
            VM_SYNC_KILLPAGES,
            VM_SYNC_DEACTIVATE,
            VM_SYNC_REUSABLEPAGES,
            0x80,
        ] {
            assert_eq!(t.msync(DATA, 2 * p, flags | c), KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(t.msync(DATA, 4 * p, flags), KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(
                t.msync(DATA, 4 * p, flags | c),
                KERN_INVALID_ADDRESS,
                "{}",
                t.ctx()
            );
            // Past the map is a hole too.
            assert_eq!(t.msync(0x7FFF_0000, p, flags), KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(t.msync(0x7FFF_0000, p, flags | c), KERN_INVALID_ADDRESS);
        }
        // Size 0 covers nothing at a page boundary, and the address's page inside one.
        assert_eq!(t.msync(DATA + 2 * p, 0, c), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(
            t.msync(DATA + 2 * p + 1, 0, c),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.msync(DATA + 1, 0, c), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!((t.mem(), t.pages()), before, "{} contents kept", t.ctx());
    });
}

#[test]
fn wire_is_refused_for_want_of_the_host_privileged_port() {
    each(|t| {
        let before = (t.mem(), t.pages());
        let (form, size) = (t.form, t.p);
        let wire = |host: u32, task: u32| Call::Wire {
            form,
            host,
            task,
            addr: DATA,
            size,
            prot: VM_PROT_READ as u32,
        };
        // A port the guest holds, but not the privileged one.
        for host in [HOST_SELF_NAME, SELF] {
            for task in [SELF, MACH_PORT_NULL, MACH_PORT_DEAD, HOST_SELF_NAME] {
                assert_eq!(t.ret(wire(host, task)), KERN_INVALID_HOST, "{}", t.ctx());
            }
            // A task name the guest does not hold fails the send.
            assert_eq!(
                t.ret(wire(host, 0x303)),
                MACH_SEND_INVALID_RIGHT,
                "{}",
                t.ctx()
            );
        }
        // The destination is checked first.
        for host in [MACH_PORT_NULL, MACH_PORT_DEAD, 0x303] {
            assert_eq!(
                t.ret(wire(host, 0x303)),
                MACH_SEND_INVALID_DEST,
                "{}",
                t.ctx()
            );
        }
        assert_eq!((t.mem(), t.pages()), before, "{}", t.ctx());
    });
}

/// `vm_region` answers exactly as `vm_region_64` (the word-sized form of the same call).
#[test]
fn vm_region_is_vm_region_64() {
    each(|t| {
        if t.form != machvm::Form::Vm {
            return;
        }
        let p = t.p;
        assert_eq!(t.protect(DATA, p, false, R), KERN_SUCCESS);
        assert_eq!(t.deallocate(DATA + 2 * p, p), KERN_SUCCESS);
        assert_eq!(
            t.behavior(DATA + 3 * p, p, VM_BEHAVIOR_SEQUENTIAL),
            KERN_SUCCESS
        );
        let n = t.word();
        for addr in [
            0,
            1,
            DATA,
            DATA + p + 5,
            DATA + 2 * p,
            DATA + 3 * p,
            0x3F_0000,
            0x7FFF_0000,
        ] {
            for (flavor, count) in [(9u32, 9u32), (10, 8), (10, 7), (11, 10)] {
                let mut answers = Vec::new();
                for legacy in [false, true] {
                    t.put(PTR, &addr.to_le_bytes()[..n]);
                    t.put(PTR + 8, &[0xAA; 8]);
                    t.put(INFO, &[0xAA; 40]);
                    t.put(PTR + 16, &count.to_le_bytes());
                    t.put(PTR + 20, &[0xAA; 4]);
                    let (task, addr_ptr, size_ptr, info_ptr) = (SELF, PTR, PTR + 8, INFO);
                    let (count_ptr, object_name_ptr) = (PTR + 16, PTR + 20);
                    let c = if legacy {
                        Call::VmRegion {
                            task,
                            addr_ptr,
                            size_ptr,
                            flavor,
                            info_ptr,
                            count_ptr,
                            object_name_ptr,
                        }
                    } else {
                        Call::Region {
                            form: machvm::Form::Vm,
                            task,
                            addr_ptr,
                            size_ptr,
                            flavor,
                            info_ptr,
                            count_ptr,
                            object_name_ptr,
                        }
                    };
                    answers.push((t.ret(c), t.get(PTR, 24), t.get(INFO, 40)));
                }
                assert_eq!(answers[0], answers[1], "{} {addr:#x} {flavor}", t.ctx());
            }
        }
    });
}
