/* lib/netlock.h — established TCP connections of a group, and the network lock
 * omtools takes around a group dump and restore (an nftables table that drops
 * their packets), so that both ends of a connection inside the group — dumped
 * and restored by separate CRIU calls — and any peer outside it never see a
 * reset or lose a byte. */
#ifndef OM_NETLOCK_H
#define OM_NETLOCK_H

#include "error.h"

#include <stdint.h>
#include <sys/types.h>

struct om_tcp_conn {
	int family; /* AF_INET or AF_INET6 */
	uint8_t laddr[16], raddr[16];
	uint16_t lport, rport;
	unsigned long inode; /* the socket's inode (0 for a connection read from a manifest) */
};

/* Is any of the connections' address pairs still held by a socket in this
 * network namespace, in any state (a killed copy's TIME_WAIT, FIN_WAIT...)?
 * 1 (and *which) when one is, 0 when all are free. CRIU cannot restore a
 * connection whose pair the kernel still holds. */
int om_tcp_conns_held(const struct om_tcp_conn *c, size_t n, struct om_tcp_conn *which, om_error_t *err);

/* The connected TCP sockets (established or closing) the processes hold. */
int om_tcp_conns_of(const pid_t *pids, size_t n, struct om_tcp_conn **out, size_t *nout, om_error_t *err);

/* Take (or renew) the lock NAME: an nftables table `inet NAME` dropping every
 * packet of the connections, both ways, on input and output. n may be 0. */
int om_netlock_take(const char *name, const struct om_tcp_conn *c, size_t n, om_error_t *err);
/* Drop the lock NAME; no error if it is not there. */
int om_netlock_release(const char *name, om_error_t *err);
/* The lock's table name for a group or a single tree: "omtools_g3", "omtools_p4012". */
void om_netlock_name(char *buf, size_t len, unsigned long group, pid_t pid);

/* Before killing checkpointed processes: take a copy of each of their sockets
 * among conns (pidfd_getfd) and put it in TCP repair mode, so that the last
 * close, om_fds_close() after the kill, ends the connection silently (no FIN
 * or RST, the address pair is free at once for the restore). */
int om_tcp_repair_grab(const pid_t *pids, size_t n, const struct om_tcp_conn *conns, size_t nconns, int **fds,
		       size_t *nfds, om_error_t *err);
void om_fds_close(int *fds, size_t n);
/* The processes live on (the checkpoint failed): repair mode off, then close. */
void om_tcp_repair_undo(int *fds, size_t n);

#endif
