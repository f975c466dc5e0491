/* cluster/cluster.h — a command's or omd's view of the cluster: the
 * settings, the map, this node, an etcd client and the sandboxed parser;
 * and the typed keys of proto/cluster.proto (nodes, owners, requests). */
#ifndef OM_CLUSTER_H
#define OM_CLUSTER_H

#include "cluster.pb-c.h"
#include "error.h"
#include "etcd.h"
#include "map.h"
#include "sandbox.h"
#include "settings.h"

#include <stdbool.h>
#include <stdint.h>

#define OM_REQ_ID_LEN 32	   /* hex digits of a request id */
#define OM_REQ_MAX_AGE_MS 600000   /* a request older than this is refused (10 min) */
#define OM_SEEN_KEEP_MS 3600000	   /* single-use marks are pruned after an hour */
#define OM_CLUSTER_MAX_NODE_LEN 16 /* "16777215" */

struct om_cluster {
	const struct om_config *cfg;
	struct om_map map;
	const struct om_map_node *self; /* NULL when not needed or not found */
	char self_id[OM_CLUSTER_MAX_NODE_LEN];
	struct om_etcd *etcd;
	struct om_sandbox *sb;
	const char *prefix;
};

/* Is a cluster configured (`etcd =`)? */
bool om_cluster_configured(const struct om_config *cfg);
/* Open: the map, this node (when need_self), etcd and the sandbox.
 * OM_ECLUSTER "needs `etcd =` in omtools.conf" when none is configured. */
int om_cluster_open(struct om_cluster *c, const struct om_config *cfg, bool need_self, om_error_t *err);
void om_cluster_close(struct om_cluster *c);
/* PREFIX + the formatted rest; NULL on ENOMEM. */
char *om_cluster_key(const struct om_cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A node id, address or "home" (with the group's owner) to the map's node. */
int om_cluster_resolve(const struct om_cluster *c, const char *what, const Om__GroupOwner *owner,
		       const struct om_map_node **out, om_error_t *err);

/* Typed values: get one key into a message of d (*out NULL when the key does
 * not exist), put a message as JSON. */
int om_cluster_get(struct om_cluster *c, const char *key, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out,
		   int64_t *mod_revision, om_error_t *err);
int om_cluster_put(struct om_cluster *c, const char *key, const ProtobufCMessage *m, int64_t lease, om_error_t *err);

/* ---- nodes ---- */
struct om_node_info {
	const struct om_map_node *node;
	Om__NodeStatus *status; /* NULL: no lease (dead, or omd never ran) */
	bool alive, drained;
};
/* Every node of the map with its status; free with om_cluster_nodes_free. */
int om_cluster_nodes(struct om_cluster *c, struct om_node_info **out, size_t *n, om_error_t *err);
void om_cluster_nodes_free(struct om_node_info *v, size_t n);
/* A target for a group: alive, not drained, not `except`; OM_ECLUSTER with the reason. */
int om_cluster_check_target(struct om_cluster *c, const struct om_map_node *t, om_error_t *err);
int om_cluster_set_drained(struct om_cluster *c, const char *node, bool drained, om_error_t *err);

/* ---- group ownership (PREFIX/groups/G) ---- */
int om_owner_get(struct om_cluster *c, unsigned long g, Om__GroupOwner **out, int64_t *mod_revision, om_error_t *err);
/* Claim g for this node (created here: node = home = self). Fine when this
 * node owns it already; OM_EXIT_BUSY naming the owner when another does. */
int om_owner_claim(struct om_cluster *c, unsigned long g, om_error_t *err);
/* Forget g when this node owns it (resetgroup). */
int om_owner_release(struct om_cluster *c, unsigned long g, om_error_t *err);
/* Move g to node if its key still has mod_revision rev (the one transaction
 * of a migration). *won says whether it moved. */
int om_owner_move(struct om_cluster *c, unsigned long g, int64_t rev, const Om__GroupOwner *from, const char *node,
		  uint64_t generation, bool *won, int64_t *new_revision, om_error_t *err);
/* Put value (an owner's JSON) as g's owner if its key still has mod_revision
 * rev: the one transaction every change of an owner goes through. */
int om_owner_put_at(struct om_cluster *c, unsigned long g, int64_t rev, const char *value, size_t len, bool *won,
		    int64_t *new_revision, om_error_t *err);
/* The claim of a failover: g (owned by from->node, dead) to this node, if its
 * key still has mod_revision rev, marked `restoring_from` from->node until
 * the restore is recorded (a plain put of the owner value). */
int om_owner_take_over(struct om_cluster *c, unsigned long g, int64_t rev, const Om__GroupOwner *from, bool *won,
		       int64_t *new_revision, om_error_t *err);
/* Put cur back with ended_ms set (now) or cleared, if g's key still has
 * mod_revision rev. A group with ended_ms has no process on its node: no
 * failover restores it elsewhere. */
int om_owner_set_ended(struct om_cluster *c, unsigned long g, int64_t rev, const Om__GroupOwner *cur, bool ended,
		       bool *won, om_error_t *err);

/* For the node-local commands (joingroup, omrun, resetgroup): claim or
 * release g in the cluster when one is configured (cfg says), else nothing. */
/* The fencing token of g for a checkpoint by this node: the mod_revision of
 * its owner key (0: no key). OM_ECLUSTER when another node owns g. */
int om_owner_fence(struct om_cluster *c, unsigned long g, uint64_t *fence, om_error_t *err);
/* The same from the settings; 0 when no cluster is configured. */
int om_cluster_group_fence(const struct om_config *cfg, unsigned long g, uint64_t *fence, om_error_t *err);
int om_cluster_claim_group(const struct om_config *cfg, unsigned long g, om_error_t *err);
int om_cluster_release_group(const struct om_config *cfg, unsigned long g, om_error_t *err);
/* omckpt stopped g: mark its owner key ended, when it names this node. */
int om_cluster_group_ended(const struct om_config *cfg, unsigned long g, om_error_t *err);

/* ---- requests (PREFIX/req/NODE/ID) and replies (PREFIX/reply/ID) ---- */
int om_request_id(char id[OM_REQ_ID_LEN + 1], om_error_t *err);
/* Send req (its id, from and issued_ms are filled here) to node. */
int om_request_send(struct om_cluster *c, const char *node, Om__Request *req, om_error_t *err);
/* Check a request read from PREFIX/req/SELF/KEYID: every field, the key's id
 * equal to its own, the sender in the map, not too old. OM_EUSAGE with the reason. */
int om_request_validate(const struct om_cluster *c, const char *key_id, const Om__Request *r, int64_t now_ms,
			om_error_t *err);
/* Mark a request id used, once: 1 first time, 0 replayed. */
int om_request_take(struct om_cluster *c, const char *id, om_error_t *err);
int om_reply_put(struct om_cluster *c, const Om__Reply *r, om_error_t *err);
/* Wait for the reply to id until its state is final (not "accepted"), at
 * most timeout_s, or until cancel_fd; also fails early when node's lease goes
 * (node may be NULL). *out NULL at the timeout. */
int om_reply_wait(struct om_cluster *c, const char *id, const char *node, double timeout_s, int cancel_fd,
		  Om__Reply **out, om_error_t *err);

int64_t om_wall_ms(void);

#endif
