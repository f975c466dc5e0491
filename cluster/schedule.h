/* cluster/schedule.h — periodic checkpoints by policy (cluster/policy.h),
 * applied by omd.
 *
 * omd calls om_sched_tick() from its loop. At most every scan_s seconds it
 * reads the policies and, for each group that runs on this node (in a
 * cluster: whose owner key PREFIX/groups/G names this node; alone: that has
 * processes here) and whose newest generation (its manifest's time, so the
 * schedule survives omd's restarts and the group's migrations) is older than
 * the policy's period, starts a worker process that runs om_checkpoint() with
 * --leave-running semantics, keep = the policy's keep (else `keep =`), and in
 * a cluster fence = the owner key's mod_revision. One checkpoint per group at
 * a time, at most max_parallel per node; a failed one is tried again after
 * min(period, 60 s). The worker is cancelled (the group thawed, nothing
 * written) when omd dies (PR_SET_PDEATHSIG SIGTERM), and every wait of
 * om_checkpoint is bounded (freeze, CRIU, lock).
 *
 * Each checkpoint, failed checkpoint and prune is reported through
 * o->event as an Om__HistoryEvent ("checkpoint", "prune"); scan errors go to
 * o->log as one key=value line. The caller reaps: every child it waits for
 * goes to om_sched_reaped(), which says whether it was one of these workers. */
#ifndef OM_SCHEDULE_H
#define OM_SCHEDULE_H

#include "cluster.h"
#include "error.h"
#include "settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct om_sched_opts {
	const struct om_config *cfg;
	struct om_cluster *c;	/* the caller's open cluster client; NULL: one node alone */
	const char *policy_dir; /* the policies when c is NULL (om_policy_dir) */
	const char *node;	/* this node's name in the events */
	unsigned max_parallel;	/* checkpoints at once on this node (0: 1; at most 8) */
	double scan_s;		/* read the policies at most this often (0: 5 s) */
	void (*event)(void *arg, const Om__HistoryEvent *ev);
	void *event_arg;
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

struct om_sched; /* opaque */

int om_sched_new(const struct om_sched_opts *o, struct om_sched **out, om_error_t *err);
/* Scan (when scan_s has passed) and start what is due. Never fails: problems are logged. */
void om_sched_tick(struct om_sched *s);
/* pid, reaped by the caller with wait status st: one of ours? (then reported) */
bool om_sched_reaped(struct om_sched *s, pid_t pid, int st);
/* Workers running now. */
unsigned om_sched_running(const struct om_sched *s);
/* Free (the workers that run on finish on their own). NULL is fine. */
void om_sched_free(struct om_sched *s);

/* One key=value line for an event: "event=checkpoint group=G generation=N
 * frozen_s=... total_s=... pruned=1,2" (the event's detail holds the tail). */
void om_history_format(const Om__HistoryEvent *ev, char *buf, size_t len);

/* omd without a cluster: the scheduler alone, policies from o->policy_dir,
 * until SIGTERM or SIGINT arrives on signal_fd (a signalfd of SIGTERM,
 * SIGINT, SIGHUP and SIGCHLD, blocked by the caller). Logs "event=started
 * mode=local ...". 0 when stopped by a signal, -1 on a fatal error. */
int om_sched_run_local(const struct om_sched_opts *o, int signal_fd, om_error_t *err);

#endif
