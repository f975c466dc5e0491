/* cluster/migrate.c — see migrate.h. */
#include "config.h"
#include "migrate.h"

#include "cgroup.h"
#include "checkpoint.h"
#include "group.h"
#include "restore.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OM_MIGRATE_DEFAULT_TIMEOUT 300.0

void om_migrate_out_release(struct om_migrate_out *o)
{
	for (size_t i = 0; i < o->n_lines; i++)
		free(o->lines[i]);
	free(o->lines);
	memset(o, 0, sizeof(*o));
}

static void free_msg(void *p)
{
	ProtobufCMessage **m = p;
	if (*m)
		protobuf_c_message_free_unpacked(*m, NULL);
	*m = NULL;
}
#define cleanup_msg __attribute__((cleanup(free_msg)))

/* Delete a key of ours (best effort: what stays is pruned by omd later). */
__attribute__((format(printf, 2, 3))) static void drop_key(struct om_cluster *c, const char *fmt, ...)
{
	char rest[256];
	cleanup_free char *k = NULL;
	om_error_t err = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	k = om_cluster_key(c, "%s", rest);
	if (k && om_etcd_delete(c->etcd, k, false, NULL, &err) < 0)
		om_error_release(&err);
}

struct handoff {
	struct om_cluster *c;
	const Om__Request *req; /* the migrate request */
	const Om__GroupOwner *owner;
	int64_t owner_rev;
	int cancel_fd;
	double downtime;
	char lost_to[OM_CLUSTER_MAX_NODE_LEN]; /* taken over by a third node (failover) */
};

static void cluster_fail(om_error_t *err)
{
	if (*err && (*err)->exit_code == 0)
		om_error_set_exit(err, OM_EXIT_CLUSTER);
}

/* After the restore request: take the key back unless the target has it. 0:
 * the target has the group after all; -1: it is ours (again), thaw. */
static int fence(struct handoff *h, om_error_t *err)
{
	cleanup_msg Om__GroupOwner *now = NULL;
	om_error_t ferr = NULL;
	bool won = false;

	if (om_owner_move(h->c, h->req->group, h->owner_rev, h->owner, h->c->self_id, 0, &won, NULL, &ferr) < 0) {
		/* etcd unreachable: the target cannot move the key either */
		om_error_append(err, "taking the group back: %s", ferr && ferr->msg ? ferr->msg : "?");
		om_error_release(&ferr);
		return -1;
	}
	if (won)
		return -1;
	if (om_owner_get(h->c, h->req->group, &now, NULL, &ferr) == 0 && now && strcmp(now->node, h->req->to) == 0) {
		om_error_release(err); /* the target won the race: it runs there */
		return 0;
	}
	if (now && strcmp(now->node, h->c->self_id) != 0) {
		/* a third node took the group over (this node was taken for dead:
		 * cluster/failover.h): it runs there, the frozen copy here must stop */
		snprintf(h->lost_to, sizeof(h->lost_to), "%s", now->node);
		om_error_release(err);
		return 0;
	}
	om_error_release(&ferr);
	om_error_append(err, "the ownership of the group changed meanwhile");
	return -1;
}

static int handoff(void *arg, const struct om_ckpt_result *res, om_error_t *err)
{
	struct handoff *h = arg;
	Om__Request rq = OM__REQUEST__INIT;
	cleanup_msg Om__Reply *rep = NULL;
	double timeout = h->req->has_timeout_s ? h->req->timeout_s : OM_MIGRATE_DEFAULT_TIMEOUT;
	cleanup_free char *rkey = NULL;
	int wrc;

	rq.op = "restore";
	rq.has_group = true;
	rq.group = h->req->group;
	rq.has_generation = true;
	rq.generation = res->generation;
	rq.parent = h->req->id;
	rq.has_owner_revision = true;
	rq.owner_revision = h->owner_rev;
	rq.has_timeout_s = true;
	rq.timeout_s = timeout;
	if (om_request_send(h->c, h->req->to, &rq, err) < 0) {
		cluster_fail(err);
		return om_error_wrap(err, "ask node %s to restore", h->req->to);
	}
	rkey = om_cluster_key(h->c, "req/%s/%s", h->req->to, rq.id);
	wrc = om_reply_wait(h->c, rq.id, h->req->to, timeout, h->cancel_fd, &rep, err);
	if (wrc == 0 && rep)
		drop_key(h->c, "reply/%s", rq.id); /* read: nobody else wants it */
	if (wrc < 0)
		cluster_fail(err);
	else if (rep == NULL)
		om_make_error(err, ETIMEDOUT, "node %s did not restore the group within %.0f s", h->req->to, timeout),
		    om_error_set_exit(err, OM_EXIT_CLUSTER);
	else if (strcmp(rep->state, "running") == 0) {
		h->downtime = om_now() - res->freeze_started;
		free(rq.id);
		return 0;
	} else {
		om_make_error(err, OM_ECLUSTER, "node %s: %s", h->req->to, rep->error ? rep->error : rep->state);
		om_error_set_exit(err, rep->has_exit_code && rep->exit_code > 0 ? rep->exit_code : OM_EXIT_CLUSTER);
	}
	if (rkey) /* never picked up: it must not run later */
		drop_key(h->c, "req/%s/%s", h->req->to, rq.id);
	free(rq.id);
	if (fence(h, err) == 0) {
		h->downtime = om_now() - res->freeze_started;
		return 0;
	}
	return -1;
}

int om_migrate_ask(struct om_cluster *c, const char *source, unsigned long g, const char *to, double timeout_s,
		   bool tcp_established, char id[OM_REQ_ID_LEN + 1], om_error_t *err)
{
	Om__Request rq = OM__REQUEST__INIT;

	if (om_request_id(id, err) < 0)
		return -1;
	rq.id = id;
	rq.op = "migrate";
	rq.has_group = true;
	rq.group = g;
	rq.to = (char *)to;
	rq.has_timeout_s = true;
	rq.timeout_s = timeout_s;
	rq.has_tcp_established = tcp_established;
	rq.tcp_established = tcp_established;
	return om_request_send(c, source, &rq, err);
}

int om_migrate_source(struct om_cluster *c, const Om__Request *req, int cancel_fd, struct om_migrate_out *out,
		      om_error_t *err)
{
	cleanup_msg Om__GroupOwner *owner = NULL;
	struct om_ckpt_opts o = {0};
	struct om_ckpt_result res;
	struct handoff h = {.c = c, .req = req, .cancel_fd = cancel_fd};
	const struct om_map_node *t = om_map_find(&c->map, req->to);
	cleanup_free pid_t *pids = NULL;
	size_t np = 0;
	struct om_cg cg;
	struct om_group g;
	double t0 = om_now();

	memset(out, 0, sizeof(*out));
	if (om_owner_get(c, req->group, &owner, &h.owner_rev, err) < 0)
		return cluster_fail(err), -1;
	if (owner == NULL || strcmp(owner->node, c->self_id) != 0) {
		om_make_error(err, OM_ENOTFOUND, "miggroup %lu does not run on node %s (%s%s)",
			      (unsigned long)req->group, c->self_id,
			      owner ? "it runs on node " : "etcd has no owner for it", owner ? owner->node : "");
		return -1;
	}
	h.owner = owner;
	if (t == NULL || om_cluster_check_target(c, t, err) < 0)
		return t ? -1 : om_make_error(err, OM_ECLUSTER, "unknown node %s", req->to);
	/* the processes, for the seed's "migrate PID to NODE" lines */
	if (om_cg_init(&cg, err) < 0 || om_group_load(&cg, req->group, &g, err) < 0)
		return -1;
	if (om_group_pids(&g, &pids, &np, err) < 0) {
		om_group_release(&g);
		return -1;
	}
	om_group_release(&g);
	o.group = req->group;
	o.store = c->cfg->store;
	o.zstd_level = 1; /* the group is frozen until the target runs it: speed over size */
	o.cancel_fd = cancel_fd;
	o.lock_wait = 30; /* a periodic checkpoint of the group (omd's scheduler) may hold its lock: wait for it */
	o.tcp_established = req->has_tcp_established && req->tcp_established;
	o.handoff = handoff;
	o.handoff_arg = &h;
	if (om_checkpoint(&o, &res, err) < 0)
		return -1;
	{ /* the group has left: its empty cgroups go too */
		om_error_t rerr = NULL;
		if (om_group_reset(&cg, req->group, NULL, NULL, &rerr) < 0)
			om_error_release(&rerr);
	}
	if (h.lost_to[0]) {
		om_ckpt_result_release(&res);
		om_make_error(err, OM_ECLUSTER, "miggroup %lu was taken over by node %s during the migration: %s",
			      (unsigned long)req->group, h.lost_to, "the copy here was stopped");
		return om_error_set_exit(err, OM_EXIT_CLUSTER);
	}
	out->generation = res.generation;
	out->downtime_s = h.downtime;
	out->total_s = om_now() - t0;
	om_ckpt_result_release(&res);
	out->lines = calloc(np + 1, sizeof(char *));
	if (out->lines)
		for (size_t i = 0; i < np; i++)
			if ((out->lines[out->n_lines] = om_strdup_printf("migrate %d to %s", (int)pids[i], req->to)))
				out->n_lines++;
	return 0;
}

static void fault_pause(const char *fault, const char *point)
{
	size_t n = strlen(point);
	unsigned long secs = 10;
	if (fault == NULL || strncmp(fault, point, n) != 0 || (fault[n] != '\0' && fault[n] != ':'))
		return;
	if (fault[n] == ':')
		(void)om_parse_uint(fault + n + 1, 120, &secs);
	om_sleep_ms((long)secs * 1000);
}

int om_migrate_target(struct om_cluster *c, const Om__Request *req, int cancel_fd, const char *fault, size_t *n_trees,
		      om_error_t *err)
{
	cleanup_msg Om__GroupOwner *owner = NULL;
	struct om_restore_opts ro = {0};
	struct om_restore_result rr;
	struct om_cg cg;
	struct om_group g;
	int64_t rev = 0;
	bool won = false;
	int ret = -1;

	*n_trees = 0;
	if (!req->has_owner_revision || req->owner_revision <= 0)
		return om_make_error(err, OM_EUSAGE, "restore request without the owner's revision");
	if (om_owner_get(c, req->group, &owner, &rev, err) < 0)
		return cluster_fail(err), -1;
	if (owner == NULL || strcmp(owner->node, req->from) != 0 || rev != req->owner_revision) {
		om_make_error(err, OM_ECLUSTER, "miggroup %lu is not node %s's to give (owner %s)",
			      (unsigned long)req->group, req->from, owner ? owner->node : "none");
		return om_error_set_exit(err, OM_EXIT_CLUSTER);
	}
	if (om_cg_init(&cg, err) < 0)
		return -1;
	{
		/* the group belongs to the source: what this node holds of it is a
		 * stale copy (a migration here that lost its transaction, with omd
		 * gone before it could clean up) */
		om_error_t kerr = NULL;
		if (om_group_remove(&cg, req->group, &kerr) < 0)
			om_error_release(&kerr);
	}
	ro.group = req->group;
	ro.store = c->cfg->store;
	ro.generation = req->generation;
	ro.cancel_fd = cancel_fd;
	fault_pause(fault, "target-before-restore");
	if (om_restore(&ro, &rr, err) < 0)
		return -1;
	*n_trees = rr.m ? rr.m->n_trees : 0;
	om_restore_result_release(&rr);

	/* it exists here now: held still until the key says it is ours */
	if (om_group_load(&cg, req->group, &g, err) < 0)
		return -1;
	if (om_group_freeze(&g, 10, cancel_fd, err) < 0)
		goto kill;
	fault_pause(fault, "target-before-commit");
	if (om_owner_move(c, req->group, req->owner_revision, owner, c->self_id, req->generation, &won, NULL, err) <
	    0) {
		cluster_fail(err);
		goto kill;
	}
	if (!won) {
		om_make_error(err, OM_ECLUSTER, "node %s took miggroup %lu back before this node could (timeout)",
			      req->from, (unsigned long)req->group);
		om_error_set_exit(err, OM_EXIT_CLUSTER);
		goto kill;
	}
	if (om_group_thaw(&g, err) < 0)
		goto out;
	ret = 0;
	goto out;
kill : {
	om_error_t kerr = NULL;
	if (om_group_kill(&g, &kerr) < 0)
		om_error_release(&kerr);
	if (om_group_reset(&cg, req->group, NULL, NULL, &kerr) < 0)
		om_error_release(&kerr);
}
out:
	om_group_release(&g);
	return ret;
}
