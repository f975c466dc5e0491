#include "config.h"
#include "workdir.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *om_workdir(const char *explicit_dir)
{
	const char *env = getenv("OM_WORKDIR");
	if (explicit_dir && *explicit_dir)
		return explicit_dir;
	if (env && *env)
		return env;
	return OM_DEFAULT_WORKDIR;
}

void om_workdir_sweep(const char *workdir)
{
	DIR *d = opendir(workdir);
	struct dirent *de;

	while (d && (de = readdir(d)) != NULL) {
		const char *dash = strrchr(de->d_name, '-');
		pid_t owner;
		DIR *sub;
		struct dirent *t;
		struct stat st;
		char path[PATH_MAX];

		if ((strncmp(de->d_name, "ckpt-", 5) && strncmp(de->d_name, "restore-", 8)) || dash == NULL ||
		    om_parse_pid(dash + 1, &owner) < 0 || om_pid_state(owner) == OM_PID_ALIVE)
			continue;
		snprintf(path, sizeof(path), "%.2000s/%.1000s", workdir, de->d_name);
		if (stat(path, &st) == 0 && st.st_mtime < time(NULL) - 7 * 24 * 3600) {
			om_error_t tmp = NULL; /* a week-old failure: its logs go too */
			if (om_rm_rf_at(AT_FDCWD, path, &tmp) < 0)
				om_error_release(&tmp);
			continue;
		}
		sub = opendir(path);
		while (sub && (t = readdir(sub)) != NULL) {
			char img[PATH_MAX];
			om_error_t tmp = NULL;
			if (strncmp(t->d_name, "tree-", 5))
				continue;
			snprintf(img, sizeof(img), "%.3000s/%.1000s/img", path, t->d_name);
			if (om_rm_rf_at(AT_FDCWD, img, &tmp) < 0)
				om_error_release(&tmp);
		}
		if (sub)
			closedir(sub);
	}
	if (d)
		closedir(d);
}
