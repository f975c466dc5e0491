/* ckpt/checkpoint.h — checkpoint a miggroup (or one process tree) into the store. */
#ifndef OM_CHECKPOINT_H
#define OM_CHECKPOINT_H

#include "error.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct om_ckpt_result;

struct om_ckpt_opts {
	unsigned long group;   /* miggroup to checkpoint, or 0 with pid */
	pid_t pid;	       /* omckpt -p PID: one process tree */
	const char *store;     /* NULL: $OM_STORE, config file, default */
	const char *workdir;   /* local scratch; NULL: $OM_WORKDIR or /var/lib/omtools/work */
	bool leave_running;    /* periodic checkpoint instead of migration */
	int zstd_level;	       /* 0: default (3) */
	int zstd_workers;      /* 0: one per CPU */
	double freeze_timeout; /* 0: 10 s */
	double lock_wait;      /* wait for the group's lock (another command changing it); default 0 */
	double criu_timeout;   /* give up on a CRIU dump after this long; 0: scale with
				* the tree's memory (om_criu_timeout) */
	int cancel_fd;	       /* readable: stop waiting now (lib/bounded.h); 0: none */
	bool tcp_established;  /* carry established TCP connections (CRIU's tcp_established,
				* under omtools' nftables network lock) */
	unsigned keep;	       /* after the commit, keep the newest N generations (0: all) */
	uint64_t fence;	       /* fencing token recorded in the manifest; the commit is refused
				* when the store's fence for the group is higher (0: none) */
	bool fence_local;      /* no cluster (the command found no `etcd =`): a group's fence is
				* the store's .fence (om_gen_fence_local): its token when it names
				* this node, refused (ESTALE, before the freeze) when it names
				* another node; fence is then ignored */
	const char *fault;     /* fault injection for tests ($OM_FAULT, read by the command):
				* "ckpt-after-commit" SIGKILLs omckpt right after the rename of
				* the generation, "ckpt-before-commit" just before it (the intent
				* is written), "ckpt-commit-fails-after-rename" fails the commit
				* after its rename, "ckpt-pause-frozen[:S]" sleeps S s (10; max 60)
				* with the group frozen; "kill:PHASE" SIGKILLs omckpt in PHASE:
				* freezing (group frozen), dumping (first tree dumped),
				* compressing, publishing, pruning (storage/store.h); NULL: none */
	/* migrategroup (cluster/): called once the generation is published, with
	 * the group still frozen and its network lock held, to hand the group to
	 * another node. 0: the group runs there now, and is stopped here; < 0 (with
	 * *err): it was not taken, and thaws here and runs on (the generation
	 * stays in the store). NULL: an ordinary migration (the group stops). */
	int (*handoff)(void *arg, const struct om_ckpt_result *res, om_error_t *err);
	void *handoff_arg;
};

struct om_ckpt_result {
	uint64_t generation;
	char *path; /* the published generation directory */
	size_t n_trees, n_procs;
	uint64_t raw_bytes, stored_bytes;
	double freeze_seconds; /* from freeze to thaw or kill */
	double dump_seconds;   /* CRIU time */
	double total_seconds;
	double freeze_started;	      /* om_now() at the freeze (for handoff's downtime) */
	struct om_prune_result prune; /* what keep removed */
	char *prune_error;	      /* the commit worked but pruning failed: why (not an error) */
};

int om_checkpoint(const struct om_ckpt_opts *o, struct om_ckpt_result *res, om_error_t *err);
void om_ckpt_result_release(struct om_ckpt_result *res);

#endif
