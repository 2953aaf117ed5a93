/*
 * machvm guest SDK: <mach/vm_param.h>
 *
 * The page size is a run-time value (as on arm64 macOS), so these macros call
 * host_page_size (once per translation unit). PAGE_SIZE is not defined: with
 * wasi-libc it would clash with <limits.h>, whose PAGE_SIZE is the 64 KiB wasm
 * page, not the Mach VM page. Use vm_page_size.
 */
#ifndef _MACH_VM_PARAM_H_
#define _MACH_VM_PARAM_H_

#include <mach/mach_init.h>

#define mach_vm_trunc_page(x) \
	((mach_vm_offset_t)(x) & ~((mach_vm_offset_t)vm_page_mask))
#define mach_vm_round_page(x) \
	mach_vm_trunc_page((mach_vm_offset_t)(x) + (mach_vm_offset_t)vm_page_mask)

#endif /* _MACH_VM_PARAM_H_ */
