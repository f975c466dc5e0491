#include "config.h"
#include "om-criu.h"
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

/* Append the last "Error" lines of a CRIU log to the error message. */
static int criu_failure(om_error_t *err, const char *what, const char *dir, const char *log, int ret)
{
	cleanup_free char *path = om_strdup_printf("%s/%s", dir, log);
	cleanup_free char *buf = NULL;
	char lines[3][512];
	int nl = 0;
	om_error_t tmp = NULL;

	if (path && om_read_file(path, &buf, NULL, &tmp) == 0) {
		char *save = NULL;
		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			if (strstr(l, "Error (") == NULL || strstr(l, "RLIMIT_NOFILE") != NULL)
				continue; /* the rlimit complaint is harmless without CAP_SYS_RESOURCE */
			char *msg = strstr(l, "): ");
			snprintf(lines[nl % 3], sizeof(lines[0]), "%s", msg ? msg + 3 : l);
			nl++;
		}
	}
	om_error_release(&tmp);
	if (nl == 0)
		return om_make_error(err, OM_ECRIU, "criu %s failed (%s%s%s; log: %s)", what, ret < 0 ? "error " : "",
				     ret < 0 ? strerror(-ret) : "exit", "", path ? path : log);
	{
		char joined[1600] = "";
		int first = nl > 3 ? nl - 3 : 0;
		for (int i = first; i < nl; i++) {
			strncat(joined, lines[i % 3], sizeof(joined) - strlen(joined) - 4);
			if (i + 1 < nl)
				strncat(joined, "; ", sizeof(joined) - strlen(joined) - 1);
		}
		return om_make_error(err, OM_ECRIU, "criu %s failed: %s (log: %s)", what, joined, path ? path : log);
	}
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

int om_criu_version(char *buf, size_t len, om_error_t *err)
{
	criu_opts *opts = NULL;
	int v;

	/* libcriu would print its own complaints; find out first */
	if (access(om_criu_binary(), X_OK) != 0)
		return om_make_error(err, OM_ECRIU, "cannot run CRIU `%s`: %s (set OM_CRIU or run scripts/setup.sh)",
				     om_criu_binary(), strerror(errno));
	if (criu_local_init_opts(&opts) < 0)
		return om_make_error(err, ENOMEM, "init CRIU options");
	criu_local_set_service_binary(opts, om_criu_binary());
	v = criu_local_get_version(opts);
	criu_local_free_opts(opts);
	if (v <= 0)
		return om_make_error(err, OM_ECRIU, "cannot run CRIU `%s` (set OM_CRIU or run scripts/setup.sh)",
				     om_criu_binary());
	snprintf(buf, len, "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
	return 0;
}

int om_criu_check(om_error_t *err)
{
	int p[2], status;
	pid_t pid;
	char out[4096] = "";
	size_t used = 0;
	ssize_t n;

	/* the command-line check, as an administrator would run it */
	if (pipe2(p, O_CLOEXEC) < 0)
		return om_make_error(err, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return om_make_error(err, errno, "fork");
	}
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(om_criu_binary(), om_criu_binary(), "check", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], out + used, sizeof(out) - 1 - used)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			used += (size_t)n;
	close(p[0]);
	out[used] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	/* CRIU's last complaint is the reason */
	while (used > 0 && out[used - 1] == '\n')
		out[--used] = '\0';
	char *last = strrchr(out, '\n');
	return om_make_error(err, OM_ECRIU, "`%s check` failed: %s", om_criu_binary(),
			     used ? (last ? last + 1 : out) : "no output");
}

int om_criu_dump(const struct om_criu_dump *d, om_error_t *err)
{
	criu_opts *opts = NULL;
	cleanup_close int img_fd = -1;
	cleanup_close int work_fd = -1;
	int r;

	if (init_opts(&opts, d->images_dir, d->work_dir, "dump.log", &img_fd, &work_fd, err) < 0 ||
	    set_tcp(opts, d->tcp_established, d->own_network_lock, err) < 0) {
		criu_local_free_opts(opts);
		return -1;
	}
	criu_local_set_pid(opts, d->root);
	criu_local_set_leave_running(opts, d->leave_running);
	criu_local_set_shell_job(opts, d->shell_job);
	if (d->freeze_cgroup)
		criu_local_set_freeze_cgroup(opts, d->freeze_cgroup);
	r = criu_local_dump(opts);
	criu_local_free_opts(opts);
	if (r < 0)
		return criu_failure(err, "dump", d->work_dir, "dump.log", r);
	return 0;
}

/* libcriu's notify callback has no user argument. */
static const struct om_criu_restore *cur_restore;

static int notify_cb(char *action, criu_notify_arg_t na)
{
	if (cur_restore && cur_restore->post_restore && strcmp(action, "post-restore") == 0)
		return cur_restore->post_restore(cur_restore->arg, criu_notify_pid(na)) < 0 ? -1 : 0;
	return 0;
}

pid_t om_criu_restore_child(const struct om_criu_restore *rs, om_error_t *err)
{
	criu_opts *opts = NULL;
	cleanup_close int img_fd = -1;
	cleanup_close int work_fd = -1;
	int r;

	if (init_opts(&opts, rs->images_dir, rs->work_dir, "restore.log", &img_fd, &work_fd, err) < 0 ||
	    set_tcp(opts, rs->tcp_established, rs->own_network_lock, err) < 0) {
		criu_local_free_opts(opts);
		return -1;
	}
	criu_local_set_shell_job(opts, rs->shell_job);
	cur_restore = rs;
	criu_local_set_notify_cb(opts, notify_cb);
	r = criu_local_restore_child(opts);
	cur_restore = NULL;
	criu_local_free_opts(opts);
	if (r < 0)
		return criu_failure(err, "restore", rs->work_dir, "restore.log", r);
	return r;
}
