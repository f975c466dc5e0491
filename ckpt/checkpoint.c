#include "config.h"
#include "checkpoint.h"
#include "shmig.h"
#include "om-criu.h"
#include "group.h"
#include "netlock.h"
#include "lock.h"
#include "proc.h"
#include "store.h"
#include "util.h"
#include "workdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

void om_ckpt_result_release(struct om_ckpt_result *res)
{
	free(res->path);
	res->path = NULL;
	om_prune_result_release(&res->prune);
	free(res->prune_error);
	res->prune_error = NULL;
}

struct ckpt_ctx {
	const struct om_ckpt_opts *o;
	struct om_cg cg;
	struct om_group g;	/* the trees to dump (for -p: one tree) */
	char tmpleaf[PATH_MAX]; /* -p on a process outside any group: its freezer leaf */
	char scratch[PATH_MAX];
	bool keep_logs; /* failed: keep CRIU's logs in scratch, drop the images */
	Om__Manifest *m;
	struct om_tcp_conn *conns; /* --tcp-established: the group's connections */
	size_t n_conns;
	char netlock[64];  /* the network lock taken, "" if none */
	bool keep_netlock; /* migrated: the lock stays until the restore */
	int *repair_fds;   /* the group's sockets in repair mode, closed after the kill */
	size_t n_repair_fds;
	int lock_fd;	   /* the node lock of the group (or of the PID) */
	int pid_lock_fd;   /* omckpt -p: the lock of the PID */
	char lockname[64]; /* its name, also the name of the intent */
	bool intent;	   /* an intent is written: publishing has started */
	bool published;	   /* the generation is published: never thaw */
	pid_t *st_pid;	   /* the processes of the cut with their start times (intent) */
	unsigned long long *st_start;
	size_t n_st;
	struct om_shm_known *shm_known; /* shmig: what om_shm_check saw before the freeze */
	struct om_thaw_guard guard;	/* thaws the group if we are killed with it frozen */
};

/* The cleanup of a checkpoint: thaws a group still frozen, moves processes of
 * omckpt -p back where they were, drops scratch images. */
static void ctx_release(struct ckpt_ctx *c)
{
	om_error_t tmp = NULL;
	if (c->repair_fds) /* the checkpoint failed: the sockets go back to normal */
		om_tcp_repair_undo(c->repair_fds, c->n_repair_fds);
	if (c->netlock[0] && !c->keep_netlock && om_netlock_release(c->netlock, &tmp) < 0)
		om_error_release(&tmp);
	free(c->conns);
	om_shm_known_free(c->shm_known);
	if (c->m)
		om_shm_drop_links(c->m->shm); /* a dump that failed */
	if (c->intent && !c->published) {     /* not published: the intent goes before the thaw */
		if (om_intent_remove(c->lockname, &tmp) < 0)
			om_error_release(&tmp);
	}
	if (c->g.frozen && !c->published)
		om_group_thaw(&c->g, &tmp);
	om_error_release(&tmp);
	if (c->tmpleaf[0] && !c->published) { /* processes of omckpt -p that keep running go back where they were */
		cleanup_free pid_t *left = NULL;
		size_t n = 0;
		if (om_cg_procs(c->tmpleaf, &left, &n, &tmp) < 0)
			om_error_release(&tmp);
		for (size_t i = 0; i < n; i++)
			if (om_cg_move_out(&c->cg, left[i], &tmp) < 0)
				om_error_release(&tmp);
	}
	/* the temporary leaf of omckpt -p: killed tasks may take a moment to leave it */
	for (int i = 0; c->tmpleaf[0] && i < 100 && rmdir(c->tmpleaf) < 0 && errno == EBUSY; i++)
		om_sleep_ms(10);
	if (c->scratch[0] && c->keep_logs) {
		for (size_t i = 0; i < c->g.n_trees; i++) {
			char img[PATH_MAX];
			snprintf(img, sizeof(img), "%.3000s/tree-%d/img", c->scratch, (int)c->g.trees[i].root);
			{
				om_rm_rf_at(AT_FDCWD, img, &tmp);
				om_error_release(&tmp);
			}
		}
	} else if (c->scratch[0]) {
		om_rm_rf_at(AT_FDCWD, c->scratch, &tmp);
		om_error_release(&tmp);
	}
	om_group_release(&c->g);
	if (c->m)
		om_manifest_free_built(c->m);
	free(c->st_pid);
	free(c->st_start);
	if (c->pid_lock_fd >= 0)
		close(c->pid_lock_fd);
	om_thaw_guard_stop(&c->guard); /* we are done with the group: nothing for it to do */
	if (c->lock_fd >= 0)	       /* last: the group is left as it should be */
		close(c->lock_fd);
}

/* Is fault `name` injected (o->fault is "name" or "name:ARG")? */
static bool fault(const struct om_ckpt_opts *o, const char *name)
{
	size_t n = strlen(name);
	return o->fault && strncmp(o->fault, name, n) == 0 && (o->fault[n] == '\0' || o->fault[n] == ':');
}

/* OM_FAULT=kill:PHASE: SIGKILL ourselves at that phase (tests: kill -9 safety) */
static void kill_fault(const struct om_ckpt_opts *o, const char *phase)
{
	if (o->fault && strncmp(o->fault, "kill:", 5) == 0 && strcmp(o->fault + 5, phase) == 0)
		raise(SIGKILL);
}

/* omckpt -p PID: find or make the leaf cgroup of PID's tree. */
static int prepare_single(struct ckpt_ctx *c, om_error_t *err)
{
	pid_t pid = c->o->pid;
	unsigned long g;
	pid_t t;
	cleanup_free pid_t *desc = NULL;
	size_t nd = 0;

	if (om_pid_state(pid) != OM_PID_ALIVE)
		return om_make_error(err, ESRCH, "process %d", (int)pid);
	/* the PID's own lock (one omckpt -p PID), then its group's, if any */
	if (om_pid_lock(&c->cg, pid, &(struct om_bound){.timeout_s = c->o->lock_wait, .cancel_fd = c->o->cancel_fd},
			&c->pid_lock_fd, err) < 0)
		return -1;
	om_pid_lock_name(pid, c->lockname, sizeof(c->lockname));
	if (om_cg_locate(&c->cg, pid, &g, &t, err) < 0)
		return -1;
	if (g != 0) {
		unsigned long g2;
		if (om_group_lock(&c->cg, g,
				  &(struct om_bound){.timeout_s = c->o->lock_wait, .cancel_fd = c->o->cancel_fd},
				  &c->lock_fd, err) < 0)
			return -1;
		om_group_lock_name(g, c->lockname, sizeof(c->lockname));
		if (om_cg_locate(&c->cg, pid, &g2, &t, err) < 0)
			return -1;
		if (g2 != g)
			return om_make_error(err, EWOULDBLOCK, "process %d moved from miggroup %lu meanwhile", (int)pid,
					     g);
		if (om_group_normalize(&c->cg, g, err) < 0 || om_group_load(&c->cg, g, &c->g, err) < 0)
			return -1;
		if (om_group_keep_tree(&c->g, pid) < 0)
			return om_make_error(
			    err, 0,
			    "process %d is inside a process tree of miggroup %lu: checkpoint the group "
			    "(-g %lu) or the tree's root",
			    (int)pid, g, g);
		return 0;
	}
	/* not in a group: a temporary leaf for the freezer */
	snprintf(c->tmpleaf, sizeof(c->tmpleaf), "%.4000s/p%d", c->cg.base, (int)pid);
	if (om_cg_mkdir(c->tmpleaf, err) < 0)
		return -1;
	if (om_proc_descendants(pid, &desc, &nd, err) < 0)
		return -1;
	for (size_t i = 0; i < nd; i++) {
		om_error_t tmp = NULL;
		unsigned long dg;
		pid_t dt;
		if (om_cg_locate(&c->cg, desc[i], &dg, &dt, &tmp) == 0 && dg != 0) {
			om_make_error(err, 0, "process %d (descendant of %d) belongs to miggroup %lu", (int)desc[i],
				      (int)pid, dg);
			return -1;
		}
		om_error_release(&tmp);
		om_cg_save_origin(&c->cg, desc[i]);
		if (om_cg_move(c->tmpleaf, desc[i], &tmp) < 0) {
			if (i == 0) {
				*err = tmp;
				return -1;
			}
			om_error_release(&tmp); /* exited meanwhile */
		}
	}
	/* describe it as a one-tree group */
	memset(&c->g, 0, sizeof(c->g));
	c->g.cg = c->cg;
	c->g.trees = calloc(1, sizeof(struct om_tree));
	if (c->g.trees == NULL)
		return om_make_error(err, ENOMEM, "checkpoint %d", (int)pid);
	c->g.n_trees = 1;
	c->g.trees[0].root = pid;
	c->g.trees[0].leaf = pid;
	snprintf(c->g.trees[0].cgpath, sizeof(c->g.trees[0].cgpath), "%s", c->tmpleaf);
	/* the members are read from the leaf after the freeze (reload_frozen) */
	return 0;
}

static int cmp_member_pid(const void *key, const void *elem)
{
	pid_t k = *(const pid_t *)key, p = ((const struct om_member *)elem)->pid;
	return (k > p) - (k < p);
}

static int cmp_member_sort(const void *a, const void *b)
{
	pid_t x = ((const struct om_member *)a)->pid, y = ((const struct om_member *)b)->pid;
	return (x > y) - (x < y);
}

static bool tree_has(const struct om_tree *t, pid_t pid)
{
	return bsearch(&pid, t->members, t->n_members, sizeof(*t->members), cmp_member_pid) != NULL;
}

/* After the freeze: every process of each tree must be in the tree's leaf. A
 * child that exited and was not reaped yet (a zombie) is in no cgroup: it is
 * part of its parent's tree, and CRIU dumps and restores it as a zombie. */
static int check_trees_whole(struct ckpt_ctx *c, om_error_t *err)
{
	for (size_t i = 0; i < c->g.n_trees; i++) {
		struct om_tree *t = &c->g.trees[i];
		cleanup_free pid_t *desc = NULL;
		size_t nd = 0, before = t->n_members;

		if (om_proc_descendants(t->root, &desc, &nd, err) < 0)
			return om_error_wrap(err, "tree %d", (int)t->root);
		for (size_t j = 0; j < nd; j++) {
			struct om_proc p;
			om_error_t tmp = NULL;

			if (tree_has(t, desc[j]))
				continue;
			if (om_proc_read(desc[j], &p, false, &tmp) == 0 && (p.state == 'Z' || p.state == 'X') &&
			    tree_has(t, p.ppid)) {
				struct om_member *nm = realloc(t->members, (t->n_members + 1) * sizeof(*nm));
				if (nm == NULL) {
					om_proc_release(&p);
					return om_make_error(err, ENOMEM, "tree %d", (int)t->root);
				}
				t->members = nm;
				t->members[t->n_members++] = (struct om_member){
				    .pid = p.pid, .ppid = p.ppid, .state = 'Z', .cmdline = om_steal_ptr(p.cmdline)};
				om_proc_release(&p);
				continue;
			}
			if (tmp == NULL)
				om_proc_release(&p);
			om_error_release(&tmp);
			{
				unsigned long g = 0;
				pid_t tr = 0;
				om_cg_locate(&c->cg, desc[j], &g, &tr, &tmp);
				om_error_release(&tmp);
				return om_make_error(err, 0,
						     "process %d (in the tree of %d) is %s%lu: a process tree is "
						     "checkpointed whole",
						     (int)desc[j], (int)t->root, g ? "in miggroup " : "in no miggroup",
						     g ? g : 0UL);
			}
		}
		if (t->n_members != before)
			qsort(t->members, t->n_members, sizeof(*t->members), cmp_member_sort);
	}
	return 0;
}

static int cmp_pid_t(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* A terminal whose master side lives outside the tree cannot be dumped by
 * CRIU; say so in the administrator's terms before CRIU does in its own. */
struct tty_scan {
	pid_t pid;
	bool has_master;
	pid_t tty_pid;
	int tty_fd;
	char tty_path[256];
};

static int scan_tty(void *arg, int fd, const char *target, om_error_t *err)
{
	struct tty_scan *t = arg;

	(void)err;
	if (strcmp(target, "/dev/ptmx") == 0 || strncmp(target, "/dev/pts/ptmx", 13) == 0)
		t->has_master = true;
	else if (t->tty_pid == 0 && (strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0 ||
				     strcmp(target, "/dev/console") == 0)) {
		t->tty_pid = t->pid;
		t->tty_fd = fd;
		snprintf(t->tty_path, sizeof(t->tty_path), "%s", target);
	}
	return 0;
}

static int check_no_foreign_tty(struct ckpt_ctx *c, const pid_t *seen, size_t n_seen, om_error_t *err)
{
	for (size_t i = 0; i < c->g.n_trees; i++) {
		struct om_tree *t = &c->g.trees[i];
		struct tty_scan ts = {.tty_fd = -1};

		for (size_t j = 0; j < t->n_members; j++) {
			om_error_t tmp = NULL;

			if (t->members[j].state == 'Z' ||
			    (n_seen && bsearch(&t->members[j].pid, seen, n_seen, sizeof(pid_t), cmp_pid_t)))
				continue; /* checked before the freeze */
			ts.pid = t->members[j].pid;
			if (om_proc_fds(ts.pid, scan_tty, &ts, &tmp) < 0)
				om_error_release(&tmp); /* gone meanwhile */
		}
		if (ts.tty_pid && !ts.has_master)
			return om_make_error(
			    err, 0,
			    "process %d (tree %d) has the terminal %s open on fd %d: CRIU cannot move a "
			    "terminal whose other side is outside the tree; start it with omrun, or "
			    "with its stdin, stdout and stderr redirected",
			    (int)ts.tty_pid, (int)t->root, ts.tty_path, ts.tty_fd);
	}
	return 0;
}

static Om__ProcEntry *proc_entry(pid_t pid, bool zombie, unsigned long long *start, om_error_t *err)
{
	struct om_proc p;
	Om__ProcEntry *e;

	if (om_proc_read(pid, &p, !zombie, err) < 0)
		return NULL;
	*start = p.starttime;
	if (zombie) { /* its one thread is gone: CRIU restores the PID */
		p.tids = malloc(sizeof(pid_t));
		if (p.tids)
			p.tids[p.n_tids++] = pid;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		om_proc_release(&p);
		om_make_error(err, ENOMEM, "describe process %d", (int)pid);
		return NULL;
	}
	om__proc_entry__init(e);
	e->pid = p.pid;
	e->ppid = p.ppid;
	e->comm = strdup(p.comm);
	e->has_zombie = zombie;
	e->zombie = zombie;
	e->cmdline = om_steal_ptr(p.cmdline);
	e->n_tids = p.n_tids;
	e->tids = calloc(p.n_tids ? p.n_tids : 1, sizeof(int32_t));
	for (size_t i = 0; e->tids && i < p.n_tids; i++)
		e->tids[i] = p.tids[i];
	om_proc_release(&p);
	if (e->comm == NULL || e->tids == NULL) {
		om_make_error(err, ENOMEM, "describe process %d", (int)pid);
		free(e->comm);
		free(e->cmdline);
		free(e->tids);
		free(e);
		return NULL;
	}
	return e;
}

static int build_manifest(struct ckpt_ctx *c, char *criu_ver, om_error_t *err)
{
	struct utsname u;
	struct timespec now;
	Om__Manifest *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return om_make_error(err, ENOMEM, "build manifest");
	om__manifest__init(m);
	c->m = m;
	uname(&u);
	clock_gettime(CLOCK_REALTIME, &now);
	m->group = (uint32_t)c->o->group;
	m->node = strdup(om_node_name());
	m->time_unix_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
	m->kernel = strdup(u.release);
	m->criu_version = strdup(criu_ver);
	m->omtools_version = strdup(PACKAGE_VERSION);
	m->cgroup_backend = strdup(om_cg_name(&c->cg));
	m->has_leave_running = true;
	m->leave_running = c->o->leave_running;
	m->has_zstd_level = true;
	m->zstd_level = c->o->zstd_level ? c->o->zstd_level : 3;
	if (c->o->pid) {
		m->has_single_pid = true;
		m->single_pid = c->o->pid;
		if (c->g.id) { /* a tree of a group: omrestore -p puts it back there */
			m->has_from_group = true;
			m->from_group = (uint32_t)c->g.id;
		}
	}
	if (!m->node || !m->kernel || !m->criu_version || !m->omtools_version || !m->cgroup_backend)
		return om_make_error(err, ENOMEM, "build manifest");
	m->trees = calloc(c->g.n_trees, sizeof(Om__TreeEntry *));
	c->st_pid = calloc(om_group_count(&c->g) + 1, sizeof(*c->st_pid));
	c->st_start = calloc(om_group_count(&c->g) + 1, sizeof(*c->st_start));
	if (m->trees == NULL || c->st_pid == NULL || c->st_start == NULL)
		return om_make_error(err, ENOMEM, "build manifest");
	for (size_t i = 0; i < c->g.n_trees; i++) {
		struct om_tree *t = &c->g.trees[i];
		Om__TreeEntry *te = calloc(1, sizeof(*te));
		if (te == NULL)
			return om_make_error(err, ENOMEM, "build manifest");
		om__tree_entry__init(te);
		m->trees[m->n_trees++] = te;
		te->root_pid = t->root;
		te->has_own_pidns = true;
		te->own_pidns = !om_proc_same_ns(t->root, getpid(), "pid");
		te->dir = om_strdup_printf("tree-%d", (int)t->root);
		te->procs = calloc(t->n_members, sizeof(Om__ProcEntry *));
		if (te->dir == NULL || te->procs == NULL)
			return om_make_error(err, ENOMEM, "build manifest");
		for (size_t j = 0; j < t->n_members; j++) {
			bool zombie = t->members[j].state == 'Z';
			unsigned long long start = 0;
			Om__ProcEntry *pe = proc_entry(t->members[j].pid, zombie, &start, err);
			if (pe == NULL)
				return om_error_wrap(err, "tree %d", (int)t->root);
			te->procs[te->n_procs++] = pe;
			c->st_pid[c->n_st] = pe->pid;
			c->st_start[c->n_st++] = start;
		}
	}
	return 0;
}

/* CRIU dumps a session whole: is the session leader of the root inside the tree? */
static bool session_in_tree(const struct om_tree *t)
{
	pid_t sid = getsid(t->root);
	if (sid == t->root)
		return true;
	for (size_t i = 0; i < t->n_members; i++)
		if (t->members[i].pid == sid)
			return true;
	return false;
}

/* A member may have forked, or a joingroup may have raced the freeze: read the
 * trees again now that they hold still, and freeze whatever is new. */
static int reload_frozen(struct ckpt_ctx *c, om_error_t *err)
{
	struct om_group g2;

	if (c->tmpleaf[0]) { /* omckpt -p of a process in no group: its temporary leaf */
		struct om_tree *t = &c->g.trees[0];
		cleanup_free pid_t *procs = NULL;
		size_t n = 0;
		struct om_member *m;

		if (om_cg_procs(c->tmpleaf, &procs, &n, err) < 0)
			return -1;
		m = calloc(n ? n : 1, sizeof(*m));
		if (m == NULL)
			return om_make_error(err, ENOMEM, "checkpoint %d", (int)c->o->pid);
		om_pids_sort(procs, n);
		for (size_t i = 0; i < n; i++)
			m[i].pid = procs[i];
		free(t->members);
		t->members = m;
		t->n_members = n;
		return 0;
	}
	if (om_group_load(&c->cg, c->g.id, &g2, err) < 0)
		return -1;
	if (c->o->pid && om_group_keep_tree(&g2, c->o->pid) < 0) {
		om_group_release(&g2);
		return om_make_error(err, ESRCH, "process %d", (int)c->o->pid);
	}
	g2.frozen = true;
	if (om_group_freeze(&g2, c->o->freeze_timeout > 0 ? c->o->freeze_timeout : 10, c->o->cancel_fd, err) < 0) {
		om_group_release(&g2);
		return -1;
	}
	c->g.frozen = false; /* g2 covers every leaf of g, and maybe more */
	om_group_release(&c->g);
	c->g = g2;
	if (c->g.n_trees == 0)
		return om_make_error(err, OM_ENOTFOUND, "miggroup %lu has no members", c->g.id);
	return 0;
}

/* After a failure with the group frozen: thaw it and check, not assume, that
 * it runs again; say so at the end of the error. */
static void thaw_and_check(struct ckpt_ctx *c, om_error_t *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n = 0, alive = 0;
	om_error_t tmp = NULL;
	pid_t lost = 0;

	if (om_group_thaw(&c->g, &tmp) < 0) {
		om_error_append(err, "and thawing the group failed: %s", tmp->msg ? tmp->msg : "error");
		om_error_release(&tmp);
		return;
	}
	for (size_t i = 0; i < c->g.n_trees; i++) {
		int r = om_cg_is_frozen(&c->cg, c->g.trees[i].cgpath, &tmp);
		om_error_release(&tmp);
		if (r > 0) {
			om_error_append(err, "tree %d is still frozen after the thaw", (int)c->g.trees[i].root);
			return;
		}
	}
	if (om_group_pids(&c->g, &pids, &n, &tmp) < 0) {
		om_error_release(&tmp);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (om_pid_state(pids[i]) == OM_PID_ALIVE)
			alive++;
		else if (lost == 0)
			lost = pids[i];
	}
	if (lost)
		om_error_append(err, "the group was thawed, but process %d is gone (%zu of %zu run)", (int)lost, alive,
				n);
	else
		om_error_append(err, "the group was thawed and runs (%zu process%s)", n, n == 1 ? "" : "es");
}

static int kill_and_wait(struct ckpt_ctx *c, om_error_t *err)
{
	return om_group_kill(&c->g, err);
}

/* --tcp-established: record the group's connections in the manifest and drop
 * their packets from now on, so that nothing moves between the dumps of two
 * trees (each one CRIU call) and no peer sees a reset. */
static int lock_connections(struct ckpt_ctx *c, om_error_t *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t np = 0;
	Om__Manifest *m = c->m;

	m->has_tcp_established = true;
	m->tcp_established = true;
	if (om_group_pids(&c->g, &pids, &np, err) < 0 || om_tcp_conns_of(pids, np, &c->conns, &c->n_conns, err) < 0)
		return -1;
	if (c->n_conns == 0)
		return 0;
	m->tcp_conns = calloc(c->n_conns, sizeof(*m->tcp_conns));
	if (m->tcp_conns == NULL)
		return om_make_error(err, ENOMEM, "build manifest");
	for (size_t i = 0; i < c->n_conns; i++) {
		const struct om_tcp_conn *k = &c->conns[i];
		size_t alen = k->family == AF_INET ? 4 : 16;
		Om__TcpConn *e = calloc(1, sizeof(*e));
		if (e == NULL)
			return om_make_error(err, ENOMEM, "build manifest");
		om__tcp_conn__init(e);
		m->tcp_conns[m->n_tcp_conns++] = e;
		e->local_addr.data = malloc(alen);
		e->remote_addr.data = malloc(alen);
		if (e->local_addr.data == NULL || e->remote_addr.data == NULL)
			return om_make_error(err, ENOMEM, "build manifest");
		memcpy(e->local_addr.data, k->laddr, alen);
		memcpy(e->remote_addr.data, k->raddr, alen);
		e->local_addr.len = e->remote_addr.len = alen;
		e->local_port = k->lport;
		e->remote_port = k->rport;
	}
	om_netlock_name(c->netlock, sizeof(c->netlock), c->o->group, c->o->pid);
	if (om_netlock_take(c->netlock, c->conns, c->n_conns, err) < 0) {
		c->netlock[0] = '\0';
		return -1;
	}
	return 0;
}

/* The intent of a migration, written before the generation is published:
 * whoever takes the lock after an interrupted omckpt stops these processes
 * when the generation was published, and thaws them when it was not. */
static int write_intent(struct ckpt_ctx *c, const struct om_store *st, const char *kind, unsigned long id,
			const struct om_gen_writer *w, om_error_t *err)
{
	Om__Intent in = OM__INTENT__INIT;
	cleanup_free char *tmp_dir = NULL;
	cleanup_free char *id_dir = NULL;
	cleanup_free char **leaves = calloc(c->g.n_trees + 1, sizeof(char *));
	cleanup_free Om__IntentProc *procs = calloc(c->n_st + 1, sizeof(*procs));
	cleanup_free Om__IntentProc **pp = calloc(c->n_st + 1, sizeof(*pp));

	id_dir = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	tmp_dir = om_strdup_printf("%s/%s", id_dir ? id_dir : "", om_gen_writer_tmp_name(w));
	if (!leaves || !procs || !pp || !tmp_dir || !id_dir || om_gen_writer_tmp_name(w) == NULL)
		return om_make_error(err, ENOMEM, "write intent");
	in.kind = (char *)kind;
	in.id = id;
	in.omckpt_pid = (int32_t)getpid();
	in.tmp_dir = tmp_dir;
	in.id_dir = id_dir;
	for (size_t i = 0; i < c->g.n_trees; i++)
		leaves[in.n_leaves++] = c->g.trees[i].cgpath;
	in.leaves = leaves;
	in.has_tmp_leaf = true;
	in.tmp_leaf = c->tmpleaf[0] != '\0';
	for (size_t i = 0; i < c->n_st; i++) {
		om__intent_proc__init(&procs[i]);
		procs[i].pid = c->st_pid[i];
		procs[i].start_time = c->st_start[i];
		pp[in.n_procs++] = &procs[i];
	}
	in.procs = pp;
	if (om_intent_write(c->lockname, &in, err) < 0)
		return -1;
	c->intent = true;
	return 0;
}

/* shmig: the members, each with its tree, and the group's name for messages. */
static struct om_shm_member *shm_members(const struct ckpt_ctx *c, size_t *n, char *label, size_t len)
{
	struct om_shm_member *mem = malloc((om_group_count(&c->g) + 1) * sizeof(*mem));

	*n = 0;
	for (size_t i = 0; mem && i < c->g.n_trees; i++)
		for (size_t j = 0; j < c->g.trees[i].n_members; j++)
			mem[(*n)++] = (struct om_shm_member){.pid = c->g.trees[i].members[j].pid, .tree = i};
	if (c->o->group)
		snprintf(label, len, "miggroup %lu", c->o->group);
	else
		snprintf(label, len, "the tree of process %d", (int)c->o->pid);
	return mem;
}

/* Before the freeze: refuse what cannot travel, learn who else uses what. */
static int check_shm(struct ckpt_ctx *c, om_error_t *err)
{
	char label[64];
	size_t n;
	cleanup_free struct om_shm_member *mem = shm_members(c, &n, label, sizeof(label));

	if (mem == NULL)
		return om_make_error(err, ENOMEM, "check shared memory");
	return om_shm_check(mem, n, label, &c->shm_known, err);
}

/* Frozen: the group's shared memory, saved into scratch/shm and described in
 * the manifest (nothing when the group uses none). */
static int save_shm(struct ckpt_ctx *c, om_error_t *err)
{
	char dir[PATH_MAX], label[64];
	size_t n;
	cleanup_free struct om_shm_member *mem = shm_members(c, &n, label, sizeof(label));

	if (mem == NULL)
		return om_make_error(err, ENOMEM, "save shared memory");
	snprintf(dir, sizeof(dir), "%.3000s/" OM_SHM_DIR, c->scratch);
	return om_shm_save(mem, n, c->shm_known, label, dir, &c->m->shm, err);
}

int om_checkpoint(const struct om_ckpt_opts *o, struct om_ckpt_result *res, om_error_t *err)
{
	__attribute__((cleanup(ctx_release))) struct ckpt_ctx c = {.lock_fd = -1, .pid_lock_fd = -1};
	struct om_store st = {.path = NULL, .fd = -1};
	struct om_gen_writer *w = NULL;
	cleanup_free char *store_path = NULL;
	cleanup_free pid_t *seen = NULL;
	size_t n_seen = 0;
	const char *kind = o->group ? "groups" : "pids";
	unsigned long id = o->group ? o->group : (unsigned long)o->pid;
	char criu_ver[32];
	double t0 = om_now(), tfreeze, tdump = 0;
	int ret = -1, rc;
	uint64_t fence = o->fence_local ? 0 : o->fence;
	int workers = o->zstd_workers > 0 ? o->zstd_workers : (int)sysconf(_SC_NPROCESSORS_ONLN);

	memset(res, 0, sizeof(*res));
	c.o = o;
	if ((o->group == 0) == (o->pid == 0))
		return om_make_error(err, OM_EUSAGE, "checkpoint needs a miggroup or a PID");
	if (om_cg_init(&c.cg, err) < 0)
		return -1;
	if (om_criu_version(&(struct om_bound){.timeout_s = OM_CRIU_QUERY_TIMEOUT, .cancel_fd = o->cancel_fd}, criu_ver,
			    sizeof(criu_ver), err) < 0)
		return -1;

	/* the group's node lock: no other command changes the group while we
	 * hold it, and what an interrupted omckpt left is finished first; then
	 * a leaf found frozen now is a stale freeze, thawed before we start */
	if (o->group) {
		if (om_group_lock(&c.cg, o->group,
				  &(struct om_bound){.timeout_s = o->lock_wait, .cancel_fd = o->cancel_fd}, &c.lock_fd,
				  err) < 0)
			goto out;
		om_group_lock_name(o->group, c.lockname, sizeof(c.lockname));
		if (!om_group_exists(&c.cg, o->group)) {
			om_make_error(err, OM_ENOTFOUND, "unknown miggroup %lu", o->group);
			goto out;
		}
		if (om_group_normalize(&c.cg, o->group, err) < 0 || om_group_load(&c.cg, o->group, &c.g, err) < 0 ||
		    om_group_thaw(&c.g, err) < 0)
			goto out;
		if (c.g.n_trees == 0) {
			om_make_error(err, OM_ENOTFOUND, "miggroup %lu has no members", o->group);
			goto out;
		}
	} else if (prepare_single(&c, err) < 0 || (c.tmpleaf[0] && reload_frozen(&c, err) < 0))
		goto out;

	/* the store must take the generation before anything is frozen */
	if (om_store_resolve_path(o->store, &store_path, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}
	if (om_store_open(&st, store_path, true, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}
	st.cancel_fd = o->cancel_fd;
	st.fault = o->fault;
	if (om_gen_begin(&st, kind, id, o->lock_wait, &w, err) < 0) {
		if ((*err)->status != EWOULDBLOCK)
			om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}
	/* no cluster: the store's fence says whether the group is still ours
	 * (another node took it over: refused now, the group left running) */
	if (o->group && o->fence_local && om_gen_fence_local(w, om_node_name(), &fence, err) < 0) {
		if ((*err)->status != ESTALE)
			om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}

	/* everything that does not need the cut is done before the freeze: the
	 * scratch directory, the sweep of what killed runs left, the terminal check */
	om_workdir_sweep(om_workdir(o->workdir));
	snprintf(c.scratch, sizeof(c.scratch), "%.3000s/ckpt-%s%lu-%d", om_workdir(o->workdir), o->group ? "g" : "p",
		 id, (int)getpid());
	if (om_rm_rf_at(AT_FDCWD, c.scratch, err) < 0 || om_mkdir_p(c.scratch, 0700, err) < 0)
		goto out;
	for (size_t i = 0; i < c.g.n_trees; i++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%.3000s/tree-%d/img", c.scratch, (int)c.g.trees[i].root);
		if (om_mkdir_p(dir, 0700, err) < 0)
			goto out;
	}
	if (check_no_foreign_tty(&c, NULL, 0, err) < 0 || om_group_pids(&c.g, &seen, &n_seen, err) < 0 ||
	    check_shm(&c, err) < 0)
		goto out;

	/* the consistent cut, under a guard that thaws it if we are killed */
	if (om_thaw_guard_start(&c.g, c.lockname, &c.guard, err) < 0)
		goto out;
	tfreeze = om_now();
	if (om_group_freeze(&c.g, o->freeze_timeout > 0 ? o->freeze_timeout : 10, o->cancel_fd, err) < 0)
		goto out;
	if (reload_frozen(&c, err) < 0)
		goto out;
	kill_fault(o, "freezing");
	if (check_trees_whole(&c, err) < 0 || check_no_foreign_tty(&c, seen, n_seen, err) < 0 ||
	    build_manifest(&c, criu_ver, err) < 0)
		goto out;
	if (o->tcp_established && lock_connections(&c, err) < 0)
		goto out;
	if (save_shm(&c, err) < 0)
		goto out;
	if (fault(o, "ckpt-pause-frozen")) { /* tests: hold the group frozen a while */
		unsigned long secs = 10;
		if (o->fault[strlen("ckpt-pause-frozen")] == ':')
			(void)om_parse_uint(o->fault + strlen("ckpt-pause-frozen") + 1, 60, &secs);
		om_sleep_ms((long)secs * 1000);
	}

	for (size_t i = 0; i < c.g.n_trees; i++) {
		struct om_tree *t = &c.g.trees[i];
		char dir[PATH_MAX], img[PATH_MAX + 8];
		double td = om_now();
		struct om_criu_dump d;
		uint64_t rss = 0;

		snprintf(dir, sizeof(dir), "%.3000s/tree-%d", c.scratch, (int)t->root);
		snprintf(img, sizeof(img), "%s/img", dir);
		if (om_mkdir_p(img, 0700, err) < 0) /* a tree that appeared at the reload */
			goto out;
		for (size_t j = 0; j < t->n_members; j++)
			rss += om_proc_rss_bytes(t->members[j].pid);
		c.m->trees[i]->has_shell_job = true;
		c.m->trees[i]->shell_job = !session_in_tree(t);
		d = (struct om_criu_dump){.root = t->root,
					  .shell_job = c.m->trees[i]->shell_job,
					  .tcp_established = o->tcp_established,
					  .own_network_lock = true,
					  .sysvshm_external = om_shm_has_segments(c.m->shm),
					  .images_dir = img,
					  .work_dir = dir,
					  .freeze_cgroup = t->cgpath,
					  .leave_running = true,
					  .bound = {.timeout_s = om_criu_timeout(rss, o->criu_timeout),
						    .cancel_fd = o->cancel_fd,
						    .cancel_grace_s = OM_CRIU_DUMP_CANCEL_GRACE}};
		if (om_criu_dump(&d, err) < 0) {
			c.keep_logs = true; /* the message names dump.log */
			om_error_wrap(err, "dump tree %d", (int)t->root);
			goto out;
		}
		c.m->trees[i]->has_dump_seconds = true;
		c.m->trees[i]->dump_seconds = om_now() - td;
		tdump += om_now() - td;
		kill_fault(o, "dumping");
	}
	om_shm_drop_links(c.m->shm);		/* CRIU has opened what it needed by those names */
	if (c.netlock[0] && o->leave_running) { /* CRIU has turned TCP repair off: let them talk */
		if (om_netlock_release(c.netlock, err) < 0)
			goto out;
		c.netlock[0] = '\0';
	} else if (c.n_conns > 0 && !o->handoff) { /* migration: the kill must end the connections silently */
		cleanup_free pid_t *pids = NULL;
		size_t np = 0;
		if (om_group_pids(&c.g, &pids, &np, err) < 0 ||
		    om_tcp_repair_grab(pids, np, c.conns, c.n_conns, &c.repair_fds, &c.n_repair_fds, err) < 0)
			goto out;
	}
	if (o->leave_running) {
		if (om_group_thaw(&c.g, err) < 0)
			goto out;
		res->freeze_seconds = om_now() - tfreeze;
	}
	for (size_t i = 0; i < c.g.n_trees; i++) {
		char img[PATH_MAX];
		snprintf(img, sizeof(img), "%.3000s/tree-%d/img", c.scratch, (int)c.g.trees[i].root);
		if (om_gen_add_tree(w, img, c.m->trees[i], o->zstd_level ? o->zstd_level : 3, workers, err) < 0) {
			om_error_set_exit(err, OM_EXIT_STORE);
			om_error_wrap(err, "store tree %d", (int)c.g.trees[i].root);
			goto out;
		}
	}
	if (c.m->shm) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%.3000s/" OM_SHM_DIR, c.scratch);
		if (om_gen_add_shm(w, dir, c.m->shm, o->zstd_level ? o->zstd_level : 3, workers, err) < 0) {
			om_error_set_exit(err, OM_EXIT_STORE);
			goto out;
		}
	}
	c.m->has_freeze_seconds = true;
	c.m->freeze_seconds = o->leave_running ? res->freeze_seconds : om_now() - tfreeze;
	c.m->has_total_seconds = true;
	c.m->total_seconds = om_now() - t0;
	if (fence) {
		c.m->has_fence = true;
		c.m->fence = fence;
	}
	/* a migration: record the intent before the rename publishes the generation */
	if (!o->leave_running && write_intent(&c, &st, kind, id, w, err) < 0)
		goto out;
	if (fault(o, "ckpt-before-commit"))
		raise(SIGKILL);
	rc = om_gen_commit(w, c.m, &res->generation, err);
	if (rc == 0 && fault(o, "ckpt-commit-fails-after-rename"))
		rc = om_make_error(err, EIO, "commit: injected fault after the rename (OM_FAULT)");
	if (rc < 0 && res->generation == 0) { /* not published: no intent, thaw, no generation */
		om_error_t tmp = NULL;
		if (om_intent_remove(c.lockname, &tmp) == 0) /* before the temporary generation goes */
			c.intent = false;
		om_error_release(&tmp);
		if ((*err)->status != ESTALE) /* fenced: exit 7, like the cluster's refusals */
			om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}
	/* published (even if the commit failed after its rename): from here on
	 * the group is the store's and never runs here again */
	c.published = !o->leave_running;
	if (c.published) /* the group is the store's: its intent (kill) is what recovery follows */
		om_thaw_guard_arm(&c.guard, false);
	if (fault(o, "ckpt-after-commit"))
		raise(SIGKILL);
	res->path = om_strdup_printf("%s/%s/%lu/gen-%llu", st.path, kind, id, (unsigned long long)res->generation);
	res->n_trees = c.g.n_trees;
	res->n_procs = om_group_count(&c.g);
	res->raw_bytes = c.m->raw_bytes;
	res->stored_bytes = c.m->stored_bytes;
	res->dump_seconds = tdump;
	res->freeze_started = tfreeze;
	if (!o->leave_running && o->handoff && rc == 0) {
		om_error_t tmp = NULL;
		if (o->handoff(o->handoff_arg, res, err) < 0) {
			/* not taken: the group runs on here, as if nothing happened */
			c.published = false;
			om_thaw_guard_arm(&c.guard, true);
			if (om_intent_remove(c.lockname, &tmp) == 0)
				c.intent = false;
			om_error_release(&tmp);
			goto out;
		}
		if (c.n_conns > 0) { /* taken: the kill must end the connections silently */
			cleanup_free pid_t *pids = NULL;
			size_t np = 0;
			if (om_group_pids(&c.g, &pids, &np, &tmp) < 0 ||
			    om_tcp_repair_grab(pids, np, c.conns, c.n_conns, &c.repair_fds, &c.n_repair_fds, &tmp) < 0)
				om_error_release(&tmp); /* the peers may see a reset; the group still stops */
		}
	}
	if (!o->leave_running) {
		om_error_t kerr = NULL;
		if (kill_and_wait(&c, &kerr) < 0) { /* the intent stays: the next locker finishes the kill */
			om_error_release(err);
			*err = kerr;
			om_error_wrap(err, "generation %llu is written, but stopping the group failed",
				      (unsigned long long)res->generation);
			goto out;
		}
		/* the last copies of the sockets, in repair mode: closed without a FIN or RST */
		om_fds_close(c.repair_fds, c.n_repair_fds);
		c.repair_fds = NULL;
		/* the peers wait for the restore, which releases it (on another node:
		 * nothing of it is left here once the group has gone) */
		c.keep_netlock = o->handoff == NULL;
		c.g.frozen = false;
		if (om_intent_remove(c.lockname, &kerr) < 0)
			om_error_release(&kerr); /* the next locker finds nothing to kill */
		/* the group has left the node: so has its shared memory (the
		 * generation has it); what cannot be removed is only a leftover */
		if (om_shm_remove(c.m->shm, &kerr) < 0)
			om_error_release(&kerr);
		res->freeze_seconds = om_now() - tfreeze;
	}
	if (rc < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		om_error_wrap(err, "generation %llu is published%s, but", (unsigned long long)res->generation,
			      o->leave_running ? "" : " and the group stopped");
		goto out;
	}
	/* retention, only now that the new generation is durable (and the group
	 * stopped or running again): a failure here is reported, not fatal */
	if (o->keep > 0) {
		om_error_t perr = NULL;
		if (om_gen_prune(w, o->keep, &res->prune, &perr) < 0) {
			res->prune_error = strdup(perr && perr->msg ? perr->msg : "pruning failed");
			om_error_release(&perr);
		}
	}
	res->total_seconds = om_now() - t0;
	ret = 0;
out:
	if (ret < 0 && c.g.frozen && !c.published)
		thaw_and_check(&c, err);
	if (ret < 0) {
		om_ckpt_result_release(res); /* the caller releases a result only on success */
		if (o->group)
			om_error_wrap(err, "checkpoint miggroup %lu", o->group);
		else
			om_error_wrap(err, "checkpoint process %d", (int)o->pid);
	}
	om_gen_writer_free(w); /* removes an uncommitted generation, unlocks */
	om_store_close(&st);   /* c's cleanup thaws a group still frozen */
	return ret;
}
