/* cluster/cluster.c — see cluster.h. */
#include "config.h"
#include "cluster.h"

#include "group.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int64_t om_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool om_cluster_configured(const struct om_config *cfg)
{
	return cfg && cfg->etcd && *cfg->etcd;
}

__attribute__((format(printf, 2, 3))) static int cluster_error(om_error_t *err, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	om_make_error(err, OM_ECLUSTER, "%s", buf);
	return om_error_set_exit(err, OM_EXIT_CLUSTER);
}

int om_cluster_open(struct om_cluster *c, const struct om_config *cfg, bool need_self, om_error_t *err)
{
	struct om_etcd_conf ec = {0};
	const char *map;

	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->prefix = cfg->etcd_prefix && *cfg->etcd_prefix ? cfg->etcd_prefix : OM_DEFAULT_ETCD_PREFIX;
	if (!om_cluster_configured(cfg))
		return cluster_error(err, "this needs a cluster: set `etcd = https://HOST:PORT` in %s%s",
				     cfg->path ? cfg->path : "/etc/omtools/omtools.conf",
				     " (with etcd_ca, etcd_cert, etcd_key and the cluster map)");
	map = cfg->map;
	if (map == NULL)
		map = access(OM_DEFAULT_MAP, F_OK) == 0 || access(OM_OPENMOSIX_MAP, F_OK) != 0 ? OM_DEFAULT_MAP
											       : OM_OPENMOSIX_MAP;
	if (om_map_load(map, &c->map, err) < 0) {
		om_error_set_exit(err, OM_EXIT_CLUSTER);
		return om_error_wrap(err, "cluster map");
	}
	if (cfg->node && *cfg->node) {
		c->self = om_map_find(&c->map, cfg->node);
		if (c->self == NULL) {
			cluster_error(err, "this node `%s` (node =, --node or $OM_NODE) is not in the cluster map %s",
				      cfg->node, map);
			goto fail;
		}
	} else if (need_self && om_map_self(&c->map, &c->self, err) < 0) {
		om_error_set_exit(err, OM_EXIT_CLUSTER);
		om_error_wrap(err, "which node is this (set `node =` in omtools.conf)");
		goto fail;
	}
	if (c->self)
		snprintf(c->self_id, sizeof(c->self_id), "%lu", c->self->id);
	ec.endpoints = cfg->etcd;
	ec.ca = cfg->etcd_ca;
	ec.cert = cfg->etcd_cert;
	ec.key = cfg->etcd_key;
	if (om_sandbox_start(&c->sb, err) < 0 || om_etcd_open(&ec, &c->etcd, err) < 0)
		goto fail;
	return 0;
fail:
	om_cluster_close(c);
	return -1;
}

void om_cluster_close(struct om_cluster *c)
{
	om_etcd_close(c->etcd);
	om_sandbox_stop(c->sb);
	om_map_release(&c->map);
	c->etcd = NULL;
	c->sb = NULL;
	c->self = NULL;
}

char *om_cluster_key(const struct om_cluster *c, const char *fmt, ...)
{
	cleanup_free char *rest = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&rest, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return NULL;
	return om_strdup_printf("%s/%s", c->prefix, rest);
}

int om_cluster_resolve(const struct om_cluster *c, const char *what, const Om__GroupOwner *owner,
		       const struct om_map_node **out, om_error_t *err)
{
	if (strcmp(what, "home") == 0) {
		if (owner == NULL)
			return cluster_error(err, "%s%s: the group has no home in the cluster", "home", "");
		what = owner->home;
	}
	*out = om_map_find(&c->map, what);
	if (*out == NULL)
		return cluster_error(err, "unknown node `%s`%s", what, ": not in the cluster map");
	return 0;
}

/* every value of ours starts with `required uint32 v = 1` */
struct versioned {
	ProtobufCMessage base;
	uint32_t v;
};

int om_cluster_get(struct om_cluster *c, const char *key, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out,
		   int64_t *mod_revision, om_error_t *err)
{
	struct om_etcd_range r = {0};
	int rc = 0;

	*out = NULL;
	if (mod_revision)
		*mod_revision = 0;
	if (om_etcd_get(c->etcd, key, false, 1, &r, err) < 0)
		return -1;
	if (r.n > 0) {
		if (mod_revision)
			*mod_revision = r.kvs[0].mod_revision;
		rc = om_sandbox_parse(c->sb, d, r.kvs[0].value, r.kvs[0].value_len, out, err);
		if (rc == 0 && ((struct versioned *)*out)->v != 1) {
			rc = om_make_error(err, OM_ECORRUPT, "version %u (this omtools reads 1)",
					   ((struct versioned *)*out)->v);
			protobuf_c_message_free_unpacked(*out, NULL);
			*out = NULL;
		}
		if (rc < 0)
			om_error_wrap(err, "etcd key %s", key);
	}
	om_etcd_range_release(&r);
	return rc;
}

int om_cluster_put(struct om_cluster *c, const char *key, const ProtobufCMessage *m, int64_t lease, om_error_t *err)
{
	cleanup_free char *json = om_pb_to_json(m);
	if (json == NULL)
		return om_make_error(err, ENOMEM, "encode %s", key);
	return om_etcd_put(c->etcd, key, json, strlen(json), lease, NULL, err);
}

/* ---- nodes ---- */

int om_cluster_nodes(struct om_cluster *c, struct om_node_info **out, size_t *n, om_error_t *err)
{
	struct om_etcd_range st = {0}, dr = {0};
	cleanup_free char *kn = om_cluster_key(c, "nodes/");
	cleanup_free char *kd = om_cluster_key(c, "drained/");
	struct om_node_info *v;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (!kn || !kd)
		return om_make_error(err, ENOMEM, "nodes");
	v = calloc(c->map.n + 1, sizeof(*v));
	if (v == NULL)
		return om_make_error(err, ENOMEM, "nodes");
	if (om_etcd_get(c->etcd, kn, true, 0, &st, err) < 0 || om_etcd_get(c->etcd, kd, true, 0, &dr, err) < 0)
		goto out;
	for (size_t i = 0; i < c->map.n; i++) {
		char id[OM_CLUSTER_MAX_NODE_LEN];
		v[i].node = &c->map.nodes[i];
		snprintf(id, sizeof(id), "%lu", c->map.nodes[i].id);
		for (size_t j = 0; j < st.n; j++) {
			ProtobufCMessage *m = NULL;
			om_error_t perr = NULL;
			if (strcmp(st.kvs[j].key + strlen(kn), id) != 0)
				continue;
			if (om_sandbox_parse(c->sb, &om__node_status__descriptor, st.kvs[j].value, st.kvs[j].value_len,
					     &m, &perr) < 0) {
				om_error_release(&perr); /* a node whose status does not parse counts as dead */
				continue;
			}
			v[i].status = (Om__NodeStatus *)m;
			v[i].alive = true;
		}
		for (size_t j = 0; j < dr.n; j++)
			if (strcmp(dr.kvs[j].key + strlen(kd), id) == 0)
				v[i].drained = true;
	}
	*out = v;
	*n = c->map.n;
	v = NULL;
	ret = 0;
out:
	om_cluster_nodes_free(v, c->map.n);
	om_etcd_range_release(&st);
	om_etcd_range_release(&dr);
	return ret;
}

void om_cluster_nodes_free(struct om_node_info *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (v[i].status)
			protobuf_c_message_free_unpacked(&v[i].status->base, NULL);
	free(v);
}

int om_cluster_check_target(struct om_cluster *c, const struct om_map_node *t, om_error_t *err)
{
	cleanup_free char *kn = om_cluster_key(c, "nodes/%lu", t->id);
	cleanup_free char *kd = om_cluster_key(c, "drained/%lu", t->id);
	struct om_etcd_range r = {0};
	char id[OM_CLUSTER_MAX_NODE_LEN];
	bool alive, drained;

	snprintf(id, sizeof(id), "%lu", t->id);
	if (!kn || !kd)
		return om_make_error(err, ENOMEM, "check node");
	if (om_etcd_get(c->etcd, kn, false, 1, &r, err) < 0)
		return -1;
	alive = r.n > 0;
	om_etcd_range_release(&r);
	if (om_etcd_get(c->etcd, kd, false, 1, &r, err) < 0)
		return -1;
	drained = r.n > 0;
	om_etcd_range_release(&r);
	if (drained)
		return cluster_error(err, "node %s is drained%s", id, " (omdrain --undo opens it again)");
	if (!alive)
		return cluster_error(err, "node %s is dead: %s", id,
				     "its omd holds no lease (not running, paused or cut off)");
	return 0;
}

int om_cluster_set_drained(struct om_cluster *c, const char *node, bool drained, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "drained/%s", node);
	char v[32];
	if (k == NULL)
		return om_make_error(err, ENOMEM, "drain");
	if (!drained)
		return om_etcd_delete(c->etcd, k, false, NULL, err);
	snprintf(v, sizeof(v), "%lld", (long long)om_wall_ms());
	return om_etcd_put(c->etcd, k, v, strlen(v), 0, NULL, err);
}

/* ---- owners ---- */

int om_owner_get(struct om_cluster *c, unsigned long g, Om__GroupOwner **out, int64_t *mod_revision, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "groups/%lu", g);
	ProtobufCMessage *m = NULL;
	if (k == NULL)
		return om_make_error(err, ENOMEM, "owner");
	if (om_cluster_get(c, k, &om__group_owner__descriptor, &m, mod_revision, err) < 0)
		return -1;
	if (m && ((Om__GroupOwner *)m)->group != g) {
		protobuf_c_message_free_unpacked(m, NULL);
		return om_make_error(err, OM_ECORRUPT, "etcd key %s names another group", k);
	}
	*out = (Om__GroupOwner *)m;
	return 0;
}

static char *owner_json(unsigned long g, const char *node, const char *home, uint64_t gen, const char *restoring_from)
{
	Om__GroupOwner o = OM__GROUP_OWNER__INIT;
	o.v = 1;
	o.restoring_from = (char *)restoring_from;
	o.group = g;
	o.node = (char *)node;
	o.home = (char *)home;
	o.has_since_ms = true;
	o.since_ms = om_wall_ms();
	if (gen) {
		o.has_generation = true;
		o.generation = gen;
	}
	return om_pb_to_json(&o.base);
}

int om_owner_claim(struct om_cluster *c, unsigned long g, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "groups/%lu", g);
	cleanup_free char *json = NULL;
	Om__GroupOwner *o = NULL;
	bool won = false;
	int rc;

	if (c->self == NULL)
		return cluster_error(err, "%s%s", "this node is not in the cluster map", "");
	json = owner_json(g, c->self_id, c->self_id, 0, NULL);
	if (k == NULL || json == NULL)
		return om_make_error(err, ENOMEM, "claim");
	if (om_etcd_txn(c->etcd, &(struct om_etcd_cmp){.key = k, .target = OM_ETCD_CREATE, .number = 0}, 1,
			&(struct om_etcd_op){.type = OM_ETCD_PUT, .key = k, .value = json, .value_len = strlen(json)},
			1, NULL, 0, &won, NULL, err) < 0)
		return -1;
	if (won)
		return 0;
	if (om_owner_get(c, g, &o, NULL, err) < 0)
		return -1;
	rc = 0;
	if (o && strcmp(o->node, c->self_id) != 0) {
		rc = om_make_error(err, EBUSY, "miggroup %lu belongs to node %s in the cluster (home %s)", g, o->node,
				   o->home);
		om_error_set_exit(err, OM_EXIT_BUSY);
	}
	if (o)
		protobuf_c_message_free_unpacked(&o->base, NULL);
	return rc;
}

int om_owner_release(struct om_cluster *c, unsigned long g, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "groups/%lu", g);
	Om__GroupOwner *o = NULL;
	int64_t rev = 0;
	bool won = false;
	int rc = 0;

	if (k == NULL)
		return om_make_error(err, ENOMEM, "release");
	if (om_owner_get(c, g, &o, &rev, err) < 0)
		return -1;
	if (o && strcmp(o->node, c->self_id) == 0)
		rc = om_etcd_txn(c->etcd, &(struct om_etcd_cmp){.key = k, .target = OM_ETCD_MOD, .number = rev}, 1,
				 &(struct om_etcd_op){.type = OM_ETCD_DEL, .key = k}, 1, NULL, 0, &won, NULL, err);
	if (o)
		protobuf_c_message_free_unpacked(&o->base, NULL);
	return rc;
}

int om_owner_put_at(struct om_cluster *c, unsigned long g, int64_t rev, const char *value, size_t len, bool *won,
		    int64_t *new_revision, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "groups/%lu", g);

	if (k == NULL || value == NULL)
		return om_make_error(err, ENOMEM, "owner of miggroup %lu", g);
	return om_etcd_txn(c->etcd, &(struct om_etcd_cmp){.key = k, .target = OM_ETCD_MOD, .number = rev}, 1,
			   &(struct om_etcd_op){.type = OM_ETCD_PUT, .key = k, .value = value, .value_len = len}, 1,
			   NULL, 0, won, new_revision, err);
}

static int owner_move(struct om_cluster *c, unsigned long g, int64_t rev, const Om__GroupOwner *from, const char *node,
		      uint64_t generation, const char *restoring_from, bool *won, int64_t *new_revision,
		      om_error_t *err)
{
	cleanup_free char *json =
	    owner_json(g, node, from && from->home ? from->home : node, generation, restoring_from);

	return om_owner_put_at(c, g, rev, json, json ? strlen(json) : 0, won, new_revision, err);
}

int om_owner_move(struct om_cluster *c, unsigned long g, int64_t rev, const Om__GroupOwner *from, const char *node,
		  uint64_t generation, bool *won, int64_t *new_revision, om_error_t *err)
{
	return owner_move(c, g, rev, from, node, generation, NULL, won, new_revision, err);
}

int om_owner_take_over(struct om_cluster *c, unsigned long g, int64_t rev, const Om__GroupOwner *from, bool *won,
		       int64_t *new_revision, om_error_t *err)
{
	return owner_move(c, g, rev, from, c->self_id, 0, from->node, won, new_revision, err);
}

int om_owner_set_ended(struct om_cluster *c, unsigned long g, int64_t rev, const Om__GroupOwner *cur, bool ended,
		       bool *won, om_error_t *err)
{
	cleanup_free char *json = NULL;
	Om__GroupOwner o = *cur; /* the same value, ended_ms set or cleared */

	o.has_ended_ms = ended;
	o.ended_ms = ended ? om_wall_ms() : 0;
	json = om_pb_to_json(&o.base);
	return om_owner_put_at(c, g, rev, json, json ? strlen(json) : 0, won, NULL, err);
}

/* omckpt stopped g here: its owner key says so (when it names this node) */
static int owner_ended(struct om_cluster *c, unsigned long g, om_error_t *err)
{
	Om__GroupOwner *o = NULL;
	int64_t rev = 0;
	bool won = false;
	int rc = 0;

	if (om_owner_get(c, g, &o, &rev, err) < 0)
		return -1;
	if (o && strcmp(o->node, c->self_id) == 0 && !o->has_ended_ms)
		rc = om_owner_set_ended(c, g, rev, o, true, &won, err);
	if (o)
		protobuf_c_message_free_unpacked(&o->base, NULL);
	return rc;
}

/* What a command does to g's owner key: claim, release, read the fence, or
 * mark it ended. */
enum owner_op { OWNER_CLAIM, OWNER_RELEASE, OWNER_FENCE, OWNER_ENDED };

static int with_owner(const struct om_config *cfg, unsigned long g, enum owner_op op, uint64_t *fence, om_error_t *err)
{
	struct om_cluster c;
	int rc;

	if (!om_cluster_configured(cfg))
		return 0;
	if (om_cluster_open(&c, cfg, true, err) < 0)
		return om_error_wrap(err, "miggroup %lu in the cluster", g);
	rc = op == OWNER_CLAIM	   ? om_owner_claim(&c, g, err)
	     : op == OWNER_RELEASE ? om_owner_release(&c, g, err)
	     : op == OWNER_ENDED   ? owner_ended(&c, g, err)
				   : om_owner_fence(&c, g, fence, err);
	om_cluster_close(&c);
	return rc;
}

int om_owner_fence(struct om_cluster *c, unsigned long g, uint64_t *fence, om_error_t *err)
{
	Om__GroupOwner *o = NULL;
	int64_t rev = 0;
	int rc = 0;

	*fence = 0;
	if (om_owner_get(c, g, &o, &rev, err) < 0)
		return -1;
	if (o && strcmp(o->node, c->self_id) != 0)
		rc = om_make_error(err, OM_ECLUSTER,
				   "miggroup %lu belongs to node %s in the cluster: this node does not checkpoint it",
				   g, o->node);
	else if (o)
		*fence = (uint64_t)rev;
	if (o)
		protobuf_c_message_free_unpacked(&o->base, NULL);
	return rc;
}

int om_cluster_group_fence(const struct om_config *cfg, unsigned long g, uint64_t *fence, om_error_t *err)
{
	*fence = 0;
	return with_owner(cfg, g, OWNER_FENCE, fence, err);
}

int om_cluster_claim_group(const struct om_config *cfg, unsigned long g, om_error_t *err)
{
	return with_owner(cfg, g, OWNER_CLAIM, NULL, err);
}

int om_cluster_release_group(const struct om_config *cfg, unsigned long g, om_error_t *err)
{
	return with_owner(cfg, g, OWNER_RELEASE, NULL, err);
}

int om_cluster_group_ended(const struct om_config *cfg, unsigned long g, om_error_t *err)
{
	return with_owner(cfg, g, OWNER_ENDED, NULL, err);
}

/* ---- requests ---- */

int om_request_id(char id[OM_REQ_ID_LEN + 1], om_error_t *err)
{
	unsigned char b[OM_REQ_ID_LEN / 2];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return om_make_error(err, errno ? errno : EIO, "getrandom");
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
	return 0;
}

int om_request_send(struct om_cluster *c, const char *node, Om__Request *req, om_error_t *err)
{
	static char idbuf[OM_REQ_ID_LEN + 1];
	cleanup_free char *k = NULL;

	if (req->id == NULL || *req->id == '\0') {
		if (om_request_id(idbuf, err) < 0)
			return -1;
		req->id = strdup(idbuf);
		if (req->id == NULL)
			return om_make_error(err, ENOMEM, "request");
	}
	req->v = 1;
	req->from = c->self_id;
	req->has_issued_ms = true;
	req->issued_ms = om_wall_ms();
	k = om_cluster_key(c, "req/%s/%s", node, req->id);
	if (k == NULL)
		return om_make_error(err, ENOMEM, "request");
	return om_cluster_put(c, k, &req->base, 0, err);
}

static bool is_req_id(const char *s)
{
	size_t i;
	for (i = 0; s && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s && i == OM_REQ_ID_LEN;
}

__attribute__((format(printf, 2, 3))) static int refuse(om_error_t *err, const char *fmt, ...)
{
	va_list ap;
	char buf[512];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return om_make_error(err, OM_EUSAGE, "%s", buf);
}

int om_request_validate(const struct om_cluster *c, const char *key_id, const Om__Request *r, int64_t now_ms,
			om_error_t *err)
{
	if (r->v != 1)
		return om_make_error(err, OM_EUSAGE, "version %u", r->v);
	if (!is_req_id(r->id) || strcmp(r->id, key_id) != 0)
		return refuse(err, "bad request id `%.40s` (32 hex digits, the same as its key's)", r->id);
	if (r->from == NULL || om_map_find(&c->map, r->from) == NULL)
		return refuse(err, "sender `%.40s` is not a node of the map", r->from ? r->from : "");
	if (!r->has_group || r->group == 0 || r->group > OM_GROUP_MAX)
		return refuse(err, "%sbad or missing group", "");
	if (!r->has_issued_ms || r->issued_ms < now_ms - OM_REQ_MAX_AGE_MS || r->issued_ms > now_ms + 60000)
		return refuse(err, "%sstale or future issue time", "");
	if (r->has_timeout_s && !(r->timeout_s >= 1 && r->timeout_s <= 3600))
		return refuse(err, "%sbad timeout", "");
	if (strcmp(r->op, "migrate") == 0) {
		if (r->to == NULL || om_map_find(&c->map, r->to) == NULL)
			return refuse(err, "target `%.40s` is not a node of the map", r->to ? r->to : "");
		if (strcmp(r->to, c->self_id) == 0)
			return refuse(err, "%sthe target is this node", "");
	} else if (strcmp(r->op, "restore") == 0) {
		if (!r->has_generation || r->generation == 0)
			return refuse(err, "%sbad or missing generation", "");
		if (!is_req_id(r->parent))
			return refuse(err, "%sbad or missing parent request", "");
	} else
		return refuse(err, "unknown operation `%.20s`", r->op);
	return 0;
}

int om_request_take(struct om_cluster *c, const char *id, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "seen/%s/%s", c->self_id, id);
	char v[32];
	bool won = false;

	if (k == NULL)
		return om_make_error(err, ENOMEM, "request");
	snprintf(v, sizeof(v), "%lld", (long long)om_wall_ms());
	if (om_etcd_txn(c->etcd, &(struct om_etcd_cmp){.key = k, .target = OM_ETCD_CREATE, .number = 0}, 1,
			&(struct om_etcd_op){.type = OM_ETCD_PUT, .key = k, .value = v, .value_len = strlen(v)}, 1,
			NULL, 0, &won, NULL, err) < 0)
		return -1;
	return won ? 1 : 0;
}

int om_reply_put(struct om_cluster *c, const Om__Reply *r, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "reply/%s", r->id);
	if (k == NULL)
		return om_make_error(err, ENOMEM, "reply");
	return om_cluster_put(c, k, &r->base, 0, err);
}

struct wait_ctx {
	struct om_cluster *c;
	Om__Reply *got;
};

static bool reply_final(const Om__Reply *r)
{
	return r && strcmp(r->state, "accepted") != 0;
}

static int on_reply(void *arg, const struct om_etcd_event *ev, om_error_t *err)
{
	struct wait_ctx *w = arg;
	ProtobufCMessage *m = NULL;

	if (ev->type != OM_ETCD_EV_PUT)
		return 0;
	if (om_sandbox_parse(w->c->sb, &om__reply__descriptor, ev->kv.value, ev->kv.value_len, &m, err) < 0)
		return -1;
	if (!reply_final((Om__Reply *)m)) {
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	w->got = (Om__Reply *)m;
	return 1;
}

int om_reply_wait(struct om_cluster *c, const char *id, const char *node, double timeout_s, int cancel_fd,
		  Om__Reply **out, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "reply/%s", id);
	cleanup_free char *kn = node ? om_cluster_key(c, "nodes/%s", node) : NULL;
	double deadline = om_now() + timeout_s;
	struct wait_ctx w = {.c = c};
	int64_t rev = 0;

	*out = NULL;
	if (k == NULL || (node && kn == NULL))
		return om_make_error(err, ENOMEM, "reply");
	for (;;) {
		ProtobufCMessage *m = NULL;
		struct om_etcd_range r = {0};
		double left = deadline - om_now();

		if (om_etcd_get(c->etcd, k, false, 1, &r, err) < 0)
			return -1;
		rev = r.revision + 1;
		if (r.n > 0) {
			int rc = om_sandbox_parse(c->sb, &om__reply__descriptor, r.kvs[0].value, r.kvs[0].value_len, &m,
						  err);
			om_etcd_range_release(&r);
			if (rc < 0)
				return om_error_wrap(err, "reply %s", id);
			if (reply_final((Om__Reply *)m)) {
				*out = (Om__Reply *)m;
				return 0;
			}
			protobuf_c_message_free_unpacked(m, NULL);
		} else
			om_etcd_range_release(&r);
		if (kn) {
			if (om_etcd_get(c->etcd, kn, false, 1, &r, err) < 0)
				return -1;
			if (r.n == 0) {
				om_etcd_range_release(&r);
				return cluster_error(err, "node %s went away (its omd's lease expired)%s", node, "");
			}
			om_etcd_range_release(&r);
		}
		if (left <= 0)
			return 0;
		if (om_etcd_watch(c->etcd, k, false, rev, left < 1 ? left : 1, cancel_fd, on_reply, &w, NULL, err) < 0)
			return -1;
		if (w.got) {
			*out = w.got;
			return 0;
		}
		if (cancel_fd > 0 && om_cancelled(cancel_fd))
			return om_make_error(err, ECANCELED, "cancelled while waiting for node %s", node ? node : "?");
	}
}
