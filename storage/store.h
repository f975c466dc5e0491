/* storage/store.h — the image store: a directory (local or NFS/CephFS) that
 * holds checkpoint generations of miggroups.
 *
 *   STORE/groups/<G>/gen-<N>/manifest.om         the manifest (see proto/om.proto)
 *   STORE/groups/<G>/gen-<N>/tree-<root>/<img>.zst  CRIU image files, zstd-compressed
 *   STORE/groups/<G>/.tmp-<node>-<pid>-<n>/      a generation being written (invisible)
 *   STORE/groups/<G>/.lock                        flock()ed by writers of group G
 *   STORE/pids/<PID>/...                          omckpt -p PID (same layout as a group)
 *
 * A generation becomes visible only by the rename() of its complete, fsync()ed
 * temporary directory to gen-<N>; readers list only gen-<N> directories that
 * hold a manifest. Files are 0600, directories 0700.
 */
#ifndef OM_STORE_H
#define OM_STORE_H

#include "error.h"
#include "om.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

#define OM_MANIFEST_NAME "manifest.om"
#define OM_MANIFEST_MAGIC "OMMANIF"  /* 8 bytes with the NUL */
#define OM_MANIFEST_VERSION 1u
#define OM_DEFAULT_STORE "/var/lib/omtools/store"
#define OM_CONFIG_FILE "/etc/omtools/omtools.conf"

struct om_store {
	char *path; /* absolute path of the store root */
	int fd;     /* O_DIRECTORY fd of the root */
};

/* Which store path to use: explicit (may be NULL) > $OM_STORE > `store = DIR`
 * in $OM_CONFIG or /etc/omtools/omtools.conf > OM_DEFAULT_STORE. Returns a malloc'd string. */
char *om_store_resolve_path(const char *explicit_path);

/* Open (and with create, mkdir -p) the store. for_write checks it is writable. */
int om_store_open(struct om_store *st, const char *path, bool for_write, om_error_t *err);
void om_store_close(struct om_store *st);

/* "kind" names the namespace of ids: "groups" or "pids". */
struct om_gen_writer; /* opaque */

/* Start a new generation for id in kind; takes the writer lock of that id
 * (EWOULDBLOCK-style error if another writer holds it, after waiting up to lock_wait_s). */
int om_gen_begin(struct om_store *st, const char *kind, unsigned long id, double lock_wait_s,
		 struct om_gen_writer **out, om_error_t *err);
/* Compress every regular file of src_dir (not recursive) into <gen>/<tree_dir>/<name>.zst
 * with zstd (level, nb_workers threads), hashing the stored bytes; fill tree->files. */
int om_gen_add_tree(struct om_gen_writer *w, const char *src_dir, Om__TreeEntry *tree, int level, int nb_workers,
		    om_error_t *err);
/* Fill generation/raw/stored totals of m, write and fsync the manifest, fsync
 * everything, rename into place as gen-<N> (N = newest + 1). Returns N in *gen. */
int om_gen_commit(struct om_gen_writer *w, Om__Manifest *m, uint64_t *gen, om_error_t *err);
/* Remove the temporary directory and release the lock (safe after commit: no-op besides unlock/free). */
void om_gen_writer_free(struct om_gen_writer *w);

/* List complete generations (ascending). */
int om_store_list(struct om_store *st, const char *kind, unsigned long id, uint64_t **gens, size_t *n,
		  om_error_t *err);
/* List ids that have at least one complete generation (ascending). */
int om_store_list_ids(struct om_store *st, const char *kind, unsigned long **ids, size_t *n, om_error_t *err);

/* Read and validate a manifest of generation gen (0 = newest complete). */
int om_gen_load_manifest(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, Om__Manifest **m,
			 om_error_t *err);
/* Check every file's SHA-256 in the generation; the error names the first bad file. */
int om_gen_verify(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m, om_error_t *err);
/* Decompress tree t of generation m into dest_dir (created, 0700), verifying checksums. */
int om_gen_extract_tree(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m,
			const Om__TreeEntry *t, const char *dest_dir, om_error_t *err);

/* Manifest codec (pure functions; fuzzed). */
int om_manifest_encode(const Om__Manifest *m, uint8_t **buf, size_t *len, om_error_t *err);
int om_manifest_decode(const uint8_t *buf, size_t len, Om__Manifest **m, om_error_t *err);
void om_manifest_free(Om__Manifest *m);

/* SHA-256 helpers (OpenSSL EVP). */
void om_sha256(const void *buf, size_t len, uint8_t out[32]);
void om_hex(const uint8_t *in, size_t len, char *out /* 2*len+1 */);

#endif
