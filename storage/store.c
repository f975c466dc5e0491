#include "config.h"
#include "store.h"
#include "compress.h"
#include "store-int.h"
#include "bounded.h"
#include "settings.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

/* ---- store path resolution ---- */

int om_store_resolve_path(const char *explicit_path, char **out, om_error_t *err)
{
	const char *env = getenv("OM_STORE");
	const char *cfg = getenv("OM_CONFIG");
	struct om_config c;

	*out = NULL;
	if (explicit_path && *explicit_path)
		*out = strdup(explicit_path);
	else if (env && *env)
		*out = strdup(env);
	else {
		/* `store = DIR` of the settings (lib/settings.h): a file that does
		 * not parse is an error, not a silent default */
		if (om_config_load(cfg && *cfg ? cfg : OM_CONFIG_FILE, &c, err) < 0)
			return om_error_wrap(err, "which store");
		*out = c.store ? c.store : strdup(OM_DEFAULT_STORE);
		c.store = NULL;
		om_config_release(&c);
	}
	return *out ? 0 : om_make_error(err, ENOMEM, "resolve store");
}

/* ---- opening ---- */

int om_store_open(struct om_store *st, const char *path, bool for_write, om_error_t *err)
{
	cleanup_free char *resolved = NULL;
	cleanup_free char *probe = NULL;
	cleanup_close int fd = -1;
	char *abs;

	st->path = NULL;
	st->fd = -1;
	st->cancel_fd = 0; /* no cancel unless the caller sets one */
	st->fault = NULL;
	if (path == NULL || *path == '\0') {
		if (om_store_resolve_path(NULL, &resolved, err) < 0)
			return -1;
		path = resolved;
	}
	if (for_write && om_mkdir_p(path, 0700, err) < 0)
		return om_error_wrap(err, "create store `%s`", path);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return om_make_error(err, errno, "open store `%s`", path);
	if (for_write) {
		int pfd;

		cleanup_free char *node = om_st_node_name();
		probe = node ? om_strdup_printf(".probe-%s-%d", node, (int)getpid()) : NULL;
		if (probe == NULL)
			return om_make_error(err, ENOMEM, "open store `%s`", path);
		pfd = openat(fd, probe, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (pfd < 0)
			return om_make_error(err, errno, "store `%s` is not writable", path);
		close(pfd);
		if (unlinkat(fd, probe, 0) < 0 && errno != ENOENT)
			return om_make_error(err, errno, "store `%s` is not writable", path);
	}
	abs = realpath(path, NULL);
	if (abs == NULL)
		abs = strdup(path);
	if (abs == NULL)
		return om_make_error(err, ENOMEM, "open store `%s`", path);
	st->path = abs;
	st->fd = om_steal_fd(fd);
	return 0;
}

void om_store_close(struct om_store *st)
{
	if (st == NULL)
		return;
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
	free(st->path);
	st->path = NULL;
}

/* ---- helpers ---- */

int om_st_check_kind(const char *kind, om_error_t *err)
{
	if (kind == NULL || (strcmp(kind, "groups") != 0 && strcmp(kind, "pids") != 0))
		return om_make_error(err, EINVAL, "unknown store namespace `%s` (groups or pids)",
				     kind ? kind : "(null)");
	return 0;
}

/* "group 3" / "PID 123" for messages. */
const char *om_st_kind_label(const char *kind)
{
	return strcmp(kind, "pids") == 0 ? "PID" : "group";
}

/* Parse a canonical decimal (no sign, no leading zeros). */
static bool parse_canon_ulong(const char *s, unsigned long *out)
{
	if (s[0] == '0' && s[1] != '\0')
		return false;
	return om_parse_uint(s, ULONG_MAX, out) == 0;
}

bool om_st_parse_gen_name(const char *name, uint64_t *gen)
{
	unsigned long v;

	if (strncmp(name, "gen-", 4) != 0 || !parse_canon_ulong(name + 4, &v) || v == 0)
		return false;
	*gen = v;
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
	return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool om_st_has_manifest(int id_fd, const char *gen_name)
{
	char rel[NAME_MAX + sizeof(OM_MANIFEST_NAME) + 2];
	struct stat sb;

	snprintf(rel, sizeof(rel), "%s/%s", gen_name, OM_MANIFEST_NAME);
	return fstatat(id_fd, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode);
}

/* Generations in the directory id_fd: complete ones into *gens (if gens), the
 * highest gen-N of any state into *max (if max). */
int om_st_scan_gens(int id_fd, const char *display, uint64_t **gens, size_t *n, uint64_t *max, om_error_t *err)
{
	cleanup_free uint64_t *v = NULL;
	size_t cnt = 0, cap = 0;
	uint64_t hi = 0;
	struct dirent *de;
	int dfd = dup(id_fd);
	DIR *d;

	if (dfd < 0)
		return om_make_error(err, errno, "list `%s`", display);
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return om_make_error(err, errno, "list `%s`", display);
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d)) != NULL) {
		uint64_t g;

		if (!om_st_parse_gen_name(de->d_name, &g))
			continue;
		if (g > hi)
			hi = g;
		if (gens == NULL || !om_st_has_manifest(id_fd, de->d_name))
			continue;
		if (cnt == cap) {
			uint64_t *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));
			if (nv == NULL) {
				closedir(d);
				return om_make_error(err, ENOMEM, "list `%s`", display);
			}
			v = nv;
			cap = cap ? cap * 2 : 16;
		}
		v[cnt++] = g;
	}
	if (errno != 0) {
		int e = errno;
		closedir(d);
		return om_make_error(err, e, "list `%s`", display);
	}
	closedir(d);
	if (v)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	if (gens) {
		*gens = om_steal_ptr(v);
		*n = cnt;
	}
	if (max)
		*max = hi;
	return 0;
}

/* Open STORE/kind/id; *fd = -1 (and 0 returned) when it does not exist. */
int om_st_open_id_dir(struct om_store *st, const char *kind, unsigned long id, int *fd, om_error_t *err)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "%s/%lu", kind, id);
	*fd = openat(st->fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		if (errno == ENOENT)
			return 0;
		return om_make_error(err, errno, "open `%s/%s`", st->path, rel);
	}
	return 0;
}

/* ---- writer ---- */

static unsigned tmp_counter;

/* A node name usable inside a file name. */
char *om_st_node_name(void)
{
	char *s = strdup(om_node_name());
	if (s == NULL)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20)
			*p = '_';
	return s;
}

/* Remove .tmp-<this node>-<pid>-* left behind by writers that died. */
static void remove_stale_tmp(int id_fd, const char *node)
{
	cleanup_free char *prefix = om_strdup_printf(".tmp-%s-", node);
	int dfd;
	DIR *d;
	struct dirent *de;

	if (prefix == NULL || (dfd = dup(id_fd)) < 0)
		return;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		const char *p;
		char *end;
		long pid;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		p = de->d_name + strlen(prefix);
		errno = 0;
		pid = strtol(p, &end, 10);
		if (errno || end == p || *end != '-' || pid <= 0 || pid > INT_MAX || pid == getpid())
			continue;
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
			om_error_t e = NULL;
			om_rm_rf_at(id_fd, de->d_name, &e);
			om_error_release(&e);
		}
	}
	closedir(d);
}

int om_st_lock(struct om_store *st, int id_fd, const char *kind, unsigned long id, double lock_wait_s, int *lock_fd,
	       om_error_t *err)
{
	cleanup_close int fd = openat(id_fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	double deadline = om_now() + (lock_wait_s > 0 ? lock_wait_s : 0);

	if (fd < 0)
		return om_make_error(err, errno, "open lock `%s/%s/%lu/.lock`", st->path, kind, id);
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return om_make_error(err, errno, "lock `%s/%s/%lu/.lock`", st->path, kind, id);
		if (om_now() >= deadline)
			return om_make_error(err, EWOULDBLOCK, "%s %lu is being checkpointed by another omckpt",
					     om_st_kind_label(kind), id);
		if (om_pause(st->cancel_fd, 20, err) < 0)
			return om_error_wrap(err, "wait for the lock of %s %lu", om_st_kind_label(kind), id);
	}
	*lock_fd = om_steal_fd(fd);
	return 0;
}

void om_st_fault(const struct om_store *st, const char *name)
{
	size_t n = strlen(name);

	if (st && st->fault && strncmp(st->fault, "kill:", 5) == 0 && strncmp(st->fault + 5, name, n) == 0 &&
	    st->fault[5 + n] == '\0')
		raise(SIGKILL);
}

int om_gen_begin(struct om_store *st, const char *kind, unsigned long id, double lock_wait_s,
		 struct om_gen_writer **out, om_error_t *err)
{
	struct om_gen_writer *w;
	cleanup_free char *node = NULL;
	char rel[64];

	*out = NULL;
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return om_make_error(err, ENOMEM, "begin generation");
	w->st = st;
	w->id = id;
	w->id_fd = w->lock_fd = w->tmp_fd = -1;
	w->kind = strdup(kind);
	w->id_display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	node = om_st_node_name();
	if (w->kind == NULL || w->id_display == NULL || node == NULL) {
		om_gen_writer_free(w);
		return om_make_error(err, ENOMEM, "begin generation");
	}

	snprintf(rel, sizeof(rel), "%s/%lu", kind, id);
	if ((mkdirat(st->fd, kind, 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(st->fd, rel, 0700) < 0 && errno != EEXIST)) {
		om_make_error(err, errno, "create `%s`", w->id_display);
		goto fail;
	}
	w->id_fd = openat(st->fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->id_fd < 0) {
		om_make_error(err, errno, "open `%s`", w->id_display);
		goto fail;
	}
	if (om_st_lock(st, w->id_fd, kind, id, lock_wait_s, &w->lock_fd, err) < 0)
		goto fail;

	remove_stale_tmp(w->id_fd, node);
	om_st_sweep_prune(st, w->id_fd, node);
	w->tmp_name = om_strdup_printf(".tmp-%s-%d-%u", node, (int)getpid(),
				       __atomic_fetch_add(&tmp_counter, 1, __ATOMIC_RELAXED));
	if (w->tmp_name == NULL) {
		om_make_error(err, ENOMEM, "begin generation");
		goto fail;
	}
	if (mkdirat(w->id_fd, w->tmp_name, 0700) < 0) {
		om_make_error(err, errno, "create `%s/%s`", w->id_display, w->tmp_name);
		free(w->tmp_name);
		w->tmp_name = NULL;
		goto fail;
	}
	w->tmp_fd = openat(w->id_fd, w->tmp_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->tmp_fd < 0) {
		om_make_error(err, errno, "open `%s/%s`", w->id_display, w->tmp_name);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	om_gen_writer_free(w);
	return -1;
}

static int append_file(Om__TreeEntry *tree, Om__FileEntry *f)
{
	Om__FileEntry **v = realloc(tree->files, (tree->n_files + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	tree->files = v;
	tree->files[tree->n_files++] = f;
	return 0;
}

static void strv_free_n(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Sorted names of the regular, non-hidden files in dir. */
static int list_regular(int dfd, const char *display, char ***names, size_t *n, om_error_t *err)
{
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	int fd2 = dup(dfd);
	DIR *d;

	if (fd2 < 0)
		return om_make_error(err, errno, "list `%s`", display);
	d = fdopendir(fd2);
	if (d == NULL) {
		close(fd2);
		return om_make_error(err, errno, "list `%s`", display);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			om_make_error(err, errno, "stat `%s/%s`", display, de->d_name);
			goto fail;
		}
		if (!S_ISREG(sb.st_mode))
			continue;
		if (!om_store_name_ok(de->d_name)) {
			om_make_error(err, EINVAL, "image file name `%s/%s` cannot be stored", display, de->d_name);
			goto fail;
		}
		if (cnt == cap) {
			char **nv = realloc(v, (cap ? cap * 2 : 32) * sizeof(*v));
			if (nv == NULL)
				goto nomem;
			v = nv;
			cap = cap ? cap * 2 : 32;
		}
		if ((v[cnt] = strdup(de->d_name)) == NULL)
			goto nomem;
		cnt++;
	}
	if (errno != 0) {
		om_make_error(err, errno, "list `%s`", display);
		goto fail;
	}
	closedir(d);
	if (v)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*names = v;
	*n = cnt;
	return 0;
nomem:
	om_make_error(err, ENOMEM, "list `%s`", display);
fail:
	closedir(d);
	strv_free_n(v, cnt);
	return -1;
}

static int add_one_file(struct om_gen_writer *w, int src_fd, const char *src_dir, int dst_fd, const char *name,
			Om__TreeEntry *tree, int level, int nb_workers, om_error_t *err)
{
	cleanup_free char *src_display = om_strdup_printf("%s/%s", src_dir, name);
	cleanup_free char *zname = om_strdup_printf("%s.zst", name);
	cleanup_close int in = -1;
	cleanup_close int out = -1;
	struct om_stream_stats s;
	struct stat sb;
	Om__FileEntry *f;

	if (src_display == NULL || zname == NULL)
		return om_make_error(err, ENOMEM, "store `%s`", name);
	in = openat(src_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0 || fstat(in, &sb) < 0)
		return om_make_error(err, errno, "open `%s`", src_display);
	out = openat(dst_fd, zname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return om_make_error(err, errno, "create `%s/%s/%s/%s`", w->id_display, w->tmp_name, tree->dir, zname);
	if (om_compress_fd(in, out, level, nb_workers, src_display, &s, err) < 0)
		return -1;
	if (fsync(out) < 0 || close(out) < 0) {
		out = -1;
		return om_make_error(err, errno, "write `%s/%s/%s/%s`", w->id_display, w->tmp_name, tree->dir, zname);
	}
	out = -1;
	om_st_fault(w->st, "compressing"); /* tests: killed with a file stored */

	f = malloc(sizeof(*f));
	if (f == NULL)
		return om_make_error(err, ENOMEM, "store `%s`", src_display);
	om__file_entry__init(f);
	f->name = strdup(name);
	f->sha256.data = malloc(32);
	if (f->name == NULL || f->sha256.data == NULL || append_file(tree, f) < 0) {
		free(f->name);
		free(f->sha256.data);
		free(f);
		return om_make_error(err, ENOMEM, "store `%s`", src_display);
	}
	memcpy(f->sha256.data, s.sha256, 32);
	f->sha256.len = 32;
	f->size = s.raw_bytes;
	f->stored_size = s.stored_bytes;
	f->has_mode = true;
	f->mode = sb.st_mode & 07777;
	return 0;
}

int om_gen_add_tree(struct om_gen_writer *w, const char *src_dir, Om__TreeEntry *tree, int level, int nb_workers,
		    om_error_t *err)
{
	cleanup_close int src_fd = -1;
	cleanup_close int dst_fd = -1;
	char **names = NULL;
	size_t n = 0;
	int r = 0;

	if (w == NULL || w->committed || w->tmp_fd < 0)
		return om_make_error(err, EINVAL, "add tree: generation writer is not open");
	if (tree->dir == NULL && (tree->dir = om_strdup_printf("tree-%d", (int)tree->root_pid)) == NULL)
		return om_make_error(err, ENOMEM, "add tree");
	if (!om_store_name_ok(tree->dir) || strcmp(tree->dir, OM_MANIFEST_NAME) == 0)
		return om_make_error(err, EINVAL, "add tree: bad tree directory name `%s`", tree->dir);
	src_fd = open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src_fd < 0)
		return om_make_error(err, errno, "open image directory `%s`", src_dir);
	if (list_regular(src_fd, src_dir, &names, &n, err) < 0)
		return -1;
	if (mkdirat(w->tmp_fd, tree->dir, 0700) < 0) {
		r = om_make_error(err, errno, "create `%s/%s/%s`", w->id_display, w->tmp_name, tree->dir);
		goto out;
	}
	dst_fd = openat(w->tmp_fd, tree->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dst_fd < 0) {
		r = om_make_error(err, errno, "open `%s/%s/%s`", w->id_display, w->tmp_name, tree->dir);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r = add_one_file(w, src_fd, src_dir, dst_fd, names[i], tree, level, nb_workers, err);
		if (r < 0)
			goto out;
	}
	if (fsync(dst_fd) < 0 && errno != EINVAL)
		r = om_make_error(err, errno, "fsync `%s/%s/%s`", w->id_display, w->tmp_name, tree->dir);
out:
	strv_free_n(names, n);
	if (r < 0)
		om_error_wrap(err, "store tree %s", tree->dir);
	return r;
}

/* shmig's files go through the tree machinery: a view with its dir and files. */
int om_gen_add_shm(struct om_gen_writer *w, const char *src_dir, Om__ShmSet *set, int level, int nb_workers,
		   om_error_t *err)
{
	Om__TreeEntry view = OM__TREE_ENTRY__INIT;
	int r;

	view.root_pid = 1;
	view.dir = set->dir;
	view.files = set->files;
	view.n_files = set->n_files;
	r = om_gen_add_tree(w, src_dir, &view, level, nb_workers, err);
	set->files = view.files; /* appended records belong to the set, also on failure */
	set->n_files = view.n_files;
	return r;
}

/* fsync every file and directory below dfd, then dfd itself. */
static int fsync_tree(int dfd, const char *display, om_error_t *err)
{
	int fd2 = dup(dfd);
	DIR *d;
	struct dirent *de;

	if (fd2 < 0)
		return om_make_error(err, errno, "open `%s`", display);
	d = fdopendir(fd2);
	if (d == NULL) {
		close(fd2);
		return om_make_error(err, errno, "open `%s`", display);
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		cleanup_close int fd = -1;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			goto fail;
		if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
			continue;
		fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			goto fail;
		if (S_ISDIR(sb.st_mode)) {
			cleanup_free char *sub = om_strdup_printf("%s/%s", display, de->d_name);
			if (sub == NULL || fsync_tree(fd, sub, err) < 0) {
				closedir(d);
				return sub ? -1 : om_make_error(err, ENOMEM, "fsync `%s`", display);
			}
		} else if (fsync(fd) < 0) {
			goto fail;
		}
	}
	closedir(d);
	if (fsync(dfd) < 0 && errno != EINVAL)
		return om_make_error(err, errno, "fsync `%s`", display);
	return 0;
fail:;
	int e = errno;
	closedir(d);
	return om_make_error(err, e, "fsync `%s/%s`", display, de->d_name);
}

static char *kernel_release(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return strdup("unknown");
	return strdup(u.release);
}

static int write_manifest_in(int dfd, const char *display, const Om__Manifest *m, om_error_t *err)
{
	cleanup_free uint8_t *buf = NULL;
	cleanup_close int fd = -1;
	size_t len;

	if (om_manifest_encode(m, &buf, &len, err) < 0)
		return -1;
	fd = openat(dfd, OM_MANIFEST_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return om_make_error(err, errno, "create `%s/%s`", display, OM_MANIFEST_NAME);
	if (om_write_all(fd, buf, len) < 0 || fsync(fd) < 0)
		return om_make_error(err, errno, "write `%s/%s`", display, OM_MANIFEST_NAME);
	if (close(om_steal_fd(fd)) < 0)
		return om_make_error(err, errno, "write `%s/%s`", display, OM_MANIFEST_NAME);
	return 0;
}

static char *gen_name_of(uint64_t n, char buf[32])
{
	snprintf(buf, 32, "gen-%llu", (unsigned long long)n);
	return buf;
}

/* A fenced manifest may be published only while no takeover raised the
 * group's fence above its token; a writer of om_gen_fence_local (no cluster)
 * also only while the fence names its node, if there is one. Unfenced
 * manifests of other writers: not checked. */
static int check_fence(struct om_gen_writer *w, const Om__Manifest *m, om_error_t *err)
{
	char node[256] = "";
	uint64_t token = 0, gen = 0, ours = m->has_fence ? m->fence : 0;

	if (ours == 0 && w->fence_node == NULL)
		return 0;
	if (om_st_fence_read(w->id_fd, w->id_display, &token, node, sizeof(node), &gen, err) < 0)
		return om_error_wrap(err, "commit");
	w->fence = token;
	if (token > ours || (w->fence_node && token > 0 && strcmp(node, w->fence_node) != 0))
		return om_make_error(err, ESTALE,
				     "commit refused: %s %lu was taken over by node %s (fencing token %llu, from "
				     "generation %llu; ours %llu): this node's copy is stale",
				     om_st_kind_label(w->kind), w->id, node[0] ? node : "?", (unsigned long long)token,
				     (unsigned long long)gen, (unsigned long long)ours);
	return 0;
}

int om_gen_fence_local(struct om_gen_writer *w, const char *node, uint64_t *token, om_error_t *err)
{
	char held[256] = "";
	uint64_t gen = 0;

	*token = 0;
	if (w == NULL || w->committed || node == NULL || *node == '\0')
		return om_make_error(err, EINVAL, "fence: generation writer is not open");
	if (om_st_fence_read(w->id_fd, w->id_display, token, held, sizeof(held), &gen, err) < 0)
		return -1;
	if (*token > 0 && strcmp(held, node) != 0) {
		uint64_t t = *token;
		*token = 0;
		return om_make_error(err, ESTALE,
				     "%s %lu: fenced: node %s took the %s over (token %llu, from generation %llu); "
				     "this node's copy is stale",
				     strcmp(w->kind, "groups") == 0 ? "miggroup" : "PID", w->id, held,
				     strcmp(w->kind, "groups") == 0 ? "group" : "process", (unsigned long long)t,
				     (unsigned long long)gen);
	}
	free(w->fence_node);
	if ((w->fence_node = strdup(node)) == NULL) {
		*token = 0;
		return om_make_error(err, ENOMEM, "fence");
	}
	return 0;
}

int om_gen_commit(struct om_gen_writer *w, Om__Manifest *m, uint64_t *gen, om_error_t *err)
{
	cleanup_free char *tmp_display = NULL;
	uint64_t raw = 0, stored = 0, n;

	if (w == NULL || w->committed || w->tmp_fd < 0)
		return om_make_error(err, EINVAL, "commit: generation writer is not open");
	tmp_display = om_strdup_printf("%s/%s", w->id_display, w->tmp_name);
	if (tmp_display == NULL)
		return om_make_error(err, ENOMEM, "commit");

	if (strcmp(w->kind, "groups") == 0) {
		if (w->id > UINT32_MAX)
			return om_make_error(err, EINVAL, "commit: group id %lu is too large", w->id);
		m->group = (uint32_t)w->id;
	} else {
		if (w->id == 0 || w->id > INT32_MAX)
			return om_make_error(err, EINVAL, "commit: bad PID %lu", w->id);
		m->group = 0;
		m->has_single_pid = true;
		m->single_pid = (int32_t)w->id;
	}
	if (m->node == NULL && (m->node = om_st_node_name()) == NULL)
		return om_make_error(err, ENOMEM, "commit");
	if (m->kernel == NULL && (m->kernel = kernel_release()) == NULL)
		return om_make_error(err, ENOMEM, "commit");
#ifdef PACKAGE_VERSION
	if (m->omtools_version == NULL && (m->omtools_version = strdup(PACKAGE_VERSION)) == NULL)
		return om_make_error(err, ENOMEM, "commit");
#endif
	if (m->time_unix_ns == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		m->time_unix_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		/* informational strings: shorten rather than fail on a huge argv */
		for (size_t j = 0; t && j < t->n_procs; j++) {
			Om__ProcEntry *p = t->procs[j];
			if (p && p->cmdline && strlen(p->cmdline) > OM_MAX_CMDLINE)
				p->cmdline[OM_MAX_CMDLINE] = '\0';
			if (p && p->comm && strlen(p->comm) > OM_MAX_COMM)
				p->comm[OM_MAX_COMM] = '\0';
		}
		for (size_t j = 0; t && j < t->n_files; j++) {
			if (t->files[j] == NULL)
				continue;
			raw += t->files[j]->size;
			stored += t->files[j]->stored_size;
		}
	}
	for (size_t j = 0; m->shm && j < m->shm->n_files; j++) {
		if (m->shm->files[j] == NULL)
			continue;
		raw += m->shm->files[j]->size;
		stored += m->shm->files[j]->stored_size;
	}
	m->raw_bytes = raw;
	m->stored_bytes = stored;

	if (om_st_scan_gens(w->id_fd, w->id_display, NULL, NULL, &n, err) < 0)
		return om_error_wrap(err, "commit");
	if (check_fence(w, m, err) < 0)
		return -1;
	n++;
	if (fsync_tree(w->tmp_fd, tmp_display, err) < 0)
		return om_error_wrap(err, "commit");
	for (int attempt = 0;; attempt++) {
		char gen_name[32];

		m->generation = n;
		if (write_manifest_in(w->tmp_fd, tmp_display, m, err) < 0)
			return om_error_wrap(err, "commit");
		if (fsync(w->tmp_fd) < 0 && errno != EINVAL)
			return om_make_error(err, errno, "commit: fsync `%s`", tmp_display);
		snprintf(gen_name, sizeof(gen_name), "gen-%llu", (unsigned long long)n);
		om_st_fault(w->st, "publishing"); /* tests: killed with the manifest written */
		if (renameat(w->id_fd, w->tmp_name, w->id_fd, gen_name) == 0)
			break;
		if ((errno != EEXIST && errno != ENOTEMPTY) || attempt >= 1000)
			return om_make_error(err, errno, "commit: rename `%s` to `%s/%s`", tmp_display, w->id_display,
					     gen_name);
		n++; /* someone outside our lock published it: take the next one */
	}
	w->committed = true;
	close(w->tmp_fd);
	w->tmp_fd = -1;
	/* a takeover that raised the fence while we wrote (om_store_fence_raise
	 * takes no lock): withdraw what we published, it is not ours to publish */
	if (check_fence(w, m, err) < 0) {
		char away[64];
		om_error_t e = NULL;
		snprintf(away, sizeof(away), ".prune-%llu-fenced-%d", (unsigned long long)n, (int)getpid());
		if (renameat(w->id_fd, gen_name_of(n, (char[32]){0}), w->id_fd, away) == 0)
			om_rm_rf_at(w->id_fd, away, &e);
		om_error_release(&e);
		fsync(w->id_fd);
		return -1;
	}
	if (gen)
		*gen = n;
	if (fsync(w->id_fd) < 0 && errno != EINVAL)
		return om_make_error(err, errno, "commit: fsync `%s`", w->id_display);
	return 0;
}

const char *om_gen_writer_tmp_name(const struct om_gen_writer *w)
{
	return w ? w->tmp_name : NULL;
}

void om_gen_writer_free(struct om_gen_writer *w)
{
	if (w == NULL)
		return;
	if (w->tmp_fd >= 0)
		close(w->tmp_fd);
	if (!w->committed && w->tmp_name && w->id_fd >= 0) {
		om_error_t e = NULL;
		om_rm_rf_at(w->id_fd, w->tmp_name, &e);
		om_error_release(&e);
	}
	if (w->id_fd >= 0)
		close(w->id_fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd); /* releases the flock */
	free(w->tmp_name);
	free(w->id_display);
	free(w->kind);
	free(w->fence_node);
	free(w);
}

/* ---- readers ---- */

int om_store_list(struct om_store *st, const char *kind, unsigned long id, uint64_t **gens, size_t *n, om_error_t *err)
{
	cleanup_close int fd = -1;
	cleanup_free char *display = NULL;

	*gens = NULL;
	*n = 0;
	if (om_st_check_kind(kind, err) < 0 || om_st_open_id_dir(st, kind, id, &fd, err) < 0)
		return -1;
	if (fd < 0)
		return 0;
	display = om_strdup_printf("%s/%s/%lu", st->path, kind, id);
	if (display == NULL)
		return om_make_error(err, ENOMEM, "list generations");
	return om_st_scan_gens(fd, display, gens, n, NULL, err);
}

int om_store_list_ids(struct om_store *st, const char *kind, unsigned long **ids, size_t *n, om_error_t *err)
{
	cleanup_free unsigned long *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	*ids = NULL;
	*n = 0;
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	fd = openat(st->fd, kind, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return om_make_error(err, errno, "open `%s/%s`", st->path, kind);
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return om_make_error(err, errno, "open `%s/%s`", st->path, kind);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		unsigned long id;
		cleanup_free uint64_t *gens = NULL;
		cleanup_close int id_fd = -1;
		size_t ng = 0;
		om_error_t e = NULL;

		if (de->d_name[0] == '.' || !parse_canon_ulong(de->d_name, &id))
			continue;
		id_fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (id_fd < 0)
			continue;
		if (om_st_scan_gens(id_fd, de->d_name, &gens, &ng, NULL, &e) < 0) {
			om_error_release(&e);
			continue;
		}
		if (ng == 0)
			continue;
		if (cnt == cap) {
			unsigned long *nv = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));
			if (nv == NULL) {
				closedir(d);
				return om_make_error(err, ENOMEM, "list `%s/%s`", st->path, kind);
			}
			v = nv;
			cap = cap ? cap * 2 : 16;
		}
		v[cnt++] = id;
	}
	if (errno != 0) {
		int e = errno;
		closedir(d);
		return om_make_error(err, e, "list `%s/%s`", st->path, kind);
	}
	closedir(d);
	if (v)
		qsort(v, cnt, sizeof(*v), cmp_ulong);
	*ids = om_steal_ptr(v);
	*n = cnt;
	return 0;
}

/* Read and decode dirfd/rel; messages name display. */
static int read_manifest_at(int dfd, const char *rel, const char *display, Om__Manifest **m, om_error_t *err)
{
	cleanup_free char *buf = NULL;
	size_t len = 0;

	*m = NULL;
	if (om_read_file_at(dfd, rel, &buf, &len, OM_MANIFEST_MAX, err) < 0) {
		int status = (err && *err) ? (*err)->status : EIO;
		if (status == EFBIG)
			return om_make_error(err, OM_ECORRUPT, "%s: larger than %u bytes", display, OM_MANIFEST_MAX);
		return om_make_error(err, status, "read `%s`", display);
	}
	if (om_manifest_decode((const uint8_t *)buf, len, m, err) < 0)
		return om_error_wrap(err, "%s", display);
	return 0;
}

int om_manifest_read_file(const char *path, Om__Manifest **m, om_error_t *err)
{
	return read_manifest_at(AT_FDCWD, path, path, m, err);
}

int om_gen_load_manifest(struct om_store *st, const char *kind, unsigned long id, uint64_t gen, Om__Manifest **m,
			 om_error_t *err)
{
	cleanup_free char *rel = NULL;
	cleanup_free char *display = NULL;
	Om__Manifest *mm = NULL;

	*m = NULL;
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	if (gen == 0) {
		cleanup_free uint64_t *gens = NULL;
		size_t n = 0;
		if (om_store_list(st, kind, id, &gens, &n, err) < 0)
			return -1;
		if (n == 0)
			return om_make_error(err, OM_ENOTFOUND, "no generation of %s %lu in %s", om_st_kind_label(kind),
					     id, st->path);
		gen = gens[n - 1];
	}
	rel = om_strdup_printf("%s/%lu/gen-%llu/%s", kind, id, (unsigned long long)gen, OM_MANIFEST_NAME);
	display = om_strdup_printf("%s/%s", st->path, rel);
	if (rel == NULL || display == NULL)
		return om_make_error(err, ENOMEM, "load manifest");
	if (fstatat(st->fd, rel, &(struct stat){0}, AT_SYMLINK_NOFOLLOW) < 0 && (errno == ENOENT || errno == ENOTDIR))
		return om_make_error(err, OM_ENOTFOUND, "generation %llu of %s %lu not found in %s",
				     (unsigned long long)gen, om_st_kind_label(kind), id, st->path);
	if (read_manifest_at(st->fd, rel, display, &mm, err) < 0)
		return -1;
	if (mm->generation != gen) {
		om_make_error(err, OM_ECORRUPT, "%s: manifest says generation %llu, its directory gen-%llu", display,
			      (unsigned long long)mm->generation, (unsigned long long)gen);
		goto bad;
	}
	if (strcmp(kind, "groups") == 0 && mm->group != id) {
		om_make_error(err, OM_ECORRUPT, "%s: manifest is of group %u, not group %lu", display,
			      (unsigned)mm->group, id);
		goto bad;
	}
	if (strcmp(kind, "pids") == 0 && mm->has_single_pid && (unsigned long)mm->single_pid != id) {
		om_make_error(err, OM_ECORRUPT, "%s: manifest is of PID %d, not PID %lu", display, (int)mm->single_pid,
			      id);
		goto bad;
	}
	*m = mm;
	return 0;
bad:
	om_manifest_free(mm);
	return -1;
}

/* Open the file of f in tree t below gen_fd; OM_ECORRUPT "missing PATH" when absent. */
static int open_stored(int gen_fd, const char *gen_display, const Om__TreeEntry *t, const Om__FileEntry *f,
		       char **display, om_error_t *err)
{
	cleanup_free char *rel = NULL;
	struct stat sb;
	int fd;

	*display = NULL;
	if (!om_store_name_ok(t->dir) || !om_store_name_ok(f->name) || f->sha256.len != 32)
		return om_make_error(err, OM_ECORRUPT, "invalid file entry in the manifest of %s", gen_display);
	rel = om_strdup_printf("%s/%s.zst", t->dir, f->name);
	*display = om_strdup_printf("%s/%s", gen_display, rel ? rel : "");
	if (rel == NULL || *display == NULL)
		return om_make_error(err, ENOMEM, "open stored file");
	fd = openat(gen_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return om_make_error(err, OM_ECORRUPT, "missing %s", *display);
		return om_make_error(err, errno, "open %s", *display);
	}
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		return om_make_error(err, e, "stat %s", *display);
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != f->stored_size) {
		close(fd);
		return om_make_error(err, OM_ECORRUPT, "size mismatch in %s: %lld bytes, the manifest says %llu",
				     *display, (long long)sb.st_size, (unsigned long long)f->stored_size);
	}
	return fd;
}

/* The files of shmig's set, seen as a tree (same layout: <dir>/<name>.zst). */
static Om__TreeEntry shm_view(const Om__ShmSet *set)
{
	Om__TreeEntry view = OM__TREE_ENTRY__INIT;

	view.root_pid = 1;
	view.dir = set->dir;
	view.files = set->files;
	view.n_files = set->n_files;
	return view;
}

static int verify_at(int gen_fd, const char *gen_display, const Om__Manifest *m, om_error_t *err)
{
	Om__TreeEntry shm = m->shm ? shm_view(m->shm) : (Om__TreeEntry)OM__TREE_ENTRY__INIT;

	for (size_t i = 0; i < m->n_trees + (m->shm ? 1 : 0); i++) {
		const Om__TreeEntry *t = i < m->n_trees ? m->trees[i] : &shm;
		for (size_t j = 0; j < t->n_files; j++) {
			const Om__FileEntry *f = t->files[j];
			cleanup_free char *display = NULL;
			cleanup_close int fd = open_stored(gen_fd, gen_display, t, f, &display, err);
			uint8_t sha[32];

			if (fd < 0)
				return -1;
			if (om_hash_fd(fd, sha, NULL, display, err) < 0)
				return -1;
			if (memcmp(sha, f->sha256.data, 32) != 0)
				return om_make_error(err, OM_ECORRUPT, "checksum mismatch in %s", display);
		}
	}
	return 0;
}

static int open_gen_dir(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m, char **display,
			om_error_t *err)
{
	cleanup_free char *rel = NULL;
	int fd;

	*display = NULL;
	if (om_st_check_kind(kind, err) < 0)
		return -1;
	rel = om_strdup_printf("%s/%lu/gen-%llu", kind, id, (unsigned long long)m->generation);
	*display = om_strdup_printf("%s/%s", st->path, rel ? rel : "");
	if (rel == NULL || *display == NULL)
		return om_make_error(err, ENOMEM, "open generation");
	fd = openat(st->fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return om_make_error(err, OM_ENOTFOUND, "generation %llu of %s %lu not found in %s",
					     (unsigned long long)m->generation, om_st_kind_label(kind), id, st->path);
		return om_make_error(err, errno, "open `%s`", *display);
	}
	return fd;
}

int om_gen_verify(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m, om_error_t *err)
{
	cleanup_free char *display = NULL;
	cleanup_close int fd = open_gen_dir(st, kind, id, m, &display, err);

	if (fd < 0)
		return -1;
	return verify_at(fd, display, m, err);
}

int om_gen_dir_verify(const char *gen_dir, const Om__Manifest *m, om_error_t *err)
{
	cleanup_close int fd = open(gen_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return om_make_error(err, errno, "open `%s`", gen_dir);
	return verify_at(fd, gen_dir, m, err);
}

int om_gen_extract_tree(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m,
			const Om__TreeEntry *t, const char *dest_dir, om_error_t *err)
{
	cleanup_free char *gen_display = NULL;
	cleanup_close int gen_fd = -1;
	cleanup_close int dest_fd = -1;
	bool created = false;
	size_t done = 0;
	struct stat sb;

	gen_fd = open_gen_dir(st, kind, id, m, &gen_display, err);
	if (gen_fd < 0)
		return -1;
	if (stat(dest_dir, &sb) < 0) {
		if (errno != ENOENT)
			return om_make_error(err, errno, "stat `%s`", dest_dir);
		if (om_mkdir_p(dest_dir, 0700, err) < 0)
			return om_error_wrap(err, "extract %s", t->dir ? t->dir : "tree");
		created = true;
	}
	dest_fd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest_fd < 0) {
		om_make_error(err, errno, "open `%s`", dest_dir);
		goto fail;
	}
	for (; done < t->n_files; done++) {
		const Om__FileEntry *f = t->files[done];
		cleanup_free char *display = NULL;
		cleanup_close int in = open_stored(gen_fd, gen_display, t, f, &display, err);
		cleanup_close int out = -1;
		struct om_stream_stats s;
		mode_t mode = f->has_mode ? ((f->mode & 0777) | 0600) : 0600;

		if (in < 0)
			goto fail;
		out = openat(dest_fd, f->name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
		if (out < 0) {
			om_make_error(err, errno, "create `%s/%s`", dest_dir, f->name);
			goto fail;
		}
		if (om_decompress_fd(in, out, f->sha256.data, f->size, display, &s, err) < 0) {
			done++; /* remove this one too */
			goto fail;
		}
		if (s.raw_bytes != f->size) {
			om_make_error(err, OM_ECORRUPT,
				      "size mismatch in %s: %llu bytes decompressed, the manifest says %llu", display,
				      (unsigned long long)s.raw_bytes, (unsigned long long)f->size);
			done++;
			goto fail;
		}
		if (close(om_steal_fd(out)) < 0) {
			om_make_error(err, errno, "write `%s/%s`", dest_dir, f->name);
			done++;
			goto fail;
		}
	}
	return 0;
fail:
	if (dest_fd >= 0)
		for (size_t i = 0; i < done; i++)
			unlinkat(dest_fd, t->files[i]->name, 0);
	if (created)
		rmdir(dest_dir);
	return -1;
}

int om_gen_extract_shm(struct om_store *st, const char *kind, unsigned long id, const Om__Manifest *m,
		       const char *dest_dir, om_error_t *err)
{
	Om__TreeEntry view;

	if (m->shm == NULL)
		return 0;
	view = shm_view(m->shm);
	return om_gen_extract_tree(st, kind, id, m, &view, dest_dir, err);
}
