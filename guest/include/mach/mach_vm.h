/*
 * machvm guest SDK: <mach/mach_vm.h> — the mach_vm_* calls, whose addresses
 * and sizes are 64-bit (mach_vm_address_t / mach_vm_size_t: i64) in every
 * guest. Buffers of the caller that are not in the target's address space
 * (mach_vm_read's *data, mach_vm_write's data) stay vm_offset_t (word-sized).
 * Semantics as the vm_* forms of <mach/vm_map.h>, with 64-bit wrap-around.
 */
#ifndef _MACH_MACH_VM_H_
#define _MACH_MACH_VM_H_

#include <mach/machvm_import.h>
#include <mach/mach_types.h>

__MACHVM_BEGIN_DECLS

kern_return_t mach_vm_allocate(vm_map_t target, mach_vm_address_t *address,
	mach_vm_size_t size, int flags) __MACHVM_IMPORT("mach_vm_allocate");

kern_return_t mach_vm_deallocate(vm_map_t target, mach_vm_address_t address,
	mach_vm_size_t size) __MACHVM_IMPORT("mach_vm_deallocate");

kern_return_t mach_vm_protect(vm_map_t target_task, mach_vm_address_t address,
	mach_vm_size_t size, boolean_t set_maximum, vm_prot_t new_protection)
	__MACHVM_IMPORT("mach_vm_protect");

kern_return_t mach_vm_copy(vm_map_t target_task,
	mach_vm_address_t source_address, mach_vm_size_t size,
	mach_vm_address_t dest_address) __MACHVM_IMPORT("mach_vm_copy");

kern_return_t mach_vm_read(vm_map_read_t target_task,
	mach_vm_address_t address, mach_vm_size_t size, vm_offset_t *data,
	mach_msg_type_number_t *dataCnt) __MACHVM_IMPORT("mach_vm_read");

kern_return_t mach_vm_read_overwrite(vm_map_read_t target_task,
	mach_vm_address_t address, mach_vm_size_t size, mach_vm_address_t data,
	mach_vm_size_t *outsize) __MACHVM_IMPORT("mach_vm_read_overwrite");

kern_return_t mach_vm_write(vm_map_t target_task, mach_vm_address_t address,
	vm_offset_t data, mach_msg_type_number_t dataCnt)
	__MACHVM_IMPORT("mach_vm_write");

kern_return_t mach_vm_region(vm_map_read_t target_task,
	mach_vm_address_t *address, mach_vm_size_t *size,
	vm_region_flavor_t flavor, vm_region_info_t info,
	mach_msg_type_number_t *infoCnt, mach_port_t *object_name)
	__MACHVM_IMPORT("mach_vm_region");

kern_return_t mach_vm_behavior_set(vm_map_t target_task,
	mach_vm_address_t address, mach_vm_size_t size,
	vm_behavior_t new_behavior) __MACHVM_IMPORT("mach_vm_behavior_set");

kern_return_t mach_vm_inherit(vm_map_t target_task, mach_vm_address_t address,
	mach_vm_size_t size, vm_inherit_t new_inheritance)
	__MACHVM_IMPORT("mach_vm_inherit");

kern_return_t mach_vm_remap(vm_map_t target_task,
	mach_vm_address_t *target_address, mach_vm_size_t size,
	mach_vm_offset_t mask, int flags, vm_map_t src_task,
	mach_vm_address_t src_address, boolean_t copy, vm_prot_t *cur_protection,
	vm_prot_t *max_protection, vm_inherit_t inheritance)
	__MACHVM_IMPORT("mach_vm_remap");

kern_return_t mach_vm_region_recurse(vm_map_read_t target_task,
	mach_vm_address_t *address, mach_vm_size_t *size, natural_t *nesting_depth,
	vm_region_recurse_info_t info, mach_msg_type_number_t *infoCnt)
	__MACHVM_IMPORT("mach_vm_region_recurse");

kern_return_t mach_vm_map(vm_map_t target_task, mach_vm_address_t *address,
	mach_vm_size_t size, mach_vm_offset_t mask, int flags,
	mem_entry_name_port_t object, memory_object_offset_t offset,
	boolean_t copy, vm_prot_t cur_protection, vm_prot_t max_protection,
	vm_inherit_t inheritance) __MACHVM_IMPORT("mach_vm_map");

kern_return_t mach_vm_msync(vm_map_t target_task, mach_vm_address_t address,
	mach_vm_size_t size, vm_sync_t sync_flags)
	__MACHVM_IMPORT("mach_vm_msync");

kern_return_t mach_vm_purgable_control(vm_map_t target_task,
	mach_vm_address_t address, vm_purgable_t control, int *state)
	__MACHVM_IMPORT("mach_vm_purgable_control");

kern_return_t mach_vm_page_query(vm_map_read_t target_map,
	mach_vm_offset_t offset, integer_t *disposition, integer_t *ref_count)
	__MACHVM_IMPORT("mach_vm_page_query");

/* flavor VM_PAGE_INFO_BASIC, *infoCnt VM_PAGE_INFO_BASIC_COUNT (or one less). */
kern_return_t mach_vm_page_info(vm_map_read_t target_task,
	mach_vm_address_t address, vm_page_info_flavor_t flavor,
	vm_page_info_t info, mach_msg_type_number_t *infoCnt)
	__MACHVM_IMPORT("mach_vm_page_info");

/* One int disposition per page of [trunc(address), round(address + size)),
 * stored from dispositions_addr in the caller, at most *dispositions_count of
 * them; *dispositions_count is set to the number stored. When the caller's
 * buffer cannot take them: 14 (XNU's copyout error, read as KERN_ABORTED). */
kern_return_t mach_vm_page_range_query(vm_map_read_t target_map,
	mach_vm_offset_t address, mach_vm_size_t size,
	mach_vm_address_t dispositions_addr, mach_vm_size_t *dispositions_count)
	__MACHVM_IMPORT("mach_vm_page_range_query");

__MACHVM_END_DECLS

#endif /* _MACH_MACH_VM_H_ */
