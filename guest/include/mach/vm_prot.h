/* machvm guest SDK: <mach/vm_prot.h> */
#ifndef _MACH_VM_PROT_H_
#define _MACH_VM_PROT_H_

typedef int vm_prot_t;

#define VM_PROT_NONE    ((vm_prot_t)0x00)
#define VM_PROT_READ    ((vm_prot_t)0x01)
#define VM_PROT_WRITE   ((vm_prot_t)0x02)
#define VM_PROT_EXECUTE ((vm_prot_t)0x04)

#define VM_PROT_DEFAULT (VM_PROT_READ | VM_PROT_WRITE)
#define VM_PROT_ALL     (VM_PROT_READ | VM_PROT_WRITE | VM_PROT_EXECUTE)

/* vm_protect only: make the range a private copy whose maximum gains WRITE. */
#define VM_PROT_COPY       ((vm_prot_t)0x10)
#define VM_PROT_WANTS_COPY ((vm_prot_t)0x10)

/*
 * XNU accepts more bits (VM_PROT_NO_CHANGE 0x08, ...); machvm's vm_protect
 * answers KERN_INVALID_ARGUMENT for any bit outside VM_PROT_ALL | VM_PROT_COPY.
 */
#define VM_PROT_NO_CHANGE  ((vm_prot_t)0x08)

/* mach_make_memory_entry_64 and vm_map: take whatever of the asked
 * protections the memory (or the entry) allows, instead of failing. */
#define VM_PROT_IS_MASK    ((vm_prot_t)0x40)

#endif /* _MACH_VM_PROT_H_ */
