/*
 * machvm guest SDK: <mach/memory_object_types.h> — the permission flags of
 * mach_make_memory_entry_64 (bits 8-23 of its `permission`, beside the
 * VM_PROT_* bits; the top byte is the cache mode).
 */
#ifndef _MACH_MEMORY_OBJECT_TYPES_H_
#define _MACH_MEMORY_OBJECT_TYPES_H_

#include <mach/vm_types.h>

/* Cache modes (accepted, no effect in a wasm memory). */
#define MAP_MEM_NOOP                      0
#define MAP_MEM_COPYBACK                  1
#define MAP_MEM_IO                        2
#define MAP_MEM_WTHRU                     3
#define MAP_MEM_WCOMB                     4
#define MAP_MEM_INNERWBACK                5
#define MAP_MEM_POSTED                    6
#define MAP_MEM_RT                        7
#define MAP_MEM_POSTED_REORDERED          8
#define MAP_MEM_POSTED_COMBINED_REORDERED 9

#define GET_MAP_MEM(flags) \
	((((unsigned int)(flags)) >> 24) & 0xFF)
#define SET_MAP_MEM(caching, flags) \
	((flags) = ((((unsigned int)(caching)) << 24) & 0xFF000000) | \
	    ((flags) & 0xFFFFFF))

/* Accepted, no effect in machvm. */
#define MAP_MEM_LEDGER_TAGGED        0x002000
#define MAP_MEM_PURGABLE_KERNEL_ONLY 0x004000
#define MAP_MEM_GRAB_SECLUDED        0x008000
/* Change the parent entry's cache mode only: no entry, a null handle. */
#define MAP_MEM_ONLY                 0x010000
/* A new object of fresh zero pages, *size rounded to whole pages. */
#define MAP_MEM_NAMED_CREATE         0x020000
/* With NAMED_CREATE: needs VM_PROT_WRITE (machvm's object is not purgeable). */
#define MAP_MEM_PURGABLE             0x040000
/* Answer the parent entry itself when the new one would name what it names. */
#define MAP_MEM_NAMED_REUSE          0x080000
/* Keep the offset's place in its page: *size counts from it. */
#define MAP_MEM_USE_DATA_ADDR        0x100000
/* The entry holds a copy of the range, taken now. */
#define MAP_MEM_VM_COPY              0x200000
/* The entry shares the whole range (without it: only its first region). */
#define MAP_MEM_VM_SHARE             0x400000
/* As USE_DATA_ADDR, in 4 KiB units. */
#define MAP_MEM_4K_DATA_ADDR         0x800000

#define MAP_MEM_FLAGS_MASK 0x00FFFF00
/* Any other flag bit gives KERN_INVALID_VALUE. */
#define MAP_MEM_FLAGS_USER ( \
	MAP_MEM_PURGABLE_KERNEL_ONLY | MAP_MEM_GRAB_SECLUDED | MAP_MEM_ONLY | \
	MAP_MEM_NAMED_CREATE | MAP_MEM_PURGABLE | MAP_MEM_NAMED_REUSE | \
	MAP_MEM_USE_DATA_ADDR | MAP_MEM_VM_COPY | MAP_MEM_VM_SHARE | \
	MAP_MEM_LEDGER_TAGGED | MAP_MEM_4K_DATA_ADDR)
#define MAP_MEM_FLAGS_ALL MAP_MEM_FLAGS_USER

#endif /* _MACH_MEMORY_OBJECT_TYPES_H_ */
