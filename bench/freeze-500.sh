#!/usr/bin/env bash
# bench/freeze-500.sh — how long a big group stays frozen, against raw CRIU, same run.
#
# Starts a miggroup of one process tree of NPROCS processes: SHAPE=star (default)
# is a bash that forks NPROCS-1 `sleep` children, SHAPE=chain is NPROCS `sleep`
# processes each the parent of the next (the deepest tree: what splitting a
# leaf into trees and the whole-tree check cost most on). Then for ROUNDS rounds
# it measures
#   raw:  criu dump --leave-running of the tree: CRIU freezes the tree itself for
#         the whole dump, so its wall time is the freeze a raw dump costs
#   om:   omckpt --leave-running -g G: the freeze_seconds of the manifest (from
#         the first freeze write to the thaw), and of it the part that is not
#         CRIU's dump (freeze wait, re-reading the group, whole-tree check,
#         manifest) = freeze_seconds - dump_seconds
# and prints per-round medians with the ratio om/raw (lower is better).
# Usage (as root): bash bench/freeze-500.sh   (env: NPROCS=500 ROUNDS=5 SHAPE=star|chain OM_BUILDDIR=build)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${OM_BUILDDIR:-$TOP/build}
NPROCS=${NPROCS:-500} ROUNDS=${ROUNDS:-5} SHAPE=${SHAPE:-star}
CRIU=${OM_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
[ -x /usr/local/sbin/criu ] && CRIU=${OM_CRIU:-/usr/local/sbin/criu}
T=$(mktemp -d /tmp/ombench.XXXXXX)
export OM_STORE=$T/store OM_WORKDIR=$T/work
G=$((6000 + $$ % 1000))
trap 'for p in $(pids); do kill -9 $p 2>/dev/null; done; "$B/resetgroup" -q $G 2>/dev/null; rm -rf "$T"' EXIT

pids() { "$B/showgroup" --json $G 2>/dev/null | grep -o '"pid":[0-9]*' | cut -d: -f2; }
roots() { "$B/showgroup" --json $G 2>/dev/null | grep -o '"root":[0-9]*' | cut -d: -f2; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

if [ "$SHAPE" = chain ]; then
	# each level forks the next in a subshell, then becomes `sleep`
	"$B/omrun" -g $G -- bash -c 'f() { if [ "$1" -gt 1 ]; then (f $(($1 - 1))) & fi; exec sleep 1e6; }; f '"$NPROCS" >/dev/null
else
	"$B/omrun" -g $G -- bash -c "for i in \$(seq $((NPROCS - 1))); do sleep 1e6 & done; wait" >/dev/null
fi
for _ in $(seq 300); do
	[ "$(pids | wc -l)" -ge "$NPROCS" ] && break
	sleep 0.1
done
[ "$(pids | wc -l)" -ge "$NPROCS" ] || { echo "the group did not reach $NPROCS processes" >&2; exit 1; }
sleep 1
R=$(roots)

: >"$T/raw" && : >"$T/om" && : >"$T/omx" && : >"$T/omall"
for r in $(seq "$ROUNDS"); do
	rm -rf "$T/img"
	mkdir -p "$T/img"
	t0=$(now)
	"$CRIU" dump -t "$R" -D "$T/img" --leave-running --shell-job -o dump.log 2>/dev/null ||
		{ echo "raw criu dump failed, see $T/img/dump.log" >&2; exit 1; }
	t1=$(now)
	echo "$t1 - $t0" | bc -l >>"$T/raw"
	t0=$(now)
	"$B/omckpt" -q --leave-running -g $G
	t1=$(now)
	echo "$t1 - $t0" | bc -l >>"$T/omall"
	gen=$(ls -d "$OM_STORE/groups/$G"/gen-* | sort -t- -k2 -n | tail -1)
	js=$("$B/omdecode" --json "$gen")
	fz=$(echo "$js" | grep -o '"freeze_seconds":[0-9.e-]*' | head -1 | cut -d: -f2)
	dump=$(echo "$js" | grep -o '"dump_seconds":[0-9.e-]*' | cut -d: -f2 | paste -sd+ | bc -l)
	echo "$fz" >>"$T/om"
	echo "$fz - $dump" | bc -l >>"$T/omx"
	rm -rf "$OM_STORE/groups/$G"/gen-*
done

raw=$(median <"$T/raw") om=$(median <"$T/om") omx=$(median <"$T/omx") omall=$(median <"$T/omall")
printf 'workload: one tree of %d processes (%s), %d rounds, medians\n' "$NPROCS" "$SHAPE" "$ROUNDS"
printf '%-36s %9.3fs\n' "raw criu dump --leave-running" "$raw"
printf '%-36s %9.3fs   ratio %.2f\n' "omckpt --leave-running: frozen" "$om" "$(echo "$om / $raw" | bc -l)"
printf '%-36s %9.3fs   ratio %.2f\n' "  of which not CRIU's dump" "$omx" "$(echo "$omx / $raw" | bc -l)"
printf '%-36s %9.3fs   ratio %.2f\n' "omckpt --leave-running: whole run" "$omall" "$(echo "$omall / $raw" | bc -l)"
