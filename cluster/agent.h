/* cluster/agent.h — omd, the node agent, as a library call.
 *
 * One per node. It registers the node under an etcd lease (lease_ttl) and
 * keeps it alive, publishes the node's status (load, CPUs, memory, groups,
 * drained) on it, watches PREFIX/req/NODE/ and runs each valid, first-seen
 * request in a worker process through libom (a migration's source half, or
 * its target half), and is the subreaper parent of the groups it restores.
 * Its state is the node's cgroups plus etcd, so a restarted omd picks up its
 * groups: a local group the cluster says runs elsewhere is a stale copy and
 * is killed; one with no owner key is claimed. Every event is one log line of
 * key=value pairs, handed to o->log (the library never prints). */
#ifndef OM_AGENT_H
#define OM_AGENT_H

#include "cluster.pb-c.h"
#include "error.h"
#include "settings.h"

struct om_agent_opts {
	const struct om_config *cfg;
	void (*log)(void *arg, const char *line);
	void *log_arg;
	int signal_fd;	   /* signalfd of SIGTERM, SIGINT, SIGHUP and SIGCHLD (blocked by the caller) */
	const char *fault; /* tests ($OM_FAULT, read by omd): see om_migrate_target; NULL: none */
	/* periodic checkpoints (cluster/schedule.h): each checkpoint and prune, after
	 * its log line (NULL: the log line only) */
	void (*event)(void *arg, const Om__HistoryEvent *ev);
	void *event_arg;
};

/* Runs until SIGTERM/SIGINT (0) or a fatal error (-1). */
int om_agent_run(const struct om_agent_opts *o, om_error_t *err);

#endif
