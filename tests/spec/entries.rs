//! spec §8: memory entries (`mach_make_memory_entry_64`, `mach_make_memory_entry`),
//! `vm_map` / `mach_vm_map` and `mach_port_deallocate`, row by row (XNU 10002's
//! `mach_make_memory_entry_internal` and `vm_map_enter_mem_object`), in both forms, both
//! widths and both page sizes, through real wasm guests on backed memories.

use crate::common::*;
use machvm::abi::*;
use machvm::{Call, Form};

/// Where the out-parameters go: `*size` (or `*address`) at `PTR`, `*object_handle` after.
const HANDLE: u64 = PTR + 8;
/// A byte the out-parameters are filled with first, to see that a failure stores none.
const UNTOUCHED: u8 = 0xA5;

const ANYWHERE: u32 = 1;
const OVERWRITE: u32 = 0x4000;
const RETURN_DATA_ADDR: u32 = 0x10_0000;
const IS_MASK: u32 = 0x40;

/// One `mach_make_memory_entry_64` call's arguments.
#[derive(Clone, Copy)]
struct Make {
    size: u64,
    offset: u64,
    permission: u32,
    parent: MachPort,
}

impl Make {
    /// An entry of `size` bytes at `offset` with `permission`, no parent.
    fn new(size: u64, offset: u64, permission: u32) -> Make {
        Make {
            size,
            offset,
            permission,
            parent: MACH_PORT_NULL,
        }
    }
}

/// One `vm_map` call's arguments.
#[derive(Clone, Copy)]
struct Map {
    task: MachPort,
    hint: u64,
    size: u64,
    mask: u64,
    flags: u32,
    object: MachPort,
    offset: u64,
    copy: bool,
    cur: VmProt,
    max: VmProt,
    inheritance: u32,
}

impl Map {
    /// `size` bytes of `object` from offset 0, anywhere, read-write, shared.
    fn anywhere(object: MachPort, size: u64) -> Map {
        Map {
            task: TASK_SELF_NAME,
            hint: 0,
            size,
            mask: 0,
            flags: ANYWHERE,
            object,
            offset: 0,
            copy: false,
            cur: RW,
            max: RW,
            inheritance: VM_INHERIT_DEFAULT.0,
        }
    }
}

impl T {
    /// The call, with `*size = m.size` and the handle's slot `UNTOUCHED`: the code, then
    /// what `*size` and `*object_handle` hold after.
    fn make(&mut self, m: Make) -> (KernReturn, u64, MachPort) {
        let n = self.aword();
        let mut size = [UNTOUCHED; 8];
        size[..n].copy_from_slice(&m.size.to_le_bytes()[..n]);
        self.put(PTR, &size);
        self.put(HANDLE, &[UNTOUCHED; 4]);
        let call = Call::MakeEntry {
            form: self.form,
            task: TASK_SELF_NAME,
            size_ptr: PTR,
            offset: m.offset,
            permission: m.permission,
            handle_ptr: HANDLE,
            parent: m.parent,
        };
        let code = self.ret(call);
        let size = self.get_uint(PTR, n);
        (code, size, MachPort(self.get_uint(HANDLE, 4) as u32))
    }

    /// An entry that must be made: its handle, after checking `*size`.
    fn entry(&mut self, m: Make, size: u64) -> MachPort {
        let (code, got, handle) = self.make(m);
        assert_eq!((code, got), (KERN_SUCCESS, size), "{}", self.ctx());
        assert_ne!(handle, MACH_PORT_NULL, "{}", self.ctx());
        handle
    }

    /// Fails with `code`, storing no out-parameter and changing no page.
    fn make_fails(&mut self, m: Make, code: KernReturn) {
        let before = self.pages();
        let (got, size, handle) = self.make(m);
        assert_eq!(got, code, "{}", self.ctx());
        let n = self.aword();
        assert_eq!(size, m.size & (u64::MAX >> (64 - 8 * n)), "{}", self.ctx());
        assert_eq!(handle, MachPort(0xA5A5_A5A5), "{}", self.ctx());
        assert_eq!(self.pages(), before, "{}", self.ctx());
    }

    /// `vm_map` with `*address = m.hint`: the code and `*address` after.
    fn map(&mut self, m: Map) -> (KernReturn, u64) {
        let n = self.aword();
        let mut hint = [UNTOUCHED; 8];
        hint[..n].copy_from_slice(&m.hint.to_le_bytes()[..n]);
        self.put(PTR, &hint);
        let call = Call::Map {
            form: self.form,
            task: m.task,
            addr_ptr: PTR,
            size: m.size,
            mask: m.mask,
            flags: m.flags,
            object: m.object,
            offset: m.offset,
            copy: u32::from(m.copy),
            cur: m.cur,
            max: m.max,
            inheritance: m.inheritance,
        };
        let code = self.ret(call);
        (code, self.get_uint(PTR, n))
    }

    /// A mapping that must be made: its address.
    fn mapped(&mut self, m: Map) -> u64 {
        let (code, addr) = self.map(m);
        assert_eq!(code, KERN_SUCCESS, "{}", self.ctx());
        addr
    }

    /// Fails with `code`, storing no address and changing no page.
    fn map_fails(&mut self, m: Map, code: KernReturn) {
        let before = self.pages();
        let (got, addr) = self.map(m);
        assert_eq!(got, code, "{}", self.ctx());
        let n = self.aword();
        assert_eq!(addr, m.hint & (u64::MAX >> (64 - 8 * n)), "{}", self.ctx());
        assert_eq!(self.pages(), before, "{}", self.ctx());
    }

    fn port_deallocate(&mut self, name: MachPort) -> KernReturn {
        self.ret(Call::PortDeallocate {
            task: TASK_SELF_NAME,
            name,
        })
    }

    /// `vm_region_64`'s `shared` and `offset` for the region at `addr`.
    fn shared_at(&mut self, addr: u64) -> (u32, u64) {
        let (code, ..) = self.region(addr);
        assert_eq!(code, KERN_SUCCESS, "{}", self.ctx());
        (
            self.get_uint(INFO + 12, 4) as u32,
            self.get_uint(INFO + 20, 8),
        )
    }
}

/// `permission` for protections `prot` and flags `flags`.
fn perm(prot: VmProt, flags: u32) -> u32 {
    prot.0 as u32 | flags
}

#[test]
fn make_entry_ports_resolve_first_then_flags_parent_and_range() {
    each_sharing(|t| {
        let p = t.p;
        let form = t.form;
        t.names_resolve_first(|task, good| Call::MakeEntry {
            form,
            task,
            size_ptr: PTR,
            offset: DATA,
            permission: if good { RW.0 as u32 } else { u32::MAX },
            handle_ptr: HANDLE,
            parent: MachPort(0x777),
        });
        // The parent travels in the body: a name not held fails the send.
        let m = Make {
            parent: MachPort(0x777),
            ..Make::new(p, DATA, u32::MAX)
        };
        t.make_fails(m, MACH_SEND_INVALID_RIGHT);
        // Row 1: a MAP_MEM flag outside the user's, before everything else.
        for bad in [0x100, 0x1000] {
            t.make_fails(Make::new(0, 0, perm(RW, bad)), KERN_INVALID_VALUE);
        }
        // Row 3: the range overflows 64 bits (only the 64-bit offset can).
        if t.aword() == 8 {
            let m = Make::new(2 * p, u64::MAX - p, perm(RW, MAP_MEM_VM_SHARE));
            t.make_fails(m, KERN_INVALID_ADDRESS);
            let m = Make::new(1, u64::MAX, perm(RW, MAP_MEM_NAMED_CREATE));
            t.make_fails(m, KERN_INVALID_ADDRESS);
        }
    });
}

#[test]
fn named_create_is_fresh_zero_memory_shared_by_its_mappings() {
    each_sharing(|t| {
        let p = t.p;
        // Size 0: success, no handle.
        let (code, size, handle) = t.make(Make::new(0, 0, perm(RW, MAP_MEM_NAMED_CREATE)));
        assert_eq!((code, size, handle), (KERN_SUCCESS, 0, MACH_PORT_NULL));
        // Refusals: data addresses, purgeable without write.
        for flags in [MAP_MEM_USE_DATA_ADDR, MAP_MEM_4K_DATA_ADDR] {
            let m = Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE | flags));
            t.make_fails(m, KERN_INVALID_ARGUMENT);
        }
        let m = Make::new(p, 0, perm(R, MAP_MEM_NAMED_CREATE | MAP_MEM_PURGABLE));
        t.make_fails(m, KERN_INVALID_ARGUMENT);
        // The size is the pages the range touches, whatever the offset.
        let m = Make::new(p + 1, 7, perm(RW, MAP_MEM_NAMED_CREATE));
        let e = t.entry(m, 2 * p);
        let a = t.mapped(Map::anywhere(e, 2 * p));
        let b = t.mapped(Map::anywhere(e, 2 * p));
        assert_ne!(a, b);
        assert_eq!(
            t.get(a, 2 * p as usize),
            vec![0; 2 * p as usize],
            "{}",
            t.ctx()
        );
        t.put(a + p + 3, b"entry");
        assert_eq!(t.get(b + p + 3, 5), b"entry", "{}", t.ctx());
        // Both map the object from offset 0; vm_map leaves `shared` clear, as XNU does.
        assert_eq!(t.shared_at(a), (0, 0), "{}", t.ctx());
        assert_eq!(t.shared_at(b), (0, 0), "{}", t.ctx());
        // The pages outlive every mapping while the entry lives.
        assert_eq!(t.deallocate(a, 2 * p), KERN_SUCCESS);
        assert_eq!(t.deallocate(b, 2 * p), KERN_SUCCESS);
        let c = t.mapped(Map::anywhere(e, 2 * p));
        assert_eq!(t.get(c + p + 3, 5), b"entry", "{}", t.ctx());
        // A second page alone, at its offset.
        let d = t.mapped(Map {
            offset: p,
            ..Map::anywhere(e, p)
        });
        assert_eq!(t.get(d + 3, 5), b"entry", "{}", t.ctx());
        assert_eq!(t.shared_at(d), (0, p), "{}", t.ctx());
    });
}

#[test]
fn vm_share_takes_the_whole_range_and_marks_it_shared() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(3);
        t.pattern(src, 3 * p, 1);
        // Three regions: RW, R, RW.
        assert_eq!(t.protect(src + p, p, false, R), KERN_SUCCESS);
        // Without IS_MASK every page must allow what is asked.
        let m = Make::new(3 * p, src, perm(RW, MAP_MEM_VM_SHARE));
        t.make_fails(m, KERN_PROTECTION_FAILURE);
        // A hole fails, after the pages before it pass.
        let m = Make::new(4 * p, src, perm(R, MAP_MEM_VM_SHARE));
        t.make_fails(m, KERN_INVALID_ADDRESS);
        // Size 0 is refused.
        t.make_fails(
            Make::new(0, src, perm(R, MAP_MEM_VM_SHARE)),
            KERN_INVALID_ARGUMENT,
        );
        // IS_MASK: what every page allows of it; nothing at all fails.
        let e = t.entry(
            Make::new(3 * p - 1, src + 1, perm(RW, MAP_MEM_VM_SHARE | IS_MASK)),
            3 * p,
        );
        assert_eq!(t.protect(src + 2 * p, p, false, VM_PROT_NONE), KERN_SUCCESS);
        let m = Make::new(p, src + 2 * p, perm(RW, MAP_MEM_VM_SHARE | IS_MASK));
        t.make_fails(m, KERN_PROTECTION_FAILURE);
        assert_eq!(t.protect(src + 2 * p, p, false, RW), KERN_SUCCESS);
        // The source is shared now.
        assert_eq!(t.shared_at(src).0, 1, "{}", t.ctx());
        // The entry allows read only: mapping it writable is refused.
        t.map_fails(Map::anywhere(e, p), KERN_INVALID_RIGHT);
        let r = Map {
            cur: R,
            max: R,
            ..Map::anywhere(e, p)
        };
        // A VM_SHARE entry maps whole, whatever the size asked.
        let a = t.mapped(r);
        assert_eq!(
            t.get(a, 3 * p as usize),
            t.get(src, 3 * p as usize),
            "{}",
            t.ctx()
        );
        t.put(src + 2 * p + 9, b"later");
        assert_eq!(t.get(a + 2 * p + 9, 5), b"later", "{}", t.ctx());
        // With RETURN_DATA_ADDR the address keeps the offset's place in its page... of
        // the offset asked (the entry was made without data address: no data offset).
        let (code, b) = t.map(Map {
            flags: ANYWHERE | RETURN_DATA_ADDR,
            offset: 5,
            ..r
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(b % p, 5, "{}", t.ctx());
        // Flags past a placement's are refused for a copy entry.
        t.map_fails(
            Map {
                flags: ANYWHERE | VM_FLAGS_PURGABLE.0,
                ..r
            },
            KERN_INVALID_ARGUMENT,
        );
    });
}

#[test]
fn a_plain_entry_stops_at_the_first_region() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(3);
        t.pattern(src, 3 * p, 2);
        assert_eq!(t.protect(src + 2 * p, p, false, R), KERN_SUCCESS);
        // *size shrinks to the first region's part of the range.
        let e = t.entry(Make::new(3 * p, src, perm(RW, 0)), 2 * p);
        // A hole at the start fails.
        let m = Make::new(p, t.memory_size() + 16 * p, perm(R, 0));
        t.make_fails(m, KERN_INVALID_ADDRESS);
        // Its offset in its object: mapped pages show the source's, both ways.
        let a = t.mapped(Map::anywhere(e, 2 * p));
        assert_eq!(
            t.get(a, 2 * p as usize),
            t.get(src, 2 * p as usize),
            "{}",
            t.ctx()
        );
        t.put(a + 1, b"back");
        assert_eq!(t.get(src + 1, 4), b"back", "{}", t.ctx());
        // Past its size, or an offset not whole pages, is refused.
        t.map_fails(Map::anywhere(e, 2 * p + 1), KERN_INVALID_ARGUMENT);
        let m = Map {
            offset: 1,
            ..Map::anywhere(e, p)
        };
        t.map_fails(m, KERN_INVALID_ARGUMENT);
        // A copy is private: later writes on either side stay there.
        let c = t.mapped(Map {
            copy: true,
            ..Map::anywhere(e, 2 * p)
        });
        t.put(c + 1, b"copy");
        assert_eq!(t.get(src + 1, 4), b"back", "{}", t.ctx());
        t.put(src + 1, b"src!");
        assert_eq!(t.get(c + 1, 4), b"copy", "{}", t.ctx());
        assert_eq!(t.shared_at(c), (0, 0), "{}", t.ctx());
    });
}

#[test]
fn vm_copy_entries_are_a_snapshot() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(2);
        t.pattern(src, 2 * p, 3);
        let before = t.get(src, 2 * p as usize);
        t.make_fails(
            Make::new(0, src, perm(RW, MAP_MEM_VM_COPY)),
            KERN_INVALID_ARGUMENT,
        );
        // Unreadable pages: a protection failure.
        assert_eq!(t.protect(src + p, p, false, W), KERN_SUCCESS);
        let m = Make::new(2 * p, src, perm(RW, MAP_MEM_VM_COPY));
        t.make_fails(m, KERN_PROTECTION_FAILURE);
        assert_eq!(t.protect(src + p, p, false, RW), KERN_SUCCESS);
        let e = t.entry(Make::new(2 * p, src, perm(RW, MAP_MEM_VM_COPY)), 2 * p);
        // The source is not shared by a copy.
        assert_eq!(t.shared_at(src).0, 0, "{}", t.ctx());
        t.put(src, b"after");
        let a = t.mapped(Map::anywhere(e, 2 * p));
        let b = t.mapped(Map::anywhere(e, 2 * p));
        assert_eq!(t.get(a, 2 * p as usize), before, "{}", t.ctx());
        // Its mappings share the snapshot.
        t.put(a + p, b"snap");
        assert_eq!(t.get(b + p, 4), b"snap", "{}", t.ctx());
        // A copy entry cannot be a parent.
        let m = Make {
            parent: e,
            ..Make::new(p, 0, perm(R, 0))
        };
        t.make_fails(m, KERN_INVALID_ARGUMENT);
        // USE_DATA_ADDR keeps the offset in the page: *size is the data's.
        let m = Make::new(p, src + 3, perm(R, MAP_MEM_VM_COPY | MAP_MEM_USE_DATA_ADDR));
        let d = t.entry(m, 2 * p - 3);
        let (code, at) = t.map(Map {
            flags: ANYWHERE | RETURN_DATA_ADDR,
            cur: R,
            max: R,
            ..Map::anywhere(d, p)
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(at % p, 3, "{}", t.ctx());
        assert_eq!(t.get(at, 5), t.get(src + 3, 5), "{}", t.ctx());
    });
}

#[test]
fn a_part_of_a_parent_entry() {
    each_sharing(|t| {
        let p = t.p;
        let parent = t.entry(Make::new(4 * p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), 4 * p);
        let a = t.mapped(Map::anywhere(parent, 4 * p));
        t.pattern(a, 4 * p, 4);
        // Past the parent's size, or more than it allows, is refused.
        let m = Make {
            parent,
            ..Make::new(2 * p, 3 * p, perm(RW, 0))
        };
        t.make_fails(m, KERN_INVALID_ARGUMENT);
        let m = Make {
            parent,
            ..Make::new(p, 0, perm(ALL, 0))
        };
        t.make_fails(m, KERN_PROTECTION_FAILURE);
        // Its pages 1 and 2.
        let child = Make {
            parent,
            ..Make::new(2 * p, p, perm(R, 0))
        };
        let c = t.entry(child, 2 * p);
        let b = t.mapped(Map {
            cur: R,
            max: R,
            ..Map::anywhere(c, 2 * p)
        });
        assert_eq!(t.get(b, 2 * p as usize), t.get(a + p, 2 * p as usize));
        t.put(a + p, b"seen");
        assert_eq!(t.get(b, 4), b"seen", "{}", t.ctx());
        // Read-only entry: no writable mapping.
        t.map_fails(Map::anywhere(c, p), KERN_INVALID_RIGHT);
        // NAMED_REUSE with a parent that is what the new entry would be: the same name.
        let src = t.fresh(1);
        let first = t.entry(Make::new(p, src, perm(RW, 0)), p);
        let m = Make {
            parent: first,
            ..Make::new(p, src, perm(RW, MAP_MEM_NAMED_REUSE))
        };
        assert_eq!(t.entry(m, p), first, "{}", t.ctx());
    });
}

#[test]
fn vm_map_checks_flags_protections_and_the_object() {
    each_sharing(|t| {
        let p = t.p;
        let form = t.form;
        t.names_resolve_first(|task, good| Call::Map {
            form,
            task,
            addr_ptr: PTR,
            size: if good { p } else { 0 },
            mask: 0,
            flags: if good { ANYWHERE } else { u32::MAX },
            object: MachPort(0x777),
            offset: 0,
            copy: 0,
            cur: RW,
            max: RW,
            inheritance: 0,
        });
        let fresh = Map::anywhere(MACH_PORT_NULL, p);
        t.map_fails(
            Map {
                object: MachPort(0x777),
                ..fresh
            },
            MACH_SEND_INVALID_RIGHT,
        );
        for bad in [
            Map {
                flags: ANYWHERE | 0x20,
                ..fresh
            },
            Map {
                cur: VmProt(8),
                ..fresh
            },
            Map {
                max: VmProt(0x10),
                ..fresh
            },
            Map {
                inheritance: 3,
                ..fresh
            },
            Map { size: 0, ..fresh },
            // machvm: cur within max.
            Map {
                cur: RW,
                max: R,
                ..fresh
            },
        ] {
            t.map_fails(bad, KERN_INVALID_ARGUMENT);
        }
        if t.aword() == 8 {
            t.map_fails(
                Map {
                    size: u64::MAX,
                    ..fresh
                },
                KERN_INVALID_ARGUMENT,
            );
        }
        // A port that is no entry: the task's own, the host's.
        for object in [TASK_SELF_NAME, HOST_SELF_NAME] {
            t.map_fails(Map { object, ..fresh }, KERN_INVALID_OBJECT);
        }
        // Fresh memory with the protections and inheritance asked, at the mask.
        let m = Map {
            cur: R,
            max: RW,
            inheritance: VM_INHERIT_NONE.0,
            mask: 4 * p - 1,
            ..fresh
        };
        let a = t.mapped(m);
        assert_eq!(a % (4 * p), 0, "{}", t.ctx());
        let attrs = t.page(a).unwrap();
        assert_eq!(
            (attrs.cur, attrs.max, attrs.inherit),
            (R, RW, VM_INHERIT_NONE)
        );
        // FIXED on taken pages: no space; OVERWRITE replaces them.
        t.map_fails(
            Map {
                hint: a,
                flags: 0,
                ..fresh
            },
            KERN_NO_SPACE,
        );
        let b = t.mapped(Map {
            hint: a,
            flags: OVERWRITE,
            ..fresh
        });
        assert_eq!(b, a, "{}", t.ctx());
        assert_eq!(t.page_prot(a), Some((RW, RW)), "{}", t.ctx());
        // IS_MASK takes what the entry allows.
        let e = t.entry(Make::new(p, 0, perm(R, MAP_MEM_NAMED_CREATE)), p);
        let c = t.mapped(Map {
            cur: VmProt(RW.0 | IS_MASK as i32),
            max: VmProt(ALL.0 | IS_MASK as i32),
            ..Map::anywhere(e, p)
        });
        assert_eq!(t.page_prot(c), Some((R, R)), "{}", t.ctx());
    });
}

#[test]
fn fresh_memory_without_write_is_zeroed_by_the_host_all_the_same() {
    // vm_map of fresh memory over used pages: the host zeroes pages the guest may not
    // write (nor, for NONE, read) — through their protection, never by a store that
    // faults in the host.
    each_sharing(|t| {
        let p = t.p;
        let a = t.fresh(3);
        for (k, (cur, max)) in [(VM_PROT_NONE, R), (R, R), (W, RW)].into_iter().enumerate() {
            let at = a + k as u64 * p;
            t.pattern(at, p, 9);
            let m = Map {
                hint: at,
                flags: OVERWRITE,
                cur,
                max,
                ..Map::anywhere(MACH_PORT_NULL, p)
            };
            assert_eq!(t.mapped(m), at, "{}", t.ctx());
            assert_eq!(t.page_prot(at), Some((cur, max)), "{}", t.ctx());
            assert_eq!(t.get(at, p as usize), vec![0; p as usize], "{}", t.ctx());
        }
    });
}

#[test]
fn port_names_go_with_their_last_reference() {
    each_sharing(|t| {
        let p = t.p;
        assert_eq!(t.port_deallocate(MACH_PORT_NULL), KERN_SUCCESS);
        assert_eq!(t.port_deallocate(MACH_PORT_DEAD), KERN_SUCCESS);
        assert_eq!(t.port_deallocate(MachPort(0x777)), KERN_INVALID_NAME);
        assert_eq!(t.port_deallocate(TASK_SELF_NAME), KERN_INVALID_RIGHT);
        assert_eq!(t.port_deallocate(HOST_SELF_NAME), KERN_INVALID_RIGHT);
        let e = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
        let a = t.mapped(Map::anywhere(e, p));
        t.put(a, b"kept");
        assert_eq!(t.port_deallocate(e), KERN_SUCCESS);
        // The name names nothing now; the mapping keeps its pages.
        t.map_fails(Map::anywhere(e, p), MACH_SEND_INVALID_RIGHT);
        assert_eq!(t.port_deallocate(e), KERN_INVALID_NAME);
        assert_eq!(t.get(a, 4), b"kept", "{}", t.ctx());
        // A new entry may take the slot again, under a new name.
        let f = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
        assert_ne!(f, e, "{}", t.ctx());
        assert_eq!(f.0 >> 8, e.0 >> 8, "{}", t.ctx());
        // NAMED_REUSE gives the same name one more reference: two deallocations.
        let src = t.fresh(1);
        let g = t.entry(Make::new(p, src, perm(RW, 0)), p);
        let again = Make {
            parent: g,
            ..Make::new(p, src, perm(RW, MAP_MEM_NAMED_REUSE))
        };
        assert_eq!(t.entry(again, p), g, "{}", t.ctx());
        assert_eq!(t.port_deallocate(g), KERN_SUCCESS);
        assert_eq!(t.port_deallocate(g), KERN_SUCCESS);
        assert_eq!(t.port_deallocate(g), KERN_INVALID_NAME);
    });
}

#[test]
fn two_tasks_share_through_an_entry_the_embedder_copies() {
    each_sharing(|t| {
        let p = t.p;
        let (w, a) = (t.w, t.g);
        let b = t.h.add_task(w, 4, Some(64));
        let src = t.fresh(2);
        t.pattern(src, 2 * p, 5);
        let e = t.entry(Make::new(2 * p, src, perm(RW, MAP_MEM_VM_SHARE)), 2 * p);
        let name = t.h.copy_send_right(a, e, b).expect("a holds the entry");
        // B maps it and writes; A reads.
        t.g = b;
        let at = t.mapped(Map::anywhere(name, 2 * p));
        let seen = t.get(at, 2 * p as usize);
        t.put(at + p, b"from b");
        t.g = a;
        let mut expected = t.get(src, 2 * p as usize);
        expected[p as usize..p as usize + 6].copy_from_slice(b"xxxxxx");
        let mut had = seen;
        had[p as usize..p as usize + 6].copy_from_slice(b"xxxxxx");
        assert_eq!(had, expected, "{}", t.ctx());
        assert_eq!(t.get(src + p, 6), b"from b", "{}", t.ctx());
        // A drops its name; B's keeps the entry.
        assert_eq!(t.port_deallocate(e), KERN_SUCCESS);
        t.g = b;
        let again = t.mapped(Map::anywhere(name, 2 * p));
        assert_eq!(t.get(again + p, 6), b"from b", "{}", t.ctx());
    });
}

#[test]
fn entries_hold_at_most_the_kernels_limit() {
    for (w, p) in CONFIGS {
        let config = machvm::KernelConfig::default()
            .page_size(p)
            .entry_limit(4 * p);
        let h = machvm::testing::harness::Harness::with_memories(config, true).unwrap();
        let mut h = K::Machvm(h);
        let g = h.add_task(w, 4, Some(64));
        let mut t = T {
            h,
            g,
            w,
            p,
            form: Form::MachVm,
            windows: false,
        };
        let first = t.entry(Make::new(3 * p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), 3 * p);
        let m = Make::new(2 * p, 0, perm(RW, MAP_MEM_NAMED_CREATE));
        t.make_fails(m, KERN_RESOURCE_SHORTAGE);
        // Its bytes come back with its last name.
        assert_eq!(t.port_deallocate(first), KERN_SUCCESS);
        t.entry(Make::new(4 * p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), 4 * p);
    }
}

#[test]
fn map_mem_only_sets_a_parents_cache_mode_and_makes_no_entry() {
    each_sharing(|t| {
        let p = t.p;
        let only = |mode: u32| MAP_MEM_ONLY | mode << 24;
        // No parent, or a data-address flag: refused.
        t.make_fails(Make::new(p, 0, perm(R, only(1))), KERN_INVALID_ARGUMENT);
        let rw = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
        let m = Make {
            parent: rw,
            ..Make::new(p, 0, perm(R, only(1) | MAP_MEM_USE_DATA_ADDR))
        };
        t.make_fails(m, KERN_INVALID_ARGUMENT);
        // A writable parent takes any mode: a null handle, *size as it was.
        let (code, size, handle) = t.make(Make {
            parent: rw,
            ..Make::new(5, 0, perm(R, only(3)))
        });
        assert_eq!((code, size, handle), (KERN_SUCCESS, 5, MACH_PORT_NULL));
        // A read-only parent: only its own mode (here, the one just set on... its own).
        let ro = t.entry(Make::new(p, 0, perm(R, MAP_MEM_NAMED_CREATE | 3 << 24)), p);
        let m = Make {
            parent: ro,
            ..Make::new(p, 0, perm(R, only(4)))
        };
        t.make_fails(m, KERN_INVALID_RIGHT);
        let (code, _, handle) = t.make(Make {
            parent: ro,
            ..Make::new(p, 0, perm(R, only(3)))
        });
        assert_eq!(
            (code, handle),
            (KERN_SUCCESS, MACH_PORT_NULL),
            "{}",
            t.ctx()
        );
        // A part of it asks no mode: its own is none, not the parent's (XNU's new entry).
        let part = t.entry(
            Make {
                parent: ro,
                ..Make::new(p, 0, perm(R, 0))
            },
            p,
        );
        let (code, _, _) = t.make(Make {
            parent: part,
            ..Make::new(p, 0, perm(R, only(0)))
        });
        assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
    });
}

#[test]
fn data_addresses_in_4k_units() {
    each_sharing(|t| {
        let p = t.p;
        let src = t.fresh(1);
        t.pattern(src, p, 6);
        // An offset 0x810 into the page: RETURN_4K_DATA_ADDR keeps its 4 KiB part only.
        let m = Make::new(
            0x10,
            src + 0x810,
            perm(RW, MAP_MEM_VM_COPY | MAP_MEM_USE_DATA_ADDR),
        );
        let copy = t.entry(m, p - 0x810);
        let plain = t.entry(Make::new(p, src, perm(RW, 0)), p);
        for (e, offset) in [(copy, 0), (plain, 0x810)] {
            for (flags, in_page) in [(RETURN_DATA_ADDR, 0x810), (0x80_0000, 0)] {
                let (code, at) = t.map(Map {
                    flags: ANYWHERE | flags,
                    offset,
                    ..Map::anywhere(e, 0x10)
                });
                assert_eq!(code, KERN_SUCCESS, "{}", t.ctx());
                assert_eq!(at % p, in_page, "{flags:#x} {}", t.ctx());
            }
        }
        // A purgeable mapping of an entry is refused (no entry object is purgeable).
        let m = Map {
            flags: ANYWHERE | VM_FLAGS_PURGABLE.0,
            ..Map::anywhere(plain, p)
        };
        t.map_fails(m, KERN_INVALID_ARGUMENT);
        // NAMED_REUSE needs a parent from its object's offset 0: a part from the second page
        // of an object is not reused.
        let two = t.fresh(2);
        t.entry(Make::new(2 * p, two, perm(RW, 0)), 2 * p);
        let second = t.entry(Make::new(p, two + p, perm(RW, 0)), p);
        let again = t.entry(
            Make {
                parent: second,
                ..Make::new(p, two + p, perm(RW, MAP_MEM_NAMED_REUSE))
            },
            p,
        );
        assert_ne!(again, second, "{}", t.ctx());
    });
}

#[test]
fn without_shared_memories_entries_are_not_supported_and_vm_map_maps_fresh_memory() {
    each(|t| {
        let p = t.p;
        // Every XNU row first: an unknown flag still answers KERN_INVALID_VALUE.
        t.make_fails(Make::new(p, 0, perm(RW, 0x1000)), KERN_INVALID_VALUE);
        for flags in [MAP_MEM_NAMED_CREATE, MAP_MEM_VM_SHARE, MAP_MEM_VM_COPY, 0] {
            t.make_fails(Make::new(p, DATA, perm(R, flags)), KERN_NOT_SUPPORTED);
        }
        let a = t.mapped(Map::anywhere(MACH_PORT_NULL, p));
        assert_eq!(t.page_prot(a), Some((RW, RW)), "{}", t.ctx());
    });
}

#[test]
fn the_embedder_copies_and_moves_rights() {
    for (w, p) in CONFIGS {
        let mut t = T::with(On::Machvm, true, w, p, Form::MachVm, 4, Some(64));
        let a = t.g;
        let b = t.h.add_task(w, 4, Some(64));
        let e = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
        let kernel = |t: &mut T| -> (machvm::TaskId, machvm::TaskId) {
            let h = t.harness();
            (h.task(a), h.task(b))
        };
        let (ta, tb) = kernel(&mut t);
        let k = &mut t.harness().store().data_mut().kernel;
        // Copies add a user reference where the name exists; a move leaves one less.
        assert_eq!(k.copy_send_right(ta, e, tb).unwrap(), MachPort(0x303));
        assert_eq!(k.copy_send_right(ta, e, tb).unwrap(), MachPort(0x303));
        assert_eq!(k.move_send_right(ta, e, tb).unwrap(), MachPort(0x303));
        assert!(k.task(ta).unwrap().lookup_port(e).is_none(), "moved away");
        // Names that hold nothing, the host port and the task's own port (which a move
        // cannot give away) are refused.
        assert!(k.copy_send_right(ta, e, tb).is_err());
        assert!(k.copy_send_right(ta, HOST_SELF_NAME, tb).is_err());
        assert!(k.move_send_right(ta, TASK_SELF_NAME, tb).is_err());
        // A task right: the task's own port copied into itself is its own name.
        assert_eq!(
            k.copy_send_right(ta, TASK_SELF_NAME, tb).unwrap(),
            MachPort(0x403)
        );
        assert_eq!(
            k.copy_send_right(tb, MachPort(0x403), ta).unwrap(),
            TASK_SELF_NAME
        );
        // B holds three references: the entry lives until the third deallocation.
        t.g = b;
        for _ in 0..2 {
            assert_eq!(t.port_deallocate(MachPort(0x303)), KERN_SUCCESS);
        }
        let at = t.mapped(Map::anywhere(MachPort(0x303), p));
        assert_eq!(t.port_deallocate(MachPort(0x303)), KERN_SUCCESS);
        assert_eq!(t.port_deallocate(MachPort(0x303)), KERN_INVALID_NAME);
        assert_eq!(t.get(at, 4), vec![0; 4]);
        let kernel = &t.harness().store().data_mut().kernel;
        assert_eq!(kernel.entries().bytes(), 0, "its bytes came back");
    }
}

#[test]
fn names_take_a_new_generation_and_references_peg_at_the_most() {
    let (w, p) = (Width::W32, 4096);
    let mut t = T::with(On::Machvm, true, w, p, Form::MachVm, 4, Some(64));
    let b = t.h.add_task(w, 4, Some(64));
    // One slot, used again and again: 0x303, 0x307, ... 0x3ff, then 0x303 once more.
    let mut names = Vec::new();
    for _ in 0..65 {
        let e = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
        names.push(e.0);
        assert_eq!(t.port_deallocate(e), KERN_SUCCESS);
    }
    assert_eq!(names[..3], [0x303, 0x307, 0x30b]);
    assert_eq!(names[63], 0x3ff);
    assert_eq!(names[64], 0x303, "the generation comes round after 64 uses");
    // 65535 references stay: a deallocation takes none away.
    let e = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
    let a = t.g;
    let (ta, tb) = {
        let h = t.harness();
        (h.task(a), h.task(b))
    };
    let kernel = &mut t.harness().store().data_mut().kernel;
    for _ in 0..70_000 {
        kernel.copy_send_right(ta, e, tb).expect("copies");
    }
    let name = kernel.copy_send_right(ta, e, tb).unwrap();
    t.g = b;
    for _ in 0..3 {
        assert_eq!(t.port_deallocate(name), KERN_SUCCESS);
    }
    assert!(t.mapped(Map::anywhere(name, p)) > 0, "still named");
}

#[test]
fn ranges_that_wrap_holes_and_the_largest_object() {
    each_sharing(|t| {
        let p = t.p;
        // A hole in a copy's range.
        let past = t.memory_size() + 4 * p;
        t.make_fails(
            Make::new(p, past, perm(R, MAP_MEM_VM_COPY)),
            KERN_INVALID_ADDRESS,
        );
        if t.aword() == 8 {
            // Size 0 at an offset whose page rounds past 2^64: the rounded end wraps to 0.
            let top = u64::MAX - 1;
            for flags in [MAP_MEM_NAMED_CREATE, MAP_MEM_VM_SHARE, MAP_MEM_VM_COPY] {
                t.make_fails(Make::new(0, top, perm(R, flags)), KERN_INVALID_ARGUMENT);
            }
            // More than 2^32 - 1 pages of a new object: KERN_FAILURE (XNU's ANON_MAX_SIZE),
            // before the entry limit is looked at.
            let m = Make::new(p << 32, 0, perm(RW, MAP_MEM_NAMED_CREATE));
            t.make_fails(m, KERN_FAILURE);
            // vm_map: offset + round(size) overflowing.
            let e = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
            let m = Map {
                offset: u64::MAX - p + 1,
                ..Map::anywhere(e, p)
            };
            t.map_fails(m, KERN_INVALID_ARGUMENT);
        }
    });
}

#[test]
fn a_task_deallocates_a_name_in_another_tasks_namespace() {
    each_sharing(|t| {
        let p = t.p;
        let (w, a) = (t.w, t.g);
        let b = t.h.add_task(w, 4, Some(64));
        let to_b = t.h.insert_send_right(a, b);
        t.g = b;
        let e = t.entry(Make::new(p, 0, perm(RW, MAP_MEM_NAMED_CREATE)), p);
        t.g = a;
        let call = |name| Call::PortDeallocate { task: to_b, name };
        assert_eq!(t.ret(call(e)), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.ret(call(e)), KERN_INVALID_NAME, "{}", t.ctx());
        // The caller's own namespace is not the one named.
        assert_eq!(t.port_deallocate(to_b), KERN_SUCCESS, "{}", t.ctx());
        assert_eq!(t.port_deallocate(to_b), KERN_INVALID_NAME, "{}", t.ctx());
    });
}
