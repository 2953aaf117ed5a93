//! spec §3 scalar parameters: traps on bad in/out pointers, stores only on success, and no
//! panic on any argument.

use crate::common::*;
use machvm::abi::*;
use machvm::{Call, Form, Outcome, Width};

#[test]
fn out_parameter_past_the_memory_traps_naming_call_and_address() {
    each(|t| {
        let end = t.memory_size();
        let f = t.trap(Call::HostPageSize {
            host: MachPort(0),
            size_ptr: end - 2,
        });
        assert_eq!(
            (f.call, f.param, f.addr, f.write),
            ("host_page_size", "size", end - 2, true)
        );
        let msg = f.to_string();
        assert!(
            msg.contains("host_page_size") && msg.contains(&format!("{:#x}", end - 2)),
            "{msg}"
        );
        // The reason's words are machvm's (the model words its own).
        if t.on_machvm() {
            assert!(msg.contains("unallocated"), "{msg}");
        }
        // Outside the map.
        let f = t.trap(Call::HostPageSize {
            host: MachPort(0),
            size_ptr: 4 << 20,
        });
        assert_eq!((f.param, f.addr, f.write), ("size", 4 << 20, true));
        if t.on_machvm() {
            assert!(f.reason.contains("outside the task's map"), "{}", f.reason);
        }
        // Wrapping the pointer width.
        let top = (t.w.limit() - 1) as u64;
        let f = t.trap(Call::HostPageSize {
            host: MachPort(0),
            size_ptr: top - 1,
        });
        assert_eq!((f.param, f.addr, f.write), ("size", top - 1, true));
        if t.on_machvm() {
            assert!(f.reason.contains("wraps"), "{} {}", t.ctx(), f.reason);
        }
        // The instance keeps working after the trap.
        assert_eq!(
            t.ret(Call::HostPageSize {
                host: MachPort(0),
                size_ptr: PTR
            }),
            KERN_SUCCESS
        );
    });
}

#[test]
fn out_parameter_on_a_read_only_page_traps_after_the_call() {
    each(|t| {
        let p = t.p;
        assert_eq!(t.protect(DATA, p, false, R), KERN_SUCCESS);
        let form = t.form;
        // vm_allocate's *address is in-out: readable, so the call runs, then the store faults.
        let f = t.trap(Call::Allocate {
            form,
            task: TASK_SELF_NAME,
            addr_ptr: DATA,
            size: p,
            flags: VmFlags(1),
        });
        assert_eq!(
            (f.call, f.param, f.write),
            (
                if form == Form::Vm {
                    "vm_allocate"
                } else {
                    "mach_vm_allocate"
                },
                "address",
                true
            )
        );
        if t.on_machvm() {
            assert!(
                f.reason.contains("not writable") && f.reason.contains("r--"),
                "{}",
                f.reason
            );
        }
        // The allocation happened (as XNU's MIG stub faults after the kernel call).
        let end = t.memory_size();
        assert!(t.page(end - 65536).is_some(), "{}", t.ctx());
        // A write-only page is fine for a store.
        assert_eq!(t.protect(DATA, p, false, W), KERN_SUCCESS);
        assert_eq!(
            t.ret(Call::HostPageSize {
                host: MachPort(0),
                size_ptr: DATA
            }),
            KERN_SUCCESS
        );
        // vm_read: *data stored, then *count faults.
        assert_eq!(t.protect(DATA + p, p, false, R), KERN_SUCCESS);
        t.put(PTR, &[0; 8]);
        let f = t.trap(Call::Read {
            form,
            task: TASK_SELF_NAME,
            addr: DATA + p,
            size: 8,
            data_ptr: PTR,
            count_ptr: DATA + p,
        });
        assert_eq!((f.param, f.addr), ("count", DATA + p));
        assert_ne!(
            t.get_uint(PTR, t.word()),
            0,
            "{} *data was stored first",
            t.ctx()
        );
    });
}

#[test]
fn in_out_parameter_unreadable_traps_before_anything() {
    each(|t| {
        let p = t.p;
        let form = t.form;
        assert_eq!(t.protect(DATA, p, false, W), KERN_SUCCESS);
        let pages = t.pages();
        let len = t.memory_size() as usize;
        let f = t.trap(Call::Allocate {
            form,
            task: TASK_SELF_NAME,
            addr_ptr: DATA,
            size: p,
            flags: VmFlags(1),
        });
        assert_eq!((f.param, f.write), ("address", false));
        if t.on_machvm() {
            assert!(f.reason.contains("not readable"), "{}", f.reason);
        }
        assert_eq!(
            (t.pages(), t.memory_size() as usize),
            (pages, len),
            "{} no allocation",
            t.ctx()
        );
        // vm_region's *address then *count, in that order; before the task is resolved.
        let f = t.trap(Call::Region {
            form,
            task: MachPort(0),
            addr_ptr: PTR,
            size_ptr: PTR,
            flavor: 9,
            info_ptr: INFO,
            count_ptr: DATA + 4,
            object_name_ptr: PTR,
        });
        assert_eq!((f.param, f.addr), ("count", DATA + 4));
        // Unallocated in-out parameter.
        assert_eq!(t.deallocate(DATA, p), KERN_SUCCESS);
        let f = t.trap(Call::Allocate {
            form,
            task: TASK_SELF_NAME,
            addr_ptr: DATA,
            size: p,
            flags: VmFlags(1),
        });
        if t.on_machvm() {
            assert!(f.reason.contains("unallocated"), "{}", f.reason);
        }
    });
}

#[test]
fn failing_calls_store_nothing_and_do_not_trap() {
    each(|t| {
        let form = t.form;
        let bad = 4u64 << 20; // outside the map
        let calls = [
            Call::Allocate {
                form,
                task: TASK_SELF_NAME,
                addr_ptr: PTR,
                size: 1,
                flags: VmFlags(0x20),
            },
            Call::Read {
                form,
                task: MachPort(0),
                addr: DATA,
                size: 8,
                data_ptr: bad,
                count_ptr: bad,
            },
            Call::Read {
                form,
                task: TASK_SELF_NAME,
                addr: bad,
                size: 8,
                data_ptr: bad,
                count_ptr: bad,
            },
            Call::ReadOverwrite {
                form,
                task: TASK_SELF_NAME,
                addr: bad,
                size: 8,
                data: DATA,
                outsize_ptr: bad,
            },
            Call::Region {
                form,
                task: TASK_SELF_NAME,
                addr_ptr: PTR,
                size_ptr: bad,
                flavor: 1,
                info_ptr: bad,
                count_ptr: PTR + 16,
                object_name_ptr: bad,
            },
        ];
        t.put(PTR + 16, &9u32.to_le_bytes());
        let before = t.mem();
        for c in calls {
            assert!(
                matches!(t.outcome(c.clone()), Outcome::Kr(r) if r != KERN_SUCCESS),
                "{} {c:?}",
                t.ctx()
            );
        }
        assert_eq!(t.mem(), before, "{}", t.ctx());
    });
}

#[test]
fn the_trap_reaches_the_embedder_with_its_message() {
    let mut t = T::new(Width::W32, 4096, Form::Vm, 1, Some(2));
    let err = t
        .harness()
        .call(
            0,
            &Call::HostPageSize {
                host: MachPort(0),
                size_ptr: 0x1_0000,
            },
        )
        .unwrap();
    match err {
        Outcome::Trap(f) => assert_eq!(
            f.to_string(),
            "host_page_size: cannot write out-parameter `size` at wasm address 0x10000: page 0x10000 is unallocated"
        ),
        other => panic!("{other:?}"),
    }
}

/// Extreme values for every argument of every call: the host (and the model) answers (a
/// code or a trap) and never panics, and the memory outside the calls' legal effects stays sane.
#[test]
fn no_argument_makes_the_host_panic() {
    for (on, (w, p)) in on_configs() {
        let top = (w.limit() - 1) as u64;
        let vals = [
            0,
            1,
            p - 1,
            p,
            p + 1,
            DATA,
            0x3_FFFF,
            4 << 20,
            top - p,
            top - 1,
            top,
            u64::MAX,
            1 << 32,
            1 << 63,
        ];
        let mut t = T::on(on, w, p, Form::Vm, 4, Some(64));
        let mut n = 0;
        for form in FORMS {
            let aw = form.address_width(w);
            let a = |v: u64| aw.truncate(v);
            let pw = |v: u64| w.truncate(v);
            for (i, &x) in vals.iter().enumerate() {
                for &y in &vals[i % 5..] {
                    let z = vals[(i * 7 + 3) % vals.len()];
                    let calls = [
                        Call::Allocate {
                            form,
                            task: TASK_SELF_NAME,
                            addr_ptr: pw(y),
                            size: a(x),
                            flags: VmFlags(z as u32),
                        },
                        Call::Allocate {
                            form,
                            task: TASK_SELF_NAME,
                            addr_ptr: PTR,
                            size: a(x),
                            flags: VmFlags((y as u32) & 0x4001),
                        },
                        Call::Deallocate {
                            form,
                            task: TASK_SELF_NAME,
                            addr: a(x),
                            size: a(y),
                        },
                        Call::Protect {
                            form,
                            task: TASK_SELF_NAME,
                            addr: a(x),
                            size: a(y),
                            set_max: z as u32,
                            prot: VmProt(z as i32 & 0x17),
                        },
                        Call::Copy {
                            form,
                            task: TASK_SELF_NAME,
                            src: a(x),
                            size: a(y),
                            dst: a(z),
                        },
                        Call::Read {
                            form,
                            task: TASK_SELF_NAME,
                            addr: a(x),
                            size: a(y),
                            data_ptr: pw(z),
                            count_ptr: PTR,
                        },
                        Call::ReadOverwrite {
                            form,
                            task: TASK_SELF_NAME,
                            addr: a(x),
                            size: a(y) & 0xFFFFF,
                            data: a(z),
                            outsize_ptr: pw(y),
                        },
                        Call::Write {
                            form,
                            task: TASK_SELF_NAME,
                            addr: a(x),
                            data: pw(z),
                            count: y as u32,
                        },
                        Call::Region {
                            form,
                            task: TASK_SELF_NAME,
                            addr_ptr: pw(x),
                            size_ptr: pw(y),
                            flavor: z as u32,
                            info_ptr: pw(z),
                            count_ptr: PTR,
                            object_name_ptr: pw(x),
                        },
                        Call::HostPageSize {
                            host: MachPort(x as u32),
                            size_ptr: pw(y),
                        },
                    ];
                    for c in calls {
                        t.h.call(0, &c);
                        n += 1;
                    }
                    // Start again when the scratch page was made unusable.
                    if t.page_prot(0).is_none_or(|(cur, _)| cur != RW) {
                        t = T::on(on, w, p, Form::Vm, 4, Some(64));
                    }
                }
            }
        }
        assert!(n > 1000);
    }
}
