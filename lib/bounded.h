/* lib/bounded.h — no wait without a bound.
 *
 * Every wait of libom has a deadline and a cancel fd: an fd the caller makes
 * readable (or hangs up) to say "stop now" — the commands pass a signalfd of
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT, a daemon an eventfd, the keeper the read end
 * of a pipe held by omrestore. 0 or -1 means "no cancel fd" (so that a
 * zero-initialised options struct never watches stdin).
 *
 * om_bounded_call() runs work that may hang (CRIU) in a child process: when
 * the deadline passes or the cancel fd fires, the child and every process
 * below it are killed (om_proc_kill_trees) and the caller gets an error
 * (ETIMEDOUT or ECANCELED) instead of a hang. Once the child has closed its
 * output, what it reported stands: a later cancel does not undo it. */
#ifndef OM_BOUNDED_H
#define OM_BOUNDED_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct om_bound {
	double timeout_s;      /* > 0 */
	int cancel_fd;	       /* <= 0: none */
	double cancel_grace_s; /* on a cancel, let the work end by itself for this
				* long before killing it (0: kill at once); the
				* call fails with ECANCELED either way */
};

/* Sleep ms milliseconds unless the cancel fd fires first: then fail with
 * ECANCELED ("interrupted"). */
int om_pause(int cancel_fd, long ms, om_error_t *err);
/* Has the cancel fd fired? (no wait) */
bool om_cancelled(int cancel_fd);

/* Work run by om_bounded_call() in the child: write what the parent should
 * see to out_fd, return the child's exit status (0..125). */
typedef int (*om_bounded_fn)(void *arg, int out_fd);

struct om_bounded_result {
	int status; /* the child's wait status */
	char *out;  /* what it wrote (NUL-terminated; at most out_max bytes kept) */
	size_t len;
	pid_t pid; /* the child (gone by now) */
};

/* Run fn(arg, out_fd) in a child (with PR_SET_PDEATHSIG). Collect what it
 * writes until it exits. If b->timeout_s passes or b->cancel_fd fires
 * first, kill the child and its descendants and fail with ETIMEDOUT or
 * ECANCELED (message: "<what> gave no answer within N s" / "interrupted").
 * On success res->out is malloc'ed: free it; on failure it is NULL. */
int om_bounded_call(const struct om_bound *b, const char *what, om_bounded_fn fn, void *arg, size_t out_max,
		    struct om_bounded_result *res, om_error_t *err);

/* Run argv (argv[0] a path) through om_bounded_call, stdout and stderr captured. */
int om_bounded_exec(const struct om_bound *b, char *const argv[], size_t out_max, struct om_bounded_result *res,
		    om_error_t *err);

#endif
