/* miggroup/keeper.h — keepers: small detached subreaper processes that own
 * the process trees of a miggroup on this node.
 *
 * Trees started by omrun and trees restored by omrestore are children of a
 * keeper (PR_SET_CHILD_SUBREAPER), which reaps them at once when they exit or
 * are killed after a checkpoint, so their PIDs are free again for a restore
 * (this machine's PID 1 reaps late). A keeper is never a member of a group. */
#ifndef OM_KEEPER_H
#define OM_KEEPER_H

#include "cgroup.h"
#include "error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One message from a keeper to the command that started it. */
struct om_keeper_report {
	int32_t index;	/* which tree / command */
	int32_t status; /* 0 ok, else errno or OM_E* */
	int32_t pid;	/* the started or restored root */
	char msg[2036];
};

typedef int (*om_keeper_fn)(void *arg, int report_fd);

/* Start a keeper named name (comm) that runs fn(arg, report_fd), then reaps
 * children until it has none. *report_fd is the read end of fn's reports.
 * The keeper keeps keep_fd (-1: none) open and closes every other fd. */
int om_keeper_spawn(const char *name, om_keeper_fn fn, void *arg, int keep_fd, int *report_fd, om_error_t *err);

int om_keeper_send(int fd, int index, pid_t pid, om_error_t e);
/* A keeper answers at once, or after the CRIU call it runs (bounded itself). */
#define OM_KEEPER_REPLY_TIMEOUT_S 60
/* 1: got a report, 0: EOF, <0: error (ETIMEDOUT after OM_KEEPER_REPLY_TIMEOUT_S). */
int om_keeper_recv(int fd, struct om_keeper_report *r, om_error_t *err);

/* omrun: start argv in a new tree of group id; stdout/stderr go to logfile
 * (NULL: /dev/null). Returns the pid of the command once it has exec()ed.
 * isolate: the tree gets new PID and IPC namespaces; its root is their init
 * ("om-init", in the group before it forks the command as PID 2), and *pid
 * is the init's PID on this node. */
int om_keeper_run(const struct om_cg *cg, unsigned long id, char *const argv[], const char *logfile, bool isolate,
		  pid_t *pid, om_error_t *err);

#endif
