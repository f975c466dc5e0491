/* tests/unit/test-policy.c — periodic-checkpoint policies (cluster/policy.h)
 * without etcd: the periods omckpt --every accepts and refuses, the policy
 * directory next to the settings file, and the file backend: set, get, list,
 * delete, and every way a file can be wrong (refused, never trusted). */
#include "config.h"
#include "policy.h"
#include "error.h"
#include "settings.h"
#include "util.h"

#include "../tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool every(const char *s, uint32_t want, bool good)
{
	om_error_t err = NULL;
	uint32_t v = 12345;
	int rc = om_policy_parse_every(s, &v, &err);
	bool r = good ? rc == 0 && v == want : rc < 0 && err && err->status == OM_EUSAGE;
	if (!r)
		diag("`%s`: rc %d v %u %s", s, rc, v, err && err->msg ? err->msg : "");
	om_error_release(&err);
	return r;
}

static void put_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		diag("write %s failed", path);
	if (fd >= 0)
		close(fd);
}

/* a file of group g with the given header and message */
static void craft(const char *dir, unsigned long g, const char *magic, uint32_t ver, const Om__Policy *p)
{
	uint8_t buf[512];
	size_t n = protobuf_c_message_pack(&p->base, buf + 12);
	char path[512];
	memcpy(buf, magic, 8);
	memcpy(buf + 8, &ver, 4);
	snprintf(path, sizeof(path), "%s/%lu", dir, g);
	put_file(path, buf, 12 + n);
}

static bool refused(struct om_policy_store *ps, unsigned long g, const char *want)
{
	Om__Policy *p = NULL;
	om_error_t err = NULL;
	int rc = om_policy_get(ps, g, &p, &err);
	bool r = rc < 0 && p == NULL && err && strstr(err->msg, want);
	if (!r)
		diag("group %lu: rc %d: %s", g, rc, err && err->msg ? err->msg : "no error");
	om_policy_free(p);
	om_error_release(&err);
	return r;
}

int main(void)
{
	char tmpl[] = "/tmp/test-policy.XXXXXX";
	char *top = mkdtemp(tmpl);
	cleanup_free char *dir = NULL, *conf = NULL;
	struct om_config cfg = {0};
	om_error_t err = NULL;
	char buf[16];

	ok(every("30s", 30, true) && every("10m", 600, true) && every("2h", 7200, true) && every("1d", 86400, true) &&
	       every("45", 45, true) && every("7d", 604800, true),
	   "periods: 30s, 10m, 2h, 1d, 45 (seconds), 7d");
	ok(every("0", 0, true) && every("off", 0, true) && every("0m", 0, true), "0 and off: no policy");
	ok(every("3s", 0, false) && every("9", 0, false) && every("8d", 0, false) && every("169h", 0, false),
	   "refused: shorter than 10 s, longer than 7 d");
	ok(every("10x", 0, false) && every("", 0, false) && every("m", 0, false) && every("10mm", 0, false) &&
	       every("-10s", 0, false) && every("1.5h", 0, false) && every("99999999999999d", 0, false) &&
	       every(" 10s", 0, false),
	   "refused: bad units, signs, fractions, huge numbers, blanks");
	ok(strcmp(om_policy_format_every(600, buf, sizeof(buf)), "10m") == 0 &&
	       strcmp(om_policy_format_every(90, buf, sizeof(buf)), "90s") == 0 &&
	       strcmp(om_policy_format_every(172800, buf, sizeof(buf)), "2d") == 0,
	   "formatted back: 10m, 90s, 2d");

	ok(om_policy_dir(&cfg, &dir, &err) == 0 && strcmp(dir, OM_DEFAULT_POLICY_DIR) == 0, "no settings file: %s",
	   OM_DEFAULT_POLICY_DIR);
	free(dir);
	dir = NULL;
	conf = om_strdup_printf("%s/omtools.conf", top);
	cfg.path = conf;
	ok(om_policy_dir(&cfg, &dir, &err) == 0 && strncmp(dir, top, strlen(top)) == 0 &&
	       strcmp(dir + strlen(top), "/policy") == 0,
	   "the directory `policy` next to the settings file");

	struct om_policy_store ps = {.c = NULL, .dir = dir};
	Om__Policy p = OM__POLICY__INIT, *got = NULL, **v = NULL;
	size_t n = 0, bad = 0;
	bool existed = true;
	p.v = 1;
	p.group = 7;
	p.every_s = 600;
	p.has_keep = true;
	p.keep = 6;
	p.by = "node1";
	ok(om_policy_get(&ps, 7, &got, &err) == 0 && got == NULL, "no policy yet (not an error)");
	ok(om_policy_list(&ps, &v, &n, &bad, &err) == 0 && n == 0, "an empty list without the directory");
	om_policy_list_free(v, n);
	ok(om_policy_set(&ps, &p, &err) == 0, "set group 7: every 10m, keep 6");
	p.group = 3;
	p.every_s = 30;
	p.has_keep = false;
	ok(om_policy_set(&ps, &p, &err) == 0, "set group 3: every 30s");
	ok(om_policy_get(&ps, 7, &got, &err) == 0 && got && got->every_s == 600 && got->has_keep && got->keep == 6 &&
	       got->by && strcmp(got->by, "node1") == 0,
	   "get group 7 back");
	om_policy_free(got);
	got = NULL;
	ok(om_policy_list(&ps, &v, &n, &bad, &err) == 0 && n == 2 && v[0]->group == 3 && v[1]->group == 7 && bad == 0,
	   "list: groups 3 and 7, ascending");
	om_policy_list_free(v, n);

	p.every_s = 5;
	ok(om_policy_set(&ps, &p, &err) < 0 && om_error_exit_code(err) == OM_EXIT_USAGE, "set refuses a 5 s period");
	om_error_release(&err);
	p.every_s = 30;

	/* files that must be refused */
	craft(dir, 11, "OMPOLCX", 1, &p);
	ok(refused(&ps, 11, "not a policy file"), "a wrong magic: refused");
	craft(dir, 12, OM_POLICY_MAGIC, 2, &p);
	ok(refused(&ps, 12, "version 2"), "another file version: refused");
	p.group = 99;
	craft(dir, 13, OM_POLICY_MAGIC, 1, &p);
	ok(refused(&ps, 13, "names group 99"), "a file naming another group: refused");
	p.group = 14;
	p.every_s = 1;
	craft(dir, 14, OM_POLICY_MAGIC, 1, &p);
	ok(refused(&ps, 14, "period 1 s"), "a period out of bounds: refused");
	p.every_s = 30;
	p.has_keep = true;
	p.keep = 1000000;
	p.group = 15;
	craft(dir, 15, OM_POLICY_MAGIC, 1, &p);
	ok(refused(&ps, 15, "keep 1000000"), "a keep out of bounds: refused");
	p.has_keep = false;
	{
		char path[512];
		static const char junk[] = "OMPOLCY\0\1\0\0\0\xff\xff\xff\xff\xff";
		snprintf(path, sizeof(path), "%s/16", dir);
		put_file(path, junk, sizeof(junk) - 1);
		ok(refused(&ps, 16, "does not parse"), "a message that does not parse: refused");
		char *big = calloc(1, OM_POLICY_FILE_MAX + 100);
		memcpy(big, OM_POLICY_MAGIC, 8);
		snprintf(path, sizeof(path), "%s/17", dir);
		put_file(path, big, OM_POLICY_FILE_MAX + 100);
		free(big);
		ok(refused(&ps, 17, "policy file"), "a file above %u bytes: refused", OM_POLICY_FILE_MAX);
		snprintf(path, sizeof(path), "%s/18", dir);
		put_file(path, "OMPOLCY", 7);
		ok(refused(&ps, 18, "not a policy file"), "a truncated file: refused");
		snprintf(path, sizeof(path), "%s/notagroup", dir);
		put_file(path, "x", 1);
	}
	{
		int rc = om_policy_list(&ps, &v, &n, &bad, &err);
		ok(rc == 0 && n == 2 && bad == 8,
		   "list: the two good ones; the 8 bad files counted, not listed; `notagroup` ignored (%zu, %zu)", n,
		   bad);
	}
	om_policy_list_free(v, n);

	ok(om_policy_delete(&ps, 7, &existed, &err) == 0 && existed, "delete group 7");
	ok(om_policy_delete(&ps, 7, &existed, &err) == 0 && !existed, "delete it again: nothing there, no error");
	ok(om_policy_get(&ps, 7, &got, &err) == 0 && got == NULL, "group 7 has no policy now");

	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
		if (system(cmd) != 0)
			diag("cleanup of %s failed", top);
	}
	cfg.path = NULL;
	return done_testing();
}
