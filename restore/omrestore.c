/* omrestore — bring a checkpointed miggroup (or process tree) back. */
#include "config.h"
#include "cli.h"
#include "cluster.h"
#include "group.h"
#include "proc.h"
#include "restore.h"
#include "util.h"

#include <getopt.h>
#include <stdint.h>

static const char *prog = "omrestore";

static void print_restored(pid_t pid, unsigned group)
{
	struct om_proc p;
	om_error_t tmp = NULL;

	if (om_proc_read(pid, &p, false, &tmp) < 0) {
		om_error_release(&tmp);
		printf("%d restored, but gone already\n", (int)pid);
		return;
	}
	printf("%d with commandline %s restored", (int)pid, p.cmdline);
	if (group)
		printf(" in group %u", group);
	printf(" (state %c)\n", p.state);
	om_proc_release(&p);
}

struct run_args {
	const struct om_restore_opts *o;
	struct om_restore_result *r;
};

static int run(void *arg, int cancel_fd, om_error_t *err)
{
	struct run_args *a = arg;
	struct om_restore_opts o = *a->o;

	o.cancel_fd = cancel_fd;
	return om_restore(&o, a->r, err);
}

static void usage(void)
{
	printf("Usage: %s -g G [OPTION]...\n"
	       "       %s -p PID [OPTION]...\n"
	       "Verify the checksums of the newest complete generation of miggroup G (or of the\n"
	       "tree checkpointed with omckpt -p PID), restore every process tree with CRIU with\n"
	       "the same PIDs, and rejoin them to G. If a tree fails, the trees already restored\n"
	       "are killed: a group is never half restored. A generation of omckpt --tcp-established\n"
	       "brings its TCP connections back, under the same network lock (nftables).\n\n"
	       "  -g, --group G         restore miggroup G\n"
	       "  -p, --pid PID         restore the tree checkpointed with omckpt -p PID\n"
	       "  -G, --generation N    restore generation N instead of the newest\n"
	       "  -s, --store DIR       the store (default: $OM_STORE, `store =` in\n"
	       "                        /etc/omtools/omtools.conf, /var/lib/omtools/store)\n"
	       "  -w, --work-dir DIR    local scratch for decompressed images\n"
	       "  -W, --pid-wait S      wait up to S seconds for taken PIDs to be freed (default 3)\n"
	       "      --criu-timeout S  give up on CRIU restoring a tree after S seconds (default:\n"
	       "                        20 s + 20 s per GiB of the tree's images)\n"
	       "      --lock-wait S     wait up to S seconds while another command holds the group\n"
	       "      --takeover        restore a generation taken with the group left running on\n"
	       "                        another node (manual failover without etcd); refused while\n"
	       "                        the group still runs here when the generation is this\n"
	       "                        node's; for another node's generation needs --force.\n"
	       "                        Without etcd it raises the store's fence of the group to\n"
	       "                        this node: the old node's checkpoints then exit 7\n"
	       "      --force           with --takeover: do not ask that the generation's node is\n"
	       "                        down (if it still runs the group, the group runs twice)\n"
	       "  -q, --quiet           print nothing on success\n"
	       "  -h, --help            show this help\n"
	       "  -V, --version         show the version\n\n"
	       "Exit status: 0 ok, 1 failure, 2 usage, 3 no such generation, 4 corrupt or\n"
	       "unreadable store, 5 CRIU failed or gave no answer in time, 6 a PID is taken or another\n"
	       "command holds the group (omckpt, omrestore, joingroup, resetgroup, omrun) or, with\n"
	       "--takeover, the group still runs here, 7 fenced (another node took the group over),\n"
	       "128+N stopped by signal N (nothing restored). A generation taken with the group left\n"
	       "running on another node needs --takeover (exit 2 without).\n",
	       prog, prog);
}

int main(int argc, char **argv)
{
	enum { OPT_LOCK_WAIT = 256, OPT_CRIU_TIMEOUT, OPT_TAKEOVER, OPT_FORCE };
	static const struct option opts[] = {{"group", required_argument, NULL, 'g'},
					     {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
					     {"pid", required_argument, NULL, 'p'},
					     {"generation", required_argument, NULL, 'G'},
					     {"store", required_argument, NULL, 's'},
					     {"work-dir", required_argument, NULL, 'w'},
					     {"pid-wait", required_argument, NULL, 'W'},
					     {"criu-timeout", required_argument, NULL, OPT_CRIU_TIMEOUT},
					     {"quiet", no_argument, NULL, 'q'},
					     {"takeover", no_argument, NULL, OPT_TAKEOVER},
					     {"force", no_argument, NULL, OPT_FORCE},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_restore_opts o = {.pid_wait = 3};
	struct om_restore_result r;
	unsigned long v;
	bool quiet = false;
	int c;

	while ((c = getopt_long(argc, argv, "g:p:G:s:w:W:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (om_group_parse_id(optarg, false, &o.group, &err) < 0)
				return om_cli_fail(prog, &err);
			break;
		case 'p':
			if (om_parse_pid(optarg, &o.pid) < 0)
				return om_cli_usage_error(prog, "invalid PID");
			break;
		case 'G':
			if (om_parse_uint(optarg, UINT32_MAX, &v) < 0 || v == 0)
				return om_cli_usage_error(prog, "--generation must be a positive integer");
			o.generation = v;
			break;
		case 's':
			o.store = optarg;
			break;
		case 'w':
			o.workdir = optarg;
			break;
		case 'W':
			if (om_parse_uint(optarg, 3600, &v) < 0)
				return om_cli_usage_error(prog, "--pid-wait must be seconds");
			o.pid_wait = (double)v;
			break;
		case OPT_CRIU_TIMEOUT:
			if (om_parse_uint(optarg, 86400, &v) < 0 || v == 0)
				return om_cli_usage_error(prog, "--criu-timeout must be 1 to 86400 seconds");
			o.criu_timeout = (double)v;
			break;
		case OPT_LOCK_WAIT:
			if (om_parse_uint(optarg, 86400, &v) < 0)
				return om_cli_usage_error(prog, "--lock-wait must be seconds");
			o.lock_wait = (double)v;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_TAKEOVER:
			o.takeover = true;
			break;
		case OPT_FORCE:
			o.force = true;
			break;
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (optind != argc)
		return om_cli_usage_error(prog, "unexpected argument");
	if ((o.group == 0) == (o.pid == 0))
		return om_cli_usage_error(prog, "give exactly one of -g G or -p PID");
	if (o.force && !o.takeover)
		return om_cli_usage_error(prog, "--force goes with --takeover");
	if (o.group) { /* without a cluster the store's .fence is the group's fencing token */
		struct om_config cfg;
		if (om_cli_config(NULL, NULL, NULL, &cfg, &err) < 0)
			return om_cli_fail(prog, &err);
		o.fence_local = !om_cluster_configured(&cfg);
		om_config_release(&cfg);
	}
	o.fault = getenv("OM_FAULT"); /* tests; the library never reads the environment */
	struct run_args a = {&o, &r};
	int rc = om_cli_run_held(prog, run, &a);
	if (rc != OM_EXIT_OK)
		return rc;
	if (!quiet) {
		for (size_t i = 0; i < r.m->n_trees; i++) {
			const Om__TreeEntry *t = r.m->trees[i];
			cleanup_free pid_t *now = NULL;
			size_t n = 0;
			om_error_t tmp = NULL;

			/* a tree in its own PID namespace has new PIDs here: walk it from its root */
			if (t->has_own_pidns && t->own_pidns) {
				if (om_proc_descendants(r.roots[i], &now, &n, &tmp) < 0)
					om_error_release(&tmp);
			} else if ((now = calloc(t->n_procs ? t->n_procs : 1, sizeof(pid_t))) != NULL) {
				for (n = 0; n < t->n_procs; n++)
					now[n] = t->procs[n]->pid;
			}
			for (size_t j = 0; j < n; j++)
				print_restored(now[j], r.m->group ? r.m->group : r.m->from_group);
		}
		fprintf(stderr, "%s: generation %llu of %s %lu restored from node %s (%zu tree%s, %.2f s)\n", prog,
			(unsigned long long)r.generation, o.group ? "miggroup" : "PID",
			o.group ? o.group : (unsigned long)o.pid, r.m->node, r.m->n_trees, r.m->n_trees == 1 ? "" : "s",
			r.seconds);
	}
	om_restore_result_release(&r);
	return 0;
}
