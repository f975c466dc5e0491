/* lib/error.h — the one error contract of libom.
 *
 * Every fallible libom function takes an `om_error_t *err` last, returns a
 * negative value on failure and fills *err with an errno and a message.
 * Callers add context with om_error_wrap() as the error travels up, so the
 * CLI can print a chain such as
 *   omckpt: checkpoint group 3: dump tree 4012: criu dump failed: ...
 * The library never prints and never exits; the CLI prints once.
 */
#ifndef OM_ERROR_H
#define OM_ERROR_H

#include <stdio.h>

struct om_error_s {
	int status;    /* an errno value (or OM_E*), 0 when none applies */
	int exit_code; /* set by the layer that knows what failed (om_error_set_exit), else 0 */
	char *msg;     /* context chain, outermost first */
};
typedef struct om_error_s *om_error_t;

/* Exit codes the commands use; documented in omtools(7). */
enum {
	OM_EXIT_OK = 0,
	OM_EXIT_FAILURE = 1,  /* anything else */
	OM_EXIT_USAGE = 2,    /* bad command line */
	OM_EXIT_NOTFOUND = 3, /* unknown group, PID or generation; empty group */
	OM_EXIT_STORE = 4,    /* store not writable, corrupt or truncated generation */
	OM_EXIT_CRIU = 5,     /* CRIU refused or failed */
	OM_EXIT_BUSY = 6,     /* a PID needed for restore is taken; lock held */
	OM_EXIT_CLUSTER = 7,  /* no etcd configured, etcd unreachable, a node refused or is
			       * drained, dead or unknown */
};

/* Extra status values beyond errno, to classify errors for exit codes. */
#define OM_ECRIU 4096	  /* CRIU failed; message carries CRIU's own words */
#define OM_ECORRUPT 4097  /* a stored file failed its checksum or does not parse */
#define OM_ENOTFOUND 4098 /* unknown group, empty group, no generation: no errno text */
#define OM_EUSAGE 4099	  /* a bad argument given by the user */
#define OM_ECLUSTER 4100  /* the cluster (etcd, a node agent) refused or is unreachable */

/* Set *err (released first) and return -1. */
int om_make_error(om_error_t *err, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix the message of *err with a formatted context; return -1. */
int om_error_wrap(om_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append "; <formatted>" to the message of *err (status and exit class kept). */
void om_error_append(om_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void om_error_release(om_error_t *err);
/* Classify an error for the exit status (e.g. OM_EXIT_STORE for any failure
 * writing the store, whatever its errno); returns -1 for `return` chaining. */
int om_error_set_exit(om_error_t *err, int exit_code);
/* Human text: "msg: strerror(status)" (no errno text for OM_E* statuses). */
void om_error_print(FILE *out, const char *prog, om_error_t err);
int om_error_exit_code(om_error_t err);

#define cleanup_om_error __attribute__((cleanup(om_error_release)))

#endif
