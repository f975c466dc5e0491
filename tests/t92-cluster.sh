#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t92-cluster.sh — a cluster of three nodes on this machine (omlab: each node
# its own network, PID, IPC, mount and cgroup namespaces and its own omd; one
# etcd with TLS client certificates; one shared store):
#   - full migration of a group (two trees: a worker with 256 MiB, two
#     children and pipes; a listening server whose hit counter lives only in
#     memory) from node 1 to node 2 and home again, checked by the processes
#     themselves and by their own client, and by the namespaces they live in;
#   - refusals before anything is frozen: a drained, an unknown and a dead
#     target; the group runs on at home;
#   - omd of the target killed in the middle of a migration: the group runs
#     again at home, and the target's restarted omd removes its stale copy;
#   - forged, malformed and replayed requests, each refused and logged;
#   - omdrain of a node with four groups, then a power cut of that node, then
#     --undo; omstat and showgroup --all --cluster along the way.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

for _t in etcd etcdctl openssl curl nsenter; do
	if ! command -v "$_t" >/dev/null; then
		echo "Bail out! $_t is missing (scripts/setup.sh --deps installs it)"
		exit 1
	fi
done

# the nodes use their own settings (omlab writes each node's omtools.conf):
# nothing of this script's single-node environment may leak into them
unset OM_STORE OM_WORKDIR OM_CGROUP OM_NODE OM_CONFIG
export PATH=$OM_BUILDDIR:$PATH
# shellcheck source=tests/cluster/lab.sh
. "$(dirname "$0")/cluster/lab.sh"
lab_init t92 10.77.92 23892
HITS_PORT=7092
# members_on K G : the group's PIDs as node K's showgroup lists them
members_on() {
	"$OMLAB" "${LAB[@]}" exec "$1" -- showgroup "$2" 2>/dev/null | awk '/ belongs to /{print $1}'
}
# lives_on K PID WHAT : PID runs WHAT in node K's PID and network namespaces
lives_on() {
	local k=$1 p=$2 what=$3 inner
	inner=$("$OMLAB" "${LAB[@]}" exec "$k" -- sh -c "readlink /proc/$p/ns/pid /proc/self/ns/pid /proc/$p/ns/net /proc/self/ns/net; tr '\0' ' ' </proc/$p/cmdline" 2>/dev/null)
	local a b c d
	a=$(sed -n 1p <<<"$inner")
	b=$(sed -n 2p <<<"$inner")
	c=$(sed -n 3p <<<"$inner")
	d=$(sed -n 4p <<<"$inner")
	if [ -z "$a" ] || [ "$a" != "$b" ] || [ "$c" != "$d" ]; then
		diag "pid $p is not in node $k's namespaces ($a/$b $c/$d)"
		return 1
	fi
	if ! grep -q -- "$what" <<<"$(sed -n '5,$p' <<<"$inner")"; then
		diag "pid $p on node $k is not $what: $(sed -n '5,$p' <<<"$inner")"
		return 1
	fi
}
# omd_signal K SIG : signal node K's omd (its PID as it published it in etcd)
declare -A OMDPID=()
omd_signal() {
	local p
	p=$(ectl get --print-value-only "/omtools/nodes/$1" | grep -o '"omd_pid":[0-9]*' | cut -d: -f2)
	[ -n "$p" ] && OMDPID[$1]=$p
	p=${OMDPID[$1]:-}
	[ -n "$p" ] || { diag "no omd PID known for node $1"; return 1; }
	"$OMLAB" "${LAB[@]}" exec "$1" -- kill "-$2" "$p" || diag "omd_signal $1 $2 ($p) failed"
}
both_dead() { dead_node 1 && dead_node 3; }
# owner_group K : one group of d11..d14 that node K owns
owner_group() {
	local g
	for g in 11 12 13 14; do owned_by "$g" "$1" && { echo "$g"; return 0; }; done
	return 1
}
# no_keys_under PREFIX... : etcd has no key under any PREFIX
no_keys_under() {
	local p left
	for p in "$@"; do
		left=$(ectl get --prefix --keys-only "$p" | tr -s '\n' ' ')
		[ -z "${left// /}" ] || { diag "left in etcd: $left"; return 1; }
	done
}
all_alive() { alive_node 1 && alive_node 2 && alive_node 3; }
key_absent() { ! ectl get --keys-only "$1" | grep -q .; }
not_on() { ! "$OMLAB" "${LAB[@]}" exec "$1" -- test -e "/proc/$2"; }
# hit K : one visit to the hits server at node K's address; prints its line
hit() { timeout 5 bash -c "exec 3<>/dev/tcp/$NET.$((10 + $1))/$HITS_PORT && cat <&3" 2>/dev/null; }
# hits_continue K BOOT N : the server answers on node K, same boot, hits=N
hits_continue() {
	local line
	line=$(hit "$1")
	if [[ $line != *"hits=$3 "* || $line != *"boot=$2"* ]]; then
		diag "node $1 answered '$line', expected hits=$3 boot=$2"
		return 1
	fi
}
# ancestor_on K PID NAME : a process named NAME is an ancestor of PID on node K
ancestor_on() {
	local chain
	chain=$("$OMLAB" "${LAB[@]}" exec "$1" -- sh -c "p=$2; while [ \$p -gt 1 ]; do p=\$(awk '/^PPid:/ {print \$2}' /proc/\$p/status); cat /proc/\$p/comm; done" 2>/dev/null)
	grep -qx "$3" <<<"$chain" && return 0
	diag "ancestors of $2 on node $1: $(echo $chain)"
	return 1
}
frozen_on() { "$OMLAB" "${LAB[@]}" exec "$1" -- showgroup --json "$2" 2>/dev/null | grep -q '"frozen":true'; }

# ------------------------------------------------------------- the lab ----
cleanup_lab
run "$OMLAB" "${LAB[@]}" up 3
ok "omlab up 3 (etcd with TLS, three nodes with omd)" test "$RC" -eq 0 || { diag_file "$ERR"; diag_file "$OUT"; done_testing; }
ok "every node is alive in etcd" wait_for 30 all_alive
on 1 omstat --json
ok "omstat lists three live nodes" sh -c "[ $RC -eq 0 ] && [ \$(grep -o '\"alive\":true' '$OUT' | wc -l) -eq 3 ]"

# ----------------------------------------------------- map and settings ----
printf '# two nodes\n1 10.1.0.1 2\n3 10.1.0.9 1\n3 10.1.0.9 1\n' >"$W/dup.map"
check_rc 2 "omd --check-map: a duplicate node is refused" omd --check-map "$W/dup.map"
ok "... at its line (4)" grep -q "dup.map:4" "$ERR"
printf '1 10.1.0.1 2\n\n2 10.1.0.8\n' >"$W/short.map"
run omd --check-map "$W/short.map"
ok "omd --check-map: a cut line is refused at line 3" sh -c "[ $RC -eq 2 ] && grep -q 'short.map:3' '$ERR'"
printf '1 10.1.0.1 3\n2 10.1.0.50 ALIAS\n' >"$W/good.map"
run omd --check-map "$W/good.map"
ok "omd --check-map: a good map with a range and an alias (3 nodes)" sh -c "[ $RC -eq 0 ] && grep -q '3 nodes' '$OUT'"
on 1 migrategroup --map "$W/short.map" 1 2
ok "migrategroup --map: a bad map is refused at its line (exit 7)" sh -c "[ $RC -eq 7 ] && grep -q 'short.map:3' '$ERR'"
on 1 env OM_MAP="$W/good.map" omstat
ok "\$OM_MAP names the map omstat reads (its nodes at 10.1.0.x)" grep -q '^1 *10\.1\.0\.1 ' "$OUT"
run env OM_CONFIG="$W/none.conf" migrategroup 1 2
ok "without etcd configured, migrategroup says it needs \`etcd =\` (exit 7)" sh -c "[ $RC -eq 7 ] && grep -q 'etcd =' '$ERR'"

# --------------------------------------------------- a group on node 1 ----
ok "worker w1 (256 MiB, 2 children, pipes) in group 1 on node 1" start_on 1 1 w1 --mem 256 --children 2
on 1 omrun -g 1 -o "$W/hits.log" -- python3 "$OM_SRCDIR/tests/cluster/hits.py" "$HITS_PORT" "$W/hits.status"
ok "a listening server as a second tree of group 1" wait_for 20 grep -q ready "$W/hits.status"
BOOT=$(grep -o 'boot=[0-9]*' "$W/hits.status" | cut -d= -f2)
ok "its client is served on node 1 (hits=1)" hits_continue 1 "$BOOT" 1
ok "group 1 is claimed by node 1 in etcd" owned_by 1 1
on 2 omrun -g 1 -- sleep 100
ok "node 2 cannot take group id 1 (exit 6, names node 1)" sh -c "[ $RC -eq 6 ] && grep -q 'node 1' '$ERR'"
on 2 showgroup 1
ok "showgroup 1 on node 2: runs on node 1, home 1" grep -q "runs on node 1 (home 1)" "$OUT"
W1=${WPID[w1]}

# ------------------------------------------------- 1 -> 2 and home again ----
S=$(snap w1)
on 1 migrategroup 1 2
ok "migrategroup 1 2 exits 0" test "$RC" -eq 0 || { diag_file "$ERR"; omd_log 1 | tail -5 | while read -r l; do diag "$l"; done; }
ok "... in the seed's style: a 'migrate PID to 2' line per process" grep -q "^migrate $W1 to 2$" "$OUT"
ok "... and the downtime" grep -q "node 1 -> node 2, downtime [0-9.]* s" "$OUT"
ok "w1 lived through one restore and counts on" continued_restored "$S"
ok "w1 lives in node 2's PID and network namespaces" lives_on 2 "$W1" worker
ok "node 2's omd is the subreaper ancestor of the restored group" ancestor_on 2 "$W1" omd
ok "... and no longer on node 1" not_on 1 "$W1"
ok "the server answers on node 2 with its memory (hits=2, same boot)" hits_continue 2 "$BOOT" 2
ok "etcd: group 1 belongs to node 2" owned_by 1 2
on 1 showgroup 1
ok "showgroup 1 on node 1: runs on node 2 (home 1)" grep -q "runs on node 2 (home 1)" "$OUT"
on 1 showgroup --all --cluster --json
ok "showgroup --all --cluster --json: group 1 on node 2, home 1" grep -q '"group":1,"node":"2","home":"1"' "$OUT"

S=$(snap w1)
on 2 migrategroup 1 home
ok "migrategroup 1 home (from node 2) exits 0" test "$RC" -eq 0 || diag_file "$ERR"
ok "w1 restored once more and counts on" continued_restored "$S"
ok "w1 lives in node 1's namespaces again" lives_on 1 "$W1" worker
ok "the server answers at home (hits=3, same boot)" hits_continue 1 "$BOOT" 3
ok "nothing of the two migrations is left in etcd (requests, replies)" no_keys_under /omtools/req/ /omtools/reply/

# -------------------------------------------- refused before the freeze ----
on 1 omdrain 3
ok "omdrain 3 (no groups there) exits 0" test "$RC" -eq 0
S=$(snap w1)
on 1 migrategroup 1 3
ok "to a drained node: refused, exit 7" sh -c "[ $RC -eq 7 ] && grep -q drained '$ERR'"
on 1 migrategroup 1 9
ok "to an unknown node: refused, exit 7" sh -c "[ $RC -eq 7 ] && grep -q 'unknown node' '$ERR'"
on 1 migrategroup 1 10.77.92.12.5
ok "to a bad address: refused, exit 7" test "$RC" -eq 7
on 1 omdrain --undo 3
ok "omdrain --undo 3" test "$RC" -eq 0
lab pause 3 >/dev/null 2>&1
ok "node 3's omd paused: its lease expires" wait_for 20 dead_node 3
on 1 migrategroup 1 3
ok "to a node whose omd is stopped: refused, exit 7" sh -c "[ $RC -eq 7 ] && grep -q dead '$ERR'"
ok "the group was never frozen: w1 not restored, counting on at home" continued_running "$S"
ok "... and the server was not restored either (hits=4, same boot)" hits_continue 1 "$BOOT" 4
lab resume 3 >/dev/null 2>&1
ok "node 3 comes back alive" wait_for 20 alive_node 3

# -------------------------------- the target's omd dies mid-migration ----
kill -KILL "$(cat "$LABDIR/node2/omd.pid")" 2>/dev/null
ok "node 2's omd killed" wait_for 20 dead_node 2
on 2 env OM_FAULT=target-before-commit:40 omd --log "$LABDIR/node2/omd-fault.log"
ok "node 2's omd restarted with a pause before its commit" wait_for 20 alive_node 2
S=$(snap w1)
( "$OMLAB" "${LAB[@]}" exec 1 -- migrategroup --timeout 60 1 2 >"$W/mid.out" 2>"$W/mid.err"; echo $? >"$W/mid.rc" ) &
MIG=$!
ok "the group is restored on node 2 and held frozen there" wait_for 90 frozen_on 2 1
FPID=$(grep -o 'event=registered node=2 [^ ]* [^ ]* ttl=[0-9]* pid=[0-9]*' "$LABDIR/node2/omd-fault.log" | tail -1 | grep -o 'pid=[0-9]*' | cut -d= -f2)
"$OMLAB" "${LAB[@]}" exec 2 -- kill -KILL "$FPID"
ok "omd on node 2 killed in the middle of the migration" wait_for 20 dead_node 2
wait_for 90 test -e "$W/mid.rc"
ok "migrategroup fails with exit 7" test "$(cat "$W/mid.rc" 2>/dev/null)" = 7 || diag_file "$W/mid.err"
wait "$MIG" 2>/dev/null
ok "the group runs again at home: w1 counts on, not restored" continued_running "$S"
ok "... the server too (hits=5, same boot)" hits_continue 1 "$BOOT" 5
ok "... and etcd still says node 1" owned_by 1 1
on 2 omd --log "$LABDIR/node2/omd2.log"
ok "node 2's omd started again" wait_for 20 alive_node 2
ok "... it killed its stale frozen copy of group 1" wait_for 20 logged_on 2 "event=stale-killed group=1 owner=1"
ok "... nothing of group 1 is left on node 2" not_on 2 "$W1"

# ---------------------------------------- forged, malformed, replayed ----
CA=$(conf etcd_ca)
KEYB64=$(printf '/omtools/req/2/%s' 0123456789abcdef0123456789abcdef | base64 -w0)
run curl -sS --max-time 10 --cacert "$CA" -X POST "https://$NET.1:$PORT/v3/kv/put" -d "{\"key\":\"$KEYB64\",\"value\":\"eA==\"}"
ok "a client without a certificate is refused by etcd" test "$RC" -ne 0
if [ -e "$LABDIR/pki/intruder.crt" ]; then
	run curl -sS --max-time 10 --cacert "$CA" --cert "$LABDIR/pki/intruder.crt" --key "$LABDIR/pki/intruder.key" \
		-X POST "https://$NET.1:$PORT/v3/kv/put" -d "{\"key\":\"$KEYB64\",\"value\":\"eA==\"}"
	ok "a certificate of another CA is refused by etcd" test "$RC" -ne 0
fi
ok "... nothing was written" key_absent /omtools/req/2/0123456789abcdef0123456789abcdef
BAD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1
ectl put "/omtools/req/2/$BAD" 'this is {not json' >/dev/null
ok "garbage JSON: refused and logged by node 2" wait_for 20 logged_on 2 "event=request-refused key=\"$BAD\""
ok "... and removed" wait_for 10 key_absent "/omtools/req/2/$BAD"
NOW=$(($(date +%s%N) / 1000000))
BAD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2
ectl put "/omtools/req/2/$BAD" "{\"v\":1,\"id\":\"$BAD\",\"op\":\"format-disk\",\"from\":\"1\",\"group\":1,\"issued_ms\":$NOW}" >/dev/null
ok "an unknown operation: refused and logged" wait_for 20 logged_on 2 "key=\"$BAD\" reason=\"unknown operation"
BAD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3
ectl put "/omtools/req/2/$BAD" "{\"v\":1,\"id\":\"$BAD\",\"op\":\"migrate\",\"from\":\"99\",\"group\":1,\"to\":\"3\",\"issued_ms\":$NOW}" >/dev/null
ok "a sender outside the map: refused and logged" wait_for 20 logged_on 2 "key=\"$BAD\" reason=\"sender"
BAD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4
ectl put "/omtools/req/2/$BAD" "{\"v\":1,\"id\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"op\":\"migrate\",\"from\":\"1\",\"group\":1,\"to\":\"3\",\"issued_ms\":$NOW}" >/dev/null
ok "an id that is not its key's: refused and logged" wait_for 20 logged_on 2 "key=\"$BAD\" reason=\"bad request id"
BAD=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5
ectl put "/omtools/req/2/$BAD" "{\"v\":1,\"id\":\"$BAD\",\"op\":\"migrate\",\"from\":\"1\",\"group\":1,\"to\":\"3\",\"issued_ms\":$NOW,\"rm\":\"-rf\"}" >/dev/null
ok "an unknown field: refused and logged" wait_for 20 logged_on 2 "key=\"$BAD\""

# a replayed request: group 2 on node 2 moves to node 3 by a request; moved
# back; the very same request again is refused
ok "worker w2 in group 2 on node 2" start_on 2 2 w2 --mem 8
RID=cccccccccccccccccccccccccccccc01
NOW=$(($(date +%s%N) / 1000000))
REQ="{\"v\":1,\"id\":\"$RID\",\"op\":\"migrate\",\"from\":\"1\",\"group\":2,\"to\":\"3\",\"issued_ms\":$NOW,\"timeout_s\":60}"
ectl put "/omtools/req/2/$RID" "$REQ" >/dev/null
ok "a request written by hand moves group 2 to node 3" wait_for 60 owned_by 2 3
on 3 migrategroup 2 2
ok "group 2 back on node 2" sh -c "[ $RC -eq 0 ]"
ectl put "/omtools/req/2/$RID" "$REQ" >/dev/null
ok "the same request again: refused as replayed and logged" wait_for 20 logged_on 2 "id=$RID reason=\"replayed"
sleep 2
ok "... group 2 stays on node 2" owned_by 2 2
ok "w2 passes its own checks" finish_on 2 w2
on 2 resetgroup 2
ok "resetgroup 2 exits 0" test "$RC" -eq 0 || diag_file "$ERR"
ok "... and frees the id in the cluster" key_absent /omtools/groups/2

# --------------------------------------------------------------- drain ----
ok "w1 passes its own checks (after 2 migrations and a failed one)" finish_on 1 w1
on 1 resetgroup 1
for g in 11 12 13 14; do
	ok "worker d$g in group $g on node 1" start_on 1 "$g" "d$g" --mem 16 --children 1
done
SD=$(snap d11 d12 d13 d14)
on 2 omdrain --parallel 2 1
ok "omdrain --parallel 2 1 exits 0" test "$RC" -eq 0 || diag_file "$ERR"
ok "... a line per group with its target and downtime" test "$(grep -c '^miggroup 1[1-4]: 1 -> [23], downtime' "$OUT")" -eq 4
# shellcheck disable=SC2086
ok "the four groups lived through one restore each" continued_restored $SD
ok "they are spread over nodes 2 and 3" sh -c "grep -q ' 1 -> 2,' '$OUT' && grep -q ' 1 -> 3,' '$OUT'"
on 2 showgroup --all --cluster
ok "showgroup --all --cluster: no group left on node 1" sh -c "! grep -q 'node 1,' '$OUT'"
on 2 omstat --json
ok "omstat: node 1 drained" grep -q '"node":"1","address":"[0-9.]*","alive":true,"drained":true' "$OUT"
on 2 migrategroup 11 1
ok "nothing new goes to the drained node" test "$RC" -eq 7
lab kill 1 >/dev/null 2>&1
ok "node 1 powered off" wait_for 30 dead_node 1
SD=$(snap d11 d12 d13 d14)
# shellcheck disable=SC2086
ok "every drained group runs on: nothing was lost with node 1" continued_running $SD
run "$OMLAB" "${LAB[@]}" start 1
ok "node 1 starts again" wait_for 30 alive_node 1
on 2 omdrain --undo 1
ok "omdrain --undo 1" sh -c "[ $RC -eq 0 ] && grep -q 'open again' '$OUT'"
on 3 omstat
ok "omstat: node 1 alive and open" grep -q '^1 .* alive ' "$OUT"

# omd restarts without losing its groups
G3=$(owner_group 3)
ok "node 3 runs drained groups" test -n "$G3"
kill -TERM "$(cat "$LABDIR/node3/omd.pid")"
ok "node 3's omd stops on SIGTERM and gives up its lease at once" wait_for 5 dead_node 3
on 3 omd --log "$LABDIR/node3/omd2.log"
ok "node 3's omd started again" wait_for 20 alive_node 3
on 1 omstat --json
ok "omstat: node 3 publishes its groups again" grep -q "\"node\":\"3\".*\"groups\":\[[0-9,]*$G3" "$OUT"
ok "group $G3 still belongs to node 3" owned_by "$G3" 3
SD=$(snap "d$G3")
on 3 migrategroup "$G3" 1
ok "the restarted omd moves group $G3 to node 1" test "$RC" -eq 0 || diag_file "$ERR"
ok "... which lived through its restore" continued_restored "$SD"

# a drain with nowhere to go: the groups stay, named, running
omd_signal 1 STOP
omd_signal 3 STOP
ok "nodes 1 and 3 paused: dead for the cluster" wait_for 20 both_dead || {
	for k in 1 3; do diag "node $k: $("$OMLAB" "${LAB[@]}" exec $k -- ps -eo pid,ppid,stat,comm | tr '\n' ';')"; done
	diag "$(ectl get --prefix --keys-only /omtools/nodes/ | tr '\n' ' ')"
}
G2=$(owner_group 2)
SD=$(snap "d$G2")
on 2 omdrain 2
ok "omdrain 2 with every other node dead exits 7" test "$RC" -eq 7
ok "... naming group $G2" grep -q "could not move miggroup .*$G2" "$ERR"
ok "... and saying why, per group" grep -q "^miggroup $G2: stays on 2: " "$OUT"
ok "group $G2 runs on where it was" continued_running "$SD"
omd_signal 1 CONT
omd_signal 3 CONT
on 2 omdrain --undo 2
ok "nodes come back, node 2 is opened" wait_for 20 all_alive

done_testing
