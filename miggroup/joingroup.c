/* joingroup PID... G — processes (and their descendants) join miggroup G. */
#include "config.h"
#include "cli.h"
#include "cluster.h"
#include "group.h"
#include "lock.h"
#include "util.h"

#include <getopt.h>

static const char *prog = "joingroup";

static void usage(void)
{
	printf("Usage: %s [OPTION]... PID... G\n"
	       "Make the processes PID... (with their descendants) members of miggroup G.\n"
	       "Children they fork later are members too. G = 0 removes them from their group.\n\n"
	       "  -q, --quiet        print nothing on success\n"
	       "      --lock-wait S  wait up to S seconds while another command holds G (or the\n"
	       "                     group a process leaves)\n"
	       "  -h, --help         show this help\n"
	       "  -V, --version      show the version\n\n"
	       "Exit status: 0 ok, 2 usage, 3 no such process, 6 a group is busy (an omckpt,\n"
	       "omrestore, resetgroup or omrun holds it), 1 other failure.\n",
	       prog);
}

int main(int argc, char **argv)
{
	enum { OPT_LOCK_WAIT = 256 };
	static const struct option opts[] = {{"quiet", no_argument, NULL, 'q'},
					     {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_cg cg;
	unsigned long g, v;
	double lock_wait = 0;
	cleanup_close int lock_fd = -1;
	struct om_locks held = {NULL, NULL, 0};
	bool quiet = false;
	int c, npids;

	while ((c = getopt_long(argc, argv, "qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case OPT_LOCK_WAIT:
			if (om_parse_uint(optarg, 86400, &v) < 0)
				return om_cli_usage_error(prog, "--lock-wait must be seconds");
			lock_wait = (double)v;
			break;
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	npids = argc - optind - 1;
	if (npids < 1)
		return om_cli_usage_error(prog, "expected PID... G");
	if (om_group_parse_id(argv[argc - 1], true, &g, &err) < 0)
		return om_cli_fail(prog, &err);
	pid_t *pids = calloc((size_t)npids, sizeof(pid_t));
	if (pids == NULL)
		return 1;
	for (int i = 0; i < npids; i++)
		if (om_parse_pid(argv[optind + i], &pids[i]) < 0) {
			free(pids);
			fprintf(stderr, "%s: invalid PID `%s`\n", prog, argv[optind + i]);
			return OM_EXIT_USAGE;
		}
	if (om_cg_init(&cg, &err) < 0 ||
	    (g &&
	     om_group_lock(&cg, g, &(struct om_bound){.timeout_s = lock_wait, .cancel_fd = 0}, &lock_fd, &err) < 0)) {
		free(pids);
		return om_cli_fail(prog, &err);
	}
	if (g) { /* a cluster-wide id: claimed for this node, refused if another owns it */
		struct om_config cfg;
		int crc = om_cli_config(NULL, NULL, NULL, &cfg, &err);
		if (crc == 0) {
			crc = om_cluster_claim_group(&cfg, g, &err);
			om_config_release(&cfg);
		}
		if (crc < 0) {
			free(pids);
			return om_cli_fail(prog, &err);
		}
	}
	if (!quiet) {
		printf("miggroup = %lu\nprocesses =", g);
		for (int i = 0; i < npids; i++)
			printf(" %d", (int)pids[i]);
		printf("\n");
	}
	int rc = 0;
	for (int i = 0; i < npids; i++) {
		/* refused before any lock: the descendants of init are everybody */
		if (om_group_check_joinable(pids[i], &err) < 0 ||
		    om_locks_take_sources(&cg, pids[i], g, &(struct om_bound){.timeout_s = lock_wait, .cancel_fd = 0},
					  &held, &err) < 0 ||
		    om_group_join(&cg, g, pids[i], NULL, &err) < 0) {
			rc = om_cli_fail(prog, &err);
			continue;
		}
		if (!quiet) {
			if (g)
				printf("process %d joins the miggroup %lu now\n", (int)pids[i], g);
			else
				printf("process %d leaves its miggroup now\n", (int)pids[i]);
		}
	}
	free(pids);
	om_locks_release(&held);
	return rc;
}
