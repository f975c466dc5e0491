/* storage/retention.c — what happens to generations after they are written:
 * pins (a restore reading one, on any node), pruning to the newest N, removal
 * of one, the garbage that killed runs leave, and the fencing token of a
 * takeover. Every step is safe against SIGKILL at any point: a generation is
 * renamed away (.prune-*) before it is removed, so a reader sees it whole or
 * not at all, and the leftover is garbage that om_store_gc recognises. */
#include "config.h"
#include "store-int.h"
#include "bounded.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FENCE_FILE ".fence"
#define FENCE_MAX 512 /* bytes of a fence file */
#define PIN_MAX 64    /* bytes of a pin file */

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool pid_alive(long pid)
{
	return pid > 0 && pid <= INT_MAX && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* ---- names ----
 * .pin-<gen>-<node>-<pid>-<n>, .prune-<gen>-<node>-<pid>, .tmp-<node>-<pid>-<n>:
 * node names may contain '-', so the numbers are parsed from the ends. */

/* "<a>-<node>-<b>" style tail: split off the last k '-'-separated decimal fields. */
static bool split_tail(const char *s, int k, long *nums, char *node, size_t node_len)
{
	size_t len = strlen(s);
	const char *end = s + len;

	for (int i = k - 1; i >= 0; i--) {
		const char *p = end;
		char *e;
		long v;
		while (p > s && p[-1] != '-')
			p--;
		if (p == s || p == end)
			return false;
		errno = 0;
		v = strtol(p, &e, 10);
		if (errno || e != end || v < 0)
			return false;
		nums[i] = v;
		end = p - 1; /* at the '-' */
	}
	if (end <= s || (size_t)(end - s) >= node_len)
		return false;
	memcpy(node, s, (size_t)(end - s));
	node[end - s] = '\0';
	return true;
}

struct pin_name {
	uint64_t gen;
	char node[NAME_MAX + 1];
	long pid;
};

static bool parse_pin_name(const char *name, struct pin_name *p)
{
	const char *s;
	char *e;
	long nums[2];
	unsigned long long g;

	if (strncmp(name, ".pin-", 5) != 0)
		return false;
	errno = 0;
	g = strtoull(name + 5, &e, 10);
	if (errno || e == name + 5 || *e != '-' || g == 0)
		return false;
	s = e + 1;
	if (!split_tail(s, 2, nums, p->node, sizeof(p->node)))
		return false;
	p->gen = g;
	p->pid = nums[0];
	return true;
}

/* ".prune-<gen>-<node>-<pid>" */
static bool parse_prune_name(const char *name, uint64_t *gen, char *node, size_t node_len, long *pid)
{
	char *e;
	long nums[1];
	unsigned long long g;

	if (strncmp(name, ".prune-", 7) != 0)
		return false;
	errno = 0;
	g = strtoull(name + 7, &e, 10);
	if (errno || e == name + 7 || *e != '-' || g == 0)
		return false;
	if (!split_tail(e + 1, 1, nums, node, node_len))
		return false;
	*gen = g;
	*pid = nums[0];
	return true;
}

/* ".tmp-<node>-<pid>-<n>" */
static bool parse_tmp_name(const char *name, char *node, size_t node_len, long *pid)
{
	long nums[2];

	if (strncmp(name, ".tmp-", 5) != 0 || !split_tail(name + 5, 2, nums, node, node_len))
		return false;
	*pid = nums[0];
	return true;
}

/* Does the pin file `name` in dfd still hold? (expiry in the future and, for a
 * pin of this node, its process alive) */
static bool pin_live(int dfd, const char *name, const struct pin_name *pn, const char *self)
{
	char buf[PIN_MAX + 1];
	cleanup_close int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t r;
	long long expiry;
	char *e;

	if (fd < 0)
		return false;
	r = read(fd, buf, PIN_MAX);
	if (r <= 0)
		return true; /* being written: a pinner between its create and its write */
	buf[r] = '\0';
	errno = 0;
	expiry = strtoll(buf, &e, 10);
	if (errno || e == buf)
		return false; /* garbage: not a pin anyone can rely on */
	if (expiry <= wall_ms())
		return false;
	if (strcmp(pn->node, self) == 0 && !pid_alive(pn->pid))
		return false;
	return true;
}

/* ---- pins ---- */

struct om_pin {
	int id_fd;
	char name[NAME_MAX + 1];
};

static unsigned pin_counter;

static int gen_pinned_at(int id_fd, uint64_t gen, const char *self, bool *pinned, char *holder, size_t holder_len,
			 const char *display, om_error_t *err)
{
	int dfd = dup(id_fd);
	DIR *d;
	struct dirent *de;

	*pinned = false;
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return om_make_error(err, errno, "list `%s`", display);
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct pin_name pn;
		if (!parse_pin_name(de->d_name, &pn) || pn.gen != gen || !pin_live(id_fd, de->d_name, &pn, self))
			continue;
		*pinned = true;
		if (holder && holder_len)
			snprintf(holder, holder_len, "process %ld on node %s", pn.pid, pn.node);
		break;
	}
	closedir(d);
	return 0;
}

int om_gen_pin(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, double ttl_s, struct om_pin **out,
	       om_error_t *err)
{
	cleanup_free char *self = om_st_node_name();
	cleanup_free char *display = NULL;
	struct om_pin *p;
	char gen_name[32], buf[32];
	int fd, id_fd;

	*out = NULL;
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	if (gen == 0)
		return om_make_error(err, EINVAL, "pin: generation 0");
	if (self == NULL)
		return om_make_error(err, ENOMEM, "pin");
	display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	if (om_st_open_id_dir(st, kind, id, &id_fd, err) < 0)
		return -1;
	if (id_fd < 0)
		return om_make_error(err, OM_ENOTFOUND, "no generation %llu of %s %lu in %s", (unsigned long long)gen,
				     om_st_kind_label(kind), id, st->path);
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		close(id_fd);
		return om_make_error(err, ENOMEM, "pin");
	}
	p->id_fd = id_fd;
	snprintf(p->name, sizeof(p->name), ".pin-%llu-%.200s-%d-%u", (unsigned long long)gen, self, (int)getpid(),
		 __atomic_fetch_add(&pin_counter, 1, __ATOMIC_RELAXED));
	fd = openat(id_fd, p->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		om_make_error(err, errno, "pin: create `%s/%s`", display, p->name);
		goto fail;
	}
	snprintf(buf, sizeof(buf), "%lld\n",
		 (long long)(wall_ms() + (int64_t)((ttl_s > 0 ? ttl_s : OM_PIN_TTL_DEFAULT) * 1000)));
	if (om_write_all(fd, buf, strlen(buf)) < 0 || fsync(fd) < 0) {
		om_make_error(err, errno, "pin: write `%s/%s`", display, p->name);
		close(fd);
		unlinkat(id_fd, p->name, 0);
		goto fail;
	}
	close(fd);
	(void)fsync(id_fd);
	/* now that the pin is visible, the generation must be there: a pruner
	 * that renamed it away before our pin existed puts it back when it sees
	 * the pin, or has removed it (then it is gone for good) */
	snprintf(gen_name, sizeof(gen_name), "gen-%llu", (unsigned long long)gen);
	for (int i = 0; i < 20; i++) {
		if (om_st_has_manifest(id_fd, gen_name)) {
			*out = p;
			return 0;
		}
		om_sleep_ms(50);
	}
	unlinkat(id_fd, p->name, 0);
	om_make_error(err, OM_ENOTFOUND, "no generation %llu of %s %lu in %s", (unsigned long long)gen,
		      om_st_kind_label(kind), id, st->path);
fail:
	close(p->id_fd);
	free(p);
	return -1;
}

void om_gen_unpin(struct om_pin *p)
{
	if (p == NULL)
		return;
	unlinkat(p->id_fd, p->name, 0);
	close(p->id_fd);
	free(p);
}

int om_gen_pinned(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, bool *pinned, char *holder,
		  size_t holder_len, om_error_t *err)
{
	cleanup_free char *self = om_st_node_name();
	cleanup_free char *display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	cleanup_close int id_fd = -1;

	*pinned = false;
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	if (self == NULL || display == NULL)
		return om_make_error(err, ENOMEM, "pins");
	if (om_st_open_id_dir(st, kind, id, &id_fd, err) < 0)
		return -1;
	if (id_fd < 0)
		return 0;
	return gen_pinned_at(id_fd, gen, self, pinned, holder, holder_len, display, err);
}

/* ---- pruning and removal ---- */

void om_prune_result_release(struct om_prune_result *r)
{
	if (r == NULL)
		return;
	free(r->removed);
	free(r->pinned);
	memset(r, 0, sizeof(*r));
}

static int push_u64(uint64_t **v, size_t *n, uint64_t x)
{
	uint64_t *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL)
		return -1;
	nv[(*n)++] = x;
	*v = nv;
	return 0;
}

/* Take generation gen away: rename it to .prune-<gen>-<node>-<pid>, then look
 * for pins (one made before the rename is seen now; a pinner after it finds no
 * generation). Pinned: put back (1 returned). Otherwise removed (0). */
static int take_away(struct om_store *st, int id_fd, const char *display, uint64_t gen, const char *self, bool *first,
		     char *holder, size_t holder_len, om_error_t *err)
{
	char gen_name[32], away[NAME_MAX + 1];
	bool pinned;

	snprintf(gen_name, sizeof(gen_name), "gen-%llu", (unsigned long long)gen);
	snprintf(away, sizeof(away), ".prune-%llu-%.200s-%d", (unsigned long long)gen, self, (int)getpid());
	if (renameat(id_fd, gen_name, id_fd, away) < 0) {
		if (errno == ENOENT)
			return om_make_error(err, OM_ENOTFOUND, "no generation %llu in %s", (unsigned long long)gen,
					     display);
		return om_make_error(err, errno, "rename `%s/%s`", display, gen_name);
	}
	if (*first) {
		*first = false;
		om_st_fault(st, "pruning"); /* tests: killed with a generation renamed away */
	}
	if (gen_pinned_at(id_fd, gen, self, &pinned, holder, holder_len, display, err) < 0)
		pinned = true; /* cannot tell: keep it */
	if (pinned) {
		if (renameat(id_fd, away, id_fd, gen_name) < 0)
			return om_make_error(err, errno, "rename `%s/%s` back to `%s`", display, away, gen_name);
		(void)fsync(id_fd);
		return 1;
	}
	(void)fsync(id_fd); /* the generation is gone for readers before its bytes go */
	if (om_rm_rf_at(id_fd, away, err) < 0)
		return om_error_wrap(err, "remove generation %llu of `%s`", (unsigned long long)gen, display);
	return 0;
}

static int prune_at(struct om_store *st, int id_fd, const char *display, unsigned keep, struct om_prune_result *res,
		    om_error_t *err)
{
	cleanup_free char *self = om_st_node_name();
	cleanup_free uint64_t *gens = NULL;
	size_t n = 0;
	bool first = true;

	memset(res, 0, sizeof(*res));
	if (keep == 0)
		return 0;
	if (self == NULL)
		return om_make_error(err, ENOMEM, "prune");
	if (om_st_scan_gens(id_fd, display, &gens, &n, NULL, err) < 0)
		return om_error_wrap(err, "prune");
	for (size_t i = 0; i + keep < n; i++) {
		int r = take_away(st, id_fd, display, gens[i], self, &first, NULL, 0, err);
		if (r < 0) {
			if ((*err)->status == OM_ENOTFOUND) { /* someone else removed it */
				om_error_release(err);
				continue;
			}
			return om_error_wrap(err, "prune");
		}
		if (push_u64(r ? &res->pinned : &res->removed, r ? &res->n_pinned : &res->n_removed, gens[i]) < 0)
			return om_make_error(err, ENOMEM, "prune");
	}
	return 0;
}

int om_gen_prune(struct om_gen_writer *w, unsigned keep, struct om_prune_result *res, om_error_t *err)
{
	if (w == NULL || w->id_fd < 0) {
		memset(res, 0, sizeof(*res));
		return om_make_error(err, EINVAL, "prune: no writer");
	}
	return prune_at(w->st, w->id_fd, w->id_display, keep, res, err);
}

int om_store_prune(struct om_store *st, const char *kind, unsigned long id, unsigned keep, double lock_wait_s,
		   struct om_prune_result *res, om_error_t *err)
{
	cleanup_free char *display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	cleanup_close int id_fd = -1, lock_fd = -1;

	memset(res, 0, sizeof(*res));
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	if (display == NULL)
		return om_make_error(err, ENOMEM, "prune");
	if (om_st_open_id_dir(st, kind, id, &id_fd, err) < 0)
		return -1;
	if (id_fd < 0 || keep == 0)
		return 0;
	if (om_st_lock(st, id_fd, kind, id, lock_wait_s, &lock_fd, err) < 0)
		return -1;
	return prune_at(st, id_fd, display, keep, res, err);
}

int om_gen_remove(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, double lock_wait_s,
		  om_error_t *err)
{
	cleanup_free char *display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	cleanup_free char *self = om_st_node_name();
	cleanup_close int id_fd = -1, lock_fd = -1;
	char gen_name[32], holder[300] = "";
	bool first = false;
	int r;

	if (om_st_check_kind(kind, err) < 0)
		return -1;
	if (display == NULL || self == NULL)
		return om_make_error(err, ENOMEM, "remove");
	if (om_st_open_id_dir(st, kind, id, &id_fd, err) < 0)
		return -1;
	snprintf(gen_name, sizeof(gen_name), "gen-%llu", (unsigned long long)gen);
	if (id_fd < 0 || gen == 0 || !om_st_has_manifest(id_fd, gen_name))
		return om_make_error(err, OM_ENOTFOUND, "no generation %llu of %s %lu in %s", (unsigned long long)gen,
				     om_st_kind_label(kind), id, st->path);
	if (om_st_lock(st, id_fd, kind, id, lock_wait_s, &lock_fd, err) < 0)
		return -1;
	r = take_away(st, id_fd, display, gen, self, &first, holder, sizeof(holder), err);
	if (r < 0)
		return -1;
	if (r > 0)
		return om_make_error(err, EBUSY, "generation %llu of %s %lu is being restored (pinned by %s)",
				     (unsigned long long)gen, om_st_kind_label(kind), id, holder);
	return 0;
}

/* ---- garbage ---- */

void om_gc_items_free(struct om_gc_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].path);
		free(items[i].why);
	}
	free(items);
}

struct gc {
	struct om_store *st;
	const char *self;
	double max_age_s;
	bool dry_run;
	struct om_gc_item *items;
	size_t n;
	time_t now;
};

static uint64_t du_at(int dfd, const char *name)
{
	struct stat sb;
	uint64_t sum = 0;
	int fd;
	DIR *d;
	struct dirent *de;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!S_ISDIR(sb.st_mode))
		return (uint64_t)sb.st_size;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			sum += du_at(dirfd(d), de->d_name);
	closedir(d);
	return sum;
}

static bool older_than(int dfd, const char *name, const struct gc *g)
{
	struct stat sb;
	return fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && difftime(g->now, sb.st_mtime) > g->max_age_s;
}

static int gc_take(struct gc *g, int dfd, const char *rel_dir, const char *name, char *why, om_error_t *err)
{
	struct om_gc_item *nv = realloc(g->items, (g->n + 1) * sizeof(*nv));
	struct om_gc_item *it;

	if (nv == NULL) {
		free(why);
		return om_make_error(err, ENOMEM, "gc");
	}
	g->items = nv;
	it = &g->items[g->n];
	it->path = om_strdup_printf("%s/%s", rel_dir, name);
	it->why = why;
	it->bytes = du_at(dfd, name);
	if (it->path == NULL || it->why == NULL) {
		free(it->path);
		free(it->why);
		return om_make_error(err, ENOMEM, "gc");
	}
	g->n++;
	if (g->dry_run)
		return 0;
	return om_rm_rf_at(dfd, name, err);
}

/* One STORE/<kind>/<id> directory. */
static int gc_id(struct gc *g, int id_fd, const char *rel, om_error_t *err)
{
	int dfd = dup(id_fd);
	DIR *d;
	struct dirent *de;
	char node[NAME_MAX + 1];
	int ret = 0;

	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			close(dfd);
		return om_make_error(err, errno, "list `%s/%s`", g->st->path, rel);
	}
	rewinddir(d); /* the offset is shared with id_fd's other readers */
	while (ret == 0 && (de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		struct pin_name pn;
		uint64_t gen;
		long pid;
		char *why = NULL;

		if (parse_tmp_name(nm, node, sizeof(node), &pid)) {
			bool mine = strcmp(node, g->self) == 0;
			if (mine && pid != getpid() && !pid_alive(pid))
				why = om_strdup_printf("unfinished generation of writer %ld on %s, which is dead", pid,
						       node);
			else if (!mine && older_than(id_fd, nm, g))
				why = om_strdup_printf("unfinished generation of writer %ld on %s, older than %.0f s",
						       pid, node, g->max_age_s);
		} else if (parse_prune_name(nm, &gen, node, sizeof(node), &pid)) {
			bool mine = strcmp(node, g->self) == 0, pinned = false;
			if ((mine && pid != getpid() && !pid_alive(pid)) || (!mine && older_than(id_fd, nm, g))) {
				char gen_name[32];
				snprintf(gen_name, sizeof(gen_name), "gen-%llu", (unsigned long long)gen);
				/* a pruner killed between its rename and its pin check: a
				 * restore may be reading it; then it goes back */
				if (gen_pinned_at(id_fd, gen, g->self, &pinned, NULL, 0, rel, err) < 0)
					break;
				if (pinned && !g->dry_run && renameat(id_fd, nm, id_fd, gen_name) == 0)
					continue;
				if (!pinned)
					why =
					    om_strdup_printf("generation %llu being pruned by %ld on %s, which stopped",
							     (unsigned long long)gen, pid, node);
			}
		} else if (parse_pin_name(nm, &pn)) {
			if (!pin_live(id_fd, nm, &pn, g->self))
				why =
				    om_strdup_printf("pin of generation %llu by %ld on %s, expired or its holder dead",
						     (unsigned long long)pn.gen, pn.pid, pn.node);
		} else if (strncmp(nm, ".fence-tmp-", 11) == 0 && older_than(id_fd, nm, g)) {
			why = om_strdup_printf("fence being written by a process that stopped");
		} else if (om_st_parse_gen_name(nm, &gen) && !om_st_has_manifest(id_fd, nm) &&
			   older_than(id_fd, nm, g)) {
			why = om_strdup_printf("generation directory without a manifest, older than %.0f s",
					       g->max_age_s);
		}
		if (why)
			ret = gc_take(g, id_fd, rel, nm, why, err);
	}
	closedir(d);
	return ret;
}

int om_store_gc(struct om_store *st, double max_age_s, bool dry_run, struct om_gc_item **items, size_t *n,
		om_error_t *err)
{
	static const char *const kinds[] = {"groups", "pids"};
	cleanup_free char *self = om_st_node_name();
	struct gc g = {.st = st, .self = self, .max_age_s = max_age_s, .dry_run = dry_run, .now = time(NULL)};
	int ret = 0;

	*items = NULL;
	*n = 0;
	if (self == NULL)
		return om_make_error(err, ENOMEM, "gc");
	for (size_t k = 0; ret == 0 && k < 2; k++) {
		int kfd = openat(st->fd, kinds[k], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d;
		struct dirent *de;

		if (kfd < 0) {
			if (errno == ENOENT)
				continue;
			ret = om_make_error(err, errno, "open `%s/%s`", st->path, kinds[k]);
			break;
		}
		d = fdopendir(kfd);
		if (d == NULL) {
			close(kfd);
			ret = om_make_error(err, errno, "list `%s/%s`", st->path, kinds[k]);
			break;
		}
		while (ret == 0 && (de = readdir(d)) != NULL) {
			unsigned long id;
			char rel[64];
			int id_fd;

			if (de->d_name[0] == '.' || om_parse_uint(de->d_name, ULONG_MAX, &id) < 0)
				continue;
			snprintf(rel, sizeof(rel), "%s/%lu", kinds[k], id);
			id_fd = openat(kfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (id_fd < 0)
				continue;
			ret = gc_id(&g, id_fd, rel, err);
			close(id_fd);
		}
		closedir(d);
	}
	if (ret < 0) {
		om_gc_items_free(g.items, g.n);
		return -1;
	}
	*items = g.items;
	*n = g.n;
	return 0;
}

void om_st_sweep_prune(struct om_store *st, int id_fd, const char *node)
{
	struct gc g = {.st = st, .self = node, .max_age_s = 1e18, .now = time(NULL)};
	om_error_t e = NULL;

	(void)gc_id(&g, id_fd, ".", &e);
	om_error_release(&e);
	om_gc_items_free(g.items, g.n);
}

/* ---- fencing ---- */

int om_st_fence_read(int id_fd, const char *display, uint64_t *token, char *node, size_t node_len, uint64_t *gen,
		     om_error_t *err)
{
	char buf[FENCE_MAX + 1], nd[256];
	cleanup_close int fd = openat(id_fd, FENCE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	unsigned long long t, g;
	ssize_t r;

	*token = 0;
	if (gen)
		*gen = 0;
	if (node && node_len)
		node[0] = '\0';
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return om_make_error(err, errno, "open `%s/" FENCE_FILE "`", display);
	}
	r = read(fd, buf, FENCE_MAX + 1);
	if (r < 0)
		return om_make_error(err, errno, "read `%s/" FENCE_FILE "`", display);
	if (r > FENCE_MAX)
		return om_make_error(err, OM_ECORRUPT, "`%s/" FENCE_FILE "` is longer than %d bytes", display,
				     FENCE_MAX);
	buf[r] = '\0';
	if (sscanf(buf, "%llu %255s %llu", &t, nd, &g) != 3 || !om_store_name_ok(nd))
		return om_make_error(err, OM_ECORRUPT, "`%s/" FENCE_FILE "` does not parse (TOKEN NODE GEN)", display);
	*token = t;
	if (gen)
		*gen = g;
	if (node && node_len)
		snprintf(node, node_len, "%s", nd);
	return 0;
}

int om_store_fence_get(struct om_store *st, const char *kind, unsigned long id, uint64_t *token, char *node,
		       size_t node_len, uint64_t *gen, om_error_t *err)
{
	cleanup_free char *display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	cleanup_close int id_fd = -1;

	*token = 0;
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	if (display == NULL)
		return om_make_error(err, ENOMEM, "fence");
	if (om_st_open_id_dir(st, kind, id, &id_fd, err) < 0)
		return -1;
	if (id_fd < 0) {
		if (gen)
			*gen = 0;
		if (node && node_len)
			node[0] = '\0';
		return 0;
	}
	return om_st_fence_read(id_fd, display, token, node, node_len, gen, err);
}

int om_store_fence_raise(struct om_store *st, const char *kind, unsigned long id, uint64_t token, const char *node,
			 uint64_t gen, uint64_t *now, om_error_t *err)
{
	cleanup_free char *display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	cleanup_close int id_fd = -1;
	char rel[64], buf[FENCE_MAX], tmp[64];
	uint64_t cur = 0;
	int fd;

	if (om_st_check_kind(kind, err) < 0)
		return -1;
	if (display == NULL)
		return om_make_error(err, ENOMEM, "fence");
	if (node == NULL || !om_store_name_ok(node) || strlen(node) > 255)
		return om_make_error(err, EINVAL, "fence: bad node name");
	snprintf(rel, sizeof(rel), "%s/%lu", kind, id);
	if ((mkdirat(st->fd, kind, 0700) < 0 && errno != EEXIST) || (mkdirat(st->fd, rel, 0700) < 0 && errno != EEXIST))
		return om_make_error(err, errno, "create `%s`", display);
	if (om_st_open_id_dir(st, kind, id, &id_fd, err) < 0)
		return -1;
	if (id_fd < 0)
		return om_make_error(err, ENOENT, "open `%s`", display);
	if (om_st_fence_read(id_fd, display, &cur, NULL, 0, NULL, err) < 0) {
		if ((*err)->status != OM_ECORRUPT)
			return -1;
		om_error_release(err); /* a damaged fence is replaced */
	}
	if (token <= cur) {
		if (now)
			*now = cur;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%llu %s %llu\n", (unsigned long long)token, node, (unsigned long long)gen);
	snprintf(tmp, sizeof(tmp), ".fence-tmp-%d", (int)getpid());
	fd = openat(id_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return om_make_error(err, errno, "fence: create `%s/%s`", display, tmp);
	if (om_write_all(fd, buf, strlen(buf)) < 0 || fsync(fd) < 0) {
		om_make_error(err, errno, "fence: write `%s/%s`", display, tmp);
		close(fd);
		unlinkat(id_fd, tmp, 0);
		return -1;
	}
	close(fd);
	if (renameat(id_fd, tmp, id_fd, FENCE_FILE) < 0) {
		om_make_error(err, errno, "fence: rename `%s/%s`", display, tmp);
		unlinkat(id_fd, tmp, 0);
		return -1;
	}
	(void)fsync(id_fd);
	if (now)
		*now = token;
	return 0;
}

int om_store_fence_take(struct om_store *st, const char *kind, unsigned long id, const char *node, uint64_t gen,
			bool takeover, uint64_t *token, om_error_t *err)
{
	if (token)
		*token = 0;
	if (node == NULL || !om_store_name_ok(node) || strlen(node) > 255)
		return om_make_error(err, EINVAL, "fence: bad node name");
	/* read, raise to one more, read back: a raise by someone else in between
	 * (no lock) is read again and decided anew, so that the file names the
	 * last taker. Two takers racing inside the raise can both read back their
	 * own write; the commit's check (the fence names the writer's node,
	 * om_gen_fence_local) still lets only the one the file names publish. */
	for (int attempt = 0; attempt < 100; attempt++) {
		char held[256] = "";
		uint64_t cur = 0;

		if (om_store_fence_get(st, kind, id, &cur, held, sizeof(held), NULL, err) < 0)
			return om_error_wrap(err, "fence of %s %lu", om_st_kind_label(kind), id);
		if (attempt > 0 && cur > 0 && strcmp(held, node) == 0) { /* ours, read back */
			if (token)
				*token = cur;
			return 0;
		}
		if (!takeover && (cur == 0 || strcmp(held, node) == 0)) {
			if (token)
				*token = cur;
			return 0;
		}
		if (cur == UINT64_MAX)
			return om_make_error(err, EOVERFLOW, "fence of %s %lu: the token is at its maximum",
					     om_st_kind_label(kind), id);
		if (om_store_fence_raise(st, kind, id, cur + 1, node, gen, NULL, err) < 0)
			return -1;
	}
	return om_make_error(err, EAGAIN, "fence of %s %lu: raised by others all the time", om_st_kind_label(kind), id);
}
