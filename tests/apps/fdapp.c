/* tests/apps/fdapp.c — a process holding the file descriptors and locks of
 * a60-fds.sh: a timerfd, an eventfd, a signalfd, an inotify watch, all but
 * the eventfd watched by one epoll; a flock() lock and an fcntl() (POSIX)
 * record lock.
 *
 *   fdapp DIR
 *
 * DIR/watch is watched (IN_CREATE), DIR/flock.file is flock(LOCK_EX)ed,
 * bytes 0-99 of DIR/fcntl.file are write-locked with F_SETLK. The eventfd
 * starts at 1000. SIGUSR1 and SIGUSR2 are blocked and read from the signalfd:
 * SIGUSR1 reads the eventfd counter (reported as evfd=) and writes it back
 * plus one; SIGUSR2 ends the program (locks released, status "done").
 * DIR/status gets a line after every event (the last line counts):
 *   ticks=<timer expirations> sigs=<SIGUSR1 seen> evfd=<last counter read>
 *   inotify=<last name created in watch/> ok
 * A failing call writes "FAIL <what>" and exits 1. Built by `make check`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static const char *dir;

static void status(const char *text)
{
	char path[4096], line[4200];
	int fd, n;

	/* one line appended per event, never a file rewritten and renamed: a
	 * checkpoint can come while the file is open, and CRIU reopens it by its
	 * path when that generation is restored, however old (an O_APPEND file
	 * keeps its path, and CRIU skips its size check) */
	snprintf(path, sizeof(path), "%s/status", dir);
	n = snprintf(line, sizeof(line), "%s\n", text);
	if (n >= (int)sizeof(line))
		n = (int)sizeof(line) - 1;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		exit(1);
	if (write(fd, line, (size_t)n) != n || close(fd) != 0)
		exit(1);
}

static void die(const char *what)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "FAIL %s: %s", what, strerror(errno));
	status(buf);
	exit(1);
}

static int open_in(const char *name, int flags)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags | O_CLOEXEC, 0644);
}

int main(int argc, char **argv)
{
	struct itimerspec its = {.it_interval = {0, 20000000}, .it_value = {0, 20000000}};
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	uint64_t ticks = 0, sigs = 0, evfd_seen = 0, one;
	char last[256] = "-", text[1024], path[4096];
	sigset_t mask;
	int tfd, efd, sfd, ifd, ep, lk1, lk2;

	if (argc != 2) {
		fprintf(stderr, "usage: fdapp DIR\n");
		return 2;
	}
	dir = argv[1];
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		die("sigprocmask");
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0)
		die("signalfd");
	if ((tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
		die("timerfd");
	if ((efd = eventfd(1000, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		die("eventfd");
	snprintf(path, sizeof(path), "%s/watch", dir);
	if ((ifd = inotify_init1(IN_CLOEXEC)) < 0 || inotify_add_watch(ifd, path, IN_CREATE) < 0)
		die("inotify");
	if ((lk1 = open_in("flock.file", O_RDWR | O_CREAT)) < 0 || flock(lk1, LOCK_EX | LOCK_NB) < 0)
		die("flock");
	if ((lk2 = open_in("fcntl.file", O_RDWR | O_CREAT)) < 0 || fcntl(lk2, F_SETLK, &fl) < 0)
		die("fcntl lock");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	int watched[] = {tfd, sfd, ifd};
	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = watched[i]};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, watched[i], &ev) < 0)
			die("epoll_ctl");
	}
	status("ticks=0 sigs=0 evfd=0 inotify=- ok");
	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == tfd) {
				uint64_t exp;
				if (read(tfd, &exp, sizeof(exp)) != sizeof(exp))
					die("read timerfd");
				ticks += exp;
			} else if (fd == sfd) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					die("read signalfd");
				if (si.ssi_signo == SIGUSR2) {
					flock(lk1, LOCK_UN);
					fl.l_type = F_UNLCK;
					fcntl(lk2, F_SETLK, &fl);
					status("done");
					return 0;
				}
				sigs++;
				if (read(efd, &evfd_seen, sizeof(evfd_seen)) != sizeof(evfd_seen))
					die("read eventfd");
				one = evfd_seen + 1;
				if (write(efd, &one, sizeof(one)) != sizeof(one))
					die("write eventfd");
			} else if (fd == ifd) {
				char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
				ssize_t len = read(ifd, buf, sizeof(buf));
				if (len <= 0)
					die("read inotify");
				for (char *p = buf; p < buf + len;) {
					struct inotify_event *e = (struct inotify_event *)p;
					if (e->len)
						snprintf(last, sizeof(last), "%s", e->name);
					p += sizeof(*e) + e->len;
				}
			}
		}
		snprintf(text, sizeof(text), "ticks=%" PRIu64 " sigs=%" PRIu64 " evfd=%" PRIu64 " inotify=%s ok", ticks,
			 sigs, evfd_seen, last);
		status(text);
	}
}
