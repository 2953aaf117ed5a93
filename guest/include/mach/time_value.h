/* machvm guest SDK: <mach/time_value.h> */
#ifndef _MACH_TIME_VALUE_H_
#define _MACH_TIME_VALUE_H_

#include <mach/vm_types.h>

struct time_value {
	integer_t seconds;
	integer_t microseconds;
};
typedef struct time_value time_value_t;

#endif /* _MACH_TIME_VALUE_H_ */
