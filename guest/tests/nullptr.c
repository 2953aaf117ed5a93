/*
 * A NULL pointer dereference, for `machvm run --pagezero`: a WASI command
 * linked with -Wl,--global-base=16384, so that nothing of it lies in page 0.
 * It prints what vm_region says of page 0 and what the calls that could open
 * it again answer (vm_protect to read, VM_PROT_COPY, vm_deallocate and then a
 * fixed vm_allocate, an overwriting one), then reads (or, with the argument
 * `w`, writes) through a NULL pointer. With --pagezero and enforcement that
 * traps; without --pagezero it reads 0 and exits 0.
 */
#include <mach/mach.h>
#include <stdio.h>

static int *volatile null_pointer;

int main(int argc, char **argv)
{
	vm_address_t addr = 0;
	vm_size_t size = 0;
	vm_region_basic_info_data_64_t info;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t object = MACH_PORT_NULL;
	kern_return_t kr = vm_region_64(mach_task_self(), &addr, &size, VM_REGION_BASIC_INFO_64,
	                                (vm_region_info_t)&info, &count, &object);
	if (kr != KERN_SUCCESS)
		return 2;
	printf("region at 0: %#lx-%#lx prot %d/%d\n", (unsigned long)addr,
	       (unsigned long)(addr + size), info.protection, info.max_protection);
	mach_port_t self = mach_task_self();
	kr = vm_protect(self, 0, vm_page_size, FALSE, VM_PROT_READ);
	printf("vm_protect(0, page, READ) = %s\n", mach_error_string(kr));
	kr = vm_protect(self, 0, vm_page_size, FALSE, VM_PROT_COPY | VM_PROT_DEFAULT);
	printf("vm_protect(0, page, COPY|RW) = %s\n", mach_error_string(kr));
	kr = vm_deallocate(self, 0, vm_page_size);
	printf("vm_deallocate(0, page) = %s\n", mach_error_string(kr));
	vm_address_t zero = 0;
	kr = vm_allocate(self, &zero, vm_page_size, VM_FLAGS_FIXED);
	printf("vm_allocate(0, page, FIXED) = %s\n", mach_error_string(kr));
	kr = vm_allocate(self, &zero, vm_page_size, VM_FLAGS_FIXED | VM_FLAGS_OVERWRITE);
	printf("vm_allocate(0, page, FIXED|OVERWRITE) = %s\n", mach_error_string(kr));
	fflush(stdout);
	if (argc > 1 && argv[1][0] == 'w') {
		*null_pointer = 1;
		return 0;
	}
	return *null_pointer;
}
