#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t80-bounds.sh — no hang, ever. A stand-in CRIU that takes a request and
# never answers (tests/stand-in/criu-hang, through OM_CRIU) at dump and at
# restore: the command gives up at its bound, kills CRIU, thaws the group
# (which is checked to run on) and names the stage, the bound and the log.
# SIGTERM and SIGINT stop every wait (CRIU, the store lock, taken PIDs) the
# same way; a signal that comes while the generation is being written does
# not cut it: the run finishes, prints its summary and exits 0.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 7000
export OM_CGROUP=v2

HANG=$OM_SRCDIR/tests/stand-in/criu-hang
OM_REAL_CRIU=${OM_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
export OM_REAL_CRIU
OM_HANG_TAG=$$
export OM_HANG_TAG

plan 69

# no stand-in CRIU is left behind (its request never answered)
no_hung_criu() {
	local left
	left=$(pgrep -f "^criu-hang-$OM_HANG_TAG 86401" || true)
	[ -z "$left" ] && return 0
	diag "stand-in CRIU still there: $left"
	return 1
}

# bg_run NAME CMD... : run CMD in the background (output in $W/NAME.out/.err); BG is its pid
bg_run() {
	local name=$1
	shift
	"$@" </dev/null >"$W/$name.out" 2>"$W/$name.err" &
	BG=$!
	track_pid "$BG"
}

# bg_wait TIMEOUT : wait for $BG at most TIMEOUT s; sets RC (255: still running, then killed)
bg_wait() {
	local end=$((SECONDS + $1))
	while alive "$BG" && [ $SECONDS -lt $end ]; do sleep 0.1; done
	if alive "$BG"; then
		kill -9 "$BG" 2>/dev/null
		wait "$BG" 2>/dev/null
		RC=255
		return 0
	fi
	wait "$BG"
	RC=$?
}

# interrupt NAME SIG CMD... : start CMD in the background, send SIG once it
# waits (1.5 s), and wait at most 10 s for it: RC is its exit status,
# STOP_S how long it took to stop after the signal
interrupt() {
	local name=$1 sig=$2 t0
	shift 2
	bg_run "$name" "$@"
	sleep 1.5
	kill "-$sig" "$BG"
	t0=$SECONDS
	bg_wait 10
	STOP_S=$((SECONDS - t0))
}

# wait_for TIMEOUT CMD... : until CMD succeeds
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.05
	done
}

# ---- a CRIU that never answers at dump: the explicit bound ----
new_group
ok "omrun a worker in group $G" start_worker d1 --mem 16 --children 1
ok "worker ready" wait_ready d1
pids=$(pids_of d1 | tr '\n' ' ')
t0=$SECONDS
run env OM_CRIU="$HANG" "$OMCKPT" -g "$G" --criu-timeout 3
ok "omckpt with a CRIU that never answers exits 5 (CRIU failed)" test "$RC" -eq 5
ok "... within 15 s of a 3 s bound" test $((SECONDS - t0)) -le 15
like "$ERR" "criu dump gave no answer within 3 s" "... the error names the stage and the bound"
like "$ERR" "CRIU was stopped" "... says CRIU was stopped"
like "$ERR" "log: .*/dump.log" "... names CRIU's log"
like "$ERR" "the group was thawed and runs \([0-9]+ process" "... and that the group was thawed and runs"
# shellcheck disable=SC2086
ok "every process of the group is alive" all_alive $pids
# shellcheck disable=SC2086
ok "... and none is frozen" not_stopped $pids
ok "... and the worker's counter advances" advancing d1
ok "no generation was published" no_generation "$OM_STORE/groups/$G"
ok "the stand-in CRIU was killed" wait_for 5 no_hung_criu

# ---- the default bound scales with memory: a small group is given up within 60 s ----
t0=$SECONDS
run env OM_CRIU="$HANG" "$OMCKPT" -g "$G"
ok "without --criu-timeout, omckpt gives up too (exit 5)" test "$RC" -eq 5
ok "... within 60 s for a group under 1 GiB" test $((SECONDS - t0)) -le 60
like "$ERR" "criu dump gave no answer within [0-9]+ s" "... naming its bound"
ok "... and the group runs on" advancing d1

# ---- SIGTERM and SIGINT while CRIU hangs ----
interrupt term1 TERM env OM_CRIU="$HANG" "$OMCKPT" -g "$G"
ok "SIGTERM stops an omckpt waiting on CRIU: exit 143 (128+15)" test "$RC" -eq 143
ok "... within its 3 s grace (stopped within 8 s)" test "$STOP_S" -le 8
like "$W/term1.err" "Terminated received.*interrupted" "... and says it was interrupted by SIGTERM"
like "$W/term1.err" "the group was thawed and runs" "... and that the group was thawed and runs"
# shellcheck disable=SC2086
ok "... the group is alive and not frozen" not_stopped $pids
ok "... the worker's counter advances" advancing d1
ok "... no generation" no_generation "$OM_STORE/groups/$G"
ok "... the stand-in CRIU was killed" wait_for 5 no_hung_criu
interrupt int1 INT env OM_CRIU="$HANG" "$OMCKPT" -g "$G"
ok "SIGINT (^C) stops it the same way: exit 130" test "$RC" -eq 130
ok "... and the group runs on" advancing d1

# ---- a CRIU that never answers at restore ----
check "omckpt -g $G (real CRIU, migration)" "$OMCKPT" -g "$G"
# shellcheck disable=SC2086
ok "the group is stopped" pids_free 10 $pids
t0=$SECONDS
run env OM_CRIU="$HANG" "$OMRESTORE" -g "$G" --criu-timeout 3
ok "omrestore with a CRIU that never answers exits 5" test "$RC" -eq 5
ok "... within 15 s of a 3 s bound" test $((SECONDS - t0)) -le 15
like "$ERR" "criu restore gave no answer within 3 s" "... the error names the stage and the bound"
like "$ERR" "log: .*/restore.log" "... and CRIU's log"
# shellcheck disable=SC2086
ok "nothing of the group was restored" pids_free 10 $pids
ok "the stand-in CRIU was killed" wait_for 5 no_hung_criu
ok "the keeper is gone" wait_for 5 not pgrep -x "omkeeper-g$G"

# ---- SIGTERM while a restore waits on CRIU ----
interrupt term2 TERM env OM_CRIU="$HANG" "$OMRESTORE" -g "$G"
ok "SIGTERM stops an omrestore waiting on CRIU: exit 143" test "$RC" -eq 143
ok "... at once (within 5 s)" test "$STOP_S" -le 5
like "$W/term2.err" "Terminated received.*interrupted" "... and says it was interrupted"
# shellcheck disable=SC2086
ok "... nothing was restored" pids_free 10 $pids
ok "... the stand-in CRIU was killed" wait_for 5 no_hung_criu
ok "... the keeper is gone" wait_for 5 not pgrep -x "omkeeper-g$G"

# the generation is intact: the real CRIU restores it
check "omrestore -g $G (real CRIU) restores the same generation" "$OMRESTORE" -g "$G"
# shellcheck disable=SC2086
ok "every process is back" all_alive $pids
ok "the worker's counter advances" advancing d1

# ---- waits for a lock or for PIDs stop at a signal ----
exec {lk}>"$OM_STORE/groups/$G/.lock"
flock "$lk"
interrupt lockwait TERM "$OMCKPT" -g "$G" --lock-wait 60
exec {lk}>&-
ok "SIGTERM stops omckpt --lock-wait 60 waiting on the store lock: exit 143" test "$RC" -eq 143
ok "... at once" test "$STOP_S" -le 5
like "$W/lockwait.err" "wait for the lock" "... naming the wait"
# shellcheck disable=SC2086
ok "... and the group runs, not frozen" not_stopped $pids
ok "... and advances" advancing d1
exec {lk}>"/run/omtools/group-$G.lock"
flock "$lk"
interrupt grouplock TERM "$OMCKPT" -g "$G" --lock-wait 60
exec {lk}>&-
ok "SIGTERM stops omckpt --lock-wait 60 waiting on the group's node lock: exit 143" test "$RC" -eq 143
ok "... at once" test "$STOP_S" -le 5
like "$W/grouplock.err" "wait for the lock .*group-$G.lock" "... naming the lock"
ok "... and the group runs on" advancing d1
check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
interrupt pidwait TERM "$OMRESTORE" -g "$G" --pid-wait 60
ok "SIGTERM stops omrestore --pid-wait 60 waiting for taken PIDs: exit 143" test "$RC" -eq 143
ok "... at once" test "$STOP_S" -le 5
like "$W/pidwait.err" "wait for PID [0-9]+ to be free" "... naming the wait"
ok "... and the running group is untouched" advancing d1
ok "worker d1 finishes PASS" finish d1

# ---- a signal while the generation is written does not cut it ----
new_group
ok "omrun a worker with 400 MiB of heap in group $G" start_worker big --mem 400 --children 1
ok "worker ready" wait_ready big 60
bigpids=$(pids_of big | tr '\n' ' ')
bg_run held "$OMCKPT" -g "$G"
# the dumps are done once the first compressed image appears in the new generation
ok "omckpt reaches the compression of the images" wait_for 60 compgen -G "$OM_STORE/groups/$G/.tmp-*/*/*.zst"
kill -TERM "$BG"
bg_wait 60
ok "a SIGTERM held while the generation is written: omckpt still exits 0" test "$RC" -eq 0
like "$W/held.out" "generation 1 written to" "... and prints its summary"
ok "... the generation is published" test -f "$OM_STORE/groups/$G/gen-1/manifest.om"
# shellcheck disable=SC2086
ok "... and the group was stopped (migration)" pids_free 10 $bigpids
check "omrestore -g $G" "$OMRESTORE" -g "$G"
ok "worker big finishes PASS" finish big
