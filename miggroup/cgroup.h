/* miggroup/cgroup.h — the cgroup backend behind miggroups.
 *
 * A miggroup G is a cgroup directory BASE/g<G>; each process tree of the group
 * has its own leaf BASE/g<G>/t<ROOTPID>, so the group records which processes
 * are tree roots and each tree can be frozen and handed to CRIU on its own.
 *   v2: BASE = <cgroup2 mount>/omtools   (cgroup.freeze, cgroup.events)
 *   v1: BASE = <freezer mount>/omtools   (freezer.state)
 * OM_CGROUP=v1|v2 forces a backend; default: the cgroup2 mount (pure v2 at
 * /sys/fs/cgroup or hybrid at /sys/fs/cgroup/unified), else the v1 freezer.
 */
#ifndef OM_CGROUP_H
#define OM_CGROUP_H

#include "error.h"

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

enum om_cg_version { OM_CG_V1 = 1, OM_CG_V2 = 2 };

struct om_cg {
	enum om_cg_version ver;
	char mnt[PATH_MAX];  /* hierarchy mount point */
	char base[PATH_MAX]; /* mnt + "/omtools" */
};

int om_cg_init(struct om_cg *cg, om_error_t *err);
const char *om_cg_name(const struct om_cg *cg); /* "v1" / "v2" */

/* Paths (into a PATH_MAX buffer). */
void om_cg_group_path(const struct om_cg *cg, unsigned long group, char *out);
void om_cg_tree_path(const struct om_cg *cg, unsigned long group, pid_t root, char *out);

int om_cg_mkdir(const char *path, om_error_t *err);
/* Move a whole process (all threads) into the cgroup at path. */
int om_cg_move(const char *path, pid_t pid, om_error_t *err);
/* Remember where pid is now (outside any group), so that om_cg_move_out can
 * bring it back: /run/omtools/origin/<v1|v2>-<pid> (see OM_RUNDIR). */
void om_cg_save_origin(const struct om_cg *cg, pid_t pid);
/* Move pid out of its group (group 0): back to the cgroup it came from when
 * that is known and still exists, else to the hierarchy's root. */
int om_cg_move_out(const struct om_cg *cg, pid_t pid, om_error_t *err);
/* PIDs (processes) directly in the cgroup, sorted. */
int om_cg_procs(const char *path, pid_t **pids, size_t *n, om_error_t *err);

/* pid's cgroup in our hierarchy, relative to its mount ("/" for the root). */
int om_cg_proc_path(const struct om_cg *cg, pid_t pid, char *out /* PATH_MAX */, om_error_t *err);
/* Where is pid in our hierarchy?  *group = 0 and *tree = 0 if not in any group. */
int om_cg_locate(const struct om_cg *cg, pid_t pid, unsigned long *group, pid_t *tree, om_error_t *err);

int om_cg_freeze(const struct om_cg *cg, const char *path, om_error_t *err);
int om_cg_thaw(const struct om_cg *cg, const char *path, om_error_t *err);
/* 1 frozen, 0 not (yet), <0 error. */
int om_cg_is_frozen(const struct om_cg *cg, const char *path, om_error_t *err);

#endif
