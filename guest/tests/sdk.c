/*
 * The SDK's conveniences at run time, as macOS code uses them: a WASI command
 * whose output tests/guests.rs compares.
 *   - mach_task_self() asks the host once (run with --trace: one line);
 *   - trunc_page/round_page keep the bits of a 64-bit value above 4 GiB;
 *   - vm_region with VM_REGION_BASIC_INFO fills the 32-byte
 *     vm_region_basic_info (count 8) and writes nothing past it;
 *   - mach_error() prints XNU's text: the message for a known code, the
 *     type, message and hex code for an unknown one (on stderr);
 *   - mach_absolute_time() is a monotonic clock in nanoseconds (timebase 1/1).
 */
#include <mach/mach.h>
#include <mach/mach_error.h>
#include <mach/mach_time.h>
#include <mach/vm_page_size.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	mach_port_t a = mach_task_self(), b = mach_task_self(), c = mach_task_self_;
	printf("task self %#x %#x %#x\n", a, b, c);

	uint64_t big = 0x123456789ull;
	printf("trunc_page %#llx round_page %#llx\n", (unsigned long long)trunc_page(big),
	       (unsigned long long)round_page(big));
	printf("vm_kernel_page_size %lu\n", (unsigned long)vm_kernel_page_size);

	vm_address_t addr = 0;
	if (vm_allocate(mach_task_self(), &addr, 2 * vm_page_size, VM_FLAGS_ANYWHERE) != KERN_SUCCESS)
		return 1;
	if (vm_protect(mach_task_self(), addr, vm_page_size, FALSE, VM_PROT_READ) != KERN_SUCCESS)
		return 1;
	unsigned char raw[40];
	memset(raw, 0xAA, sizeof raw);
	vm_region_basic_info_data_t *info = (vm_region_basic_info_data_t *)raw;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT;
	mach_port_t object = 1;
	vm_address_t region = addr;
	vm_size_t size = 0;
	kern_return_t kr = vm_region_64(mach_task_self(), &region, &size, VM_REGION_BASIC_INFO,
	                                (vm_region_info_t)info, &count, &object);
	int past = 0;
	for (size_t i = sizeof *info; i < sizeof raw; i++)
		past += raw[i] != 0xAA;
	printf("vm_region flavor 10: %d count %u size %s prot %d/%d offset %u behavior %d, %d bytes past\n",
	       kr, count, size == vm_page_size ? "one page" : "?", info->protection,
	       info->max_protection, info->offset, info->behavior, past);

	mach_timebase_info_data_t tb;
	kr = mach_timebase_info(&tb);
	uint64_t t0 = mach_absolute_time(), t1 = mach_absolute_time();
	printf("timebase %d %u/%u, clock %s\n", kr, tb.numer, tb.denom,
	       t0 > 0 && t1 >= t0 ? "monotonic" : "broken");

	mach_error("known:", KERN_INVALID_ADDRESS);
	mach_error("unknown:", 77);
	return 0;
}
