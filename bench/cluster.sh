#!/usr/bin/env bash
# bench/cluster.sh — full migration between two nodes of an omlab cluster,
# against raw CRIU on the same processes in the same run.
#
# For each size (MEMS, MiB of patterned heap in one ZDTM worker with a child):
#   raw:  on node 1, `criu dump` of the worker's tree (it stops), then
#         `criu restore -d` of it (images on the node's local disk, plain):
#         downtime = dump + restore, as the group is gone from the dump's
#         freeze to the restore's end
#   om:   `migrategroup G 2` from node 1: freeze, dump, zstd, SHA-256, fsync,
#         publish to the shared store, node 2's omd verifies, decompresses,
#         restores, the etcd transaction, the thaw; its downtime (freeze on
#         node 1 to running on node 2, as migrategroup reports it) and the
#         command's wall time; then `migrategroup G home`, measured the same way
# Then the drain: four groups of DRAIN_MEM MiB on node 1, `omdrain 1` (two at
# once), against raw CRIU dumping and restoring the same four trees one after
# the other.
# Prints a table with the ratios om/raw (lower is better).
# Usage (as root, after a build): bash bench/cluster.sh   (env: MEMS="64 256 1024" DRAIN_MEM=64 OM_BUILDDIR=build)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${OM_BUILDDIR:-$TOP/build}
MEMS=${MEMS:-64 256 1024}
DRAIN_MEM=${DRAIN_MEM:-64}
CRIU=${OM_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU" ] || CRIU=$(command -v criu)
export PATH=$B:$PATH
unset OM_STORE OM_WORKDIR OM_CGROUP OM_NODE OM_CONFIG
make -C "$B" tests/zdtm/worker >/dev/null
WORKER=$B/tests/zdtm/worker
LAB=(--name bench --net 10.77.201 --port 23991)
T=$(mktemp -d /tmp/omclbench.XXXXXX)
chmod 755 "$T"
trap '"$TOP/cluster/omlab" "${LAB[@]}" down >/dev/null 2>&1 || true; rm -rf "$T"' EXIT

on() {
	local k=$1
	shift
	"$TOP/cluster/omlab" "${LAB[@]}" exec "$k" -- "$@"
}
now() { date +%s.%N; }
field() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
ratio() { echo "scale=2; $1 / $2" | bc; }
ready() { until grep -q ready=1 "$T/$1.status" 2>/dev/null; do sleep 0.1; done; }
# root_of K G : the root of group G's (only) tree on node K
root_of() { on "$1" showgroup --json "$2" | grep -o '"root":[0-9]*' | head -1 | cut -d: -f2; }
# raw K G : criu dump + criu restore -d of group G's tree on node K; prints "dump restore"
raw() {
	local k=$1 g=$2 root
	root=$(root_of "$k" "$g")
	on "$k" bash -c "
		d=/var/lib/omtools/work/raw-$g; rm -rf \$d; mkdir -p \$d
		t0=\$(date +%s.%N)
		'$CRIU' dump -t $root -D \$d --shell-job -o dump.log || { cat \$d/dump.log >&2; exit 1; }
		t1=\$(date +%s.%N)
		'$CRIU' restore -D \$d -d --shell-job -o restore.log || { cat \$d/restore.log >&2; exit 1; }
		t2=\$(date +%s.%N)
		rm -rf \$d
		echo \"\$(echo \"\$t1 - \$t0\" | bc) \$(echo \"\$t2 - \$t1\" | bc)\""
}

"$TOP/cluster/omlab" "${LAB[@]}" down >/dev/null 2>&1 || true
"$TOP/cluster/omlab" "${LAB[@]}" up 2 >/dev/null

rows=()
g=10
for mem in $MEMS; do
	g=$((g + 1))
	on 1 omrun -g $g -- "$WORKER" --dir "$T" --name m$mem --mem "$mem" --children 1 >/dev/null
	ready m$mem
	sleep 1
	read -r rd rr < <(raw 1 $g)
	raw_down=$(echo "$rd + $rr" | bc)
	sleep 1
	t0=$(now)
	out=$(on 1 migrategroup --json $g 2)
	t1=$(now)
	down=$(field downtime_s <<<"$out")
	total=$(echo "$t1 - $t0" | bc)
	sleep 1
	t0=$(now)
	out=$(on 2 migrategroup --json $g home)
	t1=$(now)
	down2=$(field downtime_s <<<"$out")
	total2=$(echo "$t1 - $t0" | bc)
	grep -q 'restores=3' "$T/m$mem.status" || { echo "worker m$mem did not live through 3 restores (raw CRIU, 1 -> 2, 2 -> home): $(cat "$T/m$mem.status")" >&2; exit 1; }
	rows+=("$(printf '%-22s %8.2fs %8.2fs %8.2fs %8.2fs %7s %7s' "$mem MiB, 1 -> 2" "$down" "$total" "$raw_down" "$rd" "$(ratio "$down" "$raw_down")" "$(ratio "$total" "$raw_down")")")
	rows+=("$(printf '%-22s %8.2fs %8.2fs %8.2fs %8.2fs %7s %7s' "$mem MiB, 2 -> home" "$down2" "$total2" "$raw_down" "$rd" "$(ratio "$down2" "$raw_down")" "$(ratio "$total2" "$raw_down")")")
	on 1 kill -TERM "$(grep -o 'pid=[0-9]*' "$T/m$mem.status" | cut -d= -f2)" || true
	sleep 1
	on 1 resetgroup -q $g || true
done

# the drain: four groups on node 1
for d in 1 2 3 4; do
	on 1 omrun -g $((40 + d)) -- "$WORKER" --dir "$T" --name d$d --mem "$DRAIN_MEM" --children 1 >/dev/null
done
for d in 1 2 3 4; do ready d$d; done
sleep 1
raw_drain=0
for d in 1 2 3 4; do
	read -r rd rr < <(raw 1 $((40 + d)))
	raw_drain=$(echo "$raw_drain + $rd + $rr" | bc)
done
sleep 1
t0=$(now)
out=$(on 1 omdrain --json 1)
t1=$(now)
drain=$(echo "$t1 - $t0" | bc)
moved=$(grep -o '"moved":true' <<<"$out" | wc -l)

printf 'migration between two omlab nodes (shared store on local disk, etcd with TLS), CRIU %s\n' "$("$CRIU" --version | awk '/Version/ {print $2}')"
printf '%-22s %9s %9s %9s %9s %7s %7s\n' "group (worker+child)" "downtime" "total" "raw d+r" "raw dump" "down/raw" "tot/raw"
printf '%s\n' "${rows[@]}"
printf '\ndrain of node 1 (4 groups x %d MiB, --parallel 2): %.2f s for %d moved; raw CRIU dump+restore of the four, one by one: %.2f s; ratio %s\n' \
	"$DRAIN_MEM" "$drain" "$moved" "$raw_drain" "$(ratio "$drain" "$raw_drain")"
