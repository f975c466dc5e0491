/* cluster/etcd.h — a small etcd v3 client over the JSON gateway (libcurl).
 *
 * etcd is omtools' control plane: node liveness (a lease), group ownership
 * (keys changed only by transactions that compare mod_revision) and requests
 * between nodes (keys the target node watches). The gateway speaks JSON with
 * keys and values in base64 and 64-bit numbers as strings; every answer is
 * parsed by the sandboxed parser (cluster/sandbox.h), never in this process.
 *
 * All calls are bounded by the client's timeout (and a watch by its own
 * timeout and cancel fd). Errors: OM_ECLUSTER (exit class OM_EXIT_CLUSTER)
 * for an unreachable etcd, a TLS failure or an error answer, with etcd's own
 * words in the message.
 *
 * A client is not thread-safe, and belongs to the process that opened it:
 * after fork() the child opens its own (the inherited one refuses calls with
 * EINVAL, and closing it there leaves the parent's parser child alone). */
#ifndef OM_ETCD_H
#define OM_ETCD_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct om_etcd_conf {
	const char *endpoints; /* "https://10.77.0.1:2379" (comma-separated: tried in order) */
	const char *ca;	       /* PEM CA file that signed etcd's server certificate; NULL: system */
	const char *cert;      /* PEM client certificate (this node's), NULL: none */
	const char *key;       /* its PEM private key */
	double timeout_s;      /* every call but watch; 0: 5 s */
};

struct om_etcd; /* a client: one curl handle, one sandboxed parser child */

int om_etcd_open(const struct om_etcd_conf *conf, struct om_etcd **out, om_error_t *err);
void om_etcd_close(struct om_etcd *e); /* NULL is fine */
#define cleanup_etcd __attribute__((cleanup(om_etcd_closep)))
static inline void om_etcd_closep(struct om_etcd **e)
{
	om_etcd_close(*e);
	*e = NULL;
}

struct om_etcd_kv {
	char *key;   /* NUL-terminated */
	char *value; /* NUL-terminated too (value_len bytes before the NUL) */
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

struct om_etcd_range {
	struct om_etcd_kv *kvs;
	size_t n;
	int64_t revision; /* the store's revision at the read */
	bool more;
	int64_t count; /* keys in the range (all of them, whatever the limit) */
};
void om_etcd_range_release(struct om_etcd_range *r);

/* Read key, or every key under it with prefix (at most limit keys; 0: no limit). */
int om_etcd_get(struct om_etcd *e, const char *key, bool prefix, int64_t limit, struct om_etcd_range *out,
		om_error_t *err);
/* The same with flags: only the keys (values empty), only the count
 * (out->count, no kvs), newest key first (sorted by key, descending). */
#define OM_ETCD_KEYS_ONLY 1u
#define OM_ETCD_COUNT_ONLY 2u
#define OM_ETCD_DESCEND 4u
int om_etcd_get_opts(struct om_etcd *e, const char *key, bool prefix, int64_t limit, unsigned flags,
		     struct om_etcd_range *out, om_error_t *err);
/* Put (with a lease id, or 0); *revision (may be NULL) gets the new revision. */
int om_etcd_put(struct om_etcd *e, const char *key, const void *val, size_t len, int64_t lease, int64_t *revision,
		om_error_t *err);
/* Delete key, or every key under it; *deleted (may be NULL) gets the count. */
int om_etcd_delete(struct om_etcd *e, const char *key, bool prefix, int64_t *deleted, om_error_t *err);

/* Transactions: every compare is EQUAL on one field of one key. A key that
 * does not exist has create_revision, mod_revision and version 0. */
enum om_etcd_target { OM_ETCD_MOD, OM_ETCD_CREATE, OM_ETCD_VERSION, OM_ETCD_VALUE };
struct om_etcd_cmp {
	const char *key;
	enum om_etcd_target target;
	int64_t number;	   /* for MOD, CREATE, VERSION */
	const void *value; /* for VALUE */
	size_t value_len;
};
enum om_etcd_optype { OM_ETCD_PUT, OM_ETCD_DEL };
struct om_etcd_op {
	enum om_etcd_optype type;
	const char *key;
	const void *value; /* PUT */
	size_t value_len;
	int64_t lease; /* PUT: 0 none */
};
/* If every compare holds, run the success ops, else the failure ops.
 * *succeeded says which; *revision (may be NULL) the store's revision after. */
int om_etcd_txn(struct om_etcd *e, const struct om_etcd_cmp *cmp, size_t n_cmp, const struct om_etcd_op *ok,
		size_t n_ok, const struct om_etcd_op *fail, size_t n_fail, bool *succeeded, int64_t *revision,
		om_error_t *err);

/* Leases. keepalive sends one keep-alive and gives the TTL left (0: the lease
 * has expired or is unknown: its keys are gone). */
int om_etcd_lease_grant(struct om_etcd *e, int64_t ttl_s, int64_t *id, om_error_t *err);
int om_etcd_lease_keepalive(struct om_etcd *e, int64_t id, int64_t *ttl_left, om_error_t *err);
int om_etcd_lease_revoke(struct om_etcd *e, int64_t id, om_error_t *err);

/* Streamed watch of key (or prefix) from start_revision (0: from now). For
 * every event cb is called (kv.value empty on a delete); the watch returns 0
 * when cb returns > 0, when timeout_s passes (0: none) or when cancel_fd (if
 * >= 0) becomes readable, and -1 with *err when cb returns < 0 (its error) or
 * the stream fails. *next_revision (may be NULL) is the revision to resume
 * from (the last event's mod_revision + 1, or the header's revision + 1). A
 * compacted start revision is an error with status ERANGE. */
enum om_etcd_evtype { OM_ETCD_EV_PUT, OM_ETCD_EV_DELETE };
struct om_etcd_event {
	enum om_etcd_evtype type;
	struct om_etcd_kv kv;
};
typedef int (*om_etcd_watch_cb)(void *arg, const struct om_etcd_event *ev, om_error_t *err);
int om_etcd_watch(struct om_etcd *e, const char *key, bool prefix, int64_t start_revision, double timeout_s,
		  int cancel_fd, om_etcd_watch_cb cb, void *arg, int64_t *next_revision, om_error_t *err);

#endif
