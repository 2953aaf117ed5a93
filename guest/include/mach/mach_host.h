/* machvm guest SDK: <mach/mach_host.h> */
#ifndef _MACH_MACH_HOST_H_
#define _MACH_MACH_HOST_H_

#include <mach/machvm_import.h>
#include <mach/mach_types.h>
#include <mach/host_info.h>

__MACHVM_BEGIN_DECLS

/* Stores the caller's VM page size (4096 by default, 16384 on an Apple
 * silicon configured host) in *out_page_size; host is ignored. */
kern_return_t host_page_size(host_t host, vm_size_t *out_page_size)
	__MACHVM_IMPORT("host_page_size");

/* HOST_VM_INFO64 only (<mach/host_info.h>): *host_info64_outCnt at least
 * HOST_VM_INFO64_REV0_COUNT (else KERN_FAILURE), set to the revision filled.
 * A task port as host: KERN_INVALID_HOST. */
kern_return_t host_statistics64(host_t host_priv, host_flavor_t flavor,
	host_info64_t host_info64_out, mach_msg_type_number_t *host_info64_outCnt)
	__MACHVM_IMPORT("host_statistics64");

__MACHVM_END_DECLS

#endif /* _MACH_MACH_HOST_H_ */
