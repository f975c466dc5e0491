/* tests/unit/test-history.c — the cluster's history (cluster/history.h)
 * against a real etcd: `test-history CONFIG N` adds N events of a group of
 * its own (through om_history_add, as omd does) and checks that the history
 * keeps the newest OM_HISTORY_MAX events and no more (the oldest trimmed,
 * bounded work per call), that om_history_list reads them back in order, by
 * group and with a limit. Run by tests/t93-failover.sh against its lab's etcd
 * (CONFIG: the lab's host.conf). */
#include "config.h"
#include "cluster.h"
#include "error.h"
#include "history.h"
#include "settings.h"
#include "util.h"

#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct om_config cfg;
	struct om_cluster c;
	om_error_t err = NULL;
	Om__HistoryEvent **v = NULL;
	size_t n = 0, before = 0;
	unsigned long g, total;
	int fails = 0;
	char detail[64];

	if (argc != 4) {
		fprintf(stderr, "usage: %s CONFIG GROUP N\n", argv[0]);
		return 2;
	}
	g = strtoul(argv[2], NULL, 10);
	total = strtoul(argv[3], NULL, 10);
	if (om_config_load(argv[1], &cfg, &err) < 0 || om_cluster_open(&c, &cfg, false, &err) < 0) {
		printf("Bail out! %s\n", err && err->msg ? err->msg : "?");
		return 1;
	}
	if (om_history_list(&c, 0, 0, &v, &before, &err) == 0)
		om_history_free(v, before);
	diag("%zu events in the history before", before);
	for (unsigned long i = 0; i < total; i++) {
		Om__HistoryEvent ev = OM__HISTORY_EVENT__INIT;
		ev.event = "test";
		ev.has_group = true;
		ev.group = g;
		ev.has_generation = true;
		ev.generation = i;
		snprintf(detail, sizeof(detail), "n=%lu", i);
		ev.detail = detail;
		if (om_history_add(&c, &ev, &err) < 0 && fails++ < 3) {
			diag("add %lu: %s", i, err && err->msg ? err->msg : "?");
			om_error_release(&err);
		}
	}
	ok(fails == 0, "%lu events added", total);
	ok(om_history_list(&c, 0, 0, &v, &n, &err) == 0, "the history is read back");
	ok(n <= OM_HISTORY_MAX, "it keeps at most %d events (%zu)", OM_HISTORY_MAX, n);
	if (before + total >= OM_HISTORY_MAX)
		ok(n == OM_HISTORY_MAX, "... exactly %d after %zu + %lu", OM_HISTORY_MAX, n, total);
	for (size_t i = 1; i < n; i++)
		if (v[i]->time_ms < v[i - 1]->time_ms) {
			ok(0, "oldest first: event %zu is older than %zu", i, i - 1);
			break;
		}
	if (n > 0)
		ok(v[n - 1]->group == g && v[n - 1]->generation == total - 1, "the newest is the last added (%s)",
		   v[n - 1]->detail ? v[n - 1]->detail : "?");
	if (n > 0 && total > OM_HISTORY_MAX)
		ok(v[0]->group == g && v[0]->generation == total - OM_HISTORY_MAX,
		   "the oldest kept is event %lu of %lu (the older ones were trimmed): %llu", total - OM_HISTORY_MAX,
		   total, (unsigned long long)v[0]->generation);
	om_history_free(v, n);
	ok(om_history_list(&c, g, 10, &v, &n, &err) == 0 && n == 10 && v[9]->generation == total - 1 &&
	       v[0]->generation == total - 10,
	   "--group with --limit 10: the newest ten of the group, oldest first");
	om_history_free(v, n);
	ok(om_history_list(&c, g + 1, 0, &v, &n, &err) == 0 && n == 0, "another group has none of them");
	om_history_free(v, n);
	om_error_release(&err);
	om_cluster_close(&c);
	om_config_release(&cfg);
	return done_testing();
}
