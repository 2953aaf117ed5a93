/*
 * machvm guest SDK: <mach/host_priv.h> — the calls that need the
 * host-privileged port. No guest holds it (mach_host_self() is the plain host
 * port), so they answer as macOS does for an unprivileged caller.
 */
#ifndef _MACH_HOST_PRIV_H_
#define _MACH_HOST_PRIV_H_

#include <mach/machvm_import.h>
#include <mach/mach_types.h>

__MACHVM_BEGIN_DECLS

/* Wires [address, address + size) of task for desired_access. Always refused:
 * KERN_INVALID_HOST for a port the caller holds (the host port, a task port),
 * MACH_SEND_INVALID_DEST for a host_priv name it does not hold, and
 * MACH_SEND_INVALID_RIGHT for a task name it does not hold. */
kern_return_t vm_wire(host_priv_t host, vm_map_t task, vm_address_t address,
	vm_size_t size, vm_prot_t desired_access) __MACHVM_IMPORT("vm_wire");

kern_return_t mach_vm_wire(host_priv_t host, vm_map_t task,
	mach_vm_address_t address, mach_vm_size_t size, vm_prot_t desired_access)
	__MACHVM_IMPORT("mach_vm_wire");

__MACHVM_END_DECLS

#endif /* _MACH_HOST_PRIV_H_ */
