#include "config.h"
#include "cgroup.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

static bool v1_freezer_at(const char *path)
{
	char probe[PATH_MAX + 16];
	/* the root freezer has no freezer.state; test for the hierarchy's tasks file */
	snprintf(probe, sizeof(probe), "%s/tasks", path);
	return is_fs(path, CGROUP_SUPER_MAGIC) && access(probe, F_OK) == 0;
}

int om_cg_init(struct om_cg *cg, om_error_t *err)
{
	const char *want = getenv("OM_CGROUP");
	const char *root = getenv("OM_CGROUP_ROOT"); /* for tests on odd mounts */
	char v2[PATH_MAX] = "", v1[PATH_MAX] = "";

	memset(cg, 0, sizeof(*cg));
	if (root == NULL)
		root = "/sys/fs/cgroup";
	if (is_fs(root, CGROUP2_SUPER_MAGIC))
		snprintf(v2, sizeof(v2), "%s", root);
	else {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/unified", root);
		if (is_fs(p, CGROUP2_SUPER_MAGIC))
			snprintf(v2, sizeof(v2), "%s", p);
		snprintf(p, sizeof(p), "%s/freezer", root);
		if (v1_freezer_at(p))
			snprintf(v1, sizeof(v1), "%s", p);
	}
	if (v2[0]) {
		char p[PATH_MAX + 32];
		snprintf(p, sizeof(p), "%s/cgroup.procs", v2);
		if (access(p, W_OK) != 0)
			v2[0] = '\0';
	}

	if (want && *want && strcmp(want, "auto") != 0) {
		if (strcmp(want, "v2") == 0) {
			if (!v2[0])
				return om_make_error(err, ENOTSUP,
						     "OM_CGROUP=v2 but no writable cgroup2 hierarchy under %s", root);
			cg->ver = OM_CG_V2;
		} else if (strcmp(want, "v1") == 0) {
			if (!v1[0])
				return om_make_error(err, ENOTSUP,
						     "OM_CGROUP=v1 but no v1 freezer hierarchy at %s/freezer", root);
			cg->ver = OM_CG_V1;
		} else
			return om_make_error(err, OM_EUSAGE, "OM_CGROUP must be v1, v2 or auto, not `%s`", want);
	} else if (v2[0])
		cg->ver = OM_CG_V2;
	else if (v1[0])
		cg->ver = OM_CG_V1;
	else
		return om_make_error(err, ENOTSUP,
				     "no usable cgroup freezer: need cgroup2 (with cgroup.freeze, Linux >= 5.2) "
				     "or the v1 freezer controller under %s",
				     root);

	snprintf(cg->mnt, sizeof(cg->mnt), "%s", cg->ver == OM_CG_V2 ? v2 : v1);
	snprintf(cg->base, sizeof(cg->base), "%.4000s/omtools", cg->mnt);
	if (cg->ver == OM_CG_V2) {
		char p[PATH_MAX + 32];
		/* kernel feature probe: the freezer of cgroup2 */
		if (om_cg_mkdir(cg->base, err) < 0)
			return om_error_wrap(err, "cgroup v2 backend");
		snprintf(p, sizeof(p), "%s/cgroup.freeze", cg->base);
		if (access(p, F_OK) != 0)
			return om_make_error(err, ENOTSUP, "cgroup2 at %s has no cgroup.freeze (needs Linux >= 5.2)",
					     cg->mnt);
	} else if (om_cg_mkdir(cg->base, err) < 0)
		return om_error_wrap(err, "cgroup v1 freezer backend");
	return 0;
}

const char *om_cg_name(const struct om_cg *cg)
{
	return cg->ver == OM_CG_V2 ? "v2" : "v1";
}

void om_cg_group_path(const struct om_cg *cg, unsigned long group, char *out)
{
	snprintf(out, PATH_MAX, "%.4000s/g%lu", cg->base, group);
}

void om_cg_tree_path(const struct om_cg *cg, unsigned long group, pid_t root, char *out)
{
	snprintf(out, PATH_MAX, "%.4000s/g%lu/t%d", cg->base, group, (int)root);
}

int om_cg_mkdir(const char *path, om_error_t *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return om_make_error(err, errno, "create cgroup `%s`", path);
	return 0;
}

int om_cg_move(const char *path, pid_t pid, om_error_t *err)
{
	char knob[PATH_MAX + 16], val[32];
	snprintf(knob, sizeof(knob), "%s/cgroup.procs", path);
	snprintf(val, sizeof(val), "%d", (int)pid);
	if (om_write_knob(knob, val, err) < 0) {
		if ((*err)->status == ESRCH)
			return om_make_error(err, ESRCH, "process %d", (int)pid);
		return -1;
	}
	return 0;
}

static void origin_file(const struct om_cg *cg, pid_t pid, char *out, size_t len)
{
	const char *rundir = getenv("OM_RUNDIR");
	snprintf(out, len, "%s/origin/%s-%d", rundir && *rundir ? rundir : "/run/omtools", om_cg_name(cg), (int)pid);
}

/* Forget the origins of processes that are gone (or whose PID was reused). */
static void sweep_origins(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		const char *dash = strrchr(de->d_name, '-');
		cleanup_free char *buf = NULL;
		unsigned long long start = 0;
		struct om_proc p;
		pid_t pid;
		om_error_t tmp = NULL;
		bool live = false;

		if (de->d_name[0] == '.' || dash == NULL || om_parse_pid(dash + 1, &pid) < 0)
			continue;
		if (om_read_file_at(dirfd(d), de->d_name, &buf, NULL, 4096, &tmp) == 0 &&
		    sscanf(buf, "%llu", &start) == 1 && om_proc_read(pid, &p, false, &tmp) == 0) {
			live = p.starttime == start;
			om_proc_release(&p);
		}
		om_error_release(&tmp);
		if (!live)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
}

void om_cg_save_origin(const struct om_cg *cg, pid_t pid)
{
	char file[PATH_MAX], rel[PATH_MAX], dir[PATH_MAX];
	cleanup_free char *line = NULL;
	struct om_proc p;
	om_error_t tmp = NULL;

	origin_file(cg, pid, file, sizeof(file));
	snprintf(dir, sizeof(dir), "%s", file);
	*strrchr(dir, '/') = '\0';
	if (om_proc_read(pid, &p, false, &tmp) < 0 || om_cg_proc_path(cg, pid, rel, &tmp) < 0 ||
	    om_mkdir_p(dir, 0700, &tmp) < 0) {
		om_error_release(&tmp);
		return; /* best effort: without it the process goes back to the root */
	}
	om_proc_release(&p);
	sweep_origins(dir);
	line = om_strdup_printf("%llu %s\n", p.starttime, rel);
	if (line) {
		cleanup_close int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			(void)om_write_all(fd, line, strlen(line));
	}
}

int om_cg_move_out(const struct om_cg *cg, pid_t pid, om_error_t *err)
{
	char file[PATH_MAX], back[PATH_MAX * 2] = "";
	cleanup_free char *buf = NULL;
	unsigned long long start;
	struct om_proc p;
	om_error_t tmp = NULL;

	origin_file(cg, pid, file, sizeof(file));
	if (om_read_file(file, &buf, NULL, &tmp) == 0 && om_proc_read(pid, &p, false, &tmp) == 0) {
		char rel[PATH_MAX];
		/* the same process (not a reused PID), a cgroup that still exists, not one of ours */
		if (sscanf(buf, "%llu %4095s", &start, rel) == 2 && start == p.starttime &&
		    strncmp(rel, "/omtools/", 9) != 0) {
			snprintf(back, sizeof(back), "%s%s", cg->mnt, strcmp(rel, "/") ? rel : "");
			if (access(back, F_OK) != 0)
				back[0] = '\0';
		}
		om_proc_release(&p);
	}
	om_error_release(&tmp);
	unlink(file);
	if (back[0] && om_cg_move(back, pid, &tmp) == 0)
		return 0;
	om_error_release(&tmp);
	return om_cg_move(cg->mnt, pid, err);
}

int om_cg_procs(const char *path, pid_t **pids, size_t *n, om_error_t *err)
{
	char knob[PATH_MAX + 16];
	cleanup_free char *buf = NULL;
	char *s, *save = NULL;

	*pids = NULL;
	*n = 0;
	snprintf(knob, sizeof(knob), "%s/cgroup.procs", path);
	if (om_read_file(knob, &buf, NULL, err) < 0)
		return -1;
	for (s = strtok_r(buf, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
		pid_t p;
		if (om_parse_pid(s, &p) == 0 && !om_pids_contains(*pids, *n, p) && om_pids_push(pids, n, p) < 0)
			return om_make_error(err, ENOMEM, "read `%s`", knob);
	}
	om_pids_sort(*pids, *n);
	return 0;
}

int om_cg_proc_path(const struct om_cg *cg, pid_t pid, char *out, om_error_t *err)
{
	char path[64];
	cleanup_free char *buf = NULL;
	char *line, *save = NULL;
	om_error_t tmp = NULL;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (om_read_file(path, &buf, NULL, &tmp) < 0) {
		om_error_release(&tmp);
		return om_make_error(err, ESRCH, "process %d", (int)pid);
	}
	/* lines are "ID:CONTROLLERS:PATH"; v2 is "0::PATH" */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2;

		if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL)
			continue;
		*c1 = '\0';
		*c2 = '\0';
		if (cg->ver == OM_CG_V2 ? strcmp(line, "0") == 0 && c1[1] == '\0' : strcmp(c1 + 1, "freezer") == 0) {
			snprintf(out, PATH_MAX, "%s", c2 + 1);
			return 0;
		}
	}
	snprintf(out, PATH_MAX, "/");
	return 0;
}

int om_cg_locate(const struct om_cg *cg, pid_t pid, unsigned long *group, pid_t *tree, om_error_t *err)
{
	char rel[PATH_MAX];
	unsigned long g;
	pid_t t;

	*group = 0;
	*tree = 0;
	if (om_cg_proc_path(cg, pid, rel, err) < 0)
		return -1;
	/* relative to the mount: /omtools/g<G>/t<R> */
	if (sscanf(rel, "/omtools/g%lu/t%d", &g, &t) == 2) {
		*group = g;
		*tree = t;
	} else if (sscanf(rel, "/omtools/g%lu", &g) == 1)
		*group = g;
	return 0;
}

int om_cg_freeze(const struct om_cg *cg, const char *path, om_error_t *err)
{
	char knob[PATH_MAX + 16];
	snprintf(knob, sizeof(knob), "%s/%s", path, cg->ver == OM_CG_V2 ? "cgroup.freeze" : "freezer.state");
	return om_write_knob(knob, cg->ver == OM_CG_V2 ? "1" : "FROZEN", err);
}

int om_cg_thaw(const struct om_cg *cg, const char *path, om_error_t *err)
{
	char knob[PATH_MAX + 16];
	snprintf(knob, sizeof(knob), "%s/%s", path, cg->ver == OM_CG_V2 ? "cgroup.freeze" : "freezer.state");
	return om_write_knob(knob, cg->ver == OM_CG_V2 ? "0" : "THAWED", err);
}

int om_cg_is_frozen(const struct om_cg *cg, const char *path, om_error_t *err)
{
	char knob[PATH_MAX + 16];
	cleanup_free char *buf = NULL;

	if (cg->ver == OM_CG_V2) {
		snprintf(knob, sizeof(knob), "%s/cgroup.events", path);
		if (om_read_file(knob, &buf, NULL, err) < 0)
			return -1;
		return strstr(buf, "frozen 1") != NULL;
	}
	snprintf(knob, sizeof(knob), "%s/freezer.state", path);
	if (om_read_file(knob, &buf, NULL, err) < 0)
		return -1;
	return strncmp(buf, "FROZEN", 6) == 0;
}
