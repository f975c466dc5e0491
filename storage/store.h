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
#include <stddef.h>
#include <stdint.h>

#define OM_MANIFEST_NAME "manifest.om"
#define OM_MANIFEST_MAGIC "OMMANIF" /* 8 bytes with the NUL */
#define OM_MANIFEST_VERSION 1u
#define OM_DEFAULT_STORE "/var/lib/omtools/store"
#define OM_CONFIG_FILE "/etc/omtools/omtools.conf"

/* Bounds on what a manifest may say (storage/README.md, "Bounds"): every count
 * and length read from a store is checked against these before it is used, by
 * om_manifest_decode (OM_ECORRUPT) and om_manifest_encode (EINVAL). */
#define OM_MANIFEST_MAX (64u << 20)	      /* bytes of a manifest file */
#define OM_MANIFEST_UNPACK_MAX (256u << 20)   /* memory protobuf-c may use to unpack one */
#define OM_MAX_TREES 4096u		      /* trees in a manifest */
#define OM_MAX_PROCS 65536u		      /* processes in a manifest (all trees) */
#define OM_MAX_TIDS_PER_PROC 65536u	      /* threads of one process */
#define OM_MAX_TIDS (1u << 20)		      /* threads in a manifest (all processes) */
#define OM_MAX_FILES (1u << 20)		      /* image files in a manifest (all trees) */
#define OM_MAX_UNKNOWN 64u		      /* unknown protobuf fields in one message */
#define OM_MAX_FILE_BYTES (UINT64_C(1) << 40) /* size and stored size of one file (1 TiB) */
#define OM_MAX_LABEL 255u		      /* node, kernel, criu/omtools versions, cgroup backend */
#define OM_MAX_COMM 64u			      /* a process's comm */
#define OM_MAX_CMDLINE 65536u		      /* a process's command line (om_gen_commit truncates) */
#define OM_MAX_SHM_OBJECTS 4096u	      /* SysV segments, semaphore sets, queues, /dev/shm files: each */
#define OM_MAX_SHM_ALIASES 64u		      /* restore_links of one /dev/shm file */
#define OM_MAX_SEMS 32000u		      /* semaphores in one set (SEMMSL's limit) */
#define OM_MAX_MSGS 65536u		      /* messages in one queue */
#define OM_MAX_MSG_BYTES (16u << 20)	      /* text of all messages of a manifest */
#define OM_ZSTD_WINDOW_LOG_MAX 24	      /* stored frames need at most a 16 MiB window */

struct om_store {
	char *path;	   /* absolute path of the store root */
	int fd;		   /* O_DIRECTORY fd of the root */
	int cancel_fd;	   /* lock waits stop when it is readable (lib/bounded.h); 0: none */
	const char *fault; /* tests (OM_FAULT, set by the command): "kill:compressing" SIGKILLs the
			    * process after the first stored file, "kill:publishing" after the
			    * manifest is written and before the rename, "kill:pruning" after the
			    * first pruned generation is renamed away; NULL: none */
};

/* Which store path to use: explicit (may be NULL) > $OM_STORE > `store = DIR`
 * in $OM_CONFIG or /etc/omtools/omtools.conf > OM_DEFAULT_STORE, in *out
 * (malloc'd). A settings file that does not parse is an error naming its line. */
int om_store_resolve_path(const char *explicit_path, char **out, om_error_t *err);

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
 * with zstd (level, nb_workers threads), hashing the stored bytes; fill tree->files.
 * tree->dir names the directory (set to "tree-<root_pid>" when NULL); files whose
 * name starts with '.' and non-regular entries are skipped. tree belongs to a
 * built manifest: appended Om__FileEntry records are malloc'd (see ownership). */
int om_gen_add_tree(struct om_gen_writer *w, const char *src_dir, Om__TreeEntry *tree, int level, int nb_workers,
		    om_error_t *err);
/* The same for the files shmig/ saved (shared memory contents): into
 * <gen>/<set->dir>/<name>.zst, appending to set->files. */
int om_gen_add_shm(struct om_gen_writer *w, const char *src_dir, Om__ShmSet *set, int level, int nb_workers,
		   om_error_t *err);
/* Fill generation/raw/stored totals of m, write and fsync the manifest, fsync
 * everything, rename into place as gen-<N> (N = newest + 1). Returns N in *gen.
 * Also sets m->group = id ("groups") or m->group = 0 and single_pid = id ("pids"),
 * and fills node, kernel, omtools_version (strdup) and time_unix_ns when unset.
 * m must be a built manifest (see ownership below); criu_version must be set. */
int om_gen_commit(struct om_gen_writer *w, Om__Manifest *m, uint64_t *gen, om_error_t *err);
/* The name of the temporary generation directory in STORE/<kind>/<id>/ (gone
 * once committed: renamed to gen-<N>); NULL when there is none. */
const char *om_gen_writer_tmp_name(const struct om_gen_writer *w);
/* Remove the temporary directory and release the lock (safe after commit: no-op besides unlock/free). */
void om_gen_writer_free(struct om_gen_writer *w);

/* List complete generations (ascending). *gens is malloc'd (free() it), NULL when *n == 0;
 * an id without any generation is not an error (*n = 0). */
int om_store_list(struct om_store *st, const char *kind, unsigned long id, uint64_t **gens, size_t *n, om_error_t *err);
/* List ids that have at least one complete generation (ascending); *ids as *gens above. */
int om_store_list_ids(struct om_store *st, const char *kind, unsigned long **ids, size_t *n, om_error_t *err);

/* Read and validate a manifest of generation gen (0 = newest complete). */
int om_gen_load_manifest(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, Om__Manifest **m,
			 om_error_t *err);
/* Check every file's SHA-256 in the generation; the error names the first bad file. */
int om_gen_verify(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m, om_error_t *err);
/* Decompress tree t of generation m into dest_dir (created, 0700), verifying checksums. */
int om_gen_extract_tree(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m,
			const Om__TreeEntry *t, const char *dest_dir, om_error_t *err);

/* Decompress the shm set's files of m (if any) into dest_dir, verifying checksums. */
int om_gen_extract_shm(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m,
		       const char *dest_dir, om_error_t *err);

/* Manifest codec (pure functions; fuzzed). */
int om_manifest_encode(const Om__Manifest *m, uint8_t **buf, size_t *len, om_error_t *err);
int om_manifest_decode(const uint8_t *buf, size_t len, Om__Manifest **m, om_error_t *err);
void om_manifest_free(Om__Manifest *m);

/* ---- Manifest memory ownership ----
 *
 * There are two kinds of Om__Manifest and each has its own free function:
 *
 *  - DECODED manifests, from om_manifest_decode(), om_manifest_read_file() and
 *    om_gen_load_manifest(), belong to protobuf-c: release them with
 *    om_manifest_free() (om__manifest__free_unpacked), never edit their arrays.
 *
 *  - BUILT manifests, assembled by a writer (omckpt) before om_gen_commit():
 *    the Om__Manifest itself, every string (strdup), every bytes buffer, every
 *    repeated array (malloc/realloc) and every nested message (malloc +
 *    om__*_init) is a separate malloc() block owned by the manifest. Release
 *    with om_manifest_free_built(), which frees all of that and m itself.
 *    om_manifest_new(), om_manifest_add_tree(), om_tree_add_proc() and
 *    om_gen_add_tree() (which appends Om__FileEntry records to tree->files)
 *    allocate this way; never point a field of a built manifest at a string
 *    literal or at memory you free yourself.
 *
 * Never pass a manifest of one kind to the other free function.
 */
void om_manifest_free_built(Om__Manifest *m);
/* Free a built shm set (shmig/ builds it the same way: every field its own malloc). */
void om_shm_set_free_built(Om__ShmSet *set);
/* An empty built manifest (om__manifest__init'ed), or NULL when out of memory. */
Om__Manifest *om_manifest_new(void);
/* Append a tree with dir "tree-<root_pid>" to a built manifest; *out (may be NULL) gets it. */
int om_manifest_add_tree(Om__Manifest *m, int32_t root_pid, Om__TreeEntry **out, om_error_t *err);
/* Append a process to a tree of a built manifest (tids, comm, cmdline are copied; may be NULL/0). */
int om_tree_add_proc(Om__TreeEntry *t, int32_t pid, int32_t ppid, const int32_t *tids, size_t n_tids, const char *comm,
		     const char *cmdline, Om__ProcEntry **out, om_error_t *err);
/* Is s acceptable as a tree directory or image file name in a generation?
 * (non-empty, no '/', no "..", no leading '.', no control characters, short enough) */
bool om_store_name_ok(const char *s);

/* Read and decode (validating) a manifest file; errors are OM_ECORRUPT naming path
 * when the bytes are bad, or the errno of open/read. Free with om_manifest_free(). */
int om_manifest_read_file(const char *path, Om__Manifest **m, om_error_t *err);
/* om_gen_verify() for a generation directory given by path (omdecode --verify). */
int om_gen_dir_verify(const char *gen_dir, const Om__Manifest *m, om_error_t *err);

/* ---- Retention, pins, garbage (storage/retention.c) ----
 *
 * A pin is a file STORE/<kind>/<id>/.pin-<gen>-<node>-<pid>-<n> that holds its
 * expiry (wall clock). While it exists and has not expired (and, for a pin of
 * this node, its process lives), generation <gen> is neither pruned nor
 * removed, by any node. A restore pins the generation it reads. Pruning
 * renames a generation to .prune-<gen>-<node>-<pid> first and checks the pins
 * after the rename (a pin made before is seen; a pinner that looks after it
 * finds the generation gone and retries), then removes it: a process killed
 * at any point leaves either the generation or a .prune-* leftover that
 * om_store_gc (and the next writer of this node) removes. */
struct om_pin;			  /* opaque */
#define OM_PIN_TTL_DEFAULT 3600.0 /* s */
/* Pin generation gen (not 0) of kind/id for ttl_s seconds (0: OM_PIN_TTL_DEFAULT). ENOENT
 * (OM_ENOTFOUND) when it does not exist (after retrying a few times for ~1 s while it
 * may be renamed away by a pruner that will put it back). */
int om_gen_pin(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, double ttl_s, struct om_pin **out,
	       om_error_t *err);
/* Remove the pin (NULL: nothing). */
void om_gen_unpin(struct om_pin *p);
/* Is generation gen pinned by a live pin? holder (may be NULL) gets "process PID on node NODE". */
int om_gen_pinned(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, bool *pinned, char *holder,
		  size_t holder_len, om_error_t *err);

struct om_prune_result {
	uint64_t *removed; /* generations removed, ascending (malloc'd) */
	size_t n_removed;
	uint64_t *pinned; /* generations kept only because they are pinned */
	size_t n_pinned;
};
void om_prune_result_release(struct om_prune_result *r);
/* Keep the newest `keep` complete generations of the writer's id, remove older ones
 * that are not pinned (keep 0: nothing is removed). Called by a writer after its
 * om_gen_commit (so the new generation is durable first), under its lock. */
int om_gen_prune(struct om_gen_writer *w, unsigned keep, struct om_prune_result *res, om_error_t *err);
/* The same without a writer: takes the id's lock (waiting up to lock_wait_s). */
int om_store_prune(struct om_store *st, const char *kind, unsigned long id, unsigned keep, double lock_wait_s,
		   struct om_prune_result *res, om_error_t *err);
/* Remove one generation (omimg rm), under the id's lock: EBUSY naming the holder when
 * pinned, OM_ENOTFOUND when it does not exist. */
int om_gen_remove(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, double lock_wait_s,
		  om_error_t *err);

/* Garbage that killed runs leave: .tmp-* of dead writers of this node (of other
 * nodes: older than max_age_s), .prune-* (of this node: writer dead; others: older
 * than max_age_s), expired pins and pins of dead processes of this node, gen-N
 * directories without a manifest older than max_age_s. dry_run: only list. */
struct om_gc_item {
	char *path; /* relative to the store root */
	char *why;  /* "writer 4012 on node1 is dead", ... */
	uint64_t bytes;
};
int om_store_gc(struct om_store *st, double max_age_s, bool dry_run, struct om_gc_item **items, size_t *n,
		om_error_t *err);
void om_gc_items_free(struct om_gc_item *items, size_t n);

/* ---- Fencing ----
 * STORE/<kind>/<id>/.fence holds "TOKEN NODE GEN\n": the highest fencing token
 * under which the id was taken over (failover, omrestore --takeover, and without
 * a cluster any restore that moves the group to another node) and the
 * generation it was restored from. om_gen_commit refuses (ESTALE, "fenced") a
 * manifest whose fence is lower than TOKEN: a node that lost the group cannot
 * publish over the new owner. With a cluster TOKEN is the owner key's
 * mod_revision (etcd); without one the store's .fence is the only token
 * (om_store_fence_take, om_gen_fence_local). */
int om_store_fence_get(struct om_store *st, const char *kind, unsigned long id, uint64_t *token, char *node,
		       size_t node_len, uint64_t *gen, om_error_t *err);
/* Raise the token (never lowers it: EEXIST-free no-op when token <= the stored one,
 * *now gets the stored token). Durable (tmp + fsync + rename) under the id's lock. */
int om_store_fence_raise(struct om_store *st, const char *kind, unsigned long id, uint64_t token, const char *node,
			 uint64_t gen, uint64_t *now, om_error_t *err);
/* Without a cluster: a restore of generation gen on `node` takes the fence.
 * With takeover it always raises the token to the stored one + 1 (1 when there
 * is none) naming node; without, only when a fence exists and names another
 * node (the fence follows the group; none is created). Never lowers it; a
 * concurrent raise is read again, so the file names one node at the end.
 * *token (may be NULL): the token in force afterwards (0: none). */
int om_store_fence_take(struct om_store *st, const char *kind, unsigned long id, const char *node, uint64_t gen,
			bool takeover, uint64_t *token, om_error_t *err);
/* Without a cluster: make w a writer of `node`. Reads the fence now (fail fast):
 * ESTALE "fenced: node N took the group over (token T, from generation G)" when
 * it names another node; else *token = the stored token (0: none), the fence
 * the manifest records. om_gen_commit then also refuses when the fence names
 * another node, whatever the manifest's fence (even 0: a takeover during the
 * checkpoint). node is copied. */
int om_gen_fence_local(struct om_gen_writer *w, const char *node, uint64_t *token, om_error_t *err);

/* SHA-256 helpers (OpenSSL EVP). */
void om_sha256(const void *buf, size_t len, uint8_t out[32]);
void om_hex(const uint8_t *in, size_t len, char *out /* 2*len+1 */);

#endif
