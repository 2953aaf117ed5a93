/*
 * ABI check guest: re-exports every import of spec §3 and §9 as "x_<name>" with the
 * very signature the SDK headers give it. build.sh compares the imports of
 * the wasm32 and wasm64 builds with tests/abi32.expected / abi64.expected.
 * A host test can also call any Mach call through these exports, e.g.
 * `machvm run --invoke x_host_page_size abi32.wasm 0 1024` (stores at 1024).
 * x_load32/x_load64/x_store32/x_store64 read and write guest memory so that
 * a test can set up and inspect in/out parameters.
 */
#include <mach/mach.h>

#define X(ret, name, params, args) ret x_##name params { return name args; }

X(mach_port_t, mach_task_self, (void), ())
X(mach_port_t, mach_host_self, (void), ())
X(kern_return_t, host_page_size, (host_t h, vm_size_t *s), (h, s))
X(kern_return_t, vm_allocate, (vm_map_t t, vm_address_t *a, vm_size_t s, int f), (t, a, s, f))
X(kern_return_t, vm_deallocate, (vm_map_t t, vm_address_t a, vm_size_t s), (t, a, s))
X(kern_return_t, vm_protect, (vm_map_t t, vm_address_t a, vm_size_t s, boolean_t m, vm_prot_t p), (t, a, s, m, p))
X(kern_return_t, vm_copy, (vm_map_t t, vm_address_t a, vm_size_t s, vm_address_t d), (t, a, s, d))
X(kern_return_t, vm_read, (vm_map_read_t t, vm_address_t a, vm_size_t s, vm_offset_t *d, mach_msg_type_number_t *c), (t, a, s, d, c))
X(kern_return_t, vm_read_overwrite, (vm_map_read_t t, vm_address_t a, vm_size_t s, vm_address_t d, vm_size_t *o), (t, a, s, d, o))
X(kern_return_t, vm_write, (vm_map_t t, vm_address_t a, vm_offset_t d, mach_msg_type_number_t c), (t, a, d, c))
X(kern_return_t, vm_region_64, (vm_map_read_t t, vm_address_t *a, vm_size_t *s, vm_region_flavor_t f, vm_region_info_t i, mach_msg_type_number_t *c, mach_port_t *o), (t, a, s, f, i, c, o))
X(kern_return_t, mach_vm_allocate, (vm_map_t t, mach_vm_address_t *a, mach_vm_size_t s, int f), (t, a, s, f))
X(kern_return_t, mach_vm_deallocate, (vm_map_t t, mach_vm_address_t a, mach_vm_size_t s), (t, a, s))
X(kern_return_t, mach_vm_protect, (vm_map_t t, mach_vm_address_t a, mach_vm_size_t s, boolean_t m, vm_prot_t p), (t, a, s, m, p))
X(kern_return_t, mach_vm_copy, (vm_map_t t, mach_vm_address_t a, mach_vm_size_t s, mach_vm_address_t d), (t, a, s, d))
X(kern_return_t, mach_vm_read, (vm_map_read_t t, mach_vm_address_t a, mach_vm_size_t s, vm_offset_t *d, mach_msg_type_number_t *c), (t, a, s, d, c))
X(kern_return_t, mach_vm_read_overwrite, (vm_map_read_t t, mach_vm_address_t a, mach_vm_size_t s, mach_vm_address_t d, mach_vm_size_t *o), (t, a, s, d, o))
X(kern_return_t, mach_vm_write, (vm_map_t t, mach_vm_address_t a, vm_offset_t d, mach_msg_type_number_t c), (t, a, d, c))
X(kern_return_t, mach_vm_region, (vm_map_read_t t, mach_vm_address_t *a, mach_vm_size_t *s, vm_region_flavor_t f, vm_region_info_t i, mach_msg_type_number_t *c, mach_port_t *o), (t, a, s, f, i, c, o))

X(kern_return_t, vm_region, (vm_map_read_t t, vm_address_t *a, vm_size_t *s, vm_region_flavor_t f, vm_region_info_t i, mach_msg_type_number_t *c, mach_port_t *o), (t, a, s, f, i, c, o))
X(kern_return_t, vm_behavior_set, (vm_map_t t, vm_address_t a, vm_size_t s, vm_behavior_t b), (t, a, s, b))
X(kern_return_t, mach_vm_behavior_set, (vm_map_t t, mach_vm_address_t a, mach_vm_size_t s, vm_behavior_t b), (t, a, s, b))
X(kern_return_t, vm_inherit, (vm_map_t t, vm_address_t a, vm_size_t s, vm_inherit_t i), (t, a, s, i))
X(kern_return_t, mach_vm_inherit, (vm_map_t t, mach_vm_address_t a, mach_vm_size_t s, vm_inherit_t i), (t, a, s, i))
X(kern_return_t, vm_remap, (vm_map_t t, vm_address_t *a, vm_size_t s, vm_address_t m, int f, vm_map_t st, vm_address_t sa, boolean_t c, vm_prot_t *cur, vm_prot_t *max, vm_inherit_t i), (t, a, s, m, f, st, sa, c, cur, max, i))
X(kern_return_t, mach_vm_remap, (vm_map_t t, mach_vm_address_t *a, mach_vm_size_t s, mach_vm_offset_t m, int f, vm_map_t st, mach_vm_address_t sa, boolean_t c, vm_prot_t *cur, vm_prot_t *max, vm_inherit_t i), (t, a, s, m, f, st, sa, c, cur, max, i))
X(kern_return_t, vm_region_recurse_64, (vm_map_read_t t, vm_address_t *a, vm_size_t *s, natural_t *d, vm_region_recurse_info_t i, mach_msg_type_number_t *c), (t, a, s, d, i, c))
X(kern_return_t, mach_vm_region_recurse, (vm_map_read_t t, mach_vm_address_t *a, mach_vm_size_t *s, natural_t *d, vm_region_recurse_info_t i, mach_msg_type_number_t *c), (t, a, s, d, i, c))
X(kern_return_t, mach_make_memory_entry_64, (vm_map_t t, memory_object_size_t *s, memory_object_offset_t o, vm_prot_t p, mem_entry_name_port_t *h, mem_entry_name_port_t pe), (t, s, o, p, h, pe))
X(kern_return_t, mach_make_memory_entry, (vm_map_t t, vm_size_t *s, vm_offset_t o, vm_prot_t p, mem_entry_name_port_t *h, mem_entry_name_port_t pe), (t, s, o, p, h, pe))
X(kern_return_t, vm_map, (vm_map_t t, vm_address_t *a, vm_size_t s, vm_address_t m, int f, mem_entry_name_port_t ob, vm_offset_t o, boolean_t c, vm_prot_t cur, vm_prot_t max, vm_inherit_t i), (t, a, s, m, f, ob, o, c, cur, max, i))
X(kern_return_t, mach_vm_map, (vm_map_t t, mach_vm_address_t *a, mach_vm_size_t s, mach_vm_offset_t m, int f, mem_entry_name_port_t ob, memory_object_offset_t o, boolean_t c, vm_prot_t cur, vm_prot_t max, vm_inherit_t i), (t, a, s, m, f, ob, o, c, cur, max, i))
X(kern_return_t, mach_port_deallocate, (ipc_space_t t, mach_port_name_t n), (t, n))
X(kern_return_t, vm_msync, (vm_map_t t, vm_address_t a, vm_size_t s, vm_sync_t f), (t, a, s, f))
X(kern_return_t, mach_vm_msync, (vm_map_t t, mach_vm_address_t a, mach_vm_size_t s, vm_sync_t f), (t, a, s, f))
X(kern_return_t, vm_wire, (host_priv_t h, vm_map_t t, vm_address_t a, vm_size_t s, vm_prot_t p), (h, t, a, s, p))
X(kern_return_t, mach_vm_wire, (host_priv_t h, vm_map_t t, mach_vm_address_t a, mach_vm_size_t s, vm_prot_t p), (h, t, a, s, p))
X(kern_return_t, vm_map_page_query, (vm_map_read_t t, vm_offset_t o, integer_t *d, integer_t *r), (t, o, d, r))
X(kern_return_t, mach_vm_page_query, (vm_map_read_t t, mach_vm_offset_t o, integer_t *d, integer_t *r), (t, o, d, r))
X(kern_return_t, mach_vm_page_info, (vm_map_read_t t, mach_vm_address_t a, vm_page_info_flavor_t f, vm_page_info_t i, mach_msg_type_number_t *c), (t, a, f, i, c))
X(kern_return_t, mach_vm_page_range_query, (vm_map_read_t t, mach_vm_offset_t a, mach_vm_size_t s, mach_vm_address_t d, mach_vm_size_t *c), (t, a, s, d, c))
X(kern_return_t, vm_purgable_control, (vm_map_t t, vm_address_t a, vm_purgable_t c, int *s), (t, a, c, s))
X(kern_return_t, mach_vm_purgable_control, (vm_map_t t, mach_vm_address_t a, vm_purgable_t c, int *s), (t, a, c, s))
X(kern_return_t, task_info, (task_name_t t, task_flavor_t f, task_info_t i, mach_msg_type_number_t *c), (t, f, i, c))
X(kern_return_t, host_statistics64, (host_t h, host_flavor_t f, host_info64_t i, mach_msg_type_number_t *c), (h, f, i, c))
unsigned int x_load32(const volatile unsigned int *p) { return *p; }
unsigned long long x_load64(const volatile unsigned long long *p) { return *p; }
void x_store32(volatile unsigned int *p, unsigned int v) { *p = v; }
void x_store64(volatile unsigned long long *p, unsigned long long v) { *p = v; }
