/* tests/zdtm/zombie.c — a process tree holding an unreaped zombie child.
 *
 *   zombie --dir DIR --name NAME
 *
 * Forks a child that exits at once with status 7 and is never reaped (until
 * the end), then counts ticks (10 ms) in memory. Writes its status once when
 * ready, then nothing while it runs but on request, so no file of it changes
 * size under CRIU:
 *
 *  - SIGUSR1: writes DIR/NAME.status (temporary name, then rename):
 *    "pid=<pid> counter=<n> zombie=<child pid> ready=1"
 *  - SIGTERM: checks that the child is still its zombie child, reaps it and
 *    checks its exit status is 7, that getpid() did not change and that the
 *    counter only went up; writes DIR/NAME.result PASS (exit 0) or
 *    "FAIL: <reason>" (exit 1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t want_status, want_term;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_status = 1;
	else
		want_term = 1;
}

static void write_file(const char *dir, const char *name, const char *ext, const char *text)
{
	char tmp[4096], path[4096];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp", dir, name, ext);
	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) {
		close(fd);
		return;
	}
	close(fd);
	rename(tmp, path);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL;
	unsigned long long counter = 0, last = 0;
	struct sigaction sa;
	char text[256];
	pid_t me = getpid(), child;
	int devnull;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--name"))
			name = argv[i + 1];
	}
	if (dir == NULL || name == NULL) {
		fprintf(stderr, "usage: zombie --dir DIR --name NAME\n");
		return 2;
	}
	/* nothing inherited stays open: CRIU sees only what the tree owns */
	syscall(SYS_close_range, 3, ~0U, 0);
	devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (devnull > 2)
			close(devnull);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	child = fork();
	if (child < 0)
		return 1;
	if (child == 0)
		_exit(7);
	want_status = 1; /* the first status says it is ready */
	for (;;) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
		counter++;
		if (counter != last + 1) {
			write_file(dir, name, "result", "FAIL: counter jumped\n");
			return 1;
		}
		last = counter;
		if (want_status) {
			want_status = 0;
			snprintf(text, sizeof(text), "pid=%d counter=%llu zombie=%d ready=1\n", (int)getpid(), counter,
				 (int)child);
			write_file(dir, name, "status", text);
		}
		if (want_term) {
			int st = 0;
			pid_t r = waitpid(child, &st, WNOHANG);

			if (getpid() != me)
				snprintf(text, sizeof(text), "FAIL: pid %d is now %d\n", (int)me, (int)getpid());
			else if (r != child)
				snprintf(text, sizeof(text),
					 "FAIL: child %d was not a zombie to reap (waitpid: %d, %s)\n", (int)child,
					 (int)r, r < 0 ? strerror(errno) : "still running");
			else if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
				snprintf(text, sizeof(text), "FAIL: child %d ended with status 0x%x, not exit 7\n",
					 (int)child, st);
			else
				snprintf(text, sizeof(text), "PASS\n");
			write_file(dir, name, "result", text);
			return strcmp(text, "PASS\n") ? 1 : 0;
		}
	}
}
