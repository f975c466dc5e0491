#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t70-split-brain.sh — a migration interrupted after its generation was
# published must never leave the group to run again here: omckpt records its
# intent before the rename, and whoever takes the group's lock next (omckpt,
# resetgroup, joingroup, omrestore) finishes the kill instead of thawing. An
# omckpt killed before the rename leaves a group that is thawed as before.
# Faults are injected with OM_FAULT (ckpt-after-commit, ckpt-before-commit,
# ckpt-commit-fails-after-rename); both backends. Also a tree checkpointed by
# PID in no group (its PID lock carries the intent).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 7000

RUNDIR=${OM_RUNDIR:-/run/omtools}
json_frozen() { "$SHOWGROUP" --json "$G" | grep -q "\"frozen\":$1"; }
stalled() { ! advancing x; }
newest_gen() { ls -d "$OM_STORE/groups/$G"/gen-* 2>/dev/null | sed 's/.*gen-//' | sort -n | tail -1; }
intent() { test -e "$RUNDIR/intent-group-$G.om"; }
no_intent() { ! intent; }

for cg in v2 v1; do
	have_backend $cg || { skip "[$cg] backend" "not available here"; continue; }
	export OM_CGROUP=$cg
	new_group
	diag "backend $cg, group $G"
	ok "[$cg] omrun worker x in group $G" start_worker x --mem 16 --children 2
	ok "[$cg] worker ready" wait_ready x
	xpids=$(pids_of x | tr '\n' ' ')

	# 1. killed between the rename and the kill: resetgroup must kill, not thaw
	run env OM_FAULT=ckpt-after-commit "$OMCKPT" -g "$G"
	is "$RC" 137 "[$cg] omckpt killed (OM_FAULT=ckpt-after-commit) right after publishing"
	is "$(newest_gen)" 1 "[$cg] ... generation 1 is published"
	ok "[$cg] ... its intent is left in $RUNDIR" intent
	ok "[$cg] ... the group is left frozen" json_frozen true
	check "[$cg] resetgroup after the interrupted migration" "$RESETGROUP" "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... stops the group instead of thawing it" all_gone 10 $xpids
	ok "[$cg] ... and removes the intent" no_intent
	# shellcheck disable=SC2086
	pids_free 15 $xpids
	check "[$cg] omrestore -g $G brings generation 1 back" "$OMRESTORE" -g "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... every process is back" all_alive $xpids
	ok "[$cg] ... and runs" advancing x

	# 2. the same, found by the next omckpt: it finishes the kill; the group is then empty
	run env OM_FAULT=ckpt-after-commit "$OMCKPT" -g "$G"
	is "$RC" 137 "[$cg] omckpt killed after publishing generation 2"
	check_rc 3 "[$cg] the next omckpt finishes the kill and finds the group empty" "$OMCKPT" -g "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... the group is stopped" all_gone 10 $xpids
	is "$(newest_gen)" 2 "[$cg] ... and no generation was added"
	ok "[$cg] ... no intent is left" no_intent
	# shellcheck disable=SC2086
	pids_free 15 $xpids
	check "[$cg] omrestore -g $G (generation 2)" "$OMRESTORE" -g "$G"
	ok "[$cg] ... x runs" advancing x

	# 3. found by omrestore itself (migration to "another node" finished here)
	run env OM_FAULT=ckpt-after-commit "$OMCKPT" -g "$G"
	is "$RC" 137 "[$cg] omckpt killed after publishing generation 3"
	ok "[$cg] ... x is stalled" stalled
	check "[$cg] omrestore -g $G stops the frozen group, then restores generation 3" "$OMRESTORE" -g "$G" --pid-wait 15
	like "$OUT" "^${WPID[x]} with commandline .* restored in group $G " "[$cg] ... x restored"
	ok "[$cg] ... and runs" advancing x
	ok "[$cg] ... no intent is left" no_intent

	# 4. found by joingroup of another process into the group
	run env OM_FAULT=ckpt-after-commit "$OMCKPT" -g "$G"
	is "$RC" 137 "[$cg] omckpt killed after publishing generation 4"
	sleep 1000 </dev/null >/dev/null 2>&1 &
	other=$!
	track_pid "$other"
	check "[$cg] joingroup of another process into $G" "$JOINGROUP" "$other" "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... stops the published group" all_gone 10 $xpids
	ok "[$cg] ... the newcomer runs" alive "$other"
	check "[$cg] the newcomer leaves" "$JOINGROUP" "$other" 0
	kill "$other"
	reap "$other"
	# shellcheck disable=SC2086
	pids_free 15 $xpids
	check "[$cg] omrestore -g $G (generation 4)" "$OMRESTORE" -g "$G"
	ok "[$cg] ... x runs" advancing x

	# 5. killed before the rename: not published, so its thaw guard thaws
	# (under the group's lock, which finishes the intent: not published)
	run env OM_FAULT=ckpt-before-commit "$OMCKPT" -g "$G"
	is "$RC" 137 "[$cg] omckpt killed (OM_FAULT=ckpt-before-commit) before publishing"
	is "$(newest_gen)" 4 "[$cg] ... no generation 5"
	ok "[$cg] ... its thaw guard thaws the group: x runs" advancing x
	ok "[$cg] ... the group is not frozen" json_frozen false
	check "[$cg] omckpt --leave-running after it" "$OMCKPT" --leave-running -g "$G"
	ok "[$cg] ... x runs" advancing x
	# shellcheck disable=SC2086
	ok "[$cg] ... with all its processes" all_alive $xpids
	ok "[$cg] ... no intent is left" no_intent
	is "$(newest_gen)" 5 "[$cg] ... and wrote generation 5"

	# 6. the commit fails after its rename: published, so the group is stopped
	check_rc 4 "[$cg] omckpt whose commit fails after the rename exits 4" \
		env OM_FAULT=ckpt-commit-fails-after-rename "$OMCKPT" -g "$G"
	like "$ERR" "generation 6 is published and the group stopped" "[$cg] ... and says the generation is published"
	# shellcheck disable=SC2086
	ok "[$cg] ... the group does not run here any more" all_gone 10 $xpids
	ok "[$cg] ... no intent is left" no_intent
	is "$(newest_gen)" 6 "[$cg] ... generation 6 is there"
	# shellcheck disable=SC2086
	pids_free 15 $xpids
	check "[$cg] omrestore -g $G (generation 6)" "$OMRESTORE" -g "$G"
	ok "[$cg] ... x runs" advancing x
	finish_ok x
	rm -f "$RUNDIR/intent-group-$G.om"

	# 7. omckpt -p of a tree in no group, killed after publishing: its PID lock
	# carries the intent; joingroup of the frozen root finishes the kill
	start_plain_worker lone --mem 8 --children 1
	ok "[$cg] a worker in no group" wait_ready lone
	lroot=${WPID[lone]}
	lpids=$(pids_of lone | tr '\n' ' ')
	run env OM_FAULT=ckpt-after-commit "$OMCKPT" -p "$lroot"
	is "$RC" 137 "[$cg] omckpt -p killed right after publishing"
	ok "[$cg] ... its intent is left under the PID's lock" test -e "$RUNDIR/intent-pid-$lroot.om"
	ok "[$cg] ... the tree is left frozen" not advancing lone
	check_rc 3 "[$cg] joingroup of the frozen root finishes the kill (the process is gone: exit 3)" \
		"$JOINGROUP" "$lroot" "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... the tree is stopped, not thawed" all_gone 10 $lpids
	ok "[$cg] ... no intent is left" test ! -e "$RUNDIR/intent-pid-$lroot.om"
	reap "$lroot"
	# shellcheck disable=SC2086
	pids_free 15 $lpids
	check "[$cg] omrestore -p $lroot brings it back" "$OMRESTORE" -p "$lroot"
	ok "[$cg] ... and it runs" advancing lone
	finish_ok lone
	rm -f "$RUNDIR/intent-pid-$lroot.om"
done

done_testing
