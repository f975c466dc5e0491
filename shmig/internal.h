/* shmig/internal.h — helpers shared by the save and the restore side. */
#ifndef OM_SHMIG_INTERNAL_H
#define OM_SHMIG_INTERNAL_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OM_DEV_SHM "/dev/shm"

/* A row of /proc/sysvipc/{shm,sem,msg} (the fields shmig uses). */
struct om_ipc_row {
	int32_t key;
	int32_t id;
	uint32_t perms;	 /* with SHM_DEST / SHM_LOCKED for segments */
	uint64_t size;	 /* shm: bytes; sem: nsems; msg: cbytes */
	pid_t pid1;	 /* shm: cpid, msg: lspid */
	pid_t pid2;	 /* shm: lpid, msg: lrpid */
	uint64_t nattch; /* shm; msg: qnum */
	uint32_t uid, gid;
	int64_t ctime;
	uint64_t swap; /* shm: bytes swapped out */
};

/* Read /proc/sysvipc/<what> ("shm", "sem" or "msg"). */
int om_ipc_rows(const char *what, struct om_ipc_row **rows, size_t *n, om_error_t *err);
const struct om_ipc_row *om_ipc_find(const struct om_ipc_row *rows, size_t n, int32_t id);

/* Is the 4 KiB block all zero? */
bool om_shm_zero_block(const void *p, size_t len);

/* The end of the run of 4 KiB blocks from off that are all zero (zero) or all
 * not zero, within len. */
size_t om_shm_run(const char *p, size_t off, size_t len, bool zero);

/* Write len bytes of buf at off of fd, one write per run of data, leaving
 * all-zero blocks as holes. */
int om_shm_pwrite_sparse(int fd, const void *buf, size_t len, uint64_t off);

/* Processes that map or hold open the file (dev, ino), other than skip[]:
 * the first one found, 0 if none. */
pid_t om_shm_file_user(dev_t dev, ino_t ino, const pid_t *skip, size_t n_skip);

/* "PID (comm)" of a process, into buf. */
const char *om_shm_who(pid_t pid, char *buf, size_t len);

#endif
