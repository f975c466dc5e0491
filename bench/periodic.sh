#!/usr/bin/env bash
# bench/periodic.sh — how long a periodic checkpoint stops the group, against raw CRIU.
#
# For each worker size (the ZDTM worker: MEM MiB of patterned heap plus one child
# with 8 MiB), one miggroup with one worker, then ROUNDS rounds, alternating on the
# same process in the same run:
#   raw:  criu dump --leave-running of the worker's tree (images on local disk,
#         uncompressed): the tree is stopped (seized) from the start of the dump to
#         its end, so its frozen time is the dump's wall time;
#   om:   omckpt --leave-running -g G, as omd's scheduler runs it for a policy
#         (omckpt --every): its frozen time is the manifest's freeze_seconds (from
#         the cgroup freeze to the thaw: CRIU dumps to local scratch inside it;
#         compression, checksums, fsync and publishing come after the thaw),
#         and its total wall time.
# Prints min / median / max of each and the ratio of the medians om/raw (frozen).
# Usage (as root): bash bench/periodic.sh   (env: SIZES="64 256" ROUNDS=5 OM_BUILDDIR=build)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${OM_BUILDDIR:-$TOP/build}
SIZES=${SIZES:-64 256} ROUNDS=${ROUNDS:-5}
CRIU=${OM_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
[ -x /usr/local/sbin/criu ] && CRIU=${OM_CRIU:-/usr/local/sbin/criu}
make -C "$B" tests/zdtm/worker >/dev/null
W=$B/tests/zdtm/worker
T=$(mktemp -d /tmp/ombench.XXXXXX)
export OM_STORE=$T/store OM_WORKDIR=$T/work
G=$((6000 + $$ % 1000))
trap '"$B/resetgroup" -q $G 2>/dev/null; rm -rf "$T"' EXIT

now() { date +%s.%N; }
# stats V... : "min median max" of the values
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f %.3f %.3f\n", v[1], m, v[NR]}'; }
median() { stats "$@" | cut -d' ' -f2; }

printf '%-8s %-22s %8s %8s %8s\n' "worker" "" "min" "median" "max"
for MEM in $SIZES; do
	"$B/resetgroup" -q $G 2>/dev/null || true
	rm -rf "$T/store" "$T/w.status" "$T/w.result"
	root=$("$B/omrun" -g $G -o "$T/w.log" -- "$W" --dir "$T" --name w --mem "$MEM" --children 1 | head -n1)
	until grep -q ready=1 "$T/w.status" 2>/dev/null; do sleep 0.1; done
	sleep 1
	raw=() frozen=() total=()
	for _ in $(seq "$ROUNDS"); do
		rm -rf "$T/raw"
		mkdir -p "$T/raw"
		t0=$(now)
		"$CRIU" dump -t "$root" -D "$T/raw" --leave-running --shell-job -o dump.log 2>/dev/null ||
			{ echo "raw criu dump failed, see $T/raw/dump.log" >&2; exit 1; }
		t1=$(now)
		raw+=("$(echo "$t1 - $t0" | bc -l)")
		rm -rf "$T/raw"
		sleep 0.5
		t0=$(now)
		"$B/omckpt" -q --leave-running -g $G
		t1=$(now)
		total+=("$(echo "$t1 - $t0" | bc -l)")
		gen=$(find "$OM_STORE/groups/$G" -mindepth 1 -maxdepth 1 -name 'gen-*' | sort -t- -k2 -n | tail -1)
		frozen+=("$("$B/omdecode" --json "$gen" | grep -o '"freeze_seconds":[0-9.e-]*' | cut -d: -f2)")
		rm -rf "$OM_STORE/groups/$G"/gen-*
		sleep 0.5
	done
	grep -q 'restores=0' "$T/w.status" || { echo "the worker was restored: not a leave-running run" >&2; exit 1; }
	kill -TERM "$root"
	for _ in $(seq 200); do [ -e "$T/w.result" ] && break; sleep 0.1; done
	[ "$(cat "$T/w.result" 2>/dev/null)" = PASS ] || { echo "worker: $(cat "$T/w.result" 2>/dev/null || echo no result)" >&2; exit 1; }
	row() { # LABEL1 LABEL2 "MIN MEDIAN MAX"
		local a b c
		read -r a b c <<<"$3"
		printf '%-8s %-22s %8s %8s %8s\n' "$1" "$2" "$a" "$b" "$c"
	}
	row "${MEM} MiB" "raw criu dump (frozen)" "$(stats "${raw[@]}")"
	row "" "omckpt -R frozen" "$(stats "${frozen[@]}")"
	row "" "omckpt -R total" "$(stats "${total[@]}")"
	printf '%-8s %-22s %8s\n' "" "frozen om/raw" "$(printf "%.2f" "$(echo "$(median "${frozen[@]}") / $(median "${raw[@]}")" | bc -l)")"
done
echo "($ROUNDS rounds each, seconds; worker PASS after all rounds: its memory and counter intact)"
