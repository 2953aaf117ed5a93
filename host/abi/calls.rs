//! One value per Mach call of spec §3, as a guest makes it, shared by the reference model,
//! the differential tests and the fuzz targets.
//!
//! Every address, size and pointer is carried as `u64`. For a 32-bit guest the word-sized
//! values ([`Form::Vm`] addresses and sizes, and every pointer) must be below 2^32: callers
//! truncate them to the guest's width before building a [`Call`].

use std::fmt;

use super::{KernReturn, MachPort, VmFlags, VmInherit, VmProt};

/// Which family of a call: the word-sized `vm_*` or the 64-bit `mach_vm_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Form {
    /// `vm_*`: addresses and sizes are the guest's word (32 or 64 bits).
    Vm,
    /// `mach_vm_*`: addresses and sizes are always 64 bits.
    MachVm,
}

/// The guest's pointer width: that of its linear memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// A 32-bit memory (`memory`), addresses wrap at 2^32.
    W32,
    /// A 64-bit memory (`memory i64`), addresses wrap at 2^64.
    W64,
}

impl Width {
    /// Number of bits of a word.
    pub fn bits(self) -> u32 {
        match self {
            Width::W32 => 32,
            Width::W64 => 64,
        }
    }
    /// Number of bytes of a word.
    pub fn bytes(self) -> u64 {
        u64::from(self.bits() / 8)
    }
    /// One past the largest word value: 2^32 or 2^64.
    pub fn limit(self) -> u128 {
        1u128 << self.bits()
    }
    /// Truncates `v` to a word of this width.
    pub fn truncate(self, v: u64) -> u64 {
        match self {
            Width::W32 => v & 0xFFFF_FFFF,
            Width::W64 => v,
        }
    }
}

impl Form {
    /// The width in which a call of this form computes addresses for a guest of `guest` width.
    pub fn address_width(self, guest: Width) -> Width {
        match self {
            Form::Vm => guest,
            Form::MachVm => Width::W64,
        }
    }
}

/// A Mach call with its arguments, as a guest passes them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the spec §3 parameters of the same names
pub enum Call {
    /// `mach_task_self()`.
    TaskSelf,
    /// `mach_host_self()`.
    HostSelf,
    /// `host_page_size(host, *size)`.
    HostPageSize { host: MachPort, size_ptr: u64 },
    /// `vm_allocate(task, *address, size, flags)`.
    Allocate {
        form: Form,
        task: MachPort,
        addr_ptr: u64,
        size: u64,
        flags: VmFlags,
    },
    /// `vm_deallocate(task, address, size)`.
    Deallocate {
        form: Form,
        task: MachPort,
        addr: u64,
        size: u64,
    },
    /// `vm_protect(task, address, size, set_maximum, new_protection)`.
    Protect {
        form: Form,
        task: MachPort,
        addr: u64,
        size: u64,
        set_max: u32,
        prot: VmProt,
    },
    /// `vm_copy(task, source_address, size, dest_address)`.
    Copy {
        form: Form,
        task: MachPort,
        src: u64,
        size: u64,
        dst: u64,
    },
    /// `vm_read(task, address, size, *data, *count)`.
    Read {
        form: Form,
        task: MachPort,
        addr: u64,
        size: u64,
        data_ptr: u64,
        count_ptr: u64,
    },
    /// `vm_read_overwrite(task, address, size, data, *outsize)`.
    ReadOverwrite {
        form: Form,
        task: MachPort,
        addr: u64,
        size: u64,
        data: u64,
        outsize_ptr: u64,
    },
    /// `vm_write(task, address, data, count)`.
    Write {
        form: Form,
        task: MachPort,
        addr: u64,
        data: u64,
        count: u32,
    },
    /// `vm_region_64` / `mach_vm_region(task, *address, *size, flavor, *info, *count, *object_name)`.
    Region {
        form: Form,
        task: MachPort,
        addr_ptr: u64,
        size_ptr: u64,
        flavor: u32,
        info_ptr: u64,
        count_ptr: u64,
        object_name_ptr: u64,
    },
    /// `vm_region(task, *address, *size, flavor, *info, *count, *object_name)`: the
    /// word-sized form, which answers as `vm_region_64` does (spec §9).
    VmRegion {
        task: MachPort,
        addr_ptr: u64,
        size_ptr: u64,
        flavor: u32,
        info_ptr: u64,
        count_ptr: u64,
        object_name_ptr: u64,
    },
    /// `vm_behavior_set(task, address, size, new_behavior)`.
    BehaviorSet {
        form: Form,
        task: MachPort,
        addr: u64,
        size: u64,
        behavior: u32,
    },
    /// `vm_inherit(task, address, size, new_inheritance)`.
    Inherit {
        form: Form,
        task: MachPort,
        addr: u64,
        size: u64,
        inheritance: u32,
    },
    /// `vm_remap(target_task, *target_address, size, mask, flags, src_task, src_address,
    /// copy, *cur_protection, *max_protection, inheritance)`.
    Remap {
        form: Form,
        target_task: MachPort,
        addr_ptr: u64,
        size: u64,
        mask: u64,
        flags: u32,
        src_task: MachPort,
        src_addr: u64,
        copy: u32,
        cur_ptr: u64,
        max_ptr: u64,
        inheritance: u32,
    },
    /// `vm_region_recurse_64` / `mach_vm_region_recurse(target_task, *address, *size,
    /// *nesting_depth, info, *count)`.
    RegionRecurse {
        form: Form,
        task: MachPort,
        addr_ptr: u64,
        size_ptr: u64,
        depth_ptr: u64,
        info_ptr: u64,
        count_ptr: u64,
    },
    /// `mach_make_memory_entry_64(target_task, *size, offset, permission, *object_handle,
    /// parent_entry)` and the word-sized `mach_make_memory_entry` ([`Form::Vm`]).
    MakeEntry {
        form: Form,
        task: MachPort,
        size_ptr: u64,
        offset: u64,
        permission: u32,
        handle_ptr: u64,
        parent: MachPort,
    },
    /// `vm_map(target_task, *address, size, mask, flags, object, offset, copy,
    /// cur_protection, max_protection, inheritance)`.
    Map {
        form: Form,
        task: MachPort,
        addr_ptr: u64,
        size: u64,
        mask: u64,
        flags: u32,
        object: MachPort,
        offset: u64,
        copy: u32,
        cur: VmProt,
        max: VmProt,
        inheritance: u32,
    },
    /// `mach_port_deallocate(task, name)`.
    PortDeallocate { task: MachPort, name: MachPort },
    /// `vm_msync(task, address, size, sync_flags)`.
    Msync {
        form: Form,
        task: MachPort,
        addr: u64,
        size: u64,
        flags: u32,
    },
    /// `vm_wire(host_priv, task, address, size, desired_access)`.
    Wire {
        form: Form,
        host: MachPort,
        task: MachPort,
        addr: u64,
        size: u64,
        prot: VmProt,
    },
    /// `vm_map_page_query` / `mach_vm_page_query(task, offset, *disposition, *ref_count)`.
    PageQuery {
        form: Form,
        task: MachPort,
        addr: u64,
        disposition_ptr: u64,
        ref_count_ptr: u64,
    },
    /// `mach_vm_page_info(task, address, flavor, *info, *count)`.
    PageInfo {
        task: MachPort,
        addr: u64,
        flavor: u32,
        info_ptr: u64,
        count_ptr: u64,
    },
    /// `mach_vm_page_range_query(task, address, size, dispositions, *dispositions_count)`;
    /// `dispositions` is an address in the caller.
    PageRangeQuery {
        task: MachPort,
        addr: u64,
        size: u64,
        dispositions: u64,
        count_ptr: u64,
    },
    /// `task_info(task, flavor, *info, *count)`.
    TaskInfo {
        task: MachPort,
        flavor: u32,
        info_ptr: u64,
        count_ptr: u64,
    },
    /// `vm_purgable_control(task, address, control, *state)`.
    PurgableControl {
        form: Form,
        task: MachPort,
        addr: u64,
        control: u32,
        state_ptr: u64,
    },
    /// `host_statistics64(host, flavor, *info, *count)`.
    HostStatistics64 {
        host: MachPort,
        flavor: u32,
        info_ptr: u64,
        count_ptr: u64,
    },
}

impl Call {
    /// The import name of this call in module `"mach"` (e.g. `vm_copy`, `mach_vm_copy`).
    pub fn import_name(&self) -> &'static str {
        let (form, vm, mach) = match self {
            Call::TaskSelf => return "mach_task_self",
            Call::HostSelf => return "mach_host_self",
            Call::HostPageSize { .. } => return "host_page_size",
            Call::Allocate { form, .. } => (form, "vm_allocate", "mach_vm_allocate"),
            Call::Deallocate { form, .. } => (form, "vm_deallocate", "mach_vm_deallocate"),
            Call::Protect { form, .. } => (form, "vm_protect", "mach_vm_protect"),
            Call::Copy { form, .. } => (form, "vm_copy", "mach_vm_copy"),
            Call::Read { form, .. } => (form, "vm_read", "mach_vm_read"),
            Call::ReadOverwrite { form, .. } => {
                (form, "vm_read_overwrite", "mach_vm_read_overwrite")
            }
            Call::Write { form, .. } => (form, "vm_write", "mach_vm_write"),
            Call::Region { form, .. } => (form, "vm_region_64", "mach_vm_region"),
            Call::VmRegion { .. } => return "vm_region",
            Call::BehaviorSet { form, .. } => (form, "vm_behavior_set", "mach_vm_behavior_set"),
            Call::Inherit { form, .. } => (form, "vm_inherit", "mach_vm_inherit"),
            Call::Remap { form, .. } => (form, "vm_remap", "mach_vm_remap"),
            Call::RegionRecurse { form, .. } => {
                (form, "vm_region_recurse_64", "mach_vm_region_recurse")
            }
            Call::MakeEntry { form, .. } => {
                (form, "mach_make_memory_entry", "mach_make_memory_entry_64")
            }
            Call::Map { form, .. } => (form, "vm_map", "mach_vm_map"),
            Call::PortDeallocate { .. } => return "mach_port_deallocate",
            Call::Msync { form, .. } => (form, "vm_msync", "mach_vm_msync"),
            Call::Wire { form, .. } => (form, "vm_wire", "mach_vm_wire"),
            Call::PageQuery { form, .. } => (form, "vm_map_page_query", "mach_vm_page_query"),
            Call::PageInfo { .. } => return "mach_vm_page_info",
            Call::PageRangeQuery { .. } => return "mach_vm_page_range_query",
            Call::TaskInfo { .. } => return "task_info",
            Call::PurgableControl { form, .. } => {
                (form, "vm_purgable_control", "mach_vm_purgable_control")
            }
            Call::HostStatistics64 { .. } => return "host_statistics64",
        };
        match form {
            Form::Vm => vm,
            Form::MachVm => mach,
        }
    }

    /// The form of the call, for the calls that have a `vm_*` and a `mach_vm_*` form
    /// (spec §3); `None` for the others.
    pub fn form(&self) -> Option<Form> {
        match *self {
            Call::Allocate { form, .. }
            | Call::Deallocate { form, .. }
            | Call::Protect { form, .. }
            | Call::Copy { form, .. }
            | Call::Read { form, .. }
            | Call::ReadOverwrite { form, .. }
            | Call::Write { form, .. }
            | Call::Region { form, .. }
            | Call::BehaviorSet { form, .. }
            | Call::Inherit { form, .. }
            | Call::Remap { form, .. }
            | Call::RegionRecurse { form, .. }
            | Call::MakeEntry { form, .. }
            | Call::Map { form, .. }
            | Call::Msync { form, .. }
            | Call::Wire { form, .. }
            | Call::PageQuery { form, .. }
            | Call::PurgableControl { form, .. } => Some(form),
            Call::TaskSelf
            | Call::HostSelf
            | Call::HostPageSize { .. }
            | Call::VmRegion { .. }
            | Call::PortDeallocate { .. }
            | Call::PageInfo { .. }
            | Call::PageRangeQuery { .. }
            | Call::TaskInfo { .. }
            | Call::HostStatistics64 { .. } => None,
        }
    }
}

impl Call {
    /// The call's arguments in the import's parameter order (spec §3), each as `u64`.
    pub fn args(&self) -> Vec<u64> {
        match *self {
            Call::TaskSelf | Call::HostSelf => vec![],
            Call::HostPageSize { host, size_ptr } => vec![host.into(), size_ptr],
            Call::Allocate {
                task,
                addr_ptr,
                size,
                flags,
                ..
            } => {
                vec![task.into(), addr_ptr, size, flags.into()]
            }
            Call::Deallocate {
                task, addr, size, ..
            } => vec![task.into(), addr, size],
            Call::Protect {
                task,
                addr,
                size,
                set_max,
                prot,
                ..
            } => {
                vec![task.into(), addr, size, set_max.into(), prot.into()]
            }
            Call::Copy {
                task,
                src,
                size,
                dst,
                ..
            } => vec![task.into(), src, size, dst],
            Call::Read {
                task,
                addr,
                size,
                data_ptr,
                count_ptr,
                ..
            } => {
                vec![task.into(), addr, size, data_ptr, count_ptr]
            }
            Call::ReadOverwrite {
                task,
                addr,
                size,
                data,
                outsize_ptr,
                ..
            } => {
                vec![task.into(), addr, size, data, outsize_ptr]
            }
            Call::Write {
                task,
                addr,
                data,
                count,
                ..
            } => {
                vec![task.into(), addr, data, count.into()]
            }
            Call::Region {
                task,
                addr_ptr,
                size_ptr,
                flavor,
                info_ptr,
                count_ptr,
                object_name_ptr,
                ..
            }
            | Call::VmRegion {
                task,
                addr_ptr,
                size_ptr,
                flavor,
                info_ptr,
                count_ptr,
                object_name_ptr,
            } => vec![
                task.into(),
                addr_ptr,
                size_ptr,
                flavor.into(),
                info_ptr,
                count_ptr,
                object_name_ptr,
            ],
            Call::BehaviorSet {
                task,
                addr,
                size,
                behavior,
                ..
            } => vec![task.into(), addr, size, behavior.into()],
            Call::Inherit {
                task,
                addr,
                size,
                inheritance,
                ..
            } => vec![task.into(), addr, size, inheritance.into()],
            Call::Remap {
                target_task,
                addr_ptr,
                size,
                mask,
                flags,
                src_task,
                src_addr,
                copy,
                cur_ptr,
                max_ptr,
                inheritance,
                ..
            } => vec![
                target_task.into(),
                addr_ptr,
                size,
                mask,
                flags.into(),
                src_task.into(),
                src_addr,
                copy.into(),
                cur_ptr,
                max_ptr,
                inheritance.into(),
            ],
            Call::RegionRecurse {
                task,
                addr_ptr,
                size_ptr,
                depth_ptr,
                info_ptr,
                count_ptr,
                ..
            } => vec![
                task.into(),
                addr_ptr,
                size_ptr,
                depth_ptr,
                info_ptr,
                count_ptr,
            ],
            Call::MakeEntry {
                task,
                size_ptr,
                offset,
                permission,
                handle_ptr,
                parent,
                ..
            } => vec![
                task.into(),
                size_ptr,
                offset,
                permission.into(),
                handle_ptr,
                parent.into(),
            ],
            Call::Map {
                task,
                addr_ptr,
                size,
                mask,
                flags,
                object,
                offset,
                copy,
                cur,
                max,
                inheritance,
                ..
            } => vec![
                task.into(),
                addr_ptr,
                size,
                mask,
                flags.into(),
                object.into(),
                offset,
                copy.into(),
                cur.into(),
                max.into(),
                inheritance.into(),
            ],
            Call::PortDeallocate { task, name } => vec![task.into(), name.into()],
            Call::Msync {
                task,
                addr,
                size,
                flags,
                ..
            } => vec![task.into(), addr, size, flags.into()],
            Call::Wire {
                host,
                task,
                addr,
                size,
                prot,
                ..
            } => vec![host.into(), task.into(), addr, size, prot.into()],
            Call::PageQuery {
                task,
                addr,
                disposition_ptr,
                ref_count_ptr,
                ..
            } => vec![task.into(), addr, disposition_ptr, ref_count_ptr],
            Call::PageInfo {
                task,
                addr,
                flavor,
                info_ptr,
                count_ptr,
            } => vec![task.into(), addr, flavor.into(), info_ptr, count_ptr],
            Call::PageRangeQuery {
                task,
                addr,
                size,
                dispositions,
                count_ptr,
            } => vec![task.into(), addr, size, dispositions, count_ptr],
            Call::PurgableControl {
                task,
                addr,
                control,
                state_ptr,
                ..
            } => vec![task.into(), addr, control.into(), state_ptr],
            Call::TaskInfo {
                task: port,
                flavor,
                info_ptr,
                count_ptr,
            }
            | Call::HostStatistics64 {
                host: port,
                flavor,
                info_ptr,
                count_ptr,
            } => vec![port.into(), flavor.into(), info_ptr, count_ptr],
        }
    }
}

/// A scalar in, out or in-out parameter that the call could not read or write: the guest
/// traps, as the MIG stub's own load or store would fault (spec §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamFault {
    /// The import name of the call.
    pub call: &'static str,
    /// The parameter's name, as in spec §3 (`address`, `size`, `count`, ...).
    pub param: &'static str,
    /// The guest address of the parameter.
    pub addr: u64,
    /// True when the parameter was being written (an out-parameter), false when read.
    pub write: bool,
    /// Why the access failed, for people (`page 0x3000 is unallocated`, ...).
    pub reason: String,
}

impl fmt::Display for ParamFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, kind) = if self.write {
            ("write", "out-parameter")
        } else {
            ("read", "in-parameter")
        };
        write!(
            f,
            "{}: cannot {} {} `{}` at wasm address {:#x}: {}",
            self.call, verb, kind, self.param, self.addr, self.reason
        )
    }
}

impl std::error::Error for ParamFault {}

/// What a call gave the guest: a `kern_return_t`, a port name (the two `*_self` calls), or a
/// trap on a scalar parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call answered this `kern_return_t`.
    Kr(KernReturn),
    /// `mach_task_self` or `mach_host_self` answered this port name.
    Port(MachPort),
    /// The call trapped.
    Trap(ParamFault),
}

impl Outcome {
    /// The import's `i32` result as the guest receives it, or the fault it traps with.
    pub fn wire(self) -> Result<i32, ParamFault> {
        match self {
            Outcome::Kr(kr) => Ok(kr.0),
            Outcome::Port(name) => Ok(name.0 as i32),
            Outcome::Trap(f) => Err(f),
        }
    }

    /// The outcome of `call` whose import returned `v` (the inverse of [`wire`](Self::wire)
    /// for a call that did not trap).
    pub fn from_wire(call: &Call, v: i32) -> Outcome {
        match call {
            Call::TaskSelf | Call::HostSelf => Outcome::Port(MachPort(v as u32)),
            _ => Outcome::Kr(KernReturn(v)),
        }
    }

    /// Equality for differential testing: the same return value, or a trap on the same
    /// parameter (call, parameter, address, direction), whatever the reason's wording.
    pub fn same_as(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Kr(a), Outcome::Kr(b)) => a == b,
            (Outcome::Port(a), Outcome::Port(b)) => a == b,
            (Outcome::Trap(a), Outcome::Trap(b)) => {
                (a.call, a.param, a.addr, a.write) == (b.call, b.param, b.addr, b.write)
            }
            _ => false,
        }
    }
}

/// The state of one allocated page: current and maximum protection, inheritance, and
/// whether the embedder made it permanent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageAttrs {
    /// Current protection (`VM_PROT_*` bits).
    pub cur: VmProt,
    /// Maximum protection (`VM_PROT_*` bits).
    pub max: VmProt,
    /// Inheritance (`VM_INHERIT_*`).
    pub inherit: VmInherit,
    /// A permanent page (XNU's permanent map entries; made by the embedder with
    /// [`crate::host::make_permanent`]): no guest call removes it or replaces it, so its
    /// maximum protection can only go down. `vm_deallocate` leaves it allocated with no
    /// access; `VM_PROT_COPY` and an overwriting `vm_allocate` over it answer
    /// `KERN_NO_SPACE`.
    pub permanent: bool,
    /// The paging behavior `vm_behavior_set` recorded (`VM_BEHAVIOR_DEFAULT`, `RANDOM`,
    /// `SEQUENTIAL` or `RSEQNTL`), reported by `vm_region`. It changes no access.
    pub behavior: i32,
    /// The purgeable object the page belongs to (`vm_allocate` with `VM_FLAGS_PURGABLE`
    /// makes one per call; see [`crate::vm::TaskVm::purgeable_state`]); 0 for memory that is
    /// not purgeable.
    pub object: u32,
    /// The shared object the page belongs to (spec §8): 0 for the task's private memory,
    /// else an id unique in the kernel, given when private pages are first shared
    /// (`vm_remap` without copy). Pages keep it while they stay mapped, whoever else still
    /// maps the object (XNU never clears an entry's `is_shared`); `vm_region` reports
    /// `shared` for them.
    pub share: u32,
    /// Where the page lies in its shared object: the page at address `a` is the object's
    /// bytes at `a + share_offset` (wrapping), so that pages at consecutive offsets of one
    /// object have equal attributes and form one region. 0 for private memory.
    pub share_offset: u64,
    /// XNU's `is_shared` of the page's map entry, which `vm_region` reports as `shared`:
    /// set on both sides of a `vm_remap` without copy and on the source of a memory entry
    /// that shares pages (spec §8), never cleared while the page stays mapped; a mapping
    /// of a memory entry made by `vm_map` shares the entry's object without it, as XNU's.
    pub shared: bool,
}

impl PageAttrs {
    /// The attributes of new memory: `cur` RW, `max` ALL, inheritance COPY, behavior
    /// default.
    pub const DEFAULT: PageAttrs = PageAttrs {
        cur: crate::abi::VM_PROT_DEFAULT,
        max: crate::abi::VM_PROT_ALL,
        inherit: crate::abi::VM_INHERIT_DEFAULT,
        permanent: false,
        behavior: crate::abi::VM_BEHAVIOR_DEFAULT,
        object: 0,
        share: 0,
        share_offset: 0,
        shared: false,
    };

    /// The object offset of the page at address `addr` when it has these attributes: the
    /// shared object's offset, or 0 for private memory.
    pub fn object_offset(&self, addr: u64) -> u64 {
        if self.share == 0 {
            0
        } else {
            addr.wrapping_add(self.share_offset)
        }
    }
}
