/* cluster/migrate.h — full migration between nodes (migrategroup G NODE).
 *
 * The source node's omd checkpoints the group and keeps it frozen; the
 * target's omd restores it, freezes it, and moves the ownership key in the
 * one transaction of the migration (compare PREFIX/groups/G's mod_revision
 * as it was when the migration began), then thaws it and replies "running".
 * If the reply does not come (a failure, a timeout, the target's lease gone),
 * the source runs the same transaction to take the key back: exactly one of
 * the two wins, so the group ends up running on exactly one node. The loser
 * of the race kills its copy (target) or thaws it (source). */
#ifndef OM_MIGRATE_H
#define OM_MIGRATE_H

#include "cluster.h"

struct om_migrate_out {
	double downtime_s, total_s;
	uint64_t generation;
	char **lines; /* "migrate PID to NODE", NULL-terminated */
	size_t n_lines;
};
void om_migrate_out_release(struct om_migrate_out *o);

/* Ask node source's omd to migrate g to node to; id gets the request id
 * (its reply: om_reply_wait, final state "done" or "failed"). */
int om_migrate_ask(struct om_cluster *c, const char *source, unsigned long g, const char *to, double timeout_s,
		   bool tcp_established, char id[OM_REQ_ID_LEN + 1], om_error_t *err);

/* Source side (omd, for a "migrate" request): req->group to req->to. */
int om_migrate_source(struct om_cluster *c, const Om__Request *req, int cancel_fd, struct om_migrate_out *out,
		      om_error_t *err);
/* Target side (omd, for a "restore" request). *n_trees gets the number of
 * trees. fault (tests, NULL: none): "target-before-restore:S" or
 * "target-before-commit:S" sleep S seconds (max 120) at that point (with the
 * group restored and frozen, for the latter), so that a test can kill omd there. */
int om_migrate_target(struct om_cluster *c, const Om__Request *req, int cancel_fd, const char *fault, size_t *n_trees,
		      om_error_t *err);

#endif
