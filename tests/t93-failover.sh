#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t93-failover.sh — failover of a dead node's groups, exactly once (omlab
# cluster of three nodes, lease_ttl 4 s; cluster/failover.h):
#   1. node 1 (three counting workers, each in its own group, checkpointed
#      twice with --leave-running) is powered off: each group runs again on
#      one survivor, exactly once (processes on every node, the owner key, one
#      failover event per group in the history), from the newest generation
#      (the worker checks its own state), logged with its fence and timings;
#      a group whose worker had finished there, and one omckpt had stopped,
#      are marked ended in their owner keys and not brought back;
#   2. two survivors race (OM_FAULT=failover-race: both claim the same
#      revision at the same moment): one restore per group, the other node
#      logs that it lost;
#   3. node 1's omd is paused past its lease while its group runs: the group
#      fails over; resumed, node 1 kills its stale copy before it publishes
#      or handles anything, comes back alive, and the store's fence names the
#      survivor with the failover's token (so node 1 could not commit);
#   4. the omd of the survivor that claimed a group is killed during the
#      restore (its worker dies with it): restarted, it resumes the failover
#      under the same token, and the group runs once;
#   5. a survivor where a group's PID is taken declines it, and the other
#      takes it at once: no failed try;
#   6. omstat --history (text and JSON) shows the failovers; the history
#      stays bounded (tests/unit/test-history adds 1100 events to the lab's
#      etcd).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

for _t in etcd etcdctl openssl curl nsenter; do
	if ! command -v "$_t" >/dev/null; then
		echo "Bail out! $_t is missing (scripts/setup.sh --deps installs it)"
		exit 1
	fi
done

unset OM_STORE OM_WORKDIR OM_CGROUP OM_NODE OM_CONFIG OM_FAULT
export PATH=$OM_BUILDDIR:$PATH
# shellcheck source=tests/cluster/lab.sh
. "$(dirname "$0")/cluster/lab.sh"
# 23893 was asked for, but etcd needs P and P+1, and 23894 is lab t94's
lab_init t93 10.77.93 23963
members_on() {
	"$OMLAB" "${LAB[@]}" exec "$1" -- showgroup "$2" 2>/dev/null | awk '/ belongs to /{print $1}'
}
ckpt_on() { # K G : omckpt --leave-running of G inside node K
	on "$1" omckpt --leave-running -g "$2"
	[ "$RC" -eq 0 ] || { diag "omckpt -g $2 on node $1 exited $RC"; diag_file "$ERR"; return 1; }
}
newest_gen() { find "$LABDIR/store/groups/$1" -maxdepth 1 -name 'gen-*' -printf '%f\n' 2>/dev/null | sed 's/gen-//' | sort -n | tail -1; }
# runs_once G : the group's processes are on exactly one live node, the one
# its owner key names (and that node's status lists it)
runs_once() {
	local g=$1 k n where="" count=0 m
	for k in 1 2 3; do
		alive_node "$k" || [ -e "$LABDIR/node$k/holder.pid" ] || continue
		m=$(members_on "$k" "$g" | wc -l)
		if [ "$m" -gt 0 ]; then
			count=$((count + 1))
			where=$k
			n=$m
		fi
	done
	if [ "$count" -ne 1 ]; then
		diag "group $g has processes on $count nodes"
		return 1
	fi
	[ "$(owner_of "$g")" = "$where" ] || { diag "group $g runs on $where, owner key says $(owner_of "$g")"; return 1; }
	[ "${n:-0}" -ge 1 ]
}
runs_on_survivor() { # G DEAD : owned by a live node other than DEAD, and running there
	local o
	o=$(owner_of "$1")
	[ -n "$o" ] && [ "$o" != "$2" ] && [ -n "$(members_on "$o" "$1")" ]
}
owner_fence() { ectl get --print-value-only "/omtools/groups/$1" | grep -q "\"fence\":$2[,}]"; }
stopped_mark() { ectl get --keys-only "/omtools/stopped/$1" | grep -q .; }
history_has_stale() {
	history_json | grep '"event":"lease-lost"' | grep -q "\"node\":\"$1\"" &&
		history_json | grep '"event":"stale-kill"' | grep "\"node\":\"$1\"" | grep -q "\"group\":$2,"
}
forget() { ectl del "$1" | grep -qx 1; }
impossible() { history_json | grep '"event":"failover-impossible"' | grep -q "\"group\":$1,"; }
history_json() { ectl get --prefix --print-value-only /omtools/history/; }
failovers_of() { history_json | grep '"event":"failover"' | grep -c "\"group\":$1,"; }
failover_field() { history_json | grep '"event":"failover"' | grep "\"group\":$1," | grep -o "\"$2\":[0-9\"]*" | head -1 | tr -d '"' | cut -d: -f2; }

cleanup_lab
run "$OMLAB" "${LAB[@]}" up 3
ok "omlab up 3 (lease_ttl 4 s)" test "$RC" -eq 0 || { diag_file "$ERR"; diag_file "$OUT"; done_testing; }
all_alive3() { alive_node 1 && alive_node 2 && alive_node 3; }
ok "every node is alive in etcd" wait_for 30 all_alive3

# ------------------------------------------- 1. node 1 is powered off ----
for g in 31 32 33; do
	ok "worker f$g in group $g on node 1" start_on 1 "$g" "f$g" --mem 8 --children 1
done
ok "worker f30 in group 30 on node 1, never checkpointed" start_on 1 30 f30 --mem 8
for g in 31 32 33; do ok "group $g checkpointed on node 1 (--leave-running)" ckpt_on 1 "$g"; done
sleep 1
S=$(snap f31 f32 f33)
for g in 31 32 33; do ok "... and once more (the newest generation)" ckpt_on 1 "$g"; done
declare -A GEN=()
for g in 31 32 33; do GEN[$g]=$(newest_gen "$g"); done
# two groups that no longer run on node 1: no failover brings them back
ended_mark() { ectl get --print-value-only "/omtools/groups/$1" | grep -q '"ended_ms":'; }
ok "worker f38 in group 38 on node 1" start_on 1 38 f38 --mem 8
ok "group 38 checkpointed" ckpt_on 1 38
ok "worker f38 finishes on node 1" finish_on 1 f38
ok "... node 1's omd marks group 38 ended in its owner key" wait_for 10 ended_mark 38
ok "worker f39 in group 39 on node 1" start_on 1 39 f39 --mem 8
on 1 omckpt -g 39
ok "omckpt -g 39 on node 1: checkpointed and stopped" test "$RC" -eq 0 || diag_file "$ERR"
ok "... group 39 is marked ended in its owner key at once" ended_mark 39
T0=$SECONDS
lab kill 1 >/dev/null 2>&1
ok "node 1 powered off" wait_for 30 dead_node 1
for g in 31 32 33; do
	ok "group $g runs again on a survivor" wait_for 60 runs_on_survivor "$g" 1
done
diag "node death to the three groups running elsewhere: $((SECONDS - T0)) s (lease_ttl 4 s)"
# shellcheck disable=SC2086
ok "each worker lived through exactly one restore, from the newest generation" continued_restored $S
for g in 31 32 33; do
	ok "group $g runs on exactly one node, the one its owner key names" runs_once "$g"
	ok "... one failover event in the history" test "$(failovers_of "$g")" -eq 1
	ok "... from node 1, generation ${GEN[$g]}" sh -c "[ '$(failover_field "$g" from)' = 1 ] && [ '$(failover_field "$g" generation)' = '${GEN[$g]}' ]"
	K=$(owner_of "$g")
	ok "... logged by node $K: event=failover with fence and timings" \
		logged_on "$K" "event=failover group=$g from=1 to=$K generation=${GEN[$g]} fence=[0-9]* detect_s=[0-9.?]* restore_s=[0-9.]*"
	F=$(failover_field "$g" fence)
	ok "... the owner key records the fence $F" owner_fence "$g" "$F"
done
ok "group 30 (no generation): failover-impossible in the history" wait_for 20 impossible 30
ok "... and logged" sh -c "cat '$LABDIR'/node[23]/omd.log | grep -q 'event=failover-impossible group=30 from=1 ok=false reason=\"no generation'"
ok "... its owner key still names node 1" owned_by 30 1
sleep 3
for g in 31 32 33; do ok "group $g still runs exactly once (no late second restore)" runs_once "$g"; done
nowhere() { [ -z "$(members_on 2 "$1")" ] && [ -z "$(members_on 3 "$1")" ]; }
for g in 38 39; do
	ok "group $g (ended on node 1) is not failed over: its owner key still names node 1" owned_by "$g" 1
	ok "... no failover event for it" test "$(failovers_of "$g")" -eq 0
	ok "... nothing of it runs on nodes 2 and 3" nowhere "$g"
done
for g in 31 32 33; do ok "worker f$g passes its own checks" finish_on "$(owner_of "$g")" "f$g"; done
for g in 31 32 33; do on "$(owner_of "$g")" resetgroup "$g"; done
run "$OMLAB" "${LAB[@]}" start 1
ok "node 1 starts again" wait_for 30 alive_node 1
ok "group 30 forgotten by the cluster (its node lost it with the power)" forget /omtools/groups/30

# ---------------------------------------- 2. two survivors race ----
# nodes 2 and 3 get an omd that claims at the same moment as every other
# survivor (a barrier in etcd, then the transaction on the same revision)
for k in 2 3; do
	P=$(ectl get --print-value-only "/omtools/nodes/$k" | grep -o '"omd_pid":[0-9]*' | cut -d: -f2)
	"$OMLAB" "${LAB[@]}" exec "$k" -- kill -TERM "$P"
	ok "node $k's omd stopped (cleanly: its groups are not failed over)" wait_for 10 dead_node "$k"
	ok "... its stopped mark defers a failover of its groups" stopped_mark "$k"
	on "$k" env OM_FAULT=failover-race omd --log "$LABDIR/node$k/omd-race.log"
	ok "node $k's omd restarted with OM_FAULT=failover-race" wait_for 20 alive_node "$k"
done
for g in 34 35; do ok "worker f$g in group $g on node 1" start_on 1 "$g" "f$g" --mem 8; done
sleep 1
S=$(snap f34 f35)
for g in 34 35; do ok "group $g checkpointed" ckpt_on 1 "$g"; done
lab kill 1 >/dev/null 2>&1
ok "node 1 powered off again" wait_for 30 dead_node 1
for g in 34 35; do
	ok "group $g runs again on a survivor" wait_for 60 runs_on_survivor "$g" 1
done
sleep 3
# shellcheck disable=SC2086
ok "each worker lived through exactly one restore" continued_restored $S
for g in 34 35; do
	ok "both survivors raced for group $g" sh -c "grep -q 'event=failover-race group=$g ' '$LABDIR/node2/omd-race.log' && grep -q 'event=failover-race group=$g ' '$LABDIR/node3/omd-race.log'"
	W2=$(grep -c "event=failover group=$g " "$LABDIR/node2/omd-race.log")
	W3=$(grep -c "event=failover group=$g " "$LABDIR/node3/omd-race.log")
	L2=$(grep -c "event=failover-lost group=$g " "$LABDIR/node2/omd-race.log")
	L3=$(grep -c "event=failover-lost group=$g " "$LABDIR/node3/omd-race.log")
	ok "... exactly one won and the other lost the transaction ($W2/$L2, $W3/$L3)" \
		sh -c "[ $((W2 + W3)) -eq 1 ] && [ $((L2 + L3)) -eq 1 ] && [ $((W2 + L2)) -eq 1 ]"
	ok "... one failover event in the history" test "$(failovers_of "$g")" -eq 1
	ok "... processes on exactly one node" runs_once "$g"
done
for g in 34 35; do ok "worker f$g passes its own checks" finish_on "$(owner_of "$g")" "f$g"; done
for g in 34 35; do on "$(owner_of "$g")" resetgroup "$g"; done
run "$OMLAB" "${LAB[@]}" start 1
ok "node 1 starts again" wait_for 30 alive_node 1

# ------------------------------- 3. node 1's omd paused past its lease ----
ok "worker f36 in group 36 on node 1" start_on 1 36 f36 --mem 8
sleep 1
S=$(snap f36)
ok "group 36 checkpointed" ckpt_on 1 36
G36=$(newest_gen 36)
STALE=$(members_on 1 36 | tr '\n' ' ')
LOGSTART=$(stat -c %s "$LABDIR/node1/omd.log")
lab pause 1 >/dev/null 2>&1
ok "node 1's omd paused: its lease expires" wait_for 20 dead_node 1
ok "group 36 fails over to a survivor" wait_for 60 runs_on_survivor 36 1
K=$(owner_of 36)
ok "... the stale copy still runs on node 1 meanwhile (its omd is stopped)" test -n "$(members_on 1 36)"
F=$(failover_field 36 fence)
ok "the store's fence of group 36 is the failover's token $F, held by node $K, generation $G36" \
	grep -q "^$F node$K $G36\$" "$LABDIR/store/groups/36/.fence"
on 1 omckpt --leave-running -g 36
ok "a checkpoint of the stale copy on node 1 is refused (exit 7: node $K owns the group)" \
	sh -c "[ $RC -eq 7 ] && grep -q 'belongs to node $K' '$ERR'" || diag_file "$ERR"
lab resume 1 >/dev/null 2>&1
ok "node 1's omd resumed: its node key comes back" wait_for 20 alive_node 1
ok "... it killed its stale copy of group 36" wait_for 20 logged_on 1 "event=stale-killed group=36 owner=$K"
ok "... nothing of group 36 is left on node 1 ($STALE)" sh -c "[ -z \"\$($OMLAB ${LAB[*]} exec 1 -- showgroup 36 2>/dev/null | awk '/ belongs to /{print \$1}')\" ]"
ORDER=$(tail -c +"$((LOGSTART + 1))" "$LABDIR/node1/omd.log" | grep -o 'event=[a-z-]*' | tr '\n' ' ')
ORDER=${ORDER%%event=registered*}event=registered
ok "its log: lease-lost, then the stale kill, then registered ($ORDER)" \
	grep -Eq '^(event=(keepalive|publish|watch)-failed )*event=lease-lost (event=failover-[a-z]* )*event=stale-killed event=registered$' <<<"$ORDER"
# shellcheck disable=SC2086
ok "the worker lived through one restore, on node $K" continued_restored $S
ok "group 36 runs exactly once" runs_once 36
ok "... restored from generation $G36" test "$(failover_field 36 generation)" = "$G36"
ok "no generation of group 36 was written after the failover (the stale node wrote none)" test "$(newest_gen 36)" = "$G36"
ok "the history has node 1's lost lease and its stale kill of group 36" history_has_stale 1 36
ok "worker f36 passes its own checks" finish_on "$K" f36

# ---------------- 4. a survivor's omd killed during a failover's restore ----
# node 3's omd stops (so node 2 is the one survivor, even if its lease
# expires while its omd is down), node 2's restarts with a failover restore
# that pauses (pinned); once it claimed group 37 it is killed (-9), and its
# worker with it: the owner key names node 2, so nobody else would restore
# the group; the restarted omd finds the claim's mark and resumes, under the
# same token
omd_pid() { ectl get --print-value-only "/omtools/nodes/$1" | grep -o '"omd_pid":[0-9]*' | cut -d: -f2; }
for k in 3 2; do
	"$OMLAB" "${LAB[@]}" exec "$k" -- kill -TERM "$(omd_pid "$k")"
	ok "node $k's omd stopped" wait_for 10 dead_node "$k"
done
on 2 env OM_FAULT=restore-pause-pinned:60 omd --log "$LABDIR/node2/omd-pause.log"
ok "node 2's omd restarted with OM_FAULT=restore-pause-pinned:60" wait_for 20 alive_node 2
ok "worker f37 in group 37 on node 1" start_on 1 37 f37 --mem 8 --children 1
sleep 1
S=$(snap f37)
ok "group 37 checkpointed" ckpt_on 1 37
G37=$(newest_gen 37)
run "$OMLAB" "${LAB[@]}" kill 1
[ "$RC" -eq 0 ] || { diag "omlab kill 1 exited $RC"; diag_file "$ERR"; }
ok "node 1 powered off" wait_for 30 dead_node 1
K=2
ok "node 2 claims group 37 (its restore pauses)" \
	wait_for 30 grep -q "event=failover-claimed group=37 from=1 " "$LABDIR/node2/omd-pause.log"
T37=$(grep -o "event=failover-claimed group=37 from=1 fence=[0-9]*" "$LABDIR/node$K/omd-pause.log" | head -1 | sed 's/.*fence=//')
marked() { ectl get --print-value-only /omtools/groups/37 | grep -q "\"node\":\"$K\".*\"restoring_from\":\"1\""; }
ok "... node $K, fence $T37: the owner key names it, restoring from node 1" marked
"$OMLAB" "${LAB[@]}" exec "$K" -- kill -KILL "$(omd_pid "$K")"
ok "node $K's omd killed during the restore: group 37 runs nowhere" wait_for 10 nowhere 37
run "$OMLAB" "${LAB[@]}" exec "$K" -- showgroup --all --cluster
ok "showgroup --all --cluster: node $K, failing over from node 1" grep -q "^miggroup 37: node $K, home 1 (failing over from node 1)\$" "$OUT" || diag_file "$OUT"
on "$K" omd --log "$LABDIR/node$K/omd-resume.log"
ok "node $K's omd started again (no fault)" test "$RC" -eq 0
ok "... it resumes the failover of group 37 under the same token" \
	wait_for 30 grep -q "event=failover-resumed group=37 from=1 fence=$T37\$" "$LABDIR/node$K/omd-resume.log"
ok "group 37 runs again on node $K" wait_for 60 runs_on_survivor 37 1
ok "... exactly once" runs_once 37
owner37_done() {
	local v
	v=$(ectl get --print-value-only /omtools/groups/37)
	grep -q "\"node\":\"$K\".*\"fence\":$T37" <<<"$v" && ! grep -q restoring_from <<<"$v"
}
ok "... its owner key: node $K, fence $T37, the mark gone" owner37_done
resumed_once() {
	[ "$(failovers_of 37)" -eq 1 ] && [ "$(failover_field 37 fence)" = "$T37" ] &&
		[ "$(failover_field 37 generation)" = "$G37" ] &&
		history_json | grep '"event":"failover"' | grep '"group":37,' | grep -q 'resumed=1'
}
ok "... one failover event in the history: resumed, generation $G37, fence $T37" resumed_once
ok "... logged by node $K as event=failover ... resumed=1" \
	logged_on "$K" "event=failover group=37 from=1 to=$K generation=$G37 fence=$T37 detect_s=[0-9.?]* restore_s=[0-9.]* resumed=1 seconds="
ok "... the store's fence: $T37, node $K, generation $G37" grep -q "^$T37 node$K $G37\$" "$LABDIR/store/groups/37/.fence"
# shellcheck disable=SC2086
ok "the worker lived through exactly one restore" continued_restored $S
ok "worker f37 passes its own checks" finish_on "$K" f37

# ------------- 5. a survivor where a group's PID is taken steps aside ----
# groups 40 and 41 run on node 1 with PIDs from 30000 on; node 2 holds the
# PID of group 40's worker, node 3 that of group 41's. Whichever survivor is
# preferred cannot restore one of them: it declines it (PREFIX/decline/G/N)
# instead of claiming, failing and giving it back, and the other survivor
# takes that group at once; each group runs once, where its PIDs are free.
run "$OMLAB" "${LAB[@]}" start 1
ok "node 1 starts again" wait_for 30 alive_node 1 || { diag_file "$ERR"; diag_file "$OUT"; }
on 3 omd --log "$LABDIR/node3/omd.log"
ok "node 3's omd starts again" wait_for 20 alive_node 3
# take_pid K PID : a sleep that holds PID in node K's PID namespace
declare -A HELD=()
take_pid() {
	local k=$1 p=$2 got t
	[[ $p =~ ^[0-9]+$ ]] || return 1
	for t in 1 2 3 4 5 6 7 8 9 10; do
		got=$("$OMLAB" "${LAB[@]}" exec "$k" -- sh -c "echo $((p - 1)) >/proc/sys/kernel/ns_last_pid && { sleep 900 </dev/null >/dev/null 2>&1 & echo \$!; }")
		if [ "$got" = "$p" ]; then
			HELD[$k]=$p
			return 0
		fi
		[ -n "$got" ] && "$OMLAB" "${LAB[@]}" exec "$k" -- kill "$got" 2>/dev/null
	done
	diag "node $k: PID $p not taken (got ${got:-nothing})"
	return 1
}
for g in 40 41; do
	"$OMLAB" "${LAB[@]}" exec 1 -- sh -c "echo $((30000 + (g - 40) * 1000)) >/proc/sys/kernel/ns_last_pid"
	ok "worker f$g in group $g on node 1 (PIDs from $((30000 + (g - 40) * 1000)) on)" start_on 1 "$g" "f$g" --mem 8
done
P40=$(members_on 1 40 | head -1)
P41=$(members_on 1 41 | head -1)
ok "node 2 holds PID $P40 (group 40's worker on node 1)" take_pid 2 "$P40"
ok "node 3 holds PID $P41 (group 41's worker on node 1)" take_pid 3 "$P41"
sleep 1
S=$(snap f40 f41)
for g in 40 41; do ok "group $g checkpointed" ckpt_on 1 "$g"; done
lab kill 1 >/dev/null 2>&1
ok "node 1 powered off" wait_for 30 dead_node 1
runs_on_node() { owned_by "$1" "$2" && [ -n "$(members_on "$2" "$1")" ]; }
ok "group 40 runs again on node 3 (node 2 holds its PID)" wait_for 60 runs_on_node 40 3
ok "group 41 runs again on node 2 (node 3 holds its PID)" wait_for 60 runs_on_node 41 2
sleep 2
failed_tries() { history_json | grep '"event":"failover-failed"' | grep -c "\"group\":$1,"; }
for g in 40 41; do
	ok "group $g runs exactly once" runs_once "$g"
	ok "... one failover event, and no failed try" sh -c "[ $(failovers_of "$g") -eq 1 ] && [ $(failed_tries "$g") -eq 0 ]"
done
# the preferred survivor declined the group whose PID it holds: one of these
declines() { history_json | grep '"event":"failover-declined"' | grep -o '"group":4[01],.*"to":"[23]"' | sed 's/"group":\(4[01]\),.*"to":"\([23]\)"/\1@\2/' | sort -u | tr '\n' ' '; }
D=$(declines)
ok "one survivor declined the group whose PID it holds ($D), in the history" \
	sh -c "[ '$D' = '40@2 ' ] || [ '$D' = '41@3 ' ]"
case $D in
"40@2 ") DG=40 DN=2 TN=3 ;;
*) DG=41 DN=3 TN=2 ;;
esac
ok "... and logged it with the PID and its holder" \
	logged_on "$DN" "event=failover-declined group=$DG from=1 to=$DN ok=false reason=\"cannot restore here: PID ${HELD[$DN]} .* is taken by \`sleep 900\`"
ok "node $TN claimed group $DG at once, naming the decline" logged_on "$TN" "event=failover-claimed group=$DG from=1 fence=[0-9]* declined_by=$DN\$"
# shellcheck disable=SC2086
ok "both workers lived through exactly one restore" continued_restored $S
ok "worker f40 passes its own checks" finish_on 3 f40
ok "worker f41 passes its own checks" finish_on 2 f41
for k in 2 3; do "$OMLAB" "${LAB[@]}" exec "$k" -- kill "${HELD[$k]:-0}" 2>/dev/null; done

# -------------------------------------------------- 6. the history ----
run env OM_CONFIG="$LABDIR/host.conf" omstat --history
ok "omstat --history exits 0" test "$RC" -eq 0 || diag_file "$ERR"
ok "... a failover line per group (6)" test "$(grep -c ' failover  *3[1-6] ' "$OUT")" -eq 6 || diag_file "$OUT"
run env OM_CONFIG="$LABDIR/host.conf" omstat --history -g 36 --json
ok "omstat --history -g 36 --json: the failover of group 36 with its fence" \
	sh -c "[ $RC -eq 0 ] && grep -q '\"event\":\"failover\",\"group\":36,.*\"fence\":$F' '$OUT'"
run env OM_CONFIG="$LABDIR/host.conf" omstat --history --limit 2 --json
ok "--limit 2: two events" test "$(grep -o '"time_ms"' "$OUT" | wc -l)" -eq 2
run "$OM_BUILDDIR/tests/unit/test-history" "$LABDIR/host.conf" 990 1100
ok "the history stays bounded: 1100 events added, the newest 1000 kept (tests/unit/test-history)" \
	sh -c "[ $RC -eq 0 ] && ! grep -q '^not ok' '$OUT'" || { diag_file "$OUT"; diag_file "$ERR"; }
ok "... etcd holds 1000 history keys" test "$(ectl get --prefix --keys-only /omtools/history/ | grep -c .)" -eq 1000

done_testing
