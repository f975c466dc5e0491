/* omckpt — checkpoint a miggroup (or one process tree) into the store. */
#include "config.h"
#include "checkpoint.h"
#include "cli.h"
#include "cluster.h"
#include "settings.h"
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
	const struct om_config *cfg;
	bool all, json, quiet;
	unsigned long only; /* -g G (0: --all or -p) */
	int n_ok, n_failed;
};

static void print_result(const struct run_args *a, unsigned long group, pid_t pid, const struct om_ckpt_result *r,
			 om_error_t e)
{
	if (a->json) {
		printf("{\"group\":%lu,", group);
		if (pid)
			printf("\"pid\":%d,", (int)pid);
		if (e) {
			printf("\"ok\":false,\"exit\":%d,\"error\":", om_error_exit_code(e));
			om_json_string(stdout, e->msg);
			printf("}\n");
			return;
		}
		printf("\"ok\":true,\"generation\":%llu,\"path\":", (unsigned long long)r->generation);
		om_json_string(stdout, r->path);
		printf(",\"trees\":%zu,\"processes\":%zu,\"raw_bytes\":%llu,\"stored_bytes\":%llu,"
		       "\"frozen_seconds\":%.6f,\"dump_seconds\":%.6f,\"total_seconds\":%.6f,\"left_running\":%s,"
		       "\"pruned\":[",
		       r->n_trees, r->n_procs, (unsigned long long)r->raw_bytes, (unsigned long long)r->stored_bytes,
		       r->freeze_seconds, r->dump_seconds, r->total_seconds, a->o->leave_running ? "true" : "false");
		for (size_t i = 0; i < r->prune.n_removed; i++)
			printf("%s%llu", i ? "," : "", (unsigned long long)r->prune.removed[i]);
		printf("],\"kept_pinned\":[");
		for (size_t i = 0; i < r->prune.n_pinned; i++)
			printf("%s%llu", i ? "," : "", (unsigned long long)r->prune.pinned[i]);
		printf("],\"prune_error\":");
		om_json_string(stdout, r->prune_error);
		printf("}\n");
		return;
	}
	if (e) {
		om_error_print(stderr, prog, e);
		return;
	}
	if (a->quiet)
		return;
	if (group)
		printf("group %lu: ", group);
	else
		printf("process %d: ", (int)pid);
	printf("generation %llu written to %s (%zu tree%s, %zu process%s, raw %.1f MiB, stored %.1f MiB, "
	       "%.2f s, frozen %.2f s%s)",
	       (unsigned long long)r->generation, r->path, r->n_trees, r->n_trees == 1 ? "" : "s", r->n_procs,
	       r->n_procs == 1 ? "" : "es", (double)r->raw_bytes / 1048576.0, (double)r->stored_bytes / 1048576.0,
	       r->total_seconds, r->freeze_seconds, a->o->leave_running ? ", left running" : ", stopped");
	if (r->prune.n_removed) {
		printf("; pruned");
		for (size_t i = 0; i < r->prune.n_removed; i++)
			printf(" %llu", (unsigned long long)r->prune.removed[i]);
	}
	if (r->prune.n_pinned) {
		printf("; kept (being restored)");
		for (size_t i = 0; i < r->prune.n_pinned; i++)
			printf(" %llu", (unsigned long long)r->prune.pinned[i]);
	}
	printf("\n");
	if (r->prune_error)
		fprintf(stderr, "%s: warning: group %lu: generation %llu is written, but pruning failed: %s\n", prog,
			group, (unsigned long long)r->generation, r->prune_error);
}

/* One group (or -p tree): its fencing token from the cluster (without one, the
 * library reads the store's, o.fence_local), then the checkpoint. */
static int one(struct run_args *a, unsigned long group, int cancel_fd, om_error_t *err)
{
	struct om_ckpt_opts o = *a->o;
	struct om_ckpt_result r;

	o.cancel_fd = cancel_fd;
	o.group = group;
	if (group && om_cluster_group_fence(a->cfg, group, &o.fence, err) < 0)
		return om_error_wrap(err, "checkpoint miggroup %lu", group);
	if (om_checkpoint(&o, &r, err) < 0)
		return -1;
	if (group && !o.leave_running) { /* stopped: no failover may restore it elsewhere */
		om_error_t e = NULL;
		if (om_cluster_group_ended(a->cfg, group, &e) < 0) {
			fprintf(stderr,
				"%s: warning: miggroup %lu is checkpointed and stopped, but etcd was not told: %s\n",
				prog, group, e && e->msg ? e->msg : "?");
			om_error_release(&e);
		}
	}
	print_result(a, group, o.pid, &r, NULL);
	om_ckpt_result_release(&r);
	return 0;
}

static int run(void *arg, int cancel_fd, om_error_t *err)
{
	struct run_args *a = arg;
	cleanup_free unsigned long *ids = NULL;
	size_t n = 0;
	struct om_cg cg;
	om_error_t first = NULL;

	if (!a->all) {
		int rc = one(a, a->only, cancel_fd, err);
		if (rc < 0 && a->json) {
			print_result(a, a->only, a->o->pid, NULL, *err);
			om_error_set_exit(err, om_error_exit_code(*err));
		}
		return rc;
	}
	/* --all: every group hosted here, one consistent cut each; a group that
	 * fails does not stop the others */
	if (om_cg_init(&cg, err) < 0 || om_group_list(&cg, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		om_error_t e = NULL;
		struct om_group g = {0};
		size_t members = 0;
		/* a group without members (all exited, or reset) has nothing to keep */
		if (om_group_load(&cg, ids[i], &g, &e) == 0)
			members = om_group_count(&g);
		om_group_release(&g);
		om_error_release(&e);
		if (members == 0) {
			if (a->json)
				printf("{\"group\":%lu,\"ok\":true,\"skipped\":\"no members\"}\n", ids[i]);
			continue;
		}
		if (one(a, ids[i], cancel_fd, &e) == 0) {
			a->n_ok++;
			continue;
		}
		a->n_failed++;
		print_result(a, ids[i], 0, NULL, e);
		if (e->status == ECANCELED) { /* a signal: stop here */
			om_error_release(&first);
			*err = e;
			return -1;
		}
		if (first == NULL)
			first = e;
		else
			om_error_release(&e);
	}
	if (a->n_failed) {
		int code = om_error_exit_code(first);
		om_error_release(&first);
		om_make_error(err, OM_EUSAGE, "%d of %d group%s failed (each is named above)", a->n_failed,
			      a->n_failed + a->n_ok, a->n_failed + a->n_ok == 1 ? "" : "s");
		return om_error_set_exit(err, code);
	}
	return 0;
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
	       "       %s --all [OPTION]...\n"
	       "       %s -g G --every DURATION [--keep N] [-T]\n"
	       "       %s --policy [-g G] [--json]\n"
	       "Freeze every process of miggroup G at once, dump each of its process trees with CRIU\n"
	       "and write one new zstd-compressed, checksummed generation to the store.\n"
	       "By default the group is stopped after the generation is safely written (migration);\n"
	       "on any failure the group is thawed and keeps running, and no generation appears.\n\n"
	       "  -g, --group G          checkpoint miggroup G\n"
	       "  -p, --pid PID          checkpoint the process tree rooted at PID\n"
	       "  -a, --all              checkpoint every miggroup of this node, one consistent cut\n"
	       "                         per group (a group that fails does not stop the others)\n"
	       "  -k, --keep N           then keep the newest N generations of each group (0: all;\n"
	       "                         default: `keep =` in omtools.conf); older ones are removed\n"
	       "                         only after the new one is durable, never while a restore\n"
	       "                         (on any node) reads them\n"
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
	       "      --every DURATION   store a periodic-checkpoint policy for G and exit (no\n"
	       "                         checkpoint now): omd checkpoints G with --leave-running\n"
	       "                         whenever its newest generation is older than DURATION\n"
	       "                         (30s, 10m, 2h, 1d; 10s to 7d), keeping --keep N; kept in\n"
	       "                         etcd with a cluster (it follows the group), else in\n"
	       "                         policy/G next to the settings file; 0 or off removes it\n"
	       "      --policy           list the policies (of G with -g) and exit\n"
	       "      --json             one JSON object per group (with --check, --policy: one object)\n"
	       "  -q, --quiet            print nothing on success\n"
	       "  -h, --help             show this help\n"
	       "  -V, --version          show the version\n\n"
	       "Exit status: 0 ok, 1 failure, 2 usage, 3 unknown or empty group / no such PID,\n"
	       "4 store not writable, 5 CRIU failed or gave no answer in time, 6 another command\n"
	       "(omckpt, omrestore, joingroup, resetgroup, omrun) holds the group, 7 fenced: another\n"
	       "node owns the group or took it over (with or without etcd), or etcd does not answer,\n"
	       "128+N stopped by signal N (the group thawed, nothing written). With --all: the\n"
	       "status of the first group that failed.\n",
	       prog, prog, prog, prog, prog);
}

int main(int argc, char **argv)
{
	enum { OPT_LOCK_WAIT = 256, OPT_JSON, OPT_CRIU_TIMEOUT, OPT_EVERY, OPT_POLICY };
	static const struct option opts[] = {{"group", required_argument, NULL, 'g'},
					     {"pid", required_argument, NULL, 'p'},
					     {"all", no_argument, NULL, 'a'},
					     {"keep", required_argument, NULL, 'k'},
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
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct om_ckpt_opts o = {0};
	struct om_config cfg;
	unsigned long v;
	bool quiet = false, check = false, json = false, all = false, keep_set = false, policy = false;
	struct om_policy_args pa = {.keep = -1};
	int c;

	while ((c = getopt_long(argc, argv, "g:p:ak:RTs:w:l:j:t:CqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (om_group_parse_id(optarg, false, &o.group, &err) < 0)
				return om_cli_fail(prog, &err);
			break;
		case 'p':
			if (om_parse_pid(optarg, &o.pid) < 0)
				return om_cli_usage_error(prog, "invalid PID");
			break;
		case 'a':
			all = true;
			break;
		case 'k':
			if (om_parse_uint(optarg, 100000, &v) < 0)
				return om_cli_usage_error(prog, "--keep must be a number of generations (0: all)");
			o.keep = (unsigned)v;
			pa.keep = (long)v;
			keep_set = true;
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
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (optind != argc)
		return om_cli_usage_error(prog, "unexpected argument");
	if (pa.every || policy) { /* the policy of periodic checkpoints: stored or listed, nothing checkpointed */
		if ((pa.every && policy) || o.pid || all || check)
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
	if ((o.group != 0) + (o.pid != 0) + all != 1)
		return om_cli_usage_error(prog, "give exactly one of -g G, -p PID or --all");
	/* the settings: `keep =` and the cluster (fencing tokens) */
	if (om_cli_config(NULL, NULL, NULL, &cfg, &err) < 0)
		return om_cli_fail(prog, &err);
	if (!keep_set)
		o.keep = cfg.keep;
	/* without a cluster the store's .fence is the group's fencing token */
	o.fence_local = !om_cluster_configured(&cfg);
	/* fault injection for the tests (like CRIU's --fault); the library never reads the environment */
	o.fault = getenv("OM_FAULT");
	struct run_args a = {.o = &o, .cfg = &cfg, .all = all, .json = json, .quiet = quiet, .only = o.group};
	int rc = om_cli_run_held(prog, run, &a);
	om_config_release(&cfg);
	return rc;
}
