/*
 * Write-only pages as macOS code meets them: a WASI command that maps two
 * pages, makes them VM_PROT_WRITE alone, stores into the first and reads it
 * back (XNU maps a write-only page at its first store, and then it is
 * readable), then, with the argument `load`, loads from the second page
 * before any store: that faults on XNU (its VM tests expect SIGBUS) and traps
 * in machvm. With `bulk`, a memset fills the second page first, so the load
 * succeeds. It prints each step and exits 0 when it runs to the end. With
 * `trap`, it stops on a wasm trap (`__builtin_trap`) right after its first
 * line: it is built with -g, for backtraces with file and line.
 */
#include <mach/mach.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	mach_port_t self = mach_task_self();
	vm_address_t a = 0;
	kern_return_t kr = vm_allocate(self, &a, 2 * vm_page_size, VM_FLAGS_ANYWHERE);
	if (kr != KERN_SUCCESS)
		return 2;
	kr = vm_protect(self, a, 2 * vm_page_size, FALSE, VM_PROT_WRITE);
	printf("vm_protect(WRITE) = %s\n", mach_error_string(kr));
	if (argc > 1 && strcmp(argv[1], "trap") == 0) {
		fflush(stdout);
		__builtin_trap(); /* line 27: the backtrace names it */
	}
	volatile unsigned char *first = (volatile unsigned char *)a;
	volatile unsigned char *second = first + vm_page_size;
	first[10] = 42;
	printf("stored 42, read back %d\n", first[10]);
	const char *what = argc > 1 ? argv[1] : "";
	if (strcmp(what, "bulk") == 0) {
		memset((void *)second, 7, vm_page_size);
		printf("after memset: %d\n", second[vm_page_size - 1]);
	}
	if (strcmp(what, "load") == 0 || strcmp(what, "bulk") == 0) {
		fflush(stdout);
		printf("load before any store: %d\n", second[0]);
	}
	printf("done\n");
	return 0;
}
