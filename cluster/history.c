/* cluster/history.c — see history.h. */
#include "config.h"
#include "history.h"

#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned history_seq(void)
{
	static pid_t pid;
	static unsigned n;
	if (pid != getpid()) { /* a forked worker counts apart from its parent */
		pid = getpid();
		n = (unsigned)pid * 1000u;
	}
	return n++;
}

/* delete the oldest events beyond OM_HISTORY_MAX, at most OM_HISTORY_TRIM */
static int trim(struct om_cluster *c, const char *pfx, om_error_t *err)
{
	struct om_etcd_range r = {0};
	int64_t over;
	int rc = 0;

	if (om_etcd_get_opts(c->etcd, pfx, true, 0, OM_ETCD_COUNT_ONLY, &r, err) < 0)
		return -1;
	over = r.count - OM_HISTORY_MAX;
	om_etcd_range_release(&r);
	if (over <= 0)
		return 0;
	if (over > OM_HISTORY_TRIM)
		over = OM_HISTORY_TRIM;
	if (om_etcd_get_opts(c->etcd, pfx, true, over, OM_ETCD_KEYS_ONLY, &r, err) < 0)
		return -1;
	for (size_t i = 0; i < r.n && rc == 0; i++)
		rc = om_etcd_delete(c->etcd, r.kvs[i].key, false, NULL, err);
	om_etcd_range_release(&r);
	return rc;
}

int om_history_add(struct om_cluster *c, Om__HistoryEvent *ev, om_error_t *err)
{
	cleanup_free char *pfx = om_cluster_key(c, "history/");
	const char *node;
	bool won = false;

	if (pfx == NULL)
		return om_make_error(err, ENOMEM, "history");
	if (ev->v == 0)
		ev->v = 1;
	if (ev->time_ms == 0)
		ev->time_ms = om_wall_ms();
	if (ev->node == NULL)
		ev->node = c->self_id[0] ? c->self_id : "-";
	if (ev->event == NULL)
		return om_make_error(err, EINVAL, "history: an event without a name");
	node = ev->node;
	for (int tries = 0; !won && tries < 8; tries++) {
		cleanup_free char *json = om_pb_to_json(&ev->base);
		cleanup_free char *k =
		    om_strdup_printf("%s%016lld-%s-%u", pfx, (long long)ev->time_ms, node, history_seq());
		if (json == NULL || k == NULL)
			return om_make_error(err, ENOMEM, "history");
		if (om_etcd_txn(
			c->etcd, &(struct om_etcd_cmp){.key = k, .target = OM_ETCD_CREATE, .number = 0}, 1,
			&(struct om_etcd_op){.type = OM_ETCD_PUT, .key = k, .value = json, .value_len = strlen(json)},
			1, NULL, 0, &won, NULL, err) < 0)
			return om_error_wrap(err, "history");
	}
	if (!won)
		return om_make_error(err, EEXIST, "history: no free key for the event");
	if (trim(c, pfx, err) < 0)
		return om_error_wrap(err, "history: trim");
	return 0;
}

void om_history_free(Om__HistoryEvent **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (v[i])
			protobuf_c_message_free_unpacked(&v[i]->base, NULL);
	free(v);
}

int om_history_list(struct om_cluster *c, uint64_t group, size_t limit, Om__HistoryEvent ***out, size_t *n,
		    om_error_t *err)
{
	cleanup_free char *pfx = om_cluster_key(c, "history/");
	struct om_etcd_range r = {0};
	Om__HistoryEvent **v;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (pfx == NULL)
		return om_make_error(err, ENOMEM, "history");
	/* newest first; with a group, every event is read and filtered here */
	if (om_etcd_get_opts(c->etcd, pfx, true, group == 0 && limit > 0 ? (int64_t)limit : 0, OM_ETCD_DESCEND, &r,
			     err) < 0)
		return om_error_wrap(err, "history");
	v = calloc(r.n + 1, sizeof(*v));
	if (v == NULL) {
		om_etcd_range_release(&r);
		return om_make_error(err, ENOMEM, "history");
	}
	for (size_t i = 0; i < r.n && (limit == 0 || k < limit); i++) {
		ProtobufCMessage *m = NULL;
		om_error_t perr = NULL;
		if (om_sandbox_parse(c->sb, &om__history_event__descriptor, r.kvs[i].value, r.kvs[i].value_len, &m,
				     &perr) < 0) {
			om_error_release(&perr);
			continue;
		}
		if (((Om__HistoryEvent *)m)->v != 1 || (group && ((Om__HistoryEvent *)m)->group != group)) {
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		v[k++] = (Om__HistoryEvent *)m;
	}
	om_etcd_range_release(&r);
	for (size_t i = 0; i < k / 2; i++) { /* oldest first */
		Om__HistoryEvent *t = v[i];
		v[i] = v[k - 1 - i];
		v[k - 1 - i] = t;
	}
	*out = v;
	*n = k;
	return 0;
}
