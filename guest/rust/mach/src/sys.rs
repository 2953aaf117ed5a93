//! The raw ABI (spec §2, §3): XNU's C names, types and constants, and the
//! imports of the wasm module `"mach"`. `usize` is the guest's word.
#![allow(non_camel_case_types)]

/// `kern_return_t`.
pub type kern_return_t = i32;
/// `natural_t`.
pub type natural_t = u32;
/// `integer_t`.
pub type integer_t = i32;
/// `boolean_t` (0 = false, any other value = true).
pub type boolean_t = i32;
/// `mach_port_name_t`: a 32-bit name in every guest.
pub type mach_port_name_t = natural_t;
/// `mach_port_t`.
pub type mach_port_t = mach_port_name_t;
/// `vm_map_t`.
pub type vm_map_t = mach_port_t;
/// `vm_map_read_t`.
pub type vm_map_read_t = mach_port_t;
/// `task_t`.
pub type task_t = mach_port_t;
/// `host_t`.
pub type host_t = mach_port_t;
/// `host_priv_t`: the host-privileged port, which no guest holds.
pub type host_priv_t = mach_port_t;
/// `memory_object_name_t`.
pub type memory_object_name_t = mach_port_t;
/// `vm_address_t`: word-sized.
pub type vm_address_t = usize;
/// `vm_size_t`: word-sized.
pub type vm_size_t = usize;
/// `vm_offset_t`: word-sized.
pub type vm_offset_t = usize;
/// `mach_vm_address_t`: always 64 bits.
pub type mach_vm_address_t = u64;
/// `mach_vm_size_t`: always 64 bits.
pub type mach_vm_size_t = u64;
/// `mach_vm_offset_t`: always 64 bits.
pub type mach_vm_offset_t = u64;
/// `memory_object_offset_t`.
pub type memory_object_offset_t = u64;
/// `memory_object_size_t`: a memory entry's size, 64 bits in every guest.
pub type memory_object_size_t = u64;
/// `mem_entry_name_port_t`: a memory entry (`mach_make_memory_entry_64`).
pub type mem_entry_name_port_t = mach_port_t;
/// `ipc_space_t`: a task's port namespace (`mach_port_deallocate`).
pub type ipc_space_t = mach_port_t;
/// `vm_prot_t`.
pub type vm_prot_t = i32;
/// `vm_inherit_t`.
pub type vm_inherit_t = u32;
/// `vm_behavior_t`.
pub type vm_behavior_t = i32;
/// `vm_sync_t`: `vm_msync`'s flags.
pub type vm_sync_t = u32;
/// `mach_msg_type_number_t`: 32 bits in every guest.
pub type mach_msg_type_number_t = natural_t;
/// `vm_region_flavor_t`.
pub type vm_region_flavor_t = i32;
/// `vm_region_info_t`: a pointer to the flavor's structure.
pub type vm_region_info_t = *mut integer_t;

/// The call succeeded.
pub const KERN_SUCCESS: kern_return_t = machvm_abi::KERN_SUCCESS.0;
/// An address (or range) is not valid in the task's map.
pub const KERN_INVALID_ADDRESS: kern_return_t = machvm_abi::KERN_INVALID_ADDRESS.0;
/// The protection of a page does not allow the access.
pub const KERN_PROTECTION_FAILURE: kern_return_t = machvm_abi::KERN_PROTECTION_FAILURE.0;
/// No free range of the requested size, or the fixed range is taken.
pub const KERN_NO_SPACE: kern_return_t = machvm_abi::KERN_NO_SPACE.0;
/// An argument is not valid.
pub const KERN_INVALID_ARGUMENT: kern_return_t = machvm_abi::KERN_INVALID_ARGUMENT.0;
/// Generic failure.
pub const KERN_FAILURE: kern_return_t = machvm_abi::KERN_FAILURE.0;
/// The host could not get the resources for the call.
pub const KERN_RESOURCE_SHORTAGE: kern_return_t = machvm_abi::KERN_RESOURCE_SHORTAGE.0;
/// The port is not a task port (`vm_msync` given the host port).
pub const KERN_INVALID_TASK: kern_return_t = machvm_abi::KERN_INVALID_TASK.0;
/// The port is not the host-privileged port (`vm_wire`).
pub const KERN_INVALID_HOST: kern_return_t = machvm_abi::KERN_INVALID_HOST.0;
/// The memory cannot share pages (`vm_remap` on a memory that is not backed by shared
/// memory files).
pub const KERN_NOT_SUPPORTED: kern_return_t = machvm_abi::KERN_NOT_SUPPORTED.0;
/// `mach_port_deallocate`: the namespace holds no such name.
pub const KERN_INVALID_NAME: kern_return_t = machvm_abi::KERN_INVALID_NAME.0;
/// `mach_port_deallocate` of a right that cannot go; `vm_map` past an entry's protection.
pub const KERN_INVALID_RIGHT: kern_return_t = machvm_abi::KERN_INVALID_RIGHT.0;
/// `mach_make_memory_entry_64`: an unknown `MAP_MEM_*` flag.
pub const KERN_INVALID_VALUE: kern_return_t = machvm_abi::KERN_INVALID_VALUE.0;
/// `vm_map`: the object port is no memory entry.
pub const KERN_INVALID_OBJECT: kern_return_t = machvm_abi::KERN_INVALID_OBJECT.0;
/// The port name is not a send right in the caller's namespace.
pub const MACH_SEND_INVALID_DEST: kern_return_t = machvm_abi::MACH_SEND_INVALID_DEST.0;
/// A port in the message body (`vm_wire`'s task) names no right of the caller.
pub const MACH_SEND_INVALID_RIGHT: kern_return_t = machvm_abi::MACH_SEND_INVALID_RIGHT.0;
/// The caller's data buffer is not readable.
pub const MACH_SEND_INVALID_MEMORY: kern_return_t = machvm_abi::MACH_SEND_INVALID_MEMORY.0;

/// `MACH_PORT_NULL`.
pub const MACH_PORT_NULL: mach_port_t = machvm_abi::MACH_PORT_NULL.0;
/// `MACH_PORT_DEAD`.
pub const MACH_PORT_DEAD: mach_port_t = machvm_abi::MACH_PORT_DEAD.0;

/// No access.
pub const VM_PROT_NONE: vm_prot_t = machvm_abi::VM_PROT_NONE.0;
/// Read access.
pub const VM_PROT_READ: vm_prot_t = machvm_abi::VM_PROT_READ.0;
/// Write access.
pub const VM_PROT_WRITE: vm_prot_t = machvm_abi::VM_PROT_WRITE.0;
/// Execute access (recorded only).
pub const VM_PROT_EXECUTE: vm_prot_t = machvm_abi::VM_PROT_EXECUTE.0;
/// Read and write.
pub const VM_PROT_DEFAULT: vm_prot_t = machvm_abi::VM_PROT_DEFAULT.0;
/// Read, write and execute.
pub const VM_PROT_ALL: vm_prot_t = machvm_abi::VM_PROT_ALL.0;
/// `vm_protect` only: make the range a private copy whose maximum gains WRITE.
pub const VM_PROT_COPY: vm_prot_t = machvm_abi::VM_PROT_COPY.0;

/// Shared with a child task.
pub const VM_INHERIT_SHARE: vm_inherit_t = machvm_abi::VM_INHERIT_SHARE.0;
/// Copied into a child task.
pub const VM_INHERIT_COPY: vm_inherit_t = machvm_abi::VM_INHERIT_COPY.0;
/// Absent from a child task.
pub const VM_INHERIT_NONE: vm_inherit_t = machvm_abi::VM_INHERIT_NONE.0;
/// The inheritance of new memory.
pub const VM_INHERIT_DEFAULT: vm_inherit_t = machvm_abi::VM_INHERIT_DEFAULT.0;

/// `VM_BEHAVIOR_DEFAULT`.
pub const VM_BEHAVIOR_DEFAULT: vm_behavior_t = machvm_abi::VM_BEHAVIOR_DEFAULT;
/// `vm_behavior_set`: random access expected (recorded).
pub const VM_BEHAVIOR_RANDOM: vm_behavior_t = machvm_abi::VM_BEHAVIOR_RANDOM;
/// `vm_behavior_set`: sequential access expected (recorded).
pub const VM_BEHAVIOR_SEQUENTIAL: vm_behavior_t = machvm_abi::VM_BEHAVIOR_SEQUENTIAL;
/// `vm_behavior_set`: reverse sequential access expected (recorded).
pub const VM_BEHAVIOR_RSEQNTL: vm_behavior_t = machvm_abi::VM_BEHAVIOR_RSEQNTL;
/// `vm_behavior_set` advice: the pages will be needed.
pub const VM_BEHAVIOR_WILLNEED: vm_behavior_t = machvm_abi::VM_BEHAVIOR_WILLNEED;
/// `vm_behavior_set` advice: the pages are not needed soon.
pub const VM_BEHAVIOR_DONTNEED: vm_behavior_t = machvm_abi::VM_BEHAVIOR_DONTNEED;
/// `vm_behavior_set` advice: the contents may be discarded.
pub const VM_BEHAVIOR_FREE: vm_behavior_t = machvm_abi::VM_BEHAVIOR_FREE;
/// `vm_behavior_set`: zero wired pages on unwiring.
pub const VM_BEHAVIOR_ZERO_WIRED_PAGES: vm_behavior_t = machvm_abi::VM_BEHAVIOR_ZERO_WIRED_PAGES;
/// `vm_behavior_set` advice: reusable (needs write access).
pub const VM_BEHAVIOR_REUSABLE: vm_behavior_t = machvm_abi::VM_BEHAVIOR_REUSABLE;
/// `vm_behavior_set` advice: reused.
pub const VM_BEHAVIOR_REUSE: vm_behavior_t = machvm_abi::VM_BEHAVIOR_REUSE;
/// `vm_behavior_set` advice: may be reused.
pub const VM_BEHAVIOR_CAN_REUSE: vm_behavior_t = machvm_abi::VM_BEHAVIOR_CAN_REUSE;
/// `vm_behavior_set`: debug kernels only (`KERN_INVALID_ARGUMENT`).
pub const VM_BEHAVIOR_PAGEOUT: vm_behavior_t = machvm_abi::VM_BEHAVIOR_PAGEOUT;

/// `vm_msync`: asynchronous write-back.
pub const VM_SYNC_ASYNCHRONOUS: vm_sync_t = machvm_abi::VM_SYNC_ASYNCHRONOUS;
/// `vm_msync`: synchronous write-back.
pub const VM_SYNC_SYNCHRONOUS: vm_sync_t = machvm_abi::VM_SYNC_SYNCHRONOUS;
/// `vm_msync`: invalidate.
pub const VM_SYNC_INVALIDATE: vm_sync_t = machvm_abi::VM_SYNC_INVALIDATE;
/// `vm_msync`: the contents may be discarded.
pub const VM_SYNC_KILLPAGES: vm_sync_t = machvm_abi::VM_SYNC_KILLPAGES;
/// `vm_msync`: deactivate.
pub const VM_SYNC_DEACTIVATE: vm_sync_t = machvm_abi::VM_SYNC_DEACTIVATE;
/// `vm_msync`: a hole answers `KERN_INVALID_ADDRESS`.
pub const VM_SYNC_CONTIGUOUS: vm_sync_t = machvm_abi::VM_SYNC_CONTIGUOUS;
/// `vm_msync`: reusable pages.
pub const VM_SYNC_REUSABLEPAGES: vm_sync_t = machvm_abi::VM_SYNC_REUSABLEPAGES;

/// `vm_allocate`: map exactly at the (page-truncated) address.
pub const VM_FLAGS_FIXED: i32 = machvm_abi::VM_FLAGS_FIXED.0 as i32;
/// `vm_allocate`: map at the lowest free range.
pub const VM_FLAGS_ANYWHERE: i32 = machvm_abi::VM_FLAGS_ANYWHERE.0 as i32;
/// `vm_allocate`: with FIXED, replace what is mapped there.
pub const VM_FLAGS_OVERWRITE: i32 = machvm_abi::VM_FLAGS_OVERWRITE.0 as i32;
/// Every flag a user may pass to `vm_allocate` (others: `KERN_INVALID_ARGUMENT`).
pub const VM_FLAGS_USER_ALLOCATE: u32 = machvm_abi::VM_FLAGS_USER_ALLOCATE.0;
/// `vm_allocate` / `vm_remap`: a random address (accepted, ignored).
pub const VM_FLAGS_RANDOM_ADDR: i32 = machvm_abi::VM_FLAGS_RANDOM_ADDR.0 as i32;
/// `vm_remap`: the new pages and the answered protections are read-only.
pub const VM_FLAGS_RESILIENT_CODESIGN: i32 = machvm_abi::VM_FLAGS_RESILIENT_CODESIGN.0 as i32;
/// `vm_remap`: accepted only with a copy.
pub const VM_FLAGS_RESILIENT_MEDIA: i32 = machvm_abi::VM_FLAGS_RESILIENT_MEDIA.0 as i32;
/// `vm_remap`: the answered address keeps the source's offset in its page (always so).
pub const VM_FLAGS_RETURN_DATA_ADDR: i32 = machvm_abi::VM_FLAGS_RETURN_DATA_ADDR.0 as i32;
/// Every flag a user may pass to `vm_remap` (others: `KERN_INVALID_ARGUMENT`).
pub const VM_FLAGS_USER_REMAP: u32 = machvm_abi::VM_FLAGS_USER_REMAP.0;
/// `vm_map`: as `VM_FLAGS_RETURN_DATA_ADDR`, in 4 KiB units.
pub const VM_FLAGS_RETURN_4K_DATA_ADDR: i32 = machvm_abi::VM_FLAGS_RETURN_4K_DATA_ADDR.0 as i32;
/// Every flag a user may pass to `vm_map` (others: `KERN_INVALID_ARGUMENT`).
pub const VM_FLAGS_USER_MAP: u32 = machvm_abi::VM_FLAGS_USER_MAP.0;
/// `mach_make_memory_entry_64` / `vm_map`: take what the memory or entry allows of the
/// protection asked.
pub const VM_PROT_IS_MASK: vm_prot_t = machvm_abi::VM_PROT_IS_MASK.0;

/// `mach_make_memory_entry_64` permission: ledger accounting (accepted, no effect).
pub const MAP_MEM_LEDGER_TAGGED: vm_prot_t = machvm_abi::MAP_MEM_LEDGER_TAGGED as vm_prot_t;
/// Permission: kernel-only volatility (accepted, no effect).
pub const MAP_MEM_PURGABLE_KERNEL_ONLY: vm_prot_t =
    machvm_abi::MAP_MEM_PURGABLE_KERNEL_ONLY as vm_prot_t;
/// Permission: secluded pages (accepted, no effect).
pub const MAP_MEM_GRAB_SECLUDED: vm_prot_t = machvm_abi::MAP_MEM_GRAB_SECLUDED as vm_prot_t;
/// Permission: change the parent's cache mode only (a null handle).
pub const MAP_MEM_ONLY: vm_prot_t = machvm_abi::MAP_MEM_ONLY as vm_prot_t;
/// Permission: a new object of fresh zero pages.
pub const MAP_MEM_NAMED_CREATE: vm_prot_t = machvm_abi::MAP_MEM_NAMED_CREATE as vm_prot_t;
/// Permission: with `MAP_MEM_NAMED_CREATE`, needs write.
pub const MAP_MEM_PURGABLE: vm_prot_t = machvm_abi::MAP_MEM_PURGABLE as vm_prot_t;
/// Permission: the parent itself when the new entry would name what it names.
pub const MAP_MEM_NAMED_REUSE: vm_prot_t = machvm_abi::MAP_MEM_NAMED_REUSE as vm_prot_t;
/// Permission: keep the offset's place in its page.
pub const MAP_MEM_USE_DATA_ADDR: vm_prot_t = machvm_abi::MAP_MEM_USE_DATA_ADDR as vm_prot_t;
/// Permission: a copy of the range, taken now.
pub const MAP_MEM_VM_COPY: vm_prot_t = machvm_abi::MAP_MEM_VM_COPY as vm_prot_t;
/// Permission: share the whole range (without it, only its first region).
pub const MAP_MEM_VM_SHARE: vm_prot_t = machvm_abi::MAP_MEM_VM_SHARE as vm_prot_t;
/// Permission: as `MAP_MEM_USE_DATA_ADDR`, in 4 KiB units.
pub const MAP_MEM_4K_DATA_ADDR: vm_prot_t = machvm_abi::MAP_MEM_4K_DATA_ADDR as vm_prot_t;
/// Every `MAP_MEM_*` flag a user may pass (others: `KERN_INVALID_VALUE`).
pub const MAP_MEM_FLAGS_USER: vm_prot_t = machvm_abi::MAP_MEM_FLAGS_USER as vm_prot_t;

/// Region flavor: [`vm_region_basic_info_64`].
pub const VM_REGION_BASIC_INFO_64: vm_region_flavor_t = machvm_abi::VM_REGION_BASIC_INFO_64;
/// The 32-bit flavor: fills a [`vm_region_basic_info`], count
/// [`VM_REGION_BASIC_INFO_COUNT`].
pub const VM_REGION_BASIC_INFO: vm_region_flavor_t = machvm_abi::VM_REGION_BASIC_INFO;
/// Size of [`vm_region_basic_info`] in 4-byte words (8).
pub const VM_REGION_BASIC_INFO_COUNT: mach_msg_type_number_t =
    machvm_abi::VM_REGION_BASIC_INFO_COUNT;
/// Size of [`vm_region_basic_info_64`] in 4-byte words.
pub const VM_REGION_BASIC_INFO_COUNT_64: mach_msg_type_number_t =
    machvm_abi::VM_REGION_BASIC_INFO_COUNT_64;

/// `vm_region_recurse_64`'s info: 19 words, [`vm_region_submap_info_64`].
pub const VM_REGION_SUBMAP_INFO_COUNT_64: mach_msg_type_number_t =
    machvm_abi::VM_REGION_SUBMAP_INFO_COUNT_64;
/// The short submap info's count (what counts 12 to 15 get).
pub const VM_REGION_SUBMAP_SHORT_INFO_COUNT_64: mach_msg_type_number_t =
    machvm_abi::VM_REGION_SUBMAP_SHORT_INFO_COUNT_64;
/// `vm_region_64` flavor: the region's pages and share mode.
pub const VM_REGION_EXTENDED_INFO: vm_region_flavor_t = machvm_abi::VM_REGION_EXTENDED_INFO;
/// Share mode: nothing backs the pages yet.
pub const SM_EMPTY: u8 = machvm_abi::SM_EMPTY;
/// Share mode: one mapping or entry refers to the pages.
pub const SM_PRIVATE: u8 = machvm_abi::SM_PRIVATE;
/// Share mode: several mappings or entries refer to the pages.
pub const SM_TRUESHARED: u8 = machvm_abi::SM_TRUESHARED;

/// `vm_region_submap_info_64`: 76 bytes, packed to 4 as in XNU.
#[repr(C, packed(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vm_region_submap_info_64 {
    /// Current protection.
    pub protection: vm_prot_t,
    /// Maximum protection.
    pub max_protection: vm_prot_t,
    /// Inheritance.
    pub inheritance: vm_inherit_t,
    /// The region's place in its shared object, else 0.
    pub offset: memory_object_offset_t,
    /// 0.
    pub user_tag: u32,
    /// Pages resident in host memory.
    pub pages_resident: u32,
    /// 0.
    pub pages_shared_now_private: u32,
    /// 0.
    pub pages_swapped_out: u32,
    /// 0.
    pub pages_dirtied: u32,
    /// The regions and memory entries that refer to its object.
    pub ref_count: u32,
    /// 0.
    pub shadow_depth: u16,
    /// 0.
    pub external_pager: u8,
    /// `SM_*`.
    pub share_mode: u8,
    /// 0 (no submaps).
    pub is_submap: boolean_t,
    /// Behavior.
    pub behavior: i32,
    /// The shared object's id, 0 for private memory.
    pub object_id: u32,
    /// 0.
    pub user_wired_count: u16,
    /// 0.
    pub pages_reusable: u32,
    /// The object's id, 64 bits.
    pub object_id_full: u64,
}

/// `vm_region_basic_info_64`: 36 bytes, packed to 4 as in XNU.
#[repr(C, packed(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vm_region_basic_info_64 {
    /// Current protection.
    pub protection: vm_prot_t,
    /// Maximum protection.
    pub max_protection: vm_prot_t,
    /// Inheritance.
    pub inheritance: vm_inherit_t,
    /// The pages belong to a shared object (`vm_remap`).
    pub shared: boolean_t,
    /// 0 in machvm.
    pub reserved: boolean_t,
    /// The region's place in its shared object; 0 for private memory.
    pub offset: memory_object_offset_t,
    /// What `vm_behavior_set` recorded (`VM_BEHAVIOR_DEFAULT` for new memory).
    pub behavior: vm_behavior_t,
    /// 0 in machvm.
    pub user_wired_count: u16,
}

/// XNU's typedef for the structure.
pub type vm_region_basic_info_data_64_t = vm_region_basic_info_64;

/// `vm_region_basic_info`, the 32-bit form (flavor [`VM_REGION_BASIC_INFO`]): 32
/// bytes, packed to 4 as in XNU; `offset` is 32 bits.
#[repr(C, packed(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vm_region_basic_info {
    /// Current protection.
    pub protection: vm_prot_t,
    /// Maximum protection.
    pub max_protection: vm_prot_t,
    /// Inheritance.
    pub inheritance: vm_inherit_t,
    /// The pages belong to a shared object (`vm_remap`).
    pub shared: boolean_t,
    /// 0 in machvm.
    pub reserved: boolean_t,
    /// The region's place in its shared object (32 bits); 0 for private memory.
    pub offset: u32,
    /// `VM_BEHAVIOR_DEFAULT` in machvm.
    pub behavior: vm_behavior_t,
    /// 0 in machvm.
    pub user_wired_count: u16,
}

/// XNU's typedef for the structure.
pub type vm_region_basic_info_data_t = vm_region_basic_info;

/// `vm_purgable_t`: `vm_purgable_control`'s operation.
pub type vm_purgable_t = i32;
/// `vm_allocate` flag: the allocation is a purgeable object of its own.
pub const VM_FLAGS_PURGABLE: i32 = machvm_abi::VM_FLAGS_PURGABLE.0 as i32;
/// Set the purgeable state (the old one comes back in `*state`).
pub const VM_PURGABLE_SET_STATE: vm_purgable_t = machvm_abi::VM_PURGABLE_SET_STATE;
/// Ask the purgeable state.
pub const VM_PURGABLE_GET_STATE: vm_purgable_t = machvm_abi::VM_PURGABLE_GET_STATE;
/// Empty every volatile purgeable object (of the kernel).
pub const VM_PURGABLE_PURGE_ALL: vm_purgable_t = machvm_abi::VM_PURGABLE_PURGE_ALL;
/// Purgeable state: the contents are kept.
pub const VM_PURGABLE_NONVOLATILE: i32 = machvm_abi::VM_PURGABLE_NONVOLATILE;
/// Purgeable state: the contents may be emptied.
pub const VM_PURGABLE_VOLATILE: i32 = machvm_abi::VM_PURGABLE_VOLATILE;
/// Purgeable state: emptied (the pages read as zero).
pub const VM_PURGABLE_EMPTY: i32 = machvm_abi::VM_PURGABLE_EMPTY;

/// `mach_vm_page_info` flavor: [`vm_page_info_basic`].
pub const VM_PAGE_INFO_BASIC: i32 = machvm_abi::VM_PAGE_INFO_BASIC;
/// [`vm_page_info_basic`]'s count (one less leaves out the pad).
pub const VM_PAGE_INFO_BASIC_COUNT: mach_msg_type_number_t = machvm_abi::VM_PAGE_INFO_BASIC_COUNT;
/// Page disposition: resident in the host's memory.
pub const VM_PAGE_QUERY_PAGE_PRESENT: i32 = machvm_abi::VM_PAGE_QUERY_PAGE_PRESENT;
/// Page disposition: referenced (machvm: with `PRESENT`).
pub const VM_PAGE_QUERY_PAGE_REF: i32 = machvm_abi::VM_PAGE_QUERY_PAGE_REF;
/// Page disposition: modified (machvm cannot tell: never set).
pub const VM_PAGE_QUERY_PAGE_DIRTY: i32 = machvm_abi::VM_PAGE_QUERY_PAGE_DIRTY;

/// `vm_page_info_basic`: 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vm_page_info_basic {
    /// `VM_PAGE_QUERY_PAGE_*` bits.
    pub disposition: i32,
    /// 1 for an allocated page, 0 otherwise.
    pub ref_count: i32,
    /// 0 in machvm (no VM objects).
    pub object_id: u64,
    /// The address's offset in its page, for an allocated page.
    pub offset: memory_object_offset_t,
    /// 0 in machvm.
    pub depth: i32,
    /// Padding.
    pub __pad: i32,
}

/// `task_info` flavor: [`mach_task_basic_info`].
pub const MACH_TASK_BASIC_INFO: u32 = machvm_abi::MACH_TASK_BASIC_INFO as u32;
/// [`mach_task_basic_info`]'s count.
pub const MACH_TASK_BASIC_INFO_COUNT: mach_msg_type_number_t =
    machvm_abi::MACH_TASK_BASIC_INFO_COUNT;
/// `task_info` flavor: [`task_vm_info`].
pub const TASK_VM_INFO: u32 = machvm_abi::TASK_VM_INFO as u32;
/// `task_info` flavor: [`task_vm_info`] with the purgeable volatile sizes.
pub const TASK_VM_INFO_PURGEABLE: u32 = machvm_abi::TASK_VM_INFO_PURGEABLE as u32;
/// [`task_vm_info`]'s count (revision 6).
pub const TASK_VM_INFO_COUNT: mach_msg_type_number_t = machvm_abi::TASK_VM_INFO_COUNT;
/// `task_vm_info`'s revision 0 count, the least `task_info` accepts.
pub const TASK_VM_INFO_REV0_COUNT: mach_msg_type_number_t = machvm_abi::TASK_VM_INFO_REV_COUNTS[0];
/// The scheduling policy `mach_task_basic_info` reports.
pub const POLICY_TIMESHARE: i32 = machvm_abi::POLICY_TIMESHARE;

/// `time_value_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct time_value_t {
    /// Seconds.
    pub seconds: integer_t,
    /// Microseconds.
    pub microseconds: integer_t,
}

/// `mach_task_basic_info`: 48 bytes, packed to 4.
#[repr(C, packed(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mach_task_basic_info {
    /// Allocated bytes.
    pub virtual_size: mach_vm_size_t,
    /// Allocated bytes resident in the host's memory.
    pub resident_size: mach_vm_size_t,
    /// The largest resident size reported.
    pub resident_size_max: mach_vm_size_t,
    /// 0 in machvm.
    pub user_time: time_value_t,
    /// 0 in machvm.
    pub system_time: time_value_t,
    /// `POLICY_TIMESHARE`.
    pub policy: i32,
    /// 0.
    pub suspend_count: integer_t,
}

/// `task_vm_info` (revision 6): 356 bytes, packed to 4. The fields machvm fills are
/// named; the others (0 in machvm) are in `rest` and `rest3`, by XNU's order.
#[repr(C, packed(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct task_vm_info {
    /// Allocated bytes.
    pub virtual_size: mach_vm_size_t,
    /// Regions.
    pub region_count: integer_t,
    /// The task's page size.
    pub page_size: integer_t,
    /// Allocated bytes resident in the host's memory.
    pub resident_size: mach_vm_size_t,
    /// The largest resident size reported.
    pub resident_size_peak: mach_vm_size_t,
    /// `device`, `device_peak` (0).
    pub device: [mach_vm_size_t; 2],
    /// The resident size (every page is anonymous).
    pub internal: mach_vm_size_t,
    /// The peak.
    pub internal_peak: mach_vm_size_t,
    /// `external` .. `compressed_lifetime` (0).
    pub rest: [mach_vm_size_t; 10],
    /// The resident size.
    pub phys_footprint: mach_vm_size_t,
    /// 0.
    pub min_address: mach_vm_address_t,
    /// The end of the task's map.
    pub max_address: mach_vm_address_t,
    /// The peak.
    pub ledger_phys_footprint_peak: i64,
    /// The other ledgers of revision 3 (0).
    pub rest3: [i64; 20],
    /// 0.
    pub limit_bytes_remaining: u64,
    /// 0.
    pub decompressions: integer_t,
    /// 0.
    pub ledger_swapins: i64,
}

/// `host_statistics64` flavor: [`vm_statistics64`].
pub const HOST_VM_INFO64: i32 = machvm_abi::HOST_VM_INFO64;
/// [`vm_statistics64`]'s count.
pub const HOST_VM_INFO64_COUNT: mach_msg_type_number_t = machvm_abi::HOST_VM_INFO64_COUNT;
/// The count without the compressor counts, the least `host_statistics64` accepts.
pub const HOST_VM_INFO64_REV0_COUNT: mach_msg_type_number_t = machvm_abi::HOST_VM_INFO64_REV0_COUNT;

/// `vm_statistics64`: 152 bytes, aligned to 8. machvm fills `free_count` (pages the
/// kernel's maps can still take), `active_count` and `internal_page_count` (their
/// resident allocated pages); the rest is 0.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct vm_statistics64 {
    /// Pages the maps can still take.
    pub free_count: natural_t,
    /// Resident allocated pages.
    pub active_count: natural_t,
    /// 0.
    pub inactive_count: natural_t,
    /// 0.
    pub wire_count: natural_t,
    /// `zero_fill_count` .. `purges` (0).
    pub counters: [u64; 9],
    /// 0.
    pub purgeable_count: natural_t,
    /// 0.
    pub speculative_count: natural_t,
    /// `decompressions` .. `swapouts` (0).
    pub counters1: [u64; 4],
    /// 0.
    pub compressor_page_count: natural_t,
    /// 0.
    pub throttled_count: natural_t,
    /// 0.
    pub external_page_count: natural_t,
    /// Resident allocated pages.
    pub internal_page_count: natural_t,
    /// 0.
    pub total_uncompressed_pages_in_compressor: u64,
}

#[link(wasm_import_module = "mach")]
extern "C" {
    /// The caller's own task port name.
    pub fn mach_task_self() -> mach_port_t;
    /// The host port name.
    pub fn mach_host_self() -> mach_port_t;
    /// Stores the VM page size in `*out_page_size`.
    pub fn host_page_size(host: host_t, out_page_size: *mut vm_size_t) -> kern_return_t;

    /// Word-sized `vm_allocate`.
    pub fn vm_allocate(
        target_task: vm_map_t,
        address: *mut vm_address_t,
        size: vm_size_t,
        flags: i32,
    ) -> kern_return_t;
    /// Word-sized `vm_deallocate`.
    pub fn vm_deallocate(
        target_task: vm_map_t,
        address: vm_address_t,
        size: vm_size_t,
    ) -> kern_return_t;
    /// Word-sized `vm_protect`.
    pub fn vm_protect(
        target_task: vm_map_t,
        address: vm_address_t,
        size: vm_size_t,
        set_maximum: boolean_t,
        new_protection: vm_prot_t,
    ) -> kern_return_t;
    /// Word-sized `vm_copy`.
    pub fn vm_copy(
        target_task: vm_map_t,
        source_address: vm_address_t,
        size: vm_size_t,
        dest_address: vm_address_t,
    ) -> kern_return_t;
    /// Word-sized `vm_read`.
    pub fn vm_read(
        target_task: vm_map_read_t,
        address: vm_address_t,
        size: vm_size_t,
        data: *mut vm_offset_t,
        data_cnt: *mut mach_msg_type_number_t,
    ) -> kern_return_t;
    /// Word-sized `vm_read_overwrite`.
    pub fn vm_read_overwrite(
        target_task: vm_map_read_t,
        address: vm_address_t,
        size: vm_size_t,
        data: vm_address_t,
        outsize: *mut vm_size_t,
    ) -> kern_return_t;
    /// Word-sized `vm_write`.
    pub fn vm_write(
        target_task: vm_map_t,
        address: vm_address_t,
        data: vm_offset_t,
        data_cnt: mach_msg_type_number_t,
    ) -> kern_return_t;
    /// Word-sized `vm_region_64`.
    pub fn vm_region_64(
        target_task: vm_map_read_t,
        address: *mut vm_address_t,
        size: *mut vm_size_t,
        flavor: vm_region_flavor_t,
        info: vm_region_info_t,
        info_cnt: *mut mach_msg_type_number_t,
        object_name: *mut mach_port_t,
    ) -> kern_return_t;

    /// Word-sized `vm_region_recurse_64`: the region at or after `*address` with its
    /// submap info.
    pub fn vm_region_recurse_64(
        target_task: vm_map_read_t,
        address: *mut vm_address_t,
        size: *mut vm_size_t,
        nesting_depth: *mut natural_t,
        info: vm_region_info_t,
        info_cnt: *mut mach_msg_type_number_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_region_recurse`.
    pub fn mach_vm_region_recurse(
        target_task: vm_map_read_t,
        address: *mut mach_vm_address_t,
        size: *mut mach_vm_size_t,
        nesting_depth: *mut natural_t,
        info: vm_region_info_t,
        info_cnt: *mut mach_msg_type_number_t,
    ) -> kern_return_t;

    /// Word-sized `vm_region`: `vm_region_64` under its older name.
    pub fn vm_region(
        target_task: vm_map_read_t,
        address: *mut vm_address_t,
        size: *mut vm_size_t,
        flavor: vm_region_flavor_t,
        info: vm_region_info_t,
        info_cnt: *mut mach_msg_type_number_t,
        object_name: *mut mach_port_t,
    ) -> kern_return_t;
    /// Word-sized `vm_behavior_set`.
    pub fn vm_behavior_set(
        target_task: vm_map_t,
        address: vm_address_t,
        size: vm_size_t,
        new_behavior: vm_behavior_t,
    ) -> kern_return_t;
    /// Word-sized `vm_inherit`: the allocated pages of the range take the inheritance.
    pub fn vm_inherit(
        target_task: vm_map_t,
        address: vm_address_t,
        size: vm_size_t,
        new_inheritance: vm_inherit_t,
    ) -> kern_return_t;
    /// Word-sized `vm_remap`: maps the source's pages (shared, or a private copy with
    /// `copy`) at `*target_address`, which then keeps the source's offset in its page;
    /// `*cur_protection` / `*max_protection` the AND of the source pages' own.
    pub fn vm_remap(
        target_task: vm_map_t,
        target_address: *mut vm_address_t,
        size: vm_size_t,
        mask: vm_address_t,
        flags: i32,
        src_task: vm_map_t,
        src_address: vm_address_t,
        copy: boolean_t,
        cur_protection: *mut vm_prot_t,
        max_protection: *mut vm_prot_t,
        inheritance: vm_inherit_t,
    ) -> kern_return_t;
    /// `mach_make_memory_entry_64`: a memory entry (a new name in this task's namespace)
    /// for `*size` bytes at `offset` of `target_task` (or of `parent_entry`), as the
    /// permission's `MAP_MEM_*` flags say; `*size` answers its size.
    pub fn mach_make_memory_entry_64(
        target_task: vm_map_t,
        size: *mut memory_object_size_t,
        offset: memory_object_offset_t,
        permission: vm_prot_t,
        object_handle: *mut mem_entry_name_port_t,
        parent_entry: mem_entry_name_port_t,
    ) -> kern_return_t;
    /// Word-sized `mach_make_memory_entry`.
    pub fn mach_make_memory_entry(
        target_task: vm_map_t,
        size: *mut vm_size_t,
        offset: vm_offset_t,
        permission: vm_prot_t,
        object_handle: *mut mem_entry_name_port_t,
        parent_entry: mem_entry_name_port_t,
    ) -> kern_return_t;
    /// Word-sized `vm_map`: maps a memory entry's pages (shared, or a copy with `copy`), or
    /// fresh memory for `MACH_PORT_NULL`, at `*address`.
    pub fn vm_map(
        target_task: vm_map_t,
        address: *mut vm_address_t,
        size: vm_size_t,
        mask: vm_address_t,
        flags: i32,
        object: mem_entry_name_port_t,
        offset: vm_offset_t,
        copy: boolean_t,
        cur_protection: vm_prot_t,
        max_protection: vm_prot_t,
        inheritance: vm_inherit_t,
    ) -> kern_return_t;
    /// `mach_port_deallocate`: drops a user reference of a name of `task`'s namespace.
    pub fn mach_port_deallocate(task: ipc_space_t, name: mach_port_name_t) -> kern_return_t;
    /// Word-sized `vm_msync`.
    pub fn vm_msync(
        target_task: vm_map_t,
        address: vm_address_t,
        size: vm_size_t,
        sync_flags: vm_sync_t,
    ) -> kern_return_t;
    /// Word-sized `vm_wire`: always refused (no guest holds `host_priv`).
    pub fn vm_wire(
        host_priv: host_priv_t,
        task: vm_map_t,
        address: vm_address_t,
        size: vm_size_t,
        desired_access: vm_prot_t,
    ) -> kern_return_t;

    /// 64-bit `mach_vm_allocate`.
    pub fn mach_vm_allocate(
        target: vm_map_t,
        address: *mut mach_vm_address_t,
        size: mach_vm_size_t,
        flags: i32,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_deallocate`.
    pub fn mach_vm_deallocate(
        target: vm_map_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_protect`.
    pub fn mach_vm_protect(
        target_task: vm_map_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
        set_maximum: boolean_t,
        new_protection: vm_prot_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_copy`.
    pub fn mach_vm_copy(
        target_task: vm_map_t,
        source_address: mach_vm_address_t,
        size: mach_vm_size_t,
        dest_address: mach_vm_address_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_read`; `*data` is a word-sized address in the caller.
    pub fn mach_vm_read(
        target_task: vm_map_read_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
        data: *mut vm_offset_t,
        data_cnt: *mut mach_msg_type_number_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_read_overwrite`.
    pub fn mach_vm_read_overwrite(
        target_task: vm_map_read_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
        data: mach_vm_address_t,
        outsize: *mut mach_vm_size_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_write`; `data` is a word-sized address in the caller.
    pub fn mach_vm_write(
        target_task: vm_map_t,
        address: mach_vm_address_t,
        data: vm_offset_t,
        data_cnt: mach_msg_type_number_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_region`.
    pub fn mach_vm_region(
        target_task: vm_map_read_t,
        address: *mut mach_vm_address_t,
        size: *mut mach_vm_size_t,
        flavor: vm_region_flavor_t,
        info: vm_region_info_t,
        info_cnt: *mut mach_msg_type_number_t,
        object_name: *mut mach_port_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_behavior_set`.
    pub fn mach_vm_behavior_set(
        target_task: vm_map_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
        new_behavior: vm_behavior_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_inherit`.
    pub fn mach_vm_inherit(
        target_task: vm_map_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
        new_inheritance: vm_inherit_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_remap`.
    pub fn mach_vm_remap(
        target_task: vm_map_t,
        target_address: *mut mach_vm_address_t,
        size: mach_vm_size_t,
        mask: mach_vm_offset_t,
        flags: i32,
        src_task: vm_map_t,
        src_address: mach_vm_address_t,
        copy: boolean_t,
        cur_protection: *mut vm_prot_t,
        max_protection: *mut vm_prot_t,
        inheritance: vm_inherit_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_map`.
    pub fn mach_vm_map(
        target_task: vm_map_t,
        address: *mut mach_vm_address_t,
        size: mach_vm_size_t,
        mask: mach_vm_offset_t,
        flags: i32,
        object: mem_entry_name_port_t,
        offset: memory_object_offset_t,
        copy: boolean_t,
        cur_protection: vm_prot_t,
        max_protection: vm_prot_t,
        inheritance: vm_inherit_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_msync`.
    pub fn mach_vm_msync(
        target_task: vm_map_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
        sync_flags: vm_sync_t,
    ) -> kern_return_t;
    /// Word-sized `vm_purgable_control`.
    pub fn vm_purgable_control(
        target_task: vm_map_t,
        address: vm_address_t,
        control: vm_purgable_t,
        state: *mut i32,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_purgable_control`.
    pub fn mach_vm_purgable_control(
        target_task: vm_map_t,
        address: mach_vm_address_t,
        control: vm_purgable_t,
        state: *mut i32,
    ) -> kern_return_t;
    /// Word-sized `vm_map_page_query`.
    pub fn vm_map_page_query(
        target_map: vm_map_read_t,
        offset: vm_offset_t,
        disposition: *mut integer_t,
        ref_count: *mut integer_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_page_query`.
    pub fn mach_vm_page_query(
        target_map: vm_map_read_t,
        offset: mach_vm_offset_t,
        disposition: *mut integer_t,
        ref_count: *mut integer_t,
    ) -> kern_return_t;
    /// `mach_vm_page_info` (flavor [`VM_PAGE_INFO_BASIC`]).
    pub fn mach_vm_page_info(
        target_task: vm_map_read_t,
        address: mach_vm_address_t,
        flavor: i32,
        info: *mut integer_t,
        info_cnt: *mut mach_msg_type_number_t,
    ) -> kern_return_t;
    /// `mach_vm_page_range_query`: `dispositions_addr` is an address in the caller.
    pub fn mach_vm_page_range_query(
        target_map: vm_map_read_t,
        address: mach_vm_offset_t,
        size: mach_vm_size_t,
        dispositions_addr: mach_vm_address_t,
        dispositions_count: *mut mach_vm_size_t,
    ) -> kern_return_t;
    /// `task_info` ([`MACH_TASK_BASIC_INFO`], [`TASK_VM_INFO`]).
    pub fn task_info(
        target_task: task_t,
        flavor: u32,
        task_info_out: *mut integer_t,
        task_info_out_cnt: *mut mach_msg_type_number_t,
    ) -> kern_return_t;
    /// `host_statistics64` ([`HOST_VM_INFO64`]).
    pub fn host_statistics64(
        host: host_t,
        flavor: i32,
        host_info64_out: *mut integer_t,
        host_info64_out_cnt: *mut mach_msg_type_number_t,
    ) -> kern_return_t;
    /// 64-bit `mach_vm_wire`: always refused (no guest holds `host_priv`).
    pub fn mach_vm_wire(
        host_priv: host_priv_t,
        task: vm_map_t,
        address: mach_vm_address_t,
        size: mach_vm_size_t,
        desired_access: vm_prot_t,
    ) -> kern_return_t;
}
