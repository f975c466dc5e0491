/* cluster/failover.h — omd restores the groups of a dead node, exactly once.
 *
 * From omd's loop, every ttl/3: the owners (PREFIX/groups/G) that name a node
 * without a lease (PREFIX/nodes/N gone: dead, omd gone or paused, cut off)
 * are orphans. Every survivor computes the same preferred target (alive, not
 * drained, lowest load1 per CPU, then fewest groups, then lowest id); the
 * preferred node tries at once, the others only after a grace of 2 x ttl
 * while the group is still orphaned (a target that died too). A try is one
 * transaction on the owner key's mod_revision as read: its new revision R is
 * the fencing token. The winner restores the newest complete generation in a
 * worker process (om_restore with .fence = R raises the store's fence, so the
 * node that lost the group can no longer commit a generation of it), then
 * records the generation and R in the owner key by a transaction on R. A
 * restore that fails (or a worker that dies) removes what it restored and
 * puts the old owner value back by a transaction on R: the group is orphaned
 * again, for another survivor (or this one after a backoff). The loser of a
 * transaction does nothing. A node where a PID of the newest generation is
 * taken declines the group instead of claiming it (PREFIX/decline/G/NODE):
 * the survivors leave it out of that group's preferred target. From the
 * claim to the record the key says restoring_from: an omd killed meanwhile
 * resumes the failover when it starts again. A group marked ended (no
 * process on its node) is no orphan. See cluster/README.md, "Failover". */
#ifndef OM_FAILOVER_H
#define OM_FAILOVER_H

#include "cluster.h"

#include <sys/types.h>

struct om_failover_opts {
	struct om_cluster *c;			  /* omd's own client (used in omd's process only) */
	double ttl;				  /* the lease TTL (s) */
	const char *fault;			  /* tests: "failover-race": every survivor tries at once, at the same
						   * 2-second boundary of the wall clock (no preferred target, no grace);
						   * "restore-pause-pinned:S": the worker's om_restore pauses S seconds
						   * once the generation is pinned */
	void (*log)(void *arg, const char *line); /* a log line (key=value) */
	void (*event)(void *arg, const Om__HistoryEvent *ev); /* a log line and a history event */
	void *arg;
};

struct om_failover;
int om_failover_new(const struct om_failover_opts *o, struct om_failover **out, om_error_t *err);
void om_failover_free(struct om_failover *f);
/* From omd's loop: look for orphans (at most every ttl/3) and try those that
 * are this node's to try. Bounded by the etcd client's timeouts. */
void om_failover_tick(struct om_failover *f);
/* omd reaped pid: true when it was a failover worker (then handled here). */
bool om_failover_reaped(struct om_failover *f, pid_t pid, int status);
/* omd stops cleanly (SIGTERM: a restart, an upgrade): PREFIX/stopped/NODE on
 * a lease of OM_STOP_GRACE_S seconds. While it exists the node's groups are
 * not failed over (a restart of omd is no death); a node that does not come
 * back within the grace is failed over then. omd removes it at its start. */
#define OM_STOP_GRACE_S 60
int om_failover_mark_stopped(struct om_cluster *c, om_error_t *err);
int om_failover_unmark_stopped(struct om_cluster *c, om_error_t *err);

/* This node's lease was lost: kill the failover workers, remove what they
 * restored and give their groups back (the transaction on R), bounded. */
void om_failover_abort(struct om_failover *f);

#endif
