/* machvm guest SDK: <mach/vm_statistics.h> — the vm_allocate flags. */
#ifndef _MACH_VM_STATISTICS_H_
#define _MACH_VM_STATISTICS_H_

#define VM_FLAGS_FIXED           0x00000000
#define VM_FLAGS_ANYWHERE        0x00000001
#define VM_FLAGS_PURGABLE        0x00000002
#define VM_FLAGS_4GB_CHUNK       0x00000004
#define VM_FLAGS_RANDOM_ADDR     0x00000008
#define VM_FLAGS_NO_CACHE        0x00000010
#define VM_FLAGS_PERMANENT       0x00000080
#define VM_FLAGS_TPRO            0x00001000
#define VM_FLAGS_OVERWRITE       0x00004000
#define VM_FLAGS_SUPERPAGE_MASK  0x00070000
#define VM_FLAGS_ALIAS_MASK      0xFF000000

/*
 * The bits a user may pass to vm_allocate; any other bit gives
 * KERN_INVALID_ARGUMENT. machvm honours ANYWHERE and OVERWRITE and accepts
 * and ignores the others (SPEC §2).
 */
#define VM_FLAGS_USER_ALLOCATE \
	(VM_FLAGS_FIXED | VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE | \
	 VM_FLAGS_4GB_CHUNK | VM_FLAGS_RANDOM_ADDR | VM_FLAGS_NO_CACHE | \
	 VM_FLAGS_PERMANENT | VM_FLAGS_OVERWRITE | VM_FLAGS_SUPERPAGE_MASK | \
	 VM_FLAGS_TPRO | VM_FLAGS_ALIAS_MASK)

/* The memory tag in the top byte of the flags (accepted, ignored). */
#define VM_MAKE_TAG(tag) ((int)((unsigned int)(tag) << 24))
#define VM_GET_FLAGS_ALIAS(flags, alias) \
	(alias) = (((flags) >> 24) & 0xff)

#endif /* _MACH_VM_STATISTICS_H_ */
