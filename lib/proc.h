/* lib/proc.h — reading process facts from /proc. */
#ifndef OM_PROC_H
#define OM_PROC_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct om_proc {
	pid_t pid;
	pid_t ppid;
	char state;		      /* R S D T Z ... from /proc/PID/stat */
	unsigned long long starttime; /* clock ticks after boot: tells a reused PID apart */
	char comm[64];
	char *cmdline; /* argv joined by spaces; "[comm]" for kernel threads */
	pid_t *tids;
	size_t n_tids;
};

enum om_pid_state { OM_PID_FREE = 0, OM_PID_ALIVE = 1, OM_PID_ZOMBIE = 2 };

/* Fill p from /proc/PID; ESRCH when the process does not exist. */
int om_proc_read(pid_t pid, struct om_proc *p, bool with_tids, om_error_t *err);
void om_proc_release(struct om_proc *p);
/* Is this PID (or TID) in use, and how. */
enum om_pid_state om_pid_state(pid_t pid);
/* Direct children of all threads of pid. */
int om_proc_children(pid_t pid, pid_t **out, size_t *n, om_error_t *err);
/* pid and all its descendants (pre-order). */
int om_proc_descendants(pid_t pid, pid_t **out, size_t *n, om_error_t *err);
/* Are a and b in the same namespace of this kind ("pid", "ipc", ...)? */
bool om_proc_same_ns(pid_t a, pid_t b, const char *kind);
/* Resident memory of a process in bytes (/proc/PID/statm); 0 if unknown. */
uint64_t om_proc_rss_bytes(pid_t pid);
/* Kernel thread (no mm)? */
bool om_proc_is_kthread(pid_t pid);
/* Wait up to timeout_s until none of pids is alive (a zombie counts as gone).
 * Returns 0, or the first PID still alive then. */
pid_t om_pids_wait_gone(const pid_t *pids, size_t n, double timeout_s);
/* Call fn(arg, fd, target) for each open fd of pid, with the fd's link
 * target ("socket:[123]", "/dev/pts/0", "anon_inode:[timerfd]"...). A
 * process that is gone has no fds (0). fn returns <0 (with *err set) to
 * stop: om_proc_fds then returns that. */
typedef int (*om_proc_fd_fn)(void *arg, int fd, const char *target, om_error_t *err);
int om_proc_fds(pid_t pid, om_proc_fd_fn fn, void *arg, om_error_t *err);
/* Kill every process of the trees rooted at roots[0..n-1]: each process is
 * stopped (through a pidfd, so a reused PID is never hit) and the trees are
 * listed again until no new process appears (a stopped process cannot fork),
 * then all are killed at once. Waits up to 5 s for them to die; reaping is
 * their parent's (or subreaper's) business. */
void om_proc_kill_trees(const pid_t *roots, size_t n);
/* Append v to a growable pid array. */
int om_pids_push(pid_t **arr, size_t *n, pid_t v);
bool om_pids_contains(const pid_t *arr, size_t n, pid_t v);
void om_pids_sort(pid_t *arr, size_t n);

#endif
