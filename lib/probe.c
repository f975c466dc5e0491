#include "config.h"
#include "probe.h"
#include "om-criu.h"
#include "proc.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* the subject's fds, fixed so that the probe finds them after the restore */
enum { FD_LISTEN = 10, FD_UNIX_A = 11, FD_UNIX_B = 12, FD_PIPE_R = 13, FD_PIPE_W = 14 };
#define PROBE_UID 65534 /* nobody: a process of another user, as PostgreSQL's */
#define INFLIGHT_PIPE "in-flight on the pipe"
#define INFLIGHT_UNIX "in-flight on the unix socket"

struct smoke_result {
	int32_t ok;
	double dump_s, restore_s;
	char detail[1024];
};

struct smoke_arg {
	const char *workdir;
	int cancel_fd;
};

static void subject(int lsk, int ua, int ub, int pr, int pw)
{
	int devnull = open("/dev/null", O_RDWR);

	setsid();
	/* first out of the way of the fixed numbers (inherited fds may sit there) */
	lsk = fcntl(lsk, F_DUPFD, 20);
	ua = fcntl(ua, F_DUPFD, 20);
	ub = fcntl(ub, F_DUPFD, 20);
	pr = fcntl(pr, F_DUPFD, 20);
	pw = fcntl(pw, F_DUPFD, 20);
	if (lsk < 0 || ua < 0 || ub < 0 || pr < 0 || pw < 0)
		_exit(120);
	if (dup2(lsk, FD_LISTEN) < 0 || dup2(ua, FD_UNIX_A) < 0 || dup2(ub, FD_UNIX_B) < 0 || dup2(pr, FD_PIPE_R) < 0 ||
	    dup2(pw, FD_PIPE_W) < 0 || devnull < 0)
		_exit(120);
	dup2(devnull, 0);
	dup2(devnull, 1);
	dup2(devnull, 2);
	syscall(SYS_close_range, 3, FD_LISTEN - 1, 0);
	syscall(SYS_close_range, FD_PIPE_W + 1, ~0U, 0);
	if (write(FD_PIPE_W, INFLIGHT_PIPE, sizeof(INFLIGHT_PIPE)) < 0 ||
	    write(FD_UNIX_A, INFLIGHT_UNIX, sizeof(INFLIGHT_UNIX)) < 0)
		_exit(121);
	if (setgroups(0, NULL) < 0 || setgid(PROBE_UID) < 0 || setuid(PROBE_UID) < 0)
		_exit(122);
	execl("/bin/sleep", "sleep", "3600", (char *)NULL);
	_exit(123);
}

static int grab_fd(int pidfd, int fd)
{
	int r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (r >= 0)
		fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_NONBLOCK);
	return r;
}

/* Read exactly len bytes within 2 s. */
static bool read_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;
	double deadline = om_now() + 2;

	while (got < len && om_now() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, buf + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0)
			break;
	}
	return got == len;
}

/* Does the restored subject still hold working fds, with the bytes that were
 * in flight? Fills why on failure. */
static bool verify(pid_t pid, char *why, size_t len)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int f[5] = {-1, -1, -1, -1, -1}, cl = -1, acc = -1;
	char buf[64];
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	bool ok = false;

	if (pidfd < 0) {
		snprintf(why, len, "pidfd_open(%d): %s", (int)pid, strerror(errno));
		return false;
	}
	for (int i = 0; i < 5; i++)
		if ((f[i] = grab_fd(pidfd, FD_LISTEN + i)) < 0) {
			snprintf(why, len, "fd %d of the restored process: %s", FD_LISTEN + i, strerror(errno));
			goto out;
		}
	if (!read_exact(f[3], buf, sizeof(INFLIGHT_PIPE)) || memcmp(buf, INFLIGHT_PIPE, sizeof(INFLIGHT_PIPE))) {
		snprintf(why, len, "the bytes in flight on the pipe were lost");
		goto out;
	}
	if (!read_exact(f[2], buf, sizeof(INFLIGHT_UNIX)) || memcmp(buf, INFLIGHT_UNIX, sizeof(INFLIGHT_UNIX))) {
		snprintf(why, len, "the bytes in flight on the unix socket were lost");
		goto out;
	}
	if (write(f[4], "p", 1) != 1 || !read_exact(f[3], buf, 1) || buf[0] != 'p' || write(f[1], "u", 1) != 1 ||
	    !read_exact(f[2], buf, 1) || buf[0] != 'u') {
		snprintf(why, len, "the restored pipe or unix socket pair does not carry bytes");
		goto out;
	}
	if (getsockname(f[0], (struct sockaddr *)&a, &alen) < 0 || a.sin_family != AF_INET) {
		snprintf(why, len, "the restored TCP socket has no address");
		goto out;
	}
	cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (cl < 0 || connect(cl, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(why, len, "connect to the restored TCP listener on port %d: %s", ntohs(a.sin_port),
			 strerror(errno));
		goto out;
	}
	for (int i = 0; i < 40 && acc < 0; i++) {
		acc = accept4(f[0], NULL, NULL, SOCK_CLOEXEC);
		if (acc < 0)
			om_sleep_ms(50);
	}
	if (acc < 0 || write(cl, "t", 1) != 1 || !read_exact(acc, buf, 1) || buf[0] != 't') {
		snprintf(why, len, "the restored TCP listener does not accept connections");
		goto out;
	}
	snprintf(
	    why, len,
	    "a process of uid %d sleeping in nanosleep() with a TCP listener, a unix socket pair and a pipe (bytes "
	    "in flight on both) was dumped and restored, and all of them work",
	    PROBE_UID);
	ok = true;
out:
	for (int i = 0; i < 5; i++)
		if (f[i] >= 0)
			close(f[i]);
	if (cl >= 0)
		close(cl);
	if (acc >= 0)
		close(acc);
	close(pidfd);
	return ok;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void smoke(const struct smoke_arg *a, struct smoke_result *r)
{
	char dir[PATH_MAX], img[PATH_MAX + 8];
	int lsk, sp[2], pp[2];
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	pid_t pid, root;
	om_error_t err = NULL;
	double t;

	snprintf(dir, sizeof(dir), "%.3000s/probe-%d", a->workdir, (int)getpid());
	snprintf(img, sizeof(img), "%s/img", dir);
	if (om_rm_rf_at(AT_FDCWD, dir, &err) < 0 || om_mkdir_p(img, 0700, &err) < 0) {
		snprintf(r->detail, sizeof(r->detail), "scratch directory: %s", err->msg);
		om_error_release(&err);
		return;
	}
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	if (lsk < 0 || bind(lsk, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lsk, 4) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0 || pipe(pp) < 0) {
		snprintf(r->detail, sizeof(r->detail), "set up the probe's sockets: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0)
		subject(lsk, sp[0], sp[1], pp[0], pp[1]);
	close(lsk);
	close(sp[0]);
	close(sp[1]);
	close(pp[0]);
	close(pp[1]);
	if (pid < 0) {
		snprintf(r->detail, sizeof(r->detail), "fork: %s", strerror(errno));
		return;
	}
	/* wait until it sleeps in its syscall */
	for (int i = 0; i < 500; i++) {
		struct om_proc p;
		om_error_t tmp = NULL;
		bool asleep = false;
		if (om_proc_read(pid, &p, false, &tmp) == 0) {
			asleep = strcmp(p.comm, "sleep") == 0 && p.state == 'S';
			om_proc_release(&p);
		}
		om_error_release(&tmp);
		if (asleep)
			break;
		om_sleep_ms(10);
	}
	t = om_now();
	if (om_criu_dump(
		&(struct om_criu_dump){.root = pid,
				       .images_dir = img,
				       .work_dir = dir,
				       .bound = {.timeout_s = OM_CRIU_QUERY_TIMEOUT, .cancel_fd = a->cancel_fd}},
		&err) < 0) {
		snprintf(r->detail, sizeof(r->detail), "dump: %s%s", err->msg,
			 strstr(err->msg, "rlimit") ? " (a process of another user cannot be dumped: root lacks "
						      "CAP_SYS_RESOURCE and this CRIU lacks omtools' carried patch "
						      "0001; run scripts/setup.sh)"
						    : "");
		om_error_release(&err);
		reap(pid);
		return;
	}
	r->dump_s = om_now() - t;
	reap(pid); /* CRIU killed it after the dump */
	t = om_now();
	root = om_criu_restore_child(
	    &(struct om_criu_restore){.images_dir = img,
				      .work_dir = dir,
				      .bound = {.timeout_s = OM_CRIU_QUERY_TIMEOUT, .cancel_fd = a->cancel_fd}},
	    &err);
	if (root < 0) {
		snprintf(r->detail, sizeof(r->detail), "restore: %s", err->msg);
		om_error_release(&err);
		return;
	}
	r->restore_s = om_now() - t;
	r->ok = verify(root, r->detail, sizeof(r->detail));
	reap(root);
	if (r->ok && om_rm_rf_at(AT_FDCWD, dir, &err) < 0)
		om_error_release(&err);
}

static int smoke_fn(void *arg, int out_fd)
{
	struct smoke_result r = {0};

	/* the restored subject passes to us when CRIU's runner exits */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	smoke(arg, &r);
	return om_write_all(out_fd, &r, sizeof(r)) < 0 ? 1 : 0;
}

static int feature(const struct om_bound *b, const char *name)
{
	om_error_t tmp = NULL;
	int r = om_criu_feature(b, name, &tmp);
	om_error_release(&tmp);
	return r;
}

int om_probe_criu(const char *workdir, int cancel_fd, struct om_probe_report *rep, om_error_t *err)
{
	struct om_bound q = {.timeout_s = OM_CRIU_QUERY_TIMEOUT, .cancel_fd = cancel_fd};
	struct smoke_arg sa = {.workdir = workdir, .cancel_fd = cancel_fd};
	struct om_bounded_result res;
	struct smoke_result sr;
	cleanup_free char *out = NULL;

	memset(rep, 0, sizeof(*rep));
	snprintf(rep->criu_binary, sizeof(rep->criu_binary), "%s", om_criu_binary());
	if (om_criu_version(&q, rep->criu_version, sizeof(rep->criu_version), err) < 0 ||
	    om_criu_check(&q, &out, err) < 0)
		return om_error_set_exit(err, OM_EXIT_CRIU);
	/* the warnings of `criu check` (e.g. breakpoints that do not work) */
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *w = strstr(l, "Warn");
		char *msg = w ? strstr(w, "): ") : NULL;
		size_t used = strlen(rep->check_warnings);
		if (msg == NULL || strstr(rep->check_warnings, msg + 3))
			continue;
		snprintf(rep->check_warnings + used, sizeof(rep->check_warnings) - used, "%s%s", used ? "; " : "",
			 msg + 3);
	}
	rep->breakpoints = feature(&q, "breakpoints");
	rep->network_lock_nftables = feature(&q, "network_lock_nftables");
	rep->userns = feature(&q, "userns");
	rep->uffd = feature(&q, "uffd-noncoop");
	rep->timens = feature(&q, "timens");

	if (om_bounded_call(&(struct om_bound){.timeout_s = 3 * OM_CRIU_QUERY_TIMEOUT, .cancel_fd = cancel_fd},
			    "the CRIU smoke test", smoke_fn, &sa, sizeof(sr), &res, err) < 0)
		return om_error_set_exit(err, OM_EXIT_CRIU);
	if (res.len != sizeof(sr)) {
		free(res.out);
		return om_make_error(err, OM_ECRIU, "the CRIU smoke test died (wait status %#x)", (unsigned)res.status);
	}
	memcpy(&sr, res.out, sizeof(sr));
	free(res.out);
	sr.detail[sizeof(sr.detail) - 1] = '\0';
	rep->smoke_ok = sr.ok;
	rep->dump_seconds = sr.dump_s;
	rep->restore_seconds = sr.restore_s;
	snprintf(rep->smoke_detail, sizeof(rep->smoke_detail), "%s", sr.detail);
	if (!sr.ok)
		return om_make_error(err, OM_ECRIU, "CRIU %s at %s fails the smoke test: %s", rep->criu_version,
				     rep->criu_binary, sr.detail);
	return 0;
}
