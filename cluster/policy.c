/* cluster/policy.c — see policy.h. */
#include "config.h"
#include "policy.h"

#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BY 64u

int om_policy_dir(const struct om_config *cfg, char **out, om_error_t *err)
{
	cleanup_free char *copy = NULL;

	*out = NULL;
	if (cfg == NULL || cfg->path == NULL || *cfg->path == '\0')
		*out = strdup(OM_DEFAULT_POLICY_DIR);
	else if ((copy = strdup(cfg->path)) != NULL)
		*out = om_strdup_printf("%s/policy", dirname(copy));
	return *out ? 0 : om_make_error(err, ENOMEM, "policy directory");
}

int om_policy_parse_every(const char *s, uint32_t *secs, om_error_t *err)
{
	unsigned long long v = 0, mult = 1;
	const char *p = s;
	size_t digits = 0;

	*secs = 0;
	if (s == NULL || *s == '\0')
		return om_make_error(err, OM_EUSAGE, "an empty period");
	if (strcmp(s, "off") == 0)
		return 0;
	for (; *p >= '0' && *p <= '9' && digits < 12; p++, digits++)
		v = v * 10 + (unsigned long long)(*p - '0');
	if (digits == 0 || digits >= 12)
		return om_make_error(err, OM_EUSAGE, "period `%s`: expected N, Ns, Nm, Nh or Nd (or off)", s);
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return om_make_error(err, OM_EUSAGE, "period `%s`: expected N, Ns, Nm, Nh or Nd (or off)", s);
	}
	if (*p != '\0' && p[1] != '\0')
		return om_make_error(err, OM_EUSAGE, "period `%s`: expected N, Ns, Nm, Nh or Nd (or off)", s);
	v *= mult;
	if (v == 0)
		return 0;
	if (v < OM_POLICY_MIN_S || v > OM_POLICY_MAX_S)
		return om_make_error(err, OM_EUSAGE, "period `%s`: must be %us to 7d (or 0/off)", s, OM_POLICY_MIN_S);
	*secs = (uint32_t)v;
	return 0;
}

const char *om_policy_format_every(uint32_t secs, char *buf, size_t len)
{
	if (secs && secs % 86400 == 0)
		snprintf(buf, len, "%ud", secs / 86400);
	else if (secs && secs % 3600 == 0)
		snprintf(buf, len, "%uh", secs / 3600);
	else if (secs && secs % 60 == 0)
		snprintf(buf, len, "%um", secs / 60);
	else
		snprintf(buf, len, "%us", secs);
	return buf;
}

int om_policy_check(const Om__Policy *p, unsigned long g, om_error_t *err)
{
	if (p->v != 1)
		return om_make_error(err, OM_ECORRUPT, "policy version %u (this omtools reads 1)", p->v);
	if (g && p->group != g)
		return om_make_error(err, OM_ECORRUPT, "the policy of group %lu names group %llu", g,
				     (unsigned long long)p->group);
	if (p->group == 0 || p->group > 0xffffffffull)
		return om_make_error(err, OM_ECORRUPT, "policy: bad group %llu", (unsigned long long)p->group);
	if (p->every_s < OM_POLICY_MIN_S || p->every_s > OM_POLICY_MAX_S)
		return om_make_error(err, OM_ECORRUPT, "policy of group %llu: period %u s outside %u s .. %u s",
				     (unsigned long long)p->group, p->every_s, OM_POLICY_MIN_S, OM_POLICY_MAX_S);
	if (p->has_keep && p->keep > OM_POLICY_MAX_KEEP)
		return om_make_error(err, OM_ECORRUPT, "policy of group %llu: keep %u above %u",
				     (unsigned long long)p->group, p->keep, OM_POLICY_MAX_KEEP);
	if (p->by && strnlen(p->by, MAX_BY + 1) > MAX_BY)
		return om_make_error(err, OM_ECORRUPT, "policy of group %llu: `by` longer than %u bytes",
				     (unsigned long long)p->group, MAX_BY);
	return 0;
}

void om_policy_free(Om__Policy *p)
{
	if (p)
		protobuf_c_message_free_unpacked(&p->base, NULL);
}

void om_policy_list_free(Om__Policy **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		om_policy_free(v[i]);
	free(v);
}

/* ---- the directory backend ---- */

static int file_decode(const char *bytes, size_t len, unsigned long g, Om__Policy **out, om_error_t *err)
{
	uint32_t ver;
	ProtobufCMessage *m;

	*out = NULL;
	if (len < 12 || len > OM_POLICY_FILE_MAX || memcmp(bytes, OM_POLICY_MAGIC, 8) != 0)
		return om_make_error(err, OM_ECORRUPT, "not a policy file");
	memcpy(&ver, bytes + 8, 4);
	ver = le32toh(ver);
	if (ver != OM_POLICY_VERSION)
		return om_make_error(err, OM_ECORRUPT, "policy file version %u (this omtools reads %u)", ver,
				     OM_POLICY_VERSION);
	m = protobuf_c_message_unpack(&om__policy__descriptor, NULL, len - 12, (const uint8_t *)bytes + 12);
	if (m == NULL)
		return om_make_error(err, OM_ECORRUPT, "policy file: the message does not parse");
	if (om_policy_check((Om__Policy *)m, g, err) < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return -1;
	}
	*out = (Om__Policy *)m;
	return 0;
}

static int file_get(const char *dir, unsigned long g, Om__Policy **out, om_error_t *err)
{
	cleanup_free char *path = om_strdup_printf("%s/%lu", dir, g);
	cleanup_free char *bytes = NULL;
	size_t len = 0;

	*out = NULL;
	if (path == NULL)
		return om_make_error(err, ENOMEM, "policy");
	if (om_read_file_at(AT_FDCWD, path, &bytes, &len, OM_POLICY_FILE_MAX + 1, err) < 0) {
		if ((*err)->status == ENOENT) {
			om_error_release(err);
			return 0;
		}
		return om_error_wrap(err, "policy file %s", path);
	}
	if (file_decode(bytes, len, g, out, err) < 0)
		return om_error_wrap(err, "%s", path);
	return 0;
}

static int file_set(const char *dir, const Om__Policy *p, om_error_t *err)
{
	size_t n = protobuf_c_message_get_packed_size(&p->base);
	cleanup_free uint8_t *buf = NULL;
	cleanup_free char *path = om_strdup_printf("%s/%llu", dir, (unsigned long long)p->group);
	cleanup_free char *tmp = om_strdup_printf("%s/.%llu.tmp-%d", dir, (unsigned long long)p->group, (int)getpid());
	uint32_t ver = htole32(OM_POLICY_VERSION);
	int fd;

	if (path == NULL || tmp == NULL || 12 + n > OM_POLICY_FILE_MAX || (buf = malloc(12 + n)) == NULL)
		return om_make_error(err, ENOMEM, "policy");
	memcpy(buf, OM_POLICY_MAGIC, 8);
	memcpy(buf + 8, &ver, 4);
	protobuf_c_message_pack(&p->base, buf + 12);
	if (om_mkdir_p(dir, 0755, err) < 0)
		return om_error_wrap(err, "policy directory %s", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return om_make_error(err, errno, "create %s", tmp);
	if (om_write_all(fd, buf, 12 + n) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return om_make_error(err, e, "write %s", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return om_make_error(err, e, "rename %s", tmp);
	}
	return om_fsync_dir_at(AT_FDCWD, dir, err);
}

static int file_delete(const char *dir, unsigned long g, bool *existed, om_error_t *err)
{
	cleanup_free char *path = om_strdup_printf("%s/%lu", dir, g);
	if (path == NULL)
		return om_make_error(err, ENOMEM, "policy");
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return om_make_error(err, errno, "remove %s", path);
	}
	if (existed)
		*existed = true;
	return om_fsync_dir_at(AT_FDCWD, dir, err);
}

static int by_group(const void *a, const void *b)
{
	const Om__Policy *x = *(Om__Policy *const *)a, *y = *(Om__Policy *const *)b;
	return x->group < y->group ? -1 : x->group > y->group;
}

static int push(Om__Policy ***v, size_t *n, Om__Policy *p, om_error_t *err)
{
	Om__Policy **nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL) {
		om_policy_free(p);
		return om_make_error(err, ENOMEM, "policies");
	}
	*v = nv;
	(*v)[(*n)++] = p;
	return 0;
}

static int file_list(const char *dir, Om__Policy ***out, size_t *n, size_t *bad, om_error_t *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : om_make_error(err, errno, "open policy directory %s", dir);
	while ((de = readdir(d)) != NULL && *n < OM_POLICY_MAX_GROUPS) {
		unsigned long g;
		Om__Policy *p = NULL;
		om_error_t perr = NULL;
		if (de->d_name[0] == '.' || om_parse_uint(de->d_name, 0xffffffffUL, &g) < 0 || g == 0)
			continue;
		if (file_get(dir, g, &p, &perr) < 0 || p == NULL) {
			if (perr)
				(*bad)++;
			om_error_release(&perr);
			continue;
		}
		if ((ret = push(out, n, p, err)) < 0)
			break;
	}
	closedir(d);
	return ret;
}

/* ---- the etcd backend ---- */

static int etcd_list(struct om_cluster *c, Om__Policy ***out, size_t *n, size_t *bad, om_error_t *err)
{
	cleanup_free char *pfx = om_cluster_key(c, "policy/");
	struct om_etcd_range r = {0};
	int ret = 0;

	if (pfx == NULL)
		return om_make_error(err, ENOMEM, "policies");
	if (om_etcd_get(c->etcd, pfx, true, OM_POLICY_MAX_GROUPS, &r, err) < 0)
		return -1;
	for (size_t i = 0; i < r.n; i++) {
		ProtobufCMessage *m = NULL;
		om_error_t perr = NULL;
		unsigned long g;
		if (om_parse_uint(r.kvs[i].key + strlen(pfx), 0xffffffffUL, &g) < 0 || g == 0 ||
		    om_sandbox_parse(c->sb, &om__policy__descriptor, r.kvs[i].value, r.kvs[i].value_len, &m, &perr) <
			0 ||
		    om_policy_check((Om__Policy *)m, g, &perr) < 0) {
			if (m)
				protobuf_c_message_free_unpacked(m, NULL);
			om_error_release(&perr);
			(*bad)++;
			continue;
		}
		if ((ret = push(out, n, (Om__Policy *)m, err)) < 0)
			break;
	}
	om_etcd_range_release(&r);
	return ret;
}

/* ---- the API ---- */

int om_policy_get(struct om_policy_store *ps, unsigned long g, Om__Policy **out, om_error_t *err)
{
	cleanup_free char *k = NULL;
	ProtobufCMessage *m = NULL;

	*out = NULL;
	if (ps->c == NULL)
		return file_get(ps->dir, g, out, err);
	if ((k = om_cluster_key(ps->c, "policy/%lu", g)) == NULL)
		return om_make_error(err, ENOMEM, "policy");
	if (om_cluster_get(ps->c, k, &om__policy__descriptor, &m, NULL, err) < 0)
		return -1;
	if (m && om_policy_check((Om__Policy *)m, g, err) < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return om_error_wrap(err, "etcd key %s", k);
	}
	*out = (Om__Policy *)m;
	return 0;
}

int om_policy_set(struct om_policy_store *ps, const Om__Policy *p, om_error_t *err)
{
	cleanup_free char *k = NULL;

	if (om_policy_check(p, 0, err) < 0) {
		om_error_set_exit(err, OM_EXIT_USAGE);
		return -1;
	}
	if (ps->c == NULL)
		return file_set(ps->dir, p, err);
	if ((k = om_cluster_key(ps->c, "policy/%llu", (unsigned long long)p->group)) == NULL)
		return om_make_error(err, ENOMEM, "policy");
	return om_cluster_put(ps->c, k, &p->base, 0, err);
}

int om_policy_delete(struct om_policy_store *ps, unsigned long g, bool *existed, om_error_t *err)
{
	cleanup_free char *k = NULL;
	int64_t n = 0;

	if (existed)
		*existed = false;
	if (ps->c == NULL)
		return file_delete(ps->dir, g, existed, err);
	if ((k = om_cluster_key(ps->c, "policy/%lu", g)) == NULL)
		return om_make_error(err, ENOMEM, "policy");
	if (om_etcd_delete(ps->c->etcd, k, false, &n, err) < 0)
		return -1;
	if (existed)
		*existed = n > 0;
	return 0;
}

int om_policy_list(struct om_policy_store *ps, Om__Policy ***out, size_t *n, size_t *bad, om_error_t *err)
{
	size_t ignored = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (bad == NULL)
		bad = &ignored;
	*bad = 0;
	rc = ps->c ? etcd_list(ps->c, out, n, bad, err) : file_list(ps->dir, out, n, bad, err);
	if (rc < 0) {
		om_policy_list_free(*out, *n);
		*out = NULL;
		*n = 0;
		return -1;
	}
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), by_group);
	return 0;
}
