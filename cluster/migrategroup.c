/* migrategroup G NODE|ADDRESS|home — full migration of a miggroup to another
 * node of the cluster (cluster/migrate.h), as openMosix's `migrategroup`. */
#include "config.h"
#include "cli.h"
#include "cluster.h"
#include "migrate.h"
#include "group.h"
#include "util.h"

#include <getopt.h>

static const char *prog = "migrategroup";

static void usage(void)
{
	printf("Usage: %s [OPTION]... G NODE|ADDRESS|home\n"
	       "Move miggroup G, with everything it runs, to another node of the cluster:\n"
	       "it is checkpointed on its node, restored by the target's omd, and the\n"
	       "cluster's ownership moves in one etcd transaction. `home` is the node where\n"
	       "the group was created. On any failure the group runs on its source node.\n\n"
	       "  -t, --timeout S    give up waiting after S seconds (default 300)\n"
	       "      --tcp-established  carry established TCP connections\n"
	       "  -j, --json         print the result as JSON\n"
	       "  -q, --quiet        print nothing on success\n" OM_CLI_CLUSTER_HELP
	       "  -h, --help         show this help\n"
	       "  -V, --version      show the version\n\n"
	       "Exit status: 0 moved, 2 usage, 3 unknown group, 4 store, 5 CRIU failed (the\n"
	       "group runs on its source node), 6 busy, 7 cluster: no etcd configured, etcd\n"
	       "unreachable, or the target is drained, dead or unknown, 1 other failure.\n",
	       prog);
}

static int fail7(om_error_t *err)
{
	return om_cli_fail(prog, err);
}

int main(int argc, char **argv)
{
	enum { OPT_TCP = 256 };
	static const struct option opts[] = {{"timeout", required_argument, NULL, 't'},
					     {"tcp-established", no_argument, NULL, OPT_TCP},
					     {"json", no_argument, NULL, 'j'},
					     {"quiet", no_argument, NULL, 'q'},
					     OM_CLI_CLUSTER_OPTIONS,
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_cli_cluster co = {0};
	double timeout = 300;
	bool json = false, quiet = false, tcp = false;
	struct om_config cfg;
	struct om_cluster cl;
	Om__GroupOwner *owner = NULL;
	Om__Reply *rep = NULL;
	char id[OM_REQ_ID_LEN + 1];
	const struct om_map_node *target;
	char tid[OM_CLUSTER_MAX_NODE_LEN];
	cleanup_free char *rkey = NULL;
	unsigned long g;
	int c, rc = OM_EXIT_FAILURE;

	while ((c = getopt_long(argc, argv, "t:jqc:n:m:hV", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (om_cli_seconds(optarg, 86400, &timeout) < 0)
				return om_cli_usage_error(prog, "--timeout takes seconds (up to 86400)");
			break;
		case OPT_TCP:
			tcp = true;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			if (om_cli_cluster_option(c, optarg, &co))
				break;
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (argc - optind != 2)
		return om_cli_usage_error(prog, "expected a miggroup G and a node (an id, an address or `home`)");
	if (om_group_parse_id(argv[optind], false, &g, &err) < 0)
		return om_cli_fail(prog, &err);
	if (om_cli_config(co.config, co.node, co.map, &cfg, &err) < 0)
		return om_cli_fail(prog, &err);
	if (om_cluster_open(&cl, &cfg, true, &err) < 0) {
		om_config_release(&cfg);
		return fail7(&err);
	}
	if (om_owner_get(&cl, g, &owner, NULL, &err) < 0)
		goto fail;
	if (owner == NULL) {
		om_make_error(&err, OM_ENOTFOUND, "miggroup %lu is not known to the cluster", g);
		goto fail;
	}
	if (om_cluster_resolve(&cl, argv[optind + 1], owner, &target, &err) < 0)
		goto fail;
	snprintf(tid, sizeof(tid), "%lu", target->id);
	if (strcmp(tid, owner->node) == 0) {
		om_make_error(&err, OM_EUSAGE, "miggroup %lu already runs on node %s", g, tid);
		goto fail;
	}
	/* refused before anything is frozen */
	if (om_cluster_check_target(&cl, target, &err) < 0) {
		om_error_wrap(&err, "cannot migrate miggroup %lu to node %s", g, tid);
		goto fail;
	}
	{
		const struct om_map_node *src = om_map_find(&cl.map, owner->node);
		cleanup_free char *kn = om_cluster_key(&cl, "nodes/%s", owner->node);
		struct om_etcd_range r = {0};
		if (src == NULL || kn == NULL || om_etcd_get(cl.etcd, kn, false, 1, &r, &err) < 0)
			goto fail;
		if (r.n == 0) {
			om_etcd_range_release(&r);
			om_make_error(&err, OM_ECLUSTER,
				      "node %s, where miggroup %lu runs, is dead: its omd holds no lease", owner->node,
				      g);
			om_error_set_exit(&err, OM_EXIT_CLUSTER);
			goto fail;
		}
		om_etcd_range_release(&r);
	}
	if (om_migrate_ask(&cl, owner->node, g, tid, timeout, tcp, id, &err) < 0)
		goto fail;
	rkey = om_cluster_key(&cl, "reply/%s", id);
	if (om_reply_wait(&cl, id, owner->node, timeout + 30, -1, &rep, &err) < 0)
		goto fail;
	if (rep == NULL) {
		om_make_error(&err, OM_ECLUSTER,
			      "no answer from node %s within %.0f s (see `showgroup %lu` for where the group runs)",
			      owner->node, timeout + 30, g);
		om_error_set_exit(&err, OM_EXIT_CLUSTER);
		goto fail;
	}
	if (strcmp(rep->state, "done") != 0) {
		om_make_error(&err, OM_ECLUSTER, "%s", rep->error ? rep->error : rep->state);
		om_error_set_exit(&err, rep->has_exit_code && rep->exit_code > 0 ? rep->exit_code : OM_EXIT_CLUSTER);
		om_error_wrap(&err, "migrate miggroup %lu to node %s (it runs on node %s)", g, tid, owner->node);
		goto fail;
	}
	if (json) {
		printf("{\"group\":%lu,\"from\":\"%s\",\"to\":\"%s\",\"downtime_s\":%.3f,\"total_s\":%.3f,"
		       "\"generation\":%llu,\"lines\":[",
		       g, owner->node, tid, rep->downtime_s, rep->total_s, (unsigned long long)rep->generation);
		for (size_t i = 0; i < rep->n_lines; i++) {
			if (i)
				putchar(',');
			om_json_string(stdout, rep->lines[i]);
		}
		printf("]}\n");
	} else if (!quiet) {
		for (size_t i = 0; i < rep->n_lines; i++)
			printf("%s\n", rep->lines[i]);
		printf("miggroup %lu: node %s -> node %s, downtime %.2f s, total %.2f s\n", g, owner->node, tid,
		       rep->downtime_s, rep->total_s);
	}
	rc = 0;
	goto out;
fail:
	rc = om_cli_fail(prog, &err);
out:
	if (rkey) {
		om_error_t derr = NULL;
		if (om_etcd_delete(cl.etcd, rkey, false, NULL, &derr) < 0)
			om_error_release(&derr);
	}
	if (rep)
		protobuf_c_message_free_unpacked(&rep->base, NULL);
	if (owner)
		protobuf_c_message_free_unpacked(&owner->base, NULL);
	om_cluster_close(&cl);
	om_config_release(&cfg);
	return rc;
}
