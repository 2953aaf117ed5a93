//! spec §1 ports: task resolution for every call, and cross-task calls through send rights.

use crate::common::*;
use machvm::abi::*;
use machvm::{Call, Form, Outcome, Width};

/// Every task-taking call, with `task` as its port and harmless arguments otherwise.
fn calls_with_task(task: MachPort, form: Form) -> Vec<Call> {
    vec![
        Call::Allocate {
            form,
            task,
            addr_ptr: PTR,
            size: 4096,
            flags: VM_FLAGS_ANYWHERE,
        },
        Call::Deallocate {
            form,
            task,
            addr: DATA,
            size: 0,
        },
        Call::Protect {
            form,
            task,
            addr: DATA,
            size: 0,
            set_max: 0,
            prot: VmProt(1),
        },
        Call::Copy {
            form,
            task,
            src: DATA,
            size: 0,
            dst: DATA,
        },
        Call::Read {
            form,
            task,
            addr: DATA,
            size: 0,
            data_ptr: PTR,
            count_ptr: PTR + 8,
        },
        Call::ReadOverwrite {
            form,
            task,
            addr: DATA,
            size: 0,
            data: DATA,
            outsize_ptr: PTR,
        },
        Call::Write {
            form,
            task,
            addr: DATA,
            data: DATA,
            count: 0,
        },
        Call::Region {
            form,
            task,
            addr_ptr: PTR,
            size_ptr: PTR + 8,
            flavor: 9,
            info_ptr: INFO,
            count_ptr: PTR + 16,
            object_name_ptr: PTR + 20,
        },
        Call::VmRegion {
            task,
            addr_ptr: PTR,
            size_ptr: PTR + 8,
            flavor: 9,
            info_ptr: INFO,
            count_ptr: PTR + 16,
            object_name_ptr: PTR + 20,
        },
        Call::BehaviorSet {
            form,
            task,
            addr: DATA,
            size: 0,
            behavior: 0,
        },
    ]
}

#[test]
fn invalid_names_are_send_invalid_dest_and_the_host_port_invalid_argument() {
    each(|t| {
        t.put(PTR + 16, &9u32.to_le_bytes());
        let before = t.mem();
        // 0x303 names nothing until a right is inserted.
        for name in [
            MACH_PORT_NULL,
            MACH_PORT_DEAD,
            MachPort(0x303),
            MachPort(0x12345),
            MachPort(0x104),
            MachPort(0x102),
            MachPort(3),
        ] {
            for c in calls_with_task(name, t.form) {
                assert_eq!(
                    t.ret(c.clone()),
                    MACH_SEND_INVALID_DEST,
                    "{} {c:?}",
                    t.ctx()
                );
            }
        }
        for c in calls_with_task(HOST_SELF_NAME, t.form) {
            assert_eq!(t.ret(c.clone()), KERN_INVALID_ARGUMENT, "{} {c:?}", t.ctx());
        }
        assert_eq!(t.mem(), before, "{} nothing written", t.ctx());
        // The task is resolved before anything else: even a size-0 call fails.
        let c = Call::Copy {
            form: t.form,
            task: MachPort(0),
            src: 0,
            size: 0,
            dst: 0,
        };
        assert_eq!(t.ret(c), MACH_SEND_INVALID_DEST);
    });
}

/// Two guests of the same width; guest 1 may get a right to guest 0.
fn pair(on: On, w: Width, p: u64) -> K {
    let mut h = K::new(on, p);
    h.add_task(w, 4, Some(64));
    h.add_task(w, 4, Some(64));
    h
}

/// Task `g`'s whole memory.
fn mem(h: &K, g: usize) -> Vec<u8> {
    h.read(g, 0, h.memory_size(g) as usize)
}

fn ret(h: &mut K, g: usize, c: Call) -> KernReturn {
    match h.call(g, &c) {
        Outcome::Kr(kr) => kr,
        o => panic!("{c:?}: {o:?}, expected a kern_return_t"),
    }
}

#[test]
fn without_a_send_right_another_task_is_unreachable() {
    for (on, (w, p)) in on_configs() {
        let mut h = pair(on, w, p);
        // The name the right would get is not valid yet.
        for form in FORMS {
            let c = Call::Protect {
                form,
                task: MachPort(0x303),
                addr: DATA,
                size: p,
                set_max: 0,
                prot: VmProt(1),
            };
            assert_eq!(ret(&mut h, 1, c), MACH_SEND_INVALID_DEST);
        }
        assert_eq!(h.page(0, DATA / p).unwrap().cur, VM_PROT_DEFAULT);
    }
}

#[test]
fn with_a_send_right_cross_task_calls_touch_only_the_target() {
    for (on, (w, p)) in on_configs() {
        for form in FORMS {
            let mut h = pair(on, w, p);
            let name = h.insert_send_right(1, 0);
            assert_eq!(name, MachPort(0x303));
            assert_eq!(
                h.insert_send_right(1, 0),
                MachPort(0x303),
                "one name per port"
            );
            assert_eq!(h.insert_send_right(1, 1), TASK_SELF_NAME);
            let pattern: Vec<u8> = (0..4 * p).map(|i| (i % 251) as u8).collect();
            h.write(0, DATA, &pattern);
            let mem1 = mem(&h, 1).to_vec();
            // vm_protect on the target.
            let c = Call::Protect {
                form,
                task: name,
                addr: DATA,
                size: p,
                set_max: 0,
                prot: VmProt(1),
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            assert_eq!(h.page(0, DATA / p).unwrap().cur, VM_PROT_READ);
            assert_eq!(h.page(1, DATA / p).unwrap().cur, VM_PROT_DEFAULT);
            // vm_copy inside the target.
            let mut want0 = mem(&h, 0).to_vec();
            want0.copy_within(
                DATA as usize..(DATA + 100) as usize,
                (DATA + p + 7) as usize,
            );
            let c = Call::Copy {
                form,
                task: name,
                src: DATA,
                size: 100,
                dst: DATA + p + 7,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            assert_eq!(mem(&h, 0), &want0[..]);
            assert_eq!(mem(&h, 1), &mem1[..], "the caller is untouched");
            // vm_copy into the read-only target page fails, by the target's table.
            let c = Call::Copy {
                form,
                task: name,
                src: DATA + p,
                size: 8,
                dst: DATA,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_PROTECTION_FAILURE);
            // vm_read_overwrite: target -> caller's buffer.
            let c = Call::ReadOverwrite {
                form,
                task: name,
                addr: DATA + 3,
                size: 50,
                data: DATA,
                outsize_ptr: PTR,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            assert_eq!(
                mem(&h, 1)[DATA as usize..(DATA + 50) as usize],
                want0[(DATA + 3) as usize..(DATA + 53) as usize]
            );
            // vm_write: caller's buffer -> target.
            h.write(1, DATA + 2 * p, b"mach");
            let c = Call::Write {
                form,
                task: name,
                addr: DATA + 2 * p + 1,
                data: DATA + 2 * p,
                count: 4,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            assert_eq!(
                &mem(&h, 0)[(DATA + 2 * p + 1) as usize..(DATA + 2 * p + 5) as usize],
                b"mach"
            );
            // vm_write's data buffer is checked in the caller: a hole there is INVALID_MEMORY
            // even though the same address is fine in the target.
            let c = Call::Deallocate {
                form,
                task: TASK_SELF_NAME,
                addr: DATA + 3 * p,
                size: p,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            let c = Call::Write {
                form,
                task: name,
                addr: DATA,
                data: DATA + 3 * p,
                count: 4,
            };
            assert_eq!(ret(&mut h, 1, c), MACH_SEND_INVALID_MEMORY);
            // vm_read: from the target into a fresh allocation in the caller.
            let c = Call::Read {
                form,
                task: name,
                addr: DATA + 5,
                size: 10,
                data_ptr: PTR,
                count_ptr: PTR + 8,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            let data = u64::from_le_bytes(
                mem(&h, 1)[PTR as usize..PTR as usize + 8]
                    .try_into()
                    .unwrap(),
            );
            let data = if w == Width::W32 {
                data & 0xFFFF_FFFF
            } else {
                data
            };
            assert_eq!(
                data,
                DATA + 3 * p + 5,
                "allocated in the caller's lowest hole, at the offset of addr"
            );
            assert_eq!(
                mem(&h, 1)[data as usize..data as usize + 10],
                want0[(DATA + 5) as usize..(DATA + 15) as usize]
            );
            assert_eq!(
                h.page(0, DATA / p + 3).map(|a| a.cur),
                Some(VM_PROT_DEFAULT),
                "target untouched"
            );
            // vm_allocate / vm_deallocate in the target.
            let len0 = mem(&h, 0).len();
            let c = Call::Allocate {
                form,
                task: name,
                addr_ptr: PTR,
                size: p,
                flags: VmFlags(1),
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            assert!(mem(&h, 0).len() > len0, "the target grew");
            assert!(h.page(0, len0 as u64 / p).is_some());
            let c = Call::Deallocate {
                form,
                task: name,
                addr: DATA,
                size: p,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            assert_eq!(h.page(0, DATA / p), None);
            assert!(h.page(1, DATA / p).is_some());
            // vm_region of the target.
            h.write(1, PTR, &DATA.to_le_bytes());
            h.write(1, PTR + 16, &9u32.to_le_bytes());
            let c = Call::Region {
                form,
                task: name,
                addr_ptr: PTR,
                size_ptr: PTR + 8,
                flavor: 9,
                info_ptr: INFO,
                count_ptr: PTR + 16,
                object_name_ptr: PTR + 20,
            };
            assert_eq!(ret(&mut h, 1, c), KERN_SUCCESS);
            let addr = u64::from_le_bytes(
                mem(&h, 1)[PTR as usize..PTR as usize + 8]
                    .try_into()
                    .unwrap(),
            );
            let addr = if w == Width::W32 && form == Form::Vm {
                addr & 0xFFFF_FFFF
            } else {
                addr
            };
            assert_eq!(addr, DATA + p, "the hole in the target is skipped");
            // Guest 0 was given no right to guest 1.
            let c = Call::Protect {
                form,
                task: MachPort(0x303),
                addr: DATA,
                size: p,
                set_max: 0,
                prot: VmProt(1),
            };
            assert_eq!(ret(&mut h, 0, c), MACH_SEND_INVALID_DEST);
        }
    }
}

#[test]
fn cross_task_between_a_32_and_a_64_bit_guest() {
    for on in BOTH {
        let mut h = K::new(on, 4096);
        let g32 = h.add_task(Width::W32, 4, Some(64));
        let g64 = h.add_task(Width::W64, 4, Some(64));
        let to64 = h.insert_send_right(g32, g64);
        let to32 = h.insert_send_right(g64, g32);
        // mach_vm_allocate from the 32-bit guest maps pages in the 64-bit target.
        h.write(g32, PTR, &0x10_0000u64.to_le_bytes());
        let c = Call::Allocate {
            form: Form::MachVm,
            task: to64,
            addr_ptr: PTR,
            size: 4096,
            flags: VmFlags(0),
        };
        assert_eq!(ret(&mut h, g32, c), KERN_SUCCESS);
        assert!(h.page(g64, 0x100).is_some());
        assert!(h.page(g32, 0x100).is_none());
        let c = Call::Protect {
            form: Form::Vm,
            task: to32,
            addr: DATA,
            size: 1,
            set_max: 1,
            prot: VmProt(0),
        };
        assert_eq!(ret(&mut h, g64, c), KERN_SUCCESS);
        assert_eq!(h.page(g32, DATA / 4096).unwrap().max, VM_PROT_NONE);
    }
}
