/* shmig/recreate.c — put a group's shared memory back before its processes. */
#define _GNU_SOURCE
#include "config.h"
#include "internal.h"
#include "shmig.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

union om_semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

enum undo_kind { U_SEG, U_SEM, U_MSG, U_POSIX };

struct undo_item {
	enum undo_kind kind;
	int id;
	char *path;
};

struct om_shm_undo {
	struct undo_item *v;
	size_t n;
};

static int undo_push(struct om_shm_undo *u, enum undo_kind kind, int id, const char *path)
{
	struct undo_item *v = realloc(u->v, (u->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	u->v = v;
	v[u->n] = (struct undo_item){.kind = kind, .id = id, .path = path ? strdup(path) : NULL};
	if (path && v[u->n].path == NULL)
		return -1;
	u->n++;
	return 0;
}

static void undo_free(struct om_shm_undo *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < u->n; i++)
		free(u->v[i].path);
	free(u->v);
	free(u);
}

void om_shm_undo(struct om_shm_undo *u)
{
	if (u == NULL)
		return;
	for (size_t i = u->n; i-- > 0;) {
		const struct undo_item *it = &u->v[i];
		switch (it->kind) {
		case U_SEG:
			shmctl(it->id, IPC_RMID, NULL);
			break;
		case U_SEM:
			semctl(it->id, 0, IPC_RMID);
			break;
		case U_MSG:
			msgctl(it->id, IPC_RMID, NULL);
			break;
		case U_POSIX:
			unlink(it->path);
			break;
		}
	}
	undo_free(u);
}

/* Taken on this node: exit 6, like a taken PID. */
#define busy(err, ...) (om_make_error((err), EBUSY, __VA_ARGS__), om_error_set_exit((err), OM_EXIT_BUSY))

/* Ask the kernel for this id at the next creation (as CRIU does in an IPC namespace). */
static int next_id(const char *what, int id, om_error_t *err)
{
	char path[64], val[24];

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", what);
	snprintf(val, sizeof(val), "%d", id);
	return om_write_knob(path, val, err);
}

static const struct om_ipc_row *find_key(const struct om_ipc_row *rows, size_t n, int32_t key)
{
	for (size_t i = 0; key != IPC_PRIVATE && i < n; i++)
		if (rows[i].key == key)
			return &rows[i];
	return NULL;
}

static int rm_shm(int id)
{
	return shmctl(id, IPC_RMID, NULL);
}

static int rm_sem(int id)
{
	return semctl(id, 0, IPC_RMID);
}

static int rm_msg(int id)
{
	return msgctl(id, IPC_RMID, NULL);
}

/* One kind of SysV object, for make_way. */
struct ipc_kind {
	const char *what;  /* "SysV semaphore set" */
	const char *ipcrm; /* its ipcrm option */
	int (*remove)(int id);
};

static const struct ipc_kind kind_shm = {"SysV shared memory segment", "-m", rm_shm};
static const struct ipc_kind kind_sem = {"SysV semaphore set", "-s", rm_sem};
static const struct ipc_kind kind_msg = {"SysV message queue", "-q", rm_msg};

/* Make way for a saved object with this id and key (by_key false: the id
 * only). An object of the node with either is removed when it is the group's
 * own leftover (leftover(row, saved)): the generation's contents win. Any
 * other makes the restore busy (exit 6); *conflict then points at its row. */
static int make_way(const struct ipc_kind *k, const struct om_ipc_row *rows, size_t n, int32_t id, int32_t key,
		    bool by_key, bool (*leftover)(const struct om_ipc_row *row, const void *saved), const void *saved,
		    const struct om_ipc_row **conflict, om_error_t *err)
{
	const struct om_ipc_row *found[2] = {om_ipc_find(rows, n, id), by_key ? find_key(rows, n, key) : NULL};

	for (int i = 0; i < 2; i++) {
		const struct om_ipc_row *row = found[i];
		if (row == NULL || (i == 1 && row == found[0]))
			continue;
		if (leftover(row, saved)) {
			if (k->remove(row->id) < 0 && errno != EINVAL && errno != EIDRM)
				return om_make_error(err, errno, "remove the leftover %s %d", k->what, (int)row->id);
			continue;
		}
		*conflict = row;
		return busy(err,
			    "%s %d (key 0x%08x) cannot be recreated: %s %d (key 0x%08x) exists on this node and is not "
			    "the group's (ipcrm %s %d removes it)",
			    k->what, (int)id, (unsigned)key, k->what, (int)row->id, (unsigned)row->key, k->ipcrm,
			    (int)row->id);
	}
	return 0;
}

static bool segment_leftover(const struct om_ipc_row *row, const void *saved)
{
	const Om__ShmSegment *g = saved;
	return row->id == g->id && row->ctime == g->ctime && row->size == g->size && row->nattch == 0;
}

static bool sem_leftover(const struct om_ipc_row *row, const void *saved)
{
	const Om__SemSet *e = saved;
	return row->id == e->id && row->key == e->key && row->ctime == e->ctime && row->size == e->n_values;
}

static bool queue_leftover(const struct om_ipc_row *row, const void *saved)
{
	const Om__MsgQueue *q = saved;
	return row->id == q->id && row->key == q->key && row->ctime == q->ctime;
}

/* Feed the contents file to fn(arg, buf, len, off) in chunks. */
static int read_contents(const char *dir, const char *file, uint64_t size,
			 int (*fn)(void *arg, const char *buf, size_t len, uint64_t off), void *arg, om_error_t *err)
{
	cleanup_free char *path = om_strdup_printf("%s/%s", dir, file);
	cleanup_free char *buf = malloc(1 << 20);
	cleanup_close int fd = -1;
	uint64_t off = 0;

	if (path == NULL || buf == NULL)
		return om_make_error(err, ENOMEM, "restore shared memory");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return om_make_error(err, errno, "open `%s`", path);
	while (off < size) {
		size_t want = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
		ssize_t got = pread(fd, buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return om_make_error(err, errno, "read `%s`", path);
		if (got == 0)
			return om_make_error(err, OM_ECORRUPT, "`%s` is shorter than %llu bytes", path,
					     (unsigned long long)size);
		if (fn(arg, buf, (size_t)got, off) < 0)
			return om_make_error(err, errno, "restore the contents of `%s`", path);
		off += (uint64_t)got;
	}
	return 0;
}

/* Into the new (zero) segment: the runs of data only, their pages allocated
 * in one call each. */
static int to_memory(void *arg, const char *buf, size_t len, uint64_t off)
{
	char *base = arg;

	for (size_t i = om_shm_run(buf, 0, len, true); i < len;) {
		size_t end = om_shm_run(buf, i, len, false);
		(void)madvise(base + off + i, end - i, MADV_POPULATE_WRITE);
		memcpy(base + off + i, buf + i, end - i);
		i = om_shm_run(buf, end, len, true);
	}
	return 0;
}

static int to_file(void *arg, const char *buf, size_t len, uint64_t off)
{
	return om_shm_pwrite_sparse(*(int *)arg, buf, len, off);
}

static int recreate_segment(const Om__ShmSegment *g, const struct om_ipc_row *rows, size_t n_rows, const char *dir,
			    struct om_shm_undo *u, om_error_t *err)
{
	const struct om_ipc_row *conflict = NULL;
	struct shmid_ds ds;
	void *addr;
	int id, r;

	if (make_way(&kind_shm, rows, n_rows, g->id, g->key, !g->removed, segment_leftover, g, &conflict, err) < 0) {
		if (conflict)
			om_error_append(err, "it has %llu bytes and is attached %llu times",
					(unsigned long long)conflict->size, (unsigned long long)conflict->nattch);
		return -1;
	}
	if (next_id("shm", g->id, err) < 0)
		return -1;
	id = shmget(g->removed ? IPC_PRIVATE : g->key, (size_t)g->size, IPC_CREAT | IPC_EXCL | (int)(g->mode & 0777));
	if (id < 0) {
		if (errno == EEXIST)
			return busy(err, "SysV segment key 0x%08x was taken meanwhile", (unsigned)g->key);
		return om_make_error(err, errno, "create SysV segment %d (key 0x%08x, %llu bytes)", (int)g->id,
				     (unsigned)g->key, (unsigned long long)g->size);
	}
	if (undo_push(u, U_SEG, id, NULL) < 0) {
		shmctl(id, IPC_RMID, NULL);
		return om_make_error(err, ENOMEM, "restore shared memory");
	}
	if (id != g->id)
		return busy(err, "SysV segment id %d is taken on this node (the kernel gave %d)", (int)g->id, id);
	addr = shmat(id, NULL, 0);
	if (addr == (void *)-1)
		return om_make_error(err, errno, "attach SysV segment %d", id);
	r = read_contents(dir, g->file, g->size, to_memory, addr, err);
	shmdt(addr);
	if (r < 0)
		return -1;
	memset(&ds, 0, sizeof(ds));
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return om_make_error(err, errno, "stat SysV segment %d", id);
	ds.shm_perm.uid = g->uid;
	ds.shm_perm.gid = g->gid;
	ds.shm_perm.mode = g->mode & 0777;
	if (shmctl(id, IPC_SET, &ds) < 0)
		return om_make_error(err, errno, "set the owner of SysV segment %d", id);
	return 0;
}

static int recreate_sem(const Om__SemSet *e, const struct om_ipc_row *rows, size_t n_rows, struct om_shm_undo *u,
			om_error_t *err)
{
	const struct om_ipc_row *conflict = NULL;
	cleanup_free unsigned short *vals = NULL;
	struct semid_ds ds;
	int id;

	if (make_way(&kind_sem, rows, n_rows, e->id, e->key, true, sem_leftover, e, &conflict, err) < 0)
		return -1;
	if (next_id("sem", e->id, err) < 0)
		return -1;
	id = semget(e->key, (int)e->n_values, IPC_CREAT | IPC_EXCL | (int)(e->mode & 0777));
	if (id < 0)
		return errno == EEXIST ? busy(err, "SysV semaphore key 0x%08x was taken meanwhile", (unsigned)e->key)
				       : om_make_error(err, errno, "create SysV semaphore set %d", (int)e->id);
	if (undo_push(u, U_SEM, id, NULL) < 0) {
		semctl(id, 0, IPC_RMID);
		return om_make_error(err, ENOMEM, "restore shared memory");
	}
	if (id != e->id)
		return busy(err, "SysV semaphore set id %d is taken on this node (the kernel gave %d)", (int)e->id, id);
	vals = calloc(e->n_values, sizeof(*vals));
	if (vals == NULL)
		return om_make_error(err, ENOMEM, "restore shared memory");
	for (size_t k = 0; k < e->n_values; k++)
		vals[k] = (unsigned short)e->values[k];
	if (semctl(id, 0, SETALL, (union om_semun){.array = vals}) < 0)
		return om_make_error(err, errno, "set the values of SysV semaphore set %d", id);
	if (semctl(id, 0, IPC_STAT, (union om_semun){.buf = &ds}) < 0)
		return om_make_error(err, errno, "stat SysV semaphore set %d", id);
	ds.sem_perm.uid = e->uid;
	ds.sem_perm.gid = e->gid;
	ds.sem_perm.mode = e->mode & 0777;
	if (semctl(id, 0, IPC_SET, (union om_semun){.buf = &ds}) < 0)
		return om_make_error(err, errno, "set the owner of SysV semaphore set %d", id);
	return 0;
}

static int recreate_queue(const Om__MsgQueue *q, const struct om_ipc_row *rows, size_t n_rows, struct om_shm_undo *u,
			  om_error_t *err)
{
	const struct om_ipc_row *conflict = NULL;
	cleanup_free char *buf = NULL;
	struct msqid_ds ds;
	size_t total = 0, max = 0;
	int id;

	if (make_way(&kind_msg, rows, n_rows, q->id, q->key, true, queue_leftover, q, &conflict, err) < 0)
		return -1;
	if (next_id("msg", q->id, err) < 0)
		return -1;
	id = msgget(q->key, IPC_CREAT | IPC_EXCL | (int)(q->mode & 0777));
	if (id < 0)
		return errno == EEXIST
			   ? busy(err, "SysV message queue key 0x%08x was taken meanwhile", (unsigned)q->key)
			   : om_make_error(err, errno, "create SysV message queue %d", (int)q->id);
	if (undo_push(u, U_MSG, id, NULL) < 0) {
		msgctl(id, IPC_RMID, NULL);
		return om_make_error(err, ENOMEM, "restore shared memory");
	}
	if (id != q->id)
		return busy(err, "SysV message queue id %d is taken on this node (the kernel gave %d)", (int)q->id, id);
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return om_make_error(err, errno, "stat SysV message queue %d", id);
	for (size_t k = 0; k < q->n_msgs; k++) {
		total += q->msgs[k]->text.len;
		if (q->msgs[k]->text.len > max)
			max = q->msgs[k]->text.len;
	}
	if (q->has_qbytes && q->qbytes != ds.msg_qbytes) {
		unsigned long old = ds.msg_qbytes;
		ds.msg_qbytes = q->qbytes;
		if (msgctl(id, IPC_SET, &ds) < 0) { /* raising it needs CAP_SYS_RESOURCE */
			ds.msg_qbytes = old;
			if (total > old)
				return om_make_error(err, errno,
						     "SysV message queue %d held %llu bytes (limit %llu): "
						     "this node allows %lu",
						     id, (unsigned long long)total, (unsigned long long)q->qbytes, old);
		}
	}
	buf = malloc(sizeof(long) + (max ? max : 1));
	if (buf == NULL)
		return om_make_error(err, ENOMEM, "restore shared memory");
	for (size_t k = 0; k < q->n_msgs; k++) {
		const Om__MsgEntry *m = q->msgs[k];
		long type = (long)m->mtype;
		memcpy(buf, &type, sizeof(type));
		if (m->text.len)
			memcpy(buf + sizeof(long), m->text.data, m->text.len);
		while (msgsnd(id, buf, m->text.len, IPC_NOWAIT) < 0)
			if (errno != EINTR)
				return om_make_error(err, errno, "put message %zu back into SysV message queue %d", k,
						     id);
	}
	ds.msg_perm.uid = q->uid;
	ds.msg_perm.gid = q->gid;
	ds.msg_perm.mode = q->mode & 0777;
	if (msgctl(id, IPC_SET, &ds) < 0)
		return om_make_error(err, errno, "set the owner of SysV message queue %d", id);
	return 0;
}

static int recreate_posix(const Om__PosixShm *p, const char *dir, bool same_node, struct om_shm_undo *u,
			  om_error_t *err)
{
	cleanup_free char *path = om_strdup_printf(OM_DEV_SHM "/%s", p->name);
	cleanup_close int fd = -1;
	struct stat sb;
	char who[96];

	if (path == NULL)
		return om_make_error(err, ENOMEM, "restore shared memory");
	if (lstat(path, &sb) == 0) {
		pid_t user = S_ISREG(sb.st_mode) ? om_shm_file_user(sb.st_dev, sb.st_ino, NULL, 0) : 0;
		if (!same_node || !p->has_ino || sb.st_ino != p->ino || !S_ISREG(sb.st_mode) || user)
			return busy(err,
				    "%s exists on this node and is not the group's leftover%s%s (remove it, or restore "
				    "elsewhere)",
				    path, user ? ": process " : "", user ? om_shm_who(user, who, sizeof(who)) : "");
		if (unlink(path) < 0 && errno != ENOENT)
			return om_make_error(err, errno, "remove the leftover %s", path);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? busy(err, "%s was created meanwhile", path)
				       : om_make_error(err, errno, "create %s", path);
	if (undo_push(u, U_POSIX, 0, path) < 0) {
		unlink(path);
		return om_make_error(err, ENOMEM, "restore shared memory");
	}
	if (read_contents(dir, p->file, p->size, to_file, &fd, err) < 0)
		return om_error_wrap(err, "restore %s", path);
	if (ftruncate(fd, (off_t)p->size) < 0 || fchown(fd, p->uid, p->gid) < 0 || fchmod(fd, p->mode & 07777) < 0)
		return om_make_error(err, errno, "restore %s", path);
	/* the gone names members map it by: CRIU opens the mappings there;
	 * om_shm_finish removes them again */
	for (size_t k = 0; k < p->n_restore_links; k++) {
		cleanup_free char *alias = om_strdup_printf(OM_DEV_SHM "/%s", p->restore_links[k]);
		if (alias == NULL)
			return om_make_error(err, ENOMEM, "restore shared memory");
		if (lstat(alias, &sb) == 0) {
			if (!same_node || sb.st_ino != p->ino || om_shm_file_user(sb.st_dev, sb.st_ino, NULL, 0))
				return busy(err, "%s exists on this node and is not the group's leftover", alias);
			unlink(alias);
		}
		if (link(path, alias) < 0)
			return om_make_error(err, errno, "link %s to %s", alias, path);
		if (undo_push(u, U_POSIX, 0, alias) < 0) {
			unlink(alias);
			return om_make_error(err, ENOMEM, "restore shared memory");
		}
	}
	return 0;
}

int om_shm_recreate(const Om__ShmSet *set, const char *dir, bool same_node, struct om_shm_undo **undo, om_error_t *err)
{
	cleanup_free struct om_ipc_row *shm = NULL, *sem = NULL, *msg = NULL;
	size_t n_shm = 0, n_sem = 0, n_msg = 0;
	struct om_shm_undo *u;

	*undo = NULL;
	if (set == NULL)
		return 0;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return om_make_error(err, ENOMEM, "restore shared memory");
	if (om_ipc_rows("shm", &shm, &n_shm, err) < 0 || om_ipc_rows("sem", &sem, &n_sem, err) < 0 ||
	    om_ipc_rows("msg", &msg, &n_msg, err) < 0)
		goto fail;
	for (size_t i = 0; i < set->n_segments; i++)
		if (recreate_segment(set->segments[i], shm, n_shm, dir, u, err) < 0)
			goto fail;
	for (size_t i = 0; i < set->n_sems; i++)
		if (recreate_sem(set->sems[i], sem, n_sem, u, err) < 0)
			goto fail;
	for (size_t i = 0; i < set->n_queues; i++)
		if (recreate_queue(set->queues[i], msg, n_msg, u, err) < 0)
			goto fail;
	for (size_t i = 0; i < set->n_posix; i++)
		if (recreate_posix(set->posix[i], dir, same_node, u, err) < 0)
			goto fail;
	*undo = u;
	return 0;
fail:
	om_shm_undo(u);
	return om_error_wrap(err, "recreate the group's shared memory");
}

int om_shm_finish(const Om__ShmSet *set, struct om_shm_undo *undo, om_error_t *err)
{
	int ret = 0;

	for (size_t i = 0; set && i < set->n_posix; i++)
		for (size_t k = 0; k < set->posix[i]->n_restore_links; k++) {
			cleanup_free char *alias = om_strdup_printf(OM_DEV_SHM "/%s", set->posix[i]->restore_links[k]);
			if (alias && unlink(alias) < 0 && errno != ENOENT && ret == 0)
				ret = om_make_error(err, errno, "remove %s", alias);
		}

	for (size_t i = 0; set && i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		if (g->removed && shmctl(g->id, IPC_RMID, NULL) < 0 && ret == 0)
			ret = om_make_error(err, errno, "remove SysV segment %d again", (int)g->id);
	}
	undo_free(undo);
	return ret;
}
