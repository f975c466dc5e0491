/* lib/util.h — small helpers shared by every part of libom:
 * cleanup attributes, whole-file I/O, directories, durable writes. */
#ifndef OM_UTIL_H
#define OM_UTIL_H

#include "bounded.h"
#include "error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

void om_freep(void *p);
void om_closep(int *fd);
void om_fclosep(FILE **f);
#define cleanup_free __attribute__((cleanup(om_freep)))
#define cleanup_close __attribute__((cleanup(om_closep)))
#define cleanup_fclose __attribute__((cleanup(om_fclosep)))

/* Return the value of a cleanup-managed variable and disarm its cleanup. */
#define om_steal_ptr(p)                                                                                                \
	({                                                                                                             \
		__typeof__(p) _t = (p);                                                                                \
		(p) = NULL;                                                                                            \
		_t;                                                                                                    \
	})
#define om_steal_fd(fd)                                                                                                \
	({                                                                                                             \
		int _t = (fd);                                                                                         \
		(fd) = -1;                                                                                             \
		_t;                                                                                                    \
	})

char *om_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read a whole file (at most max bytes; 0 = 64 MiB) relative to dirfd (AT_FDCWD ok). */
int om_read_file_at(int dirfd, const char *path, char **out, size_t *len, size_t max, om_error_t *err);
int om_read_file(const char *path, char **out, size_t *len, om_error_t *err);
/* Write a string to an existing file (cgroup/proc knobs): open, write, close. */
int om_write_knob(const char *path, const char *value, om_error_t *err);
int om_write_all(int fd, const void *buf, size_t len);
int om_fsync_dir_at(int dirfd, const char *path, om_error_t *err);
/* mkdir -p with the given mode. */
int om_mkdir_p(const char *path, mode_t mode, om_error_t *err);
/* rm -rf; ENOENT is not an error. */
int om_rm_rf_at(int dirfd, const char *path, om_error_t *err);

/* A node-local lock: flock(LOCK_EX|LOCK_NB) on /run/omtools/<name>.lock.
 * EWOULDBLOCK when another process holds it; the lock lives as long as *fd. */
int om_node_lock(const char *name, int *fd, om_error_t *err);
/* The same, retrying for up to wait_s seconds; the EWOULDBLOCK error names the
 * holder ("lock `/run/omtools/group-5.lock` is held by omckpt -g 5 (PID 1234)"). */
int om_node_lock_wait(const char *name, const struct om_bound *wait, int *fd, om_error_t *err);
/* The node-local state directory: $OM_RUNDIR, else /run/omtools. */
const char *om_rundir(void);

/* Parse a non-negative decimal integer (whole string); <0 on error. */
int om_parse_uint(const char *s, unsigned long max, unsigned long *out);
/* Parse a positive PID. */
int om_parse_pid(const char *s, pid_t *out);

/* Monotonic clock in seconds. */
double om_now(void);
void om_sleep_ms(long ms);
/* Format one log line (at most 2 KiB) and hand it to fn(arg, line), if fn. */
void om_vlogf(void (*fn)(void *arg, const char *line), void *arg, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Node name: OM_NODE or the short hostname. */
const char *om_node_name(void);
/* Is stdout for machines? helpers for JSON strings */
void om_json_string(FILE *out, const char *s);

#endif
