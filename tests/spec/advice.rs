//! spec §9: `vm_behavior_set`, `vm_msync`, `vm_wire` and the word-sized `vm_region`, row by
//! row, in both forms, both widths and both page sizes.

use crate::common::*;
use machvm::abi::*;
use machvm::Call;

impl T {
    fn behavior(&mut self, addr: u64, size: u64, behavior: i32) -> KernReturn {
        let form = self.form;
        self.ret(Call::BehaviorSet {
            form,
            task: TASK_SELF_NAME,
            addr,
            size,
            behavior: behavior as u32,
        })
    }

    fn msync(&mut self, addr: u64, size: u64, flags: u32) -> KernReturn {
        let form = self.form;
        self.ret(Call::Msync {
            form,
            task: TASK_SELF_NAME,
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
        let form = t.form;
        t.names_resolve_first(|task, valid| Call::BehaviorSet {
            form,
            task,
            addr: if valid { DATA } else { 1 },
            size: if valid { 0x1000 } else { u64::MAX },
            behavior: if valid { 0 } else { 99 },
        });
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
        for name in [MACH_PORT_NULL, MACH_PORT_DEAD, MachPort(0x303)] {
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
        let wire = |host: MachPort, task: MachPort| Call::Wire {
            form,
            host,
            task,
            addr: DATA,
            size,
            prot: VM_PROT_READ,
        };
        // A port the guest holds, but not the privileged one.
        for host in [HOST_SELF_NAME, TASK_SELF_NAME] {
            for task in [
                TASK_SELF_NAME,
                MACH_PORT_NULL,
                MACH_PORT_DEAD,
                HOST_SELF_NAME,
            ] {
                assert_eq!(t.ret(wire(host, task)), KERN_INVALID_HOST, "{}", t.ctx());
            }
            // A task name the guest does not hold fails the send.
            assert_eq!(
                t.ret(wire(host, MachPort(0x303))),
                MACH_SEND_INVALID_RIGHT,
                "{}",
                t.ctx()
            );
        }
        // The destination is checked first.
        for host in [MACH_PORT_NULL, MACH_PORT_DEAD, MachPort(0x303)] {
            assert_eq!(
                t.ret(wire(host, MachPort(0x303))),
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
                    let (task, addr_ptr, size_ptr, info_ptr) = (MachPort(SELF), PTR, PTR + 8, INFO);
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

/// Reads a little-endian u32 at `at` of `bytes`.
fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn dword(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

impl T {
    fn page_query(&mut self, addr: u64) -> (KernReturn, u32, u32) {
        let form = self.form;
        self.put(PTR, &[0xAA; 8]);
        let r = self.ret(Call::PageQuery {
            form,
            task: TASK_SELF_NAME,
            addr,
            disposition_ptr: PTR,
            ref_count_ptr: PTR + 4,
        });
        (
            r,
            self.get_uint(PTR, 4) as u32,
            self.get_uint(PTR + 4, 4) as u32,
        )
    }

    /// `task_info` with `*count = count`: the code, the info's bytes (0xAA where not
    /// written) and the count read back.
    fn task_info(&mut self, flavor: i32, count: u32) -> (KernReturn, Vec<u8>, u32) {
        self.put(PTR, &count.to_le_bytes());
        self.put(INFO, &[0xAA; 400]);
        let r = self.ret(Call::TaskInfo {
            task: TASK_SELF_NAME,
            flavor: flavor as u32,
            info_ptr: INFO,
            count_ptr: PTR,
        });
        (r, self.get(INFO, 400), self.get_uint(PTR, 4) as u32)
    }

    fn host_statistics(
        &mut self,
        host: MachPort,
        flavor: i32,
        count: u32,
    ) -> (KernReturn, Vec<u8>, u32) {
        self.put(PTR, &count.to_le_bytes());
        self.put(INFO, &[0xAA; 200]);
        let r = self.ret(Call::HostStatistics64 {
            host,
            flavor: flavor as u32,
            info_ptr: INFO,
            count_ptr: PTR,
        });
        (r, self.get(INFO, 200), self.get_uint(PTR, 4) as u32)
    }
}

const PRESENT_REF: u32 = (VM_PAGE_QUERY_PAGE_PRESENT | VM_PAGE_QUERY_PAGE_REF) as u32;

#[test]
fn page_query_reports_allocation_and_residency() {
    // Residency is a fact of the host, which the model is told, not one it models.
    each_machvm(|t| {
        // A hole, the map's end and past it: nothing, successfully.
        assert_eq!(t.deallocate(DATA, t.p), KERN_SUCCESS);
        for addr in [DATA, DATA + 5, 64 * 65536, 0x7FFF_0000] {
            assert_eq!(
                t.page_query(addr),
                (KERN_SUCCESS, 0, 0),
                "{} {addr:#x}",
                t.ctx()
            );
        }
        // An allocated page never touched: not present; once written, present.
        let a = t.fresh(2);
        assert_eq!(
            t.page_query(a + t.p + 7),
            (KERN_SUCCESS, 0, 1),
            "{}",
            t.ctx()
        );
        t.put(a + t.p, &[1]);
        assert_eq!(
            t.page_query(a + t.p + 7),
            (KERN_SUCCESS, PRESENT_REF, 1),
            "{}",
            t.ctx()
        );
        // The last page of the address width: its end wraps.
        let last = t.amax() & !(t.p - 1);
        assert_eq!(t.page_query(last).0, KERN_INVALID_ADDRESS, "{}", t.ctx());
        // The out-parameters are scalars: an unwritable one traps.
        let f = t.trap(Call::PageQuery {
            form: t.form,
            task: TASK_SELF_NAME,
            addr: a,
            disposition_ptr: DATA,
            ref_count_ptr: PTR,
        });
        assert_eq!((f.param, f.write), ("disposition", true));
    });
}

#[test]
fn page_info_checks_flavor_and_count_and_fills_the_basic_info() {
    // Residency is a fact of the host, which the model is told, not one it models.
    each_machvm(|t| {
        if t.form != machvm::Form::MachVm {
            return;
        }
        let a = t.fresh(1);
        t.put(a, &[1]);
        let info = |t: &mut T, addr: u64, flavor: u32, count: u32| {
            t.put(PTR, &count.to_le_bytes());
            t.put(INFO, &[0xAA; 40]);
            let r = t.ret(Call::PageInfo {
                task: TASK_SELF_NAME,
                addr,
                flavor,
                info_ptr: INFO,
                count_ptr: PTR,
            });
            (r, t.get(INFO, 40), t.get_uint(PTR, 4) as u32)
        };
        for (flavor, count) in [(2, 8), (0, 8), (1, 9), (1, 6), (1, 33), (1, 1000)] {
            let (r, ..) = info(t, a, flavor, count);
            assert_eq!(r, KERN_INVALID_ARGUMENT, "{} {flavor} {count}", t.ctx());
        }
        let (r, bytes, count) = info(t, a + 13, 1, 8);
        assert_eq!((r, count), (KERN_SUCCESS, 8), "{}", t.ctx());
        assert_eq!((word(&bytes, 0), word(&bytes, 4)), (PRESENT_REF, 1));
        assert_eq!(
            (dword(&bytes, 8), dword(&bytes, 16)),
            (0, 13),
            "object 0, offset"
        );
        assert_eq!(
            (word(&bytes, 24), word(&bytes, 28), word(&bytes, 32)),
            (0, 0, 0xAAAA_AAAA)
        );
        // Count 7: the pad is left alone.
        let (r, bytes, count) = info(t, a, 1, 7);
        assert_eq!((r, count, word(&bytes, 28)), (KERN_SUCCESS, 7, 0xAAAA_AAAA));
        // A hole: zeroes.
        assert_eq!(t.deallocate(a, t.p), KERN_SUCCESS);
        let (r, bytes, _) = info(t, a + 13, 1, 8);
        assert_eq!((r, &bytes[..32]), (KERN_SUCCESS, &[0u8; 32][..]));
        let (r, ..) = info(t, u64::MAX, 1, 8);
        assert_eq!(r, KERN_INVALID_ADDRESS);
    });
}

#[test]
fn page_range_query_follows_xnus_loop() {
    // Residency is a fact of the host, which the model is told, not one it models.
    each_machvm(|t| {
        if t.form != machvm::Form::MachVm {
            return;
        }
        let p = t.p;
        let a = t.fresh(4);
        t.put(a + p, &[1]);
        assert_eq!(t.deallocate(a + 3 * p, p), KERN_SUCCESS);
        let out = DATA;
        let query = |t: &mut T, addr: u64, size: u64, out: u64, count: u64| {
            t.put(PTR, &count.to_le_bytes());
            t.put(DATA, &[0xAA; 64]); // (the read-only buffer below is elsewhere)
            let r = t.ret(Call::PageRangeQuery {
                task: TASK_SELF_NAME,
                addr,
                size,
                dispositions: out,
                count_ptr: PTR,
            });
            (r, t.get(DATA, 64), t.get_uint(PTR, 8))
        };
        // Four pages asked, unaligned: untouched, written, untouched, a hole.
        let (r, bytes, n) = query(t, a + 5, 4 * p - 10, out, 10);
        assert_eq!((r, n), (KERN_SUCCESS, 4), "{}", t.ctx());
        let got: Vec<u32> = (0..5).map(|i| word(&bytes, i * 4)).collect();
        assert_eq!(got, [0, PRESENT_REF, 0, 0, 0xAAAA_AAAA], "{}", t.ctx());
        // Fewer asked than pages: only those.
        let (r, bytes, n) = query(t, a, 4 * p, out, 2);
        assert_eq!((r, n, word(&bytes, 8)), (KERN_SUCCESS, 2, 0xAAAA_AAAA));
        // Nothing asked, or an empty range: success, nothing written, the count as it was.
        assert_eq!(query(t, a, 4 * p, out, 0).2, 0);
        let (r, bytes, n) = query(t, a, 0, out, 3);
        assert_eq!((r, n, word(&bytes, 0)), (KERN_SUCCESS, 3, 0xAAAA_AAAA));
        // A count whose bytes overflow, a range whose end wraps: invalid arguments.
        assert_eq!(query(t, a, p, out, 1 << 62).0, KERN_INVALID_ARGUMENT);
        assert_eq!(
            query(t, u64::MAX - p + 1, p, out, 1).0,
            KERN_INVALID_ARGUMENT
        );
        assert_eq!(query(t, 5, u64::MAX - 2, out, 1).0, KERN_INVALID_ARGUMENT);
        // A buffer the caller cannot write: XNU's copyout error, 14, comes back as is.
        let read_only = DATA + 2 * p;
        assert_eq!(t.protect(read_only, p, false, R), KERN_SUCCESS);
        let (r, _, n) = query(t, a, p, read_only, 1);
        assert_eq!((r, n), (KERN_ABORTED, 1), "{}", t.ctx());
    });
}

#[test]
fn task_info_reports_the_task_as_xnu_lays_it_out() {
    each(|t| {
        let p = t.p;
        assert_eq!(t.protect(DATA, p, false, R), KERN_SUCCESS);
        let a = t.fresh(2);
        t.put(a, &[1]);
        let allocated = t.pages().iter().filter(|a| a.is_some()).count() as u64 * p;
        let (r, info, count) = t.task_info(MACH_TASK_BASIC_INFO, 12);
        assert_eq!((r, count), (KERN_SUCCESS, 12), "{}", t.ctx());
        let (virt, res, max) = (dword(&info, 0), dword(&info, 8), dword(&info, 16));
        assert_eq!(virt, allocated, "{}", t.ctx());
        assert!(res >= p && res < allocated && max >= res, "{res} {max}");
        assert_eq!(
            (word(&info, 40), word(&info, 44), word(&info, 48)),
            (1, 0, 0xAAAA_AAAA)
        );
        assert_eq!(
            t.task_info(MACH_TASK_BASIC_INFO, 11).0,
            KERN_INVALID_ARGUMENT
        );
        // TASK_VM_INFO: the newest revision the count holds.
        for (asked, answered) in [
            (36, 36),
            (37, 36),
            (38, 38),
            (41, 38),
            (42, 42),
            (88, 87),
            (89, 89),
            (5000, 89),
        ] {
            let (r, info, count) = t.task_info(TASK_VM_INFO, asked);
            assert_eq!((r, count), (KERN_SUCCESS, answered), "{} {asked}", t.ctx());
            let n = answered as usize * 4;
            assert_eq!(word(&info, n), 0xAAAA_AAAA, "nothing past the count");
            assert_eq!(dword(&info, 0), allocated);
            // region_count (the guest page 0..DATA, DATA read-only, the rest), page_size.
            assert_eq!(
                (word(&info, 8), word(&info, 12)),
                (3, p as u32),
                "{}",
                t.ctx()
            );
            assert_eq!(
                dword(&info, 16),
                dword(&info, 48),
                "internal is the resident size"
            );
            if answered >= 42 {
                assert_eq!((dword(&info, 152), dword(&info, 160)), (0, 64 * 65536));
            }
        }
        assert_eq!(t.task_info(TASK_VM_INFO, 35).0, KERN_INVALID_ARGUMENT);
        for flavor in [0, 4, 21, 24, 999] {
            assert_eq!(
                t.task_info(flavor, 1024).0,
                KERN_INVALID_ARGUMENT,
                "{flavor}"
            );
        }
        let c = Call::TaskInfo {
            task: HOST_SELF_NAME,
            flavor: TASK_VM_INFO as u32,
            info_ptr: INFO,
            count_ptr: PTR,
        };
        assert_eq!(t.ret(c), KERN_INVALID_ARGUMENT);
    });
}

#[test]
fn host_statistics64_needs_the_host_port_and_counts_what_machvm_knows() {
    each(|t| {
        let (r, info, count) = t.host_statistics(HOST_SELF_NAME, HOST_VM_INFO64, 38);
        assert_eq!((r, count), (KERN_SUCCESS, 38), "{}", t.ctx());
        let (free, active) = (word(&info, 0), word(&info, 4));
        // The map's pages past the memory are free; resident pages are active, anonymous.
        let map_pages = 64 * 65536 / t.p;
        let mem_pages = t.memory_size() / t.p;
        assert_eq!(u64::from(free), map_pages - mem_pages, "{}", t.ctx());
        assert!(active > 0 && word(&info, 140) == active, "{}", t.ctx());
        assert_eq!(word(&info, 152), 0xAAAA_AAAA);
        let (r, info, count) = t.host_statistics(HOST_SELF_NAME, HOST_VM_INFO64, 30);
        assert_eq!((r, count, word(&info, 96)), (KERN_SUCCESS, 24, 0xAAAA_AAAA));
        assert_eq!(
            t.host_statistics(HOST_SELF_NAME, HOST_VM_INFO64, 23).0,
            KERN_FAILURE
        );
        assert_eq!(
            t.host_statistics(HOST_SELF_NAME, 2, 38).0,
            KERN_INVALID_ARGUMENT
        );
        assert_eq!(
            t.host_statistics(TASK_SELF_NAME, HOST_VM_INFO64, 38).0,
            KERN_INVALID_HOST
        );
        assert_eq!(
            t.host_statistics(MachPort(0x303), HOST_VM_INFO64, 38).0,
            MACH_SEND_INVALID_DEST
        );
    });
}

impl T {
    /// vm_purgable_control with `*state = state`: the code and the state read back.
    fn purgable(&mut self, addr: u64, control: i32, state: i32) -> (KernReturn, i32) {
        let form = self.form;
        self.put(PTR, &state.to_le_bytes());
        let r = self.ret(Call::PurgableControl {
            form,
            task: TASK_SELF_NAME,
            addr,
            control: control as u32,
            state_ptr: PTR,
        });
        (r, self.get_uint(PTR, 4) as i32)
    }

    /// A purgeable allocation of `pages` pages, filled with a pattern.
    fn purgeable(&mut self, pages: u64) -> u64 {
        let (r, a) = self.allocate(0, pages * self.p, VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE);
        assert_eq!(r, KERN_SUCCESS, "{}", self.ctx());
        self.pattern(a, pages * self.p, 9);
        a
    }
}

const SET: i32 = VM_PURGABLE_SET_STATE;
const GET: i32 = VM_PURGABLE_GET_STATE;

#[test]
fn purgeable_objects_keep_emptied_state_and_answer_the_old_one() {
    each(|t| {
        let p = t.p;
        let a = t.purgeable(3);
        // A new purgeable allocation is nonvolatile; SET_STATE answers the old state.
        assert_eq!(
            t.purgable(a + 5, GET, 77),
            (KERN_SUCCESS, VM_PURGABLE_NONVOLATILE)
        );
        assert_eq!(t.purgable(a, SET, VM_PURGABLE_VOLATILE), (KERN_SUCCESS, 0));
        assert_eq!(
            t.purgable(a + 2 * p, GET, 0),
            (KERN_SUCCESS, VM_PURGABLE_VOLATILE)
        );
        let before = t.get(a, 3 * p as usize);
        assert_ne!(before, vec![0; 3 * p as usize]);
        // Volatile keeps the contents until something empties it.
        assert_eq!(
            t.purgable(a, SET, VM_PURGABLE_NONVOLATILE),
            (KERN_SUCCESS, 1)
        );
        assert_eq!(t.get(a, 3 * p as usize), before, "{}", t.ctx());
        // EMPTY empties the whole object at once, whatever page named it.
        assert_eq!(t.purgable(a + p, SET, VM_PURGABLE_EMPTY), (KERN_SUCCESS, 0));
        assert_eq!(
            t.get(a, 3 * p as usize),
            vec![0; 3 * p as usize],
            "{}",
            t.ctx()
        );
        // What has been emptied stays empty when made volatile; nonvolatile clears it.
        assert_eq!(t.purgable(a, SET, VM_PURGABLE_VOLATILE), (KERN_SUCCESS, 2));
        assert_eq!(t.purgable(a, GET, 0), (KERN_SUCCESS, VM_PURGABLE_EMPTY));
        assert_eq!(
            t.purgable(a, SET, VM_PURGABLE_NONVOLATILE),
            (KERN_SUCCESS, 2)
        );
        assert_eq!(t.purgable(a, SET, VM_PURGABLE_VOLATILE), (KERN_SUCCESS, 0));
        // The ordering, group and no-aging bits are accepted; DEBUG_EMPTY makes every
        // later volatile state empty at once.
        let bits = 0x200 | 0x40 | 0x1_0000; // group 2, LIFO, no aging
        assert_eq!(
            t.purgable(a, SET, VM_PURGABLE_VOLATILE | bits),
            (KERN_SUCCESS, 1)
        );
        t.pattern(a, p, 3);
        let debug = VM_PURGABLE_VOLATILE | VM_PURGABLE_DEBUG_EMPTY;
        assert_eq!(t.purgable(a, SET, debug), (KERN_SUCCESS, 1));
        assert_eq!(t.purgable(a, GET, 0), (KERN_SUCCESS, VM_PURGABLE_EMPTY));
        assert_eq!(t.get(a, 16), vec![0; 16]);
    });
}

#[test]
fn purgable_control_refusals_in_xnus_order() {
    each(|t| {
        let p = t.p;
        let a = t.purgeable(2);
        // Controls: FROM_KERNEL and unknown ones are refused before anything else.
        for control in [VM_PURGABLE_SET_STATE_FROM_KERNEL, 4, -1] {
            assert_eq!(
                t.purgable(DATA + 9 * p, control, 0).0,
                KERN_INVALID_ARGUMENT
            );
        }
        // SET_STATE: unknown bits, then DENY.
        assert_eq!(t.purgable(a, SET, 0x8).0, KERN_INVALID_ARGUMENT);
        assert_eq!(t.purgable(a, SET, 0x2_0000).0, KERN_INVALID_ARGUMENT);
        assert_eq!(
            t.purgable(a, SET, VM_PURGABLE_DENY).0,
            KERN_INVALID_ARGUMENT
        );
        assert_eq!(
            t.purgable(a, GET, 0),
            (KERN_SUCCESS, 0),
            "DENY changed nothing"
        );
        // A hole; memory that is not purgeable.
        assert_eq!(t.deallocate(a + p, p), KERN_SUCCESS);
        assert_eq!(t.purgable(a + p, GET, 0).0, KERN_INVALID_ADDRESS);
        assert_eq!(t.purgable(DATA, GET, 0).0, KERN_INVALID_ARGUMENT);
        assert_eq!(t.purgable(DATA, SET, 1).0, KERN_INVALID_ARGUMENT);
        // Not writable: SET_STATE refused, GET_STATE answered.
        assert_eq!(t.protect(a, p, false, R), KERN_SUCCESS);
        assert_eq!(t.purgable(a, SET, 1).0, KERN_PROTECTION_FAILURE);
        assert_eq!(t.purgable(a, GET, 0), (KERN_SUCCESS, 0));
        // A private copy (VM_PROT_COPY) is not the purgeable object any more.
        assert_eq!(t.protect(a, p, false, VM_PROT_COPY | RW), KERN_SUCCESS);
        assert_eq!(t.purgable(a, GET, 0).0, KERN_INVALID_ARGUMENT);
        // The host port is no task.
        let c = Call::PurgableControl {
            form: t.form,
            task: HOST_SELF_NAME,
            addr: a,
            control: 1,
            state_ptr: PTR,
        };
        assert_eq!(t.ret(c), KERN_INVALID_ARGUMENT);
    });
}

#[test]
fn purge_all_empties_every_volatile_object_and_only_those() {
    each(|t| {
        let p = t.p;
        let (v, n) = (t.purgeable(1), t.purgeable(1));
        assert_eq!(t.purgable(v, SET, VM_PURGABLE_VOLATILE).0, KERN_SUCCESS);
        // Emptied whatever its protection by then: the host writes the zeroes through.
        assert_eq!(t.protect(v, p, false, VM_PROT_NONE), KERN_SUCCESS);
        let kept = t.get(n, p as usize);
        assert_eq!(
            t.purgable(0, VM_PURGABLE_PURGE_ALL, 1234),
            (KERN_SUCCESS, 1234)
        );
        assert_eq!(t.purgable(v, GET, 0), (KERN_SUCCESS, VM_PURGABLE_EMPTY));
        assert_eq!(t.get(v, p as usize), vec![0; p as usize]);
        assert_eq!(
            t.purgable(n, GET, 0),
            (KERN_SUCCESS, VM_PURGABLE_NONVOLATILE)
        );
        assert_eq!(t.get(n, p as usize), kept, "{}", t.ctx());
        assert_eq!(t.page(v).unwrap().cur, VM_PROT_NONE, "protection kept");
        // Adjacent purgeable allocations are regions of their own.
        assert_eq!(n, v + p, "{}", t.ctx());
        let (r, start, size, ..) = t.region(v);
        assert_eq!((r, start, size), (KERN_SUCCESS, v, p), "{}", t.ctx());
    });
}
