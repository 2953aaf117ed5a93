//! Host-side tests of the pure parts: constants, layout, names.

use super::sys::*;
use super::*;
use core::mem::{align_of, offset_of, size_of};

#[test]
fn kern_return_values_are_xnus() {
    assert_eq!(KERN_SUCCESS, 0);
    assert_eq!(KERN_INVALID_ADDRESS, 1);
    assert_eq!(KERN_PROTECTION_FAILURE, 2);
    assert_eq!(KERN_NO_SPACE, 3);
    assert_eq!(KERN_INVALID_ARGUMENT, 4);
    assert_eq!(KERN_FAILURE, 5);
    assert_eq!(KERN_RESOURCE_SHORTAGE, 6);
    assert_eq!(MACH_SEND_INVALID_DEST, 0x1000_0003);
    assert_eq!(MACH_SEND_INVALID_MEMORY, 0x1000_000c);
    assert_eq!(MACH_SEND_INVALID_RIGHT, 0x1000_000a);
    assert_eq!((KERN_INVALID_TASK, KERN_INVALID_HOST), (16, 22));
    assert_eq!(MACH_PORT_NULL, 0);
    assert_eq!(MACH_PORT_DEAD, u32::MAX);
}

#[test]
fn purgeable_values_are_xnus() {
    assert_eq!(VM_FLAGS_PURGABLE, 2);
    assert_eq!(
        [
            VM_PURGABLE_SET_STATE,
            VM_PURGABLE_GET_STATE,
            VM_PURGABLE_PURGE_ALL
        ],
        [0, 1, 2]
    );
    assert_eq!(
        [
            VM_PURGABLE_NONVOLATILE,
            VM_PURGABLE_VOLATILE,
            VM_PURGABLE_EMPTY
        ],
        [0, 1, 2]
    );
}

#[test]
fn info_structures_have_xnus_layout() {
    assert_eq!(size_of::<vm_page_info_basic>(), 32);
    assert_eq!(offset_of!(vm_page_info_basic, offset), 16);
    assert_eq!(size_of::<mach_task_basic_info>(), 48);
    assert_eq!(offset_of!(mach_task_basic_info, policy), 40);
    assert_eq!(size_of::<task_vm_info>(), TASK_VM_INFO_COUNT as usize * 4);
    assert_eq!(offset_of!(task_vm_info, phys_footprint), 144);
    assert_eq!(offset_of!(task_vm_info, min_address), 152);
    assert_eq!(offset_of!(task_vm_info, ledger_phys_footprint_peak), 168);
    assert_eq!(offset_of!(task_vm_info, limit_bytes_remaining), 336);
    assert_eq!(offset_of!(task_vm_info, ledger_swapins), 348);
    assert_eq!(
        size_of::<vm_statistics64>(),
        HOST_VM_INFO64_COUNT as usize * 4
    );
    assert_eq!(offset_of!(vm_statistics64, purgeable_count), 88);
    assert_eq!(offset_of!(vm_statistics64, internal_page_count), 140);
}

#[test]
fn behavior_and_sync_values_are_xnus() {
    assert_eq!(
        [
            VM_BEHAVIOR_DEFAULT,
            VM_BEHAVIOR_RANDOM,
            VM_BEHAVIOR_SEQUENTIAL,
            VM_BEHAVIOR_RSEQNTL,
            VM_BEHAVIOR_WILLNEED,
            VM_BEHAVIOR_DONTNEED,
            VM_BEHAVIOR_FREE,
            VM_BEHAVIOR_ZERO_WIRED_PAGES,
            VM_BEHAVIOR_REUSABLE,
            VM_BEHAVIOR_REUSE,
            VM_BEHAVIOR_CAN_REUSE,
            VM_BEHAVIOR_PAGEOUT,
        ],
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    );
    assert_eq!(
        [
            VM_SYNC_ASYNCHRONOUS,
            VM_SYNC_SYNCHRONOUS,
            VM_SYNC_INVALIDATE,
            VM_SYNC_KILLPAGES,
            VM_SYNC_DEACTIVATE,
            VM_SYNC_CONTIGUOUS,
            VM_SYNC_REUSABLEPAGES,
        ],
        [1, 2, 4, 8, 0x10, 0x20, 0x40]
    );
}

#[test]
fn vm_constants_are_xnus() {
    assert_eq!(
        [
            VM_PROT_NONE,
            VM_PROT_READ,
            VM_PROT_WRITE,
            VM_PROT_EXECUTE,
            VM_PROT_DEFAULT,
            VM_PROT_ALL,
            VM_PROT_COPY
        ],
        [0, 1, 2, 4, 3, 7, 0x10]
    );
    assert_eq!(
        [
            VM_INHERIT_SHARE,
            VM_INHERIT_COPY,
            VM_INHERIT_NONE,
            VM_INHERIT_DEFAULT
        ],
        [0, 1, 2, 1]
    );
    assert_eq!(
        [VM_FLAGS_FIXED, VM_FLAGS_ANYWHERE, VM_FLAGS_OVERWRITE],
        [0, 1, 0x4000]
    );
    assert_eq!(VM_FLAGS_USER_ALLOCATE, 0xFF07_509F);
    assert_eq!(VM_FLAGS_USER_ALLOCATE & VM_FLAGS_ANYWHERE as u32, 1);
    assert_eq!(VM_FLAGS_USER_ALLOCATE & VM_FLAGS_OVERWRITE as u32, 0x4000);
    assert_eq!(VM_REGION_BASIC_INFO_64, 9);
    assert_eq!(VM_REGION_BASIC_INFO, 10);
    assert_eq!(VM_REGION_BASIC_INFO_COUNT_64, 9);
    assert_eq!(VM_BEHAVIOR_DEFAULT, 0);
}

#[test]
fn submap_info_layout_is_xnus() {
    assert_eq!(
        size_of::<vm_region_submap_info_64>(),
        VM_REGION_SUBMAP_INFO_COUNT_64 as usize * 4
    );
    assert_eq!(size_of::<vm_region_submap_info_64>(), 76);
    assert_eq!(offset_of!(vm_region_submap_info_64, offset), 12);
    assert_eq!(offset_of!(vm_region_submap_info_64, ref_count), 40);
    assert_eq!(offset_of!(vm_region_submap_info_64, share_mode), 47);
    assert_eq!(offset_of!(vm_region_submap_info_64, object_id), 56);
    assert_eq!(offset_of!(vm_region_submap_info_64, pages_reusable), 64);
    assert_eq!(offset_of!(vm_region_submap_info_64, object_id_full), 68);
}

#[test]
fn region_info_layout_is_xnus() {
    assert_eq!(size_of::<vm_region_basic_info_64>(), 36);
    assert_eq!(size_of::<vm_region_basic_info>(), 32);
    assert_eq!(VM_REGION_BASIC_INFO_COUNT, 8);
    // The shared counts are the structures' sizes in 4-byte words, as XNU defines them.
    assert_eq!(
        size_of::<vm_region_basic_info>(),
        VM_REGION_BASIC_INFO_COUNT as usize * 4
    );
    assert_eq!(
        size_of::<vm_region_basic_info_64>(),
        VM_REGION_BASIC_INFO_COUNT_64 as usize * 4
    );
    assert_eq!(offset_of!(vm_region_basic_info, offset), 20);
    assert_eq!(offset_of!(vm_region_basic_info, behavior), 24);
    assert_eq!(offset_of!(vm_region_basic_info, user_wired_count), 28);
    assert_eq!(align_of::<vm_region_basic_info_64>(), 4);
    assert_eq!(offset_of!(vm_region_basic_info_64, protection), 0);
    assert_eq!(offset_of!(vm_region_basic_info_64, max_protection), 4);
    assert_eq!(offset_of!(vm_region_basic_info_64, inheritance), 8);
    assert_eq!(offset_of!(vm_region_basic_info_64, shared), 12);
    assert_eq!(offset_of!(vm_region_basic_info_64, reserved), 16);
    assert_eq!(offset_of!(vm_region_basic_info_64, offset), 20);
    assert_eq!(offset_of!(vm_region_basic_info_64, behavior), 28);
    assert_eq!(offset_of!(vm_region_basic_info_64, user_wired_count), 32);
}

#[test]
fn region_info_decodes_little_endian_bytes() {
    // The 36 bytes a host writes for a read-only page with max ALL.
    let mut bytes = [0u8; 36];
    bytes[0] = 1; // protection
    bytes[4] = 7; // max_protection
    bytes[8] = 1; // inheritance COPY
    bytes[20..28].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    bytes[32] = 9; // user_wired_count
                   // SAFETY: any 36 bytes are a valid vm_region_basic_info_64 (plain integers).
    let info: vm_region_basic_info_64 = unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let (p, m, i, o, w) = (
        info.protection,
        info.max_protection,
        info.inheritance,
        info.offset,
        info.user_wired_count,
    );
    assert_eq!(
        (p, m, i, o, w),
        (
            VM_PROT_READ,
            VM_PROT_ALL,
            VM_INHERIT_COPY,
            0x0102_0304_0506_0708,
            9
        )
    );
}

#[test]
fn port_and_word_types() {
    assert_eq!(size_of::<mach_port_t>(), 4);
    assert_eq!(size_of::<mach_msg_type_number_t>(), 4);
    assert_eq!(size_of::<vm_address_t>(), size_of::<*const u8>());
    assert_eq!(size_of::<vm_size_t>(), size_of::<usize>());
    assert_eq!(size_of::<mach_vm_address_t>(), 8);
    assert_eq!(size_of::<KernReturn>(), 4);
}

#[test]
fn kern_return_names_and_results() {
    assert_eq!(KernReturn::result(0), Ok(()));
    assert_eq!(KernReturn::result(2), Err(KernReturn::PROTECTION_FAILURE));
    assert_eq!(
        KernReturn::INVALID_ADDRESS.name(),
        Some("KERN_INVALID_ADDRESS")
    );
    assert_eq!(
        KernReturn::SEND_INVALID_DEST.name(),
        Some("MACH_SEND_INVALID_DEST")
    );
    assert_eq!(KernReturn(77).name(), None);
    assert_eq!(
        KernReturn::NO_SPACE.message(),
        "(os/kern) no space available"
    );
    assert_eq!(
        KernReturn::SEND_INVALID_MEMORY.message(),
        "(ipc/send) invalid memory"
    );
    assert_eq!(KernReturn(-3).message(), "unknown error code");
    for kr in [
        KernReturn::SUCCESS,
        KernReturn::INVALID_ADDRESS,
        KernReturn::PROTECTION_FAILURE,
        KernReturn::NO_SPACE,
        KernReturn::INVALID_ARGUMENT,
        KernReturn::FAILURE,
        KernReturn::RESOURCE_SHORTAGE,
        KernReturn::ABORTED,
        KernReturn::INVALID_TASK,
        KernReturn::INVALID_HOST,
        KernReturn::SEND_INVALID_DEST,
        KernReturn::SEND_INVALID_RIGHT,
        KernReturn::SEND_INVALID_MEMORY,
    ] {
        assert!(kr.name().is_some());
        assert_ne!(kr.message(), "unknown error code");
    }
}

#[test]
fn page_rounding_and_prot_strings() {
    assert_eq!(trunc_page(0x1fff, 0x1000), 0x1000);
    assert_eq!(round_page(0x1001, 0x1000), 0x2000);
    assert_eq!(round_page(0x2000, 0x1000), 0x2000);
    assert_eq!(round_page(usize::MAX - 5, 0x4000), 0); // wraps, as XNU's round_page
    assert_eq!(prot_str(VM_PROT_NONE), "---");
    assert_eq!(prot_str(VM_PROT_DEFAULT), "rw-");
    assert_eq!(prot_str(VM_PROT_ALL | VM_PROT_COPY), "rwx");
    let r = Region {
        address: 0x1000usize,
        size: 0x3000,
        protection: 1,
        max_protection: 7,
        inheritance: 1,
    };
    assert_eq!(r.end(), 0x4000);
    let top = Region {
        address: u64::MAX - 0xfff,
        size: 0x1000u64,
        protection: 0,
        max_protection: 0,
        inheritance: 1,
    };
    assert_eq!(top.end(), u64::MAX);
}
