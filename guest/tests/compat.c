/*
 * Header check: Mach code as written for macOS, unchanged. build.sh compiles
 * it (syntax only, -Wall -Wextra -Werror) for wasm32 and wasm64 freestanding,
 * for wasm32-wasi with wasi-libc, and as C++.
 */
#include <mach/mach.h>
#include <mach/mach_vm.h>
#include <mach/mach_error.h>
#include <mach/vm_map.h>
#include <mach/vm_region.h>
#include <mach/vm_statistics.h>
#include <mach/mach_init.h>
#include <mach/kern_return.h>
#include <mach/vm_prot.h>
#include <mach/vm_inherit.h>
#include <mach/vm_page_size.h>
#include <mach/mach_time.h>
#include <stdint.h>

#if defined(__STDC_HOSTED__) && __has_include(<stdio.h>)
#include <stdio.h>
#include <string.h>
#endif

kern_return_t compat_demo(void);

kern_return_t compat_demo(void)
{
	vm_address_t addr = 0;
	vm_size_t size = 0;
	kern_return_t kr;

	kr = vm_allocate(mach_task_self(), &addr, 4 * vm_page_size, VM_FLAGS_ANYWHERE);
	if (kr != KERN_SUCCESS) {
#ifdef _STDIO_H
		mach_error("vm_allocate:", kr);
#endif
		return kr;
	}
	kr = vm_protect(mach_task_self(), addr + vm_page_size, vm_page_size, FALSE, VM_PROT_NONE);
	if (kr != KERN_SUCCESS)
		return kr;

	vm_region_basic_info_data_64_t info;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	memory_object_name_t object = MACH_PORT_NULL;
	vm_address_t region = addr;
	kr = vm_region_64(mach_task_self(), &region, &size, VM_REGION_BASIC_INFO_64,
		(vm_region_info_t)&info, &count, &object);
	if (kr != KERN_SUCCESS || info.protection != VM_PROT_DEFAULT ||
	    info.inheritance != VM_INHERIT_DEFAULT)
		return KERN_FAILURE;

	mach_vm_address_t a = addr;
	mach_vm_size_t s = 0;
	count = VM_REGION_BASIC_INFO_COUNT_64;
	kr = mach_vm_region(mach_task_self(), &a, &s, VM_REGION_BASIC_INFO_64,
		(vm_region_info_t)&info, &count, &object);

	vm_offset_t data = 0;
	mach_msg_type_number_t data_count = 0;
	kr = vm_read(mach_task_self(), addr, 16, &data, &data_count);
	kr = vm_write(mach_task_self(), addr, data, data_count);
	kr = vm_copy(mach_task_self(), addr, 16, addr + 32);
	kr = mach_vm_copy(mach_task_self(), a, 16, a + 64);
	mach_vm_size_t out = 0;
	kr = mach_vm_read_overwrite(mach_task_self(), a, 16, a + 128, &out);
	kr = mach_vm_write(mach_task_self(), a, data, data_count);
	kr = mach_vm_protect(mach_task_self(), a, mach_vm_round_page(1), TRUE, VM_PROT_READ);
	kr = mach_vm_deallocate(mach_task_self(), a, mach_vm_round_page(4 * vm_page_size));

	mach_vm_address_t b = 0;
	kr = mach_vm_allocate(mach_task_self(), &b, vm_page_size, VM_FLAGS_ANYWHERE | VM_MAKE_TAG(240));
	size = 0;
	kr = vm_read_overwrite(mach_task_self(), (vm_address_t)b, 8, addr, &size);
	kr = vm_deallocate(mach_task_self(), data, data_count);
	kr = vm_deallocate(current_task(), trunc_page(addr), round_page(4 * vm_page_size));

	/* The 32-bit flavor and its struct; page macros on 64-bit values. */
	vm_region_basic_info_data_t info32;
	count = VM_REGION_BASIC_INFO_COUNT;
	region = addr;
	kr = vm_region_64(mach_task_self(), &region, &size, VM_REGION_BASIC_INFO,
		(vm_region_info_t)&info32, &count, &object);
	uint64_t wide = trunc_page((uint64_t)1 << 40 | 5) + round_page(vm_kernel_page_size + 1);
	if (kr == KERN_SUCCESS && (info32.offset != 0 || wide >> 40 != 1))
		return KERN_FAILURE;

	mach_timebase_info_data_t timebase;
	if (mach_timebase_info(&timebase) != KERN_SUCCESS || timebase.denom == 0)
		return KERN_FAILURE;
#if !defined(__wasm64__)
	uint64_t started = mach_absolute_time();
	(void)(mach_absolute_time() - started);
#endif

	vm_size_t page = 0;
	kr = host_page_size(mach_host_self(), &page);
	const char *msg = mach_error_string(kr);
	(void)msg;
	(void)mach_task_self_;
	if (err_get_system(MACH_SEND_INVALID_DEST) != 4 || err_get_code(MACH_SEND_INVALID_DEST) != 3)
		return KERN_FAILURE;
	return kr == KERN_SUCCESS && page == vm_page_size ? KERN_SUCCESS : KERN_FAILURE;
}
