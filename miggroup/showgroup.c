/* showgroup G — list the members of miggroup G (the seed's format, or JSON). */
#include "config.h"
#include "cli.h"
#include "cluster.h"
#include "group.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>

static const char *prog = "showgroup";

static void usage(void)
{
	printf("Usage: %s [--json] G\n"
	       "       %s [--json] --all [--cluster]\n"
	       "       %s [--json] --nodes\n"
	       "Show the processes of miggroup G, one line each:\n"
	       "  PID with commandline CMD belongs to G\n"
	       "With a cluster (`etcd =` in omtools.conf), also the node G runs on and its home\n"
	       "(the node where it was created), also for a group running on another node.\n\n"
	       "  -j, --json     machine-readable output (trees, members, states)\n"
	       "  -a, --all      every group on this node\n"
	       "      --cluster  with --all: every group of the cluster, with its node and home\n"
	       "      --nodes    the nodes of the cluster (as omstat)\n"
	       "  -h, --help     show this help\n"
	       "  -V, --version  show the version\n\n"
	       "Exit status: 0 ok, 2 usage, 3 unknown or empty group, 7 the cluster is not\n"
	       "configured or unreachable, 1 other failure.\n",
	       prog, prog, prog);
}

static void print_json(const struct om_group *g, bool first, const Om__GroupOwner *o)
{
	if (!first)
		printf(",");
	printf("{\"group\":%lu,", g->id);
	if (o) {
		printf("\"node\":");
		om_json_string(stdout, o->node);
		printf(",\"home\":");
		om_json_string(stdout, o->home);
		printf(",");
	}
	printf("\"backend\":\"%s\",\"trees\":[", om_cg_name(&g->cg));
	for (size_t i = 0; i < g->n_trees; i++) {
		const struct om_tree *t = &g->trees[i];
		printf("%s{\"root\":%d,\"frozen\":%s,\"members\":[", i ? "," : "", (int)t->root,
		       t->frozen ? "true" : "false");
		for (size_t j = 0; j < t->n_members; j++) {
			const struct om_member *m = &t->members[j];
			printf("%s{\"pid\":%d,\"ppid\":%d,\"state\":\"%c\",\"cmdline\":", j ? "," : "", (int)m->pid,
			       (int)m->ppid, m->state ? m->state : '?');
			om_json_string(stdout, m->cmdline);
			printf("}");
		}
		printf("]}");
	}
	printf("]}");
}

static void print_text(const struct om_group *g)
{
	struct om_member **all = calloc(om_group_count(g) + 1, sizeof(*all));
	size_t n = 0;
	if (all == NULL)
		return;
	for (size_t i = 0; i < g->n_trees; i++)
		for (size_t j = 0; j < g->trees[i].n_members; j++)
			all[n++] = &g->trees[i].members[j];
	for (size_t i = 1; i < n; i++) /* sort by pid across trees */
		for (size_t k = i; k > 0 && all[k - 1]->pid > all[k]->pid; k--) {
			struct om_member *t = all[k];
			all[k] = all[k - 1];
			all[k - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		printf("%d with commandline %s belongs to %lu\n", (int)all[i]->pid, all[i]->cmdline, g->id);
	free(all);
}

/* The cluster's owner of id (NULL without a cluster or an owner). */
static int owner_of(unsigned long id, Om__GroupOwner **o, om_error_t *err)
{
	struct om_config cfg;
	struct om_cluster cl;
	int rc;

	*o = NULL;
	if (om_cli_config(NULL, NULL, NULL, &cfg, err) < 0)
		return -1;
	if (!om_cluster_configured(&cfg)) {
		om_config_release(&cfg);
		return 0;
	}
	rc = om_cluster_open(&cl, &cfg, false, err);
	if (rc == 0)
		rc = om_owner_get(&cl, id, o, NULL, err);
	om_cluster_close(&cl);
	om_config_release(&cfg);
	return rc;
}

/* showgroup --all --cluster: every owner key. */
static int all_cluster(bool json, om_error_t *err)
{
	struct om_config cfg;
	struct om_cluster cl;
	struct om_etcd_range r = {0};
	cleanup_free char *k = NULL;
	int rc = -1;

	if (om_cli_config(NULL, NULL, NULL, &cfg, err) < 0)
		return -1;
	if (om_cluster_open(&cl, &cfg, false, err) < 0)
		goto out_cfg;
	k = om_cluster_key(&cl, "groups/");
	if (k == NULL || om_etcd_get(cl.etcd, k, true, 0, &r, err) < 0)
		goto out;
	if (json)
		printf("[");
	for (size_t i = 0; i < r.n; i++) {
		ProtobufCMessage *m = NULL;
		Om__GroupOwner *o;
		if (om_sandbox_parse(cl.sb, &om__group_owner__descriptor, r.kvs[i].value, r.kvs[i].value_len, &m, err) <
		    0) {
			om_error_wrap(err, "etcd key %s", r.kvs[i].key);
			goto out;
		}
		o = (Om__GroupOwner *)m;
		if (json) {
			printf("%s{\"group\":%llu,\"node\":", i ? "," : "", (unsigned long long)o->group);
			om_json_string(stdout, o->node);
			printf(",\"home\":");
			om_json_string(stdout, o->home);
			printf(",\"since_ms\":%lld", (long long)o->since_ms);
			if (o->restoring_from) {
				printf(",\"restoring_from\":");
				om_json_string(stdout, o->restoring_from);
			}
			if (o->has_ended_ms)
				printf(",\"ended_ms\":%lld", (long long)o->ended_ms);
			printf("}");
		} else
			printf("miggroup %llu: node %s, home %s%s%s%s%s\n", (unsigned long long)o->group, o->node,
			       o->home, o->has_ended_ms ? " (ended: no process)" : "",
			       o->restoring_from ? " (failing over from node " : "",
			       o->restoring_from ? o->restoring_from : "", o->restoring_from ? ")" : "");
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (json)
		printf("]\n");
	rc = 0;
out:
	om_etcd_range_release(&r);
	om_cluster_close(&cl);
out_cfg:
	om_config_release(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	enum { OPT_CLUSTER = 256, OPT_NODES };
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"all", no_argument, NULL, 'a'},
					     {"cluster", no_argument, NULL, OPT_CLUSTER},
					     {"nodes", no_argument, NULL, OPT_NODES},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_cg cg;
	bool json = false, every = false, cluster = false, nodes = false;
	Om__GroupOwner *owner = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "jahV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'a':
			every = true;
			break;
		case OPT_CLUSTER:
			cluster = true;
			break;
		case OPT_NODES:
			nodes = true;
			break;
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (nodes) { /* the same as omstat */
		if (optind != argc || every || cluster)
			return om_cli_usage_error(prog, "--nodes takes nothing else");
		execlp("omstat", "omstat", json ? "--json" : NULL, (char *)NULL);
		om_make_error(&err, errno, "run omstat");
		return om_cli_fail(prog, &err);
	}
	if (cluster && !every)
		return om_cli_usage_error(prog, "--cluster goes with --all");
	if (every ? optind != argc : optind != argc - 1)
		return om_cli_usage_error(prog, every ? "--all takes no group" : "expected one miggroup G");
	if (cluster)
		return all_cluster(json, &err) < 0 ? om_cli_fail(prog, &err) : 0;
	if (om_cg_init(&cg, &err) < 0)
		return om_cli_fail(prog, &err);

	if (every) {
		DIR *d = opendir(cg.base);
		struct dirent *de;
		bool first = true;
		if (json)
			printf("[");
		while (d && (de = readdir(d)) != NULL) {
			unsigned long id;
			struct om_group g;
			if (de->d_name[0] != 'g' || om_parse_uint(de->d_name + 1, OM_GROUP_MAX, &id) < 0 || id == 0)
				continue;
			if (om_group_load(&cg, id, &g, &err) < 0) {
				om_error_release(&err);
				continue;
			}
			if (json)
				print_json(&g, first, NULL);
			else
				print_text(&g);
			first = false;
			om_group_release(&g);
		}
		if (d)
			closedir(d);
		if (json)
			printf("]\n");
		return 0;
	}

	unsigned long id;
	struct om_group g;
	if (om_group_parse_id(argv[optind], false, &id, &err) < 0)
		return om_cli_fail(prog, &err);
	if (owner_of(id, &owner, &err) < 0)
		return om_cli_fail(prog, &err);
	bool here = om_group_exists(&cg, id);
	if (here && om_group_load(&cg, id, &g, &err) < 0) {
		if (owner == NULL)
			return om_cli_fail(prog, &err);
		om_error_release(&err);
		here = false;
	}
	if (here && g.n_trees == 0 && owner) {
		om_group_release(&g);
		here = false;
	}
	if (!here && owner) {
		/* not here: the cluster knows where */
		if (json) {
			printf("{\"group\":%lu,\"node\":", id);
			om_json_string(stdout, owner->node);
			printf(",\"home\":");
			om_json_string(stdout, owner->home);
			printf(",\"trees\":[]}\n");
		} else
			printf("miggroup %lu runs on node %s (home %s)%s%s\n", id, owner->node, owner->home,
			       owner->restoring_from ? ", failing over from node " : "",
			       owner->restoring_from ? owner->restoring_from : "");
		protobuf_c_message_free_unpacked(&owner->base, NULL);
		return 0;
	}
	if (!here) { /* as without a cluster: the error names the group */
		if (om_group_load(&cg, id, &g, &err) < 0)
			return om_cli_fail(prog, &err);
	}
	if (g.n_trees == 0) {
		om_group_release(&g);
		om_make_error(&err, OM_ENOTFOUND, "miggroup %lu has no members", id);
		return om_cli_fail(prog, &err);
	}
	if (json) {
		print_json(&g, true, owner);
		printf("\n");
	} else {
		print_text(&g);
		if (owner)
			printf("miggroup %lu: node %s, home %s\n", id, owner->node, owner->home);
	}
	if (owner)
		protobuf_c_message_free_unpacked(&owner->base, NULL);
	om_group_release(&g);
	return 0;
}
