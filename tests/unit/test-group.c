/* tests/unit/test-group.c — unit tests of miggroup/: splitting a leaf's
 * members into process trees (om_group_split_roots) and the intent codec of
 * an interrupted migration (om_intent_encode/decode). TAP output.
 *
 * The split runs on every group load, twice while the group is frozen: a
 * 200000-member chain and a 200000-member star must split correctly at all
 * (the quadratic-to-cubic walk it replaces never finished them); an alarm
 * turns a hang into a failure instead of a stuck suite.
 */
#include "config.h"
#include "../tap.h"
#include "group.h"
#include "lock.h"
#include "util.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define BIG 200000

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "Bail out! the tree split did not finish within 60 s\n";
	if (write(1, msg, sizeof(msg) - 1) < 0) {
	}
	_exit(1);
}

static pid_t root_of(const struct om_member *m, const pid_t *root, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].pid == pid)
			return root[i];
	return -1;
}

static void small_forest(void)
{
	/* two trees (10 -> 11 -> 12, 10 -> 13; 20 -> 21), a member whose parent
	 * is outside (30, parent 1), a loop (40 <-> 41), a self-parent (50) */
	struct om_member m[] = {{.pid = 12, .ppid = 11}, {.pid = 21, .ppid = 20}, {.pid = 11, .ppid = 10},
				{.pid = 10, .ppid = 5},	 {.pid = 13, .ppid = 10}, {.pid = 20, .ppid = 1},
				{.pid = 30, .ppid = 1},	 {.pid = 40, .ppid = 41}, {.pid = 41, .ppid = 40},
				{.pid = 50, .ppid = 50}};
	size_t n = sizeof(m) / sizeof(m[0]);
	pid_t root[sizeof(m) / sizeof(m[0])];
	om_error_t err = NULL;
	bool sorted = true;

	ok(om_group_split_roots(m, n, root, &err) == 0, "split a small forest");
	for (size_t i = 1; i < n; i++)
		sorted = sorted && m[i - 1].pid < m[i].pid;
	ok(sorted, "members come back sorted by PID");
	ok(root_of(m, root, n, 12) == 10 && root_of(m, root, n, 11) == 10 && root_of(m, root, n, 13) == 10 &&
	       root_of(m, root, n, 10) == 10,
	   "tree of 10: 10, 11, 12, 13");
	ok(root_of(m, root, n, 21) == 20 && root_of(m, root, n, 20) == 20, "tree of 20: 20, 21");
	ok(root_of(m, root, n, 30) == 30, "30 (parent outside the leaf) is its own root");
	ok(root_of(m, root, n, 40) > 0 && root_of(m, root, n, 40) == root_of(m, root, n, 41),
	   "a parent loop ends in one root (%d, %d)", (int)root_of(m, root, n, 40), (int)root_of(m, root, n, 41));
	ok(root_of(m, root, n, 50) == 50, "a self-parent is its own root");
	ok(om_group_split_roots(m, 0, root, &err) == 0, "an empty leaf splits");
}

static void big_shapes(void)
{
	struct om_member *m = calloc(BIG, sizeof(*m));
	pid_t *root = calloc(BIG, sizeof(*root));
	om_error_t err = NULL;
	size_t bad = 0;
	double t0;

	if (m == NULL || root == NULL)
		bail_out("out of memory");
	/* a chain 1000 -> 1001 -> ..., given in reverse order */
	for (size_t i = 0; i < BIG; i++) {
		m[i].pid = (pid_t)(1000 + BIG - 1 - i);
		m[i].ppid = m[i].pid == 1000 ? 1 : m[i].pid - 1;
	}
	t0 = om_now();
	ok(om_group_split_roots(m, BIG, root, &err) == 0, "split a chain of %d members", BIG);
	for (size_t i = 0; i < BIG; i++)
		bad += root[i] != 1000;
	ok(bad == 0, "... every member's root is the head of the chain (%zu wrong)", bad);
	diag("chain of %d: %.3f s", BIG, om_now() - t0);

	/* a star: one root with BIG - 1 children, interleaved PIDs */
	for (size_t i = 0; i < BIG; i++) {
		m[i].pid = (pid_t)(2 + 2 * i);
		m[i].ppid = i == BIG / 2 ? 1 : (pid_t)(2 + 2 * (BIG / 2));
	}
	t0 = om_now();
	ok(om_group_split_roots(m, BIG, root, &err) == 0, "split a star of %d members", BIG);
	bad = 0;
	for (size_t i = 0; i < BIG; i++)
		bad += root[i] != (pid_t)(2 + 2 * (BIG / 2));
	ok(bad == 0, "... every member's root is the centre (%zu wrong)", bad);
	diag("star of %d: %.3f s", BIG, om_now() - t0);
	free(m);
	free(root);
}

static void intent_codec(void)
{
	Om__Intent in = OM__INTENT__INIT, *out = NULL;
	Om__IntentProc p1 = OM__INTENT_PROC__INIT, p2 = OM__INTENT_PROC__INIT;
	Om__IntentProc *pp[] = {&p1, &p2};
	char *leaves[] = {"/sys/fs/cgroup/omtools/g5/t100"};
	uint8_t *buf = NULL;
	size_t len = 0;
	om_error_t err = NULL;

	in.kind = "groups";
	in.id = 5;
	in.omckpt_pid = 1234;
	in.tmp_dir = "/var/lib/omtools/store/groups/5/.tmp-n-1234-0";
	in.id_dir = "/var/lib/omtools/store/groups/5";
	in.n_leaves = 1;
	in.leaves = leaves;
	p1.pid = 100;
	p1.start_time = 777;
	p2.pid = 101;
	p2.start_time = 778;
	in.n_procs = 2;
	in.procs = pp;
	ok(om_intent_encode(&in, &buf, &len, &err) == 0 && len > 16, "encode an intent");
	ok(buf && memcmp(buf, OM_INTENT_MAGIC, 8) == 0, "... it starts with the magic");
	ok(om_intent_decode(buf, len, &out, &err) == 0 && out, "decode it");
	ok(out && out->id == 5 && out->n_procs == 2 && out->procs[1]->start_time == 778 &&
	       strcmp(out->tmp_dir, in.tmp_dir) == 0 && out->n_leaves == 1,
	   "... the same intent comes back");
	om_intent_free(out);
	out = NULL;

	ok(om_intent_decode(buf, len - 1, &out, &err) < 0 && err->status == OM_ECORRUPT && out == NULL,
	   "a truncated intent is refused as corrupt");
	om_error_release(&err);
	buf[3] ^= 1;
	ok(om_intent_decode(buf, len, &out, &err) < 0 && err->status == OM_ECORRUPT, "bad magic is refused");
	om_error_release(&err);
	buf[3] ^= 1;
	buf[8] = 9;
	ok(om_intent_decode(buf, len, &out, &err) < 0 && err->status == OM_ECORRUPT, "another version is refused");
	om_error_release(&err);
	buf[8] = 1;
	buf[12] = 0xff;
	buf[13] = 0xff;
	buf[14] = 0xff;
	buf[15] = 0x7f;
	ok(om_intent_decode(buf, len, &out, &err) < 0 && err->status == OM_ECORRUPT,
	   "a payload length beyond the file is refused");
	om_error_release(&err);
	free(buf);

	in.tmp_dir = "relative/path";
	ok(om_intent_encode(&in, &buf, &len, &err) == 0, "encode an intent with a relative path");
	ok(om_intent_decode(buf, len, &out, &err) < 0 && err->status == OM_ECORRUPT, "... it is refused on decode");
	om_error_release(&err);
	free(buf);
}

int main(void)
{
	signal(SIGALRM, on_alarm);
	alarm(60);
	small_forest();
	big_shapes();
	intent_codec();
	return done_testing();
}
