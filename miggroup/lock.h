/* miggroup/lock.h — one lock per miggroup and node, and the intent record of
 * a migration that recovery finishes.
 *
 * Every command that changes a group (joingroup, resetgroup, omrun, omckpt,
 * omrestore) holds the group's node lock `/run/omtools/group-<G>.lock` while it
 * does; a tree checkpointed by PID outside any group is held by
 * `/run/omtools/pid-<PID>.lock`. Taking the lock finishes what an interrupted
 * omckpt left (see om_intent_recover): nothing is thawed or moved under the
 * feet of a checkpoint, and a published group never runs twice.
 */
#ifndef OM_LOCK_H
#define OM_LOCK_H

#include "bounded.h"
#include "cgroup.h"
#include "error.h"
#include "om.pb-c.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OM_INTENT_MAGIC "OMINTNT" /* 8 bytes with the NUL */
#define OM_INTENT_VERSION 1u
#define OM_INTENT_MAX (1u << 24) /* payload bound */

/* Lock miggroup id on this node (waiting up to wait->timeout_s, stopped by wait->cancel_fd), then recover an
 * interrupted migration of it. Busy: EWOULDBLOCK (exit 6) naming the holder.
 * *fd holds the lock until closed. */
int om_group_lock(const struct om_cg *cg, unsigned long id, const struct om_bound *wait, int *fd, om_error_t *err);
/* The same for a process tree checkpointed by PID while in no group. */
int om_pid_lock(const struct om_cg *cg, pid_t pid, const struct om_bound *wait, int *fd, om_error_t *err);

/* The name of the lock that covers pid now, unless it is miggroup `except`:
 * its miggroup's ("group-<G>"), or the PID lock of an omckpt -p that moved it
 * into a temporary leaf ("pid-<PID>"). 1 when there is one, 0 when pid is in
 * neither (or gone). */
int om_lock_name_of(const struct om_cg *cg, pid_t pid, unsigned long except, char *name, size_t size);
/* om_group_lock or om_pid_lock by lock name. */
int om_lock_named(const struct om_cg *cg, const char *name, const struct om_bound *wait, int *fd, om_error_t *err);

/* Locks held together (joingroup). */
struct om_locks {
	int *fd;
	char (*name)[64];
	size_t n;
};
/* Take the lock of every group pid and its descendants are in (but
 * `except`), and the PID lock of an omckpt -p holding one of them in its
 * temporary leaf, each once into h: nothing a checkpoint holds frozen is
 * moved. A process that is gone is skipped (the caller reports it). */
int om_locks_take_sources(const struct om_cg *cg, pid_t pid, unsigned long except, const struct om_bound *wait,
			  struct om_locks *h, om_error_t *err);
void om_locks_release(struct om_locks *h);

/* Lock names: "group-<G>" / "pid-<PID>" (also the intent's name). */
void om_group_lock_name(unsigned long id, char *out, size_t size);
void om_pid_lock_name(pid_t pid, char *out, size_t size);

/* Intent codec (pure; fuzzed). Errors are OM_ECORRUPT. Free with om_intent_free. */
int om_intent_encode(const Om__Intent *in, uint8_t **buf, size_t *len, om_error_t *err);
int om_intent_decode(const uint8_t *buf, size_t len, Om__Intent **out, om_error_t *err);
void om_intent_free(Om__Intent *in);

/* Write (tmp + fsync + rename) / remove the intent of the lock `name`. */
int om_intent_write(const char *name, const Om__Intent *in, om_error_t *err);
int om_intent_remove(const char *name, om_error_t *err);
/* With the lock `name` held: finish an interrupted migration. Published (the
 * temporary generation is gone) -> SIGKILL the recorded processes, thaw, wait
 * until gone; not published -> thaw (and move omckpt -p's processes back).
 * Cannot tell (the store is unreadable) or cannot finish -> error, the group
 * stays frozen and the intent stays. No intent -> 0. */
int om_intent_recover(const struct om_cg *cg, const char *name, om_error_t *err);

#endif
