/* cluster/agent.c — see agent.h. */
#include "config.h"
#include "agent.h"

#include "cgroup.h"
#include "cluster.h"
#include "failover.h"
#include "group.h"
#include "history.h"
#include "migrate.h"
#include "schedule.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BATCH 64
#define MAX_WORKERS 256

struct worker {
	pid_t pid;
	char id[OM_REQ_ID_LEN + 1];
	char op[16];
	unsigned long group;
};

struct agent {
	const struct om_agent_opts *o;
	struct om_cluster c;
	int64_t lease;
	int64_t started_ms;
	struct worker workers[MAX_WORKERS];
	/* the requests of one watch round */
	struct {
		char *key, *value;
		size_t len;
	} batch[MAX_BATCH];
	size_t n_batch;
	bool stop;
	struct om_failover *fo;
	double last_ok;		/* the last keep-alive etcd answered with the lease alive (om_now) */
	struct om_sched *sched; /* periodic checkpoints by policy */
};

__attribute__((format(printf, 2, 3))) static void alog(struct agent *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	om_vlogf(a->o->log, a->o->log_arg, fmt, ap);
	va_end(ap);
}

/* a value for a log line: quoted, with quotes and newlines replaced */
static const char *q(const char *s, char *buf, size_t len)
{
	size_t j = 0;
	if (len < 3)
		return "\"\"";
	buf[j++] = '"';
	for (; s && *s && j + 2 < len; s++)
		buf[j++] = (*s == '"' || *s == '\n' || *s == '\\') ? '\'' : (unsigned char)*s < 0x20 ? '?' : *s;
	buf[j++] = '"';
	buf[j] = '\0';
	return buf;
}

static const char *errmsg(om_error_t err)
{
	return err && err->msg ? err->msg : "unknown error";
}

/* An event (failover, stale-kill, lease-lost; the periodic checkpoints and
 * prunes): one log line of key=value pairs and one entry of the cluster's
 * history. A detail made of key=value words goes into the line as it is
 * (detect_s=4.1 restore_s=2.0), any other as reason="...". */
static void agent_event(void *arg, const Om__HistoryEvent *ev)
{
	struct agent *a = arg;
	Om__HistoryEvent e = *ev;
	om_error_t err = NULL;
	char line[2048], b[1100];
	size_t n = 0;
	bool kv = ev->detail && *ev->detail;

#define ADD(...) (n += n < sizeof(line) ? (size_t)snprintf(line + n, sizeof(line) - n, __VA_ARGS__) : 0)
	ADD("event=%s", ev->event ? ev->event : "?");
	if (ev->has_group)
		ADD(" group=%llu", (unsigned long long)ev->group);
	if (ev->from)
		ADD(" from=%s", ev->from);
	if (ev->to)
		ADD(" to=%s", ev->to);
	if (ev->has_generation)
		ADD(" generation=%llu", (unsigned long long)ev->generation);
	if (ev->has_fence)
		ADD(" fence=%lld", (long long)ev->fence);
	for (const char *p = ev->detail; kv && p && *p;) { /* words KEY=VALUE, KEY [a-z_], VALUE [0-9.?] */
		size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz_"), v = 0;
		if (k > 0 && p[k] == '=')
			v = strspn(p + k + 1, "0123456789.?");
		if (v == 0 || (p[k + 1 + v] != ' ' && p[k + 1 + v] != '\0')) {
			kv = false;
			break;
		}
		p += k + 1 + v;
		p += *p == ' ';
	}
	if (kv)
		ADD(" %s", ev->detail);
	if (ev->has_seconds)
		ADD(" seconds=%.1f", ev->seconds);
	if (ev->has_ok && !ev->ok)
		ADD(" ok=false");
	if (ev->detail && *ev->detail && !kv)
		ADD(" reason=%s", q(ev->detail, b, sizeof(b)));
#undef ADD
	if (a->o->log)
		a->o->log(a->o->log_arg, line);
	if (om_history_add(&a->c, &e, &err) < 0) {
		alog(a, "event=history-failed reason=%s", q(errmsg(err), b, sizeof(b)));
		om_error_release(&err);
	}
}

static void agent_log(void *arg, const char *line)
{
	struct agent *a = arg;
	if (a->o->log)
		a->o->log(a->o->log_arg, line);
}

/* ---- status ---- */

static void meminfo(uint64_t *total, uint64_t *avail)
{
	cleanup_fclose FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long v;
	*total = *avail = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
			*total = v * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
			*avail = v * 1024;
	}
}

static double load1(void)
{
	cleanup_fclose FILE *f = fopen("/proc/loadavg", "re");
	double l = 0;
	if (f == NULL || fscanf(f, "%lf", &l) != 1)
		return 0;
	return l;
}

static int publish(struct agent *a, om_error_t *err)
{
	Om__NodeStatus s = OM__NODE_STATUS__INIT;
	cleanup_free unsigned long *ids = NULL;
	cleanup_free uint64_t *groups = NULL;
	cleanup_free char *key = om_cluster_key(&a->c, "nodes/%s", a->c.self_id);
	cleanup_free char *kd = om_cluster_key(&a->c, "drained/%s", a->c.self_id);
	struct om_etcd_range r = {0};
	struct om_cg cg;
	size_t n = 0;

	if (key == NULL || kd == NULL)
		return om_make_error(err, ENOMEM, "status");
	if (om_cg_init(&cg, err) < 0 || om_group_list(&cg, &ids, &n, err) < 0)
		return -1;
	groups = calloc(n + 1, sizeof(*groups));
	if (groups == NULL)
		return om_make_error(err, ENOMEM, "status");
	for (size_t i = 0; i < n; i++) { /* the groups with processes: an empty leftover is no group */
		struct om_group g;
		om_error_t gerr = NULL;
		if (om_group_load(&cg, ids[i], &g, &gerr) < 0) {
			om_error_release(&gerr);
			continue;
		}
		if (g.n_trees > 0)
			groups[s.n_groups++] = ids[i];
		om_group_release(&g);
	}
	if (om_etcd_get(a->c.etcd, kd, false, 1, &r, err) < 0)
		return -1;
	s.has_drained = true;
	s.drained = r.n > 0;
	om_etcd_range_release(&r);
	s.v = 1;
	s.node = a->c.self_id;
	s.addr = (char *)a->c.self->addr;
	s.has_load1 = true;
	s.load1 = load1();
	s.has_cpus = true;
	s.cpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	s.has_mem_total = s.has_mem_avail = true;
	meminfo(&s.mem_total, &s.mem_avail);
	s.groups = groups;
	s.has_omd_pid = true;
	s.omd_pid = (int32_t)getpid();
	s.has_updated_ms = true;
	s.updated_ms = om_wall_ms();
	s.has_started_ms = true;
	s.started_ms = a->started_ms;
	s.version = PACKAGE_VERSION;
	return om_cluster_put(&a->c, key, &s.base, a->lease, err);
}

/* ---- the node's groups against the cluster's owners ---- */

static void kill_local(struct agent *a, const struct om_cg *cg, unsigned long id, const char *owner)
{
	Om__HistoryEvent ev = OM__HISTORY_EVENT__INIT;
	om_error_t err = NULL;
	char b[512];

	if (om_group_remove(cg, id, &err) < 0) {
		alog(a, "event=stale-kill-failed group=%lu owner=%s reason=%s", id, owner,
		     q(errmsg(err), b, sizeof(b)));
		om_error_release(&err);
	}
	alog(a, "event=stale-killed group=%lu owner=%s", id, owner);
	ev.event = "stale-kill"; /* the history only: the line above is the log's */
	ev.has_group = true;
	ev.group = id;
	ev.to = (char *)owner;
	if (om_history_add(&a->c, &ev, &err) < 0)
		om_error_release(&err);
}

static void reconcile(struct agent *a)
{
	cleanup_free unsigned long *ids = NULL;
	struct om_cg cg;
	om_error_t err = NULL;
	size_t n = 0;
	char b[512];

	if (om_cg_init(&cg, &err) < 0 || om_group_list(&cg, &ids, &n, &err) < 0) {
		alog(a, "event=reconcile-failed reason=%s", q(errmsg(err), b, sizeof(b)));
		om_error_release(&err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		Om__GroupOwner *o = NULL;
		if (om_owner_get(&a->c, ids[i], &o, NULL, &err) < 0) {
			alog(a, "event=reconcile-failed group=%lu reason=%s", ids[i], q(errmsg(err), b, sizeof(b)));
			om_error_release(&err);
			continue;
		}
		if (o == NULL) {
			if (om_owner_claim(&a->c, ids[i], &err) < 0) {
				alog(a, "event=claim-failed group=%lu reason=%s", ids[i], q(errmsg(err), b, sizeof(b)));
				om_error_release(&err);
			} else
				alog(a, "event=claimed group=%lu", ids[i]);
		} else if (strcmp(o->node, a->c.self_id) != 0)
			kill_local(a, &cg, ids[i], o->node);
		if (o)
			protobuf_c_message_free_unpacked(&o->base, NULL);
	}
}

/* ---- workers ---- */

static void reply(struct om_cluster *c, const Om__Request *r, const char *state, om_error_t err,
		  const struct om_migrate_out *mo)
{
	Om__Reply rep = OM__REPLY__INIT;
	om_error_t perr = NULL;

	rep.v = 1;
	rep.id = r->id;
	rep.node = c->self_id;
	rep.state = (char *)state;
	rep.has_updated_ms = true;
	rep.updated_ms = om_wall_ms();
	if (err) {
		rep.error = err->msg ? err->msg : "failed";
		rep.has_exit_code = true;
		rep.exit_code = om_error_exit_code(err);
	}
	if (mo) {
		rep.has_downtime_s = rep.has_total_s = rep.has_generation = true;
		rep.downtime_s = mo->downtime_s;
		rep.total_s = mo->total_s;
		rep.generation = mo->generation;
		rep.lines = mo->lines;
		rep.n_lines = mo->n_lines;
		rep.source = c->self_id;
		rep.target = r->to;
	}
	if (om_reply_put(c, &rep, &perr) < 0)
		om_error_release(&perr);
}

/* In the worker: a fresh client (the agent's curl handle and parser child
 * are the agent's own), the job, the reply, the request key deleted. */
static int work(const struct om_config *cfg, const char *fault, const Om__Request *r)
{
	struct om_cluster c;
	om_error_t err = NULL;
	struct om_migrate_out mo = {0};
	cleanup_free char *key = NULL;
	int rc;

	if (om_cluster_open(&c, cfg, true, &err) < 0) {
		om_error_release(&err);
		return OM_EXIT_CLUSTER;
	}
	key = om_cluster_key(&c, "req/%s/%s", c.self_id, r->id);
	if (strcmp(r->op, "migrate") == 0) {
		reply(&c, r, "accepted", NULL, NULL);
		rc = om_migrate_source(&c, r, -1, &mo, &err);
		reply(&c, r, rc == 0 ? "done" : "failed", err, rc == 0 ? &mo : NULL);
		om_migrate_out_release(&mo);
	} else {
		size_t n = 0;
		rc = om_migrate_target(&c, r, -1, fault, &n, &err);
		reply(&c, r, rc == 0 ? "running" : "failed", err, NULL);
	}
	if (key) {
		om_error_t derr = NULL;
		if (om_etcd_delete(c.etcd, key, false, NULL, &derr) < 0)
			om_error_release(&derr);
	}
	rc = rc == 0 ? 0 : om_error_exit_code(err);
	om_error_release(&err);
	om_cluster_close(&c);
	return rc;
}

static void start_worker(struct agent *a, const Om__Request *r)
{
	struct worker *w = NULL;
	sigset_t none;
	pid_t pid;

	for (size_t i = 0; i < MAX_WORKERS && !w; i++)
		if (a->workers[i].pid == 0)
			w = &a->workers[i];
	if (w == NULL) {
		alog(a, "event=request-refused id=%s reason=\"too many requests at once\"", r->id);
		return;
	}
	pid = fork();
	if (pid < 0) {
		alog(a, "event=request-failed id=%s reason=\"fork: %s\"", r->id, strerror(errno));
		return;
	}
	if (pid == 0) {
		/* a restore dies with omd (the keeper then removes what it
		 * restored; a group it already holds frozen stays frozen, and the
		 * source takes the group back); a migration's source half finishes
		 * its hand-off, whatever happens to omd */
		if (strcmp(r->op, "restore") == 0)
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		_exit(work(a->o->cfg, a->o->fault, r));
	}
	w->pid = pid;
	snprintf(w->id, sizeof(w->id), "%s", r->id);
	snprintf(w->op, sizeof(w->op), "%s", r->op);
	w->group = (unsigned long)r->group;
	alog(a, "event=request-started id=%s op=%s group=%lu from=%s%s%s worker=%d", r->id, r->op, w->group, r->from,
	     r->to ? " to=" : "", r->to ? r->to : "", (int)pid);
}

static void reap(struct agent *a)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (a->fo && om_failover_reaped(a->fo, pid, st))
			continue;
		for (size_t i = 0; i < MAX_WORKERS; i++) {
			struct worker *w = &a->workers[i];
			if (w->pid != pid)
				continue;
			alog(a, "event=request-finished id=%s op=%s group=%lu exit=%d", w->id, w->op, w->group,
			     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			w->pid = 0;
		}
		om_sched_reaped(a->sched, pid, st);
	}
}

/* ---- requests ---- */

static void drop_request(struct agent *a, const char *key)
{
	om_error_t err = NULL;
	if (om_etcd_delete(a->c.etcd, key, false, NULL, &err) < 0)
		om_error_release(&err);
}

static void handle(struct agent *a, const char *key, const char *value, size_t len)
{
	cleanup_free char *pfx = om_cluster_key(&a->c, "req/%s/", a->c.self_id);
	ProtobufCMessage *m = NULL;
	Om__Request *r;
	om_error_t err = NULL;
	const char *id;
	char b[512], kb[160];
	int rc;

	if (pfx == NULL || strncmp(key, pfx, strlen(pfx)) != 0)
		return;
	id = key + strlen(pfx);
	q(id, kb, sizeof(kb));
	if (om_sandbox_parse(a->c.sb, &om__request__descriptor, value, len, &m, &err) < 0) {
		alog(a, "event=request-refused key=%s reason=%s", kb, q(errmsg(err), b, sizeof(b)));
		om_error_release(&err);
		drop_request(a, key);
		return;
	}
	r = (Om__Request *)m;
	if (om_request_validate(&a->c, id, r, om_wall_ms(), &err) < 0) {
		alog(a, "event=request-refused key=%s reason=%s", kb, q(errmsg(err), b, sizeof(b)));
		om_error_release(&err);
		drop_request(a, key);
		goto out;
	}
	rc = om_request_take(&a->c, r->id, &err);
	if (rc <= 0) {
		if (rc < 0) {
			alog(a, "event=request-failed id=%s reason=%s", r->id, q(errmsg(err), b, sizeof(b)));
			om_error_release(&err);
			goto out; /* etcd trouble: left for the next round */
		}
		alog(a, "event=request-refused id=%s reason=\"replayed: this request id was used before\"", r->id);
		drop_request(a, key);
		goto out;
	}
	start_worker(a, r);
out:
	protobuf_c_message_free_unpacked(m, NULL);
}

static int on_event(void *arg, const struct om_etcd_event *ev, om_error_t *err)
{
	struct agent *a = arg;
	if (ev->type != OM_ETCD_EV_PUT || a->n_batch >= MAX_BATCH)
		return a->n_batch >= MAX_BATCH;
	a->batch[a->n_batch].key = strdup(ev->kv.key);
	a->batch[a->n_batch].value = malloc(ev->kv.value_len + 1);
	if (!a->batch[a->n_batch].key || !a->batch[a->n_batch].value) {
		free(a->batch[a->n_batch].key);
		free(a->batch[a->n_batch].value);
		return om_make_error(err, ENOMEM, "request");
	}
	memcpy(a->batch[a->n_batch].value, ev->kv.value, ev->kv.value_len);
	a->batch[a->n_batch].value[ev->kv.value_len] = '\0';
	a->batch[a->n_batch].len = ev->kv.value_len;
	a->n_batch++;
	return 1; /* handle it now */
}

static void run_batch(struct agent *a)
{
	for (size_t i = 0; i < a->n_batch; i++) {
		handle(a, a->batch[i].key, a->batch[i].value, a->batch[i].len);
		free(a->batch[i].key);
		free(a->batch[i].value);
	}
	a->n_batch = 0;
}

static void prune_seen(struct agent *a)
{
	cleanup_free char *pfx = om_cluster_key(&a->c, "seen/%s/", a->c.self_id);
	struct om_etcd_range r = {0};
	om_error_t err = NULL;
	int64_t now = om_wall_ms();

	if (pfx == NULL || om_etcd_get(a->c.etcd, pfx, true, 0, &r, &err) < 0) {
		om_error_release(&err);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		long long t = atoll(r.kvs[i].value);
		if (t <= 0 || now - t > OM_SEEN_KEEP_MS)
			drop_request(a, r.kvs[i].key);
	}
	om_etcd_range_release(&r);
	/* replies this node wrote that nobody came for (a requester that died) */
	free(pfx);
	pfx = om_cluster_key(&a->c, "reply/");
	if (pfx == NULL || om_etcd_get(a->c.etcd, pfx, true, 0, &r, &err) < 0) {
		om_error_release(&err);
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		ProtobufCMessage *m = NULL;
		const Om__Reply *rep;
		if (om_sandbox_parse(a->c.sb, &om__reply__descriptor, r.kvs[i].value, r.kvs[i].value_len, &m, &err) <
		    0) {
			om_error_release(&err);
			continue;
		}
		rep = (const Om__Reply *)m;
		if (strcmp(rep->node, a->c.self_id) == 0 && now - rep->updated_ms > OM_SEEN_KEEP_MS)
			drop_request(a, r.kvs[i].key);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	om_etcd_range_release(&r);
}

/* a periodic checkpoint or prune: its log line (schedule.c's format), the
 * cluster's history, and the caller's callback */
static void sched_event(void *arg, const Om__HistoryEvent *ev)
{
	struct agent *a = arg;
	Om__HistoryEvent e = *ev;
	om_error_t err = NULL;
	char line[1600];
	om_history_format(ev, line, sizeof(line));
	alog(a, "%s", line);
	if (om_history_add(&a->c, &e, &err) < 0) {
		alog(a, "event=history-failed reason=%s", q(errmsg(err), line, sizeof(line)));
		om_error_release(&err);
	}
	if (a->o->event)
		a->o->event(a->o->event_arg, ev);
}

static int register_node(struct agent *a, om_error_t *err)
{
	if (om_etcd_lease_grant(a->c.etcd, a->o->cfg->lease_ttl, &a->lease, err) < 0)
		return -1;
	a->last_ok = om_now();
	return publish(a, err);
}

/* The lease is gone (omd was paused, or cut off, past its TTL): the cluster
 * took this node for dead and may run its groups elsewhere. Before anything
 * else (a request, a checkpoint, a status): the workers that restore groups
 * here are killed (a migration's target half, a failover: their groups go
 * back by their transactions), every local group whose owner is another node
 * is killed; then a new lease, and the node is back. A migration's source
 * half finishes: its transaction on the owner's revision fails if the group
 * was taken over meanwhile, and it then drops its frozen copy. */
static void lease_lost(struct agent *a)
{
	Om__HistoryEvent ev = OM__HISTORY_EVENT__INIT;
	om_error_t err = NULL;
	char b[512];

	alog(a, "event=lease-lost lease=%lld", (long long)a->lease);
	for (size_t i = 0; i < MAX_WORKERS; i++) {
		struct worker *w = &a->workers[i];
		if (w->pid > 0 && strcmp(w->op, "restore") == 0)
			kill(w->pid, SIGKILL); /* reaped by reap() */
	}
	if (a->fo)
		om_failover_abort(a->fo);
	reconcile(a);
	ev.event = "lease-lost";
	ev.has_ok = true;
	ev.ok = false;
	ev.detail = "this node's lease expired: its groups that run elsewhere now were killed here";
	if (om_history_add(&a->c, &ev, &err) < 0)
		om_error_release(&err);
	if (register_node(a, &err) < 0) {
		alog(a, "event=register-failed reason=%s", q(errmsg(err), b, sizeof(b)));
		om_error_release(&err);
		return;
	}
	alog(a, "event=registered node=%s lease=%lld", a->c.self_id, (long long)a->lease);
}

/* Before a round's requests: the lease is in doubt when no keep-alive
 * succeeded for a TTL (omd was stopped, or etcd unreachable). true: skip the
 * round (etcd unreachable, nothing can be done safely). */
static bool lease_doubt(struct agent *a, double ttl)
{
	om_error_t err = NULL;
	int64_t left = 0;
	char b[512];

	if (om_now() - a->last_ok < ttl * 2 / 3)
		return false;
	if (om_etcd_lease_keepalive(a->c.etcd, a->lease, &left, &err) < 0) {
		alog(a, "event=keepalive-failed reason=%s", q(errmsg(err), b, sizeof(b)));
		om_error_release(&err);
		return true;
	}
	if (left > 0)
		a->last_ok = om_now();
	else
		lease_lost(a);
	return false;
}

static void signals(struct agent *a)
{
	struct signalfd_siginfo si;
	while (read(a->o->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			a->stop = true;
}

int om_agent_run(const struct om_agent_opts *o, om_error_t *err)
{
	struct agent *a = calloc(1, sizeof(*a));
	cleanup_free char *pfx = NULL;
	struct om_etcd_range r = {0};
	int64_t rev;
	double ttl, last_beat, last_prune;
	char b[512];
	int ret = -1;

	if (a == NULL)
		return om_make_error(err, ENOMEM, "omd");
	a->o = o;
	a->started_ms = om_wall_ms();
	ttl = o->cfg->lease_ttl > 0 ? o->cfg->lease_ttl : OM_DEFAULT_LEASE_TTL;
	if (om_cluster_open(&a->c, o->cfg, true, err) < 0)
		goto out_free;
	if (om_sandbox_selftest(a->c.sb, err) < 0) { /* a parser that is not confined parses nothing */
		om_error_wrap(err, "the sandbox of the parser");
		goto out;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		om_make_error(err, errno, "become the subreaper of restored groups");
		goto out;
	}
	if (register_node(a, err) < 0)
		goto out;
	alog(a, "event=registered node=%s addr=%s lease=%lld ttl=%.0f pid=%d", a->c.self_id, a->c.self->addr,
	     (long long)a->lease, ttl, (int)getpid());
	if (om_failover_unmark_stopped(&a->c, err) < 0)
		goto out;
	reconcile(a);
	if (publish(a, err) < 0)
		goto out;
	if (om_failover_new(
		&(struct om_failover_opts){
		    .c = &a->c, .ttl = ttl, .fault = o->fault, .log = agent_log, .event = agent_event, .arg = a},
		&a->fo, err) < 0)
		goto out;
	{ /* the policies from etcd: the scan's problems go to the log */
		struct om_sched_opts so = {.cfg = o->cfg,
					   .c = &a->c,
					   .node = a->c.self_id,
					   .event = sched_event,
					   .event_arg = a,
					   .log = o->log,
					   .log_arg = o->log_arg};
		if (om_sched_new(&so, &a->sched, err) < 0)
			goto out;
	}

	/* what was asked while no omd ran, then everything from that revision on */
	pfx = om_cluster_key(&a->c, "req/%s/", a->c.self_id);
	if (pfx == NULL || om_etcd_get(a->c.etcd, pfx, true, MAX_BATCH, &r, err) < 0)
		goto out;
	rev = r.revision + 1;
	for (size_t i = 0; i < r.n; i++)
		handle(a, r.kvs[i].key, r.kvs[i].value, r.kvs[i].value_len);
	om_etcd_range_release(&r);
	last_beat = last_prune = om_now();

	while (!a->stop) {
		om_error_t werr = NULL;
		int64_t next = rev;
		double beat = ttl / 3 < 0.5 ? 0.5 : ttl / 3;
		/* the watch ends by the next keep-alive: a beat late is a third of the lease */
		double wait = last_beat + beat - om_now() < 0.05 ? 0.05 : last_beat + beat - om_now();

		if (om_etcd_watch(a->c.etcd, pfx, true, rev, wait, o->signal_fd, on_event, a, &next, &werr) < 0) {
			alog(a, "event=watch-failed reason=%s", q(errmsg(werr), b, sizeof(b)));
			if (werr && werr->status == ERANGE) { /* compacted: read what is there now */
				om_error_release(&werr);
				if (om_etcd_get(a->c.etcd, pfx, true, MAX_BATCH, &r, &werr) == 0) {
					next = r.revision + 1;
					for (size_t i = 0; i < r.n; i++)
						handle(a, r.kvs[i].key, r.kvs[i].value, r.kvs[i].value_len);
					om_etcd_range_release(&r);
				}
			}
			om_error_release(&werr);
			om_sleep_ms(200);
		}
		if (next > rev)
			rev = next;
		if (lease_doubt(a, ttl)) { /* first: a lost lease is dealt with before any request */
			signals(a);
			reap(a);
			continue;
		}
		run_batch(a);
		signals(a);
		reap(a);
		om_failover_tick(a->fo);
		om_sched_tick(a->sched);
		if (om_now() - last_beat >= beat) {
			int64_t left = 0;
			last_beat = om_now();
			if (om_etcd_lease_keepalive(a->c.etcd, a->lease, &left, &werr) < 0) {
				alog(a, "event=keepalive-failed reason=%s", q(errmsg(werr), b, sizeof(b)));
				om_error_release(&werr);
			} else if (left <= 0)
				lease_lost(a); /* declared dead meanwhile: what it ran may run elsewhere now */
			else
				a->last_ok = om_now();
			if (publish(a, &werr) < 0) {
				alog(a, "event=publish-failed reason=%s", q(errmsg(werr), b, sizeof(b)));
				om_error_release(&werr);
			}
		}
		if (om_now() - last_prune > 60) {
			last_prune = om_now();
			prune_seen(a);
		}
	}
	ret = 0;
	{
		om_error_t rerr = NULL;
		if (om_failover_mark_stopped(&a->c, &rerr) < 0) /* a restart is no death */
			om_error_release(&rerr);
		if (om_etcd_lease_revoke(a->c.etcd, a->lease, &rerr) < 0)
			om_error_release(&rerr);
		alog(a, "event=stopped node=%s", a->c.self_id);
	}
out:
	om_failover_free(a->fo);
	om_sched_free(a->sched);
	om_cluster_close(&a->c);
out_free:
	for (size_t i = 0; i < a->n_batch; i++) {
		free(a->batch[i].key);
		free(a->batch[i].value);
	}
	free(a);
	return ret;
}
