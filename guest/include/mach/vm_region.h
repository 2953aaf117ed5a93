/*
 * machvm guest SDK: <mach/vm_region.h>
 *
 * vm_region_basic_info_64 is 36 bytes and vm_region_basic_info 32, packed to
 * 4, as in XNU, in every guest (wasm32 and wasm64): the host writes exactly
 * these bytes, for flavor VM_REGION_BASIC_INFO_64 and VM_REGION_BASIC_INFO.
 */
#ifndef _MACH_VM_REGION_H_
#define _MACH_VM_REGION_H_

#include <mach/boolean.h>
#include <mach/vm_types.h>
#include <mach/vm_prot.h>
#include <mach/vm_inherit.h>
#include <mach/vm_behavior.h>
#include <mach/message.h>

typedef int *vm_region_info_t;
typedef int *vm_region_info_64_t;
typedef int vm_region_flavor_t;
typedef int vm_region_info_data_t[1024];

#pragma pack(push, 4)

struct vm_region_basic_info_64 {
	vm_prot_t protection;            /* @0  current protection */
	vm_prot_t max_protection;        /* @4  maximum protection */
	vm_inherit_t inheritance;        /* @8  as vm_inherit left it */
	boolean_t shared;                /* @12 shared by vm_remap or a memory entry */
	boolean_t reserved;              /* @16 0 */
	memory_object_offset_t offset;   /* @20 in that object, else 0 */
	vm_behavior_t behavior;          /* @28 as vm_behavior_set left it */
	unsigned short user_wired_count; /* @32 0 */
};

/* The 32-bit form (flavor VM_REGION_BASIC_INFO): `offset` is 32 bits. */
struct vm_region_basic_info {
	vm_prot_t protection;            /* @0 */
	vm_prot_t max_protection;        /* @4 */
	vm_inherit_t inheritance;        /* @8 */
	boolean_t shared;                /* @12 */
	boolean_t reserved;              /* @16 0 */
	uint32_t offset;                 /* @20 */
	vm_behavior_t behavior;          /* @24 as vm_behavior_set left it */
	unsigned short user_wired_count; /* @28 0 */
};

#pragma pack(pop)

typedef struct vm_region_basic_info_64 *vm_region_basic_info_64_t;
typedef struct vm_region_basic_info_64 vm_region_basic_info_data_64_t;
typedef struct vm_region_basic_info *vm_region_basic_info_t;
typedef struct vm_region_basic_info vm_region_basic_info_data_t;

#define VM_REGION_BASIC_INFO_64 9
#define VM_REGION_BASIC_INFO_COUNT_64 \
	((mach_msg_type_number_t)(sizeof(vm_region_basic_info_data_64_t) / sizeof(int)))

/* The 32-bit flavor: a vm_region_basic_info_data_t, count 8. */
#define VM_REGION_BASIC_INFO 10
#define VM_REGION_BASIC_INFO_COUNT \
	((mach_msg_type_number_t)(sizeof(vm_region_basic_info_data_t) / sizeof(int)))

/* Layout checks; `__extension__` keeps C99 -Wpedantic builds quiet. */
#if defined(__cplusplus)
#define __MACHVM_STATIC_ASSERT static_assert
#define __MACHVM_ALIGNOF alignof
#else
#define __MACHVM_STATIC_ASSERT __extension__ _Static_assert
#define __MACHVM_ALIGNOF __extension__ _Alignof
#endif
#define __MACHVM_RBI_OFF(f) __builtin_offsetof(struct vm_region_basic_info_64, f)
__MACHVM_STATIC_ASSERT(sizeof(struct vm_region_basic_info_64) == 36, "vm_region_basic_info_64 is 36 bytes");
__MACHVM_STATIC_ASSERT(VM_REGION_BASIC_INFO_COUNT_64 == 9, "VM_REGION_BASIC_INFO_COUNT_64 is 9");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(protection) == 0, "protection @0");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(max_protection) == 4, "max_protection @4");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(inheritance) == 8, "inheritance @8");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(shared) == 12, "shared @12");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(reserved) == 16, "reserved @16");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(offset) == 20, "offset @20");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(behavior) == 28, "behavior @28");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(user_wired_count) == 32, "user_wired_count @32");
__MACHVM_STATIC_ASSERT(__MACHVM_ALIGNOF(struct vm_region_basic_info_64) == 4, "packed to 4");
#undef __MACHVM_RBI_OFF
#define __MACHVM_RBI_OFF(f) __builtin_offsetof(struct vm_region_basic_info, f)
__MACHVM_STATIC_ASSERT(sizeof(struct vm_region_basic_info) == 32, "vm_region_basic_info is 32 bytes");
__MACHVM_STATIC_ASSERT(VM_REGION_BASIC_INFO_COUNT == 8, "VM_REGION_BASIC_INFO_COUNT is 8");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(offset) == 20, "offset @20");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(behavior) == 24, "behavior @24");
__MACHVM_STATIC_ASSERT(__MACHVM_RBI_OFF(user_wired_count) == 28, "user_wired_count @28");
#undef __MACHVM_RBI_OFF
#undef __MACHVM_ALIGNOF
#undef __MACHVM_STATIC_ASSERT

/* mach_vm_page_info's flavor VM_PAGE_INFO_BASIC: a vm_page_info_basic_data_t
 * (32 bytes, count 8; count 7 leaves out the pad). machvm has no VM objects:
 * object_id and depth are 0, offset is the address's offset in its page for
 * an allocated page; disposition and ref_count as mach_vm_page_query. */
typedef int *vm_page_info_t;
typedef int vm_page_info_data_t[];
typedef int vm_page_info_flavor_t;
typedef unsigned long long vm_object_id_t;

#define VM_PAGE_INFO_BASIC 1
struct vm_page_info_basic {
	int disposition;                 /* @0  VM_PAGE_QUERY_PAGE_* bits */
	int ref_count;                   /* @4  1 allocated, 0 not */
	vm_object_id_t object_id;        /* @8  0 */
	memory_object_offset_t offset;   /* @16 */
	int depth;                       /* @24 0 */
	int __pad;                       /* @28 */
};
typedef struct vm_page_info_basic *vm_page_info_basic_t;
typedef struct vm_page_info_basic vm_page_info_basic_data_t;
#define VM_PAGE_INFO_BASIC_COUNT \
	((mach_msg_type_number_t)(sizeof(vm_page_info_basic_data_t) / sizeof(int)))

/*
 * vm_region_recurse_64 / mach_vm_region_recurse: the submap info (76 bytes,
 * count 19; 17 and 16 fill versions 1 and 0, 12 to 15 the 48-byte short
 * info), packed to 4 in every guest. machvm has no submaps: nesting_depth
 * answers 0, is_submap 0. share_mode: SM_EMPTY for private memory no page of
 * which is resident (ref_count 0), SM_PRIVATE for other private memory
 * (ref_count 1) and for an object one region or memory entry refers to,
 * SM_TRUESHARED when several do (ref_count counts the regions, in every task,
 * and the live memory entries of the object). object_id is the shared
 * object's id (0 for private memory), equal for every mapping of it.
 * user_tag, pages_shared_now_private, pages_swapped_out, pages_dirtied,
 * shadow_depth, external_pager, user_wired_count and pages_reusable are 0.
 */
#define SM_COW             1
#define SM_PRIVATE         2
#define SM_EMPTY           3
#define SM_SHARED          4
#define SM_TRUESHARED      5
#define SM_PRIVATE_ALIASED 6
#define SM_SHARED_ALIASED  7
#define SM_LARGE_PAGE      8

typedef int *vm_region_recurse_info_t;
typedef int *vm_region_recurse_info_64_t;
typedef unsigned int vm32_object_id_t;

#pragma pack(push, 4)
struct vm_region_submap_info_64 {
	vm_prot_t protection;             /* @0 */
	vm_prot_t max_protection;         /* @4 */
	vm_inherit_t inheritance;         /* @8 */
	memory_object_offset_t offset;    /* @12 in the shared object, else 0 */
	unsigned int user_tag;            /* @20 0 */
	unsigned int pages_resident;      /* @24 */
	unsigned int pages_shared_now_private; /* @28 0 */
	unsigned int pages_swapped_out;   /* @32 0 */
	unsigned int pages_dirtied;       /* @36 0 */
	unsigned int ref_count;           /* @40 */
	unsigned short shadow_depth;      /* @44 0 */
	unsigned char external_pager;     /* @46 0 */
	unsigned char share_mode;         /* @47 SM_* */
	boolean_t is_submap;              /* @48 0 */
	vm_behavior_t behavior;           /* @52 */
	vm32_object_id_t object_id;       /* @56 */
	unsigned short user_wired_count;  /* @60 0 */
	unsigned int pages_reusable;      /* @64 0 (count 17 and up) */
	vm_object_id_t object_id_full;    /* @68 (count 19) */
};

struct vm_region_submap_short_info_64 {
	vm_prot_t protection;             /* @0 */
	vm_prot_t max_protection;         /* @4 */
	vm_inherit_t inheritance;         /* @8 */
	memory_object_offset_t offset;    /* @12 */
	unsigned int user_tag;            /* @20 0 */
	unsigned int ref_count;           /* @24 */
	unsigned short shadow_depth;      /* @28 0 */
	unsigned char external_pager;     /* @30 0 */
	unsigned char share_mode;         /* @31 SM_* */
	boolean_t is_submap;              /* @32 0 */
	vm_behavior_t behavior;           /* @36 */
	vm32_object_id_t object_id;       /* @40 */
	unsigned short user_wired_count;  /* @44 0 */
};

/* vm_region_64's flavor VM_REGION_EXTENDED_INFO (count 9): the region's pages
 * and share mode, as the submap info reports them. */
struct vm_region_extended_info {
	vm_prot_t protection;             /* @0 */
	unsigned int user_tag;            /* @4 0 */
	unsigned int pages_resident;      /* @8 */
	unsigned int pages_shared_now_private; /* @12 0 */
	unsigned int pages_swapped_out;   /* @16 0 */
	unsigned int pages_dirtied;       /* @20 0 */
	unsigned int ref_count;           /* @24 */
	unsigned short shadow_depth;      /* @28 0 */
	unsigned char external_pager;     /* @30 0 */
	unsigned char share_mode;         /* @31 */
	unsigned int pages_reusable;      /* @32 0 */
};
#pragma pack(pop)

typedef struct vm_region_submap_info_64 *vm_region_submap_info_64_t;
typedef struct vm_region_submap_info_64 vm_region_submap_info_data_64_t;
typedef struct vm_region_submap_short_info_64 *vm_region_submap_short_info_64_t;
typedef struct vm_region_submap_short_info_64 vm_region_submap_short_info_data_64_t;
typedef struct vm_region_extended_info *vm_region_extended_info_t;
typedef struct vm_region_extended_info vm_region_extended_info_data_t;

#define VM_REGION_SUBMAP_INFO_COUNT_64 \
	((mach_msg_type_number_t)(sizeof(vm_region_submap_info_data_64_t) / sizeof(natural_t)))
#define VM_REGION_SUBMAP_INFO_V2_COUNT_64 VM_REGION_SUBMAP_INFO_COUNT_64
#define VM_REGION_SUBMAP_INFO_V1_COUNT_64 ((mach_msg_type_number_t)17)
#define VM_REGION_SUBMAP_INFO_V0_COUNT_64 ((mach_msg_type_number_t)16)
#define VM_REGION_SUBMAP_SHORT_INFO_COUNT_64 \
	((mach_msg_type_number_t)(sizeof(vm_region_submap_short_info_data_64_t) / sizeof(natural_t)))
#define VM_REGION_EXTENDED_INFO 13
#define VM_REGION_EXTENDED_INFO_COUNT \
	((mach_msg_type_number_t)(sizeof(vm_region_extended_info_data_t) / sizeof(natural_t)))

#include <mach/machvm_import.h>
__MACHVM_LAYOUT(sizeof(struct vm_region_submap_info_64) == 76, "vm_region_submap_info_64 is 76 bytes");
__MACHVM_LAYOUT(VM_REGION_SUBMAP_INFO_COUNT_64 == 19, "VM_REGION_SUBMAP_INFO_COUNT_64 is 19");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_region_submap_info_64, ref_count) == 40, "ref_count @40");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_region_submap_info_64, share_mode) == 47, "share_mode @47");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_region_submap_info_64, object_id) == 56, "object_id @56");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_region_submap_info_64, object_id_full) == 68, "object_id_full @68");
__MACHVM_LAYOUT(sizeof(struct vm_region_submap_short_info_64) == 48, "the short info is 48 bytes");
__MACHVM_LAYOUT(VM_REGION_SUBMAP_SHORT_INFO_COUNT_64 == 12, "its count is 12");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_region_submap_short_info_64, share_mode) == 31, "share_mode @31");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_region_submap_short_info_64, object_id) == 40, "object_id @40");
__MACHVM_LAYOUT(sizeof(struct vm_region_extended_info) == 36, "vm_region_extended_info is 36 bytes");
__MACHVM_LAYOUT(VM_REGION_EXTENDED_INFO_COUNT == 9, "VM_REGION_EXTENDED_INFO_COUNT is 9");
__MACHVM_LAYOUT(sizeof(struct vm_page_info_basic) == 32, "vm_page_info_basic is 32 bytes");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_page_info_basic, offset) == 16, "offset @16");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_page_info_basic, depth) == 24, "depth @24");

#endif /* _MACH_VM_REGION_H_ */
