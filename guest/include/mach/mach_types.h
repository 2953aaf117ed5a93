/* machvm guest SDK: <mach/mach_types.h> — every kernel object is a port name. */
#ifndef _MACH_MACH_TYPES_H_
#define _MACH_MACH_TYPES_H_

#include <mach/boolean.h>
#include <mach/port.h>
#include <mach/vm_types.h>
#include <mach/kern_return.h>
#include <mach/message.h>
#include <mach/vm_prot.h>
#include <mach/vm_inherit.h>
#include <mach/vm_behavior.h>
#include <mach/vm_sync.h>
#include <mach/vm_purgable.h>
#include <mach/vm_statistics.h>
#include <mach/vm_region.h>

typedef mach_port_t task_t;
typedef mach_port_t task_name_t;
typedef mach_port_t task_read_t;
typedef mach_port_t task_inspect_t;
typedef mach_port_t task_port_t;
typedef mach_port_t host_t;
typedef mach_port_t host_priv_t;
typedef mach_port_t host_name_t;
typedef mach_port_t memory_object_name_t;
/* A memory entry (mach_make_memory_entry_64), mapped with vm_map. */
typedef mach_port_t mem_entry_name_port_t;
/* A task's port namespace, as mach_port_deallocate names it. */
typedef mach_port_t ipc_space_t;

#define TASK_NULL ((task_t)0)
#define HOST_NULL ((host_t)0)
#include <mach/memory_object_types.h>

#define MEMORY_OBJECT_NAME_NULL ((memory_object_name_t)0)

#endif /* _MACH_MACH_TYPES_H_ */
