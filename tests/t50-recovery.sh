#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t50-recovery.sh — an omckpt that was killed (kill -9) can leave a group
# frozen; the next omckpt on the node, or resetgroup, thaws it. Two omckpt of
# one group on one node never run at once (the second exits 6), and ^C/SIGTERM
# during a checkpoint does not leave the group frozen.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 5000

# freeze_leaf : freeze the leaf of tree x by hand, as a killed omckpt leaves it.
freeze_leaf() {
	local leaf
	leaf=$(cg_root)/omtools/g$G/t$(pids_of x | head -1)
	if [ "$OM_CGROUP" = v1 ]; then echo FROZEN >"$leaf/freezer.state"; else echo 1 >"$leaf/cgroup.freeze"; fi
	for _ in $(seq 100); do
		if [ "$OM_CGROUP" = v1 ]; then grep -q '^FROZEN' "$leaf/freezer.state" && return 0
		else grep -q '^frozen 1' "$leaf/cgroup.events" && return 0; fi
		sleep 0.02
	done
	return 1
}

json_frozen() { "$SHOWGROUP" --json "$G" | grep -q "\"frozen\":$1"; }
stalled() { ! advancing x; }

for cg in v2 v1; do
	have_backend $cg || { skip "[$cg] backend" "not available here"; continue; }
	export OM_CGROUP=$cg
	new_group
	diag "backend $cg, group $G"
	ok "[$cg] omrun a worker in group $G" start_worker x --mem 16 --children 1
	ok "[$cg] worker ready" wait_ready x

	# a leaf left frozen, as by an omckpt killed with -9
	ok "[$cg] freeze the leaf by hand" freeze_leaf
	ok "[$cg] showgroup --json says frozen" json_frozen true
	ok "[$cg] the worker is stalled" stalled
	check "[$cg] omckpt --leave-running thaws the stale freeze and checkpoints" "$OMCKPT" --leave-running -g "$G"
	ok "[$cg] showgroup --json says not frozen" json_frozen false
	ok "[$cg] the worker runs again" advancing x

	# resetgroup thaws too
	ok "[$cg] freeze the leaf by hand again" freeze_leaf
	xpids=$(pids_of x | tr '\n' ' ')
	check "[$cg] resetgroup of a frozen group" "$RESETGROUP" "$G"
	ok "[$cg] the worker runs after resetgroup" advancing x
	check "[$cg] the worker rejoins" "$JOINGROUP" "$(pids_of x | head -1)" "$G"

	# the raw images a killed omckpt left behind are swept, its CRIU log stays
	dead=$(free_pid)
	mkdir -p "$OM_WORKDIR/ckpt-g$G-$dead/tree-1/img"
	head -c 1M /dev/zero >"$OM_WORKDIR/ckpt-g$G-$dead/tree-1/img/pages-1.img"
	echo "Error (criu): something" >"$OM_WORKDIR/ckpt-g$G-$dead/tree-1/dump.log"
	check "[$cg] omckpt --leave-running after a killed omckpt" "$OMCKPT" --leave-running -g "$G"
	ok "[$cg] ... sweeps the images it left" test ! -e "$OM_WORKDIR/ckpt-g$G-$dead/tree-1/img"
	ok "[$cg] ... keeps its CRIU log" test -s "$OM_WORKDIR/ckpt-g$G-$dead/tree-1/dump.log"

	# one omckpt of a group per node at a time
	mkdir -p /run/omtools
	flock /run/omtools/group-"$G".lock sleep 3 &
	holder=$!
	sleep 0.3
	check_rc 6 "[$cg] omckpt while another holds the group's node lock exits 6" "$OMCKPT" -g "$G"
	like "$ERR" "miggroup $G is busy" "[$cg] ... and says so"
	ok "[$cg] ... and the worker keeps running" advancing x
	wait $holder

	# SIGTERM in the middle of a checkpoint: it finishes, the group is not left frozen
	"$OMCKPT" --leave-running -g "$G" >/dev/null 2>&1 &
	ck=$!
	sleep 0.05
	kill -TERM $ck 2>/dev/null
	wait $ck
	ok "[$cg] after SIGTERM to omckpt the group is not frozen" json_frozen false
	ok "[$cg] ... and the worker runs" advancing x
	# shellcheck disable=SC2086
	ok "[$cg] ... with all its processes" all_alive $xpids

	# omckpt -p of one tree of a group: only that tree is frozen and stored
	ok "[$cg] omrun a second worker y in the group" start_worker y --mem 8 --children 1
	ok "[$cg] y ready" wait_ready y
	xroot=$(pids_of x | head -1)
	xchild=$(pids_of x | sed -n 2p)
	check "[$cg] omckpt --leave-running -p (root of x) in a group" "$OMCKPT" --leave-running -p "$xroot"
	ok "[$cg] ... stores it under pids/" test -f "$OM_STORE/pids/$xroot/gen-1/manifest.om"
	ok "[$cg] ... y keeps running" advancing y
	ok "[$cg] ... x keeps running" advancing x
	ok "[$cg] ... nothing is left frozen" json_frozen false
	check_rc 1 "[$cg] omckpt -p of a child inside a tree exits 1" "$OMCKPT" -p "$xchild"
	like "$ERR" "inside a process tree" "[$cg] ... and says to checkpoint the group or the root"
	# migrate just that tree: omckpt -p stops it, omrestore -p brings it back into its group
	ypids=$(pids_of y | tr '\n' ' ')
	yroot=$(pids_of y | head -1)
	ysnap=$(snap y)
	check "[$cg] omckpt -p (root of y)" "$OMCKPT" -p "$yroot"
	# shellcheck disable=SC2086
	ok "[$cg] ... y is gone" all_gone 5 $ypids
	ok "[$cg] ... x keeps running" advancing x
	like "$("$OMDECODE" "$OM_STORE/pids/$yroot/gen-1")" "from group: +$G" "[$cg] ... the manifest names its group"
	# shellcheck disable=SC2086
	pids_free 15 $ypids
	check "[$cg] omrestore -p $yroot" "$OMRESTORE" -p "$yroot"
	like "$OUT" "^$yroot with commandline .* restored in group $G " "[$cg] ... says it rejoined group $G"
	ok "[$cg] ... y is a member of $G again" eval "members | grep -qx $yroot"
	ok "[$cg] ... and in its leaf" in_cgroup "$yroot"
	ok "[$cg] ... y saw its own restore and continued" continued_restored "$ysnap"
	finish_ok y

	# the store's writer lock (held by an omckpt on another node): exit 6, or wait for it
	mkdir -p "$OM_STORE/groups/$G"
	flock "$OM_STORE/groups/$G/.lock" sleep 2 &
	holder=$!
	sleep 0.3
	check_rc 6 "[$cg] omckpt while another node holds the store lock exits 6" "$OMCKPT" --leave-running -g "$G"
	ok "[$cg] ... the worker keeps running" advancing x
	check "[$cg] omckpt --lock-wait 10 waits for the other node" "$OMCKPT" --leave-running --lock-wait 10 -g "$G"
	wait $holder

	# checkpoint on "node A", restore on "node B" (same store)
	xpids=$(pids_of x | tr '\n' ' ')
	xsnap=$(snap x)
	check "[$cg] omckpt on node-a" env OM_NODE=node-a "$OMCKPT" -g "$G"
	gen=$(ls -d "$OM_STORE/groups/$G"/gen-* | sort -t- -k2 -n | tail -1)
	like "$("$OMDECODE" "$gen")" "node: +node-a" "[$cg] ... the manifest names node-a"
	# shellcheck disable=SC2086
	ok "[$cg] ... the group is gone" all_gone 5 $xpids
	# shellcheck disable=SC2086
	pids_free 15 $xpids
	mkdir -p /run/omtools
	flock /run/omtools/group-"$G".lock sleep 2 &
	holder=$!
	sleep 0.3
	check_rc 6 "[$cg] omrestore while another omrestore of the group runs here exits 6" env OM_NODE=node-b "$OMRESTORE" -g "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... and restores nothing" all_gone 1 $xpids
	wait $holder
	check "[$cg] omrestore on node-b" env OM_NODE=node-b "$OMRESTORE" -g "$G"
	like "$ERR" "from node node-a" "[$cg] ... says where the generation was made"
	# shellcheck disable=SC2086
	ok "[$cg] ... the group is back" all_alive $xpids
	ok "[$cg] ... x saw its own restore and continued" continued_restored "$xsnap"
	finish_ok x
done

done_testing
