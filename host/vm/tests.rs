//! Tests of the semantics on their own, over the smallest [`Env`]: a task whose memory is a
//! byte vector.

use super::change::release_mappings;
use super::windows::{allows_fast, copy_succeeds, open_windows, window};
use super::*;
use crate::abi::Form;
use proptest::prelude::*;

/// One task whose memory is a byte vector: the smallest [`Env`], to test the logic of
/// this module on its own.
struct VecEnv {
    vm: TaskVm,
    bytes: Vec<u8>,
    /// Whether the task counts as enforced (its mappings are accounted for).
    enforce: bool,
    /// How many of the next `mirror` calls fail.
    mirror_failures: u32,
    /// `out_of_line` was called.
    out_of_line: bool,
}

impl Drop for VecEnv {
    fn drop(&mut self) {
        release_mappings(&mut self.vm);
    }
}

const ME: TaskId = TaskId::new(0, 0);

impl VecEnv {
    fn new(width: Width, page_size: u64, wasm_pages: u64) -> VecEnv {
        let mut env = VecEnv {
            vm: TaskVm::new(ME, width, page_size, 8 * u128::from(WASM_PAGE)),
            bytes: vec![0; (wasm_pages * WASM_PAGE) as usize],
            enforce: false,
            mirror_failures: 0,
            out_of_line: false,
        };
        sync(&mut env, ME);
        env
    }

    fn range(&self, addr: u64, len: u64) -> Option<std::ops::Range<usize>> {
        let end = addr.checked_add(len)?;
        (end <= self.bytes.len() as u64).then_some(addr as usize..end as usize)
    }
}

impl Env for VecEnv {
    fn vm(&mut self, _: TaskId) -> &mut TaskVm {
        &mut self.vm
    }
    fn windows_closed(&mut self, _: TaskId) {}
    fn enforcing(&mut self, _: TaskId) -> bool {
        self.enforce
    }
    fn mirror(&mut self, _: TaskId, _: u64, _: u64) -> bool {
        if self.mirror_failures > 0 {
            self.mirror_failures -= 1;
            return false;
        }
        true
    }
    fn out_of_line(&mut self, _: TaskId) {
        self.out_of_line = true;
    }
    fn memory_size(&mut self, _: TaskId) -> u64 {
        self.bytes.len() as u64
    }
    fn grow_memory(&mut self, _: TaskId, new_size: u64) -> bool {
        if new_size > 8 * WASM_PAGE {
            return false;
        }
        let new_size = (new_size as usize).max(self.bytes.len());
        self.bytes.resize(new_size, 0);
        true
    }
    fn copy(&mut self, _: TaskId, src: u64, _: TaskId, dst: u64, len: u64) -> bool {
        match (self.range(src, len), self.range(dst, len)) {
            (Some(s), Some(d)) => {
                self.bytes.copy_within(s, d.start);
                true
            }
            _ => false,
        }
    }
    fn zero(&mut self, _: TaskId, addr: u64, len: u64) -> bool {
        self.range(addr, len)
            .map(|r| self.bytes[r].fill(0))
            .is_some()
    }
    fn load(&mut self, _: TaskId, addr: u64, buf: &mut [u8]) -> bool {
        self.range(addr, buf.len() as u64)
            .map(|r| buf.copy_from_slice(&self.bytes[r]))
            .is_some()
    }
    fn store(&mut self, _: TaskId, addr: u64, bytes: &[u8]) -> bool {
        self.range(addr, bytes.len() as u64)
            .map(|r| self.bytes[r].copy_from_slice(bytes))
            .is_some()
    }
}

fn copy_call(form: Form, port: MachPort, src: u64, size: u64, dst: u64) -> Call {
    Call::Copy {
        form,
        task: port,
        src,
        size,
        dst,
    }
}

/// Allocating and freeing purgeable memory forever keeps the task's record of objects
/// as small as its regions: objects no page belongs to are forgotten. Their ids are not
/// given again (until 2^32 - 1 were).
#[test]
fn freed_purgeable_objects_are_forgotten() {
    let mut env = VecEnv::new(Width::W32, 4096, 1);
    env.bytes[0x100..0x104].copy_from_slice(&0u32.to_le_bytes());
    let allocate = Call::Allocate {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        addr_ptr: 0x100,
        size: 0x1000,
        flags: VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE,
    };
    let mut last = 0;
    for _ in 0..1000 {
        assert_eq!(call(&mut env, ME, &allocate), Outcome::Kr(KERN_SUCCESS));
        let addr = u64::from(u32::from_le_bytes(
            env.bytes[0x100..0x104].try_into().unwrap(),
        ));
        let object = env.vm.table.get(addr >> 12).unwrap().object;
        assert!(object > last, "a new id");
        last = object;
        let free = Call::Deallocate {
            form: Form::Vm,
            task: TASK_SELF_NAME,
            addr,
            size: 0x1000,
        };
        assert_eq!(call(&mut env, ME, &free), Outcome::Kr(KERN_SUCCESS));
        assert!(env.vm.objects.len() <= 2 * env.vm.table.run_count() + 17);
    }
    // Past the last id, a free one is taken, and the next ones are searched for too.
    env.vm.last_object = u32::MAX;
    assert_eq!(call(&mut env, ME, &allocate), Outcome::Kr(KERN_SUCCESS));
    let a = u64::from(u32::from_le_bytes(
        env.bytes[0x100..0x104].try_into().unwrap(),
    ));
    assert_eq!(call(&mut env, ME, &allocate), Outcome::Kr(KERN_SUCCESS));
    let b = u64::from(u32::from_le_bytes(
        env.bytes[0x100..0x104].try_into().unwrap(),
    ));
    let (x, y) = (env.vm.table.get(a >> 12), env.vm.table.get(b >> 12));
    assert!(x.unwrap().object != y.unwrap().object, "{x:?} {y:?}");
}

/// A change whose mirror fails is put back and answers `KERN_RESOURCE_SHORTAGE`; when
/// putting it back fails too, the task is out of line with its table and is stopped.
#[test]
fn a_failed_restore_stops_the_task() {
    let protect = Call::Protect {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        addr: 0x1000,
        size: 0x1000,
        set_max: 0,
        prot: VM_PROT_READ,
    };
    for (failures, stopped) in [(1, false), (2, true)] {
        let mut env = VecEnv::new(Width::W32, 4096, 1);
        env.enforce = true;
        env.mirror_failures = failures;
        let before = env.vm.table.get(1);
        assert_eq!(
            call(&mut env, ME, &protect),
            Outcome::Kr(KERN_RESOURCE_SHORTAGE)
        );
        assert_eq!(env.vm.table.get(1), before, "the table is put back");
        assert_eq!(env.out_of_line, stopped, "{failures} failures");
    }
}

#[test]
fn the_fast_paths_take_the_common_case_and_leave_the_rest() {
    let mut env = VecEnv::new(Width::W32, 4096, 2);
    let (w, me) = (Width::W32, TASK_SELF_NAME);
    assert!(copy_succeeds(&env.vm, me, 0, 0x1000, 0x2000, w));
    assert!(copy_succeeds(&env.vm, me, 0, 0, 0x1_0000_0000, w), "size 0");
    assert!(
        copy_succeeds(&env.vm, me, 0x10, 0x1_0000, 0x8, w),
        "overlapping"
    );
    assert!(allows_fast(&env.vm, 0x1ffc, 4, VM_PROT_WRITE));
    // Another port, a range past the memory, past 2^32: the full path decides.
    assert!(!copy_succeeds(
        &env.vm,
        HOST_SELF_NAME,
        0,
        0x1000,
        0x2000,
        w
    ));
    assert!(!copy_succeeds(&env.vm, me, 0, 0x1000, 0x2_0000, w));
    assert!(!copy_succeeds(&env.vm, me, 0, 0x1000, u64::MAX - 0x10, w));
    assert!(!allows_fast(&env.vm, 0x1_fffe, 4, VM_PROT_WRITE));
    // A read-only destination page.
    let c = Call::Protect {
        form: Form::Vm,
        task: me,
        addr: 0x2000,
        size: 1,
        set_max: 0,
        prot: VM_PROT_READ,
    };
    assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
    assert!(copy_succeeds(&env.vm, me, 0x2000, 0x1000, 0x3000, w));
    assert!(!copy_succeeds(&env.vm, me, 0x3000, 0x1000, 0x2000, w));
    assert!(!allows_fast(&env.vm, 0x2000, 4, VM_PROT_WRITE));
    // Pages grown behind the table's back: the fast path declines, the full one syncs.
    env.bytes.resize(3 * WASM_PAGE as usize, 0);
    assert!(!copy_succeeds(&env.vm, me, 0, 0x1000, 0x2_0000, w));
    let c = copy_call(Form::Vm, me, 0, 0x1000, 0x2_0000);
    assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
    assert!(copy_succeeds(&env.vm, me, 0, 0x1000, 0x2_0000, w));
}

/// `pages` in 64-bit arithmetic agrees with the plain 128-bit rounding, at the edges.
#[test]
fn pages_rounds_like_the_128_bit_formula() {
    let edges = [
        0,
        1,
        0xfff,
        0x1000,
        0x1001,
        0xffff_ffff,
        1 << 32,
        u64::MAX - 0x1000,
        u64::MAX - 1,
        u64::MAX,
    ];
    for page in [4096u64, 16384, 65536] {
        let vm = TaskVm::new(ME, Width::W64, page, 1 << 40);
        for &start in &edges {
            for &size in &edges {
                let end = u128::from(start) + u128::from(size);
                let want = (
                    start / page,
                    end.div_ceil(u128::from(page)).min(u128::from(u64::MAX)) as u64,
                );
                assert_eq!(vm.pages(start, size), want, "{start:#x}+{size:#x} / {page}");
            }
        }
    }
}

/// Addresses and sizes around pages, the memory's end, and the width limits.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..0x5_0000,
        2 => (0u64..6, -2i64..=2).prop_map(|(k, d)| (k * 0x1_0000).wrapping_add_signed(d)),
        1 => (-0x2_0000i64..=0x2_0000).prop_map(|d| (1u64 << 32).wrapping_add_signed(d)),
        1 => (0u64..0x2_0000).prop_map(|d| u64::MAX - d),
    ]
}

#[derive(Clone, Debug)]
enum Shape {
    Protect(u64, u64, i32),
    Deallocate(u64, u64),
    /// A guest `memory.grow` by one wasm page, which the table does not know yet.
    Grow,
    /// `mach_vm_allocate` at this hint with these flags (FIXED, OVERWRITE, ANYWHERE).
    Allocate(u64, u64, i32),
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (0u64..0x4_0000, 1u64..0x2_0000, 0i32..8).prop_map(|(a, s, p)| Shape::Protect(a, s, p)),
        (0u64..0x4_0000, 1u64..0x1_0000).prop_map(|(a, s)| Shape::Deallocate(a, s)),
        Just(Shape::Grow),
    ]
}

/// Runs `shapes` on the task: calls, and guest growth the table does not know yet.
fn apply(env: &mut VecEnv, shapes: Vec<Shape>) {
    for s in shapes {
        let c = match s {
            Shape::Protect(addr, size, prot) => Call::Protect {
                form: Form::MachVm,
                task: TASK_SELF_NAME,
                addr,
                size,
                set_max: 0,
                prot: VmProt(prot as u32 as i32),
            },
            Shape::Deallocate(addr, size) => Call::Deallocate {
                form: Form::MachVm,
                task: TASK_SELF_NAME,
                addr,
                size,
            },
            Shape::Allocate(hint, size, flags) => {
                // The in-out address parameter lives at 0 (if the page allows).
                env.bytes[..8].copy_from_slice(&hint.to_le_bytes());
                Call::Allocate {
                    form: Form::MachVm,
                    task: TASK_SELF_NAME,
                    addr_ptr: 0,
                    size,
                    flags: VmFlags(flags as u32),
                }
            }
            Shape::Grow => {
                if env.bytes.len() < 8 * WASM_PAGE as usize {
                    env.bytes.resize(env.bytes.len() + WASM_PAGE as usize, 0);
                }
                continue;
            }
        };
        call(env, ME, &c);
    }
}

/// A 32-bit memory's windows end below its last page under 4 GiB, so that `hi` fits an
/// i32 and no range inside ends at 2^32.
#[test]
fn a_32_bit_window_stops_below_the_last_page() {
    let mut vm = TaskVm::new(ME, Width::W32, 4096, 1 << 32);
    vm.known_size = 1 << 32;
    vm.table.set(0, 1 << 20, PageAttrs::DEFAULT);
    let top = (1u64 << 32) - 4096;
    assert_eq!(window(&vm, 0xFFFF_0000, 16, VM_PROT_READ), Some((0, top)));
    assert_eq!(window(&vm, top - 16, 16, VM_PROT_WRITE), Some((0, top)));
    assert_eq!(window(&vm, top - 16, 17, VM_PROT_WRITE), None);
    assert_eq!(window(&vm, top, 1, VM_PROT_READ), None);
    // A 64-bit memory keeps the page.
    let mut vm = TaskVm::new(ME, Width::W64, 4096, 1 << 33);
    vm.known_size = 1 << 32;
    vm.table.set(0, 1 << 20, PageAttrs::DEFAULT);
    assert_eq!(window(&vm, top, 4096, VM_PROT_READ), Some((0, 1 << 32)));
}

/// Every boundary of an enforced task, page by page: the count [`TaskVm::mappings`]
/// must equal, written independently of [`hw_boundaries`].
fn full_recount(vm: &TaskVm) -> u64 {
    let k = (vm.known_size >> vm.page_shift) as i64;
    let class = |i: i64| {
        let attrs = if (0..k).contains(&i) {
            vm.table.get(i as u64)
        } else {
            Some(PageAttrs::DEFAULT)
        };
        crate::enforce::hw_prot(attrs)
    };
    (0..=k).filter(|&i| class(i - 1) != class(i)).count() as u64
}

/// Table changes of every kind, around the memory's end and past it, with the table and
/// the memory growing.
fn change_shape() -> impl Strategy<Value = Shape> {
    let page = prop_oneof![
        0u64..0x4_0000,
        (1u64..10).prop_map(|k| k * 0x1_0000 - 0x1000)
    ];
    prop_oneof![
        4 => (page.clone(), 1u64..0x2_0000, 0i32..8)
            .prop_map(|(a, s, p)| Shape::Protect(a, s, p)),
        2 => (page.clone(), 1u64..0x2_0000).prop_map(|(a, s)| Shape::Deallocate(a, s)),
        2 => (page, 1u64..0x2_0000, prop_oneof![Just(0), Just(1), Just(4)])
            .prop_map(|(a, s, f)| Shape::Allocate(a, s, f)),
        1 => Just(Shape::Grow),
    ]
}

#[test]
fn a_dropped_task_gives_its_mappings_back() {
    let mut env = VecEnv::new(Width::W32, 4096, 2);
    env.enforce = true;
    let c = Call::Protect {
        form: Form::Vm,
        task: TASK_SELF_NAME,
        addr: 0x3000,
        size: 0x1000,
        set_max: 0,
        prot: VM_PROT_READ,
    };
    assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
    assert_eq!(env.vm.mappings(), 2);
    assert!(crate::vm::budget::mappings_in_use() >= 2);
    release_mappings(&mut env.vm);
    assert_eq!(env.vm.mappings(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The count of an enforced task's boundaries, kept change by change from the
    /// changed pages only, is the full recount of its table after any sequence of
    /// calls (refused ones included) and guest growth.
    #[test]
    fn the_incremental_mapping_count_is_a_full_recount(
        big_pages in any::<bool>(),
        wasm_pages in 1u64..=4,
        shapes in proptest::collection::vec(change_shape(), 1..24),
    ) {
        let page = if big_pages { 16384 } else { 4096 };
        let mut env = VecEnv::new(Width::W64, page, wasm_pages);
        env.enforce = true;
        for s in shapes {
            apply(&mut env, vec![s]);
            prop_assert_eq!(env.vm.mappings(), full_recount(&env.vm));
        }
        sync(&mut env, ME);
        prop_assert_eq!(env.vm.mappings(), full_recount(&env.vm));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Windows opened after copies and kept across table changes only hold ranges whose
    /// `vm_copy` the full path lets succeed, in either form: what the wasm side of
    /// `crate::enforce::rewrite` relies on to answer without the host.
    #[test]
    fn a_copy_inside_the_windows_succeeds(
        w64 in any::<bool>(),
        big_pages in any::<bool>(),
        wasm_pages in 1u64..=4,
        opens in proptest::collection::vec((value(), 1u64..0x3000, value()), 1..4),
        shapes in proptest::collection::vec(proptest::collection::vec(shape(), 0..3), 1..4),
        (src_at, size, dst_at) in (any::<u64>(), 0u64..0x3000, any::<u64>()),
        mach_form in any::<bool>(),
    ) {
        let width = if w64 { Width::W64 } else { Width::W32 };
        let page = if big_pages { 16384 } else { 4096 };
        let mut env = VecEnv::new(width, page, wasm_pages);
        for (i, b) in env.bytes.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        for ((a, n, b), shapes) in opens.into_iter().zip(shapes) {
            sync(&mut env, ME);
            open_windows(&mut env.vm, Some(a), n, b);
            apply(&mut env, shapes);
        }
        let [(rlo, rhi), (wlo, whi)] = env.vm.windows();
        if rlo == rhi || wlo == whi {
            // A change closed one (or no copy could open it): nothing to serve in wasm.
            return Ok(());
        }
        // A range inside each window (the wasm test: lo <= addr < hi, addr + size <= hi).
        let size = size.min(rhi - rlo).min(whi - wlo);
        let src = rlo + src_at % (rhi - rlo - size + 1);
        let dst = wlo + dst_at % (whi - wlo - size + 1);
        let mut expected = env.bytes.clone();
        let (s, d) = (src as usize, dst as usize);
        expected.copy_within(s..s + size as usize, d);
        let form = if mach_form { Form::MachVm } else { Form::Vm };
        let out = call(&mut env, ME, &copy_call(form, TASK_SELF_NAME, src, size, dst));
        prop_assert_eq!(out, Outcome::Kr(KERN_SUCCESS));
        prop_assert_eq!(&env.bytes, &expected);
    }

    /// Whenever a fast path says a call succeeds, the full path agrees, with the same
    /// effect on memory.
    #[test]
    fn a_fast_yes_is_the_full_paths_answer(
        w64 in any::<bool>(),
        big_pages in any::<bool>(),
        wasm_pages in 1u64..=4,
        shapes in proptest::collection::vec(shape(), 0..6),
        mach_form in any::<bool>(),
        port in prop_oneof![4 => Just(TASK_SELF_NAME), 1 => Just(HOST_SELF_NAME), 1 => Just(MachPort(0x303))],
        (src, size, dst) in (value(), prop_oneof![3 => 0u64..0x3000, 1 => value()], value()),
        ptr in value(),
    ) {
        let width = if w64 { Width::W64 } else { Width::W32 };
        let page = if big_pages { 16384 } else { 4096 };
        let mut env = VecEnv::new(width, page, wasm_pages);
        for (i, b) in env.bytes.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        apply(&mut env, shapes);
        let form = if mach_form { Form::MachVm } else { Form::Vm };
        let aw = form.address_width(width);
        if copy_succeeds(&env.vm, port, src, size, dst, aw) {
            let mut expected = env.bytes.clone();
            if size != 0 {
                let (s, d) = (src as usize, dst as usize);
                expected.copy_within(s..s + size as usize, d);
            }
            let out = call(&mut env, ME, &copy_call(form, port, src, size, dst));
            prop_assert_eq!(out, Outcome::Kr(KERN_SUCCESS));
            prop_assert_eq!(&env.bytes, &expected);
        }
        let word = width.bytes();
        if allows_fast(&env.vm, ptr, word, VM_PROT_WRITE) {
            let c = Call::HostPageSize { host: HOST_SELF_NAME, size_ptr: ptr };
            prop_assert_eq!(call(&mut env, ME, &c), Outcome::Kr(KERN_SUCCESS));
            let mut got = [0u8; 8];
            got[..word as usize].copy_from_slice(&env.bytes[ptr as usize..(ptr + word) as usize]);
            prop_assert_eq!(u64::from_le_bytes(got), page);
        }
    }
}
