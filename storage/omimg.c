/* omimg — manage the image store: list, show, verify, rm, gc (man omimg). A
 * thin command over storage/store.h; the printing it shares with omdecode is
 * storage/imgcli.c. */
#include "config.h"
#include "cli.h"
#include "group.h"
#include "imgcli.h"
#include "store.h"
#include "util.h"
#include "workdir.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

static const char *prog = "omimg";

#define GC_MAX_AGE_DEFAULT 86400.0 /* s: another node's leftovers are garbage after a day */

static void usage(void)
{
	printf("Usage: %s list [-g G] [--pids] [--json]\n"
	       "       %s show G[/GEN] | PATH [--json]\n"
	       "       %s verify G[/GEN] | G/all | PATH [--json]\n"
	       "       %s rm G/GEN [--lock-wait S] [--json]\n"
	       "       %s gc [--dry-run] [--max-age S] [--work-dir DIR] [--json]\n"
	       "Manage the checkpoint generations of the store (STORE/groups/<G>/gen-<N>).\n\n"
	       "  list     every group (or -g G) with each complete generation: time (UTC), age,\n"
	       "           node, trees, processes, raw and stored size, ratio, fence, pin\n"
	       "  show     every field of a generation's manifest (GEN defaults to the newest),\n"
	       "           with ratio, age, fence, pin; PATH: a gen-<N> directory or a\n"
	       "           manifest.om (as omdecode)\n"
	       "  verify   re-hash every stored file of a generation (G/all: of each one)\n"
	       "  rm       remove one generation (refused while a restore pins it)\n"
	       "  gc       remove what killed runs left: temporary and half-pruned generations,\n"
	       "           stale pins, generations without a manifest; and the raw images in\n"
	       "           this node's work dir\n\n"
	       "G is a miggroup (with --pids: the PID of omckpt -p); GEN a generation number\n"
	       "(or gen-N). An argument that does not parse as G[/GEN] is a path.\n\n"
	       "  -s, --store DIR     the store (default: $OM_STORE, `store =` in\n"
	       "                      /etc/omtools/omtools.conf, /var/lib/omtools/store)\n"
	       "  -g, --group G       list: only miggroup G (with --pids: PID G)\n"
	       "  -p, --pids          the trees of omckpt -p (STORE/pids/<PID>) instead of groups\n"
	       "  -j, --json          machine-readable output\n"
	       "  -n, --dry-run       gc: only say what would be removed\n"
	       "      --max-age S     gc: another node's leftovers (and generations without a\n"
	       "                      manifest) count as garbage after S seconds (default 86400)\n"
	       "  -w, --work-dir DIR  gc: the work dir to sweep ($OM_WORKDIR, /var/lib/omtools/work)\n"
	       "      --lock-wait S   rm: wait up to S seconds while a writer holds the group\n"
	       "  -h, --help          show this help\n"
	       "  -V, --version       show the version\n\n"
	       "Exit status: 0 ok, 1 failure, 2 usage, 3 unknown group or generation, 4 store\n"
	       "unreadable, not writable or corrupt (verify: a checksum failed), 6 busy (rm: the\n"
	       "generation is pinned, or a writer holds the group), 128+N stopped by signal N.\n",
	       prog, prog, prog, prog, prog);
}

struct opts {
	const char *store;
	const char *kind; /* "groups" or "pids" */
	const char *workdir;
	unsigned long group; /* list -g; 0: all */
	double max_age, lock_wait;
	bool json, dry_run, max_age_set;
};

/* "miggroup 3" / "PID 4012" */
static const char *label(const struct opts *o)
{
	return strcmp(o->kind, "pids") == 0 ? "PID" : "miggroup";
}

static int open_store(const struct opts *o, struct om_store *st, om_error_t *err)
{
	cleanup_free char *path = NULL;

	if (om_store_resolve_path(o->store, &path, err) < 0 || om_store_open(st, path, false, err) < 0)
		return om_error_set_exit(err, OM_EXIT_STORE);
	return 0;
}

static int write_out(om_error_t *err)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return om_make_error(err, errno ? errno : EIO, "write output");
	return 0;
}

/* ---- list ---- */

struct store_fence {
	uint64_t token, gen;
	char node[256];
};

static int fence_of(struct om_store *st, const struct opts *o, unsigned long id, struct store_fence *f, om_error_t *err)
{
	*f = (struct store_fence){0};
	if (om_store_fence_get(st, o->kind, id, &f->token, f->node, sizeof(f->node), &f->gen, err) < 0)
		return om_error_wrap(err, "fence of %s %lu", label(o), id);
	return 0;
}

static void list_text_header(const struct opts *o)
{
	printf("%-8s %5s  %-20s  %-12s %-12s %5s %6s %10s %10s %6s %6s  %s\n",
	       strcmp(o->kind, "pids") == 0 ? "PID" : "GROUP", "GEN", "TIME (UTC)", "AGE", "NODE", "TREES", "PROCS",
	       "RAW", "STORED", "RATIO", "FENCE", "PINNED");
}

static void list_text_row(unsigned long id, const Om__Manifest *m, int64_t now, bool pinned, const char *holder)
{
	char t[64], age[64], raw[32], stored[32], fence[24] = "-";

	om_img_time(m->time_unix_ns, t, sizeof(t));
	om_img_age(om_img_age_seconds(m->time_unix_ns, now), age, sizeof(age));
	om_img_size(m->raw_bytes, raw, sizeof(raw));
	om_img_size(m->stored_bytes, stored, sizeof(stored));
	if (m->has_fence)
		snprintf(fence, sizeof(fence), "%" PRIu64, m->fence);
	printf("%-8lu %5" PRIu64 "  %-20s  %-12s ", id, m->generation, t, age);
	om_img_text_pad(stdout, m->node, 12);
	printf(" %5zu %6zu %10s %10s %6.2f %6s  ", m->n_trees, om_img_processes(m), raw, stored,
	       om_img_ratio(m->raw_bytes, m->stored_bytes), fence);
	if (pinned)
		om_img_text(stdout, holder);
	else
		fputc('-', stdout);
	fputc('\n', stdout);
}

/* One id: its rows (or its JSON object). A generation whose manifest does not
 * load is shown with its error, and the first such error is kept in *bad. */
static int list_id(struct om_store *st, const struct opts *o, unsigned long id, int64_t now, bool *first,
		   om_error_t *bad, om_error_t *err)
{
	cleanup_free uint64_t *gens = NULL;
	struct store_fence f;
	size_t n = 0;

	if (om_store_list(st, o->kind, id, &gens, &n, err) < 0 || fence_of(st, o, id, &f, err) < 0)
		return om_error_set_exit(err, OM_EXIT_STORE);
	if (o->json) {
		printf("%s{\"id\":%lu,\"fence\":", *first ? "" : ",", id);
		om_img_json_fence(stdout, f.token, f.node, f.gen);
		printf(",\"generations\":[");
	} else if (*first)
		list_text_header(o);
	*first = false;
	for (size_t i = 0; i < n; i++) {
		Om__Manifest *m = NULL;
		om_error_t e = NULL;
		char holder[300] = "";
		bool pinned = false;

		if (om_gen_load_manifest(st, o->kind, id, gens[i], &m, &e) < 0 ||
		    om_gen_pinned(st, o->kind, id, gens[i], &pinned, holder, sizeof(holder), &e) < 0) {
			if (o->json) {
				printf("%s{\"generation\":%" PRIu64 ",\"error\":", i ? "," : "", gens[i]);
				om_img_json_string(stdout, e && e->msg ? e->msg : "error");
				printf("}");
			} else {
				printf("%-8lu %5" PRIu64 "  unreadable: ", id, gens[i]);
				om_img_text(stdout, e && e->msg ? e->msg : "error");
				fputc('\n', stdout);
			}
			if (*bad == NULL) {
				om_img_fail_class(&e);
				*bad = e;
			} else
				om_error_release(&e);
			om_manifest_free(m);
			continue;
		}
		if (o->json) {
			printf("%s{", i ? "," : "");
			om_img_json_summary(stdout, m, now);
			printf(",");
			om_img_json_pin(stdout, pinned, holder);
			printf("}");
		} else
			list_text_row(id, m, now, pinned, holder);
		om_manifest_free(m);
	}
	if (o->json)
		printf("]}");
	else if (f.token) {
		printf("%-8lu fence: token %" PRIu64 ", taken over by ", id, f.token);
		om_img_text(stdout, f.node);
		printf(" from generation %" PRIu64 "\n", f.gen);
	}
	return 0;
}

static int cmd_list(const struct opts *o, om_error_t *err)
{
	struct om_store st = {.fd = -1};
	cleanup_free unsigned long *ids = NULL;
	cleanup_om_error om_error_t bad = NULL;
	int64_t now = om_img_now_ns();
	size_t n = 0;
	bool first = true;
	int rc = -1;

	if (open_store(o, &st, err) < 0)
		return -1;
	if (o->group) {
		cleanup_free uint64_t *gens = NULL;
		size_t ng = 0;
		if (om_store_list(&st, o->kind, o->group, &gens, &ng, err) < 0) {
			om_error_set_exit(err, OM_EXIT_STORE);
			goto out;
		}
		if (ng == 0) {
			om_make_error(err, OM_ENOTFOUND, "no generation of %s %lu in %s", label(o), o->group, st.path);
			goto out;
		}
		ids = malloc(sizeof(*ids));
		if (ids == NULL) {
			om_make_error(err, ENOMEM, "list");
			goto out;
		}
		ids[0] = o->group;
		n = 1;
	} else if (om_store_list_ids(&st, o->kind, &ids, &n, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		goto out;
	}
	if (o->json) {
		printf("{\"store\":");
		om_img_json_string(stdout, st.path);
		printf(",\"kind\":\"%s\",\"%s\":[", o->kind, o->kind);
	}
	for (size_t i = 0; i < n; i++)
		if (list_id(&st, o, ids[i], now, &first, &bad, err) < 0)
			goto out;
	if (o->json)
		printf("]}\n");
	else if (n == 0)
		fprintf(stderr, "%s: no generation in %s/%s\n", prog, st.path, o->kind);
	if (write_out(err) < 0)
		goto out;
	if (bad) { /* every row was printed; the exit status says one was unreadable */
		*err = om_steal_ptr(bad);
		goto out;
	}
	rc = 0;
out:
	om_store_close(&st);
	return rc;
}

/* ---- show ---- */

/* A reference that parses, else a path: what does not look like a reference
 * is a path (reading it says whether it exists); what looks like one but does
 * not parse is a usage error unless a file of that name exists. */
static int classify(const char *arg, bool allow_all, struct om_img_ref *ref, bool *is_path, om_error_t *err)
{
	struct stat sb;
	om_error_t e = NULL;

	*is_path = false;
	if (!om_img_ref_like(arg)) {
		*is_path = true;
		return 0;
	}
	if (om_img_ref_parse(arg, OM_GROUP_MAX, allow_all, ref, &e) == 0)
		return 0;
	if (stat(arg, &sb) == 0) {
		om_error_release(&e);
		*is_path = true;
		return 0;
	}
	*err = e;
	return -1;
}

/* Load generation ref (gen 0: the newest) with what the store knows of it. */
static int load_ref(struct om_store *st, const struct opts *o, const struct om_img_ref *ref, Om__Manifest **m,
		    struct om_img_store_info *info, om_error_t *err)
{
	struct store_fence f;

	*info = (struct om_img_store_info){0};
	if (om_gen_load_manifest(st, o->kind, ref->id, ref->gen, m, err) < 0)
		return om_img_fail_class(err);
	if (om_gen_pinned(st, o->kind, ref->id, (*m)->generation, &info->pinned, info->holder, sizeof(info->holder),
			  err) < 0 ||
	    fence_of(st, o, ref->id, &f, err) < 0) {
		om_manifest_free(*m);
		*m = NULL;
		return om_error_set_exit(err, OM_EXIT_STORE);
	}
	info->fence_token = f.token;
	info->fence_gen = f.gen;
	snprintf(info->fence_node, sizeof(info->fence_node), "%s", f.node);
	return 0;
}

static int cmd_show(const struct opts *o, const char *arg, om_error_t *err)
{
	struct om_img_ref ref;
	struct om_img_store_info info;
	struct om_store st = {.fd = -1};
	cleanup_free char *manifest_path = NULL;
	cleanup_free char *gen_dir = NULL;
	Om__Manifest *m = NULL;
	bool is_path;
	int rc = -1;

	if (classify(arg, false, &ref, &is_path, err) < 0)
		return -1;
	if (is_path) {
		if (om_img_path_load(arg, &manifest_path, &gen_dir, &m, err) < 0)
			return om_img_fail_class(err);
		om_img_print(stdout, m,
			     &(struct om_img_show){.path = manifest_path, .now_ns = om_img_now_ns(), .verified = -1},
			     o->json);
		om_manifest_free(m);
		return write_out(err);
	}
	if (open_store(o, &st, err) < 0)
		return -1;
	if (load_ref(&st, o, &ref, &m, &info, err) < 0)
		goto out;
	manifest_path =
	    om_strdup_printf("%s/%s/%lu/gen-%" PRIu64 "/%s", st.path, o->kind, ref.id, m->generation, OM_MANIFEST_NAME);
	if (manifest_path == NULL) {
		om_make_error(err, ENOMEM, "show");
		goto out;
	}
	om_img_print(
	    stdout, m,
	    &(struct om_img_show){.path = manifest_path, .now_ns = om_img_now_ns(), .verified = -1, .store = &info},
	    o->json);
	rc = write_out(err);
out:
	om_manifest_free(m);
	om_store_close(&st);
	return rc;
}

/* ---- verify ---- */

/* One generation's verdict (text line or JSON member); keeps the first error in *first_err. */
static void verdict(const struct opts *o, const char *what, uint64_t gen, const Om__Manifest *m, om_error_t *e,
		    bool comma, om_error_t *first_err)
{
	char stored[32];

	if (o->json) {
		printf("%s{\"generation\":%" PRIu64 ",\"ok\":%s", comma ? "," : "", gen, *e ? "false" : "true");
		if (*e) {
			printf(",\"error\":");
			om_img_json_string(stdout, (*e)->msg ? (*e)->msg : "error");
		} else
			printf(",\"files\":%zu,\"stored_bytes\":%" PRIu64, om_img_files(m), m->stored_bytes);
		printf("}");
	} else if (*e) {
		printf("%s generation %" PRIu64 ": FAILED: ", what, gen);
		om_img_text(stdout, (*e)->msg ? (*e)->msg : "error");
		fputc('\n', stdout);
	} else {
		om_img_size(m->stored_bytes, stored, sizeof(stored));
		printf("%s generation %" PRIu64 ": ok, %zu files (%s) match their checksums\n", what, gen,
		       om_img_files(m), stored);
	}
	if (*e && *first_err == NULL) {
		om_img_fail_class(e);
		*first_err = om_steal_ptr(*e);
	}
	om_error_release(e);
}

static int verify_path(const struct opts *o, const char *arg, om_error_t *err)
{
	cleanup_free char *manifest_path = NULL;
	cleanup_free char *gen_dir = NULL;
	cleanup_om_error om_error_t first = NULL;
	Om__Manifest *m = NULL;
	om_error_t e = NULL;

	if (om_img_path_load(arg, &manifest_path, &gen_dir, &m, err) < 0)
		return om_img_fail_class(err);
	om_gen_dir_verify(gen_dir, m, &e);
	if (o->json) {
		printf("{\"manifest\":");
		om_img_json_string(stdout, manifest_path);
		printf(",\"generations\":[");
	}
	verdict(o, gen_dir, m->generation, m, &e, false, &first);
	if (o->json)
		printf("],\"ok\":%s}\n", first ? "false" : "true");
	om_manifest_free(m);
	if (write_out(err) < 0)
		return -1;
	if (first) {
		*err = om_steal_ptr(first);
		return -1;
	}
	return 0;
}

static int cmd_verify(const struct opts *o, const char *arg, om_error_t *err)
{
	struct om_img_ref ref;
	struct om_store st = {.fd = -1};
	cleanup_free uint64_t *gens = NULL;
	cleanup_om_error om_error_t first = NULL;
	char what[64];
	uint64_t one;
	size_t n = 0;
	bool is_path;
	int rc = -1;

	if (classify(arg, true, &ref, &is_path, err) < 0)
		return -1;
	if (is_path)
		return verify_path(o, arg, err);
	if (open_store(o, &st, err) < 0)
		return -1;
	if (ref.all || ref.gen == 0) {
		if (om_store_list(&st, o->kind, ref.id, &gens, &n, err) < 0) {
			om_error_set_exit(err, OM_EXIT_STORE);
			goto out;
		}
		if (n == 0) {
			om_make_error(err, OM_ENOTFOUND, "no generation of %s %lu in %s", label(o), ref.id, st.path);
			goto out;
		}
		if (!ref.all) { /* the newest */
			gens[0] = gens[n - 1];
			n = 1;
		}
	} else {
		one = ref.gen;
		gens = malloc(sizeof(*gens));
		if (gens == NULL) {
			om_make_error(err, ENOMEM, "verify");
			goto out;
		}
		gens[0] = one;
		n = 1;
	}
	snprintf(what, sizeof(what), "%s %lu", label(o), ref.id);
	if (o->json) {
		printf("{\"store\":");
		om_img_json_string(stdout, st.path);
		printf(",\"kind\":\"%s\",\"id\":%lu,\"generations\":[", o->kind, ref.id);
	}
	for (size_t i = 0; i < n; i++) {
		Om__Manifest *m = NULL;
		om_error_t e = NULL;

		if (om_gen_load_manifest(&st, o->kind, ref.id, gens[i], &m, &e) == 0)
			om_gen_verify(&st, o->kind, ref.id, m, &e);
		verdict(o, what, gens[i], m, &e, i > 0, &first);
		om_manifest_free(m);
	}
	if (o->json)
		printf("],\"ok\":%s}\n", first ? "false" : "true");
	if (write_out(err) < 0)
		goto out;
	if (first) {
		*err = om_steal_ptr(first);
		goto out;
	}
	rc = 0;
out:
	om_store_close(&st);
	return rc;
}

/* ---- rm ---- */

struct rm_args {
	const struct opts *o;
	struct om_img_ref ref;
	uint64_t stored; /* bytes the manifest says (0: unknown) */
};

static int rm_run(void *arg, int cancel_fd, om_error_t *err)
{
	struct rm_args *a = arg;
	struct om_store st = {.fd = -1};
	Om__Manifest *m = NULL;
	om_error_t e = NULL;
	int rc;

	if (open_store(a->o, &st, err) < 0)
		return -1;
	st.cancel_fd = cancel_fd;
	/* the size it frees, when its manifest is readable (a corrupt generation is removed all the same) */
	if (om_gen_load_manifest(&st, a->o->kind, a->ref.id, a->ref.gen, &m, &e) == 0)
		a->stored = m->stored_bytes;
	om_error_release(&e);
	om_manifest_free(m);
	rc = om_gen_remove(&st, a->o->kind, a->ref.id, a->ref.gen, a->o->lock_wait, err);
	if (rc < 0 && (*err)->status != EBUSY && (*err)->status != EWOULDBLOCK && (*err)->status != OM_ENOTFOUND &&
	    (*err)->status != ECANCELED)
		om_error_set_exit(err, OM_EXIT_STORE); /* the store refused the removal */
	om_store_close(&st);
	return rc;
}

static int cmd_rm(const struct opts *o, const char *arg)
{
	struct rm_args a = {.o = o};
	om_error_t err = NULL;
	char stored[32];
	int rc;

	if (om_img_ref_parse(arg, OM_GROUP_MAX, false, &a.ref, &err) < 0)
		return om_cli_fail(prog, &err);
	if (a.ref.gen == 0)
		return om_cli_usage_error(prog, "rm needs the generation: G/GEN");
	rc = om_cli_run_held(prog, rm_run, &a);
	if (rc != OM_EXIT_OK)
		return rc;
	if (o->json)
		printf("{\"removed\":{\"kind\":\"%s\",\"id\":%lu,\"generation\":%" PRIu64 ",\"stored_bytes\":%" PRIu64
		       "}}\n",
		       o->kind, a.ref.id, a.ref.gen, a.stored);
	else {
		om_img_size(a.stored, stored, sizeof(stored));
		printf("%s %lu: generation %" PRIu64 " removed (%s)\n", label(o), a.ref.id, a.ref.gen, stored);
	}
	return write_out(&err) < 0 ? om_cli_fail(prog, &err) : OM_EXIT_OK;
}

/* ---- gc ---- */

static int cmd_gc(const struct opts *o, om_error_t *err)
{
	struct om_store st = {.fd = -1};
	struct om_gc_item *items = NULL;
	const char *workdir = om_workdir(o->workdir);
	double max_age = o->max_age_set ? o->max_age : GC_MAX_AGE_DEFAULT;
	uint64_t total = 0;
	char size[32];
	size_t n = 0;

	if (open_store(o, &st, err) < 0)
		return -1;
	if (om_store_gc(&st, max_age, o->dry_run, &items, &n, err) < 0) {
		om_error_set_exit(err, OM_EXIT_STORE);
		om_store_close(&st);
		return -1;
	}
	/* the raw images an omckpt/omrestore killed mid-way left on this node (no dry run: it only says it) */
	if (!o->dry_run)
		om_workdir_sweep(workdir);
	for (size_t i = 0; i < n; i++)
		total += items[i].bytes;
	if (o->json) {
		printf("{\"store\":");
		om_img_json_string(stdout, st.path);
		printf(",\"dry_run\":%s,\"max_age_seconds\":", o->dry_run ? "true" : "false");
		om_img_json_double(stdout, max_age);
		printf(",\"items\":[");
		for (size_t i = 0; i < n; i++) {
			printf("%s{\"path\":", i ? "," : "");
			om_img_json_string(stdout, items[i].path);
			printf(",\"why\":");
			om_img_json_string(stdout, items[i].why);
			printf(",\"bytes\":%" PRIu64 "}", items[i].bytes);
		}
		printf("],\"bytes\":%" PRIu64 ",\"work_dir\":{\"path\":", total);
		om_img_json_string(stdout, workdir);
		printf(",\"swept\":%s}}\n", o->dry_run ? "false" : "true");
	} else {
		for (size_t i = 0; i < n; i++) {
			om_img_size(items[i].bytes, size, sizeof(size));
			printf("%s %s/", o->dry_run ? "would remove" : "removed", st.path);
			om_img_text(stdout, items[i].path);
			printf(" (%s): ", size);
			om_img_text(stdout, items[i].why);
			fputc('\n', stdout);
		}
		om_img_size(total, size, sizeof(size));
		printf("%s: %zu item%s, %s%s\n", st.path, n, n == 1 ? "" : "s", size,
		       o->dry_run ? " would be freed" : " freed");
		printf("work dir %s: %s\n", workdir,
		       o->dry_run ? "its leftovers would be swept (raw images of dead omckpt/omrestore runs)"
				  : "swept (raw images of dead omckpt/omrestore runs)");
	}
	om_gc_items_free(items, n);
	om_store_close(&st);
	return write_out(err);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	enum { OPT_MAX_AGE = 256, OPT_LOCK_WAIT };
	static const struct option opts[] = {{"store", required_argument, NULL, 's'},
					     {"group", required_argument, NULL, 'g'},
					     {"pids", no_argument, NULL, 'p'},
					     {"json", no_argument, NULL, 'j'},
					     {"dry-run", no_argument, NULL, 'n'},
					     {"max-age", required_argument, NULL, OPT_MAX_AGE},
					     {"work-dir", required_argument, NULL, 'w'},
					     {"lock-wait", required_argument, NULL, OPT_LOCK_WAIT},
					     OM_CLI_COMMON_OPTIONS,
					     {NULL, 0, NULL, 0}};
	cleanup_om_error om_error_t err = NULL;
	struct opts o = {.kind = "groups"};
	bool lock_wait_set = false, workdir_set = false;
	unsigned long v;
	const char *cmd;
	int c, rc, nargs;

	while ((c = getopt_long(argc, argv, "s:g:pjnw:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.store = optarg;
			break;
		case 'g':
			if (om_group_parse_id(optarg, false, &o.group, &err) < 0)
				return om_cli_fail(prog, &err);
			break;
		case 'p':
			o.kind = "pids";
			break;
		case 'j':
			o.json = true;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'w':
			o.workdir = optarg;
			workdir_set = true;
			break;
		case OPT_MAX_AGE:
			if (om_parse_uint(optarg, 10UL * 365 * 86400, &v) < 0)
				return om_cli_usage_error(prog, "--max-age must be seconds (0 to 10 years)");
			o.max_age = (double)v;
			o.max_age_set = true;
			break;
		case OPT_LOCK_WAIT:
			if (om_parse_uint(optarg, 86400, &v) < 0)
				return om_cli_usage_error(prog, "--lock-wait must be seconds");
			o.lock_wait = (double)v;
			lock_wait_set = true;
			break;
		default:
			return om_cli_common_option(c, prog, usage);
		}
	}
	if (optind >= argc)
		return om_cli_usage_error(prog, "missing command: list, show, verify, rm or gc");
	cmd = argv[optind];
	nargs = argc - optind - 1;
	if (o.group && strcmp(cmd, "list") != 0)
		return om_cli_usage_error(prog, "-g G goes with list (the others take G[/GEN])");
	if ((o.dry_run || o.max_age_set || workdir_set) && strcmp(cmd, "gc") != 0)
		return om_cli_usage_error(prog, "--dry-run, --max-age and --work-dir go with gc");
	if (lock_wait_set && strcmp(cmd, "rm") != 0)
		return om_cli_usage_error(prog, "--lock-wait goes with rm");

	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "gc") == 0) {
		if (nargs != 0)
			return om_cli_usage_error(prog, strcmp(cmd, "list") == 0 ? "list takes no argument (-g G)"
										 : "gc takes no argument");
		rc = cmd[0] == 'l' ? cmd_list(&o, &err) : cmd_gc(&o, &err);
	} else if (strcmp(cmd, "show") == 0 || strcmp(cmd, "verify") == 0) {
		if (nargs != 1)
			return om_cli_usage_error(prog, cmd[0] == 's' ? "show takes one G[/GEN] or PATH"
								      : "verify takes one G[/GEN], G/all or PATH");
		rc = cmd[0] == 's' ? cmd_show(&o, argv[optind + 1], &err) : cmd_verify(&o, argv[optind + 1], &err);
	} else if (strcmp(cmd, "rm") == 0) {
		if (nargs != 1)
			return om_cli_usage_error(prog, "rm takes one G/GEN");
		return cmd_rm(&o, argv[optind + 1]);
	} else
		return om_cli_usage_error(prog, "unknown command: list, show, verify, rm or gc");
	return rc < 0 ? om_cli_fail(prog, &err) : OM_EXIT_OK;
}
