#!/usr/bin/env bash
# bench/shm-1g.sh — checkpoint of a group sharing a 1 GiB SysV segment (shmig)
# against the same processes in an IPC namespace of their own dumped by raw CRIU.
#
#   om:   a parent and its child attach one SysV segment of SIZE MiB in the host
#         IPC namespace (filled with a half-compressible pattern); they form a
#         miggroup; omckpt --leave-running -g G saves the segment through shmig
#         (frozen: scan + contents + CRIU dump), compresses, publishes.
#   raw:  the same program started by `unshare --ipc --pid --fork` (so CRIU dumps
#         the IPC namespace, segment contents included); criu dump --leave-running
#         of its init, images on local disk, uncompressed.
# Prints min/median per side over ROUNDS (after a warm-up round), the ratios om/raw (lower is better),
# and how long the om group stayed frozen against raw CRIU's dump (CRIU freezes
# the tree for its whole dump).
# Usage (as root): bash bench/shm-1g.sh   (env: SIZE=1024 ROUNDS=3 OM_BUILDDIR=build)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${OM_BUILDDIR:-$TOP/build}
SIZE=${SIZE:-1024} ROUNDS=${ROUNDS:-3}
CRIU=${OM_CRIU:-/usr/local/sbin/criu}
T=$(mktemp -d /tmp/omshmbench.XXXXXX)
export OM_STORE=$T/store OM_WORKDIR=$T/work
G=$((7000 + $$ % 1000))
NSPID=
cleanup() {
	for p in $("$B/showgroup" --json $G 2>/dev/null | grep -o '"pid":[0-9]*' | cut -d: -f2) $NSPID; do
		kill -9 "$p" 2>/dev/null || true
	done
	"$B/resetgroup" -q $G 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

# the program: SIZE MiB of SysV shm, every other MiB random (incompressible), the rest a pattern
cat >"$T/shmhold.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	size_t mib = (size_t)atol(argv[1]), sz = mib << 20;
	int id = shmget(IPC_PRIVATE, sz, IPC_CREAT | 0600);
	unsigned char *p = id < 0 ? NULL : shmat(id, NULL, 0);
	unsigned long long x = 88172645463325252ULL;
	if (p == NULL || p == (void *)-1)
		return 1;
	shmctl(id, IPC_RMID, NULL); /* gone with the last detach */
	for (size_t m = 0; m < mib; m++)
		for (size_t i = 0; i < (1u << 20); i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			unsigned long long v = (m & 1) ? x : (m * 1048576 + i) / 64;
			memcpy(p + (m << 20) + i, &v, 8);
		}
	if (fork() == 0)
		for (;;)
			pause();
	fputs("ready\n", stdout);
	fflush(stdout);
	for (;;)
		pause();
}
EOF
gcc -O2 -o "$T/shmhold" "$T/shmhold.c"
now() { date +%s.%N; }
wait_ready() { for _ in $(seq 600); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
minimum() { sort -g | head -1; }

# om: the group in the host IPC namespace
"$B/omrun" -g $G -o "$T/om.out" -- "$T/shmhold" "$SIZE" >/dev/null
wait_ready "$T/om.out"
# raw: the same in its own IPC (and PID) namespace
setsid unshare --ipc --pid --fork setsid "$T/shmhold" "$SIZE" >"$T/raw.out" 2>&1 </dev/null &
wait_ready "$T/raw.out"
NSPID=$(pgrep -P $! -f shmhold | head -1)

: >"$T/om" ; : >"$T/frozen" ; : >"$T/raw"
# round 0 warms up: on VMs whose host backs guest memory lazily, the first
# touch of memory costs far more than the copy itself (page cache included)
for r in $(seq 0 "$ROUNDS"); do
	rm -rf "$T/img"; mkdir -p "$T/img"
	t0=$(now)
	"$CRIU" dump -t "$NSPID" -D "$T/img" --leave-running --shell-job -o dump.log ||
		{ echo "raw criu dump failed: $T/img/dump.log" >&2; exit 1; }
	t1=$(now)
	[ "$r" = 0 ] || echo "$t1 - $t0" | bc >>"$T/raw"
	raw_size=$(du -sb "$T/img" | cut -f1)
	t0=$(now)
	"$B/omckpt" -q --leave-running -g $G
	t1=$(now)
	gen=$(ls -d "$OM_STORE/groups/$G"/gen-* | sort -t- -k2 -n | tail -1)
	if [ "$r" = 0 ]; then rm -rf "$gen"; continue; fi
	echo "$t1 - $t0" | bc >>"$T/om"
	"$B/omdecode" --json "$gen" | grep -o '"freeze_seconds":[0-9.e-]*' | cut -d: -f2 >>"$T/frozen"
	om_size=$("$B/omdecode" --json "$gen" | grep -o '"stored_bytes":[0-9]*' | head -1 | cut -d: -f2)
	rm -rf "$gen"
	echo "round $r: raw dump $(tail -1 "$T/raw") s, omckpt $(tail -1 "$T/om") s (frozen $(tail -1 "$T/frozen") s)" >&2
done
rmed=$(median <"$T/raw") omed=$(median <"$T/om") fmed=$(median <"$T/frozen")
printf '%-40s %10s %10s\n' "SysV segment $SIZE MiB, $ROUNDS rounds" "min" "median"
printf '%-40s %10.3f %10.3f\n' "raw criu dump (own IPC ns), s" "$(minimum <"$T/raw")" "$rmed"
printf '%-40s %10.3f %10.3f\n' "omckpt --leave-running (host ns), s" "$(minimum <"$T/om")" "$omed"
printf '%-40s %10.3f %10.3f\n' "... of which frozen, s" "$(minimum <"$T/frozen")" "$fmed"
printf 'ratio omckpt/raw:        %.2f\n' "$(echo "$omed / $rmed" | bc -l)"
printf 'ratio frozen/raw:        %.2f\n' "$(echo "$fmed / $rmed" | bc -l)"
printf 'size om (zstd) / raw:    %.2f  (%s / %s bytes)\n' "$(echo "$om_size / $raw_size" | bc -l)" "$om_size" "$raw_size"
