use std::fmt;

use super::{Call, Form, MachPort, VmFlags, VmProt, Width};

/// One import of module `"mach"` (spec §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Import {
    /// `mach_task_self`.
    TaskSelf,
    /// `mach_host_self`.
    HostSelf,
    /// `host_page_size`.
    HostPageSize,
    /// `vm_allocate` / `mach_vm_allocate`.
    Allocate(Form),
    /// `vm_deallocate` / `mach_vm_deallocate`.
    Deallocate(Form),
    /// `vm_protect` / `mach_vm_protect`.
    Protect(Form),
    /// `vm_copy` / `mach_vm_copy`.
    Copy(Form),
    /// `vm_read` / `mach_vm_read`.
    Read(Form),
    /// `vm_read_overwrite` / `mach_vm_read_overwrite`.
    ReadOverwrite(Form),
    /// `vm_write` / `mach_vm_write`.
    Write(Form),
    /// `vm_region_64` / `mach_vm_region`.
    Region(Form),
    /// `vm_region`, the word-sized form of `vm_region_64` (spec §9).
    VmRegion,
    /// `vm_behavior_set` / `mach_vm_behavior_set`.
    BehaviorSet(Form),
    /// `vm_inherit` / `mach_vm_inherit`.
    Inherit(Form),
    /// `vm_remap` / `mach_vm_remap`.
    Remap(Form),
    /// `vm_region_recurse_64` / `mach_vm_region_recurse`.
    RegionRecurse(Form),
    /// `mach_make_memory_entry` / `mach_make_memory_entry_64`.
    MakeEntry(Form),
    /// `vm_map` / `mach_vm_map`.
    Map(Form),
    /// `mach_port_deallocate`.
    PortDeallocate,
    /// `vm_msync` / `mach_vm_msync`.
    Msync(Form),
    /// `vm_wire` / `mach_vm_wire`.
    Wire(Form),
    /// `vm_map_page_query` / `mach_vm_page_query`.
    PageQuery(Form),
    /// `mach_vm_page_info`.
    PageInfo,
    /// `mach_vm_page_range_query`.
    PageRangeQuery,
    /// `task_info`.
    TaskInfo,
    /// `host_statistics64`.
    HostStatistics64,
    /// `vm_purgable_control` / `mach_vm_purgable_control`.
    PurgableControl(Form),
}

/// A wasm value type of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    I32,
    I64,
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ty::I32 => "i32",
            Ty::I64 => "i64",
        })
    }
}

impl Import {
    /// Every import, `vm_*` and `mach_vm_*` forms.
    pub const ALL: [Import; 45] = {
        use Form::*;
        use Import::*;
        [
            TaskSelf,
            HostSelf,
            HostPageSize,
            Allocate(Vm),
            Deallocate(Vm),
            Protect(Vm),
            Copy(Vm),
            Read(Vm),
            ReadOverwrite(Vm),
            Write(Vm),
            Region(Vm),
            Allocate(MachVm),
            Deallocate(MachVm),
            Protect(MachVm),
            Copy(MachVm),
            Read(MachVm),
            ReadOverwrite(MachVm),
            Write(MachVm),
            Region(MachVm),
            VmRegion,
            BehaviorSet(Vm),
            BehaviorSet(MachVm),
            Inherit(Vm),
            Inherit(MachVm),
            Remap(Vm),
            Remap(MachVm),
            RegionRecurse(Vm),
            RegionRecurse(MachVm),
            MakeEntry(Vm),
            MakeEntry(MachVm),
            Map(Vm),
            Map(MachVm),
            PortDeallocate,
            Msync(Vm),
            Msync(MachVm),
            Wire(Vm),
            Wire(MachVm),
            PageQuery(Vm),
            PageQuery(MachVm),
            PageInfo,
            PageRangeQuery,
            TaskInfo,
            HostStatistics64,
            PurgableControl(Vm),
            PurgableControl(MachVm),
        ]
    };

    /// The import's name in module `"mach"`.
    pub fn name(self) -> &'static str {
        use Form::*;
        use Import::*;
        match self {
            TaskSelf => "mach_task_self",
            HostSelf => "mach_host_self",
            HostPageSize => "host_page_size",
            Allocate(Vm) => "vm_allocate",
            Deallocate(Vm) => "vm_deallocate",
            Protect(Vm) => "vm_protect",
            Copy(Vm) => "vm_copy",
            Read(Vm) => "vm_read",
            ReadOverwrite(Vm) => "vm_read_overwrite",
            Write(Vm) => "vm_write",
            Region(Vm) => "vm_region_64",
            Allocate(MachVm) => "mach_vm_allocate",
            Deallocate(MachVm) => "mach_vm_deallocate",
            Protect(MachVm) => "mach_vm_protect",
            Copy(MachVm) => "mach_vm_copy",
            Read(MachVm) => "mach_vm_read",
            ReadOverwrite(MachVm) => "mach_vm_read_overwrite",
            Write(MachVm) => "mach_vm_write",
            Region(MachVm) => "mach_vm_region",
            VmRegion => "vm_region",
            BehaviorSet(Vm) => "vm_behavior_set",
            BehaviorSet(MachVm) => "mach_vm_behavior_set",
            Inherit(Vm) => "vm_inherit",
            Inherit(MachVm) => "mach_vm_inherit",
            Remap(Vm) => "vm_remap",
            Remap(MachVm) => "mach_vm_remap",
            RegionRecurse(Vm) => "vm_region_recurse_64",
            RegionRecurse(MachVm) => "mach_vm_region_recurse",
            MakeEntry(Vm) => "mach_make_memory_entry",
            MakeEntry(MachVm) => "mach_make_memory_entry_64",
            Map(Vm) => "vm_map",
            Map(MachVm) => "mach_vm_map",
            PortDeallocate => "mach_port_deallocate",
            Msync(Vm) => "vm_msync",
            Msync(MachVm) => "mach_vm_msync",
            Wire(Vm) => "vm_wire",
            Wire(MachVm) => "mach_vm_wire",
            PageQuery(Vm) => "vm_map_page_query",
            PageQuery(MachVm) => "mach_vm_page_query",
            PageInfo => "mach_vm_page_info",
            PageRangeQuery => "mach_vm_page_range_query",
            TaskInfo => "task_info",
            HostStatistics64 => "host_statistics64",
            PurgableControl(Vm) => "vm_purgable_control",
            PurgableControl(MachVm) => "mach_vm_purgable_control",
        }
    }

    /// The import of that name.
    pub fn from_name(name: &str) -> Option<Import> {
        Import::ALL.into_iter().find(|i| i.name() == name)
    }

    /// The wasm parameter types for a guest of width `w` (the result is always one i32).
    pub(crate) fn params(self, w: Width) -> Vec<Ty> {
        use Import::*;
        let word = match w {
            Width::W32 => Ty::I32,
            Width::W64 => Ty::I64,
        };
        let (i, p) = (Ty::I32, word);
        let a = |f: Form| match f {
            Form::Vm => word,
            Form::MachVm => Ty::I64,
        };
        match self {
            TaskSelf | HostSelf => vec![],
            HostPageSize => vec![i, p],
            Allocate(f) => vec![i, p, a(f), i],
            Deallocate(f) => vec![i, a(f), a(f)],
            Protect(f) => vec![i, a(f), a(f), i, i],
            Copy(f) => vec![i, a(f), a(f), a(f)],
            Read(f) => vec![i, a(f), a(f), p, p],
            ReadOverwrite(f) => vec![i, a(f), a(f), a(f), p],
            Write(f) => vec![i, a(f), word, i],
            Region(_) | VmRegion => vec![i, p, p, i, p, p, p],
            BehaviorSet(f) | Inherit(f) | Msync(f) => vec![i, a(f), a(f), i],
            Wire(f) => vec![i, i, a(f), a(f), i],
            Remap(f) => vec![i, p, a(f), a(f), i, i, a(f), i, p, p, i],
            RegionRecurse(_) => vec![i, p, p, p, p, p],
            MakeEntry(f) => vec![i, p, a(f), i, p, i],
            Map(f) => vec![i, p, a(f), a(f), i, i, a(f), i, i, i, i],
            PortDeallocate => vec![i, i],
            PageQuery(f) => vec![i, a(f), p, p],
            PageInfo => vec![i, Ty::I64, i, p, p],
            PageRangeQuery => vec![i, Ty::I64, Ty::I64, Ty::I64, p],
            TaskInfo | HostStatistics64 => vec![i, i, p, p],
            PurgableControl(f) => vec![i, a(f), i, p],
        }
    }

    /// The call this import makes with `args`, the wasm arguments in parameter order, each
    /// zero-extended to `u64` (the inverse of [`Call::args`]). Missing arguments read as 0.
    pub fn call(self, args: &[u64]) -> Call {
        use Import::*;
        let a = |k: usize| args.get(k).copied().unwrap_or(0);
        // Ports, flags, protections and flavors are i32 in every signature.
        let n = |k: usize| a(k) as u32;
        let port = |k: usize| MachPort(n(k));
        match self {
            TaskSelf => Call::TaskSelf,
            HostSelf => Call::HostSelf,
            HostPageSize => Call::HostPageSize {
                host: port(0),
                size_ptr: a(1),
            },
            Allocate(form) => Call::Allocate {
                form,
                task: port(0),
                addr_ptr: a(1),
                size: a(2),
                flags: VmFlags(n(3)),
            },
            Deallocate(form) => Call::Deallocate {
                form,
                task: port(0),
                addr: a(1),
                size: a(2),
            },
            Protect(form) => Call::Protect {
                form,
                task: port(0),
                addr: a(1),
                size: a(2),
                set_max: n(3),
                prot: VmProt(n(4) as i32),
            },
            Copy(form) => Call::Copy {
                form,
                task: port(0),
                src: a(1),
                size: a(2),
                dst: a(3),
            },
            Read(form) => Call::Read {
                form,
                task: port(0),
                addr: a(1),
                size: a(2),
                data_ptr: a(3),
                count_ptr: a(4),
            },
            ReadOverwrite(form) => Call::ReadOverwrite {
                form,
                task: port(0),
                addr: a(1),
                size: a(2),
                data: a(3),
                outsize_ptr: a(4),
            },
            Write(form) => Call::Write {
                form,
                task: port(0),
                addr: a(1),
                data: a(2),
                count: n(3),
            },
            Region(form) => Call::Region {
                form,
                task: port(0),
                addr_ptr: a(1),
                size_ptr: a(2),
                flavor: n(3),
                info_ptr: a(4),
                count_ptr: a(5),
                object_name_ptr: a(6),
            },
            VmRegion => Call::VmRegion {
                task: port(0),
                addr_ptr: a(1),
                size_ptr: a(2),
                flavor: n(3),
                info_ptr: a(4),
                count_ptr: a(5),
                object_name_ptr: a(6),
            },
            BehaviorSet(form) => Call::BehaviorSet {
                form,
                task: port(0),
                addr: a(1),
                size: a(2),
                behavior: n(3),
            },
            Inherit(form) => Call::Inherit {
                form,
                task: port(0),
                addr: a(1),
                size: a(2),
                inheritance: n(3),
            },
            Remap(form) => Call::Remap {
                form,
                target_task: port(0),
                addr_ptr: a(1),
                size: a(2),
                mask: a(3),
                flags: n(4),
                src_task: port(5),
                src_addr: a(6),
                copy: n(7),
                cur_ptr: a(8),
                max_ptr: a(9),
                inheritance: n(10),
            },
            RegionRecurse(form) => Call::RegionRecurse {
                form,
                task: port(0),
                addr_ptr: a(1),
                size_ptr: a(2),
                depth_ptr: a(3),
                info_ptr: a(4),
                count_ptr: a(5),
            },
            MakeEntry(form) => Call::MakeEntry {
                form,
                task: port(0),
                size_ptr: a(1),
                offset: a(2),
                permission: n(3),
                handle_ptr: a(4),
                parent: port(5),
            },
            Map(form) => Call::Map {
                form,
                task: port(0),
                addr_ptr: a(1),
                size: a(2),
                mask: a(3),
                flags: n(4),
                object: port(5),
                offset: a(6),
                copy: n(7),
                cur: VmProt(n(8) as i32),
                max: VmProt(n(9) as i32),
                inheritance: n(10),
            },
            PortDeallocate => Call::PortDeallocate {
                task: port(0),
                name: port(1),
            },
            Msync(form) => Call::Msync {
                form,
                task: port(0),
                addr: a(1),
                size: a(2),
                flags: n(3),
            },
            Wire(form) => Call::Wire {
                form,
                host: port(0),
                task: port(1),
                addr: a(2),
                size: a(3),
                prot: VmProt(n(4) as i32),
            },
            PageQuery(form) => Call::PageQuery {
                form,
                task: port(0),
                addr: a(1),
                disposition_ptr: a(2),
                ref_count_ptr: a(3),
            },
            PageInfo => Call::PageInfo {
                task: port(0),
                addr: a(1),
                flavor: n(2),
                info_ptr: a(3),
                count_ptr: a(4),
            },
            PageRangeQuery => Call::PageRangeQuery {
                task: port(0),
                addr: a(1),
                size: a(2),
                dispositions: a(3),
                count_ptr: a(4),
            },
            TaskInfo => Call::TaskInfo {
                task: port(0),
                flavor: n(1),
                info_ptr: a(2),
                count_ptr: a(3),
            },
            HostStatistics64 => Call::HostStatistics64 {
                host: port(0),
                flavor: n(1),
                info_ptr: a(2),
                count_ptr: a(3),
            },
            PurgableControl(form) => Call::PurgableControl {
                form,
                task: port(0),
                addr: a(1),
                control: n(2),
                state_ptr: a(3),
            },
        }
    }

    /// The signature for a guest of width `w`, as `(i32, i64) -> i32`.
    pub fn signature(self, w: Width) -> String {
        let params: Vec<String> = self.params(w).iter().map(|t| t.to_string()).collect();
        format!("({}) -> i32", params.join(", "))
    }
}
