#include "config.h"
#include "util.h"
#include "bounded.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

void om_freep(void *p)
{
	free(*(void **)p);
}

void om_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

void om_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
	*f = NULL;
}

char *om_strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int om_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int om_read_file_at(int dirfd, const char *path, char **out, size_t *len, size_t max, om_error_t *err)
{
	cleanup_close int fd = -1;
	cleanup_free char *buf = NULL;
	size_t cap = 4096, used = 0;

	if (max == 0)
		max = 64u << 20;
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return om_make_error(err, errno, "open `%s`", path);
	buf = malloc(cap + 1);
	if (buf == NULL)
		return om_make_error(err, ENOMEM, "read `%s`", path);
	for (;;) {
		ssize_t n;
		if (used == cap) {
			char *nb;
			if (cap >= max)
				return om_make_error(err, EFBIG, "read `%s`: larger than %zu bytes", path, max);
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (nb == NULL)
				return om_make_error(err, ENOMEM, "read `%s`", path);
			buf = nb;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return om_make_error(err, errno, "read `%s`", path);
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	if (len)
		*len = used;
	*out = om_steal_ptr(buf);
	return 0;
}

int om_read_file(const char *path, char **out, size_t *len, om_error_t *err)
{
	return om_read_file_at(AT_FDCWD, path, out, len, 0, err);
}

int om_write_knob(const char *path, const char *value, om_error_t *err)
{
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return om_make_error(err, errno, "open `%s`", path);
	if (write(fd, value, strlen(value)) < 0)
		return om_make_error(err, errno, "write `%s` to `%s`", value, path);
	return 0;
}

int om_fsync_dir_at(int dirfd, const char *path, om_error_t *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return om_make_error(err, errno, "open directory `%s`", path);
	if (fsync(fd) < 0 && errno != EINVAL)
		return om_make_error(err, errno, "fsync directory `%s`", path);
	return 0;
}

int om_mkdir_p(const char *path, mode_t mode, om_error_t *err)
{
	cleanup_free char *p = strdup(path);
	if (p == NULL)
		return om_make_error(err, ENOMEM, "mkdir `%s`", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return om_make_error(err, errno, "mkdir `%s`", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return om_make_error(err, errno, "mkdir `%s`", p);
	return 0;
}

int om_rm_rf_at(int dfd, const char *path, om_error_t *err)
{
	cleanup_close int fd = -1;
	DIR *d;
	struct dirent *de;

	if (unlinkat(dfd, path, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return om_make_error(err, errno, "remove `%s`", path);
	fd = openat(dfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return om_make_error(err, errno, "open `%s`", path);
	}
	d = fdopendir(om_steal_fd(fd));
	if (d == NULL)
		return om_make_error(err, errno, "opendir `%s`", path);
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (om_rm_rf_at(dirfd(d), de->d_name, err) < 0) {
			closedir(d);
			return om_error_wrap(err, "remove `%s`", path);
		}
	}
	closedir(d);
	if (unlinkat(dfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return om_make_error(err, errno, "rmdir `%s`", path);
	return 0;
}

const char *om_rundir(void)
{
	const char *rundir = getenv("OM_RUNDIR");
	return rundir && *rundir ? rundir : "/run/omtools";
}

/* Who holds the lock of fd, as its holder wrote it: "omckpt -g 5 (PID 1234)". */
static void lock_holder(int fd, char *out, size_t size)
{
	char buf[32], path[64];
	cleanup_free char *cmd = NULL;
	size_t len = 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	pid_t pid;
	om_error_t tmp = NULL;

	snprintf(out, size, "another process");
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (om_parse_pid(buf, &pid) < 0 || kill(pid, 0) < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (om_read_file_at(AT_FDCWD, path, &cmd, &len, 4096, &tmp) < 0 || len == 0) {
		om_error_release(&tmp);
		snprintf(out, size, "PID %d", (int)pid);
		return;
	}
	while (len > 0 && cmd[len - 1] == '\0')
		len--;
	for (size_t i = 0; i < len; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[len] = '\0';
	snprintf(out, size, "%.200s (PID %d)", cmd, (int)pid);
}

int om_node_lock_wait(const char *name, const struct om_bound *wait, int *fd, om_error_t *err)
{
	const char *rundir = om_rundir();
	cleanup_free char *path = NULL;
	double deadline = om_now() + wait->timeout_s;
	char me[32];

	if (om_mkdir_p(rundir, 0700, err) < 0)
		return -1;
	path = om_strdup_printf("%s/%s.lock", rundir, name);
	if (path == NULL)
		return om_make_error(err, ENOMEM, "lock %s", name);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return om_make_error(err, errno, "open `%s`", path);
	while (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char who[256];

		if (e == EINTR)
			continue;
		if (e == EWOULDBLOCK && om_now() < deadline) {
			if (om_pause(wait->cancel_fd, 20, err) < 0) {
				close(*fd);
				*fd = -1;
				return om_error_wrap(err, "wait for the lock `%s`", path);
			}
			continue;
		}
		lock_holder(*fd, who, sizeof(who));
		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK)
			return om_make_error(err, EWOULDBLOCK, "lock `%s` is held by %s", path, who);
		return om_make_error(err, e, "lock `%s`", path);
	}
	/* say who holds it, for whoever finds it taken */
	snprintf(me, sizeof(me), "%d\n", (int)getpid());
	if (ftruncate(*fd, 0) < 0 || pwrite(*fd, me, strlen(me), 0) < 0) {
		/* the lock holds all the same; only the holder's name is missing */
	}
	return 0;
}

int om_node_lock(const char *name, int *fd, om_error_t *err)
{
	return om_node_lock_wait(name, &(struct om_bound){.timeout_s = 0}, fd, err);
}

int om_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

int om_parse_pid(const char *s, pid_t *out)
{
	unsigned long v;
	if (om_parse_uint(s, INT_MAX, &v) < 0 || v == 0)
		return -1;
	*out = (pid_t)v;
	return 0;
}

double om_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void om_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

const char *om_node_name(void)
{
	static char name[256];
	const char *env = getenv("OM_NODE");
	struct utsname u;

	if (env && *env)
		return env;
	if (name[0])
		return name;
	if (uname(&u) < 0)
		return "localhost";
	snprintf(name, sizeof(name), "%s", u.nodename);
	name[strcspn(name, ".")] = '\0';
	return name;
}

void om_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void om_vlogf(void (*fn)(void *arg, const char *line), void *arg, const char *fmt, va_list ap)
{
	char line[2048];

	if (fn == NULL)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	fn(arg, line);
}
