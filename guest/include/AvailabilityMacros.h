/*
 * machvm guest SDK: <AvailabilityMacros.h>. The availability macros live in the SDK's
 * <sys/cdefs.h>, where they expand to nothing: every API is available.
 */
#ifndef _MACHVM_AVAILABILITYMACROS_H_
#define _MACHVM_AVAILABILITYMACROS_H_
#include <sys/cdefs.h>
#endif
