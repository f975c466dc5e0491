/* tests/fuzz/fuzz_decompress.c — libFuzzer target for reading stored images.
 *
 * Every .zst file of a generation comes from shared storage and is untrusted:
 * om_decompress_fd() must turn any bytes into either their decompressed
 * content or an OM_ECORRUPT error, without crashing or reading out of bounds.
 * Half of the inputs are checked against their own SHA-256, so mutations reach
 * the zstd stream handling instead of all stopping at the checksum.
 *
 *   ./fuzz_decompress -max_total_time=60 tests/fuzz/corpus-zst
 */
#include "config.h"
#include "compress.h"
#include "store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int out_fd = -1;
	om_error_t err = NULL;
	struct om_stream_stats st;
	uint8_t sha[32];
	int in_fd, r;

	if (out_fd < 0)
		out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	in_fd = memfd_create("stored", MFD_CLOEXEC);
	if (in_fd < 0 || out_fd < 0)
		abort();
	if (size && write(in_fd, data, size) != (ssize_t)size)
		abort();
	lseek(in_fd, 0, SEEK_SET);
	om_sha256(data, size, sha);
	r = om_decompress_fd(in_fd, out_fd, size && (data[0] & 1) ? sha : NULL, "fuzz.img.zst", &st, &err);
	if (r < 0) {
		if (err == NULL || err->status != OM_ECORRUPT)
			abort(); /* bad bytes are always reported as corruption */
		om_error_release(&err);
	} else if (st.stored_bytes != size) {
		abort(); /* success means every stored byte was read */
	}
	close(in_fd);
	return 0;
}
