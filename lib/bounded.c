#include "config.h"
#include "bounded.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

bool om_cancelled(int cancel_fd)
{
	struct pollfd p = {.fd = cancel_fd, .events = POLLIN};

	return cancel_fd > 0 && poll(&p, 1, 0) > 0 && p.revents != 0;
}

static int cancelled_error(om_error_t *err)
{
	return om_make_error(err, ECANCELED, "interrupted");
}

int om_pause(int cancel_fd, long ms, om_error_t *err)
{
	struct pollfd p = {.fd = cancel_fd, .events = POLLIN};
	double deadline = om_now() + (double)ms / 1000;

	if (cancel_fd <= 0) {
		om_sleep_ms(ms);
		return 0;
	}
	for (;;) {
		long left = (long)((deadline - om_now()) * 1000);
		int r = poll(&p, 1, left > 0 ? (int)left : 0);
		if (r > 0 && p.revents)
			return cancelled_error(err);
		if (r == 0 || left <= 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return om_make_error(err, errno, "poll");
	}
}

/* Kill a child and everything below it. Processes are stopped first and
 * collected again until the set holds still (a stopped process cannot
 * fork), then all are killed at once; the child is reaped. */
static void kill_subtree(pid_t child)
{
	cleanup_free pid_t *all = NULL;
	size_t nall = 0;

	for (int round = 0; round < 8; round++) {
		cleanup_free pid_t *now = NULL;
		size_t n = 0, added = 0;
		om_error_t tmp = NULL;

		if (om_proc_descendants(child, &now, &n, &tmp) < 0) {
			om_error_release(&tmp);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			kill(now[i], SIGSTOP);
			if (!om_pids_contains(all, nall, now[i]) && om_pids_push(&all, &nall, now[i]) == 0)
				added++;
		}
		if (added == 0)
			break;
	}
	for (size_t i = 0; i < nall; i++)
		kill(all[i], SIGKILL);
	kill(child, SIGKILL);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	/* the rest are reparented to a subreaper or init, which reaps them */
	(void)om_pids_wait_gone(all, nall, 5);
}

int om_bounded_call(const struct om_bound *b, const char *what, om_bounded_fn fn, void *arg, size_t out_max,
		    struct om_bounded_result *res, om_error_t *err)
{
	int p[2];
	pid_t pid;
	double deadline = om_now() + b->timeout_s;
	bool eof = false;
	size_t cap = out_max + 1;

	memset(res, 0, sizeof(*res));
	if (om_cancelled(b->cancel_fd))
		return cancelled_error(err);
	res->out = calloc(1, cap);
	if (res->out == NULL)
		return om_make_error(err, ENOMEM, "%s", what);
	if (pipe2(p, O_CLOEXEC) < 0)
		return om_make_error(err, errno, "pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return om_make_error(err, errno, "fork");
	}
	if (pid == 0) {
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg, p[1]));
	}
	close(p[1]);
	res->pid = pid;
	for (;;) {
		struct pollfd pf[2] = {{.fd = eof ? -1 : p[0], .events = POLLIN},
				       {.fd = b->cancel_fd > 0 ? b->cancel_fd : -1, .events = POLLIN}};
		long left = (long)((deadline - om_now()) * 1000);
		int r;

		if (eof) { /* the child closed its end: it is about to exit */
			r = waitpid(pid, &res->status, WNOHANG);
			if (r == pid)
				break;
			if (r < 0 && errno != EINTR) {
				close(p[0]);
				return om_make_error(err, errno, "wait for %s", what);
			}
			if (left > 5)
				left = 5;
		}
		if (left <= 0 && !eof) {
			close(p[0]);
			kill_subtree(pid);
			return om_make_error(err, ETIMEDOUT, "%s gave no answer within %.0f s", what, b->timeout_s);
		}
		r = poll(pf, 2, left > 0 ? (int)left : 0);
		if (r < 0 && errno != EINTR) {
			close(p[0]);
			kill_subtree(pid);
			return om_make_error(err, errno, "poll");
		}
		if (r > 0 && pf[1].revents) {
			close(p[0]);
			kill_subtree(pid);
			return om_make_error(err, ECANCELED, "interrupted while %s was running", what);
		}
		if (r > 0 && pf[0].revents) {
			char buf[4096];
			ssize_t n = read(p[0], buf, sizeof(buf));
			if (n == 0)
				eof = true;
			else if (n > 0 && res->len < out_max) {
				size_t take = (size_t)n < out_max - res->len ? (size_t)n : out_max - res->len;
				memcpy(res->out + res->len, buf, take);
				res->len += take;
				res->out[res->len] = '\0';
			}
		}
		if (eof && om_now() > deadline) {
			close(p[0]);
			kill_subtree(pid);
			return om_make_error(err, ETIMEDOUT, "%s did not exit within %.0f s", what, b->timeout_s);
		}
	}
	close(p[0]);
	return 0;
}

static int exec_fn(void *arg, int out_fd)
{
	char *const *argv = arg;
	int devnull = open("/dev/null", O_RDONLY);

	if (devnull >= 0)
		dup2(devnull, 0);
	dup2(out_fd, 1);
	dup2(out_fd, 2);
	execv(argv[0], argv);
	dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
	return 127;
}

int om_bounded_exec(const struct om_bound *b, char *const argv[], size_t out_max, struct om_bounded_result *res,
		    om_error_t *err)
{
	return om_bounded_call(b, argv[0], exec_fn, (void *)argv, out_max, res, err);
}
