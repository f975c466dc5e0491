/* tests/fuzz/fuzz_manifest.c — libFuzzer target for the manifest codec.
 *
 * Manifests come from shared storage and are untrusted: om_manifest_decode()
 * must reject anything malformed without crashing, leaking or reading out of
 * bounds, and whatever it accepts must survive encode + decode unchanged.
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
	/* Accepted: it must re-encode, decode again and be stable. */
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
