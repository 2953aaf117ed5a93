/*
 * malloc beside the Mach calls: a WASI command (wasi-libc) that takes memory from
 * malloc and from the Mach calls in the order its standard input spells, fills
 * every block with a byte of its own, and checks after each step that no two
 * blocks share a byte and that every block still holds its byte. `main` takes
 * no arguments and reading stdin allocates nothing, so the first step really
 * is the program's first allocation.
 *
 * Steps (one letter each; anything else is skipped):
 *   a  vm_allocate(ANYWHERE), 4 pages          A  mach_vm_allocate(ANYWHERE), 3 pages + 100 bytes
 *   f  vm_allocate(FIXED) 2 pages past the memory's end (the host grows it)
 *   r  vm_read of the last Mach block (the copy lands where the host puts it)
 *   m  malloc(100000)   s  malloc(24)   c  calloc(1000, 100)   g  malloc(3 MiB)
 *   n  new char[100000]  v  a std::vector<char> of 200000 (built as C++ only)
 *
 * Prints "heap: ok, N blocks" and exits 0, or names the first clash and exits 1.
 */
#include <mach/mach.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __cplusplus
#include <vector>
#endif

#define MAX_BLOCKS 64

struct block {
	uintptr_t start;
	size_t len;
	unsigned char tag;
	char step;
};

static struct block blocks[MAX_BLOCKS];
static int nblocks;

static int fail(const char *what, const struct block *b, const struct block *o)
{
	printf("heap: %s: block %d ('%c', [%#lx, %#lx))", what, (int)(b - blocks), b->step,
	       (unsigned long)b->start, (unsigned long)(b->start + b->len));
	if (o)
		printf(" and block %d ('%c', [%#lx, %#lx))", (int)(o - blocks), o->step,
		       (unsigned long)o->start, (unsigned long)(o->start + o->len));
	printf("\n");
	return 1;
}

/* Every block apart from the others and still holding its tag. */
static int check(void)
{
	for (int i = 0; i < nblocks; i++) {
		const struct block *b = &blocks[i];
		for (int j = 0; j < i; j++) {
			const struct block *o = &blocks[j];
			if (b->start < o->start + o->len && o->start < b->start + b->len)
				return fail("overlap", b, o);
		}
		for (size_t k = 0; k < b->len; k++)
			if (((unsigned char *)b->start)[k] != b->tag)
				return fail("a byte changed", b, NULL);
	}
	return 0;
}

static int add(char step, uintptr_t start, size_t len)
{
	if (nblocks == MAX_BLOCKS) {
		printf("heap: more than %d blocks\n", MAX_BLOCKS);
		return 1;
	}
	struct block *b = &blocks[nblocks++];
	b->start = start;
	b->len = len;
	b->step = step;
	b->tag = (unsigned char)(0x11 * nblocks);
	memset((void *)start, b->tag, len);
	return check();
}

static int mach_step(char step, kern_return_t kr, uintptr_t start, size_t len)
{
	if (kr != KERN_SUCCESS) {
		printf("heap: step '%c': %s (%d)\n", step, mach_error_string(kr), kr);
		return 1;
	}
	return add(step, start, len);
}

static int malloc_step(char step, void *p, size_t len)
{
	if (!p) {
		printf("heap: step '%c': out of memory\n", step);
		return 1;
	}
	return add(step, (uintptr_t)p, len);
}

/* The last block a Mach call made, or NULL. */
static const struct block *last_mach(void)
{
	for (int i = nblocks - 1; i >= 0; i--)
		if (strchr("aAfr", blocks[i].step))
			return &blocks[i];
	return NULL;
}

static int run(char step)
{
	mach_port_t self = mach_task_self();
	switch (step) {
	case 'a': {
		vm_address_t a = 0;
		kern_return_t kr = vm_allocate(self, &a, 4 * vm_page_size, VM_FLAGS_ANYWHERE);
		return mach_step(step, kr, a, 4 * vm_page_size);
	}
	case 'A': {
		mach_vm_address_t a = 0;
		mach_vm_size_t n = 3 * vm_page_size + 100;
		kern_return_t kr = mach_vm_allocate(self, &a, n, VM_FLAGS_ANYWHERE);
		return mach_step(step, kr, (uintptr_t)a, (size_t)n);
	}
	case 'f': {
		vm_address_t end = (vm_address_t)__builtin_wasm_memory_size(0) * 65536;
		vm_address_t a = end + 2 * vm_page_size;
		kern_return_t kr = vm_allocate(self, &a, 2 * vm_page_size, VM_FLAGS_FIXED);
		return mach_step(step, kr, a, 2 * vm_page_size);
	}
	case 'r': {
		const struct block *src = last_mach();
		if (!src)
			return 0;
		vm_offset_t data = 0;
		mach_msg_type_number_t count = 0;
		kern_return_t kr = vm_read(self, src->start + 10, 2000, &data, &count);
		if (kr == KERN_SUCCESS && count != 2000) {
			printf("heap: vm_read: count %u\n", count);
			return 1;
		}
		return mach_step(step, kr, data, 2000);
	}
	case 'm':
		return malloc_step(step, malloc(100000), 100000);
	case 's':
		return malloc_step(step, malloc(24), 24);
	case 'c':
		return malloc_step(step, calloc(1000, 100), 100000);
	case 'g':
		return malloc_step(step, malloc(3 << 20), 3 << 20);
#ifdef __cplusplus
	case 'n':
		return malloc_step(step, new char[100000], 100000);
	case 'v': {
		/* Kept alive to the end, as the other blocks are. */
		static std::vector<char> kept[MAX_BLOCKS];
		std::vector<char> &v = kept[nblocks];
		v.resize(200000);
		return malloc_step(step, v.data(), v.size());
	}
#endif
	default:
		return 0;
	}
}

int main(void)
{
	char steps[MAX_BLOCKS];
	ssize_t n = read(0, steps, sizeof steps);
	if (n <= 0) {
		printf("heap: give the steps on standard input\n");
		return 2;
	}
	for (ssize_t i = 0; i < n; i++)
		if (run(steps[i]))
			return 1;
	printf("heap: ok, %d blocks\n", nblocks);
	return 0;
}
