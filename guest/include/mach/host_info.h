/* machvm guest SDK: <mach/host_info.h> — host_statistics64's flavor. */
#ifndef _MACH_HOST_INFO_H_
#define _MACH_HOST_INFO_H_

#include <mach/vm_statistics.h>
#include <mach/message.h>

typedef integer_t host_flavor_t;
typedef integer_t *host_info_t;
typedef integer_t *host_info64_t;
typedef integer_t host_info_data_t[1024];
typedef integer_t host_info64_data_t[256];

/* The one flavor machvm answers; any other: KERN_INVALID_ARGUMENT. */
#define HOST_VM_INFO64 4
#define HOST_VM_INFO64_COUNT \
	((mach_msg_type_number_t)(sizeof(vm_statistics64_data_t) / sizeof(integer_t)))
#define HOST_VM_INFO64_LATEST_COUNT HOST_VM_INFO64_COUNT
#define HOST_VM_INFO64_REV1_COUNT HOST_VM_INFO64_LATEST_COUNT
/* without the compressor counts (14 ints) */
#define HOST_VM_INFO64_REV0_COUNT \
	((mach_msg_type_number_t)(HOST_VM_INFO64_REV1_COUNT - 14))

#endif /* _MACH_HOST_INFO_H_ */
