/* machvm guest SDK: <mach/mach_host.h> */
#ifndef _MACH_MACH_HOST_H_
#define _MACH_MACH_HOST_H_

#include <mach/machvm_import.h>
#include <mach/mach_types.h>

__MACHVM_BEGIN_DECLS

/* Stores the caller's VM page size (4096 by default, 16384 on an Apple
 * silicon configured host) in *out_page_size; host is ignored. */
kern_return_t host_page_size(host_t host, vm_size_t *out_page_size)
	__MACHVM_IMPORT("host_page_size");

__MACHVM_END_DECLS

#endif /* _MACH_MACH_HOST_H_ */
