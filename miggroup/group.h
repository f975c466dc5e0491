/* miggroup/group.h — miggroups: administrator-defined groups of processes,
 * as the openMosix miggroup patch had them, kept in cgroups (see cgroup.h).
 * Group ids are positive integers; 0 means "no group". */
#ifndef OM_GROUP_H
#define OM_GROUP_H

#include "cgroup.h"
#include "error.h"

#include <stdbool.h>
#include <sys/types.h>

#define OM_GROUP_MAX 1000000000UL

struct om_member {
	pid_t pid;
	pid_t ppid;
	char state;
	char *cmdline;
};

struct om_tree {
	pid_t root;	       /* the tree's root process */
	pid_t leaf;	       /* the <R> of the leaf cgroup t<R> holding it */
	char cgpath[PATH_MAX]; /* the leaf cgroup */
	struct om_member *members;
	size_t n_members;
	bool frozen; /* the leaf is frozen right now */
};

struct om_group {
	unsigned long id;
	struct om_cg cg;
	struct om_tree *trees;
	size_t n_trees;
	bool frozen; /* set by om_group_freeze, cleared by om_group_thaw */
};

/* Parse a group id: positive integer (allow_zero for joingroup's "leave"). */
int om_group_parse_id(const char *s, bool allow_zero, unsigned long *id, om_error_t *err);

/* Does the group's cgroup exist? */
bool om_group_exists(const struct om_cg *cg, unsigned long id);
/* Load the members of group id, grouped in trees (roots: members whose parent
 * is not in the same leaf). ENOENT if the group does not exist. */
int om_group_load(const struct om_cg *cg, unsigned long id, struct om_group *g, om_error_t *err);
void om_group_release(struct om_group *g);
size_t om_group_count(const struct om_group *g);
/* Split the members of one leaf into process trees: sorts m by PID and sets
 * root[i] to the root of m[i] (the farthest ancestor inside m; a parent loop
 * is cut). O(n log n). */
int om_group_split_roots(struct om_member *m, size_t n, pid_t *root, om_error_t *err);
/* Keep only the tree rooted at root (the others are released); -1 if there is none. */
int om_group_keep_tree(struct om_group *g, pid_t root);
/* All member pids, sorted. */
int om_group_pids(const struct om_group *g, pid_t **pids, size_t *n, om_error_t *err);

/* May pid join a group at all? (not init, a kernel thread, a keeper, this
 * command, a zombie or a free PID) OM_EUSAGE or ESRCH with the reason. */
int om_group_check_joinable(pid_t pid, om_error_t *err);
/* Make pid (and its current descendants) members of group id; children
 * forked later follow through the cgroup. id 0 removes them from any group.
 * *tree_root receives the root of the tree pid now belongs to. */
int om_group_join(const struct om_cg *cg, unsigned long id, pid_t pid, pid_t *tree_root, om_error_t *err);
/* Move every member out (to group 0) and remove the group's cgroups.
 * The pids moved are returned (sorted) when pids != NULL. */
int om_group_reset(const struct om_cg *cg, unsigned long id, pid_t **pids, size_t *n, om_error_t *err);
/* Remove empty leaves; split leaves that hold several trees into one leaf per tree. */
int om_group_normalize(const struct om_cg *cg, unsigned long id, om_error_t *err);
/* Create the leaf of a tree with the given root (restore). */
int om_group_prepare_tree(const struct om_cg *cg, unsigned long id, pid_t root, char *cgpath, om_error_t *err);

/* Freeze every tree of the loaded group (one consistent cut: every leaf is
 * asked to freeze first, then we wait for all); thaw on failure. */
int om_group_freeze(struct om_group *g, double timeout_s, int cancel_fd, om_error_t *err);
/* Thaw every leaf (best effort, idempotent). */
int om_group_thaw(struct om_group *g, om_error_t *err);
/* SIGKILL every member of the loaded group (frozen or not), thaw, and wait
 * (bounded, 10 s) until they are gone. */
int om_group_kill(struct om_group *g, om_error_t *err);
/* Kill every member of group id (if it exists here) and remove its cgroups:
 * a stale copy of a group that runs on another node. The cgroups are removed
 * even when the kill fails; the first error is returned. */
int om_group_remove(const struct om_cg *cg, unsigned long id, om_error_t *err);
/* A thaw guard (miggroup/guard.c): a small process, started before a freeze,
 * that thaws the group when the process that froze it dies without saying so
 * (omckpt killed by SIGKILL while freezing, dumping, compressing or
 * publishing). It waits (up to 10 s) until no member is ptraced any more (CRIU
 * dies with its caller), takes the lock `lockname` (lock.h: "group-<G>" or
 * "pid-<PID>"; which finishes an interrupted migration whose generation was
 * published: killed, not thawed), then thaws every leaf of the group
 * (reloaded by id, so trees added at the cut are included). Armed when
 * started; om_thaw_guard_stop disarms it when its creator is done. */
struct om_thaw_guard {
	pid_t pid; /* 0: none */
	int fd;	   /* the pipe the guard reads: 'A' arm, 'N' disarm, EOF: act */
};
int om_thaw_guard_start(const struct om_group *g, const char *lockname, struct om_thaw_guard *gd, om_error_t *err);
void om_thaw_guard_arm(struct om_thaw_guard *gd, bool armed);
/* Disarm, close and reap the guard (idempotent). */
void om_thaw_guard_stop(struct om_thaw_guard *gd);

/* The ids of the groups on this node, sorted. */
int om_group_list(const struct om_cg *cg, unsigned long **ids, size_t *n, om_error_t *err);

#endif
