/* tests/tap.h — a tiny Test Anything Protocol helper for C unit tests.
 *
 *   plan(3);                   or no plan: done_testing() prints "1..N"
 *   ok(x == 1, "x is %d", x);  returns the truth of the condition
 *   diag("note %s", s);        "# note ..." on stdout
 *   skip(2, "needs root");     two "ok N # skip needs root" lines
 *   return done_testing();     0 when every test passed and the plan matched
 */
#ifndef OM_TAP_H
#define OM_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_planned = -1;
static int tap_run;
static int tap_failed;

__attribute__((unused)) static void plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

__attribute__((unused, format(printf, 1, 2))) static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

__attribute__((unused, format(printf, 4, 5))) static int tap_ok(int cond, const char *file, int line, const char *fmt,
								...)
{
	va_list ap;

	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	if (!cond)
		printf("#   Failed test at %s line %d\n", file, line);
	fflush(stdout);
	return cond;
}
#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

__attribute__((unused)) static void skip(int n, const char *reason)
{
	for (int i = 0; i < n; i++)
		printf("ok %d # skip %s\n", ++tap_run, reason);
	fflush(stdout);
}

__attribute__((unused, noreturn)) static void bail_out(const char *reason)
{
	printf("Bail out! %s\n", reason);
	fflush(stdout);
	exit(255);
}

/* Print the plan if there was none; return the process exit code. */
__attribute__((unused)) static int done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_run);
	else if (tap_planned != tap_run)
		printf("# planned %d tests but ran %d\n", tap_planned, tap_run);
	if (tap_failed)
		printf("# failed %d of %d tests\n", tap_failed, tap_run);
	fflush(stdout);
	return tap_failed == 0 && (tap_planned < 0 || tap_planned == tap_run) ? 0 : 1;
}

#endif
