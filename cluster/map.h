/* cluster/map.h — the cluster map, in openMosix's openmosix.map format:
 *
 *   # comment
 *   ID ADDRESS RANGE        nodes ID..ID+RANGE-1 at ADDRESS, ADDRESS+1, ...
 *   ID ADDRESS ALIAS        a second address (interface) of node ID
 *
 * (as in the seed: "1 192.168.1.1 4" is nodes 1-4 at .1-.4, and
 * "4 192.168.10.10 ALIAS" a second interface of node 4). Several entries may
 * share a line, as in the seed's one-line examples. ADDRESS is IPv4, IPv6 or
 * a host name (a name takes range 1). A malformed map is refused with its
 * line number: "cluster.map:7: ...". */
#ifndef OM_MAP_H
#define OM_MAP_H

#include "error.h"

#include <stddef.h>

#define OM_MAP_MAX_NODES 65536 /* after ranges are expanded */
#define OM_MAP_MAX_ID 0xffffffUL

struct om_map_node {
	unsigned long id;
	char addr[256]; /* the node's address or host name, as in the map */
	char **aliases; /* ALIAS addresses, NULL-terminated (may be NULL) */
	size_t n_aliases;
};

struct om_map {
	struct om_map_node *nodes; /* sorted by id */
	size_t n;
	char *name; /* the file name, for messages (om_map_self) */
};

/* Parse text (len bytes; name is the file name for messages). */
int om_map_parse(const char *text, size_t len, const char *name, struct om_map *m, om_error_t *err);
/* Read and parse a file (bounded: at most 1 MiB). */
int om_map_load(const char *path, struct om_map *m, om_error_t *err);
void om_map_release(struct om_map *m);
/* A node by id ("2") or by one of its addresses; NULL if none. */
const struct om_map_node *om_map_find(const struct om_map *m, const char *id_or_addr);
/* This host's node: the one whose address or alias is one of the host's
 * interface addresses (getifaddrs). OM_ENOTFOUND if none; OM_EUSAGE if two. */
int om_map_self(const struct om_map *m, const struct om_map_node **out, om_error_t *err);

#endif
