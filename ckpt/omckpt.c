/* omckpt — checkpoint a miggroup (or one process tree) into the store. */
#include "config.h"
#include "checkpoint.h"
#include "cli.h"
#include "group.h"
#include "om-criu.h"
#include "omckpt-policy.h"
#include "probe.h"
#include "workdir.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>

static const char *prog = "omckpt";

struct run_args {
	const struct om_ckpt_opts *o;
	struct om_ckpt_result *r;
};

static int run(void *arg, int cancel_fd, om_error_t *err)
{
	struct run_args *a = arg;
	struct om_ckpt_opts o = *a->o;

	o.cancel_fd = cancel_fd;
	return om_checkpoint(&o, a->r, err);
}

static const char *yesno(int v)
{
	return v > 0 ? "yes" : v == 0 ? "no" : "unknown";
}

struct check_args {
	const struct om_ckpt_opts *o;
	bool json;
};

/* omckpt --check: probe, at run time, what a checkpoint on this node needs:
 * a CRIU that really dumps and restores (the smoke test of lib/probe.h), a
 * cgroup freezer and a writable store */
static int check_node(void *arg, int cancel_fd, om_error_t *err)
{
	struct check_args *a = arg;
	struct om_probe_report rep;
	struct om_cg cg;
	struct om_store st = {.path = NULL, .fd = -1};
	cleanup_free char *path = NULL;
	int probe = om_probe_criu(om_workdir(a->o->workdir), cancel_fd, &rep, err);

	if (a->json) {
		printf("{\"criu\":{\"binary\":");
		om_json_string(stdout, rep.criu_binary);
		printf(",\"version\":");
		om_json_string(stdout, rep.criu_version);
		printf(",\"warnings\":");
		om_json_string(stdout, rep.check_warnings);
		printf(",\"breakpoints\":\"%s\",\"network_lock_nftables\":\"%s\",\"userns\":\"%s\","
		       "\"uffd\":\"%s\",\"timens\":\"%s\",\"smoke_ok\":%s,\"dump_seconds\":%.3f,"
		       "\"restore_seconds\":%.3f,\"smoke\":",
		       yesno(rep.breakpoints), yesno(rep.network_lock_nftables), yesno(rep.userns), yesno(rep.uffd),
		       yesno(rep.timens), rep.smoke_ok ? "true" : "false", rep.dump_seconds, rep.restore_seconds);
		om_json_string(stdout, probe < 0 && *err ? (*err)->msg : rep.smoke_detail);
		printf("}");
	} else if (rep.criu_version[0]) {
		printf("criu:   %s %s\n", rep.criu_binary, rep.criu_version);
		if (rep.check_warnings[0])
			printf("        criu check warns: %s\n", rep.check_warnings);
		printf("        hardware breakpoints: %s%s; nftables network lock: %s; user namespaces: %s;\n"
		       "        userfaultfd (lazy pages): %s; time namespaces: %s\n",
		       yesno(rep.breakpoints), rep.breakpoints == 0 ? " (CRIU falls back to single-stepping)" : "",
		       yesno(rep.network_lock_nftables), yesno(rep.userns), yesno(rep.uffd), yesno(rep.timens));
		if (rep.smoke_ok)
			printf("        smoke test: ok (dump %.2f s, restore %.2f s): %s\n", rep.dump_seconds,
			       rep.restore_seconds, rep.smoke_detail);
	}
	if (probe < 0) {
		if (a->json)
			printf("}\n");
		return -1;
	}
	if (om_cg_init(&cg, err) < 0)
		goto fail;
	if (om_store_resolve_path(a->o->store, &path, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		goto fail;
	}
	if (om_store_open(&st, path, true, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		goto fail;
	}
	if (a->json) {
		printf(",\"cgroup\":{\"backend\":\"%s\",\"base\":", om_cg_name(&cg));
		om_json_string(stdout, cg.base);
		printf("},\"store\":");
		om_json_string(stdout, st.path);
		printf(",\"node\":");
		om_json_string(stdout, om_node_name());
		printf(",\"ok\":true}\n");
	} else {
		printf("cgroup: %s freezer at %s\n", om_cg_name(&cg), cg.base);
		printf("store:  %s (writable)\n", st.path);
		printf("node:   %s\n", om_node_name());
	}
	om_store_close(&st);
	return 0;
fail:
	if (a->json)
		printf("}\n");
	return -1;
}

static void usage(void)
{
	printf("Usage: %s -g G [OPTION]...\n"
	       "       %s -p PID [OPTION]...\n"
	       "       %s -g G --every DURATION [--keep N] [-T]\n"
	       "       %s --policy [-g G] [--json]\n"
	       "Freeze every process of miggroup G at once, dump each of its process trees with CRIU\n"
	       "and write one new zstd-compressed, checksummed generation to the store.\n"
	       "By default the group is stopped after the generation is safely written (migration);\n"
	       "on any failure the group is thawed and keeps running, and no generation appears.\n\n"
	       "  -g, --group G          checkpoint miggroup G\n"
	       "  -p, --pid PID          checkpoint the process tree rooted at PID\n"
	       "  -R, --leave-running    keep the processes running (periodic checkpoint)\n"
	       "  -T, --tcp-established  carry established TCP connections (CRIU's TCP repair);\n"
	       "                         their packets are dropped (nftables table inet\n"
	       "                         omtools_gG) from the freeze until omrestore, which\n"
	       "                         uses the same options by itself\n"
	       "  -s, --store DIR        the store (default: $OM_STORE, `store =` in\n"
	       "                         /etc/omtools/omtools.conf, /var/lib/omtools/store)\n"
	       "  -w, --work-dir DIR     local scratch for CRIU's raw images ($OM_WORKDIR,\n"
	       "                         /var/lib/omtools/work)\n"
	       "  -l, --level N          zstd level (1-19, default 3)\n"
	       "  -j, --threads N        zstd worker threads (default: one per CPU)\n"
	       "  -t, --freeze-timeout S give up freezing after S seconds (default 10)\n"
	       "      --lock-wait S      wait up to S seconds while another command holds the group\n"
	       "      --criu-timeout S   give up on CRIU dumping a tree after S seconds (default:\n"
	       "                         20 s + 20 s per GiB of the tree's memory); CRIU is then\n"
	       "                         killed and the group thawed\n"
	       "  -C, --check            check what a checkpoint needs here and report: CRIU's\n"
	       "                         version and features, a smoke test (a process with a TCP\n"
	       "                         listener, a unix socket pair and a pipe is really dumped\n"
	       "                         and restored), the cgroup freezer, a writable store;\n"
	       "                         no group is touched\n"
	       "      --keep N           after the commit, keep the newest N generations (0: all)\n"
	       "      --every DURATION   store a periodic-checkpoint policy for G and exit (no\n"
	       "                         checkpoint now): omd checkpoints G with --leave-running\n"
	       "                         whenever its newest generation is older than DURATION\n"
	       "                         (30s, 10m, 2h, 1d; 10s to 7d), keeping --keep N; kept in\n"
	       "                         etcd with a cluster (it follows the group), else in\n"
	       "                         policy/G next to the settings file; 0 or off removes it\n"
	       "      --policy           list the policies (of G with -g) and exit\n"
	       "      --json             with --check or --policy: one JSON object\n"
	       "  -q, --quiet            print nothing on success\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n\n"
	       "Exit status: 0 ok, 1 failure, 2 usage, 3 unknown or empty group / no such PID,\n"
	       "4 store not writable, 5 CRIU failed or gave no answer in time, 6 another command\n"
	       "(omckpt, omrestore, joingroup, resetgroup, omrun) holds the group, 128+N stopped\n"
	       "by signal N (the group thawed, nothing written).\n",
	       prog, prog, prog, prog);
}

int main(int argc, char **argv)
{
	enum { OPT_LOCK_WAIT = 256, OPT_JSON, OPT_CRIU_TIMEOUT, OPT_EVERY, OPT_POLICY, OPT_KEEP };
	static const struct option opts[] = {{"group", required_argument, NULL, 'g'},
					     {"pid", required_argument, NULL, 'p'},
					     {"leave-running", no_argument, NULL, 'R'},
					     {"tcp-established", no_argument, NULL, 'T'},
					     {"store", required_argument, NULL, 's'},
					     {"work-dir", required_argument, NULL, 'w'},
					     {"level", required_argument, NULL, 'l'},
					     {"threads", required_argument, NULL, 'j'},
					     {"freeze-timeout", required_argument, NULL, 't'},
					     {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
					     {"criu-timeout", required_argument, NULL, OPT_CRIU_TIMEOUT},
					     {"check", no_argument, NULL, 'C'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"json", no_argument, NULL, OPT_JSON},
					     {"every", required_argument, NULL, OPT_EVERY},
					     {"policy", no_argument, NULL, OPT_POLICY},
					     {"keep", required_argument, NULL, OPT_KEEP},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_ckpt_opts o = {0};
	struct om_ckpt_result r;
	unsigned long v;
	bool quiet = false, check = false, json = false, policy = false;
	struct om_policy_args pa = {.keep = -1};
	int c;

	while ((c = getopt_long(argc, argv, "g:p:RTs:w:l:j:t:CqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (om_group_parse_id(optarg, false, &o.group, &err) < 0)
				return om_cli_fail(prog, &err);
			break;
		case 'p':
			if (om_parse_pid(optarg, &o.pid) < 0)
				return om_cli_usage_error(prog, "invalid PID");
			break;
		case 'R':
			o.leave_running = true;
			break;
		case 'T':
			o.tcp_established = true;
			break;
		case 's':
			o.store = optarg;
			break;
		case 'w':
			o.workdir = optarg;
			break;
		case 'l':
			if (om_parse_uint(optarg, 19, &v) < 0 || v == 0)
				return om_cli_usage_error(prog, "--level must be 1 to 19");
			o.zstd_level = (int)v;
			break;
		case 'j':
			if (om_parse_uint(optarg, 256, &v) < 0 || v == 0)
				return om_cli_usage_error(prog, "--threads must be 1 to 256");
			o.zstd_workers = (int)v;
			break;
		case 't':
			if (om_parse_uint(optarg, 3600, &v) < 0 || v == 0)
				return om_cli_usage_error(prog, "--freeze-timeout must be 1 to 3600 seconds");
			o.freeze_timeout = (double)v;
			break;
		case OPT_LOCK_WAIT:
			if (om_parse_uint(optarg, 86400, &v) < 0)
				return om_cli_usage_error(prog, "--lock-wait must be seconds");
			o.lock_wait = (double)v;
			break;
		case OPT_CRIU_TIMEOUT:
			if (om_parse_uint(optarg, 86400, &v) < 0 || v == 0)
				return om_cli_usage_error(prog, "--criu-timeout must be 1 to 86400 seconds");
			o.criu_timeout = (double)v;
			break;
		case 'C':
			check = true;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_EVERY:
			pa.every = optarg;
			break;
		case OPT_POLICY:
			policy = true;
			break;
		case OPT_KEEP:
			if (om_parse_uint(optarg, 100000, &v) < 0)
				return om_cli_usage_error(prog, "--keep must be a number of generations (0: all)");
			pa.keep = (long)v;
			o.keep = (unsigned)v;
			break;
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (optind != argc)
		return om_cli_usage_error(prog, "unexpected argument");
	if (pa.every || policy) { /* the policy of periodic checkpoints: stored or listed, nothing checkpointed */
		if ((pa.every && policy) || o.pid || check)
			return om_cli_usage_error(prog, "--every and --policy go with -g G only");
		pa.group = o.group;
		pa.tcp_established = o.tcp_established;
		pa.quiet = quiet;
		pa.json = json;
		return om_omckpt_policy(prog, &pa);
	}
	if (check) {
		struct check_args ca = {&o, json};
		return om_cli_run_held(prog, check_node, &ca);
	}
	if ((o.group == 0) == (o.pid == 0))
		return om_cli_usage_error(prog, "give exactly one of -g G or -p PID");
	/* fault injection for the tests (like CRIU's --fault); the library never reads the environment */
	o.fault = getenv("OM_FAULT");
	struct run_args a = {&o, &r};
	int rc = om_cli_run_held(prog, run, &a);
	if (rc != OM_EXIT_OK)
		return rc;
	if (!quiet) {
		if (o.group)
			printf("group %lu: ", o.group);
		else
			printf("process %d: ", (int)o.pid);
		printf("generation %llu written to %s (%zu tree%s, %zu process%s, raw %.1f MiB, stored %.1f MiB, "
		       "%.2f s%s)\n",
		       (unsigned long long)r.generation, r.path, r.n_trees, r.n_trees == 1 ? "" : "s", r.n_procs,
		       r.n_procs == 1 ? "" : "es", (double)r.raw_bytes / 1048576.0, (double)r.stored_bytes / 1048576.0,
		       r.total_seconds, o.leave_running ? ", left running" : ", stopped");
	}
	om_ckpt_result_release(&r);
	return 0;
}
