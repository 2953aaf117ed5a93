//! spec §4 vm_read, vm_read_overwrite, vm_write, vm_region and host_page_size, every row,
//! through the wasm forwarders.

use crate::common::*;
use machvm::abi::*;
use machvm::{Call, Form, Outcome, Width};

impl T {
    fn read_overwrite(&mut self, addr: u64, size: u64, data: u64) -> (KernReturn, u64) {
        let (form, n) = (self.form, self.aword());
        self.put(PTR, &[0xAA; 8]);
        let r = self.ret(Call::ReadOverwrite {
            form,
            task: TASK_SELF_NAME,
            addr,
            size,
            data,
            outsize_ptr: PTR,
        });
        (r, self.get_uint(PTR, n))
    }

    fn read(&mut self, addr: u64, size: u64) -> (KernReturn, u64, u64) {
        let (form, n) = (self.form, self.word());
        self.put(PTR, &[0xAA; 16]);
        let r = self.ret(Call::Read {
            form,
            task: TASK_SELF_NAME,
            addr,
            size,
            data_ptr: PTR,
            count_ptr: PTR + 8,
        });
        (r, self.get_uint(PTR, n), self.get_uint(PTR + 8, 4))
    }

    fn write(&mut self, addr: u64, data: u64, count: u32) -> KernReturn {
        let form = self.form;
        self.ret(Call::Write {
            form,
            task: TASK_SELF_NAME,
            addr,
            data,
            count,
        })
    }
}

#[test]
fn read_overwrite_rows() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 4 * p, 11);
        // Size 0: SUCCESS, *outsize = 0, addresses not looked at.
        assert_eq!(
            t.read_overwrite(t.amax(), 0, t.amax()),
            (KERN_SUCCESS, 0),
            "{}",
            t.ctx()
        );
        assert_eq!(t.protect(DATA + 2 * p, p, false, W), KERN_SUCCESS);
        assert_eq!(t.protect(DATA + 3 * p, p, false, R), KERN_SUCCESS);
        assert_eq!(t.deallocate(DATA + 5 * p, p), KERN_SUCCESS);
        let before = t.mem();
        // Source as vm_copy's source.
        let top = t.amax();
        assert_eq!(
            t.read_overwrite(top - 3, 8, DATA).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.read_overwrite(DATA + 5 * p, 8, DATA).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.read_overwrite(DATA + 2 * p, 8, DATA).0,
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        // Destination as vm_copy's destination.
        assert_eq!(
            t.read_overwrite(DATA, 8, DATA + 3 * p).0,
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.read_overwrite(DATA, 8, DATA + 5 * p).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.read_overwrite(DATA, 8, top - 3).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        // Source checked before destination.
        assert_eq!(
            t.read_overwrite(DATA + 2 * p, 8, DATA + 5 * p).0,
            KERN_PROTECTION_FAILURE
        );
        let mut after = t.mem();
        after[PTR as usize..PTR as usize + 8]
            .copy_from_slice(&before[PTR as usize..PTR as usize + 8]);
        assert_eq!(after, before, "{} nothing written on failure", t.ctx());
        // Success: exactly size bytes, overlapping allowed, *outsize = size.
        let mut want = t.mem();
        want.copy_within(
            (DATA + 1) as usize..(DATA + 1 + p + 7) as usize,
            (DATA + 9) as usize,
        );
        let (r, out) = t.read_overwrite(DATA + 1, p + 7, DATA + 9);
        assert_eq!((r, out), (KERN_SUCCESS, p + 7), "{}", t.ctx());
        let mut got = t.mem();
        got[PTR as usize..PTR as usize + 8].copy_from_slice(&want[PTR as usize..PTR as usize + 8]);
        assert_eq!(got, want, "{}", t.ctx());
    });
}

#[test]
fn read_rows() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 2 * p, 13);
        // Size that does not fit in 32 bits: INVALID_ARGUMENT (only a 64-bit size can).
        if t.form == Form::MachVm || t.w == Width::W64 {
            assert_eq!(
                t.read(DATA, 1 << 32).0,
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
            assert_eq!(
                t.read(t.amax(), u64::MAX).0,
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
        }
        // Size 0: SUCCESS, *data = 0, *count = 0.
        assert_eq!(t.read(t.amax(), 0), (KERN_SUCCESS, 0, 0), "{}", t.ctx());
        // Source as vm_copy's.
        assert_eq!(t.protect(DATA + p, p, false, VM_PROT_NONE), KERN_SUCCESS);
        let before = t.pages();
        assert_eq!(
            t.read(DATA + p, 4).0,
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        assert_eq!(t.read(4 << 20, 4).0, KERN_INVALID_ADDRESS, "{}", t.ctx());
        assert_eq!(
            t.read(t.amax() - 1, 4).0,
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.pages(), before, "{} no allocation on failure", t.ctx());
        assert_eq!(t.protect(DATA + p, p, false, RW), KERN_SUCCESS);
        // Success: a copy of every source page the range touches, in a fresh allocation
        // taken as vm_allocate(ANYWHERE) takes one, and `*data` at the copy of `addr` (the
        // same offset within its page).
        let want = t.get(DATA, 2 * p as usize);
        let end = t.memory_size();
        let (r, data, count) = t.read(DATA + 3, p + 5);
        assert_eq!(r, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(
            (data, count),
            (end + 3, p + 5),
            "{} placed as vm_allocate(ANYWHERE), at the offset of addr",
            t.ctx()
        );
        assert_eq!(t.get(end, 2 * p as usize), want, "{}", t.ctx());
        assert_eq!(t.page_prot(end), Some((RW, ALL)));
        assert_eq!(t.page_prot(end + p), Some((RW, ALL)));
        assert_eq!(t.page(end + 2 * p), None, "{}", t.ctx());
        // The caller owns it and frees it with vm_deallocate(*data, *count).
        assert_eq!(t.deallocate(data, count), KERN_SUCCESS);
        assert_eq!(t.page(end), None);
        assert_eq!(t.page(end + p), None, "{}", t.ctx());
        // XNU's "Read address has the correct boundary offset": the last byte of a page
        // and the first of the next.
        let (r, data, count) = t.read(DATA + p - 1, 2);
        assert_eq!(r, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!((data % p, count), (p - 1, 2), "{}", t.ctx());
        assert_eq!(t.get(data - (p - 1), 2 * p as usize), want, "{}", t.ctx());
        assert_eq!(t.deallocate(data, count), KERN_SUCCESS);
        // A hole is reused by the next read.
        assert_eq!(t.deallocate(DATA + 4 * p, 2 * p), KERN_SUCCESS);
        let (r, data, _) = t.read(DATA, 2 * p);
        assert_eq!((r, data), (KERN_SUCCESS, DATA + 4 * p), "{}", t.ctx());
    });
}

#[test]
fn read_without_room_is_no_space() {
    each_with(4, Some(4), |t| {
        let before = t.mem();
        assert_eq!(t.read(DATA, 16).0, KERN_NO_SPACE, "{}", t.ctx());
        assert_eq!(t.memory_size() as usize, before.len());
    });
}

#[test]
fn write_rows() {
    each(|t| {
        let p = t.p;
        t.pattern(DATA, 8 * p, 17);
        // count 0: SUCCESS, nothing looked at.
        assert_eq!(
            t.write(t.amax(), u64::from(u32::MAX) & t.amax(), 0),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.protect(DATA + p, p, false, W), KERN_SUCCESS);
        assert_eq!(t.protect(DATA + 2 * p, p, false, R), KERN_SUCCESS);
        assert_eq!(t.deallocate(DATA + 3 * p, p), KERN_SUCCESS);
        let before = t.mem();
        // Caller buffer wrapping, outside the map, unallocated or unreadable.
        let wtop = (t.w.limit() - 1) as u64;
        assert_eq!(
            t.write(DATA, wtop - 3, 8),
            MACH_SEND_INVALID_MEMORY,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.write(DATA, 4 << 20, 8),
            MACH_SEND_INVALID_MEMORY,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.write(DATA, DATA + 3 * p - 4, 8),
            MACH_SEND_INVALID_MEMORY,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.write(DATA, DATA + p, 8),
            MACH_SEND_INVALID_MEMORY,
            "{}",
            t.ctx()
        );
        // ... checked before the destination.
        assert_eq!(
            t.write(DATA + 3 * p, DATA + p, 8),
            MACH_SEND_INVALID_MEMORY,
            "{}",
            t.ctx()
        );
        // Destination as vm_copy's.
        assert_eq!(
            t.write(DATA + 2 * p, DATA, 8),
            KERN_PROTECTION_FAILURE,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.write(DATA + 3 * p, DATA, 8),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.write(t.amax() - 3, DATA, 8),
            KERN_INVALID_ADDRESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.mem(), before, "{}", t.ctx());
        // Success: from a read-only buffer into a write-only page, exactly count bytes.
        let mut want = t.mem();
        want.copy_within(
            (DATA + 2 * p + 1) as usize..(DATA + 2 * p + 1 + 100) as usize,
            (DATA + p + 3) as usize,
        );
        assert_eq!(
            t.write(DATA + p + 3, DATA + 2 * p + 1, 100),
            KERN_SUCCESS,
            "{}",
            t.ctx()
        );
        assert_eq!(t.mem(), want, "{}", t.ctx());
        // Overlapping source and destination in one task is a memmove.
        let mut want = t.mem();
        want.copy_within(
            (DATA + 4 * p) as usize..(DATA + 6 * p) as usize,
            (DATA + 4 * p + 1) as usize,
        );
        assert_eq!(
            t.write(DATA + 4 * p + 1, DATA + 4 * p, 2 * p as u32),
            KERN_SUCCESS
        );
        assert_eq!(t.mem(), want, "{}", t.ctx());
    });
}

#[test]
fn region_rows() {
    each(|t| {
        let p = t.p;
        assert_eq!(t.protect(DATA, 2 * p, false, R), KERN_SUCCESS);
        assert_eq!(t.deallocate(DATA + 2 * p, p), KERN_SUCCESS);
        // Flavor: 9 and 10 work, anything else is INVALID_ARGUMENT.
        for bad in [0, 8, 11, u32::MAX] {
            assert_eq!(
                t.region_with(0, bad, 9).0,
                KERN_INVALID_ARGUMENT,
                "{}",
                t.ctx()
            );
        }
        // count < 9: INVALID_ARGUMENT; more is fine and answered with 9.
        assert_eq!(
            t.region_with(0, 9, 8).0,
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.region_with(0, 9, 0).0,
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        assert_eq!(t.region_with(0, 9, 100).4, 9);
        // The whole 36-byte vm_region_basic_info_64: zeroes after inheritance.
        assert_eq!(t.get(INFO + 12, 28), [&[0u8; 24][..], &[0xAA; 4]].concat());
        // Flavor 10 fills the 32-byte vm_region_basic_info: count 8 (below: refused),
        // the same fields, zeroes to byte 32 and nothing after.
        assert_eq!(
            t.region_with(0, VM_REGION_BASIC_INFO as u32, 7).0,
            KERN_INVALID_ARGUMENT,
            "{}",
            t.ctx()
        );
        let r = t.region_with(DATA + p + 5, VM_REGION_BASIC_INFO as u32, 8);
        assert_eq!(
            r,
            (KERN_SUCCESS, DATA, 2 * p, [R.0, ALL.0, 1], 8),
            "{}",
            t.ctx()
        );
        assert_eq!(t.get(INFO + 12, 28), [&[0u8; 20][..], &[0xAA; 8]].concat());
        assert_eq!(t.region_with(0, VM_REGION_BASIC_INFO as u32, 9).4, 8);
        // The region containing the address: its start, size and attributes.
        let r = t.region_with(DATA + p + 5, VM_REGION_BASIC_INFO_64 as u32, 9);
        assert_eq!(
            r,
            (KERN_SUCCESS, DATA, 2 * p, [R.0, ALL.0, 1], 9),
            "{}",
            t.ctx()
        );
        assert_eq!(
            t.region(0),
            (KERN_SUCCESS, 0, DATA, [RW.0, ALL.0, 1], 9),
            "{}",
            t.ctx()
        );
        // In a hole: the next region.
        let end = t.memory_size();
        let r = t.region(DATA + 2 * p + 7);
        assert_eq!(
            r,
            (
                KERN_SUCCESS,
                DATA + 3 * p,
                end - DATA - 3 * p,
                [RW.0, ALL.0, 1],
                9
            ),
            "{}",
            t.ctx()
        );
        // Past the last region: INVALID_ADDRESS, out-parameters untouched.
        let r = t.region(end);
        assert_eq!(r.0, KERN_INVALID_ADDRESS, "{}", t.ctx());
        assert_eq!(t.get(INFO, 36), vec![0xAA; 36]);
        assert_eq!(t.region(t.amax()).0, KERN_INVALID_ADDRESS);
        // The whole info: zeroes past the three words, and object_name = 0.
        assert_eq!(t.region(DATA).0, KERN_SUCCESS);
        assert_eq!(t.get(INFO + 12, 24), vec![0; 24]);
        assert_eq!(
            t.get(INFO + 36, 4),
            vec![0xAA; 4],
            "{} info is 36 bytes",
            t.ctx()
        );
        assert_eq!(t.get_uint(PTR + 20, 4), 0);
    });
}

#[test]
fn region_of_a_32_bit_guest_must_end_below_4_gib() {
    // A 32-bit memory with no maximum: its map is the whole 4 GiB.
    // On machvm only: the model holds its memory in a vector, and a 4 GiB one takes a
    // minute (its own test, `a_full_4_gib_memory_at_the_top_edge`, does this once).
    for p in [4096, 16384] {
        for form in FORMS {
            let mut t = T::new(Width::W32, p, form, 1, None);
            let top = (1u64 << 32) - p;
            // vm_allocate cannot map the top page of a 32-bit guest: its end, 2^32, wraps
            // in the call's width. mach_vm_allocate can.
            t.form = Form::Vm;
            assert_eq!(
                t.allocate(top, p, VM_FLAGS_FIXED).0,
                KERN_INVALID_ADDRESS,
                "{}",
                t.ctx()
            );
            t.form = Form::MachVm;
            assert_eq!(
                t.allocate(top, p, VM_FLAGS_FIXED).0,
                KERN_SUCCESS,
                "{}",
                t.ctx()
            );
            t.form = form;
            let r = t.region(top - 1);
            match form {
                Form::Vm => assert_eq!(r.0, KERN_INVALID_ADDRESS, "{}", t.ctx()),
                Form::MachVm => {
                    assert_eq!(
                        r,
                        (KERN_SUCCESS, top, p, [RW.0, ALL.0, 1], 9),
                        "{}",
                        t.ctx()
                    )
                }
            }
        }
    }
}

#[test]
fn host_page_size_writes_the_page_size_in_a_word() {
    for (on, (w, p)) in on_configs() {
        let mut t = T::on(on, w, p, Form::Vm, 4, Some(64));
        t.put(PTR, &[0xAA; 16]);
        for host in [HOST_SELF_NAME, MachPort(0), MachPort(0xFFFF_FFFF)] {
            let r = t.ret(Call::HostPageSize {
                host,
                size_ptr: PTR,
            });
            assert_eq!(r, KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(t.get_uint(PTR, t.word()), p, "{}", t.ctx());
        }
        let word = t.word() as u64;
        assert_eq!(
            t.get(PTR + word, 4),
            vec![0xAA; 4],
            "{} only a word is written",
            t.ctx()
        );
        assert_eq!(t.outcome(Call::TaskSelf), Outcome::Port(MachPort(0x103)));
        assert_eq!(t.outcome(Call::HostSelf), Outcome::Port(MachPort(0x203)));
    }
}
