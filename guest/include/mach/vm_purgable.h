/*
 * machvm guest SDK: <mach/vm_purgable.h> — purgeable memory.
 *
 * vm_allocate(..., VM_FLAGS_PURGABLE) makes the allocation a purgeable object
 * of its own, nonvolatile. vm_purgable_control sets (VM_PURGABLE_SET_STATE,
 * answering the old state in *state) or answers (VM_PURGABLE_GET_STATE) its
 * state. A volatile object may be emptied at any time: by memory pressure (the
 * embedder's), when the task's memory cannot grow, or by
 * VM_PURGABLE_PURGE_ALL; its pages then read as zero and its state is
 * VM_PURGABLE_EMPTY, which stays empty until made nonvolatile. The ordering,
 * behavior and group bits are accepted (machvm has one queue).
 */
#ifndef _MACH_VM_PURGABLE_H_
#define _MACH_VM_PURGABLE_H_

typedef int vm_purgable_t;

#define VM_PURGABLE_SET_STATE             ((vm_purgable_t)0)
#define VM_PURGABLE_GET_STATE             ((vm_purgable_t)1)
#define VM_PURGABLE_PURGE_ALL             ((vm_purgable_t)2)
#define VM_PURGABLE_SET_STATE_FROM_KERNEL ((vm_purgable_t)3) /* refused from a task */

#define VM_PURGABLE_NO_AGING_SHIFT 16
#define VM_PURGABLE_NO_AGING_MASK  (0x1 << VM_PURGABLE_NO_AGING_SHIFT)
#define VM_PURGABLE_NO_AGING       (0x1 << VM_PURGABLE_NO_AGING_SHIFT)

#define VM_PURGABLE_DEBUG_SHIFT 12
#define VM_PURGABLE_DEBUG_MASK  (0x3 << VM_PURGABLE_DEBUG_SHIFT)
#define VM_PURGABLE_DEBUG_EMPTY (0x1 << VM_PURGABLE_DEBUG_SHIFT)
#define VM_PURGABLE_DEBUG_FAULT (0x2 << VM_PURGABLE_DEBUG_SHIFT)

#define VM_VOLATILE_GROUP_SHIFT   8
#define VM_VOLATILE_GROUP_MASK    (7 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_0       (0 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_1       (1 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_2       (2 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_3       (3 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_4       (4 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_5       (5 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_6       (6 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_7       (7 << VM_VOLATILE_GROUP_SHIFT)
#define VM_VOLATILE_GROUP_DEFAULT VM_VOLATILE_GROUP_0

#define VM_PURGABLE_BEHAVIOR_SHIFT 6
#define VM_PURGABLE_BEHAVIOR_MASK  (1 << VM_PURGABLE_BEHAVIOR_SHIFT)
#define VM_PURGABLE_BEHAVIOR_FIFO  (0 << VM_PURGABLE_BEHAVIOR_SHIFT)
#define VM_PURGABLE_BEHAVIOR_LIFO  (1 << VM_PURGABLE_BEHAVIOR_SHIFT)

#define VM_PURGABLE_ORDERING_SHIFT    5
#define VM_PURGABLE_ORDERING_MASK     (1 << VM_PURGABLE_ORDERING_SHIFT)
#define VM_PURGABLE_ORDERING_OBSOLETE (1 << VM_PURGABLE_ORDERING_SHIFT)
#define VM_PURGABLE_ORDERING_NORMAL   (0 << VM_PURGABLE_ORDERING_SHIFT)

#define VM_VOLATILE_ORDER_SHIFT         4
#define VM_VOLATILE_ORDER_MASK          (1 << VM_VOLATILE_ORDER_SHIFT)
#define VM_VOLATILE_MAKE_FIRST_IN_GROUP (1 << VM_VOLATILE_ORDER_SHIFT)
#define VM_VOLATILE_MAKE_LAST_IN_GROUP  (0 << VM_VOLATILE_ORDER_SHIFT)

#define VM_PURGABLE_STATE_MIN  0
#define VM_PURGABLE_STATE_MAX  3
#define VM_PURGABLE_STATE_MASK 3

#define VM_PURGABLE_NONVOLATILE 0 /* contents kept */
#define VM_PURGABLE_VOLATILE    1 /* contents may be emptied */
#define VM_PURGABLE_EMPTY       2 /* emptied: the pages read as zero */
#define VM_PURGABLE_DENY        3 /* not purgeable (not a state to set) */

#define VM_PURGABLE_ALL_MASKS \
	(VM_PURGABLE_STATE_MASK | VM_VOLATILE_ORDER_MASK | VM_PURGABLE_ORDERING_MASK | \
	 VM_PURGABLE_BEHAVIOR_MASK | VM_VOLATILE_GROUP_MASK | VM_PURGABLE_DEBUG_MASK | \
	 VM_PURGABLE_NO_AGING_MASK)

#endif /* _MACH_VM_PURGABLE_H_ */
