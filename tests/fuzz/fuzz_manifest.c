/* tests/fuzz/fuzz_manifest.c — libFuzzer target for the manifest codec.
 *
 * Manifests come from shared storage and are untrusted: om_manifest_decode()
 * must reject anything malformed without crashing, leaking or reading out of
 * bounds, whatever it accepts must survive encode + decode unchanged, and
 * every count and length of an accepted manifest must be within the limits of
 * store.h (checked here again, independently of the decoder).
 *
 * An input that starts with the manifest magic is decoded as it is. Any other
 * input is taken as a protobuf payload and framed (header + correct SHA-256)
 * first, so that mutations reach protobuf-c and the semantic checks instead of
 * all dying at the checksum.
 *
 *   ./fuzz_manifest -max_total_time=60 tests/fuzz/corpus
 * Seeds: OM_WRITE_CORPUS=tests/fuzz/corpus tests/unit/test-store
 */
#include "config.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

static bool str_within(const char *s, size_t max)
{
	return s == NULL || strlen(s) <= max;
}

/* abort() unless every documented bound holds (storage/README.md, Bounds). */
static void check_bounds(const Om__Manifest *m, size_t size)
{
	size_t procs = 0, tids = 0, files = 0;

	if (size > OM_MANIFEST_MAX || m->n_trees > OM_MAX_TREES || m->base.n_unknown_fields > OM_MAX_UNKNOWN)
		abort();
	if (!str_within(m->node, OM_MAX_LABEL) || !str_within(m->kernel, OM_MAX_LABEL) ||
	    !str_within(m->criu_version, OM_MAX_LABEL) || !str_within(m->omtools_version, OM_MAX_LABEL) ||
	    !str_within(m->cgroup_backend, OM_MAX_LABEL))
		abort();
	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		if (t->base.n_unknown_fields > OM_MAX_UNKNOWN || !om_store_name_ok(t->dir))
			abort();
		procs += t->n_procs;
		files += t->n_files;
		for (size_t j = 0; j < t->n_procs; j++) {
			const Om__ProcEntry *p = t->procs[j];
			if (p->n_tids > OM_MAX_TIDS_PER_PROC || p->base.n_unknown_fields > OM_MAX_UNKNOWN ||
			    !str_within(p->comm, OM_MAX_COMM) || !str_within(p->cmdline, OM_MAX_CMDLINE))
				abort();
			tids += p->n_tids;
		}
		for (size_t j = 0; j < t->n_files; j++) {
			const Om__FileEntry *f = t->files[j];
			if (f->size > OM_MAX_FILE_BYTES || f->stored_size > OM_MAX_FILE_BYTES || f->sha256.len != 32 ||
			    f->base.n_unknown_fields > OM_MAX_UNKNOWN || !om_store_name_ok(f->name))
				abort();
		}
	}
	if (m->shm) { /* shmig's set: names a restore will create under /dev/shm, counts, sizes */
		const Om__ShmSet *set = m->shm;
		size_t text = 0;
		if (!om_store_name_ok(set->dir) || set->n_segments > OM_MAX_SHM_OBJECTS ||
		    set->n_sems > OM_MAX_SHM_OBJECTS || set->n_queues > OM_MAX_SHM_OBJECTS ||
		    set->n_posix > OM_MAX_SHM_OBJECTS)
			abort();
		files += set->n_files;
		for (size_t j = 0; j < set->n_files; j++)
			if (!om_store_name_ok(set->files[j]->name) || set->files[j]->sha256.len != 32 ||
			    set->files[j]->size > OM_MAX_FILE_BYTES)
				abort();
		for (size_t j = 0; j < set->n_segments; j++)
			if (set->segments[j]->size == 0 || set->segments[j]->size > OM_MAX_FILE_BYTES ||
			    set->segments[j]->id < 0 || !om_store_name_ok(set->segments[j]->file))
				abort();
		for (size_t j = 0; j < set->n_sems; j++) {
			if (set->sems[j]->n_values == 0 || set->sems[j]->n_values > OM_MAX_SEMS)
				abort();
			for (size_t k = 0; k < set->sems[j]->n_values; k++)
				if (set->sems[j]->values[k] > 32767)
					abort();
		}
		for (size_t j = 0; j < set->n_queues; j++) {
			if (set->queues[j]->n_msgs > OM_MAX_MSGS)
				abort();
			for (size_t k = 0; k < set->queues[j]->n_msgs; k++) {
				if (set->queues[j]->msgs[k]->mtype <= 0)
					abort();
				text += set->queues[j]->msgs[k]->text.len;
			}
		}
		for (size_t j = 0; j < set->n_posix; j++)
			if (!om_store_name_ok(set->posix[j]->name) || strchr(set->posix[j]->name, '/') ||
			    !om_store_name_ok(set->posix[j]->file))
				abort();
		if (text > OM_MAX_MSG_BYTES)
			abort();
	}
	if (procs > OM_MAX_PROCS || tids > OM_MAX_TIDS || files > OM_MAX_FILES)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
	om_error_t err = NULL;
	Om__Manifest *m = NULL, *m2 = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (om_manifest_decode(data, size, &m, &err) < 0) {
		if (m != NULL || err == NULL || err->status != OM_ECORRUPT)
			abort(); /* failures are always OM_ECORRUPT, with no manifest */
		om_error_release(&err);
		return;
	}
	/* Accepted: within every bound; it must re-encode, decode again and be stable. */
	check_bounds(m, size);
	if (om_manifest_encode(m, &b1, &l1, &err) < 0)
		abort();
	if (om_manifest_decode(b1, l1, &m2, &err) < 0)
		abort();
	if (om_manifest_encode(m2, &b2, &l2, &err) < 0)
		abort();
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		abort();
	if (m->generation != m2->generation || m->n_trees != m2->n_trees || m->raw_bytes != m2->raw_bytes ||
	    strcmp(m->node, m2->node) != 0)
		abort();
	free(b1);
	free(b2);
	om_manifest_free(m);
	om_manifest_free(m2);
	om_error_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *framed;

	if (size >= 8 && memcmp(data, OM_MANIFEST_MAGIC, 8) == 0) {
		check(data, size);
		return 0;
	}
	if (size > 1u << 20)
		return 0;
	framed = malloc(16 + size + 32);
	if (framed == NULL)
		return 0;
	memcpy(framed, OM_MANIFEST_MAGIC, 8);
	for (int i = 0; i < 4; i++) {
		framed[8 + i] = (uint8_t)(OM_MANIFEST_VERSION >> (8 * i));
		framed[12 + i] = (uint8_t)((uint32_t)size >> (8 * i));
	}
	if (size)
		memcpy(framed + 16, data, size);
	om_sha256(framed, 16 + size, framed + 16 + size);
	check(framed, 16 + size + 32);
	free(framed);
	return 0;
}
