/* cluster/sandbox.c — see sandbox.h.
 *
 * Two halves: the converter (om_json_to_pb, om_pb_to_json), driven by the
 * protobuf-c descriptors, and the sandbox: a persistent child that runs the
 * converter under a libseccomp allow-list and talks to the parent over a
 * socketpair with length-prefixed frames. */
#include "config.h"
#include "sandbox.h"
#include "cluster.pb-c.h"
#include "etcd.pb-c.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the table of known descriptors ---- */

/* lenient: ignore unknown JSON fields (etcd's answers: etcd adds fields);
 * om.* messages refuse them. A nested message follows its top-level one. */
static const struct {
	const ProtobufCMessageDescriptor *d;
	bool lenient;
} known[] = {
    {&om__node_status__descriptor, false},
    {&om__group_owner__descriptor, false},
    {&om__request__descriptor, false},
    {&om__reply__descriptor, false},
    {&om__policy__descriptor, false},
    {&om__history_event__descriptor, false},
    {&om__etcd__range_response__descriptor, true},
    {&om__etcd__put_response__descriptor, true},
    {&om__etcd__delete_range_response__descriptor, true},
    {&om__etcd__txn_response__descriptor, true},
    {&om__etcd__lease_grant_response__descriptor, true},
    {&om__etcd__lease_revoke_response__descriptor, true},
    {&om__etcd__lease_keep_alive_result__descriptor, true},
    {&om__etcd__watch_result__descriptor, true},
    {&om__etcd__error__descriptor, true},
};
#define N_KNOWN (sizeof(known) / sizeof(known[0]))

static int known_index(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < N_KNOWN; i++)
		if (known[i].d == d)
			return (int)i;
	return -1;
}

int om_sandbox_known(const ProtobufCMessageDescriptor *d)
{
	return d != NULL && known_index(d) >= 0;
}

const ProtobufCMessageDescriptor *om_sandbox_descriptor(size_t i)
{
	return i < N_KNOWN ? known[i].d : NULL;
}

/* ---- base64 ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *om_base64_encode(const void *data, size_t len)
{
	const uint8_t *p = data;
	char *out, *o;

	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = len - i;
		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = b64chars[(v >> 18) & 63];
		*o++ = b64chars[(v >> 12) & 63];
		*o++ = left > 1 ? b64chars[(v >> 6) & 63] : '=';
		*o++ = left > 2 ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Standard or URL-safe base64, padded or not; -1 on a bad character or length. */
static int b64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf, *o;
	uint32_t acc = 0;
	int bits = 0;

	while (len > 0 && s[len - 1] == '=' && len % 4 != 1)
		len--;
	if (len % 4 == 1)
		return -1;
	buf = malloc(len / 4 * 3 + 3);
	if (buf == NULL)
		return -2;
	o = buf;
	for (size_t i = 0; i < len; i++) {
		int v = b64val(s[i]);
		if (v < 0) {
			free(buf);
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (uint8_t)(acc >> bits);
		}
	}
	*out_len = (size_t)(o - buf);
	*out = buf;
	return 0;
}

/* ---- JSON to protobuf ---- */

struct conv {
	bool lenient;
	char path[256];
	size_t plen;
	om_error_t *err;
};

static size_t path_push(struct conv *c, const char *name, long idx)
{
	size_t old = c->plen;
	int n;

	if (name != NULL)
		n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, ".%s", name);
	else
		n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%ld]", idx);
	if (n > 0)
		c->plen += (size_t)n < sizeof(c->path) - c->plen ? (size_t)n : sizeof(c->path) - 1 - c->plen;
	return old;
}

static void path_pop(struct conv *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

__attribute__((format(printf, 2, 3))) static int bad(struct conv *c, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return om_make_error(c->err, OM_ECORRUPT, "json: %s: %s", c->path, what);
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default: /* int32, sint32, sfixed32, uint32, fixed32, enum, float */
		return 4;
	}
}

/* An integer as a JSON number or a decimal string: *neg and the magnitude. */
static int get_integer(struct conv *c, json_object *j, bool *neg, uint64_t *mag)
{
	if (json_object_is_type(j, json_type_int)) {
		int64_t i = json_object_get_int64(j);
		*neg = i < 0;
		*mag = i < 0 ? (uint64_t)0 - (uint64_t)i : json_object_get_uint64(j);
		return 0;
	}
	if (json_object_is_type(j, json_type_string)) {
		const char *s = json_object_get_string(j);
		size_t len = (size_t)json_object_get_string_len(j), i = 0;
		uint64_t v = 0;

		*neg = len > 0 && s[0] == '-';
		if (*neg)
			i++;
		if (i == len || len - i > 20)
			return bad(c, "not a decimal integer");
		for (; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return bad(c, "not a decimal integer");
			if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
				return bad(c, "integer out of range");
			v = v * 10 + (uint64_t)(s[i] - '0');
		}
		*mag = v;
		return 0;
	}
	return bad(c, "not an integer");
}

static int set_signed(struct conv *c, json_object *j, int64_t min, int64_t max, int64_t *out)
{
	bool neg;
	uint64_t mag;

	if (get_integer(c, j, &neg, &mag) < 0)
		return -1;
	if (neg) {
		if (mag > (uint64_t)0 - (uint64_t)min)
			return bad(c, "integer out of range");
		*out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	} else {
		if (mag > (uint64_t)max)
			return bad(c, "integer out of range");
		*out = (int64_t)mag;
	}
	return 0;
}

static int set_unsigned(struct conv *c, json_object *j, uint64_t max, uint64_t *out)
{
	bool neg;
	uint64_t mag;

	if (get_integer(c, j, &neg, &mag) < 0)
		return -1;
	if ((neg && mag != 0) || mag > max)
		return bad(c, "integer out of range");
	*out = mag;
	return 0;
}

static int get_double(struct conv *c, json_object *j, double *out)
{
	if (json_object_is_type(j, json_type_double) || json_object_is_type(j, json_type_int)) {
		*out = json_object_get_double(j);
		return 0;
	}
	if (json_object_is_type(j, json_type_string)) {
		const char *s = json_object_get_string(j);
		if (strcmp(s, "NaN") == 0)
			*out = NAN;
		else if (strcmp(s, "Infinity") == 0)
			*out = INFINITY;
		else if (strcmp(s, "-Infinity") == 0)
			*out = -INFINITY;
		else
			return bad(c, "not a number");
		return 0;
	}
	return bad(c, "not a number");
}

static int fill_message(struct conv *c, const ProtobufCMessageDescriptor *d, json_object *obj, ProtobufCMessage **out);

/* One value of field f from j into dst (one element of its C type). */
static int set_value(struct conv *c, const ProtobufCFieldDescriptor *f, json_object *j, void *dst)
{
	int64_t s;
	uint64_t u;
	double dbl;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (set_signed(c, j, INT32_MIN, INT32_MAX, &s) < 0)
			return -1;
		*(int32_t *)dst = (int32_t)s;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (set_signed(c, j, INT64_MIN, INT64_MAX, &s) < 0)
			return -1;
		*(int64_t *)dst = s;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (set_unsigned(c, j, UINT32_MAX, &u) < 0)
			return -1;
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (set_unsigned(c, j, UINT64_MAX, &u) < 0)
			return -1;
		*(uint64_t *)dst = u;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if (get_double(c, j, &dbl) < 0)
			return -1;
		*(double *)dst = dbl;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if (get_double(c, j, &dbl) < 0)
			return -1;
		*(float *)dst = (float)dbl;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_object_is_type(j, json_type_boolean))
			return bad(c, "not a boolean");
		*(protobuf_c_boolean *)dst = json_object_get_boolean(j) ? 1 : 0;
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		const ProtobufCEnumValue *ev;
		if (json_object_is_type(j, json_type_string)) {
			ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_object_get_string(j));
			if (ev == NULL)
				return bad(c, "unknown %s value", ed->short_name);
		} else {
			if (set_signed(c, j, INT32_MIN, INT32_MAX, &s) < 0)
				return -1;
			ev = protobuf_c_enum_descriptor_get_value(ed, (int)s);
			if (ev == NULL)
				return bad(c, "unknown %s value %lld", ed->short_name, (long long)s);
		}
		*(int *)dst = ev->value;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		size_t len;
		char *str;
		if (!json_object_is_type(j, json_type_string))
			return bad(c, "not a string");
		len = (size_t)json_object_get_string_len(j);
		if (len > OM_JSON_MAX_STRING)
			return bad(c, "string longer than %u bytes", OM_JSON_MAX_STRING);
		if (memchr(json_object_get_string(j), '\0', len) != NULL)
			return bad(c, "NUL in a string");
		str = malloc(len + 1);
		if (str == NULL)
			return om_make_error(c->err, ENOMEM, "json: %s", c->path);
		memcpy(str, json_object_get_string(j), len);
		str[len] = '\0';
		*(char **)dst = str;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *bd = dst;
		size_t len;
		int r;
		if (!json_object_is_type(j, json_type_string))
			return bad(c, "not a base64 string");
		len = (size_t)json_object_get_string_len(j);
		if (len > (OM_JSON_MAX_STRING + 2) / 3 * 4)
			return bad(c, "bytes longer than %u", OM_JSON_MAX_STRING);
		r = b64_decode(json_object_get_string(j), len, &bd->data, &bd->len);
		if (r == -2)
			return om_make_error(c->err, ENOMEM, "json: %s", c->path);
		if (r < 0)
			return bad(c, "bad base64");
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		if (!json_object_is_type(j, json_type_object))
			return bad(c, "not an object");
		return fill_message(c, f->descriptor, j, (ProtobufCMessage **)dst);
	}
	return bad(c, "unsupported field type");
}

static void free_message(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

static int fill_field(struct conv *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, json_object *val)
{
	char *base = (char *)m;
	size_t es = elem_size(f->type);

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n, *count = (size_t *)(base + f->quantifier_offset);
		void **arr = (void **)(base + f->offset);
		if (!json_object_is_type(val, json_type_array))
			return bad(c, "not an array");
		n = json_object_array_length(val);
		if (n > OM_JSON_MAX_REPEATED)
			return bad(c, "more than %u elements", OM_JSON_MAX_REPEATED);
		if (n == 0)
			return 0;
		*arr = calloc(n, es);
		if (*arr == NULL)
			return om_make_error(c->err, ENOMEM, "json: %s", c->path);
		for (size_t i = 0; i < n; i++) {
			size_t old = path_push(c, NULL, (long)i);
			json_object *e = json_object_array_get_idx(val, i);
			if (e == NULL || json_object_is_type(e, json_type_null)) {
				bad(c, "null element");
				return -1;
			}
			if (set_value(c, f, e, (char *)*arr + i * es) < 0)
				return -1;
			(*count)++;
			path_pop(c, old);
		}
		return 0;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
		if (*which != 0)
			return bad(c, "a second member of a oneof");
		if (set_value(c, f, val, base + f->offset) < 0)
			return -1;
		*which = f->id;
		return 0;
	}
	if (set_value(c, f, val, base + f->offset) < 0)
		return -1;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0)
		*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	return 0;
}

static int fill_message(struct conv *c, const ProtobufCMessageDescriptor *d, json_object *obj, ProtobufCMessage **out)
{
	ProtobufCMessage *m;
	cleanup_free uint8_t *seen = NULL;

	m = calloc(1, d->sizeof_message);
	seen = calloc(d->n_fields ? d->n_fields : 1, 1);
	if (m == NULL || seen == NULL) {
		free(m);
		return om_make_error(c->err, ENOMEM, "json: %s", c->path);
	}
	d->message_init(m);
	json_object_object_foreach(obj, key, val)
	{
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
		size_t old;
		if (f == NULL) {
			if (c->lenient)
				continue;
			old = path_push(c, key, 0);
			bad(c, "unknown field");
			path_pop(c, old);
			free_message(m);
			return -1;
		}
		if (val == NULL || json_object_is_type(val, json_type_null))
			continue; /* null: absent */
		old = path_push(c, f->name, 0);
		if (fill_field(c, m, f, val) < 0) {
			path_pop(c, old);
			free_message(m);
			return -1;
		}
		path_pop(c, old);
		seen[f - d->fields] = 1;
	}
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i]) {
			size_t old = path_push(c, d->fields[i].name, 0);
			bad(c, "missing required field");
			path_pop(c, old);
			free_message(m);
			return -1;
		}
	*out = m;
	return 0;
}

/* Objects and arrays in a document (json-c spends ~700 bytes and ~6 µs on an
 * empty object: 4 MiB of "{}," would take a GiB and seconds). */
static size_t count_containers(const char *s, size_t len)
{
	bool in_str = false;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"')
			in_str = true;
		else if (ch == '{' || ch == '[')
			n++;
	}
	return n;
}

static int convert(const ProtobufCMessageDescriptor *d, bool lenient, const char *json, size_t len,
		   ProtobufCMessage **out, om_error_t *err)
{
	struct conv c = {.lenient = lenient, .err = err};
	struct json_tokener *tok;
	json_object *root;
	enum json_tokener_error jerr;
	cleanup_free char *buf = NULL;
	size_t end;
	int r;

	*out = NULL;
	c.plen = (size_t)snprintf(c.path, sizeof(c.path), "%s", d->short_name);
	if (c.plen >= sizeof(c.path))
		c.plen = sizeof(c.path) - 1;
	if (len > OM_JSON_MAX)
		return om_make_error(err, OM_ECORRUPT, "json: %s: document of %zu bytes, more than %u", d->short_name,
				     len, OM_JSON_MAX);
	if (memchr(json, '\0', len) != NULL)
		return om_make_error(err, OM_ECORRUPT, "json: %s: NUL byte in the document", d->short_name);
	if (count_containers(json, len) > OM_JSON_MAX_CONTAINERS)
		return om_make_error(err, OM_ECORRUPT, "json: %s: more than %u objects and arrays", d->short_name,
				     OM_JSON_MAX_CONTAINERS);
	buf = malloc(len + 1);
	if (buf == NULL)
		return om_make_error(err, ENOMEM, "json: %s", d->short_name);
	memcpy(buf, json, len);
	buf[len] = '\0';
	tok = json_tokener_new_ex(OM_JSON_MAX_DEPTH);
	if (tok == NULL)
		return om_make_error(err, ENOMEM, "json: %s", d->short_name);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, buf, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (root == NULL || jerr != json_tokener_success) {
		json_object_put(root);
		return om_make_error(err, OM_ECORRUPT, "json: %s: %s at byte %zu", d->short_name,
				     jerr == json_tokener_success ? "empty document" : json_tokener_error_desc(jerr),
				     end);
	}
	for (; end < len; end++)
		if (!strchr(" \t\r\n", buf[end])) {
			json_object_put(root);
			return om_make_error(err, OM_ECORRUPT, "json: %s: data after the document at byte %zu",
					     d->short_name, end);
		}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return om_make_error(err, OM_ECORRUPT, "json: %s: not an object", d->short_name);
	}
	r = fill_message(&c, d, root, out);
	json_object_put(root);
	return r;
}

int om_json_to_pb(const ProtobufCMessageDescriptor *d, const char *json, size_t len, ProtobufCMessage **out,
		  om_error_t *err)
{
	int i = d ? known_index(d) : -1;

	if (out)
		*out = NULL;
	if (i < 0 || out == NULL || (json == NULL && len > 0))
		return om_make_error(err, EINVAL, "json: %s is not a known message", d ? d->name : "(null)");
	return convert(d, known[i].lenient, json ? json : "", len, out, err);
}

/* ---- protobuf to JSON ---- */

static json_object *value_to_json(const ProtobufCFieldDescriptor *f, const void *src);

static json_object *message_to_json(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		json_object *v;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(char *const *)(base + f->offset);
			size_t es = elem_size(f->type);
			if (n == 0)
				continue;
			v = json_object_new_array_ext((int)n);
			if (v == NULL)
				goto fail;
			for (size_t k = 0; k < n; k++) {
				json_object *e = value_to_json(f, arr + k * es);
				if (e == NULL || json_object_array_add(v, e) < 0) {
					json_object_put(e);
					json_object_put(v);
					goto fail;
				}
			}
		} else {
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
					continue;
			} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
				   !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
			if ((f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) &&
			    *(void *const *)(base + f->offset) == NULL)
				continue;
			v = value_to_json(f, base + f->offset);
			if (v == NULL)
				goto fail;
		}
		if (json_object_object_add(o, f->name, v) < 0) {
			json_object_put(v);
			goto fail;
		}
	}
	return o;
fail:
	json_object_put(o);
	return NULL;
}

static json_object *double_to_json(double v)
{
	if (isnan(v))
		return json_object_new_string("NaN");
	if (isinf(v))
		return json_object_new_string(v > 0 ? "Infinity" : "-Infinity");
	return json_object_new_double(v);
}

static json_object *value_to_json(const ProtobufCFieldDescriptor *f, const void *src)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_object_new_int64(*(const int32_t *)src);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_object_new_int64(*(const int64_t *)src);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_object_new_int64(*(const uint32_t *)src);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return json_object_new_uint64(*(const uint64_t *)src);
	case PROTOBUF_C_TYPE_DOUBLE:
		return double_to_json(*(const double *)src);
	case PROTOBUF_C_TYPE_FLOAT:
		return double_to_json(*(const float *)src);
	case PROTOBUF_C_TYPE_BOOL:
		return json_object_new_boolean(*(const protobuf_c_boolean *)src ? 1 : 0);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)src);
		return ev ? json_object_new_string(ev->name) : json_object_new_int64(*(const int *)src);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)src;
		return json_object_new_string(s ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bd = src;
		cleanup_free char *b = om_base64_encode(bd->data, bd->len);
		return b ? json_object_new_string(b) : NULL;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)src;
		return sub ? message_to_json(sub) : json_object_new_object();
	}
	}
	return NULL;
}

char *om_pb_to_json(const ProtobufCMessage *m)
{
	json_object *o;
	const char *s;
	char *r = NULL;

	if (m == NULL)
		return NULL;
	o = message_to_json(m);
	if (o == NULL)
		return NULL;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s != NULL)
		r = strdup(s);
	json_object_put(o);
	return r;
}

/* ---- the sandbox ---- */

#define REQ_MAGIC 0x6f6d6a71u /* "omjq" */
#define REP_MAGIC 0x6f6d6a72u
#define SELFTEST_MAGIC 0x6f6d6a73u /* the child makes a forbidden system call */
#define REPLY_MAX (2 * (size_t)OM_JSON_MAX + 4096)
#define ERRMSG_MAX 4096u
#define CHILD_FD 3
#define CHILD_DATA_MAX ((rlim_t)1 << 30) /* RLIMIT_DATA of the child */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OM_HAS_ASAN 1
#endif
#endif
#ifndef OM_HAS_ASAN
#define OM_HAS_ASAN 0
#endif
#define PARSE_TIMEOUT_MS 10000 /* one document; a child looping longer is killed */

struct req_hdr {
	uint32_t magic, index, len;
};
struct rep_hdr {
	uint32_t magic;
	int32_t status; /* 0: len bytes of packed message; else an errno/OM_E* and len bytes of message */
	uint32_t len;
};

struct om_sandbox {
	pid_t pid;
	int fd;
	pid_t owner; /* the process that started it (after a fork, the other one leaves the child alone) */
};

static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (ssize_t)got;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int write_full(int fd, const void *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

static int load_filter(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	const struct scmp_arg_cmp on_socket = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = CHILD_FD, .datum_b = 0};
	const struct scmp_arg_cmp no_exec = {.arg = 2, .op = SCMP_CMP_MASKED_EQ, .datum_a = PROT_EXEC, .datum_b = 0};
	int r = 0;

	if (ctx == NULL)
		return -1;
	/* I/O on the socket only */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(read), 1, on_socket);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, on_socket);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit), 0);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
	/* malloc: memory, never executable */
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(brk), 0);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, no_exec);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(munmap), 0);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mremap), 0);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(madvise), 0);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigreturn), 0);
	r |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(futex), 0);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

static void close_other_fds(void)
{
	struct rlimit rl;
	long max = 65536;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 0, CHILD_FD - 1, 0) == 0 && syscall(SYS_close_range, CHILD_FD + 1, ~0U, 0) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (long fd = 0; fd < max; fd++)
		if (fd != CHILD_FD)
			close((int)fd);
}

__attribute__((noreturn)) static void child_main(int fd, pid_t parent)
{
	json_object *warm;
	sigset_t all;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	if (fd != CHILD_FD) {
		if (dup2(fd, CHILD_FD) < 0)
			_exit(1);
	}
	close_other_fds();
	/* no handler of the parent's runs here: every signal blocked (SIGKILL and
	 * SIGSTOP cannot be; a SIGPIPE becomes EPIPE) */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
#if !defined(__SANITIZE_ADDRESS__) && !OM_HAS_ASAN
	{ /* a bound on what a hostile document can make json-c allocate (ASAN's shadow would not fit) */
		struct rlimit rl = {CHILD_DATA_MAX, CHILD_DATA_MAX};
		setrlimit(RLIMIT_DATA, &rl);
	}
#endif
	/* json-c seeds its hash from the kernel on its first object: do it now */
	warm = json_tokener_parse("{\"a\":[1,1.5,\"x\",true,null,{}]}");
	json_object_put(warm);
	free(malloc(1 << 20));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || load_filter() < 0)
		_exit(2);
	for (;;) {
		struct req_hdr h;
		struct rep_hdr rep = {.magic = REP_MAGIC};
		char *buf;
		ProtobufCMessage *m = NULL;
		om_error_t err = NULL;
		uint8_t *packed = NULL;

		if (read_full(CHILD_FD, &h, sizeof(h)) != (ssize_t)sizeof(h))
			_exit(0);
		if (h.magic == SELFTEST_MAGIC) {
			syscall(SYS_getpid); /* not in the allow-list: SIGSYS */
			_exit(6);
		}
		if (h.magic != REQ_MAGIC || h.index >= N_KNOWN || h.len > OM_JSON_MAX)
			_exit(3);
		buf = malloc(h.len ? h.len : 1);
		if (buf == NULL || read_full(CHILD_FD, buf, h.len) != (ssize_t)h.len)
			_exit(4);
		if (convert(known[h.index].d, known[h.index].lenient, buf, h.len, &m, &err) < 0) {
			const char *msg = err && err->msg ? err->msg : "parse failed";
			rep.status = err && err->status ? err->status : OM_ECORRUPT;
			rep.len = (uint32_t)strnlen(msg, ERRMSG_MAX);
			if (write_full(CHILD_FD, &rep, sizeof(rep)) < 0 || write_full(CHILD_FD, msg, rep.len) < 0)
				_exit(5);
		} else {
			size_t n = protobuf_c_message_get_packed_size(m);
			packed = n <= REPLY_MAX ? malloc(n ? n : 1) : NULL;
			if (packed == NULL) {
				static const char msg[] = "packed message too large or out of memory";
				rep.status = ENOMEM;
				rep.len = sizeof(msg) - 1;
				if (write_full(CHILD_FD, &rep, sizeof(rep)) < 0 ||
				    write_full(CHILD_FD, msg, rep.len) < 0)
					_exit(5);
			} else {
				protobuf_c_message_pack(m, packed);
				rep.len = (uint32_t)n;
				if (write_full(CHILD_FD, &rep, sizeof(rep)) < 0 || write_full(CHILD_FD, packed, n) < 0)
					_exit(5);
			}
		}
		free(packed);
		free_message(m);
		om_error_release(&err);
		free(buf);
	}
}

static int spawn(struct om_sandbox *sb, om_error_t *err)
{
	int sv[2];
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return om_make_error(err, errno, "sandbox: socketpair");
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return om_make_error(err, e, "sandbox: fork");
	}
	if (pid == 0)
		child_main(sv[1], parent);
	close(sv[1]);
	sb->fd = sv[0];
	sb->pid = pid;
	return 0;
}

/* Kill (if alive) and reap the child; describe how it ended into why. */
static int reap_within(struct om_sandbox *sb, char *why, size_t why_len, int wait_ms);

static int reap(struct om_sandbox *sb, char *why, size_t why_len)
{
	return reap_within(sb, why, why_len, 100);
}

static int reap_within(struct om_sandbox *sb, char *why, size_t why_len, int wait_ms)
{
	int st = 0, sig = 0;
	pid_t r = 0;

	if (sb->fd >= 0)
		close(sb->fd);
	sb->fd = -1;
	if (sb->pid <= 0)
		return 0;
	/* a child that closed its end is exiting: give it wait_ms to say how */
	for (int i = 0; i < wait_ms / 5 && (r = waitpid(sb->pid, &st, WNOHANG)) == 0; i++) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (r == 0) {
		kill(sb->pid, SIGKILL);
		r = waitpid(sb->pid, &st, 0);
	}
	if (why != NULL) {
		if (r == sb->pid && WIFSIGNALED(st))
			snprintf(why, why_len, "killed by signal %d%s", WTERMSIG(st),
				 WTERMSIG(st) == SIGSYS ? " (a system call outside the allow-list)" : "");
		else if (r == sb->pid && WIFEXITED(st))
			snprintf(why, why_len, "exited with status %d", WEXITSTATUS(st));
		else
			snprintf(why, why_len, "gone");
	}
	if (r == sb->pid && WIFSIGNALED(st))
		sig = WTERMSIG(st);
	sb->pid = 0;
	return sig;
}

int om_sandbox_start(struct om_sandbox **out, om_error_t *err)
{
	struct om_sandbox *sb = calloc(1, sizeof(*sb));

	*out = NULL;
	if (sb == NULL)
		return om_make_error(err, ENOMEM, "sandbox");
	sb->fd = -1;
	sb->owner = getpid();
	if (spawn(sb, err) < 0) {
		free(sb);
		return -1;
	}
	*out = sb;
	return 0;
}

void om_sandbox_stop(struct om_sandbox *sb)
{
	if (sb == NULL)
		return;
	if (sb->owner != getpid()) { /* a forked copy: the child is not ours */
		if (sb->fd >= 0)
			close(sb->fd);
		free(sb);
		return;
	}
	if (sb->pid > 0)
		kill(sb->pid, SIGKILL);
	reap(sb, NULL, 0);
	free(sb);
}

int om_sandbox_pid(const struct om_sandbox *sb)
{
	return sb ? (int)sb->pid : 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read exactly len bytes before the deadline: 0, or -1 with errno (ETIMEDOUT, EPIPE at EOF). */
static int recv_full(int fd, void *buf, size_t len, int64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/* The child failed us: reap it (the next call starts another) and fail. */
static int child_failed(struct om_sandbox *sb, int status, const char *what, om_error_t *err)
{
	char why[128];

	reap(sb, why, sizeof(why));
	return om_make_error(err, status, "sandboxed parser: %s (child %s)", what, why);
}

int om_sandbox_parse(struct om_sandbox *sb, const ProtobufCMessageDescriptor *d, const char *json, size_t len,
		     ProtobufCMessage **out, om_error_t *err)
{
	struct req_hdr h = {.magic = REQ_MAGIC};
	struct rep_hdr rep;
	cleanup_free uint8_t *payload = NULL;
	int64_t deadline;
	int idx;

	*out = NULL;
	idx = d ? known_index(d) : -1;
	if (sb == NULL || idx < 0 || (json == NULL && len > 0))
		return om_make_error(err, EINVAL, "sandboxed parser: %s is not a known message",
				     d ? d->name : "(null)");
	if (sb->owner != getpid())
		return om_make_error(err, EINVAL, "sandboxed parser: started by PID %d, used after a fork",
				     (int)sb->owner);
	if (len > OM_JSON_MAX)
		return om_make_error(err, OM_ECORRUPT, "json: %s: document of %zu bytes, more than %u", d->short_name,
				     len, OM_JSON_MAX);
	if (sb->pid > 0) { /* the child never speaks first: readable or hung up means it died since */
		struct pollfd p = {.fd = sb->fd, .events = POLLIN};
		if (poll(&p, 1, 0) != 0)
			reap(sb, NULL, 0);
	}
	if (sb->pid <= 0 && spawn(sb, err) < 0)
		return om_error_wrap(err, "sandboxed parser");
	h.index = (uint32_t)idx;
	h.len = (uint32_t)len;
	if (send_all(sb->fd, &h, sizeof(h)) < 0 || (len > 0 && send_all(sb->fd, json, len) < 0))
		return child_failed(sb, EPIPE, "cannot send", err);
	deadline = now_ms() + PARSE_TIMEOUT_MS;
	if (recv_full(sb->fd, &rep, sizeof(rep), deadline) < 0)
		return child_failed(sb, errno == ETIMEDOUT ? ETIMEDOUT : EPIPE,
				    errno == ETIMEDOUT ? "no answer in time" : "no answer", err);
	if (rep.magic != REP_MAGIC || (rep.status == 0 && rep.len > REPLY_MAX) ||
	    (rep.status != 0 && rep.len > ERRMSG_MAX))
		return child_failed(sb, OM_ECORRUPT, "a garbled answer", err);
	payload = malloc(rep.len ? rep.len : 1);
	if (payload == NULL)
		return om_make_error(err, ENOMEM, "sandboxed parser");
	if (rep.len > 0 && recv_full(sb->fd, payload, rep.len, deadline) < 0)
		return child_failed(sb, EPIPE, "a truncated answer", err);
	if (rep.status != 0)
		return om_make_error(err, rep.status, "%.*s", (int)rep.len, (const char *)payload);
	*out = protobuf_c_message_unpack(d, NULL, rep.len, payload);
	if (*out == NULL || (*out)->descriptor != d || !protobuf_c_message_check(*out)) {
		free_message(*out);
		*out = NULL;
		return child_failed(sb, OM_ECORRUPT, "an answer that does not unpack", err);
	}
	return 0;
}

int om_sandbox_selftest(struct om_sandbox *sb, om_error_t *err)
{
	struct req_hdr h = {.magic = SELFTEST_MAGIC};
	struct rep_hdr rep;
	char why[128];
	int sig;

	if (sb == NULL || sb->owner != getpid())
		return om_make_error(err, EINVAL, "sandbox self-test: no sandbox of this process");
	if (sb->pid <= 0 && spawn(sb, err) < 0)
		return om_error_wrap(err, "sandbox self-test");
	/* a loaded machine (a sanitizer build under a parallel test suite) may
	 * take seconds to schedule the child: wait for its death, bounded */
	if (send_all(sb->fd, &h, sizeof(h)) == 0)
		recv_full(sb->fd, &rep, sizeof(rep), now_ms() + 10000); /* EOF expected */
	sig = reap_within(sb, why, sizeof(why), 10000);
	if (sig != SIGSYS)
		return om_make_error(err, EPERM,
				     "sandbox self-test: a forbidden system call did not kill the child (%s)", why);
	return 0;
}
