/*
 * machvm guest SDK: <mach/mach_init.h>
 *
 * XNU defines mach_task_self() as a macro over the variable mach_task_self_,
 * so it costs nothing. Here both are macros over a function that asks the
 * host once (the import mach_task_self, which returns the caller's task port
 * name, 0x103) and caches the answer per translation unit; `mach_task_self`
 * without parentheses is the import itself.
 *
 * vm_page_size, vm_page_mask and vm_page_shift are variables in XNU; here
 * they are macros that ask host_page_size once (per translation unit) and
 * cache the answer. Never hard-code 4096: machvm may run with 16 KiB pages.
 */
#ifndef _MACH_MACH_INIT_H_
#define _MACH_MACH_INIT_H_

#include <mach/machvm_import.h>
#include <mach/mach_types.h>
#include <mach/mach_host.h>

__MACHVM_BEGIN_DECLS

mach_port_t mach_task_self(void) __MACHVM_IMPORT("mach_task_self");
mach_port_t mach_host_self(void) __MACHVM_IMPORT("mach_host_self");

static inline mach_port_t __machvm_task_self(void)
{
	static mach_port_t cached;
	if (cached == 0) {
		cached = (mach_task_self)();
	}
	return cached;
}

#define mach_task_self() __machvm_task_self()
#define mach_task_self_ (__machvm_task_self())
#define current_task() mach_task_self()

static inline vm_size_t __machvm_vm_page_size(void)
{
	static vm_size_t cached;
	if (cached == 0) {
		vm_size_t size = 0;
		if (host_page_size(mach_host_self(), &size) != KERN_SUCCESS || size == 0) {
			size = 4096;
		}
		cached = size;
	}
	return cached;
}

static inline int __machvm_vm_page_shift(void)
{
	return __builtin_ctzl((unsigned long)__machvm_vm_page_size());
}

#define vm_page_size  (__machvm_vm_page_size())
#define vm_page_mask  (__machvm_vm_page_size() - 1)
#define vm_page_shift (__machvm_vm_page_shift())

/* In the type of `x`, so that a 64-bit value keeps its bits above 4 GiB in a
 * wasm32 guest (whose vm_size_t is 32 bits). */
#define trunc_page(x) ((x) & ~((__typeof__(x))vm_page_mask))
#define round_page(x) trunc_page((x) + ((__typeof__(x))vm_page_mask))

__MACHVM_END_DECLS

#endif /* _MACH_MACH_INIT_H_ */
