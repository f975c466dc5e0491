/* lib/workdir.h — the node-local scratch directory where omckpt and
 * omrestore keep CRIU's raw images and logs while they work:
 * WORKDIR/ckpt-<g|p><id>-<pid>/ and WORKDIR/restore-<g|p><id>-<pid>/. */
#ifndef OM_WORKDIR_H
#define OM_WORKDIR_H

#define OM_DEFAULT_WORKDIR "/var/lib/omtools/work"

/* The scratch directory: explicit_dir (--work-dir) > $OM_WORKDIR > OM_DEFAULT_WORKDIR. */
const char *om_workdir(const char *explicit_dir);
/* Drop the raw images an omckpt/omrestore killed mid-way left in the scratch
 * directory (its CRIU logs stay for the administrator, for a week). Best effort. */
void om_workdir_sweep(const char *workdir);

#endif
