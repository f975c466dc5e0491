#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a90-mpi.sh — Debian's Open MPI: `mpirun -np 3 --mca btl self,vader mpiring`
# (mpiring.c, built here with mpicc) as one tree of a miggroup. The three ranks
# pass a token around a ring over the shared-memory transport (vader: one
# /dev/shm/vader_segment.* file per rank, mapped by all of them), every rank
# checking every message (round, sender, payload, checksum); mpirun talks to
# its ranks over loopback TCP (PMIx), so omckpt needs --tcp-established.
#  - without --tcp-established omckpt refuses (exit 5), the ring goes on;
#  - migration (omckpt -T, mid-run): the processes and their /dev/shm files
#    are gone from the node (whatever is left is removed, as on another node),
#    omrestore: the same processes, the files are back, the ring goes on from
#    the round it was at, not from 0;
#  - --leave-running, SIGKILL of the group, /dev/shm files removed, omrestore
#    of that generation: the ring goes on from the checkpoint's round (below
#    the one it had reached when killed);
#  - at the end the ring is stopped (a flag file): every rank reports PASS with
#    the same number of rounds, mpirun exits and the segments are removed.
# All of it twice: mpirun started by omrun (host), then by `omrun --isolate`
# (om-init as PID 1, mpirun as PID 2, its session directory made the tree's
# own: it would be /tmp/ompi.<node>.<uid>/pid.2 for every isolated mpirun).
# Not covered: Open MPI's session directory (/tmp/ompi.<node>.<uid>/pid.<mpirun>:
# hwloc.sm held open by mpirun, PMIx's pmix_dstor_* files mapped shared by all)
# is a plain directory in /tmp that shmig does not carry; it stays on this node,
# and a restore on a node without it fails in CRIU ("Can't open file
# tmp/ompi.../hwloc.sm on restore"). Each rank also holds an unlinked, empty
# /dev/shm/open_mpi.0000: a 0-byte ghost file for CRIU.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 19000
need_cmd mpicc mpirun

export OM_CGROUP=v2
NP=3
STATUS= # the running variant's status file

ok "mpiring.c builds with mpicc" mpicc -O2 -o "$W/mpiring" "$APPS_DIR/mpiring.c" 2>"$W/mpicc.err" ||
	diag_file "$W/mpicc.err"

round() { last_line "$STATUS" | sed -n 's/^round=\([0-9]*\) .*/\1/p'; }
status_ok() {
	last_line "$STATUS" | grep -q ' ok$' && return 0
	diag "status: $(tail -n 3 "$STATUS" 2>/dev/null)"
	return 1
}
past() { # R : the ring is past round R
	local r
	r=$(round)
	[ -n "$r" ] && [ "$r" -gt "$1" ]
}
# goes_on_from LOW [HIGH] : the ring writes rounds again: none below LOW
# (restarted, or restored from an older image), the first one below HIGH when
# given (the status file still shows HIGH, written before a kill: the restored
# ring is behind it), then 200 rounds more, every message checked ok
goes_on_from() {
	local low=$1 high=${2:-} r first='' end=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$end" ]; do
		r=$(round)
		if [ -n "$r" ]; then
			if [ "$r" -lt "$low" ]; then
				diag "round $r, below $low: not the checkpointed ring"
				return 1
			fi
			if [ -z "$first" ] && { [ -z "$high" ] || [ "$r" -lt "$high" ]; }; then
				first=$r
			fi
			if [ -n "$first" ] && [ "$r" -gt $((first + 200)) ]; then
				diag "went on from round $first (checkpoint at >= $low) to $r"
				status_ok
				return
			fi
		fi
		sleep 0.05
	done
	diag "the ring did not go on: status '$(tail -n 3 "$STATUS" 2>/dev/null)', first round seen after the restore: ${first:-none}"
	return 1
}
tree_root() { "$SHOWGROUP" --json "$G" 2>/dev/null | grep -o '"root":[0-9]*' | head -1 | cut -d: -f2; }
flat() { printf '%s\n' "$1" | grep . | tr '\n' ' '; } # LINES : one line, space separated
ring_pids() { last_line "$STATUS" | sed -n 's/.* pids=\([0-9,]*\) .*/\1/p' | tr ',' ' '; }
# shm_files : the /dev/shm files the group's processes map or hold open
shm_files() {
	local p
	for p in $(members); do
		awk '{$1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, "")} /^\/dev\/shm\// {print}' "/proc/$p/maps" 2>/dev/null
		find "/proc/$p/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null | grep '^/dev/shm/'
	done | sort -u
}
vader_files() { shm_files | grep '^/dev/shm/vader_segment\.' | grep -v ' (deleted)$'; }
# gone_from_node FILES : after a migration the files are gone; what is left is
# reported, then removed (the restore happens "elsewhere")
gone_from_node() {
	local f left=
	for f in $1; do
		if [ -e "$f" ]; then
			left="$left $f"
			rm -f "$f"
		fi
	done
	[ -z "$left" ] && return 0
	diag "left on the node (removed now):$left"
	return 1
}
results_pass() {
	local r want='' got bad=''
	for r in $(seq 0 $((NP - 1))); do
		got=$(cat "$D/mpiring.rank$r.result" 2>/dev/null)
		case $got in
		"PASS rounds="*) [ -z "$want" ] && want=$got
			[ "$got" = "$want" ] || bad="$bad rank$r:'$got'(rank0:'$want')" ;;
		*) bad="$bad rank$r:'$got'" ;;
		esac
	done
	[ -z "$bad" ] && { diag "every rank: $want"; return 0; }
	diag "results:$bad"
	return 1
}
none_of() { # FILES : none of the files exists
	local f left=
	for f in $1; do [ -e "$f" ] && left="$left $f"; done
	[ -z "$left" ] && return 0
	diag "still there:$left"
	return 1
}
all_results() { [ "$(find "$D" -maxdepth 1 -name 'mpiring.rank*.result' | wc -l)" -eq "$NP" ]; }

# a killed ring leaves its segments and session directory (MPI_Finalize removes
# them), a failed restore the network lock: whatever of this script's is left
_mpi_shm=
_mpi_session=
_mpi_groups=
_a90_cleanup() {
	_cleanup
	local f g
	for f in $_mpi_shm; do rm -f "$f"; done
	[ -n "$_mpi_session" ] && rm -rf /tmp/ompi.*/"pid.$_mpi_session"
	for g in $_mpi_groups; do nft delete table inet "omtools_g$g" 2>/dev/null; done
	return 0
}
trap _a90_cleanup EXIT

# ring V : one run of the ring, V = host (omrun) or iso (omrun --isolate)
ring() {
	local v=$1 D=$W/$1 root='' extra pids files before at tc tr killed vader ranks
	new_group
	_mpi_groups="$_mpi_groups $G"
	mkdir -p "$D"
	STATUS=$D/mpiring.status
	diag "---- $v: group $G ----"
	local MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np "$NP" --mca btl "self,vader" "$W/mpiring")
	if [ "$v" = host ]; then
		ok "[$v] mpirun -np $NP (shared-memory transport) in group $G" omrun_app "mpi-$v" "${MPIRUN[@]}" "$D"
		mpirun_pid=${APID[mpi-$v]}
		_mpi_session=$mpirun_pid
		extra=1
	else
		# mpirun is PID 2 in every isolated tree: its session directory
		# (/tmp/ompi.<node>.<uid>/pid.2) is made the tree's own
		run "$OMRUN" -g "$G" --isolate -o "$W/mpi-$v.log" -- env OMPI_MCA_orte_tmpdir_base="$D/tmp" \
			"${MPIRUN[@]}" "$D"
		root=$(head -n1 "$OUT" | tr -d '[:space:]')
		ok "[$v] omrun --isolate -- mpirun -np $NP in group $G (om-init $root)" test "$RC" -eq 0 || diag_file "$ERR"
		track_pid "$root"
		wait_until 10 pgrep -P "$root"
		mpirun_pid=$(pgrep -P "$root" | head -1)
		extra=2
	fi
	ok "[$v] ... the ring runs" wait_until 30 past 100
	ok "[$v] ... every message checked ok" status_ok
	is "$(members | wc -l)" $((NP + extra)) "[$v] ... the group has mpirun and its $NP ranks$([ "$v" = host ] || echo ', and om-init')"
	ranks=$(ring_pids)
	ok "[$v] ... the ranks ($ranks) are mpirun's children" test "$(pgrep -P "$mpirun_pid" | wc -l)" -eq "$NP"
	vader=$(vader_files)
	_mpi_shm="$_mpi_shm $vader"
	ok "[$v] ... one vader segment per rank in /dev/shm ($(flat "$vader"))" test "$(echo "$vader" | grep -c .)" -eq "$NP"
	diag "/dev/shm files of the group: $(shm_files | tr '\n' ' ')"
	diag "$(for f in $vader; do stat -c '%n %s bytes' "$f"; done | tr '\n' ';')"
	like "$(ss -tanp | grep -E '"mpirun"|"mpiring"' | grep ESTAB)" '127\.0\.0\.1' "[$v] ... mpirun and the ranks talk over loopback TCP"

	# ---- without --tcp-established CRIU refuses ----
	check_rc 5 "[$v] omckpt without --tcp-established fails (exit 5)" "$OMCKPT" -g "$G"
	like "$ERR" "Connected TCP socket, consider using --tcp-established option" "[$v] ... CRIU's reason is shown"
	ok "[$v] ... the ring goes on" goes_on_from "$(round)"

	# ---- migration ----
	pids=$(members | tr '\n' ' ')
	files=$(shm_files | grep -v ' (deleted)$')
	before=$(round)
	timed "$OMCKPT" --tcp-established -g "$G"
	tc=$T_SECS
	ok "[$v] omckpt -T -g $G (migration, round $before)" test "$RC" -eq 0 || {
		diag_file "$ERR"
		diag "not checkpointed: the rest would only fail"
		return 1
	}
	# shellcheck disable=SC2086
	ok "[$v] ... mpirun and the ranks are gone" pids_free 20 $pids
	ok "[$v] ... their /dev/shm files are gone" gone_from_node "$files"
	at=$(round)
	sleep 0.5
	is "$(round)" "$at" "[$v] ... the ring stopped at round $at"
	timed "$OMRESTORE" -g "$G"
	tr=$T_SECS
	ok "[$v] omrestore -g $G" test "$RC" -eq 0 || {
		diag_file "$ERR"
		diag "nothing restored: the rest would only fail"
		return 1
	}
	ckpt_restore_figures "mpi$([ "$v" = host ] || echo -isolated)" "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
	if [ "$v" = host ]; then
		is "$(members | tr '\n' ' ')" "$pids" "[$v] ... the same processes are back"
	else
		root=$(tree_root)
		track_pid "$root"
		mpirun_pid=$(pgrep -P "$root" | head -1)
		is "$(members | wc -l)" "$(wc -w <<<"$pids")" "[$v] ... the tree is back (new host PIDs, om-init $root)"
	fi
	is "$(flat "$(shm_files | grep -v ' (deleted)$')")" "$(flat "$files")" "[$v] ... their /dev/shm files are back"
	ok "[$v] ... the ring goes on from round $at, every message checked" goes_on_from "$at"
	is "$(ring_pids)" "$ranks" "[$v] ... the same ranks"

	# ---- periodic: --leave-running, kill, restore of that generation ----
	before=$(round)
	check "[$v] omckpt -T --leave-running -g $G (round $before)" "$OMCKPT" --tcp-established --leave-running -g "$G"
	ok "[$v] ... the ring goes on" goes_on_from "$before"
	files=$(shm_files | grep -v ' (deleted)$')
	ok "[$v] the group killed" kill_group
	gone_from_node "$files" >/dev/null 2>&1
	ok "[$v] ... no /dev/shm file of it left" none_of "$files"
	killed=$(round)
	check "[$v] omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2 || {
		diag "nothing restored: the rest would only fail"
		return 1
	}
	if [ "$v" != host ]; then
		root=$(tree_root)
		track_pid "$root"
		mpirun_pid=$(pgrep -P "$root" | head -1)
	fi
	ok "[$v] ... the ring goes on from generation 2 (round >= $before, < $killed reached before the kill)" \
		goes_on_from "$before" "$killed"
	is "$(ring_pids)" "$ranks" "[$v] ... the same ranks"

	# ---- the end ----
	touch "$D/mpiring.stop"
	ok "[$v] the ring stops when asked" wait_until 30 all_results
	ok "[$v] ... every rank passes, with the same number of rounds" results_pass
	ok "[$v] ... mpirun exits" pids_free 20 "$mpirun_pid"
	[ "$v" = host ] || ok "[$v] ... and om-init with it" pids_free 20 "$root"
	ok "[$v] ... and the vader segments are removed" none_of "$files"
}

ring host
ring iso
done_testing
