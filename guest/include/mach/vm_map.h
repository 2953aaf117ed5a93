/*
 * machvm guest SDK: <mach/vm_map.h> — the word-sized vm_* calls.
 *
 * "Machine word length specific": addresses and sizes are vm_address_t /
 * vm_size_t (uintptr_t), so i32 in a wasm32 guest and i64 in a wasm64 guest;
 * wrap-around is computed in that width. Every call returns kern_return_t and
 * stores its out-parameters only on success.
 */
#ifndef _MACH_VM_MAP_H_
#define _MACH_VM_MAP_H_

#include <mach/machvm_import.h>
#include <mach/mach_types.h>

__MACHVM_BEGIN_DECLS

/* Maps zero-filled pages, RW (max ALL). VM_FLAGS_ANYWHERE: *address is only a
 * hint, the lowest free run is taken; VM_FLAGS_FIXED: at trunc_page(*address).
 * size 0: KERN_SUCCESS with *address = 0. */
kern_return_t vm_allocate(vm_map_t target_task, vm_address_t *address,
	vm_size_t size, int flags) __MACHVM_IMPORT("vm_allocate");

/* Unmaps the allocated pages of [trunc(address), round(address + size)). */
kern_return_t vm_deallocate(vm_map_t target_task, vm_address_t address,
	vm_size_t size) __MACHVM_IMPORT("vm_deallocate");

/* Sets the current (set_maximum false) or the maximum (true) protection. */
kern_return_t vm_protect(vm_map_t target_task, vm_address_t address,
	vm_size_t size, boolean_t set_maximum, vm_prot_t new_protection)
	__MACHVM_IMPORT("vm_protect");

/* Copies size bytes (memmove semantics, any alignment), all or nothing. */
kern_return_t vm_copy(vm_map_t target_task, vm_address_t source_address,
	vm_size_t size, vm_address_t dest_address) __MACHVM_IMPORT("vm_copy");

/* Reads size bytes of target_task into a fresh page-aligned allocation of the
 * caller: *data is its address, *dataCnt = size; free it with vm_deallocate. */
kern_return_t vm_read(vm_map_read_t target_task, vm_address_t address,
	vm_size_t size, vm_offset_t *data, mach_msg_type_number_t *dataCnt)
	__MACHVM_IMPORT("vm_read");

/* Reads size bytes of target_task into the caller's buffer at data. */
kern_return_t vm_read_overwrite(vm_map_read_t target_task,
	vm_address_t address, vm_size_t size, vm_address_t data,
	vm_size_t *outsize) __MACHVM_IMPORT("vm_read_overwrite");

/* Writes dataCnt bytes of the caller's buffer at data into target_task. */
kern_return_t vm_write(vm_map_t target_task, vm_address_t address,
	vm_offset_t data, mach_msg_type_number_t dataCnt)
	__MACHVM_IMPORT("vm_write");

/* Finds the region containing *address, or the next one above it: stores its
 * start in *address, its length in *size, its vm_region_basic_info_64 in
 * info (flavor VM_REGION_BASIC_INFO_64, *infoCnt >= 9 on entry, 9 on exit)
 * and 0 in *object_name. KERN_INVALID_ADDRESS when there is none. */
kern_return_t vm_region_64(vm_map_read_t target_task, vm_address_t *address,
	vm_size_t *size, vm_region_flavor_t flavor, vm_region_info_t info,
	mach_msg_type_number_t *infoCnt, mach_port_t *object_name)
	__MACHVM_IMPORT("vm_region_64");

/* vm_region_64 under its older name: the same call, the same answers, with
 * flavor VM_REGION_BASIC_INFO (vm_region_basic_info, count 8) or
 * VM_REGION_BASIC_INFO_64. */
kern_return_t vm_region(vm_map_read_t target_task, vm_address_t *address,
	vm_size_t *size, vm_region_flavor_t flavor, vm_region_info_t info,
	mach_msg_type_number_t *infoCnt, mach_port_t *object_name)
	__MACHVM_IMPORT("vm_region");

/* Paging advice for the pages of [address, address + size). DEFAULT, RANDOM,
 * SEQUENTIAL and RSEQNTL are recorded (vm_region reports them); the others
 * act at once and keep the pages' contents. KERN_INVALID_ADDRESS when a page
 * of the range is unallocated, KERN_NO_SPACE when it passes the map,
 * KERN_PROTECTION_FAILURE for REUSABLE on a page without write. */
kern_return_t vm_behavior_set(vm_map_t target_task, vm_address_t address,
	vm_size_t size, vm_behavior_t new_behavior)
	__MACHVM_IMPORT("vm_behavior_set");

/* Records the inheritance (VM_INHERIT_SHARE, COPY or NONE; vm_region reports
 * it) on the allocated pages of the range: holes are passed over and the range
 * is clamped to the map, so KERN_SUCCESS unless the range wraps or the value is
 * past VM_INHERIT_NONE (KERN_INVALID_ARGUMENT). machvm has no fork: nothing
 * else reads it. */
kern_return_t vm_inherit(vm_map_t target_task, vm_address_t address,
	vm_size_t size, vm_inherit_t new_inheritance)
	__MACHVM_IMPORT("vm_inherit");

/* Maps the pages of [trunc(src_address), round(src_address + size)) of
 * src_task (this task, or another through a send right) at *target_address
 * of target_task: the same pages, so that a write through either range is
 * seen through both (copy FALSE), or a private copy (copy TRUE). The new pages
 * keep each source page's protections and take `inheritance`; *cur_protection
 * and *max_protection answer the AND of the source pages' own. On success
 * *target_address is trunc(address) + (src_address & (page size - 1)).
 * Checks, in order: flags outside VM_FLAGS_USER_REMAP, an inheritance past
 * VM_INHERIT_NONE or size 0 KERN_INVALID_ARGUMENT; a hole in the source
 * KERN_INVALID_ADDRESS; then the target as vm_allocate places it (`mask`: the
 * address's bits that must be 0; KERN_NO_SPACE, KERN_INVALID_ADDRESS). A
 * memory that cannot share pages (machvm's memories are backed by shared
 * memory files unless the embedder chose otherwise) answers
 * KERN_NOT_SUPPORTED. On failure nothing changes and nothing is stored. */
kern_return_t vm_remap(vm_map_t target_task, vm_address_t *target_address,
	vm_size_t size, vm_address_t mask, int flags, vm_map_t src_task,
	vm_address_t src_address, boolean_t copy, vm_prot_t *cur_protection,
	vm_prot_t *max_protection, vm_inherit_t inheritance)
	__MACHVM_IMPORT("vm_remap");

/* The region at or after *address, as vm_region_64 finds it, with its submap
 * info (<mach/vm_region.h>: count VM_REGION_SUBMAP_INFO_COUNT_64, 17, 16, or
 * 12 to 15 for the short info; fewer than 12 KERN_INVALID_ARGUMENT) and its
 * share mode. *nesting_depth answers 0 (machvm has no submaps). No region at
 * or after it: KERN_INVALID_ADDRESS. */
kern_return_t vm_region_recurse_64(vm_map_read_t target_task,
	vm_address_t *address, vm_size_t *size, natural_t *nesting_depth,
	vm_region_recurse_info_t info, mach_msg_type_number_t *infoCnt)
	__MACHVM_IMPORT("vm_region_recurse_64");

/* Makes a memory entry: a port (*object_handle, a new name in this task's
 * namespace) that names pages of objects and keeps them alive until its last
 * name is deallocated (mach_port_deallocate), whatever else maps them. The
 * low byte of `permission` is the entry's protection (VM_PROT_IS_MASK: what
 * the pages allow of it), bits 8-23 its MAP_MEM_* flags
 * (<mach/memory_object_types.h>):
 *   MAP_MEM_NAMED_CREATE  a new object of fresh zero pages;
 *   MAP_MEM_VM_SHARE      the pages of [trunc(offset), round(offset + *size))
 *                         of target_task, every region of the range;
 *   (none, no parent)     the same, but only the first region: *size shrinks;
 *   MAP_MEM_VM_COPY       a copy of the range, taken now;
 *   a parent entry        a part of the parent's pages (offsets in it).
 * *size answers the entry's size. Another task's guest reaches an entry when
 * the embedder copies or moves its right there; vm_map maps it. Errors, in
 * order: KERN_INVALID_VALUE (an unknown flag), KERN_INVALID_ARGUMENT (a
 * parent made with VM_SHARE or VM_COPY), KERN_INVALID_ADDRESS (the range
 * overflows, or a hole), KERN_PROTECTION_FAILURE (pages that do not allow the
 * protection), KERN_RESOURCE_SHORTAGE (the kernel's entry limit), and
 * KERN_NOT_SUPPORTED on a memory that cannot share pages. */
kern_return_t mach_make_memory_entry_64(vm_map_t target_task,
	memory_object_size_t *size, memory_object_offset_t offset,
	vm_prot_t permission, mem_entry_name_port_t *object_handle,
	mem_entry_name_port_t parent_entry)
	__MACHVM_IMPORT("mach_make_memory_entry_64");

/* mach_make_memory_entry_64 with a word-sized *size and offset. */
kern_return_t mach_make_memory_entry(vm_map_t target_task, vm_size_t *size,
	vm_offset_t offset, vm_prot_t permission,
	mem_entry_name_port_t *object_handle, mem_entry_name_port_t parent_entry)
	__MACHVM_IMPORT("mach_make_memory_entry");

/* Maps `size` bytes of memory entry `object` from `offset` at *address
 * (placed as vm_allocate places it, `mask` the address bits that must be 0),
 * sharing its pages (copy FALSE) or a private copy of them (copy TRUE), with
 * protections cur_protection within max_protection, within the entry's
 * protection (VM_PROT_IS_MASK: ANDed with it). An entry made with VM_SHARE or
 * VM_COPY is mapped whole. object MACH_PORT_NULL: fresh zero memory, as
 * vm_allocate with these protections. Errors: KERN_INVALID_ARGUMENT (flags
 * outside VM_FLAGS_USER_MAP, protections, size 0, an offset past the entry or
 * not whole pages), KERN_INVALID_RIGHT (more than the entry allows),
 * KERN_INVALID_OBJECT (a port that is no entry), then vm_allocate's. */
kern_return_t vm_map(vm_map_t target_task, vm_address_t *address,
	vm_size_t size, vm_address_t mask, int flags,
	mem_entry_name_port_t object, vm_offset_t offset, boolean_t copy,
	vm_prot_t cur_protection, vm_prot_t max_protection,
	vm_inherit_t inheritance) __MACHVM_IMPORT("vm_map");

/* Anonymous memory has nothing to write back: KERN_SUCCESS, or
 * KERN_INVALID_ADDRESS for a hole with VM_SYNC_CONTIGUOUS; SYNCHRONOUS with
 * ASYNCHRONOUS is KERN_INVALID_ARGUMENT. */
kern_return_t vm_msync(vm_map_t target_task, vm_address_t address,
	vm_size_t size, vm_sync_t sync_flags) __MACHVM_IMPORT("vm_msync");

/* Sets or answers the state of the purgeable object at address (see
 * <mach/vm_purgable.h>); KERN_INVALID_ARGUMENT when the memory there is not
 * purgeable, KERN_PROTECTION_FAILURE (but for GET_STATE) when not writable. */
kern_return_t vm_purgable_control(vm_map_t target_task, vm_address_t address,
	vm_purgable_t control, int *state) __MACHVM_IMPORT("vm_purgable_control");

/* The disposition (VM_PAGE_QUERY_PAGE_*: PRESENT|REF when resident) and the
 * reference count (1 allocated, 0 not) of the page at offset; a hole or a page
 * past the map: 0 and 0. */
kern_return_t vm_map_page_query(vm_map_read_t target_map, vm_offset_t offset,
	integer_t *disposition, integer_t *ref_count)
	__MACHVM_IMPORT("vm_map_page_query");

__MACHVM_END_DECLS

#endif /* _MACH_VM_MAP_H_ */
