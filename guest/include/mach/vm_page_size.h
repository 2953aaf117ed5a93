/*
 * machvm guest SDK: <mach/vm_page_size.h>
 *
 * XNU declares vm_page_size, vm_page_mask, vm_page_shift (and their
 * vm_kernel_* twins) here; in machvm they are macros of <mach/mach_init.h>
 * that ask host_page_size once. The kernel's page size is the task's.
 */
#ifndef _MACH_VM_PAGE_SIZE_H_
#define _MACH_VM_PAGE_SIZE_H_

#include <mach/mach_init.h>

#define vm_kernel_page_size  vm_page_size
#define vm_kernel_page_mask  vm_page_mask
#define vm_kernel_page_shift vm_page_shift

#endif /* _MACH_VM_PAGE_SIZE_H_ */
