/* machvm guest SDK: <mach/task.h> — the task calls machvm has. */
#ifndef _MACH_TASK_H_
#define _MACH_TASK_H_

#include <mach/machvm_import.h>
#include <mach/mach_types.h>
#include <mach/task_info.h>

__MACHVM_BEGIN_DECLS

/* Fills task_info_out with flavor's structure for target_task (the caller
 * or a task it holds a send right to): *task_info_outCnt must hold the
 * flavor's count (TASK_VM_INFO: at least TASK_VM_INFO_REV0_COUNT; the newest
 * revision that fits is filled) and is set to the count filled. */
kern_return_t task_info(task_name_t target_task, task_flavor_t flavor,
	task_info_t task_info_out, mach_msg_type_number_t *task_info_outCnt)
	__MACHVM_IMPORT("task_info");

__MACHVM_END_DECLS

#endif /* _MACH_TASK_H_ */
