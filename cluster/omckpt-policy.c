/* cluster/omckpt-policy.c — see omckpt-policy.h. */
#include "config.h"
#include "omckpt-policy.h"

#include "cli.h"
#include "cluster.h"
#include "policy.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void when(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (ms <= 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "?");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_list(Om__Policy **v, size_t n, size_t bad, const char *backend, const char *where, bool json)
{
	char every[16], at[40];

	if (json) {
		printf("{\"backend\":\"%s\",\"where\":", backend);
		om_json_string(stdout, where);
		printf(",\"unreadable\":%zu,\"policies\":[", bad);
		for (size_t i = 0; i < n; i++) {
			const Om__Policy *p = v[i];
			printf("%s{\"group\":%" PRIu64 ",\"every_s\":%u,\"every\":\"%s\",\"keep\":%u,"
			       "\"tcp_established\":%s,\"updated_ms\":%" PRId64 ",\"by\":",
			       i ? "," : "", p->group, p->every_s,
			       om_policy_format_every(p->every_s, every, sizeof(every)), p->has_keep ? p->keep : 0,
			       p->has_tcp_established && p->tcp_established ? "true" : "false",
			       p->has_updated_ms ? p->updated_ms : 0);
			om_json_string(stdout, p->by ? p->by : "");
			printf("}");
		}
		printf("]}\n");
		return;
	}
	if (n == 0)
		printf("no periodic checkpoints (%s %s)\n", backend, where);
	for (size_t i = 0; i < n; i++) {
		const Om__Policy *p = v[i];
		when(p->has_updated_ms ? p->updated_ms : 0, at, sizeof(at));
		printf("group %" PRIu64 ": every %s, keep ", p->group,
		       om_policy_format_every(p->every_s, every, sizeof(every)));
		if (p->has_keep && p->keep)
			printf("%u", p->keep);
		else
			printf("as `keep =`");
		printf("%s (set by %s at %s)\n",
		       p->has_tcp_established && p->tcp_established ? ", tcp-established" : "",
		       p->by && *p->by ? p->by : "?", at);
	}
	if (bad)
		fprintf(stderr, "%zu polic%s that do%s not parse or are out of bounds were left out\n", bad,
			bad == 1 ? "y" : "ies", bad == 1 ? "es" : "");
}

int om_omckpt_policy(const char *prog, const struct om_policy_args *a)
{
	cleanup_om_error om_error_t err = NULL;
	cleanup_free char *dir = NULL;
	struct om_config cfg;
	struct om_cluster c;
	struct om_policy_store ps = {0};
	bool cluster;
	uint32_t every = 0;
	int rc = 0;

	if (a->every && om_policy_parse_every(a->every, &every, &err) < 0) {
		fprintf(stderr, "%s: --every: %s\n", prog, err->msg);
		return OM_EXIT_USAGE;
	}
	if (a->every && a->group == 0)
		return om_cli_usage_error(prog, "--every needs -g G");
	if (om_cli_config(NULL, NULL, NULL, &cfg, &err) < 0)
		return om_cli_fail(prog, &err);
	cluster = om_cluster_configured(&cfg);
	if (cluster) {
		if (om_cluster_open(&c, &cfg, false, &err) < 0) {
			om_config_release(&cfg);
			return om_cli_fail(prog, &err);
		}
		ps.c = &c;
	} else if (om_policy_dir(&cfg, &dir, &err) < 0) {
		om_config_release(&cfg);
		return om_cli_fail(prog, &err);
	}
	ps.dir = dir;

	if (a->every && every > 0) {
		Om__Policy p = OM__POLICY__INIT;
		char e[16];
		p.v = 1;
		p.group = a->group;
		p.every_s = every;
		if (a->keep >= 0) {
			p.has_keep = true;
			p.keep = (uint32_t)a->keep;
		}
		p.has_updated_ms = true;
		p.updated_ms = om_wall_ms();
		p.by = (char *)(cluster && c.self ? c.self_id : cfg.node ? cfg.node : om_node_name());
		if (a->tcp_established)
			p.has_tcp_established = p.tcp_established = true;
		rc = om_policy_set(&ps, &p, &err);
		if (rc == 0 && !a->quiet) {
			printf("group %lu: a --leave-running checkpoint every %s, keeping ", a->group,
			       om_policy_format_every(every, e, sizeof(e)));
			if (a->keep > 0)
				printf("the newest %ld generations", a->keep);
			else
				printf("as many generations as `keep =` says");
			printf(" (%s %s)\n", cluster ? "etcd" : "policy directory", cluster ? c.prefix : dir);
		}
	} else if (a->every) {
		bool existed = false;
		rc = om_policy_delete(&ps, a->group, &existed, &err);
		if (rc == 0 && !a->quiet)
			printf("group %lu: %s\n", a->group,
			       existed ? "no periodic checkpoints any more" : "had no periodic checkpoints");
	} else {
		Om__Policy **v = NULL, *one = NULL;
		size_t n = 0, bad = 0;
		if (a->group) {
			rc = om_policy_get(&ps, a->group, &one, &err);
			if (rc == 0 && one)
				n = 1;
			v = n ? &one : NULL;
		} else
			rc = om_policy_list(&ps, &v, &n, &bad, &err);
		if (rc == 0)
			print_list(v, n, bad, cluster ? "etcd" : "directory", cluster ? c.prefix : dir, a->json);
		if (a->group)
			om_policy_free(one);
		else
			om_policy_list_free(v, n);
	}
	if (cluster)
		om_cluster_close(&c);
	om_config_release(&cfg);
	return rc < 0 ? om_cli_fail(prog, &err) : 0;
}
