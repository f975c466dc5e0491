#include "config.h"
#include "keeper.h"
#include "group.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* Close every fd from 3 on but a and b (b may be -1). */
static void close_fds_except(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;
	unsigned next = 3;

	/* close_range(2) is there since Linux 5.9 */
	for (int i = 0; i < 2; i++) {
		int keep = i == 0 ? lo : hi;
		if (keep < 3)
			continue;
		if ((unsigned)keep > next)
			syscall(SYS_close_range, next, keep - 1, 0);
		next = (unsigned)keep + 1;
	}
	syscall(SYS_close_range, next, ~0U, 0);
}

static void reset_signals(void)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

int om_keeper_spawn(const char *name, om_keeper_fn fn, void *arg, int keep_fd, int *report_fd, om_error_t *err)
{
	int p[2];
	pid_t mid;
	int status;

	if (pipe2(p, O_CLOEXEC) < 0)
		return om_make_error(err, errno, "pipe");
	fflush(NULL);
	mid = fork();
	if (mid < 0) {
		close(p[0]);
		close(p[1]);
		return om_make_error(err, errno, "fork");
	}
	if (mid == 0) {
		pid_t k;
		int devnull;

		setsid();
		k = fork();
		if (k != 0)
			_exit(k < 0 ? 1 : 0);
		/* the keeper */
		reset_signals();
		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		prctl(PR_SET_NAME, name);
		close(p[0]);
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			if (devnull > 2)
				close(devnull);
		}
		close_fds_except(p[1], keep_fd);
		fn(arg, p[1]);
		close(p[1]);
		/* the trees are started: hold no directory busy while reaping */
		if (chdir("/") < 0)
			_exit(1);
		for (;;) {
			if (waitpid(-1, &status, 0) < 0 && errno != EINTR)
				break;
		}
		_exit(0);
	}
	close(p[1]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		close(p[0]);
		return om_make_error(err, ECHILD, "could not start the keeper process");
	}
	*report_fd = p[0];
	return 0;
}

int om_keeper_send(int fd, int index, pid_t pid, om_error_t e)
{
	struct om_keeper_report r;
	memset(&r, 0, sizeof(r));
	r.index = index;
	r.pid = pid;
	if (e) {
		r.status = e->status ? e->status : EIO;
		snprintf(r.msg, sizeof(r.msg), "%s", e->msg ? e->msg : "error");
	}
	return om_write_all(fd, &r, sizeof(r));
}

int om_keeper_recv(int fd, struct om_keeper_report *r, om_error_t *err)
{
	size_t got = 0;
	while (got < sizeof(*r)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		int pr = poll(&p, 1, OM_KEEPER_REPLY_TIMEOUT_S * 1000);

		if (pr == 0)
			return om_make_error(err, ETIMEDOUT, "the keeper gave no answer within %d s",
					     OM_KEEPER_REPLY_TIMEOUT_S);
		if (pr < 0 && errno != EINTR)
			return om_make_error(err, errno, "poll the keeper");
		if (pr < 0)
			continue;
		n = read(fd, (char *)r + got, sizeof(*r) - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return om_make_error(err, errno, "read from keeper");
		}
		if (n == 0) {
			if (got == 0)
				return 0;
			return om_make_error(err, EPIPE, "keeper exited mid-report");
		}
		got += (size_t)n;
	}
	r->msg[sizeof(r->msg) - 1] = '\0';
	return 1;
}

struct run_arg {
	const struct om_cg *cg;
	unsigned long id;
	char *const *argv;
	const char *logfile;
	bool isolate;
};

/* --isolate: the PID 1 of the tree's PID namespace ("om-init"). */

/* CMD's PID inside the namespace (2); 0 before it is forked and once it is reaped */
static volatile sig_atomic_t init_cmd_pid;

/* SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2: to CMD while it runs, else to
 * every process of the namespace (the daemons CMD left behind). Only a
 * signal with a handler reaches a namespace's init at all. */
static void init_forward(int sig)
{
	int saved = errno;
	pid_t p = init_cmd_pid;

	if (p <= 0 || kill(p, sig) < 0)
		kill(-1, sig);
	errno = saved;
}

static const int init_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

static void init_fail(int sync, int e)
{
	om_write_all(sync, &e, sizeof(e));
	_exit(126);
}

/* The init: in the group's leaf once the keeper writes to go, it gets a new
 * IPC namespace, forks CMD (PID 2, its own session), forwards signals and
 * reaps every process of the namespace. It exits when none is left, with
 * CMD's exit status (128+N for a signal N). Its only state is a loop around
 * waitpid(2) and the fds 0-2 CMD has too, which CRIU restores; EINTR (a
 * forwarded signal, a checkpoint) just loops. */
static _Noreturn void init_main(const struct run_arg *ra, int go, int sync)
{
	struct sigaction sa;
	sigset_t old;
	int cmd_status = 0, status, fd, code;
	pid_t cmd, w;
	ssize_t n;
	char c;

	setsid();
	prctl(PR_SET_NAME, "om-init");
	do
		n = read(go, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1) /* the keeper could not put it into the group */
		_exit(126);
	close(go);
	if (unshare(CLONE_NEWIPC) < 0)
		init_fail(sync, errno);
	fd = open(ra->logfile ? ra->logfile : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		init_fail(sync, errno);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = init_forward;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(init_forwarded) / sizeof(init_forwarded[0]); i++)
		sigaddset(&sa.sa_mask, init_forwarded[i]);
	for (size_t i = 0; i < sizeof(init_forwarded) / sizeof(init_forwarded[0]); i++)
		sigaction(init_forwarded[i], &sa, NULL);
	/* a signal that comes before CMD's PID is known waits for it */
	sigprocmask(SIG_BLOCK, &sa.sa_mask, &old);
	cmd = fork();
	if (cmd < 0)
		init_fail(sync, errno);
	if (cmd == 0) {
		int e;
		for (size_t i = 0; i < sizeof(init_forwarded) / sizeof(init_forwarded[0]); i++)
			signal(init_forwarded[i], SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		setsid();
		execvp(ra->argv[0], ra->argv);
		e = errno;
		om_write_all(sync, &e, sizeof(e));
		_exit(127);
	}
	init_cmd_pid = cmd;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sync);
	for (;;) {
		w = waitpid(-1, &status, 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: the namespace is empty */
		}
		if (w == cmd) {
			init_cmd_pid = 0;
			cmd_status = status;
			if (WIFEXITED(status))
				dprintf(2, "om-init: `%s` (PID %d) exited with status %d\n", ra->argv[0], (int)cmd,
					WEXITSTATUS(status));
			else if (WIFSIGNALED(status))
				dprintf(2, "om-init: `%s` (PID %d) was killed by signal %d\n", ra->argv[0], (int)cmd,
					WTERMSIG(status));
		}
	}
	code = WIFEXITED(cmd_status) ? WEXITSTATUS(cmd_status) : 128 + WTERMSIG(cmd_status);
	dprintf(2, "om-init: no process left in the namespace, exiting with status %d\n", code);
	_exit(code);
}

/* Keeper side of --isolate: a new PID namespace whose init is the tree's
 * root; it joins the group before it forks CMD. */
static int run_isolated(struct run_arg *ra, int report)
{
	int go[2] = {-1, -1}, sync[2] = {-1, -1};
	char cgpath[PATH_MAX];
	int child_errno = 0;
	om_error_t err = NULL;
	pid_t pid = 0;
	ssize_t n;

	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(sync, O_CLOEXEC) < 0) {
		om_make_error(&err, errno, "pipe");
		goto fail;
	}
	/* the keeper's next child, its only one, is PID 1 of a new namespace */
	if (unshare(CLONE_NEWPID) < 0) {
		om_make_error(&err, errno, "unshare a PID namespace");
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		pid = 0;
		om_make_error(&err, errno, "fork the init of the new PID namespace");
		goto fail;
	}
	if (pid == 0) {
		close(go[1]);
		close(sync[0]);
		close(report);
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		init_main(ra, go[0], sync[1]);
	}
	close(go[0]);
	close(sync[1]);
	go[0] = sync[1] = -1;
	if (om_group_prepare_tree(ra->cg, ra->id, pid, cgpath, &err) < 0 || om_cg_move(cgpath, pid, &err) < 0)
		goto fail;
	if (om_write_all(go[1], "g", 1) < 0) {
		om_make_error(&err, errno, "start the init of the new PID namespace");
		goto fail;
	}
	close(go[1]);
	go[1] = -1;
	/* EOF: CMD has exec()ed (the pipe is close-on-exec) */
	do
		n = read(sync[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(sync[0]);
	sync[0] = -1;
	if (n > 0) {
		om_make_error(&err, child_errno, "start `%s` in miggroup %lu", ra->argv[0], ra->id);
		goto fail;
	}
	om_keeper_send(report, 0, pid, NULL);
	return 0;
fail:
	if (pid > 0) /* the keeper reaps it */
		kill(pid, SIGKILL);
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (sync[i] >= 0)
			close(sync[i]);
	}
	om_keeper_send(report, 0, pid, err);
	om_error_release(&err);
	return -1;
}

static int run_fn(void *a, int report)
{
	struct run_arg *ra = a;
	int sync[2];
	pid_t pid;
	int child_errno = 0;
	ssize_t n;
	om_error_t err = NULL;

	if (ra->isolate)
		return run_isolated(ra, report);
	if (pipe2(sync, O_CLOEXEC) < 0) {
		om_make_error(&err, errno, "pipe");
		om_keeper_send(report, 0, 0, err);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		om_make_error(&err, errno, "fork");
		om_keeper_send(report, 0, 0, err);
		return -1;
	}
	if (pid == 0) {
		char cgpath[PATH_MAX];
		int fd;

		close(sync[0]);
		close(report);
		prctl(PR_SET_CHILD_SUBREAPER, 0);
		setsid(); /* its own session: the tree is whole for CRIU */
		signal(SIGPIPE, SIG_DFL);
		if (om_group_prepare_tree(ra->cg, ra->id, getpid(), cgpath, &err) < 0 ||
		    om_cg_move(cgpath, getpid(), &err) < 0) {
			child_errno = err->status ? err->status : EIO;
			om_write_all(sync[1], &child_errno, sizeof(child_errno));
			_exit(126);
		}
		fd = open(ra->logfile ? ra->logfile : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			child_errno = errno;
			om_write_all(sync[1], &child_errno, sizeof(child_errno));
			_exit(126);
		}
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(ra->argv[0], ra->argv);
		child_errno = errno;
		om_write_all(sync[1], &child_errno, sizeof(child_errno));
		_exit(127);
	}
	close(sync[1]);
	do
		n = read(sync[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(sync[0]);
	if (n > 0) {
		om_make_error(&err, child_errno, "start `%s` in miggroup %lu", ra->argv[0], ra->id);
		om_keeper_send(report, 0, pid, err);
		om_error_release(&err);
		return -1;
	}
	om_keeper_send(report, 0, pid, NULL);
	return 0;
}

int om_keeper_run(const struct om_cg *cg, unsigned long id, char *const argv[], const char *logfile, bool isolate,
		  pid_t *pid, om_error_t *err)
{
	struct run_arg ra = {.cg = cg, .id = id, .argv = argv, .logfile = logfile, .isolate = isolate};
	struct om_keeper_report r;
	cleanup_close int fd = -1;
	char name[16];
	int got;

	snprintf(name, sizeof(name), "omkeeper-g%lu", id);
	if (om_keeper_spawn(name, run_fn, &ra, -1, &fd, err) < 0)
		return -1;
	got = om_keeper_recv(fd, &r, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return om_make_error(err, ECHILD, "the keeper of miggroup %lu exited before starting `%s`", id,
				     argv[0]);
	if (r.status)
		return om_make_error(err, r.status, "%s", r.msg);
	*pid = r.pid;
	return 0;
}
