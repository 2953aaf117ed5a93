/*
 * machvm guest SDK: <mach/vm_types.h>
 *
 * vm_address_t, vm_size_t and vm_offset_t are word-sized (uintptr_t): i32 in a
 * wasm32 guest, i64 in a wasm64 guest. The mach_vm_* types are always 64 bits.
 */
#ifndef _MACH_VM_TYPES_H_
#define _MACH_VM_TYPES_H_

#include <stdint.h>
#include <mach/port.h>

typedef unsigned int natural_t;
typedef int integer_t;

typedef uintptr_t vm_offset_t;
typedef uintptr_t vm_size_t;
typedef vm_offset_t vm_address_t;
typedef vm_offset_t pointer_t;

typedef uint64_t mach_vm_address_t;
typedef uint64_t mach_vm_offset_t;
typedef uint64_t mach_vm_size_t;

typedef uint64_t vm_map_offset_t;
typedef uint64_t vm_map_address_t;
typedef uint64_t vm_map_size_t;

typedef unsigned long long memory_object_offset_t;
typedef unsigned long long memory_object_size_t;

typedef mach_port_t vm_map_t;
typedef mach_port_t vm_map_read_t;
typedef mach_port_t vm_map_inspect_t;

#define VM_MAP_NULL ((vm_map_t)0)

#endif /* _MACH_VM_TYPES_H_ */
