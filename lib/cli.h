/* lib/cli.h — what every omtools command shares: one place that prints an
 * error and turns it into an exit code. Commands are thin files over libom. */
#ifndef OM_CLI_H
#define OM_CLI_H

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int om_cli_fail(const char *prog, om_error_t *err)
{
	int code = om_error_exit_code(*err);
	om_error_print(stderr, prog, *err);
	om_error_release(err);
	return code;
}

static inline int om_cli_usage_error(const char *prog, const char *msg)
{
	fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, msg, prog);
	return OM_EXIT_USAGE;
}

static inline int om_cli_version(const char *prog)
{
	printf("%s (omtools) %s\n", prog, PACKAGE_VERSION);
	return 0;
}

#endif
