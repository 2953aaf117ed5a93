/*
 * machvm guest SDK: <sys/cdefs.h> with Apple's macros.
 *
 * macOS code uses the macros of Apple's <sys/cdefs.h> (__unused, __dead2,
 * __printflike, __deprecated_msg, __BEGIN_DECLS, ...) often without including
 * anything: on macOS every system header brings them in. wasi-libc has no
 * <sys/cdefs.h>, so with -I guest/include this one is found; for code that
 * uses the macros without including it, add `-include sys/cdefs.h` to the
 * compiler flags. Every macro is defined only where nothing defined it first.
 * The availability macros (API_AVAILABLE, __OSX_AVAILABLE_STARTING, ...) and
 * the bounds-safety annotations (__counted_by, __sized_by, ...) expand to
 * nothing: there is one platform and one ABI.
 *
 * As on macOS, `__unused` becomes an attribute: two wasi-libc headers use it as
 * a field name (<mqueue.h>, <netinet/ip_icmp.h>) and must be included before
 * this header, which `-include` rules out for their translation units.
 */
#ifndef _MACHVM_SYS_CDEFS_H_
#define _MACHVM_SYS_CDEFS_H_

#ifdef __cplusplus
#ifndef __BEGIN_DECLS
#define __BEGIN_DECLS extern "C" {
#endif
#ifndef __END_DECLS
#define __END_DECLS }
#endif
#else
#ifndef __BEGIN_DECLS
#define __BEGIN_DECLS
#endif
#ifndef __END_DECLS
#define __END_DECLS
#endif
#endif

#ifndef __CONCAT
#define __CONCAT(x, y) x ## y
#endif
#ifndef __STRING
#define __STRING(x) #x
#endif
#ifndef __XSTRING
#define __XSTRING(x) __STRING(x)
#endif

/* Function and variable attributes. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
#ifndef __used
#define __used __attribute__((__used__))
#endif
#ifndef __dead2
#define __dead2 __attribute__((__noreturn__))
#endif
#ifndef __pure2
#define __pure2 __attribute__((__const__))
#endif
#ifndef __pure
#define __pure __attribute__((__pure__))
#endif
#ifndef __cold
#define __cold __attribute__((__cold__))
#endif
#ifndef __abortlike
#define __abortlike __dead2 __cold __attribute__((__noinline__))
#endif
#ifndef __exported
#define __exported __attribute__((__visibility__("default")))
#endif
#ifndef __exported_push
#define __exported_push _Pragma("GCC visibility push(default)")
#define __exported_pop _Pragma("GCC visibility pop")
#endif
#ifndef __private_extern__
#define __private_extern__ extern __attribute__((__visibility__("hidden")))
#endif
#ifndef __result_use_check
#define __result_use_check __attribute__((__warn_unused_result__))
#endif
#ifndef __alloc_size
#define __alloc_size(...) __attribute__((__alloc_size__(__VA_ARGS__)))
#endif
#ifndef __header_inline
#define __header_inline static __inline__
#endif
#ifndef __header_always_inline
#define __header_always_inline static __inline__ __attribute__((__always_inline__))
#endif
#ifndef __printflike
#define __printflike(fmtarg, firstvararg) \
	__attribute__((__format__(__printf__, fmtarg, firstvararg)))
#endif
#ifndef __printf0like
#define __printf0like(fmtarg, firstvararg) \
	__attribute__((__format__(__printf__, fmtarg, firstvararg)))
#endif
#ifndef __scanflike
#define __scanflike(fmtarg, firstvararg) \
	__attribute__((__format__(__scanf__, fmtarg, firstvararg)))
#endif
#ifndef __deprecated
#define __deprecated __attribute__((__deprecated__))
#endif
#ifndef __deprecated_msg
#define __deprecated_msg(_msg) __attribute__((__deprecated__(_msg)))
#endif
#ifndef __deprecated_enum_msg
#define __deprecated_enum_msg(_msg) __deprecated_msg(_msg)
#endif
#ifndef __kpi_deprecated
#define __kpi_deprecated(_msg)
#endif
#ifndef __unavailable
#define __unavailable __attribute__((__unavailable__))
#endif

/* Branch hints. */
#ifndef __probable
#define __probable(x) __builtin_expect(!!(x), 1)
#endif
#ifndef __improbable
#define __improbable(x) __builtin_expect(!!(x), 0)
#endif

/* Enumerations with a fixed underlying type (C and C++). */
#ifndef __enum_decl
#define __enum_decl(_name, _type, ...) \
	typedef _type _name; enum __VA_ARGS__ __attribute__((__enum_extensibility__(open)))
#define __enum_closed_decl(_name, _type, ...) \
	typedef _type _name; enum __VA_ARGS__ __attribute__((__enum_extensibility__(closed)))
#define __options_decl(_name, _type, ...) \
	typedef _type _name; enum __VA_ARGS__ __attribute__((__enum_extensibility__(open), __flag_enum__))
#define __options_closed_decl(_name, _type, ...) \
	typedef _type _name; enum __VA_ARGS__ __attribute__((__enum_extensibility__(closed), __flag_enum__))
#endif

/* Symbol variants of Darwin's libc: one variant here. */
#ifndef __DARWIN_ALIAS
#define __DARWIN_ALIAS(sym)
#define __DARWIN_ALIAS_C(sym)
#define __DARWIN_ALIAS_I(sym)
#define __DARWIN_INODE64(sym)
#define __DARWIN_NOCANCEL(sym)
#define __DARWIN_EXTSN(sym)
#define __DARWIN_EXTSN_C(sym)
#define __DARWIN_1050(sym)
#endif

/* Availability: always available. */
#ifndef API_AVAILABLE
#define API_AVAILABLE(...)
#define API_UNAVAILABLE(...)
#define API_DEPRECATED(...)
#define API_DEPRECATED_WITH_REPLACEMENT(...)
#endif
#ifndef __API_AVAILABLE
#define __API_AVAILABLE(...)
#define __API_UNAVAILABLE(...)
#define __API_DEPRECATED(...)
#define __API_DEPRECATED_WITH_REPLACEMENT(...)
#endif
#ifndef __OSX_AVAILABLE_STARTING
#define __OSX_AVAILABLE_STARTING(_osx, _ios)
#define __OSX_AVAILABLE_BUT_DEPRECATED(_osxIntro, _osxDep, _iosIntro, _iosDep)
#define __OSX_AVAILABLE(_vers)
#define __IOS_AVAILABLE(_vers)
#define __TVOS_AVAILABLE(_vers)
#define __WATCHOS_AVAILABLE(_vers)
#define __OSX_UNAVAILABLE
#define __IOS_PROHIBITED
#define __TVOS_PROHIBITED
#define __WATCHOS_PROHIBITED
#endif

/* Bounds-safety annotations: no bounds checks in wasm builds. */
#ifndef __counted_by
#define __counted_by(N)
#define __sized_by(N)
#define __counted_by_or_null(N)
#define __sized_by_or_null(N)
#define __ended_by(E)
#endif
#ifndef __single
#define __single
#define __indexable
#define __bidi_indexable
#define __unsafe_indexable
#define __null_terminated
#endif
#ifndef __ptrcheck_abi_assume_single
#define __ptrcheck_abi_assume_single()
#define __ptrcheck_abi_assume_unsafe_indexable()
#define __ASSUME_PTR_ABI_SINGLE_BEGIN
#define __ASSUME_PTR_ABI_SINGLE_END
#endif

#endif /* _MACHVM_SYS_CDEFS_H_ */
