/* lib/probe.h — is CRIU really usable on this node? `criu check` is not
 * enough: on some VMs it passes while every dump hangs (hardware breakpoints
 * that never fire) or every inet socket is refused. The probe dumps and
 * restores a real process, under a bound, and reports what it found. Both
 * `omckpt --check` and scripts/setup.sh (through omckpt --check) use it. */
#ifndef OM_PROBE_H
#define OM_PROBE_H

#include "bounded.h"
#include "error.h"

#include <stdbool.h>

struct om_probe_report {
	char criu_version[32];
	char criu_binary[256];
	char check_warnings[1024]; /* `criu check` warnings, "; "-joined */
	/* `criu check --feature NAME`: 1 yes, 0 no, -1 could not tell */
	int breakpoints, network_lock_nftables, userns, uffd, timens;
	/* the smoke test: a process of another user sleeping in a syscall, with
	 * a TCP listening socket, a connected unix socket pair and a pipe, both
	 * with bytes in flight, dumped and restored */
	bool smoke_ok;
	double dump_seconds, restore_seconds;
	char smoke_detail[1024]; /* what was verified, or why it failed */
};

/* Run the probe in workdir (a scratch directory, created if needed). Returns
 * 0 when CRIU works here, <0 with the reason (exit class OM_EXIT_CRIU); the
 * report is filled as far as the probe got either way. */
int om_probe_criu(const char *workdir, int cancel_fd, struct om_probe_report *rep, om_error_t *err);

#endif
