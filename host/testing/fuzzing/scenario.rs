//! Call sequences drawn to hit the edges of spec §4, as [`arbitrary::Arbitrary`] values.
//!
//! A [`Scenario`] is a [`Setup`] and symbolic steps ([`StepSpec`]): the numbers in them are
//! [`Num`]s such as "one page", "the memory's end + 3", "2^32 − 5", resolved against the page
//! size and the state of the run when the step comes, so that a step keeps its meaning
//! (an edge) whatever happened before it.

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::abi::{Call, Form, MachPort, Outcome, VmFlags, VmProt, Width, VM_PROT_NONE};
use crate::abi::{
    HOST_SELF_NAME, HOST_VM_INFO64, MACH_PORT_DEAD, MACH_PORT_NULL, MACH_TASK_BASIC_INFO,
    TASK_SELF_NAME, TASK_VM_INFO, TASK_VM_INFO_PURGEABLE, VM_FLAGS_ANYWHERE, VM_FLAGS_FIXED,
    VM_FLAGS_OVERWRITE, VM_FLAGS_PURGABLE, VM_FLAGS_USER_ALLOCATE, VM_PAGE_INFO_BASIC,
    VM_PROT_COPY, VM_PROT_WRITE, VM_PURGABLE_DEBUG_EMPTY, VM_REGION_BASIC_INFO,
    VM_REGION_BASIC_INFO_64,
};
use crate::abi::{
    MAP_MEM_FLAGS_USER, MAP_MEM_NAMED_CREATE, MAP_MEM_NAMED_REUSE, MAP_MEM_ONLY, MAP_MEM_VM_COPY,
    MAP_MEM_VM_SHARE,
};
use crate::embed::kernel::KernelConfig;
use crate::testing::model::Model;
use crate::vm::WASM_PAGE;

use super::oracle::{locate, Differential, Divergence, Op, Setup, TaskSpec};

/// What a number is resolved against: the page size and the task the number is about.
struct Ctx<'m> {
    p: u64,
    mem: u64,
    map: u128,
    /// The model and the task, for [`Ctx::pages`].
    model: &'m Model,
    task: usize,
    /// The task's allocated pages (the model's), in order, and those of them with WRITE in
    /// `cur`: listed when a number first needs them (most numbers do not, and a step
    /// resolves a few numbers against each task it involves).
    pages: std::cell::OnceCell<(Vec<u64>, Vec<u64>)>,
}

impl Ctx<'_> {
    /// The task's allocated pages, in order.
    fn allocated(&self) -> &[u64] {
        &self.pages().0
    }

    /// The task's pages with WRITE in `cur`, in order.
    fn writable(&self) -> &[u64] {
        &self.pages().1
    }

    fn pages(&self) -> &(Vec<u64>, Vec<u64>) {
        self.pages.get_or_init(|| {
            let mut allocated = Vec::new();
            let mut writable = Vec::new();
            for page in 0..self.mem / self.p {
                if let Some(a) = self.model.page(self.task, page) {
                    allocated.push(page);
                    if a.cur.intersects(VM_PROT_WRITE) {
                        writable.push(page);
                    }
                }
            }
            (allocated, writable)
        })
    }
}

/// A number (an address, a size, a count) chosen to hit an edge; resolved with wrapping
/// arithmetic in 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Num {
    /// 0.
    Zero,
    /// 1.
    One,
    /// `P − 1`.
    PageMinus1,
    /// `P`.
    Page,
    /// `P + 1`.
    PagePlus1,
    /// The start of the task's `k`-th allocated page (modulo their number; page `k` when
    /// none is) `+ delta`.
    Allocated {
        /// Which page.
        k: u16,
        /// Bytes added.
        delta: i16,
    },
    /// `n × P + delta` with `n` = `pages % 4` half of the time, else `pages % 16` or
    /// `pages % 64`: page-aligned, or a little off.
    Pages {
        /// Pages.
        pages: u8,
        /// Bytes added.
        delta: i8,
    },
    /// `frac / 65536` of the way into the task's memory.
    InMemory(u16),
    /// The task's memory size `+ delta`.
    MemEnd {
        /// Bytes added.
        delta: i16,
    },
    /// The task's map limit `+ delta`.
    MapEnd {
        /// Bytes added.
        delta: i16,
    },
    /// `2^31 + delta`.
    Bit31 {
        /// Bytes added.
        delta: i16,
    },
    /// `2^32 − below`.
    Top32 {
        /// Bytes below.
        below: u16,
    },
    /// `2^64 − below`.
    Top64 {
        /// Bytes below.
        below: u16,
    },
    /// A small value.
    Small(u16),
    /// Any value.
    Raw(u64),
}

impl Num {
    fn resolve(self, c: &Ctx) -> u64 {
        let p = c.p;
        match self {
            Num::Allocated { k, delta } => {
                let allocated = c.allocated();
                let page = match allocated.len() {
                    0 => u64::from(k),
                    n => allocated[usize::from(k) % n],
                };
                (page * p).wrapping_add_signed(delta.into())
            }
            Num::Zero => 0,
            Num::One => 1,
            Num::PageMinus1 => p - 1,
            Num::Page => p,
            Num::PagePlus1 => p + 1,
            Num::Pages { pages, delta } => {
                let n = match pages {
                    0..=127 => pages % 4,
                    128..=223 => pages % 16,
                    _ => pages % 64,
                };
                (u64::from(n) * p).wrapping_add_signed(delta.into())
            }
            Num::InMemory(f) => u64::from(f) * c.mem / 65536,
            Num::MemEnd { delta } => c.mem.wrapping_add_signed(delta.into()),
            Num::MapEnd { delta } => (c.map as u64).wrapping_add_signed(delta.into()),
            Num::Bit31 { delta } => (1u64 << 31).wrapping_add_signed(delta.into()),
            Num::Top32 { below } => (1u64 << 32).wrapping_sub(below.into()),
            Num::Top64 { below } => 0u64.wrapping_sub(below.into()),
            Num::Small(v) => v.into(),
            Num::Raw(v) => v,
        }
    }
}

/// A size or count: mostly a few pages or a few bytes, sometimes any [`Num`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeSpec {
    /// `(n % 4) × P + delta`.
    Pages {
        /// Pages.
        n: u8,
        /// Bytes added.
        delta: i8,
    },
    /// `bytes % (2 × P)`.
    Bytes(u16),
    /// Any number.
    Any(Num),
}

impl SizeSpec {
    fn resolve(self, c: &Ctx) -> u64 {
        match self {
            SizeSpec::Pages { n, delta } => {
                (u64::from(n % 4) * c.p).wrapping_add_signed(delta.into())
            }
            SizeSpec::Bytes(b) => u64::from(b) % (2 * c.p),
            SizeSpec::Any(n) => n.resolve(c),
        }
    }
}

impl<'a> Arbitrary<'a> for SizeSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (45, |u| {
                    let n = u.arbitrary()?;
                    let delta = if u.ratio(1, 2)? { 0 } else { u.arbitrary()? };
                    Ok(SizeSpec::Pages { n, delta })
                }),
                (20, |u| Ok(SizeSpec::Bytes(u.arbitrary()?))),
                (35, |u| Ok(SizeSpec::Any(u.arbitrary()?))),
            ],
        )
    }
}

/// A second address of a call (vm_copy's destination, vm_read_overwrite's buffer), often
/// near the first so that ranges overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub enum DstSpec {
    /// Anywhere.
    Abs(Num),
    /// The first address `+ delta` bytes.
    Near(i16),
    /// The first address `+ pages × P`.
    PagesAway(i8),
}

impl DstSpec {
    fn resolve(self, first: u64, c: &Ctx) -> u64 {
        match self {
            DstSpec::Abs(n) => n.resolve(c),
            DstSpec::Near(d) => first.wrapping_add_signed(d.into()),
            DstSpec::PagesAway(k) => first.wrapping_add_signed(i64::from(k) * c.p as i64),
        }
    }
}

/// A pointer to a scalar parameter in the caller's memory: usually inside it, sometimes
/// straddling a page boundary, sometimes anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtrSpec {
    /// In the caller's `k`-th page with WRITE (modulo their number), at `offset` rounded
    /// down to 8 (modulo `P`); as `InMemory(k)` when there is none.
    Writable {
        /// Which page.
        k: u16,
        /// Where in it.
        offset: u16,
    },
    /// `frac / 65536` of the way into the memory, 8-aligned.
    InMemory(u16),
    /// Two bytes before the end of page `k % 64 + 1`'s predecessor: the parameter straddles
    /// a page boundary.
    Straddle(u8),
    /// Anywhere.
    Edge(Num),
}

impl PtrSpec {
    fn resolve(self, c: &Ctx) -> u64 {
        match self {
            PtrSpec::Writable { k, offset } => match c.writable() {
                [] => PtrSpec::InMemory(k).resolve(c),
                w => w[usize::from(k) % w.len()] * c.p + ((u64::from(offset) % c.p) & !7),
            },
            PtrSpec::InMemory(f) => (u64::from(f) * c.mem / 65536) & !7,
            PtrSpec::Straddle(k) => (u64::from(k % 64) + 1) * c.p - 2,
            PtrSpec::Edge(n) => n.resolve(c),
        }
    }
}

/// A port name argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `mach_task_self()`.
    TaskSelf,
    /// The caller's `i`-th name that holds a right, a task's or a memory entry's (modulo
    /// their number; `0x303`, not inserted, when there is none).
    Right(u8),
    /// The name the `i % 4`-th send right has or would have (`0x303`, ...), inserted or not.
    Slot(u8),
    /// `mach_host_self()`.
    Host,
    /// `MACH_PORT_NULL`.
    Null,
    /// `MACH_PORT_DEAD`.
    Dead,
    /// Any name.
    Raw(u32),
}

impl PortSpec {
    /// The name, for a caller whose namespace holds `names`.
    fn name(self, names: &[MachPort]) -> MachPort {
        let slot = |i: u32| MachPort(((i + 3) << 8) | 3);
        match self {
            PortSpec::TaskSelf => TASK_SELF_NAME,
            PortSpec::Right(_) if names.is_empty() => slot(0),
            PortSpec::Right(i) => names[usize::from(i) % names.len()],
            PortSpec::Slot(i) => slot(u32::from(i % 4)),
            PortSpec::Host => HOST_SELF_NAME,
            PortSpec::Null => MACH_PORT_NULL,
            PortSpec::Dead => MACH_PORT_DEAD,
            PortSpec::Raw(n) => MachPort(n),
        }
    }
}

/// vm_allocate's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagsSpec {
    /// `VM_FLAGS_FIXED`.
    Fixed,
    /// `VM_FLAGS_ANYWHERE`.
    Anywhere,
    /// `VM_FLAGS_FIXED | VM_FLAGS_OVERWRITE`.
    Overwrite,
    /// `VM_FLAGS_ANYWHERE | VM_FLAGS_OVERWRITE`.
    AnywhereOverwrite,
    /// `VM_FLAGS_PURGABLE`, with `VM_FLAGS_ANYWHERE` when true.
    Purgable(bool),
    /// Bits inside `VM_FLAGS_USER_ALLOCATE` (accepted, mostly ignored).
    UserBits(u32),
    /// Any bits.
    Raw(u32),
}

impl FlagsSpec {
    fn bits(self) -> VmFlags {
        match self {
            FlagsSpec::Fixed => VM_FLAGS_FIXED,
            FlagsSpec::Anywhere => VM_FLAGS_ANYWHERE,
            FlagsSpec::Overwrite => VM_FLAGS_FIXED | VM_FLAGS_OVERWRITE,
            FlagsSpec::AnywhereOverwrite => VM_FLAGS_ANYWHERE | VM_FLAGS_OVERWRITE,
            FlagsSpec::Purgable(anywhere) => {
                VM_FLAGS_PURGABLE
                    | if anywhere {
                        VM_FLAGS_ANYWHERE
                    } else {
                        VM_FLAGS_FIXED
                    }
            }
            FlagsSpec::UserBits(b) => VmFlags(b) & VM_FLAGS_USER_ALLOCATE,
            FlagsSpec::Raw(b) => VmFlags(b),
        }
    }
}

/// vm_protect's new protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtSpec {
    /// `bits & 7`, with `VM_PROT_COPY` when `bits & 8`.
    Bits(u8),
    /// Any bits.
    Raw(u32),
}

impl ProtSpec {
    fn bits(self) -> VmProt {
        match self {
            ProtSpec::Bits(b) => {
                VmProt(i32::from(b & 7))
                    | if b & 8 != 0 {
                        VM_PROT_COPY
                    } else {
                        VM_PROT_NONE
                    }
            }
            ProtSpec::Raw(b) => VmProt(b as i32),
        }
    }
}

/// vm_protect's `set_maximum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMaxSpec {
    /// 0.
    False,
    /// 1.
    True,
    /// Any value (true unless 0).
    Raw(u32),
}

impl SetMaxSpec {
    fn value(self) -> u32 {
        match self {
            SetMaxSpec::False => 0,
            SetMaxSpec::True => 1,
            SetMaxSpec::Raw(v) => v,
        }
    }
}

/// vm_region's flavor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlavorSpec {
    /// `VM_REGION_BASIC_INFO_64`.
    Basic64,
    /// `VM_REGION_BASIC_INFO`.
    Basic,
    /// `VM_REGION_EXTENDED_INFO`.
    Extended,
    /// Any value.
    Raw(u32),
}

impl FlavorSpec {
    fn value(self) -> u32 {
        match self {
            FlavorSpec::Basic64 => VM_REGION_BASIC_INFO_64 as u32,
            FlavorSpec::Basic => VM_REGION_BASIC_INFO as u32,
            FlavorSpec::Extended => crate::abi::VM_REGION_EXTENDED_INFO as u32,
            FlavorSpec::Raw(v) => v,
        }
    }
}

/// vm_behavior_set's behavior.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BehaviorSpec {
    /// A value of `vm_behavior_t` (`b % 12`: DEFAULT to PAGEOUT).
    Known(u8),
    /// Any value.
    Raw(u32),
}

impl BehaviorSpec {
    fn value(self) -> u32 {
        match self {
            BehaviorSpec::Known(b) => u32::from(b % 12),
            BehaviorSpec::Raw(v) => v,
        }
    }
}

/// vm_msync's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncSpec {
    /// `VM_SYNC_*` bits (`b & 0x7f`).
    Bits(u8),
    /// Any bits.
    Raw(u32),
}

impl SyncSpec {
    fn value(self) -> u32 {
        match self {
            SyncSpec::Bits(b) => u32::from(b & 0x7f),
            SyncSpec::Raw(v) => v,
        }
    }
}

/// A flavor, or the value stored in the in-out `*count` before the call, of
/// `mach_vm_page_info`, `task_info` or `host_statistics64`: one of the values that matter to
/// the call (its flavors; its flavors' counts, one less, one more, the array's bound), or any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoSpec {
    /// The `k`-th value that matters (modulo their number).
    Known(u8),
    /// Any value.
    Raw(u32),
}

impl InfoSpec {
    fn value(self, known: &[u32]) -> u32 {
        match self {
            InfoSpec::Known(k) => known[usize::from(k) % known.len()],
            InfoSpec::Raw(v) => v,
        }
    }
}

/// `vm_purgable_control`'s `*state` before the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateSpec {
    /// A state (`s % 4`: NONVOLATILE, VOLATILE, EMPTY, DENY), with `VM_PURGABLE_DEBUG_EMPTY`
    /// when `debug`, and ordering bits when `bits`.
    State {
        /// Which state.
        s: u8,
        /// `VM_PURGABLE_DEBUG_EMPTY`.
        debug: bool,
        /// Accepted ordering and group bits.
        bits: bool,
    },
    /// Any value.
    Raw(u32),
}

impl StateSpec {
    fn value(self) -> u32 {
        match self {
            StateSpec::State { s, debug, bits } => {
                let mut v = u32::from(s % 4);
                if debug {
                    v |= VM_PURGABLE_DEBUG_EMPTY as u32;
                }
                if bits {
                    v |= 0x10 | 0x40 | 0x300 | 0x1_0000;
                }
                v
            }
            StateSpec::Raw(v) => v,
        }
    }
}

/// `mach_vm_page_range_query`'s `*dispositions_count` before the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeCountSpec {
    /// A few dispositions.
    Few(u8),
    /// Any value.
    Raw(u64),
}

impl RangeCountSpec {
    fn value(self) -> u64 {
        match self {
            RangeCountSpec::Few(n) => u64::from(n),
            RangeCountSpec::Raw(v) => v,
        }
    }
}

/// The value stored in vm_region's in-out `*count` before the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountSpec {
    /// 9, `VM_REGION_BASIC_INFO_64`'s count.
    Nine,
    /// 8, `VM_REGION_BASIC_INFO`'s count, one short of the 64-bit flavor's.
    Eight,
    /// 7, one short of `VM_REGION_BASIC_INFO`'s.
    Seven,
    /// More than needed.
    Big,
    /// Any value.
    Raw(u32),
}

impl CountSpec {
    fn value(self) -> u32 {
        match self {
            CountSpec::Nine => 9,
            CountSpec::Eight => 8,
            CountSpec::Seven => 7,
            CountSpec::Big => 0x100,
            CountSpec::Raw(v) => v,
        }
    }
}

/// Draws a value of `T` from the data.
type Draw<'a, T> = fn(&mut Unstructured<'a>) -> Result<T>;

/// Draws one of `choices` with the given weights (out of their sum).
fn weighted<'a, T>(u: &mut Unstructured<'a>, choices: &[(u32, Draw<'a, T>)]) -> Result<T> {
    let total: u32 = choices.iter().map(|c| c.0).sum();
    let mut x = u.int_in_range(0..=total - 1)?;
    for (w, f) in choices {
        if x < *w {
            return f(u);
        }
        x -= w;
    }
    unreachable!("x < total")
}

/// Mostly valid values (allocated pages, small page counts, inside the memory), a fair share
/// of edges, and a few arbitrary ones.
impl<'a> Arbitrary<'a> for Num {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (24, |u| {
                    let k = u.arbitrary()?;
                    let delta = if u.ratio(2, 3)? { 0 } else { small_delta(u)? };
                    Ok(Num::Allocated { k, delta })
                }),
                (24, |u| {
                    let pages = u.arbitrary()?;
                    let delta = if u.ratio(1, 2)? { 0 } else { u.arbitrary()? };
                    Ok(Num::Pages { pages, delta })
                }),
                (8, |u| Ok(Num::InMemory(u.arbitrary()?))),
                (3, |_| Ok(Num::Zero)),
                (2, |_| Ok(Num::One)),
                (2, |_| Ok(Num::PageMinus1)),
                (3, |_| Ok(Num::Page)),
                (2, |_| Ok(Num::PagePlus1)),
                (5, |u| {
                    Ok(Num::MemEnd {
                        delta: small_delta(u)?,
                    })
                }),
                (4, |u| {
                    Ok(Num::MapEnd {
                        delta: small_delta(u)?,
                    })
                }),
                (2, |u| {
                    Ok(Num::Bit31 {
                        delta: small_delta(u)?,
                    })
                }),
                (4, |u| {
                    Ok(Num::Top32 {
                        below: u.int_in_range(0..=0x4000)?,
                    })
                }),
                (4, |u| {
                    Ok(Num::Top64 {
                        below: u.int_in_range(0..=0x4000)?,
                    })
                }),
                (3, |u| Ok(Num::Small(u.arbitrary()?))),
                (2, |u| Ok(Num::Raw(u.arbitrary()?))),
            ],
        )
    }
}

/// 0, ±1, a page or so, or anything in `i16`.
fn small_delta(u: &mut Unstructured<'_>) -> Result<i16> {
    Ok(*u.choose(&[0, 0, 1, -1, 4096, -4096, 16384, -16384, i16::MIN])?).and_then(|d| {
        if d == i16::MIN {
            u.arbitrary()
        } else {
            Ok(d)
        }
    })
}

impl<'a> Arbitrary<'a> for PtrSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (70, |u| {
                    Ok(PtrSpec::Writable {
                        k: u.arbitrary()?,
                        offset: u.arbitrary()?,
                    })
                }),
                (15, |u| Ok(PtrSpec::InMemory(u.arbitrary()?))),
                (8, |u| Ok(PtrSpec::Straddle(u.arbitrary()?))),
                (7, |u| Ok(PtrSpec::Edge(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for PortSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (62, |_| Ok(PortSpec::TaskSelf)),
                (25, |u| Ok(PortSpec::Right(u.arbitrary()?))),
                (3, |u| Ok(PortSpec::Slot(u.arbitrary()?))),
                (3, |_| Ok(PortSpec::Host)),
                (2, |_| Ok(PortSpec::Null)),
                (2, |_| Ok(PortSpec::Dead)),
                (3, |u| Ok(PortSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for FlagsSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (35, |_| Ok(FlagsSpec::Fixed)),
                (35, |_| Ok(FlagsSpec::Anywhere)),
                (12, |_| Ok(FlagsSpec::Overwrite)),
                (6, |_| Ok(FlagsSpec::AnywhereOverwrite)),
                (8, |u| Ok(FlagsSpec::Purgable(u.arbitrary()?))),
                (6, |u| Ok(FlagsSpec::UserBits(u.arbitrary()?))),
                (6, |u| Ok(FlagsSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for ProtSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (30, |_| Ok(ProtSpec::Bits(3))),
                (12, |_| Ok(ProtSpec::Bits(1))),
                (8, |_| Ok(ProtSpec::Bits(7))),
                (42, |u| Ok(ProtSpec::Bits(u.arbitrary()?))),
                (8, |u| Ok(ProtSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for SetMaxSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (60, |_| Ok(SetMaxSpec::False)),
                (30, |_| Ok(SetMaxSpec::True)),
                (10, |u| Ok(SetMaxSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for FlavorSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (65, |_| Ok(FlavorSpec::Basic64)),
                (17, |_| Ok(FlavorSpec::Basic)),
                (10, |_| Ok(FlavorSpec::Extended)),
                (8, |u| Ok(FlavorSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for BehaviorSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (90, |u| Ok(BehaviorSpec::Known(u.arbitrary()?))),
                (10, |u| Ok(BehaviorSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for SyncSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (90, |u| Ok(SyncSpec::Bits(u.arbitrary()?))),
                (10, |u| Ok(SyncSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for InfoSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (90, |u| Ok(InfoSpec::Known(u.arbitrary()?))),
                (10, |u| Ok(InfoSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for StateSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (92, |u| {
                    Ok(StateSpec::State {
                        s: u.arbitrary()?,
                        debug: u.ratio(1, 16)?,
                        bits: u.ratio(1, 8)?,
                    })
                }),
                (8, |u| Ok(StateSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for RangeCountSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (90, |u| Ok(RangeCountSpec::Few(u.arbitrary()?))),
                (10, |u| Ok(RangeCountSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

impl<'a> Arbitrary<'a> for CountSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (65, |_| Ok(CountSpec::Nine)),
                (14, |_| Ok(CountSpec::Eight)),
                (4, |_| Ok(CountSpec::Seven)),
                (9, |_| Ok(CountSpec::Big)),
                (8, |u| Ok(CountSpec::Raw(u.arbitrary()?))),
            ],
        )
    }
}

/// One call of spec §3 with symbolic arguments. `mach` picks the `mach_vm_*` form. The
/// numbers about the target task are resolved against it; the caller's buffers and
/// pointers against the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the parameters of the call of the same name
pub enum CallSpec {
    /// `mach_task_self()`.
    TaskSelf,
    /// `mach_host_self()`.
    HostSelf,
    /// `host_page_size`.
    HostPageSize { host: PortSpec, size: PtrSpec },
    /// `vm_allocate`; `hint` is stored at `*address` first (when writable).
    Allocate {
        mach: bool,
        task: PortSpec,
        addr_ptr: PtrSpec,
        hint: Num,
        size: SizeSpec,
        flags: FlagsSpec,
    },
    /// `vm_deallocate`.
    Deallocate {
        mach: bool,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
    },
    /// `vm_protect`.
    Protect {
        mach: bool,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        set_max: SetMaxSpec,
        prot: ProtSpec,
    },
    /// `vm_copy`.
    Copy {
        mach: bool,
        task: PortSpec,
        src: Num,
        size: SizeSpec,
        dst: DstSpec,
    },
    /// `vm_read`.
    Read {
        mach: bool,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        data_ptr: PtrSpec,
        count_ptr: PtrSpec,
    },
    /// `vm_read_overwrite`; `data` is relative to `addr`.
    ReadOverwrite {
        mach: bool,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        data: DstSpec,
        outsize_ptr: PtrSpec,
    },
    /// `vm_write`; `data` is in the caller.
    Write {
        mach: bool,
        task: PortSpec,
        addr: Num,
        data: Num,
        count: SizeSpec,
    },
    /// `vm_region_64` / `mach_vm_region` (`vm_region` when `word` and not `mach`); `addr`
    /// and `count` are stored at `*address` and `*count` first (each when writable).
    Region {
        mach: bool,
        word: bool,
        task: PortSpec,
        addr_ptr: PtrSpec,
        addr: Num,
        size_ptr: PtrSpec,
        flavor: FlavorSpec,
        info_ptr: PtrSpec,
        count_ptr: PtrSpec,
        count: CountSpec,
        object_name_ptr: PtrSpec,
    },
    /// `vm_behavior_set`.
    BehaviorSet {
        mach: bool,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        behavior: BehaviorSpec,
    },
    /// `vm_inherit` / `mach_vm_inherit`; `inheritance` is a valid one (0–2) most of the
    /// time, `VM_INHERIT_DONATE_COPY` (3) or any value otherwise.
    Inherit {
        mach: bool,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        inheritance: u8,
    },
    /// `vm_remap` / `mach_vm_remap`; `hint` is stored at `*target_address` first. `flags`
    /// picks FIXED, ANYWHERE, FIXED|OVERWRITE most, then any `VM_FLAGS_USER_REMAP` bits or
    /// any bits; `mask` is 0 most, else a power of two less one or any value; `copy` is
    /// FALSE (share) most; `inheritance` as for `Inherit`.
    Remap {
        mach: bool,
        target: PortSpec,
        addr_ptr: PtrSpec,
        hint: Num,
        size: SizeSpec,
        mask: u8,
        flags: u16,
        source: PortSpec,
        src_addr: Num,
        copy: u8,
        cur_ptr: PtrSpec,
        max_ptr: PtrSpec,
        inheritance: u8,
    },
    /// `vm_region_recurse_64` / `mach_vm_region_recurse`; `addr` is stored at `*address`
    /// and `count` (19, 17, 18, 16, 12, 11 or any value) at `*count` first.
    RegionRecurse {
        mach: bool,
        task: PortSpec,
        addr_ptr: PtrSpec,
        addr: Num,
        size_ptr: PtrSpec,
        depth_ptr: PtrSpec,
        info_ptr: PtrSpec,
        count_ptr: PtrSpec,
        count: u8,
    },
    /// `mach_make_memory_entry_64` / `mach_make_memory_entry`; `size` is stored at
    /// `*size` first. `permission`'s low 3 bits are the protection; the rest picks no flag,
    /// `VM_SHARE`, `NAMED_CREATE`, `VM_COPY`, `NAMED_REUSE`, `ONLY` with or without
    /// `IS_MASK`, the data-address and accepted flags, or any bits.
    MakeEntry {
        mach: bool,
        task: PortSpec,
        size_ptr: PtrSpec,
        size: SizeSpec,
        offset: Num,
        permission: u16,
        handle_ptr: PtrSpec,
        parent: PortSpec,
    },
    /// `vm_map` / `mach_vm_map`; `hint` is stored at `*address` first. `flags`, `mask` and
    /// `inheritance` as for `Remap` (`vm_map`'s own flags); `object` is null (fresh memory)
    /// or a name; `offset` 0 most, else pages or any value; `cur` and `max` protections,
    /// `IS_MASK` now and then.
    Map {
        mach: bool,
        task: PortSpec,
        addr_ptr: PtrSpec,
        hint: Num,
        size: SizeSpec,
        mask: u8,
        flags: u16,
        object: PortSpec,
        offset: u8,
        copy: u8,
        cur: u8,
        max: u8,
        inheritance: u8,
    },
    /// `mach_port_deallocate`.
    PortDeallocate { task: PortSpec, name: PortSpec },
    /// `vm_msync`.
    Msync {
        mach: bool,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        flags: SyncSpec,
    },
    /// `vm_wire`.
    Wire {
        mach: bool,
        host: PortSpec,
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        prot: ProtSpec,
    },
    /// `vm_purgable_control` / `mach_vm_purgable_control`; `state` is stored at `*state`
    /// first; `control` picks SET_STATE and GET_STATE most, then PURGE_ALL, FROM_KERNEL
    /// or any value. With `in_object`, the address is in the task's `k`-th page of a
    /// purgeable object (modulo their number; `addr` when there is none).
    PurgableControl {
        mach: bool,
        task: PortSpec,
        in_object: Option<u16>,
        addr: Num,
        control: u8,
        state_ptr: PtrSpec,
        state: StateSpec,
    },
    /// `vm_map_page_query` / `mach_vm_page_query`.
    PageQuery {
        mach: bool,
        task: PortSpec,
        addr: Num,
        disposition_ptr: PtrSpec,
        ref_count_ptr: PtrSpec,
    },
    /// `mach_vm_page_info`; `count` is stored at `*count` first (when writable).
    PageInfo {
        task: PortSpec,
        addr: Num,
        flavor: InfoSpec,
        info_ptr: PtrSpec,
        count_ptr: PtrSpec,
        count: InfoSpec,
    },
    /// `mach_vm_page_range_query`; `count` is stored at `*dispositions_count` first.
    PageRangeQuery {
        task: PortSpec,
        addr: Num,
        size: SizeSpec,
        dispositions: PtrSpec,
        count_ptr: PtrSpec,
        count: RangeCountSpec,
    },
    /// `task_info`; `count` is stored at `*count` first.
    TaskInfo {
        task: PortSpec,
        flavor: InfoSpec,
        info_ptr: PtrSpec,
        count_ptr: PtrSpec,
        count: InfoSpec,
    },
    /// `host_statistics64`; `count` is stored at `*count` first.
    HostStatistics64 {
        host: PortSpec,
        flavor: InfoSpec,
        info_ptr: PtrSpec,
        count_ptr: PtrSpec,
        count: InfoSpec,
    },
}

/// The flavors each info call knows, and the counts that matter to it.
const PAGE_INFO_FLAVORS: [u32; 1] = [VM_PAGE_INFO_BASIC as u32];
const PAGE_INFO_COUNTS: [u32; 4] = [8, 7, 9, 6];
const TASK_FLAVORS: [u32; 3] = [
    MACH_TASK_BASIC_INFO as u32,
    TASK_VM_INFO as u32,
    TASK_VM_INFO_PURGEABLE as u32,
];
const TASK_COUNTS: [u32; 13] = [12, 11, 36, 35, 38, 42, 84, 86, 87, 89, 90, 1024, 2000];
const HOST_FLAVORS: [u32; 1] = [HOST_VM_INFO64 as u32];
const HOST_COUNTS: [u32; 5] = [38, 24, 23, 39, 256];

/// The calls that move memory and change the table most often; `*_self` and
/// `host_page_size` now and then.
impl<'a> Arbitrary<'a> for CallSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        weighted(
            u,
            &[
                (1, |_| Ok(CallSpec::TaskSelf)),
                (1, |_| Ok(CallSpec::HostSelf)),
                (2, |u| {
                    Ok(CallSpec::HostPageSize {
                        host: u.arbitrary()?,
                        size: u.arbitrary()?,
                    })
                }),
                (14, |u| {
                    Ok(CallSpec::Allocate {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr_ptr: u.arbitrary()?,
                        hint: u.arbitrary()?,
                        size: u.arbitrary()?,
                        flags: u.arbitrary()?,
                    })
                }),
                (7, |u| {
                    Ok(CallSpec::Deallocate {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                    })
                }),
                (12, |u| {
                    Ok(CallSpec::Protect {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        set_max: u.arbitrary()?,
                        prot: u.arbitrary()?,
                    })
                }),
                (14, |u| {
                    Ok(CallSpec::Copy {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        src: u.arbitrary()?,
                        size: u.arbitrary()?,
                        dst: u.arbitrary()?,
                    })
                }),
                (10, |u| {
                    Ok(CallSpec::Read {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        data_ptr: u.arbitrary()?,
                        count_ptr: u.arbitrary()?,
                    })
                }),
                (10, |u| {
                    Ok(CallSpec::ReadOverwrite {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        data: u.arbitrary()?,
                        outsize_ptr: u.arbitrary()?,
                    })
                }),
                (12, |u| {
                    Ok(CallSpec::Write {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        data: u.arbitrary()?,
                        count: u.arbitrary()?,
                    })
                }),
                (10, |u| {
                    Ok(CallSpec::Region {
                        mach: u.arbitrary()?,
                        word: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr_ptr: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size_ptr: u.arbitrary()?,
                        flavor: u.arbitrary()?,
                        info_ptr: u.arbitrary()?,
                        count_ptr: u.arbitrary()?,
                        count: u.arbitrary()?,
                        object_name_ptr: u.arbitrary()?,
                    })
                }),
                (4, |u| {
                    Ok(CallSpec::BehaviorSet {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        behavior: u.arbitrary()?,
                    })
                }),
                (3, |u| {
                    Ok(CallSpec::Inherit {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        inheritance: u.arbitrary()?,
                    })
                }),
                (8, |u| {
                    Ok(CallSpec::Remap {
                        mach: u.arbitrary()?,
                        target: u.arbitrary()?,
                        addr_ptr: u.arbitrary()?,
                        hint: u.arbitrary()?,
                        size: u.arbitrary()?,
                        mask: u.arbitrary()?,
                        flags: u.arbitrary()?,
                        source: u.arbitrary()?,
                        src_addr: u.arbitrary()?,
                        copy: u.arbitrary()?,
                        cur_ptr: u.arbitrary()?,
                        max_ptr: u.arbitrary()?,
                        inheritance: u.arbitrary()?,
                    })
                }),
                (4, |u| {
                    Ok(CallSpec::RegionRecurse {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr_ptr: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size_ptr: u.arbitrary()?,
                        depth_ptr: u.arbitrary()?,
                        info_ptr: u.arbitrary()?,
                        count_ptr: u.arbitrary()?,
                        count: u.arbitrary()?,
                    })
                }),
                (5, |u| {
                    Ok(CallSpec::MakeEntry {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        size_ptr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        offset: u.arbitrary()?,
                        permission: u.arbitrary()?,
                        handle_ptr: u.arbitrary()?,
                        parent: u.arbitrary()?,
                    })
                }),
                (6, |u| {
                    Ok(CallSpec::Map {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr_ptr: u.arbitrary()?,
                        hint: u.arbitrary()?,
                        size: u.arbitrary()?,
                        mask: u.arbitrary()?,
                        flags: u.arbitrary()?,
                        object: u.arbitrary()?,
                        offset: u.arbitrary()?,
                        copy: u.arbitrary()?,
                        cur: u.arbitrary()?,
                        max: u.arbitrary()?,
                        inheritance: u.arbitrary()?,
                    })
                }),
                (2, |u| {
                    Ok(CallSpec::PortDeallocate {
                        task: u.arbitrary()?,
                        name: u.arbitrary()?,
                    })
                }),
                (3, |u| {
                    Ok(CallSpec::Msync {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        flags: u.arbitrary()?,
                    })
                }),
                (6, |u| {
                    Ok(CallSpec::PurgableControl {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        in_object: if u.ratio(3, 4)? {
                            Some(u.arbitrary()?)
                        } else {
                            None
                        },
                        addr: u.arbitrary()?,
                        control: u.arbitrary()?,
                        state_ptr: u.arbitrary()?,
                        state: u.arbitrary()?,
                    })
                }),
                (2, |u| {
                    Ok(CallSpec::PageQuery {
                        mach: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        disposition_ptr: u.arbitrary()?,
                        ref_count_ptr: u.arbitrary()?,
                    })
                }),
                (2, |u| {
                    Ok(CallSpec::PageInfo {
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        flavor: u.arbitrary()?,
                        info_ptr: u.arbitrary()?,
                        count_ptr: u.arbitrary()?,
                        count: u.arbitrary()?,
                    })
                }),
                (2, |u| {
                    Ok(CallSpec::PageRangeQuery {
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        dispositions: u.arbitrary()?,
                        count_ptr: u.arbitrary()?,
                        count: u.arbitrary()?,
                    })
                }),
                (2, |u| {
                    Ok(CallSpec::TaskInfo {
                        task: u.arbitrary()?,
                        flavor: u.arbitrary()?,
                        info_ptr: u.arbitrary()?,
                        count_ptr: u.arbitrary()?,
                        count: u.arbitrary()?,
                    })
                }),
                (2, |u| {
                    Ok(CallSpec::HostStatistics64 {
                        // Mostly the host port: any other name is refused.
                        host: if u.ratio(3, 4)? {
                            PortSpec::Host
                        } else {
                            u.arbitrary()?
                        },
                        flavor: u.arbitrary()?,
                        info_ptr: u.arbitrary()?,
                        count_ptr: u.arbitrary()?,
                        count: u.arbitrary()?,
                    })
                }),
                (1, |u| {
                    Ok(CallSpec::Wire {
                        mach: u.arbitrary()?,
                        host: u.arbitrary()?,
                        task: u.arbitrary()?,
                        addr: u.arbitrary()?,
                        size: u.arbitrary()?,
                        prot: u.arbitrary()?,
                    })
                }),
            ],
        )
    }
}

/// One symbolic step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepSpec {
    /// Guest `caller % tasks` makes a call.
    Call {
        /// The calling guest (modulo the number of tasks).
        caller: u8,
        /// The call.
        call: CallSpec,
    },
    /// The guest's own `memory.grow`: mostly 0 to 3 wasm pages, sometimes far more.
    Grow {
        /// The growing guest (modulo the number of tasks).
        task: u8,
        /// The amount, see [`StepSpec::grow_delta`].
        delta: u8,
    },
    /// The guest's own stores of up to 16 bytes.
    Poke {
        /// The storing guest (modulo the number of tasks).
        task: u8,
        /// Where.
        addr: Num,
        /// What.
        bytes: Vec<u8>,
    },
    /// The embedder inserts a send right.
    Right {
        /// Into this task's namespace (modulo the number of tasks).
        from: u8,
        /// To this task (modulo the number of tasks).
        to: u8,
    },
}

impl StepSpec {
    /// The wasm pages a [`StepSpec::Grow`] asks for.
    pub fn grow_delta(delta: u8) -> u64 {
        match delta {
            0..=239 => u64::from(delta % 4),
            240..=247 => 16 + u64::from(delta - 240),
            248..=251 => 1 << 16,
            252..=253 => 1 << 32,
            _ => u64::MAX,
        }
    }
}

impl<'a> Arbitrary<'a> for StepSpec {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        // Calls most of the time.
        Ok(match u.int_in_range(0u8..=99)? {
            0..=83 => StepSpec::Call {
                caller: u.arbitrary()?,
                call: u.arbitrary()?,
            },
            84..=87 => StepSpec::Grow {
                task: u.arbitrary()?,
                delta: u.arbitrary()?,
            },
            88..=94 => {
                let task = u.arbitrary()?;
                let addr = u.arbitrary()?;
                let n = u.int_in_range(1usize..=16)?.min(u.len()).max(1);
                let bytes = u.bytes(n)?.to_vec();
                StepSpec::Poke { task, addr, bytes }
            }
            _ => StepSpec::Right {
                from: u.arbitrary()?,
                to: u.arbitrary()?,
            },
        })
    }
}

/// Limits on the [`Setup`] that [`Scenario::generate`] draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraints {
    /// The page size, or either of 4096 and 16384.
    pub page_size: Option<u64>,
    /// Every task's memory width, or either.
    pub width: Option<Width>,
    /// Most tasks (at least 1).
    pub max_tasks: usize,
    /// Most steps.
    pub max_steps: usize,
    /// Backed memories ([`crate::share::backing`]) or Wasmtime's, or either.
    pub backed: Option<bool>,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            page_size: None,
            width: None,
            max_tasks: 3,
            max_steps: 1000,
            backed: None,
        }
    }
}

/// A configuration and a symbolic call sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The tasks and kernel settings.
    pub setup: Setup,
    /// The steps, resolved one by one as they run.
    pub steps: Vec<StepSpec>,
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Scenario::generate(u, &Constraints::default())
    }
}

/// Memories stay small (at most 16 wasm pages, 1 MiB): every run compares them whole at its
/// end, and [`locate`] after every step.
const MAX_WASM_PAGES: u64 = 16;

impl Scenario {
    /// Draws a scenario within `c`: 1 to `c.max_tasks` tasks of 0 to 4 wasm pages, maxima
    /// up to 16 pages or none (then a `memory_limit` or `memory64_map_limit` keeps the map
    /// small), then steps until the data runs out or `c.max_steps`.
    ///
    /// # Errors
    ///
    /// As [`Arbitrary::arbitrary`], for the setup (running out of data while drawing steps
    /// is not an error: fewer steps).
    pub fn generate(u: &mut Unstructured<'_>, c: &Constraints) -> Result<Scenario> {
        let page_size = match c.page_size {
            Some(p) => p,
            None => *u.choose(&[4096, 16384])?,
        };
        let n = u.int_in_range(1..=c.max_tasks.max(1))?;
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let width = match c.width {
                Some(w) => w,
                None => *u.choose(&[Width::W32, Width::W64])?,
            };
            let initial = if u.ratio(1, 10)? {
                0
            } else {
                u.int_in_range(1..=4)?
            };
            let maximum = if u.ratio(3, 4)? {
                Some(u.int_in_range(initial..=MAX_WASM_PAGES)?)
            } else {
                None
            };
            tasks.push(TaskSpec {
                width,
                initial,
                maximum,
            });
        }
        let floor = tasks.iter().map(|t| t.initial).max().unwrap_or(0);
        let memory64_map_limit = u.int_in_range(floor..=MAX_WASM_PAGES)? * WASM_PAGE;
        let needs_limit = tasks
            .iter()
            .any(|t| t.width == Width::W32 && t.maximum.is_none());
        let memory_limit = if needs_limit || u.ratio(1, 4)? {
            let pages = u.int_in_range(floor..=MAX_WASM_PAGES)?;
            Some(pages * WASM_PAGE + u.int_in_range(0..=WASM_PAGE - 1)?)
        } else {
            None
        };
        // Mostly as deployed: enforced where the platform can.
        let enforce = KernelConfig::default().enforce && u.ratio(4, 5)?;
        // Mostly as deployed: copies served in wasm where the windows allow.
        let copy_in_wasm = u.ratio(4, 5)?;
        let backed = match c.backed {
            Some(b) => b,
            None => u.ratio(1, 5)?,
        };
        let setup = Setup {
            page_size,
            memory64_map_limit,
            memory_limit,
            enforce,
            copy_in_wasm,
            backed,
            tasks,
        };
        let mut steps = Vec::new();
        while steps.len() < c.max_steps && !u.is_empty() {
            // A step cut short by the end of the data is dropped.
            match u.arbitrary() {
                Ok(step) => steps.push(step),
                Err(_) => break,
            }
        }
        Ok(Scenario { setup, steps })
    }

    /// Runs the scenario: each step is resolved against the state and run on both sides.
    /// It runs on a differential kept from an earlier run of the same setup when there is
    /// one ([`Differential::reused`]), which is put back and kept again afterwards
    /// ([`Differential::recycle`]). A difference found on a reused one is looked for again
    /// on a new one: what the new one finds is reported, and if it finds nothing, the reset
    /// is at fault and that is reported.
    ///
    /// # Errors
    ///
    /// The first divergence, with the concrete steps that led to it; or the reset's.
    ///
    /// # Panics
    ///
    /// When the harness cannot be set up.
    pub fn run(&self) -> std::result::Result<(), Divergence> {
        let (mut d, reused) = Differential::reused(&self.setup).expect("the harness sets up");
        match self.drive_on(&mut d) {
            Ok(()) => d.recycle().map(|_| ()),
            // Only a difference that a new harness shows too is reported as the real side's
            // or the model's: one that only the reused harness shows is the reset's.
            Err(e) if reused => match self.drive().1 {
                Err(fresh) => Err(fresh),
                Ok(()) => Err(Divergence {
                    what: format!(
                        "a harness reused from an earlier run differs where a new one does not \
                         (the reset left state behind): {}",
                        e.what
                    ),
                    ..e
                }),
            },
            Err(e) => Err(e),
        }
    }

    /// The concrete steps the scenario runs and the outcome of each call (resolved on a
    /// fresh run; stops at the step where a divergence was found, included, which may come
    /// after the step that [`Scenario::run`] reports).
    ///
    /// # Panics
    ///
    /// When the harness cannot be set up.
    pub fn ops(&self) -> Vec<(Op, Option<Outcome>)> {
        let d = self.drive().0;
        d.ops()
            .iter()
            .cloned()
            .zip(d.outcomes().iter().cloned())
            .collect()
    }

    /// Resolves and runs the steps until a divergence is found. Each step is compared as
    /// [`Differential::step`] does, and every byte at the end; a difference found is located
    /// with [`locate`]: the first step after which anything differs.
    fn drive(&self) -> (Differential, std::result::Result<(), Divergence>) {
        let mut d = Differential::new(&self.setup).expect("the harness sets up");
        let found = self.drive_on(&mut d);
        (d, found)
    }

    /// [`Scenario::drive`] on `d`, a differential of the setup in its starting state.
    fn drive_on(&self, d: &mut Differential) -> std::result::Result<(), Divergence> {
        let located = |e: Divergence| locate(&self.setup, &e.ops).err().unwrap_or(e);
        for step in &self.steps {
            for op in resolve(d, step) {
                d.step(&op).map_err(located)?;
            }
        }
        d.check_state().map_err(located)
    }
}

/// The context of task `t` of the run.
fn ctx(d: &Differential, t: usize) -> Ctx<'_> {
    Ctx {
        p: d.setup().page_size,
        mem: d.model().memory(t).len() as u64,
        map: d.setup().map_limit(t),
        model: d.model(),
        task: t,
        pages: std::cell::OnceCell::new(),
    }
}

/// A `nbytes`-byte little-endian store of `value` at `addr` in `task`.
fn poke(task: usize, addr: u64, value: u64, nbytes: u64) -> Op {
    Op::Poke {
        task,
        addr,
        bytes: value.to_le_bytes()[..nbytes as usize].to_vec(),
    }
}

/// An inheritance drawn from `v`: a valid one (0–2) most of the time,
/// `VM_INHERIT_DONATE_COPY` (3) or any value otherwise.
fn inheritance_value(v: u8) -> u32 {
    match v {
        0..=239 => u32::from(v % 3),
        240..=251 => 3,
        v => u32::from(v) << 24 | u32::from(v),
    }
}

/// A `mask` argument for pages of `page` bytes: 0 most, else a power of two less one (an
/// alignment) or any value.
fn mask_value(mask: u8, page: u64) -> u64 {
    match mask {
        0..=191 => 0,
        192..=239 => (page << (mask % 4)) - 1,
        m => u64::from(m) * 0x1001,
    }
}

/// Stores `hint`, truncated to the form's width `aw`, at `ptr` in `caller` before the call
/// that reads it as an in-out address; returns `ptr`.
fn hint_at(ops: &mut Vec<Op>, caller: usize, ptr: u64, hint: u64, aw: Width) -> u64 {
    ops.push(poke(caller, ptr, aw.truncate(hint), aw.bytes()));
    ptr
}

/// The concrete steps of `step` in the current state of `d`.
fn resolve(d: &Differential, step: &StepSpec) -> Vec<Op> {
    let n = d.setup().tasks.len();
    match *step {
        StepSpec::Grow { task, delta } => vec![Op::Grow {
            task: task as usize % n,
            delta: StepSpec::grow_delta(delta),
        }],
        StepSpec::Poke {
            task,
            addr,
            ref bytes,
        } => {
            let t = task as usize % n;
            vec![Op::Poke {
                task: t,
                addr: addr.resolve(&ctx(d, t)),
                bytes: bytes.clone(),
            }]
        }
        StepSpec::Right { from, to } => vec![Op::Right {
            from: from as usize % n,
            to: to as usize % n,
        }],
        StepSpec::Call { caller, ref call } => {
            let caller = caller as usize % n;
            resolve_call(d, caller, call)
        }
    }
}

fn resolve_call(d: &Differential, caller: usize, spec: &CallSpec) -> Vec<Op> {
    let gw = d.model().width(caller);
    let cc = ctx(d, caller);
    // A pointer of the caller, truncated to its width.
    let ptr = |p: PtrSpec| gw.truncate(p.resolve(&cc));
    let form = |mach: bool| if mach { Form::MachVm } else { Form::Vm };
    // The task a port names (for resolving numbers about it): the caller when none.
    let rights = &d.names(caller)[..];
    let target = |port: PortSpec| {
        let name = port.name(rights);
        (name, d.port_target(caller, name).unwrap_or(caller))
    };
    let mut ops = Vec::new();
    let call = match *spec {
        CallSpec::TaskSelf => Call::TaskSelf,
        CallSpec::HostSelf => Call::HostSelf,
        CallSpec::HostPageSize { host, size } => Call::HostPageSize {
            host: host.name(rights),
            size_ptr: ptr(size),
        },
        CallSpec::Allocate {
            mach,
            task,
            addr_ptr,
            hint,
            size,
            flags,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let addr_ptr = hint_at(&mut ops, caller, ptr(addr_ptr), hint.resolve(&tc), aw);
            Call::Allocate {
                form: form(mach),
                task: name,
                addr_ptr,
                size: aw.truncate(size.resolve(&tc)),
                flags: flags.bits(),
            }
        }
        CallSpec::Deallocate {
            mach,
            task,
            addr,
            size,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::Deallocate {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                size: aw.truncate(size.resolve(&tc)),
            }
        }
        CallSpec::Protect {
            mach,
            task,
            addr,
            size,
            set_max,
            prot,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::Protect {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                size: aw.truncate(size.resolve(&tc)),
                set_max: set_max.value(),
                prot: prot.bits(),
            }
        }
        CallSpec::Copy {
            mach,
            task,
            src,
            size,
            dst,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let src = aw.truncate(src.resolve(&tc));
            Call::Copy {
                form: form(mach),
                task: name,
                src,
                size: aw.truncate(size.resolve(&tc)),
                dst: aw.truncate(dst.resolve(src, &tc)),
            }
        }
        CallSpec::Read {
            mach,
            task,
            addr,
            size,
            data_ptr,
            count_ptr,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::Read {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                size: aw.truncate(size.resolve(&tc)),
                data_ptr: ptr(data_ptr),
                count_ptr: ptr(count_ptr),
            }
        }
        CallSpec::ReadOverwrite {
            mach,
            task,
            addr,
            size,
            data,
            outsize_ptr,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let addr = aw.truncate(addr.resolve(&tc));
            Call::ReadOverwrite {
                form: form(mach),
                task: name,
                addr,
                size: aw.truncate(size.resolve(&tc)),
                data: aw.truncate(data.resolve(addr, &cc)),
                outsize_ptr: ptr(outsize_ptr),
            }
        }
        CallSpec::Write {
            mach,
            task,
            addr,
            data,
            count,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let addr = aw.truncate(addr.resolve(&tc));
            Call::Write {
                form: form(mach),
                task: name,
                addr,
                // A vm_offset_t: the caller's word.
                data: gw.truncate(data.resolve(&cc)),
                count: count.resolve(&tc) as u32,
            }
        }
        CallSpec::Region {
            mach,
            word,
            task,
            addr_ptr,
            addr,
            size_ptr,
            flavor,
            info_ptr,
            count_ptr,
            count,
            object_name_ptr,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let (addr_ptr, count_ptr) = (ptr(addr_ptr), ptr(count_ptr));
            ops.push(poke(
                caller,
                addr_ptr,
                aw.truncate(addr.resolve(&tc)),
                aw.bytes(),
            ));
            ops.push(poke(caller, count_ptr, count.value().into(), 4));
            let (size_ptr, info_ptr, object_name_ptr) =
                (ptr(size_ptr), ptr(info_ptr), ptr(object_name_ptr));
            let flavor = flavor.value();
            if word && !mach {
                Call::VmRegion {
                    task: name,
                    addr_ptr,
                    size_ptr,
                    flavor,
                    info_ptr,
                    count_ptr,
                    object_name_ptr,
                }
            } else {
                Call::Region {
                    form: form(mach),
                    task: name,
                    addr_ptr,
                    size_ptr,
                    flavor,
                    info_ptr,
                    count_ptr,
                    object_name_ptr,
                }
            }
        }
        CallSpec::BehaviorSet {
            mach,
            task,
            addr,
            size,
            behavior,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::BehaviorSet {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                size: aw.truncate(size.resolve(&tc)),
                behavior: behavior.value(),
            }
        }
        CallSpec::Inherit {
            mach,
            task,
            addr,
            size,
            inheritance,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::Inherit {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                size: aw.truncate(size.resolve(&tc)),
                inheritance: inheritance_value(inheritance),
            }
        }
        CallSpec::Remap {
            mach,
            target: to,
            addr_ptr,
            hint,
            size,
            mask,
            flags,
            source,
            src_addr,
            copy,
            cur_ptr,
            max_ptr,
            inheritance,
        } => {
            let (name, t) = target(to);
            let (src_name, st) = target(source);
            let (tc, sc, aw) = (ctx(d, t), ctx(d, st), form(mach).address_width(gw));
            let addr_ptr = hint_at(&mut ops, caller, ptr(addr_ptr), hint.resolve(&tc), aw);
            // FIXED, ANYWHERE, FIXED|OVERWRITE; any VM_FLAGS_USER_REMAP bits; any bits.
            let flags = match flags % 16 {
                0..=4 => 0,
                5..=9 => 1,
                10..=12 => 0x4000,
                13 | 14 => u32::from(flags >> 4) & (0x1 | 0x8 | 0x20 | 0x40 | 0x4000),
                _ => u32::from(flags) << 8 | u32::from(flags >> 8),
            };
            let page = d.model().page_size(t);
            let mask = mask_value(mask, page);
            Call::Remap {
                form: form(mach),
                target_task: name,
                addr_ptr,
                size: aw.truncate(size.resolve(&sc)),
                mask: aw.truncate(mask),
                flags,
                src_task: src_name,
                src_addr: aw.truncate(src_addr.resolve(&sc)),
                copy: match copy {
                    0..=169 => 0,
                    170..=249 => 1,
                    c => u32::from(c),
                },
                cur_ptr: ptr(cur_ptr),
                max_ptr: ptr(max_ptr),
                inheritance: inheritance_value(inheritance),
            }
        }
        CallSpec::RegionRecurse {
            mach,
            task,
            addr_ptr,
            addr,
            size_ptr,
            depth_ptr,
            info_ptr,
            count_ptr,
            count,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let addr_ptr = hint_at(&mut ops, caller, ptr(addr_ptr), addr.resolve(&tc), aw);
            let count_ptr = ptr(count_ptr);
            let count = match count % 8 {
                0 | 1 => 19,
                2 => 17,
                3 => 18,
                4 => 16,
                5 => 12 + u32::from(count >> 3) % 4,
                6 => u32::from(count >> 3) % 12,
                _ => u32::from(count) << 24 | u32::from(count),
            };
            ops.push(poke(caller, count_ptr, count.into(), 4));
            Call::RegionRecurse {
                form: form(mach),
                task: name,
                addr_ptr,
                size_ptr: ptr(size_ptr),
                depth_ptr: ptr(depth_ptr),
                info_ptr: ptr(info_ptr),
                count_ptr,
            }
        }
        CallSpec::MakeEntry {
            mach,
            task,
            size_ptr,
            size,
            offset,
            permission,
            handle_ptr,
            parent,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let size_ptr = hint_at(&mut ops, caller, ptr(size_ptr), size.resolve(&tc), aw);
            let flags = match (permission >> 3) % 16 {
                0..=2 => 0,
                3..=5 => MAP_MEM_VM_SHARE,
                6..=8 => MAP_MEM_NAMED_CREATE,
                9 | 10 => MAP_MEM_VM_COPY,
                11 => MAP_MEM_NAMED_REUSE,
                12 => MAP_MEM_ONLY | (u32::from(permission >> 7) << 24),
                13 => u32::from(permission >> 7) << 13 & MAP_MEM_FLAGS_USER,
                14 => 0x40 | MAP_MEM_VM_SHARE,
                _ => u32::from(permission) << 12,
            };
            Call::MakeEntry {
                form: form(mach),
                task: name,
                size_ptr,
                offset: aw.truncate(offset.resolve(&tc)),
                permission: u32::from(permission & 7) | flags,
                handle_ptr: ptr(handle_ptr),
                parent: parent.name(rights),
            }
        }
        CallSpec::Map {
            mach,
            task,
            addr_ptr,
            hint,
            size,
            mask,
            flags,
            object,
            offset,
            copy,
            cur,
            max,
            inheritance,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let addr_ptr = hint_at(&mut ops, caller, ptr(addr_ptr), hint.resolve(&tc), aw);
            // ANYWHERE most, FIXED, FIXED|OVERWRITE; vm_map's own bits; any bits.
            let flags = match flags % 16 {
                0..=6 => 1,
                7..=9 => 0,
                10..=11 => 0x4000,
                12..=14 => u32::from(flags >> 4) & (0x1 | 0x2 | 0x4000 | 0x10_0000 | 0x80_0000),
                _ => u32::from(flags) << 8 | u32::from(flags >> 8),
            };
            let page = d.model().page_size(t);
            let mask = mask_value(mask, page);
            let prot = |v: u8| match v {
                0..=239 => i32::from(v % 8),
                240..=247 => i32::from(v % 8) | 0x40,
                v => i32::from(v) << 3,
            };
            Call::Map {
                form: form(mach),
                task: name,
                addr_ptr,
                size: aw.truncate(size.resolve(&tc)),
                mask: aw.truncate(mask),
                flags,
                object: if object == PortSpec::TaskSelf {
                    MACH_PORT_NULL
                } else {
                    object.name(rights)
                },
                offset: match offset {
                    0..=159 => 0,
                    160..=239 => page * u64::from(offset % 4),
                    o => u64::from(o) * 0x101,
                },
                copy: u32::from(copy > 200),
                cur: VmProt(prot(cur)),
                max: VmProt(prot(max)),
                inheritance: inheritance_value(inheritance),
            }
        }
        CallSpec::PortDeallocate { task, name: port } => Call::PortDeallocate {
            task: task.name(rights),
            name: port.name(rights),
        },
        CallSpec::Msync {
            mach,
            task,
            addr,
            size,
            flags,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::Msync {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                size: aw.truncate(size.resolve(&tc)),
                flags: flags.value(),
            }
        }
        CallSpec::Wire {
            mach,
            host,
            task,
            addr,
            size,
            prot,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::Wire {
                form: form(mach),
                host: host.name(rights),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                size: aw.truncate(size.resolve(&tc)),
                prot: prot.bits(),
            }
        }
        CallSpec::PurgableControl {
            mach,
            task,
            in_object,
            addr,
            control,
            state_ptr,
            state,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            let model = d.model();
            let p = model.page_size(t);
            let in_objects: Vec<u64> = (0..model.memory(t).len() as u64 / p)
                .filter(|&i| model.page(t, i).is_some_and(|a| a.object != 0))
                .collect();
            let addr = match in_object {
                Some(k) if !in_objects.is_empty() => {
                    in_objects[usize::from(k) % in_objects.len()] * p + u64::from(k) % p
                }
                _ => addr.resolve(&tc),
            };
            let state_ptr = ptr(state_ptr);
            ops.push(poke(caller, state_ptr, state.value().into(), 4));
            // SET_STATE and GET_STATE most, then PURGE_ALL, FROM_KERNEL, any.
            let control = match control % 16 {
                0..=6 => 0,
                7..=11 => 1,
                12 | 13 => 2,
                14 => 3,
                _ => u32::from(control),
            };
            Call::PurgableControl {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr),
                control,
                state_ptr,
            }
        }
        CallSpec::PageQuery {
            mach,
            task,
            addr,
            disposition_ptr,
            ref_count_ptr,
        } => {
            let (name, t) = target(task);
            let (tc, aw) = (ctx(d, t), form(mach).address_width(gw));
            Call::PageQuery {
                form: form(mach),
                task: name,
                addr: aw.truncate(addr.resolve(&tc)),
                disposition_ptr: ptr(disposition_ptr),
                ref_count_ptr: ptr(ref_count_ptr),
            }
        }
        CallSpec::PageInfo {
            task,
            addr,
            flavor,
            info_ptr,
            count_ptr,
            count,
        } => {
            let (name, t) = target(task);
            let count_ptr = ptr(count_ptr);
            ops.push(poke(
                caller,
                count_ptr,
                count.value(&PAGE_INFO_COUNTS).into(),
                4,
            ));
            Call::PageInfo {
                task: name,
                addr: addr.resolve(&ctx(d, t)),
                flavor: flavor.value(&PAGE_INFO_FLAVORS),
                info_ptr: ptr(info_ptr),
                count_ptr,
            }
        }
        CallSpec::PageRangeQuery {
            task,
            addr,
            size,
            dispositions,
            count_ptr,
            count,
        } => {
            let (name, t) = target(task);
            let tc = ctx(d, t);
            let count_ptr = ptr(count_ptr);
            ops.push(poke(caller, count_ptr, count.value(), 8));
            Call::PageRangeQuery {
                task: name,
                addr: addr.resolve(&tc),
                size: size.resolve(&tc),
                dispositions: dispositions.resolve(&cc),
                count_ptr,
            }
        }
        CallSpec::TaskInfo {
            task,
            flavor,
            info_ptr,
            count_ptr,
            count,
        } => {
            let (name, _) = target(task);
            let count_ptr = ptr(count_ptr);
            ops.push(poke(caller, count_ptr, count.value(&TASK_COUNTS).into(), 4));
            Call::TaskInfo {
                task: name,
                flavor: flavor.value(&TASK_FLAVORS),
                info_ptr: ptr(info_ptr),
                count_ptr,
            }
        }
        CallSpec::HostStatistics64 {
            host,
            flavor,
            info_ptr,
            count_ptr,
            count,
        } => {
            let count_ptr = ptr(count_ptr);
            ops.push(poke(caller, count_ptr, count.value(&HOST_COUNTS).into(), 4));
            Call::HostStatistics64 {
                host: host.name(rights),
                flavor: flavor.value(&HOST_FLAVORS),
                info_ptr: ptr(info_ptr),
                count_ptr,
            }
        }
    };
    ops.push(Op::Call { caller, call });
    ops
}
