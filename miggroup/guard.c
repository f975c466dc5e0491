/* miggroup/guard.c — the thaw guard (group.h): whoever freezes a group and is
 * then killed must not leave it frozen. */
#include "config.h"
#include "group.h"
#include "lock.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Is any member still traced (CRIU not gone yet)? */
static bool any_traced(const struct om_group *g)
{
	for (size_t i = 0; i < g->n_trees; i++)
		for (size_t j = 0; j < g->trees[i].n_members; j++) {
			char path[64], line[256];
			FILE *f;
			bool traced = false;
			snprintf(path, sizeof(path), "/proc/%d/status", (int)g->trees[i].members[j].pid);
			f = fopen(path, "re");
			if (f == NULL)
				continue;
			while (fgets(line, sizeof(line), f))
				if (strncmp(line, "TracerPid:", 10) == 0) {
					traced = strtol(line + 10, NULL, 10) != 0;
					break;
				}
			fclose(f);
			if (traced)
				return true;
		}
	return false;
}

static void guard_main(struct om_group *g, const char *lockname, int fd)
{
	bool armed = true;
	char c;
	ssize_t r;
	om_error_t e = NULL;

	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (c == 'A')
			armed = true;
		else if (c == 'N')
			armed = false;
	}
	if (!armed)
		_exit(0);
	/* our creator died with the group frozen: CRIU, its child, dies with it
	 * (PR_SET_PDEATHSIG) and lets go of the members first */
	for (int i = 0; i < 200 && any_traced(g); i++)
		om_sleep_ms(50);
	/* under the group's lock, as every command that changes it: taking it
	 * finishes an interrupted migration (its intent: kill, not thaw), and no
	 * other omckpt's freeze can be undone by us */
	int lock_fd = -1;
	if (lockname[0] &&
	    om_lock_named(&g->cg, lockname, &(struct om_bound){.timeout_s = 30, .cancel_fd = -1}, &lock_fd, &e) < 0) {
		om_error_release(&e);
		_exit(1); /* the holder finds the stale freeze and thaws it */
	}
	if (g->id) {
		struct om_group now = {0};
		if (om_group_load(&g->cg, g->id, &now, &e) == 0) {
			now.frozen = true;
			om_group_thaw(&now, &e);
			om_group_release(&now);
		}
		om_error_release(&e);
	}
	g->frozen = true;
	om_group_thaw(g, &e); /* the trees it knew (omckpt -p: a temporary leaf) */
	om_error_release(&e);
	_exit(0);
}

int om_thaw_guard_start(const struct om_group *g, const char *lockname, struct om_thaw_guard *gd, om_error_t *err)
{
	int p[2];
	pid_t pid;

	gd->pid = 0;
	gd->fd = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return om_make_error(err, errno, "thaw guard: pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return om_make_error(err, errno, "thaw guard: fork");
	}
	if (pid == 0) {
		struct om_group copy = *g; /* this process's own copy of the memory */
		char name[64];
		snprintf(name, sizeof(name), "%s", lockname ? lockname : "");
		int fd;
		setsid(); /* no terminal signal meant for omckpt reaches it */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		prctl(PR_SET_NAME, "omckpt-guard");
		/* keep nothing of the parent's (its store and group locks above all) */
		fd = dup2(p[0], 3) < 0 ? p[0] : 3;
		if (fd == 3)
			syscall(SYS_close_range, 4, ~0U, 0);
		guard_main(&copy, name, fd);
	}
	close(p[0]);
	gd->pid = pid;
	gd->fd = p[1];
	return 0;
}

void om_thaw_guard_arm(struct om_thaw_guard *gd, bool armed)
{
	if (gd->fd >= 0 && om_write_all(gd->fd, armed ? "A" : "N", 1) < 0) {
		/* the guard is gone: nothing to tell */
	}
}

void om_thaw_guard_stop(struct om_thaw_guard *gd)
{
	if (gd->pid <= 0)
		return;
	om_thaw_guard_arm(gd, false);
	close(gd->fd);
	gd->fd = -1;
	while (waitpid(gd->pid, NULL, 0) < 0 && errno == EINTR)
		;
	gd->pid = 0;
}
