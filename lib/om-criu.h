/* lib/om-criu.h — the only place that talks to CRIU (through libcriu, which
 * runs `criu swrk` and speaks CRIU's RPC protocol). */
#ifndef OM_CRIU_H
#define OM_CRIU_H

#include "error.h"

#include <stdbool.h>
#include <sys/types.h>

/* Path of the criu binary: $OM_CRIU, else the one found at configure time. */
const char *om_criu_binary(void);
/* "4.1.1" or an error if CRIU cannot be run. */
int om_criu_version(char *buf, size_t len, om_error_t *err);
/* Run `criu check` and fail with its reason. */
int om_criu_check(om_error_t *err);

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
};
int om_criu_dump(const struct om_criu_dump *d, om_error_t *err);

/* Called by CRIU at "post-restore" (tasks restored, not yet running). */
typedef int (*om_criu_post_restore_fn)(void *arg, pid_t root);

struct om_criu_restore {
	const char *images_dir;
	const char *work_dir; /* where restore.log goes */
	bool shell_job;
	bool tcp_established;  /* the images hold established TCP connections */
	bool own_network_lock; /* as in struct om_criu_dump */
	om_criu_post_restore_fn post_restore;
	void *arg;
};
/* Restore a tree as a child of the caller. Returns the root pid or <0. */
pid_t om_criu_restore_child(const struct om_criu_restore *r, om_error_t *err);

#endif
