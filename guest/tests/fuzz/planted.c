/*
 * Planted heap bugs for `machvm fuzz`: one fuzz target per bug, chosen with
 * -DBUG=N at build time, each reached only by inputs that start with "BUG" (so
 * that finding it takes libFuzzer's coverage guidance, not luck) and then done
 * once, the way a parser that trusts a length field does it. Stock C: no
 * machvm header, wasi-libc's malloc, libFuzzer's entry point.
 *
 *   1 overflow-read   reads one byte past a malloc'd block
 *   2 overflow-write  writes one byte past a malloc'd block
 *   3 underflow       writes one byte before a malloc'd block
 *   4 uaf-read        reads a block after free
 *   5 uaf-write       writes a block after free
 *   6 double-free     frees a block twice
 *   7 past-input      reads one byte past the input
 *
 * The block sizes are multiples of 16, so that the default guard heap (16-byte
 * aligned blocks) puts their last byte against the guard page.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef BUG
#error "build with -DBUG=1..7"
#endif

char *volatile sink;
volatile unsigned char byte;

static void planted(const uint8_t *data, size_t size)
{
	/* Through a volatile pointer: the compiler may neither drop the block nor
	 * the accesses that the C standard leaves undefined. */
	char *volatile p = malloc(32);
	if (!p)
		return;
	memset(p, 'x', 32);
	sink = p;
	switch (BUG) {
	case 1:
		byte = p[32];
		break;
	case 2:
		p[32] = 0;
		break;
	case 3:
		p[-1] = 0;
		break;
	case 4:
		free(p);
		byte = p[0];
		return;
	case 5:
		free(p);
		p[0] = 0;
		return;
	case 6:
		free(p);
		free(p);
		return;
	case 7:
		byte = data[size];
		break;
	}
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 3 && data[0] == 'B')
		if (data[1] == 'U')
			if (data[2] == 'G')
				planted(data, size);
	return 0;
}
