/* cluster/failover.c — see failover.h. */
#include "config.h"
#include "failover.h"

#include "cgroup.h"
#include "group.h"
#include "restore.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ORPHANS 256
#define BACKOFF_MIN 15.0
#define BACKOFF_MAX 300.0

/* what a worker tells omd (one write, less than PIPE_BUF) */
struct result {
	int rc;
	uint64_t generation;
	double seconds;
	char msg[1024];
};

struct orphan {
	unsigned long g;
	bool used, seen, impossible;
	double first_seen, last_orphan, next_try, backoff;
	int64_t detect_ms;    /* wall clock when this node saw it orphaned */
	int64_t last_seen_ms; /* the dead node's last status update this node saw (0: unknown) */
	int64_t first_rev;    /* the owner key's mod_revision when this node first saw the orphan */
	char from[OM_CLUSTER_MAX_NODE_LEN];
	/* in flight */
	pid_t pid;
	int fd;
	int64_t token;	 /* R */
	char *old_value; /* the owner value to put back on failure */
	size_t old_len;
	char home[OM_CLUSTER_MAX_NODE_LEN];
	bool resumed;	     /* a failover that a killed omd left half done */
	bool declined;	     /* this node said it cannot restore it (PREFIX/decline/G/NODE) */
	bool unrecorded;     /* restored, but etcd did not take the record yet */
	uint64_t generation; /* ... restored from this generation */
};

struct seen_node {
	char id[OM_CLUSTER_MAX_NODE_LEN];
	int64_t updated_ms;
};

struct om_failover {
	struct om_failover_opts o;
	double next_poll;
	struct orphan v[MAX_ORPHANS];
	struct seen_node *nodes; /* the last status of each node of the map */
	size_t n_nodes;
	double race_end; /* "failover-race": the barriers of one poll end by then */
};

__attribute__((format(printf, 2, 3))) static void flog(struct om_failover *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	om_vlogf(f->o.log, f->o.arg, fmt, ap);
	va_end(ap);
}

static void emit(struct om_failover *f, Om__HistoryEvent *ev)
{
	if (f->o.event)
		f->o.event(f->o.arg, ev);
}

static const char *emsg(om_error_t e)
{
	return e && e->msg ? e->msg : "unknown error";
}

static bool race(const struct om_failover *f)
{
	return f->o.fault && strcmp(f->o.fault, "failover-race") == 0;
}

int om_failover_new(const struct om_failover_opts *o, struct om_failover **out, om_error_t *err)
{
	struct om_failover *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return om_make_error(err, ENOMEM, "failover");
	f->o = *o;
	f->nodes = calloc(o->c->map.n + 1, sizeof(*f->nodes));
	if (f->nodes == NULL) {
		free(f);
		return om_make_error(err, ENOMEM, "failover");
	}
	f->n_nodes = o->c->map.n;
	for (size_t i = 0; i < f->n_nodes; i++)
		snprintf(f->nodes[i].id, sizeof(f->nodes[i].id), "%lu", o->c->map.nodes[i].id);
	for (size_t i = 0; i < MAX_ORPHANS; i++)
		f->v[i].fd = -1;
	*out = f;
	return 0;
}

static void orphan_clear(struct orphan *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->old_value);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

void om_failover_free(struct om_failover *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < MAX_ORPHANS; i++)
		orphan_clear(&f->v[i]);
	free(f->nodes);
	free(f);
}

static struct orphan *orphan_get(struct om_failover *f, unsigned long g, bool create)
{
	struct orphan *free_slot = NULL;
	for (size_t i = 0; i < MAX_ORPHANS; i++) {
		if (f->v[i].used && f->v[i].g == g)
			return &f->v[i];
		if (!f->v[i].used && free_slot == NULL)
			free_slot = &f->v[i];
	}
	if (!create || free_slot == NULL)
		return NULL;
	free_slot->used = true;
	free_slot->g = g;
	free_slot->fd = -1;
	free_slot->first_seen = om_now();
	free_slot->detect_ms = om_wall_ms();
	free_slot->backoff = BACKOFF_MIN;
	return free_slot;
}

/* ---- the target ---- */

static double load_of(const Om__NodeStatus *s)
{
	double cpus = s->has_cpus && s->cpus > 0 ? s->cpus : 1;
	return (s->has_load1 ? s->load1 : 0) / cpus;
}

/* Did node decline g? d: the range of PREFIX/decline/ (keys G/NODE after
 * pfx_len bytes), or NULL. */
static bool declined(const struct om_etcd_range *d, size_t pfx_len, unsigned long g, const char *node)
{
	char tail[64];
	if (d == NULL)
		return false;
	snprintf(tail, sizeof(tail), "%lu/%s", g, node);
	for (size_t i = 0; i < d->n; i++)
		if (strlen(d->kvs[i].key) > pfx_len && strcmp(d->kvs[i].key + pfx_len, tail) == 0)
			return true;
	return false;
}

/* the node every survivor prefers for orphan g: alive, not drained, not
 * declining g, lowest load per CPU, then fewest groups, then lowest id */
static const struct om_node_info *preferred(const struct om_node_info *n, size_t nn, const struct om_etcd_range *d,
					    size_t pfx_len, unsigned long g)
{
	const struct om_node_info *best = NULL;
	for (size_t i = 0; i < nn; i++) {
		const struct om_node_info *x = &n[i];
		char id[32];
		double lx, lb;
		if (!x->alive || x->drained || x->status == NULL || (x->status->has_drained && x->status->drained))
			continue;
		snprintf(id, sizeof(id), "%lu", x->node->id);
		if (declined(d, pfx_len, g, id))
			continue;
		if (best == NULL) {
			best = x;
			continue;
		}
		/* loads within 0.05 per CPU count as equal (the nodes read them at different moments) */
		lx = load_of(x->status);
		lb = load_of(best->status);
		if (lx < lb - 0.05 || (lx <= lb + 0.05 && (x->status->n_groups < best->status->n_groups ||
							   (x->status->n_groups == best->status->n_groups &&
							    x->node->id < best->node->id))))
			best = x;
	}
	return best;
}

/* ---- the worker ---- */

static void child(struct om_failover *f, unsigned long g, int64_t token, int fd)
{
	struct om_restore_opts ro = {0};
	struct om_restore_result rr = {0};
	struct result res = {0};
	om_error_t err = NULL;
	struct om_cg cg;
	double t0 = om_now();
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with omd: the restarted omd finds a stale copy */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (om_cg_init(&cg, &err) == 0) { /* a leftover of an earlier life of the group here */
		if (om_group_remove(&cg, g, &err) < 0)
			om_error_release(&err);
	} else
		om_error_release(&err);
	ro.group = g;
	ro.store = f->o.c->cfg->store;
	ro.generation = 0; /* the newest complete one */
	ro.fence = (uint64_t)token;
	/* generations taken with the group left running on the dead node: a
	 * takeover, which etcd vouches for (its lease is gone, and the fence keeps
	 * it from publishing if it comes back) */
	ro.takeover = true;
	ro.force = true;
	ro.lock_wait = 30;
	if (f->o.fault && strncmp(f->o.fault, "restore-pause-pinned:", 21) == 0)
		ro.fault = f->o.fault; /* tests: a long restore, to cut it off */
	res.rc = om_restore(&ro, &rr, &err);
	res.seconds = om_now() - t0;
	if (res.rc == 0) {
		res.generation = rr.generation;
		om_restore_result_release(&rr);
	} else
		snprintf(res.msg, sizeof(res.msg), "%s", emsg(err));
	if (write(fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
		res.rc = -1;
	_exit(res.rc == 0 ? 0 : 1);
}

/* The one transaction: owner->node (dead) to this node, on rev. */
static void race_barrier(struct om_failover *f, unsigned long g, size_t n);
static void start_worker(struct om_failover *f, struct orphan *s);

static void try_claim(struct om_failover *f, struct orphan *s, const Om__GroupOwner *owner, int64_t rev,
		      const struct om_etcd_kv *kv, size_t survivors, const char *declined_by)
{
	struct om_cluster *c = f->o.c;
	om_error_t err = NULL;
	int64_t token = 0;
	bool won = false;

	if (race(f)) /* every survivor at the same moment: the transaction alone decides */
		race_barrier(f, s->g, survivors);
	int mrc = om_owner_take_over(c, s->g, rev, owner, &won, &token, &err);
	if (mrc < 0) {
		flog(f, "event=failover-failed group=%lu from=%s reason=\"claim: %.900s\"", s->g, owner->node,
		     emsg(err));
		om_error_release(&err);
		s->next_try = om_now() + s->backoff;
		return;
	}
	if (!won) {
		flog(f, "event=failover-lost group=%lu from=%s revision=%lld", s->g, owner->node, (long long)rev);
		s->next_try = om_now() + 2 * f->o.ttl;
		return;
	}
	s->token = token;
	s->old_value = malloc(kv->value_len + 1);
	if (s->old_value) {
		memcpy(s->old_value, kv->value, kv->value_len + 1);
		s->old_len = kv->value_len;
	}
	snprintf(s->home, sizeof(s->home), "%s", owner->home);
	snprintf(s->from, sizeof(s->from), "%s", owner->node);
	flog(f, "event=failover-claimed group=%lu from=%s fence=%lld%s%s", s->g, owner->node, (long long)token,
	     *declined_by ? " declined_by=" : "", declined_by);
	start_worker(f, s);
}

/* the restore of s->g under s->token, in a worker process */
static void start_worker(struct om_failover *f, struct orphan *s)
{
	int p[2];
	pid_t pid;

	p[0] = p[1] = -1;
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		flog(f, "event=failover-worker-failed group=%lu reason=\"%s\"", s->g, strerror(errno));
		if (p[1] >= 0)
			close(p[1]);
		s->fd = p[0];
		s->pid = -1; /* handled as a worker that died at once: the key goes back */
		om_failover_reaped(f, -1, 1 << 8);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		child(f, s->g, s->token, p[1]);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	s->pid = pid;
	s->fd = p[0];
}

/* ---- the end of a worker ---- */

/* the owner value after a restore: this node, the generation and the fence */
static char *owner_after(const struct orphan *s, const struct om_cluster *c, uint64_t gen)
{
	Om__GroupOwner o = OM__GROUP_OWNER__INIT;
	o.v = 1;
	o.group = s->g;
	o.node = (char *)c->self_id;
	o.home = s->home[0] ? (char *)s->home : (char *)c->self_id;
	o.has_since_ms = true;
	o.since_ms = om_wall_ms();
	o.has_generation = gen > 0;
	o.generation = gen;
	o.has_fence = true;
	o.fence = s->token;
	return om_pb_to_json(&o.base);
}

static void remove_local(struct om_failover *f, unsigned long g)
{
	om_error_t err = NULL;
	struct om_cg cg;
	if (om_cg_init(&cg, &err) < 0 || om_group_remove(&cg, g, &err) < 0) {
		flog(f, "event=failover-cleanup-failed group=%lu reason=\"%.900s\"", g, emsg(err));
		om_error_release(&err);
	}
}

/* The record of a restore: a transaction on R puts owner_after(). 1: done;
 * 0: the key is no longer at R; -1: etcd did not answer (logged). */
static int record(struct om_failover *f, struct orphan *s)
{
	cleanup_free char *json = owner_after(s, f->o.c, s->generation);
	om_error_t err = NULL;
	bool won = false;

	if (om_owner_put_at(f->o.c, s->g, s->token, json, json ? strlen(json) : 0, &won, NULL, &err) < 0) {
		flog(f, "event=failover-record-failed group=%lu reason=\"%.900s\"", s->g, emsg(err));
		om_error_release(&err);
		return -1;
	}
	return won ? 1 : 0;
}

/* put the old owner back (transaction on R): orphaned again */
static void give_back(struct om_failover *f, struct orphan *s)
{
	om_error_t err = NULL;
	bool won = false;

	if (s->old_value == NULL)
		return;
	if (om_owner_put_at(f->o.c, s->g, s->token, s->old_value, s->old_len, &won, NULL, &err) < 0) {
		flog(f, "event=failover-giveback-failed group=%lu reason=\"%.900s\"", s->g, emsg(err));
		om_error_release(&err);
	}
}

bool om_failover_reaped(struct om_failover *f, pid_t pid, int status)
{
	struct om_cluster *c = f->o.c;
	struct orphan *s = NULL;
	struct result r = {.rc = -1};
	Om__HistoryEvent ev = OM__HISTORY_EVENT__INIT;
	char detail[1200];
	bool ok;

	for (size_t i = 0; i < MAX_ORPHANS && !s; i++)
		if (f->v[i].used && f->v[i].pid == pid && pid != 0)
			s = &f->v[i];
	if (s == NULL)
		return false;
	if (s->fd < 0 || read(s->fd, &r, sizeof(r)) != (ssize_t)sizeof(r)) {
		r.rc = -1;
		snprintf(r.msg, sizeof(r.msg), "the worker died (%s %d)", WIFSIGNALED(status) ? "signal" : "exit",
			 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	}
	r.msg[sizeof(r.msg) - 1] = '\0';
	ok = r.rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	ev.event = "failover";
	ev.has_group = true;
	ev.group = s->g;
	ev.from = s->from;
	ev.to = c->self_id;
	ev.has_fence = true;
	ev.fence = s->token;
	ev.has_ok = true;
	if (ok) {
		s->generation = r.generation;
		int rec = record(f, s);
		if (rec < 0) /* etcd unreachable: the group is ours (the key names this node
			      * at R); om_failover_tick records it when etcd answers */
			s->unrecorded = true;
		else if (rec == 0) { /* the key moved on under us (this node was declared dead meanwhile) */
			remove_local(f, s->g);
			snprintf(r.msg, sizeof(r.msg), "%s", "the owner key changed during the restore: copy removed");
			ok = false;
		}
	}
	ev.ok = ok;
	if (ok) {
		double detect = s->last_seen_ms > 0 ? (double)(s->detect_ms - s->last_seen_ms) / 1000.0 : -1;
		ev.has_generation = true;
		ev.generation = r.generation;
		ev.has_seconds = true;
		ev.seconds = (double)(om_wall_ms() - s->detect_ms) / 1000.0;
		if (detect >= 0)
			snprintf(detail, sizeof(detail), "detect_s=%.1f restore_s=%.1f", detect, r.seconds);
		else
			snprintf(detail, sizeof(detail), "detect_s=? restore_s=%.1f", r.seconds);
		if (s->resumed)
			snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), " resumed=1");
		ev.detail = detail;
		emit(f, &ev);
		if (s->unrecorded) { /* kept until recorded */
			if (s->fd >= 0)
				close(s->fd);
			s->fd = -1;
			s->pid = 0;
		} else
			orphan_clear(s);
		return true;
	}
	remove_local(f, s->g);
	give_back(f, s);
	ev.event = "failover-failed";
	snprintf(detail, sizeof(detail), "%s (retry in %.0f s)", r.msg, s->backoff);
	ev.detail = detail;
	emit(f, &ev);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->pid = 0;
	free(s->old_value);
	s->old_value = NULL;
	s->resumed = false;
	s->next_try = om_now() + s->backoff;
	s->backoff = s->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : s->backoff * 2;
	return true;
}

void om_failover_abort(struct om_failover *f)
{
	for (size_t i = 0; i < MAX_ORPHANS; i++) {
		struct orphan *s = &f->v[i];
		int st = 0;
		pid_t pid = s->pid;
		if (!s->used || pid <= 0)
			continue;
		kill(pid, SIGKILL);
		for (int t = 0; t < 200; t++) { /* bounded: 20 s (a CRIU child in D state) */
			if (waitpid(pid, &st, WNOHANG) == pid)
				break;
			om_sleep_ms(100);
		}
		flog(f, "event=failover-aborted group=%lu worker=%d", s->g, (int)pid);
		om_failover_reaped(f, pid, st ? st : SIGKILL);
	}
}

int om_failover_mark_stopped(struct om_cluster *c, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "stopped/%s", c->self_id);
	char v[32];
	int64_t lease = 0;

	if (k == NULL)
		return om_make_error(err, ENOMEM, "stopped mark");
	snprintf(v, sizeof(v), "%lld", (long long)om_wall_ms());
	if (om_etcd_lease_grant(c->etcd, OM_STOP_GRACE_S, &lease, err) < 0)
		return -1;
	return om_etcd_put(c->etcd, k, v, strlen(v), lease, NULL, err);
}

int om_failover_unmark_stopped(struct om_cluster *c, om_error_t *err)
{
	cleanup_free char *k = om_cluster_key(c, "stopped/%s", c->self_id);
	if (k == NULL)
		return om_make_error(err, ENOMEM, "stopped mark");
	return om_etcd_delete(c->etcd, k, false, NULL, err);
}

/* tests ("failover-race"): the survivors poll at the same moments (aligned on
 * the wall clock); every survivor that saw the orphan says so under
 * PREFIX/fault-race/G/ (a key on a 10 s lease), and waits until all n have
 * (for all the orphans of one poll together, at most one poll period and a
 * bit: a survivor whose poll came just before the lease expired sees it at
 * its next poll): then they all run the transaction on the same revision at
 * the same moment */
static void race_barrier(struct om_failover *f, unsigned long g, size_t n)
{
	struct om_cluster *c = f->o.c;
	cleanup_free char *pfx = om_cluster_key(c, "fault-race/%lu/", g);
	cleanup_free char *k = om_cluster_key(c, "fault-race/%lu/%s", g, c->self_id);
	double end = f->race_end;
	om_error_t err = NULL;
	int64_t lease = 0;

	if (pfx == NULL || k == NULL || om_etcd_lease_grant(c->etcd, 10, &lease, &err) < 0 ||
	    om_etcd_put(c->etcd, k, "1", 1, lease, NULL, &err) < 0) {
		om_error_release(&err);
		return;
	}
	while (om_now() < end) {
		struct om_etcd_range r = {0};
		size_t have = 0;
		if (om_etcd_get_opts(c->etcd, pfx, true, 0, OM_ETCD_COUNT_ONLY, &r, &err) == 0)
			have = (size_t)r.count;
		om_error_release(&err);
		om_etcd_range_release(&r);
		if (have >= n)
			break;
		om_sleep_ms(20);
	}
	flog(f, "event=failover-race group=%lu survivors=%zu", g, n);
}

/* ---- the poll ---- */

/* g's key names this node: does g have processes here? A failover (if this
 * node dies) reads the answer in the key: ended_ms, set or cleared by a
 * transaction on the key's revision (a move meanwhile wins). */
static void mark_ended(struct om_failover *f, const struct om_cg *cg, const Om__GroupOwner *o,
		       const struct om_etcd_kv *kv)
{
	struct om_group grp;
	om_error_t err = NULL;
	bool runs = false, won = false;

	if (cg == NULL)
		return;
	if (om_group_load(cg, (unsigned long)o->group, &grp, &err) == 0) {
		runs = grp.n_trees > 0;
		om_group_release(&grp);
	} else
		om_error_release(&err); /* no such group here: none of it runs */
	if (runs != o->has_ended_ms)
		return; /* the key says it already */
	if (om_owner_set_ended(f->o.c, (unsigned long)o->group, kv->mod_revision, o, !runs, &won, &err) < 0) {
		flog(f, "event=owner-update-failed group=%llu reason=\"%.900s\"", (unsigned long long)o->group,
		     emsg(err));
		om_error_release(&err);
	} else if (won)
		flog(f, "event=group-%s group=%llu", runs ? "running" : "ended", (unsigned long long)o->group);
}

/* G's key names this node, restoring from a dead node: this omd's worker is
 * at it, or its record waits for etcd, or else an earlier omd of this node
 * was killed in the middle (its worker died with it, PR_SET_PDEATHSIG): the
 * failover goes on from the claim, under the same token (the key is still
 * at R). Nobody else would: the key names a live node. */
static void resume(struct om_failover *f, const Om__GroupOwner *o, const struct om_etcd_kv *kv,
		   const struct om_node_info *me, double now)
{
	Om__GroupOwner back = OM__GROUP_OWNER__INIT;
	struct orphan *s = orphan_get(f, (unsigned long)o->group, true);

	if (s == NULL)
		return;
	s->seen = true;
	s->last_orphan = now;
	if (s->pid != 0 || now < s->next_try)
		return;
	if (s->unrecorded) {
		int rec = record(f, s);
		if (rec == 1)
			flog(f, "event=failover-recorded group=%lu generation=%llu fence=%lld", s->g,
			     (unsigned long long)s->generation, (long long)s->token);
		if (rec >= 0) /* recorded, or the key moved on: then a new look next time */
			orphan_clear(s);
		return;
	}
	if (me == NULL || !me->alive) /* no lease: om_failover_abort's case */
		return;
	/* what goes back if this restore fails: the dead node as the owner */
	back.v = 1;
	back.group = o->group;
	back.node = o->restoring_from;
	back.home = o->home;
	free(s->old_value);
	s->old_value = om_pb_to_json(&back.base);
	s->old_len = s->old_value ? strlen(s->old_value) : 0;
	s->token = kv->mod_revision;
	snprintf(s->home, sizeof(s->home), "%s", o->home);
	snprintf(s->from, sizeof(s->from), "%s", o->restoring_from);
	s->resumed = true;
	flog(f, "event=failover-resumed group=%lu from=%s fence=%lld", s->g, s->from, (long long)s->token);
	start_worker(f, s);
}

/* Can this node restore g now? 1: yes, or it cannot tell (the restore will
 * say); 0: the store has no generation of g; -1: a PID that the newest
 * generation needs is taken here (why says which, and by what). */
static int can_restore_here(struct om_failover *f, unsigned long g, char *why, size_t len)
{
	cleanup_free char *path = NULL;
	cleanup_free uint64_t *gens = NULL;
	Om__Manifest *m = NULL;
	om_error_t err = NULL;
	struct om_store st;
	size_t n = 0;
	int rc = 1;

	if (om_store_resolve_path(f->o.c->cfg->store, &path, &err) < 0 || om_store_open(&st, path, false, &err) < 0) {
		om_error_release(&err);
		return 1;
	}
	if (om_store_list(&st, "groups", g, &gens, &n, &err) < 0)
		om_error_release(&err);
	else if (n == 0)
		rc = 0;
	else if (om_gen_load_manifest(&st, "groups", g, 0, &m, &err) < 0)
		om_error_release(&err);
	else {
		if (om_restore_pids_free(m, 0, 0, &err) < 0) {
			snprintf(why, len, "%s", emsg(err));
			om_error_release(&err);
			rc = -1;
		} else
			om_restore_reserve_pids(m); /* the worker is forked next */
		om_manifest_free(m);
	}
	om_store_close(&st);
	return rc;
}

/* This node cannot restore orphan g (a PID it needs is taken here): it says
 * so in PREFIX/decline/G/NODE, on a lease of 3 x ttl that it renews while
 * that lasts; every survivor leaves it out of g's preferred target, so the
 * next one tries at once instead of after the grace. */
static void decline(struct om_failover *f, struct orphan *s, const char *from, const char *why)
{
	struct om_cluster *c = f->o.c;
	cleanup_free char *k = om_cluster_key(c, "decline/%lu/%s", s->g, c->self_id);
	Om__HistoryEvent ev = OM__HISTORY_EVENT__INIT;
	char detail[1100];
	om_error_t err = NULL;
	int64_t lease = 0;

	s->next_try = om_now() + f->o.ttl; /* a look again then */
	if (k == NULL || om_etcd_lease_grant(c->etcd, (int64_t)(3 * f->o.ttl) + 1, &lease, &err) < 0 ||
	    om_etcd_put(c->etcd, k, why, strlen(why), lease, NULL, &err) < 0) {
		flog(f, "event=failover-decline-failed group=%lu reason=\"%.900s\"", s->g,
		     err ? emsg(err) : "out of memory");
		om_error_release(&err);
		return;
	}
	if (s->declined)
		return; /* said once; the key is renewed */
	s->declined = true;
	snprintf(detail, sizeof(detail), "cannot restore here: %.1000s", why);
	ev.event = "failover-declined";
	ev.has_group = true;
	ev.group = s->g;
	ev.from = (char *)from;
	ev.to = c->self_id;
	ev.has_ok = true;
	ev.ok = false;
	ev.detail = detail;
	emit(f, &ev);
}

/* The PIDs are free again: the decline goes. */
static void withdraw(struct om_failover *f, struct orphan *s)
{
	cleanup_free char *k = om_cluster_key(f->o.c, "decline/%lu/%s", s->g, f->o.c->self_id);
	om_error_t err = NULL;
	if (k && om_etcd_delete(f->o.c->etcd, k, false, NULL, &err) < 0)
		om_error_release(&err);
	if (s->declined)
		flog(f, "event=failover-decline-withdrawn group=%lu", s->g);
	s->declined = false;
}

void om_failover_tick(struct om_failover *f)
{
	struct om_cluster *c = f->o.c;
	struct om_node_info *nodes = NULL;
	struct om_etcd_range r = {0}, stopped = {0}, decl = {0};
	cleanup_free char *pfx = om_cluster_key(c, "groups/");
	cleanup_free char *spfx = om_cluster_key(c, "stopped/");
	cleanup_free char *dpfx = om_cluster_key(c, "decline/");
	const struct om_etcd_range *d = &decl;
	const struct om_node_info *me = NULL;
	struct om_cg cg, *cgp = &cg;
	om_error_t err = NULL;
	size_t nn = 0, survivors = 0;
	double now = om_now();

	if (now < f->next_poll || pfx == NULL || spfx == NULL || dpfx == NULL)
		return;
	f->next_poll = now + (f->o.ttl / 3 < 0.5 ? 0.5 : f->o.ttl / 3);
	f->race_end = now + f->o.ttl / 3 + 0.3;
	if (race(f)) { /* every node at the same moments of the wall clock */
		int64_t period = (int64_t)(f->o.ttl * 1000 / 3);
		f->next_poll = now + (double)(period - om_wall_ms() % period) / 1000.0;
	}
	if (om_cluster_nodes(c, &nodes, &nn, &err) < 0 || om_etcd_get(c->etcd, pfx, true, 0, &r, &err) < 0 ||
	    om_etcd_get(c->etcd, spfx, true, 0, &stopped, &err) < 0) {
		om_error_release(&err);
		om_etcd_range_release(&r);
		om_cluster_nodes_free(nodes, nn);
		return;
	}
	if (om_etcd_get(c->etcd, dpfx, true, 0, &decl, &err) < 0) { /* then nobody is left out */
		om_error_release(&err);
		d = NULL;
	}
	for (size_t i = 0; i < nn && i < f->n_nodes; i++) {
		if (nodes[i].alive && nodes[i].status && nodes[i].status->has_updated_ms)
			f->nodes[i].updated_ms = nodes[i].status->updated_ms;
		if (strcmp(f->nodes[i].id, c->self_id) == 0)
			me = &nodes[i];
		if (nodes[i].alive && !nodes[i].drained)
			survivors++;
	}
	if (om_cg_init(&cg, &err) < 0) { /* then no group is marked ended or running */
		om_error_release(&err);
		cgp = NULL;
	}
	for (size_t i = 0; i < MAX_ORPHANS; i++)
		f->v[i].seen = false;
	for (size_t i = 0; i < r.n; i++) {
		ProtobufCMessage *m = NULL;
		Om__GroupOwner *o;
		const struct om_node_info *best;
		struct orphan *s;
		bool dead = false, mine, mine_declined;
		char why[1024] = "", by[256] = "";
		int here;
		size_t j;

		if (om_sandbox_parse(c->sb, &om__group_owner__descriptor, r.kvs[i].value, r.kvs[i].value_len, &m,
				     &err) < 0) {
			om_error_release(&err);
			continue;
		}
		o = (Om__GroupOwner *)m;
		if (o->v == 1 && strcmp(o->node, c->self_id) == 0) {
			if (o->restoring_from)
				resume(f, o, &r.kvs[i], me, now);
			else
				mark_ended(f, cgp, o, &r.kvs[i]);
			goto next;
		}
		for (j = 0; j < nn; j++)
			if (strcmp(f->nodes[j].id, o->node) == 0)
				break;
		/* an owner outside the map is left alone (a map being changed); a
		 * group that had ended there (no process) is no orphan */
		dead = j < nn && !nodes[j].alive && o->v == 1 && !o->has_ended_ms;
		s = orphan_get(f, (unsigned long)o->group, dead);
		if (s && dead) {
			s->seen = true;
			s->last_orphan = now;
		}
		if (!dead || s == NULL || s->pid != 0 || now < s->next_try)
			goto next;
		if (s->last_seen_ms == 0)
			s->last_seen_ms = f->nodes[j].updated_ms;
		if (s->first_rev == 0)
			s->first_rev = r.kvs[i].mod_revision;
		for (size_t k = 0; k < stopped.n; k++)
			if (strcmp(stopped.kvs[k].key + strlen(spfx), o->node) == 0)
				goto next; /* its omd stopped cleanly: may be back soon */
		/* a node that is itself not alive or drained takes nothing */
		if (me == NULL || !me->alive || me->drained)
			goto next;
		mine_declined = declined(d, strlen(dpfx), s->g, c->self_id);
		if (mine_declined) { /* a look again (next_try): still taken, or free now? */
			here = can_restore_here(f, s->g, why, sizeof(why));
			if (here < 0)
				decline(f, s, o->node, why);
			else
				withdraw(f, s); /* free: a candidate again from the next poll */
			goto next;
		}
		best = race(f) ? me : preferred(nodes, nn, d, strlen(dpfx), s->g);
		if (best == NULL)
			goto next;
		mine = best == me;
		/* the others wait for the grace, unless the key changed while it stayed
		 * an orphan: a survivor tried, failed and put it back */
		if (!mine && now - s->first_seen < 2 * f->o.ttl && r.kvs[i].mod_revision == s->first_rev)
			goto next;
		here = can_restore_here(f, s->g, why, sizeof(why));
		if (here < 0) {
			decline(f, s, o->node, why);
			goto next;
		}
		if (here == 0) {
			if (!s->impossible) {
				Om__HistoryEvent ev = OM__HISTORY_EVENT__INIT;
				char detail[256];
				snprintf(detail, sizeof(detail), "%s", "no generation of the group in the store");
				ev.event = "failover-impossible";
				ev.has_group = true;
				ev.group = s->g;
				ev.from = o->node;
				ev.has_ok = true;
				ev.ok = false;
				ev.detail = detail;
				emit(f, &ev);
				s->impossible = true;
			}
			s->next_try = now + f->o.ttl; /* a generation may still appear */
			goto next;
		}
		for (size_t k = 0; d && k < nn && k < f->n_nodes; k++)
			if (declined(d, strlen(dpfx), s->g, f->nodes[k].id))
				snprintf(by + strlen(by), sizeof(by) - strlen(by), "%s%s", *by ? "," : "",
					 f->nodes[k].id);
		try_claim(f, s, o, r.kvs[i].mod_revision, &r.kvs[i], survivors, by);
	next:
		protobuf_c_message_free_unpacked(m, NULL);
	}
	/* no longer orphaned (or gone) for a while: forgotten (kept meanwhile, so
	 * that a group a survivor claimed and put back is seen as such) */
	for (size_t i = 0; i < MAX_ORPHANS; i++)
		if (f->v[i].used && !f->v[i].seen && f->v[i].pid == 0 && now - f->v[i].last_orphan > 4 * f->o.ttl)
			orphan_clear(&f->v[i]);
	om_etcd_range_release(&r);
	om_etcd_range_release(&stopped);
	om_etcd_range_release(&decl);
	om_cluster_nodes_free(nodes, nn);
}
