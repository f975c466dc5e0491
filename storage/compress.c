#include "config.h"
#include "compress.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>
#include <zstd.h>

#define OM_HASH_BUF (1u << 20)

static void cctx_freep(ZSTD_CCtx **c)
{
	ZSTD_freeCCtx(*c);
	*c = NULL;
}

static void dctx_freep(ZSTD_DCtx **d)
{
	ZSTD_freeDCtx(*d);
	*d = NULL;
}

static void md_freep(EVP_MD_CTX **md)
{
	EVP_MD_CTX_free(*md);
	*md = NULL;
}

static ssize_t read_some(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

static EVP_MD_CTX *sha256_new(void)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return NULL;
	}
	return md;
}

static int sha256_final(EVP_MD_CTX *md, uint8_t out[32])
{
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(md, out, &len) != 1 || len != 32)
		return -1;
	return 0;
}

int om_compress_fd(int in_fd, int out_fd, int level, int nb_workers, const char *name, struct om_stream_stats *stats,
		   om_error_t *err)
{
	__attribute__((cleanup(cctx_freep))) ZSTD_CCtx *cctx = ZSTD_createCCtx();
	__attribute__((cleanup(md_freep))) EVP_MD_CTX *md = sha256_new();
	size_t in_cap = ZSTD_CStreamInSize(), out_cap = ZSTD_CStreamOutSize();
	cleanup_free char *inbuf = malloc(in_cap);
	cleanup_free char *outbuf = malloc(out_cap);
	struct om_stream_stats s = {0};
	size_t r;

	if (cctx == NULL || md == NULL || inbuf == NULL || outbuf == NULL)
		return om_make_error(err, ENOMEM, "compress `%s`", name);
	r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (ZSTD_isError(r))
		return om_make_error(err, EINVAL, "compress `%s`: zstd level %d: %s", name, level,
				     ZSTD_getErrorName(r));
	r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	if (ZSTD_isError(r))
		return om_make_error(err, EINVAL, "compress `%s`: zstd checksum: %s", name, ZSTD_getErrorName(r));
	if (nb_workers > 0) {
		/* Fails when libzstd was built without threads: stay single-threaded. */
		(void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, nb_workers);
	}

	for (;;) {
		ssize_t n = read_some(in_fd, inbuf, in_cap);
		ZSTD_EndDirective mode;
		ZSTD_inBuffer in;
		bool finished;

		if (n < 0)
			return om_make_error(err, errno, "read `%s`", name);
		s.raw_bytes += (uint64_t)n;
		mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
		in = (ZSTD_inBuffer){inbuf, (size_t)n, 0};
		do {
			ZSTD_outBuffer out = {outbuf, out_cap, 0};
			r = ZSTD_compressStream2(cctx, &out, &in, mode);
			if (ZSTD_isError(r))
				return om_make_error(err, EIO, "compress `%s`: %s", name, ZSTD_getErrorName(r));
			if (out.pos > 0) {
				if (om_write_all(out_fd, outbuf, out.pos) < 0)
					return om_make_error(err, errno, "write compressed `%s`", name);
				if (EVP_DigestUpdate(md, outbuf, out.pos) != 1)
					return om_make_error(err, EIO, "hash `%s`", name);
				s.stored_bytes += out.pos;
			}
			finished = mode == ZSTD_e_end ? r == 0 : in.pos == in.size;
		} while (!finished);
		if (n == 0)
			break;
	}
	if (sha256_final(md, s.sha256) < 0)
		return om_make_error(err, EIO, "hash `%s`", name);
	if (stats)
		*stats = s;
	return 0;
}

int om_decompress_fd(int in_fd, int out_fd, const uint8_t *expect_sha256, uint64_t max_raw, const char *name,
		     struct om_stream_stats *stats, om_error_t *err)
{
	__attribute__((cleanup(dctx_freep))) ZSTD_DCtx *dctx = ZSTD_createDCtx();
	__attribute__((cleanup(md_freep))) EVP_MD_CTX *md = sha256_new();
	size_t in_cap = ZSTD_DStreamInSize(), out_cap = ZSTD_DStreamOutSize();
	cleanup_free char *inbuf = malloc(in_cap);
	cleanup_free char *outbuf = malloc(out_cap);
	struct om_stream_stats s = {0};
	size_t last = 1; /* nonzero: no frame end seen yet */
	const char *zerr = NULL;
	bool too_big = false;
	size_t r;

	if (dctx == NULL || md == NULL || inbuf == NULL || outbuf == NULL)
		return om_make_error(err, ENOMEM, "decompress `%s`", name);
	if (max_raw > OM_MAX_FILE_BYTES)
		max_raw = OM_MAX_FILE_BYTES;
	/* zstd's own default allows a 128 MiB window: a few bytes of frame header
	 * could make us allocate that. Our writer (levels 1-19) needs at most 8 MiB. */
	r = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, OM_ZSTD_WINDOW_LOG_MAX);
	if (ZSTD_isError(r))
		return om_make_error(err, EINVAL, "decompress `%s`: zstd window limit: %s", name, ZSTD_getErrorName(r));

	for (;;) {
		ssize_t n = read_some(in_fd, inbuf, in_cap);
		ZSTD_inBuffer in;

		if (n < 0)
			return om_make_error(err, errno, "read `%s`", name);
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, inbuf, (size_t)n) != 1)
			return om_make_error(err, EIO, "hash `%s`", name);
		s.stored_bytes += (uint64_t)n;
		if (zerr || too_big)
			continue; /* keep hashing: a checksum mismatch is the better diagnosis */
		in = (ZSTD_inBuffer){inbuf, (size_t)n, 0};
		/* zstd does not consume a frame's last byte before it has flushed
		 * all of its output, so looping until the input is used suffices. */
		while (in.pos < in.size) {
			ZSTD_outBuffer out = {outbuf, out_cap, 0};
			r = ZSTD_decompressStream(dctx, &out, &in);
			if (ZSTD_isError(r)) {
				zerr = ZSTD_getErrorName(r);
				break;
			}
			if (out.pos > max_raw - s.raw_bytes) {
				/* more than the manifest allows: write none of it */
				too_big = true;
				break;
			}
			if (out.pos > 0) {
				if (om_write_all(out_fd, outbuf, out.pos) < 0)
					return om_make_error(err, errno, "write decompressed `%s`", name);
				s.raw_bytes += out.pos;
			}
			last = r;
		}
	}
	if (sha256_final(md, s.sha256) < 0)
		return om_make_error(err, EIO, "hash `%s`", name);
	if (expect_sha256 && memcmp(expect_sha256, s.sha256, 32) != 0)
		return om_make_error(err, OM_ECORRUPT, "checksum mismatch in %s", name);
	if (too_big)
		return om_make_error(err, OM_ECORRUPT, "%s decompresses to more than %llu bytes", name,
				     (unsigned long long)max_raw);
	if (zerr)
		return om_make_error(err, OM_ECORRUPT, "corrupt zstd data in %s: %s", name, zerr);
	if (last != 0)
		return om_make_error(err, OM_ECORRUPT, "truncated zstd frame in %s", name);
	if (stats)
		*stats = s;
	return 0;
}

int om_hash_fd(int fd, uint8_t out[32], uint64_t *bytes, const char *name, om_error_t *err)
{
	__attribute__((cleanup(md_freep))) EVP_MD_CTX *md = sha256_new();
	cleanup_free char *buf = malloc(OM_HASH_BUF);
	uint64_t total = 0;

	if (md == NULL || buf == NULL)
		return om_make_error(err, ENOMEM, "hash `%s`", name);
	for (;;) {
		ssize_t n = read_some(fd, buf, OM_HASH_BUF);
		if (n < 0)
			return om_make_error(err, errno, "read `%s`", name);
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			return om_make_error(err, EIO, "hash `%s`", name);
		total += (uint64_t)n;
	}
	if (sha256_final(md, out) < 0)
		return om_make_error(err, EIO, "hash `%s`", name);
	if (bytes)
		*bytes = total;
	return 0;
}
