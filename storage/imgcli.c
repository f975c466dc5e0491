/* storage/imgcli.c — printing and argument parsing shared by omdecode(8) and
 * omimg(8) (see imgcli.h: compiled into the commands, not into libom). */
#include "config.h"
#include "imgcli.h"
#include "store.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void om_img_size(uint64_t v, char *buf, size_t len)
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

void om_img_time(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* Printable rendering of an untrusted string for the text output; returns
 * the number of characters printed. */
int om_img_text(FILE *out, const char *s)
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

/* om_img_text padded with spaces to width columns. */
void om_img_text_pad(FILE *out, const char *s, int width)
{
	int n = om_img_text(out, s);
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
	om_img_text(out, set->dir);
	fputc('\n', out);
	for (size_t i = 0; i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		fprintf(out,
			"  sysv shm:        id %" PRId32 " key 0x%08" PRIx32 " size %" PRIu64
			" mode %04o uid %u gid %u%s file ",
			g->id, (uint32_t)g->key, g->size, (unsigned)(g->mode & 0777), g->uid, g->gid,
			g->removed ? " removed" : "");
		om_img_text(out, g->file);
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
		om_img_text(out, p->name);
		fprintf(out, " size %" PRIu64 " mode %04o uid %u gid %u file ", p->size, (unsigned)(p->mode & 07777),
			p->uid, p->gid);
		om_img_text(out, p->file);
		for (size_t k = 0; k < p->n_restore_links; k++) {
			fputs(k ? ", " : " mapped as ", out);
			om_img_text(out, p->restore_links[k]);
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
		om_img_text_pad(out, f->name, 28);
		fprintf(out, " %12" PRIu64 " %12" PRIu64 "  %s\n", f->size, f->stored_size, hex);
	}
}

void om_img_print_text(FILE *out, const Om__Manifest *m, const struct om_img_show *s)
{
	char a[64], b[64], hex[65];

	fputs("manifest:          ", out);
	om_img_text(out, s->path);
	fputc('\n', out);
	fprintf(out, "format version:    %u\n", OM_MANIFEST_VERSION);
	fprintf(out, "group:             %" PRIu32 "%s\n", m->group, m->group == 0 ? " (single tree by PID)" : "");
	if (m->has_single_pid)
		fprintf(out, "single pid:        %" PRId32 "\n", m->single_pid);
	if (m->has_from_group)
		fprintf(out, "from group:        %" PRIu32 " (rejoined on restore)\n", m->from_group);
	fprintf(out, "generation:        %" PRIu64 "\n", m->generation);
	fputs("node:              ", out);
	om_img_text(out, m->node);
	om_img_time(m->time_unix_ns, a, sizeof(a));
	fprintf(out, "\ntime:              %s (%" PRId64 " ns since the epoch)\n", a, m->time_unix_ns);
	om_img_age(om_img_age_seconds(m->time_unix_ns, s->now_ns), a, sizeof(a));
	fprintf(out, "age:               %s\n", a);
	fputs("kernel:            ", out);
	om_img_text(out, m->kernel);
	fputs("\ncriu version:      ", out);
	om_img_text(out, m->criu_version);
	fputs("\nomtools version:   ", out);
	om_img_text(out, m->omtools_version);
	fputc('\n', out);
	if (m->cgroup_backend) {
		fputs("cgroup backend:    ", out);
		om_img_text(out, m->cgroup_backend);
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
	om_img_size(m->raw_bytes, a, sizeof(a));
	om_img_size(m->stored_bytes, b, sizeof(b));
	fprintf(out, "raw bytes:         %" PRIu64 " (%s)\n", m->raw_bytes, a);
	fprintf(out, "stored bytes:      %" PRIu64 " (%s)", m->stored_bytes, b);
	if (m->stored_bytes > 0)
		fprintf(out, ", ratio %.2f", (double)m->raw_bytes / (double)m->stored_bytes);
	fprintf(out, "\ntrees:             %zu\n", m->n_trees);
	fprintf(out, "processes:         %zu\n", om_img_processes(m));
	if (m->has_fence)
		fprintf(out, "fence:             %" PRIu64 " (the writer's fencing token)\n", m->fence);
	if (s->store) {
		fputs("store fence:       ", out);
		if (s->store->fence_token == 0)
			fputs("none\n", out);
		else {
			fprintf(out, "%" PRIu64 " (taken over by ", s->store->fence_token);
			om_img_text(out, s->store->fence_node);
			fprintf(out, " from generation %" PRIu64 ")%s\n", s->store->fence_gen,
				m->has_fence && m->fence < s->store->fence_token ? ", this generation is older" : "");
		}
		fputs("pinned:            ", out);
		if (s->store->pinned) {
			fputs("yes, by ", out);
			om_img_text(out, s->store->holder);
			fputc('\n', out);
		} else
			fputs("no\n", out);
	}

	for (size_t i = 0; i < m->n_trees; i++) {
		const Om__TreeEntry *t = m->trees[i];
		fprintf(out, "\ntree %zu:\n  root pid:        %" PRId32 "\n  directory:       ", i + 1, t->root_pid);
		om_img_text(out, t->dir);
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
			om_img_text_pad(out, p->comm, 16);
			fputc(' ', out);
			om_img_text(out, p->cmdline);
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
			om_img_text_pad(out, f->name, 28);
			fprintf(out, " %12" PRIu64 " %12" PRIu64 " %6s  %s\n", f->size, f->stored_size, mode, hex);
		}
	}
	if (m->shm)
		print_shm_text(out, m->shm);
}

void om_img_json_double(FILE *out, double v)
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
void om_img_json_string(FILE *out, const char *s)
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

void om_img_json_opt_string(FILE *out, const char *s)
{
	if (s)
		om_img_json_string(out, s);
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
	om_img_json_string(out, set->dir);
	fputs(",\"sysv_shm\":[", out);
	for (size_t i = 0; i < set->n_segments; i++) {
		const Om__ShmSegment *g = set->segments[i];
		fprintf(out,
			"%s{\"id\":%" PRId32 ",\"key\":%" PRId32 ",\"size\":%" PRIu64 ",\"mode\":%" PRIu32
			",\"uid\":%" PRIu32 ",\"gid\":%" PRIu32 ",\"removed\":%s,\"file\":",
			i ? "," : "", g->id, g->key, g->size, g->mode, g->uid, g->gid, g->removed ? "true" : "false");
		om_img_json_string(out, g->file);
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
		om_img_json_string(out, p->name);
		fprintf(out, ",\"size\":%" PRIu64 ",\"mode\":%" PRIu32 ",\"file\":", p->size, p->mode);
		om_img_json_string(out, p->file);
		fputs(",\"used_by\":", out);
		json_pids(out, p->used_by, p->n_used_by);
		fputc('}', out);
	}
	fputs("],\"files\":[", out);
	for (size_t j = 0; j < set->n_files; j++) {
		const Om__FileEntry *f = set->files[j];
		om_hex(f->sha256.data, f->sha256.len, hex);
		fprintf(out, "%s{\"name\":", j ? "," : "");
		om_img_json_string(out, f->name);
		fprintf(out, ",\"size\":%" PRIu64 ",\"stored_size\":%" PRIu64 ",\"sha256\":\"%s\"}", f->size,
			f->stored_size, hex);
	}
	fputs("]}", out);
}

void om_img_json_fence(FILE *out, uint64_t token, const char *node, uint64_t gen)
{
	if (token == 0) {
		fputs("null", out);
		return;
	}
	fprintf(out, "{\"token\":%" PRIu64 ",\"node\":", token);
	om_img_json_string(out, node);
	fprintf(out, ",\"generation\":%" PRIu64 "}", gen);
}

void om_img_json_pin(FILE *out, bool pinned, const char *holder)
{
	fprintf(out, "\"pinned\":%s,\"pinned_by\":", pinned ? "true" : "false");
	om_img_json_opt_string(out, pinned ? holder : NULL);
}

void om_img_json_summary(FILE *out, const Om__Manifest *m, int64_t now_ns)
{
	char t[64];
	double ratio = om_img_ratio(m->raw_bytes, m->stored_bytes);

	om_img_time(m->time_unix_ns, t, sizeof(t));
	fprintf(out, "\"generation\":%" PRIu64 ",\"time_unix_ns\":%" PRId64 ",\"time\":\"%s\",\"age_seconds\":",
		m->generation, m->time_unix_ns, t);
	om_img_json_double(out, om_img_age_seconds(m->time_unix_ns, now_ns));
	fputs(",\"node\":", out);
	om_img_json_string(out, m->node);
	fputs(",\"kernel\":", out);
	om_img_json_string(out, m->kernel);
	fputs(",\"criu_version\":", out);
	om_img_json_string(out, m->criu_version);
	fputs(",\"omtools_version\":", out);
	om_img_json_string(out, m->omtools_version);
	fprintf(out, ",\"raw_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 ",\"ratio\":", m->raw_bytes,
		m->stored_bytes);
	if (ratio > 0)
		fprintf(out, "%.3f", ratio);
	else
		fputs("null", out);
	fprintf(out, ",\"n_trees\":%zu,\"processes\":%zu,\"files\":%zu,\"fence\":", m->n_trees, om_img_processes(m),
		om_img_files(m));
	if (m->has_fence)
		fprintf(out, "%" PRIu64, m->fence);
	else
		fputs("null", out);
}

void om_img_print_json(FILE *out, const Om__Manifest *m, const struct om_img_show *s)
{
	char hex[65];

	fputs("{\"manifest\":", out);
	om_img_json_string(out, s->path);
	fprintf(out, ",\"format_version\":%u,\"group\":%" PRIu32 ",", OM_MANIFEST_VERSION, m->group);
	om_img_json_summary(out, m, s->now_ns);
	if (s->store) {
		fputc(',', out);
		om_img_json_pin(out, s->store->pinned, s->store->holder);
		fputs(",\"store_fence\":", out);
		om_img_json_fence(out, s->store->fence_token, s->store->fence_node, s->store->fence_gen);
	}
	fputs(",\"leave_running\":", out);
	fputs(m->has_leave_running ? (m->leave_running ? "true" : "false") : "null", out);
	fputs(",\"zstd_level\":", out);
	if (m->has_zstd_level)
		fprintf(out, "%" PRId32, m->zstd_level);
	else
		fputs("null", out);
	fputs(",\"freeze_seconds\":", out);
	if (m->has_freeze_seconds)
		om_img_json_double(out, m->freeze_seconds);
	else
		fputs("null", out);
	fputs(",\"total_seconds\":", out);
	if (m->has_total_seconds)
		om_img_json_double(out, m->total_seconds);
	else
		fputs("null", out);
	fputs(",\"cgroup_backend\":", out);
	om_img_json_opt_string(out, m->cgroup_backend);
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
		om_img_json_string(out, t->dir);
		fputs(",\"dump_seconds\":", out);
		if (t->has_dump_seconds)
			om_img_json_double(out, t->dump_seconds);
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
			om_img_json_opt_string(out, p->comm);
			fputs(",\"cmdline\":", out);
			om_img_json_opt_string(out, p->cmdline);
			fputc('}', out);
		}
		fputs("],\"files\":[", out);
		for (size_t j = 0; j < t->n_files; j++) {
			const Om__FileEntry *f = t->files[j];
			om_hex(f->sha256.data, f->sha256.len, hex);
			fprintf(out, "%s{\"name\":", j ? "," : "");
			om_img_json_string(out, f->name);
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
	if (s->verified >= 0)
		fprintf(out, ",\"verified\":%s", s->verified ? "true" : "false");
	fputs("}\n", out);
}

/* ---- G[/GEN] ---- */

bool om_img_ref_like(const char *s)
{
	const char *slash;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	slash = strchr(s, '/');
	return slash == NULL || strchr(slash + 1, '/') == NULL;
}

/* A decimal of at most max, digits only (no sign, space or leading zero). */
static bool parse_dec(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	char buf[24];

	if (len == 0 || len >= sizeof(buf) || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return om_parse_uint(buf, max, out) == 0;
}

int om_img_ref_parse(const char *s, unsigned long id_max, bool allow_all, struct om_img_ref *ref, om_error_t *err)
{
	const char *slash, *g;
	unsigned long v;

	*ref = (struct om_img_ref){0};
	if (s == NULL)
		return om_make_error(err, OM_EUSAGE, "missing G[/GEN]");
	slash = strchr(s, '/');
	if (!parse_dec(s, slash ? (size_t)(slash - s) : strlen(s), id_max, &v) || v == 0)
		return om_make_error(err, OM_EUSAGE, "invalid `%s`: expected G%s with G an integer 1 to %lu", s,
				     allow_all ? "[/GEN|/all]" : "[/GEN]", id_max);
	ref->id = v;
	if (slash == NULL)
		return 0;
	g = slash + 1;
	if (allow_all && strcmp(g, "all") == 0) {
		ref->all = true;
		return 0;
	}
	if (strncmp(g, "gen-", 4) == 0)
		g += 4;
	if (!parse_dec(g, strlen(g), INT64_MAX, &v) || v == 0)
		return om_make_error(err, OM_EUSAGE, "invalid generation in `%s`: expected an integer 1 to %lld%s", s,
				     (long long)INT64_MAX, allow_all ? " or all" : "");
	ref->gen = v;
	return 0;
}

/* ---- small renderings ---- */

void om_img_age(double seconds, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		double secs;
	} units[] = {{"d", 86400}, {"h", 3600}, {"min", 60}};

	if (!isfinite(seconds) || seconds < -1) { /* a second of clock skew between nodes is "0 s" */
		snprintf(buf, len, "in the future");
		return;
	}
	if (seconds < 60) {
		snprintf(buf, len, "%.0f s", seconds < 0 ? 0 : floor(seconds));
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (seconds < units[i].secs)
			continue;
		double big = floor(seconds / units[i].secs);
		double rest = floor((seconds - big * units[i].secs) / (i + 1 < 3 ? units[i + 1].secs : 1));
		const char *small = i + 1 < 3 ? units[i + 1].unit : "s";
		if (rest > 0)
			snprintf(buf, len, "%.0f %s %.0f %s", big, units[i].unit, rest, small);
		else
			snprintf(buf, len, "%.0f %s", big, units[i].unit);
		return;
	}
}

double om_img_age_seconds(int64_t then_ns, int64_t now_ns)
{
	return ((double)now_ns - (double)then_ns) / 1e9; /* then_ns is untrusted: no int64 overflow */
}

int64_t om_img_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double om_img_ratio(uint64_t raw, uint64_t stored)
{
	return stored ? (double)raw / (double)stored : 0;
}

size_t om_img_processes(const Om__Manifest *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_trees; i++)
		n += m->trees[i]->n_procs;
	return n;
}

size_t om_img_files(const Om__Manifest *m)
{
	size_t n = m->shm ? m->shm->n_files : 0;

	for (size_t i = 0; i < m->n_trees; i++)
		n += m->trees[i]->n_files;
	return n;
}

/* ---- a generation by path ---- */

void om_img_print(FILE *out, const Om__Manifest *m, const struct om_img_show *s, bool json)
{
	if (json) {
		om_img_print_json(out, m, s);
		return;
	}
	om_img_print_text(out, m, s);
	if (s->verified > 0)
		fprintf(out, "\nverified:          %zu files, all checksums match\n", om_img_files(m));
}

int om_img_path_load(const char *arg, char **manifest_path, char **gen_dir, Om__Manifest **m, om_error_t *err)
{
	struct stat sb;

	*m = NULL;
	if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		*gen_dir = strdup(arg);
		*manifest_path = om_strdup_printf("%s/%s", arg, OM_MANIFEST_NAME);
	} else {
		const char *slash = strrchr(arg, '/');
		*manifest_path = strdup(arg);
		*gen_dir = slash ? strndup(arg, (size_t)(slash - arg) + (slash == arg)) : strdup(".");
	}
	if (*manifest_path == NULL || *gen_dir == NULL)
		return om_make_error(err, ENOMEM, "decode `%s`", arg);
	return om_manifest_read_file(*manifest_path, m, err);
}

int om_img_fail_class(om_error_t *err)
{
	if (*err == NULL || (*err)->exit_code != 0)
		return -1;
	if ((*err)->status == ENOENT || (*err)->status == OM_ENOTFOUND)
		return om_error_set_exit(err, OM_EXIT_NOTFOUND);
	if ((*err)->status != OM_EUSAGE)
		return om_error_set_exit(err, OM_EXIT_STORE); /* unreadable or corrupt */
	return -1;
}
