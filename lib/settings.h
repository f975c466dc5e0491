/* lib/settings.h — omtools.conf, read into one settings struct.
 *
 * The library never reads the environment: a command (lib/cli.h,
 * om_cli_config()) loads the file named by --config, $OM_CONFIG or
 * /etc/omtools/omtools.conf, then applies its environment overrides
 * (OM_NODE, OM_MAP, OM_STORE), and hands the struct down; omd does the same
 * once at start. Syntax: `key = value` lines, `#` comments, optional quotes;
 * the last of a repeated key wins; an unknown key is an error naming its
 * line (a typo must not silently turn a cluster node into a lone one). */
#ifndef OM_SETTINGS_H
#define OM_SETTINGS_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

struct om_config {
	char *path;	   /* the file read (NULL: none existed) */
	char *store;	   /* store = DIR */
	char *node;	   /* node = ID (this node's id in the cluster map); NULL: by address */
	char *map;	   /* map = FILE; NULL: /etc/omtools/cluster.map, else /etc/openmosix.map */
	char *etcd;	   /* etcd = https://HOST:PORT[,...]; NULL: no cluster (one node alone) */
	char *etcd_ca;	   /* etcd_ca = FILE (PEM) */
	char *etcd_cert;   /* etcd_cert = FILE: this node's client certificate */
	char *etcd_key;	   /* etcd_key = FILE */
	char *etcd_prefix; /* etcd_prefix = /omtools */
	int lease_ttl;	   /* lease_ttl = SECONDS (omd's liveness lease; default 10) */
	unsigned keep;	   /* keep = N generations (0: keep all) */
};

/* Load path (NULL: the default file). A missing file is not an error: the
 * defaults stand. Errors name the file and line. */
int om_config_load(const char *path, struct om_config *cfg, om_error_t *err);
void om_config_release(struct om_config *cfg);
/* Replace one setting by key name (the CLI's environment overrides). */
int om_config_set(struct om_config *cfg, const char *key, const char *value, om_error_t *err);

#define OM_DEFAULT_ETCD_PREFIX "/omtools"
#define OM_DEFAULT_LEASE_TTL 10
#define OM_DEFAULT_MAP "/etc/omtools/cluster.map"
#define OM_OPENMOSIX_MAP "/etc/openmosix.map"

#endif
