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

/* Decompress in_fd (read to EOF) into out_fd, writing at most max_raw bytes
 * (the size the manifest records; never more than OM_MAX_FILE_BYTES). Fails
 * with OM_ECORRUPT naming NAME, in this order of preference: the SHA-256 of
 * the input differs from expect_sha256 (if not NULL): "checksum mismatch in
 * NAME"; the data decompresses to more than max_raw bytes: "NAME decompresses
 * to more than N bytes" (nothing past max_raw is written); the data is not
 * valid zstd (a frame that needs a window above 2^OM_ZSTD_WINDOW_LOG_MAX bytes
 * included); the input ends before a frame end ("truncated zstd frame in
 * NAME"). Fewer than max_raw bytes is not an error here (the caller compares
 * stats->raw_bytes). On failure out_fd may hold partial output: the caller
 * removes it. stats may be NULL. */
int om_decompress_fd(int in_fd, int out_fd, const uint8_t *expect_sha256, uint64_t max_raw, const char *name,
		     struct om_stream_stats *stats, om_error_t *err);

/* SHA-256 of everything readable from fd; *bytes (may be NULL) gets the count. */
int om_hash_fd(int fd, uint8_t out[32], uint64_t *bytes, const char *name, om_error_t *err);

#endif
