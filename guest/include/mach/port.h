/* machvm guest SDK: <mach/port.h> — port names are 32-bit in every guest. */
#ifndef _MACH_PORT_H_
#define _MACH_PORT_H_

typedef unsigned int mach_port_name_t;
typedef mach_port_name_t mach_port_t;
typedef mach_port_name_t *mach_port_name_array_t;
typedef mach_port_t *mach_port_array_t;

#define MACH_PORT_NULL 0
#define MACH_PORT_DEAD ((mach_port_name_t)~0)
#define MACH_PORT_VALID(name) \
	(((name) != MACH_PORT_NULL) && ((name) != MACH_PORT_DEAD))

#endif /* _MACH_PORT_H_ */
