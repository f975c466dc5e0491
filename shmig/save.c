/* shmig/save.c — find, check and save the shared memory a frozen group uses. */
#define _GNU_SOURCE
#include "config.h"
#include "internal.h"
#include "proc.h"
#include "shmig.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

union om_semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

enum obj_kind { K_SEG, K_POSIX, K_ANON };

struct obj {
	enum obj_kind kind;
	dev_t dev;
	ino_t ino;  /* K_SEG: the shmid */
	char *name; /* K_POSIX: name in /dev/shm; K_ANON: the mapping's path */
	pid_t *pids;
	size_t n_pids;
	pid_t first;
	size_t first_tree;
	pid_t cross;	/* a member of another tree */
	pid_t outsider; /* a process outside the group */
	char **aliases; /* K_POSIX: gone names members map it by */
	size_t n_aliases;
};

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

struct scan {
	struct obj *v;
	size_t n;
	ino_t ipcns, mntns;
	dev_t shm_dev;
	bool have_shm_dev;
	const pid_t *members; /* sorted */
	size_t n_members;
	/* the process being scanned */
	pid_t pid;
	size_t tree;
	bool member, host_ipc, host_mnt;
};

static bool is_member(const struct scan *s, pid_t pid)
{
	return s->n_members > 0 && bsearch(&pid, s->members, s->n_members, sizeof(pid_t), pid_cmp) != NULL;
}

static void scan_release(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].pids);
		for (size_t j = 0; j < s->v[i].n_aliases; j++)
			free(s->v[i].aliases[j]);
		free(s->v[i].aliases);
	}
	free(s->v);
}

static ino_t ns_ino(pid_t pid, const char *kind)
{
	char path[64];
	struct stat sb;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, kind);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

static struct obj *find_obj(struct scan *s, enum obj_kind kind, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == kind && s->v[i].ino == ino && (kind == K_SEG || s->v[i].dev == dev))
			return &s->v[i];
	return NULL;
}

/* A use of an object by the process being scanned. */
static int use(struct scan *s, enum obj_kind kind, dev_t dev, ino_t ino, const char *name, om_error_t *err)
{
	struct obj *o = find_obj(s, kind, dev, ino);

	if (!s->member) {
		if (o && !o->outsider)
			o->outsider = s->pid;
		return 0;
	}
	if (o == NULL) {
		struct obj *v;
		if (s->n >= OM_MAX_SHM_OBJECTS * 3u)
			return om_make_error(err, E2BIG, "the group uses more than %u shared memory objects",
					     OM_MAX_SHM_OBJECTS * 3u);
		v = realloc(s->v, (s->n + 1) * sizeof(*v));
		if (v == NULL)
			return om_make_error(err, ENOMEM, "scan shared memory");
		s->v = v;
		o = &s->v[s->n++];
		memset(o, 0, sizeof(*o));
		o->kind = kind;
		o->dev = dev;
		o->ino = ino;
		o->first = s->pid;
		o->first_tree = s->tree;
		if (name && (o->name = strdup(name)) == NULL)
			return om_make_error(err, ENOMEM, "scan shared memory");
	} else if (o->first_tree != s->tree && !o->cross)
		o->cross = s->pid;
	if (!om_pids_contains(o->pids, o->n_pids, s->pid) && om_pids_push(&o->pids, &o->n_pids, s->pid) < 0)
		return om_make_error(err, ENOMEM, "scan shared memory");
	return 0;
}

static bool deleted(const char *path)
{
	size_t l = strlen(path);
	return l >= 10 && strcmp(path + l - 10, " (deleted)") == 0;
}

/* A /dev/shm file by its path as the kernel shows it ("/dev/shm/NAME"). */
/* The name in /dev/shm of the file with this inode (malloc'd), NULL if none. */
static char *shm_name_of(ino_t ino)
{
	DIR *d = opendir(OM_DEV_SHM);
	struct dirent *de;
	char *name = NULL;

	if (d == NULL)
		return NULL;
	while (name == NULL && (de = readdir(d)) != NULL)
		if (de->d_ino == ino && de->d_name[0] != '.')
			name = strdup(de->d_name);
	closedir(d);
	return name;
}

static int add_alias(struct obj *o, const char *alias)
{
	char **v;

	for (size_t i = 0; i < o->n_aliases; i++)
		if (strcmp(o->aliases[i], alias) == 0)
			return 0;
	if (o->n_aliases >= OM_MAX_SHM_ALIASES)
		return 0; /* the first ones are enough: each is only a path CRIU opens */
	v = realloc(o->aliases, (o->n_aliases + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	o->aliases = v;
	if ((o->aliases[o->n_aliases] = strdup(alias)) == NULL)
		return -1;
	o->n_aliases++;
	return 0;
}

/* A /dev/shm file by its path as the kernel shows it ("/dev/shm/NAME", with
 * " (deleted)" when that name is gone); nlink: its link count. */
static int use_posix(struct scan *s, dev_t dev, ino_t ino, nlink_t nlink, const char *path, om_error_t *err)
{
	cleanup_free char *name = NULL;
	cleanup_free char *real = NULL;
	struct obj *o;

	if (!s->have_shm_dev || dev != s->shm_dev || strncmp(path, OM_DEV_SHM "/", strlen(OM_DEV_SHM "/")) != 0)
		return 0;
	if (!s->member) /* whatever the name it is seen by */
		return use(s, K_POSIX, dev, ino, NULL, err);
	name = strdup(path + strlen(OM_DEV_SHM "/"));
	if (name == NULL)
		return om_make_error(err, ENOMEM, "scan shared memory");
	if (deleted(path)) {
		if (nlink == 0) /* unlinked: CRIU keeps its contents itself (a ghost file) */
			return 0;
		/* mapped by a name that is gone while the file lives on under
		 * another: glibc's sem_open() maps its temporary name, then links
		 * the file to sem.NAME. CRIU looks the path up as the kernel shows
		 * it, " (deleted)" included (else it wants --link-remap, whose
		 * remap file would not exist on another node): that name becomes
		 * an alias, a link to the file during the dump and the restore. */
		real = shm_name_of(ino);
		if (real == NULL)
			return om_make_error(err, EINVAL,
					     "process %d maps `%s`, which lives on under a name outside " OM_DEV_SHM,
					     (int)s->pid, path);
	}
	if (!om_store_name_ok(name) || (real && !om_store_name_ok(real)))
		return om_make_error(err, EINVAL, "process %d uses `%s`: only files directly in " OM_DEV_SHM " travel",
				     (int)s->pid, path);
	if (use(s, K_POSIX, dev, ino, real ? real : name, err) < 0)
		return -1;
	o = find_obj(s, K_POSIX, dev, ino);
	if (real && o && add_alias(o, name) < 0)
		return om_make_error(err, ENOMEM, "scan shared memory");
	return 0;
}

static int scan_maps(struct scan *s, om_error_t *err)
{
	char path[64], line[PATH_MAX + 256];
	cleanup_fclose FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)s->pid);
	f = fopen(path, "re");
	if (f == NULL) {
		if (!s->member)
			return 0; /* gone, or a kernel thread */
		return om_make_error(err, errno, "read `%s`", path);
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, ino;
		unsigned long long off;
		unsigned maj, min;
		char perms[5];
		int pos = 0;
		char *p;

		if (sscanf(line, "%lx-%lx %4s %llx %x:%x %lu %n", &start, &end, perms, &off, &maj, &min, &ino, &pos) <
			7 ||
		    pos == 0)
			continue;
		p = line + pos;
		p[strcspn(p, "\n")] = '\0';
		if (strncmp(p, "/SYSV", 5) == 0) {
			if (s->host_ipc && use(s, K_SEG, 0, (ino_t)ino, NULL, err) < 0)
				return -1;
		} else if (strncmp(p, OM_DEV_SHM "/", strlen(OM_DEV_SHM "/")) == 0) {
			nlink_t nlink = 1;
			if (s->member && deleted(p)) {
				char mf[96];
				struct stat sb;
				snprintf(mf, sizeof(mf), "/proc/%d/map_files/%lx-%lx", (int)s->pid, start, end);
				nlink = stat(mf, &sb) == 0 ? sb.st_nlink : 0;
			}
			if (s->host_mnt && use_posix(s, makedev(maj, min), (ino_t)ino, nlink, p, err) < 0)
				return -1;
		} else if ((perms[3] == 's' && strcmp(p, "/dev/zero (deleted)") == 0) ||
			   strncmp(p, "/memfd:", 7) == 0) {
			if (use(s, K_ANON, makedev(maj, min), (ino_t)ino, p, err) < 0)
				return -1;
		}
	}
	return 0;
}

static int scan_fd(void *arg, int fd, const char *target, om_error_t *err)
{
	struct scan *s = arg;
	char path[64];
	struct stat sb;

	if (strncmp(target, OM_DEV_SHM "/", strlen(OM_DEV_SHM "/")) != 0 && strncmp(target, "/memfd:", 7) != 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)s->pid, fd);
	if (stat(path, &sb) < 0)
		return 0; /* closed meanwhile (an outsider) */
	if (target[1] == 'm')
		return use(s, K_ANON, sb.st_dev, sb.st_ino, target, err);
	return s->host_mnt ? use_posix(s, sb.st_dev, sb.st_ino, sb.st_nlink, target, err) : 0;
}

static int scan_one(struct scan *s, pid_t pid, size_t tree, bool member, om_error_t *err)
{
	s->pid = pid;
	s->tree = tree;
	s->member = member;
	s->host_ipc = ns_ino(pid, "ipc") == s->ipcns;
	s->host_mnt = ns_ino(pid, "mnt") == s->mntns;
	if (scan_maps(s, err) < 0)
		return -1;
	if (om_proc_fds(pid, scan_fd, s, err) < 0) {
		if (member)
			return -1;
		om_error_release(err); /* an outsider that went away */
	}
	return 0;
}

/* Every process of the node that is not a member: who else uses the objects. */
static int scan_outsiders(struct scan *s, om_error_t *err)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t self = getpid();

	if (d == NULL)
		return om_make_error(err, errno, "list /proc");
	while ((de = readdir(d)) != NULL) {
		pid_t pid;
		if (om_parse_pid(de->d_name, &pid) < 0 || pid == self)
			continue;
		if (is_member(s, pid))
			continue;
		if (scan_one(s, pid, 0, false, err) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

const char *om_shm_who(pid_t pid, char *buf, size_t len)
{
	char path[64], comm[64] = "?";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	snprintf(buf, len, "%d (%s)", (int)pid, comm);
	return buf;
}

/* A refusal: the group cannot be checkpointed as it is (exit 5, like CRIU's). */
#define refuse(err, ...) (om_make_error((err), EBUSY, __VA_ARGS__), om_error_set_exit((err), OM_EXIT_CRIU))

/* ---- /proc/sysvipc ---- */

int om_ipc_rows(const char *what, struct om_ipc_row **rows, size_t *n, om_error_t *err)
{
	char path[64], line[512];
	cleanup_fclose FILE *f = NULL;
	struct om_ipc_row *v = NULL;
	size_t cnt = 0;

	*rows = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/sysvipc/%s", what);
	f = fopen(path, "re");
	if (f == NULL)
		return om_make_error(err, errno, "read `%s`", path);
	if (fgets(line, sizeof(line), f) == NULL) /* the header */
		return 0;
	while (fgets(line, sizeof(line), f)) {
		struct om_ipc_row r = {0};
		unsigned long long a[16] = {0};
		long long key;
		int got;

		got = sscanf(line, "%lld %llu %llo %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			     &key, &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7], &a[8], &a[9], &a[10], &a[11],
			     &a[12], &a[13], &a[14], &a[15]);
		if (got < 10)
			continue;
		r.key = (int32_t)key;
		r.id = (int32_t)a[1];
		r.perms = (uint32_t)a[2];
		r.size = a[3];
		if (strcmp(what, "shm") ==
		    0) { /* key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap */
			r.pid1 = (pid_t)a[4];
			r.pid2 = (pid_t)a[5];
			r.nattch = a[6];
			r.uid = (uint32_t)a[7];
			r.gid = (uint32_t)a[8];
			r.ctime = (int64_t)a[13];
			r.swap = got >= 16 ? a[15] : 0;
		} else if (strcmp(what, "sem") == 0) { /* key semid perms nsems uid gid cuid cgid otime ctime */
			r.uid = (uint32_t)a[4];
			r.gid = (uint32_t)a[5];
			r.ctime = (int64_t)a[9];
		} else { /* key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid stime rtime ctime */
			r.nattch = a[4];
			r.pid1 = (pid_t)a[5];
			r.pid2 = (pid_t)a[6];
			r.uid = (uint32_t)a[7];
			r.gid = (uint32_t)a[8];
			r.ctime = (int64_t)a[13];
		}
		if (cnt % 64 == 0) {
			struct om_ipc_row *nv = realloc(v, (cnt + 64) * sizeof(*v));
			if (nv == NULL) {
				free(v);
				return om_make_error(err, ENOMEM, "read `%s`", path);
			}
			v = nv;
		}
		v[cnt++] = r;
	}
	*rows = v;
	*n = cnt;
	return 0;
}

const struct om_ipc_row *om_ipc_find(const struct om_ipc_row *rows, size_t n, int32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].id == id)
			return &rows[i];
	return NULL;
}

bool om_shm_zero_block(const void *p, size_t len)
{
	const uint64_t *q = p;

	for (size_t i = 0; i < len / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* The end of the run of blocks starting at off that are all zero (zero = true)
 * or all not zero, within len. */
size_t om_shm_run(const char *p, size_t off, size_t len, bool zero)
{
	const size_t blk = 4096;

	while (off < len) {
		size_t chunk = len - off < blk ? len - off : blk;
		if ((chunk == blk && om_shm_zero_block(p + off, chunk)) != zero)
			break;
		off += chunk;
	}
	return off;
}

int om_shm_pwrite_sparse(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	for (size_t done = om_shm_run(p, 0, len, true); done < len;) {
		size_t end = om_shm_run(p, done, len, false);
		while (done < end) { /* one write per run of data */
			ssize_t w = pwrite(fd, p + done, end - done, (off_t)(off + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
			done += (size_t)w;
		}
		done = om_shm_run(p, done, len, true);
	}
	return 0;
}

/* ---- the set ---- */

static int push_pids(int32_t **v, size_t *n, const pid_t *pids, size_t np)
{
	if (np == 0)
		return 0;
	*v = malloc(np * sizeof(**v));
	if (*v == NULL)
		return -1;
	for (size_t i = 0; i < np; i++)
		(*v)[i] = (int32_t)pids[i];
	*n = np;
	return 0;
}

#define APPEND(arr, n, item)                                                                                           \
	({                                                                                                             \
		__typeof__(arr) _v = realloc((arr), ((n) + 1) * sizeof(*(arr)));                                       \
		int _r = -1;                                                                                           \
		if (_v) {                                                                                              \
			(arr) = _v;                                                                                    \
			(arr)[(n)++] = (item);                                                                         \
			_r = 0;                                                                                        \
		}                                                                                                      \
		_r;                                                                                                    \
	})

/* Copy len bytes of memory at addr into fd at off through a pipe:
 * vmsplice() takes the pages by reference (no fault per page, no copy in user
 * space) and splice() copies them into the file; measured twice as fast as
 * MADV_POPULATE_READ + write(), and seven times as fast as write() alone, on a
 * VM whose page faults are expensive. */
static int splice_out(int pipe_w, int pipe_r, const char *addr, size_t len, int fd, uint64_t off)
{
	while (len > 0) {
		struct iovec iov = {.iov_base = (void *)addr, .iov_len = len < (1u << 20) ? len : (1u << 20)};
		ssize_t n = vmsplice(pipe_w, &iov, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		addr += n;
		len -= (size_t)n;
		while (n > 0) {
			loff_t o = (loff_t)off;
			ssize_t m = splice(pipe_r, NULL, fd, &o, (size_t)n, 0);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0)
				return -1;
			n -= m;
			off += (uint64_t)m;
		}
	}
	return 0;
}

/* Copy a segment (attached read-only here) into the file: only the pages
 * that exist (mincore) when none is swapped out, else all of it; missing
 * pages stay holes. */
static int save_segment(const Om__ShmSegment *g, const struct om_ipc_row *row, int dirfd, om_error_t *err)
{
	cleanup_close int out = -1;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (size_t)((g->size + pg - 1) / pg * pg);
	cleanup_free unsigned char *vec = NULL;
	int pp[2] = {-1, -1};
	char *addr;
	int r = 0;

	out = openat(dirfd, g->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return om_make_error(err, errno, "create %s", g->file);
	if (pipe2(pp, O_CLOEXEC) < 0)
		return om_make_error(err, errno, "pipe");
	(void)fcntl(pp[1], F_SETPIPE_SZ, 1 << 20); /* fewer rounds; the default 64 KiB works too */
	addr = shmat(g->id, NULL, SHM_RDONLY);
	if (addr == (void *)-1) {
		r = om_make_error(err, errno, "attach SysV segment %d", (int)g->id);
		goto out;
	}
	if (row->swap == 0 && (vec = malloc(len / pg)) != NULL && mincore(addr, len, vec) < 0) {
		free(vec);
		vec = NULL;
	}
	for (size_t off = 0; off < g->size && r == 0;) {
		size_t end = off;
		while (end < g->size && (!vec || (vec[end / pg] & 1)))
			end += pg;
		if (end > g->size)
			end = (size_t)g->size;
		if (end > off && splice_out(pp[1], pp[0], addr + off, end - off, out, off) < 0)
			r = om_make_error(err, errno, "write %s", g->file);
		for (off = end; off < g->size && vec && !(vec[off / pg] & 1);)
			off += pg;
	}
	shmdt(addr);
	if (r == 0 && ftruncate(out, (off_t)g->size) < 0)
		r = om_make_error(err, errno, "write %s", g->file);
out:
	close(pp[0]);
	close(pp[1]);
	return r;
}

static int save_posix(Om__PosixShm *p, ino_t ino, int shm_dir, int dirfd, om_error_t *err)
{
	cleanup_close int in = -1, out = -1;
	struct stat sb;
	off_t off = 0;

	in = openat(shm_dir, p->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return om_make_error(err, errno, "open " OM_DEV_SHM "/%s", p->name);
	if (fstat(in, &sb) < 0)
		return om_make_error(err, errno, "stat " OM_DEV_SHM "/%s", p->name);
	if (sb.st_ino != ino || !S_ISREG(sb.st_mode))
		return om_make_error(err, EBUSY, OM_DEV_SHM "/%s was replaced while the group was frozen", p->name);
	p->mode = sb.st_mode & 07777;
	p->uid = sb.st_uid;
	p->gid = sb.st_gid;
	p->size = (uint64_t)sb.st_size;
	p->has_ino = true;
	p->ino = sb.st_ino;
	out = openat(dirfd, p->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return om_make_error(err, errno, "create %s", p->file);
	for (;;) {
		off_t data = lseek(in, off, SEEK_DATA), hole;
		if (data < 0) {
			if (errno == ENXIO)
				break;
			return om_make_error(err, errno, "read " OM_DEV_SHM "/%s", p->name);
		}
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return om_make_error(err, errno, "read " OM_DEV_SHM "/%s", p->name);
		for (off = data; off < hole;) { /* in the kernel, no copy through user space */
			off_t at = off;
			if (lseek(out, off, SEEK_SET) < 0)
				return om_make_error(err, errno, "write %s", p->file);
			ssize_t n = sendfile(out, in, &at,
					     (size_t)(hole - off) < (1u << 30) ? (size_t)(hole - off) : (1u << 30));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return om_make_error(err, errno, "copy " OM_DEV_SHM "/%s", p->name);
			if (n == 0)
				break;
			off += n;
		}
		off = hole;
	}
	if (ftruncate(out, sb.st_size) < 0)
		return om_make_error(err, errno, "write %s", p->file);
	return 0;
}

static int build_segments(struct scan *s, Om__ShmSet *set, int dirfd, const char *label, om_error_t *err)
{
	cleanup_free struct om_ipc_row *rows = NULL;
	size_t n_rows = 0;
	char who[96];

	if (om_ipc_rows("shm", &rows, &n_rows, err) < 0)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		const struct obj *o = &s->v[i];
		const struct om_ipc_row *row;
		Om__ShmSegment *g;

		if (o->kind != K_SEG)
			continue;
		row = om_ipc_find(rows, n_rows, (int32_t)o->ino);
		if (row == NULL)
			return om_make_error(err, ENOENT,
					     "SysV segment %lu attached by process %d is not in /proc/sysvipc/shm",
					     (unsigned long)o->ino, (int)o->first);
		if (o->outsider)
			return refuse(err,
				      "SysV shared memory segment %d (key 0x%08x) is also attached by process %s, "
				      "which is not in %s",
				      (int)row->id, (unsigned)row->key, om_shm_who(o->outsider, who, sizeof(who)),
				      label);
		g = malloc(sizeof(*g));
		if (g == NULL || APPEND(set->segments, set->n_segments, g) < 0) {
			free(g);
			return om_make_error(err, ENOMEM, "save SysV segments");
		}
		om__shm_segment__init(g);
		g->key = row->key;
		g->id = row->id;
		g->mode = row->perms & 0777;
		g->uid = row->uid;
		g->gid = row->gid;
		g->size = row->size;
		g->has_removed = true;
		g->removed = (row->perms & SHM_DEST) != 0;
		g->has_ctime = true;
		g->ctime = row->ctime;
		if ((g->file = om_strdup_printf("sysv-shm-%d", (int)row->id)) == NULL ||
		    push_pids(&g->attached_by, &g->n_attached_by, o->pids, o->n_pids) < 0)
			return om_make_error(err, ENOMEM, "save SysV segments");
		if (save_segment(g, row, dirfd, err) < 0)
			return om_error_wrap(err, "save SysV segment %d (key 0x%08x)", (int)row->id,
					     (unsigned)row->key);
	}
	return 0;
}

/* Semaphore sets: the group's when a member did the last operation on one of
 * its semaphores; refused when a live process outside the group did too. */
static int build_sems(struct scan *s, Om__ShmSet *set, const char *label, om_error_t *err)
{
	cleanup_free struct om_ipc_row *rows = NULL;
	size_t n_rows = 0;
	char who[96];

	if (om_ipc_rows("sem", &rows, &n_rows, err) < 0)
		return -1;
	for (size_t i = 0; i < n_rows; i++) {
		const struct om_ipc_row *row = &rows[i];
		cleanup_free pid_t *users = NULL;
		cleanup_free unsigned short *vals = NULL;
		size_t n_users = 0, nsems = (size_t)row->size;
		pid_t outsider = 0;
		Om__SemSet *e;

		if (nsems == 0 || nsems > OM_MAX_SEMS)
			continue;
		for (size_t k = 0; k < nsems; k++) {
			int pid = semctl(row->id, (int)k, GETPID);
			if (pid <= 0)
				continue;
			if (is_member(s, pid)) {
				if (!om_pids_contains(users, n_users, pid) && om_pids_push(&users, &n_users, pid) < 0)
					return om_make_error(err, ENOMEM, "save semaphores");
			} else if (!outsider && om_pid_state(pid) == OM_PID_ALIVE && ns_ino(pid, "ipc") == s->ipcns)
				outsider = pid;
		}
		if (n_users == 0)
			continue;
		if (outsider)
			return refuse(err,
				      "SysV semaphore set %d (key 0x%08x) is used by process %s, which is not in %s",
				      (int)row->id, (unsigned)row->key, om_shm_who(outsider, who, sizeof(who)), label);
		vals = calloc(nsems, sizeof(*vals));
		e = malloc(sizeof(*e));
		if (vals == NULL || e == NULL || APPEND(set->sems, set->n_sems, e) < 0) {
			free(e);
			return om_make_error(err, ENOMEM, "save semaphores");
		}
		om__sem_set__init(e);
		if (semctl(row->id, 0, GETALL, (union om_semun){.array = vals}) < 0)
			return om_make_error(err, errno, "read SysV semaphore set %d", (int)row->id);
		e->key = row->key;
		e->id = row->id;
		e->mode = row->perms & 0777;
		e->uid = row->uid;
		e->gid = row->gid;
		e->has_ctime = true;
		e->ctime = row->ctime;
		e->values = malloc(nsems * sizeof(*e->values));
		if (e->values == NULL || push_pids(&e->used_by, &e->n_used_by, users, n_users) < 0)
			return om_make_error(err, ENOMEM, "save semaphores");
		for (size_t k = 0; k < nsems; k++)
			e->values[k] = vals[k];
		e->n_values = nsems;
	}
	return 0;
}

/* Message queues: the group's when its last sender or receiver is a member;
 * refused when the other one is a live process outside the group. Messages
 * are read in place (MSG_COPY). */
static int build_queues(struct scan *s, Om__ShmSet *set, const char *label, om_error_t *err)
{
	cleanup_free struct om_ipc_row *rows = NULL;
	size_t n_rows = 0, text = 0;
	char who[96];

	if (om_ipc_rows("msg", &rows, &n_rows, err) < 0)
		return -1;
	for (size_t i = 0; i < n_rows; i++) {
		const struct om_ipc_row *row = &rows[i];
		pid_t ends[2] = {row->pid1, row->pid2}, users[2];
		size_t n_users = 0;
		pid_t outsider = 0;
		struct msqid_ds ds;
		cleanup_free char *buf = NULL;
		size_t bufsz = 65536 + sizeof(long);
		Om__MsgQueue *q;

		for (int k = 0; k < 2; k++) {
			if (ends[k] <= 0)
				continue;
			if (is_member(s, ends[k])) {
				if (n_users == 0 || users[0] != ends[k])
					users[n_users++] = ends[k];
			} else if (om_pid_state(ends[k]) == OM_PID_ALIVE && ns_ino(ends[k], "ipc") == s->ipcns)
				outsider = ends[k];
		}
		if (n_users == 0)
			continue;
		if (outsider)
			return refuse(err,
				      "SysV message queue %d (key 0x%08x) is used by process %s, which is not in %s",
				      (int)row->id, (unsigned)row->key, om_shm_who(outsider, who, sizeof(who)), label);
		if (msgctl(row->id, IPC_STAT, &ds) < 0)
			return om_make_error(err, errno, "read SysV message queue %d", (int)row->id);
		q = malloc(sizeof(*q));
		if (q == NULL || APPEND(set->queues, set->n_queues, q) < 0) {
			free(q);
			return om_make_error(err, ENOMEM, "save message queues");
		}
		om__msg_queue__init(q);
		q->key = row->key;
		q->id = row->id;
		q->mode = ds.msg_perm.mode & 0777;
		q->uid = ds.msg_perm.uid;
		q->gid = ds.msg_perm.gid;
		q->has_qbytes = true;
		q->qbytes = ds.msg_qbytes;
		q->has_ctime = true;
		q->ctime = ds.msg_ctime;
		if (push_pids(&q->used_by, &q->n_used_by, users, n_users) < 0 || (buf = malloc(bufsz)) == NULL)
			return om_make_error(err, ENOMEM, "save message queues");
		for (msgqnum_t k = 0; k < ds.msg_qnum; k++) {
			ssize_t got = msgrcv(row->id, buf, bufsz - sizeof(long), (long)k, IPC_NOWAIT | MSG_COPY);
			Om__MsgEntry *e;
			if (got < 0)
				return om_make_error(err, errno, "read message %lu of SysV message queue %d%s",
						     (unsigned long)k, (int)row->id,
						     errno == ENOSYS ? " (the kernel lacks MSG_COPY)" : "");
			text += (size_t)got;
			if (q->n_msgs >= OM_MAX_MSGS || text > OM_MAX_MSG_BYTES)
				return refuse(
				    err,
				    "SysV message queue %d holds more than omtools carries (%u messages, %u bytes)",
				    (int)row->id, OM_MAX_MSGS, OM_MAX_MSG_BYTES);
			e = malloc(sizeof(*e));
			if (e == NULL || APPEND(q->msgs, q->n_msgs, e) < 0) {
				free(e);
				return om_make_error(err, ENOMEM, "save message queues");
			}
			om__msg_entry__init(e);
			memcpy(&e->mtype, buf, sizeof(long));
			e->text.len = (size_t)got;
			e->text.data = malloc(got ? (size_t)got : 1);
			if (e->text.data == NULL)
				return om_make_error(err, ENOMEM, "save message queues");
			memcpy(e->text.data, buf + sizeof(long), (size_t)got);
		}
	}
	return 0;
}

static int build_posix(struct scan *s, Om__ShmSet *set, int dirfd, const char *label, om_error_t *err)
{
	cleanup_close int shm_dir = -1;
	char who[96];
	int n = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct obj *o = &s->v[i];
		Om__PosixShm *p;

		if (o->kind != K_POSIX)
			continue;
		if (o->outsider)
			return refuse(err,
				      OM_DEV_SHM "/%s is also mapped or held open by process %s, which is not in %s",
				      o->name, om_shm_who(o->outsider, who, sizeof(who)), label);
		if (shm_dir < 0 && (shm_dir = open(OM_DEV_SHM, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			return om_make_error(err, errno, "open " OM_DEV_SHM);
		p = malloc(sizeof(*p));
		if (p == NULL || APPEND(set->posix, set->n_posix, p) < 0) {
			free(p);
			return om_make_error(err, ENOMEM, "save " OM_DEV_SHM);
		}
		om__posix_shm__init(p);
		if ((p->name = strdup(o->name)) == NULL || (p->file = om_strdup_printf("posix-%d", n++)) == NULL ||
		    push_pids(&p->used_by, &p->n_used_by, o->pids, o->n_pids) < 0)
			return om_make_error(err, ENOMEM, "save " OM_DEV_SHM);
		if (save_posix(p, o->ino, shm_dir, dirfd, err) < 0)
			return om_error_wrap(err, "save " OM_DEV_SHM "/%s", p->name);
		if (o->n_aliases) {
			p->restore_links = calloc(o->n_aliases, sizeof(*p->restore_links));
			if (p->restore_links == NULL)
				return om_make_error(err, ENOMEM, "save " OM_DEV_SHM);
		}
		/* CRIU opens a mapping by the name the kernel shows: a gone name
		 * gets a link to the file again for the time of the dump */
		for (size_t k = 0; k < o->n_aliases; k++) {
			struct stat sb;
			if ((p->restore_links[k] = strdup(o->aliases[k])) == NULL)
				return om_make_error(err, ENOMEM, "save " OM_DEV_SHM);
			p->n_restore_links++;
			if (linkat(shm_dir, p->name, shm_dir, o->aliases[k], 0) < 0 &&
			    !(errno == EEXIST && fstatat(shm_dir, o->aliases[k], &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			      sb.st_ino == o->ino))
				return om_make_error(err, errno, "link " OM_DEV_SHM "/%s to " OM_DEV_SHM "/%s for CRIU",
						     o->aliases[k], p->name);
		}
	}
	return 0;
}

static int check_anon(struct scan *s, const char *label, om_error_t *err)
{
	char a[96], b[96];

	for (size_t i = 0; i < s->n; i++) {
		const struct obj *o = &s->v[i];
		if (o->kind != K_ANON)
			continue;
		if (o->cross)
			return refuse(err,
				      "shared memory `%s` (inode %lu) is shared by process %s and process %s of "
				      "two different trees of %s: it would come back as two copies (run them as one "
				      "process tree)",
				      o->name, (unsigned long)o->ino, om_shm_who(o->first, a, sizeof(a)),
				      om_shm_who(o->cross, b, sizeof(b)), label);
		if (o->outsider)
			return refuse(err,
				      "shared memory `%s` (inode %lu) of process %s is also used by process %s, "
				      "which is not in %s: it would come back as two copies",
				      o->name, (unsigned long)o->ino, om_shm_who(o->first, a, sizeof(a)),
				      om_shm_who(o->outsider, b, sizeof(b)), label);
	}
	return 0;
}

struct om_shm_known {
	struct obj *v; /* kind, dev and ino only */
	size_t n;
};

void om_shm_known_free(struct om_shm_known *k)
{
	if (k) {
		free(k->v);
		free(k);
	}
}

/* Scan the members (their ids sorted into *sorted). */
static int scan_members(struct scan *s, const struct om_shm_member *members, size_t n, pid_t **sorted, om_error_t *err)
{
	struct stat sb;

	s->ipcns = ns_ino(0, "ipc");
	s->mntns = ns_ino(0, "mnt");
	if (stat(OM_DEV_SHM, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		s->shm_dev = sb.st_dev;
		s->have_shm_dev = true;
	}
	*sorted = malloc((n ? n : 1) * sizeof(**sorted));
	if (*sorted == NULL)
		return om_make_error(err, ENOMEM, "scan shared memory");
	for (size_t i = 0; i < n; i++)
		(*sorted)[i] = members[i].pid;
	om_pids_sort(*sorted, n);
	s->members = *sorted;
	s->n_members = n;
	for (size_t i = 0; i < n; i++)
		if (scan_one(s, members[i].pid, members[i].tree, true, err) < 0)
			return -1;
	return 0;
}

/* Segments and /dev/shm files used by an outside process: refused by name. */
static int refuse_outsiders(const struct scan *s, const char *label, om_error_t *err)
{
	cleanup_free struct om_ipc_row *rows = NULL;
	size_t n_rows = 0;
	char who[96];

	for (size_t i = 0; i < s->n; i++) {
		const struct obj *o = &s->v[i];
		const struct om_ipc_row *row;
		if (!o->outsider)
			continue;
		if (o->kind == K_POSIX)
			return refuse(err,
				      OM_DEV_SHM "/%s is also mapped or held open by process %s, which is not in %s",
				      o->name, om_shm_who(o->outsider, who, sizeof(who)), label);
		if (o->kind != K_SEG)
			continue;
		if (rows == NULL && om_ipc_rows("shm", &rows, &n_rows, err) < 0)
			return -1;
		row = om_ipc_find(rows, n_rows, (int32_t)o->ino);
		return refuse(
		    err,
		    "SysV shared memory segment %lu (key 0x%08x) is also attached by process %s, which is not in %s",
		    (unsigned long)o->ino, row ? (unsigned)row->key : 0u, om_shm_who(o->outsider, who, sizeof(who)),
		    label);
	}
	return 0;
}

int om_shm_check(const struct om_shm_member *members, size_t n, const char *label, struct om_shm_known **known,
		 om_error_t *err)
{
	struct scan s = {0};
	cleanup_free pid_t *sorted = NULL;
	struct om_shm_known *k = NULL;
	int ret = -1;

	*known = NULL;
	if (scan_members(&s, members, n, &sorted, err) < 0 || (s.n > 0 && scan_outsiders(&s, err) < 0) ||
	    check_anon(&s, label, err) < 0 || refuse_outsiders(&s, label, err) < 0)
		goto out;
	k = calloc(1, sizeof(*k));
	if (k == NULL || (s.n && (k->v = calloc(s.n, sizeof(*k->v))) == NULL)) {
		om_shm_known_free(k);
		om_make_error(err, ENOMEM, "scan shared memory");
		goto out;
	}
	for (size_t i = 0; i < s.n; i++)
		k->v[i] = (struct obj){.kind = s.v[i].kind, .dev = s.v[i].dev, .ino = s.v[i].ino};
	k->n = s.n;
	*known = k;
	ret = 0;
out:
	scan_release(&s);
	return ret;
}

/* Was every object the frozen members use there at the check? */
static bool all_known(const struct scan *s, const struct om_shm_known *k)
{
	if (k == NULL)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		bool found = false;
		for (size_t j = 0; j < k->n && !found; j++)
			found =
			    k->v[j].kind == s->v[i].kind && k->v[j].ino == s->v[i].ino && k->v[j].dev == s->v[i].dev;
		if (!found)
			return false;
	}
	return true;
}

int om_shm_save(const struct om_shm_member *members, size_t n, const struct om_shm_known *known, const char *label,
		const char *dir, Om__ShmSet **out, om_error_t *err)
{
	struct scan s = {0};
	cleanup_free pid_t *sorted = NULL;
	cleanup_close int dirfd = -1;
	Om__ShmSet *set = NULL;
	int ret = -1;

	*out = NULL;
	if (scan_members(&s, members, n, &sorted, err) < 0)
		goto out;
	/* processes outside the group are not frozen: what om_shm_check found of
	 * them holds as well now, unless the members use something new */
	if (s.n > 0 && !all_known(&s, known) && scan_outsiders(&s, err) < 0)
		goto out;
	if (check_anon(&s, label, err) < 0)
		goto out;

	set = malloc(sizeof(*set));
	if (set == NULL) {
		om_make_error(err, ENOMEM, "save shared memory");
		goto out;
	}
	om__shm_set__init(set);
	if ((set->dir = strdup(OM_SHM_DIR)) == NULL) {
		om_make_error(err, ENOMEM, "save shared memory");
		goto out;
	}
	if (om_mkdir_p(dir, 0700, err) < 0)
		goto out;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		om_make_error(err, errno, "open `%s`", dir);
		goto out;
	}
	if (build_segments(&s, set, dirfd, label, err) < 0 || build_sems(&s, set, label, err) < 0 ||
	    build_queues(&s, set, label, err) < 0 || build_posix(&s, set, dirfd, label, err) < 0)
		goto out;
	if (set->n_segments + set->n_sems + set->n_queues + set->n_posix > 0) {
		*out = set;
		set = NULL;
	}
	ret = 0;
out:
	om_shm_set_free_built(set);
	scan_release(&s);
	return ret;
}

pid_t om_shm_file_user(dev_t dev, ino_t ino, const pid_t *skip, size_t n_skip)
{
	struct obj o = {.kind = K_POSIX, .dev = dev, .ino = ino};
	struct scan s = {.v = &o, .n = 1, .shm_dev = dev, .have_shm_dev = true, .members = skip, .n_members = n_skip};
	om_error_t err = NULL;

	s.ipcns = ns_ino(0, "ipc");
	s.mntns = ns_ino(0, "mnt");
	if (scan_outsiders(&s, &err) < 0)
		om_error_release(&err);
	return o.outsider;
}

void om_shm_drop_links(const Om__ShmSet *set)
{
	for (size_t i = 0; set && i < set->n_posix; i++) {
		const Om__PosixShm *p = set->posix[i];
		for (size_t k = 0; k < p->n_restore_links; k++) {
			cleanup_free char *path = om_strdup_printf(OM_DEV_SHM "/%s", p->restore_links[k]);
			struct stat sb;
			if (path && lstat(path, &sb) == 0 && sb.st_ino == p->ino)
				unlink(path);
		}
	}
}

bool om_shm_has_segments(const Om__ShmSet *set)
{
	return set && set->n_segments > 0;
}

int om_shm_remove(const Om__ShmSet *set, om_error_t *err)
{
	cleanup_free struct om_ipc_row *shm = NULL, *sem = NULL, *msg = NULL;
	size_t n_shm = 0, n_sem = 0, n_msg = 0;
	int ret = 0;

	if (set == NULL)
		return 0;
	if (om_ipc_rows("shm", &shm, &n_shm, err) < 0 || om_ipc_rows("sem", &sem, &n_sem, err) < 0 ||
	    om_ipc_rows("msg", &msg, &n_msg, err) < 0)
		return -1;
	for (size_t i = 0; i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		const struct om_ipc_row *r = om_ipc_find(shm, n_shm, g->id);
		if (r && r->ctime == g->ctime && r->size == g->size && shmctl(g->id, IPC_RMID, NULL) < 0 && ret == 0)
			ret = om_make_error(err, errno, "remove SysV segment %d", (int)g->id);
	}
	for (size_t i = 0; i < set->n_sems; i++) {
		const Om__SemSet *e = set->sems[i];
		const struct om_ipc_row *r = om_ipc_find(sem, n_sem, e->id);
		if (r && r->key == e->key && r->ctime == e->ctime && semctl(e->id, 0, IPC_RMID) < 0 && ret == 0)
			ret = om_make_error(err, errno, "remove SysV semaphore set %d", (int)e->id);
	}
	for (size_t i = 0; i < set->n_queues; i++) {
		const Om__MsgQueue *q = set->queues[i];
		const struct om_ipc_row *r = om_ipc_find(msg, n_msg, q->id);
		if (r && r->key == q->key && r->ctime == q->ctime && msgctl(q->id, IPC_RMID, NULL) < 0 && ret == 0)
			ret = om_make_error(err, errno, "remove SysV message queue %d", (int)q->id);
	}
	for (size_t i = 0; i < set->n_posix; i++) {
		const Om__PosixShm *p = set->posix[i];
		cleanup_free char *path = om_strdup_printf(OM_DEV_SHM "/%s", p->name);
		struct stat sb;
		if (path && lstat(path, &sb) == 0 && sb.st_ino == p->ino && unlink(path) < 0 && ret == 0)
			ret = om_make_error(err, errno, "remove %s", path);
	}
	return ret;
}
