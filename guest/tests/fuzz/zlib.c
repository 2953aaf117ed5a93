/*
 * zlib's usual fuzz entry points in one libFuzzer target, for fuzzing zlib
 * compiled unmodified (the sources the `libz-sys` crate bundles; see
 * benches/fuzz_zlib.sh): the input is inflated as a zlib stream with
 * uncompress(), as OSS-Fuzz's zlib_uncompress_fuzzer does, then deflated at a
 * level the first byte picks and inflated back, with the round trip checked, as
 * its compress fuzzers do. zlib allocates its state and window with malloc.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zlib.h"

static unsigned char out[256 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uLongf len = sizeof(out);
	uncompress(out, &len, data, (uLong)size);

	if (size == 0 || size > 64 * 1024)
		return 0;
	int level = data[0] % 10;
	uLong bound = compressBound((uLong)size);
	unsigned char *packed = malloc(bound);
	unsigned char *back = malloc(size);
	if (!packed || !back) {
		free(packed);
		free(back);
		return 0;
	}
	uLongf packed_len = bound;
	if (compress2(packed, &packed_len, data, (uLong)size, level) != Z_OK)
		abort();
	uLongf back_len = (uLongf)size;
	if (uncompress(back, &back_len, packed, packed_len) != Z_OK || back_len != size ||
	    memcmp(back, data, size) != 0)
		abort();
	free(packed);
	free(back);
	return 0;
}
