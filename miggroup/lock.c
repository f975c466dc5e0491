#include "config.h"
#include "lock.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define HDR_LEN 16u /* magic (8) + version (4) + payload length (4) */

void om_group_lock_name(unsigned long id, char *out, size_t size)
{
	snprintf(out, size, "group-%lu", id);
}

void om_pid_lock_name(pid_t pid, char *out, size_t size)
{
	snprintf(out, size, "pid-%d", (int)pid);
}

static int lock_and_recover(const struct om_cg *cg, const char *name, const struct om_bound *wait, int *fd,
			    om_error_t *err)
{
	if (om_node_lock_wait(name, wait, fd, err) < 0)
		return -1;
	if (om_intent_recover(cg, name, err) < 0) {
		close(*fd);
		*fd = -1;
		return -1;
	}
	return 0;
}

int om_group_lock(const struct om_cg *cg, unsigned long id, const struct om_bound *wait, int *fd, om_error_t *err)
{
	char name[64];

	om_group_lock_name(id, name, sizeof(name));
	if (lock_and_recover(cg, name, wait, fd, err) < 0) {
		if ((*err)->status == EWOULDBLOCK)
			return om_error_wrap(err, "miggroup %lu is busy", id);
		return om_error_wrap(err, "miggroup %lu", id);
	}
	return 0;
}

int om_pid_lock(const struct om_cg *cg, pid_t pid, const struct om_bound *wait, int *fd, om_error_t *err)
{
	char name[64];

	om_pid_lock_name(pid, name, sizeof(name));
	if (lock_and_recover(cg, name, wait, fd, err) < 0) {
		if ((*err)->status == EWOULDBLOCK)
			return om_error_wrap(err, "process %d is busy", (int)pid);
		return om_error_wrap(err, "process %d", (int)pid);
	}
	return 0;
}

int om_lock_name_of(const struct om_cg *cg, pid_t pid, unsigned long except, char *name, size_t size)
{
	char rel[PATH_MAX];
	unsigned long g;
	pid_t owner;
	om_error_t tmp = NULL;

	if (om_cg_proc_path(cg, pid, rel, &tmp) < 0) {
		om_error_release(&tmp); /* no such process: the caller says so */
		return 0;
	}
	if (sscanf(rel, "/omtools/g%lu", &g) == 1) {
		if (g == except)
			return 0;
		om_group_lock_name(g, name, size);
		return 1;
	}
	if (sscanf(rel, "/omtools/p%d", &owner) == 1) {
		om_pid_lock_name(owner, name, size);
		return 1;
	}
	return 0;
}

int om_lock_named(const struct om_cg *cg, const char *name, const struct om_bound *wait, int *fd, om_error_t *err)
{
	unsigned long id;
	int pid;

	if (sscanf(name, "group-%lu", &id) == 1)
		return om_group_lock(cg, id, wait, fd, err);
	if (sscanf(name, "pid-%d", &pid) == 1)
		return om_pid_lock(cg, (pid_t)pid, wait, fd, err);
	return om_make_error(err, EINVAL, "no lock named `%s`", name);
}

int om_locks_take_sources(const struct om_cg *cg, pid_t pid, unsigned long except, const struct om_bound *wait,
			  struct om_locks *h, om_error_t *err)
{
	cleanup_free pid_t *desc = NULL;
	size_t nd = 0;
	om_error_t tmp = NULL;

	if (om_proc_descendants(pid, &desc, &nd, &tmp) < 0) {
		om_error_release(&tmp); /* no such process: the join says so */
		return 0;
	}
	for (size_t i = 0; i < nd; i++) {
		char name[64];
		bool have = false;
		int fd = -1, *nfd;
		char(*nname)[64];

		if (om_lock_name_of(cg, desc[i], except, name, sizeof(name)) != 1)
			continue;
		for (size_t k = 0; k < h->n && !have; k++)
			have = strcmp(h->name[k], name) == 0;
		if (have)
			continue;
		if (om_lock_named(cg, name, wait, &fd, err) < 0)
			return -1;
		nfd = realloc(h->fd, (h->n + 1) * sizeof(*nfd));
		if (nfd)
			h->fd = nfd;
		nname = realloc(h->name, (h->n + 1) * sizeof(*nname));
		if (nname)
			h->name = nname;
		if (nfd == NULL || nname == NULL) {
			close(fd);
			return om_make_error(err, ENOMEM, "lock");
		}
		h->fd[h->n] = fd;
		snprintf(h->name[h->n], sizeof(h->name[h->n]), "%s", name);
		h->n++;
	}
	return 0;
}

void om_locks_release(struct om_locks *h)
{
	for (size_t i = 0; i < h->n; i++)
		close(h->fd[i]);
	free(h->fd);
	free(h->name);
	h->fd = NULL;
	h->name = NULL;
	h->n = 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int om_intent_encode(const Om__Intent *in, uint8_t **buf, size_t *len, om_error_t *err)
{
	size_t n = om__intent__get_packed_size(in);
	uint8_t *out;

	*buf = NULL;
	*len = 0;
	if (n > OM_INTENT_MAX)
		return om_make_error(err, EFBIG, "intent: %zu bytes, more than %u", n, OM_INTENT_MAX);
	out = malloc(HDR_LEN + n);
	if (out == NULL)
		return om_make_error(err, ENOMEM, "intent");
	memcpy(out, OM_INTENT_MAGIC, 8);
	put_le32(out + 8, OM_INTENT_VERSION);
	put_le32(out + 12, (uint32_t)n);
	om__intent__pack(in, out + HDR_LEN);
	*buf = out;
	*len = HDR_LEN + n;
	return 0;
}

static bool abs_path_ok(const char *s)
{
	return s && s[0] == '/' && strlen(s) < PATH_MAX && strstr(s, "/../") == NULL;
}

int om_intent_decode(const uint8_t *buf, size_t len, Om__Intent **out, om_error_t *err)
{
	Om__Intent *in;
	uint32_t n;

	*out = NULL;
	if (len < HDR_LEN)
		return om_make_error(err, OM_ECORRUPT, "intent: truncated header (%zu bytes)", len);
	if (memcmp(buf, OM_INTENT_MAGIC, 8) != 0)
		return om_make_error(err, OM_ECORRUPT, "not an omtools intent (bad magic)");
	if (get_le32(buf + 8) != OM_INTENT_VERSION)
		return om_make_error(err, OM_ECORRUPT, "intent: format version %u, this omtools reads %u",
				     get_le32(buf + 8), OM_INTENT_VERSION);
	n = get_le32(buf + 12);
	if (n > OM_INTENT_MAX || n != len - HDR_LEN)
		return om_make_error(err, OM_ECORRUPT, "intent: payload length %u, file holds %zu", n, len - HDR_LEN);
	in = om__intent__unpack(NULL, n, buf + HDR_LEN);
	if (in == NULL)
		return om_make_error(err, OM_ECORRUPT, "intent: payload does not parse");
	if ((strcmp(in->kind, "groups") && strcmp(in->kind, "pids")) || in->id == 0 || in->id > INT32_MAX ||
	    !abs_path_ok(in->tmp_dir) || !abs_path_ok(in->id_dir) || (in->tmp_leaf && in->n_leaves == 0)) {
		om__intent__free_unpacked(in, NULL);
		return om_make_error(err, OM_ECORRUPT, "intent: bad kind, id or path");
	}
	for (size_t i = 0; i < in->n_leaves; i++)
		if (!abs_path_ok(in->leaves[i])) {
			om__intent__free_unpacked(in, NULL);
			return om_make_error(err, OM_ECORRUPT, "intent: bad leaf path");
		}
	for (size_t i = 0; i < in->n_procs; i++)
		if (in->procs[i]->pid <= 0) {
			om__intent__free_unpacked(in, NULL);
			return om_make_error(err, OM_ECORRUPT, "intent: bad PID %d", (int)in->procs[i]->pid);
		}
	*out = in;
	return 0;
}

void om_intent_free(Om__Intent *in)
{
	if (in)
		om__intent__free_unpacked(in, NULL);
}

static char *intent_path(const char *name)
{
	return om_strdup_printf("%s/intent-%s.om", om_rundir(), name);
}

int om_intent_write(const char *name, const Om__Intent *in, om_error_t *err)
{
	cleanup_free char *path = intent_path(name);
	cleanup_free char *tmp = NULL;
	cleanup_free uint8_t *buf = NULL;
	cleanup_close int fd = -1;
	size_t len = 0;

	if (path == NULL || (tmp = om_strdup_printf("%s.tmp", path)) == NULL)
		return om_make_error(err, ENOMEM, "write intent");
	if (om_intent_encode(in, &buf, &len, err) < 0 || om_mkdir_p(om_rundir(), 0700, err) < 0)
		return om_error_wrap(err, "write intent `%s`", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return om_make_error(err, errno, "write intent `%s`", tmp);
	if (om_write_all(fd, buf, len) < 0 || fsync(fd) < 0)
		return om_make_error(err, errno, "write intent `%s`", tmp);
	if (rename(tmp, path) < 0)
		return om_make_error(err, errno, "rename `%s` to `%s`", tmp, path);
	return om_fsync_dir_at(AT_FDCWD, om_rundir(), err);
}

int om_intent_remove(const char *name, om_error_t *err)
{
	cleanup_free char *path = intent_path(name);

	if (path == NULL)
		return om_make_error(err, ENOMEM, "remove intent");
	if (unlink(path) < 0 && errno != ENOENT)
		return om_make_error(err, errno, "remove `%s`", path);
	return 0;
}

static void thaw_leaves(const struct om_cg *cg, const Om__Intent *in)
{
	for (size_t i = 0; i < in->n_leaves; i++) {
		om_error_t tmp = NULL;
		if (om_cg_thaw(cg, in->leaves[i], &tmp) < 0)
			om_error_release(&tmp); /* a leaf already gone */
	}
}

static void remove_tmp_leaf(const Om__Intent *in)
{
	for (int i = 0; in->tmp_leaf && i < 100 && rmdir(in->leaves[0]) < 0 && errno == EBUSY; i++)
		om_sleep_ms(10);
}

/* The generation was published: the recorded processes must never run again. */
static int finish_kill(const struct om_cg *cg, const Om__Intent *in, om_error_t *err)
{
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	pid_t stuck;

	for (size_t i = 0; i < in->n_procs; i++) {
		struct om_proc p;
		om_error_t tmp = NULL;

		if (om_proc_read(in->procs[i]->pid, &p, false, &tmp) < 0) {
			om_error_release(&tmp); /* gone already */
			continue;
		}
		om_proc_release(&p);
		if (p.starttime != in->procs[i]->start_time)
			continue; /* the PID was reused */
		kill(p.pid, SIGKILL);
		if (om_pids_push(&pids, &n, p.pid) < 0)
			return om_make_error(err, ENOMEM, "recover");
	}
	thaw_leaves(cg, in); /* the v1 freezer keeps killed tasks until thawed */
	if ((stuck = om_pids_wait_gone(pids, n, 10)) != 0)
		return om_make_error(err, ETIMEDOUT, "process %d did not exit after SIGKILL", (int)stuck);
	remove_tmp_leaf(in);
	return 0;
}

/* Not published: the checkpoint failed; the processes carry on. */
static void finish_thaw(const struct om_cg *cg, const Om__Intent *in)
{
	thaw_leaves(cg, in);
	if (in->tmp_leaf) {
		cleanup_free pid_t *left = NULL;
		size_t n = 0;
		om_error_t tmp = NULL;

		if (om_cg_procs(in->leaves[0], &left, &n, &tmp) < 0)
			om_error_release(&tmp);
		for (size_t i = 0; i < n; i++)
			if (om_cg_move_out(cg, left[i], &tmp) < 0)
				om_error_release(&tmp);
		remove_tmp_leaf(in);
	}
}

int om_intent_recover(const struct om_cg *cg, const char *name, om_error_t *err)
{
	cleanup_free char *path = intent_path(name);
	cleanup_free char *buf = NULL;
	Om__Intent *in = NULL;
	struct stat sb;
	size_t len = 0;
	bool published;
	om_error_t tmp = NULL;

	if (path == NULL)
		return om_make_error(err, ENOMEM, "recover");
	if (om_read_file_at(AT_FDCWD, path, &buf, &len, OM_INTENT_MAX + HDR_LEN, &tmp) < 0) {
		if (tmp->status == ENOENT) {
			om_error_release(&tmp);
			return 0;
		}
		*err = tmp;
		return om_error_wrap(err, "read the intent of an interrupted checkpoint");
	}
	if (om_intent_decode((const uint8_t *)buf, len, &in, err) < 0)
		return om_error_wrap(err,
				     "`%s` (left by an interrupted checkpoint; remove it once the group is "
				     "known to run nowhere else)",
				     path);
	if (stat(in->tmp_dir, &sb) == 0)
		published = false;
	else if (errno == ENOENT && stat(in->id_dir, &sb) == 0)
		published = true; /* renamed to gen-<N> */
	else {
		om_make_error(err, errno,
			      "omckpt %d was interrupted while publishing a generation of %s %llu and `%s` cannot be "
			      "read to tell whether it was published: the processes stay frozen",
			      (int)in->omckpt_pid, strcmp(in->kind, "groups") ? "PID" : "miggroup",
			      (unsigned long long)in->id, in->id_dir);
		om_intent_free(in);
		return -1;
	}
	if (published) {
		int writer = (int)in->omckpt_pid;
		if (finish_kill(cg, in, err) < 0) {
			om_intent_free(in);
			return om_error_wrap(err, "stop the processes of a generation omckpt %d published", writer);
		}
	} else
		finish_thaw(cg, in);
	om_intent_free(in);
	return om_intent_remove(name, err);
}
