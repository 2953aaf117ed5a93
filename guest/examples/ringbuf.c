/*
 * ringbuf: a byte ring buffer in pages of its own, followed by a guard page
 * that vm_protect makes inaccessible (VM_PROT_NONE), so that a bug that runs
 * past the data traps instead of corrupting memory. vm_region_64 and
 * mach_vm_region check the protections the host actually applied.
 *
 * Built for wasm32 (ringbuf.wasm) and wasm64 (ringbuf64.wasm) from this one
 * source: vm_address_t/vm_size_t follow the pointer width.
 *
 * Exports (all take and return i32):
 *   ringbuf_selftest()     0 on success, else the failing step (1..17),
 *                          see the FAIL_* codes below.
 *   ringbuf_checksum(n)    streams n bytes of a fixed pseudo-random sequence
 *                          through a ring, in uneven chunks that wrap around;
 *                          returns FNV-1a-32 of the bytes read back, masked
 *                          to 31 bits (>= 0), or -(FAIL_*) (< 0) on failure.
 *                          n = 1000000 gives 1130538875 (0x4362A77B),
 *                          n = 1000 gives 1847643480; the sequence is
 *                          s = s * 1103515245 + 12345 (mod 2^32), s0 = 1,
 *                          byte = (s >> 16) & 0xFF. n < 0: -8.
 *   ringbuf_touch_guard()  opens a ring and stores one byte into its guard
 *                          page: with page protection enforced (spec §5) the
 *                          store traps (out-of-bounds/EXC_BAD_ACCESS). If it
 *                          does not trap the function returns 100; 1..3 if
 *                          the ring could not be set up.
 *   ringbuf_page_size()    the page size host_page_size reports (4096 or 16384).
 *   last_kr()              the kern_return_t of the last call that failed (0
 *                          if none), to tell why a step failed.
 */
#include <mach/mach.h>

#define RING_PAGES 2 /* data pages; one guard page follows */

enum {
	FAIL_PAGE_SIZE = 1,       /* host_page_size failed */
	FAIL_ALLOCATE = 2,        /* vm_allocate failed */
	FAIL_PROTECT_GUARD = 3,   /* vm_protect(guard, NONE) failed */
	FAIL_REGION_DATA = 4,     /* vm_region_64 at the data failed */
	FAIL_DATA_INFO = 5,       /* data region: wrong bounds or protection */
	FAIL_REGION_GUARD = 6,    /* vm_region_64 at the guard failed */
	FAIL_GUARD_INFO = 7,      /* guard region: wrong bounds or protection */
	FAIL_STREAM = 8,          /* a byte read back differs */
	FAIL_WRITE_GUARD = 9,     /* vm_write into the guard: not PROTECTION_FAILURE */
	FAIL_READ_GUARD = 10,     /* vm_read_overwrite of the guard: not PROTECTION_FAILURE */
	FAIL_GUARD_READONLY = 11, /* vm_protect(guard, READ) failed */
	FAIL_READ_READONLY = 12,  /* reading the read-only guard failed or not zero */
	FAIL_SET_MAX = 13,        /* vm_protect(guard, set_maximum, READ) failed */
	FAIL_ABOVE_MAX = 14,      /* raising the guard above its max: not PROTECTION_FAILURE */
	FAIL_MACH_VM_REGION = 15, /* mach_vm_region: guard not READ/READ */
	FAIL_DEALLOCATE = 16,     /* vm_deallocate failed */
	FAIL_STILL_MAPPED = 17,   /* the ring is still mapped after vm_deallocate */
};

static kern_return_t g_last_kr;

kern_return_t last_kr(void) { return g_last_kr; }

/* Records a failed call's code; returns true if kr is not KERN_SUCCESS. */
static int failed(kern_return_t kr)
{
	if (kr != KERN_SUCCESS) {
		g_last_kr = kr;
		return 1;
	}
	return 0;
}

struct ring {
	vm_size_t page;       /* host page size */
	unsigned char *data;  /* RING_PAGES pages */
	vm_size_t cap;        /* RING_PAGES * page */
	vm_address_t guard;   /* the page after the data */
	vm_size_t head, tail; /* bytes written / read so far */
};

static int ring_open(struct ring *r)
{
	vm_address_t addr = 0;

	if (failed(host_page_size(mach_host_self(), &r->page)))
		return FAIL_PAGE_SIZE;
	r->cap = RING_PAGES * r->page;
	if (failed(vm_allocate(mach_task_self(), &addr, r->cap + r->page, VM_FLAGS_ANYWHERE)))
		return FAIL_ALLOCATE;
	r->data = (unsigned char *)addr;
	r->guard = addr + r->cap;
	r->head = r->tail = 0;
	/* set_maximum = FALSE: only the current protection changes (max stays ALL). */
	if (failed(vm_protect(mach_task_self(), r->guard, r->page, FALSE, VM_PROT_NONE)))
		return FAIL_PROTECT_GUARD;
	return 0;
}

static kern_return_t ring_close(struct ring *r)
{
	return vm_deallocate(mach_task_self(), (vm_address_t)r->data, r->cap + r->page);
}

/* Appends up to n bytes; returns how many fitted. */
static vm_size_t ring_push(struct ring *r, const unsigned char *src, vm_size_t n)
{
	vm_size_t room = r->cap - (r->head - r->tail);
	if (n > room)
		n = room;
	vm_size_t at = r->head % r->cap;
	vm_size_t first = n < r->cap - at ? n : r->cap - at;
	__builtin_memcpy(r->data + at, src, first);
	__builtin_memcpy(r->data, src + first, n - first);
	r->head += n;
	return n;
}

/* Removes up to n bytes; returns how many there were. */
static vm_size_t ring_pop(struct ring *r, unsigned char *dst, vm_size_t n)
{
	vm_size_t avail = r->head - r->tail;
	if (n > avail)
		n = avail;
	vm_size_t at = r->tail % r->cap;
	vm_size_t first = n < r->cap - at ? n : r->cap - at;
	__builtin_memcpy(dst, r->data + at, first);
	__builtin_memcpy(dst + first, r->data, n - first);
	r->tail += n;
	return n;
}

/* The region that contains addr (or follows it). */
static kern_return_t region_at(vm_address_t addr, vm_address_t *start, vm_size_t *size,
	vm_region_basic_info_data_64_t *info)
{
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t object_name = MACH_PORT_DEAD;
	*start = addr;
	kern_return_t kr = vm_region_64(mach_task_self(), start, size, VM_REGION_BASIC_INFO_64,
		(vm_region_info_t)info, &count, &object_name);
	if (kr == KERN_SUCCESS && (count != VM_REGION_BASIC_INFO_COUNT_64 || object_name != MACH_PORT_NULL))
		return KERN_FAILURE;
	return kr;
}

/* Deterministic byte stream (a 32-bit LCG). */
static unsigned char next_byte(unsigned int *state)
{
	*state = *state * 1103515245u + 12345u;
	return (unsigned char)(*state >> 16);
}

static unsigned char chunk_in[4096], chunk_out[4096];

/* Streams n bytes through the ring; *fnv gets FNV-1a-32 of what came out. */
static int stream(struct ring *r, unsigned int n, unsigned int *fnv)
{
	unsigned int producer = 1, consumer = 1, sizes = 7;
	unsigned int sent = 0, received = 0;
	unsigned int hash = 2166136261u;

	while (received < n) {
		/* Uneven chunk sizes so that writes and reads wrap at every offset. */
		sizes = sizes * 1664525u + 1013904223u;
		vm_size_t want = 1 + (sizes >> 8) % sizeof(chunk_in);
		vm_size_t room = r->cap - (r->head - r->tail);
		if (want > n - sent)
			want = n - sent;
		if (want > room)
			want = room;
		for (vm_size_t i = 0; i < want; i++)
			chunk_in[i] = next_byte(&producer);
		sent += ring_push(r, chunk_in, want);

		vm_size_t take = 1 + (sizes >> 20) % sizeof(chunk_out);
		vm_size_t got = ring_pop(r, chunk_out, take);
		for (vm_size_t i = 0; i < got; i++) {
			if (chunk_out[i] != next_byte(&consumer))
				return FAIL_STREAM;
			hash = (hash ^ chunk_out[i]) * 16777619u;
		}
		received += got;
	}
	*fnv = hash;
	return 0;
}

int ringbuf_selftest(void)
{
	struct ring r;
	vm_address_t start;
	vm_size_t size;
	vm_region_basic_info_data_64_t info;
	unsigned int hash;
	int rc;

	if ((rc = ring_open(&r)) != 0)
		return rc;

	/* The data pages are RW/ALL. They may extend a neighbouring region with
	 * the same attributes (the guest's initial memory), but the region must
	 * end exactly at the guard page. */
	if (failed(region_at((vm_address_t)r.data, &start, &size, &info)))
		return FAIL_REGION_DATA;
	if (start > (vm_address_t)r.data || start + size != r.guard ||
	    info.protection != VM_PROT_DEFAULT || info.max_protection != VM_PROT_ALL ||
	    info.inheritance != VM_INHERIT_COPY)
		return FAIL_DATA_INFO;

	/* The guard page is a region of its own: no access, max still ALL. */
	if (failed(region_at(r.guard, &start, &size, &info)))
		return FAIL_REGION_GUARD;
	if (start != r.guard || size < r.page || info.protection != VM_PROT_NONE ||
	    info.max_protection != VM_PROT_ALL)
		return FAIL_GUARD_INFO;

	if ((rc = stream(&r, 5 * (unsigned int)r.cap + 77, &hash)) != 0)
		return rc;

	/* The calls respect the guard too: they answer instead of trapping. */
	if (vm_write(mach_task_self(), r.guard, (vm_offset_t)chunk_in, 16) != KERN_PROTECTION_FAILURE)
		return FAIL_WRITE_GUARD;
	vm_size_t outsize = 0;
	if (vm_read_overwrite(mach_task_self(), r.guard, 16, (vm_address_t)chunk_out, &outsize) !=
	    KERN_PROTECTION_FAILURE)
		return FAIL_READ_GUARD;

	/* Read-only guard: reads are allowed (and see zeroes), writes are not. */
	if (failed(vm_protect(mach_task_self(), r.guard, r.page, FALSE, VM_PROT_READ)))
		return FAIL_GUARD_READONLY;
	chunk_out[0] = 0xFF;
	if (failed(vm_read_overwrite(mach_task_self(), r.guard, 16, (vm_address_t)chunk_out, &outsize)) ||
	    outsize != 16 || chunk_out[0] != 0)
		return FAIL_READ_READONLY;

	/* Lower the maximum to READ: the guard can never become writable again. */
	if (failed(vm_protect(mach_task_self(), r.guard, r.page, TRUE, VM_PROT_READ)))
		return FAIL_SET_MAX;
	if (vm_protect(mach_task_self(), r.guard, r.page, FALSE, VM_PROT_DEFAULT) != KERN_PROTECTION_FAILURE)
		return FAIL_ABOVE_MAX;

	/* The 64-bit form of the region query works in every guest. */
	mach_vm_address_t a64 = r.guard;
	mach_vm_size_t s64 = 0;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t object_name;
	if (failed(mach_vm_region(mach_task_self(), &a64, &s64, VM_REGION_BASIC_INFO_64,
		    (vm_region_info_t)&info, &count, &object_name)) ||
	    a64 != r.guard || info.protection != VM_PROT_READ || info.max_protection != VM_PROT_READ)
		return FAIL_MACH_VM_REGION;

	if (failed(ring_close(&r)))
		return FAIL_DEALLOCATE;
	/* Nothing is mapped at the ring any more: the next region, if any, is above it. */
	kern_return_t kr = region_at((vm_address_t)r.data, &start, &size, &info);
	if (!(kr == KERN_INVALID_ADDRESS || (kr == KERN_SUCCESS && start >= r.guard + r.page)))
		return FAIL_STILL_MAPPED;
	return 0;
}

int ringbuf_checksum(int n)
{
	struct ring r;
	unsigned int hash = 0;
	int rc;

	if (n < 0)
		return -FAIL_STREAM;
	if ((rc = ring_open(&r)) != 0)
		return -rc;
	if ((rc = stream(&r, (unsigned int)n, &hash)) != 0)
		return -rc;
	if (failed(ring_close(&r)))
		return -FAIL_DEALLOCATE;
	return (int)(hash & 0x7FFFFFFFu);
}

int ringbuf_touch_guard(void)
{
	struct ring r;
	int rc;

	if ((rc = ring_open(&r)) != 0)
		return rc;
	*(volatile unsigned char *)r.guard = 1; /* traps under enforcement */
	return 100;
}

int ringbuf_page_size(void)
{
	vm_size_t page = 0;
	if (failed(host_page_size(mach_host_self(), &page)))
		return -1;
	return (int)page;
}
