#!/usr/bin/env bash
# scripts/demo.sh — the main job of omtools, end to end, on real processes:
# three unrelated process trees (64 MiB of patterned heap each, parents and
# children talking over pipes, open files with offsets) join a miggroup, the
# group is checkpointed to the store (and is gone), restored (same PIDs, the
# counters carry on), and every process then verifies its own state.
# Then the cluster: a playground cluster of three nodes on this machine
# (omlab: etcd with TLS, a node agent omd per node, each node its own network,
# PID, IPC and mount namespaces), a group started on node 1 migrates to node 2
# with migrategroup, and home again, and checks itself.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
PATH=/usr/local/bin:/usr/local/sbin:$PATH
make -C "$TOP/build" tests/zdtm/worker >/dev/null
W=$TOP/build/tests/zdtm/worker
D=$(mktemp -d /tmp/omdemo.XXXXXX)
G=${OM_DEMO_GROUP:-3}
while showgroup "$G" >/dev/null 2>&1; do G=$((G + 1)); done # a free miggroup
STORE=${OM_STORE:-$(sed -n 's/^[[:space:]]*store[[:space:]]*=[[:space:]]*//p' /etc/omtools/omtools.conf 2>/dev/null | tail -1)}
STORE=${STORE:-/var/lib/omtools/store}
export OM_STORE=$STORE

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
pid_of() { sed -n 's/^pid=\([0-9]*\).*/\1/p' "$D/$1.status"; }
counter_of() { sed -n 's/.*counter=\([0-9]*\).*/\1/p' "$D/$1.status"; }
wait_ready() { for _ in $(seq 200); do grep -q ready=1 "$D/$1.status" 2>/dev/null && return 0; sleep 0.1; done; echo "$1 not ready" >&2; exit 1; }

say "what a checkpoint needs on this node"
run omckpt --check

say "start two workers in miggroup $G with omrun, and one unrelated process tree"
run omrun -g "$G" -- "$W" --dir "$D" --name worker1 --mem 64 --children 2
run omrun -g "$G" -- "$W" --dir "$D" --name worker2 --mem 64 --children 1
setsid "$W" --dir "$D" --name worker3 --mem 64 --children 1 </dev/null >/dev/null 2>&1 &
disown
for n in worker1 worker2 worker3; do wait_ready $n; done
say "the third one joins the group (its child comes with it)"
run joingroup "$(pid_of worker3)" "$G"
run showgroup "$G"

before=()
for n in worker1 worker2 worker3; do before+=("$(counter_of $n)"); done
say "checkpoint the whole group: frozen at once, dumped, compressed, stored; the group is gone"
run omckpt -g "$G"
sleep 0.5
showgroup "$G" 2>&1 || true
gen=$(ls -d "$STORE/groups/$G"/gen-* | sort -t- -k2 -n | tail -1)
say "the stored generation"
run omdecode "$gen" | sed -n '1,30p' 

say "restore it: same PIDs, back in the group, carrying on"
run omrestore -g "$G"
sleep 1
i=0
for n in worker1 worker2 worker3; do
	printf '%s (pid %s): counter %s at the checkpoint, %s now\n' $n "$(pid_of $n)" "${before[$i]}" "$(counter_of $n)"
	[ "$(counter_of $n)" -gt "${before[$i]}" ] || { echo "counter of $n did not carry on" >&2; exit 1; }
	i=$((i + 1))
done

say "each process verifies its heap, files, offsets and pipes, then exits"
for n in worker1 worker2 worker3; do kill -TERM "$(pid_of $n)"; done
ok=1
for n in worker1 worker2 worker3; do
	for _ in $(seq 200); do [ -s "$D/$n.result" ] && break; sleep 0.1; done
	printf '%s: %s\n' $n "$(cat "$D/$n.result" 2>/dev/null || echo 'no result')"
	grep -q '^PASS' "$D/$n.result" 2>/dev/null || ok=0
done
resetgroup -q "$G" 2>/dev/null || true
[ $ok = 1 ] || { say "demo FAILED"; exit 1; }

say "a cluster of three nodes on this machine: omlab (etcd with TLS, omd on every node)"
LAB=(--name demo --net 10.77.250 --port 23950)
trap 'omlab "${LAB[@]}" down >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
omlab "${LAB[@]}" down >/dev/null 2>&1 || true
run omlab "${LAB[@]}" up 3
run omlab "${LAB[@]}" exec 1 -- omstat
say "a worker in miggroup 7 on node 1, then full migration to node 2"
run omlab "${LAB[@]}" exec 1 -- omrun -g 7 -- "$W" --dir "$D" --name mover --mem 64 --children 2
wait_ready mover
run omlab "${LAB[@]}" exec 1 -- showgroup 7
c0=$(counter_of mover)
run omlab "${LAB[@]}" exec 1 -- migrategroup 7 2
run omlab "${LAB[@]}" exec 2 -- showgroup 7
say "and home again"
run omlab "${LAB[@]}" exec 2 -- migrategroup 7 home
sleep 1
printf 'mover (pid %s): counter %s before the migrations, %s now, %s\n' "$(pid_of mover)" "$c0" "$(counter_of mover)" \
	"$(grep -o 'restores=[0-9]*' "$D/mover.status")"
omlab "${LAB[@]}" exec 1 -- kill -TERM "$(pid_of mover)"
for _ in $(seq 200); do [ -s "$D/mover.result" ] && break; sleep 0.1; done
printf 'mover: %s\n' "$(cat "$D/mover.result" 2>/dev/null || echo 'no result')"
grep -q '^PASS' "$D/mover.result" 2>/dev/null || { say "demo FAILED"; exit 1; }
say "demo passed (store: $STORE; the lab is removed on exit)"
