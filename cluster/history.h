/* cluster/history.h — the cluster's history in etcd (omstat --history).
 *
 * One key per event, PREFIX/history/<MS>-<NODE>-<N> (MS: 16 digits, ms since
 * the epoch, so that the keys sort by time; N: a per-process counter that
 * starts from the PID), holding an om.HistoryEvent as JSON, written by a
 * create-only transaction. Bounded: every om_history_add trims the oldest
 * events beyond OM_HISTORY_MAX, at most OM_HISTORY_TRIM of them per call, so
 * that each call does bounded work and the history never keeps more than
 * about OM_HISTORY_MAX events. */
#ifndef OM_HISTORY_H
#define OM_HISTORY_H

#include "cluster.h"

#define OM_HISTORY_MAX 1000
#define OM_HISTORY_TRIM 16 /* events deleted at most by one om_history_add */

/* Add ev: v, time_ms and node are filled when unset (0, 0, NULL: this node,
 * or "-" for a command that is no node). */
int om_history_add(struct om_cluster *c, Om__HistoryEvent *ev, om_error_t *err);
/* The newest limit events (0: all kept) of group (0: every group), oldest
 * first, in *out (free with om_history_free). An event that does not parse is
 * skipped. */
int om_history_list(struct om_cluster *c, uint64_t group, size_t limit, Om__HistoryEvent ***out, size_t *n,
		    om_error_t *err);
void om_history_free(Om__HistoryEvent **v, size_t n);

#endif
