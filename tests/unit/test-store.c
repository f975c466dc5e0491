/* tests/unit/test-store.c — unit tests of storage/: manifest codec, writer,
 * readers, verification, extraction, store resolution (TAP output).
 *
 * OM_WRITE_CORPUS=DIR  also write fuzzing seeds (manifests) into DIR.
 * OM_TEST_KEEP=1       keep the temporary store and print its path.
 */
#include "config.h"
#include "../tap.h"
#include "compress.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zstd.h>

static char tmproot[] = "/tmp/om-test-store.XXXXXX";

static char *path_in(const char *rel)
{
	char *p = om_strdup_printf("%s/%s", tmproot, rel);
	if (p == NULL)
		bail_out("out of memory");
	return p;
}

static bool msg_has(om_error_t err, const char *needle)
{
	return err && err->msg && strstr(err->msg, needle) != NULL;
}

/* Print the message of *err (if any) as a TAP comment and release it. */
static void show(om_error_t *err)
{
	if (*err)
		diag("  -> %s (status %d)", (*err)->msg ? (*err)->msg : "?", (*err)->status);
	om_error_release(err);
}

/* ---- manifests ---- */

static Om__FileEntry *new_file(const char *name, uint64_t size, uint64_t stored, uint8_t seed)
{
	Om__FileEntry *f = malloc(sizeof(*f));
	om__file_entry__init(f);
	f->name = strdup(name);
	f->size = size;
	f->stored_size = stored;
	f->sha256.len = 32;
	f->sha256.data = malloc(32);
	for (int i = 0; i < 32; i++)
		f->sha256.data[i] = (uint8_t)(seed + i);
	f->has_mode = true;
	f->mode = 0600;
	return f;
}

static void tree_add_file(Om__TreeEntry *t, Om__FileEntry *f)
{
	t->files = realloc(t->files, (t->n_files + 1) * sizeof(*t->files));
	t->files[t->n_files++] = f;
}

/* A built manifest; full = with every optional field and two trees. */
static Om__Manifest *sample_manifest(bool full)
{
	Om__Manifest *m = om_manifest_new();
	Om__TreeEntry *t;
	om_error_t err = NULL;
	int32_t tids[] = {4012, 4013, 4014};

	m->group = 3;
	m->generation = 7;
	m->node = strdup("node-a");
	m->time_unix_ns = 1700000000123456789LL;
	m->kernel = strdup("6.1.0-13-amd64");
	m->criu_version = strdup("4.1.1");
	m->omtools_version = strdup("0.1.0");
	if (om_manifest_add_tree(m, 4012, &t, &err) < 0)
		bail_out("add tree");
	om_tree_add_proc(t, 4012, 1, tids, 3, "server", "server --port 80", NULL, &err);
	om_tree_add_proc(t, 4015, 4012, NULL, 0, NULL, NULL, NULL, &err);
	tree_add_file(t, new_file("pages-1.img", 1 << 20, 1000, 1));
	tree_add_file(t, new_file("core-4012.img", 300, 200, 2));
	m->raw_bytes = (1 << 20) + 300;
	m->stored_bytes = 1200;
	if (full) {
		t->has_dump_seconds = true;
		t->dump_seconds = 0.25;
		if (om_manifest_add_tree(m, 5000, &t, &err) < 0)
			bail_out("add tree");
		tree_add_file(t, new_file("inventory.img", 10, 0, 3));
		m->raw_bytes += 10;
		m->has_leave_running = true;
		m->leave_running = true;
		m->has_zstd_level = true;
		m->zstd_level = 3;
		m->has_freeze_seconds = true;
		m->freeze_seconds = 0.125;
		m->has_total_seconds = true;
		m->total_seconds = 1.5;
		m->cgroup_backend = strdup("v2");
		/* omckpt --tcp-established: one IPv4 connection */
		static const uint8_t lo[4] = {127, 0, 0, 1};
		Om__TcpConn *c = calloc(1, sizeof(*c));
		om__tcp_conn__init(c);
		c->local_addr.data = calloc(1, 16); /* room for the tests that lengthen them */
		c->remote_addr.data = calloc(1, 16);
		memcpy(c->local_addr.data, lo, 4);
		memcpy(c->remote_addr.data, lo, 4);
		c->local_addr.len = c->remote_addr.len = 4;
		c->local_port = 6380;
		c->remote_port = 54342;
		m->tcp_conns = calloc(1, sizeof(*m->tcp_conns));
		m->tcp_conns[m->n_tcp_conns++] = c;
		m->has_tcp_established = true;
		m->tcp_established = true;
	}
	om_error_release(&err);
	return m;
}

/* Frame a payload as a manifest file (bypassing the encoder's validation). */
static uint8_t *frame(const uint8_t *payload, size_t plen, uint32_t version, size_t *len)
{
	uint8_t *b = malloc(16 + plen + 32);
	memcpy(b, "OMMANIF", 8);
	for (int i = 0; i < 4; i++) {
		b[8 + i] = (uint8_t)(version >> (8 * i));
		b[12 + i] = (uint8_t)((uint32_t)plen >> (8 * i));
	}
	if (plen)
		memcpy(b + 16, payload, plen);
	om_sha256(b, 16 + plen, b + 16 + plen);
	*len = 16 + plen + 32;
	return b;
}

static uint8_t *frame_manifest(const Om__Manifest *m, uint32_t version, size_t *len)
{
	size_t plen = om__manifest__get_packed_size(m);
	uint8_t *p = malloc(plen + 1);
	uint8_t *b;

	om__manifest__pack(m, p);
	b = frame(p, plen, version, len);
	free(p);
	return b;
}

static bool decode_fails(const uint8_t *buf, size_t len, const char *needle)
{
	om_error_t err = NULL;
	Om__Manifest *m = NULL;
	int r = om_manifest_decode(buf, len, &m, &err);
	bool good = r < 0 && m == NULL && err && err->status == OM_ECORRUPT && (!needle || msg_has(err, needle));

	if (!good)
		show(&err);
	if (r == 0)
		om_manifest_free(m);
	om_error_release(&err);
	return good;
}

static void write_seed(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	cleanup_free char *p = om_strdup_printf("%s/%s", dir, name);
	FILE *f = fopen(p, "we");
	if (f == NULL || fwrite(buf, 1, len, f) != len)
		diag("cannot write seed %s", p);
	if (f)
		fclose(f);
}

static void test_codec(void)
{
	Om__Manifest *m = sample_manifest(true), *d = NULL;
	uint8_t *buf = NULL, *buf2 = NULL, *bad;
	size_t len = 0, len2 = 0, blen;
	om_error_t err = NULL;
	bool all;
	const char *corpus = getenv("OM_WRITE_CORPUS");

	ok(om_manifest_encode(m, &buf, &len, &err) == 0, "encode a manifest");
	show(&err);
	ok(len > 48 && memcmp(buf, "OMMANIF\0", 8) == 0 && buf[8] == 1 && buf[9] == 0, "header: magic and version 1");
	ok(om_manifest_decode(buf, len, &d, &err) == 0 && d != NULL, "decode it");
	show(&err);
	ok(d && d->group == 3 && d->generation == 7 && !strcmp(d->node, "node-a") &&
	       d->time_unix_ns == 1700000000123456789LL && !strcmp(d->kernel, "6.1.0-13-amd64") &&
	       !strcmp(d->criu_version, "4.1.1") && !strcmp(d->omtools_version, "0.1.0") &&
	       d->raw_bytes == (1 << 20) + 310 && d->stored_bytes == 1200 && d->leave_running && d->zstd_level == 3 &&
	       d->freeze_seconds == 0.125 && d->total_seconds == 1.5 && !strcmp(d->cgroup_backend, "v2") &&
	       !d->has_single_pid,
	   "manifest fields round-trip");
	ok(d && d->n_trees == 2 && d->trees[0]->root_pid == 4012 && !strcmp(d->trees[0]->dir, "tree-4012") &&
	       d->trees[0]->n_procs == 2 && d->trees[0]->procs[0]->n_tids == 3 &&
	       d->trees[0]->procs[0]->tids[2] == 4014 && !strcmp(d->trees[0]->procs[0]->cmdline, "server --port 80") &&
	       d->trees[0]->procs[1]->comm == NULL && d->trees[0]->n_files == 2 &&
	       !strcmp(d->trees[0]->files[1]->name, "core-4012.img") && d->trees[0]->files[1]->sha256.len == 32 &&
	       d->trees[0]->files[1]->sha256.data[31] == 2 + 31 && d->trees[0]->dump_seconds == 0.25 &&
	       !strcmp(d->trees[1]->dir, "tree-5000"),
	   "trees, processes and files round-trip");
	ok(d && d->tcp_established && d->n_tcp_conns == 1 && d->tcp_conns[0]->local_addr.len == 4 &&
	       d->tcp_conns[0]->remote_addr.data[0] == 127 && d->tcp_conns[0]->local_port == 6380 &&
	       d->tcp_conns[0]->remote_port == 54342,
	   "tcp_established and the TCP connections round-trip");
	ok(d && om_manifest_encode(d, &buf2, &len2, &err) == 0 && len2 == len && !memcmp(buf, buf2, len),
	   "re-encoding the decoded manifest gives the same bytes");
	om_manifest_free(d);
	d = NULL;

	all = true;
	for (size_t i = 0; i < len; i++)
		all &= decode_fails(buf, i, NULL);
	ok(all, "decode rejects the manifest truncated at each of %zu lengths", len);

	all = true;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			buf[i] ^= (uint8_t)(1 << bit);
			all &= decode_fails(buf, len, NULL);
			buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	ok(all, "decode rejects every flipped byte");

	buf[0] = 'X';
	ok(decode_fails(buf, len, "magic"), "decode rejects a wrong magic");
	buf[0] = 'O';
	bad = frame_manifest(m, 2, &blen);
	{
		om_error_t e = NULL;
		Om__Manifest *x = NULL;
		ok(om_manifest_decode(bad, blen, &x, &e) < 0 && e && e->status == OM_ECORRUPT &&
		       msg_has(e, "version 2") && msg_has(e, "version 1"),
		   "decode rejects version 2, naming the found and the supported version");
		show(&e);
		om_error_release(&e);
	}
	free(bad);
	{
		uint8_t *longer = malloc(len + 5);
		memcpy(longer, buf, len);
		memcpy(longer + len, "junk!", 5);
		ok(decode_fails(longer, len + 5, "length"), "decode rejects trailing garbage");
		free(longer);
	}
	{
		uint8_t *huge = malloc(len);
		memcpy(huge, buf, len);
		huge[12] = huge[13] = huge[14] = huge[15] = 0xff;
		ok(decode_fails(huge, len, "length"), "decode rejects a payload length of 4 GiB");
		free(huge);
	}
	{
		static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12};
		uint8_t *j = frame(junk, sizeof(junk), 1, &blen);
		ok(decode_fails(j, blen, "parse"), "decode rejects a payload that is not protobuf");
		free(j);
		j = frame(NULL, 0, 1, &blen);
		ok(decode_fails(j, blen, "parse"), "decode rejects an empty payload (required fields missing)");
		free(j);
	}

	/* semantic nonsense, correctly framed */
	{
		uint8_t *f = frame_manifest(m, 1, &blen);
		om_error_t e = NULL;
		Om__Manifest *x = NULL;
		ok(om_manifest_decode(f, blen, &x, &e) == 0, "a hand-framed valid manifest decodes (sanity)");
		om_manifest_free(x);
		om_error_release(&e);
		free(f);
	}
	{
		static const char *bad_dirs[] = {"a/b", "..", "x..y", "", ".hidden", "/abs", "manifest.om", "a\nb"};
		Om__TreeEntry *t = m->trees[0];
		char *saved = t->dir;
		all = true;
		for (size_t i = 0; i < sizeof(bad_dirs) / sizeof(bad_dirs[0]); i++) {
			t->dir = (char *)bad_dirs[i];
			uint8_t *f = frame_manifest(m, 1, &blen);
			all &= decode_fails(f, blen, "invalid manifest");
			free(f);
		}
		ok(all, "decode rejects bad tree directory names ('/', '..', empty, leading '.')");
		t->dir = saved;

		char *fname = t->files[0]->name;
		all = true;
		for (size_t i = 0; i < sizeof(bad_dirs) / sizeof(bad_dirs[0]); i++) {
			if (!strcmp(bad_dirs[i], "manifest.om"))
				continue;
			t->files[0]->name = (char *)bad_dirs[i];
			uint8_t *f = frame_manifest(m, 1, &blen);
			all &= decode_fails(f, blen, "invalid manifest");
			free(f);
		}
		t->files[0]->name = fname;
		ok(all, "decode rejects bad file names");

		char *fname2 = t->files[1]->name;
		t->files[1]->name = fname;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "twice"), "decode rejects a file listed twice");
			free(f);
		}
		t->files[1]->name = fname2;

		t->root_pid = 0;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "root_pid"), "decode rejects root_pid 0");
			free(f);
		}
		t->root_pid = -5;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "root_pid"), "decode rejects a negative root_pid");
			free(f);
		}
		t->root_pid = 4012;

		t->files[0]->sha256.len = 31;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "sha256"), "decode rejects a 31-byte sha256");
			free(f);
		}
		t->files[0]->sha256.len = 32;

		m->raw_bytes++;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "totals"), "decode rejects raw_bytes that do not add up");
			free(f);
			uint8_t *eb = NULL;
			size_t el = 0;
			om_error_t e = NULL;
			ok(om_manifest_encode(m, &eb, &el, &e) < 0 && e && e->status == EINVAL && eb == NULL,
			   "encode refuses an invalid manifest (EINVAL)");
			om_error_release(&e);
		}
		m->raw_bytes--;

		m->generation = 0;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "generation"), "decode rejects generation 0");
			free(f);
		}
		m->generation = 7;

		Om__TcpConn *c = m->tcp_conns[0];
		c->local_addr.len = 5;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "address"), "decode rejects a 5-byte TCP address");
			free(f);
		}
		c->local_addr.len = 4;
		c->remote_addr.len = 16; /* one end IPv4, the other IPv6 */
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "address"), "decode rejects TCP addresses of two families");
			free(f);
		}
		c->remote_addr.len = 4;
		c->remote_port = 70000;
		{
			uint8_t *f = frame_manifest(m, 1, &blen);
			ok(decode_fails(f, blen, "port"), "decode rejects TCP port 70000");
			free(f);
		}
		c->remote_port = 54342;
	}

	/* fuzzer finding: protobuf-c reads "80 00" as field number 0 but cannot
	 * read back its own re-encoding of it */
	{
		Om__Manifest *small = om_manifest_new();
		uint8_t *sb = NULL, *f, *payload;
		size_t sl = 0, fl;

		small->generation = 1;
		small->node = strdup("n");
		small->kernel = strdup("");
		small->criu_version = strdup("");
		small->omtools_version = strdup("");
		if (om_manifest_encode(small, &sb, &sl, &err) < 0)
			bail_out("encode");
		payload = malloc(sl - 48 + 3);
		memcpy(payload, sb + 16, sl - 48);
		memcpy(payload + sl - 48, "\x80\x00\x05", 3);
		f = frame(payload, sl - 48 + 3, 1, &fl);
		ok(decode_fails(f, fl, "field number 0"), "decode rejects a non-minimally encoded field number 0");
		if (corpus && *corpus)
			write_seed(corpus, "regress-field0.pb", payload, sl - 48 + 3);
		free(f);
		free(payload);
		free(sb);
		om_manifest_free_built(small);
	}

	if (corpus && *corpus) {
		Om__Manifest *small = sample_manifest(false);
		uint8_t *sb = NULL;
		size_t sl = 0;
		/* whole manifests, and bare payloads (the fuzzer frames those itself) */
		write_seed(corpus, "full.om", buf, len);
		write_seed(corpus, "full.pb", buf + 16, len - 48);
		if (om_manifest_encode(small, &sb, &sl, &err) == 0) {
			write_seed(corpus, "small.om", sb, sl);
			write_seed(corpus, "small.pb", sb + 16, sl - 48);
		}
		free(sb);
		om_manifest_free_built(small);
		small = om_manifest_new();
		small->generation = 1;
		small->node = strdup("n");
		small->kernel = strdup("");
		small->criu_version = strdup("");
		small->omtools_version = strdup("");
		sb = NULL;
		if (om_manifest_encode(small, &sb, &sl, &err) == 0)
			write_seed(corpus, "minimal.om", sb, sl);
		free(sb);
		om_manifest_free_built(small);
		diag("wrote fuzzing seeds to %s", corpus);
	}

	free(buf);
	free(buf2);
	om_manifest_free_built(m);
	om_error_release(&err);
}

/* ---- shmig's set in a manifest ---- */

static Om__ShmSet *sample_shm(Om__Manifest *m)
{
	Om__ShmSet *set = calloc(1, sizeof(*set));
	Om__ShmSegment *g = calloc(1, sizeof(*g));
	Om__SemSet *e = calloc(1, sizeof(*e));
	Om__MsgQueue *q = calloc(1, sizeof(*q));
	Om__PosixShm *p = calloc(1, sizeof(*p));

	om__shm_set__init(set);
	om__shm_segment__init(g);
	om__sem_set__init(e);
	om__msg_queue__init(q);
	om__posix_shm__init(p);
	set->dir = strdup("shm");
	set->files = calloc(2, sizeof(*set->files));
	set->files[set->n_files++] = new_file("sysv-shm-32770", 1 << 20, 500, 9);
	set->files[set->n_files++] = new_file("posix-0", 4096, 40, 10);
	m->raw_bytes += (1 << 20) + 4096;
	m->stored_bytes += 540;
	g->key = 0x4f4d0001;
	g->id = 32770;
	g->mode = 0600;
	g->size = 1 << 20;
	g->file = strdup("sysv-shm-32770");
	g->attached_by = calloc(2, sizeof(int32_t));
	g->attached_by[g->n_attached_by++] = 4012;
	g->attached_by[g->n_attached_by++] = 4015;
	set->segments = calloc(1, sizeof(*set->segments));
	set->segments[set->n_segments++] = g;
	e->key = 0x4f4d0002;
	e->id = 5;
	e->mode = 0640;
	e->values = calloc(3, sizeof(uint32_t));
	for (int i = 0; i < 3; i++)
		e->values[e->n_values++] = (uint32_t)i + 1;
	set->sems = calloc(1, sizeof(*set->sems));
	set->sems[set->n_sems++] = e;
	q->key = 0;
	q->id = 7;
	q->mode = 0600;
	q->msgs = calloc(2, sizeof(*q->msgs));
	for (int i = 0; i < 2; i++) {
		Om__MsgEntry *me = calloc(1, sizeof(*me));
		om__msg_entry__init(me);
		me->mtype = i + 1;
		me->text.data = (uint8_t *)strdup(i ? "second" : "first");
		me->text.len = strlen((char *)me->text.data);
		q->msgs[q->n_msgs++] = me;
	}
	set->queues = calloc(1, sizeof(*set->queues));
	set->queues[set->n_queues++] = q;
	p->name = strdup("PostgreSQL.1234");
	p->mode = 0600;
	p->size = 4096;
	p->file = strdup("posix-0");
	set->posix = calloc(1, sizeof(*set->posix));
	set->posix[set->n_posix++] = p;
	m->shm = set;
	return set;
}

static bool shm_encode_fails(Om__Manifest *m, const char *needle)
{
	uint8_t *b = NULL;
	size_t l = 0;
	om_error_t e = NULL;
	bool good = om_manifest_encode(m, &b, &l, &e) < 0 && e && e->status == EINVAL && msg_has(e, needle);

	if (!good)
		show(&e);
	om_error_release(&e);
	free(b);
	return good;
}

static void test_shm_codec(void)
{
	Om__Manifest *m = sample_manifest(false), *d = NULL;
	Om__ShmSet *set = sample_shm(m);
	uint8_t *buf = NULL;
	size_t len = 0;
	om_error_t err = NULL;
	const char *corpus = getenv("OM_WRITE_CORPUS");
	char *keep;

	ok(om_manifest_encode(m, &buf, &len, &err) == 0, "encode a manifest with a shm set");
	show(&err);
	ok(om_manifest_decode(buf, len, &d, &err) == 0 && d && d->shm, "decode it");
	ok(d && d->shm && d->shm->n_segments == 1 && d->shm->segments[0]->id == 32770 &&
	       d->shm->segments[0]->key == 0x4f4d0001 && d->shm->segments[0]->n_attached_by == 2 &&
	       d->shm->n_sems == 1 && d->shm->sems[0]->n_values == 3 && d->shm->sems[0]->values[2] == 3 &&
	       d->shm->n_queues == 1 && d->shm->queues[0]->n_msgs == 2 && d->shm->queues[0]->msgs[1]->text.len == 6 &&
	       d->shm->n_posix == 1 && !strcmp(d->shm->posix[0]->name, "PostgreSQL.1234") && d->shm->n_files == 2,
	   "... segments, semaphores, messages, /dev/shm files and contents files round-trip");
	if (corpus && *corpus) {
		write_seed(corpus, "shm.om", buf, len);
		write_seed(corpus, "shm.pb", buf + 16, len - 48);
	}
	if (d)
		om_manifest_free(d);
	free(buf);

	keep = set->segments[0]->file;
	set->segments[0]->file = strdup("missing");
	ok(shm_encode_fails(m, "contents file"), "a segment whose contents file is not in the set is refused");
	free(set->segments[0]->file);
	set->segments[0]->file = strdup("posix-0");
	ok(shm_encode_fails(m, "serves two objects"), "two objects sharing one contents file are refused");
	free(set->segments[0]->file);
	set->segments[0]->file = keep;

	keep = set->posix[0]->name;
	set->posix[0]->name = strdup("../etc/passwd");
	ok(shm_encode_fails(m, "bad name"), "a /dev/shm name with '/' or '..' is refused");
	free(set->posix[0]->name);
	set->posix[0]->name = keep;

	keep = set->dir;
	set->dir = strdup("tree-4012");
	ok(shm_encode_fails(m, "also a tree"), "a shm directory that is a tree's is refused");
	free(set->dir);
	set->dir = keep;

	set->sems[0]->values[1] = 40000;
	ok(shm_encode_fails(m, "value"), "a semaphore value above 32767 is refused");
	set->sems[0]->values[1] = 2;

	set->queues[0]->msgs[0]->mtype = 0;
	ok(shm_encode_fails(m, "message 0"), "a message of type 0 is refused");
	set->queues[0]->msgs[0]->mtype = 1;

	set->segments[0]->size = 0;
	ok(shm_encode_fails(m, "size"), "a segment of size 0 is refused");
	set->segments[0]->size = 1 << 20;

	set->files[1]->size += 1;
	ok(shm_encode_fails(m, "totals"), "the shm files count in the totals");
	set->files[1]->size -= 1;

	ok(om_manifest_encode(m, &buf, &len, &err) == 0, "... and the set is valid again after the changes");
	free(buf);
	om_manifest_free_built(m);
	om_error_release(&err);
}

/* ---- store ---- */

static void write_file(const char *path, const void *buf, size_t len)
{
	om_error_t err = NULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || om_write_all(fd, buf, len) < 0)
		bail_out("cannot write a test file");
	close(fd);
	om_error_release(&err);
}

static uint8_t *random_bytes(size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len);
	uint64_t x = seed | 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)(x >> 24);
	}
	return b;
}

static bool same_file(const char *a, const char *b)
{
	cleanup_free char *x = NULL;
	cleanup_free char *y = NULL;
	size_t lx = 0, ly = 0;
	om_error_t err = NULL;
	bool same = om_read_file(a, &x, &lx, &err) == 0 && om_read_file(b, &y, &ly, &err) == 0 && lx == ly &&
		    memcmp(x, y, lx) == 0;
	om_error_release(&err);
	return same;
}

static size_t count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

#define BIG (5u << 20)

static void make_images(const char *dir)
{
	cleanup_free char *p1 = om_strdup_printf("%s/empty.img", dir);
	cleanup_free char *p2 = om_strdup_printf("%s/core-4012.img", dir);
	cleanup_free char *p3 = om_strdup_printf("%s/pages-1.img", dir);
	cleanup_free char *p4 = om_strdup_printf("%s/.hidden", dir);
	cleanup_free char *p5 = om_strdup_printf("%s/subdir", dir);
	cleanup_free char *p6 = om_strdup_printf("%s/link.img", dir);
	uint8_t *big = random_bytes(BIG, 42);
	om_error_t err = NULL;

	if (om_mkdir_p(dir, 0700, &err) < 0)
		bail_out("mkdir");
	write_file(p1, "", 0);
	write_file(p2, "hello, world\n", 13);
	write_file(p3, big, BIG);
	write_file(p4, "x", 1);
	mkdir(p5, 0700);
	if (symlink("pages-1.img", p6) < 0)
		bail_out("symlink");
	free(big);
}

static Om__Manifest *writer_manifest(void)
{
	Om__Manifest *m = om_manifest_new();
	m->criu_version = strdup("4.1.1");
	m->omtools_version = strdup("test");
	return m;
}

static int write_gen(struct om_store *st, const char *kind, unsigned long id, const char *src, int workers,
		     uint64_t *gen, om_error_t *err)
{
	struct om_gen_writer *w = NULL;
	Om__Manifest *m = writer_manifest();
	Om__TreeEntry *t = NULL;
	int r = om_gen_begin(st, kind, id, 1, &w, err);

	if (r == 0)
		r = om_manifest_add_tree(m, 4012, &t, err);
	if (r == 0)
		r = om_gen_add_tree(w, src, t, 3, workers, err);
	if (r == 0)
		r = om_gen_commit(w, m, gen, err);
	om_gen_writer_free(w);
	om_manifest_free_built(m);
	return r;
}

static int write_gen_fenced(struct om_store *st, unsigned long id, const char *src, uint64_t fence, uint64_t *gen,
			    om_error_t *err)
{
	struct om_gen_writer *w = NULL;
	Om__Manifest *m = writer_manifest();
	Om__TreeEntry *t = NULL;
	int r = om_gen_begin(st, "groups", id, 1, &w, err);

	m->has_fence = fence != 0;
	m->fence = fence;
	if (r == 0)
		r = om_manifest_add_tree(m, 4012, &t, err);
	if (r == 0)
		r = om_gen_add_tree(w, src, t, 3, 1, err);
	if (r == 0)
		r = om_gen_commit(w, m, gen, err);
	om_gen_writer_free(w);
	om_manifest_free_built(m);
	return r;
}

/* A checkpoint without a cluster: a writer of `node` (om_gen_fence_local), its
 * manifest fenced with the store's token; when taker is set, that node takes
 * the group over (om_store_fence_take, --takeover) between the start and the
 * commit. *fence: the token the writer got. */
static int write_gen_local(struct om_store *st, unsigned long id, const char *src, const char *node, const char *taker,
			   uint64_t *fence, uint64_t *gen, om_error_t *err)
{
	struct om_gen_writer *w = NULL;
	Om__Manifest *m = writer_manifest();
	Om__TreeEntry *t = NULL;
	int r = om_gen_begin(st, "groups", id, 1, &w, err);

	*fence = 0;
	if (r == 0)
		r = om_gen_fence_local(w, node, fence, err);
	m->has_fence = *fence != 0;
	m->fence = *fence;
	if (r == 0)
		r = om_manifest_add_tree(m, 4012, &t, err);
	if (r == 0)
		r = om_gen_add_tree(w, src, t, 3, 1, err);
	if (r == 0 && taker)
		r = om_store_fence_take(st, "groups", id, taker, 1, true, NULL, err);
	if (r == 0)
		r = om_gen_commit(w, m, gen, err);
	om_gen_writer_free(w);
	om_manifest_free_built(m);
	return r;
}

static bool gens_are(struct om_store *st, unsigned long id, const char *want)
{
	uint64_t *g = NULL;
	size_t n = 0;
	char got[256] = "";
	om_error_t err = NULL;

	if (om_store_list(st, "groups", id, &g, &n, &err) < 0) {
		om_error_release(&err);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llu", i ? " " : "",
			 (unsigned long long)g[i]);
	free(g);
	if (strcmp(got, want) != 0)
		diag("generations: '%s', expected '%s'", got, want);
	return strcmp(got, want) == 0;
}

/* retention.c: fencing tokens, pins, pruning, removal, garbage */
static void test_retention(void)
{
	cleanup_free char *store_path = path_in("ret-store");
	cleanup_free char *src = path_in("ret-src");
	cleanup_free char *dir = NULL;
	struct om_store st;
	om_error_t err = NULL;
	uint64_t gen = 0, tok = 0, fgen = 0;
	char node[64], holder[128];
	struct om_pin *pin = NULL;
	struct om_prune_result pr;
	struct om_gc_item *items = NULL;
	size_t n = 0;
	bool pinned = false;

	make_images(src);
	ok(om_store_open(&st, store_path, true, &err) == 0, "retention: open a store");
	show(&err);
	dir = om_strdup_printf("%s/groups/5", st.path);

	/* fencing */
	ok(write_gen_fenced(&st, 5, src, 0, &gen, &err) == 0 && gen == 1, "an unfenced generation (no cluster)");
	show(&err);
	ok(om_store_fence_get(&st, "groups", 5, &tok, node, sizeof(node), &fgen, &err) == 0 && tok == 0,
	   "no fence yet");
	ok(om_store_fence_raise(&st, "groups", 5, 40, "nodeB", 1, &tok, &err) == 0 && tok == 40,
	   "a takeover raises the fence to 40");
	show(&err);
	ok(om_store_fence_raise(&st, "groups", 5, 30, "nodeC", 1, &tok, &err) == 0 && tok == 40,
	   "a lower token never lowers it");
	ok(om_store_fence_get(&st, "groups", 5, &tok, node, sizeof(node), &fgen, &err) == 0 && tok == 40 &&
	       strcmp(node, "nodeB") == 0 && fgen == 1,
	   "the fence reads back: 40 by nodeB from generation 1");
	ok(write_gen_fenced(&st, 5, src, 39, &gen, &err) < 0 && err && err->status == ESTALE &&
	       msg_has(err, "taken over by node nodeB") && om_error_exit_code(err) == OM_EXIT_CLUSTER,
	   "a commit under token 39 is refused (ESTALE, exit 7), naming the new owner");
	show(&err);
	ok(gens_are(&st, 5, "1") && count_entries(dir, ".tmp") == 0, "... nothing published, nothing left");
	ok(write_gen_fenced(&st, 5, src, 40, &gen, &err) == 0 && gen == 2, "token 40 commits (generation 2)");
	show(&err);
	ok(write_gen_fenced(&st, 5, src, 0, &gen, &err) == 0 && gen == 3, "an unfenced writer is not checked");
	show(&err);

	/* fencing without a cluster: the store's .fence follows the group (group 6) */
	{
		cleanup_free char *dir6 = om_strdup_printf("%s/groups/6", st.path);
		uint64_t f = 0;

		ok(write_gen_local(&st, 6, src, "nodeA", NULL, &f, &gen, &err) == 0 && f == 0 && gen == 1,
		   "local: no fence, node A checkpoints unfenced (generation 1)");
		show(&err);
		ok(om_store_fence_take(&st, "groups", 6, "nodeA", 1, false, &tok, &err) == 0 && tok == 0 &&
		       count_entries(dir6, ".fence") == 0,
		   "local: a plain restore without a fence creates none");
		show(&err);
		ok(om_store_fence_take(&st, "groups", 6, "nodeB", 1, true, &tok, &err) == 0 && tok == 1,
		   "local: node B's --takeover raises the fence to 1");
		show(&err);
		ok(om_store_fence_get(&st, "groups", 6, &tok, node, sizeof(node), &fgen, &err) == 0 && tok == 1 &&
		       strcmp(node, "nodeB") == 0 && fgen == 1,
		   "... it reads back: 1 by nodeB from generation 1");
		ok(write_gen_local(&st, 6, src, "nodeA", NULL, &f, &gen, &err) < 0 && err && err->status == ESTALE &&
		       msg_has(err,
			       "miggroup 6: fenced: node nodeB took the group over (token 1, from generation 1)") &&
		       om_error_exit_code(err) == OM_EXIT_CLUSTER,
		   "local: node A is refused before writing anything (ESTALE, exit 7), naming node B");
		show(&err);
		ok(gens_are(&st, 6, "1") && count_entries(dir6, ".tmp") == 0, "... nothing published, nothing left");
		ok(write_gen_local(&st, 6, src, "nodeB", NULL, &f, &gen, &err) == 0 && f == 1 && gen == 2,
		   "local: node B checkpoints under token 1 (generation 2)");
		show(&err);
		ok(om_store_fence_take(&st, "groups", 6, "nodeB", 2, false, &tok, &err) == 0 && tok == 1,
		   "local: a plain restore on the fence's node leaves it (1)");
		show(&err);
		ok(om_store_fence_take(&st, "groups", 6, "nodeA", 2, false, &tok, &err) == 0 && tok == 2 &&
		       om_store_fence_get(&st, "groups", 6, &tok, node, sizeof(node), &fgen, &err) == 0 && tok == 2 &&
		       strcmp(node, "nodeA") == 0 && fgen == 2,
		   "local: a plain restore on node A moves it there (2 by nodeA from generation 2)");
		show(&err);
		ok(om_store_fence_take(&st, "groups", 6, "nodeA", 2, true, &tok, &err) == 0 && tok == 3,
		   "local: --takeover always raises it (3)");
		show(&err);
		ok(write_gen_local(&st, 6, src, "nodeB", NULL, &f, &gen, &err) < 0 && err && err->status == ESTALE,
		   "local: node B is refused now");
		show(&err);
		ok(write_gen_local(&st, 6, src, "nodeA", "nodeB", &f, &gen, &err) < 0 && f == 3 && err &&
		       err->status == ESTALE && msg_has(err, "taken over by node nodeB (fencing token 4"),
		   "local: a takeover by B during A's checkpoint: A's commit is refused, naming B");
		show(&err);
		ok(gens_are(&st, 6, "1 2") && count_entries(dir6, ".tmp") == 0, "... nothing published, nothing left");
		ok(write_gen_local(&st, 7, src, "nodeA", "nodeB", &f, &gen, &err) < 0 && f == 0 && err &&
		       err->status == ESTALE,
		   "local: also when there was no fence at the start (the manifest's fence is 0)");
		show(&err);
		ok(gens_are(&st, 7, ""), "... nothing published");
		ok(write_gen_fenced(&st, 7, src, 0, &gen, &err) == 0 && gen == 1,
		   "an unfenced writer that is not local is still not checked");
		show(&err);
		ok(om_store_fence_take(&st, "groups", 6, "no/de", 1, true, &tok, &err) < 0 && err &&
		       err->status == EINVAL,
		   "a bad node name is refused");
		show(&err);
	}

	/* pins and pruning */
	ok(write_gen(&st, "groups", 5, src, 1, &gen, &err) == 0 && gen == 4, "generation 4");
	ok(om_gen_pin(&st, "groups", 5, 2, 0, &pin, &err) == 0 && pin != NULL, "pin generation 2");
	show(&err);
	ok(om_gen_pinned(&st, "groups", 5, 2, &pinned, holder, sizeof(holder), &err) == 0 && pinned &&
	       strstr(holder, "process") != NULL,
	   "generation 2 is pinned (by %s)", holder);
	ok(om_store_prune(&st, "groups", 5, 1, 1, &pr, &err) == 0 && pr.n_removed == 2 && pr.removed[0] == 1 &&
	       pr.removed[1] == 3 && pr.n_pinned == 1 && pr.pinned[0] == 2,
	   "prune to 1: removes 1 and 3, keeps the pinned 2");
	show(&err);
	om_prune_result_release(&pr);
	ok(gens_are(&st, 5, "2 4"), "... generations 2 4 remain");
	ok(om_gen_remove(&st, "groups", 5, 2, 1, &err) < 0 && err && err->status == EBUSY &&
	       msg_has(err, "being restored"),
	   "rm of the pinned generation: EBUSY naming its holder");
	show(&err);
	om_gen_unpin(pin);
	ok(om_gen_pinned(&st, "groups", 5, 2, &pinned, NULL, 0, &err) == 0 && !pinned, "unpinned");
	ok(om_gen_pin(&st, "groups", 5, 3, 0, &pin, &err) < 0 && err && err->status == OM_ENOTFOUND,
	   "pinning a pruned generation: not found");
	om_error_release(&err);
	ok(om_gen_remove(&st, "groups", 5, 2, 1, &err) == 0 && gens_are(&st, 5, "4"), "rm generation 2");
	show(&err);
	ok(om_gen_remove(&st, "groups", 5, 2, 1, &err) < 0 && err && err->status == OM_ENOTFOUND,
	   "rm of a missing generation: not found");
	om_error_release(&err);

	/* an expired pin (another node's, whose restore died) does not hold */
	{
		cleanup_free char *p = om_strdup_printf("%s/.pin-4-far-1-0", dir);
		write_file(p, "1000\n", 5);
		ok(om_gen_pinned(&st, "groups", 5, 4, &pinned, NULL, 0, &err) == 0 && !pinned,
		   "an expired pin of another node does not hold");
		free(p);
		p = om_strdup_printf("%s/.pin-4-far-1-1", dir);
		write_file(p, "99999999999999\n", 15);
		ok(om_gen_pinned(&st, "groups", 5, 4, &pinned, holder, sizeof(holder), &err) == 0 && pinned &&
		       strstr(holder, "node far"),
		   "a live pin of another node holds (%s), whatever its PID here", holder);
		unlink(p);
	}

	/* garbage of killed runs */
	{
		cleanup_free char *t = om_strdup_printf("%s/.tmp-%s-999999999-0", dir, om_node_name());
		cleanup_free char *pp = om_strdup_printf("%s/.prune-4-%s-999999999", dir, om_node_name());
		cleanup_free char *empty = om_strdup_printf("%s/gen-9", dir);
		cleanup_free char *other = om_strdup_printf("%s/.tmp-far-12-0", dir);
		struct timeval old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
		mkdir(t, 0700);
		mkdir(other, 0700);
		mkdir(empty, 0700);
		utimes(empty, old);
		ok(om_store_gc(&st, 3600, true, &items, &n, &err) == 0 && n == 3, "gc --dry-run finds 3");
		for (size_t i = 0; i < n; i++)
			diag("  %s: %s", items[i].path, items[i].why);
		om_gc_items_free(items, n);
		ok(access(t, F_OK) == 0, "... and removes nothing");
		/* a pruner killed with generation 4 renamed away: gc puts a pinned one back */
		cleanup_free char *g4 = om_strdup_printf("%s/gen-4", dir);
		ok(rename(g4, pp) == 0, "(a prune killed after its rename)");
		ok(om_store_gc(&st, 3600, false, &items, &n, &err) == 0, "gc");
		om_gc_items_free(items, n);
		ok(access(t, F_OK) < 0 && access(empty, F_OK) < 0 && access(other, F_OK) == 0,
		   "... removes the dead writer's tmp and the old manifest-less gen-9, keeps another node's young tmp");
		ok(access(pp, F_OK) < 0 && gens_are(&st, 5, ""), "... and the half-pruned generation (not pinned)");
	}
	om_store_close(&st);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	uint8_t c;
	if (fd < 0 || pread(fd, &c, 1, off) != 1)
		bail_out("flip byte");
	c ^= 0x55;
	if (pwrite(fd, &c, 1, off) != 1)
		bail_out("flip byte");
	close(fd);
}

/* A generation with a shm set: stored, verified, extracted; a damaged
 * contents file is caught like a damaged image. */
static void test_shm_store(void)
{
	cleanup_free char *store_path = path_in("shmstore");
	cleanup_free char *src = path_in("shmsrc");
	cleanup_free char *shmsrc = path_in("shmsrc/shm");
	cleanup_free char *out = path_in("shmout");
	cleanup_free char *a = NULL, *b = NULL, *stored = NULL;
	struct om_store st;
	struct om_gen_writer *w = NULL;
	Om__Manifest *m = writer_manifest(), *d = NULL;
	Om__TreeEntry *t = NULL;
	Om__ShmSet *set = calloc(1, sizeof(*set));
	om_error_t err = NULL;
	uint64_t gen = 0;
	uint8_t *data = random_bytes(3 << 20, 77);

	make_images(src);
	mkdir(shmsrc, 0700);
	a = om_strdup_printf("%s/sysv-shm-9", shmsrc);
	write_file(a, data, 3 << 20);
	om__shm_set__init(set);
	set->dir = strdup("shm");
	m->shm = set;
	set->segments = calloc(1, sizeof(*set->segments));
	set->segments[0] = calloc(1, sizeof(**set->segments));
	om__shm_segment__init(set->segments[0]);
	set->n_segments = 1;
	set->segments[0]->id = 9;
	set->segments[0]->size = 3 << 20;
	set->segments[0]->file = strdup("sysv-shm-9");
	ok(om_store_open(&st, store_path, true, &err) == 0 && om_gen_begin(&st, "groups", 9, 1, &w, &err) == 0 &&
	       om_manifest_add_tree(m, 4012, &t, &err) == 0 && om_gen_add_tree(w, src, t, 3, 0, &err) == 0 &&
	       om_gen_add_shm(w, shmsrc, set, 3, 0, &err) == 0 && om_gen_commit(w, m, &gen, &err) == 0,
	   "a generation with a shm set is written");
	show(&err);
	om_gen_writer_free(w);
	ok(set->n_files == 1 && m->raw_bytes > (3u << 20), "... its contents file is in the set and the totals");
	ok(om_gen_load_manifest(&st, "groups", 9, 0, &d, &err) == 0 && d->shm &&
	       om_gen_verify(&st, "groups", 9, d, &err) == 0,
	   "... it loads and verifies");
	show(&err);
	ok(d && om_gen_extract_shm(&st, "groups", 9, d, out, &err) == 0, "... the contents extract");
	show(&err);
	b = om_strdup_printf("%s/sysv-shm-9", out);
	ok(same_file(a, b), "... byte for byte");
	stored = om_strdup_printf("%s/groups/9/gen-%llu/shm/sysv-shm-9.zst", st.path, (unsigned long long)gen);
	flip_byte(stored, 100);
	ok(d && om_gen_verify(&st, "groups", 9, d, &err) < 0 && err->status == OM_ECORRUPT &&
	       msg_has(err, "shm/sysv-shm-9"),
	   "... a damaged contents file fails the verification, named");
	om_error_release(&err);
	if (d)
		om_manifest_free(d);
	om_manifest_free_built(m);
	om_store_close(&st);
	free(data);
}

static void test_store(void)
{
	cleanup_free char *store_path = path_in("store");
	cleanup_free char *src = path_in("src");
	cleanup_free char *id_dir = NULL;
	struct om_store st;
	om_error_t err = NULL;
	uint64_t gen = 0, *gens = NULL;
	unsigned long *ids = NULL;
	size_t n = 0;
	Om__Manifest *m = NULL;

	make_images(src);
	ok(om_store_open(&st, store_path, false, &err) < 0 && err->status == ENOENT,
	   "opening a missing store for reading fails with ENOENT");
	om_error_release(&err);
	ok(om_store_open(&st, store_path, true, &err) == 0, "open (create) a store for writing");
	show(&err);
	id_dir = om_strdup_printf("%s/groups/3", st.path);
	ok(count_entries(store_path, ".probe") == 0, "the writability probe is gone");

	ok(om_store_list(&st, "groups", 3, &gens, &n, &err) == 0 && n == 0, "no generation in an empty store");
	free(gens);
	ok(om_gen_load_manifest(&st, "groups", 3, 0, &m, &err) < 0 && err->status == OM_ENOTFOUND &&
	       msg_has(err, "no generation of group 3 in ") && msg_has(err, st.path),
	   "newest of an empty group: not found");
	show(&err);
	ok(om_gen_load_manifest(&st, "pids", 123, 0, &m, &err) < 0 && err->status == OM_ENOTFOUND &&
	       msg_has(err, "no generation of PID 123 in "),
	   "newest of an unknown PID: not found");
	show(&err);
	ok(om_gen_begin(&st, "bogus", 1, 0, &(struct om_gen_writer *){NULL}, &err) < 0 && err->status == EINVAL,
	   "an unknown namespace is refused");
	om_error_release(&err);

	ok(write_gen(&st, "groups", 3, src, 0, &gen, &err) == 0 && gen == 1, "first commit publishes gen-1");
	show(&err);
	ok(write_gen(&st, "groups", 3, src, 2, &gen, &err) == 0 && gen == 2,
	   "second commit (2 zstd workers) publishes gen-2");
	show(&err);

	/* an aborted writer */
	{
		struct om_gen_writer *w = NULL;
		Om__Manifest *am = writer_manifest();
		Om__TreeEntry *t = NULL;
		bool good = om_gen_begin(&st, "groups", 3, 1, &w, &err) == 0 &&
			    om_manifest_add_tree(am, 99, &t, &err) == 0 && om_gen_add_tree(w, src, t, 1, 0, &err) == 0;
		ok(good && count_entries(id_dir, ".tmp-") == 1, "a writer works in one .tmp- directory");

		/* lock contention */
		{
			struct om_gen_writer *w2 = NULL;
			om_error_t e2 = NULL;
			double t0 = om_now();
			ok(om_gen_begin(&st, "groups", 3, 0.2, &w2, &e2) < 0 && w2 == NULL && e2 &&
			       e2->status == EWOULDBLOCK &&
			       msg_has(e2, "group 3 is being checkpointed by another omckpt") && om_now() - t0 >= 0.19,
			   "a second writer waits, then fails with EWOULDBLOCK");
			show(&e2);
			om_error_release(&e2);
		}
		om_gen_writer_free(w);
		om_manifest_free_built(am);
		ok(count_entries(id_dir, ".tmp-") == 0, "freeing an uncommitted writer removes its tmp directory");
		ok(om_store_list(&st, "groups", 3, &gens, &n, &err) == 0 && n == 2 && gens[0] == 1 && gens[1] == 2,
		   "the aborted writer published nothing: generations are [1, 2]");
		free(gens);
		gens = NULL;
	}

	/* a stale tmp directory of a dead writer and an incomplete gen-N */
	{
		cleanup_free char *stale = om_strdup_printf("%s/.tmp-%s-999999999-0", id_dir, om_node_name());
		cleanup_free char *incomplete = om_strdup_printf("%s/gen-9", id_dir);
		cleanup_free char *junk = om_strdup_printf("%s/gen-07x", id_dir);
		mkdir(stale, 0700);
		mkdir(incomplete, 0700);
		mkdir(junk, 0700);
		ok(om_store_list(&st, "groups", 3, &gens, &n, &err) == 0 && n == 2,
		   "dirs without a manifest and dot entries are not listed");
		free(gens);
		gens = NULL;
		int r = write_gen(&st, "groups", 3, src, 0, &gen, &err);
		ok(r == 0 && gen == 10, "a commit takes max(gen-N)+1 even over an incomplete gen-9 (got %llu)",
		   (unsigned long long)gen);
		show(&err);
		ok(access(stale, F_OK) < 0, "a writer removes the tmp directory of a dead writer of this node");
		rmdir(incomplete);
		rmdir(junk);
	}

	ok(write_gen(&st, "pids", 77, src, 0, &gen, &err) == 0 && gen == 1, "commit for a PID publishes pids/77/gen-1");
	show(&err);
	ok(om_store_list_ids(&st, "groups", &ids, &n, &err) == 0 && n == 1 && ids[0] == 3, "list group ids: [3]");
	free(ids);
	ok(om_store_list_ids(&st, "pids", &ids, &n, &err) == 0 && n == 1 && ids[0] == 77, "list PID ids: [77]");
	free(ids);
	ok(om_gen_load_manifest(&st, "pids", 77, 0, &m, &err) == 0 && m->group == 0 && m->has_single_pid &&
	       m->single_pid == 77,
	   "a PID generation records group 0 and single_pid");
	om_manifest_free(m);
	m = NULL;

	ok(om_gen_load_manifest(&st, "groups", 3, 0, &m, &err) == 0 && m->generation == 10 && m->group == 3,
	   "load newest: generation 10 of group 3");
	show(&err);
	om_manifest_free(m);
	m = NULL;
	ok(om_gen_load_manifest(&st, "groups", 3, 5, &m, &err) < 0 && err->status == OM_ENOTFOUND,
	   "load a missing generation: not found");
	show(&err);
	ok(om_gen_load_manifest(&st, "groups", 3, 2, &m, &err) == 0 && m->generation == 2, "load gen 2");
	show(&err);
	if (m == NULL)
		bail_out("cannot continue without a manifest");

	{
		const Om__TreeEntry *t = m->trees[0];
		ok(m->n_trees == 1 && t->n_files == 3 && !strcmp(t->files[0]->name, "core-4012.img") &&
		       !strcmp(t->files[1]->name, "empty.img") && !strcmp(t->files[2]->name, "pages-1.img") &&
		       t->files[2]->size == BIG && t->files[1]->size == 0 && t->files[2]->mode == 0640,
		   "the tree lists the 3 regular files sorted, without dotfiles, dirs or symlinks");
		ok(m->raw_bytes == BIG + 13 && m->stored_bytes == t->files[0]->stored_size + t->files[1]->stored_size +
								      t->files[2]->stored_size,
		   "raw_bytes and stored_bytes are the sums");
		ok(m->node && m->node[0] && m->kernel && m->kernel[0] && m->time_unix_ns > 0,
		   "commit filled node, kernel and time");
	}
	{
		cleanup_free char *zst = om_strdup_printf("%s/gen-2/tree-4012/pages-1.img.zst", id_dir);
		struct stat sb;
		ok(stat(zst, &sb) == 0 && (sb.st_mode & 0777) == 0600, "stored files are 0600");
		cleanup_free char *gd = om_strdup_printf("%s/gen-2", id_dir);
		ok(stat(gd, &sb) == 0 && (sb.st_mode & 0777) == 0700, "generation directories are 0700");
		cleanup_free char *mf = om_strdup_printf("%s/gen-2/manifest.om", id_dir);
		ok(stat(mf, &sb) == 0 && (sb.st_mode & 0777) == 0600, "the manifest is 0600");
	}

	ok(om_gen_verify(&st, "groups", 3, m, &err) == 0, "verify a good generation");
	show(&err);
	{
		cleanup_free char *out = path_in("out");
		cleanup_free char *a = om_strdup_printf("%s/pages-1.img", src);
		cleanup_free char *b = om_strdup_printf("%s/pages-1.img", out);
		cleanup_free char *c = om_strdup_printf("%s/empty.img", src);
		cleanup_free char *d = om_strdup_printf("%s/empty.img", out);
		cleanup_free char *e = om_strdup_printf("%s/core-4012.img", src);
		cleanup_free char *f = om_strdup_printf("%s/core-4012.img", out);
		ok(om_gen_extract_tree(&st, "groups", 3, m, m->trees[0], out, &err) == 0, "extract the tree");
		show(&err);
		ok(same_file(a, b) && same_file(c, d) && same_file(e, f) && count_entries(out, "") == 5,
		   "extracted files (5 MiB random, empty, small) equal the originals");
	}

	/* corruption */
	{
		cleanup_free char *zst = om_strdup_printf("%s/gen-2/tree-4012/pages-1.img.zst", id_dir);
		cleanup_free char *zst2 = om_strdup_printf("%s/gen-2/tree-4012/core-4012.img.zst", id_dir);
		cleanup_free char *moved = om_strdup_printf("%s.moved", zst2);
		cleanup_free char *out2 = path_in("out2");
		cleanup_free char *expect = om_strdup_printf("checksum mismatch in %s", zst);
		struct stat sb;

		stat(zst, &sb);
		flip_byte(zst, sb.st_size / 2);
		ok(om_gen_verify(&st, "groups", 3, m, &err) < 0 && err->status == OM_ECORRUPT && msg_has(err, expect),
		   "verify detects a flipped byte and names the file");
		show(&err);
		ok(om_gen_extract_tree(&st, "groups", 3, m, m->trees[0], out2, &err) < 0 &&
		       err->status == OM_ECORRUPT && msg_has(err, expect),
		   "extract detects it too");
		show(&err);
		ok(access(out2, F_OK) < 0, "a failed extract leaves no output behind");
		flip_byte(zst, sb.st_size / 2);
		ok(om_gen_verify(&st, "groups", 3, m, &err) == 0, "verify passes again once the byte is restored");

		stat(zst2, &sb);
		if (truncate(zst2, sb.st_size - 3) < 0)
			bail_out("truncate");
		ok(om_gen_verify(&st, "groups", 3, m, &err) < 0 && err->status == OM_ECORRUPT && msg_has(err, zst2),
		   "verify detects a truncated .zst and names it");
		show(&err);
		ok(om_gen_extract_tree(&st, "groups", 3, m, m->trees[0], out2, &err) < 0 && msg_has(err, zst2) &&
		       access(out2, F_OK) < 0,
		   "extract refuses the truncated file and removes its output");
		rename(zst2, moved);
		ok(om_gen_verify(&st, "groups", 3, m, &err) < 0 && err->status == OM_ECORRUPT &&
		       msg_has(err, "missing") && msg_has(err, zst2),
		   "verify reports a missing file as corrupt");
		show(&err);
		rename(moved, zst2);

		/* a corrupt manifest */
		cleanup_free char *mf = om_strdup_printf("%s/gen-1/manifest.om", id_dir);
		flip_byte(mf, 20);
		ok(om_gen_load_manifest(&st, "groups", 3, 1, &(Om__Manifest *){NULL}, &err) < 0 &&
		       err->status == OM_ECORRUPT && msg_has(err, mf),
		   "a corrupt manifest gives OM_ECORRUPT naming it");
		show(&err);
		flip_byte(mf, 20);
	}
	om_manifest_free(m);

	/* the stream layer: truncated and garbage zstd */
	{
		cleanup_free char *raw = path_in("raw");
		cleanup_free char *z = path_in("raw.zst");
		uint8_t *data = random_bytes(300000, 7);
		struct om_stream_stats s;
		int in, out;
		bool good;

		memset(data, 'a', 100000); /* partly compressible */
		write_file(raw, data, 300000);
		in = open(raw, O_RDONLY);
		out = open(z, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		good = om_compress_fd(in, out, 5, 0, raw, &s, &err) == 0 && s.raw_bytes == 300000 &&
		       s.stored_bytes < 300000;
		close(in);
		close(out);
		ok(good, "om_compress_fd counts raw and stored bytes");
		in = open(z, O_RDONLY);
		out = open("/dev/null", O_WRONLY);
		ok(om_decompress_fd(in, out, s.sha256, 300000, z, NULL, &err) == 0,
		   "om_decompress_fd with the right sha256");
		close(in);
		if (truncate(z, (off_t)s.stored_bytes - 10) < 0)
			bail_out("truncate");
		in = open(z, O_RDONLY);
		ok(om_decompress_fd(in, out, NULL, 300000, z, NULL, &err) < 0 && err->status == OM_ECORRUPT &&
		       msg_has(err, "truncated zstd frame in"),
		   "a truncated frame is detected without a sha256");
		show(&err);
		close(in);
		write_file(z, data + 200000, 1000);
		in = open(z, O_RDONLY);
		ok(om_decompress_fd(in, out, NULL, 300000, z, NULL, &err) < 0 && err->status == OM_ECORRUPT &&
		       msg_has(err, "corrupt zstd data"),
		   "garbage is detected as corrupt zstd");
		show(&err);
		close(in);
		write_file(z, "", 0);
		in = open(z, O_RDONLY);
		ok(om_decompress_fd(in, out, NULL, 300000, z, NULL, &err) < 0 && err->status == OM_ECORRUPT,
		   "an empty file is not a zstd frame");
		close(in);
		close(out);
		free(data);
	}

	if (getenv("OM_TEST_KEEP"))
		diag("store kept at %s (a generation: %s/gen-2)", st.path, id_dir);
	om_store_close(&st);
	om_error_release(&err);
}

/* ---- bounds on untrusted bytes ---- */

/* A valid manifest of n trees (tree-1 .. tree-n, one file each). */
static Om__Manifest *many_trees(size_t n)
{
	Om__Manifest *m = sample_manifest(false);
	om_error_t err = NULL;

	for (size_t i = 1; i <= n; i++) {
		Om__TreeEntry *t = NULL;
		if (om_manifest_add_tree(m, (int32_t)(100000 + i), &t, &err) < 0)
			bail_out("add tree");
	}
	return m;
}

static bool encode_refuses(const Om__Manifest *m, const char *needle)
{
	uint8_t *b = NULL;
	size_t l = 0;
	om_error_t e = NULL;
	bool good =
	    om_manifest_encode(m, &b, &l, &e) < 0 && b == NULL && e && e->status == EINVAL && msg_has(e, needle);

	if (!good)
		show(&e);
	free(b);
	om_error_release(&e);
	return good;
}

static void test_manifest_bounds(void)
{
	Om__Manifest *m;
	uint8_t *f;
	size_t blen;

	m = many_trees(OM_MAX_TREES - 1); /* with the sample's own tree: exactly the limit */
	f = frame_manifest(m, 1, &blen);
	{
		om_error_t e = NULL;
		Om__Manifest *x = NULL;
		ok(om_manifest_decode(f, blen, &x, &e) == 0 && x->n_trees == OM_MAX_TREES,
		   "a manifest with %u trees (the limit) decodes", OM_MAX_TREES);
		show(&e);
		om_manifest_free(x);
	}
	free(f);
	om_manifest_free_built(m);

	m = many_trees(5000);
	f = frame_manifest(m, 1, &blen);
	ok(decode_fails(f, blen, "5001 trees, at most 4096"),
	   "decode refuses a manifest of 5001 trees, naming the count");
	ok(encode_refuses(m, "5001 trees"), "encode refuses it too (EINVAL)");
	free(f);
	om_manifest_free_built(m);

	/* one process with more threads than a process may have */
	m = sample_manifest(false);
	{
		Om__ProcEntry *p = m->trees[0]->procs[0];
		size_t n = OM_MAX_TIDS_PER_PROC + 1;
		p->tids = realloc(p->tids, n * sizeof(*p->tids));
		for (size_t i = 0; i < n; i++)
			p->tids[i] = (int32_t)(4012 + i);
		p->n_tids = n;
		f = frame_manifest(m, 1, &blen);
		ok(decode_fails(f, blen, "65537 threads, at most 65536"),
		   "decode refuses a process with 65537 threads");
		free(f);
	}
	om_manifest_free_built(m);

	/* processes over all trees */
	m = many_trees(3);
	for (size_t i = 0; i < 3; i++) {
		Om__TreeEntry *t = m->trees[1 + i];
		for (size_t j = 0; j < OM_MAX_PROCS / 3 + 1; j++)
			om_tree_add_proc(t, (int32_t)(1000000 + i * 100000 + j), 1, NULL, 0, NULL, NULL, NULL, NULL);
	}
	f = frame_manifest(m, 1, &blen);
	ok(decode_fails(f, blen, "more than 65536 processes"), "decode refuses more than %u processes in all trees",
	   OM_MAX_PROCS);
	free(f);
	om_manifest_free_built(m);

	/* strings */
	m = sample_manifest(false);
	{
		char *saved = m->node, *big = malloc(OM_MAX_LABEL + 2);
		memset(big, 'n', OM_MAX_LABEL + 1);
		big[OM_MAX_LABEL + 1] = '\0';
		m->node = big;
		f = frame_manifest(m, 1, &blen);
		ok(decode_fails(f, blen, "longer than 255"), "decode refuses a node name of 256 bytes");
		free(f);
		big[OM_MAX_LABEL] = '\0';
		f = frame_manifest(m, 1, &blen);
		{
			om_error_t e = NULL;
			Om__Manifest *x = NULL;
			ok(om_manifest_decode(f, blen, &x, &e) == 0, "but accepts one of 255");
			show(&e);
			om_manifest_free(x);
		}
		free(f);
		m->node = saved;
		free(big);

		Om__ProcEntry *p = m->trees[0]->procs[0];
		saved = p->cmdline;
		big = malloc(OM_MAX_CMDLINE + 2);
		memset(big, 'c', OM_MAX_CMDLINE + 1);
		big[OM_MAX_CMDLINE + 1] = '\0';
		p->cmdline = big;
		f = frame_manifest(m, 1, &blen);
		ok(decode_fails(f, blen, "cmdline longer than 65536"), "decode refuses a cmdline of 64 KiB + 1");
		free(f);
		p->cmdline = saved;
		free(big);
	}
	/* a file that says it is 2 TiB */
	{
		Om__FileEntry *fe = m->trees[0]->files[0];
		uint64_t saved = fe->size;
		fe->size = UINT64_C(2) << 40;
		m->raw_bytes += fe->size - saved;
		f = frame_manifest(m, 1, &blen);
		ok(decode_fails(f, blen, "above"), "decode refuses a file of 2 TiB (above the 1 TiB ceiling)");
		free(f);
		m->raw_bytes -= fe->size - saved;
		fe->size = saved;
	}
	om_manifest_free_built(m);

	/* protobuf-c's own allocations: a payload of 6-byte trees takes some 30
	 * bytes of memory per byte to unpack (measured). The budget (24 per byte)
	 * refuses it while unpacking; without it, it unpacks (35 MB) and only then
	 * fails on the count. The densest valid processes (pid and ppid only,
	 * some 19 per byte) stay within it. */
	{
		static const uint8_t head[] = {0x08, 0x03, 0x10, 0x01, 0x1a, 0x01, 'n',	 0x20, 0x01, 0x2a,
					       0x00, 0x32, 0x00, 0x3a, 0x00, 0x48, 0x00, 0x50, 0x00};
		size_t n = 200000, plen = sizeof(head) + n * 6, hl = sizeof(head);
		uint8_t *payload = malloc(plen + 16);
		memcpy(payload, head, hl);
		for (size_t i = 0; i < n; i++)
			memcpy(payload + hl + 6 * i, "\x42\x04\x08\x01\x12\x00", 6);
		f = frame(payload, plen, 1, &blen);
		ok(decode_fails(f, blen, "bytes of memory to unpack"),
		   "a payload of 200000 6-byte trees (30x its size to unpack) is refused while unpacking");
		free(f);

		/* one tree "a" (root 1) holding 60000 processes of 6 bytes */
		n = 60000;
		size_t inner = 5 + 6 * n, p = hl;
		payload = realloc(payload, hl + 8 + inner);
		payload[p++] = 0x42;
		for (size_t v = inner;; v >>= 7) {
			payload[p++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
			if (v < 0x80)
				break;
		}
		memcpy(payload + p, "\x08\x01\x12\x01\x61", 5);
		p += 5;
		for (size_t i = 0; i < n; i++, p += 6)
			memcpy(payload + p, "\x1a\x04\x08\x02\x10\x01", 6);
		f = frame(payload, p, 1, &blen);
		{
			om_error_t e = NULL;
			Om__Manifest *x = NULL;
			ok(om_manifest_decode(f, blen, &x, &e) == 0 && x->n_trees == 1 && x->trees[0]->n_procs == n,
			   "a manifest of 60000 minimal processes (19x its size to unpack) decodes");
			show(&e);
			om_manifest_free(x);
		}
		free(f);
		free(payload);
	}
}

static int open_tmpfile(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		bail_out("open a test file");
	return fd;
}

static off_t fd_size(int fd)
{
	struct stat sb;
	return fstat(fd, &sb) == 0 ? sb.st_size : -1;
}

/* Compress raw bytes of path src (any size, sparse is fine) into dst; *s gets the stats. */
static void compress_file(const char *src, const char *dst, int window_log, struct om_stream_stats *s)
{
	om_error_t err = NULL;
	int in = open(src, O_RDONLY | O_CLOEXEC), out = open_tmpfile(dst);

	if (in < 0)
		bail_out("open");
	if (window_log == 0) {
		if (om_compress_fd(in, out, 3, 0, src, s, &err) < 0)
			bail_out("compress");
	} else {
		/* a frame that asks for a 2^window_log window (size unknown when it starts) */
		ZSTD_CCtx *c = ZSTD_createCCtx();
		static uint8_t ib[1 << 16], ob[1 << 17];
		ssize_t n;
		ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log);
		while ((n = read(in, ib, sizeof(ib))) >= 0) {
			ZSTD_inBuffer zi = {ib, (size_t)n, 0};
			size_t r;
			do {
				ZSTD_outBuffer zo = {ob, sizeof(ob), 0};
				r = ZSTD_compressStream2(c, &zo, &zi, n ? ZSTD_e_continue : ZSTD_e_end);
				if (ZSTD_isError(r) || om_write_all(out, ob, zo.pos) < 0)
					bail_out("zstd");
			} while (n ? zi.pos < zi.size : r != 0);
			if (n == 0)
				break;
		}
		ZSTD_freeCCtx(c);
		lseek(out, 0, SEEK_SET);
		if (om_hash_fd(out, s->sha256, &s->stored_bytes, dst, &err) < 0)
			bail_out("hash");
	}
	close(in);
	close(out);
	om_error_release(&err);
}

static void sparse_file(const char *path, off_t size)
{
	int fd = open_tmpfile(path);
	if (ftruncate(fd, size) < 0)
		bail_out("ftruncate");
	close(fd);
}

static void test_bombs(void)
{
	cleanup_free char *zeros = path_in("zeros-64m");
	cleanup_free char *bomb = path_in("bomb.zst");
	cleanup_free char *outp = path_in("bomb.out");
	cleanup_free char *wide = path_in("wide.zst");
	cleanup_free char *expect = NULL;
	struct om_stream_stats s = {0}, ws = {0}, got;
	om_error_t err = NULL;
	uint8_t wrong[32];
	int in, out;

	/* 64 MiB of zeros compress to a few KiB: a small file that fills a disk */
	sparse_file(zeros, 64 << 20);
	compress_file(zeros, bomb, 0, &s);
	diag("bomb: %llu stored bytes expand to %llu", (unsigned long long)s.stored_bytes,
	     (unsigned long long)s.raw_bytes);
	expect = om_strdup_printf("%s decompresses to more than 1048576 bytes", bomb);

	in = open(bomb, O_RDONLY | O_CLOEXEC);
	out = open_tmpfile(outp);
	ok(om_decompress_fd(in, out, s.sha256, 1 << 20, bomb, &got, &err) < 0 && err->status == OM_ECORRUPT &&
	       msg_has(err, expect),
	   "a zstd bomb (right checksum) is refused once it passes the recorded size, naming the file");
	show(&err);
	ok(fd_size(out) <= (1 << 20), "... and nothing past the recorded size was written (%lld bytes)",
	   (long long)fd_size(out));
	close(in);
	close(out);

	memcpy(wrong, s.sha256, 32);
	wrong[5] ^= 1;
	expect = (free(expect), om_strdup_printf("checksum mismatch in %s", bomb));
	in = open(bomb, O_RDONLY | O_CLOEXEC);
	out = open_tmpfile(outp);
	ok(om_decompress_fd(in, out, wrong, 1 << 20, bomb, &got, &err) < 0 && err->status == OM_ECORRUPT &&
	       msg_has(err, expect),
	   "the same bomb with a wrong checksum: the checksum mismatch is named");
	show(&err);
	ok(fd_size(out) <= (1 << 20), "... without writing past the recorded size either");
	close(in);
	close(out);

	in = open(bomb, O_RDONLY | O_CLOEXEC);
	out = open_tmpfile(outp);
	ok(om_decompress_fd(in, out, s.sha256, 64 << 20, bomb, &got, &err) == 0 && got.raw_bytes == (64u << 20) &&
	       fd_size(out) == (64 << 20),
	   "with the true size recorded it decompresses (64 MiB, exactly the cap)");
	show(&err);
	close(in);
	close(out);
	unlink(outp);

	/* a frame that demands a 128 MiB window: memory, from a small file */
	compress_file(zeros, wide, 27, &ws);
	in = open(wide, O_RDONLY | O_CLOEXEC);
	out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ok(om_decompress_fd(in, out, ws.sha256, 64 << 20, wide, &got, &err) < 0 && err->status == OM_ECORRUPT &&
	       msg_has(err, wide),
	   "a frame that needs a 128 MiB window is refused (at most 2^%d)", OM_ZSTD_WINDOW_LOG_MAX);
	show(&err);
	close(in);
	close(out);

	/* the same bomb inside a generation whose manifest records the true checksum
	 * and stored size, but a small raw size: extraction refuses and cleans up */
	{
		cleanup_free char *store_path = path_in("bombstore");
		cleanup_free char *src = path_in("src");
		cleanup_free char *dest = path_in("bomb-extract");
		cleanup_free char *zst = NULL;
		cleanup_free char *mf = NULL;
		struct om_store st;
		uint64_t gen = 0;
		Om__Manifest *m = NULL;
		Om__FileEntry *fe = NULL;
		uint8_t *mb = NULL;
		size_t ml = 0;
		cleanup_free char *bytes = NULL;
		size_t blen = 0;

		if (om_store_open(&st, store_path, true, &err) < 0 ||
		    write_gen(&st, "groups", 5, src, 0, &gen, &err) < 0 ||
		    om_gen_load_manifest(&st, "groups", 5, gen, &m, &err) < 0)
			bail_out("bomb store");
		for (size_t j = 0; j < m->trees[0]->n_files; j++)
			if (!strcmp(m->trees[0]->files[j]->name, "pages-1.img"))
				fe = m->trees[0]->files[j];
		if (fe == NULL || om_read_file(bomb, &bytes, &blen, &err) < 0)
			bail_out("bomb manifest");
		zst = om_strdup_printf("%s/groups/5/gen-%llu/%s/pages-1.img.zst", st.path, (unsigned long long)gen,
				       m->trees[0]->dir);
		mf = om_strdup_printf("%s/groups/5/gen-%llu/manifest.om", st.path, (unsigned long long)gen);
		write_file(zst, bytes, blen);
		m->stored_bytes = m->stored_bytes - fe->stored_size + blen;
		fe->stored_size = blen;
		memcpy(fe->sha256.data, s.sha256, 32);
		if (om_manifest_encode(m, &mb, &ml, &err) < 0)
			bail_out("encode bomb manifest");
		write_file(mf, mb, ml);
		free(mb);
		ok(om_gen_verify(&st, "groups", 5, m, &err) == 0,
		   "a bomb whose checksum the manifest records passes verify");
		show(&err);
		expect = (free(expect), om_strdup_printf("%s decompresses to more than %d bytes", zst, BIG));
		{
			int r = om_gen_extract_tree(&st, "groups", 5, m, m->trees[0], dest, &err);
			ok(r < 0 && err->status == OM_ECORRUPT && msg_has(err, expect) &&
			       om_error_exit_code(err) == OM_EXIT_STORE,
			   "extract refuses it past the manifest's size (OM_ECORRUPT: exit 4), naming the file");
		}
		show(&err);
		ok(access(dest, F_OK) < 0, "... and removes what it wrote");
		om_manifest_free(m);
		om_store_close(&st);
	}
	om_error_release(&err);
}

static void test_resolve(void)
{
	cleanup_free char *conf = path_in("omtools.conf");
	cleanup_free char *missing = path_in("no-such.conf");
	static const char text[] = "# omtools configuration\n"
				   "\n"
				   "  keep = 1\n"
				   "store = /nope\n"
				   "   store   =   /srv/om store   # the shared store\n";
	static const char bad[] = "store = /srv\nstorex = /nope\n";
	cleanup_free char *badconf = path_in("bad.conf");
	char *p;

	write_file(conf, text, sizeof(text) - 1);
	setenv("OM_CONFIG", conf, 1);
	setenv("OM_STORE", "/from/env", 1);
	om_error_t err = NULL;
	int rc;
	p = NULL;
	ok(om_store_resolve_path("/explicit", &p, &err) == 0 && p && !strcmp(p, "/explicit"),
	   "resolve: an explicit path wins");
	free(p);
	ok(om_store_resolve_path(NULL, &p, &err) == 0 && p && !strcmp(p, "/from/env"), "resolve: then $OM_STORE");
	free(p);
	unsetenv("OM_STORE");
	rc = om_store_resolve_path(NULL, &p, &err);
	ok(rc == 0 && p && !strcmp(p, "/srv/om store"), "resolve: then `store =` in $OM_CONFIG, the last one (got %s)",
	   p ? p : "NULL");
	free(p);
	write_file(badconf, bad, sizeof(bad) - 1);
	setenv("OM_CONFIG", badconf, 1);
	rc = om_store_resolve_path(NULL, &p, &err);
	ok(rc < 0 && p == NULL && err && strstr(err->msg, "bad.conf:2") && strstr(err->msg, "storex"),
	   "resolve: a settings file with an unknown key is an error naming its line (%s)",
	   err && err->msg ? err->msg : "none");
	om_error_release(&err);
	setenv("OM_CONFIG", missing, 1);
	ok(om_store_resolve_path(NULL, &p, &err) == 0 && p && !strcmp(p, OM_DEFAULT_STORE), "resolve: then %s",
	   OM_DEFAULT_STORE);
	free(p);
	unsetenv("OM_CONFIG");
}

static void test_readonly(void)
{
	cleanup_free char *ro = path_in("ro");
	cleanup_free char *existing = path_in("ro/store");
	cleanup_free char *fresh = path_in("ro/new/store");
	struct om_store st;
	om_error_t err = NULL;

	mkdir(ro, 0700);
	mkdir(existing, 0700);
	if (geteuid() != 0 || mount(ro, ro, NULL, MS_BIND, NULL) < 0) {
		skip(3, "cannot bind-mount (needs root)");
		return;
	}
	if (mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
		umount2(ro, MNT_DETACH);
		skip(3, "cannot remount read-only");
		return;
	}
	ok(om_store_open(&st, existing, true, &err) < 0 && err->status == EROFS && msg_has(err, existing) &&
	       msg_has(err, "not writable"),
	   "a store on a read-only mount is refused for writing");
	show(&err);
	ok(om_store_open(&st, fresh, true, &err) < 0 && err->status == EROFS && msg_has(err, fresh),
	   "creating a store on a read-only mount fails");
	show(&err);
	ok(om_store_open(&st, existing, false, &err) == 0, "but it opens for reading");
	om_store_close(&st);
	if (umount2(ro, 0) < 0)
		umount2(ro, MNT_DETACH);
	om_error_release(&err);
}

int main(void)
{
	om_error_t err = NULL;
	int rc;

	if (mkdtemp(tmproot) == NULL)
		bail_out("mkdtemp");
	unsetenv("OM_STORE");
	test_codec();
	test_shm_codec();
	test_shm_store();
	test_store();
	test_retention();
	test_manifest_bounds();
	test_bombs();
	test_resolve();
	test_readonly();
	rc = done_testing();
	if (getenv("OM_TEST_KEEP"))
		diag("kept %s", tmproot);
	else if (om_rm_rf_at(AT_FDCWD, tmproot, &err) < 0)
		diag("cleanup: %s", err->msg);
	om_error_release(&err);
	return rc;
}
