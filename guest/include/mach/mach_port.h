/*
 * machvm guest SDK: <mach/mach_port.h> — the port types; machvm's namespace
 * holds send rights only (mach_task_self(), mach_host_self() and the rights an
 * embedder inserts), and has no port calls yet.
 */
#ifndef _MACH_MACH_PORT_H_
#define _MACH_MACH_PORT_H_

#include <mach/port.h>
#include <mach/mach_types.h>

#endif /* _MACH_MACH_PORT_H_ */
