#include "config.h"
#include "timerfd.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

struct tfd_info {
	unsigned long long ticks, vs, vns, is, ins;
};

static int read_info(pid_t pid, const char *fd, struct tfd_info *ti)
{
	char path[320], line[256];
	cleanup_fclose FILE *f = NULL;
	int got = 0;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%.255s", (int)pid, fd);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "ticks: %llu", &ti->ticks) == 1)
			got |= 1;
		else if (sscanf(line, "it_value: (%llu, %llu)", &ti->vs, &ti->vns) == 2)
			got |= 2;
		else if (sscanf(line, "it_interval: (%llu, %llu)", &ti->is, &ti->ins) == 2)
			got |= 4;
	}
	return got == 7 ? 0 : -1;
}

static int rearm(pid_t pid, int *pidfd, int fdnum, const struct tfd_info *ti, om_error_t *err)
{
	struct itimerspec its = {.it_value = {(time_t)ti->is, (long)ti->ins},
				 .it_interval = {(time_t)ti->is, (long)ti->ins}};
	uint64_t ticks = ti->ticks;
	cleanup_close int fd = -1;

	if (*pidfd < 0 && (*pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0)
		return om_make_error(err, errno, "pidfd_open %d", (int)pid);
	fd = (int)syscall(SYS_pidfd_getfd, *pidfd, fdnum, 0);
	if (fd < 0)
		return om_make_error(err, errno, "pidfd_getfd %d of process %d", fdnum, (int)pid);
	if (timerfd_settime(fd, 0, &its, NULL) < 0)
		return om_make_error(err, errno, "re-arm the timerfd %d of process %d", fdnum, (int)pid);
	/* settime forgets the expirations the process has not read yet */
	if (ticks > 0 && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0)
		return om_make_error(err, errno, "restore the ticks of timerfd %d of process %d", fdnum, (int)pid);
	return 0;
}

struct rearm_arg {
	pid_t pid;
	int pidfd;
	size_t *fixed;
};

static int rearm_one(void *arg, int fd, const char *target, om_error_t *err)
{
	struct rearm_arg *a = arg;
	struct tfd_info ti = {0};
	char num[16];

	snprintf(num, sizeof(num), "%d", fd);
	if (strcmp(target, "anon_inode:[timerfd]") != 0 || read_info(a->pid, num, &ti) < 0)
		return 0;
	if (ti.vs != 0 || ti.vns != 0 || (ti.is == 0 && ti.ins == 0))
		return 0; /* armed, or a one-shot timer that has fired */
	if (rearm(a->pid, &a->pidfd, fd, &ti, err) < 0)
		return -1;
	(*a->fixed)++;
	return 0;
}

int om_timerfd_rearm(const pid_t *pids, size_t n, size_t *fixed, om_error_t *err)
{
	*fixed = 0;
	for (size_t i = 0; i < n; i++) {
		struct rearm_arg a = {.pid = pids[i], .pidfd = -1, .fixed = fixed};
		int r = om_proc_fds(pids[i], rearm_one, &a, err); /* a process gone: the restore's checks say so */

		if (a.pidfd >= 0)
			close(a.pidfd);
		if (r < 0)
			return -1;
	}
	return 0;
}
