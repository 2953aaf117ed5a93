//! Shorthands for the spec tests: one task (and optionally more) of a [`Target`], which is
//! machvm through real wasm forwarders or the reference model, and assertions with context.
//! Every row runs against both, so neither can drift from the contract alone.

use machvm::abi::*;
use machvm::testing::harness::Harness;
use machvm::testing::{ModelTarget, Target};
use machvm::{Call, Form, Outcome, PageAttrs, ParamFault, Width};

pub const SELF: u32 = TASK_SELF_NAME.0;

/// Every configuration the spec rows are tested in: both memory widths and both page sizes.
pub const CONFIGS: [(Width, u64); 4] = [
    (Width::W32, 4096),
    (Width::W32, 16384),
    (Width::W64, 4096),
    (Width::W64, 16384),
];

pub const FORMS: [Form; 2] = [Form::Vm, Form::MachVm];

/// What a row runs against: machvm, through real wasm guests, or the reference model.
pub enum K {
    Machvm(Harness),
    Model(ModelTarget),
}

/// Which [`K`] to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    Machvm,
    Model,
}

/// Both targets: every row runs against each.
pub const BOTH: [On; 2] = [On::Machvm, On::Model];

/// Every configuration on both targets.
pub fn on_configs() -> impl Iterator<Item = (On, (Width, u64))> {
    BOTH.into_iter().flat_map(|on| CONFIGS.map(|c| (on, c)))
}

impl K {
    /// A target of kind `on` whose tasks have page size `p`.
    pub fn new(on: On, p: u64) -> K {
        match on {
            On::Machvm => K::Machvm(Harness::with_page_size(p).unwrap()),
            On::Model => K::Model(ModelTarget::new(p)),
        }
    }

    /// As [`K::new`], with memories that can share pages (spec §8): machvm's backed
    /// memories.
    pub fn sharing(on: On, p: u64) -> K {
        match on {
            On::Machvm => {
                let config = machvm::KernelConfig::default().page_size(p);
                K::Machvm(Harness::with_memories(config, true).unwrap())
            }
            On::Model => K::Model(ModelTarget::sharing(p)),
        }
    }
}

impl std::ops::Deref for K {
    type Target = dyn Target;
    fn deref(&self) -> &(dyn Target + 'static) {
        match self {
            K::Machvm(h) => h,
            K::Model(m) => m,
        }
    }
}

impl std::ops::DerefMut for K {
    fn deref_mut(&mut self) -> &mut (dyn Target + 'static) {
        match self {
            K::Machvm(h) => h,
            K::Model(m) => m,
        }
    }
}

/// A task under test: task 0 of a target, plus its configuration.
pub struct T {
    pub h: K,
    pub g: usize,
    pub w: Width,
    pub p: u64,
    pub form: Form,
    /// The task's copy windows were opened over its whole memory before the test: its
    /// copies there are served in wasm (`machvm::rewrite`), the others by the host.
    pub windows: bool,
}

/// Runs `f` against both targets in every configuration and form, on a task with 4 wasm
/// pages (256 KiB) of memory and a maximum of 64 (a 4 MiB map).
pub fn each(f: impl Fn(&mut T)) {
    each_with(4, Some(64), f)
}

/// As [`each`], with the given memory size and maximum (wasm pages); on machvm each
/// configuration twice, with the copy windows closed and open.
pub fn each_with(initial: u64, maximum: Option<u64>, f: impl Fn(&mut T)) {
    each_on(&BOTH, initial, maximum, f)
}

/// As [`each`], on machvm only: for what the model does not describe (the host API,
/// residency in host memory, the copy windows).
pub fn each_machvm(f: impl Fn(&mut T)) {
    each_on(&[On::Machvm], 4, Some(64), f)
}

/// As [`each`], on memories that can share pages (spec §8).
pub fn each_sharing(f: impl Fn(&mut T)) {
    each_in(&BOTH, true, 4, Some(64), f)
}

fn each_on(targets: &[On], initial: u64, maximum: Option<u64>, f: impl Fn(&mut T)) {
    each_in(targets, false, initial, maximum, f)
}

fn each_in(targets: &[On], sharing: bool, initial: u64, maximum: Option<u64>, f: impl Fn(&mut T)) {
    for &on in targets {
        for (w, p) in CONFIGS {
            for form in FORMS {
                for windows in [false, true] {
                    if windows && on == On::Model {
                        continue;
                    }
                    let mut t = T::with(on, sharing, w, p, form, initial, maximum);
                    if windows {
                        t.open_windows();
                    }
                    f(&mut t);
                }
            }
        }
    }
}

impl T {
    /// A task on machvm.
    pub fn new(w: Width, p: u64, form: Form, initial: u64, maximum: Option<u64>) -> T {
        T::on(On::Machvm, w, p, form, initial, maximum)
    }

    /// A task on target `on`.
    pub fn on(on: On, w: Width, p: u64, form: Form, initial: u64, maximum: Option<u64>) -> T {
        T::with(on, false, w, p, form, initial, maximum)
    }

    /// A task on target `on`, whose memory can share pages when `sharing`.
    pub fn with(
        on: On,
        sharing: bool,
        w: Width,
        p: u64,
        form: Form,
        initial: u64,
        maximum: Option<u64>,
    ) -> T {
        let mut h = if sharing {
            K::sharing(on, p)
        } else {
            K::new(on, p)
        };
        let g = h.add_task(w, initial, maximum);
        T {
            h,
            g,
            w,
            p,
            form,
            windows: false,
        }
    }

    /// Opens the copy windows over the whole memory with a copy of one byte onto itself,
    /// which changes nothing else.
    pub fn open_windows(&mut self) {
        let size = self.memory_size();
        assert_eq!(self.copy(0, 1, 0), KERN_SUCCESS);
        let g = self.g;
        let h = self.harness();
        let open = h.kernel().task(h.task(g)).unwrap().windows();
        assert_eq!(open, [(0, size); 2], "{}", self.ctx());
        self.windows = true;
    }

    /// The harness of a task on machvm, for what only machvm has (its kernel, the host
    /// API).
    pub fn harness(&mut self) -> &mut Harness {
        match &mut self.h {
            K::Machvm(h) => h,
            K::Model(_) => panic!("a machvm-only test ran on the model"),
        }
    }

    /// Whether the task is machvm's (not the model's).
    pub fn on_machvm(&self) -> bool {
        matches!(self.h, K::Machvm(_))
    }

    /// The size of the task's memory in bytes.
    pub fn memory_size(&self) -> u64 {
        self.h.memory_size(self.g)
    }

    /// The task's own `memory.grow` by `delta` wasm pages: the old size, or `None`.
    pub fn grow(&mut self, delta: u64) -> Option<u64> {
        let g = self.g;
        self.h.grow(g, delta)
    }

    /// Context for assertion messages.
    pub fn ctx(&self) -> String {
        format!(
            "[{}, {:?} memory, page size {}, {:?} form, copy windows {}]",
            self.h.name(),
            self.w,
            self.p,
            self.form,
            if self.windows { "open" } else { "closed" }
        )
    }

    /// 2^width of the form's addresses.
    pub fn addr_limit(&self) -> u128 {
        self.form.address_width(self.w).limit()
    }

    /// The largest address of the form's width.
    pub fn amax(&self) -> u64 {
        (self.addr_limit() - 1) as u64
    }

    pub fn outcome(&mut self, c: Call) -> Outcome {
        let g = self.g;
        self.h.call(g, &c)
    }

    pub fn ret(&mut self, c: Call) -> KernReturn {
        match self.outcome(c.clone()) {
            Outcome::Kr(kr) => kr,
            o => panic!("{} {c:?}: {o:?}, expected a kern_return_t", self.ctx()),
        }
    }

    pub fn trap(&mut self, c: Call) -> ParamFault {
        match self.outcome(c.clone()) {
            Outcome::Trap(f) => f,
            o => panic!("{} {c:?}: {o:?}, expected a trap", self.ctx()),
        }
    }

    pub fn copy(&mut self, src: u64, size: u64, dst: u64) -> KernReturn {
        let form = self.form;
        self.ret(Call::Copy {
            form,
            task: TASK_SELF_NAME,
            src,
            size,
            dst,
        })
    }

    pub fn protect(&mut self, addr: u64, size: u64, set_max: bool, prot: VmProt) -> KernReturn {
        let form = self.form;
        self.ret(Call::Protect {
            form,
            task: TASK_SELF_NAME,
            addr,
            size,
            set_max: set_max as u32,
            prot,
        })
    }

    pub fn deallocate(&mut self, addr: u64, size: u64) -> KernReturn {
        let form = self.form;
        self.ret(Call::Deallocate {
            form,
            task: TASK_SELF_NAME,
            addr,
            size,
        })
    }

    /// The width in bytes of the form's address out-parameters.
    pub fn aword(&self) -> usize {
        self.form.address_width(self.w).bytes() as usize
    }

    /// The guest's word size in bytes.
    pub fn word(&self) -> usize {
        self.w.bytes() as usize
    }

    /// vm_allocate with `*address = hint` at the scratch address `PTR`; returns the code and
    /// the address read back.
    pub fn allocate(&mut self, hint: u64, size: u64, flags: VmFlags) -> (KernReturn, u64) {
        let form = self.form;
        let n = self.aword();
        self.put(PTR, &hint.to_le_bytes()[..n]);
        let r = self.ret(Call::Allocate {
            form,
            task: TASK_SELF_NAME,
            addr_ptr: PTR,
            size,
            flags,
        });
        (r, self.get_uint(PTR, n))
    }

    /// An allocation of `pages` pages that grows the memory: its pages were never touched.
    pub fn fresh(&mut self, pages: u64) -> u64 {
        let size = self.memory_size();
        let (r, a) = self.allocate(size, pages * self.p, VM_FLAGS_FIXED);
        assert_eq!((r, a), (KERN_SUCCESS, size), "{}", self.ctx());
        a
    }

    pub fn put(&mut self, addr: u64, bytes: &[u8]) {
        let g = self.g;
        self.h.write(g, addr, bytes);
    }

    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        self.h.read(self.g, addr, len)
    }

    pub fn get_uint(&self, addr: u64, n: usize) -> u64 {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&self.get(addr, n));
        u64::from_le_bytes(b)
    }

    pub fn mem(&self) -> Vec<u8> {
        self.h.read(self.g, 0, self.memory_size() as usize)
    }

    /// Fills `[addr, addr+len)` with a pattern that differs per address.
    pub fn pattern(&mut self, addr: u64, len: u64, seed: u8) {
        let bytes: Vec<u8> = (0..len)
            .map(|i| {
                ((addr + i) as u8).wrapping_mul(31).wrapping_add(seed) ^ ((addr + i) >> 8) as u8
            })
            .collect();
        self.put(addr, &bytes);
    }

    pub fn page(&self, addr: u64) -> Option<PageAttrs> {
        self.h.page(self.g, addr / self.p)
    }

    pub fn page_prot(&self, addr: u64) -> Option<(VmProt, VmProt)> {
        self.page(addr).map(|a| (a.cur, a.max))
    }

    /// Every page's state, up to the memory's size.
    pub fn pages(&self) -> Vec<Option<PageAttrs>> {
        let n = self.memory_size() / self.p;
        (0..n).map(|i| self.h.page(self.g, i)).collect()
    }

    /// A call's task name is resolved before any other parameter is looked at: names this
    /// task holds no right to give `MACH_SEND_INVALID_DEST` however bad the rest is
    /// (`call(name, false)`), and the host port `KERN_INVALID_ARGUMENT` with good ones
    /// (`call(HOST_SELF_NAME, true)`).
    pub fn names_resolve_first(&mut self, call: impl Fn(MachPort, bool) -> Call) {
        for name in [
            MACH_PORT_NULL,
            MACH_PORT_DEAD,
            MachPort(0x303),
            MachPort(0x12345),
        ] {
            assert_eq!(
                self.ret(call(name, false)),
                MACH_SEND_INVALID_DEST,
                "{}",
                self.ctx()
            );
        }
        let c = call(HOST_SELF_NAME, true);
        assert_eq!(self.ret(c), KERN_INVALID_ARGUMENT, "{}", self.ctx());
    }

    /// mach_vm_region / vm_region_64 at `addr`: code, (address, size), info words, count, name.
    pub fn region(&mut self, addr: u64) -> (KernReturn, u64, u64, [i32; 3], u32) {
        self.region_with(addr, VM_REGION_BASIC_INFO_64 as u32, 9)
    }

    pub fn region_with(
        &mut self,
        addr: u64,
        flavor: u32,
        count: u32,
    ) -> (KernReturn, u64, u64, [i32; 3], u32) {
        let form = self.form;
        let n = self.aword();
        self.put(PTR, &addr.to_le_bytes()[..n]);
        self.put(PTR + 8, &[0xAA; 8]);
        self.put(INFO, &[0xAA; 40]);
        self.put(PTR + 16, &count.to_le_bytes());
        self.put(PTR + 20, &[0xAA; 4]);
        let r = self.ret(Call::Region {
            form,
            task: TASK_SELF_NAME,
            addr_ptr: PTR,
            size_ptr: PTR + 8,
            flavor,
            info_ptr: INFO,
            count_ptr: PTR + 16,
            object_name_ptr: PTR + 20,
        });
        let info = self.get(INFO, 12);
        let word = |i: usize| i32::from_le_bytes(info[i * 4..i * 4 + 4].try_into().unwrap());
        (
            r,
            self.get_uint(PTR, n),
            self.get_uint(PTR + 8, n),
            [word(0), word(1), word(2)],
            self.get_uint(PTR + 16, 4) as u32,
        )
    }
}

/// Scratch area for out-parameters, in the first page (allocated RW at start).
pub const PTR: u64 = 0x100;
/// Scratch area for vm_region's info.
pub const INFO: u64 = 0x200;
/// A data area well inside the initial memory, page-aligned for both page sizes.
pub const DATA: u64 = 0x10000;

pub const R: VmProt = VM_PROT_READ;
pub const W: VmProt = VM_PROT_WRITE;
pub const RW: VmProt = VM_PROT_DEFAULT;
pub const ALL: VmProt = VM_PROT_ALL;
