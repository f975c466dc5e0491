/* omdrain NODE — empty a node before a reboot, as openMosix's `mosctl expel`:
 * mark it drained, move every group on it to the least loaded live nodes,
 * at most N at once. omdrain --undo NODE opens it again. */
#include "config.h"
#include "cli.h"
#include "cluster.h"
#include "migrate.h"
#include "util.h"

#include <getopt.h>

static const char *prog = "omdrain";

static void usage(void)
{
	printf("Usage: %s [OPTION]... NODE\n"
	       "       %s --undo NODE\n"
	       "Drain NODE (an id or an address of the cluster map): nothing new is placed\n"
	       "there, and every miggroup on it moves to the least loaded live node that is\n"
	       "not drained, at most N at once. A group that cannot move stays where it was,\n"
	       "running. The mark stays until --undo, across reboots.\n\n"
	       "  -p, --parallel N   move at most N groups at once (default 2)\n"
	       "  -t, --timeout S    give up on one group after S seconds (default 300)\n"
	       "  -u, --undo         open NODE again\n"
	       "  -j, --json         print the result as JSON\n" OM_CLI_CLUSTER_HELP
	       "  -h, --help         show this help\n"
	       "  -V, --version      show the version\n\n"
	       "Exit status: 0 every group moved (or none was there), 2 usage, 7 some groups\n"
	       "could not move (named; they still run on NODE), the node is unknown or dead,\n"
	       "or etcd is unreachable, 1 other failure.\n",
	       prog, prog);
}

struct job {
	unsigned long group;
	size_t target; /* index into the nodes */
	char id[OM_REQ_ID_LEN + 1];
	int state; /* 0 waiting, 1 asked, 2 moved, 3 failed */
	double downtime, started;
	char *error;
};

/* The least loaded candidate: fewest groups per CPU (counting those this
 * drain sends there), then the lowest load. */
static long pick(const struct om_node_info *nodes, size_t n, const char *drained, const size_t *extra)
{
	long best = -1;
	double best_score = 0, best_load = 0;
	for (size_t i = 0; i < n; i++) {
		char id[OM_CLUSTER_MAX_NODE_LEN];
		double cpus, score, load;
		snprintf(id, sizeof(id), "%lu", nodes[i].node->id);
		if (!nodes[i].alive || nodes[i].drained || strcmp(id, drained) == 0 || nodes[i].status == NULL)
			continue;
		cpus = nodes[i].status->cpus ? nodes[i].status->cpus : 1;
		score = (double)(nodes[i].status->n_groups + extra[i]) / cpus;
		load = nodes[i].status->load1 / cpus;
		if (best < 0 || score < best_score || (score == best_score && load < best_load)) {
			best = (long)i;
			best_score = score;
			best_load = load;
		}
	}
	return best;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"parallel", required_argument, NULL, 'p'},
					     {"timeout", required_argument, NULL, 't'},
					     {"undo", no_argument, NULL, 'u'},
					     {"json", no_argument, NULL, 'j'},
					     OM_CLI_CLUSTER_OPTIONS,
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_cli_cluster co = {0};
	unsigned long parallel = 2;
	double timeout = 300, t0 = om_now();
	bool undo = false, json = false;
	struct om_config cfg;
	struct om_cluster cl;
	const struct om_map_node *dn;
	char did[OM_CLUSTER_MAX_NODE_LEN];
	struct om_node_info *nodes = NULL;
	size_t n_nodes = 0, n_jobs = 0, failed = 0;
	cleanup_free size_t *extra = NULL;
	cleanup_free struct job *jobs = NULL;
	cleanup_free char *kg = NULL;
	struct om_etcd_range r = {0};
	int c, rc = OM_EXIT_FAILURE;

	while ((c = getopt_long(argc, argv, "p:t:ujc:n:m:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (om_parse_uint(optarg, 64, &parallel) < 0 || parallel == 0)
				return om_cli_usage_error(prog, "--parallel takes 1 to 64");
			break;
		case 't':
			if (om_cli_seconds(optarg, 86400, &timeout) < 0)
				return om_cli_usage_error(prog, "--timeout takes seconds (up to 86400)");
			break;
		case 'u':
			undo = true;
			break;
		case 'j':
			json = true;
			break;
		default:
			if (om_cli_cluster_option(c, optarg, &co))
				break;
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (argc - optind != 1)
		return om_cli_usage_error(prog, "expected one NODE");
	if (om_cli_config(co.config, co.node, co.map, &cfg, &err) < 0)
		return om_cli_fail(prog, &err);
	if (om_cluster_open(&cl, &cfg, true, &err) < 0) {
		om_config_release(&cfg);
		return om_cli_fail(prog, &err);
	}
	if (om_cluster_resolve(&cl, argv[optind], NULL, &dn, &err) < 0)
		goto fail;
	snprintf(did, sizeof(did), "%lu", dn->id);
	if (undo) {
		if (om_cluster_set_drained(&cl, did, false, &err) < 0)
			goto fail;
		if (json)
			printf("{\"node\":\"%s\",\"drained\":false}\n", did);
		else
			printf("node %s is open again\n", did);
		rc = 0;
		goto out;
	}
	if (om_cluster_set_drained(&cl, did, true, &err) < 0)
		goto fail;

	/* the groups the cluster says run there */
	kg = om_cluster_key(&cl, "groups/");
	if (kg == NULL || om_etcd_get(cl.etcd, kg, true, 0, &r, &err) < 0)
		goto fail;
	jobs = calloc(r.n + 1, sizeof(*jobs));
	if (jobs == NULL) {
		om_make_error(&err, ENOMEM, "drain");
		goto fail;
	}
	for (size_t i = 0; i < r.n; i++) {
		ProtobufCMessage *m = NULL;
		Om__GroupOwner *o;
		if (om_sandbox_parse(cl.sb, &om__group_owner__descriptor, r.kvs[i].value, r.kvs[i].value_len, &m,
				     &err) < 0) {
			om_error_wrap(&err, "etcd key %s", r.kvs[i].key);
			goto fail;
		}
		o = (Om__GroupOwner *)m;
		if (strcmp(o->node, did) == 0)
			jobs[n_jobs++].group = (unsigned long)o->group;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (om_cluster_nodes(&cl, &nodes, &n_nodes, &err) < 0)
		goto fail;
	extra = calloc(n_nodes + 1, sizeof(*extra));
	if (extra == NULL) {
		om_make_error(&err, ENOMEM, "drain");
		goto fail;
	}
	for (size_t i = 0; i < n_nodes; i++) {
		char id[OM_CLUSTER_MAX_NODE_LEN];
		snprintf(id, sizeof(id), "%lu", nodes[i].node->id);
		if (strcmp(id, did) == 0 && !nodes[i].alive && n_jobs > 0) {
			om_make_error(&err, OM_ECLUSTER,
				      "node %s is dead: its %zu group%s cannot be checkpointed there (the node is "
				      "marked drained)",
				      did, n_jobs, n_jobs == 1 ? "" : "s");
			om_error_set_exit(&err, OM_EXIT_CLUSTER);
			goto fail;
		}
	}
	for (size_t i = 0; i < n_jobs; i++) {
		long t = pick(nodes, n_nodes, did, extra);
		if (t < 0) {
			jobs[i].state = 3;
			jobs[i].error = strdup("no live node that is not drained can take it");
			continue;
		}
		jobs[i].target = (size_t)t;
		extra[t]++;
	}

	/* at most `parallel` at once */
	for (;;) {
		size_t asked = 0, waiting = 0;
		for (size_t i = 0; i < n_jobs; i++) {
			asked += jobs[i].state == 1;
			waiting += jobs[i].state == 0;
		}
		if (asked == 0 && waiting == 0)
			break;
		for (size_t i = 0; i < n_jobs && asked < parallel; i++) {
			char tid[OM_CLUSTER_MAX_NODE_LEN];
			if (jobs[i].state != 0)
				continue;
			snprintf(tid, sizeof(tid), "%lu", nodes[jobs[i].target].node->id);
			if (om_migrate_ask(&cl, did, jobs[i].group, tid, timeout, false, jobs[i].id, &err) < 0) {
				jobs[i].state = 3;
				jobs[i].error = strdup(err && err->msg ? err->msg : "request failed");
				om_error_release(&err);
				continue;
			}
			jobs[i].state = 1;
			jobs[i].started = om_now();
			asked++;
		}
		for (size_t i = 0; i < n_jobs; i++) {
			Om__Reply *rep = NULL;
			cleanup_free char *rk = NULL;
			if (jobs[i].state != 1)
				continue;
			if (om_reply_wait(&cl, jobs[i].id, did, 0.3, -1, &rep, &err) < 0) {
				jobs[i].state = 3;
				jobs[i].error = strdup(err && err->msg ? err->msg : "failed");
				om_error_release(&err);
				continue;
			}
			if (rep == NULL) {
				if (om_now() - jobs[i].started > timeout + 30) {
					jobs[i].state = 3;
					jobs[i].error = strdup("no answer in time");
				}
				continue;
			}
			if (strcmp(rep->state, "done") == 0) {
				jobs[i].state = 2;
				jobs[i].downtime = rep->downtime_s;
			} else {
				jobs[i].state = 3;
				jobs[i].error = strdup(rep->error ? rep->error : rep->state);
			}
			protobuf_c_message_free_unpacked(&rep->base, NULL);
			rk = om_cluster_key(&cl, "reply/%s", jobs[i].id);
			if (rk && om_etcd_delete(cl.etcd, rk, false, NULL, &err) < 0)
				om_error_release(&err);
			if (!json && jobs[i].state == 2)
				printf("miggroup %lu: %s -> %lu, downtime %.2f s\n", jobs[i].group, did,
				       nodes[jobs[i].target].node->id, jobs[i].downtime);
			fflush(stdout);
		}
	}
	for (size_t i = 0; i < n_jobs; i++)
		if (jobs[i].state == 3) {
			failed++;
			if (!json)
				printf("miggroup %lu: stays on %s: %s\n", jobs[i].group, did,
				       jobs[i].error ? jobs[i].error : "failed");
		}
	if (json) {
		printf("{\"node\":\"%s\",\"drained\":true,\"seconds\":%.3f,\"groups\":[", did, om_now() - t0);
		for (size_t i = 0; i < n_jobs; i++) {
			printf("%s{\"group\":%lu,\"moved\":%s", i ? "," : "", jobs[i].group,
			       jobs[i].state == 2 ? "true" : "false");
			if (jobs[i].state == 2)
				printf(",\"to\":\"%lu\",\"downtime_s\":%.3f", nodes[jobs[i].target].node->id,
				       jobs[i].downtime);
			else {
				printf(",\"error\":");
				om_json_string(stdout, jobs[i].error ? jobs[i].error : "failed");
			}
			printf("}");
		}
		printf("]}\n");
	} else
		printf("node %s drained: %zu group%s moved, %zu stayed, %.2f s\n", did, n_jobs - failed,
		       n_jobs - failed == 1 ? "" : "s", failed, om_now() - t0);
	if (failed) {
		char list[1024] = "";
		for (size_t i = 0, len = 0; i < n_jobs && len < sizeof(list) - 32; i++)
			if (jobs[i].state == 3)
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%lu", len ? ", " : "",
							jobs[i].group);
		om_make_error(&err, OM_ECLUSTER, "could not move miggroup %s: still running on node %s", list, did);
		om_error_set_exit(&err, OM_EXIT_CLUSTER);
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	rc = om_cli_fail(prog, &err);
out:
	for (size_t i = 0; jobs && i < n_jobs; i++)
		free(jobs[i].error);
	om_etcd_range_release(&r);
	om_cluster_nodes_free(nodes, n_nodes);
	om_cluster_close(&cl);
	om_config_release(&cfg);
	return rc;
}
