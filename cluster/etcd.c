/* cluster/etcd.c — see etcd.h.
 *
 * Requests are JSON built here (trusted data); every answer goes through
 * the sandboxed parser (sandbox.h) into an om.etcd.* message (proto/etcd.proto).
 * One curl easy handle per client for the unary calls; a watch uses its own
 * handle in a multi so that it can wait on cancel_fd too.
 *
 * A client belongs to the process that opened it: after fork() the child
 * must open its own (calls from another PID fail with EINVAL; closing there
 * frees memory only, leaving the parent's sandboxed parser alone). */
#include "config.h"
#include "etcd.h"
#include "etcd.pb-c.h"
#include "sandbox.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENDPOINTS 16

struct om_etcd {
	char *eps[MAX_ENDPOINTS];
	size_t n_eps, cur;
	char *ca, *cert, *key;
	long timeout_ms;
	CURL *curl;
	struct curl_slist *hdrs;
	struct om_sandbox *sb;
	pid_t owner;
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

__attribute__((format(printf, 3, 4))) static int cluster_error(om_error_t *err, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	om_make_error(err, status, "%s", msg);
	return om_error_set_exit(err, OM_EXIT_CLUSTER);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void om_etcd_close(struct om_etcd *e)
{
	if (e == NULL)
		return;
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->hdrs);
	om_sandbox_stop(e->sb);
	for (size_t i = 0; i < e->n_eps; i++)
		free(e->eps[i]);
	free(e->ca);
	free(e->cert);
	free(e->key);
	free(e);
}

static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL || *s == '\0')
		return 0;
	*out = strdup(s);
	return *out ? 0 : -1;
}

int om_etcd_open(const struct om_etcd_conf *conf, struct om_etcd **out, om_error_t *err)
{
	struct om_etcd *e;
	const char *p;

	*out = NULL;
	if (conf == NULL || conf->endpoints == NULL || *conf->endpoints == '\0')
		return cluster_error(err, OM_EUSAGE, "etcd: no endpoint configured");
	if (conf->timeout_s < 0 || conf->timeout_s > 3600)
		return cluster_error(err, OM_EUSAGE, "etcd: timeout %g s out of range (0..3600)", conf->timeout_s);
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return cluster_error(err, ENOMEM, "etcd: curl_global_init: %s", curl_easy_strerror(curl_init_rc));
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return om_make_error(err, ENOMEM, "etcd");
	e->owner = getpid();
	e->timeout_ms = conf->timeout_s > 0 ? (long)(conf->timeout_s * 1000) : 5000;
	if (e->timeout_ms < 1)
		e->timeout_ms = 1;
	for (p = conf->endpoints; *p;) {
		size_t n = strcspn(p, ",");
		const char *s = p;
		size_t len = n;
		while (len > 0 && (*s == ' ' || *s == '\t'))
			s++, len--;
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '/'))
			len--;
		if (len > 0) {
			if (e->n_eps == MAX_ENDPOINTS) {
				om_etcd_close(e);
				return cluster_error(err, OM_EUSAGE, "etcd: more than %d endpoints", MAX_ENDPOINTS);
			}
			if (!(len > 7 && strncmp(s, "http://", 7) == 0) &&
			    !(len > 8 && strncmp(s, "https://", 8) == 0)) {
				om_etcd_close(e);
				return cluster_error(err, OM_EUSAGE, "etcd: endpoint `%.*s` is not http:// or https://",
						     (int)len, s);
			}
			e->eps[e->n_eps] = strndup(s, len);
			if (e->eps[e->n_eps] == NULL) {
				om_etcd_close(e);
				return om_make_error(err, ENOMEM, "etcd");
			}
			e->n_eps++;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (e->n_eps == 0) {
		om_etcd_close(e);
		return cluster_error(err, OM_EUSAGE, "etcd: no endpoint in `%s`", conf->endpoints);
	}
	if (dup_opt(conf->ca, &e->ca) < 0 || dup_opt(conf->cert, &e->cert) < 0 || dup_opt(conf->key, &e->key) < 0) {
		om_etcd_close(e);
		return om_make_error(err, ENOMEM, "etcd");
	}
	e->curl = curl_easy_init();
	e->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (e->hdrs) {
		struct curl_slist *h = curl_slist_append(e->hdrs, "Expect:");
		if (h)
			e->hdrs = h;
		else {
			curl_slist_free_all(e->hdrs);
			e->hdrs = NULL;
		}
	}
	if (e->curl == NULL || e->hdrs == NULL) {
		om_etcd_close(e);
		return om_make_error(err, ENOMEM, "etcd: curl");
	}
	if (om_sandbox_start(&e->sb, err) < 0) {
		om_etcd_close(e);
		return om_error_wrap(err, "etcd");
	}
	*out = e;
	return 0;
}

/* ---- transfers ---- */

struct body {
	char *data;
	size_t len, cap;
	bool too_big;
	bool paused; /* watch: a full line waits to be handled */
	bool pausable;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;

	if (b->len + n > OM_JSON_MAX) {
		if (b->pausable && memchr(b->data, '\n', b->len) != NULL) {
			b->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		b->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;
		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d == NULL)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int setup(struct om_etcd *e, CURL *h, const char *ep, const char *path, const char *body, struct body *b,
		 bool unary)
{
	char url[1024];
	CURLcode r = CURLE_OK;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", ep, path) >= sizeof(url))
		return -1;
	e->errbuf[0] = '\0';
#define SET(opt, val)                                                                                                  \
	do {                                                                                                           \
		if (r == CURLE_OK)                                                                                     \
			r = curl_easy_setopt(h, opt, val);                                                             \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROXY, ""); /* never a proxy from the environment */
	SET(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	SET(CURLOPT_HTTPHEADER, e->hdrs);
	SET(CURLOPT_ERRORBUFFER, e->errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, b);
	SET(CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, unary ? e->timeout_ms : 0L);
	if (!unary) { /* a long watch on a silent peer: TCP keep-alive finds a dead one */
		SET(CURLOPT_TCP_KEEPALIVE, 1L);
		SET(CURLOPT_TCP_KEEPIDLE, 10L);
		SET(CURLOPT_TCP_KEEPINTVL, 5L);
	}
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (e->ca)
		SET(CURLOPT_CAINFO, e->ca);
	if (e->cert)
		SET(CURLOPT_SSLCERT, e->cert);
	if (e->key)
		SET(CURLOPT_SSLKEY, e->key);
#undef SET
	return r == CURLE_OK ? 0 : -1;
}

/* A failure before any answer: the next endpoint may do better. */
static bool connect_failure(CURL *h, CURLcode rc)
{
	long code = 0;

	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		return true;
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		return code == 0;
	}
	return false;
}

static const char *curl_text(struct om_etcd *e, CURLcode rc)
{
	return e->errbuf[0] ? e->errbuf : curl_easy_strerror(rc);
}

/* A non-200 answer: etcd's own words from its error body. */
static int http_error(struct om_etcd *e, const char *ep, const char *path, long code, const struct body *b,
		      om_error_t *err)
{
	ProtobufCMessage *m = NULL;
	cleanup_om_error om_error_t perr = NULL;

	if (b->len > 0 && om_sandbox_parse(e->sb, &om__etcd__error__descriptor, b->data, b->len, &m, &perr) == 0) {
		Om__Etcd__Error *er = (Om__Etcd__Error *)m;
		const char *msg = er->message && *er->message ? er->message : er->error ? er->error : "";
		int r = cluster_error(err, OM_ECLUSTER, "etcd %s%s: HTTP %ld: %s", ep, path, code,
				      *msg ? msg : "(no message)");
		protobuf_c_message_free_unpacked(m, NULL);
		return r;
	}
	return cluster_error(err, OM_ECLUSTER, "etcd %s%s: HTTP %ld", ep, path, code);
}

/* POST req to path; parse the answer as d (a stream's first line if stream). */
static int call(struct om_etcd *e, const char *path, json_object *req, const ProtobufCMessageDescriptor *d, bool stream,
		ProtobufCMessage **out, om_error_t *err)
{
	const char *body;
	cleanup_om_error om_error_t last = NULL;

	*out = NULL;
	if (e == NULL)
		return cluster_error(err, EINVAL, "etcd: no client");
	if (e->owner != getpid())
		return cluster_error(err, EINVAL, "etcd: client opened by PID %d, used after a fork: open another",
				     (int)e->owner);
	if (req == NULL)
		return om_make_error(err, ENOMEM, "etcd %s", path);
	body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (body == NULL)
		return om_make_error(err, ENOMEM, "etcd %s", path);
	for (size_t k = 0; k < e->n_eps; k++) {
		size_t i = (e->cur + k) % e->n_eps;
		const char *ep = e->eps[i];
		struct body b = {0};
		CURLcode rc;
		long code = 0;
		size_t len;

		curl_easy_reset(e->curl);
		if (setup(e, e->curl, ep, path, body, &b, true) < 0)
			return cluster_error(err, EINVAL, "etcd %s%s: cannot set up the request", ep, path);
		rc = curl_easy_perform(e->curl);
		if (rc != CURLE_OK) {
			int r;
			if (b.too_big)
				r = cluster_error(err, OM_ECORRUPT, "etcd %s%s: answer larger than %u bytes", ep, path,
						  OM_JSON_MAX);
			else
				r = cluster_error(err, OM_ECLUSTER, "etcd %s%s: %s", ep, path, curl_text(e, rc));
			free(b.data);
			if (!connect_failure(e->curl, rc))
				return r;
			if (last)
				om_error_append(err, "%s", last->msg);
			om_error_release(&last);
			last = *err;
			*err = NULL;
			continue;
		}
		e->cur = i;
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &code);
		if (code != 200) {
			int r = http_error(e, ep, path, code, &b, err);
			free(b.data);
			return r;
		}
		len = b.len;
		if (stream && b.data) {
			char *nl = memchr(b.data, '\n', b.len);
			if (nl)
				len = (size_t)(nl - b.data);
		}
		if (om_sandbox_parse(e->sb, d, b.data ? b.data : "", len, out, err) < 0) {
			free(b.data);
			om_error_wrap(err, "etcd %s%s", ep, path);
			return om_error_set_exit(err, OM_EXIT_CLUSTER);
		}
		free(b.data);
		return 0;
	}
	*err = last;
	last = NULL;
	return -1;
}

/* ---- request JSON ---- */

static int add(json_object *o, const char *name, json_object *v)
{
	if (o == NULL || v == NULL || json_object_object_add(o, name, v) < 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int add_b64(json_object *o, const char *name, const void *data, size_t len)
{
	cleanup_free char *s = om_base64_encode(data ? data : "", len);
	return s ? add(o, name, json_object_new_string(s)) : -1;
}

static int add_num(json_object *o, const char *name, int64_t v)
{
	char s[32];
	snprintf(s, sizeof(s), "%" PRId64, v);
	return add(o, name, json_object_new_string(s));
}

/* key, and range_end for a prefix: the key with its last byte below 0xff incremented. */
static int add_range(json_object *o, const char *key, bool prefix)
{
	size_t n = strlen(key);
	cleanup_free uint8_t *end = NULL;

	if (add_b64(o, "key", key, n) < 0)
		return -1;
	if (!prefix)
		return 0;
	end = malloc(n + 1);
	if (end == NULL)
		return -1;
	memcpy(end, key, n);
	while (n > 0) {
		if (end[n - 1] < 0xff) {
			end[n - 1]++;
			return add_b64(o, "range_end", end, n);
		}
		n--;
	}
	end[0] = 0; /* every key from key on */
	return add_b64(o, "range_end", end, 1);
}

struct jref {
	json_object *o;
};
static void jrefp(struct jref *r)
{
	json_object_put(r->o);
}
#define cleanup_json __attribute__((cleanup(jrefp)))

static int kv_copy(const Om__Etcd__KeyValue *kv, struct om_etcd_kv *out)
{
	memset(out, 0, sizeof(*out));
	out->key = malloc(kv->key.len + 1);
	out->value = malloc(kv->value.len + 1);
	if (out->key == NULL || out->value == NULL) {
		free(out->key);
		free(out->value);
		out->key = out->value = NULL;
		return -1;
	}
	if (kv->key.len)
		memcpy(out->key, kv->key.data, kv->key.len);
	out->key[kv->key.len] = '\0';
	if (kv->value.len)
		memcpy(out->value, kv->value.data, kv->value.len);
	out->value[kv->value.len] = '\0';
	out->value_len = kv->value.len;
	out->create_revision = kv->create_revision;
	out->mod_revision = kv->mod_revision;
	out->version = kv->version;
	out->lease = kv->lease;
	return 0;
}

static void kv_free(struct om_etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
}

static int64_t header_rev(const Om__Etcd__ResponseHeader *h)
{
	return h ? h->revision : 0;
}

/* ---- KV ---- */

void om_etcd_range_release(struct om_etcd_range *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		kv_free(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

int om_etcd_get(struct om_etcd *e, const char *key, bool prefix, int64_t limit, struct om_etcd_range *out,
		om_error_t *err)
{
	return om_etcd_get_opts(e, key, prefix, limit, 0, out, err);
}

int om_etcd_get_opts(struct om_etcd *e, const char *key, bool prefix, int64_t limit, unsigned flags,
		     struct om_etcd_range *out, om_error_t *err)
{
	cleanup_json struct jref req = {json_object_new_object()};
	ProtobufCMessage *m = NULL;
	Om__Etcd__RangeResponse *rr;

	memset(out, 0, sizeof(*out));
	if (key == NULL || limit < 0)
		return cluster_error(err, EINVAL, "etcd get: bad arguments");
	if (add_range(req.o, key, prefix) < 0 || (limit > 0 && add_num(req.o, "limit", limit) < 0) ||
	    ((flags & OM_ETCD_KEYS_ONLY) && add(req.o, "keys_only", json_object_new_boolean(1)) < 0) ||
	    ((flags & OM_ETCD_COUNT_ONLY) && add(req.o, "count_only", json_object_new_boolean(1)) < 0) ||
	    ((flags & OM_ETCD_DESCEND) && (add(req.o, "sort_order", json_object_new_string("DESCEND")) < 0 ||
					   add(req.o, "sort_target", json_object_new_string("KEY")) < 0)))
		return om_make_error(err, ENOMEM, "etcd get");
	if (call(e, "/v3/kv/range", req.o, &om__etcd__range_response__descriptor, false, &m, err) < 0)
		return om_error_wrap(err, "get `%s`", key);
	rr = (Om__Etcd__RangeResponse *)m;
	out->revision = header_rev(rr->header);
	out->more = rr->more;
	out->count = rr->count;
	if (rr->n_kvs > 0) {
		out->kvs = calloc(rr->n_kvs, sizeof(*out->kvs));
		if (out->kvs == NULL) {
			protobuf_c_message_free_unpacked(m, NULL);
			return om_make_error(err, ENOMEM, "etcd get");
		}
		for (size_t i = 0; i < rr->n_kvs; i++) {
			if (kv_copy(rr->kvs[i], &out->kvs[i]) < 0) {
				protobuf_c_message_free_unpacked(m, NULL);
				om_etcd_range_release(out);
				return om_make_error(err, ENOMEM, "etcd get");
			}
			out->n++;
		}
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int om_etcd_put(struct om_etcd *e, const char *key, const void *val, size_t len, int64_t lease, int64_t *revision,
		om_error_t *err)
{
	cleanup_json struct jref req = {json_object_new_object()};
	ProtobufCMessage *m = NULL;

	if (key == NULL || (val == NULL && len > 0))
		return cluster_error(err, EINVAL, "etcd put: bad arguments");
	if (add_b64(req.o, "key", key, strlen(key)) < 0 || add_b64(req.o, "value", val, len) < 0 ||
	    (lease != 0 && add_num(req.o, "lease", lease) < 0))
		return om_make_error(err, ENOMEM, "etcd put");
	if (call(e, "/v3/kv/put", req.o, &om__etcd__put_response__descriptor, false, &m, err) < 0)
		return om_error_wrap(err, "put `%s`", key);
	if (revision)
		*revision = header_rev(((Om__Etcd__PutResponse *)m)->header);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int om_etcd_delete(struct om_etcd *e, const char *key, bool prefix, int64_t *deleted, om_error_t *err)
{
	cleanup_json struct jref req = {json_object_new_object()};
	ProtobufCMessage *m = NULL;

	if (key == NULL)
		return cluster_error(err, EINVAL, "etcd delete: bad arguments");
	if (add_range(req.o, key, prefix) < 0)
		return om_make_error(err, ENOMEM, "etcd delete");
	if (call(e, "/v3/kv/deleterange", req.o, &om__etcd__delete_range_response__descriptor, false, &m, err) < 0)
		return om_error_wrap(err, "delete `%s`", key);
	if (deleted)
		*deleted = ((Om__Etcd__DeleteRangeResponse *)m)->deleted;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

static json_object *ops_json(const struct om_etcd_op *ops, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n; i++) {
		json_object *op = json_object_new_object(), *r = json_object_new_object();
		int bad = 0;
		if (ops[i].key == NULL || (ops[i].type == OM_ETCD_PUT && ops[i].value == NULL && ops[i].value_len))
			bad = 1;
		else if (ops[i].type == OM_ETCD_PUT) {
			bad |= add_b64(r, "key", ops[i].key, strlen(ops[i].key));
			bad |= add_b64(r, "value", ops[i].value, ops[i].value_len);
			if (ops[i].lease)
				bad |= add_num(r, "lease", ops[i].lease);
		} else
			bad |= add_b64(r, "key", ops[i].key, strlen(ops[i].key));
		if (bad || add(op, ops[i].type == OM_ETCD_PUT ? "request_put" : "request_delete_range", r) < 0 ||
		    json_object_array_add(a, op) < 0) {
			if (bad)
				json_object_put(r);
			json_object_put(op);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

int om_etcd_txn(struct om_etcd *e, const struct om_etcd_cmp *cmp, size_t n_cmp, const struct om_etcd_op *ok,
		size_t n_ok, const struct om_etcd_op *fail, size_t n_fail, bool *succeeded, int64_t *revision,
		om_error_t *err)
{
	static const char *const targets[] = {"MOD", "CREATE", "VERSION", "VALUE"};
	static const char *const fields[] = {"mod_revision", "create_revision", "version", "value"};
	cleanup_json struct jref req = {json_object_new_object()};
	json_object *ca = json_object_new_array();
	ProtobufCMessage *m = NULL;
	Om__Etcd__TxnResponse *tr;

	if ((n_cmp && cmp == NULL) || (n_ok && ok == NULL) || (n_fail && fail == NULL) || n_cmp > 128 || n_ok > 128 ||
	    n_fail > 128) {
		json_object_put(ca);
		return cluster_error(err, EINVAL, "etcd txn: bad arguments");
	}
	if (add(req.o, "compare", ca) < 0)
		return om_make_error(err, ENOMEM, "etcd txn");
	for (size_t i = 0; i < n_cmp; i++) {
		json_object *c = json_object_new_object();
		unsigned t = (unsigned)cmp[i].target;
		int bad = 0;
		if (t > OM_ETCD_VALUE || cmp[i].key == NULL ||
		    (t == OM_ETCD_VALUE && !cmp[i].value && cmp[i].value_len)) {
			json_object_put(c);
			return cluster_error(err, EINVAL, "etcd txn: bad compare %zu", i);
		}
		bad |= add_b64(c, "key", cmp[i].key, strlen(cmp[i].key));
		bad |= add(c, "target", json_object_new_string(targets[t]));
		bad |= add(c, "result", json_object_new_string("EQUAL"));
		if (t == OM_ETCD_VALUE)
			bad |= add_b64(c, fields[t], cmp[i].value, cmp[i].value_len);
		else
			bad |= add_num(c, fields[t], cmp[i].number);
		if (bad || json_object_array_add(ca, c) < 0) {
			json_object_put(c);
			return om_make_error(err, ENOMEM, "etcd txn");
		}
	}
	if (add(req.o, "success", ops_json(ok, n_ok)) < 0 || add(req.o, "failure", ops_json(fail, n_fail)) < 0)
		return cluster_error(err, EINVAL, "etcd txn: bad operation (or out of memory)");
	if (call(e, "/v3/kv/txn", req.o, &om__etcd__txn_response__descriptor, false, &m, err) < 0)
		return om_error_wrap(err, "txn");
	tr = (Om__Etcd__TxnResponse *)m;
	if (succeeded)
		*succeeded = tr->succeeded;
	if (revision)
		*revision = header_rev(tr->header);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* ---- leases ---- */

int om_etcd_lease_grant(struct om_etcd *e, int64_t ttl_s, int64_t *id, om_error_t *err)
{
	cleanup_json struct jref req = {json_object_new_object()};
	ProtobufCMessage *m = NULL;
	Om__Etcd__LeaseGrantResponse *g;
	int r = 0;

	if (ttl_s <= 0 || id == NULL)
		return cluster_error(err, EINVAL, "etcd lease grant: bad arguments");
	if (add_num(req.o, "TTL", ttl_s) < 0 || add_num(req.o, "ID", 0) < 0)
		return om_make_error(err, ENOMEM, "etcd lease grant");
	if (call(e, "/v3/lease/grant", req.o, &om__etcd__lease_grant_response__descriptor, false, &m, err) < 0)
		return om_error_wrap(err, "lease grant");
	g = (Om__Etcd__LeaseGrantResponse *)m;
	if (g->error && *g->error)
		r = cluster_error(err, OM_ECLUSTER, "etcd lease grant: %s", g->error);
	else if (g->id == 0)
		r = cluster_error(err, OM_ECLUSTER, "etcd lease grant: no lease ID in the answer");
	else
		*id = g->id;
	protobuf_c_message_free_unpacked(m, NULL);
	return r;
}

int om_etcd_lease_keepalive(struct om_etcd *e, int64_t id, int64_t *ttl_left, om_error_t *err)
{
	cleanup_json struct jref req = {json_object_new_object()};
	ProtobufCMessage *m = NULL;
	Om__Etcd__LeaseKeepAliveResult *k;
	int r = 0;

	if (add_num(req.o, "ID", id) < 0)
		return om_make_error(err, ENOMEM, "etcd lease keepalive");
	if (call(e, "/v3/lease/keepalive", req.o, &om__etcd__lease_keep_alive_result__descriptor, true, &m, err) < 0)
		return om_error_wrap(err, "lease keepalive %" PRId64, id);
	k = (Om__Etcd__LeaseKeepAliveResult *)m;
	if (k->error)
		r = cluster_error(err, OM_ECLUSTER, "etcd lease keepalive %" PRId64 ": %s", id,
				  k->error->message ? k->error->message : "error");
	else if (k->result == NULL)
		r = cluster_error(err, OM_ECLUSTER, "etcd lease keepalive %" PRId64 ": no result", id);
	else if (ttl_left)
		*ttl_left = k->result->ttl > 0 ? k->result->ttl : 0;
	protobuf_c_message_free_unpacked(m, NULL);
	return r;
}

int om_etcd_lease_revoke(struct om_etcd *e, int64_t id, om_error_t *err)
{
	cleanup_json struct jref req = {json_object_new_object()};
	ProtobufCMessage *m = NULL;

	if (add_num(req.o, "ID", id) < 0)
		return om_make_error(err, ENOMEM, "etcd lease revoke");
	if (call(e, "/v3/lease/revoke", req.o, &om__etcd__lease_revoke_response__descriptor, false, &m, err) < 0)
		return om_error_wrap(err, "lease revoke %" PRId64, id);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* ---- watch ---- */

struct watch {
	struct om_etcd *e;
	const char *ep;
	int64_t start_revision;
	int64_t next;
	om_etcd_watch_cb cb;
	void *arg;
	bool stop; /* cb > 0 */
};

/* One line of the stream: 0, or -1 with *err. */
static int watch_line(struct watch *w, const char *line, size_t len, om_error_t *err)
{
	ProtobufCMessage *m = NULL;
	Om__Etcd__WatchResult *wr;
	Om__Etcd__WatchResponse *r;
	int rc = 0;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0;
	if (om_sandbox_parse(w->e->sb, &om__etcd__watch_result__descriptor, line, len, &m, err) < 0) {
		om_error_wrap(err, "etcd %s/v3/watch", w->ep);
		return om_error_set_exit(err, OM_EXIT_CLUSTER);
	}
	wr = (Om__Etcd__WatchResult *)m;
	r = wr->result;
	if (wr->error) {
		rc = cluster_error(err, OM_ECLUSTER, "etcd %s/v3/watch: %s", w->ep,
				   wr->error->message ? wr->error->message : "stream error");
		goto out;
	}
	if (r == NULL)
		goto out;
	if (r->compact_revision > 0) {
		rc = cluster_error(err, ERANGE,
				   "etcd %s/v3/watch: revision %" PRId64
				   " is compacted (the oldest available is %" PRId64 ")",
				   w->ep, w->start_revision, r->compact_revision);
		goto out;
	}
	if (r->canceled) {
		rc = cluster_error(err, OM_ECLUSTER, "etcd %s/v3/watch: canceled by etcd%s%s", w->ep,
				   r->cancel_reason ? ": " : "", r->cancel_reason ? r->cancel_reason : "");
		goto out;
	}
	if (r->created && w->start_revision <= 0 && r->header && r->header->revision + 1 > w->next)
		w->next = r->header->revision + 1;
	for (size_t i = 0; i < r->n_events && !w->stop; i++) {
		Om__Etcd__Event *ev = r->events[i];
		struct om_etcd_event oe = {.type = ev->type == OM__ETCD__EVENT__EVENT_TYPE__DELETE ? OM_ETCD_EV_DELETE
												   : OM_ETCD_EV_PUT};
		Om__Etcd__KeyValue empty = OM__ETCD__KEY_VALUE__INIT;
		int c;
		if (kv_copy(ev->kv ? ev->kv : &empty, &oe.kv) < 0) {
			rc = om_make_error(err, ENOMEM, "etcd watch");
			goto out;
		}
		c = w->cb(w->arg, &oe, err);
		if (oe.kv.mod_revision + 1 > w->next)
			w->next = oe.kv.mod_revision + 1;
		kv_free(&oe.kv);
		if (c < 0) {
			if (*err == NULL)
				om_make_error(err, ECANCELED, "watch callback failed");
			rc = -1;
			goto out;
		}
		if (c > 0)
			w->stop = true;
	}
out:
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

/* Handle the complete lines of b (all of it at the end of the stream). */
static int watch_lines(struct watch *w, struct body *b, bool all, om_error_t *err)
{
	size_t done = 0;

	while (!w->stop && done < b->len) {
		char *nl = memchr(b->data + done, '\n', b->len - done);
		size_t end = nl ? (size_t)(nl - b->data) : b->len;
		if (nl == NULL && !all)
			break;
		if (watch_line(w, b->data + done, end - done, err) < 0)
			return -1;
		done = nl ? end + 1 : end;
	}
	if (b->data == NULL) /* nothing came yet */
		return 0;
	memmove(b->data, b->data + done, b->len - done);
	b->len -= done;
	b->data[b->len] = '\0';
	return 0;
}

enum { W_DONE = 0, W_FAIL = -1, W_NEXT = 1 };

static int watch_once(struct watch *w, const char *body, int64_t deadline, int cancel_fd, om_error_t *err)
{
	struct om_etcd *e = w->e;
	struct body b = {.pausable = true};
	CURL *h = curl_easy_init();
	CURLM *mh = curl_multi_init();
	int rc = W_FAIL, running = 1;
	long code = 0;

	if (h == NULL || mh == NULL) {
		rc = om_make_error(err, ENOMEM, "etcd watch");
		goto out;
	}
	if (setup(e, h, w->ep, "/v3/watch", body, &b, false) < 0 || curl_multi_add_handle(mh, h) != CURLM_OK) {
		rc = cluster_error(err, EINVAL, "etcd %s/v3/watch: cannot set up the request", w->ep);
		goto out;
	}
	for (;;) {
		struct curl_waitfd extra = {.fd = cancel_fd, .events = CURL_WAIT_POLLIN};
		CURLMsg *msg;
		int left, numfds = 0;
		int64_t wait;

		if (cancel_fd >= 0) {
			struct pollfd p = {.fd = cancel_fd, .events = POLLIN};
			if (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP))) {
				rc = W_DONE;
				break;
			}
		}
		if (curl_multi_perform(mh, &running) != CURLM_OK) {
			rc = cluster_error(err, OM_ECLUSTER, "etcd %s/v3/watch: curl multi failed", w->ep);
			break;
		}
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (code != 0 && code != 200 && b.paused) { /* an error answer is one document, never this long */
			rc = cluster_error(err, OM_ECORRUPT, "etcd %s/v3/watch: HTTP %ld with an answer over %u bytes",
					   w->ep, code, OM_JSON_MAX);
			break;
		}
		if (code == 200) {
			if (watch_lines(w, &b, false, err) < 0)
				break;
			if (w->stop) {
				rc = W_DONE;
				break;
			}
			if (b.paused) {
				b.paused = false;
				curl_easy_pause(h, CURLPAUSE_CONT);
			}
		}
		while ((msg = curl_multi_info_read(mh, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			running = 0;
			if (msg->data.result != CURLE_OK) {
				if (b.too_big)
					rc = cluster_error(err, OM_ECORRUPT,
							   "etcd %s/v3/watch: a line longer than %u bytes", w->ep,
							   OM_JSON_MAX);
				else {
					rc = cluster_error(err, OM_ECLUSTER, "etcd %s/v3/watch: %s", w->ep,
							   curl_text(e, msg->data.result));
					if (connect_failure(h, msg->data.result))
						rc = W_NEXT;
				}
			} else if (code != 200) {
				rc = http_error(e, w->ep, "/v3/watch", code, &b, err);
			} else if (watch_lines(w, &b, true, err) == 0) {
				rc = w->stop
					 ? W_DONE
					 : cluster_error(err, OM_ECLUSTER, "etcd %s/v3/watch: the stream ended", w->ep);
			}
		}
		if (!running)
			break;
		wait = 1000;
		if (deadline > 0) {
			int64_t rest = deadline - now_ms();
			if (rest <= 0) {
				rc = W_DONE;
				break;
			}
			if (rest < wait)
				wait = rest;
		}
		if (curl_multi_poll(mh, cancel_fd >= 0 ? &extra : NULL, cancel_fd >= 0 ? 1 : 0, (int)wait, &numfds) !=
		    CURLM_OK) {
			rc = cluster_error(err, OM_ECLUSTER, "etcd %s/v3/watch: curl poll failed", w->ep);
			break;
		}
	}
out:
	if (mh && h)
		curl_multi_remove_handle(mh, h);
	if (h)
		curl_easy_cleanup(h);
	if (mh)
		curl_multi_cleanup(mh);
	free(b.data);
	return rc;
}

int om_etcd_watch(struct om_etcd *e, const char *key, bool prefix, int64_t start_revision, double timeout_s,
		  int cancel_fd, om_etcd_watch_cb cb, void *arg, int64_t *next_revision, om_error_t *err)
{
	cleanup_json struct jref req = {json_object_new_object()};
	json_object *cr = json_object_new_object();
	const char *body;
	struct watch w = {.e = e, .start_revision = start_revision, .cb = cb, .arg = arg};
	int64_t deadline = 0;
	cleanup_om_error om_error_t last = NULL;
	int rc = W_NEXT;

	if (e == NULL || key == NULL || cb == NULL || timeout_s < 0 || start_revision < 0) {
		json_object_put(cr);
		return cluster_error(err, EINVAL, "etcd watch: bad arguments");
	}
	if (e->owner != getpid()) {
		json_object_put(cr);
		return cluster_error(err, EINVAL, "etcd: client opened by PID %d, used after a fork: open another",
				     (int)e->owner);
	}
	w.next = start_revision;
	if (add(req.o, "create_request", cr) < 0 || add_range(cr, key, prefix) < 0 ||
	    (start_revision > 0 && add_num(cr, "start_revision", start_revision) < 0))
		return om_make_error(err, ENOMEM, "etcd watch");
	body = json_object_to_json_string_ext(req.o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (body == NULL)
		return om_make_error(err, ENOMEM, "etcd watch");
	if (timeout_s > 0)
		deadline = now_ms() + (int64_t)(timeout_s * 1000) + (timeout_s * 1000 < 1 ? 1 : 0);
	for (size_t k = 0; k < e->n_eps && rc == W_NEXT; k++) {
		size_t i = (e->cur + k) % e->n_eps;
		w.ep = e->eps[i];
		rc = watch_once(&w, body, deadline, cancel_fd, err);
		if (rc == W_NEXT) {
			if (last)
				om_error_append(err, "%s", last->msg);
			om_error_release(&last);
			last = *err;
			*err = NULL;
		} else if (rc == W_DONE)
			e->cur = i;
	}
	if (rc == W_NEXT) {
		*err = last;
		last = NULL;
		rc = -1;
	}
	if (next_revision)
		*next_revision = w.next;
	if (rc < 0)
		return om_error_wrap(err, "watch `%s`", key);
	return 0;
}
