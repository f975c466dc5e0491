#include "config.h"
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 1, 0))) static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

int om_make_error(om_error_t *err, int status, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	om_error_release(err);
	*err = calloc(1, sizeof(**err));
	if (*err == NULL)
		return -1;
	(*err)->status = status < 0 ? -status : status;
	va_start(ap, fmt);
	(*err)->msg = vformat(fmt, ap);
	va_end(ap);
	return -1;
}

void om_error_append(om_error_t *err, const char *fmt, ...)
{
	va_list ap;
	char *more, *joined = NULL;

	if (err == NULL || *err == NULL)
		return;
	va_start(ap, fmt);
	more = vformat(fmt, ap);
	va_end(ap);
	if (more == NULL)
		return;
	if (asprintf(&joined, "%s; %s", (*err)->msg ? (*err)->msg : "", more) >= 0) {
		free((*err)->msg);
		(*err)->msg = joined;
	}
	free(more);
}

int om_error_wrap(om_error_t *err, const char *fmt, ...)
{
	va_list ap;
	char *ctx, *joined = NULL;

	if (err == NULL || *err == NULL)
		return -1;
	va_start(ap, fmt);
	ctx = vformat(fmt, ap);
	va_end(ap);
	if (ctx == NULL)
		return -1;
	if (asprintf(&joined, "%s: %s", ctx, (*err)->msg ? (*err)->msg : "") >= 0) {
		free((*err)->msg);
		(*err)->msg = joined;
	}
	free(ctx);
	return -1;
}

int om_error_set_exit(om_error_t *err, int exit_code)
{
	if (err && *err && (*err)->exit_code == 0)
		(*err)->exit_code = exit_code;
	return -1;
}

void om_error_release(om_error_t *err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}

void om_error_print(FILE *out, const char *prog, om_error_t err)
{
	if (err == NULL) {
		fprintf(out, "%s: unknown error\n", prog);
		return;
	}
	if (err->status > 0 && err->status < OM_ECRIU)
		fprintf(out, "%s: %s: %s\n", prog, err->msg ? err->msg : "error", strerror(err->status));
	else
		fprintf(out, "%s: %s\n", prog, err->msg ? err->msg : "error");
}

int om_error_exit_code(om_error_t err)
{
	if (err == NULL)
		return OM_EXIT_FAILURE;
	if (err->exit_code)
		return err->exit_code;
	switch (err->status) {
	case ESRCH:
	case OM_ENOTFOUND:
		return OM_EXIT_NOTFOUND;
	case OM_ECORRUPT:
		return OM_EXIT_STORE;
	case OM_ECRIU:
		return OM_EXIT_CRIU;
	case EBUSY:
	case EWOULDBLOCK:
		return OM_EXIT_BUSY;
	case OM_EUSAGE:
		return OM_EXIT_USAGE;
	case OM_ECLUSTER:
	case ESTALE: /* fenced: another node owns the group now */
		return OM_EXIT_CLUSTER;
	default:
		return OM_EXIT_FAILURE;
	}
}
