/* shmig/shmig.h — shared memory that travels with a miggroup.
 *
 * CRIU carries the memory of the processes it dumps, but not the shared
 * objects of the host's IPC namespace (it refuses SysV mappings outside an IPC
 * namespace it dumps) nor the contents of /dev/shm files (it records their
 * paths). shmig saves them once per group, with the group frozen, into the
 * generation (an om.ShmSet in the manifest, contents stored like images), and
 * recreates them, with the same keys, ids and contents, before the processes
 * are restored. See shmig/README.md for what is carried and what is refused.
 */
#ifndef OM_SHMIG_H
#define OM_SHMIG_H

#include "error.h"
#include "om.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One process of the group, and the tree (CRIU dump) it belongs to. */
struct om_shm_member {
	pid_t pid;
	size_t tree;
};

/* The directory of a generation that holds the contents. */
#define OM_SHM_DIR "shm"

/* Before the freeze: find what the members use (SysV segments, semaphore
 * sets and message queues of the host IPC namespace, /dev/shm files, shared
 * anonymous memory and memfds) and every other process of the node that uses
 * the same objects; refuse what cannot travel (an object that a process
 * outside the group uses too, or shared anonymous memory between two trees):
 * EBUSY with exit class 5, naming the processes. label names the group in
 * messages ("miggroup 3"). *known (may be NULL when the caller skips this)
 * lists the objects seen, for om_shm_save. */
struct om_shm_known;
int om_shm_check(const struct om_shm_member *members, size_t n, const char *label, struct om_shm_known **known,
		 om_error_t *err);
void om_shm_known_free(struct om_shm_known *k);

/* With the group frozen: scan the members again (the processes outside the
 * group again only if the members use objects that known does not list),
 * refuse as above, and save contents and attributes into dir (created). *set
 * is a built ShmSet (om_shm_set_free_built), NULL when the group uses none. */
int om_shm_save(const struct om_shm_member *members, size_t n, const struct om_shm_known *known, const char *label,
		const char *dir, Om__ShmSet **set, om_error_t *err);

/* /dev/shm files that members map by a name that is gone (glibc's sem_open
 * maps its temporary name): om_shm_save links them there again, for CRIU.
 * Remove those links once every tree is dumped (or the dump failed). */
void om_shm_drop_links(const Om__ShmSet *set);

/* Does the set hold SysV segments (CRIU then needs --external sysvshm[host])? */
bool om_shm_has_segments(const Om__ShmSet *set);

/* After a migration, once the group is stopped: remove its objects from this
 * node (only those that are still the very objects saved). Best effort: the
 * error names the first that could not be removed. */
int om_shm_remove(const Om__ShmSet *set, om_error_t *err);

/* Restore. Before CRIU: recreate every object of set from the contents in dir.
 * An object with the same key or id (or /dev/shm name) that exists already is
 * refused (EBUSY, exit class 6) unless it is the group's own leftover (same id,
 * key and change time, unused; for a /dev/shm file: the same inode on the node
 * that dumped it, held by nobody), which is replaced. same_node: this node
 * dumped the generation. *undo records what was created. */
struct om_shm_undo;
int om_shm_recreate(const Om__ShmSet *set, const char *dir, bool same_node, struct om_shm_undo **undo, om_error_t *err);
/* Every tree is back: segments that were removed (IPC_RMID) are removed again. */
int om_shm_finish(const Om__ShmSet *set, struct om_shm_undo *undo, om_error_t *err);
/* The restore failed: remove what om_shm_recreate created. Frees undo. */
void om_shm_undo(struct om_shm_undo *undo);

#endif
