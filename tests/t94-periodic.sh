#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t94-periodic.sh — periodic checkpoints by policy (omckpt --every), applied
# by omd:
#   - refusals: a period too short, a bad unit, --every without -g (exit 2);
#   - one node alone (no `etcd =`): omd runs in local mode, reads the policy
#     file next to its settings and checkpoints the group with
#     --leave-running, keeping the newest N generations; the group runs on;
#   - a cluster of two nodes (omlab): the policy is in etcd; node 1's omd
#     checkpoints its group every 10 s and keeps 3 generations while the
#     worker counts on (never restored, never stopped); after `migrategroup G
#     2` node 2's omd carries on (its generations name node2) and node 1's
#     does not.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

for _t in etcd etcdctl openssl curl nsenter; do
	if ! command -v "$_t" >/dev/null; then
		echo "Bail out! $_t is missing (scripts/setup.sh --deps installs it)"
		exit 1
	fi
done

export PATH=$OM_BUILDDIR:$PATH
group_ids 94000

# shellcheck source=tests/cluster/lab.sh
. "$(dirname "$0")/cluster/lab.sh"
lab_init t94 10.77.94 23894
LAB_LOGS=("$W/local/omd.log")
# gens DIR : the generation numbers in a group's store directory, ascending
gens() { find "$1" -mindepth 1 -maxdepth 1 -name 'gen-*' -printf '%f\n' 2>/dev/null | sed 's/^gen-//' | sort -n; }
ngens() { gens "$1" | grep -c .; }
newest() { gens "$1" | tail -n1; }
# has_gen DIR N : generation N or a newer one exists
has_gen() { local n; n=$(newest "$1"); [ -n "$n" ] && [ "$n" -ge "$2" ]; }
# exactly DIR N : exactly N generations, after pruning has settled
exactly() {
	local n
	n=$(ngens "$1")
	[ "$n" -eq "$2" ] && return 0
	diag "$1 holds $n generations ($(gens "$1" | tr '\n' ' ')), expected $2"
	return 1
}
# frozen_ok LOG G MAX : every checkpoint of G logged froze the group < MAX s
frozen_ok() {
	local bad
	bad=$(grep "event=checkpoint group=$2 " "$1" | grep -o 'frozen_s=[0-9.]*' | cut -d= -f2 |
		awk -v m="$3" '$1 >= m' | head -n1)
	[ -z "$bad" ] && grep -q "event=checkpoint group=$2 .*frozen_s=" "$1" && return 0
	diag "a checkpoint of group $2 froze it ${bad:-?} s (max $3)"
	return 1
}

# ------------------------------------------------------------ refusals ----
mkdir -p "$W/local"
LCONF=$W/local/omtools.conf
printf '# t94: one node alone (no etcd)\nstore = %s\n' "$OM_STORE" >"$LCONF"
check_rc 2 "--every 3s: too short (exit 2)" env OM_CONFIG="$LCONF" omckpt --every 3s -g 5
ok "... says the bounds" grep -q '10s to 7d' "$ERR"
check_rc 2 "--every 10x: a bad unit (exit 2)" env OM_CONFIG="$LCONF" omckpt --every 10x -g 5
check_rc 2 "--every 8d: too long (exit 2)" env OM_CONFIG="$LCONF" omckpt --every 8d -g 5
check_rc 2 "--every without -g (exit 2)" env OM_CONFIG="$LCONF" omckpt --every 10s
check_rc 2 "--every with -p (exit 2)" env OM_CONFIG="$LCONF" omckpt --every 10s -p 1
ok "nothing was stored" sh -c "! ls '$W/local/policy/' 2>/dev/null | grep -q ."

# ------------------------------------------------ one node, no etcd ----
new_group
LG=$G
run env OM_CONFIG="$LCONF" omckpt --every 10s --keep 2 -g "$LG"
ok "omckpt --every 10s --keep 2 -g $LG (no etcd): stored" sh -c "[ $RC -eq 0 ] && grep -q 'every 10s' '$OUT'"
ok "... as a policy file next to the settings" test -s "$W/local/policy/$LG"
run env OM_CONFIG="$LCONF" omckpt --policy --json
ok "omckpt --policy --json lists it (directory backend)" \
	sh -c "grep -q '\"backend\":\"directory\"' '$OUT' && grep -q '\"group\":$LG,\"every_s\":10,\"every\":\"10s\",\"keep\":2' '$OUT'"
ok "worker lw (32 MiB, 1 child) in group $LG" start_worker lw --mem 32 --children 1
ok "lw ready" wait_ready lw
OM_CONFIG=$LCONF setsid "$OM_BUILDDIR/omd" --foreground --log "$W/local/omd.log" </dev/null >/dev/null 2>&1 &
LOMD=$!
track_pid "$LOMD"
ok "omd without etcd runs in local mode" wait_for 10 grep -q 'event=started mode=local' "$W/local/omd.log"
S=$(snap lw)
LDIR=$OM_STORE/groups/$LG
ok "omd checkpoints the group at once, then every 10 s (generation 3 within 40 s)" wait_for 40 has_gen "$LDIR" 3
ok "... logging each one (event=checkpoint, frozen_s, total_s)" \
	wait_for 10 grep -q "event=checkpoint group=$LG generation=3 frozen_s=[0-9.]* total_s=[0-9.]*" "$W/local/omd.log"
ok "... keeping the newest 2 (pruned)" wait_for 10 exactly "$LDIR" 2
ok "... and logging the prune" wait_for 10 grep -q "event=prune group=$LG .*removed=1" "$W/local/omd.log"
ok "the group ran on: never restored, counting on" continued_running "$S"
ok "... not stopped" not_stopped "${WPID[lw]}"
ok "... frozen less than 5 s each time" frozen_ok "$W/local/omd.log" "$LG" 5
N=$(newest "$LDIR")
run env OM_CONFIG="$LCONF" omckpt --every off -g "$LG"
ok "--every off removes the policy" sh -c "[ $RC -eq 0 ] && [ ! -e '$W/local/policy/$LG' ]"
sleep 14
ok "... and omd checkpoints the group no more" test "$(newest "$LDIR")" = "$N"
kill -TERM "$LOMD"
wait "$LOMD"
ok "omd (local) stops on SIGTERM, exit 0" test $? -eq 0
ok "... saying so" grep -q 'event=stopped mode=local' "$W/local/omd.log"
finish_ok lw

# --------------------------------------------------- a cluster (omlab) ----
# the nodes use their own settings (omlab writes each node's omtools.conf)
unset OM_STORE OM_WORKDIR OM_CGROUP OM_NODE OM_CONFIG
all_alive() { alive_node 1 && alive_node 2; }
policy_in_etcd() { ectl get --print-value-only "/omtools/policy/$1" | grep '"every_s":10' | grep -q '"by":"1"'; }
policy_gone() { [ "$RC" -eq 0 ] && ! ectl get --keys-only "/omtools/policy/$1" | grep -q .; }
# gen_node DIR N : the node that wrote generation N (its manifest)
gen_node() { omdecode "$1/gen-$2" 2>/dev/null | awk '$1 == "node:" {print $2}'; }
# written_by DIR N NODE : a generation above N exists and NODE wrote the newest
written_by() {
	local n
	n=$(newest "$1")
	[ -n "$n" ] && [ "$n" -gt "$2" ] && [ "$(gen_node "$1" "$n")" = "$3" ]
}

cleanup_lab
run "$OMLAB" "${LAB[@]}" up 2
ok "omlab up 2 (etcd with TLS, two nodes with omd)" test "$RC" -eq 0 || { diag_file "$ERR"; diag_file "$OUT"; done_testing; }
ok "both nodes are alive in etcd" wait_for 30 all_alive
CG=1
CDIR=$LABDIR/store/groups/$CG
ok "worker cw (64 MiB, 2 children) in group $CG on node 1" start_on 1 "$CG" cw --mem 64 --children 2
on 1 omckpt --every 10s --keep 3 -g "$CG"
ok "omckpt --every 10s --keep 3 -g $CG on node 1" test "$RC" -eq 0 || diag_file "$ERR"
ok "the policy is in etcd (PREFIX/policy/$CG, by node 1)" policy_in_etcd "$CG"
on 2 omckpt --policy --json
ok "node 2 sees it too (omckpt --policy --json: etcd)" \
	sh -c "grep -q '\"backend\":\"etcd\"' '$OUT' && grep -q '\"group\":$CG,\"every_s\":10,\"every\":\"10s\",\"keep\":3' '$OUT'"
S=$(snap cw)
ok "node 1's omd checkpoints group $CG periodically (generation 5 within 100 s: each period ends at a poll of the scheduler, every 5 s, plus the checkpoint)" wait_for 100 has_gen "$CDIR" 5
ok "... keeping exactly the newest 3" wait_for 10 exactly "$CDIR" 3
ok "... logged by node 1's omd (event=checkpoint, event=prune)" wait_for 10 logged_on 1 "event=checkpoint group=$CG generation=5 frozen_s=" "event=prune group=$CG "
ok "... written by node1 (the manifest)" test "$(gen_node "$CDIR" "$(newest "$CDIR")")" = node1
N1=$(newest "$CDIR")
ok "the generation numbers keep increasing" wait_for 25 has_gen "$CDIR" $((N1 + 1))
ok "... still exactly 3" wait_for 10 exactly "$CDIR" 3
ok "the group ran on: never restored, counting on" continued_running "$S"
omd_log 1 >"$W/node1-omd.log"
ok "... frozen less than 5 s each time" frozen_ok "$W/node1-omd.log" "$CG" 5

# migrate right after a periodic checkpoint (a checkpoint holding the group's
# lock would make the migration's own refuse it: exit 6, tried again)
N=$(newest "$CDIR")
wait_for 25 has_gen "$CDIR" $((N + 1))
for _try in 1 2 3; do
	on 1 migrategroup "$CG" 2
	[ "$RC" -eq 6 ] || break
	sleep 2
done
ok "migrategroup $CG 2" test "$RC" -eq 0 || diag_file "$ERR"
ok "etcd: group $CG belongs to node 2" test "$(owner_of "$CG")" = 2
MOVED=$(date +%s.%N)
N=$(newest "$CDIR")
ok "node 2's omd carries on: a new generation written by node2 within 30 s" wait_for 30 written_by "$CDIR" "$N" node2
N=$(newest "$CDIR")
ok "... and another" wait_for 25 written_by "$CDIR" "$N" node2
ok "... still exactly 3 generations" wait_for 10 exactly "$CDIR" 3
ok "node 2's omd logged them" logged_on 2 "event=checkpoint group=$CG generation=[0-9]* frozen_s="
# node 1's log lines after the migration: none for the group
after=$(omd_log 1 | awk -v t="$(date -u -d "@$MOVED" +%Y-%m-%dT%H:%M:%S)" '{ts = substr($1, 4, 19)} ts > t' |
	grep -c "event=checkpoint group=$CG ")
ok "node 1's omd checkpoints the group no more (it belongs to node 2)" test "$after" -eq 0
ok "cw was restored once (the migration) and counts on" finish_on 2 cw
on 2 omckpt --every off -g "$CG"
ok "--every off (on node 2) removes the etcd key" policy_gone "$CG"

done_testing
