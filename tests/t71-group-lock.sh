#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t71-group-lock.sh — one lock per group and node: while an omckpt holds a
# group frozen (OM_FAULT=ckpt-pause-frozen), resetgroup, joingroup (into the
# group and out of it), omckpt -g / -p, omrun and omrestore of the group exit
# 6 naming the holder, and nothing of the group is thawed or moved (joingroup
# of a process outside the group whose child is a member, too); with
# --lock-wait they wait for it. Also: the scratch sweep and the scratch
# directory are done before the freeze, not inside it. Both backends.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 7100

json_frozen() { "$SHOWGROUP" --json "$G" | grep -q "\"frozen\":$1"; }
stalled() { ! advancing x; }
wait_frozen() {
	for _ in $(seq 200); do
		json_frozen true && return 0
		sleep 0.05
	done
	return 1
}
# busy NAME CMD... : CMD exits 6 and names the omckpt that holds the group
busy() {
	local name=$1
	shift
	check_rc 6 "$name exits 6" "$@"
	like "$ERR" "miggroup $G is busy: lock .* is held by .*omckpt" "... and names the omckpt holding $G"
}
same_members() { [ "$(members | sort -n | tr '\n' ' ')" = "$before" ]; }

for cg in v2 v1; do
	have_backend $cg || { skip "[$cg] backend" "not available here"; continue; }
	export OM_CGROUP=$cg
	new_group
	diag "backend $cg, group $G"
	ok "[$cg] omrun worker x in group $G" start_worker x --mem 16 --children 2
	ok "[$cg] worker ready" wait_ready x
	check "[$cg] a first generation" "$OMCKPT" --leave-running -g "$G"
	start_plain_worker out --mem 8 --children 1
	ok "[$cg] a worker outside the group" wait_ready out
	# a process outside the group whose child is a member (its own tree in $G)
	setsid bash -c 'sleep 1000 & wait' </dev/null >/dev/null 2>&1 &
	par=$!
	track_pid "$par"
	for _ in $(seq 100); do
		kid=$(cat /proc/"$par"/task/*/children 2>/dev/null | tr -d ' ')
		[ -n "$kid" ] && break
		sleep 0.05
	done
	track_pid "$kid"
	check "[$cg] the child $kid of an outside process joins $G" "$JOINGROUP" "$kid" "$G"
	g_main=$G
	new_group
	G2=$G
	G=$g_main

	# the raw images a killed omckpt left: swept before the freeze
	dead=$(free_pid)
	mkdir -p "$OM_WORKDIR/ckpt-g$G-$dead/tree-1/img"
	head -c 1M /dev/zero >"$OM_WORKDIR/ckpt-g$G-$dead/tree-1/img/pages-1.img"

	OM_FAULT=ckpt-pause-frozen:20 timeout -k 5 60 "$OMCKPT" --leave-running -g "$G" >"$W/held.out" 2>"$W/held.err" &
	holder=$!
	ok "[$cg] omckpt holds $G frozen (OM_FAULT=ckpt-pause-frozen)" wait_frozen
	ok "[$cg] ... x is stalled" stalled
	ok "[$cg] ... the stale images were swept before the freeze" test ! -e "$OM_WORKDIR/ckpt-g$G-$dead/tree-1/img"
	ok "[$cg] ... its scratch directory was made before the freeze" \
		eval 'test -d "$(echo "$OM_WORKDIR"/ckpt-g"$G"-*/tree-"${WPID[x]}"/img)"'
	before=$(members | sort -n | tr '\n' ' ')
	xroot=${WPID[x]}

	busy "[$cg] resetgroup $G" "$RESETGROUP" "$G"
	busy "[$cg] joingroup (outside worker) $G" "$JOINGROUP" "${WPID[out]}" "$G"
	busy "[$cg] joingroup (member of $G) 0" "$JOINGROUP" "$xroot" 0
	busy "[$cg] joingroup of a process whose child is in $G, into $G2" "$JOINGROUP" "$par" "$G2"
	busy "[$cg] omckpt -g $G" "$OMCKPT" -g "$G"
	busy "[$cg] omckpt -p (root of x)" "$OMCKPT" --leave-running -p "$xroot"
	busy "[$cg] omrun -g $G" "$OMRUN" -g "$G" -- sleep 100
	busy "[$cg] omrestore -g $G" "$OMRESTORE" -g "$G"
	ok "[$cg] the group is still frozen" json_frozen true
	ok "[$cg] ... x is still stalled" stalled
	ok "[$cg] ... its members did not move" same_members
	# shellcheck disable=SC2086
	ok "[$cg] ... and all are in the group" eval 'for p in $before; do in_cgroup $p || exit 1; done'
	ok "[$cg] the outside worker was not moved in" not in_cgroup "${WPID[out]}"
	ok "[$cg] the member child $kid was not moved out" in_cgroup "$kid"
	ok "[$cg] ... nor its parent into $G2" not in_cgroup "$par" "$G2"
	# init's descendants are everybody, $G's members included: refused first, not busy
	check_rc 2 "[$cg] joingroup of PID 1 is refused (exit 2) while $G is locked" "$JOINGROUP" 1 "$G2"

	check "[$cg] resetgroup --lock-wait 60 waits for the omckpt" "$RESETGROUP" --lock-wait 60 "$G"
	wait $holder
	is "$?" 0 "[$cg] the held omckpt finished"
	like "$(cat "$W/held.out")" "generation 2 written" "[$cg] ... and wrote generation 2"
	ok "[$cg] x runs after the reset" advancing x
	ok "[$cg] ... outside the group" not in_cgroup "$xroot"
	check "[$cg] x rejoins $G" "$JOINGROUP" "$xroot" "$G"
	check "[$cg] omckpt after the lock was released" "$OMCKPT" --leave-running -g "$G"
	finish_ok x
	finish_ok out
	kill "$kid" "$par" 2>/dev/null
	reap "$par"
done

done_testing
