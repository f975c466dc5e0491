/* tests/unit/test-imgcli.c — what omimg parses from its command line and
 * prints of a generation (storage/imgcli.c): G[/GEN] references (bounds,
 * garbage), the age and size renderings, and that the JSON of a manifest
 * with hostile strings still escapes them. */
#include "config.h"
#include "error.h"
#include "imgcli.h"
#include "store.h"

#include "../tap.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX 1000000000UL /* OM_GROUP_MAX */

static bool parses(const char *s, bool all_ok, unsigned long id, uint64_t gen, bool all)
{
	struct om_img_ref r;
	om_error_t err = NULL;
	int rc = om_img_ref_parse(s, MAX, all_ok, &r, &err);
	bool good = rc == 0 && r.id == id && r.gen == gen && r.all == all;

	if (!good)
		diag("`%s`: rc %d id %lu gen %llu all %d: %s", s, rc, r.id, (unsigned long long)r.gen, r.all,
		     err && err->msg ? err->msg : "no error");
	om_error_release(&err);
	return good;
}

static bool refused(const char *s, bool all_ok)
{
	struct om_img_ref r;
	om_error_t err = NULL;
	int rc = om_img_ref_parse(s, MAX, all_ok, &r, &err);
	bool good = rc < 0 && err && err->status == OM_EUSAGE && om_error_exit_code(err) == OM_EXIT_USAGE &&
		    (s == NULL || strstr(err->msg, s) != NULL);

	if (!good)
		diag("`%s`: rc %d, %s", s ? s : "(null)", rc, err && err->msg ? err->msg : "no error");
	om_error_release(&err);
	return good;
}

static bool age_is(double secs, const char *want)
{
	char buf[64];
	om_img_age(secs, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		diag("age %.1f: `%s`, expected `%s`", secs, buf, want);
	return strcmp(buf, want) == 0;
}

static bool size_is(uint64_t v, const char *want)
{
	char buf[64];
	om_img_size(v, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		diag("size %llu: `%s`, expected `%s`", (unsigned long long)v, buf, want);
	return strcmp(buf, want) == 0;
}

int main(void)
{
	/* references that parse */
	ok(parses("3", false, 3, 0, false), "G");
	ok(parses("3/2", false, 3, 2, false), "G/GEN");
	ok(parses("3/gen-2", false, 3, 2, false), "G/gen-GEN");
	ok(parses("3/all", true, 3, 0, true), "G/all where allowed");
	ok(parses("1000000000/1", false, MAX, 1, false), "G at its bound");
	ok(parses("7/9223372036854775807", false, 7, UINT64_C(9223372036854775807), false), "GEN at its bound");

	/* refused, each naming the argument */
	ok(refused(NULL, false), "no argument");
	ok(refused("", false), "empty");
	ok(refused("0", false), "G 0");
	ok(refused("1000000001", false), "G past its bound");
	ok(refused("18446744073709551616", false), "G past 2^64");
	ok(refused("3/0", false), "GEN 0");
	ok(refused("3/gen-0", false), "gen-0");
	ok(refused("3/9223372036854775808", false), "GEN past 2^63-1");
	ok(refused("3/", false), "empty GEN");
	ok(refused("/2", false), "empty G");
	ok(refused("3/2/1", false), "three parts");
	ok(refused("3/all", false), "all where not allowed (rm, show)");
	ok(refused("3/ALL", true), "all is lower case");
	ok(refused("+3", false), "a sign");
	ok(refused("3/-1", false), "a negative GEN");
	ok(refused("03", false), "a leading zero in G");
	ok(refused("3/02", false), "a leading zero in GEN");
	ok(refused(" 3", false), "a leading space");
	ok(refused("3 ", false), "a trailing space");
	ok(refused("3/2x", false), "garbage after GEN");
	ok(refused("3x/2", false), "garbage after G");
	ok(refused("0x10", false), "hex");
	ok(refused("3/gen-", false), "gen- without a number");
	ok(refused("3/gen-gen-2", false), "gen- twice");

	/* what omimg tries as a reference before a path */
	ok(om_img_ref_like("3") && om_img_ref_like("3/2") && om_img_ref_like("3/x"), "digits first: a reference");
	ok(!om_img_ref_like("/var/lib/omtools/store/groups/3/gen-2") && !om_img_ref_like("./3/gen-2") &&
	       !om_img_ref_like("manifest.om") && !om_img_ref_like("3/gen-2/manifest.om") && !om_img_ref_like(""),
	   "paths are not references");

	/* renderings */
	ok(age_is(0, "0 s") && age_is(-0.5, "0 s") && age_is(59.9, "59 s"), "age in seconds (skew under 1 s is 0)");
	ok(age_is(-5, "in the future"), "a generation from the future");
	ok(age_is(60, "1 min") && age_is(303, "5 min 3 s"), "age in minutes");
	ok(age_is(3600 * 3 + 60 * 12 + 5, "3 h 12 min") && age_is(86400 * 2 + 3600 * 4, "2 d 4 h"), "hours, days");
	ok(size_is(512, "512 B") && size_is(1536, "1.5 KiB") && size_is(UINT64_C(3) << 30, "3.0 GiB"), "sizes");
	ok(om_img_ratio(300, 100) == 3.0 && om_img_ratio(5, 0) == 0, "ratio (nothing stored: 0)");
	ok(om_img_age_seconds(INT64_MIN, INT64_MAX) > 0 && om_img_age_seconds(INT64_MAX, INT64_MIN) < 0,
	   "an age from hostile times does not overflow");

	/* the JSON of a manifest with hostile strings parses (invalid UTF-8, quotes, control bytes) */
	{
		Om__Manifest m = OM__MANIFEST__INIT;
		Om__TreeEntry t = OM__TREE_ENTRY__INIT, *tp = &t;
		Om__ProcEntry p = OM__PROC_ENTRY__INIT, *pp = &p;
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		m.generation = 2;
		m.node = "n\"1\\\x01\xff";
		m.kernel = "6.18";
		m.criu_version = "4.2.1";
		m.omtools_version = "0.1.0";
		m.time_unix_ns = INT64_MIN;
		m.raw_bytes = 30;
		m.stored_bytes = 10;
		m.has_fence = true;
		m.fence = 5;
		t.root_pid = 9;
		t.dir = "tree-9";
		p.pid = 9;
		p.ppid = 1;
		p.comm = "\xc3(";
		t.procs = &pp;
		t.n_procs = 1;
		m.trees = &tp;
		m.n_trees = 1;
		struct om_img_store_info info = {
		    .pinned = true, .holder = "n1 4012", .fence_token = 7, .fence_node = "n2", .fence_gen = 1};
		om_img_print_json(
		    f, &m, &(struct om_img_show){.path = "p", .now_ns = INT64_MAX, .verified = -1, .store = &info});
		fclose(f);
		ok(buf && strstr(buf, "\"node\":\"n\\\"1\\\\\\u0001\xef\xbf\xbd\"") != NULL, "node escaped: %s",
		   buf ? buf : "(none)");
		ok(buf && strstr(buf, "\"ratio\":3.000,\"n_trees\":1,\"processes\":1,\"files\":0,\"fence\":5") != NULL,
		   "ratio, counts and the manifest's fence");
		ok(buf && strstr(buf, "\"pinned\":true,\"pinned_by\":\"n1 4012\",\"store_fence\":{\"token\":7,\"node\":"
				      "\"n2\",\"generation\":1}") != NULL,
		   "pin and the store's fence");
		free(buf);
	}
	return done_testing();
}
