//! Call traces: one [`tracing`] event per Mach call a guest makes, like `dtruss`.
//!
//! Every call that goes through a task's `"mach"` imports is reported, when a subscriber is
//! interested, as one event at level `DEBUG` with target [`CALL_TARGET`] (`"machvm::call"`).
//! Its message is the call as a person reads it:
//!
//! ```text
//! vm_allocate(task=0x103, *addr=0x0 -> 0x30000, size=0x2000, ANYWHERE) = KERN_SUCCESS
//! vm_protect(task=0x103, addr=0x32000, size=0x1000, set_max=true, prot=r--) = KERN_SUCCESS
//! vm_copy(task=0x103, src=0x30000, size=0xffd, dst=0x32000) = KERN_PROTECTION_FAILURE
//! host_page_size(host=0x203, *size -> 0x1000) = KERN_SUCCESS
//! ```
//!
//! Addresses, sizes and port names are in hex, protections `r-x` style, flags and flavors by
//! name, the result by its `kern_return_t` name. An in-out parameter shows the value read and,
//! when the call stored one, the value stored (`*addr=0x0 -> 0x30000`); an out-parameter shows
//! the value stored (`*size -> 0x1000`), or only its name when the call failed and stored
//! nothing. A call that traps on a parameter ends in `= trap: ...` with the reason.
//!
//! The event also carries structured fields: `call` (the import name), `caller` (the index
//! of the calling task, [`TaskId::index`]), `result` (the returned `i32`, absent on a trap) and
//! `trap` (the fault's message, absent otherwise).
//!
//! Deallocating a range that holds unallocated pages, or one outside the map, raises XNU's
//! guard exception; machvm reports it as a `WARN` event with target [`GUARD_TARGET`]
//! (`"machvm::guard"`) and still answers `KERN_SUCCESS`, as spec §4 says.
//!
//! Nothing is collected when no subscriber is interested in [`CALL_TARGET`] at `DEBUG`: the
//! import then costs one check of the subscriber's level filter.
//!
//! ```
//! // Print every call (and guard exception) of a guest on stderr.
//! tracing_subscriber::fmt()
//!     .with_max_level(tracing::Level::DEBUG)
//!     .with_writer(std::io::stderr)
//!     .try_init()
//!     .ok();
//! ```

use std::fmt;

use crate::abi::{Call, Outcome, VmFlags, VM_REGION_EXTENDED_INFO};
use crate::abi::{
    KernReturn, VmProt, HOST_VM_INFO64, MACH_TASK_BASIC_INFO, TASK_VM_INFO, TASK_VM_INFO_PURGEABLE,
    VM_PAGE_INFO_BASIC, VM_PROT_ALL, VM_PROT_COPY, VM_REGION_BASIC_INFO, VM_REGION_BASIC_INFO_64,
    VM_SYNC_ASYNCHRONOUS, VM_SYNC_CONTIGUOUS, VM_SYNC_DEACTIVATE, VM_SYNC_INVALIDATE,
    VM_SYNC_KILLPAGES, VM_SYNC_REUSABLEPAGES, VM_SYNC_SYNCHRONOUS,
};
use crate::vm::TaskId;

/// The target of the per-call events.
pub const CALL_TARGET: &str = "machvm::call";
/// The target of the guard-exception events (deallocation of holes or out-of-map ranges).
pub const GUARD_TARGET: &str = "machvm::guard";

/// The most parameter values one call reads and stores (`vm_region`: 2 read, 4 stored).
const LOG_CAPACITY: usize = 8;

/// The scalar parameter values a call read and stored, in order, as
/// [`Env::log_param`](crate::vm::Env::log_param) reports them. Fixed-size: recording never
/// allocates.
#[derive(Clone, Copy, Debug)]
pub struct ParamLog {
    entries: [(&'static str, bool, u64); LOG_CAPACITY],
    len: usize,
}

impl Default for ParamLog {
    fn default() -> Self {
        ParamLog::new()
    }
}

impl ParamLog {
    /// An empty log.
    pub const fn new() -> ParamLog {
        ParamLog {
            entries: [("", false, 0); LOG_CAPACITY],
            len: 0,
        }
    }

    /// Records that the call read (`write == false`) or stored (`write == true`) `value` for
    /// parameter `param`. Entries past the capacity (8) are dropped.
    pub fn push(&mut self, param: &'static str, write: bool, value: u64) {
        if let Some(e) = self.entries.get_mut(self.len) {
            *e = (param, write, value);
            self.len += 1;
        }
    }

    /// The entries, in the order the call made them: `(param, write, value)`.
    pub fn entries(&self) -> &[(&'static str, bool, u64)] {
        &self.entries[..self.len]
    }

    /// The first value read for `param`.
    pub fn read(&self, param: &str) -> Option<u64> {
        self.find(param, false)
    }

    /// The last value stored for `param`.
    pub fn stored(&self, param: &str) -> Option<u64> {
        self.entries()
            .iter()
            .rev()
            .find(|e| e.0 == param && e.1)
            .map(|e| e.2)
    }

    fn find(&self, param: &str, write: bool) -> Option<u64> {
        self.entries()
            .iter()
            .find(|e| e.0 == param && e.1 == write)
            .map(|e| e.2)
    }
}

/// A call, its parameter values and its outcome, displayed as one trace line
/// (`vm_copy(task=0x103, src=0x30000, size=0x10, dst=0x32000) = KERN_SUCCESS`).
#[derive(Clone, Copy, Debug)]
pub struct CallLine<'a> {
    /// The call with the arguments the guest passed.
    pub call: &'a Call,
    /// The values of its scalar in/out parameters.
    pub params: &'a ParamLog,
    /// What the call gave the guest.
    pub outcome: &'a Outcome,
}

/// How a parameter is shown.
enum Arg<'a> {
    /// `name=0x..`
    Hex(&'a str, u64),
    /// `name=text`
    Text(&'a str, &'a dyn fmt::Display),
    /// A bare value (`ANYWHERE`).
    Bare(&'a dyn fmt::Display),
    /// An in-out pointer parameter: `*name=read -> stored`. `log` is the name in the log.
    InOut(&'a str, &'static str, bool),
    /// An out pointer parameter: `*name -> stored`.
    Out(&'a str, &'static str, bool),
}

struct Prot(VmProt);

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        write!(f, "{p}")?;
        if p.intersects(VM_PROT_COPY) {
            f.write_str("|COPY")?;
        }
        let rest = p.without(VM_PROT_ALL | VM_PROT_COPY);
        if !rest.is_none() {
            write!(f, "|{:#x}", rest.0)?;
        }
        Ok(())
    }
}

/// A flavor, by the names of the call's flavors.
struct Flavor(&'static [(i32, &'static str)], u32);

const REGION_FLAVORS: &[(i32, &str)] = &[
    (VM_REGION_BASIC_INFO_64, "VM_REGION_BASIC_INFO_64"),
    (VM_REGION_BASIC_INFO, "VM_REGION_BASIC_INFO"),
    (VM_REGION_EXTENDED_INFO, "VM_REGION_EXTENDED_INFO"),
];
const PAGE_INFO_FLAVORS: &[(i32, &str)] = &[(VM_PAGE_INFO_BASIC, "VM_PAGE_INFO_BASIC")];
const TASK_FLAVORS: &[(i32, &str)] = &[
    (MACH_TASK_BASIC_INFO, "MACH_TASK_BASIC_INFO"),
    (TASK_VM_INFO, "TASK_VM_INFO"),
    (TASK_VM_INFO_PURGEABLE, "TASK_VM_INFO_PURGEABLE"),
];
const HOST_FLAVORS: &[(i32, &str)] = &[(HOST_VM_INFO64, "HOST_VM_INFO64")];

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.iter().find(|(v, _)| *v == self.1 as i32) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "{}", self.1 as i32),
        }
    }
}

struct Control(u32);

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("VM_PURGABLE_SET_STATE"),
            1 => f.write_str("VM_PURGABLE_GET_STATE"),
            2 => f.write_str("VM_PURGABLE_PURGE_ALL"),
            3 => f.write_str("VM_PURGABLE_SET_STATE_FROM_KERNEL"),
            other => write!(f, "{}", other as i32),
        }
    }
}

/// A `vm_inherit_t` as XNU names it (`VM_INHERIT_SHARE`), else its number.
struct Inheritance(u32);

impl fmt::Display for Inheritance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match crate::abi::VmInherit(self.0).name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

struct Behavior(u32);

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 12] = [
            "DEFAULT",
            "RANDOM",
            "SEQUENTIAL",
            "RSEQNTL",
            "WILLNEED",
            "DONTNEED",
            "FREE",
            "ZERO_WIRED_PAGES",
            "REUSABLE",
            "REUSE",
            "CAN_REUSE",
            "PAGEOUT",
        ];
        match NAMES.get(self.0 as usize) {
            Some(name) => write!(f, "VM_BEHAVIOR_{name}"),
            None => write!(f, "{}", self.0 as i32),
        }
    }
}

struct SyncFlags(u32);

impl fmt::Display for SyncFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMED: [(u32, &str); 7] = [
            (VM_SYNC_ASYNCHRONOUS, "ASYNCHRONOUS"),
            (VM_SYNC_SYNCHRONOUS, "SYNCHRONOUS"),
            (VM_SYNC_INVALIDATE, "INVALIDATE"),
            (VM_SYNC_KILLPAGES, "KILLPAGES"),
            (VM_SYNC_DEACTIVATE, "DEACTIVATE"),
            (VM_SYNC_CONTIGUOUS, "CONTIGUOUS"),
            (VM_SYNC_REUSABLEPAGES, "REUSABLEPAGES"),
        ];
        if self.0 == 0 {
            return f.write_str("0");
        }
        let mut sep = "";
        for (bit, name) in NAMED {
            if self.0 & bit != 0 {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        let rest = self.0 & !0x7f;
        if rest != 0 {
            write!(f, "{sep}{rest:#x}")?;
        }
        Ok(())
    }
}

/// `vm_remap`'s flags: `FIXED` or `ANYWHERE`, then the other bits of
/// `VM_FLAGS_USER_REMAP` by name, others in hex.
struct RemapFlags(u32);

impl fmt::Display for RemapFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 & 1 != 0 { "ANYWHERE" } else { "FIXED" })?;
        const NAMED: [(u32, &str); 5] = [
            (0x8, "RANDOM_ADDR"),
            (0x20, "RESILIENT_CODESIGN"),
            (0x40, "RESILIENT_MEDIA"),
            (0x4000, "OVERWRITE"),
            (0x10_0000, "RETURN_DATA_ADDR"),
        ];
        let mut rest = self.0 & !1;
        for (bit, name) in NAMED {
            if rest & bit != 0 {
                write!(f, "|{name}")?;
                rest &= !bit;
            }
        }
        if rest != 0 {
            write!(f, "|{rest:#x}")?;
        }
        Ok(())
    }
}

/// `mach_make_memory_entry_64`'s permission: its protection, then its `MAP_MEM_*` flags by
/// name and its cache mode.
struct Permission(u32);

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", VmProt((self.0 & 7) as i32))?;
        use crate::abi::*;
        const NAMED: [(u32, &str); 12] = [
            (0x40, "IS_MASK"),
            (MAP_MEM_LEDGER_TAGGED, "LEDGER_TAGGED"),
            (MAP_MEM_PURGABLE_KERNEL_ONLY, "PURGABLE_KERNEL_ONLY"),
            (MAP_MEM_GRAB_SECLUDED, "GRAB_SECLUDED"),
            (MAP_MEM_ONLY, "ONLY"),
            (MAP_MEM_NAMED_CREATE, "NAMED_CREATE"),
            (MAP_MEM_PURGABLE, "PURGABLE"),
            (MAP_MEM_NAMED_REUSE, "NAMED_REUSE"),
            (MAP_MEM_USE_DATA_ADDR, "USE_DATA_ADDR"),
            (MAP_MEM_VM_COPY, "VM_COPY"),
            (MAP_MEM_VM_SHARE, "VM_SHARE"),
            (MAP_MEM_4K_DATA_ADDR, "4K_DATA_ADDR"),
        ];
        let mut rest = self.0 & 0x00FF_FFF8;
        for (bit, name) in NAMED {
            if rest & bit != 0 {
                write!(f, "|{name}")?;
                rest &= !bit;
            }
        }
        if rest != 0 {
            write!(f, "|{rest:#x}")?;
        }
        if self.0 >> 24 != 0 {
            write!(f, " cache={}", self.0 >> 24)?;
        }
        Ok(())
    }
}

struct Bool(u32);

impl fmt::Display for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 != 0 { "true" } else { "false" })
    }
}

impl CallLine<'_> {
    fn write_arg(&self, f: &mut fmt::Formatter<'_>, arg: &Arg<'_>) -> fmt::Result {
        let log = self.params;
        match *arg {
            Arg::Hex(n, v) => write!(f, "{n}={v:#x}"),
            Arg::Text(n, v) => write!(f, "{n}={v}"),
            Arg::Bare(v) => write!(f, "{v}"),
            Arg::InOut(n, param, hex) => {
                write!(f, "*{n}=")?;
                match log.read(param) {
                    Some(v) if hex => write!(f, "{v:#x}")?,
                    Some(v) => write!(f, "{v}")?,
                    None => f.write_str("?")?,
                }
                match log.stored(param) {
                    Some(v) if hex => write!(f, " -> {v:#x}"),
                    Some(v) => write!(f, " -> {v}"),
                    None => Ok(()),
                }
            }
            Arg::Out(n, param, hex) => {
                write!(f, "*{n}")?;
                match log.stored(param) {
                    Some(v) if hex => write!(f, " -> {v:#x}"),
                    Some(v) => write!(f, " -> {v}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for CallLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Arg::*;
        let call = self.call;
        let flags;
        let prot;
        let flavor;
        let set_max;
        let behavior;
        let inherit;
        let remap_flags;
        let permission;
        let cur;
        let copy_arg;
        let sync;
        let info_args;
        let control;
        let args: &[Arg<'_>] = match *call {
            Call::TaskSelf | Call::HostSelf => &[],
            Call::HostPageSize { host, .. } => {
                &[Hex("host", u64::from(host)), Out("size", "size", true)]
            }
            Call::Allocate {
                task,
                size,
                flags: fl,
                ..
            } => {
                flags = fl;
                &[
                    Hex("task", u64::from(task)),
                    InOut("addr", "address", true),
                    Hex("size", size),
                    Bare(&flags),
                ]
            }
            Call::Deallocate {
                task, addr, size, ..
            } => &[
                Hex("task", u64::from(task)),
                Hex("addr", addr),
                Hex("size", size),
            ],
            Call::Protect {
                task,
                addr,
                size,
                set_max: sm,
                prot: p,
                ..
            } => {
                set_max = Bool(sm);
                prot = Prot(p);
                &[
                    Hex("task", u64::from(task)),
                    Hex("addr", addr),
                    Hex("size", size),
                    Text("set_max", &set_max),
                    Text("prot", &prot),
                ]
            }
            Call::Copy {
                task,
                src,
                size,
                dst,
                ..
            } => &[
                Hex("task", u64::from(task)),
                Hex("src", src),
                Hex("size", size),
                Hex("dst", dst),
            ],
            Call::Read {
                task, addr, size, ..
            } => &[
                Hex("task", u64::from(task)),
                Hex("addr", addr),
                Hex("size", size),
                Out("data", "data", true),
                Out("count", "count", true),
            ],
            Call::ReadOverwrite {
                task,
                addr,
                size,
                data,
                ..
            } => &[
                Hex("task", u64::from(task)),
                Hex("addr", addr),
                Hex("size", size),
                Hex("data", data),
                Out("outsize", "outsize", true),
            ],
            Call::Write {
                task,
                addr,
                data,
                count,
                ..
            } => &[
                Hex("task", u64::from(task)),
                Hex("addr", addr),
                Hex("data", data),
                Hex("count", u64::from(count)),
            ],
            Call::Region {
                task, flavor: fv, ..
            }
            | Call::VmRegion {
                task, flavor: fv, ..
            } => {
                flavor = Flavor(REGION_FLAVORS, fv);
                &[
                    Hex("task", u64::from(task)),
                    InOut("addr", "address", true),
                    Out("size", "size", true),
                    Text("flavor", &flavor),
                    Bare(&"*info"),
                    InOut("count", "count", false),
                    Out("object_name", "object_name", true),
                ]
            }
            Call::BehaviorSet {
                task,
                addr,
                size,
                behavior: b,
                ..
            } => {
                behavior = Behavior(b);
                &[
                    Hex("task", u64::from(task)),
                    Hex("addr", addr),
                    Hex("size", size),
                    Bare(&behavior),
                ]
            }
            Call::Inherit {
                task,
                addr,
                size,
                inheritance,
                ..
            } => {
                inherit = Inheritance(inheritance);
                &[
                    Hex("task", u64::from(task)),
                    Hex("addr", addr),
                    Hex("size", size),
                    Bare(&inherit),
                ]
            }
            Call::Remap {
                target_task,
                size,
                mask,
                flags: fl,
                src_task,
                src_addr,
                copy,
                inheritance,
                ..
            } => {
                remap_flags = RemapFlags(fl);
                copy_arg = Bool(copy);
                inherit = Inheritance(inheritance);
                &[
                    Hex("target_task", u64::from(target_task)),
                    InOut("target_addr", "target_address", true),
                    Hex("size", size),
                    Hex("mask", mask),
                    Bare(&remap_flags),
                    Hex("src_task", u64::from(src_task)),
                    Hex("src_addr", src_addr),
                    Text("copy", &copy_arg),
                    Out("cur", "cur_protection", false),
                    Out("max", "max_protection", false),
                    Bare(&inherit),
                ]
            }
            Call::RegionRecurse { task, .. } => &[
                Hex("task", u64::from(task)),
                InOut("addr", "address", true),
                Out("size", "size", true),
                InOut("depth", "nesting_depth", false),
                Out("info", "info", false),
                InOut("count", "count", false),
            ],
            Call::MakeEntry {
                task,
                offset,
                permission: p,
                parent,
                ..
            } => {
                permission = Permission(p);
                &[
                    Hex("task", u64::from(task)),
                    InOut("size", "size", true),
                    Hex("offset", offset),
                    Text("permission", &permission),
                    Out("handle", "object_handle", true),
                    Hex("parent", u64::from(parent)),
                ]
            }
            Call::Map {
                task,
                size,
                mask,
                flags: fl,
                object,
                offset,
                copy,
                cur: c,
                max: m,
                inheritance,
                ..
            } => {
                flags = VmFlags(fl);
                copy_arg = Bool(copy);
                cur = Prot(c);
                prot = Prot(m);
                inherit = Inheritance(inheritance);
                &[
                    Hex("task", u64::from(task)),
                    InOut("addr", "address", true),
                    Hex("size", size),
                    Hex("mask", mask),
                    Bare(&flags),
                    Hex("object", u64::from(object)),
                    Hex("offset", offset),
                    Text("copy", &copy_arg),
                    Text("cur", &cur),
                    Text("max", &prot),
                    Bare(&inherit),
                ]
            }
            Call::PortDeallocate { task, name } => {
                &[Hex("task", u64::from(task)), Hex("name", u64::from(name))]
            }
            Call::Msync {
                task,
                addr,
                size,
                flags,
                ..
            } => {
                sync = SyncFlags(flags);
                &[
                    Hex("task", u64::from(task)),
                    Hex("addr", addr),
                    Hex("size", size),
                    Text("flags", &sync),
                ]
            }
            Call::Wire {
                host,
                task,
                addr,
                size,
                prot: p,
                ..
            } => {
                prot = Prot(p);
                &[
                    Hex("host_priv", u64::from(host)),
                    Hex("task", u64::from(task)),
                    Hex("addr", addr),
                    Hex("size", size),
                    Text("access", &prot),
                ]
            }
            Call::PurgableControl {
                task,
                addr,
                control: c,
                ..
            } => {
                control = Control(c);
                &[
                    Hex("task", u64::from(task)),
                    Hex("addr", addr),
                    Bare(&control),
                    InOut("state", "state", false),
                ]
            }
            Call::PageQuery { task, addr, .. } => &[
                Hex("task", u64::from(task)),
                Hex("offset", addr),
                Out("disposition", "disposition", true),
                Out("ref_count", "ref_count", false),
            ],
            Call::PageInfo {
                task,
                addr,
                flavor: fv,
                ..
            } => {
                flavor = Flavor(PAGE_INFO_FLAVORS, fv);
                &[
                    Hex("task", u64::from(task)),
                    Hex("addr", addr),
                    Text("flavor", &flavor),
                    Bare(&"*info"),
                    InOut("count", "count", false),
                ]
            }
            Call::PageRangeQuery {
                task,
                addr,
                size,
                dispositions,
                ..
            } => &[
                Hex("task", u64::from(task)),
                Hex("addr", addr),
                Hex("size", size),
                Hex("dispositions", dispositions),
                InOut("count", "dispositions_count", false),
            ],
            Call::TaskInfo {
                task: port,
                flavor: fv,
                ..
            }
            | Call::HostStatistics64 {
                host: port,
                flavor: fv,
                ..
            } => {
                let (name, names) = if matches!(call, Call::TaskInfo { .. }) {
                    ("task", TASK_FLAVORS)
                } else {
                    ("host", HOST_FLAVORS)
                };
                flavor = Flavor(names, fv);
                info_args = [
                    Hex(name, u64::from(port)),
                    Text("flavor", &flavor),
                    Bare(&"*info"),
                    InOut("count", "count", false),
                ];
                &info_args
            }
        };
        write!(f, "{}(", call.import_name())?;
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            self.write_arg(f, arg)?;
        }
        f.write_str(") = ")?;
        match self.outcome {
            Outcome::Kr(kr) => write!(f, "{kr}"),
            Outcome::Port(name) => write!(f, "{name:#x}"),
            Outcome::Trap(fault) => {
                let (verb, kind) = if fault.write {
                    ("write", "out-parameter")
                } else {
                    ("read", "in-parameter")
                };
                write!(
                    f,
                    "trap: cannot {verb} {kind} `{}` at wasm address {:#x}: {}",
                    fault.param, fault.addr, fault.reason
                )
            }
        }
    }
}

/// Whether a subscriber wants call events: checked before anything is collected.
#[inline]
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: CALL_TARGET, tracing::Level::DEBUG)
}

/// Emits the event of one call made by task `caller`.
#[cold]
pub(crate) fn emit(caller: TaskId, call: &Call, params: &ParamLog, outcome: &Outcome) {
    let line = CallLine {
        call,
        params,
        outcome,
    };
    match outcome {
        Outcome::Kr(KernReturn(v)) => tracing::debug!(
            target: CALL_TARGET,
            call = call.import_name(),
            caller = caller.index() as u64,
            result = *v,
            "{line}"
        ),
        Outcome::Port(name) => tracing::debug!(
            target: CALL_TARGET,
            call = call.import_name(),
            caller = caller.index() as u64,
            result = name.0 as i32,
            "{line}"
        ),
        Outcome::Trap(fault) => tracing::debug!(
            target: CALL_TARGET,
            call = call.import_name(),
            caller = caller.index() as u64,
            trap = %fault,
            "{line}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{Form, MachPort, ParamFault, VmFlags};

    fn line(call: Call, params: &[(&'static str, bool, u64)], outcome: Outcome) -> String {
        let mut log = ParamLog::new();
        for &(p, w, v) in params {
            log.push(p, w, v);
        }
        CallLine {
            call: &call,
            params: &log,
            outcome: &outcome,
        }
        .to_string()
    }

    #[test]
    fn allocate_shows_the_in_out_address_and_flags() {
        let c = Call::Allocate {
            form: Form::Vm,
            task: MachPort(0x103),
            addr_ptr: 4,
            size: 0x2000,
            flags: VmFlags(1),
        };
        assert_eq!(
            line(
                c.clone(),
                &[("address", false, 0), ("address", true, 0x30000)],
                Outcome::Kr(KernReturn(0))
            ),
            "vm_allocate(task=0x103, *addr=0x0 -> 0x30000, size=0x2000, ANYWHERE) = KERN_SUCCESS"
        );
        let c = Call::Allocate {
            form: Form::MachVm,
            task: MachPort(0x103),
            addr_ptr: 4,
            size: 0x2000,
            flags: VmFlags(0x4000 | 0x100),
        };
        assert_eq!(
            line(c, &[("address", false, 0x5000)], Outcome::Kr(KernReturn(3))),
            "mach_vm_allocate(task=0x103, *addr=0x5000, size=0x2000, FIXED|OVERWRITE|0x100) = KERN_NO_SPACE"
        );
        // Every bit of VM_FLAGS_USER_ALLOCATE by name, the tag as the macro that makes it.
        let c = Call::Allocate {
            form: Form::Vm,
            task: MachPort(0x103),
            addr_ptr: 4,
            size: 0x2000,
            flags: VmFlags(0xf000_0000 | 0x9f | 0x5000 | 0x2_0000),
        };
        assert_eq!(
            line(c, &[("address", false, 0)], Outcome::Kr(KernReturn(4))),
            "vm_allocate(task=0x103, *addr=0x0, size=0x2000, ANYWHERE|PURGABLE|4GB_CHUNK|\
             RANDOM_ADDR|NO_CACHE|PERMANENT|TPRO|OVERWRITE|SUPERPAGE_SIZE_2MB|VM_MAKE_TAG(240)) \
             = KERN_INVALID_ARGUMENT"
        );
        let c = Call::Allocate {
            form: Form::Vm,
            task: MachPort(0x103),
            addr_ptr: 4,
            size: 0x2000,
            flags: VmFlags(0x7_0000 | 0x20),
        };
        assert_eq!(
            line(c, &[("address", false, 0)], Outcome::Kr(KernReturn(4))),
            "vm_allocate(task=0x103, *addr=0x0, size=0x2000, FIXED|SUPERPAGE(7)|0x20) = KERN_INVALID_ARGUMENT"
        );
    }

    #[test]
    fn protections_results_and_traps_are_named() {
        let c = Call::Protect {
            form: Form::Vm,
            task: MachPort(0x303),
            addr: 0x2000,
            size: 0x1000,
            set_max: 7,
            prot: VmProt(0x15),
        };
        assert_eq!(
            line(c, &[], Outcome::Kr(KernReturn(0x1000_0003))),
            "vm_protect(task=0x303, addr=0x2000, size=0x1000, set_max=true, prot=r-x|COPY) = MACH_SEND_INVALID_DEST"
        );
        let c = Call::HostPageSize {
            host: MachPort(0x203),
            size_ptr: 0x20000,
        };
        let fault = ParamFault {
            call: "host_page_size",
            param: "size",
            addr: 0x20000,
            write: true,
            reason: "page 0x20000 is unallocated".into(),
        };
        assert_eq!(
            line(c.clone(), &[], Outcome::Trap(fault)),
            "host_page_size(host=0x203, *size) = trap: cannot write out-parameter `size` at wasm address 0x20000: page 0x20000 is unallocated"
        );
        assert_eq!(
            line(c, &[("size", true, 0x4000)], Outcome::Kr(KernReturn(77))),
            "host_page_size(host=0x203, *size -> 0x4000) = 0x4d (unknown kern_return_t)"
        );
        assert_eq!(
            line(Call::TaskSelf, &[], Outcome::Port(MachPort(0x103))),
            "mach_task_self() = 0x103"
        );
    }

    #[test]
    fn advice_names_behaviors_flags_and_the_wire_refusal() {
        let c = Call::BehaviorSet {
            form: Form::MachVm,
            task: MachPort(0x103),
            addr: 0x4000,
            size: 0x1000,
            behavior: 8,
        };
        assert_eq!(
            line(c, &[], Outcome::Kr(KernReturn(2))),
            "mach_vm_behavior_set(task=0x103, addr=0x4000, size=0x1000, VM_BEHAVIOR_REUSABLE) \
             = KERN_PROTECTION_FAILURE"
        );
        let c = Call::BehaviorSet {
            form: Form::Vm,
            task: MachPort(0x103),
            addr: 0,
            size: 0,
            behavior: 0xFFFF_FFFF,
        };
        assert!(line(c, &[], Outcome::Kr(KernReturn(0))).contains("size=0x0, -1) = KERN_SUCCESS"));
        let c = Call::Inherit {
            form: Form::Vm,
            task: MachPort(0x103),
            addr: 0x4000,
            size: 0x2000,
            inheritance: 0,
        };
        assert_eq!(
            line(c, &[], Outcome::Kr(KernReturn(0))),
            "vm_inherit(task=0x103, addr=0x4000, size=0x2000, VM_INHERIT_SHARE) = KERN_SUCCESS"
        );
        let c = Call::Inherit {
            form: Form::MachVm,
            task: MachPort(0x103),
            addr: 0,
            size: 1,
            inheritance: 7,
        };
        assert!(line(c, &[], Outcome::Kr(KernReturn(4)))
            .contains("size=0x1, 7) = KERN_INVALID_ARGUMENT"));
        let c = Call::Msync {
            form: Form::Vm,
            task: MachPort(0x203),
            addr: 0x4000,
            size: 0x1000,
            flags: 0x22 | 0x100,
        };
        assert_eq!(
            line(c, &[], Outcome::Kr(KernReturn(16))),
            "vm_msync(task=0x203, addr=0x4000, size=0x1000, flags=SYNCHRONOUS|CONTIGUOUS|0x100) \
             = KERN_INVALID_TASK"
        );
        let c = Call::Wire {
            form: Form::Vm,
            host: MachPort(0x203),
            task: MachPort(0x12303),
            addr: 0x4000,
            size: 0x1000,
            prot: VmProt(3),
        };
        assert_eq!(
            line(c, &[], Outcome::Kr(KernReturn(0x1000_000a))),
            "vm_wire(host_priv=0x203, task=0x12303, addr=0x4000, size=0x1000, access=rw-) \
             = MACH_SEND_INVALID_RIGHT"
        );
    }

    #[test]
    fn purgable_control_names_its_operation() {
        let c = Call::PurgableControl {
            form: Form::Vm,
            task: MachPort(0x103),
            addr: 0x30000,
            control: 0,
            state_ptr: 0x100,
        };
        assert_eq!(
            line(
                c,
                &[("state", false, 1), ("state", true, 0)],
                Outcome::Kr(KernReturn(0))
            ),
            "vm_purgable_control(task=0x103, addr=0x30000, VM_PURGABLE_SET_STATE, *state=1 -> 0) \
             = KERN_SUCCESS"
        );
    }

    #[test]
    fn info_calls_name_their_flavors() {
        let c = Call::TaskInfo {
            task: MachPort(0x103),
            flavor: 22,
            info_ptr: 0x100,
            count_ptr: 0x200,
        };
        assert_eq!(
            line(
                c,
                &[("count", false, 89), ("count", true, 89)],
                Outcome::Kr(KernReturn(0))
            ),
            "task_info(task=0x103, flavor=TASK_VM_INFO, *info, *count=89 -> 89) = KERN_SUCCESS"
        );
        let c = Call::HostStatistics64 {
            host: MachPort(0x103),
            flavor: 4,
            info_ptr: 0x100,
            count_ptr: 0x200,
        };
        assert_eq!(
            line(c, &[("count", false, 38)], Outcome::Kr(KernReturn(22))),
            "host_statistics64(host=0x103, flavor=HOST_VM_INFO64, *info, *count=38) = \
             KERN_INVALID_HOST"
        );
        let c = Call::PageQuery {
            form: Form::MachVm,
            task: MachPort(0x103),
            addr: 0x4000,
            disposition_ptr: 0x100,
            ref_count_ptr: 0x104,
        };
        assert_eq!(
            line(
                c,
                &[("disposition", true, 5), ("ref_count", true, 1)],
                Outcome::Kr(KernReturn(0))
            ),
            "mach_vm_page_query(task=0x103, offset=0x4000, *disposition -> 0x5, *ref_count -> 1) \
             = KERN_SUCCESS"
        );
    }

    #[test]
    fn region_shows_every_out_parameter() {
        let c = Call::Region {
            form: Form::Vm,
            task: MachPort(0x103),
            addr_ptr: 0,
            size_ptr: 4,
            flavor: 9,
            info_ptr: 8,
            count_ptr: 44,
            object_name_ptr: 48,
        };
        let params = [
            ("address", false, 0x1000),
            ("count", false, 9),
            ("address", true, 0x10000),
            ("size", true, 0x20000),
            ("count", true, 9),
            ("object_name", true, 0),
        ];
        assert_eq!(
            line(c.clone(), &params, Outcome::Kr(KernReturn(0))),
            "vm_region_64(task=0x103, *addr=0x1000 -> 0x10000, *size -> 0x20000, \
             flavor=VM_REGION_BASIC_INFO_64, *info, *count=9 -> 9, *object_name -> 0x0) = KERN_SUCCESS"
        );
        assert_eq!(
            line(c, &params[..2], Outcome::Kr(KernReturn(1))),
            "vm_region_64(task=0x103, *addr=0x1000, *size, flavor=VM_REGION_BASIC_INFO_64, \
             *info, *count=9, *object_name) = KERN_INVALID_ADDRESS"
        );
    }

    #[test]
    fn remap_shows_its_in_out_address_protections_and_flags() {
        let c = Call::Remap {
            form: Form::MachVm,
            target_task: MachPort(0x103),
            addr_ptr: 0,
            size: 0x3000,
            mask: 0xfff,
            flags: 0x1 | 0x4000 | 0x10_0000 | 0x20 | 0x40 | 0x8 | 0x200,
            src_task: MachPort(0x303),
            src_addr: 0x4123,
            copy: 1,
            cur_ptr: 8,
            max_ptr: 12,
            inheritance: 2,
        };
        let params = [
            ("target_address", false, 0x8000),
            ("target_address", true, 0x10123),
            ("cur_protection", true, 3),
            ("max_protection", true, 7),
        ];
        assert_eq!(
            line(c.clone(), &params, Outcome::Kr(KernReturn(0))),
            "mach_vm_remap(target_task=0x103, *target_addr=0x8000 -> 0x10123, size=0x3000, \
             mask=0xfff, ANYWHERE|RANDOM_ADDR|RESILIENT_CODESIGN|RESILIENT_MEDIA|OVERWRITE|\
             RETURN_DATA_ADDR|0x200, src_task=0x303, src_addr=0x4123, copy=true, *cur -> 3, \
             *max -> 7, VM_INHERIT_NONE) = KERN_SUCCESS"
        );
        // A failure stores nothing: the out-parameters show no value.
        assert_eq!(
            line(c, &params[..1], Outcome::Kr(KernReturn(4))),
            "mach_vm_remap(target_task=0x103, *target_addr=0x8000, size=0x3000, mask=0xfff, \
             ANYWHERE|RANDOM_ADDR|RESILIENT_CODESIGN|RESILIENT_MEDIA|OVERWRITE|\
             RETURN_DATA_ADDR|0x200, src_task=0x303, src_addr=0x4123, copy=true, *cur, *max, \
             VM_INHERIT_NONE) = KERN_INVALID_ARGUMENT"
        );
    }

    #[test]
    fn memory_entries_show_their_permission_handle_and_mapping() {
        let c = Call::MakeEntry {
            form: Form::MachVm,
            task: MachPort(0x103),
            size_ptr: 0,
            offset: 0x2001,
            permission: 0x40_0043 | 0x300_0000,
            handle_ptr: 8,
            parent: MachPort(0),
        };
        let params = [
            ("size", false, 0x1000),
            ("size", true, 0x2000),
            ("object_handle", true, 0x303),
        ];
        assert_eq!(
            line(c, &params, Outcome::Kr(KernReturn(0))),
            "mach_make_memory_entry_64(task=0x103, *size=0x1000 -> 0x2000, offset=0x2001, \
             permission=rw-|IS_MASK|VM_SHARE cache=3, \
             *handle -> 0x303, parent=0x0) = KERN_SUCCESS"
        );
        let c = Call::Map {
            form: Form::Vm,
            task: MachPort(0x103),
            addr_ptr: 0,
            size: 0x1000,
            mask: 0,
            flags: 1,
            object: MachPort(0x303),
            offset: 0,
            copy: 0,
            cur: VmProt(1),
            max: VmProt(3),
            inheritance: 0,
        };
        let params = [("address", false, 0), ("address", true, 0x10000)];
        assert_eq!(
            line(c, &params, Outcome::Kr(KernReturn(0))),
            "vm_map(task=0x103, *addr=0x0 -> 0x10000, size=0x1000, mask=0x0, \
             ANYWHERE, object=0x303, offset=0x0, copy=false, cur=r--, max=rw-, \
             VM_INHERIT_SHARE) = KERN_SUCCESS"
        );
        let c = Call::PortDeallocate {
            task: MachPort(0x103),
            name: MachPort(0x303),
        };
        assert_eq!(
            line(c, &[], Outcome::Kr(KernReturn(15))),
            "mach_port_deallocate(task=0x103, name=0x303) = KERN_INVALID_NAME"
        );
    }

    #[test]
    fn the_log_never_overflows() {
        let mut log = ParamLog::new();
        for i in 0..20 {
            log.push("x", true, i);
        }
        assert_eq!(log.entries().len(), LOG_CAPACITY);
        assert_eq!(log.stored("x"), Some(LOG_CAPACITY as u64 - 1));
    }
}
