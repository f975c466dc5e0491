/* omd — the omtools node agent (cluster/agent.h), and `omd --check-map`. */
#include "config.h"
#include "agent.h"
#include "cli.h"
#include "map.h"
#include "policy.h"
#include "schedule.h"
#include "util.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

static const char *prog = "omd";

static void usage(void)
{
	printf("Usage: %s [--foreground] [--config FILE] [--node ID] [--map FILE] [--log FILE]\n"
	       "       %s --check-map FILE\n"
	       "The omtools node agent: registers this node in etcd under a lease, publishes\n"
	       "its load, memory and groups, and runs the checkpoints and restores that other\n"
	       "nodes ask of it (migrategroup, omdrain). One per node. It also applies the\n"
	       "periodic-checkpoint policies (omckpt --every) of the groups it runs. Without\n"
	       "`etcd =` it runs alone (mode=local): the policies only, from the directory\n"
	       "`policy` next to the settings file.\n\n"
	       "  -f, --foreground   stay in the foreground, log to stderr (systemd, tests)\n" OM_CLI_CLUSTER_HELP
	       "  -l, --log FILE     append the log here (default: stderr in the foreground,\n"
	       "                     /var/log/omd.log otherwise)\n"
	       "      --check-map FILE  check a cluster map and exit (2 and FILE:LINE when bad)\n"
	       "  -h, --help         show this help\n"
	       "  -V, --version      show the version\n\n"
	       "Exit status: 0 stopped by SIGTERM/SIGINT, 2 usage or a bad map, 7 etcd\n"
	       "unreachable or this node not in the map, 1 other failure.\n",
	       prog, prog);
}

static void log_line(void *arg, const char *line)
{
	FILE *out = arg;
	struct timespec ts;
	struct tm tm;
	char when[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out, "ts=%s.%03ldZ %s\n", when, ts.tv_nsec / 1000000, line);
	fflush(out);
}

static void local_event(void *arg, const Om__HistoryEvent *ev)
{
	char line[1600];
	om_history_format(ev, line, sizeof(line));
	log_line(arg, line);
}

static int check_map(const char *path)
{
	cleanup_om_error om_error_t err = NULL;
	struct om_map m;
	if (om_map_load(path, &m, &err) < 0) {
		om_error_print(stderr, prog, err);
		return OM_EXIT_USAGE;
	}
	printf("%s: %zu node%s\n", path, m.n, m.n == 1 ? "" : "s");
	om_map_release(&m);
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK_MAP = 256 };
	static const struct option opts[] = {{"foreground", no_argument, NULL, 'f'},
					     OM_CLI_CLUSTER_OPTIONS,
					     {"log", required_argument, NULL, 'l'},
					     {"check-map", required_argument, NULL, OPT_CHECK_MAP},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	const char *logfile = NULL;
	struct om_cli_cluster co = {0};
	bool foreground = false;
	struct om_config cfg;
	struct om_agent_opts ao = {0};
	FILE *log = stderr;
	sigset_t set;
	int c, rc;

	while ((c = getopt_long(argc, argv, "fc:n:m:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'l':
			logfile = optarg;
			break;
		case OPT_CHECK_MAP:
			return check_map(optarg);
		default:
			if (om_cli_cluster_option(c, optarg, &co))
				break;
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (optind != argc)
		return om_cli_usage_error(prog, "no arguments expected");
	if (om_cli_config(co.config, co.node, co.map, &cfg, &err) < 0)
		return om_cli_fail(prog, &err);
	if (!foreground && logfile == NULL)
		logfile = "/var/log/omd.log";
	if (logfile) {
		log = fopen(logfile, "ae");
		if (log == NULL) {
			om_make_error(&err, errno, "open log `%s`", logfile);
			om_config_release(&cfg);
			return om_cli_fail(prog, &err);
		}
	}
	if (!foreground) {
		int fd;
		pid_t pid = fork();
		if (pid != 0) { /* the parent: nothing left to hold (LeakSanitizer builds check) */
			int e = errno;
			om_config_release(&cfg);
			if (log != stderr)
				fclose(log);
			if (pid > 0)
				return 0;
			om_make_error(&err, e, "fork");
			return om_cli_fail(prog, &err);
		}
		setsid();
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	ao.signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	ao.cfg = &cfg;
	ao.fault = getenv("OM_FAULT"); /* tests: om_migrate_target's pauses */
	ao.log = log_line;
	ao.log_arg = log;
	if (om_cluster_configured(&cfg)) {
		rc = om_agent_run(&ao, &err);
	} else { /* one node alone: the periodic checkpoints of the policy directory */
		cleanup_free char *dir = NULL;
		struct om_sched_opts so = {.cfg = &cfg,
					   .node = cfg.node ? cfg.node : om_node_name(),
					   .log = log_line,
					   .log_arg = log,
					   .event = local_event,
					   .event_arg = log};
		rc = om_policy_dir(&cfg, &dir, &err);
		so.policy_dir = dir;
		if (rc == 0)
			rc = om_sched_run_local(&so, ao.signal_fd, &err);
	}
	if (rc < 0) {
		char line[1200];
		snprintf(line, sizeof(line), "event=fatal reason=\"%.1000s\"", err && err->msg ? err->msg : "?");
		log_line(log, line);
		rc = om_cli_fail(prog, &err);
	}
	om_config_release(&cfg);
	if (log != stderr)
		fclose(log);
	return rc;
}
