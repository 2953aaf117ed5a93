/*
 * machvm guest SDK: <mach/vm_statistics.h> — the vm_allocate flags, the page
 * dispositions of mach_vm_page_query and host_statistics64's vm_statistics64.
 */
#ifndef _MACH_VM_STATISTICS_H_
#define _MACH_VM_STATISTICS_H_

#include <mach/vm_types.h>
#include <mach/machvm_import.h>

/*
 * A page's disposition. machvm reports PRESENT (resident in the host's memory)
 * with REF for an allocated page, and nothing else: it cannot tell a page
 * written from one only read (no DIRTY), and it has no pager, no copy objects
 * and no code signing.
 */
#define VM_PAGE_QUERY_PAGE_PRESENT      0x1
#define VM_PAGE_QUERY_PAGE_FICTITIOUS   0x2
#define VM_PAGE_QUERY_PAGE_REF          0x4
#define VM_PAGE_QUERY_PAGE_DIRTY        0x8
#define VM_PAGE_QUERY_PAGE_PAGED_OUT    0x10
#define VM_PAGE_QUERY_PAGE_COPIED       0x20
#define VM_PAGE_QUERY_PAGE_SPECULATIVE  0x40
#define VM_PAGE_QUERY_PAGE_EXTERNAL     0x80
#define VM_PAGE_QUERY_PAGE_CS_VALIDATED 0x100
#define VM_PAGE_QUERY_PAGE_CS_TAINTED   0x200
#define VM_PAGE_QUERY_PAGE_CS_NX        0x400
#define VM_PAGE_QUERY_PAGE_REUSABLE     0x800

/*
 * host_statistics64(HOST_VM_INFO64), over the tasks of the caller's kernel
 * (its host): free_count is the pages their maps can still take past their
 * memories, active_count and internal_page_count their allocated pages
 * resident in the host's memory, purgeable_count the resident pages of their
 * volatile purgeable objects, purges the pages of purgeable objects emptied;
 * every other count is 0.
 */
struct vm_statistics64 {
	natural_t free_count;                 /* @0 */
	natural_t active_count;               /* @4 */
	natural_t inactive_count;             /* @8 */
	natural_t wire_count;                 /* @12 */
	unsigned long long zero_fill_count;   /* @16 */
	unsigned long long reactivations;     /* @24 */
	unsigned long long pageins;           /* @32 */
	unsigned long long pageouts;          /* @40 */
	unsigned long long faults;            /* @48 */
	unsigned long long cow_faults;        /* @56 */
	unsigned long long lookups;           /* @64 */
	unsigned long long hits;              /* @72 */
	unsigned long long purges;            /* @80 */
	natural_t purgeable_count;            /* @88 */
	natural_t speculative_count;          /* @92 */
	/* added for rev1 */
	unsigned long long decompressions;    /* @96 */
	unsigned long long compressions;      /* @104 */
	unsigned long long swapins;           /* @112 */
	unsigned long long swapouts;          /* @120 */
	natural_t compressor_page_count;      /* @128 */
	natural_t throttled_count;            /* @132 */
	natural_t external_page_count;        /* @136 */
	natural_t internal_page_count;        /* @140 */
	unsigned long long total_uncompressed_pages_in_compressor; /* @144 */
} __attribute__((aligned(8)));
typedef struct vm_statistics64 *vm_statistics64_t;
typedef struct vm_statistics64 vm_statistics64_data_t;
__MACHVM_LAYOUT(sizeof(struct vm_statistics64) == 152, "vm_statistics64 is 152 bytes");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_statistics64, internal_page_count) == 140,
	"internal_page_count @140");

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
 * and ignores the others (spec §2).
 */
#define VM_FLAGS_USER_ALLOCATE \
	(VM_FLAGS_FIXED | VM_FLAGS_ANYWHERE | VM_FLAGS_PURGABLE | \
	 VM_FLAGS_4GB_CHUNK | VM_FLAGS_RANDOM_ADDR | VM_FLAGS_NO_CACHE | \
	 VM_FLAGS_PERMANENT | VM_FLAGS_OVERWRITE | VM_FLAGS_SUPERPAGE_MASK | \
	 VM_FLAGS_TPRO | VM_FLAGS_ALIAS_MASK)

/* vm_remap's flags besides ANYWHERE, RANDOM_ADDR and OVERWRITE. */
#define VM_FLAGS_RESILIENT_CODESIGN 0x00000020
#define VM_FLAGS_RESILIENT_MEDIA    0x00000040
#define VM_FLAGS_RETURN_DATA_ADDR   0x00100000

/*
 * The bits a user may pass to vm_remap; any other bit (the tag byte too) gives
 * KERN_INVALID_ARGUMENT. machvm honours ANYWHERE and OVERWRITE; the returned
 * address always keeps the source's offset in its page, as if
 * RETURN_DATA_ADDR were set (XNU 10002's vm_remap does the same).
 */
#define VM_FLAGS_USER_REMAP \
	(VM_FLAGS_FIXED | VM_FLAGS_ANYWHERE | VM_FLAGS_RANDOM_ADDR | \
	 VM_FLAGS_OVERWRITE | VM_FLAGS_RETURN_DATA_ADDR | \
	 VM_FLAGS_RESILIENT_CODESIGN | VM_FLAGS_RESILIENT_MEDIA)

/* vm_map's flags: vm_allocate's and the two data-address flags; any other bit
 * gives KERN_INVALID_ARGUMENT. With RETURN_DATA_ADDR the address answered
 * keeps the offset's place in its page (RETURN_4K_DATA_ADDR: in 4 KiB units). */
#define VM_FLAGS_RETURN_4K_DATA_ADDR 0x00800000
#define VM_FLAGS_USER_MAP \
	(VM_FLAGS_USER_ALLOCATE | VM_FLAGS_RETURN_4K_DATA_ADDR | \
	 VM_FLAGS_RETURN_DATA_ADDR)

/* The memory tag in the top byte of the flags (accepted, ignored). */
#define VM_MAKE_TAG(tag) ((int)((unsigned int)(tag) << 24))
#define VM_GET_FLAGS_ALIAS(flags, alias) \
	(alias) = (((flags) >> 24) & 0xff)

#endif /* _MACH_VM_STATISTICS_H_ */
