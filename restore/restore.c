#include "config.h"
#include "restore.h"
#include "shmig.h"
#include "om-criu.h"
#include "group.h"
#include "keeper.h"
#include "netlock.h"
#include "timerfd.h"
#include "lock.h"
#include "proc.h"
#include "store.h"
#include "util.h"
#include "workdir.h"
#include "bounded.h"

#include <poll.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void om_restore_result_release(struct om_restore_result *res)
{
	if (res->m)
		om_manifest_free(res->m);
	res->m = NULL;
	free(res->roots);
	res->roots = NULL;
}

/* Every PID and TID of the generation must be free (CRIU restores them as they were). */
int om_restore_pids_free(const Om__Manifest *m, double wait_s, int cancel_fd, om_error_t *err)
{
	double deadline = om_now() + wait_s;

	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		if (t->has_own_pidns && t->own_pidns)
			continue; /* CRIU makes a new PID namespace: these PIDs live in there */
		for (size_t j = 0; j < t->n_procs; j++) {
			const Om__ProcEntry *p = t->procs[j];
			for (size_t k = 0; k <= p->n_tids; k++) {
				/* the process first, then its other threads */
				pid_t id = k == 0 ? p->pid : p->tids[k - 1];
				if (k > 0 && id == p->pid)
					continue;
				enum om_pid_state s;
				while ((s = om_pid_state(id)) != OM_PID_FREE && om_now() < deadline)
					if (om_pause(cancel_fd, 20, err) < 0)
						return om_error_wrap(err, "wait for PID %d to be free", (int)id);
				if (s != OM_PID_FREE) {
					struct om_proc holder;
					om_error_t tmp = NULL;
					char who[600] = "";
					if (om_proc_read(id, &holder, false, &tmp) == 0) {
						snprintf(who, sizeof(who), " by `%.200s` (state %c, parent %d)%s",
							 holder.cmdline, holder.state, (int)holder.ppid,
							 holder.state == 'Z' ? ": a zombie its parent has not reaped"
									     : "");
						om_proc_release(&holder);
					}
					om_error_release(&tmp);
					return om_make_error(err, EBUSY,
							     "PID %d (%s %d of tree %d) is taken%s; waited %.1f s",
							     (int)id, k == 0 ? "process" : "thread of", (int)p->pid,
							     (int)t->root_pid, who, wait_s);
				}
			}
		}
	}
	return 0;
}

#define PID_RESERVE_WINDOW 4096

void om_restore_reserve_pids(const Om__Manifest *m)
{
	char buf[32];
	long last, want = 0;
	int fd;

	fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0) {
		close(fd);
		return;
	}
	buf[n] = '\0';
	last = strtol(buf, NULL, 10);
	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		if (t->has_own_pidns && t->own_pidns)
			continue;
		for (size_t j = 0; j < t->n_procs; j++) {
			const Om__ProcEntry *p = t->procs[j];
			for (size_t k = 0; k <= p->n_tids; k++) {
				long id = k == 0 ? p->pid : p->tids[k - 1];
				if (id > last && id <= last + PID_RESERVE_WINDOW && id > want)
					want = id;
			}
		}
	}
	/* best effort: without CAP_SYS_ADMIN over this PID namespace nothing moves */
	if (want > 0 && pwrite(fd, buf, (size_t)snprintf(buf, sizeof(buf), "%ld", want), 0) < 0) {
		/* nothing to undo: the allocator stays where it was */
	}
	close(fd);
}

struct restore_ctx {
	const struct om_restore_opts *o;
	const Om__Manifest *m;
	struct om_cg cg;
	bool use_group;
	uint32_t group; /* the group the trees rejoin */
	char scratch[PATH_MAX];
	size_t cur;   /* tree being restored (keeper side) */
	pid_t *roots; /* restored roots, in this node's PID namespace (keeper side) */
	char leaf[PATH_MAX];
	int abort_fd; /* keeper side: omrestore closed its end (gave up or died): stop */
};

/* The bound of restoring one tree: it scales with the raw image size. */
static double tree_timeout(const struct om_restore_opts *o, const Om__TreeEntry *t)
{
	uint64_t bytes = 0;

	for (size_t k = 0; k < t->n_files; k++)
		bytes += t->files[k]->size;
	return om_criu_timeout(bytes, o->criu_timeout);
}

/* keeper side, CRIU's post-restore: the tree exists but does not run yet (it
 * cannot fork); put the root and every descendant into the tree's leaf, and
 * re-arm the periodic timerfds CRIU restored disarmed (lib/timerfd.h) */
static int post_restore(void *arg, pid_t root, char *why, size_t len)
{
	struct restore_ctx *c = arg;
	cleanup_free pid_t *desc = NULL;
	size_t n = 0;
	om_error_t tmp = NULL;
	size_t fixed = 0;
	char what[64];

	snprintf(what, sizeof(what), "rejoin miggroup %u", c->group);
	if (om_proc_descendants(root, &desc, &n, &tmp) < 0)
		goto fail;
	for (size_t i = 0; c->use_group && i < n; i++)
		if (om_cg_move(c->leaf, desc[i], &tmp) < 0) {
			if (om_pid_state(desc[i]) != OM_PID_ZOMBIE)
				goto fail;
			om_error_release(&tmp); /* a zombie is in no cgroup */
		}
	snprintf(what, sizeof(what), "re-arm the periodic timerfds");
	if (om_timerfd_rearm(desc, n, &fixed, &tmp) < 0)
		goto fail;
	return 0;
fail:
	snprintf(why, len, "%s: %s: %s", what, tmp->msg ? tmp->msg : "error", strerror(tmp->status));
	om_error_release(&tmp);
	return -1;
}

/* Kill every process of the restored trees (roots[0..n-1], in this node's
 * PID namespace) and wait until they are gone (the keeper reaps them). */
static void kill_trees(const pid_t *roots, size_t n)
{
	om_proc_kill_trees(roots, n);
}

/* Keeper side, on a failure: kill every tree the keeper holds. That is the
 * trees restored so far, and also one whose restore CRIU finished just as it
 * was stopped (its root passed to the keeper with no report). */
static void keeper_kill_all(void)
{
	cleanup_free pid_t *kids = NULL;
	size_t n = 0;
	om_error_t tmp = NULL;

	if (om_proc_children(getpid(), &kids, &n, &tmp) < 0) {
		om_error_release(&tmp);
		return;
	}
	om_proc_kill_trees(kids, n);
}

/* Wait until the keeper has something to say (1), with a bound. On a cancel,
 * tell the keeper to stop (close *abort_w) and wait for its report a little
 * longer; give up at the deadline. */
static int wait_keeper(int report, int cancel_fd, double deadline, int *abort_w, bool *cancelled, om_error_t *err)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = report, .events = POLLIN},
				      {.fd = *cancelled || cancel_fd <= 0 ? -1 : cancel_fd, .events = POLLIN}};
		long left = (long)((deadline - om_now()) * 1000);
		int r;

		if (left <= 0) {
			if (*abort_w >= 0) {
				close(*abort_w);
				*abort_w = -1;
			}
			om_make_error(err, ETIMEDOUT, "the keeper gave no answer in time");
			return om_error_set_exit(err, OM_EXIT_CRIU);
		}
		r = poll(p, 2, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR)
			return om_make_error(err, errno, "poll");
		if (r > 0 && p[1].revents) {
			/* stop the keeper; it kills CRIU and what it restored, then reports */
			*cancelled = true;
			close(*abort_w);
			*abort_w = -1;
			deadline = om_now() + 30;
			continue;
		}
		if (r > 0 && p[0].revents)
			return 1;
	}
}

static int restore_fn(void *arg, int report)
{
	struct restore_ctx *c = arg;

	for (size_t i = 0; i < c->m->n_trees; i++) {
		const Om__TreeEntry *t = c->m->trees[i];
		char dir[PATH_MAX], img[PATH_MAX + 8];
		om_error_t err = NULL;
		pid_t pid;
		struct om_criu_restore r = {.post_restore = post_restore,
					    .arg = c,
					    .bound = {.timeout_s = tree_timeout(c->o, t), .cancel_fd = c->abort_fd}};

		c->cur = i;
		snprintf(dir, sizeof(dir), "%.3000s/%s", c->scratch, t->dir);
		snprintf(img, sizeof(img), "%s/img", dir);
		r.images_dir = img;
		r.shell_job = t->has_shell_job && t->shell_job;
		r.tcp_established = c->m->has_tcp_established && c->m->tcp_established;
		r.own_network_lock = true; /* om_restore holds it around every tree */
		r.sysvshm_external = om_shm_has_segments(c->m->shm);
		r.work_dir = dir;
		if (c->use_group && om_group_prepare_tree(&c->cg, c->group, t->root_pid, c->leaf, &err) < 0) {
			keeper_kill_all();
			om_keeper_send(report, (int)i, 0, err);
			om_error_release(&err);
			return -1;
		}
		pid = om_criu_restore_child(&r, &err);
		if (pid < 0) {
			/* never a half-restored group, even if omrestore itself is gone:
			 * the keeper kills the trees it restored before reporting */
			keeper_kill_all();
			om_keeper_send(report, (int)i, 0, err);
			om_error_release(&err);
			return -1;
		}
		c->roots[i] = pid;
		om_keeper_send(report, (int)i, pid, NULL);
	}
	close(c->abort_fd);
	return 0;
}

#define OM_TCP_PAIR_WAIT 75.0 /* s: longer than TIME_WAIT (60 s) */

/* The lock omckpt --tcp-established took (still there after a migration on
 * this node), taken again from the manifest's connections. */
static int lock_connections(const Om__Manifest *m, const struct om_restore_opts *o, char *name, size_t len,
			    om_error_t *err)
{
	cleanup_free struct om_tcp_conn *c = calloc(m->n_tcp_conns, sizeof(*c));

	if (c == NULL)
		return om_make_error(err, ENOMEM, "network lock");
	for (size_t i = 0; i < m->n_tcp_conns; i++) {
		const Om__TcpConn *e = m->tcp_conns[i]; /* lengths checked when the manifest was read */
		c[i].family = e->local_addr.len == 4 ? AF_INET : AF_INET6;
		memcpy(c[i].laddr, e->local_addr.data, e->local_addr.len);
		memcpy(c[i].raddr, e->remote_addr.data, e->remote_addr.len);
		c[i].lport = (uint16_t)e->local_port;
		c[i].rport = (uint16_t)e->remote_port;
	}
	/* a copy of the group killed on this node may have left its connections
	 * closing (TIME_WAIT lasts a minute): CRIU cannot take their address
	 * pairs until the kernel lets go of them */
	for (double deadline = om_now() + OM_TCP_PAIR_WAIT;;) {
		struct om_tcp_conn held;
		int r = om_tcp_conns_held(c, m->n_tcp_conns, &held, err);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (om_now() >= deadline) {
			char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
			inet_ntop(held.family, held.laddr, a, sizeof(a));
			inet_ntop(held.family, held.raddr, b, sizeof(b));
			return om_make_error(err, EBUSY,
					     "the connection %s:%u <-> %s:%u is still held by a socket on this node "
					     "(a closing copy) after %.0f s",
					     a, held.lport, b, held.rport, (double)OM_TCP_PAIR_WAIT);
		}
		if (om_pause(o->cancel_fd, 100, err) < 0)
			return -1;
	}
	om_netlock_name(name, len, o->group, o->pid);
	if (om_netlock_take(name, c, m->n_tcp_conns, err) < 0) {
		name[0] = '\0';
		return -1;
	}
	return 0;
}

/* A generation dumped with the group left running on another node: its
 * processes may still run there. Restoring it is a takeover, which the
 * administrator asks for (omrestore --takeover), and which this node can check
 * only when it is the node of the generation. */
static int check_takeover(const struct restore_ctx *c, const Om__Manifest *m, om_error_t *err)
{
	bool here = strcmp(m->node, om_node_name()) == 0;
	struct om_group g = {0};
	size_t n;

	if (!c->o->takeover) {
		if (m->leave_running && !here)
			return om_make_error(err, OM_EUSAGE,
					     "generation %llu was taken on node %s with the group left running there, "
					     "where it may still run: restoring it here is a takeover (--takeover)",
					     (unsigned long long)m->generation, m->node);
		return 0;
	}
	if (!here) {
		if (c->o->force)
			return 0;
		return om_make_error(err, OM_EUSAGE,
				     "generation %llu comes from node %s, which this node cannot check: if %s is down "
				     "or no longer runs group %u, add --force (if it does, the group runs twice)",
				     (unsigned long long)m->generation, m->node, m->node, (unsigned)c->group);
	}
	if (c->group == 0 || !om_group_exists(&c->cg, c->group))
		return 0;
	if (om_group_load(&c->cg, c->group, &g, err) < 0)
		return -1;
	n = om_group_count(&g);
	om_group_release(&g);
	if (n > 0)
		return om_make_error(err, EBUSY,
				     "group %u still runs on this node (%zu process%s): nothing to take over",
				     (unsigned)c->group, n, n == 1 ? "" : "es");
	return 0;
}

int om_restore(const struct om_restore_opts *o, struct om_restore_result *res, om_error_t *err)
{
	struct om_store st = {.path = NULL, .fd = -1};
	cleanup_free char *store_path = NULL;
	cleanup_close int lock_fd = -1;	 /* the group's (or the PID's) node lock */
	cleanup_close int group_fd = -1; /* omrestore -p of a tree of a group: the group's */
	cleanup_close int report = -1;
	const char *kind = o->group ? "groups" : "pids";
	unsigned long id = o->group ? o->group : (unsigned long)o->pid;
	struct restore_ctx c;
	Om__Manifest *m = NULL;
	char criu_ver[32], name[16], netlock[64] = "";
	double t0 = om_now();
	double keeper_deadline;
	size_t restored = 0;
	int abort_pipe[2] = {-1, -1};
	bool cancelled = false;
	struct om_shm_undo *shm_undo = NULL;
	struct om_pin *pin = NULL;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.o = o;
	if ((o->group == 0) == (o->pid == 0))
		return om_make_error(err, OM_EUSAGE, "restore needs a miggroup or a PID");
	if (om_criu_version(&(struct om_bound){.timeout_s = OM_CRIU_QUERY_TIMEOUT, .cancel_fd = o->cancel_fd}, criu_ver,
			    sizeof(criu_ver), err) < 0)
		return -1;
	if (om_store_resolve_path(o->store, &store_path, err) < 0)
		return om_error_set_exit(err, OM_EXIT_STORE);
	if (om_cg_init(&c.cg, err) < 0)
		return -1;
	if (o->group
		? om_group_lock(&c.cg, o->group,
				&(struct om_bound){.timeout_s = o->lock_wait, .cancel_fd = o->cancel_fd}, &lock_fd,
				err) < 0
		: om_pid_lock(&c.cg, o->pid, &(struct om_bound){.timeout_s = o->lock_wait, .cancel_fd = o->cancel_fd},
			      &lock_fd, err) < 0)
		return -1;
	if (om_store_open(&st, store_path, false, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}
	/* the generation is pinned while we read it: no prune or rm, on any
	 * node, removes it under us (a prune may win the race for the newest
	 * but one: then the next newest is taken) */
	for (int attempt = 0;; attempt++) {
		if (om_gen_load_manifest(&st, kind, id, o->generation, &m, err) < 0)
			goto out;
		if (om_gen_pin(&st, kind, id, m->generation, 0, &pin, err) == 0)
			break;
		if ((*err)->status == EROFS || (*err)->status == EACCES) { /* a read-only store: nobody prunes it */
			om_error_release(err);
			break;
		}
		if ((*err)->status != OM_ENOTFOUND || o->generation != 0 || attempt >= 3)
			goto out;
		om_error_release(err);
		om_manifest_free(m);
		m = NULL;
	}
	c.m = m;
	c.roots = calloc(m->n_trees ? m->n_trees : 1, sizeof(pid_t));
	if (c.roots == NULL) {
		om_make_error(err, ENOMEM, "restore");
		goto out;
	}
	res->generation = m->generation;
	/* a group's generation rejoins the group; omckpt -p of a tree of a group too */
	c.group = m->group ? m->group : m->has_from_group ? m->from_group : 0;
	c.use_group = c.group != 0;
	if (c.use_group && !o->group &&
	    om_group_lock(&c.cg, c.group, &(struct om_bound){.timeout_s = o->lock_wait, .cancel_fd = o->cancel_fd},
			  &group_fd, err) < 0)
		goto out;
	if (check_takeover(&c, m, err) < 0)
		goto out;
	/* failover: from now on, a writer under an older token cannot publish */
	if (o->fence && o->group &&
	    om_store_fence_raise(&st, kind, id, o->fence, om_node_name(), m->generation, NULL, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}
	om_workdir_sweep(om_workdir(o->workdir));
	snprintf(c.scratch, sizeof(c.scratch), "%.3000s/restore-%s%lu-%d", om_workdir(o->workdir), o->group ? "g" : "p",
		 id, (int)getpid());
	if (om_rm_rf_at(AT_FDCWD, c.scratch, err) < 0 || om_mkdir_p(c.scratch, 0700, err) < 0)
		goto out;
	/* every tree is decompressed, and every stored byte checked against its
	 * SHA-256, before the first process is restored: a corrupt generation
	 * restores nothing */
	for (size_t i = 0; i < m->n_trees; i++) {
		char img[PATH_MAX];
		snprintf(img, sizeof(img), "%.3000s/%s/img", c.scratch, m->trees[i]->dir);
		if (om_gen_extract_tree(&st, kind, id, m, m->trees[i], img, err) < 0)
			goto out;
	}

	if (m->shm) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%.3000s/" OM_SHM_DIR, c.scratch);
		if (om_gen_extract_shm(&st, kind, id, m, dir, err) < 0)
			goto out;
	}

	if (o->fault && strncmp(o->fault, "restore-pause-pinned:", 21) == 0) { /* tests: a long read */
		unsigned long secs = 0;
		(void)om_parse_uint(o->fault + 21, 60, &secs);
		if (om_pause(o->cancel_fd, (long)secs * 1000, err) < 0)
			goto out;
	}
	if (om_restore_pids_free(m, o->pid_wait, o->cancel_fd, err) < 0)
		goto out;
	om_restore_reserve_pids(m); /* the keeper and CRIU fork next */
	/* no cluster: the store's fence follows the group to this node, before
	 * any of its processes runs here; from now on the node it was taken from
	 * cannot publish (its checkpoints are refused, exit 7) */
	if (o->fence_local && !o->fence && o->group &&
	    om_store_fence_take(&st, kind, id, om_node_name(), m->generation, o->takeover, NULL, err) < 0) {
		if ((*err)->status != EROFS && (*err)->status != EACCES) {
			om_error_set_exit(err, OM_EXIT_STORE);
			goto out;
		}
		om_error_release(err); /* a read-only store: nobody checkpoints into it either */
	}
	/* shmig: the group's shared memory is back before its processes */
	if (m->shm) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%.3000s/" OM_SHM_DIR, c.scratch);
		if (om_shm_recreate(m->shm, dir, strcmp(m->node, om_node_name()) == 0, &shm_undo, err) < 0)
			goto out;
	}
	/* --tcp-established: the peer of a connection may be in a tree restored
	 * later; until every tree is back, their packets are dropped (not reset) */
	if (m->n_tcp_conns > 0 && lock_connections(m, o, netlock, sizeof(netlock), err) < 0)
		goto out;

	/* the keeper watches the read end: when omrestore closes the write end
	 * (a signal, or omrestore died) it kills CRIU and the trees it restored */
	if (pipe2(abort_pipe, O_CLOEXEC) < 0) {
		om_make_error(err, errno, "pipe");
		goto out;
	}
	c.abort_fd = abort_pipe[0];
	snprintf(name, sizeof(name), "omkeeper-%s%lu", o->group ? "g" : "p", id);
	if (om_keeper_spawn(name, restore_fn, &c, abort_pipe[0], &report, err) < 0)
		goto out;
	close(abort_pipe[0]);
	abort_pipe[0] = -1;
	keeper_deadline = om_now() + 30; /* beyond the trees' own bounds */
	for (size_t i = 0; i < m->n_trees; i++)
		keeper_deadline += tree_timeout(o, m->trees[i]);
	for (;;) {
		struct om_keeper_report r;
		int got = wait_keeper(report, o->cancel_fd, keeper_deadline, &abort_pipe[1], &cancelled, err);
		if (got > 0)
			got = om_keeper_recv(report, &r, err);
		if (got < 0)
			goto fail_kill;
		if (got == 0)
			break;
		if (r.index < 0 || (size_t)r.index >= m->n_trees) {
			om_make_error(err, EPROTO, "keeper reported an unknown tree");
			goto fail_kill;
		}
		if (r.status) { /* the keeper has killed what it restored */
			om_make_error(err, r.status, "restore tree %d (%zu of %zu): %s",
				      (int)m->trees[r.index]->root_pid, (size_t)r.index + 1, m->n_trees, r.msg);
			if ((*err)->status == ETIMEDOUT || (*err)->status == OM_ECRIU)
				om_error_set_exit(err, OM_EXIT_CRIU);
			restored = 0;
			goto fail_kill;
		}
		c.roots[r.index] = r.pid;
		restored = (size_t)r.index + 1;
	}
	if (restored != m->n_trees) {
		om_make_error(err, ECHILD, "the keeper stopped after %zu of %zu trees", restored, m->n_trees);
		goto fail_kill;
	}
	/* every restored process must be there; a tree with its own PID namespace
	 * has new PIDs on this node: it is found from its root */
	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		bool own_ns = t->has_own_pidns && t->own_pidns;
		pid_t gone = 0;

		if (own_ns ? om_pid_state(c.roots[i]) != OM_PID_ALIVE : c.roots[i] != t->root_pid)
			gone = c.roots[i];
		for (size_t j = 0; !own_ns && !gone && j < t->n_procs; j++)
			if (!t->procs[j]->zombie && om_pid_state(t->procs[j]->pid) != OM_PID_ALIVE)
				gone = t->procs[j]->pid;
		if (gone) {
			om_make_error(err, ECHILD, "process %d of tree %d is gone right after restore", (int)gone,
				      (int)t->root_pid);
			goto fail_kill;
		}
	}
	if (netlock[0] && om_netlock_release(netlock, err) < 0)
		goto fail_kill;
	ret = 0;
	goto out;

fail_kill:
	/* never a half-restored group: kill the trees already restored (the
	 * keeper has done so when it reported the failure; this covers the rest) */
	kill_trees(c.roots, restored);
	if (cancelled && (*err)->status != ECANCELED) {
		(*err)->status = ECANCELED;
		om_error_wrap(err, "interrupted");
	}
out:
	if (ret < 0) {
		om_shm_undo(shm_undo); /* the trees that attached them are gone */
	} else if (m->shm) {
		om_error_t tmp = NULL;
		if (om_shm_finish(m->shm, shm_undo, &tmp) < 0)
			om_error_release(&tmp); /* a removed segment stays until its last detach anyway */
	}
	if (abort_pipe[0] >= 0)
		close(abort_pipe[0]);
	if (abort_pipe[1] >= 0)
		close(abort_pipe[1]);
	if (c.scratch[0]) {
		om_error_t tmp = NULL;
		if (ret == 0 || m == NULL)
			om_rm_rf_at(AT_FDCWD, c.scratch, &tmp);
		else /* keep CRIU's restore.log for the administrator, drop the images */
			for (size_t i = 0; i < m->n_trees; i++) {
				char img[PATH_MAX];
				snprintf(img, sizeof(img), "%.3000s/%s/img", c.scratch, m->trees[i]->dir);
				om_rm_rf_at(AT_FDCWD, img, &tmp);
				om_error_release(&tmp);
			}
		om_error_release(&tmp);
	}
	if (ret < 0) {
		if (o->group)
			om_error_wrap(err, "restore miggroup %lu", o->group);
		else
			om_error_wrap(err, "restore process %d", (int)o->pid);
		if (m)
			om_manifest_free(m);
		free(c.roots);
	} else {
		res->m = m;
		res->roots = c.roots;
		res->seconds = om_now() - t0;
	}
	om_gen_unpin(pin);
	om_store_close(&st);
	return ret;
}
