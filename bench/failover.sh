#!/usr/bin/env bash
# bench/failover.sh — failover of a dead node's group in an omlab cluster of
# three nodes (lease_ttl 4 s), against raw CRIU, in the same run.
#
# A ZDTM worker with MEM MiB of patterned heap and a child runs in group G.
# raw:  on its node, `criu dump` of the tree then `criu restore -d` of the same
#       images (local disk, plain): the restore time is the comparison.
# Then RUNS times: inside the node that runs G, a loop checkpoints it every
# EVERY s (`omckpt --leave-running`; the periodic scheduler of omd does the
# same); after a random time between EVERY and 2 x EVERY the node is powered
# off (`omlab kill`), and the script polls etcd and the nodes (every 0.1 s):
#   detection: from the kill to the node's lease gone in etcd
#   RTO:       from the kill to G's processes running on a survivor (the owner
#              key names it and its showgroup lists them)
#   restore:   om_restore on the survivor, as its omd logs it (restore_s)
#   RPO:       the age, at the kill, of the state restored: from the start of
#              the checkpoint that wrote the generation restored to the kill
# The killed node starts again and the next run kills the node G runs on then.
# Prints each run, then min/median/max, and restore/raw.
# Usage (as root, after a build): bash bench/failover.sh  (env: MEM=256 RUNS=3 EVERY=30 OM_BUILDDIR=build)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${OM_BUILDDIR:-$TOP/build}
MEM=${MEM:-256}
RUNS=${RUNS:-3}
EVERY=${EVERY:-30}
CRIU=${OM_CRIU:-/usr/local/sbin/criu}
[ -x "$CRIU" ] || CRIU=$(command -v criu)
export PATH=$B:$PATH
unset OM_STORE OM_WORKDIR OM_CGROUP OM_NODE OM_CONFIG OM_FAULT
make -C "$B" tests/zdtm/worker >/dev/null
WORKER=$B/tests/zdtm/worker
NAME=bfo
PORT=23997
LAB=(--name "$NAME" --net 10.77.97 --port "$PORT")
LABDIR=/var/lib/omlab/$NAME
G=41
T=$(mktemp -d /tmp/omfobench.XXXXXX)
chmod 755 "$T"
trap '"$TOP/cluster/omlab" "${LAB[@]}" down >/dev/null 2>&1 || true; rm -rf "$T"' EXIT

on() {
	local k=$1
	shift
	"$TOP/cluster/omlab" "${LAB[@]}" exec "$k" -- "$@"
}
conf() { awk -F' *= *' -v k="$1" '$1 == k {print $2}' "$LABDIR/host.conf"; }
ectl() {
	ETCDCTL_API=3 timeout 20 etcdctl --endpoints "https://127.0.0.1:$PORT" --cacert "$(conf etcd_ca)" \
		--cert "$(conf etcd_cert)" --key "$(conf etcd_key)" "$@"
}
now() { date +%s.%N; }
calc() { echo "scale=2; $*" | bc; }
ready() { until grep -q ready=1 "$T/$1.status" 2>/dev/null; do sleep 0.1; done; }
owner_of() { ectl get --print-value-only "/omtools/groups/$1" | grep -o '"node":"[0-9]*"' | cut -d'"' -f4; }
alive_node() { ectl get --keys-only "/omtools/nodes/$1" | grep -q .; }
# runs_on K G : G has processes in node K's cgroups, seen from the host (a
# showgroup inside the node would take PIDs there, maybe one the group needs)
runs_on() {
	local d
	for d in /sys/fs/cgroup/unified /sys/fs/cgroup; do
		[ -d "$d/omlab-$NAME/node$1/omtools/g$2" ] || continue
		find "$d/omlab-$NAME/node$1/omtools/g$2" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -q . && return 0
	done
	return 1
}
root_of() { on "$1" showgroup --json "$2" | grep -o '"root":[0-9]*' | head -1 | cut -d: -f2; }
stats() { # min median max of the arguments
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f / %.2f / %.2f", v[1], m, v[NR]}'
}

"$TOP/cluster/omlab" "${LAB[@]}" down >/dev/null 2>&1 || true
"$TOP/cluster/omlab" "${LAB[@]}" up 3 >/dev/null
on 1 omrun -g $G -- "$WORKER" --dir "$T" --name w --mem "$MEM" --children 1 >/dev/null
ready w
sleep 1

# raw CRIU on node 1: dump, then restore of the same images
root=$(root_of 1 $G)
raw_restore=$(on 1 bash -c "
	d=/var/lib/omtools/work/raw-$G; rm -rf \$d; mkdir -p \$d
	'$CRIU' dump -t $root -D \$d --shell-job -o dump.log || { cat \$d/dump.log >&2; exit 1; }
	t1=\$(date +%s.%N)
	'$CRIU' restore -D \$d -d --shell-job -o restore.log || { cat \$d/restore.log >&2; exit 1; }
	t2=\$(date +%s.%N)
	rm -rf \$d
	echo \"\$t2 - \$t1\" | bc")
echo "raw criu restore of the ${MEM} MiB tree: ${raw_restore} s"

det=() rto=() rst=() rpo=()
node=1
for ((run = 1; run <= RUNS; run++)); do
	# the periodic checkpoint, inside the node: "GEN START" per checkpoint
	: >"$T/ckpt.log"
	on "$node" bash -c "while :; do s=\$(date +%s.%N); omckpt --leave-running -g $G >/dev/null 2>&1 &&
		echo \"\$(ls $LABDIR/store/groups/$G | sed -n 's/^gen-//p' | sort -n | tail -1) \$s\" >>$T/ckpt.log; sleep $EVERY; done" \
		</dev/null >/dev/null 2>&1 &
	sleep "$(calc "$EVERY + $EVERY * $RANDOM / 32768")"
	t_kill=$(now)
	"$TOP/cluster/omlab" "${LAB[@]}" kill "$node" >/dev/null
	t_dead='' t_run=''
	while :; do
		if [ -z "$t_dead" ] && ! alive_node "$node"; then t_dead=$(now); fi
		o=$(owner_of $G)
		if [ -n "$t_dead" ] && [ -n "$o" ] && [ "$o" != "$node" ] && runs_on "$o" $G; then
			t_run=$(now)
			break
		fi
		sleep 0.1
	done
	wait 2>/dev/null || true
	# the survivor logs the failover once the owner key records it (just after the group runs)
	line=
	for _ in $(seq 300); do
		line=$(cat "$LABDIR/node$o"/omd*.log | grep "event=failover group=$G from=$node to=$o " | tail -1) || true
		[ -n "$line" ] && break
		sleep 0.1
	done
	gen=$(grep -o 'generation=[0-9]*' <<<"$line" | cut -d= -f2)
	r=$(grep -o 'restore_s=[0-9.]*' <<<"$line" | cut -d= -f2)
	start=$(awk -v g="$gen" '$1 == g {print $2}' "$T/ckpt.log" | tail -1)
	det+=("$(calc "$t_dead - $t_kill")")
	rto+=("$(calc "$t_run - $t_kill")")
	rst+=("$r")
	rpo+=("$(calc "$t_kill - ${start:-$t_kill}")")
	printf 'run %d: node %s -> %s, generation %s: detection %.2f s, RTO %.2f s (restore %.2f s), RPO %.2f s%s\n' \
		"$run" "$node" "$o" "$gen" "${det[-1]}" "${rto[-1]}" "$r" "${rpo[-1]}" "$([ -n "$start" ] || echo ' (generation not from the loop?)')"
	# failed tries before the one that worked (e.g. a PID of the group taken on the preferred node)
	since=ts=$(date -u -d "@${t_kill%.*}" +%Y-%m-%dT%H:%M:%S)
	cat "$LABDIR"/node*/omd*.log | awk -v s="$since" '$1 >= s' | grep "event=failover-failed group=$G " |
		sed 's/^/    /' | cut -c1-240 || true
	"$TOP/cluster/omlab" "${LAB[@]}" start "$node" >/dev/null
	node=$o
done
echo
echo "failover of a ${MEM} MiB group (worker + child), lease_ttl 4 s, ${RUNS} runs, checkpoint every ${EVERY} s:"
echo "  detection (kill -> lease gone) min/median/max: $(stats "${det[@]}") s"
echo "  RTO (kill -> running elsewhere)  min/median/max: $(stats "${rto[@]}") s"
echo "  restore on the survivor          min/median/max: $(stats "${rst[@]}") s"
echo "  RPO (age of the state restored)  min/median/max: $(stats "${rpo[@]}") s"
echo "  raw criu restore: ${raw_restore} s; restore / raw (median): $(calc "$(stats "${rst[@]}" | cut -d/ -f2) / $raw_restore")"
