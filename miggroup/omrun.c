/* omrun -g G [--isolate] -- CMD... — start a command as a new process tree of miggroup G. */
#include "config.h"
#include "cli.h"
#include "group.h"
#include "cluster.h"
#include "keeper.h"
#include "lock.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>

static const char *prog = "omrun";

static void usage(void)
{
	printf("Usage: %s -g G [-o LOGFILE] [--isolate] -- CMD [ARG]...\n"
	       "Start CMD detached (own session, stdin /dev/null) as a new process tree of miggroup G,\n"
	       "under a keeper process that reaps it. Prints the PID of CMD.\n\n"
	       "  -g, --group G       the miggroup (a positive integer)\n"
	       "  -o, --output FILE   append stdout and stderr of CMD to FILE (default /dev/null)\n"
	       "      --isolate       start the tree in new PID and IPC namespaces: its root is their\n"
	       "                      init (om-init, PID 1 inside), which runs CMD as PID 2, reaps,\n"
	       "                      forwards signals and exits when no process is left; prints the\n"
	       "                      PID of om-init on this node; a restore gets new PIDs here\n"
	       "      --lock-wait S   wait up to S seconds while another command holds the group\n"
	       "  -h, --help          show this help\n"
	       "  -V, --version       show the version\n\n"
	       "Exit status: 0 started, 2 usage, 3 command not found, 6 the group is busy,\n"
	       "1 other failure.\n",
	       prog);
}

int main(int argc, char **argv)
{
	enum { OPT_LOCK_WAIT = 256, OPT_ISOLATE };
	static const struct option opts[] = {{"group", required_argument, NULL, 'g'},
					     {"output", required_argument, NULL, 'o'},
					     {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
					     {"isolate", no_argument, NULL, OPT_ISOLATE},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	cleanup_free char *logabs = NULL;
	const char *log = NULL;
	unsigned long id = 0, v;
	double lock_wait = 0;
	bool isolate = false;
	cleanup_close int lock_fd = -1;
	struct om_cg cg;
	pid_t pid;
	int c;

	while ((c = getopt_long(argc, argv, "+g:o:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (om_group_parse_id(optarg, false, &id, &err) < 0)
				return om_cli_fail(prog, &err);
			break;
		case 'o':
			log = optarg;
			break;
		case OPT_LOCK_WAIT:
			if (om_parse_uint(optarg, 86400, &v) < 0)
				return om_cli_usage_error(prog, "--lock-wait must be seconds");
			lock_wait = (double)v;
			break;
		case OPT_ISOLATE:
			isolate = true;
			break;
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (id == 0)
		return om_cli_usage_error(prog, isolate ? "--isolate needs -g G" : "missing -g G");
	if (optind >= argc)
		return om_cli_usage_error(prog, "missing command");
	if (log && log[0] != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return 1;
		logabs = om_strdup_printf("%s/%s", cwd, log);
		log = logabs;
	}
	if (om_cg_init(&cg, &err) < 0 ||
	    om_group_lock(&cg, id, &(struct om_bound){.timeout_s = lock_wait, .cancel_fd = 0}, &lock_fd, &err) < 0)
		return om_cli_fail(prog, &err);
	{ /* a cluster-wide id: claimed for this node, refused if another owns it */
		struct om_config cfg;
		int crc = om_cli_config(NULL, NULL, NULL, &cfg, &err);
		if (crc == 0) {
			crc = om_cluster_claim_group(&cfg, id, &err);
			om_config_release(&cfg);
		}
		if (crc < 0)
			return om_cli_fail(prog, &err);
	}
	if (om_keeper_run(&cg, id, argv + optind, log, isolate, &pid, &err) < 0) {
		if (err->status == ENOENT) /* the command (or the log's directory) */
			om_error_set_exit(&err, OM_EXIT_NOTFOUND);
		return om_cli_fail(prog, &err);
	}
	printf("%d\n", (int)pid);
	return 0;
}
