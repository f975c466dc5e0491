/* omdecode — print (or verify) an omtools manifest. */
#include "config.h"
#include "store.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *prog = "omdecode";

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [--json] FILE\n"
		"       %s --verify [--json] GEN_DIR\n"
		"\n"
		"Print every field of an omtools manifest. FILE is a manifest.om or a\n"
		"generation directory (STORE/groups/<G>/gen-<N>) holding one.\n"
		"\n"
		"  -j, --json     print JSON instead of text\n"
		"  -c, --verify   also re-hash every stored file of the generation\n"
		"  -h, --help     show this help\n"
		"  -V, --version  show the version\n"
		"\n"
		"Exit status: 0 ok, 2 usage, 3 not found, 4 corrupt or unreadable.\n",
		prog, prog);
}

static void human_size(uint64_t v, char *buf, size_t len)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, units[u]);
}

static void wall_time(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* Printable rendering of an untrusted string for the text output; returns
 * the number of characters printed. */
static int print_text(FILE *out, const char *s)
{
	int n = 0;

	if (s == NULL) {
		fputs("-", out);
		return 1;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\x%02x", c);
			n += 4;
		} else {
			fputc(c, out);
			n++;
		}
	}
	return n;
}

/* print_text padded with spaces to width columns. */
static void print_text_pad(FILE *out, const char *s, int width)
{
	int n = print_text(out, s);
	if (n < width)
		fprintf(out, "%*s", width - n, "");
}

static void print_pids(FILE *out, const int32_t *v, size_t n)
{
	if (n == 0)
		fputc('-', out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%" PRId32, i ? "," : "", v[i]);
}

/* shmig's objects: what the group shared, as saved at the freeze. */
static void print_shm_text(FILE *out, const Om__ShmSet *set)
{
	fputs("\nshared memory (shmig):\n  directory:       ", out);
	print_text(out, set->dir);
	fputc('\n', out);
	for (size_t i = 0; i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		fprintf(out,
			"  sysv shm:        id %" PRId32 " key 0x%08" PRIx32 " size %" PRIu64
			" mode %04o uid %u gid %u%s file ",
			g->id, (uint32_t)g->key, g->size, (unsigned)(g->mode & 0777), g->uid, g->gid,
			g->removed ? " removed" : "");
		print_text(out, g->file);
		fputs(" attached by ", out);
		print_pids(out, g->attached_by, g->n_attached_by);
		fputc('\n', out);
	}
	for (size_t i = 0; i < set->n_sems; i++) {
		const Om__SemSet *e = set->sems[i];
		fprintf(out, "  sysv sem:        id %" PRId32 " key 0x%08" PRIx32 " mode %04o uid %u gid %u values ",
			e->id, (uint32_t)e->key, (unsigned)(e->mode & 0777), e->uid, e->gid);
		for (size_t k = 0; k < e->n_values && k < 16; k++)
			fprintf(out, "%s%" PRIu32, k ? "," : "", e->values[k]);
		fputs(e->n_values > 16 ? ",... used by " : " used by ", out);
		print_pids(out, e->used_by, e->n_used_by);
		fputc('\n', out);
	}
	for (size_t i = 0; i < set->n_queues; i++) {
		const Om__MsgQueue *q = set->queues[i];
		size_t bytes = 0;
		for (size_t k = 0; k < q->n_msgs; k++)
			bytes += q->msgs[k]->text.len;
		fprintf(out,
			"  sysv msg:        id %" PRId32 " key 0x%08" PRIx32
			" mode %04o uid %u gid %u messages %zu (%zu bytes) used by ",
			q->id, (uint32_t)q->key, (unsigned)(q->mode & 0777), q->uid, q->gid, q->n_msgs, bytes);
		print_pids(out, q->used_by, q->n_used_by);
		fputc('\n', out);
	}
	for (size_t i = 0; i < set->n_posix; i++) {
		const Om__PosixShm *p = set->posix[i];
		fputs("  /dev/shm:        ", out);
		print_text(out, p->name);
		fprintf(out, " size %" PRIu64 " mode %04o uid %u gid %u file ", p->size, (unsigned)(p->mode & 07777),
			p->uid, p->gid);
		print_text(out, p->file);
		for (size_t k = 0; k < p->n_restore_links; k++) {
			fputs(k ? ", " : " mapped as ", out);
			print_text(out, p->restore_links[k]);
		}
		fputs(" used by ", out);
		print_pids(out, p->used_by, p->n_used_by);
		fputc('\n', out);
	}
	fprintf(out, "  files:           %zu\n", set->n_files);
	for (size_t j = 0; j < set->n_files; j++) {
		const Om__FileEntry *f = set->files[j];
		char hex[65];
		om_hex(f->sha256.data, f->sha256.len, hex);
		fputs("    ", out);
		print_text_pad(out, f->name, 28);
		fprintf(out, " %12" PRIu64 " %12" PRIu64 "  %s\n", f->size, f->stored_size, hex);
	}
}

static void print_human(FILE *out, const char *path, const Om__Manifest *m)
{
	char a[64], b[64], hex[65];

	fprintf(out, "manifest:          %s\n", path);
	fprintf(out, "format version:    %u\n", OM_MANIFEST_VERSION);
	fprintf(out, "group:             %" PRIu32 "%s\n", m->group, m->group == 0 ? " (single tree by PID)" : "");
	if (m->has_single_pid)
		fprintf(out, "single pid:        %" PRId32 "\n", m->single_pid);
	if (m->has_from_group)
		fprintf(out, "from group:        %" PRIu32 " (rejoined on restore)\n", m->from_group);
	fprintf(out, "generation:        %" PRIu64 "\n", m->generation);
	fputs("node:              ", out);
	print_text(out, m->node);
	wall_time(m->time_unix_ns, a, sizeof(a));
	fprintf(out, "\ntime:              %s (%" PRId64 " ns since the epoch)\n", a, m->time_unix_ns);
	fputs("kernel:            ", out);
	print_text(out, m->kernel);
	fputs("\ncriu version:      ", out);
	print_text(out, m->criu_version);
	fputs("\nomtools version:   ", out);
	print_text(out, m->omtools_version);
	fputc('\n', out);
	if (m->cgroup_backend) {
		fputs("cgroup backend:    ", out);
		print_text(out, m->cgroup_backend);
		fputc('\n', out);
	}
	if (m->has_leave_running)
		fprintf(out, "leave running:     %s\n", m->leave_running ? "yes" : "no");
	if (m->has_tcp_established)
		fprintf(out, "tcp established:   %s (%zu connection%s locked)\n", m->tcp_established ? "yes" : "no",
			m->n_tcp_conns, m->n_tcp_conns == 1 ? "" : "s");
	for (size_t i = 0; i < m->n_tcp_conns; i++) {
		char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN];
		const Om__TcpConn *c = m->tcp_conns[i];
		int af = c->local_addr.len == 16 ? AF_INET6 : AF_INET;
		if (!inet_ntop(af, c->local_addr.data, la, sizeof(la)) ||
		    !inet_ntop(af, c->remote_addr.data, ra, sizeof(ra)))
			continue;
		fprintf(out, "  tcp connection:  %s%s%s:%" PRIu32 " <-> %s%s%s:%" PRIu32 "\n",
			af == AF_INET6 ? "[" : "", la, af == AF_INET6 ? "]" : "", c->local_port,
			af == AF_INET6 ? "[" : "", ra, af == AF_INET6 ? "]" : "", c->remote_port);
	}
	if (m->has_zstd_level)
		fprintf(out, "zstd level:        %" PRId32 "\n", m->zstd_level);
	if (m->has_freeze_seconds)
		fprintf(out, "freeze seconds:    %.6f\n", m->freeze_seconds);
	if (m->has_total_seconds)
		fprintf(out, "total seconds:     %.6f\n", m->total_seconds);
	human_size(m->raw_bytes, a, sizeof(a));
	human_size(m->stored_bytes, b, sizeof(b));
	fprintf(out, "raw bytes:         %" PRIu64 " (%s)\n", m->raw_bytes, a);
	fprintf(out, "stored bytes:      %" PRIu64 " (%s)", m->stored_bytes, b);
	if (m->stored_bytes > 0)
		fprintf(out, ", ratio %.2f", (double)m->raw_bytes / (double)m->stored_bytes);
	fprintf(out, "\ntrees:             %zu\n", m->n_trees);

	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		fprintf(out, "\ntree %zu:\n  root pid:        %" PRId32 "\n  directory:       ", i + 1, t->root_pid);
		print_text(out, t->dir);
		fputc('\n', out);
		if (t->has_dump_seconds)
			fprintf(out, "  dump seconds:    %.6f\n", t->dump_seconds);
		if (t->has_shell_job)
			fprintf(out, "  shell job:       %s\n", t->shell_job ? "yes" : "no");
		if (t->has_own_pidns)
			fprintf(out, "  own pid ns:      %s\n", t->own_pidns ? "yes (new PIDs on restore)" : "no");
		fprintf(out, "  processes:       %zu\n", t->n_procs);
		if (t->n_procs)
			fprintf(out, "    %8s %8s  %-24s %-16s %s\n", "PID", "PPID", "TIDS", "COMM", "CMDLINE");
		for (size_t j = 0; j < t->n_procs; j++) {
			const Om__ProcEntry *p = t->procs[j];
			char tids[25] = "-";
			size_t used = 0;

			for (size_t k = 0; k < p->n_tids && used < sizeof(tids) - 1; k++) {
				int w =
				    snprintf(tids + used, sizeof(tids) - used, "%s%" PRId32, k ? "," : "", p->tids[k]);
				if (w < 0 || (size_t)w >= sizeof(tids) - used) {
					strcpy(tids + sizeof(tids) - 4, "...");
					break;
				}
				used += (size_t)w;
			}
			fprintf(out, "    %8" PRId32 " %8" PRId32 "  %-24s ", p->pid, p->ppid, tids);
			print_text_pad(out, p->comm, 16);
			fputc(' ', out);
			print_text(out, p->cmdline);
			fputc('\n', out);
		}
		fprintf(out, "  files:           %zu\n", t->n_files);
		if (t->n_files)
			fprintf(out, "    %-28s %12s %12s %6s  %s\n", "NAME", "SIZE", "STORED", "MODE",
				"SHA256 (stored)");
		for (size_t j = 0; j < t->n_files; j++) {
			const Om__FileEntry *f = t->files[j];
			char mode[8] = "-";

			if (f->has_mode)
				snprintf(mode, sizeof(mode), "%04o", (unsigned)(f->mode & 07777));
			om_hex(f->sha256.data, f->sha256.len, hex);
			fputs("    ", out);
			print_text_pad(out, f->name, 28);
			fprintf(out, " %12" PRIu64 " %12" PRIu64 " %6s  %s\n", f->size, f->stored_size, mode, hex);
		}
	}
	if (m->shm)
		print_shm_text(out, m->shm);
}

static void json_double(FILE *out, double v)
{
	if (isfinite(v))
		fprintf(out, "%.9g", v);
	else
		fputs("null", out);
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A JSON string of untrusted bytes: invalid UTF-8 becomes U+FFFD, so the
 * output always parses. */
static void json_string(FILE *out, const char *s)
{
	cleanup_free char *clean = NULL;
	size_t len = strlen(s), o = 0;

	clean = malloc(3 * len + 1);
	if (clean == NULL) {
		om_json_string(out, "");
		return;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_len(p);
		if (n == 0) {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		} else {
			memcpy(clean + o, p, n);
			o += n;
			p += n;
		}
	}
	clean[o] = '\0';
	om_json_string(out, clean);
}

static void json_opt_string(FILE *out, const char *s)
{
	if (s)
		json_string(out, s);
	else
		fputs("null", out);
}

static void json_pids(FILE *out, const int32_t *v, size_t n)
{
	fputc('[', out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%" PRId32, i ? "," : "", v[i]);
	fputc(']', out);
}

static void print_shm_json(FILE *out, const Om__ShmSet *set)
{
	char hex[65];

	fputs(",\"shm\":{\"dir\":", out);
	json_string(out, set->dir);
	fputs(",\"sysv_shm\":[", out);
	for (size_t i = 0; i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		fprintf(out,
			"%s{\"id\":%" PRId32 ",\"key\":%" PRId32 ",\"size\":%" PRIu64 ",\"mode\":%" PRIu32
			",\"uid\":%" PRIu32 ",\"gid\":%" PRIu32 ",\"removed\":%s,\"file\":",
			i ? "," : "", g->id, g->key, g->size, g->mode, g->uid, g->gid, g->removed ? "true" : "false");
		json_string(out, g->file);
		fputs(",\"attached_by\":", out);
		json_pids(out, g->attached_by, g->n_attached_by);
		fputc('}', out);
	}
	fputs("],\"sysv_sem\":[", out);
	for (size_t i = 0; i < set->n_sems; i++) {
		const Om__SemSet *e = set->sems[i];
		fprintf(out, "%s{\"id\":%" PRId32 ",\"key\":%" PRId32 ",\"mode\":%" PRIu32 ",\"values\":[",
			i ? "," : "", e->id, e->key, e->mode);
		for (size_t k = 0; k < e->n_values; k++)
			fprintf(out, "%s%" PRIu32, k ? "," : "", e->values[k]);
		fputs("],\"used_by\":", out);
		json_pids(out, e->used_by, e->n_used_by);
		fputc('}', out);
	}
	fputs("],\"sysv_msg\":[", out);
	for (size_t i = 0; i < set->n_queues; i++) {
		const Om__MsgQueue *q = set->queues[i];
		fprintf(out,
			"%s{\"id\":%" PRId32 ",\"key\":%" PRId32 ",\"mode\":%" PRIu32 ",\"messages\":%zu,\"used_by\":",
			i ? "," : "", q->id, q->key, q->mode, q->n_msgs);
		json_pids(out, q->used_by, q->n_used_by);
		fputc('}', out);
	}
	fputs("],\"posix\":[", out);
	for (size_t i = 0; i < set->n_posix; i++) {
		const Om__PosixShm *p = set->posix[i];
		fprintf(out, "%s{\"name\":", i ? "," : "");
		json_string(out, p->name);
		fprintf(out, ",\"size\":%" PRIu64 ",\"mode\":%" PRIu32 ",\"file\":", p->size, p->mode);
		json_string(out, p->file);
		fputs(",\"used_by\":", out);
		json_pids(out, p->used_by, p->n_used_by);
		fputc('}', out);
	}
	fputs("],\"files\":[", out);
	for (size_t j = 0; j < set->n_files; j++) {
		const Om__FileEntry *f = set->files[j];
		om_hex(f->sha256.data, f->sha256.len, hex);
		fprintf(out, "%s{\"name\":", j ? "," : "");
		json_string(out, f->name);
		fprintf(out, ",\"size\":%" PRIu64 ",\"stored_size\":%" PRIu64 ",\"sha256\":\"%s\"}", f->size,
			f->stored_size, hex);
	}
	fputs("]}", out);
}

static void print_json(FILE *out, const char *path, const Om__Manifest *m, int verified)
{
	char hex[65];

	fputs("{\"manifest\":", out);
	json_string(out, path);
	fprintf(out, ",\"format_version\":%u,\"group\":%" PRIu32 ",\"generation\":%" PRIu64 ",\"node\":",
		OM_MANIFEST_VERSION, m->group, m->generation);
	json_string(out, m->node);
	fprintf(out, ",\"time_unix_ns\":%" PRId64 ",\"kernel\":", m->time_unix_ns);
	json_string(out, m->kernel);
	fputs(",\"criu_version\":", out);
	json_string(out, m->criu_version);
	fputs(",\"omtools_version\":", out);
	json_string(out, m->omtools_version);
	fprintf(out, ",\"raw_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64, m->raw_bytes, m->stored_bytes);
	fputs(",\"leave_running\":", out);
	fputs(m->has_leave_running ? (m->leave_running ? "true" : "false") : "null", out);
	fputs(",\"zstd_level\":", out);
	if (m->has_zstd_level)
		fprintf(out, "%" PRId32, m->zstd_level);
	else
		fputs("null", out);
	fputs(",\"freeze_seconds\":", out);
	if (m->has_freeze_seconds)
		json_double(out, m->freeze_seconds);
	else
		fputs("null", out);
	fputs(",\"total_seconds\":", out);
	if (m->has_total_seconds)
		json_double(out, m->total_seconds);
	else
		fputs("null", out);
	fputs(",\"cgroup_backend\":", out);
	json_opt_string(out, m->cgroup_backend);
	fputs(",\"single_pid\":", out);
	if (m->has_single_pid)
		fprintf(out, "%" PRId32, m->single_pid);
	else
		fputs("null", out);
	fputs(",\"from_group\":", out);
	if (m->has_from_group)
		fprintf(out, "%" PRIu32, m->from_group);
	else
		fputs("null", out);
	fputs(",\"tcp_established\":", out);
	fputs(m->has_tcp_established ? (m->tcp_established ? "true" : "false") : "null", out);
	fprintf(out, ",\"tcp_connections\":%zu", m->n_tcp_conns);
	fputs(",\"trees\":[", out);
	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		fprintf(out, "%s{\"root_pid\":%" PRId32 ",\"dir\":", i ? "," : "", t->root_pid);
		json_string(out, t->dir);
		fputs(",\"dump_seconds\":", out);
		if (t->has_dump_seconds)
			json_double(out, t->dump_seconds);
		else
			fputs("null", out);
		fputs(",\"shell_job\":", out);
		fputs(!t->has_shell_job ? "null" : t->shell_job ? "true" : "false", out);
		fputs(",\"own_pidns\":", out);
		fputs(!t->has_own_pidns ? "null" : t->own_pidns ? "true" : "false", out);
		fputs(",\"procs\":[", out);
		for (size_t j = 0; j < t->n_procs; j++) {
			const Om__ProcEntry *p = t->procs[j];
			fprintf(out, "%s{\"pid\":%" PRId32 ",\"ppid\":%" PRId32 ",\"tids\":[", j ? "," : "", p->pid,
				p->ppid);
			for (size_t k = 0; k < p->n_tids; k++)
				fprintf(out, "%s%" PRId32, k ? "," : "", p->tids[k]);
			fputs("],\"comm\":", out);
			json_opt_string(out, p->comm);
			fputs(",\"cmdline\":", out);
			json_opt_string(out, p->cmdline);
			fputc('}', out);
		}
		fputs("],\"files\":[", out);
		for (size_t j = 0; j < t->n_files; j++) {
			const Om__FileEntry *f = t->files[j];
			om_hex(f->sha256.data, f->sha256.len, hex);
			fprintf(out, "%s{\"name\":", j ? "," : "");
			json_string(out, f->name);
			fprintf(out, ",\"size\":%" PRIu64 ",\"stored_size\":%" PRIu64 ",\"sha256\":\"%s\",\"mode\":",
				f->size, f->stored_size, hex);
			if (f->has_mode)
				fprintf(out, "%" PRIu32, f->mode);
			else
				fputs("null", out);
			fputc('}', out);
		}
		fputs("]}", out);
	}
	fputc(']', out);
	if (m->shm)
		print_shm_json(out, m->shm);
	if (verified >= 0)
		fprintf(out, ",\"verified\":%s", verified ? "true" : "false");
	fputs("}\n", out);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"verify", no_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	cleanup_om_error om_error_t err = NULL;
	cleanup_free char *manifest_path = NULL;
	cleanup_free char *gen_dir = NULL;
	bool json = false, verify = false;
	Om__Manifest *m = NULL;
	struct stat sb;
	const char *arg;
	int c;

	while ((c = getopt_long(argc, argv, "jchV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'c':
			verify = true;
			break;
		case 'V':
			printf("%s (omtools) %s\n", prog, PACKAGE_VERSION);
			return OM_EXIT_OK;
		case 'h':
			usage(stdout);
			return OM_EXIT_OK;
		default:
			usage(stderr);
			return OM_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "%s: expected exactly one FILE\n", prog);
		usage(stderr);
		return OM_EXIT_USAGE;
	}
	arg = argv[optind];

	if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		gen_dir = strdup(arg);
		manifest_path = om_strdup_printf("%s/%s", arg, OM_MANIFEST_NAME);
	} else {
		const char *slash = strrchr(arg, '/');
		manifest_path = strdup(arg);
		gen_dir = slash ? strndup(arg, (size_t)(slash - arg) + (slash == arg)) : strdup(".");
	}
	if (manifest_path == NULL || gen_dir == NULL) {
		om_make_error(&err, ENOMEM, "decode `%s`", arg);
		goto fail;
	}
	if (om_manifest_read_file(manifest_path, &m, &err) < 0)
		goto fail;
	if (verify && om_gen_dir_verify(gen_dir, m, &err) < 0) {
		om_manifest_free(m);
		goto fail;
	}
	if (json) {
		print_json(stdout, manifest_path, m, verify ? 1 : -1);
	} else {
		print_human(stdout, manifest_path, m);
		if (verify) {
			size_t files = 0;
			for (size_t i = 0; i < m->n_trees; i++)
				files += m->trees[i]->n_files;
			files += m->shm ? m->shm->n_files : 0;
			printf("\nverified:          %zu files, all checksums match\n", files);
		}
	}
	om_manifest_free(m);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		om_make_error(&err, errno, "write output");
		goto fail;
	}
	return OM_EXIT_OK;
fail:
	if (err && err->status == ENOENT)
		om_error_set_exit(&err, OM_EXIT_NOTFOUND);
	else if (err && err->status != OM_EUSAGE)
		om_error_set_exit(&err, OM_EXIT_STORE); /* unreadable or corrupt */
	om_error_print(stderr, prog, err);
	return om_error_exit_code(err);
}
