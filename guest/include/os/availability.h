/*
 * machvm guest SDK: <os/availability.h>. The availability macros live in the SDK's
 * <sys/cdefs.h>, where they expand to nothing: every API is available.
 */
#ifndef _MACHVM_OS_AVAILABILITY_H_
#define _MACHVM_OS_AVAILABILITY_H_
#include <sys/cdefs.h>
#endif
