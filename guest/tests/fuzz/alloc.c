/*
 * The C allocator's interface through the guard heap (tests/guard_heap.rs): a
 * reactor whose exports each check one part of it and answer 0, or the number
 * of the first check that failed. Stock C and wasi-libc: `machvm::fuzz::heap`
 * finds malloc and the rest in the name section.
 */
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Through volatile pointers, so the compiler keeps every call: it may drop an
 * allocation whose block is only compared and freed (and then takes it to be
 * non-NULL), and knows aligned_alloc's alignment. */
void *(*volatile malloc_fn)(size_t) = malloc;
void *(*volatile calloc_fn)(size_t, size_t) = calloc;
void *(*volatile aligned_alloc_fn)(size_t, size_t) = aligned_alloc;
int (*volatile posix_memalign_fn)(void **, size_t, size_t) = posix_memalign;

int check_calloc(void)
{
	unsigned char *p = calloc_fn(100, 3);
	if (!p)
		return 1;
	for (size_t i = 0; i < 300; i++)
		if (p[i] != 0)
			return 2;
	free(p);
	/* n * size overflows: NULL, as C requires. */
	if (calloc_fn(SIZE_MAX / 2, 3) != NULL)
		return 3;
	return 0;
}

int check_realloc(void)
{
	char *p = realloc(NULL, 10); /* as malloc */
	if (!p)
		return 1;
	memcpy(p, "0123456789", 10);
	char *q = realloc(p, 10000); /* grows: the bytes move with it */
	if (!q || memcmp(q, "0123456789", 10) != 0)
		return 2;
	memset(q + 10, 'x', 9990);
	char *r = realloc(q, 5); /* shrinks: the first bytes stay */
	if (!r || memcmp(r, "01234", 5) != 0)
		return 3;
	free(r);
	return 0;
}

int check_aligned(void)
{
	void *p = NULL;
	if (posix_memalign_fn(&p, 4096, 100) != 0 || ((uintptr_t)p & 4095) != 0)
		return 1;
	memset(p, 1, 100);
	free(p);
	/* Not a power of two times sizeof(void *): EINVAL, p unchanged. */
	p = &p;
	if (posix_memalign_fn(&p, 24, 100) == 0 || p != &p)
		return 2;
	void *a = aligned_alloc_fn(64, 128);
	if (!a || ((uintptr_t)a & 63) != 0)
		return 3;
	free(a);
	/* (wasi-libc has no memalign.) */
	return 0;
}

int check_usable_size(void)
{
	char *p = malloc(33);
	if (!p)
		return 1;
	size_t n = malloc_usable_size(p);
	if (n < 33)
		return 2;
	/* Every usable byte can be written. */
	memset(p, 'u', n);
	free(p);
	if (malloc_usable_size(NULL) != 0)
		return 3;
	return 0;
}

/* malloc(size) until it answers NULL, keeping every block live; then frees them
 * all and checks that malloc works again. Answers the number of blocks, or -1
 * when malloc did not come back. */
#define MAX_BLOCKS 100000
static void *blocks[MAX_BLOCKS];

int fill(size_t size)
{
	int n = 0;
	while (n < MAX_BLOCKS) {
		void *p = malloc_fn(size);
		if (!p)
			break;
		blocks[n++] = p;
	}
	for (int i = 0; i < n; i++)
		free(blocks[i]);
	void *again = malloc_fn(size);
	if (!again)
		return -1;
	free(again);
	return n;
}
