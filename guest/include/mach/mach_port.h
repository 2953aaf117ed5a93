/*
 * machvm guest SDK: <mach/mach_port.h> — the port types and
 * mach_port_deallocate. machvm's namespace holds send rights only:
 * mach_task_self(), mach_host_self(), the memory entries the task made, and
 * the rights an embedder inserts.
 */
#ifndef _MACH_MACH_PORT_H_
#define _MACH_MACH_PORT_H_

#include <mach/machvm_import.h>
#include <mach/port.h>
#include <mach/mach_types.h>

__MACHVM_BEGIN_DECLS

/* Drops one user reference of `name` in task's namespace; the name goes with
 * its last (a memory entry whose last name goes gives its pages back once no
 * mapping holds them). KERN_SUCCESS for MACH_PORT_NULL and MACH_PORT_DEAD,
 * KERN_INVALID_NAME for a name the namespace does not hold, KERN_INVALID_RIGHT
 * for the task's own port and the host port. */
kern_return_t mach_port_deallocate(ipc_space_t task, mach_port_name_t name)
	__MACHVM_IMPORT("mach_port_deallocate");

__MACHVM_END_DECLS

#endif /* _MACH_MACH_PORT_H_ */
