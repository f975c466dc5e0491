/* tests/unit/test-etcd.c — the sandboxed JSON parser (cluster/sandbox.h) and
 * the etcd client (cluster/etcd.h) against a real etcd (TAP output).
 *
 *   test-etcd                              the parser and its sandbox only
 *   test-etcd ENDPOINT                     and the client, on plain HTTP
 *   test-etcd ENDPOINT CA CERT KEY         and the client, on TLS with a client certificate
 *
 * tests/t90-etcd.sh starts etcd and runs both. Keys live under /omtest/<pid>/.
 */
#include "config.h"
#include "../tap.h"
#include "cluster.pb-c.h"
#include "etcd.h"
#include "etcd.pb-c.h"
#include "sandbox.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool msg_has(om_error_t err, const char *needle)
{
	return err && err->msg && strstr(err->msg, needle) != NULL;
}

static void show(om_error_t *err)
{
	if (*err)
		diag("  -> %s (status %d)", (*err)->msg ? (*err)->msg : "?", (*err)->status);
	om_error_release(err);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the parser ---- */

static struct om_sandbox *sb;

/* Parse s as d in the sandbox: the message, or NULL with *err. */
static ProtobufCMessage *sparse(const ProtobufCMessageDescriptor *d, const char *s, om_error_t *err)
{
	ProtobufCMessage *m = NULL;
	if (om_sandbox_parse(sb, d, s, strlen(s), &m, err) < 0)
		return NULL;
	return m;
}

/* The document is refused with OM_ECORRUPT and a message naming what. */
static void refused(const ProtobufCMessageDescriptor *d, const char *json, const char *what, const char *name)
{
	om_error_t err = NULL;
	ProtobufCMessage *m = sparse(d, json, &err);
	ok(m == NULL && err && err->status == OM_ECORRUPT && msg_has(err, what), "%s: refused naming `%s`", name, what);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	show(&err);
}

static void accepted(const ProtobufCMessageDescriptor *d, const char *json, const char *name)
{
	om_error_t err = NULL;
	ProtobufCMessage *m = sparse(d, json, &err);
	ok(m != NULL, "%s: accepted", name);
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	show(&err);
}

/* pb -> JSON -> pb gives the same packed bytes. */
static void round_trip(const ProtobufCMessage *m, const char *name)
{
	cleanup_free char *json = om_pb_to_json(m);
	om_error_t err = NULL;
	ProtobufCMessage *back = json ? sparse(m->descriptor, json, &err) : NULL;
	bool same = false;

	if (back) {
		size_t a = protobuf_c_message_get_packed_size(m), b = protobuf_c_message_get_packed_size(back);
		cleanup_free uint8_t *pa = malloc(a + 1), *pb = malloc(b + 1);
		protobuf_c_message_pack(m, pa);
		protobuf_c_message_pack(back, pb);
		same = a == b && memcmp(pa, pb, a) == 0;
		protobuf_c_message_free_unpacked(back, NULL);
	}
	ok(same, "%s: JSON round trip", name);
	if (!same && json)
		diag("  json: %s", json);
	show(&err);
}

static void test_parser(void)
{
	om_error_t err = NULL;
	ProtobufCMessage *m;
	char big_depth[256], *big;
	int pid, pid2;

	ok(om_sandbox_start(&sb, &err) == 0 && om_sandbox_pid(sb) > 0, "sandbox started");
	show(&err);
	if (sb == NULL)
		bail_out("no sandbox");
	{
		char path[64], line[256];
		FILE *f;
		bool strict = false;
		snprintf(path, sizeof(path), "/proc/%d/status", om_sandbox_pid(sb));
		for (int i = 0; i < 50 && !strict; i++) { /* the child loads its filter right after fork */
			f = fopen(path, "r");
			while (f && fgets(line, sizeof(line), f))
				if (strncmp(line, "Seccomp:", 8) == 0 && strstr(line, "2"))
					strict = true;
			if (f)
				fclose(f);
			if (!strict)
				usleep(10000);
		}
		ok(strict, "the parser child runs under a seccomp filter");
	}

	/* NodeStatus */
	m = sparse(
	    &om__node_status__descriptor,
	    "{\"v\":1,\"node\":\"n1\",\"addr\":\"10.0.0.1\",\"load1\":0.5,\"cpus\":4,\"mem_total\":\"17179869184\","
	    "\"mem_avail\":18446744073709551615,\"groups\":[1,\"2\",3],\"drained\":false,\"omd_pid\":-7,"
	    "\"updated_ms\":\"-1700000000000\",\"version\":\"0.9\"}",
	    &err);
	{
		Om__NodeStatus *ns = (Om__NodeStatus *)m;
		ok(ns && ns->v == 1 && strcmp(ns->node, "n1") == 0 && ns->has_load1 && ns->load1 == 0.5 &&
		       ns->cpus == 4 && ns->mem_total == 17179869184ull && ns->mem_avail == UINT64_MAX &&
		       ns->n_groups == 3 && ns->groups[1] == 2 && ns->has_drained && !ns->drained &&
		       ns->omd_pid == -7 && ns->updated_ms == -1700000000000ll && !ns->has_started_ms,
		   "NodeStatus: every field, 64-bit numbers as numbers and strings");
		show(&err);
		if (m) {
			round_trip(m, "NodeStatus");
			protobuf_c_message_free_unpacked(m, NULL);
		} else
			ok(0, "NodeStatus: JSON round trip");
	}
	refused(&om__node_status__descriptor, "{\"v\":1,\"node\":\"n1\",\"bogus\":1}", "NodeStatus.bogus",
		"NodeStatus unknown field");
	refused(&om__node_status__descriptor, "{\"v\":1,\"node\":\"n1\",\"cpus\":\"four\"}", "NodeStatus.cpus",
		"NodeStatus wrong type");
	refused(&om__node_status__descriptor, "{\"v\":1}", "NodeStatus.node", "NodeStatus missing required");
	refused(&om__node_status__descriptor, "{\"v\":1,\"node\":\"n\",\"groups\":[1,\"x\"]}", "NodeStatus.groups[1]",
		"NodeStatus bad element");
	refused(&om__node_status__descriptor, "{\"v\":1,\"node\":\"n\",\"omd_pid\":2147483648}", "out of range",
		"NodeStatus int32 overflow");
	refused(&om__node_status__descriptor, "{\"v\":1,\"node\":\"n\",\"mem_total\":\"18446744073709551616\"}",
		"out of range", "NodeStatus uint64 overflow (string)");
	refused(&om__node_status__descriptor, "{\"v\":-1,\"node\":\"n\"}", "NodeStatus.v", "NodeStatus negative uint");
	refused(&om__node_status__descriptor, "{\"v\":1,\"node\":\"n\"} x", "unexpected", "trailing garbage");
	refused(&om__node_status__descriptor, "[1]", "not an object", "not an object");
	refused(&om__node_status__descriptor, "{\"v\":1,\"node\":\"n\"", "NodeStatus", "truncated");
	refused(&om__node_status__descriptor, "", "NodeStatus", "empty document");

	/* GroupOwner */
	m = sparse(&om__group_owner__descriptor,
		   "{\"v\":1,\"group\":\"42\",\"node\":\"b\",\"home\":\"a\",\"since_ms\":1,\"generation\":7}", &err);
	ok(m && ((Om__GroupOwner *)m)->group == 42 && ((Om__GroupOwner *)m)->generation == 7, "GroupOwner: parsed");
	show(&err);
	if (m) {
		round_trip(m, "GroupOwner");
		protobuf_c_message_free_unpacked(m, NULL);
	} else
		ok(0, "GroupOwner: JSON round trip");
	refused(&om__group_owner__descriptor, "{\"v\":1,\"group\":1,\"node\":\"b\"}", "GroupOwner.home",
		"GroupOwner missing required");
	refused(&om__group_owner__descriptor, "{\"v\":1,\"group\":1.5,\"node\":\"b\",\"home\":\"a\"}",
		"GroupOwner.group", "GroupOwner float for an integer");
	refused(&om__group_owner__descriptor, "{\"v\":1,\"group\":1,\"node\":\"b\",\"home\":\"a\",\"x\":{}}",
		"GroupOwner.x", "GroupOwner unknown field");

	/* Request */
	m = sparse(&om__request__descriptor,
		   "{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"op\":\"migrate\",\"from\":\"a\",\"group\":3,"
		   "\"to\":\"b\",\"timeout_s\":30,\"tcp_established\":true,\"parent\":\"\\u00e9t\\u00e9\"}",
		   &err);
	ok(m && ((Om__Request *)m)->tcp_established && ((Om__Request *)m)->timeout_s == 30 &&
	       strcmp(((Om__Request *)m)->parent, "\xc3\xa9t\xc3\xa9") == 0,
	   "Request: parsed (bool, double from an integer, unicode escapes)");
	show(&err);
	if (m) {
		round_trip(m, "Request");
		protobuf_c_message_free_unpacked(m, NULL);
	} else
		ok(0, "Request: JSON round trip");
	refused(&om__request__descriptor, "{\"v\":1,\"id\":\"x\",\"op\":\"ping\",\"from\":\"a\",\"tcp_established\":1}",
		"Request.tcp_established", "Request wrong type (bool)");
	refused(&om__request__descriptor, "{\"v\":1,\"id\":\"x\",\"op\":\"ping\",\"from\":\"a\\u0000b\"}",
		"Request.from", "Request NUL in a string");
	refused(&om__request__descriptor, "{\"v\":1,\"id\":\"x\",\"op\":\"ping\"}", "Request.from",
		"Request missing required");

	/* Reply */
	m = sparse(&om__reply__descriptor,
		   "{\"v\":1,\"id\":\"x\",\"node\":\"b\",\"state\":\"done\",\"exit_code\":0,\"downtime_s\":0.125,"
		   "\"lines\":[\"migrate 1 to b\",\"migrate 2 to b\"],\"updated_ms\":\"1700000000000\"}",
		   &err);
	ok(m && ((Om__Reply *)m)->n_lines == 2 && ((Om__Reply *)m)->updated_ms == 1700000000000ll, "Reply: parsed");
	show(&err);
	if (m) {
		round_trip(m, "Reply");
		protobuf_c_message_free_unpacked(m, NULL);
	} else
		ok(0, "Reply: JSON round trip");
	refused(&om__reply__descriptor, "{\"v\":1,\"id\":\"x\",\"node\":\"b\",\"state\":\"done\",\"lines\":\"one\"}",
		"Reply.lines", "Reply wrong type (not an array)");
	refused(&om__reply__descriptor, "{\"v\":1,\"id\":\"x\",\"node\":\"b\"}", "Reply.state",
		"Reply missing required");
	refused(&om__reply__descriptor, "{\"v\":1,\"id\":\"x\",\"node\":\"b\",\"state\":\"done\",\"extra\":null}",
		"Reply.extra", "Reply unknown field (null)");

	/* depth, size */
	{
		size_t n = 0;
		n += (size_t)snprintf(big_depth, sizeof(big_depth),
				      "{\"v\":1,\"id\":\"x\",\"node\":\"b\",\"state\":\"s\","
				      "\"lines\":");
		for (int i = 0; i < 40; i++)
			big_depth[n++] = '[';
		for (int i = 0; i < 40; i++)
			big_depth[n++] = ']';
		big_depth[n++] = '}';
		big_depth[n] = '\0';
		refused(&om__reply__descriptor, big_depth, "Reply", "too deep (40 levels)");
	}
	big = malloc(OM_JSON_MAX + 64);
	if (big == NULL)
		bail_out("out of memory");
	{
		size_t n = (size_t)snprintf(big, 64, "{\"v\":1,\"id\":\"x\",\"node\":\"b\",\"state\":\"");
		memset(big + n, 'a', OM_JSON_MAX - n);
		strcpy(big + OM_JSON_MAX - 2, "\"}");
		m = NULL;
		ok(om_sandbox_parse(sb, &om__reply__descriptor, big, OM_JSON_MAX + 1, &m, &err) < 0 &&
		       err->status == OM_ECORRUPT && msg_has(err, "more than"),
		   "a document over OM_JSON_MAX is refused");
		show(&err);
		ok(om_sandbox_parse(sb, &om__reply__descriptor, big, OM_JSON_MAX, &m, &err) < 0 &&
		       msg_has(err, "Reply.state") && msg_has(err, "longer than"),
		   "a string over 1 MiB is refused");
		show(&err);
		n = (size_t)snprintf(big, 64, "{\"v\":1,\"id\":\"x\",\"node\":\"b\",\"state\":\"");
		memset(big + n, 'a', 512 * 1024);
		strcpy(big + n + 512 * 1024, "\"}");
		ok(om_sandbox_parse(sb, &om__reply__descriptor, big, strlen(big), &m, &err) == 0 &&
		       strlen(((Om__Reply *)m)->state) == 512 * 1024,
		   "a 512 KiB string is fine");
		show(&err);
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
		/* 100001 elements */
		n = (size_t)snprintf(big, 64, "{\"v\":1,\"node\":\"b\",\"groups\":[");
		for (int i = 0; i <= 100000; i++) {
			memcpy(big + n, "0,", 2);
			n += 2;
		}
		big[n - 1] = ']';
		big[n++] = '}';
		ok(om_sandbox_parse(sb, &om__node_status__descriptor, big, n, &m, &err) < 0 &&
		       msg_has(err, "NodeStatus.groups") && msg_has(err, "elements"),
		   "more than 100000 elements are refused");
		show(&err);
	}
	free(big);

	/* the gateway's messages */
	m = sparse(
	    &om__etcd__range_response__descriptor,
	    "{\"header\":{\"cluster_id\":\"669189723558892431\",\"member_id\":\"13989867695663648279\","
	    "\"revision\":\"2\",\"raft_term\":\"2\",\"new_field\":1},\"kvs\":[{\"key\":\"Zm9v\","
	    "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"AGL/\"}],\"count\":\"1\","
	    "\"future\":{\"a\":[1]}}",
	    &err);
	{
		Om__Etcd__RangeResponse *r = (Om__Etcd__RangeResponse *)m;
		ok(r && r->header && r->header->revision == 2 && r->n_kvs == 1 && r->kvs[0]->key.len == 3 &&
		       memcmp(r->kvs[0]->key.data, "foo", 3) == 0 && r->kvs[0]->value.len == 3 &&
		       memcmp(r->kvs[0]->value.data, "\0b\xff", 3) == 0 && r->count == 1,
		   "RangeResponse: parsed, unknown fields ignored, base64 bytes");
		show(&err);
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
	}
	refused(&om__etcd__range_response__descriptor, "{\"kvs\":[{\"key\":\"Zm9v!\"}]}", "RangeResponse.kvs[0].key",
		"RangeResponse bad base64");
	m = sparse(&om__etcd__watch_result__descriptor,
		   "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ\"}},"
		   "{\"type\":1}]}}",
		   &err);
	{
		Om__Etcd__WatchResult *w = (Om__Etcd__WatchResult *)m;
		ok(w && w->result && w->result->n_events == 3 && w->result->events[0]->type == 0 &&
		       w->result->events[1]->type == OM__ETCD__EVENT__EVENT_TYPE__DELETE &&
		       w->result->events[2]->type == OM__ETCD__EVENT__EVENT_TYPE__DELETE,
		   "WatchResult: enums by name and number");
		show(&err);
		if (m)
			protobuf_c_message_free_unpacked(m, NULL);
	}
	refused(&om__etcd__watch_result__descriptor, "{\"result\":{\"events\":[{\"type\":\"EXPLODE\"}]}}",
		"WatchResult.result.events[0].type", "WatchResult unknown enum name");
	refused(&om__etcd__watch_result__descriptor, "{\"result\":{\"events\":[{\"type\":7}]}}", "unknown",
		"WatchResult unknown enum number");
	accepted(&om__etcd__error__descriptor, "{\"error\":\"etcdserver: x\",\"code\":5,\"message\":\"etcdserver: x\"}",
		 "Error");
	refused(&om__etcd__lease_grant_response__descriptor, "{\"ID\":\"12x\"}", "LeaseGrantResponse.ID",
		"LeaseGrantResponse bad int64 string");

	/* the descriptor table */
	ok(om_sandbox_known(&om__request__descriptor) && om_sandbox_known(&om__etcd__txn_response__descriptor) &&
	       !om_sandbox_known(&om__etcd__key_value__descriptor),
	   "om_sandbox_known: top-level messages only");
	ok(om_sandbox_parse(sb, &om__etcd__key_value__descriptor, "{}", 2, &m, &err) < 0 && err->status == EINVAL,
	   "an unknown descriptor is refused");
	show(&err);

	/* a killed child: the next call starts another */
	pid = om_sandbox_pid(sb);
	kill(pid, SIGKILL);
	usleep(100 * 1000);
	accepted(&om__etcd__error__descriptor, "{\"code\":1}", "after SIGKILL of the child, the next call works");
	pid2 = om_sandbox_pid(sb);
	ok(pid2 > 0 && pid2 != pid, "a new child (%d, was %d)", pid2, pid);
	/* killed while the parent waits for an answer */
	{
		pid_t k = fork();
		if (k == 0) {
			usleep(20 * 1000);
			kill(pid2, SIGKILL);
			_exit(0);
		}
		big = malloc(OM_JSON_MAX);
		if (big == NULL)
			bail_out("out of memory");
		/* a large document keeps the child busy long enough, most of the time */
		size_t n = (size_t)snprintf(big, 64, "{\"v\":1,\"node\":\"b\",\"groups\":[");
		for (int i = 0; i < 99999; i++) {
			memcpy(big + n, "\"12345678901\",", 14);
			n += 14;
		}
		big[n - 1] = ']';
		big[n++] = '}';
		m = NULL;
		int r = 0;
		for (int i = 0; i < 20 && r == 0; i++) {
			r = om_sandbox_parse(sb, &om__node_status__descriptor, big, n, &m, &err);
			if (m)
				protobuf_c_message_free_unpacked(m, NULL);
			m = NULL;
		}
		ok(r < 0 && err && (err->status == EPIPE || err->status == OM_ECORRUPT) &&
		       msg_has(err, "sandboxed parser"),
		   "a child killed during a parse: the call fails (EPIPE)");
		show(&err);
		waitpid(k, NULL, 0);
		accepted(&om__etcd__error__descriptor, "{\"code\":1}", "and the next call works");
		free(big);
	}
	om_sandbox_stop(sb);
	sb = NULL;
}

/* ---- etcd ---- */

static char prefix[64];

static char *K(const char *rel)
{
	static char buf[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, rel);
	return buf[i];
}

struct events {
	int n, stop_after;
	char keys[8][128];
	enum om_etcd_evtype types[8];
	int64_t mods[8];
	bool fail;
};

static int collect(void *arg, const struct om_etcd_event *ev, om_error_t *err)
{
	struct events *e = arg;
	if (e->fail)
		return om_make_error(err, EDOM, "callback says no");
	if (e->n < 8) {
		snprintf(e->keys[e->n], sizeof(e->keys[0]), "%s", ev->kv.key);
		e->types[e->n] = ev->type;
		e->mods[e->n] = ev->kv.mod_revision;
	}
	e->n++;
	return e->stop_after > 0 && e->n >= e->stop_after ? 1 : 0;
}

/* A local port where nothing listens (bound, then closed). */
static int dead_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		bail_out("socket");
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* A listener that never answers: *port. */
static int silent_listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		bail_out("socket");
	*port = ntohs(a.sin_port);
	return fd;
}

static void test_errors(const char *ep)
{
	om_error_t err = NULL;
	struct om_etcd *e = NULL;
	struct om_etcd_range r;
	char url[128];
	double t0;
	int port, lfd;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", dead_port());
	{
		struct om_etcd_conf c = {.endpoints = url, .timeout_s = 2};
		ok(om_etcd_open(&c, &e, &err) == 0, "open %s (nothing listens)", url);
		show(&err);
		t0 = now_s();
		ok(e && om_etcd_get(e, K("x"), false, 0, &r, &err) < 0 && err->status == OM_ECLUSTER &&
		       om_error_exit_code(err) == OM_EXIT_CLUSTER && msg_has(err, url) && now_s() - t0 < 2.5,
		   "connection refused: OM_ECLUSTER naming the endpoint, exit class 7, in time");
		show(&err);
		om_etcd_close(e);
		e = NULL;
	}
	lfd = silent_listener(&port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	{
		struct om_etcd_conf c = {.endpoints = url, .timeout_s = 1};
		double dt;
		ok(om_etcd_open(&c, &e, &err) == 0, "open %s (never answers)", url);
		show(&err);
		t0 = now_s();
		ok(e && om_etcd_put(e, K("x"), "1", 1, 0, NULL, &err) < 0 && err->status == OM_ECLUSTER &&
		       msg_has(err, url),
		   "a silent endpoint: OM_ECLUSTER naming the endpoint");
		dt = now_s() - t0;
		ok(dt >= 0.9 && dt < 2.0, "within the 1 s timeout (%.2f s)", dt);
		show(&err);
		om_etcd_close(e);
		e = NULL;
	}
	close(lfd);
	{
		struct om_etcd_conf c = {.endpoints = "ftp://x"};
		ok(om_etcd_open(&c, &e, &err) < 0 && e == NULL && om_error_exit_code(err) == OM_EXIT_CLUSTER,
		   "a non-HTTP endpoint is refused at open");
		show(&err);
	}
	(void)ep;
}

static void test_kv(struct om_etcd *e)
{
	om_error_t err = NULL;
	struct om_etcd_range r;
	int64_t rev = 0, rev2 = 0, n = 0;
	bool okk = false;
	static const char bin[] = {'a', '\0', 'b', '\xff', '\n'};

	ok(om_etcd_put(e, K("k1"), "hello", 5, 0, &rev, &err) == 0 && rev > 0, "put (revision %lld)", (long long)rev);
	show(&err);
	ok(om_etcd_get(e, K("k1"), false, 0, &r, &err) == 0 && r.n == 1 && strcmp(r.kvs[0].key, K("k1")) == 0 &&
	       r.kvs[0].value_len == 5 && strcmp(r.kvs[0].value, "hello") == 0 && r.kvs[0].mod_revision == rev &&
	       r.kvs[0].version == 1 && r.revision >= rev,
	   "get gives the value and its revisions");
	show(&err);
	om_etcd_range_release(&r);
	ok(om_etcd_put(e, K("bin"), bin, sizeof(bin), 0, NULL, &err) == 0 &&
	       om_etcd_get(e, K("bin"), false, 0, &r, &err) == 0 && r.n == 1 && r.kvs[0].value_len == sizeof(bin) &&
	       memcmp(r.kvs[0].value, bin, sizeof(bin)) == 0 && r.kvs[0].value[sizeof(bin)] == '\0',
	   "a binary value with NUL and 0xff survives");
	show(&err);
	om_etcd_range_release(&r);
	ok(om_etcd_put(e, K("empty"), NULL, 0, 0, NULL, &err) == 0 &&
	       om_etcd_get(e, K("empty"), false, 0, &r, &err) == 0 && r.n == 1 && r.kvs[0].value_len == 0 &&
	       r.kvs[0].value[0] == '\0',
	   "an empty value");
	show(&err);
	om_etcd_range_release(&r);
	ok(om_etcd_get(e, K("missing"), false, 0, &r, &err) == 0 && r.n == 0 && r.kvs == NULL && r.revision > 0,
	   "get of a missing key: no kv, the store's revision");
	show(&err);
	om_etcd_range_release(&r);

	/* prefixes */
	okk = om_etcd_put(e, K("p/a"), "1", 1, 0, NULL, &err) == 0 &&
	      om_etcd_put(e, K("p/b"), "2", 1, 0, NULL, &err) == 0 &&
	      om_etcd_put(e, K("p/c"), "3", 1, 0, NULL, &err) == 0 &&
	      om_etcd_put(e, K("p0"), "x", 1, 0, NULL, &err) == 0 && om_etcd_put(e, K("p"), "y", 1, 0, NULL, &err) == 0;
	show(&err);
	ok(okk && om_etcd_get(e, K("p/"), true, 0, &r, &err) == 0 && r.n == 3 && strcmp(r.kvs[0].key, K("p/a")) == 0 &&
	       strcmp(r.kvs[2].key, K("p/c")) == 0 && strcmp(r.kvs[1].value, "2") == 0 && !r.more,
	   "prefix range: exactly the keys under the prefix, in order");
	show(&err);
	om_etcd_range_release(&r);
	ok(om_etcd_get(e, K("p/"), true, 2, &r, &err) == 0 && r.n == 2 && r.more, "prefix range with a limit: more");
	show(&err);
	om_etcd_range_release(&r);
	ok(om_etcd_delete(e, K("p/"), true, &n, &err) == 0 && n == 3, "delete prefix: 3 deleted");
	show(&err);
	ok(om_etcd_get(e, K("p"), true, 0, &r, &err) == 0 && r.n == 2, "the keys beside the prefix are still there");
	show(&err);
	om_etcd_range_release(&r);
	ok(om_etcd_delete(e, K("k1"), false, &n, &err) == 0 && n == 1 &&
	       om_etcd_delete(e, K("k1"), false, &n, &err) == 0 && n == 0,
	   "delete one key, then again: 1 then 0");
	show(&err);

	/* transactions */
	{
		struct om_etcd_cmp absent = {.key = K("t1"), .target = OM_ETCD_CREATE, .number = 0};
		struct om_etcd_op put1 = {.type = OM_ETCD_PUT, .key = K("t1"), .value = "first", .value_len = 5};
		struct om_etcd_op put_lost = {.type = OM_ETCD_PUT, .key = K("t1-lost"), .value = "x", .value_len = 1};
		bool s1 = false, s2 = true;
		ok(om_etcd_txn(e, &absent, 1, &put1, 1, NULL, 0, &s1, &rev, &err) == 0 && s1 && rev > 0,
		   "txn create-if-absent: succeeds the first time");
		show(&err);
		ok(om_etcd_txn(e, &absent, 1, &put1, 1, &put_lost, 1, &s2, NULL, &err) == 0 && !s2,
		   "txn create-if-absent: fails the second time");
		show(&err);
		ok(om_etcd_get(e, K("t1-lost"), false, 0, &r, &err) == 0 && r.n == 1, "the failure ops ran");
		show(&err);
		om_etcd_range_release(&r);
	}
	{
		struct om_etcd_cmp mod = {.key = K("t1"), .target = OM_ETCD_MOD};
		struct om_etcd_op put2 = {.type = OM_ETCD_PUT, .key = K("t1"), .value = "second", .value_len = 6};
		bool s = false;
		ok(om_etcd_get(e, K("t1"), false, 0, &r, &err) == 0 && r.n == 1, "get t1 for its mod_revision");
		show(&err);
		mod.number = r.n ? r.kvs[0].mod_revision : -1;
		om_etcd_range_release(&r);
		ok(om_etcd_txn(e, &mod, 1, &put2, 1, NULL, 0, &s, &rev2, &err) == 0 && s,
		   "txn on the current mod_revision succeeds");
		show(&err);
		s = true;
		ok(om_etcd_txn(e, &mod, 1, &put2, 1, NULL, 0, &s, NULL, &err) == 0 && !s,
		   "txn on a stale mod_revision fails");
		show(&err);
	}
	{
		struct om_etcd_cmp val = {.key = K("t1"), .target = OM_ETCD_VALUE, .value = "second", .value_len = 6};
		struct om_etcd_cmp ver = {.key = K("t1"), .target = OM_ETCD_VERSION, .number = 2};
		struct om_etcd_cmp both[2] = {val, ver};
		struct om_etcd_op del = {.type = OM_ETCD_DEL, .key = K("t1")};
		bool s = false;
		ok(om_etcd_txn(e, both, 2, &del, 1, NULL, 0, &s, NULL, &err) == 0 && s &&
		       om_etcd_get(e, K("t1"), false, 0, &r, &err) == 0 && r.n == 0,
		   "txn on value and version, with a delete: the key is gone");
		show(&err);
		om_etcd_range_release(&r);
	}
}

static void test_leases(struct om_etcd *e)
{
	om_error_t err = NULL;
	struct om_etcd_range r;
	int64_t id = 0, ttl = -1;
	double t0, gone_at = -1;

	ok(om_etcd_lease_grant(e, 30, &id, &err) == 0 && id != 0, "lease grant (ID %lld)", (long long)id);
	show(&err);
	ok(om_etcd_put(e, K("leased"), "v", 1, id, NULL, &err) == 0 &&
	       om_etcd_get(e, K("leased"), false, 0, &r, &err) == 0 && r.n == 1 && r.kvs[0].lease == id,
	   "put with the lease: the key carries it");
	show(&err);
	om_etcd_range_release(&r);
	ok(om_etcd_lease_keepalive(e, id, &ttl, &err) == 0 && ttl > 25 && ttl <= 30, "keepalive: TTL %lld left",
	   (long long)ttl);
	show(&err);
	ok(om_etcd_lease_revoke(e, id, &err) == 0, "revoke");
	show(&err);
	ok(om_etcd_get(e, K("leased"), false, 0, &r, &err) == 0 && r.n == 0, "the leased key is gone");
	show(&err);
	om_etcd_range_release(&r);
	ttl = -1;
	ok(om_etcd_lease_keepalive(e, id, &ttl, &err) == 0 && ttl == 0, "keepalive of a revoked lease: TTL 0");
	show(&err);
	ok(om_etcd_lease_revoke(e, id, &err) < 0 && err->status == OM_ECLUSTER && msg_has(err, "lease not found") &&
	       om_error_exit_code(err) == OM_EXIT_CLUSTER,
	   "revoking it again: etcd's own words");
	show(&err);

	ok(om_etcd_lease_grant(e, 2, &id, &err) == 0 && om_etcd_put(e, K("short"), "v", 1, id, NULL, &err) == 0,
	   "a lease with TTL 2 and a key on it");
	show(&err);
	t0 = now_s();
	while (now_s() - t0 < 8) {
		if (om_etcd_get(e, K("short"), false, 0, &r, &err) < 0)
			break;
		bool gone = r.n == 0;
		om_etcd_range_release(&r);
		if (gone) {
			gone_at = now_s() - t0;
			break;
		}
		usleep(200 * 1000);
	}
	show(&err);
	ok(gone_at >= 1.0 && gone_at < 6.0, "the key expires with its lease (after %.1f s)", gone_at);
}

static void test_watch(struct om_etcd *e, const struct om_etcd_conf *conf)
{
	om_error_t err = NULL;
	struct events ev = {0};
	int64_t rev0 = 0, next = 0, rev = 0;
	double t0, dt;
	int p[2];

	ok(om_etcd_put(e, K("w0"), "x", 1, 0, &rev0, &err) == 0, "watch: a starting revision");
	show(&err);
	ok(om_etcd_put(e, K("w/1"), "a", 1, 0, NULL, &err) == 0 &&
	       om_etcd_put(e, K("w/2"), "b", 1, 0, NULL, &err) == 0 &&
	       om_etcd_delete(e, K("w/1"), false, NULL, &err) == 0 &&
	       om_etcd_put(e, K("w/3"), "c", 1, 0, &rev, &err) == 0,
	   "three puts and a delete under w/");
	show(&err);
	ev.stop_after = 3;
	t0 = now_s();
	ok(om_etcd_watch(e, K("w/"), true, rev0 + 1, 5, -1, collect, &ev, &next, &err) == 0 && ev.n == 3 &&
	       strcmp(ev.keys[0], K("w/1")) == 0 && ev.types[0] == OM_ETCD_EV_PUT &&
	       strcmp(ev.keys[1], K("w/2")) == 0 && ev.types[2] == OM_ETCD_EV_DELETE &&
	       strcmp(ev.keys[2], K("w/1")) == 0 && next == ev.mods[2] + 1,
	   "watch from a revision: the events in order, stopped by the callback (next %lld)", (long long)next);
	show(&err);
	ok(now_s() - t0 < 2, "and promptly");
	memset(&ev, 0, sizeof(ev));
	ok(om_etcd_watch(e, K("w/"), true, rev0 + 1, 1, -1, collect, &ev, &next, &err) == 0 && ev.n == 4 &&
	       next == rev + 1,
	   "watch until its timeout: every event since, next = last + 1");
	show(&err);

	memset(&ev, 0, sizeof(ev));
	t0 = now_s();
	ok(om_etcd_watch(e, K("nothing"), false, 0, 0.5, -1, collect, &ev, &next, &err) == 0 && ev.n == 0 && next > rev,
	   "a quiet watch returns 0 at its timeout, next = the store's revision + 1");
	dt = now_s() - t0;
	ok(dt >= 0.45 && dt < 0.9, "timeout 0.5 s: returned after %.3f s", dt);
	show(&err);

	if (pipe(p) < 0)
		bail_out("pipe");
	{
		pid_t k = fork();
		if (k == 0) {
			usleep(300 * 1000);
			if (write(p[1], "x", 1) < 0)
				_exit(1);
			_exit(0);
		}
		t0 = now_s();
		ok(om_etcd_watch(e, K("nothing"), false, 0, 10, p[0], collect, &ev, NULL, &err) == 0,
		   "a watch returns 0 when cancel_fd becomes readable");
		dt = now_s() - t0;
		ok(dt >= 0.25 && dt < 0.5, "within 200 ms of the cancel (%.3f s, cancel at 0.3 s)", dt);
		show(&err);
		waitpid(k, NULL, 0);
	}
	close(p[0]);
	close(p[1]);

	/* an event that happens during the watch, written by a forked child with its own client */
	{
		pid_t k = fork();
		if (k == 0) {
			struct om_etcd *c = NULL;
			om_error_t e2 = NULL;
			int rc;
			usleep(300 * 1000);
			rc = om_etcd_open(conf, &c, &e2) == 0 && om_etcd_put(c, K("live"), "now", 3, 0, NULL, &e2) == 0;
			om_etcd_close(c);
			_exit(rc ? 0 : 1);
		}
		int st = -1;
		memset(&ev, 0, sizeof(ev));
		ev.stop_after = 1;
		t0 = now_s();
		ok(om_etcd_watch(e, K("live"), false, 0, 5, -1, collect, &ev, &next, &err) == 0 && ev.n == 1 &&
		       ev.types[0] == OM_ETCD_EV_PUT && next == ev.mods[0] + 1 && now_s() - t0 < 2,
		   "a live event reaches the callback");
		show(&err);
		waitpid(k, &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a client opened again after fork() works in the child");
	}
	memset(&ev, 0, sizeof(ev));
	ev.fail = true;
	ok(om_etcd_watch(e, K("w/"), true, rev0 + 1, 5, -1, collect, &ev, NULL, &err) < 0 && err->status == EDOM &&
	       msg_has(err, "callback says no"),
	   "a callback's error ends the watch with it");
	show(&err);
	memset(&ev, 0, sizeof(ev));
	ok(om_etcd_watch(e, K("w/"), true, 1, 1, -1, collect, &ev, NULL, &err) == 0 || err != NULL,
	   "a watch from revision 1 (not compacted here) runs");
	show(&err);
}

static void test_tls_refusals(const char *ep, const char *ca, const char *cert, const char *key)
{
	om_error_t err = NULL;
	struct om_etcd *e = NULL;
	struct om_etcd_range r;
	struct om_etcd_conf nocert = {.endpoints = ep, .ca = ca, .timeout_s = 3};
	struct om_etcd_conf noca = {.endpoints = ep, .cert = cert, .key = key, .timeout_s = 3};

	ok(om_etcd_open(&nocert, &e, &err) == 0 && om_etcd_get(e, K("x"), false, 0, &r, &err) < 0 &&
	       err->status == OM_ECLUSTER && msg_has(err, ep),
	   "TLS without a client certificate is refused");
	show(&err);
	om_etcd_close(e);
	e = NULL;
	ok(om_etcd_open(&noca, &e, &err) == 0 && om_etcd_get(e, K("x"), false, 0, &r, &err) < 0 &&
	       err->status == OM_ECLUSTER && msg_has(err, ep),
	   "a server certificate from an unknown CA is refused");
	show(&err);
	om_etcd_close(e);
}

int main(int argc, char **argv)
{
	struct om_etcd_conf conf = {.timeout_s = 5};
	struct om_etcd *e = NULL;
	om_error_t err = NULL;
	char twoeps[512];

	signal(SIGPIPE, SIG_DFL); /* the library must not need it ignored */
	snprintf(prefix, sizeof(prefix), "/omtest/%d/", (int)getpid());
	test_parser();
	if (argc < 2)
		return done_testing();
	conf.endpoints = argv[1];
	if (argc >= 5) {
		conf.ca = argv[2];
		conf.cert = argv[3];
		conf.key = argv[4];
	}
	diag("etcd at %s%s", argv[1], argc >= 5 ? " (TLS, client certificate)" : "");
	test_errors(argv[1]);
	ok(om_etcd_open(&conf, &e, &err) == 0, "open %s", argv[1]);
	show(&err);
	if (e == NULL)
		bail_out("cannot open the client");
	test_kv(e);
	test_leases(e);
	test_watch(e, &conf);
	om_etcd_close(e);
	e = NULL;

	/* the first endpoint refuses: the next one serves */
	snprintf(twoeps, sizeof(twoeps), "http://127.0.0.1:%d, %s", dead_port(), argv[1]);
	conf.endpoints = twoeps;
	{
		struct om_etcd_range r;
		ok(om_etcd_open(&conf, &e, &err) == 0 && om_etcd_put(e, K("fo"), "1", 1, 0, NULL, &err) == 0 &&
		       om_etcd_get(e, K("fo"), false, 0, &r, &err) == 0 && r.n == 1,
		   "two endpoints, the first dead: the second serves");
		show(&err);
		om_etcd_range_release(&r);
	}
	if (e) {
		int64_t n = 0;
		ok(om_etcd_delete(e, prefix, true, &n, &err) == 0 && n > 0, "clean up %s (%lld keys)", prefix,
		   (long long)n);
		show(&err);
	}
	om_etcd_close(e);
	if (argc >= 5)
		test_tls_refusals(argv[1], argv[2], argv[3], argv[4]);
	return done_testing();
}
