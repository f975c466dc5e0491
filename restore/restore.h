/* restore/restore.h — bring a checkpointed miggroup (or process tree) back. */
#ifndef OM_RESTORE_H
#define OM_RESTORE_H

#include "error.h"
#include "om.pb-c.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct om_restore_opts {
	unsigned long group; /* miggroup, or 0 with pid */
	pid_t pid;	     /* omrestore -p PID */
	const char *store;
	const char *workdir;
	uint64_t generation; /* 0: newest complete */
	double pid_wait;     /* how long to wait for a taken PID to become free (s) */
	double criu_timeout; /* give up on a CRIU restore after this long; 0: scale with
			      * the tree's image size (om_criu_timeout) */
	int cancel_fd;	     /* readable: stop waiting now (lib/bounded.h); 0: none */
	double lock_wait;    /* how long to wait for the group's lock (s) */
	bool takeover;	     /* the generation was dumped on another node whose copy may still
			      * run: without etcd, refused while the manifest's node is this
			      * node and the group still runs here; otherwise needs force */
	bool force;	     /* with takeover: the manifest's node is not this one (not checked) */
	const char *fault;   /* tests ($OM_FAULT, read by the command): "restore-pause-pinned:S"
			      * sleeps S s (max 60) once the generation is pinned and extracted */
	uint64_t fence;	     /* raise STORE/groups/G/.fence to this token before restoring
			      * (omd's failover: the etcd token); 0: none */
	bool fence_local;    /* no cluster (the command found no `etcd =`; fence is 0): the
			      * group's .fence moves to this node (the stored token + 1) once
			      * the generation is read and its PIDs are free, before any
			      * process is restored: with takeover always, else when it names
			      * another node (om_store_fence_take); it stays if the restore
			      * fails after that */
};

struct om_restore_result {
	uint64_t generation;
	Om__Manifest *m; /* the generation restored (om_manifest_free) */
	pid_t *roots;	 /* the root of each tree of m as restored, in this node's PID
			  * namespace (new PIDs for a tree with its own PID namespace) */
	double seconds;
};

int om_restore(const struct om_restore_opts *o, struct om_restore_result *res, om_error_t *err);
void om_restore_result_release(struct om_restore_result *res);
/* Wait up to wait_s (0: just look) until every PID that m's trees need here
 * is free (a tree with its own PID namespace needs none): EBUSY naming the
 * first PID taken, and by what. A failover asks before it claims a group. */
int om_restore_pids_free(const Om__Manifest *m, double wait_s, int cancel_fd, om_error_t *err);
/* The PIDs m's trees need that this PID namespace would hand out next (at
 * most 4096 above its last PID, /proc/sys/kernel/ns_last_pid) are moved
 * behind the allocator (ns_last_pid set to the highest of them), so that
 * the restore's own forks (a failover's worker, the keeper, CRIU) do not
 * take them first; they stay free for CRIU, which asks for each PID. Best
 * effort (it needs CAP_SYS_ADMIN over the namespace); a restarted node hands
 * out PIDs from the start of its range, where the groups it ran had theirs. */
void om_restore_reserve_pids(const Om__Manifest *m);

#endif
