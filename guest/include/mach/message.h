/*
 * machvm guest SDK: <mach/message.h> — only the types and codes the VM calls
 * use (there is no mach_msg in machvm).
 */
#ifndef _MACH_MESSAGE_H_
#define _MACH_MESSAGE_H_

#include <mach/kern_return.h>

typedef unsigned int mach_msg_type_number_t;
typedef kern_return_t mach_msg_return_t;

#define MACH_MSG_SUCCESS 0x00000000

/* The task port name is not a send right in the caller's namespace. */
#define MACH_SEND_INVALID_DEST 0x10000003
/* A port in the message body (vm_wire's task) is not held by the caller. */
#define MACH_SEND_INVALID_RIGHT 0x1000000a
/* The caller's out-of-line data (vm_write's buffer) is not readable. */
#define MACH_SEND_INVALID_MEMORY 0x1000000c

#endif /* _MACH_MESSAGE_H_ */
