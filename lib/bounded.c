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

/* Kill the child and everything below it (om_proc_kill_trees), then reap
 * it: a child stuck in D state is waited for 10 s at most, then left. */
static void kill_subtree(pid_t child)
{
	int status;

	om_proc_kill_trees(&child, 1);
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(child, &status, WNOHANG);
		if (r == child || (r < 0 && errno != EINTR))
			return;
		om_sleep_ms(10);
	}
}

static int fail(struct om_bounded_result *res, int fd, pid_t kill_pid)
{
	if (fd >= 0)
		close(fd);
	if (kill_pid > 0)
		kill_subtree(kill_pid);
	free(res->out);
	res->out = NULL;
	res->len = 0;
	return -1;
}

int om_bounded_call(const struct om_bound *b, const char *what, om_bounded_fn fn, void *arg, size_t out_max,
		    struct om_bounded_result *res, om_error_t *err)
{
	int p[2];
	pid_t pid;
	double deadline = om_now() + b->timeout_s;
	bool eof = false, cancelled = false;

	memset(res, 0, sizeof(*res));
	if (om_cancelled(b->cancel_fd))
		return cancelled_error(err);
	res->out = calloc(1, out_max + 1);
	if (res->out == NULL)
		return om_make_error(err, ENOMEM, "%s", what);
	if (pipe2(p, O_CLOEXEC) < 0) {
		om_make_error(err, errno, "pipe");
		return fail(res, -1, 0);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		om_make_error(err, errno, "fork");
		close(p[1]);
		return fail(res, p[0], 0);
	}
	if (pid == 0) {
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg, p[1]));
	}
	close(p[1]);
	res->pid = pid;
	for (;;) {
		bool watch_cancel = !eof && !cancelled && b->cancel_fd > 0;
		struct pollfd pf[2] = {{.fd = eof ? -1 : p[0], .events = POLLIN},
				       {.fd = watch_cancel ? b->cancel_fd : -1, .events = POLLIN}};
		long left = (long)((deadline - om_now()) * 1000);
		int r;

		if (eof) {
			/* the child closed its end: it is exiting. Whatever it
			 * reported stands: a cancel is no longer heard here */
			r = waitpid(pid, &res->status, WNOHANG);
			if (r == pid)
				break;
			if (r < 0 && errno != EINTR) {
				om_make_error(err, errno, "wait for %s", what);
				return fail(res, p[0], 0);
			}
			if (left <= 0) {
				om_make_error(err, ETIMEDOUT, "%s did not exit", what);
				return fail(res, p[0], pid);
			}
			if (left > 5)
				left = 5;
		} else if (left <= 0) {
			if (cancelled)
				om_make_error(err, ECANCELED, "interrupted while %s was running", what);
			else
				om_make_error(err, ETIMEDOUT, "%s gave no answer within %.0f s", what, b->timeout_s);
			return fail(res, p[0], pid);
		}
		r = poll(pf, 2, left > 0 ? (int)left : 0);
		if (r < 0 && errno != EINTR) {
			om_make_error(err, errno, "poll");
			return fail(res, p[0], pid);
		}
		if (r > 0 && pf[1].revents) {
			cancelled = true;
			if (b->cancel_grace_s <= 0) {
				om_make_error(err, ECANCELED, "interrupted while %s was running", what);
				return fail(res, p[0], pid);
			}
			/* let the step end by itself for a moment rather than cut it */
			if (deadline > om_now() + b->cancel_grace_s)
				deadline = om_now() + b->cancel_grace_s;
		}
		if (r > 0 && pf[0].revents) {
			char buf[4096];
			ssize_t n = read(p[0], buf, sizeof(buf));
			if (n == 0) {
				eof = true;
				deadline = om_now() + 10;
			} else if (n > 0 && res->len < out_max) {
				size_t take = (size_t)n < out_max - res->len ? (size_t)n : out_max - res->len;
				memcpy(res->out + res->len, buf, take);
				res->len += take;
				res->out[res->len] = '\0';
			}
		}
	}
	close(p[0]);
	if (cancelled) { /* it ended within its grace: still, the caller stops here */
		om_make_error(err, ECANCELED, "interrupted (%s was let finish first)", what);
		return fail(res, -1, 0);
	}
	return 0;
}

static int exec_fn(void *arg, int out_fd)
{
	char *const *argv = arg;
	int devnull = open("/dev/null", O_RDONLY);
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

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
