//! spec §5: the page table governs the guest's own loads, stores and bulk-memory
//! instructions, through real guests (`wat/access.wat`), and no hostile guest can crash the
//! host. The crash-proofing and mapping-exhaustion scenarios (spec §7) run in a child
//! process (this test binary, re-run with `MACHVM_CHILD` set), so that a crash is seen as a
//! failed exit and neither the process-wide mapping budget nor the kernel's mapping limit is
//! shared with other tests.

mod common;

use common::child;

use machvm::abi::*;
use machvm::enforce::{AccessKind, BadAccess};
use machvm::{Call, Form, Kernel, KernelConfig, Outcome, PageAttrs, TaskId, TaskPre, Width};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Val};

fn access_wat(w: Width) -> String {
    let text = include_str!("../wat/access.wat");
    let (addr, mem, to64) = match w {
        Width::W32 => ("i32", "", "i64.extend_i32_u"),
        Width::W64 => ("i64", "i64", "block (result i64)"),
    };
    text.replace("MEM64", mem)
        .replace("TO64", to64)
        .replace("ADDR", addr)
}

/// An engine; with `pooling`, one whose pool holds 4 memories.
fn engine(pooling: bool) -> Engine {
    common::engine(pooling.then_some(4))
}

/// One instance of the access guest as a task.
struct Guest {
    store: Store<Kernel>,
    instance: Instance,
    task: TaskId,
    w: Width,
}

impl Guest {
    fn new(engine: &Engine, module: &machvm::Compiled, w: Width, page_size: u64) -> Guest {
        let kernel = Kernel::with_config(KernelConfig::default().page_size(page_size)).unwrap();
        let mut store = Store::new(engine, kernel);
        machvm::install_handlers(&mut store);
        let (instance, task) =
            machvm::instantiate(&mut store, &Linker::new(engine), module).unwrap();
        Guest {
            store,
            instance,
            task,
            w,
        }
    }

    fn host(&mut self, c: Call) -> KernReturn {
        let outcome = machvm::call(&mut self.store, self.task, &c).unwrap();
        common::kr(&c, outcome)
    }

    /// Puts the page at `addr` (one task page) in `state`.
    fn set(&mut self, addr: u64, page: u64, state: State_) {
        let task = TASK_SELF_NAME;
        let form = Form::MachVm;
        // Start from a fresh RW page.
        assert_eq!(
            self.host(Call::Deallocate {
                form,
                task,
                addr,
                size: page
            }),
            KERN_SUCCESS
        );
        if state == State_::Unallocated {
            return;
        }
        // vm_allocate FIXED needs *address in memory: use a scratch word at 0x200.
        let mem = self.instance.get_memory(&mut self.store, "memory").unwrap();
        mem.write(&mut self.store, 0x200, &addr.to_le_bytes())
            .unwrap();
        let r = self.host(Call::Allocate {
            form,
            task,
            addr_ptr: 0x200,
            size: page,
            flags: VmFlags(0),
        });
        assert_eq!(r, KERN_SUCCESS);
        let prot = state.prot();
        let r = self.host(Call::Protect {
            form,
            task,
            addr,
            size: page,
            set_max: 0,
            prot,
        });
        assert_eq!(r, KERN_SUCCESS);
    }

    fn run(&mut self, export: &str, addr: u64) -> wasmtime::Result<i32> {
        let f = self.instance.get_func(&mut self.store, export).unwrap();
        let arg = match self.w {
            Width::W32 => Val::I32(addr as i32),
            Width::W64 => Val::I64(addr as i64),
        };
        let mut out = [Val::I32(0)];
        f.call(&mut self.store, &[arg], &mut out)?;
        Ok(match out[0] {
            Val::I64(v) => v as i32,
            ref v => v.unwrap_i32(),
        })
    }

    fn page_attrs(&self, page: u64) -> Option<PageAttrs> {
        self.store.data().task(self.task).unwrap().table().get(page)
    }
}

#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State_ {
    Unallocated,
    None,
    R,
    W,
    RW,
    RX,
    All,
}

impl State_ {
    const ALL: [State_; 7] = [
        State_::Unallocated,
        State_::None,
        State_::R,
        State_::W,
        State_::RW,
        State_::RX,
        State_::All,
    ];

    fn prot(self) -> VmProt {
        match self {
            State_::Unallocated | State_::None => VM_PROT_NONE,
            State_::R => VM_PROT_READ,
            State_::W => VM_PROT_WRITE,
            State_::RW => VM_PROT_DEFAULT,
            State_::RX => VM_PROT_READ | VM_PROT_EXECUTE,
            State_::All => VM_PROT_ALL,
        }
    }
}

const READS: [&str; 5] = ["load8", "load32", "load64", "loadv128", "copy_src"];
const WRITES: [&str; 7] = [
    "store8",
    "store32",
    "store64",
    "storev128",
    "copy_dst",
    "fill",
    "init",
];

/// machvm keeps write-only pages inaccessible until their first store here (the fault tells
/// a store from a load); elsewhere a write-only page is read-write in hardware.
const WRITE_ONLY_EXACT: bool = cfg!(all(target_os = "linux", target_arch = "x86_64"));

/// What the table says of an access of `kind` to a fresh page in `state` — plus, where
/// write-only pages are not kept exact, the documented gap: the guest's own plain loads from
/// a WRITE-only page succeed (bulk copies out of it are still refused, by the table check).
fn allowed(export: &str, state: State_) -> bool {
    let write = WRITES.contains(&export);
    if state == State_::Unallocated {
        return false;
    }
    let prot = state.prot();
    if write {
        prot.intersects(VM_PROT_WRITE)
    } else {
        prot.intersects(VM_PROT_READ)
            || (!WRITE_ONLY_EXACT && prot.intersects(VM_PROT_WRITE) && export != "copy_src")
    }
}

#[test]
fn every_access_kind_against_every_protection_state() {
    let engine = engine(false);
    for w in [Width::W32, Width::W64] {
        let module = machvm::compile(&engine, access_wat(w).as_bytes()).unwrap();
        for page in [4096u64, 16384] {
            let mut g = Guest::new(&engine, &module, w, page);
            let at = 0x20000u64; // a page of the initial memory, aligned for both sizes
            for state in State_::ALL {
                for export in READS.iter().chain(&WRITES) {
                    g.set(at, page, state);
                    // In the middle of the page, and (accesses wider than a byte) straddling
                    // into it from the page below.
                    let straddle = !export.ends_with('8');
                    for addr in [Some(at + page / 2), straddle.then_some(at - 2)]
                        .into_iter()
                        .flatten()
                    {
                        let ctx =
                            format!("{w:?} P={page} {export} at {addr:#x} on a {state:?} page");
                        let r = g.run(export, addr);
                        if allowed(export, state) {
                            assert!(r.is_ok(), "{ctx}: trapped: {:?}", r.err());
                            continue;
                        }
                        let err = r.expect_err(&ctx);
                        let bad = match err.downcast_ref::<BadAccess>() {
                            Some(b) => b.clone(),
                            None => {
                                machvm::explain_trap(&mut g.store, &err)
                                    .unwrap_or_else(|| panic!("{ctx}: unexplained trap {err:?}"))
                                    .1
                            }
                        };
                        let kind = if WRITES.contains(export) {
                            AccessKind::Write
                        } else {
                            AccessKind::Read
                        };
                        assert_eq!(bad.kind, kind, "{ctx}: {bad}");
                        assert!(bad.addr >= at && bad.addr < at + page, "{ctx}: {bad}");
                        assert_eq!(bad.page, g.page_attrs(at / page), "{ctx}");
                        let text = bad.to_string();
                        assert!(text.starts_with("EXC_BAD_ACCESS"), "{text}");
                        // The instance still works.
                        assert!(g.run("load8", 0x100).is_ok(), "{ctx}");
                    }
                }
            }
        }
    }
}

/// XNU maps a write-only page at its first store, so a load before it faults; machvm keeps
/// the page inaccessible until a store, which its signal handler lets through by making that
/// one page read-write. Every path that writes it (the guest's stores and bulk instructions,
/// the host's calls) maps it; a load after that succeeds, as on XNU; setting the protection
/// again makes it wait for a store again.
#[test]
fn write_only_pages_fault_on_loads_until_their_first_store() {
    if !WRITE_ONLY_EXACT {
        return;
    }
    let engine = engine(false);
    for w in [Width::W32, Width::W64] {
        let module = machvm::compile(&engine, access_wat(w).as_bytes()).unwrap();
        for p in [4096u64, 16384] {
            let mut g = Guest::new(&engine, &module, w, p);
            let at = 0x20000u64;
            let ctx = format!("{w:?} P={p}");
            let protect = |g: &mut Guest, addr: u64, size: u64| {
                let c = Call::Protect {
                    form: Form::MachVm,
                    task: TASK_SELF_NAME,
                    addr,
                    size,
                    set_max: 0,
                    prot: VM_PROT_WRITE,
                };
                assert_eq!(g.host(c), KERN_SUCCESS);
            };
            let load_traps = |g: &mut Guest, addr: u64| {
                let err = g.run("load8", addr).expect_err("a load before any store");
                let (_, bad) = machvm::explain_trap(&mut g.store, &err).expect("explained");
                assert_eq!(
                    (bad.addr, bad.kind, bad.unmapped),
                    (addr, AccessKind::Read, false)
                );
                assert!(bad.to_string().contains("has protection -w-"), "{bad}");
            };
            // Two write-only pages.
            protect(&mut g, at, 2 * p);
            load_traps(&mut g, at + 5);
            load_traps(&mut g, at + p);
            // A store maps its page only: loads there succeed, the next page still traps.
            assert_eq!(g.run("store8", at + 5).unwrap(), 0, "{ctx}");
            assert_eq!(g.run("load8", at + 5).unwrap(), 7, "{ctx}");
            assert_eq!(g.run("load8", at + p - 1).unwrap(), 0, "{ctx}");
            load_traps(&mut g, at + p);
            // A store straddling into the second page from the first completes whole.
            assert_eq!(g.run("store32", at + p - 2).unwrap(), 0, "{ctx}");
            assert_eq!(g.run("load32", at + p - 2).unwrap(), 7, "{ctx}");
            // Setting the protection again: loads wait for a store again; bytes stay.
            protect(&mut g, at, 2 * p);
            load_traps(&mut g, at + 5);
            assert_eq!(g.run("store8", at + 6).unwrap(), 0, "{ctx}");
            assert_eq!(g.run("load8", at + 5).unwrap(), 7, "{ctx}");
            // Bulk instructions write fresh write-only pages (the host maps them first); the
            // copy's source is the scratch byte at 0x100.
            assert_eq!(g.run("store8", 0x100).unwrap(), 0);
            for (k, export) in ["copy_dst", "fill", "init"].into_iter().enumerate() {
                let page = at + (2 + k as u64) * p;
                protect(&mut g, page, p);
                load_traps(&mut g, page);
                assert_eq!(g.run(export, page).unwrap(), 0, "{ctx} {export}");
                assert_ne!(g.run("load8", page).unwrap(), 0, "{ctx} {export}");
            }
            // The host's calls write them too: vm_write from the guest's data, vm_copy.
            let page = at + 5 * p;
            protect(&mut g, page, 2 * p);
            let c = Call::Write {
                form: Form::MachVm,
                task: TASK_SELF_NAME,
                addr: page + 1,
                data: 0x100,
                count: 1,
            };
            assert_eq!(g.host(c), KERN_SUCCESS, "{ctx}");
            assert_eq!(g.run("load8", page + 1).unwrap(), 7, "{ctx}");
            let c = Call::Copy {
                form: Form::MachVm,
                task: TASK_SELF_NAME,
                src: 0x100,
                size: 1,
                dst: page + p + 3,
            };
            assert_eq!(g.host(c), KERN_SUCCESS, "{ctx}");
            assert_eq!(g.run("load8", page + p + 3).unwrap(), 7, "{ctx}");
            // A copy out of a write-only page is refused by the table, mapped or not.
            assert!(g.run("copy_src", page + 1).is_err(), "{ctx}");
        }
    }
}

#[test]
fn a_refused_store_writes_nothing_and_protections_take_effect_immediately() {
    let engine = engine(false);
    let module = machvm::compile(&engine, access_wat(Width::W32).as_bytes()).unwrap();
    let mut g = Guest::new(&engine, &module, Width::W32, 4096);
    // vm_protect inside the guest, then a store on the next instruction: it traps.
    let err = g.run("protect_then_store", 0x30000).unwrap_err();
    let (task, bad) = machvm::explain_trap(&mut g.store, &err).expect("explained");
    assert_eq!(
        (task, bad.addr, bad.kind),
        (g.task, 0x30000, AccessKind::Write)
    );
    assert!(
        bad.to_string()
            .contains("page 0x30000 has protection r-- (max rwx)"),
        "{bad}"
    );
    // The page reads as before; a straddling store into it wrote nothing on either side.
    g.set(0x31000, 4096, State_::R);
    assert!(g.run("store32", 0x30ffe).is_err());
    assert_eq!(g.run("load8", 0x30ffe).unwrap(), 0);
    assert_eq!(g.run("load8", 0x30fff).unwrap(), 0);
    // Restoring the protection lets the store through at once.
    let c = Call::Protect {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        addr: 0x30000,
        size: 0x2000,
        set_max: 0,
        prot: VmProt(3),
    };
    assert_eq!(g.host(c), KERN_SUCCESS);
    assert_eq!(g.run("store32", 0x30ffe).unwrap(), 0);
    assert_eq!(g.run("load8", 0x30ffe).unwrap(), 7);
}

#[test]
fn memory_grow_and_host_growth_keep_the_table_and_hardware_in_step() {
    let engine = engine(false);
    let module = machvm::compile(&engine, access_wat(Width::W32).as_bytes()).unwrap();
    let mut g = Guest::new(&engine, &module, Width::W32, 4096);
    g.set(0x10000, 4096, State_::None);
    // The guest grows its memory: the old protection stays, the new pages are RW.
    assert_eq!(g.run("grow", 2).unwrap(), 8);
    assert!(g.run("load8", 0x10000).is_err());
    assert_eq!(g.run("store8", 0x80000).unwrap(), 0);
    // vm_allocate grows the memory: the grown pages outside the allocation stay
    // inaccessible to the guest, the allocation is usable.
    let mem = g.instance.get_memory(&mut g.store, "memory").unwrap();
    mem.write(&mut g.store, 0x200, &0u64.to_le_bytes()).unwrap();
    let c = Call::Allocate {
        form: Form::MachVm,
        task: TASK_SELF_NAME,
        addr_ptr: 0x200,
        size: 0x1000,
        flags: VmFlags(1),
    };
    assert_eq!(g.host(c), KERN_SUCCESS);
    assert_eq!(g.run("store8", 0xA0000).unwrap(), 0);
    assert!(g.run("store8", 0xA1000).is_err(), "grown but unallocated");
    // vm_deallocate makes pages inaccessible, and they come back zeroed.
    let c = Call::Deallocate {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        addr: 0xA0000,
        size: 0x1000,
    };
    assert_eq!(g.host(c), KERN_SUCCESS);
    assert!(g.run("load8", 0xA0000).is_err());
}

/// Runs `scenario` in a child process and asserts it exits normally.
fn in_child(scenario: &str) {
    child::run(scenario);
}

#[test]
fn hostile_guests_cannot_crash_the_host() {
    in_child("hostile");
}

#[test]
fn the_mapping_budget_stops_protections_before_the_kernel_runs_out() {
    in_child("mappings");
}

#[test]
fn past_a_budget_the_kernel_cannot_give_mprotect_fails_and_changes_nothing() {
    in_child("kernel_limit");
}

#[test]
fn the_exhaustion_guest_runs_to_completion() {
    in_child("exhaust");
}

#[test]
fn a_vm_allocate_refused_at_the_budget_does_not_grow_the_memory() {
    in_child("allocate_at_budget");
}

#[test]
fn at_the_budget_other_tasks_and_the_process_keep_working() {
    in_child("work_at_budget");
}

#[test]
fn pooled_slots_are_handed_back_unprotected() {
    in_child("pooling");
}

#[test]
fn a_first_store_to_a_write_only_page_takes_mappings_and_gives_them_back() {
    in_child("write_only_budget");
}

#[test]
fn a_kernel_taken_out_of_its_store_brings_no_write_only_page_to_the_next() {
    in_child("moved_kernel_record");
}

#[test]
fn emptying_in_a_forked_child_writes_the_childs_memory() {
    in_child("empty_after_fork");
}

/// The child side: does nothing unless `MACHVM_CHILD` names a scenario.
#[test]
fn child_entry() {
    child::entry(|scenario| match scenario {
        "hostile" => hostile(),
        "mappings" => mappings(false),
        "kernel_limit" => mappings(true),
        "exhaust" => exhaust(),
        "allocate_at_budget" => allocate_at_budget(),
        "work_at_budget" => work_at_budget(),
        "pooling" => pooling(),
        "locals_limit" => locals_limit(),
        "write_only_budget" => write_only_budget(),
        "moved_kernel_record" => moved_kernel_record(),
        "empty_after_fork" => empty_after_fork(),
        other => panic!("unknown scenario {other}"),
    });
}

/// A kernel taken out of its store (`Store::into_data`) and put in a new one keeps its
/// tasks' write-only records, which name the old store's memory; the new store's handler
/// must not know them: a plain module given the same pooled slot would otherwise get a
/// store past its memory let through, and a grown page that does not read zero.
fn moved_kernel_record() {
    if !WRITE_ONLY_EXACT {
        return;
    }
    let mut config = Config::new();
    machvm::configure(&mut config);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_memories(1)
        .total_core_instances(2)
        .max_memory_size(64 << 16);
    config.allocation_strategy(pool);
    let engine = Engine::new(&config).unwrap();
    let module = machvm::compile(&engine, access_wat(Width::W32).as_bytes()).unwrap();
    let mut g = Guest::new(&engine, &module, Width::W32, 4096);
    let c = Call::Protect {
        form: Form::MachVm,
        task: TASK_SELF_NAME,
        addr: 0x60000,
        size: 0x1000,
        set_max: 0,
        prot: VM_PROT_WRITE,
    };
    assert_eq!(g.host(c), KERN_SUCCESS);
    let Guest { store, .. } = g;
    let mut store = Store::new(&engine, store.into_data());
    machvm::install_handlers(&mut store);
    let plain = Module::new(
        &engine,
        r#"(module (memory (export "memory") 1 64)
            (func (export "store8") (param i32) (result i32)
                (i32.store8 (local.get 0) (i32.const 7)) (i32.const 0))
            (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &plain)
        .unwrap();
    let store8 = instance
        .get_typed_func::<i32, i32>(&mut store, "store8")
        .unwrap();
    let load8 = instance
        .get_typed_func::<i32, i32>(&mut store, "load8")
        .unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    // 0x60000 is past the 64 KiB memory: wasm says this store traps.
    assert!(store8.call(&mut store, 0x60000).is_err());
    assert_eq!(grow.call(&mut store, 7).unwrap(), 1);
    assert_eq!(load8.call(&mut store, 0x60000).unwrap(), 0);
}

/// A process that forks after machvm emptied purgeable memory: the child's emptying zeroes
/// the child's pages, not its parent's.
fn empty_after_fork() {
    let engine = engine(false);
    let mut store = Store::new(&engine, Kernel::new().unwrap());
    let task = machvm::new_task(&mut store, wasmtime::MemoryType::new(4, None)).unwrap();
    let call = |store: &mut Store<Kernel>, c: Call| {
        let outcome = machvm::call(&mut *store, task, &c).unwrap();
        common::kr(&c, outcome)
    };
    let allocate = |store: &mut Store<Kernel>| -> u64 {
        let c = Call::Allocate {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr_ptr: 0x100,
            size: 0x1000,
            flags: VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE,
        };
        assert_eq!(call(store, c), KERN_SUCCESS);
        let b = machvm::host::read_bytes(&mut *store, task, 0x100, 4).unwrap();
        u64::from(u32::from_le_bytes(b.try_into().unwrap()))
    };
    let empty = |store: &mut Store<Kernel>, addr: u64| {
        let state = (VM_PURGABLE_EMPTY as u32).to_le_bytes();
        machvm::host::write_bytes(&mut *store, task, 0x104, &state).unwrap();
        let c = Call::PurgableControl {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr,
            control: VM_PURGABLE_SET_STATE as u32,
            state_ptr: 0x104,
        };
        assert_eq!(call(store, c), KERN_SUCCESS);
    };
    // One emptying before the fork.
    let a = allocate(&mut store);
    empty(&mut store, a);
    let b = allocate(&mut store);
    machvm::host::write_bytes(&mut store, task, b, &[0xAB; 0x1000]).unwrap();
    let memory = store.data().memory(task).unwrap();
    // SAFETY: the child runs machvm calls on its copy of the store, then leaves with _exit
    // (no destructor, no test harness code runs in it).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        empty(&mut store, b);
        let own = memory.data(&store)[b as usize];
        // SAFETY: ends the forked child at once.
        unsafe { libc::_exit(i32::from(own != 0)) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "the child ended: {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "the child's own page is zero");
    assert_eq!(
        memory.data(&store)[b as usize],
        0xAB,
        "the parent's page is untouched"
    );
}

/// The mappings of write-only pages: a first store takes two from the process's budget (one
/// page made read-write inside an inaccessible range splits a mapping in three), setting
/// the protection again or dropping the task gives them back, and with none to spare the
/// store traps, explained, and the process goes on.
fn write_only_budget() {
    use machvm::enforce::{mappings_in_use, set_mapping_budget};
    if !WRITE_ONLY_EXACT {
        return;
    }
    let engine = engine(false);
    let module = machvm::compile(&engine, access_wat(Width::W32).as_bytes()).unwrap();
    let baseline = mappings_in_use();
    let mut g = Guest::new(&engine, &module, Width::W32, 4096);
    let (at, p) = (0x20000u64, 4096u64);
    let protect = |g: &mut Guest| {
        let c = Call::Protect {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr: at,
            size: 4 * p,
            set_max: 0,
            prot: VM_PROT_WRITE,
        };
        assert_eq!(g.host(c), KERN_SUCCESS);
    };
    protect(&mut g);
    let protected = mappings_in_use();
    assert_eq!(g.run("store8", at).unwrap(), 0);
    assert_eq!(mappings_in_use(), protected + 2);
    assert_eq!(g.run("store8", at + 1).unwrap(), 0, "the same page");
    assert_eq!(g.run("store8", at + 2 * p).unwrap(), 0);
    assert_eq!(mappings_in_use(), protected + 4);
    // The kernel's own count is at least what the process has.
    protect(&mut g);
    assert_eq!(mappings_in_use(), protected, "given back");
    // No mapping to spare: the store traps, and says why.
    set_mapping_budget(mappings_in_use());
    let err = g.run("store8", at + p).unwrap_err();
    let (_, bad) = machvm::explain_trap(&mut g.store, &err).expect("explained");
    assert!(bad.unmapped && bad.kind == AccessKind::Write, "{bad}");
    assert!(bad.to_string().contains("mapping budget"), "{bad}");
    assert!(g.run("load8", at + p).is_err());
    // Host calls that would write it answer KERN_RESOURCE_SHORTAGE and write nothing.
    let c = Call::Copy {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        src: 0x100,
        size: 1,
        dst: at + p,
    };
    assert_eq!(g.host(c.clone()), KERN_RESOURCE_SHORTAGE);
    // The guest's bulk instruction is refused by its check, not by a fault in host code.
    let err = g.run("fill", at + p).unwrap_err();
    assert!(format!("{err:#}").contains("mapping budget"), "{err:#}");
    set_mapping_budget(usize::MAX / 2);
    assert_eq!(g.host(c), KERN_SUCCESS);
    assert_eq!(g.run("store8", at + 3 * p).unwrap(), 0);
    assert_eq!(mappings_in_use(), protected + 4);
    drop(g);
    assert_eq!(mappings_in_use(), baseline, "all given back with the task");
}

/// Bulk operations across protected and unallocated pages, at every offset near the
/// boundaries, out of bounds, after grows; accesses straddling the end of memory.
fn hostile() {
    let engine = engine(false);
    for w in [Width::W32, Width::W64] {
        let module = machvm::compile(&engine, access_wat(w).as_bytes()).unwrap();
        for page in [4096u64, 16384] {
            let mut g = Guest::new(&engine, &module, w, page);
            for (i, state) in State_::ALL.iter().enumerate() {
                g.set(0x10000 + i as u64 * page, page, *state);
            }
            let end = g
                .instance
                .get_memory(&mut g.store, "memory")
                .unwrap()
                .data_size(&g.store) as u64;
            let mut addrs = vec![0u64, end - 1, end, end + 1, u32::MAX as u64, u64::MAX];
            for i in 0..8 {
                let b = 0x10000 + i * page;
                addrs.extend([b - 3, b - 1, b, b + 1, b + page - 2]);
            }
            for round in 0..2 {
                for export in READS.iter().chain(&WRITES) {
                    for &a in &addrs {
                        let _ = g.run(export, a);
                    }
                }
                // Grow after protect, and go again.
                if round == 0 {
                    let _ = g.run("grow", 4);
                }
            }
        }
    }
}

/// The boundaries between pages of different hardware protection in `task`'s table, the
/// pages just outside the memory counting as read-write: what machvm accounts for.
fn boundaries(store: &Store<Kernel>, task: TaskId, pages: u64) -> usize {
    let table = store.data().task(task).unwrap().table();
    let class = |i: u64| {
        let attrs = if i == 0 || i > pages {
            Some(PageAttrs::DEFAULT)
        } else {
            table.get(i - 1)
        };
        machvm::enforce::hw_prot(attrs)
    };
    (1..=pages + 1)
        .filter(|&i| class(i - 1) != class(i))
        .count()
}

/// The mappings of this process.
fn process_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Alternating single-page protections (host calls) until the process's mapping budget
/// (or, with `past_the_kernel`, the budget set beyond what the kernel allows, until
/// `mprotect` itself fails): the call that would pass it answers KERN_RESOURCE_SHORTAGE and
/// changes nothing, and the process keeps working.
fn mappings(past_the_kernel: bool) {
    if past_the_kernel {
        machvm::enforce::set_mapping_budget(usize::MAX / 2);
    }
    let engine = engine(false);
    let module = machvm::compile(
        &engine,
        br#"(module (memory (export "memory") 4096) (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0))))"#,
    )
    .unwrap();
    let kernel = Kernel::with_config(KernelConfig::default()).unwrap();
    let mut store = Store::new(&engine, kernel);
    let (instance, task) = machvm::instantiate(&mut store, &Linker::new(&engine), &module).unwrap();
    let load = instance
        .get_typed_func::<i32, i32>(&mut store, "load8")
        .unwrap();
    // Run wasm once first: Wasmtime sets up this thread's signal stack on its first call,
    // which itself needs a mapping.
    assert_eq!(load.call(&mut store, 0).unwrap(), 0);
    let pages = 4096 * 16; // 256 MiB of 4 KiB pages
    let mut failed_at = None;
    for i in (0..pages).step_by(2) {
        let c = Call::Protect {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr: i * 4096,
            size: 4096,
            set_max: 0,
            prot: VmProt(1),
        };
        let before = store.data().task(task).unwrap().table().get(i);
        let runs = store.data().task(task).unwrap().table().run_count();
        match machvm::call(&mut store, task, &c).unwrap() {
            Outcome::Kr(KERN_SUCCESS) => {}
            Outcome::Kr(KERN_RESOURCE_SHORTAGE) => {
                let table = store.data().task(task).unwrap().table();
                assert_eq!(before, table.get(i), "the table is unchanged");
                assert_eq!(runs, table.run_count(), "the table is unchanged");
                failed_at = Some(i);
                break;
            }
            other => panic!("page {i}: {other:?}"),
        }
    }
    let i = failed_at.expect("the mapping limit was reached");
    let (used, budget) = (
        machvm::enforce::mappings_in_use(),
        machvm::enforce::mapping_budget(),
    );
    let kept = store.data().task(task).unwrap().mappings() as usize;
    println!(
        "refused after {} protected pages: {used} mappings accounted for, budget {budget}, \
         {} in the process",
        i / 2,
        process_mappings()
    );
    // The task's count is its table's boundaries, and the process's total.
    assert_eq!(kept, boundaries(&store, task, pages));
    assert_eq!(used, kept);
    if past_the_kernel {
        assert!(used > 60_000, "mprotect failed early: {used}");
    } else {
        // The budget stopped it: the protection would have taken two more.
        assert!(used <= budget && used + 2 > budget, "{used} of {budget}");
        let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .map_or(65_530, |s| s.trim().parse().unwrap());
        assert!(process_mappings() + 20_000 < max, "no reserve left");
    }
    // The hardware agrees with the table: the refused page is still writable (a store from
    // the host through a guest-checked call works) and readable; earlier ones are read-only.
    let c = Call::Write {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        addr: i * 4096,
        data: 0x1000,
        count: 4,
    };
    // Page 1 is between two read-only pages: readable, so it is a fine source.
    assert_eq!(
        machvm::call(&mut store, task, &c).unwrap(),
        Outcome::Kr(KERN_SUCCESS)
    );
    assert_eq!(load.call(&mut store, (i * 4096) as i32).unwrap(), 0);
    assert_eq!(load.call(&mut store, 0).unwrap(), 0);
    // Undoing a protection (fewer mappings) works again.
    let c = Call::Protect {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        addr: 0,
        size: 4096,
        set_max: 0,
        prot: VmProt(3),
    };
    assert_eq!(
        machvm::call(&mut store, task, &c).unwrap(),
        Outcome::Kr(KERN_SUCCESS)
    );
    assert_eq!(machvm::enforce::mappings_in_use(), used - 2);
    // Dropping the kernel gives every mapping back.
    drop(store);
    assert_eq!(machvm::enforce::mappings_in_use(), 0);
}

/// `wat/exhaust.wat`'s loop as separate exports, and what to do at the budget.
const AT_BUDGET: &str = r#"(module
  (import "mach" "mach_task_self" (func $self (result i32)))
  (import "mach" "vm_protect" (func $protect (param i32 i32 i32 i32 i32) (result i32)))
  (import "mach" "vm_allocate" (func $allocate (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 6000)
  (global $n (export "n") (mut i32) (i32.const 0))
  ;; Alternating single-page protections until one is refused: its answer.
  (func (export "exhaust") (result i32) (local $r i32)
    (block $done (loop $l
      (local.set $r (call $protect (call $self)
        (i32.add (i32.const 0x100000) (i32.mul (global.get $n) (i32.const 0x2000)))
        (i32.const 0x1000) (i32.const 0) (i32.const 1)))
      (br_if $done (local.get $r))
      (global.set $n (i32.add (global.get $n) (i32.const 1))) (br $l)))
    (local.get $r))
  ;; vm_allocate FIXED of one page, one page past the end of the memory: its answer.
  (func (export "allocate_past_end") (result i32)
    (i32.store (i32.const 0x40)
      (i32.add (i32.mul (memory.size) (i32.const 0x10000)) (i32.const 0x1000)))
    (call $allocate (call $self) (i32.const 0x40) (i32.const 0x1000) (i32.const 0)))
  (func (export "size") (result i32) (memory.size))
  (func (export "protect") (param $addr i32) (param $prot i32) (result i32)
    (call $protect (call $self) (local.get $addr) (i32.const 0x1000) (i32.const 0)
      (local.get $prot)))
  ;; Makes everything the loop protected read-write again: its answer.
  (func (export "undo") (result i32)
    (call $protect (call $self) (i32.const 0x100000)
      (i32.mul (global.get $n) (i32.const 0x2000)) (i32.const 0) (i32.const 3)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"#;

/// A store of tasks made of one module.
struct Tasks {
    store: Store<Kernel>,
    module: machvm::Compiled,
    engine: Engine,
}

impl Tasks {
    fn new(wat: &[u8]) -> Tasks {
        let engine = engine(false);
        let module = machvm::compile(&engine, wat).unwrap();
        let mut store = Store::new(&engine, Kernel::new().unwrap());
        machvm::install_handlers(&mut store);
        Tasks {
            store,
            module,
            engine,
        }
    }

    fn task(&mut self) -> (Instance, TaskId) {
        machvm::instantiate(&mut self.store, &Linker::new(&self.engine), &self.module).unwrap()
    }

    fn call(&mut self, i: Instance, export: &str, args: &[i32]) -> i32 {
        let f = i.get_func(&mut self.store, export).unwrap();
        let args: Vec<Val> = args.iter().map(|&a| Val::I32(a)).collect();
        let mut out = vec![Val::I32(0); f.ty(&self.store).results().len()];
        f.call(&mut self.store, &args, &mut out).unwrap();
        out.first().map_or(0, |v| v.unwrap_i32())
    }

    /// Runs the exhaustion loop of task `i`: how many protections it made.
    fn exhaust(&mut self, i: Instance) -> i32 {
        let t = std::time::Instant::now();
        assert_eq!(self.call(i, "exhaust", &[]), KERN_RESOURCE_SHORTAGE.0);
        let n = i.get_global(&mut self.store, "n").unwrap();
        let n = n.get(&mut self.store).unwrap_i32();
        println!(
            "{n} alternating protections before KERN_RESOURCE_SHORTAGE, in {:?}; {} of {} \
             mappings accounted for, {} in the process",
            t.elapsed(),
            machvm::enforce::mappings_in_use(),
            machvm::enforce::mapping_budget(),
            process_mappings()
        );
        n
    }

    fn size(&mut self, i: Instance) -> u64 {
        let m = i.get_memory(&mut self.store, "memory").unwrap();
        m.size(&self.store)
    }
}

/// `wat/exhaust.wat` runs to completion under the library: its loop stops at the budget
/// and its final protection makes every page read-write again.
fn exhaust() {
    let mut tasks = Tasks::new(include_bytes!("../wat/exhaust.wat"));
    let (i, task) = tasks.task();
    let t = std::time::Instant::now();
    assert_eq!(tasks.call(i, "main", &[]), KERN_SUCCESS.0);
    println!("exhaust.wat: {:?}", t.elapsed());
    assert_eq!(tasks.store.data().task(task).unwrap().mappings(), 0);
    assert_eq!(machvm::enforce::mappings_in_use(), 0);
}

/// At the budget, a `vm_allocate` FIXED past the end of the memory answers an error and
/// changes nothing: not the table, not the memory's size; once protections are undone, the
/// same call succeeds and grows the memory.
fn allocate_at_budget() {
    let mut tasks = Tasks::new(AT_BUDGET.as_bytes());
    let (i, task) = tasks.task();
    let n = tasks.exhaust(i);
    assert!(n > 10_000, "{n}");
    let size = tasks.size(i);
    let runs = |t: &Tasks| t.store.data().task(task).unwrap().table().run_count();
    let before = runs(&tasks);
    let used = machvm::enforce::mappings_in_use();
    assert_eq!(
        tasks.call(i, "allocate_past_end", &[]),
        KERN_RESOURCE_SHORTAGE.0
    );
    assert_eq!(tasks.size(i), size, "a refused vm_allocate grew the memory");
    assert_eq!(runs(&tasks), before);
    assert_eq!(machvm::enforce::mappings_in_use(), used);
    // The refused protection's page is read-write, its neighbour read-only, in hardware too.
    let refused = 0x100000 + n * 0x2000;
    tasks.call(i, "store", &[refused, 5]);
    assert_eq!(tasks.call(i, "load", &[refused]), 5);
    assert_eq!(tasks.call(i, "load", &[refused - 0x2000]), 0);
    // Undo: the budget is free again, and the allocation goes through.
    assert_eq!(tasks.call(i, "undo", &[]), KERN_SUCCESS.0);
    assert_eq!(machvm::enforce::mappings_in_use(), 0);
    assert_eq!(tasks.call(i, "allocate_past_end", &[]), KERN_SUCCESS.0);
    assert_eq!(tasks.size(i), size + 1);
    let addr = (size * 0x10000 + 0x1000) as i32;
    tasks.call(i, "store", &[addr, 9]);
    assert_eq!(tasks.call(i, "load", &[addr]), 9);
}

/// At the budget, the process is fine: another task of the same store gets answers to its
/// calls (refused when they would add mappings, granted when not) and runs; the allocator,
/// threads and new instances get their mappings.
fn work_at_budget() {
    let mut tasks = Tasks::new(AT_BUDGET.as_bytes());
    let (a, _) = tasks.task();
    let (b, tb) = tasks.task();
    let n = tasks.exhaust(a);
    assert!(n > 10_000, "{n}");
    let table = |t: &Tasks| t.store.data().task(tb).unwrap().table().get(0x100);
    let before = table(&tasks);
    // A read-only page among read-write ones would take two mappings: refused, unchanged.
    assert_eq!(
        tasks.call(b, "protect", &[0x100000, VM_PROT_READ.0]),
        KERN_RESOURCE_SHORTAGE.0
    );
    assert_eq!(table(&tasks), before);
    tasks.call(b, "store", &[0x100000, 3]);
    assert_eq!(tasks.call(b, "load", &[0x100000]), 3);
    // rwx is read-write in hardware: no new mapping, granted.
    assert_eq!(
        tasks.call(b, "protect", &[0x100000, VM_PROT_ALL.0]),
        KERN_SUCCESS.0
    );
    assert_eq!(table(&tasks).unwrap().cur, VM_PROT_ALL);
    // The allocator, a thread, a new instance.
    let v = vec![1u8; 8 << 20];
    assert_eq!(v.iter().map(|&b| usize::from(b)).sum::<usize>(), 8 << 20);
    assert_eq!(std::thread::spawn(|| 6 * 7).join().unwrap(), 42);
    let (c, _) = tasks.task();
    tasks.call(c, "store", &[0x100, 1]);
    assert_eq!(tasks.call(c, "load", &[0x100]), 1);
    // Undoing in the first task frees the budget for the others.
    assert_eq!(tasks.call(a, "undo", &[]), KERN_SUCCESS.0);
    assert_eq!(
        tasks.call(b, "protect", &[0x100000, VM_PROT_READ.0]),
        KERN_SUCCESS.0
    );
    assert_eq!(machvm::enforce::mappings_in_use(), 2);
}

/// Many instances in a small pool, each leaving protected pages behind when dropped: the
/// next instance in the slot finds its memory fully usable.
fn pooling() {
    let engine = engine(true);
    let module = machvm::compile(&engine, access_wat(Width::W32).as_bytes()).unwrap();
    for round in 0..50 {
        let mut g = Guest::new(&engine, &module, Width::W32, 4096);
        for p in 0..8u64 {
            assert_eq!(
                g.run("store32", 0x10000 + p * 4096).unwrap(),
                0,
                "round {round}"
            );
            assert_eq!(
                g.run("load32", 0x10000 + p * 4096).unwrap(),
                7,
                "round {round}"
            );
        }
        g.set(0x10000, 4096, State_::None);
        g.set(0x11000, 4096, State_::R);
        g.set(0x12000, 4096, State_::Unallocated);
        assert!(g.run("load8", 0x10000).is_err());
        // Dropped here, with protections in place.
    }
}

/// The rewrite renumbers functions (calls, `ref.func`, elements, exports, the start
/// function, names) around the imports it adds: a module that uses all of them behaves the
/// same before and after, and its bulk-memory instructions still work.
#[test]
fn the_rewrite_keeps_the_module_meaning() {
    let wat = r#"(module $m
        (import "env" "log" (func $log (param i32)))
        (memory (export "memory") 1)
        (table 2 funcref)
        (elem (i32.const 0) $double $fill)
        (global $g (mut i32) (i32.const 0))
        (global $fref funcref (ref.func $double))
        (data $d "\05\06\07")
        (type $t (func (param i32) (result i32)))
        (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
        (func $fill (param i32) (result i32)
          (local $x i64)
          (memory.fill (local.get 0) (i32.const 3) (i32.const 4))
          (memory.copy (i32.add (local.get 0) (i32.const 4)) (local.get 0) (i32.const 4))
          (memory.init $d (i32.add (local.get 0) (i32.const 8)) (i32.const 0) (i32.const 3))
          (data.drop $d)
          (i32.load (local.get 0)))
        (func $start (global.set $g (i32.const 40)))
        (start $start)
        (func (export "run") (result i32)
          (call $log (i32.const 1))
          (i32.add
            (i32.add (call_indirect (type $t) (i32.const 21) (i32.const 0)) (global.get $g))
            (i32.add (call_indirect (type $t) (i32.const 0x100) (i32.const 1))
                     (i32.load (i32.const 0x108))))))"#;
    let engine = engine(false);
    let plain = Module::new(&engine, wat).unwrap();
    let rewritten = machvm::compile(&engine, wat.as_bytes()).unwrap();
    assert_eq!(machvm::rewrite::added_imports(&rewritten), 3);
    assert_eq!(machvm::rewrite::added_imports(&plain), 0);
    let mut results = Vec::new();
    for rewrite in [false, true] {
        let mut store = Store::new(&engine, Kernel::new().unwrap());
        let mut linker = Linker::new(&engine);
        linker.func_wrap("env", "log", |_: i32| {}).unwrap();
        let instance = if !rewrite {
            linker.instantiate(&mut store, &plain).unwrap()
        } else {
            TaskPre::new(&rewritten)
                .unwrap()
                .instantiate(&mut store, &linker)
                .unwrap()
                .0
        };
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        results.push(run.call(&mut store, ()).unwrap());
    }
    // 42 + 40 + 0x03030303 + the init'ed bytes 05 06 07 00 read little-endian.
    assert_eq!(results[0], 42 + 40 + 0x0303_0303 + 0x0007_0605);
    assert_eq!(results[0], results[1]);
}

/// A function at the locals limit (no room for the rewrite's scratch locals) still has its
/// bulk-memory instructions checked: they run out of line, and a fill into a protected page
/// traps with `BadAccess` instead of crashing; the module means what it meant.
#[test]
fn a_function_at_the_locals_limit_keeps_its_bulk_instructions_checked() {
    in_child("locals_limit");
}

fn locals_limit() {
    // One parameter and 49,998 locals: 49,999 of Wasmtime's 50,000.
    let locals = "i32 ".repeat(49_998);
    let wat = format!(
        r#"(module
          (memory (export "memory") 1)
          (data $d "\05\06\07")
          (func (export "run") (param $dst i32) (result i32) (local {locals})
            (memory.fill (local.get $dst) (i32.const 9) (i32.const 8))
            (memory.copy (i32.const 0x100) (local.get $dst) (i32.const 8))
            (memory.init $d (i32.const 0x200) (i32.const 0) (i32.const 3))
            (i32.add (i32.load (i32.const 0x104)) (i32.load (i32.const 0x200)))))"#
    );
    let engine = engine(false);
    let module = machvm::compile(&engine, wat.as_bytes()).unwrap();
    let mut store = Store::new(&engine, Kernel::new().unwrap());
    let (instance, task) = machvm::instantiate(&mut store, &Linker::new(&engine), &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(
        run.call(&mut store, 0x10).unwrap(),
        0x0909_0909 + 0x0007_0605
    );
    machvm::host::protect(&mut store, task, 0x1000, 0x1000, false, VM_PROT_NONE).unwrap();
    let e = run.call(&mut store, 0x1000).unwrap_err();
    let bad = e
        .downcast_ref::<machvm::enforce::BadAccess>()
        .expect("a BadAccess");
    assert_eq!((bad.instruction, bad.addr), ("memory.fill", 0x1000));
}
