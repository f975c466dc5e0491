/* tests/fuzz/fuzz_map.c — libFuzzer target for the cluster map parser.
 *
 * om_map_parse() reads a file every command and omd read: it must refuse
 * anything malformed as OM_EUSAGE with "NAME:LINE: " (or "NAME: " for a file
 * too large) and an empty map, without crashing, leaking or reading out of
 * bounds; a map it accepts must hold its nodes sorted by unique ids within
 * the limits of map.h, NULL-terminated alias lists, and every node must be
 * found again by its id, its address and its aliases.
 *
 *   ./fuzz_map -max_total_time=60 ../tests/fuzz/corpus-map
 */
#include "config.h"
#include "map.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_node(const struct om_map *m, size_t i)
{
	const struct om_map_node *n = &m->nodes[i];
	char id[32];

	snprintf(id, sizeof(id), "%lu", n->id);
	if (om_map_find(m, id) != n || om_map_find(m, n->addr) != n)
		abort();
	for (size_t j = 0; j < n->n_aliases; j++)
		if (n->aliases[j] == NULL || om_map_find(m, n->aliases[j]) != n)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct om_map m;
	om_error_t err = NULL;
	size_t total = 0;

	if (om_map_parse((const char *)data, size, "fuzz.map", &m, &err) < 0) {
		if (err == NULL || m.nodes != NULL || m.n != 0 || m.name != NULL)
			abort();
		if (err->status != ENOMEM && (err->status != OM_EUSAGE || strncmp(err->msg, "fuzz.map:", 9) != 0))
			abort();
		om_error_release(&err);
		return 0;
	}
	if (err != NULL || m.n > OM_MAP_MAX_NODES || (m.n > 0 && m.nodes == NULL) || m.name == NULL)
		abort();
	for (size_t i = 0; i < m.n; i++) {
		const struct om_map_node *n = &m.nodes[i];
		if (n->id == 0 || n->id > OM_MAP_MAX_ID || (i > 0 && m.nodes[i - 1].id >= n->id))
			abort(); /* sorted, unique, in range */
		if (memchr(n->addr, '\0', sizeof(n->addr)) == NULL || n->addr[0] == '\0')
			abort();
		if ((n->n_aliases == 0) != (n->aliases == NULL) ||
		    (n->aliases != NULL && n->aliases[n->n_aliases] != NULL))
			abort();
		total += n->n_aliases;
	}
	if (total > OM_MAP_MAX_NODES)
		abort();
	/* lookups are linear in the nodes: check the first and the last few */
	for (size_t i = 0; i < m.n; i++) {
		if (i == 32 && m.n > 64)
			i = m.n - 32;
		check_node(&m, i);
	}
	om_map_release(&m);
	return 0;
}
