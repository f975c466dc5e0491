/* cluster/sandbox.h — bytes from etcd or the network are parsed here, in a
 * child process under a strict libseccomp allow-list (read, write, exit,
 * memory), never in the process that holds the node's keys and runs CRIU.
 *
 * The parser turns JSON into a protobuf-c message of a known descriptor
 * (field names are JSON names; 64-bit integers may be strings; bytes are
 * base64; unknown fields are refused; every size is bounded). The child
 * sends the message back packed, and the parent unpacks it with protobuf-c.
 * If the child dies (a parser bug caught by seccomp), the call fails and the
 * next call starts a new child. */
#ifndef OM_SANDBOX_H
#define OM_SANDBOX_H

#include "error.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#define OM_JSON_MAX (4u << 20) /* the largest JSON document accepted */

struct om_sandbox;
int om_sandbox_start(struct om_sandbox **out, om_error_t *err);
void om_sandbox_stop(struct om_sandbox *sb); /* NULL is fine */

/* Parse json (len bytes, untrusted) into a new message of d, in the child.
 * d must be one of the descriptors the sandbox knows (om_sandbox_known()).
 * Free *out with protobuf_c_message_free_unpacked(*out, NULL). Errors:
 * OM_ECORRUPT naming the first bad field. */
int om_sandbox_parse(struct om_sandbox *sb, const ProtobufCMessageDescriptor *d, const char *json, size_t len,
		     ProtobufCMessage **out, om_error_t *err);
int om_sandbox_known(const ProtobufCMessageDescriptor *d);

/* The converter itself (runs in the child; the fuzz target calls it directly). */
int om_json_to_pb(const ProtobufCMessageDescriptor *d, const char *json, size_t len, ProtobufCMessage **out,
		  om_error_t *err);
/* Our own messages to JSON (in the parent: encoding trusted data). NULL on ENOMEM. */
char *om_pb_to_json(const ProtobufCMessage *m);

/* Added to the contract: */
/* The child's PID (0: none running); a test hook (kill it, the next call starts another). */
int om_sandbox_pid(const struct om_sandbox *sb);
/* The table of known descriptors, for the fuzzer: NULL past the end. */
const ProtobufCMessageDescriptor *om_sandbox_descriptor(size_t i);
/* Standard base64 (with padding) of len bytes, NUL-terminated; NULL on ENOMEM. */
char *om_base64_encode(const void *data, size_t len);
/* Bounds of the converter. */
#define OM_JSON_MAX_DEPTH 32
#define OM_JSON_MAX_REPEATED 100000
#define OM_JSON_MAX_STRING (1u << 20)

#endif
