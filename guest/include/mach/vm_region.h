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
	boolean_t shared;                /* @12 pages of a shared object (vm_remap) */
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

#include <mach/machvm_import.h>
__MACHVM_LAYOUT(sizeof(struct vm_page_info_basic) == 32, "vm_page_info_basic is 32 bytes");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_page_info_basic, offset) == 16, "offset @16");
__MACHVM_LAYOUT(__builtin_offsetof(struct vm_page_info_basic, depth) == 24, "depth @24");

#endif /* _MACH_VM_REGION_H_ */
