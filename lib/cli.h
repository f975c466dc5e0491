/* lib/cli.h — what every omtools command shares: one place that prints an
 * error and turns it into an exit code. Commands are thin files over libom. */
#ifndef OM_CLI_H
#define OM_CLI_H

#include "error.h"
#include "settings.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static inline int om_cli_fail(const char *prog, om_error_t *err)
{
	int code = om_error_exit_code(*err);
	om_error_print(stderr, prog, *err);
	om_error_release(err);
	return code;
}

static inline int om_cli_usage_error(const char *prog, const char *msg)
{
	fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, msg, prog);
	return OM_EXIT_USAGE;
}

static inline int om_cli_version(const char *prog)
{
	printf("%s (omtools) %s\n", prog, PACKAGE_VERSION);
	return 0;
}

/* The options every command has. */
#define OM_CLI_COMMON_OPTIONS                                                                                          \
	{"help", no_argument, NULL, 'h'},                                                                              \
	{                                                                                                              \
		"version", no_argument, NULL, 'V'                                                                      \
	}

/* The getopt cases every command shares (-h, -V, unknown): the exit status to return now. */
static inline int om_cli_common_option(int c, const char *prog, void (*usage)(void))
{
	switch (c) {
	case 'h':
		usage();
		return OM_EXIT_OK;
	case 'V':
		return om_cli_version(prog);
	default:
		return om_cli_usage_error(prog, "unknown option");
	}
}

/* A checkpoint or restore must not be cut in half by ^C, a hang-up or a
 * plain kill. Those signals are held for the whole run and collected by a
 * signalfd that fn gets as its cancel fd: every wait of libom watches it, so
 * a signal stops a waiting command cleanly (CRIU killed, group thawed, exit
 * 128+signal), while a step that must not be cut (publishing, stopping a
 * migrated group) finishes first. A run that succeeded exits 0 and prints
 * its summary even if a signal came meanwhile: the signals stay held until
 * the command returns from main (unblocking them would deliver one that came
 * late and kill the command before its summary). On failure the error is
 * printed once. Returns the exit status. */
static inline int om_cli_run_held(const char *prog, int (*fn)(void *arg, int cancel_fd, om_error_t *err), void *arg)
{
	om_error_t err = NULL;
	sigset_t set;
	struct signalfd_siginfo si;
	int rc, sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	rc = fn(arg, sfd, &err) < 0 ? -1 : OM_EXIT_OK;
	if (rc < 0) {
		if (sfd >= 0 && err && err->status == ECANCELED && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			om_error_wrap(&err, "%s received", strsignal((int)si.ssi_signo));
			om_error_print(stderr, prog, err);
			om_error_release(&err);
			rc = 128 + (int)si.ssi_signo;
		} else
			rc = om_cli_fail(prog, &err);
	}
	/* signals that came during a run that finished anyway are consumed */
	while (sfd >= 0 && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	if (sfd >= 0)
		close(sfd);
	return rc;
}

/* The options of the commands that read the cluster's settings:
 * -c/--config FILE, -n/--node ID, -m/--map FILE ("c:n:m:" in the short options). */
#define OM_CLI_CLUSTER_OPTIONS                                                                                         \
	{"config", required_argument, NULL, 'c'}, {"node", required_argument, NULL, 'n'},                              \
	{                                                                                                              \
		"map", required_argument, NULL, 'm'                                                                    \
	}
#define OM_CLI_CLUSTER_HELP                                                                                            \
	"  -c, --config FILE  settings (default $OM_CONFIG or /etc/omtools/omtools.conf)\n"                            \
	"  -n, --node ID      this node's id in the map (default $OM_NODE, `node =`, else\n"                           \
	"                     the node whose address this host has)\n"                                                 \
	"  -m, --map FILE     the cluster map (default $OM_MAP, `map =`, /etc/omtools/cluster.map,\n"                  \
	"                     /etc/openmosix.map)\n"
struct om_cli_cluster {
	const char *config, *node, *map;
};
/* One of OM_CLI_CLUSTER_OPTIONS? (then it is taken) */
static inline bool om_cli_cluster_option(int c, const char *arg, struct om_cli_cluster *o)
{
	switch (c) {
	case 'c':
		o->config = arg;
		return true;
	case 'n':
		o->node = arg;
		return true;
	case 'm':
		o->map = arg;
		return true;
	default:
		return false;
	}
}

/* A number of seconds from the command line (0 < S <= max). */
static inline int om_cli_seconds(const char *s, double max, double *out)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v > 0) || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The settings of a command: the file (--config, else $OM_CONFIG, else
 * /etc/omtools/omtools.conf), then the environment ($OM_NODE, $OM_MAP,
 * $OM_STORE), then the command line (node, map: NULL when not given). The
 * library never reads the environment: this is the one place that does. */
static inline int om_cli_config(const char *path, const char *node, const char *map, struct om_config *cfg,
				om_error_t *err)
{
	static const char *const env[][2] = {{"OM_NODE", "node"}, {"OM_MAP", "map"}, {"OM_STORE", "store"}};
	if (path == NULL)
		path = getenv("OM_CONFIG");
	if (om_config_load(path, cfg, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
		const char *v = getenv(env[i][0]);
		if (v && *v && om_config_set(cfg, env[i][1], v, err) < 0)
			goto fail;
	}
	if ((node && om_config_set(cfg, "node", node, err) < 0) || (map && om_config_set(cfg, "map", map, err) < 0))
		goto fail;
	return 0;
fail:
	om_config_release(cfg);
	return -1;
}

#endif
