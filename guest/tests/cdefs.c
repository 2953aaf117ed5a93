/*
 * Header check: macOS code that uses the macros of Apple's <sys/cdefs.h>
 * without including anything, built with `-include sys/cdefs.h`; and code
 * that includes <sys/cdefs.h> or <Availability.h> itself. build.sh compiles
 * it (syntax only) as C99 and C11 with -Wpedantic, for WASI and freestanding,
 * and as C++.
 */
#if defined(CDEFS_INCLUDED)
#include <sys/cdefs.h>
#include <Availability.h>
#include <AvailabilityMacros.h>
#include <os/availability.h>
#endif

__BEGIN_DECLS

void cdefs_fail(const char *why) __dead2 __cold;
int cdefs_log(const char *fmt, ...) __printflike(1, 2);
int cdefs_scan(const char *fmt, ...) __scanflike(1, 2);
int cdefs_old(void) __deprecated_msg("use cdefs_new");
int cdefs_new(void) __result_use_check API_AVAILABLE(macos(10.15), ios(13.0));
int cdefs_square(int x) __pure2;
void *cdefs_alloc(unsigned long n) __alloc_size(1);
int cdefs_sum(const int *__counted_by(n) v, int n);
void cdefs_old_api(void) __OSX_AVAILABLE_STARTING(__MAC_10_5, __IPHONE_2_0);

__options_decl(cdefs_flags_t, unsigned int, {
	CDEFS_A = 1,
	CDEFS_B = 2,
});

__END_DECLS

__header_always_inline int cdefs_twice(int x)
{
	return 2 * x;
}

static int cdefs_unused_param(int a, int b __unused)
{
	if (__improbable(a < 0))
		return -1;
	return __probable(a > 0) ? cdefs_twice(a) : 0;
}

int cdefs_use(void);
int cdefs_use(void)
{
	cdefs_flags_t f = CDEFS_A | CDEFS_B;
	return cdefs_unused_param((int)f, 0);
}
