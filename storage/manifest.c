#include "config.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <string.h>

#define HDR_LEN 16u /* magic (8) + version (4) + payload length (4) */
#define SHA_LEN 32u

void om_sha256(const void *buf, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		memset(out, 0, 32); /* cannot happen with a working libcrypto */
}

void om_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- semantic validation (shared by encode and decode) ---- */

bool om_store_name_ok(const char *s)
{
	size_t len;

	if (s == NULL || s[0] == '\0' || s[0] == '.')
		return false;
	len = strlen(s);
	if (len > NAME_MAX - 4) /* room for ".zst" */
		return false;
	if (strchr(s, '/') || strstr(s, ".."))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is any string in v[0..n) repeated? (n log n: inputs are untrusted). */
static int find_dup(const char **v, size_t n, const char **dup)
{
	const char **s;

	if (n < 2)
		return 0;
	s = malloc(n * sizeof(*s));
	if (s == NULL)
		return -1;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_strp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(s[i - 1], s[i]) == 0) {
			*dup = s[i];
			free(s);
			return 1;
		}
	}
	free(s);
	return 0;
}

static bool seconds_ok(bool has, double v)
{
	return !has || (isfinite(v) && v >= 0);
}

static int invalid(om_error_t *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int invalid(om_error_t *err, int status, const char *fmt, ...)
{
	va_list ap;
	cleanup_free char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return om_make_error(err, status, "invalid manifest: %s", msg ? msg : "?");
}

/* protobuf-c accepts a non-minimal varint encoding of field number 0 as an
 * unknown field, then re-encodes it as 0x00, which it refuses to read back
 * (found by the fuzzer). Field 0 is invalid protobuf: reject it. */
static bool unknown_ok(const ProtobufCMessage *base)
{
	for (unsigned i = 0; i < base->n_unknown_fields; i++)
		if (base->unknown_fields[i].tag == 0)
			return false;
	return true;
}

static bool str_ok(const char *s, size_t max)
{
	return s == NULL || strnlen(s, max + 1) <= max;
}

static bool pids_ok(const int32_t *v, size_t n)
{
	if (n > OM_MAX_PROCS || (n > 0 && v == NULL))
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= 0)
			return false;
	return true;
}

/* shmig's set: counts, sizes and arrays (the names are checked by validate_shm). */
static int check_shm_bounds(const Om__ShmSet *set, size_t files, int status, om_error_t *err)
{
	uint64_t text = 0;

	if (set->base.n_unknown_fields > OM_MAX_UNKNOWN)
		return invalid(err, status, "shm: %u unknown fields, at most %u", set->base.n_unknown_fields,
			       OM_MAX_UNKNOWN);
	if (set->n_files > OM_MAX_FILES - files)
		return invalid(err, status, "more than %u files", OM_MAX_FILES);
	if (set->n_segments > OM_MAX_SHM_OBJECTS || set->n_sems > OM_MAX_SHM_OBJECTS ||
	    set->n_queues > OM_MAX_SHM_OBJECTS || set->n_posix > OM_MAX_SHM_OBJECTS)
		return invalid(err, status, "shm: more than %u objects of one kind", OM_MAX_SHM_OBJECTS);
	if ((set->n_files && !set->files) || (set->n_segments && !set->segments) || (set->n_sems && !set->sems) ||
	    (set->n_queues && !set->queues) || (set->n_posix && !set->posix))
		return invalid(err, status, "shm: array missing");
	for (size_t i = 0; i < set->n_files; i++) {
		const Om__FileEntry *f = set->files[i];
		if (f == NULL || f->base.n_unknown_fields > OM_MAX_UNKNOWN)
			return invalid(err, status, "shm: file %zu is missing or bad", i);
		if (f->size > OM_MAX_FILE_BYTES || f->stored_size > OM_MAX_FILE_BYTES)
			return invalid(err, status, "shm: file %zu: size above %llu", i,
				       (unsigned long long)OM_MAX_FILE_BYTES);
	}
	for (size_t i = 0; i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		if (g == NULL || g->base.n_unknown_fields > OM_MAX_UNKNOWN ||
		    !pids_ok(g->attached_by, g->n_attached_by))
			return invalid(err, status, "shm: segment %zu is missing or bad", i);
		if (g->size == 0 || g->size > OM_MAX_FILE_BYTES)
			return invalid(err, status, "shm: segment %zu: size %llu", i, (unsigned long long)g->size);
	}
	for (size_t i = 0; i < set->n_sems; i++) {
		const Om__SemSet *e = set->sems[i];
		if (e == NULL || e->base.n_unknown_fields > OM_MAX_UNKNOWN || !pids_ok(e->used_by, e->n_used_by))
			return invalid(err, status, "shm: semaphore set %zu is missing or bad", i);
		if (e->n_values == 0 || e->n_values > OM_MAX_SEMS || e->values == NULL)
			return invalid(err, status, "shm: semaphore set %zu: %zu semaphores", i, e->n_values);
		for (size_t j = 0; j < e->n_values; j++)
			if (e->values[j] > 32767)
				return invalid(err, status, "shm: semaphore set %zu: value %u", i, e->values[j]);
	}
	for (size_t i = 0; i < set->n_queues; i++) {
		const Om__MsgQueue *q = set->queues[i];
		if (q == NULL || q->base.n_unknown_fields > OM_MAX_UNKNOWN || !pids_ok(q->used_by, q->n_used_by))
			return invalid(err, status, "shm: queue %zu is missing or bad", i);
		if (q->n_msgs > OM_MAX_MSGS || (q->n_msgs && !q->msgs))
			return invalid(err, status, "shm: queue %zu: %zu messages", i, q->n_msgs);
		for (size_t j = 0; j < q->n_msgs; j++) {
			const Om__MsgEntry *e = q->msgs[j];
			if (e == NULL || e->mtype <= 0 || (e->text.len && !e->text.data))
				return invalid(err, status, "shm: queue %zu: message %zu is bad", i, j);
			text += e->text.len;
			if (text > OM_MAX_MSG_BYTES)
				return invalid(err, status, "shm: messages hold more than %u bytes", OM_MAX_MSG_BYTES);
		}
	}
	for (size_t i = 0; i < set->n_posix; i++) {
		const Om__PosixShm *p = set->posix[i];
		if (p == NULL || p->base.n_unknown_fields > OM_MAX_UNKNOWN || !pids_ok(p->used_by, p->n_used_by))
			return invalid(err, status, "shm: /dev/shm file %zu is missing or bad", i);
		if (p->size > OM_MAX_FILE_BYTES)
			return invalid(err, status, "shm: /dev/shm file %zu: size %llu", i,
				       (unsigned long long)p->size);
		if (p->n_restore_links > OM_MAX_SHM_ALIASES || (p->n_restore_links && !p->restore_links))
			return invalid(err, status, "shm: /dev/shm file %zu: %zu other names, at most %u", i,
				       p->n_restore_links, OM_MAX_SHM_ALIASES);
	}
	return 0;
}

/* Every count and length against the documented bounds (store.h), before
 * anything walks the arrays or allocates by them. Only reads pointers that
 * protobuf-c sized by these very counts. */
static int check_bounds(const Om__Manifest *m, int status, om_error_t *err)
{
	size_t procs = 0, tids = 0, files = 0;

	if (m->base.n_unknown_fields > OM_MAX_UNKNOWN)
		return invalid(err, status, "%u unknown fields, at most %u", m->base.n_unknown_fields, OM_MAX_UNKNOWN);
	if (!str_ok(m->node, OM_MAX_LABEL) || !str_ok(m->kernel, OM_MAX_LABEL) ||
	    !str_ok(m->criu_version, OM_MAX_LABEL) || !str_ok(m->omtools_version, OM_MAX_LABEL) ||
	    !str_ok(m->cgroup_backend, OM_MAX_LABEL))
		return invalid(err, status, "a node, kernel, version or backend string is longer than %u bytes",
			       OM_MAX_LABEL);
	if (m->n_trees > OM_MAX_TREES)
		return invalid(err, status, "%zu trees, at most %u", m->n_trees, OM_MAX_TREES);
	if (m->n_trees > 0 && m->trees == NULL)
		return invalid(err, status, "trees missing");
	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		if (t == NULL)
			return invalid(err, status, "tree %zu is missing", i);
		if (t->base.n_unknown_fields > OM_MAX_UNKNOWN)
			return invalid(err, status, "tree %zu: %u unknown fields, at most %u", i,
				       t->base.n_unknown_fields, OM_MAX_UNKNOWN);
		if (t->n_procs > OM_MAX_PROCS - procs)
			return invalid(err, status, "more than %u processes", OM_MAX_PROCS);
		procs += t->n_procs;
		if (t->n_files > OM_MAX_FILES - files)
			return invalid(err, status, "more than %u files", OM_MAX_FILES);
		files += t->n_files;
		if ((t->n_procs > 0 && t->procs == NULL) || (t->n_files > 0 && t->files == NULL))
			return invalid(err, status, "tree %zu: array missing", i);
		for (size_t j = 0; j < t->n_procs; j++) {
			const Om__ProcEntry *p = t->procs[j];
			if (p == NULL)
				return invalid(err, status, "tree %zu: process %zu is missing", i, j);
			if (p->base.n_unknown_fields > OM_MAX_UNKNOWN)
				return invalid(err, status, "tree %zu: process %zu: %u unknown fields, at most %u", i,
					       j, p->base.n_unknown_fields, OM_MAX_UNKNOWN);
			if (p->n_tids > OM_MAX_TIDS_PER_PROC)
				return invalid(err, status, "tree %zu: process %zu has %zu threads, at most %u", i, j,
					       p->n_tids, OM_MAX_TIDS_PER_PROC);
			if (p->n_tids > OM_MAX_TIDS - tids)
				return invalid(err, status, "more than %u threads", OM_MAX_TIDS);
			tids += p->n_tids;
			if (!str_ok(p->comm, OM_MAX_COMM))
				return invalid(err, status, "tree %zu: process %zu: comm longer than %u bytes", i, j,
					       OM_MAX_COMM);
			if (!str_ok(p->cmdline, OM_MAX_CMDLINE))
				return invalid(err, status, "tree %zu: process %zu: cmdline longer than %u bytes", i, j,
					       OM_MAX_CMDLINE);
		}
		for (size_t j = 0; j < t->n_files; j++) {
			const Om__FileEntry *f = t->files[j];
			if (f == NULL)
				return invalid(err, status, "tree %zu: file %zu is missing", i, j);
			if (f->base.n_unknown_fields > OM_MAX_UNKNOWN)
				return invalid(err, status, "tree %zu: file %zu: %u unknown fields, at most %u", i, j,
					       f->base.n_unknown_fields, OM_MAX_UNKNOWN);
			if (f->size > OM_MAX_FILE_BYTES || f->stored_size > OM_MAX_FILE_BYTES)
				return invalid(err, status,
					       "tree %zu: file %zu: size %llu or stored size %llu above %llu", i, j,
					       (unsigned long long)f->size, (unsigned long long)f->stored_size,
					       (unsigned long long)OM_MAX_FILE_BYTES);
		}
	}
	return m->shm ? check_shm_bounds(m->shm, files, status, err) : 0;
}

static int cmp_cstr(const void *key, const void *elem)
{
	return strcmp(key, *(char *const *)elem);
}

/* Does the sorted list of the set's file names hold name? */
static bool has_file(const char **sorted, size_t n, const char *name)
{
	return name && bsearch(name, sorted, n, sizeof(*sorted), cmp_cstr) != NULL;
}

/* shmig's set: its directory, its files (like a tree's), and every object
 * names a file of the set (a content file serves one object only). */
static int validate_shm(const Om__Manifest *m, uint64_t *raw, uint64_t *stored, int status, om_error_t *err)
{
	const Om__ShmSet *set = m->shm;
	cleanup_free const char **names = NULL;
	cleanup_free const char **used = NULL;
	size_t n_used = 0;
	const char *dup = NULL;
	int r;

	if (!unknown_ok(&set->base) || !om_store_name_ok(set->dir) || strcmp(set->dir, OM_MANIFEST_NAME) == 0)
		return invalid(err, status, "shm: bad directory name");
	for (size_t i = 0; i < m->n_trees; i++)
		if (strcmp(m->trees[i]->dir, set->dir) == 0)
			return invalid(err, status, "shm: directory %s is also a tree's", set->dir);
	names = malloc((set->n_files ? set->n_files : 1) * sizeof(*names));
	used = malloc((set->n_segments + set->n_posix + 1) * sizeof(*used));
	if (names == NULL || used == NULL)
		return om_make_error(err, ENOMEM, "validate manifest");
	for (size_t j = 0; j < set->n_files; j++) {
		const Om__FileEntry *f = set->files[j];
		if (!unknown_ok(&f->base) || !om_store_name_ok(f->name))
			return invalid(err, status, "shm: file %zu has a bad name", j);
		if (f->sha256.len != 32 || f->sha256.data == NULL)
			return invalid(err, status, "shm: file %s: sha256 has %zu bytes, not 32", f->name,
				       f->sha256.len);
		if (*raw + f->size < *raw || *stored + f->stored_size < *stored)
			return invalid(err, status, "byte counts overflow");
		*raw += f->size;
		*stored += f->stored_size;
		names[j] = f->name;
	}
	qsort(names, set->n_files, sizeof(*names), cmp_strp);
	for (size_t j = 1; j < set->n_files; j++)
		if (strcmp(names[j - 1], names[j]) == 0)
			return invalid(err, status, "shm: file %s appears twice", names[j]);
	for (size_t i = 0; i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		if (!unknown_ok(&g->base) || g->id < 0 || !has_file(names, set->n_files, g->file))
			return invalid(err, status, "shm: segment %zu: bad id or contents file", i);
		used[n_used++] = g->file;
	}
	for (size_t i = 0; i < set->n_posix; i++) {
		const Om__PosixShm *p = set->posix[i];
		if (!unknown_ok(&p->base) || !om_store_name_ok(p->name) || !has_file(names, set->n_files, p->file))
			return invalid(err, status, "shm: /dev/shm file %zu: bad name or contents file", i);
		for (size_t k = 0; k < p->n_restore_links; k++)
			if (!om_store_name_ok(p->restore_links[k]) || strcmp(p->restore_links[k], p->name) == 0)
				return invalid(err, status, "shm: /dev/shm file %s: bad other name", p->name);
		used[n_used++] = p->file;
	}
	for (size_t i = 0; i < set->n_sems; i++)
		if (!unknown_ok(&set->sems[i]->base) || set->sems[i]->id < 0)
			return invalid(err, status, "shm: semaphore set %zu: bad id", i);
	for (size_t i = 0; i < set->n_queues; i++)
		if (!unknown_ok(&set->queues[i]->base) || set->queues[i]->id < 0)
			return invalid(err, status, "shm: queue %zu: bad id", i);
	r = find_dup(used, n_used, &dup);
	if (r < 0)
		return om_make_error(err, ENOMEM, "validate manifest");
	if (r > 0)
		return invalid(err, status, "shm: contents file %s serves two objects", dup);
	return 0;
}

static int validate(const Om__Manifest *m, int status, om_error_t *err)
{
	cleanup_free const char **names = NULL;
	size_t cap = 0;
	uint64_t raw = 0, stored = 0;
	const char *dup = NULL;
	int r;

	if (check_bounds(m, status, err) < 0)
		return -1;
	if (!unknown_ok(&m->base))
		return invalid(err, status, "field number 0");
	if (m->node == NULL || m->node[0] == '\0')
		return invalid(err, status, "node is missing");
	if (m->kernel == NULL)
		return invalid(err, status, "kernel is missing");
	if (m->criu_version == NULL)
		return invalid(err, status, "criu_version is missing");
	if (m->omtools_version == NULL)
		return invalid(err, status, "omtools_version is missing");
	if (m->generation == 0)
		return invalid(err, status, "generation is 0");
	if (m->has_single_pid && m->single_pid <= 0)
		return invalid(err, status, "single_pid is %d", (int)m->single_pid);
	if (!seconds_ok(m->has_freeze_seconds, m->freeze_seconds) ||
	    !seconds_ok(m->has_total_seconds, m->total_seconds))
		return invalid(err, status, "negative or non-finite duration");
	if (m->n_trees > 0 && m->trees == NULL)
		return invalid(err, status, "trees missing");
	if (m->n_tcp_conns > 0 && m->tcp_conns == NULL)
		return invalid(err, status, "tcp_conns missing");
	for (size_t i = 0; i < m->n_tcp_conns; i++) {
		const Om__TcpConn *c = m->tcp_conns[i];
		if (c == NULL || !unknown_ok(&c->base))
			return invalid(err, status, "tcp connection %zu is missing or bad", i);
		if ((c->local_addr.len != 4 && c->local_addr.len != 16) || c->local_addr.len != c->remote_addr.len ||
		    c->local_addr.data == NULL || c->remote_addr.data == NULL)
			return invalid(err, status, "tcp connection %zu: bad address", i);
		if (c->local_port == 0 || c->local_port > 65535 || c->remote_port == 0 || c->remote_port > 65535)
			return invalid(err, status, "tcp connection %zu: bad port", i);
	}

	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		if (t == NULL)
			return invalid(err, status, "tree %zu is missing", i);
		if (!unknown_ok(&t->base))
			return invalid(err, status, "tree %zu: field number 0", i);
		if (t->root_pid <= 0)
			return invalid(err, status, "tree %zu: root_pid is %d", i, (int)t->root_pid);
		if (!om_store_name_ok(t->dir) || strcmp(t->dir, OM_MANIFEST_NAME) == 0)
			return invalid(err, status, "tree %zu: bad directory name", i);
		if (!seconds_ok(t->has_dump_seconds, t->dump_seconds))
			return invalid(err, status, "tree %s: negative or non-finite dump_seconds", t->dir);
		if ((t->n_procs > 0 && t->procs == NULL) || (t->n_files > 0 && t->files == NULL))
			return invalid(err, status, "tree %s: array missing", t->dir);
		for (size_t j = 0; j < t->n_procs; j++) {
			const Om__ProcEntry *p = t->procs[j];
			if (p == NULL || p->pid <= 0 || p->ppid < 0)
				return invalid(err, status, "tree %s: process %zu has a bad pid", t->dir, j);
			if (!unknown_ok(&p->base))
				return invalid(err, status, "tree %s: process %d: field number 0", t->dir, (int)p->pid);
			if (p->n_tids > 0 && p->tids == NULL)
				return invalid(err, status, "tree %s: process %d: tids missing", t->dir, (int)p->pid);
			for (size_t k = 0; k < p->n_tids; k++)
				if (p->tids[k] <= 0)
					return invalid(err, status, "tree %s: process %d: bad tid %d", t->dir,
						       (int)p->pid, (int)p->tids[k]);
		}
		if (t->n_files > cap) {
			const char **nn = realloc(names, t->n_files * sizeof(*names));
			if (nn == NULL)
				return om_make_error(err, ENOMEM, "validate manifest");
			names = nn;
			cap = t->n_files;
		}
		for (size_t j = 0; j < t->n_files; j++) {
			const Om__FileEntry *f = t->files[j];
			if (f == NULL)
				return invalid(err, status, "tree %s: file %zu is missing", t->dir, j);
			if (!unknown_ok(&f->base))
				return invalid(err, status, "tree %s: file %zu: field number 0", t->dir, j);
			if (!om_store_name_ok(f->name))
				return invalid(err, status, "tree %s: file %zu has a bad name", t->dir, j);
			if (f->sha256.len != 32 || f->sha256.data == NULL)
				return invalid(err, status, "tree %s: file %s: sha256 has %zu bytes, not 32", t->dir,
					       f->name, f->sha256.len);
			if (raw + f->size < raw || stored + f->stored_size < stored)
				return invalid(err, status, "byte counts overflow");
			raw += f->size;
			stored += f->stored_size;
			names[j] = f->name;
		}
		r = find_dup(names, t->n_files, &dup);
		if (r < 0)
			return om_make_error(err, ENOMEM, "validate manifest");
		if (r > 0)
			return invalid(err, status, "tree %s: file %s appears twice", t->dir, dup);
	}
	if (m->shm && validate_shm(m, &raw, &stored, status, err) < 0)
		return -1;
	if (raw != m->raw_bytes || stored != m->stored_bytes)
		return invalid(err, status,
			       "totals raw_bytes=%llu stored_bytes=%llu do not match the files (%llu, %llu)",
			       (unsigned long long)m->raw_bytes, (unsigned long long)m->stored_bytes,
			       (unsigned long long)raw, (unsigned long long)stored);

	if (m->n_trees > cap) {
		const char **nn = realloc(names, m->n_trees * sizeof(*names));
		if (nn == NULL)
			return om_make_error(err, ENOMEM, "validate manifest");
		names = nn;
	}
	for (size_t i = 0; i < m->n_trees; i++)
		names[i] = m->trees[i]->dir;
	r = find_dup(names, m->n_trees, &dup);
	if (r < 0)
		return om_make_error(err, ENOMEM, "validate manifest");
	if (r > 0)
		return invalid(err, status, "tree directory %s appears twice", dup);
	return 0;
}

/* ---- codec ---- */

/* protobuf-c allocates while it unpacks, before any check of ours can run: a
 * payload of tiny sub-messages costs up to some 30 bytes of memory per byte. This
 * allocator holds the live total to a budget, so unpacking fails instead. */
struct unpack_budget {
	size_t left;
	bool exhausted;
};

static void *budget_alloc(void *data, size_t size)
{
	struct unpack_budget *b = data;
	void *p;
	size_t used;

	if (size > b->left) {
		b->exhausted = true;
		return NULL;
	}
	p = malloc(size ? size : 1);
	if (p == NULL)
		return NULL;
	used = malloc_usable_size(p);
	if (used > b->left) {
		free(p);
		b->exhausted = true;
		return NULL;
	}
	b->left -= used;
	return p;
}

static void budget_free(void *data, void *p)
{
	struct unpack_budget *b = data;

	if (p == NULL)
		return;
	b->left += malloc_usable_size(p);
	free(p);
}

/* The budget for a payload of plen bytes. Measured peaks: manifests as
 * omckpt writes them need under 10 bytes per payload byte, the densest
 * valid processes (pid and ppid only) 19, a list of 6-byte trees 30. */
#define UNPACK_PER_BYTE 24u
static size_t unpack_budget_for(size_t plen)
{
	size_t b = (size_t)1 << 20;

	if (plen > (OM_MANIFEST_UNPACK_MAX - b) / UNPACK_PER_BYTE)
		return OM_MANIFEST_UNPACK_MAX;
	return b + UNPACK_PER_BYTE * plen;
}

int om_manifest_encode(const Om__Manifest *m, uint8_t **buf, size_t *len, om_error_t *err)
{
	cleanup_free uint8_t *out = NULL;
	size_t plen, total;

	if (validate(m, EINVAL, err) < 0)
		return om_error_wrap(err, "encode manifest");
	plen = om__manifest__get_packed_size(m);
	if (plen > OM_MANIFEST_MAX - HDR_LEN - SHA_LEN)
		return om_make_error(err, EFBIG, "encode manifest: %zu bytes is too large (at most %u)", plen,
				     OM_MANIFEST_MAX);
	total = HDR_LEN + plen + SHA_LEN;
	out = malloc(total);
	if (out == NULL)
		return om_make_error(err, ENOMEM, "encode manifest");
	memcpy(out, OM_MANIFEST_MAGIC, 8); /* 7 characters and the NUL */
	put_le32(out + 8, OM_MANIFEST_VERSION);
	put_le32(out + 12, (uint32_t)plen);
	if (om__manifest__pack(m, out + HDR_LEN) != plen)
		return om_make_error(err, EIO, "encode manifest: protobuf packed size changed");
	om_sha256(out, HDR_LEN + plen, out + HDR_LEN + plen);
	*buf = om_steal_ptr(out);
	*len = total;
	return 0;
}

int om_manifest_decode(const uint8_t *buf, size_t len, Om__Manifest **out, om_error_t *err)
{
	Om__Manifest *m;
	uint32_t version, plen;
	uint8_t sha[32];

	*out = NULL;
	if (buf == NULL || len < HDR_LEN + SHA_LEN)
		return om_make_error(err, OM_ECORRUPT, "manifest truncated: %zu bytes, a manifest has at least %u", len,
				     HDR_LEN + SHA_LEN);
	if (memcmp(buf, OM_MANIFEST_MAGIC, 8) != 0)
		return om_make_error(err, OM_ECORRUPT, "not an omtools manifest (bad magic)");
	version = get_le32(buf + 8);
	if (version != OM_MANIFEST_VERSION)
		return om_make_error(err, OM_ECORRUPT,
				     "manifest format version %u is not supported (this omtools reads version %u)",
				     version, OM_MANIFEST_VERSION);
	if (len > OM_MANIFEST_MAX)
		return om_make_error(err, OM_ECORRUPT, "manifest of %zu bytes, at most %u", len, OM_MANIFEST_MAX);
	plen = get_le32(buf + 12);
	if ((size_t)plen > len - HDR_LEN - SHA_LEN || HDR_LEN + (size_t)plen + SHA_LEN != len)
		return om_make_error(err, OM_ECORRUPT,
				     "manifest length mismatch: header says %u payload bytes, file has %zu bytes "
				     "(expected %zu)",
				     plen, len, (size_t)HDR_LEN + plen + SHA_LEN);
	om_sha256(buf, HDR_LEN + plen, sha);
	if (memcmp(sha, buf + HDR_LEN + plen, SHA_LEN) != 0)
		return om_make_error(err, OM_ECORRUPT, "manifest checksum mismatch");
	{
		struct unpack_budget budget = {unpack_budget_for(plen), false};
		ProtobufCAllocator alloc = {budget_alloc, budget_free, &budget};
		/* blocks come from malloc(): om_manifest_free() releases them with free() */
		m = om__manifest__unpack(&alloc, plen, buf + HDR_LEN);
		if (m == NULL && budget.exhausted)
			return om_make_error(
			    err, OM_ECORRUPT,
			    "manifest payload of %u bytes needs more than %zu bytes of memory to unpack", plen,
			    unpack_budget_for(plen));
	}
	if (m == NULL)
		return om_make_error(err, OM_ECORRUPT, "manifest payload does not parse as om.Manifest");
	if (validate(m, OM_ECORRUPT, err) < 0) {
		om__manifest__free_unpacked(m, NULL);
		return -1;
	}
	*out = m;
	return 0;
}

void om_manifest_free(Om__Manifest *m)
{
	if (m)
		om__manifest__free_unpacked(m, NULL);
}

/* ---- hand-built manifests ---- */

static void free_str(char *s)
{
	if (s != NULL && s != protobuf_c_empty_string)
		free(s);
}

static void free_unknown(ProtobufCMessage *base)
{
	for (unsigned i = 0; i < base->n_unknown_fields; i++)
		free(base->unknown_fields[i].data);
	free(base->unknown_fields);
	base->unknown_fields = NULL;
	base->n_unknown_fields = 0;
}

static void free_file(Om__FileEntry *f)
{
	if (f == NULL)
		return;
	free_str(f->name);
	free(f->sha256.data);
	free_unknown(&f->base);
	free(f);
}

static void free_proc(Om__ProcEntry *p)
{
	if (p == NULL)
		return;
	free(p->tids);
	free_str(p->comm);
	free_str(p->cmdline);
	free_unknown(&p->base);
	free(p);
}

static void free_tree(Om__TreeEntry *t)
{
	if (t == NULL)
		return;
	free_str(t->dir);
	for (size_t i = 0; i < t->n_procs; i++)
		free_proc(t->procs[i]);
	free(t->procs);
	for (size_t i = 0; i < t->n_files; i++)
		free_file(t->files[i]);
	free(t->files);
	free_unknown(&t->base);
	free(t);
}

void om_shm_set_free_built(Om__ShmSet *set)
{
	if (set == NULL)
		return;
	free_str(set->dir);
	for (size_t i = 0; i < set->n_files; i++)
		free_file(set->files[i]);
	free(set->files);
	for (size_t i = 0; i < set->n_segments; i++) {
		free_str(set->segments[i]->file);
		free(set->segments[i]->attached_by);
		free_unknown(&set->segments[i]->base);
		free(set->segments[i]);
	}
	free(set->segments);
	for (size_t i = 0; i < set->n_sems; i++) {
		free(set->sems[i]->values);
		free(set->sems[i]->used_by);
		free_unknown(&set->sems[i]->base);
		free(set->sems[i]);
	}
	free(set->sems);
	for (size_t i = 0; i < set->n_queues; i++) {
		for (size_t j = 0; j < set->queues[i]->n_msgs; j++) {
			free(set->queues[i]->msgs[j]->text.data);
			free_unknown(&set->queues[i]->msgs[j]->base);
			free(set->queues[i]->msgs[j]);
		}
		free(set->queues[i]->msgs);
		free(set->queues[i]->used_by);
		free_unknown(&set->queues[i]->base);
		free(set->queues[i]);
	}
	free(set->queues);
	for (size_t i = 0; i < set->n_posix; i++) {
		free_str(set->posix[i]->name);
		free_str(set->posix[i]->file);
		for (size_t k = 0; k < set->posix[i]->n_restore_links; k++)
			free_str(set->posix[i]->restore_links[k]);
		free(set->posix[i]->restore_links);
		free(set->posix[i]->used_by);
		free_unknown(&set->posix[i]->base);
		free(set->posix[i]);
	}
	free(set->posix);
	free_unknown(&set->base);
	free(set);
}

void om_manifest_free_built(Om__Manifest *m)
{
	if (m == NULL)
		return;
	free_str(m->node);
	free_str(m->kernel);
	free_str(m->criu_version);
	free_str(m->omtools_version);
	free_str(m->cgroup_backend);
	for (size_t i = 0; i < m->n_trees; i++)
		free_tree(m->trees[i]);
	free(m->trees);
	for (size_t i = 0; i < m->n_tcp_conns; i++) {
		free(m->tcp_conns[i]->local_addr.data);
		free(m->tcp_conns[i]->remote_addr.data);
		free_unknown(&m->tcp_conns[i]->base);
		free(m->tcp_conns[i]);
	}
	free(m->tcp_conns);
	om_shm_set_free_built(m->shm);
	free_unknown(&m->base);
	free(m);
}

Om__Manifest *om_manifest_new(void)
{
	Om__Manifest *m = malloc(sizeof(*m));
	if (m)
		om__manifest__init(m);
	return m;
}

int om_manifest_add_tree(Om__Manifest *m, int32_t root_pid, Om__TreeEntry **out, om_error_t *err)
{
	Om__TreeEntry *t, **v;

	if (root_pid <= 0)
		return om_make_error(err, EINVAL, "add tree: bad root pid %d", (int)root_pid);
	t = malloc(sizeof(*t));
	if (t == NULL)
		return om_make_error(err, ENOMEM, "add tree %d", (int)root_pid);
	om__tree_entry__init(t);
	t->root_pid = root_pid;
	t->dir = om_strdup_printf("tree-%d", (int)root_pid);
	v = realloc(m->trees, (m->n_trees + 1) * sizeof(*v));
	if (t->dir == NULL || v == NULL) {
		free(t->dir);
		free(t);
		return om_make_error(err, ENOMEM, "add tree %d", (int)root_pid);
	}
	m->trees = v;
	m->trees[m->n_trees++] = t;
	if (out)
		*out = t;
	return 0;
}

int om_tree_add_proc(Om__TreeEntry *t, int32_t pid, int32_t ppid, const int32_t *tids, size_t n_tids, const char *comm,
		     const char *cmdline, Om__ProcEntry **out, om_error_t *err)
{
	Om__ProcEntry *p, **v;

	p = malloc(sizeof(*p));
	if (p == NULL)
		return om_make_error(err, ENOMEM, "add process %d", (int)pid);
	om__proc_entry__init(p);
	p->pid = pid;
	p->ppid = ppid;
	if (n_tids > 0) {
		p->tids = malloc(n_tids * sizeof(*p->tids));
		if (p->tids == NULL)
			goto nomem;
		memcpy(p->tids, tids, n_tids * sizeof(*p->tids));
		p->n_tids = n_tids;
	}
	if (comm && (p->comm = strdup(comm)) == NULL)
		goto nomem;
	if (cmdline && (p->cmdline = strdup(cmdline)) == NULL)
		goto nomem;
	v = realloc(t->procs, (t->n_procs + 1) * sizeof(*v));
	if (v == NULL)
		goto nomem;
	t->procs = v;
	t->procs[t->n_procs++] = p;
	if (out)
		*out = p;
	return 0;
nomem:
	free_proc(p);
	return om_make_error(err, ENOMEM, "add process %d", (int)pid);
}
