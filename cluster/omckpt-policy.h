/* cluster/omckpt-policy.h — omckpt --every and --policy (man/omckpt.8): the
 * part of the omckpt command that stores and lists periodic-checkpoint
 * policies (cluster/policy.h). Compiled into omckpt only (not libom): it
 * prints, and reads the settings like every command (lib/cli.h). */
#ifndef OM_OMCKPT_POLICY_H
#define OM_OMCKPT_POLICY_H

#include <stdbool.h>

struct om_policy_args {
	unsigned long group; /* 0: every group (list only) */
	const char *every;   /* --every's text; NULL: list */
	long keep;	     /* --keep N; -1: not given */
	bool tcp_established;
	bool quiet, json;
};

/* Store (every > 0), remove (0, off) or list the policies. Returns the exit status. */
int om_omckpt_policy(const char *prog, const struct om_policy_args *a);

#endif
