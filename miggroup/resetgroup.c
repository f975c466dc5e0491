/* resetgroup G — every member of miggroup G leaves it (group 0). */
#include "config.h"
#include "cli.h"
#include "cluster.h"
#include "group.h"
#include "lock.h"
#include "util.h"

#include <getopt.h>

static const char *prog = "resetgroup";

static void usage(void)
{
	printf("Usage: %s [OPTION]... G\n"
	       "Move every process of miggroup G out of it (to group 0) and remove the group.\n\n"
	       "  -q, --quiet        print nothing on success\n"
	       "      --lock-wait S  wait up to S seconds while another command holds the group\n"
	       "  -h, --help         show this help\n"
	       "  -V, --version      show the version\n\n"
	       "Exit status: 0 ok, 2 usage, 3 unknown group, 6 the group is busy (an omckpt,\n"
	       "omrestore, joingroup or omrun holds it), 1 other failure.\n",
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
	cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	struct om_cg cg;
	unsigned long id, v;
	double lock_wait = 0;
	int lock_fd = -1;
	bool quiet = false;
	int c;

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
	if (optind != argc - 1)
		return om_cli_usage_error(prog, "expected one miggroup G");
	if (om_group_parse_id(argv[optind], false, &id, &err) < 0 || om_cg_init(&cg, &err) < 0 ||
	    om_group_lock(&cg, id, &(struct om_bound){.timeout_s = lock_wait, .cancel_fd = 0}, &lock_fd, &err) < 0 ||
	    om_group_reset(&cg, id, &pids, &n, &err) < 0)
		return om_cli_fail(prog, &err);
	close(lock_fd);
	{ /* the id is free again in the cluster (if this node had it) */
		struct om_config cfg;
		int crc = om_cli_config(NULL, NULL, NULL, &cfg, &err);
		if (crc == 0) {
			crc = om_cluster_release_group(&cfg, id, &err);
			om_config_release(&cfg);
		}
		if (crc < 0)
			return om_cli_fail(prog, &err);
	}
	for (size_t i = 0; i < n && !quiet; i++)
		printf("reset %d\n", (int)pids[i]);
	return 0;
}
