//! Constants of spec §2, with the values of XNU's headers.

use crate::{MachPort, VmFlags, VmInherit, VmProt};

/// No access.
pub const VM_PROT_NONE: VmProt = VmProt(0);
/// Read access.
pub const VM_PROT_READ: VmProt = VmProt(1);
/// Write access.
pub const VM_PROT_WRITE: VmProt = VmProt(2);
/// Execute access (recorded, meaningless for wasm data).
pub const VM_PROT_EXECUTE: VmProt = VmProt(4);
/// Read and write.
pub const VM_PROT_DEFAULT: VmProt = VmProt(3);
/// Read, write and execute.
pub const VM_PROT_ALL: VmProt = VmProt(7);
/// `vm_protect` only: make the range a private copy whose maximum gains write.
pub const VM_PROT_COPY: VmProt = VmProt(0x10);
/// `mach_make_memory_entry_64` and `vm_map`: take whatever of the asked protections the
/// memory allows, instead of failing without them.
pub const VM_PROT_IS_MASK: VmProt = VmProt(0x40);

/// Shared with the child task.
pub const VM_INHERIT_SHARE: VmInherit = VmInherit(0);
/// Copied into the child task (the default).
pub const VM_INHERIT_COPY: VmInherit = VmInherit(1);
/// Absent from the child task.
pub const VM_INHERIT_NONE: VmInherit = VmInherit(2);
/// Copied into the child task and removed from the parent (no longer accepted by
/// `vm_inherit`).
pub const VM_INHERIT_DONATE_COPY: VmInherit = VmInherit(3);
/// The inheritance of new memory.
pub const VM_INHERIT_DEFAULT: VmInherit = VM_INHERIT_COPY;
/// The last value `vm_inherit` accepts.
pub const VM_INHERIT_LAST_VALID: VmInherit = VM_INHERIT_NONE;

/// `vm_allocate` flag: map exactly at the given address.
pub const VM_FLAGS_FIXED: VmFlags = VmFlags(0);
/// `vm_allocate` flag: map at the lowest free range (the address is only a hint).
pub const VM_FLAGS_ANYWHERE: VmFlags = VmFlags(1);
/// `vm_allocate` flag: the memory is a purgeable object (`vm_purgable_control`).
pub const VM_FLAGS_PURGABLE: VmFlags = VmFlags(0x2);
/// `vm_allocate` flag: with a fixed address, replace what is mapped there.
pub const VM_FLAGS_OVERWRITE: VmFlags = VmFlags(0x4000);
/// Every flag bit a user may pass to `vm_allocate`; others give `KERN_INVALID_ARGUMENT`.
pub const VM_FLAGS_USER_ALLOCATE: VmFlags = VmFlags(0xFF07_509F);
/// `vm_allocate` / `vm_remap` flag: a random address (accepted, ignored).
pub const VM_FLAGS_RANDOM_ADDR: VmFlags = VmFlags(0x8);
/// `vm_remap` flag: the new pages, and the protections answered, are read-only.
pub const VM_FLAGS_RESILIENT_CODESIGN: VmFlags = VmFlags(0x20);
/// `vm_remap` flag: only with a copy.
pub const VM_FLAGS_RESILIENT_MEDIA: VmFlags = VmFlags(0x40);
/// `vm_remap` flag: the address answered keeps the source's offset in its page (XNU
/// 10002's `vm_remap` acts as if it were always set).
pub const VM_FLAGS_RETURN_DATA_ADDR: VmFlags = VmFlags(0x10_0000);
/// Every flag bit a user may pass to `vm_remap` (the tag byte is not among them); others
/// give `KERN_INVALID_ARGUMENT`.
pub const VM_FLAGS_USER_REMAP: VmFlags = VmFlags(0x0010_4069);
/// `vm_map` flag: as `VM_FLAGS_RETURN_DATA_ADDR`, the offset kept in 4 KiB units.
pub const VM_FLAGS_RETURN_4K_DATA_ADDR: VmFlags = VmFlags(0x80_0000);
/// Every flag bit a user may pass to `vm_map` (`VM_FLAGS_USER_ALLOCATE` and the two
/// data-address flags); others give `KERN_INVALID_ARGUMENT`.
pub const VM_FLAGS_USER_MAP: VmFlags = VmFlags(0xFF97_509F);

/// `mach_make_memory_entry_64` permission flag: the entry's object is accounted to a ledger
/// (accepted, no effect).
pub const MAP_MEM_LEDGER_TAGGED: u32 = 0x2000;
/// Permission flag: only the kernel may make the object volatile (accepted, no effect).
pub const MAP_MEM_PURGABLE_KERNEL_ONLY: u32 = 0x4000;
/// Permission flag: the object may take secluded pages (accepted, no effect).
pub const MAP_MEM_GRAB_SECLUDED: u32 = 0x8000;
/// Permission flag: change the parent entry's cache mode only; no entry is made.
pub const MAP_MEM_ONLY: u32 = 0x1_0000;
/// Permission flag: a new object of fresh zero pages.
pub const MAP_MEM_NAMED_CREATE: u32 = 0x2_0000;
/// Permission flag: with `MAP_MEM_NAMED_CREATE`, a purgeable object (needs write).
pub const MAP_MEM_PURGABLE: u32 = 0x4_0000;
/// Permission flag: answer the parent entry itself when the new one would equal it.
pub const MAP_MEM_NAMED_REUSE: u32 = 0x8_0000;
/// Permission flag: the entry keeps the offset's place in its page (its data offset).
pub const MAP_MEM_USE_DATA_ADDR: u32 = 0x10_0000;
/// Permission flag: the entry holds a copy of the range, taken now.
pub const MAP_MEM_VM_COPY: u32 = 0x20_0000;
/// Permission flag: the entry shares the whole range (every region of it).
pub const MAP_MEM_VM_SHARE: u32 = 0x40_0000;
/// Permission flag: as `MAP_MEM_USE_DATA_ADDR`, in 4 KiB units.
pub const MAP_MEM_4K_DATA_ADDR: u32 = 0x80_0000;
/// The bits of the permission word that hold `MAP_MEM_*` flags.
pub const MAP_MEM_FLAGS_MASK: u32 = 0x00FF_FF00;
/// Every `MAP_MEM_*` flag a user may pass; others give `KERN_INVALID_VALUE`.
pub const MAP_MEM_FLAGS_USER: u32 = 0x00FF_E000;

/// `vm_region` flavor: `vm_region_basic_info_64`.
pub const VM_REGION_BASIC_INFO_64: i32 = 9;
/// `vm_region` flavor: `vm_region_basic_info`, the 32-bit form (its `offset` is 32 bits).
pub const VM_REGION_BASIC_INFO: i32 = 10;
/// `VM_REGION_BASIC_INFO_COUNT_64`: the info's size in 4-byte words.
pub const VM_REGION_BASIC_INFO_COUNT_64: u32 = 9;
/// `VM_REGION_BASIC_INFO_COUNT`: `vm_region_basic_info`'s size in 4-byte words.
pub const VM_REGION_BASIC_INFO_COUNT: u32 = 8;
/// Size in bytes of `vm_region_basic_info_64` as the guest sees it (packed to 4).
pub const VM_REGION_BASIC_INFO_SIZE: usize = 36;
/// Size in bytes of `vm_region_basic_info`, the 32-bit form (packed to 4).
pub const VM_REGION_BASIC_INFO_32_SIZE: usize = 32;
/// `vm_region` flavor: `vm_region_extended_info` (its pages and share mode, spec §8).
pub const VM_REGION_EXTENDED_INFO: i32 = 13;
/// `VM_REGION_EXTENDED_INFO_COUNT`: `vm_region_extended_info`'s size in 4-byte words.
pub const VM_REGION_EXTENDED_INFO_COUNT: u32 = 9;
/// The info a region flavor fills: its count (`*count` must be at least that, and is set
/// to it) and its size in bytes; `None` for a flavor machvm does not know.
pub fn region_flavor(flavor: i32) -> Option<(u32, usize)> {
    match flavor {
        VM_REGION_BASIC_INFO_64 => Some((VM_REGION_BASIC_INFO_COUNT_64, VM_REGION_BASIC_INFO_SIZE)),
        VM_REGION_BASIC_INFO => Some((VM_REGION_BASIC_INFO_COUNT, VM_REGION_BASIC_INFO_32_SIZE)),
        VM_REGION_EXTENDED_INFO => Some((VM_REGION_EXTENDED_INFO_COUNT, 36)),
        _ => None,
    }
}

/// `vm_region_recurse_64`'s `vm_region_submap_info_64` in 4-byte words (76 bytes).
pub const VM_REGION_SUBMAP_INFO_COUNT_64: u32 = 19;
/// Its version 1 (no `object_id_full`).
pub const VM_REGION_SUBMAP_INFO_V1_COUNT_64: u32 = 17;
/// Its version 0 (no `pages_reusable` either).
pub const VM_REGION_SUBMAP_INFO_V0_COUNT_64: u32 = 16;
/// `vm_region_submap_short_info_64` in 4-byte words (48 bytes): what counts 12 to 15 get.
pub const VM_REGION_SUBMAP_SHORT_INFO_COUNT_64: u32 = 12;

/// Share mode: copy-on-write.
pub const SM_COW: u8 = 1;
/// Share mode: one mapping (or entry) refers to the pages.
pub const SM_PRIVATE: u8 = 2;
/// Share mode: nothing backs the pages yet (never touched).
pub const SM_EMPTY: u8 = 3;
/// Share mode: shared, not truly.
pub const SM_SHARED: u8 = 4;
/// Share mode: several mappings or entries refer to the pages.
pub const SM_TRUESHARED: u8 = 5;
/// Share mode: private, aliased within one map.
pub const SM_PRIVATE_ALIASED: u8 = 6;
/// Share mode: shared and aliased within one map.
pub const SM_SHARED_ALIASED: u8 = 7;
/// Share mode: a large page.
pub const SM_LARGE_PAGE: u8 = 8;
/// `vm_behavior_t`: paging advice for a range (`vm_behavior_set`).
pub type VmBehavior = i32;
/// `VM_BEHAVIOR_DEFAULT`: the behavior of new memory.
pub const VM_BEHAVIOR_DEFAULT: VmBehavior = 0;
/// `VM_BEHAVIOR_RANDOM`: kept as the range's behavior.
pub const VM_BEHAVIOR_RANDOM: VmBehavior = 1;
/// `VM_BEHAVIOR_SEQUENTIAL`: kept as the range's behavior.
pub const VM_BEHAVIOR_SEQUENTIAL: VmBehavior = 2;
/// `VM_BEHAVIOR_RSEQNTL`: kept as the range's behavior.
pub const VM_BEHAVIOR_RSEQNTL: VmBehavior = 3;
/// `VM_BEHAVIOR_WILLNEED`: advice, acted on at once (the range must be mapped).
pub const VM_BEHAVIOR_WILLNEED: VmBehavior = 4;
/// `VM_BEHAVIOR_DONTNEED`: advice (a contiguous `vm_msync` with `VM_SYNC_DEACTIVATE`).
pub const VM_BEHAVIOR_DONTNEED: VmBehavior = 5;
/// `VM_BEHAVIOR_FREE`: advice (a contiguous `vm_msync` with `VM_SYNC_KILLPAGES`).
pub const VM_BEHAVIOR_FREE: VmBehavior = 6;
/// `VM_BEHAVIOR_ZERO_WIRED_PAGES`: a flag on the range, not reported by `vm_region`.
pub const VM_BEHAVIOR_ZERO_WIRED_PAGES: VmBehavior = 7;
/// `VM_BEHAVIOR_REUSABLE`: advice; the range must be writable.
pub const VM_BEHAVIOR_REUSABLE: VmBehavior = 8;
/// `VM_BEHAVIOR_REUSE`: advice.
pub const VM_BEHAVIOR_REUSE: VmBehavior = 9;
/// `VM_BEHAVIOR_CAN_REUSE`: advice.
pub const VM_BEHAVIOR_CAN_REUSE: VmBehavior = 10;
/// `VM_BEHAVIOR_PAGEOUT`: only in XNU's debug kernels; `KERN_INVALID_ARGUMENT` here, as in
/// a release kernel.
pub const VM_BEHAVIOR_PAGEOUT: VmBehavior = 11;

/// `vm_sync_t`: `vm_msync` flags.
pub type VmSync = u32;
/// `VM_SYNC_ASYNCHRONOUS`.
pub const VM_SYNC_ASYNCHRONOUS: VmSync = 0x01;
/// `VM_SYNC_SYNCHRONOUS` (with `ASYNCHRONOUS`: `KERN_INVALID_ARGUMENT`).
pub const VM_SYNC_SYNCHRONOUS: VmSync = 0x02;
/// `VM_SYNC_INVALIDATE`.
pub const VM_SYNC_INVALIDATE: VmSync = 0x04;
/// `VM_SYNC_KILLPAGES`: the walk stops at the first hole.
pub const VM_SYNC_KILLPAGES: VmSync = 0x08;
/// `VM_SYNC_DEACTIVATE`.
pub const VM_SYNC_DEACTIVATE: VmSync = 0x10;
/// `VM_SYNC_CONTIGUOUS`: a hole in the range answers `KERN_INVALID_ADDRESS`.
pub const VM_SYNC_CONTIGUOUS: VmSync = 0x20;
/// `VM_SYNC_REUSABLEPAGES`.
pub const VM_SYNC_REUSABLEPAGES: VmSync = 0x40;

/// `mach_vm_page_info` flavor: `vm_page_info_basic`.
pub const VM_PAGE_INFO_BASIC: i32 = 1;
/// `VM_PAGE_INFO_BASIC_COUNT`: `vm_page_info_basic`'s size in 4-byte words (32 bytes); one
/// less (without the trailing pad) is accepted too, as XNU does.
pub const VM_PAGE_INFO_BASIC_COUNT: u32 = 8;
/// A page's disposition: resident in memory.
pub const VM_PAGE_QUERY_PAGE_PRESENT: i32 = 0x1;
/// A page's disposition: referenced.
pub const VM_PAGE_QUERY_PAGE_REF: i32 = 0x4;
/// A page's disposition: modified.
pub const VM_PAGE_QUERY_PAGE_DIRTY: i32 = 0x8;
/// The most bytes of a range `mach_vm_page_range_query` looks at in one step (1 GiB).
pub const MAX_PAGE_RANGE_QUERY: u64 = 1 << 30;

/// `task_info` flavor: `mach_task_basic_info`.
pub const MACH_TASK_BASIC_INFO: i32 = 20;
/// `MACH_TASK_BASIC_INFO_COUNT` (48 bytes).
pub const MACH_TASK_BASIC_INFO_COUNT: u32 = 12;
/// `task_info` flavor: `task_vm_info`.
pub const TASK_VM_INFO: i32 = 22;
/// `task_info` flavor: `task_vm_info` with the purgeable volatile sizes filled in.
pub const TASK_VM_INFO_PURGEABLE: i32 = 23;
/// `TASK_VM_INFO_COUNT`: `task_vm_info`'s size in 4-byte words (revision 6, 356 bytes).
pub const TASK_VM_INFO_COUNT: u32 = 89;
/// The counts of `task_vm_info`'s revisions 0 to 6: `task_info` fills the newest that the
/// caller's count holds and answers its count.
pub const TASK_VM_INFO_REV_COUNTS: [u32; 7] = [36, 38, 42, 84, 86, 87, 89];
/// `POLICY_TIMESHARE`, the scheduling policy `mach_task_basic_info` reports.
pub const POLICY_TIMESHARE: i32 = 1;

/// `host_statistics64` flavor: `vm_statistics64`.
pub const HOST_VM_INFO64: i32 = 4;
/// `HOST_VM_INFO64_COUNT`: `vm_statistics64`'s size in 4-byte words (152 bytes).
pub const HOST_VM_INFO64_COUNT: u32 = 38;
/// `HOST_VM_INFO64_REV0_COUNT`: without the compressor counts (96 bytes).
pub const HOST_VM_INFO64_REV0_COUNT: u32 = 24;

/// `vm_purgable_control`: set the object's state, answer the old one.
pub const VM_PURGABLE_SET_STATE: i32 = 0;
/// `vm_purgable_control`: answer the object's state.
pub const VM_PURGABLE_GET_STATE: i32 = 1;
/// `vm_purgable_control`: empty every volatile object (of the kernel: its host).
pub const VM_PURGABLE_PURGE_ALL: i32 = 2;
/// `vm_purgable_control`: the kernel's own `SET_STATE`, refused from a task.
pub const VM_PURGABLE_SET_STATE_FROM_KERNEL: i32 = 3;
/// Purgeable state: the contents are kept.
pub const VM_PURGABLE_NONVOLATILE: i32 = 0;
/// Purgeable state: the contents may be emptied under pressure.
pub const VM_PURGABLE_VOLATILE: i32 = 1;
/// Purgeable state: emptied (its pages read as zero).
pub const VM_PURGABLE_EMPTY: i32 = 2;
/// Not a state a task can set (XNU marks objects that are not purgeable with it).
pub const VM_PURGABLE_DENY: i32 = 3;
/// The state's bits in `vm_purgable_control`'s `*state`.
pub const VM_PURGABLE_STATE_MASK: i32 = 3;
/// `VM_PURGABLE_DEBUG_EMPTY`: the object is emptied whenever it is made volatile.
pub const VM_PURGABLE_DEBUG_EMPTY: i32 = 0x1000;
/// Every bit `SET_STATE` accepts in `*state`: the state, the volatile order, ordering,
/// behavior and group, the debug bits and no-aging (accepted; machvm has one queue).
pub const VM_PURGABLE_ALL_MASKS: i32 = 0x3 | 0x10 | 0x20 | 0x40 | 0x700 | 0x3000 | 0x1_0000;

/// `MACH_PORT_NULL`.
pub const MACH_PORT_NULL: MachPort = MachPort(0);
/// `MACH_PORT_DEAD`.
pub const MACH_PORT_DEAD: MachPort = MachPort(0xFFFF_FFFF);

/// The name of a task's own task port in its namespace (`mach_task_self()`).
pub const TASK_SELF_NAME: MachPort = MachPort(0x103);
/// The name of the host port in every task's namespace (`mach_host_self()`).
pub const HOST_SELF_NAME: MachPort = MachPort(0x203);
