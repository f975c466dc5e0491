/* omstat — the nodes of the cluster: address, state, load, memory, groups
 * (what mosmon showed, for scripts and people). */
#include "config.h"
#include "cli.h"
#include "cluster.h"
#include "history.h"
#include "util.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>

static const char *prog = "omstat";

static void usage(void)
{
	printf("Usage: %s [OPTION]...\n"
	       "       %s --history [-g G] [--limit N] [--json]\n"
	       "Show the nodes of the cluster: address, state (alive, dead, drained), load,\n"
	       "CPUs, available and total memory, and the miggroups each one runs.\n"
	       "With --history: the cluster's history (failovers, stale copies killed, lost\n"
	       "leases, periodic checkpoints, prunes), oldest first.\n\n"
	       "  -j, --json         print JSON\n"
	       "  -H, --history      the cluster's history instead of the nodes\n"
	       "  -g, --group G      --history: the events of miggroup G only\n"
	       "  -L, --limit N      --history: the newest N events (default 50, 0: all kept)\n" OM_CLI_CLUSTER_HELP
	       "  -h, --help         show this help\n"
	       "  -V, --version      show the version\n\n"
	       "Exit status: 0 ok, 2 usage, 7 no cluster configured or etcd unreachable.\n",
	       prog, prog);
}

static const char *state(const struct om_node_info *n)
{
	if (!n->alive)
		return n->drained ? "dead,drained" : "dead";
	return n->drained ? "drained" : "alive";
}

static int history(struct om_cluster *cl, unsigned long g, size_t limit, bool json, om_error_t *err)
{
	Om__HistoryEvent **v = NULL;
	size_t n = 0;

	if (om_history_list(cl, g, limit, &v, &n, err) < 0)
		return -1;
	if (json)
		printf("[");
	else
		printf("%-24s %-6s %-20s %6s %-9s %5s %8s %7s  %s\n", "TIME", "NODE", "EVENT", "GROUP", "FROM->TO",
		       "GEN", "FENCE", "SECONDS", "DETAIL");
	for (size_t i = 0; i < n; i++) {
		const Om__HistoryEvent *e = v[i];
		char when[40] = "?", grp[24] = "-", ft[40] = "-", gen[24] = "-", fence[24] = "-", secs[24] = "-";
		time_t t = (time_t)(e->time_ms / 1000);
		struct tm tm;
		if (json) {
			char *s = om_pb_to_json(&e->base);
			printf("%s%s", i ? "," : "", s ? s : "null");
			free(s);
			continue;
		}
		if (gmtime_r(&t, &tm)) {
			size_t l = strftime(when, sizeof(when) - 8, "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(when + l, sizeof(when) - l, ".%03dZ", (int)(e->time_ms % 1000));
		}
		if (e->has_group)
			snprintf(grp, sizeof(grp), "%llu", (unsigned long long)e->group);
		if (e->from || e->to)
			snprintf(ft, sizeof(ft), "%s->%s", e->from ? e->from : "", e->to ? e->to : "");
		if (e->has_generation)
			snprintf(gen, sizeof(gen), "%llu", (unsigned long long)e->generation);
		if (e->has_fence)
			snprintf(fence, sizeof(fence), "%lld", (long long)e->fence);
		if (e->has_seconds)
			snprintf(secs, sizeof(secs), "%.1f", e->seconds);
		printf("%-24s %-6s %-20s %6s %-9s %5s %8s %7s  %s%s\n", when, e->node, e->event, grp, ft, gen, fence,
		       secs, e->has_ok && !e->ok ? "FAILED " : "", e->detail ? e->detail : "");
	}
	if (json)
		printf("]\n");
	om_history_free(v, n);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"history", no_argument, NULL, 'H'},
					     {"group", required_argument, NULL, 'g'},
					     {"limit", required_argument, NULL, 'L'},
					     OM_CLI_CLUSTER_OPTIONS,
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_cli_cluster co = {0};
	bool json = false, hist = false;
	unsigned long group = 0, limit = 50;
	struct om_config cfg;
	struct om_cluster cl;
	struct om_node_info *nodes = NULL;
	size_t n = 0;
	int c;

	while ((c = getopt_long(argc, argv, "jHg:L:c:n:m:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'H':
			hist = true;
			break;
		case 'g':
			if (om_parse_uint(optarg, ULONG_MAX, &group) < 0 || group == 0)
				return om_cli_usage_error(prog, "bad group id");
			break;
		case 'L':
			if (om_parse_uint(optarg, 1000000, &limit) < 0)
				return om_cli_usage_error(prog, "bad --limit");
			break;
		default:
			if (om_cli_cluster_option(c, optarg, &co))
				break;
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (optind != argc)
		return om_cli_usage_error(prog, "no arguments expected");
	if (!hist && (group || limit != 50))
		return om_cli_usage_error(prog, "--group and --limit go with --history");
	if (om_cli_config(co.config, co.node, co.map, &cfg, &err) < 0)
		return om_cli_fail(prog, &err);
	if (hist) {
		int rc = 0;
		if (om_cluster_open(&cl, &cfg, false, &err) < 0 || history(&cl, group, limit, json, &err) < 0)
			rc = -1;
		om_cluster_close(&cl);
		om_config_release(&cfg);
		return rc < 0 ? om_cli_fail(prog, &err) : 0;
	}
	if (om_cluster_open(&cl, &cfg, false, &err) < 0 || om_cluster_nodes(&cl, &nodes, &n, &err) < 0) {
		om_cluster_close(&cl);
		om_config_release(&cfg);
		return om_cli_fail(prog, &err);
	}
	if (json)
		printf("[");
	else
		printf("%-6s %-16s %-12s %6s %4s %17s  %s\n", "NODE", "ADDRESS", "STATE", "LOAD", "CPUS",
		       "MEM-AVAIL/TOTAL", "GROUPS");
	for (size_t i = 0; i < n; i++) {
		const Om__NodeStatus *s = nodes[i].status;
		if (json) {
			printf("%s{\"node\":\"%lu\",\"address\":", i ? "," : "", nodes[i].node->id);
			om_json_string(stdout, nodes[i].node->addr);
			printf(",\"alive\":%s,\"drained\":%s", nodes[i].alive ? "true" : "false",
			       nodes[i].drained ? "true" : "false");
			if (s) {
				printf(
				    ",\"load1\":%.2f,\"cpus\":%u,\"mem_avail\":%llu,\"mem_total\":%llu,\"omd_pid\":%d,"
				    "\"updated_ms\":%lld,\"groups\":[",
				    s->load1, s->cpus, (unsigned long long)s->mem_avail,
				    (unsigned long long)s->mem_total, s->omd_pid, (long long)s->updated_ms);
				for (size_t j = 0; j < s->n_groups; j++)
					printf("%s%llu", j ? "," : "", (unsigned long long)s->groups[j]);
				printf("]");
			}
			printf("}");
			continue;
		}
		if (s) {
			char mem[40], groups[256] = "0";
			size_t len = s->n_groups ? (size_t)snprintf(groups, sizeof(groups), "%zu: ", s->n_groups) : 0;
			snprintf(mem, sizeof(mem), "%.1f/%.1fG", (double)s->mem_avail / (1 << 30),
				 (double)s->mem_total / (1 << 30));
			for (size_t j = 0; j < s->n_groups && len < sizeof(groups) - 24; j++)
				len += (size_t)snprintf(groups + len, sizeof(groups) - len, "%s%llu", j ? "," : "",
							(unsigned long long)s->groups[j]);
			printf("%-6lu %-16s %-12s %6.2f %4u %17s  %s\n", nodes[i].node->id, nodes[i].node->addr,
			       state(&nodes[i]), s->load1, s->cpus, mem, groups);
		} else
			printf("%-6lu %-16s %-12s %6s %4s %17s  %s\n", nodes[i].node->id, nodes[i].node->addr,
			       state(&nodes[i]), "-", "-", "-", "-");
	}
	if (json)
		printf("]\n");
	om_cluster_nodes_free(nodes, n);
	om_cluster_close(&cl);
	om_config_release(&cfg);
	return 0;
}
