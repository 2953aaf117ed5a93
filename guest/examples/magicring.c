/*
 * magicring: the "magic ring buffer" as macOS code writes it (TPCircularBuffer's
 * setup, unchanged in substance): allocate twice the length, free the upper
 * half, and vm_remap the lower half onto it, so that the bytes past the end of
 * the buffer are its start again. A producer writes, and a consumer reads, any
 * run of bytes with one memcpy, however it straddles the end.
 *
 * A WASI command for `machvm run` (spec §8: vm_remap shares pages on memories
 * that can share them, which the runner's are):
 *
 *   machvm run guest/prebuilt/magicring.wasm [BYTES]
 *
 * streams BYTES (default 1000000) bytes of a fixed pseudo-random sequence
 * (s = s * 1103515245 + 12345 mod 2^32, s0 = 1, byte = (s >> 16) & 0xFF)
 * through a 3-page ring in uneven chunks, and prints
 *
 *   magicring: <length> bytes, cur 3 max 7, both halves shared; <BYTES> bytes
 *   through, FNV-1a 0x........
 *
 * exiting 0; on a failure it prints the step and the kern_return_t and exits 1.
 */
#include <mach/mach.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	unsigned char *buffer;
	uint32_t length;
	uint32_t tail;
	uint32_t head;
	uint32_t fill;
} ring_t;

static int fail(const char *what, kern_return_t kr)
{
	fprintf(stderr, "magicring: %s: %s (%d)\n", what, mach_error_string(kr), kr);
	return 0;
}

/* TPCircularBuffer's _TPCircularBufferInit: three tries, since another thread
 * may take the freed upper half between the deallocate and the remap. */
static int ring_init(ring_t *ring, uint32_t length)
{
	int retries = 3;
	while (1) {
		ring->length = (uint32_t)round_page(length);
		vm_address_t buffer;
		kern_return_t result = vm_allocate(mach_task_self(), &buffer,
			ring->length * 2, VM_FLAGS_ANYWHERE);
		if (result != ERR_SUCCESS) {
			if (retries-- == 0)
				return fail("buffer allocation", result);
			continue;
		}
		result = vm_deallocate(mach_task_self(), buffer + ring->length, ring->length);
		if (result != ERR_SUCCESS) {
			if (retries-- == 0)
				return fail("buffer deallocation", result);
			vm_deallocate(mach_task_self(), buffer, ring->length);
			continue;
		}
		vm_address_t virtualAddress = buffer + ring->length;
		vm_prot_t cur, max;
		result = vm_remap(mach_task_self(), &virtualAddress, ring->length, 0, 0,
			mach_task_self(), buffer, 0, &cur, &max, VM_INHERIT_DEFAULT);
		if (result != ERR_SUCCESS) {
			if (retries-- == 0)
				return fail("remap buffer memory", result);
			vm_deallocate(mach_task_self(), buffer, ring->length);
			continue;
		}
		if (virtualAddress != buffer + ring->length) {
			if (retries-- == 0)
				return fail("the remapped half is not where it was asked", KERN_FAILURE);
			vm_deallocate(mach_task_self(), virtualAddress, ring->length);
			vm_deallocate(mach_task_self(), buffer, ring->length);
			continue;
		}
		if (cur != VM_PROT_DEFAULT || max != VM_PROT_ALL)
			return fail("vm_remap's protections", KERN_FAILURE);
		ring->buffer = (unsigned char *)buffer;
		ring->fill = ring->head = ring->tail = 0;
		return 1;
	}
}

static void ring_cleanup(ring_t *ring)
{
	vm_deallocate(mach_task_self(), (vm_address_t)ring->buffer, ring->length * 2);
	memset(ring, 0, sizeof(*ring));
}

/* Where the producer may write up to *available bytes in one run. */
static unsigned char *ring_head(ring_t *ring, uint32_t *available)
{
	*available = ring->length - ring->fill;
	return ring->buffer + ring->head;
}

static void ring_produce(ring_t *ring, uint32_t n)
{
	ring->head = (ring->head + n) % ring->length;
	ring->fill += n;
}

/* Where the consumer may read up to *available bytes in one run. */
static unsigned char *ring_tail(ring_t *ring, uint32_t *available)
{
	*available = ring->fill;
	return ring->buffer + ring->tail;
}

static void ring_consume(ring_t *ring, uint32_t n)
{
	ring->tail = (ring->tail + n) % ring->length;
	ring->fill -= n;
}

/* What the consumer copies out, in one memcpy whether or not it wraps. */
static unsigned char run[3 * 65536];

/* vm_region_64's `shared` for the region at addr. */
static int shared_at(vm_address_t addr)
{
	vm_size_t size;
	vm_region_basic_info_data_64_t info;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t object_name;
	vm_address_t at = addr;
	kern_return_t kr = vm_region_64(mach_task_self(), &at, &size, VM_REGION_BASIC_INFO_64,
		(vm_region_info_t)&info, &count, &object_name);
	return kr == KERN_SUCCESS && at == addr && info.shared;
}

int main(int argc, char **argv)
{
	long total = argc > 1 ? atol(argv[1]) : 1000000;
	if (total < 0) {
		fprintf(stderr, "magicring: BYTES must not be negative\n");
		return 2;
	}
	ring_t ring;
	if (!ring_init(&ring, 3 * (uint32_t)vm_page_size - 100))
		return 1;
	/* The byte past the end is the first byte. */
	ring.buffer[0] = 0x5A;
	if (ring.buffer[ring.length] != 0x5A) {
		fail("the upper half does not show the lower one", KERN_FAILURE);
		return 1;
	}
	if (!shared_at((vm_address_t)ring.buffer) ||
	    !shared_at((vm_address_t)ring.buffer + ring.length)) {
		fail("vm_region_64 does not report both halves shared", KERN_FAILURE);
		return 1;
	}
	uint32_t s = 1, check = 1, hash = 2166136261u;
	long produced = 0, consumed = 0;
	uint32_t step = 0;
	while (consumed < total) {
		/* Uneven runs: most straddle the end at some point. */
		step = step * 7 + 13;
		uint32_t want = 1 + step % (ring.length - 1);
		uint32_t room;
		unsigned char *head = ring_head(&ring, &room);
		uint32_t n = want < room ? want : room;
		if ((long)n > total - produced)
			n = (uint32_t)(total - produced);
		for (uint32_t i = 0; i < n; i++) {
			s = s * 1103515245u + 12345u;
			head[i] = (unsigned char)(s >> 16);
		}
		ring_produce(&ring, n);
		produced += n;
		uint32_t ready;
		unsigned char *tail = ring_tail(&ring, &ready);
		uint32_t take = (want / 2 + 1) < ready ? (want / 2 + 1) : ready;
		if (produced == total)
			take = ready;
		memcpy(run, tail, take);
		for (uint32_t i = 0; i < take; i++) {
			check = check * 1103515245u + 12345u;
			if (run[i] != (unsigned char)(check >> 16)) {
				fprintf(stderr, "magicring: byte %ld read back wrong\n", consumed + i);
				return 1;
			}
			hash = (hash ^ run[i]) * 16777619u;
		}
		ring_consume(&ring, take);
		consumed += take;
	}
	printf("magicring: %u bytes, cur 3 max 7, both halves shared; %ld bytes through, "
	       "FNV-1a 0x%08x\n", ring.length, consumed, hash);
	vm_address_t was = (vm_address_t)ring.buffer;
	uint32_t length = ring.length;
	ring_cleanup(&ring);
	/* Both halves are gone. */
	vm_address_t at = was;
	vm_size_t size;
	vm_region_basic_info_data_64_t info;
	mach_msg_type_number_t count = VM_REGION_BASIC_INFO_COUNT_64;
	mach_port_t object_name;
	kern_return_t kr = vm_region_64(mach_task_self(), &at, &size, VM_REGION_BASIC_INFO_64,
		(vm_region_info_t)&info, &count, &object_name);
	if (kr == KERN_SUCCESS && at < was + 2 * length) {
		fail("the buffer is still mapped after vm_deallocate", KERN_FAILURE);
		return 1;
	}
	return 0;
}
