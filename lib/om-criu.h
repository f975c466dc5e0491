/* lib/om-criu.h — the only place that talks to CRIU (through libcriu, which
 * runs `criu swrk` and speaks CRIU's RPC protocol). */
#ifndef OM_CRIU_H
#define OM_CRIU_H

#include "bounded.h"
#include "error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Path of the criu binary: $OM_CRIU, else the one found at configure time. */
const char *om_criu_binary(void);
/* "4.2.1" (from `criu --version`) or an error if CRIU cannot be run. */
int om_criu_version(const struct om_bound *b, char *buf, size_t len, om_error_t *err);
/* Run `criu check` and fail with its reason; its output (warnings) in
 * *output if not NULL (free it). */
int om_criu_check(const struct om_bound *b, char **output, om_error_t *err);

/* `criu check --feature NAME`: 1 supported, 0 not, <0 could not run. */
int om_criu_feature(const struct om_bound *b, const char *name, om_error_t *err);

/* Every CRIU call runs in a child process under a bound (lib/bounded.h): a
 * CRIU that does not answer in time, or a cancel, kills it and everything it
 * started, and the call fails naming the stage, the bound and CRIU's last
 * log line (exit class OM_EXIT_CRIU). */

/* The bound of one CRIU call of a tree of `bytes` bytes of memory (RSS, or
 * raw image size): 20 s plus 20 s per GiB, so a tree under 1 GiB is given up
 * within 40 s; `explicit_s` > 0 overrides it. */
double om_criu_timeout(uint64_t bytes, double explicit_s);
/* On ^C or TERM, a dump is let finish for this long before CRIU is killed:
 * a CRIU killed while its parasite is inside a task may leave it broken. */
#define OM_CRIU_DUMP_CANCEL_GRACE 3.0
/* The bound of `criu --version` and `criu check`. */
#define OM_CRIU_QUERY_TIMEOUT 30.0

/* Unlinked files a tree still holds are dumped with their contents up to this size. */
#define OM_CRIU_GHOST_LIMIT (1u << 30)

struct om_criu_dump {
	pid_t root;
	const char *images_dir;	   /* empty directory for the image files */
	const char *work_dir;	   /* where dump.log goes */
	const char *freeze_cgroup; /* leaf cgroup of the tree, already frozen */
	bool leave_running;
	bool shell_job;	       /* the root's session leader is outside the tree */
	bool tcp_established;  /* dump established TCP connections (TCP repair) */
	bool own_network_lock; /* with tcp_established: the caller locks the network
				* around all trees (CRIU's lock skipped), else CRIU's nftables lock */
	bool sysvshm_external; /* SysV segments of the host IPC namespace are saved by the
				* caller (shmig/): CRIU records the mappings (carried patch 0002) */
	struct om_bound bound;
};
int om_criu_dump(const struct om_criu_dump *d, om_error_t *err);

/* Called by CRIU at "post-restore" (tasks restored, not yet running), in
 * the runner child: on refusal, return <0 with the reason in why. */
typedef int (*om_criu_post_restore_fn)(void *arg, pid_t root, char *why, size_t len);

struct om_criu_restore {
	const char *images_dir;
	const char *work_dir; /* where restore.log goes */
	bool shell_job;
	bool tcp_established;  /* the images hold established TCP connections */
	bool own_network_lock; /* as in struct om_criu_dump */
	bool sysvshm_external; /* the caller recreated them: attach by id */
	om_criu_post_restore_fn post_restore;
	void *arg;
	struct om_bound bound;
};
/* Restore a tree; the caller must be a child subreaper (the root passes to it
 * when the runner exits). Returns the root pid or <0. */
pid_t om_criu_restore_child(const struct om_criu_restore *r, om_error_t *err);

#endif
