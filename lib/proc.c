#include "config.h"
#include "proc.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int om_pids_push(pid_t **arr, size_t *n, pid_t v)
{
	if ((*n & (*n - 1)) == 0 || *n == 0) {
		size_t cap = *n ? *n * 2 : 8;
		pid_t *na = realloc(*arr, cap * sizeof(pid_t));
		if (na == NULL)
			return -1;
		*arr = na;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

bool om_pids_contains(const pid_t *arr, size_t n, pid_t v)
{
	for (size_t i = 0; i < n; i++)
		if (arr[i] == v)
			return true;
	return false;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

void om_pids_sort(pid_t *arr, size_t n)
{
	if (n > 1)
		qsort(arr, n, sizeof(pid_t), cmp_pid);
}

static int read_stat(pid_t pid, struct om_proc *p, om_error_t *err)
{
	char path[64];
	cleanup_free char *buf = NULL;
	char *lp, *rp;
	om_error_t tmp = NULL;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (om_read_file(path, &buf, NULL, &tmp) < 0) {
		int st = tmp->status;
		om_error_release(&tmp);
		return om_make_error(err, st == ENOENT ? ESRCH : st, "process %d", pid);
	}
	lp = strchr(buf, '(');
	rp = strrchr(buf, ')');
	if (lp == NULL || rp == NULL || rp < lp || rp[1] == '\0')
		return om_make_error(err, EINVAL, "cannot parse %s", path);
	snprintf(p->comm, sizeof(p->comm), "%.*s", (int)(rp - lp - 1), lp + 1);
	/* after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime */
	if (sscanf(rp + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &p->state,
		   &p->ppid, &p->starttime) != 3)
		return om_make_error(err, EINVAL, "cannot parse %s", path);
	return 0;
}

static char *read_cmdline(pid_t pid, const char *comm)
{
	char path[64];
	cleanup_free char *buf = NULL;
	size_t len = 0;
	om_error_t tmp = NULL;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if (om_read_file(path, &buf, &len, &tmp) < 0 || len == 0) {
		om_error_release(&tmp);
		return om_strdup_printf("[%s]", comm);
	}
	while (len > 0 && buf[len - 1] == '\0')
		len--;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0' || buf[i] == '\n')
			buf[i] = ' ';
	buf[len] = '\0';
	return om_steal_ptr(buf);
}

/* Thread ids of pid, sorted (ESRCH when the process does not exist). */
static int list_tasks(pid_t pid, pid_t **tids, size_t *n, om_error_t *err)
{
	char path[64];
	DIR *d;
	struct dirent *de;

	*tids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (d == NULL)
		return om_make_error(err, errno == ENOENT ? ESRCH : errno, "process %d", pid);
	while ((de = readdir(d)) != NULL) {
		pid_t tid;
		if (om_parse_pid(de->d_name, &tid) < 0)
			continue;
		if (om_pids_push(tids, n, tid) < 0) {
			closedir(d);
			return om_make_error(err, ENOMEM, "list threads of %d", pid);
		}
	}
	closedir(d);
	om_pids_sort(*tids, *n);
	return 0;
}

int om_proc_read(pid_t pid, struct om_proc *p, bool with_tids, om_error_t *err)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	if (read_stat(pid, p, err) < 0)
		return -1;
	p->cmdline = read_cmdline(pid, p->comm);
	if (p->cmdline == NULL)
		return om_make_error(err, ENOMEM, "read cmdline of %d", pid);
	if (with_tids && list_tasks(pid, &p->tids, &p->n_tids, err) < 0)
		return -1;
	return 0;
}

void om_proc_release(struct om_proc *p)
{
	free(p->cmdline);
	free(p->tids);
	p->cmdline = NULL;
	p->tids = NULL;
	p->n_tids = 0;
}

enum om_pid_state om_pid_state(pid_t pid)
{
	struct om_proc p;
	om_error_t err = NULL;

	if (read_stat(pid, &p, &err) < 0) {
		om_error_release(&err);
		return OM_PID_FREE;
	}
	return p.state == 'Z' || p.state == 'X' ? OM_PID_ZOMBIE : OM_PID_ALIVE;
}

int om_proc_children(pid_t pid, pid_t **out, size_t *n, om_error_t *err)
{
	cleanup_free pid_t *tids = NULL;
	size_t ntids = 0;

	*out = NULL;
	*n = 0;
	if (list_tasks(pid, &tids, &ntids, err) < 0)
		return -1;
	for (size_t t = 0; t < ntids; t++) {
		cleanup_free char *buf = NULL;
		om_error_t tmp = NULL;
		char path[96], *s, *save = NULL;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[t]);
		if (om_read_file(path, &buf, NULL, &tmp) < 0) {
			om_error_release(&tmp);
			continue; /* thread exited meanwhile */
		}
		for (s = strtok_r(buf, " \n", &save); s; s = strtok_r(NULL, " \n", &save)) {
			pid_t c;
			if (om_parse_pid(s, &c) == 0 && !om_pids_contains(*out, *n, c) && om_pids_push(out, n, c) < 0)
				return om_make_error(err, ENOMEM, "list children of %d", pid);
		}
	}
	return 0;
}

int om_proc_descendants(pid_t pid, pid_t **out, size_t *n, om_error_t *err)
{
	*out = NULL;
	*n = 0;
	if (om_pids_push(out, n, pid) < 0)
		return om_make_error(err, ENOMEM, "list descendants of %d", pid);
	for (size_t i = 0; i < *n; i++) {
		cleanup_free pid_t *ch = NULL;
		size_t nch = 0;
		om_error_t tmp = NULL;

		if (om_proc_children((*out)[i], &ch, &nch, &tmp) < 0) {
			if (i == 0) {
				free(*out);
				*out = NULL;
				*n = 0;
				*err = tmp;
				return -1;
			}
			om_error_release(&tmp); /* exited meanwhile */
			continue;
		}
		for (size_t j = 0; j < nch; j++)
			if (!om_pids_contains(*out, *n, ch[j]) && om_pids_push(out, n, ch[j]) < 0)
				return om_make_error(err, ENOMEM, "list descendants of %d", pid);
	}
	return 0;
}

pid_t om_pids_wait_gone(const pid_t *pids, size_t n, double timeout_s)
{
	double deadline = om_now() + timeout_s;

	for (size_t i = 0; i < n; i++)
		while (om_pid_state(pids[i]) == OM_PID_ALIVE) {
			if (om_now() > deadline)
				return pids[i];
			om_sleep_ms(2);
		}
	return 0;
}

bool om_proc_same_ns(pid_t a, pid_t b, const char *kind)
{
	char pa[64], pb[64];
	struct stat sa, sb;

	snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", (int)a, kind);
	snprintf(pb, sizeof(pb), "/proc/%d/ns/%s", (int)b, kind);
	if (stat(pa, &sa) < 0 || stat(pb, &sb) < 0)
		return true; /* cannot tell: assume the common case */
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

bool om_proc_is_kthread(pid_t pid)
{
	char path[64], buf[8];
	ssize_t r;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	r = readlink(path, buf, sizeof(buf));
	return r < 0 && errno == ENOENT && om_pid_state(pid) == OM_PID_ALIVE;
}

uint64_t om_proc_rss_bytes(pid_t pid)
{
	char path[64];
	unsigned long long size = 0, rss = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

void om_proc_kill_trees(const pid_t *roots, size_t n)
{
	cleanup_free pid_t *all = NULL;
	cleanup_free int *fds = NULL;
	size_t nall = 0, cap = 0;

	for (int round = 0; round < 16; round++) {
		size_t added = 0;
		for (size_t r = 0; r < n; r++) {
			cleanup_free pid_t *now = NULL;
			size_t nn = 0;
			om_error_t tmp = NULL;

			if (roots[r] <= 0 || om_proc_descendants(roots[r], &now, &nn, &tmp) < 0) {
				om_error_release(&tmp);
				continue;
			}
			for (size_t i = 0; i < nn; i++) {
				int fd;
				if (om_pids_contains(all, nall, now[i]))
					continue;
				fd = (int)syscall(SYS_pidfd_open, now[i], 0);
				if (fd < 0)
					continue; /* gone already */
				if (nall == cap) {
					size_t nc = cap ? cap * 2 : 64;
					int *nf = realloc(fds, nc * sizeof(int));
					if (nf == NULL) {
						close(fd);
						continue;
					}
					fds = nf;
					cap = nc;
				}
				if (om_pids_push(&all, &nall, now[i]) < 0) {
					close(fd);
					continue;
				}
				fds[nall - 1] = fd;
				syscall(SYS_pidfd_send_signal, fd, SIGSTOP, NULL, 0);
				added++;
			}
		}
		if (added == 0)
			break;
	}
	for (size_t i = 0; i < nall; i++)
		syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0);
	for (size_t i = 0; i < nall; i++)
		close(fds[i]);
	(void)om_pids_wait_gone(all, nall, 5);
}

int om_proc_fds(pid_t pid, om_proc_fd_fn fn, void *arg, om_error_t *err)
{
	char dir[64];
	DIR *d;
	struct dirent *de;
	int ret = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT || errno == ESRCH ? 0 : om_make_error(err, errno, "open %s", dir);
	while (ret == 0 && (de = readdir(d)) != NULL) {
		char link[320], target[256];
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue; /* closed meanwhile */
		target[len] = '\0';
		ret = fn(arg, atoi(de->d_name), target, err);
	}
	closedir(d);
	return ret < 0 ? -1 : 0;
}
