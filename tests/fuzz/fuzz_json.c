/* tests/fuzz/fuzz_json.c — libFuzzer target for the JSON -> protobuf-c
 * converter of the sandboxed parser (cluster/sandbox.c).
 *
 * The first byte picks a message from the sandbox's table of known
 * descriptors (modulo its size); the rest is the JSON document. The
 * converter runs here, in process (no child, no seccomp), so that the
 * fuzzer sees its coverage. It must refuse anything malformed with
 * OM_ECORRUPT (and no message) without crashing, leaking or reading out of
 * bounds; whatever it accepts must survive om_pb_to_json + om_json_to_pb
 * with the same packed bytes.
 *
 *   ./fuzz_json -max_total_time=60 ../tests/fuzz/corpus-json
 */
#include "config.h"
#include "sandbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *packed(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *b;

	*len = protobuf_c_message_get_packed_size(m);
	b = malloc(*len ? *len : 1);
	if (b == NULL)
		abort();
	protobuf_c_message_pack(m, b);
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m = NULL, *m2 = NULL;
	om_error_t err = NULL;
	size_t n = 0, l1, l2;
	uint8_t *b1, *b2;
	char *json;

	if (size < 1)
		return 0;
	while (om_sandbox_descriptor(n) != NULL)
		n++;
	d = om_sandbox_descriptor(data[0] % n);
	if (om_json_to_pb(d, (const char *)data + 1, size - 1, &m, &err) < 0) {
		if (m != NULL || err == NULL || (err->status != OM_ECORRUPT && err->status != ENOMEM))
			abort(); /* failures are OM_ECORRUPT, with no message */
		om_error_release(&err);
		return 0;
	}
	if (m == NULL || m->descriptor != d || !protobuf_c_message_check(m))
		abort();
	json = om_pb_to_json(m);
	if (json == NULL)
		abort();
	if (om_json_to_pb(d, json, strlen(json), &m2, &err) < 0)
		abort(); /* what we write, we read */
	b1 = packed(m, &l1);
	b2 = packed(m2, &l2);
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		abort();
	free(b1);
	free(b2);
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);
	protobuf_c_message_free_unpacked(m2, NULL);
	return 0;
}
