//! spec §8: `vm_remap` / `mach_vm_remap`, row by row (XNU 10002's `mach_vm_remap_external`
//! and `vm_map_remap`, legacy mode), and what the other calls do on shared pages, in both
//! forms, both widths and both page sizes, against machvm (backed memories, through real
//! wasm guests) and the model.

use crate::common::*;
use machvm::abi::*;
use machvm::Call;

/// Where `remap` puts its out-parameters: `*target_address` at `PTR`, `*cur` and `*max`
/// after it.
const CUR: u64 = PTR + 8;
const MAX: u64 = PTR + 12;
/// A byte the out-parameters are filled with first, to see that a failure stores none.
const UNTOUCHED: u8 = 0xA5;

const ANYWHERE: u32 = 1;
const OVERWRITE: u32 = 0x4000;
const RESILIENT_MEDIA: u32 = 0x40;
const RESILIENT_CODESIGN: u32 = 0x20;
const RETURN_DATA_ADDR: u32 = 0x10_0000;

/// One `vm_remap` call's arguments (the task ports, flags and the rest).
#[derive(Clone, Copy)]
struct Remap {
    target: MachPort,
    hint: u64,
    size: u64,
    mask: u64,
    flags: u32,
    src_task: MachPort,
    src: u64,
    copy: bool,
    inheritance: u32,
}

impl Remap {
    /// Share `size` bytes at `src` of this task, FIXED at `hint`.
    fn share(src: u64, size: u64, hint: u64) -> Remap {
        Remap {
            target: TASK_SELF_NAME,
            hint,
            size,
            mask: 0,
            flags: 0,
            src_task: TASK_SELF_NAME,
            src,
            copy: false,
            inheritance: VM_INHERIT_DEFAULT.0,
        }
    }
}

impl T {
    fn remap_call(&self, r: Remap) -> Call {
        Call::Remap {
            form: self.form,
            target_task: r.target,
            addr_ptr: PTR,
            size: r.size,
            mask: r.mask,
            flags: r.flags,
            src_task: r.src_task,
            src_addr: r.src,
            copy: u32::from(r.copy),
            cur_ptr: CUR,
            max_ptr: MAX,
            inheritance: r.inheritance,
        }
    }

    /// The call, with `*target_address = hint` and the protections' slots filled with
    /// `UNTOUCHED`: the code, and what the three out-parameters hold after.
    fn remap(&mut self, r: Remap) -> (KernReturn, u64, u32, u32) {
        let n = self.aword();
        let mut hint = [UNTOUCHED; 8];
        hint[..n].copy_from_slice(&r.hint.to_le_bytes()[..n]);
        self.put(PTR, &hint);
        self.put(CUR, &[UNTOUCHED; 8]);
        let call = self.remap_call(r);
        let code = self.ret(call);
        let addr = self.get_uint(PTR, n);
        (
            code,
            addr,
            self.get_uint(CUR, 4) as u32,
            self.get_uint(MAX, 4) as u32,
        )
    }

    /// Fails with `code`, storing no out-parameter and changing no page.
    fn remap_fails(&mut self, r: Remap, code: KernReturn) {
        let before = self.pages();
        let (got, addr, cur, max) = self.remap(r);
        assert_eq!(got, code, "{}", self.ctx());
        let n = self.aword();
        assert_eq!(addr, r.hint & (u64::MAX >> (64 - 8 * n)), "{}", self.ctx());
        assert_eq!((cur, max), (0xA5A5_A5A5, 0xA5A5_A5A5), "{}", self.ctx());
        assert_eq!(self.pages(), before, "{}", self.ctx());
    }

    /// `vm_region_64`'s `shared` and `offset` for the region at `addr`, with its start and
    /// size.
    fn sharing_at(&mut self, addr: u64) -> (u64, u64, u32, u64) {
        let (code, start, size, _, _) = self.region(addr);
        assert_eq!(code, KERN_SUCCESS, "{}", self.ctx());
        (
            start,
            size,
            self.get_uint(INFO + 12, 4) as u32,
            self.get_uint(INFO + 20, 8),
        )
    }
}

#[test]
fn remap_row2_ports_travel_as_the_destination_then_in_the_body() {
    each_sharing(|t| {
        let p = t.p;
        // The destination: a name not held is MACH_SEND_INVALID_DEST whatever else.
        for name in [MACH_PORT_NULL, MACH_PORT_DEAD, MachPort(0x303)] {
            let r = Remap {
                target: name,
                size: 0,
                flags: u32::MAX,
                src_task: MachPort(0x777),
                ..Remap::share(DATA, p, DATA)
            };
            t.remap_fails(r, MACH_SEND_INVALID_DEST);
        }
        // The source in the body: a name not held fails the send, after the destination.
        let r = Remap {
            src_task: MachPort(0x303),
            size: 0,
            ..Remap::share(DATA, p, DATA)
        };
        t.remap_fails(r, MACH_SEND_INVALID_RIGHT);
        // Null, dead and the host port are no map; the host port as the target neither.
        for name in [MACH_PORT_NULL, MACH_PORT_DEAD, HOST_SELF_NAME] {
            let r = Remap {
                src_task: name,
                ..Remap::share(DATA, p, 0)
            };
            t.remap_fails(r, KERN_INVALID_ARGUMENT);
        }
        let r = Remap {
            target: HOST_SELF_NAME,
            ..Remap::share(DATA, p, 0)
        };
        t.remap_fails(r, KERN_INVALID_ARGUMENT);
    });
}

#[test]
fn remap_rows3_to_7_flags_range_inheritance_and_size_are_invalid_argument() {
    each_sharing(|t| {
        let p = t.p;
        let ok = Remap {
            flags: ANYWHERE,
            ..Remap::share(DATA, p, 0)
        };
        // Flags outside VM_FLAGS_USER_REMAP, the tag byte and PURGABLE included.
        for flags in [0x2, 0x8000, VM_FLAGS_ANYWHERE.0 | (1 << 24), 0x200_0000] {
            t.remap_fails(Remap { flags, ..ok }, KERN_INVALID_ARGUMENT);
        }
        // Before the size: an inheritance past NONE; then size 0 itself.
        for inheritance in [VM_INHERIT_DONATE_COPY.0, 7, u32::MAX] {
            t.remap_fails(Remap { inheritance, ..ok }, KERN_INVALID_ARGUMENT);
        }
        t.remap_fails(Remap { size: 0, ..ok }, KERN_INVALID_ARGUMENT);
        // The 64-bit range: overflowing, or rounding up past 2^64.
        if t.form == machvm::Form::MachVm {
            let r = Remap {
                src: u64::MAX - 10,
                size: 20,
                ..ok
            };
            t.remap_fails(r, KERN_INVALID_ARGUMENT);
            let r = Remap {
                src: u64::MAX - 2 * p,
                size: 2 * p,
                ..ok
            };
            t.remap_fails(r, KERN_INVALID_ARGUMENT);
        }
        // RESILIENT_MEDIA only with a copy.
        let r = Remap {
            flags: ANYWHERE | RESILIENT_MEDIA,
            ..ok
        };
        t.remap_fails(r, KERN_INVALID_ARGUMENT);
        let (code, ..) = t.remap(Remap { copy: true, ..r });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
    });
}

#[test]
fn remap_row8_a_hole_in_the_source_is_invalid_address_before_any_target_error() {
    each_sharing(|t| {
        let p = t.p;
        let at = t.fresh(3);
        assert_eq!(t.deallocate(at + p, p), KERN_SUCCESS, "{}", t.ctx());
        // The target (FIXED on allocated memory) would be NO_SPACE: the source comes first.
        t.remap_fails(Remap::share(at, 3 * p, DATA), KERN_INVALID_ADDRESS);
        t.remap_fails(Remap::share(at + p, 1, DATA), KERN_INVALID_ADDRESS);
        // Past the map.
        let far = (t.addr_limit().min(1 << 40) - u128::from(2 * p)) as u64;
        t.remap_fails(Remap::share(far, p, DATA), KERN_INVALID_ADDRESS);
        // Whatever the source pages' protection: no access is enough.
        assert_eq!(t.protect(at, p, true, VM_PROT_NONE), KERN_SUCCESS);
        let (code, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(at, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
    });
}

#[test]
fn remap_rows11_to_15_the_target_as_vm_allocate_places_it_with_the_mask() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(1);
        // FIXED: a start with a bit of the mask is NO_SPACE.
        let free = t.fresh(8);
        assert_eq!(t.deallocate(free, 8 * p), KERN_SUCCESS);
        let r = Remap {
            mask: 2 * p - 1,
            ..Remap::share(src, p, free + p)
        };
        let aligned = (free + p) % (2 * p) == 0;
        if !aligned {
            t.remap_fails(r, KERN_NO_SPACE);
        }
        // FIXED past the map (or the form's addresses): INVALID_ADDRESS.
        let end = (t.addr_limit().min(4 << 20)) as u64;
        t.remap_fails(Remap::share(src, p, end), KERN_INVALID_ADDRESS);
        t.remap_fails(Remap::share(src, 2 * p, end - p), KERN_INVALID_ADDRESS);
        // FIXED over allocated pages: NO_SPACE, unless OVERWRITE.
        t.remap_fails(Remap::share(src, p, DATA), KERN_NO_SPACE);
        let (code, addr, ..) = t.remap(Remap {
            flags: OVERWRITE,
            ..Remap::share(src, p, DATA + 5)
        });
        assert_eq!((code, addr), (KERN_SUCCESS, DATA), "{}", t.ctx());
        // ANYWHERE: the lowest free range whose start has no bit of the mask.
        let mask = 4 * p - 1;
        let (code, addr, ..) = t.remap(Remap {
            flags: ANYWHERE,
            mask,
            ..Remap::share(src, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(addr & mask, 0, "{}", t.ctx());
        let below = (0..addr / (4 * p)).map(|k| k * 4 * p);
        for a in below {
            assert!(t.page(a).is_some(), "{a:#x} was free {}", t.ctx());
        }
        // An all-ones mask leaves no start: NO_SPACE.
        let r = Remap {
            flags: ANYWHERE,
            mask: t.amax(),
            ..Remap::share(src, p, 0)
        };
        t.remap_fails(r, KERN_NO_SPACE);
    });
}

#[test]
fn remap_row16_the_address_keeps_the_source_offset_and_the_protections_are_anded() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(3);
        assert_eq!(t.protect(src, p, false, R), KERN_SUCCESS);
        assert_eq!(t.protect(src + 2 * p, p, true, RW), KERN_SUCCESS);
        let (code, addr, cur, max) = t.remap(Remap {
            flags: ANYWHERE | RETURN_DATA_ADDR,
            inheritance: VM_INHERIT_NONE.0,
            ..Remap::share(src + 0x123, 2 * p + 1, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        // trunc(target) + (src & (P - 1)), whatever the hint's offset.
        assert_eq!(addr % p, 0x123, "{}", t.ctx());
        let base = addr - 0x123;
        // The AND over the source pages: cur R & RW & RW, max ALL & ALL & RW.
        assert_eq!((cur, max), (R.0 as u32, RW.0 as u32), "{}", t.ctx());
        // Each page keeps its own protections; all take the inheritance asked for.
        for k in 0..3 {
            let (s, n) = (t.page(src + k * p).unwrap(), t.page(base + k * p).unwrap());
            assert_eq!((n.cur, n.max), (s.cur, s.max), "page {k} {}", t.ctx());
            assert_eq!(n.inherit, VM_INHERIT_NONE, "{}", t.ctx());
            assert_eq!(s.inherit, VM_INHERIT_DEFAULT, "{}", t.ctx());
        }
        // RESILIENT_CODESIGN: read-only pages, read-only answered.
        let (code, at, cur, max) = t.remap(Remap {
            flags: ANYWHERE | RESILIENT_CODESIGN,
            ..Remap::share(src + 2 * p, p, 0)
        });
        assert_eq!((code, cur, max), (KERN_SUCCESS, 1, 1), "{}", t.ctx());
        assert_eq!(t.page_prot(at), Some((R, R)), "{}", t.ctx());
        // ... never more than the source allows: a no-access page stays so.
        let none = t.fresh(1);
        assert_eq!(t.protect(none, p, true, VM_PROT_NONE), KERN_SUCCESS);
        let (code, at, cur, max) = t.remap(Remap {
            flags: ANYWHERE | RESILIENT_CODESIGN,
            ..Remap::share(none, p, 0)
        });
        assert_eq!((code, cur, max), (KERN_SUCCESS, 0, 0), "{}", t.ctx());
        let no_access = Some((VM_PROT_NONE, VM_PROT_NONE));
        assert_eq!(t.page_prot(at), no_access, "{}", t.ctx());
        // Without RETURN_DATA_ADDR too (10002's remap acts as if it were set).
        let (code, at, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(src + 0x45, 8, 0)
        });
        assert_eq!((code, at % p), (KERN_SUCCESS, 0x45), "{}", t.ctx());
        // After vm_allocate: cur RW, max ALL (the notes' example).
        let other = t.fresh(1);
        let (code, _, cur, max) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(other, p, 0)
        });
        assert_eq!((code, cur, max), (KERN_SUCCESS, 3, 7), "{}", t.ctx());
    });
}

#[test]
fn shared_pages_show_every_write_through_every_mapping() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(2);
        t.pattern(src, 2 * p, 1);
        let (code, dst, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(src, 2 * p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(dst, 2 * p as usize), t.get(src, 2 * p as usize));
        // A store through either is read through both.
        t.put(dst + 5, b"through the alias");
        assert_eq!(t.get(src + 5, 17), b"through the alias", "{}", t.ctx());
        t.put(src + p + 9, b"through the source");
        assert_eq!(t.get(dst + p + 9, 18), b"through the source", "{}", t.ctx());
        // vm_write and vm_copy into one are seen through the other.
        assert_eq!(t.copy(DATA, 64, dst + 128), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(src + 128, 64), t.get(DATA, 64), "{}", t.ctx());
        // Both report shared, one object at the same offsets.
        let (s0, s_len, s_shared, s_off) = t.sharing_at(src);
        let (d0, d_len, d_shared, d_off) = t.sharing_at(dst);
        assert_eq!(
            (s0, d0, s_len, d_len),
            (src, dst, 2 * p, 2 * p),
            "{}",
            t.ctx()
        );
        assert_eq!((s_shared, d_shared), (1, 1), "{}", t.ctx());
        assert_eq!(s_off, d_off, "{}", t.ctx());
    });
}

#[test]
fn freeing_one_mapping_keeps_the_others_data_and_the_freed_range_reads_zero_again() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(2);
        t.pattern(src, 2 * p, 7);
        let data = t.get(src, 2 * p as usize);
        let (code, dst, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(src, 2 * p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.deallocate(src, p), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(dst, 2 * p as usize), data, "{}", t.ctx());
        // Allocated again, the freed page reads zero; the alias keeps the data.
        let (code, again) = t.allocate(src, p, VM_FLAGS_FIXED);
        assert_eq!((code, again), (KERN_SUCCESS, src), "{}", t.ctx());
        assert_eq!(t.get(src, p as usize), vec![0; p as usize], "{}", t.ctx());
        assert_eq!(t.get(dst, p as usize), data[..p as usize], "{}", t.ctx());
        // The surviving mapping still shares with the source's second page.
        t.put(dst + p, b"still one object");
        assert_eq!(t.get(src + p, 16), b"still one object", "{}", t.ctx());
        // It stays `shared` (XNU never clears it).
        assert_eq!(t.sharing_at(dst).2, 1, "{}", t.ctx());
        // An overwriting allocation over the alias: zero there, the source keeps its data.
        let (code, _) = t.allocate(dst + p, p, VM_FLAGS_FIXED | VM_FLAGS_OVERWRITE);
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(dst + p, 16), vec![0; 16], "{}", t.ctx());
        assert_eq!(t.get(src + p, 16), b"still one object", "{}", t.ctx());
        assert_eq!(t.sharing_at(dst + p).2, 0, "{}", t.ctx());
    });
}

#[test]
fn protect_changes_one_mapping_and_prot_copy_makes_it_private() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(1);
        t.put(src, b"shared");
        let (code, dst, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(src, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.protect(dst, p, true, R), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.page_prot(dst), Some((R, R)), "{}", t.ctx());
        assert_eq!(t.page_prot(src), Some((RW, ALL)), "{}", t.ctx());
        // VM_PROT_COPY: the source becomes a private copy, the alias keeps the object.
        assert_eq!(t.protect(src, p, false, RW | VM_PROT_COPY), KERN_SUCCESS);
        assert_eq!(t.sharing_at(src).2, 0, "{}", t.ctx());
        assert_eq!(t.get(src, 6), b"shared", "{}", t.ctx());
        t.put(src, b"SOURCE");
        assert_eq!(t.get(dst, 6), b"shared", "{}", t.ctx());
    });
}

#[test]
fn vm_copy_between_aliases_reads_the_whole_source_before_it_writes() {
    each_sharing(|t| {
        let p = t.p;
        // Pages A and B map one object page; a copy from A to B + 1 reads A whole first.
        let a = t.fresh(1);
        let (code, b, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(a, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        let bytes: Vec<u8> = (0..p).map(|i| (i * 7 + 3) as u8).collect();
        t.put(a, &bytes);
        assert_eq!(t.copy(a, p - 1, b + 1), KERN_SUCCESS, "{}", t.ctx());
        let mut want = bytes.clone();
        want[1..].copy_from_slice(&bytes[..p as usize - 1]);
        assert_eq!(t.get(a, p as usize), want, "{}", t.ctx());
        assert_eq!(t.get(b, p as usize), want, "{}", t.ctx());
        // Once more: the copy windows opened by the first copy never serve one into shared
        // pages.
        t.put(a, &bytes);
        assert_eq!(t.copy(a, p - 1, b + 1), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(b, p as usize), want, "{}", t.ctx());
        // vm_write from one alias into the other, and vm_read_overwrite: the same.
        t.put(a, &bytes);
        let form = t.form;
        let write = Call::Write {
            form,
            task: TASK_SELF_NAME,
            addr: b + 1,
            data: a,
            count: (p - 1) as u32,
        };
        assert_eq!(t.ret(write), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(a, p as usize), want, "{}", t.ctx());
        t.put(a, &bytes);
        let read = Call::ReadOverwrite {
            form,
            task: TASK_SELF_NAME,
            addr: a,
            size: p - 1,
            data: b + 1,
            outsize_ptr: PTR,
        };
        assert_eq!(t.ret(read), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(b, p as usize), want, "{}", t.ctx());
        // Two destination pages mapping one object page (both aliases of `a`): the later
        // one's bytes are what every mapping reads.
        let c = t.fresh(2);
        assert_eq!(t.remap_ok_at(a, p, c), c, "{}", t.ctx());
        assert_eq!(t.remap_ok_at(a, p, c + p), c + p, "{}", t.ctx());
        let src = t.fresh(2);
        t.pattern(src, 2 * p, 9);
        assert_eq!(t.copy(src, 2 * p, c), KERN_SUCCESS, "{}", t.ctx());
        let second = t.get(src + p, p as usize);
        for at in [a, b, c, c + p] {
            assert_eq!(t.get(at, p as usize), second, "{at:#x} {}", t.ctx());
        }
    });
}

impl T {
    /// Shares `size` bytes at `src` at `at`, replacing what is there; its address.
    fn remap_ok_at(&mut self, src: u64, size: u64, at: u64) -> u64 {
        let (code, addr, ..) = self.remap(Remap {
            flags: OVERWRITE,
            ..Remap::share(src, size, at)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", self.ctx());
        addr
    }
}

#[test]
fn a_copy_is_private_and_unshared() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(2);
        t.pattern(src, 2 * p, 3);
        assert_eq!(t.protect(src + p, p, true, R), KERN_SUCCESS);
        let (code, dst, cur, max) = t.remap(Remap {
            flags: ANYWHERE,
            copy: true,
            ..Remap::share(src, 2 * p, 0)
        });
        assert_eq!((code, cur, max), (KERN_SUCCESS, 1, 1), "{}", t.ctx());
        assert_eq!(t.get(dst, 2 * p as usize), t.get(src, 2 * p as usize));
        assert_eq!(t.page_prot(dst + p), Some((R, R)), "{}", t.ctx());
        t.put(src, b"later");
        assert_ne!(t.get(dst, 5), b"later", "{}", t.ctx());
        assert_eq!(t.sharing_at(dst).2, 0, "{}", t.ctx());
        assert_eq!(t.sharing_at(src).2, 0, "{}", t.ctx());
    });
}

#[test]
fn the_magic_ring_buffer_sequence() {
    each_sharing(|t| {
        // TPCircularBuffer: allocate 2N, free the upper half, remap the lower half onto
        // it (FIXED, share), check the address; a write past the end continues at the
        // start.
        let n = 4 * t.p;
        let (code, buf) = t.allocate(0, 2 * n, VM_FLAGS_ANYWHERE);
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.deallocate(buf + n, n), KERN_SUCCESS, "{}", t.ctx());
        let (code, virt, cur, max) = t.remap(Remap::share(buf, n, buf + n));
        assert_eq!(
            (code, virt, cur, max),
            (KERN_SUCCESS, buf + n, 3, 7),
            "{}",
            t.ctx()
        );
        t.put(buf + n - 3, b"wrap around");
        assert_eq!(t.get(buf, 8), b"p around", "{}", t.ctx());
        assert_eq!(t.get(buf + n - 3, 11), b"wrap around", "{}", t.ctx());
        // Both halves are shared; freeing the whole buffer removes both.
        assert_eq!(t.sharing_at(buf).2, 1, "{}", t.ctx());
        assert_eq!(t.sharing_at(buf + n).2, 1, "{}", t.ctx());
        assert_eq!(t.deallocate(buf, 2 * n), KERN_SUCCESS, "{}", t.ctx());
        assert!(
            t.page(buf).is_none() && t.page(buf + n).is_none(),
            "{}",
            t.ctx()
        );
    });
}

#[test]
fn across_tasks_through_a_send_right() {
    for (on, (w, p)) in on_configs() {
        for form in FORMS {
            let mut t = T::with(on, true, w, p, form, 4, Some(64));
            let other = t.h.add_task(w, 4, Some(64));
            let name = t.h.insert_send_right(t.g, other);
            t.h.write(other, DATA, b"the other task's bytes");
            // From the other task into this one, shared.
            let (code, at, ..) = t.remap(Remap {
                flags: ANYWHERE,
                src_task: name,
                ..Remap::share(DATA, p, 0)
            });
            assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
            assert_eq!(t.get(at, 22), b"the other task's bytes", "{}", t.ctx());
            t.put(at, b"THE");
            assert_eq!(t.h.read(other, DATA, 3), b"THE", "{}", t.ctx());
            // And from this task into the other one, as its target.
            let (code, there, ..) = t.remap(Remap {
                target: name,
                flags: ANYWHERE,
                ..Remap::share(at, p, 0)
            });
            assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
            t.h.write(other, there + 4, b"OTHER");
            assert_eq!(t.get(at + 4, 5), b"OTHER", "{}", t.ctx());
            assert_eq!(t.h.read(other, DATA + 4, 5), b"OTHER", "{}", t.ctx());
        }
    }
}

#[test]
fn memories_that_cannot_share_answer_not_supported_after_every_check() {
    each(|t| {
        let p = t.p;
        t.remap_fails(Remap::share(DATA, p, DATA), KERN_NO_SPACE);
        for copy in [false, true] {
            let r = Remap {
                flags: ANYWHERE,
                copy,
                ..Remap::share(DATA, p, 0)
            };
            t.remap_fails(r, KERN_NOT_SUPPORTED);
        }
    });
}

#[test]
fn each_mapping_has_its_own_hardware_protection() {
    each_sharing(|t| {
        if !t.on_machvm() {
            return;
        }
        let p = t.p;
        let src = t.fresh(1);
        t.put(src, &[42]);
        let (code, dst, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(src, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.protect(dst, p, false, R), KERN_SUCCESS);
        let g = t.g;
        let h = t.harness();
        assert_eq!(h.load8(g, dst).unwrap(), 42);
        assert!(
            h.store8(g, dst, 1).is_err(),
            "a store through the read-only alias"
        );
        h.store8(g, src, 43).unwrap();
        assert_eq!(h.load8(g, dst).unwrap(), 43);
        assert_eq!(t.protect(src, p, false, VM_PROT_NONE), KERN_SUCCESS);
        let h = t.harness();
        assert!(
            h.load8(g, src).is_err(),
            "a load through the inaccessible source"
        );
        assert_eq!(h.load8(g, dst).unwrap(), 43);
    });
}

#[test]
fn purgeable_aliases_are_emptied_together() {
    each_sharing(|t| {
        let p = t.p;
        let (code, obj) = t.allocate(0, p, VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE);
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        t.put(obj, b"cached");
        let (code, alias, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(obj, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        // Same task: the alias is the same purgeable object.
        assert_eq!(t.page(alias).unwrap().object, t.page(obj).unwrap().object);
        let form = t.form;
        let control = |addr, control| Call::PurgableControl {
            form,
            task: TASK_SELF_NAME,
            addr,
            control,
            state_ptr: PTR,
        };
        t.put(PTR, &VM_PURGABLE_VOLATILE.to_le_bytes());
        let set = control(alias, VM_PURGABLE_SET_STATE as u32);
        assert_eq!(t.ret(set), KERN_SUCCESS, "{}", t.ctx());
        let purge = control(obj, VM_PURGABLE_PURGE_ALL as u32);
        assert_eq!(t.ret(purge), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(obj, 6), [0; 6], "{}", t.ctx());
        assert_eq!(t.get(alias, 6), [0; 6], "{}", t.ctx());
    });
}

#[test]
fn an_alias_of_a_permanent_page_is_permanent_and_a_copy_is_not() {
    each_sharing(|t| {
        if !t.on_machvm() {
            return;
        }
        let p = t.p;
        let page = t.fresh(1);
        t.put(page, b"embedder's");
        let g = t.g;
        let task = t.harness().task(g);
        machvm::host::make_permanent(t.harness().store(), task, page, p).unwrap();
        let (code, alias, ..) = t.remap(Remap {
            flags: ANYWHERE,
            ..Remap::share(page, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert!(t.page(alias).unwrap().permanent, "{}", t.ctx());
        // No guest call removes, replaces or copies it in place.
        assert_eq!(t.protect(alias, p, false, RW | VM_PROT_COPY), KERN_NO_SPACE);
        let (code, _) = t.allocate(alias, p, VM_FLAGS_FIXED | VM_FLAGS_OVERWRITE);
        assert_eq!(code, KERN_NO_SPACE, "{}", t.ctx());
        assert_eq!(t.deallocate(alias, p), KERN_SUCCESS);
        assert_eq!(t.page_prot(alias), Some((VM_PROT_NONE, VM_PROT_NONE)));
        let (code, copy, ..) = t.remap(Remap {
            flags: ANYWHERE,
            copy: true,
            ..Remap::share(page, p, 0)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert!(!t.page(copy).unwrap().permanent, "{}", t.ctx());
        assert_eq!(t.get(copy, 10), b"embedder's", "{}", t.ctx());
    });
}

#[allow(dead_code)] // the scenario dispatch of tests/enforce.rs is not used here
#[path = "../common/child.rs"]
mod child;

/// A remap the mapping budget cannot afford answers `KERN_RESOURCE_SHORTAGE` and maps
/// nothing: the memory does not grow (its growth is paid for first), the target stays as it
/// was, and the source keeps the object it was given (as XNU's source entry stays shared). In
/// a child process: the budget is the process's.
#[test]
fn a_remap_the_budget_refuses_grows_nothing() {
    child::in_child("remap::a_remap_the_budget_refuses_grows_nothing", || {
        use machvm::enforce::{mappings_in_use, set_mapping_budget};
        let mut t = T::with(
            On::Machvm,
            true,
            machvm::Width::W32,
            4096,
            machvm::Form::Vm,
            4,
            Some(64),
        );
        let p = t.p;
        let src = t.fresh(1);
        t.put(src, b"source");
        // A hole inside the memory, and the memory's end.
        let hole = t.fresh(2);
        assert_eq!(t.deallocate(hole, 2 * p), KERN_SUCCESS);
        let size = t.memory_size();
        set_mapping_budget(mappings_in_use());
        let before = t.pages();
        for at in [hole, size] {
            let (code, ..) = t.remap(Remap::share(src, p, at));
            assert_eq!(code, KERN_RESOURCE_SHORTAGE, "at {at:#x}");
            assert_eq!(t.memory_size(), size, "a refused remap grew the memory");
            assert!(t.page(at).is_none(), "at {at:#x}");
        }
        // The source was given its object before the target failed.
        let changed: Vec<u64> = (0..before.len() as u64)
            .filter(|&i| t.page(i * p) != before[i as usize])
            .collect();
        assert_eq!(changed, [src / p]);
        assert_ne!(t.page(src).unwrap().share, 0);
        assert_eq!(t.get(src, 6), b"source");
        // With a few mappings to spare, a growth alone could be afforded and the mapping
        // after it not: each refusal leaves the memory as it was.
        let mut refused = 0;
        for spare in 0..8 {
            set_mapping_budget(mappings_in_use() + spare);
            let (code, got, ..) = t.remap(Remap::share(src, p, size));
            if code == KERN_SUCCESS {
                assert_eq!(got, size);
                break;
            }
            assert_eq!(code, KERN_RESOURCE_SHORTAGE, "{spare} spare");
            assert_eq!(t.memory_size(), size, "a refused remap grew the memory");
            refused += 1;
        }
        assert!(refused >= 2 && t.page(size).is_some(), "{refused} refusals");
        assert_eq!(t.get(size, 6), b"source");
        set_mapping_budget(usize::MAX);
        let (code, got, ..) = t.remap(Remap::share(src, p, hole));
        assert_eq!((code, got), (KERN_SUCCESS, hole));
        assert_eq!(t.get(hole, 6), b"source");
    });
}
