/*
 * machvm guest SDK: <mach/mach_error.h>
 *
 * mach_error_string() runs in the guest (there is no import for it): a table
 * of XNU's messages for the kern_return_t codes and for the MACH_SEND_*
 * codes that machvm answers. mach_error() prints through <stdio.h> and is
 * only declared when a C library provides it (wasi-libc).
 */
#ifndef _MACH_MACH_ERROR_H_
#define _MACH_MACH_ERROR_H_

#include <mach/error.h>
#include <mach/message.h>

static const char *const __machvm_kern_error_strings[] = {
	"(os/kern) successful",
	"(os/kern) invalid address",
	"(os/kern) protection failure",
	"(os/kern) no space available",
	"(os/kern) invalid argument",
	"(os/kern) failure",
	"(os/kern) resource shortage",
	"(os/kern) not receiver",
	"(os/kern) no access",
	"(os/kern) memory failure",
	"(os/kern) memory error",
	"(os/kern) already in set",
	"(os/kern) not in set",
	"(os/kern) name exists",
	"(os/kern) aborted",
	"(os/kern) invalid name",
	"(os/kern) invalid task",
	"(os/kern) invalid right",
	"(os/kern) invalid value",
	"(os/kern) urefs overflow",
	"(os/kern) invalid capability",
	"(os/kern) right exists",
	"(os/kern) invalid host",
	"(os/kern) memory present",
	"(os/kern) memory data moved",
	"(os/kern) memory restart copy",
	"(os/kern) invalid processor set",
	"(os/kern) policy limit",
	"(os/kern) invalid policy",
	"(os/kern) invalid object",
	"(os/kern) already waiting",
	"(os/kern) default set",
	"(os/kern) exception protected",
	"(os/kern) invalid ledger",
	"(os/kern) invalid memory control",
	"(os/kern) invalid security",
	"(os/kern) not depressed",
	"(os/kern) object terminated",
	"(os/kern) lock set destroyed",
	"(os/kern) lock unstable",
	"(os/kern) lock owned by another",
	"(os/kern) lock owned by self",
	"(os/kern) semaphore destroyed",
	"(os/kern) RPC terminated",
	"(os/kern) terminate orphan",
	"(os/kern) let orphan continue",
	"(os/kern) service not supported",
	"(os/kern) remote node down",
	"(os/kern) thread not waiting",
	"(os/kern) operation timed out",
	"(os/kern) code signing error",
	"(os/kern) policy is static",
	"(os/kern) insufficient input buffer size",
	"(os/kern) denied by security policy",
	"(os/kern) missing kernel collection",
	"(os/kern) invalid kernel collection",
	"(os/kern) result not found",
};

/* The message for a Mach error code and whether the code is a known one. */
static inline const char *__machvm_error_string(mach_error_t error_value, int *known)
{
	const unsigned count = sizeof(__machvm_kern_error_strings) /
	    sizeof(__machvm_kern_error_strings[0]);
	*known = 1;
	if (error_value >= 0 && (unsigned)error_value < count) {
		return __machvm_kern_error_strings[error_value];
	}
	switch (error_value) {
	case MACH_SEND_INVALID_DEST:
		return "(ipc/send) invalid destination port";
	case MACH_SEND_INVALID_RIGHT:
		return "(ipc/send) invalid port right";
	case MACH_SEND_INVALID_MEMORY:
		return "(ipc/send) invalid memory";
	default:
		break;
	}
	/* XNU's NO_SUCH_ERROR (its texts for unknown subsystems and systems are
	 * not reproduced). */
	*known = 0;
	return "unknown error code";
}

/* The message for a Mach error code; never NULL. The returned string is
 * constant (char * only for source compatibility with XNU). */
static inline char *mach_error_string(mach_error_t error_value)
{
	int known;
	return (char *)__machvm_error_string(error_value, &known);
}

/* The error system's name, as XNU's mach_error_type(). */
static inline char *mach_error_type(mach_error_t error_value)
{
	switch (err_get_system(error_value)) {
	case 0x0:
		return (char *)"(os/kern)";
	case 0x4:
		return (char *)"(ipc/send)";
	default:
		return (char *)"(?/?)";
	}
}

#if defined(__has_include)
#if __has_include(<stdio.h>) && __STDC_HOSTED__
#include <stdio.h>
/* Prints "str message" on stderr, like XNU's mach_error(); for a code it does
 * not know, "str type message (code in hex)", as XNU does. */
static inline void mach_error(const char *str, mach_error_t error_value)
{
	int known;
	const char *message = __machvm_error_string(error_value, &known);
	if (known) {
		fprintf(stderr, "%s %s\n", str, message);
	} else {
		fprintf(stderr, "%s %s %s (%x)\n", str, mach_error_type(error_value), message,
		    (unsigned)error_value);
	}
}
#endif
#endif

#endif /* _MACH_MACH_ERROR_H_ */
