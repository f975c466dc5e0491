#include "config.h"
#include "group.h"
#include "proc.h"
#include "bounded.h"
#include "util.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int om_group_parse_id(const char *s, bool allow_zero, unsigned long *id, om_error_t *err)
{
	if (om_parse_uint(s, OM_GROUP_MAX, id) < 0 || (!allow_zero && *id == 0))
		return om_make_error(err, OM_EUSAGE, "invalid miggroup `%s`: expected an integer %s1 to %lu", s,
				     allow_zero ? "0 (no group) or " : "", OM_GROUP_MAX);
	return 0;
}

bool om_group_exists(const struct om_cg *cg, unsigned long id)
{
	char p[PATH_MAX];
	om_cg_group_path(cg, id, p);
	return access(p, F_OK) == 0;
}

/* List the leaves t<R> of a group: R values, sorted. */
static int list_leaves(const struct om_cg *cg, unsigned long id, pid_t **leaves, size_t *n, om_error_t *err)
{
	char p[PATH_MAX];
	DIR *d;
	struct dirent *de;

	*leaves = NULL;
	*n = 0;
	om_cg_group_path(cg, id, p);
	d = opendir(p);
	if (d == NULL) {
		if (errno == ENOENT)
			return om_make_error(err, OM_ENOTFOUND, "unknown miggroup %lu", id);
		return om_make_error(err, errno, "open `%s`", p);
	}
	while ((de = readdir(d)) != NULL) {
		pid_t r;
		if (de->d_name[0] != 't' || om_parse_pid(de->d_name + 1, &r) < 0)
			continue;
		if (om_pids_push(leaves, n, r) < 0) {
			closedir(d);
			return om_make_error(err, ENOMEM, "list miggroup %lu", id);
		}
	}
	closedir(d);
	om_pids_sort(*leaves, *n);
	return 0;
}

static void member_release(struct om_member *m)
{
	free(m->cmdline);
	m->cmdline = NULL;
}

static void tree_release(struct om_tree *t)
{
	for (size_t i = 0; i < t->n_members; i++)
		member_release(&t->members[i]);
	free(t->members);
	t->members = NULL;
	t->n_members = 0;
}

void om_group_release(struct om_group *g)
{
	for (size_t i = 0; i < g->n_trees; i++)
		tree_release(&g->trees[i]);
	free(g->trees);
	g->trees = NULL;
	g->n_trees = 0;
}

int om_group_keep_tree(struct om_group *g, pid_t root)
{
	for (size_t i = 0; i < g->n_trees; i++) {
		struct om_tree keep;

		if (g->trees[i].root != root)
			continue;
		keep = g->trees[i];
		for (size_t j = 0; j < g->n_trees; j++)
			if (j != i)
				tree_release(&g->trees[j]);
		g->trees[0] = keep;
		g->n_trees = 1;
		return 0;
	}
	return -1;
}

size_t om_group_count(const struct om_group *g)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n_trees; i++)
		n += g->trees[i].n_members;
	return n;
}

int om_group_pids(const struct om_group *g, pid_t **pids, size_t *n, om_error_t *err)
{
	*pids = NULL;
	*n = 0;
	for (size_t i = 0; i < g->n_trees; i++)
		for (size_t j = 0; j < g->trees[i].n_members; j++)
			if (om_pids_push(pids, n, g->trees[i].members[j].pid) < 0)
				return om_make_error(err, ENOMEM, "list miggroup %lu", g->id);
	om_pids_sort(*pids, *n);
	return 0;
}

static int cmp_member(const void *a, const void *b)
{
	const struct om_member *x = a, *y = b;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static int cmp_tree(const void *a, const void *b)
{
	const struct om_tree *x = a, *y = b;
	return (x->root > y->root) - (x->root < y->root);
}

static int cmp_pid_key(const void *key, const void *elem)
{
	pid_t k = *(const pid_t *)key, p = ((const struct om_member *)elem)->pid;
	return (k > p) - (k < p);
}

int om_group_split_roots(struct om_member *m, size_t n, pid_t *root, om_error_t *err)
{
	cleanup_free ssize_t *parent = NULL;
	cleanup_free ssize_t *path = NULL;

	if (n == 0)
		return 0;
	parent = malloc(n * sizeof(*parent));
	path = malloc(n * sizeof(*path));
	if (parent == NULL || path == NULL)
		return om_make_error(err, ENOMEM, "split process trees");
	qsort(m, n, sizeof(*m), cmp_member);
	for (size_t i = 0; i < n; i++) {
		const struct om_member *p = bsearch(&m[i].ppid, m, n, sizeof(*m), cmp_pid_key);
		parent[i] = p && p != &m[i] ? p - m : -1;
		root[i] = 0;
	}
	/* follow each chain up once: every member on it gets the root found */
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		ssize_t cur = (ssize_t)i;
		pid_t r;

		while (root[cur] == 0 && parent[cur] >= 0 && len < n) {
			path[len++] = cur;
			root[cur] = -1; /* on the path being followed: a loop ends here */
			cur = parent[cur];
		}
		r = root[cur] > 0 ? root[cur] : m[cur].pid;
		root[cur] = r;
		while (len > 0)
			root[path[--len]] = r;
	}
	return 0;
}

struct by_root {
	pid_t root;
	size_t idx;
};

static int cmp_by_root(const void *a, const void *b)
{
	const struct by_root *x = a, *y = b;
	if (x->root != y->root)
		return (x->root > y->root) - (x->root < y->root);
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static int load_leaf(const struct om_cg *cg, struct om_group *g, pid_t leaf, om_error_t *err)
{
	char path[PATH_MAX];
	cleanup_free pid_t *procs = NULL;
	cleanup_free pid_t *root = NULL;
	cleanup_free struct by_root *order = NULL;
	size_t nprocs = 0, nm = 0;
	struct om_member *m;
	bool frozen;

	om_cg_tree_path(cg, g->id, leaf, path);
	if (om_cg_procs(path, &procs, &nprocs, err) < 0)
		return -1;
	if (nprocs == 0)
		return 0;
	m = calloc(nprocs, sizeof(*m));
	root = calloc(nprocs, sizeof(*root));
	order = calloc(nprocs, sizeof(*order));
	if (m == NULL || root == NULL || order == NULL) {
		free(m);
		return om_make_error(err, ENOMEM, "load miggroup %lu", g->id);
	}
	for (size_t i = 0; i < nprocs; i++) {
		struct om_proc p;
		om_error_t tmp = NULL;
		if (om_proc_read(procs[i], &p, false, &tmp) < 0) {
			om_error_release(&tmp); /* exited meanwhile */
			continue;
		}
		m[nm].pid = p.pid;
		m[nm].ppid = p.ppid;
		m[nm].state = p.state;
		m[nm].cmdline = om_steal_ptr(p.cmdline);
		om_proc_release(&p);
		nm++;
	}
	/* split the leaf's members by tree root: O(n log n) */
	if (om_group_split_roots(m, nm, root, err) < 0)
		goto fail;
	for (size_t i = 0; i < nm; i++)
		order[i] = (struct by_root){.root = root[i], .idx = i};
	qsort(order, nm, sizeof(*order), cmp_by_root);
	{
		om_error_t fz = NULL;
		frozen = om_cg_is_frozen(cg, path, &fz) == 1;
		om_error_release(&fz);
	}
	for (size_t i = 0; i < nm;) {
		size_t j = i;
		struct om_tree *nt, *t;

		while (j < nm && order[j].root == order[i].root)
			j++;
		nt = realloc(g->trees, (g->n_trees + 1) * sizeof(*nt));
		if (nt == NULL)
			goto oom;
		g->trees = nt;
		t = &g->trees[g->n_trees];
		memset(t, 0, sizeof(*t));
		t->members = calloc(j - i, sizeof(*t->members));
		if (t->members == NULL)
			goto oom;
		g->n_trees++;
		t->root = order[i].root;
		t->leaf = leaf;
		t->frozen = frozen;
		snprintf(t->cgpath, sizeof(t->cgpath), "%s", path);
		for (size_t k = i; k < j; k++) { /* in PID order */
			t->members[t->n_members++] = m[order[k].idx];
			m[order[k].idx].cmdline = NULL;
		}
		i = j;
	}
	free(m);
	return 0;
oom:
	om_make_error(err, ENOMEM, "load miggroup %lu", g->id);
fail:
	for (size_t i = 0; i < nm; i++)
		member_release(&m[i]);
	free(m);
	return -1;
}

int om_group_load(const struct om_cg *cg, unsigned long id, struct om_group *g, om_error_t *err)
{
	cleanup_free pid_t *leaves = NULL;
	size_t n = 0;

	memset(g, 0, sizeof(*g));
	g->id = id;
	g->cg = *cg;
	if (list_leaves(cg, id, &leaves, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (load_leaf(cg, g, leaves[i], err) < 0) {
			if ((*err)->status == ENOENT) { /* leaf removed meanwhile */
				om_error_release(err);
				continue;
			}
			om_group_release(g);
			return -1;
		}
	}
	for (size_t i = 0; i < g->n_trees; i++)
		qsort(g->trees[i].members, g->trees[i].n_members, sizeof(struct om_member), cmp_member);
	if (g->n_trees > 1)
		qsort(g->trees, g->n_trees, sizeof(struct om_tree), cmp_tree);
	return 0;
}

/* Remove a leaf if it is empty (ignore "busy"). */
static void prune_leaf(const struct om_cg *cg, unsigned long group, pid_t leaf)
{
	char p[PATH_MAX];
	om_cg_tree_path(cg, group, leaf, p);
	(void)rmdir(p);
}

/* Move pid and its descendants into cgroup path; remember the leaves they left. */
static int move_tree(const struct om_cg *cg, pid_t pid, const char *target, unsigned long tgt_group, pid_t tgt_leaf,
		     om_error_t *err)
{
	struct {
		unsigned long g;
		pid_t t;
	} left[64];
	size_t nleft = 0;

	for (int round = 0; round < 10; round++) {
		cleanup_free pid_t *desc = NULL;
		size_t nd = 0;
		bool moved = false;

		if (om_proc_descendants(pid, &desc, &nd, err) < 0)
			return -1;
		for (size_t i = 0; i < nd; i++) {
			unsigned long g;
			pid_t t;
			om_error_t tmp = NULL;

			if (om_cg_locate(cg, desc[i], &g, &t, &tmp) < 0) {
				om_error_release(&tmp);
				if (i == 0)
					return om_make_error(err, ESRCH, "process %d", (int)pid);
				continue;
			}
			if (g == tgt_group && t == tgt_leaf)
				continue;
			if (target && g == 0)
				om_cg_save_origin(cg, desc[i]); /* for its way back out */
			if (target ? om_cg_move(target, desc[i], &tmp) < 0 : om_cg_move_out(cg, desc[i], &tmp) < 0) {
				if (tmp->status == ESRCH && i > 0) { /* a descendant exited meanwhile */
					om_error_release(&tmp);
					continue;
				}
				*err = tmp;
				return om_error_wrap(err, "move process %d", (int)desc[i]);
			}
			moved = true;
			if (g && nleft < sizeof(left) / sizeof(left[0])) {
				left[nleft].g = g;
				left[nleft].t = t;
				nleft++;
			}
		}
		if (!moved)
			break;
	}
	for (size_t i = 0; i < nleft; i++)
		if (left[i].t)
			prune_leaf(cg, left[i].g, left[i].t);
	return 0;
}

int om_group_check_joinable(pid_t pid, om_error_t *err)
{
	enum om_pid_state st = om_pid_state(pid);

	if (st == OM_PID_FREE)
		return om_make_error(err, ESRCH, "process %d", (int)pid);
	if (st == OM_PID_ZOMBIE)
		return om_make_error(err, ESRCH, "process %d has exited (zombie)", (int)pid);
	if (pid == 1)
		return om_make_error(err, OM_EUSAGE, "process 1 (init) cannot join a miggroup");
	if (pid == getpid())
		return om_make_error(err, OM_EUSAGE, "process %d is this command itself", (int)pid);
	if (om_proc_is_kthread(pid))
		return om_make_error(err, OM_EUSAGE, "process %d is a kernel thread", (int)pid);
	struct om_proc p;
	om_error_t tmp = NULL;
	if (om_proc_read(pid, &p, false, &tmp) == 0) {
		bool keeper = strncmp(p.comm, "omkeeper-", 9) == 0;
		om_proc_release(&p);
		if (keeper)
			return om_make_error(err, OM_EUSAGE,
					     "process %d is an omtools keeper: it reaps a group's trees and is never a "
					     "member",
					     (int)pid);
	}
	om_error_release(&tmp);
	return 0;
}

int om_group_join(const struct om_cg *cg, unsigned long id, pid_t pid, pid_t *tree_root, om_error_t *err)
{
	struct om_proc p;
	unsigned long pg;
	pid_t pt, leaf;
	char gpath[PATH_MAX], tpath[PATH_MAX];
	om_error_t tmp = NULL;

	if (tree_root)
		*tree_root = 0;
	if (om_group_check_joinable(pid, err) < 0)
		return -1;
	if (id == 0)
		return move_tree(cg, pid, NULL, 0, 0, err);

	if (om_proc_read(pid, &p, false, err) < 0)
		return -1;
	/* a child of a member of this group belongs to its parent's tree */
	if (om_cg_locate(cg, p.ppid, &pg, &pt, &tmp) == 0 && pg == id && pt != 0)
		leaf = pt;
	else
		leaf = pid;
	om_error_release(&tmp);
	om_proc_release(&p);

	om_cg_group_path(cg, id, gpath);
	if (om_cg_mkdir(gpath, err) < 0)
		return -1;
	om_cg_tree_path(cg, id, leaf, tpath);
	if (om_cg_mkdir(tpath, err) < 0)
		return -1;
	if (move_tree(cg, pid, tpath, id, leaf, err) < 0) {
		prune_leaf(cg, id, leaf);
		return -1;
	}
	if (tree_root)
		*tree_root = leaf;
	return 0;
}

int om_group_reset(const struct om_cg *cg, unsigned long id, pid_t **pids, size_t *n, om_error_t *err)
{
	char gpath[PATH_MAX];

	if (pids) {
		*pids = NULL;
		*n = 0;
	}
	if (!om_group_exists(cg, id))
		return om_make_error(err, OM_ENOTFOUND, "unknown miggroup %lu", id);
	for (int round = 0; round < 10; round++) {
		cleanup_free pid_t *leaves = NULL;
		size_t nl = 0;
		bool busy = false;

		if (list_leaves(cg, id, &leaves, &nl, err) < 0)
			return -1;
		for (size_t i = 0; i < nl; i++) {
			char tpath[PATH_MAX];
			cleanup_free pid_t *procs = NULL;
			size_t np = 0;

			om_cg_tree_path(cg, id, leaves[i], tpath);
			om_error_t tz = NULL;
			if (om_cg_thaw(cg, tpath, &tz) < 0) /* a leaf left frozen by a killed omckpt */
				om_error_release(&tz);
			if (om_cg_procs(tpath, &procs, &np, err) < 0)
				return -1;
			for (size_t j = 0; j < np; j++) {
				om_error_t tmp = NULL;
				if (om_cg_move_out(cg, procs[j], &tmp) < 0) {
					if (tmp->status == ESRCH) {
						om_error_release(&tmp);
						continue;
					}
					*err = tmp;
					return om_error_wrap(err, "reset miggroup %lu", id);
				}
				if (pids && !om_pids_contains(*pids, *n, procs[j]) &&
				    om_pids_push(pids, n, procs[j]) < 0)
					return om_make_error(err, ENOMEM, "reset miggroup %lu", id);
			}
			if (rmdir(tpath) < 0 && errno != ENOENT)
				busy = true;
		}
		if (!busy)
			break;
	}
	om_cg_group_path(cg, id, gpath);
	if (rmdir(gpath) < 0 && errno != ENOENT)
		return om_make_error(err, errno, "remove miggroup %lu (`%s`)", id, gpath);
	if (pids)
		om_pids_sort(*pids, *n);
	return 0;
}

int om_group_prepare_tree(const struct om_cg *cg, unsigned long id, pid_t root, char *cgpath, om_error_t *err)
{
	char gpath[PATH_MAX];
	om_cg_group_path(cg, id, gpath);
	if (om_cg_mkdir(gpath, err) < 0)
		return -1;
	om_cg_tree_path(cg, id, root, cgpath);
	if (om_cg_mkdir(cgpath, err) < 0)
		return -1;
	/* a leaf left frozen by an interrupted checkpoint must not freeze restored tasks */
	return om_cg_thaw(cg, cgpath, err);
}

int om_group_normalize(const struct om_cg *cg, unsigned long id, om_error_t *err)
{
	struct om_group g;
	cleanup_free pid_t *leaves = NULL;
	size_t nl = 0;

	if (list_leaves(cg, id, &leaves, &nl, err) < 0)
		return -1;
	if (om_group_load(cg, id, &g, err) < 0)
		return -1;
	for (size_t i = 0; i < g.n_trees; i++) {
		struct om_tree *t = &g.trees[i];
		char tpath[PATH_MAX];

		if (t->root == t->leaf)
			continue;
		om_cg_tree_path(cg, id, t->root, tpath);
		if (om_cg_mkdir(tpath, err) < 0)
			goto fail;
		for (size_t j = 0; j < t->n_members; j++) {
			om_error_t tmp = NULL;
			if (om_cg_move(tpath, t->members[j].pid, &tmp) < 0) {
				if (tmp->status == ESRCH) {
					om_error_release(&tmp);
					continue;
				}
				*err = tmp;
				goto fail;
			}
		}
	}
	om_group_release(&g);
	for (size_t i = 0; i < nl; i++)
		prune_leaf(cg, id, leaves[i]);
	return 0;
fail:
	om_group_release(&g);
	return om_error_wrap(err, "reorganise miggroup %lu", id);
}

int om_group_thaw(struct om_group *g, om_error_t *err)
{
	int ret = 0;
	for (size_t i = 0; i < g->n_trees; i++) {
		om_error_t tmp = NULL;
		if (om_cg_thaw(&g->cg, g->trees[i].cgpath, &tmp) < 0) {
			if (tmp->status != ENOENT && ret == 0) {
				*err = tmp;
				tmp = NULL;
				ret = -1;
			}
			om_error_release(&tmp);
		}
	}
	g->frozen = false;
	return ret;
}

int om_group_freeze(struct om_group *g, double timeout_s, int cancel_fd, om_error_t *err)
{
	double deadline = om_now() + timeout_s;

	g->frozen = true; /* from the first write on, thaw is owed */
	for (size_t i = 0; i < g->n_trees; i++)
		if (om_cg_freeze(&g->cg, g->trees[i].cgpath, err) < 0)
			goto fail;
	for (;;) {
		size_t done = 0, i;
		for (i = 0; i < g->n_trees; i++) {
			int r = om_cg_is_frozen(&g->cg, g->trees[i].cgpath, err);
			if (r < 0)
				goto fail;
			if (r == 0)
				break;
			done++;
		}
		if (done == g->n_trees)
			return 0;
		if (om_now() > deadline) {
			om_make_error(err, ETIMEDOUT, "tree %d of miggroup %lu did not freeze within %.0f s",
				      (int)g->trees[i].root, g->id, timeout_s);
			goto fail;
		}
		if (om_pause(cancel_fd, 5, err) < 0)
			goto fail;
	}
fail : {
	om_error_t tmp = NULL;
	om_group_thaw(g, &tmp);
	om_error_release(&tmp);
	return om_error_wrap(err, "freeze miggroup %lu", g->id);
}
}

int om_group_kill(struct om_group *g, om_error_t *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	pid_t stuck;

	if (om_group_pids(g, &pids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	if (om_group_thaw(g, err) < 0)
		return -1;
	if ((stuck = om_pids_wait_gone(pids, n, 10)) != 0)
		return om_make_error(err, ETIMEDOUT, "process %d did not exit after SIGKILL", (int)stuck);
	return 0;
}

int om_group_remove(const struct om_cg *cg, unsigned long id, om_error_t *err)
{
	struct om_group g;
	om_error_t rerr = NULL;
	int rc = 0;

	if (!om_group_exists(cg, id))
		return 0;
	if (om_group_load(cg, id, &g, err) < 0)
		rc = -1;
	else {
		rc = om_group_kill(&g, err);
		om_group_release(&g);
	}
	if (om_group_reset(cg, id, NULL, NULL, rc < 0 ? &rerr : err) < 0 && rc == 0)
		rc = -1;
	om_error_release(&rerr);
	return rc;
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
	return x < y ? -1 : x > y;
}

int om_group_list(const struct om_cg *cg, unsigned long **ids, size_t *n, om_error_t *err)
{
	DIR *d = opendir(cg->base);
	struct dirent *de;
	unsigned long *v = NULL;
	size_t cap = 0;

	*ids = NULL;
	*n = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : om_make_error(err, errno, "open `%s`", cg->base);
	while ((de = readdir(d)) != NULL) {
		unsigned long id;
		if (de->d_name[0] != 'g' || om_parse_uint(de->d_name + 1, OM_GROUP_MAX, &id) < 0 || id == 0)
			continue;
		if (*n == cap) {
			unsigned long *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(d);
				return om_make_error(err, ENOMEM, "list groups");
			}
			v = nv;
		}
		v[(*n)++] = id;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_ulong);
	*ids = v;
	return 0;
}
