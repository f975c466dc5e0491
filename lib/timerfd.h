/* lib/timerfd.h — periodic timerfds CRIU restores disarmed.
 *
 * A periodic timerfd that expires while its process is frozen is not re-armed
 * by the kernel until the process reads it; /proc/PID/fdinfo then shows
 * it_value (0, 0), which CRIU (4.2.1) dumps as is, and its restore sets that
 * value: the timer is disarmed and never ticks again. omrestore calls this at
 * CRIU's post-restore (the processes exist, they do not run yet). */
#ifndef OM_TIMERFD_H
#define OM_TIMERFD_H

#include "error.h"

#include <sys/types.h>

/* Re-arm, one period from now, every timerfd of the processes showing
 * it_value (0, 0) with a non-zero it_interval; keep its pending expirations.
 * *fixed counts them. */
int om_timerfd_rearm(const pid_t *pids, size_t n, size_t *fixed, om_error_t *err);

#endif
