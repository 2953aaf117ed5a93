/*
 * machvm guest SDK: <mach/mach_time.h>
 *
 * mach_absolute_time() counts nanoseconds of a monotonic clock (WASI's
 * CLOCK_MONOTONIC, through the import wasi_snapshot_preview1.clock_time_get,
 * which machvm's runner links), so mach_timebase_info() answers 1/1 and the
 * usual conversion `t * numer / denom` is the identity. mach_continuous_time()
 * and mach_approximate_time() are the same clock. wasm32 only: WASI preview 1
 * has no 64-bit-memory form, and a wasm64 guest gets no declaration.
 */
#ifndef _MACH_MACH_TIME_H_
#define _MACH_MACH_TIME_H_

#include <stdint.h>
#include <mach/machvm_import.h>
#include <mach/kern_return.h>

__MACHVM_BEGIN_DECLS

struct mach_timebase_info {
	uint32_t numer;
	uint32_t denom;
};

typedef struct mach_timebase_info *mach_timebase_info_t;
typedef struct mach_timebase_info mach_timebase_info_data_t;

static inline kern_return_t mach_timebase_info(mach_timebase_info_t info)
{
	info->numer = 1;
	info->denom = 1;
	return KERN_SUCCESS;
}

#if defined(__wasm32__) || !defined(__wasm__)
#if defined(__wasm__)
uint16_t __machvm_clock_time_get(uint32_t id, uint64_t precision, uint64_t *time)
	__attribute__((import_module("wasi_snapshot_preview1"), import_name("clock_time_get")));
#else
uint16_t __machvm_clock_time_get(uint32_t id, uint64_t precision, uint64_t *time);
#endif

/* Nanoseconds of the monotonic clock (0 if the host refuses it). */
static inline uint64_t mach_absolute_time(void)
{
	uint64_t t = 0;
	if (__machvm_clock_time_get(1 /* CLOCK_MONOTONIC */, 1, &t) != 0)
		return 0;
	return t;
}

static inline uint64_t mach_continuous_time(void)
{
	return mach_absolute_time();
}

static inline uint64_t mach_approximate_time(void)
{
	return mach_absolute_time();
}
#endif

__MACHVM_END_DECLS

#endif /* _MACH_MACH_TIME_H_ */
