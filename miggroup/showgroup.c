/* showgroup G — list the members of miggroup G (the seed's format, or JSON). */
#include "config.h"
#include "cli.h"
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
	       "       %s [--json] --all\n"
	       "Show the processes of miggroup G, one line each:\n"
	       "  PID with commandline CMD belongs to G\n\n"
	       "  -j, --json     machine-readable output (trees, members, states)\n"
	       "  -a, --all      every group on this node\n"
	       "  -h, --help     show this help\n"
	       "  -V, --version  show the version\n\n"
	       "Exit status: 0 ok, 2 usage, 3 unknown or empty group, 1 other failure.\n",
	       prog, prog);
}

static void print_json(const struct om_group *g, bool first)
{
	if (!first)
		printf(",");
	printf("{\"group\":%lu,\"backend\":\"%s\",\"trees\":[", g->id, om_cg_name(&g->cg));
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"all", no_argument, NULL, 'a'},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_cg cg;
	bool json = false, every = false;
	int c;

	while ((c = getopt_long(argc, argv, "jahV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'a':
			every = true;
			break;
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (every ? optind != argc : optind != argc - 1)
		return om_cli_usage_error(prog, every ? "--all takes no group" : "expected one miggroup G");
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
				print_json(&g, first);
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
	if (om_group_load(&cg, id, &g, &err) < 0)
		return om_cli_fail(prog, &err);
	if (g.n_trees == 0) {
		om_group_release(&g);
		om_make_error(&err, OM_ENOTFOUND, "miggroup %lu has no members", id);
		return om_cli_fail(prog, &err);
	}
	if (json) {
		print_json(&g, true);
		printf("\n");
	} else
		print_text(&g);
	om_group_release(&g);
	return 0;
}
