/*
 * machvm guest SDK: <mach/task_info.h> — task_info's flavors machvm answers:
 * MACH_TASK_BASIC_INFO and TASK_VM_INFO (and TASK_VM_INFO_PURGEABLE); any other
 * flavor: KERN_INVALID_ARGUMENT. Packed to 4, as in XNU.
 *
 * Sizes: virtual_size is the task's allocated bytes; resident_size its
 * allocated bytes resident in the host's memory; the peaks are the largest
 * resident size task_info has reported. internal and phys_footprint are the
 * resident size (every page is anonymous, none compressed), but
 * phys_footprint and its peak leave out volatile (and emptied) purgeable
 * memory, which TASK_VM_INFO_PURGEABLE reports in purgeable_volatile_*;
 * region_count is the task's regions, min_address 0 and max_address its map's
 * end. Times, the suspend count, and the other sizes and ledgers are 0.
 */
#ifndef _MACH_TASK_INFO_H_
#define _MACH_TASK_INFO_H_

#include <mach/machvm_import.h>
#include <mach/vm_types.h>
#include <mach/message.h>
#include <mach/time_value.h>

typedef natural_t task_flavor_t;
typedef integer_t *task_info_t;
typedef integer_t task_info_data_t[1024];
typedef int policy_t;

#define POLICY_TIMESHARE 1

#pragma pack(push, 4)

#define MACH_TASK_BASIC_INFO 20
struct mach_task_basic_info {
	mach_vm_size_t virtual_size;       /* @0 */
	mach_vm_size_t resident_size;      /* @8 */
	mach_vm_size_t resident_size_max;  /* @16 */
	time_value_t user_time;            /* @24 */
	time_value_t system_time;          /* @32 */
	policy_t policy;                   /* @40 POLICY_TIMESHARE */
	integer_t suspend_count;           /* @44 */
};
typedef struct mach_task_basic_info mach_task_basic_info_data_t;
typedef struct mach_task_basic_info *mach_task_basic_info_t;
#define MACH_TASK_BASIC_INFO_COUNT \
	((mach_msg_type_number_t)(sizeof(mach_task_basic_info_data_t) / sizeof(natural_t)))

#define TASK_VM_INFO 22
#define TASK_VM_INFO_PURGEABLE 23
struct task_vm_info {
	mach_vm_size_t virtual_size;
	integer_t region_count;
	integer_t page_size;
	mach_vm_size_t resident_size;
	mach_vm_size_t resident_size_peak;
	mach_vm_size_t device;
	mach_vm_size_t device_peak;
	mach_vm_size_t internal;
	mach_vm_size_t internal_peak;
	mach_vm_size_t external;
	mach_vm_size_t external_peak;
	mach_vm_size_t reusable;
	mach_vm_size_t reusable_peak;
	mach_vm_size_t purgeable_volatile_pmap;
	mach_vm_size_t purgeable_volatile_resident;
	mach_vm_size_t purgeable_volatile_virtual;
	mach_vm_size_t compressed;
	mach_vm_size_t compressed_peak;
	mach_vm_size_t compressed_lifetime;
	/* added for rev1 */
	mach_vm_size_t phys_footprint;
	/* added for rev2 */
	mach_vm_address_t min_address;
	mach_vm_address_t max_address;
	/* added for rev3 */
	long long ledger_phys_footprint_peak;
	long long ledger_purgeable_nonvolatile;
	long long ledger_purgeable_novolatile_compressed;
	long long ledger_purgeable_volatile;
	long long ledger_purgeable_volatile_compressed;
	long long ledger_tag_network_nonvolatile;
	long long ledger_tag_network_nonvolatile_compressed;
	long long ledger_tag_network_volatile;
	long long ledger_tag_network_volatile_compressed;
	long long ledger_tag_media_footprint;
	long long ledger_tag_media_footprint_compressed;
	long long ledger_tag_media_nofootprint;
	long long ledger_tag_media_nofootprint_compressed;
	long long ledger_tag_graphics_footprint;
	long long ledger_tag_graphics_footprint_compressed;
	long long ledger_tag_graphics_nofootprint;
	long long ledger_tag_graphics_nofootprint_compressed;
	long long ledger_tag_neural_footprint;
	long long ledger_tag_neural_footprint_compressed;
	long long ledger_tag_neural_nofootprint;
	long long ledger_tag_neural_nofootprint_compressed;
	/* added for rev4 */
	unsigned long long limit_bytes_remaining;
	/* added for rev5 */
	integer_t decompressions;
	/* added for rev6 */
	long long ledger_swapins;
};
typedef struct task_vm_info task_vm_info_data_t;
typedef struct task_vm_info *task_vm_info_t;
#define TASK_VM_INFO_COUNT \
	((mach_msg_type_number_t)(sizeof(task_vm_info_data_t) / sizeof(natural_t)))
#define TASK_VM_INFO_REV6_COUNT TASK_VM_INFO_COUNT
#define TASK_VM_INFO_REV5_COUNT ((mach_msg_type_number_t)(TASK_VM_INFO_REV6_COUNT - 2))
#define TASK_VM_INFO_REV4_COUNT ((mach_msg_type_number_t)(TASK_VM_INFO_REV5_COUNT - 1))
#define TASK_VM_INFO_REV3_COUNT ((mach_msg_type_number_t)(TASK_VM_INFO_REV4_COUNT - 2))
#define TASK_VM_INFO_REV2_COUNT ((mach_msg_type_number_t)(TASK_VM_INFO_REV3_COUNT - 42))
#define TASK_VM_INFO_REV1_COUNT ((mach_msg_type_number_t)(TASK_VM_INFO_REV2_COUNT - 4))
#define TASK_VM_INFO_REV0_COUNT ((mach_msg_type_number_t)(TASK_VM_INFO_REV1_COUNT - 2))

#pragma pack(pop)

__MACHVM_LAYOUT(sizeof(struct mach_task_basic_info) == 48, "mach_task_basic_info is 48 bytes");
__MACHVM_LAYOUT(sizeof(struct task_vm_info) == 356, "task_vm_info is 356 bytes");
__MACHVM_LAYOUT(__builtin_offsetof(struct task_vm_info, phys_footprint) == 144, "phys_footprint @144");
__MACHVM_LAYOUT(__builtin_offsetof(struct task_vm_info, ledger_swapins) == 348, "ledger_swapins @348");
__MACHVM_LAYOUT(TASK_VM_INFO_REV0_COUNT == 36, "TASK_VM_INFO_REV0_COUNT is 36");

#endif /* _MACH_TASK_INFO_H_ */
