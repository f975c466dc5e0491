/* tests/unit/test-cluster.c — what omd checks of a request before it acts
 * (om_request_validate), and the settings file it reads (om_config_load):
 * every field of a request, each way it can be wrong. No etcd is needed. */
#include "config.h"
#include "cluster.h"
#include "error.h"
#include "settings.h"
#include "util.h"

#include "../tap.h"

#include <string.h>
#include <unistd.h>

static const char map_text[] = "1 10.7.0.1 3\n";
#define ID "0123456789abcdef0123456789abcdef"
#define NOW 1700000000000LL

static Om__Request good(void)
{
	Om__Request r = OM__REQUEST__INIT;
	r.v = 1;
	r.id = ID;
	r.op = "migrate";
	r.from = "1";
	r.has_group = true;
	r.group = 7;
	r.to = "3";
	r.has_issued_ms = true;
	r.issued_ms = NOW;
	return r;
}

static bool valid(const struct om_cluster *c, const char *key_id, const Om__Request *r, const char *want)
{
	om_error_t err = NULL;
	int rc = om_request_validate(c, key_id, r, NOW, &err);
	bool ok_ = want ? rc < 0 && err && strstr(err->msg, want) : rc == 0;
	if (!ok_)
		diag("rc %d: %s", rc, err && err->msg ? err->msg : "no error");
	om_error_release(&err);
	return ok_;
}

static void test_requests(void)
{
	struct om_cluster c;
	om_error_t err = NULL;
	Om__Request r;

	memset(&c, 0, sizeof(c));
	ok(om_map_parse(map_text, sizeof(map_text) - 1, "t.map", &c.map, &err) == 0, "a map of nodes 1-3");
	c.self = om_map_find(&c.map, "2");
	snprintf(c.self_id, sizeof(c.self_id), "2");

	r = good();
	ok(valid(&c, ID, &r, NULL), "a migrate request from node 1, to node 3, for node 2: accepted");
	r = good();
	r.v = 2;
	ok(valid(&c, ID, &r, "version"), "another version: refused");
	r = good();
	ok(valid(&c, "ffffffffffffffffffffffffffffffff", &r, "bad request id"), "an id other than its key's: refused");
	r = good();
	r.id = "0123456789ABCDEF0123456789ABCDEF";
	ok(valid(&c, r.id, &r, "bad request id"), "an id in upper case: refused");
	r = good();
	r.id = "0123456789abcdef";
	ok(valid(&c, r.id, &r, "bad request id"), "a short id: refused");
	r = good();
	r.from = "9";
	ok(valid(&c, ID, &r, "sender `9`"), "a sender outside the map: refused");
	r = good();
	r.from = "10.7.0.1";
	ok(valid(&c, ID, &r, NULL), "a sender named by its address: accepted");
	r = good();
	r.group = 0;
	ok(valid(&c, ID, &r, "group"), "group 0: refused");
	r = good();
	r.has_group = false;
	ok(valid(&c, ID, &r, "group"), "no group: refused");
	r = good();
	r.group = 1000000001;
	ok(valid(&c, ID, &r, "group"), "a group id past the limit: refused");
	r = good();
	r.issued_ms = NOW - OM_REQ_MAX_AGE_MS - 1;
	ok(valid(&c, ID, &r, "stale"), "older than %d minutes: refused", OM_REQ_MAX_AGE_MS / 60000);
	r = good();
	r.issued_ms = NOW + 120000;
	ok(valid(&c, ID, &r, "future"), "two minutes in the future: refused");
	r = good();
	r.has_issued_ms = false;
	ok(valid(&c, ID, &r, "stale"), "no issue time: refused");
	r = good();
	r.has_timeout_s = true;
	r.timeout_s = 0.5;
	ok(valid(&c, ID, &r, "timeout"), "a timeout under 1 s: refused");
	r = good();
	r.has_timeout_s = true;
	r.timeout_s = 1e9;
	ok(valid(&c, ID, &r, "timeout"), "a timeout over an hour: refused");
	r = good();
	r.to = "2";
	ok(valid(&c, ID, &r, "this node"), "a migration to the node itself: refused");
	r = good();
	r.to = "4";
	ok(valid(&c, ID, &r, "target `4`"), "a target outside the map: refused");
	r = good();
	r.to = NULL;
	ok(valid(&c, ID, &r, "target"), "a migration without a target: refused");
	r = good();
	r.op = "format-disk";
	ok(valid(&c, ID, &r, "unknown operation"), "an unknown operation: refused");
	r = good();
	r.op = "restore";
	ok(valid(&c, ID, &r, "generation"), "a restore without a generation: refused");
	r.has_generation = true;
	r.generation = 3;
	ok(valid(&c, ID, &r, "parent"), "a restore without its migration's id: refused");
	r.parent = "fedcba9876543210fedcba9876543210";
	ok(valid(&c, ID, &r, NULL), "a restore of generation 3 for a migration: accepted");
	om_map_release(&c.map);
}

static void test_settings(void)
{
	char dir[] = "/tmp/om-test-cluster.XXXXXX", path[64];
	struct om_config cfg;
	om_error_t err = NULL;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/omtools.conf", dir);
	f = fopen(path, "w");
	fputs("# a node\nstore = /srv/store\nnode = 2 # comment\netcd = 'https://10.7.0.1:2379'\n"
	      "etcd_ca=/etc/omtools/ca.crt\nlease_ttl = 6\nkeep = 3\n",
	      f);
	fclose(f);
	ok(om_config_load(path, &cfg, &err) == 0, "a settings file loads");
	ok(cfg.store && !strcmp(cfg.store, "/srv/store") && cfg.node && !strcmp(cfg.node, "2") && cfg.etcd &&
	       !strcmp(cfg.etcd, "https://10.7.0.1:2379") && cfg.lease_ttl == 6 && cfg.keep == 3 &&
	       !strcmp(cfg.etcd_prefix, OM_DEFAULT_ETCD_PREFIX),
	   "... with every value (quotes and comments stripped, the default prefix)");
	ok(om_cluster_configured(&cfg), "... and a cluster configured");
	om_config_release(&cfg);

	f = fopen(path, "w");
	fputs("store = /srv\n\nlease_tll = 6\n", f);
	fclose(f);
	ok(om_config_load(path, &cfg, &err) < 0 && err && strstr(err->msg, "omtools.conf:3") &&
	       strstr(err->msg, "lease_tll"),
	   "a misspelt key is an error naming its line (%s)", err && err->msg ? err->msg : "none");
	om_error_release(&err);
	f = fopen(path, "w");
	fputs("lease_ttl = 1\n", f);
	fclose(f);
	ok(om_config_load(path, &cfg, &err) < 0 && err && strstr(err->msg, "lease_ttl"),
	   "a lease of 1 s is refused (%s)", err && err->msg ? err->msg : "none");
	om_error_release(&err);
	f = fopen(path, "w");
	fputs("store /srv\n", f);
	fclose(f);
	ok(om_config_load(path, &cfg, &err) < 0 && err && strstr(err->msg, ":1: expected"),
	   "a line without `=` is refused (%s)", err && err->msg ? err->msg : "none");
	om_error_release(&err);
	unlink(path);
	ok(om_config_load(path, &cfg, &err) == 0 && cfg.store == NULL && !om_cluster_configured(&cfg) &&
	       cfg.lease_ttl == OM_DEFAULT_LEASE_TTL,
	   "no file: the defaults, no cluster");
	om_config_release(&cfg);
	rmdir(dir);
}

int main(void)
{
	test_requests();
	test_settings();
	return done_testing();
}
