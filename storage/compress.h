/* storage/compress.h — streaming zstd between file descriptors, hashing the
 * stored (compressed) bytes with SHA-256 on the way, so that an image of any
 * size goes through a few fixed buffers and is never held in memory.
 *
 * Internal to libom (store.c uses it; the unit test exercises it directly).
 * This header deliberately includes neither <zstd.h> nor OpenSSL headers.
 */
#ifndef OM_COMPRESS_H
#define OM_COMPRESS_H

#include "error.h"

#include <stdint.h>

struct om_stream_stats {
	uint64_t raw_bytes;    /* uncompressed bytes (read when compressing, written when decompressing) */
	uint64_t stored_bytes; /* compressed bytes (written when compressing, read when decompressing) */
	uint8_t sha256[32];    /* SHA-256 of the compressed bytes */
};

/* Compress in_fd (read to EOF) into out_fd as one zstd frame with level,
 * nb_workers threads (0 = single-threaded; ignored if libzstd lacks threads)
 * and zstd's own content checksum. name is only used in error messages. */
int om_compress_fd(int in_fd, int out_fd, int level, int nb_workers, const char *name, struct om_stream_stats *stats,
		   om_error_t *err);

/* Decompress in_fd (read to EOF) into out_fd. Fails with OM_ECORRUPT when the
 * SHA-256 of the input differs from expect_sha256 (if not NULL): "checksum
 * mismatch in NAME", when the data is not valid zstd, or when the input ends
 * before a frame end ("truncated zstd frame in NAME"). On failure out_fd may
 * hold partial output: the caller removes it. stats may be NULL. */
int om_decompress_fd(int in_fd, int out_fd, const uint8_t *expect_sha256, const char *name,
		     struct om_stream_stats *stats, om_error_t *err);

/* SHA-256 of everything readable from fd; *bytes (may be NULL) gets the count. */
int om_hash_fd(int fd, uint8_t out[32], uint64_t *bytes, const char *name, om_error_t *err);

#endif
