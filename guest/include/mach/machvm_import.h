/*
 * machvm guest SDK: the attribute that turns a declaration into an import
 * from the wasm module "mach" (spec §3). Internal to the SDK headers.
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

/* Layout checks of the structures the host fills; `__extension__` keeps C99
 * -Wpedantic builds quiet. */
#if defined(__cplusplus)
#define __MACHVM_LAYOUT(cond, msg) static_assert(cond, msg)
#else
#define __MACHVM_LAYOUT(cond, msg) __extension__ _Static_assert(cond, msg)
#endif

/*
 * The C library's heap comes first. wasi-libc's malloc (as Debian 12 ships it,
 * 2022-05) takes, on its first call, every byte from __heap_base to the memory's
 * size at that moment. A Mach call that maps pages grows the memory; if one came
 * first, malloc would take its pages as heap too: the same memory twice. This
 * constructor makes malloc start before any code of the program runs (user
 * constructors have priorities from 101), so its heap ends where the initial
 * memory ends and everything a Mach call maps lies past it. It does nothing when
 * the program has no malloc. wasi-libc from 2023-01 on takes the heap only up
 * to the initial memory's end (__heap_end), and this is then harmless.
 * Define MACHVM_NO_HEAP_FIRST to leave it out.
 */
#if defined(__wasi__) && !defined(MACHVM_NO_HEAP_FIRST)
__MACHVM_BEGIN_DECLS
extern void *__libc_malloc(__SIZE_TYPE__) __attribute__((weak));
extern void __libc_free(void *) __attribute__((weak));
__MACHVM_END_DECLS
/* Priorities up to 100 are the implementation's, which the SDK is here. */
#if __has_warning("-Wprio-ctor-dtor")
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wprio-ctor-dtor"
#endif
__attribute__((constructor(100))) static void __machvm_heap_first(void)
{
	if (__libc_malloc && __libc_free)
		__libc_free(__libc_malloc(1));
}
#if __has_warning("-Wprio-ctor-dtor")
#pragma clang diagnostic pop
#endif
#endif

#endif /* _MACH_MACHVM_IMPORT_H_ */
