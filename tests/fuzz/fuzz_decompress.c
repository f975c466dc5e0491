/* tests/fuzz/fuzz_decompress.c — libFuzzer target for reading stored images.
 *
 * Every .zst file of a generation comes from shared storage and is untrusted,
 * and so is the manifest that says how large it is and what its SHA-256 is.
 * om_decompress_fd() must turn any bytes into either their decompressed
 * content or an OM_ECORRUPT error, without crashing, reading out of bounds or
 * writing more than the recorded size.
 *
 * Input layout (so that mutations reach every bounded path):
 *   byte 0       mode % 3: 0 no checksum, 1 the true SHA-256 of the stored
 *                bytes, 2 a wrong one (the true one with a bit flipped)
 *   bytes 1..3   the recorded size (cap), 18 bits little-endian: up to 256 KiB
 *   bytes 4..    the stored (.zst) bytes
 *
 * The target aborts when the library
 *   - writes more than the cap to its output (a zstd bomb got through);
 *   - accepts bytes under a wrong checksum, or names anything but a checksum
 *     mismatch then;
 *   - reports a bomb that is none (zstd's one-shot API decodes the whole
 *     input into a buffer of the cap), or succeeds with other bytes than the
 *     one-shot API gives;
 *   - fails with another status than OM_ECORRUPT, or succeeds without having
 *     read every stored byte.
 *
 *   ./fuzz_decompress -max_total_time=60 tests/fuzz/corpus-zst
 * Seeds (the .in files of corpus-zst): the 4-byte header, then a .zst made with the zstd
 * CLI: small, text, random and empty frames with their true size, two frames
 * back to back, a bomb (4 MiB of zeros, 64 KiB recorded), a wrong checksum,
 * and a frame that asks for a 128 MiB window (zstd --zstd=wlog=27 from a pipe).
 */
#include "config.h"
#include "compress.h"
#include "store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define HDR 4
#define CAP_MASK 0x3FFFFu

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool msg_has(om_error_t err, const char *needle)
{
	return err && err->msg && strstr(err->msg, needle) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	om_error_t err = NULL;
	struct om_stream_stats st;
	uint8_t sha[32];
	const uint8_t *stored;
	size_t slen, oneshot;
	uint32_t cap;
	static int in_fd = -1, out_fd = -1;
	static uint8_t *ref;
	int mode, r;
	struct stat sb;
	uint8_t *out = NULL;

	if (size < HDR)
		return 0;
	mode = data[0] % 3;
	cap = ((uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16) & CAP_MASK;
	stored = data + HDR;
	slen = size - HDR;

	/* created once: a fresh memfd and reference buffer per input cost more than the decoding */
	if (in_fd < 0)
		in_fd = memfd_create("stored", MFD_CLOEXEC);
	if (out_fd < 0)
		out_fd = memfd_create("raw", MFD_CLOEXEC);
	if (ref == NULL)
		ref = malloc(CAP_MASK + 1);
	if (in_fd < 0 || out_fd < 0 || ref == NULL || ftruncate(in_fd, 0) < 0 || ftruncate(out_fd, 0) < 0 ||
	    lseek(in_fd, 0, SEEK_SET) < 0 || lseek(out_fd, 0, SEEK_SET) < 0)
		abort();
	if (slen && write(in_fd, stored, slen) != (ssize_t)slen)
		abort();
	lseek(in_fd, 0, SEEK_SET);
	om_sha256(stored, slen, sha);
	if (mode == 2)
		sha[data[0] % 32] ^= (uint8_t)(1u << (data[0] % 8));

	r = om_decompress_fd(in_fd, out_fd, mode ? sha : NULL, cap, "fuzz.img.zst", &st, &err);

	if (fstat(out_fd, &sb) < 0 || (uint64_t)sb.st_size > cap)
		abort(); /* wrote past the recorded size */
	if (mode == 2 && (r == 0 || !msg_has(err, "checksum mismatch in fuzz.img.zst")))
		abort(); /* a wrong checksum must always be the error */

	/* the reference: zstd's one-shot decoder into a buffer of the cap */
	oneshot = ZSTD_decompress(ref, cap, stored, slen);

	if (r < 0) {
		if (err == NULL || err->status != OM_ECORRUPT)
			abort(); /* bad bytes are always reported as corruption */
		if (msg_has(err, "decompresses to more than") && !ZSTD_isError(oneshot))
			abort(); /* called a bomb what the reference decodes within the cap */
		om_error_release(&err);
	} else {
		if (st.stored_bytes != slen || st.raw_bytes != (uint64_t)sb.st_size || st.raw_bytes > cap)
			abort(); /* success means every stored byte was read, and the counts are right */
		if (ZSTD_isError(oneshot) || oneshot != st.raw_bytes)
			abort(); /* accepted what the reference refuses, or a different length */
		out = malloc(oneshot ? oneshot : 1);
		if (out == NULL || pread(out_fd, out, oneshot, 0) != (ssize_t)oneshot || memcmp(out, ref, oneshot) != 0)
			abort(); /* different bytes */
	}
	free(out);
	return 0;
}
