/* tests/fuzz/fuzz_intent.c — libFuzzer target for the intent codec.
 *
 * An intent file (/run/omtools/intent-<lock>.om) decides whether recovery
 * kills or thaws a group: om_intent_decode() must reject anything malformed
 * as OM_ECORRUPT without crashing, leaking or reading out of bounds, and
 * whatever it accepts must survive encode + decode unchanged.
 *
 * An input that starts with the intent magic is decoded as it is; any other
 * input is framed (magic, version, length) first, so that mutations reach
 * protobuf-c and the checks on kind, id and paths.
 *
 *   ./fuzz_intent -max_total_time=60
 */
#include "config.h"
#include "lock.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size)
{
	om_error_t err = NULL;
	Om__Intent *in = NULL, *in2 = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;

	if (om_intent_decode(data, size, &in, &err) < 0) {
		if (in != NULL || err == NULL || err->status != OM_ECORRUPT)
			abort(); /* failures are always OM_ECORRUPT, with no intent */
		om_error_release(&err);
		return;
	}
	if (om_intent_encode(in, &b1, &l1, &err) < 0 || om_intent_decode(b1, l1, &in2, &err) < 0 ||
	    om_intent_encode(in2, &b2, &l2, &err) < 0)
		abort();
	if (l1 != l2 || memcmp(b1, b2, l1) != 0 || in->id != in2->id || in->n_procs != in2->n_procs ||
	    strcmp(in->tmp_dir, in2->tmp_dir) != 0)
		abort();
	free(b1);
	free(b2);
	om_intent_free(in);
	om_intent_free(in2);
	om_error_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *framed;

	if (size >= 8 && memcmp(data, OM_INTENT_MAGIC, 8) == 0) {
		check(data, size);
		return 0;
	}
	if (size > 1u << 20)
		return 0;
	framed = malloc(16 + size);
	if (framed == NULL)
		return 0;
	memcpy(framed, OM_INTENT_MAGIC, 8);
	for (int i = 0; i < 4; i++) {
		framed[8 + i] = (uint8_t)(OM_INTENT_VERSION >> (8 * i));
		framed[12 + i] = (uint8_t)((uint32_t)size >> (8 * i));
	}
	if (size)
		memcpy(framed + 16, data, size);
	check(framed, 16 + size);
	free(framed);
	return 0;
}
