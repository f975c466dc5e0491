/* cluster/policy.h — the periodic-checkpoint policy of a miggroup
 * (proto/cluster.proto `Policy`): checkpoint G every every_s seconds with
 * --leave-running and keep its newest `keep` generations.
 *
 * Two backends behind one API:
 *   - a cluster (`etcd =` set): the etcd key PREFIX/policy/G, JSON through
 *     the sandboxed parser; the key does not name a node, so a group keeps its
 *     policy when it migrates;
 *   - one node alone: a file per group, DIR/G, in a directory next to the
 *     settings file (om_policy_dir: /etc/omtools/policy by default). The file
 *     is "OMPOLCY\0", a 32-bit version (1, little endian) and the packed
 *     Policy message; at most OM_POLICY_FILE_MAX bytes; written to a
 *     temporary name, fsync()ed and renamed.
 * Everything read is checked: the version, the group the value names, every_s
 * within OM_POLICY_MIN_S..OM_POLICY_MAX_S, keep <= OM_POLICY_MAX_KEEP, `by` at
 * most 64 bytes; at most OM_POLICY_MAX_GROUPS policies are listed. */
#ifndef OM_POLICY_H
#define OM_POLICY_H

#include "cluster.h"
#include "error.h"
#include "settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OM_POLICY_MIN_S 10u	   /* the shortest period */
#define OM_POLICY_MAX_S 604800u	   /* the longest: 7 days */
#define OM_POLICY_MAX_KEEP 100000u /* as `keep =` */
#define OM_POLICY_MAX_GROUPS 4096u /* policies listed at once */
#define OM_POLICY_FILE_MAX 4096u   /* bytes of a policy file */
#define OM_POLICY_MAGIC "OMPOLCY"  /* 8 bytes with the NUL */
#define OM_POLICY_VERSION 1u
#define OM_DEFAULT_POLICY_DIR "/etc/omtools/policy"

/* Where the policies are kept: the cluster (c, opened) or a directory. */
struct om_policy_store {
	struct om_cluster *c; /* NULL: the directory */
	const char *dir;      /* used when c is NULL */
};

/* The policy directory of these settings: "policy" next to the settings file
 * (cfg->path), else OM_DEFAULT_POLICY_DIR. malloc'd. */
int om_policy_dir(const struct om_config *cfg, char **out, om_error_t *err);

/* A period: N (seconds) or N followed by s, m, h or d; "0" and "off" give 0
 * (no policy). Anything else, or outside OM_POLICY_MIN_S..OM_POLICY_MAX_S:
 * OM_EUSAGE with the reason. */
int om_policy_parse_every(const char *s, uint32_t *secs, om_error_t *err);
/* "10m", "2h", "90s": the shortest exact spelling (buf of 16 bytes). */
const char *om_policy_format_every(uint32_t secs, char *buf, size_t len);

/* *out NULL when g has no policy. Free with om_policy_free. */
int om_policy_get(struct om_policy_store *ps, unsigned long g, Om__Policy **out, om_error_t *err);
/* Store p (p->v and p->group must be set; every_s within bounds). */
int om_policy_set(struct om_policy_store *ps, const Om__Policy *p, om_error_t *err);
/* Remove g's policy; *existed (may be NULL) says whether there was one. */
int om_policy_delete(struct om_policy_store *ps, unsigned long g, bool *existed, om_error_t *err);
/* Every policy, by group (ascending). A value that does not parse or check
 * is skipped and counted in *bad (may be NULL). Free with om_policy_list_free. */
int om_policy_list(struct om_policy_store *ps, Om__Policy ***out, size_t *n, size_t *bad, om_error_t *err);
void om_policy_free(Om__Policy *p);
void om_policy_list_free(Om__Policy **v, size_t n);

/* Check a policy's fields (the bounds above). OM_ECORRUPT naming what is wrong. */
int om_policy_check(const Om__Policy *p, unsigned long g, om_error_t *err);

#endif
