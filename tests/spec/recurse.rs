//! spec §8: `vm_region_recurse_64` / `mach_vm_region_recurse` (XNU 10002's
//! `vm_map_region_recurse_64`: its counts, its submap info and the share modes) and
//! `vm_region_64`'s `VM_REGION_EXTENDED_INFO`, in both forms, both widths and both page
//! sizes, through real wasm guests on backed memories and against the model.

use crate::common::*;
use machvm::abi::*;
use machvm::Call;

/// `*size` at `PTR + 8`, `*nesting_depth` at `PTR + 16`, `*count` at `PTR + 20`.
const SIZE: u64 = PTR + 8;
const DEPTH: u64 = PTR + 16;
const COUNT: u64 = PTR + 20;

/// What one call answered: the code, `*address`, `*size`, `*nesting_depth`, `*count` and
/// the info's 76 bytes.
struct Recursed {
    code: KernReturn,
    addr: u64,
    size: u64,
    depth: u32,
    count: u32,
    info: Vec<u8>,
}

impl Recursed {
    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.info[at..at + 4].try_into().unwrap())
    }
    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.info[at..at + 8].try_into().unwrap())
    }
    /// share_mode, ref_count and object_id, wherever the count put them.
    fn sharing(&self) -> (u8, u32, u32) {
        if self.count == 12 {
            (self.info[31], self.u32_at(24), self.u32_at(40))
        } else {
            (self.info[47], self.u32_at(40), self.u32_at(56))
        }
    }
}

impl T {
    fn recurse(&mut self, addr: u64, count: u32) -> Recursed {
        let n = self.aword();
        self.put(PTR, &[0xA5; 24]);
        self.put(PTR, &addr.to_le_bytes()[..n]);
        self.put(DEPTH, &7u32.to_le_bytes());
        self.put(COUNT, &count.to_le_bytes());
        self.put(INFO, &[0xA5; 80]);
        let call = Call::RegionRecurse {
            form: self.form,
            task: TASK_SELF_NAME,
            addr_ptr: PTR,
            size_ptr: SIZE,
            depth_ptr: DEPTH,
            info_ptr: INFO,
            count_ptr: COUNT,
        };
        let code = self.ret(call);
        Recursed {
            code,
            addr: self.get_uint(PTR, n),
            size: self.get_uint(SIZE, n),
            depth: self.get_uint(DEPTH, 4) as u32,
            count: self.get_uint(COUNT, 4) as u32,
            info: self.get(INFO, 80),
        }
    }

    fn recursed(&mut self, addr: u64, count: u32) -> Recursed {
        let r = self.recurse(addr, count);
        assert_eq!(r.code, KERN_SUCCESS, "{}", self.ctx());
        r
    }

    /// `vm_remap` of `size` bytes at `src` of this task, shared, anywhere: the new address.
    fn alias(&mut self, src: u64, size: u64) -> u64 {
        self.put(PTR, &[0; 8]);
        let call = Call::Remap {
            form: self.form,
            target_task: TASK_SELF_NAME,
            addr_ptr: PTR,
            size,
            mask: 0,
            flags: 1,
            src_task: TASK_SELF_NAME,
            src_addr: src,
            copy: 0,
            cur_ptr: PTR + 8,
            max_ptr: PTR + 12,
            inheritance: 1,
        };
        assert_eq!(self.ret(call), KERN_SUCCESS, "{}", self.ctx());
        self.get_uint(PTR, self.aword())
    }
}

#[test]
fn counts_pick_the_info_and_the_short_form() {
    each_sharing(|t| {
        let form = t.form;
        t.names_resolve_first(|task, good| Call::RegionRecurse {
            form,
            task,
            addr_ptr: PTR,
            size_ptr: SIZE,
            depth_ptr: DEPTH,
            info_ptr: if good { INFO } else { u64::MAX },
            count_ptr: COUNT,
        });
        // Fewer than 12 words: refused, nothing stored.
        for count in [0, 11] {
            let r = t.recurse(DATA, count);
            assert_eq!(r.code, KERN_INVALID_ARGUMENT, "{}", t.ctx());
            assert_eq!((r.depth, r.count), (7, count), "{}", t.ctx());
            assert!(r.info.iter().all(|&b| b == 0xA5), "{}", t.ctx());
        }
        for (count, out) in [
            (12, 12),
            (15, 12),
            (16, 16),
            (17, 17),
            (18, 17),
            (19, 19),
            (1000, 19),
        ] {
            let r = t.recursed(DATA, count);
            assert_eq!((r.count, r.depth), (out, 0), "{count} {}", t.ctx());
            // The info's words and nothing past them.
            let n = out as usize * 4;
            assert!(
                r.info[n..].iter().all(|&b| b == 0xA5),
                "{count} {}",
                t.ctx()
            );
            // protection, max_protection, inheritance, offset (private: 0).
            assert_eq!(r.u32_at(0), RW.0 as u32);
            assert_eq!(r.u32_at(4), ALL.0 as u32);
            assert_eq!(r.u32_at(8), VM_INHERIT_COPY.0);
            assert_eq!(r.u64_at(12), 0);
        }
    });
}

#[test]
fn one_region_at_or_after_the_address() {
    each_sharing(|t| {
        let p = t.p;
        let size = t.memory_size();
        let a = t.fresh(3);
        assert_eq!(t.deallocate(a + p, p), KERN_SUCCESS);
        // The whole first region (the memory's pages and the first fresh page are one).
        let r = t.recursed(a, 19);
        assert_eq!((r.addr, r.size), (0, a + p), "{}", t.ctx());
        // In the hole: the next region.
        let r = t.recursed(a + p + 1, 19);
        assert_eq!((r.addr, r.size), (a + 2 * p, p), "{}", t.ctx());
        // Past the last: no region, nothing stored.
        let r = t.recurse(a + 3 * p, 19);
        assert_eq!(r.code, KERN_INVALID_ADDRESS, "{}", t.ctx());
        assert_eq!(r.depth, 7, "{}", t.ctx());
        assert!(size < a + 3 * p);
    });
}

#[test]
fn share_modes_follow_the_mappings_and_entries_of_an_object() {
    each_sharing(|t| {
        let p = t.p;
        let a = t.fresh(2);
        t.pattern(a, 2 * p, 3);
        let b = t.alias(a, 2 * p);
        // Two mappings of one object: truly shared, two references, one id.
        let (ra, rb) = (t.recursed(a, 19), t.recursed(b, 16));
        let (mode, refs, id) = ra.sharing();
        assert_eq!((mode, refs), (SM_TRUESHARED, 2), "{}", t.ctx());
        assert_ne!(id, 0);
        assert_eq!(rb.sharing(), (SM_TRUESHARED, 2, id), "{}", t.ctx());
        assert_eq!(ra.u64_at(68), u64::from(id), "object_id_full");
        assert_eq!(ra.u64_at(12), rb.u64_at(12), "the same offsets");
        // A protection splits a mapping in two regions: each refers to the object.
        assert_eq!(t.protect(b, p, false, R), KERN_SUCCESS);
        assert_eq!(
            t.recursed(a, 12).sharing(),
            (SM_TRUESHARED, 3, id),
            "{}",
            t.ctx()
        );
        // The alias gone: private again, though vm_region's `shared` stays.
        assert_eq!(t.deallocate(b, 2 * p), KERN_SUCCESS);
        assert_eq!(
            t.recursed(a, 19).sharing(),
            (SM_PRIVATE, 1, id),
            "{}",
            t.ctx()
        );
        assert_eq!(t.region(a).0, KERN_SUCCESS);
        assert_eq!(t.get_uint(INFO + 12, 4), 1, "shared stays, {}", t.ctx());
        // A memory entry of the object counts while its name lives.
        let n = t.aword();
        t.put(PTR, &(2 * p).to_le_bytes()[..n.max(8)]);
        let call = Call::MakeEntry {
            form: t.form,
            task: TASK_SELF_NAME,
            size_ptr: PTR,
            offset: a,
            permission: RW.0 as u32 | MAP_MEM_VM_SHARE,
            handle_ptr: PTR + 8,
            parent: MACH_PORT_NULL,
        };
        if t.aword() == 4 {
            t.put(PTR, &((2 * p) as u32).to_le_bytes());
        }
        assert_eq!(t.ret(call), KERN_SUCCESS, "{}", t.ctx());
        let entry = MachPort(t.get_uint(PTR + 8, 4) as u32);
        assert_eq!(
            t.recursed(a, 19).sharing(),
            (SM_TRUESHARED, 2, id),
            "{}",
            t.ctx()
        );
        let call = Call::PortDeallocate {
            task: TASK_SELF_NAME,
            name: entry,
        };
        assert_eq!(t.ret(call), KERN_SUCCESS);
        assert_eq!(
            t.recursed(a, 19).sharing(),
            (SM_PRIVATE, 1, id),
            "{}",
            t.ctx()
        );
        // The extended flavor reports the same.
        let (code, ..) = t.region_with(a, VM_REGION_EXTENDED_INFO as u32, 9);
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get_uint(PTR + 16, 4), 9, "count");
        assert_eq!(t.get(INFO + 31, 1)[0], SM_PRIVATE, "{}", t.ctx());
        assert_eq!(t.get_uint(INFO + 24, 4), 1, "{}", t.ctx());
        let (code, ..) = t.region_with(a, VM_REGION_EXTENDED_INFO as u32, 8);
        assert_eq!(code, KERN_INVALID_ARGUMENT, "{}", t.ctx());
    });
}

#[test]
fn private_memory_is_empty_until_a_page_is_resident() {
    // Residency is the host's: the model cannot know it.
    each_machvm(|t| {
        let p = t.p;
        let a = t.fresh(2);
        // A region of its own (another inheritance), never touched.
        let inherit = Call::Inherit {
            form: t.form,
            task: TASK_SELF_NAME,
            addr: a,
            size: 2 * p,
            inheritance: VM_INHERIT_NONE.0,
        };
        assert_eq!(t.ret(inherit), KERN_SUCCESS);
        let r = t.recursed(a, 19);
        assert_eq!((r.addr, r.size), (a, 2 * p), "{}", t.ctx());
        assert_eq!(r.sharing(), (SM_EMPTY, 0, 0), "{}", t.ctx());
        assert_eq!(r.u32_at(24), 0, "pages_resident");
        t.put(a + p, &[1]);
        let r = t.recursed(a, 19);
        assert_eq!(r.sharing(), (SM_PRIVATE, 1, 0), "{}", t.ctx());
        assert_eq!(r.u32_at(24), 1, "pages_resident {}", t.ctx());
    });
}

#[test]
fn purgeable_memory_has_its_object_at_once_and_vm_region_reports_flavor_13() {
    each_machvm(|t| {
        let p = t.p;
        let (code, a) = t.allocate(0, 2 * p, VmFlags(VM_FLAGS_ANYWHERE.0 | VM_FLAGS_PURGABLE.0));
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(
            t.recursed(a, 19).sharing(),
            (SM_PRIVATE, 1, 0),
            "{}",
            t.ctx()
        );
        // The older name takes the extended flavor too.
        let n = t.word();
        t.put(PTR, &a.to_le_bytes()[..n]);
        t.put(PTR + 16, &9u32.to_le_bytes());
        let call = Call::VmRegion {
            task: TASK_SELF_NAME,
            addr_ptr: PTR,
            size_ptr: PTR + 8,
            flavor: VM_REGION_EXTENDED_INFO as u32,
            info_ptr: INFO,
            count_ptr: PTR + 16,
            object_name_ptr: PTR + 20,
        };
        assert_eq!(t.ret(call), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.get(INFO + 31, 1)[0], SM_PRIVATE, "{}", t.ctx());
        assert_eq!(t.get_uint(INFO + 24, 4), 1, "{}", t.ctx());
    });
}
