/*
 * machvm guest SDK: <mach/mach.h>, the umbrella header.
 *
 * Include this (and optionally <mach/mach_vm.h>, <mach/mach_error.h>, which
 * it already includes) as on macOS. Compile with the directory that holds
 * this mach/ folder on the include path:
 *
 *   clang --target=wasm32 -I guest/include ...   (or --target=wasm64)
 *
 * Every Mach call is an import from the wasm module "mach" (spec §3).
 */
#ifndef _MACH_H_
#define _MACH_H_

#include <mach/mach_types.h>
#include <mach/mach_init.h>
#include <mach/mach_host.h>
#include <mach/vm_map.h>
#include <mach/mach_vm.h>
#include <mach/mach_port.h>
#include <mach/host_priv.h>
#include <mach/task.h>
#include <mach/vm_param.h>
#include <mach/mach_error.h>

#endif /* _MACH_H_ */
