/*
 * machvm guest SDK: the attribute that turns a declaration into an import
 * from the wasm module "mach" (SPEC §3). Internal to the SDK headers.
 */
#ifndef _MACH_MACHVM_IMPORT_H_
#define _MACH_MACHVM_IMPORT_H_

#if defined(__wasm__)
#define __MACHVM_IMPORT(name) \
	__attribute__((import_module("mach"), import_name(name)))
#else
/* On other targets the declarations stay plain externs (for syntax checks). */
#define __MACHVM_IMPORT(name)
#endif

#ifdef __cplusplus
#define __MACHVM_BEGIN_DECLS extern "C" {
#define __MACHVM_END_DECLS }
#else
#define __MACHVM_BEGIN_DECLS
#define __MACHVM_END_DECLS
#endif

#endif /* _MACH_MACHVM_IMPORT_H_ */
