/* storage/store-int.h — what store.c and retention.c share; not part of the API. */
#ifndef OM_STORE_INT_H
#define OM_STORE_INT_H

#include "store.h"

struct om_gen_writer {
	struct om_store *st;
	char *kind;
	unsigned long id;
	char *id_display; /* STORE/kind/id */
	int id_fd;
	int lock_fd;
	char *tmp_name; /* .tmp-<node>-<pid>-<n> */
	int tmp_fd;
	bool committed;
	uint64_t fence;	  /* the store's fence token read at the commit */
	char *fence_node; /* om_gen_fence_local: the fence must name this node (NULL: not checked) */
};

int om_st_check_kind(const char *kind, om_error_t *err);
const char *om_st_kind_label(const char *kind); /* "group" / "PID" */
bool om_st_parse_gen_name(const char *name, uint64_t *gen);
bool om_st_has_manifest(int id_fd, const char *gen_name);
/* complete generations (ascending) into *gens if gens; the highest gen-N of any state into *max if max */
int om_st_scan_gens(int id_fd, const char *display, uint64_t **gens, size_t *n, uint64_t *max, om_error_t *err);
/* open STORE/kind/id; *fd = -1 (and 0 returned) when it does not exist */
int om_st_open_id_dir(struct om_store *st, const char *kind, unsigned long id, int *fd, om_error_t *err);
/* this node's name, usable in a file name (malloc'd; NULL: out of memory) */
char *om_st_node_name(void);
/* flock(LOCK_EX) the id's .lock (id_fd: its directory), polling up to lock_wait_s */
int om_st_lock(struct om_store *st, int id_fd, const char *kind, unsigned long id, double lock_wait_s, int *lock_fd,
	       om_error_t *err);
/* the fault point `name` of st->fault ("kill:NAME"): SIGKILL ourselves */
void om_st_fault(const struct om_store *st, const char *name);
/* the stored fence token of the id directory (0: none) */
int om_st_fence_read(int id_fd, const char *display, uint64_t *token, char *node, size_t node_len, uint64_t *gen,
		     om_error_t *err);
/* remove .prune-* of dead writers of this node (the next writer's sweep) */
void om_st_sweep_prune(struct om_store *st, int id_fd, const char *node);

#endif
