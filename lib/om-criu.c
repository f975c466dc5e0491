#include "config.h"
#include "om-criu.h"
#include "bounded.h"
#include "util.h"

#include <criu/criu.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

const char *om_criu_binary(void)
{
	const char *env = getenv("OM_CRIU");
	return env && *env ? env : OM_CRIU_BIN;
}

/* CRIU's error lines that say nothing of the failure */
static bool benign_error_line(const char *l)
{
	return strstr(l, "RLIMIT_NOFILE") != NULL ||	     /* harmless without CAP_SYS_RESOURCE */
	       strstr(l, "cgroupd: recv req error") != NULL; /* its helper going away with the failed restore */
}

/* A hint for the administrator when the cause is the file system: CRIU
 * reopens every regular file by its path and checks its size. */
static const char *file_hint(const char *first)
{
	if (strstr(first, "Can't open file") != NULL || strstr(first, "has bad size") != NULL)
		return " (a file the processes had open was renamed, removed or resized after the checkpoint: CRIU "
		       "reopens files by path and checks their size)";
	return "";
}

/* Append CRIU's first "Error" line (the cause; the ones after it are
 * usually its consequences in other tasks) and its last two to the error
 * message. */
static int criu_failure(om_error_t *err, const char *what, const char *dir, const char *log, int ret)
{
	cleanup_free char *path = om_strdup_printf("%s/%s", dir, log);
	cleanup_free char *buf = NULL;
	char first[512] = "", last[2][512];
	int nl = 0;
	om_error_t tmp = NULL;

	if (path && om_read_file(path, &buf, NULL, &tmp) == 0) {
		char *save = NULL;
		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			if (strstr(l, "Error (") == NULL || benign_error_line(l))
				continue;
			char *msg = strstr(l, "): ");
			msg = msg ? msg + 3 : l;
			if (nl == 0)
				snprintf(first, sizeof(first), "%s", msg);
			else
				snprintf(last[nl % 2], sizeof(last[0]), "%s", msg);
			nl++;
		}
	}
	om_error_release(&tmp);
	if (nl == 0)
		return om_make_error(err, OM_ECRIU, "criu %s failed (%s%s; log: %s)", what, ret < 0 ? "error " : "",
				     ret < 0 ? strerror(-ret) : "exit", path ? path : log);
	char joined[1700];
	int n = snprintf(joined, sizeof(joined), "%s", first);
	if (nl > 3)
		n += snprintf(joined + n, sizeof(joined) - (size_t)n, "; ...");
	for (int i = nl > 3 ? nl - 2 : 1; i < nl && n < (int)sizeof(joined); i++)
		n += snprintf(joined + n, sizeof(joined) - (size_t)n, "; %s", last[i % 2]);
	return om_make_error(err, OM_ECRIU, "criu %s failed: %s%s (log: %s)", what, joined, file_hint(first),
			     path ? path : log);
}

static int init_opts(criu_opts **opts, const char *images_dir, const char *work_dir, const char *log, int *img_fd,
		     int *work_fd, om_error_t *err)
{
	if (criu_local_init_opts(opts) < 0)
		return om_make_error(err, ENOMEM, "init CRIU options");
	if (criu_local_set_service_binary(*opts, om_criu_binary()) < 0)
		return om_make_error(err, ENOMEM, "init CRIU options");
	*img_fd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*img_fd < 0)
		return om_make_error(err, errno, "open images directory `%s`", images_dir);
	*work_fd = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*work_fd < 0)
		return om_make_error(err, errno, "open work directory `%s`", work_dir);
	criu_local_set_images_dir_fd(*opts, *img_fd);
	criu_local_set_work_dir_fd(*opts, *work_fd);
	criu_local_set_log_file(*opts, log);
	criu_local_set_log_level(*opts, 4);
	/* miggroup cgroups are ours: CRIU neither dumps nor restores them */
	criu_local_set_manage_cgroups_mode(*opts, CRIU_CG_MODE_IGNORE);
	criu_local_set_file_locks(*opts, true);
	return 0;
}

/* SysV shm of the host IPC namespace, saved and recreated by the caller
 * (patches/criu/0002); the key is the patch's SYSVSHM_HOST_EXTERNAL */
static int set_sysvshm(criu_opts *opts, bool external, om_error_t *err)
{
	if (external && criu_local_add_external(opts, "sysvshm[host]") < 0)
		return om_make_error(err, ENOMEM, "CRIU external sysvshm");
	return 0;
}

/* CRIU's tcp_established; iptables is not assumed: CRIU's lock is nftables or none */
static int set_tcp(criu_opts *opts, bool tcp_established, bool own_lock, om_error_t *err)
{
	if (!tcp_established)
		return 0;
	criu_local_set_tcp_established(opts, true);
	if (criu_local_set_network_lock(opts, own_lock ? CRIU_NETWORK_LOCK_SKIP : CRIU_NETWORK_LOCK_NFTABLES) < 0)
		return om_make_error(err, EINVAL, "CRIU network lock");
	return 0;
}

double om_criu_timeout(uint64_t bytes, double explicit_s)
{
	if (explicit_s > 0)
		return explicit_s;
	return 20.0 + 20.0 * (double)bytes / (1024.0 * 1024 * 1024);
}

/* `criu ARGS...` with a bound: its output in res (free res->out). */
static int criu_exec(const struct om_bound *b, const char *arg1, const char *arg2, const char *arg3,
		     struct om_bounded_result *res, om_error_t *err)
{
	char *argv[] = {(char *)om_criu_binary(), (char *)arg1, (char *)arg2, (char *)arg3, NULL};

	/* a clear word when there is nothing to run */
	if (access(om_criu_binary(), X_OK) != 0)
		return om_make_error(err, OM_ECRIU, "cannot run CRIU `%s`: %s (set OM_CRIU or run scripts/setup.sh)",
				     om_criu_binary(), strerror(errno));
	if (om_bounded_exec(b, argv, 16384, res, err) < 0) {
		if ((*err)->status == ETIMEDOUT)
			om_error_set_exit(err, OM_EXIT_CRIU);
		return om_error_wrap(err, "`%s %s`", om_criu_binary(), arg1);
	}
	return 0;
}

int om_criu_version(const struct om_bound *b, char *buf, size_t len, om_error_t *err)
{
	struct om_bounded_result res;
	unsigned a, m, p = 0;
	char *v;

	if (criu_exec(b, "--version", NULL, NULL, &res, err) < 0)
		return -1;
	v = strstr(res.out, "Version: ");
	if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0 || v == NULL ||
	    sscanf(v + 9, "%u.%u.%u", &a, &m, &p) < 2) {
		free(res.out);
		return om_make_error(err, OM_ECRIU, "cannot run CRIU `%s` (set OM_CRIU or run scripts/setup.sh)",
				     om_criu_binary());
	}
	free(res.out);
	snprintf(buf, len, "%u.%u.%u", a, m, p);
	return 0;
}

int om_criu_feature(const struct om_bound *b, const char *name, om_error_t *err)
{
	struct om_bounded_result res;
	int ok;

	if (criu_exec(b, "check", "--feature", name, &res, err) < 0)
		return -1;
	ok = WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0;
	free(res.out);
	return ok;
}

int om_criu_check(const struct om_bound *b, char **output, om_error_t *err)
{
	struct om_bounded_result res;
	size_t used;

	if (criu_exec(b, "check", NULL, NULL, &res, err) < 0)
		return -1;
	used = res.len;
	if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0) {
		if (output)
			*output = res.out;
		else
			free(res.out);
		return 0;
	}
	/* CRIU's last complaint is the reason */
	while (used > 0 && res.out[used - 1] == '\n')
		res.out[--used] = '\0';
	char *last = strrchr(res.out, '\n');
	om_make_error(err, OM_ECRIU, "`%s check` failed: %s", om_criu_binary(),
		      used ? (last ? last + 1 : res.out) : "no output");
	free(res.out);
	return -1;
}

/* The last line of a CRIU log, for a message about a CRIU that hung. */
static void log_last_line(const char *path, char *out, size_t len)
{
	cleanup_free char *buf = NULL;
	size_t n = 0;
	om_error_t tmp = NULL;

	out[0] = '\0';
	if (om_read_file(path, &buf, &n, &tmp) < 0) {
		om_error_release(&tmp);
		return;
	}
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	char *last = strrchr(buf, '\n');
	snprintf(out, len, "%s", last ? last + 1 : buf);
}

/* What a CRIU runner child reports to its parent. */
struct runner_report {
	int32_t ret;	/* libcriu's return value */
	char why[1024]; /* the post-restore hook's reason for refusing */
};

/* Run a libcriu call in a bounded child (see om_bounded_call): a CRIU that
 * never answers is killed, with everything it started, at the deadline. */
static int run_criu(const struct om_bound *b, const char *what, const char *dir, const char *log, om_bounded_fn fn,
		    void *arg, struct runner_report *rep, om_error_t *err)
{
	struct om_bounded_result res;
	char desc[64];

	snprintf(desc, sizeof(desc), "criu %s", what);
	if (om_bounded_call(b, desc, fn, arg, sizeof(*rep), &res, err) < 0) {
		char path[PATH_MAX], last[400];
		snprintf(path, sizeof(path), "%.3000s/%s", dir, log);
		log_last_line(path, last, sizeof(last));
		int st = (*err)->status;
		if (st != ETIMEDOUT && st != ECANCELED)
			return om_error_wrap(err, "criu %s", what); /* pipe, fork: not CRIU's doing */
		if (st == ETIMEDOUT) {
			(*err)->status = OM_ECRIU; /* the message says it all; no errno text */
			om_error_set_exit(err, OM_EXIT_CRIU);
		}
		om_error_append(err, "CRIU was stopped%s%s%s; log: %s", last[0] ? "; its last log line: `" : "", last,
				last[0] ? "`" : "", path);
		return -1;
	}
	if (res.len != sizeof(*rep)) {
		free(res.out);
		return om_make_error(err, OM_ECRIU, "criu %s: the CRIU runner died (wait status %#x; log: %s/%s)", what,
				     (unsigned)res.status, dir, log);
	}
	memcpy(rep, res.out, sizeof(*rep));
	rep->why[sizeof(rep->why) - 1] = '\0';
	free(res.out);
	return 0;
}

static int dump_fn(void *arg, int out_fd)
{
	const struct om_criu_dump *d = arg;
	struct runner_report rep = {0};
	criu_opts *opts = NULL;
	cleanup_close int img_fd = -1;
	cleanup_close int work_fd = -1;
	om_error_t tmp = NULL;

	if (init_opts(&opts, d->images_dir, d->work_dir, "dump.log", &img_fd, &work_fd, &tmp) < 0 ||
	    set_tcp(opts, d->tcp_established, d->own_network_lock, &tmp) < 0 ||
	    set_sysvshm(opts, d->sysvshm_external, &tmp) < 0) {
		snprintf(rep.why, sizeof(rep.why), "%s", tmp->msg ? tmp->msg : "init");
		om_error_release(&tmp);
		rep.ret = -EINVAL;
	} else {
		criu_local_set_pid(opts, d->root);
		criu_local_set_leave_running(opts, d->leave_running);
		criu_local_set_shell_job(opts, d->shell_job);
		/* unlinked files still open or mapped (/dev/shm segments of MPI,
		 * Python's arenas) travel in the images, up to this size each */
		criu_local_set_ghost_limit(opts, OM_CRIU_GHOST_LIMIT);
		if (d->freeze_cgroup)
			criu_local_set_freeze_cgroup(opts, d->freeze_cgroup);
		rep.ret = criu_local_dump(opts);
	}
	criu_local_free_opts(opts);
	return om_write_all(out_fd, &rep, sizeof(rep)) < 0 ? 1 : 0;
}

int om_criu_dump(const struct om_criu_dump *d, om_error_t *err)
{
	struct runner_report rep;

	if (run_criu(&d->bound, "dump", d->work_dir, "dump.log", dump_fn, (void *)d, &rep, err) < 0)
		return -1;
	if (rep.ret < 0 && rep.why[0])
		return om_make_error(err, OM_ECRIU, "criu dump: %s", rep.why);
	if (rep.ret < 0)
		return criu_failure(err, "dump", d->work_dir, "dump.log", rep.ret);
	return 0;
}

/* libcriu's notify callback has no user argument; this lives in the runner child. */
static const struct om_criu_restore *cur_restore;
static char hook_why[1024];

static int notify_cb(char *action, criu_notify_arg_t na)
{
	if (cur_restore && cur_restore->post_restore && strcmp(action, "post-restore") == 0)
		return cur_restore->post_restore(cur_restore->arg, criu_notify_pid(na), hook_why, sizeof(hook_why)) < 0
			   ? -1
			   : 0;
	return 0;
}

static int restore_fn(void *arg, int out_fd)
{
	const struct om_criu_restore *rs = arg;
	struct runner_report rep = {0};
	criu_opts *opts = NULL;
	cleanup_close int img_fd = -1;
	cleanup_close int work_fd = -1;
	om_error_t tmp = NULL;

	if (init_opts(&opts, rs->images_dir, rs->work_dir, "restore.log", &img_fd, &work_fd, &tmp) < 0 ||
	    set_tcp(opts, rs->tcp_established, rs->own_network_lock, &tmp) < 0 ||
	    set_sysvshm(opts, rs->sysvshm_external, &tmp) < 0) {
		snprintf(rep.why, sizeof(rep.why), "%s", tmp->msg ? tmp->msg : "init");
		om_error_release(&tmp);
		rep.ret = -EINVAL;
	} else {
		criu_local_set_shell_job(opts, rs->shell_job);
		cur_restore = rs;
		criu_local_set_notify_cb(opts, notify_cb);
		rep.ret = criu_local_restore_child(opts);
		snprintf(rep.why, sizeof(rep.why), "%s", hook_why);
	}
	criu_local_free_opts(opts);
	return om_write_all(out_fd, &rep, sizeof(rep)) < 0 ? 1 : 0;
}

pid_t om_criu_restore_child(const struct om_criu_restore *rs, om_error_t *err)
{
	struct runner_report rep;

	/* the restored root is the runner's child; when the runner exits it
	 * passes to the caller, which must be a subreaper (a keeper) */
	if (run_criu(&rs->bound, "restore", rs->work_dir, "restore.log", restore_fn, (void *)rs, &rep, err) < 0)
		return -1;
	if (rep.ret < 0) {
		criu_failure(err, "restore", rs->work_dir, "restore.log", rep.ret);
		if (rep.why[0])
			om_error_wrap(err, "%s", rep.why);
		return -1;
	}
	return rep.ret;
}
