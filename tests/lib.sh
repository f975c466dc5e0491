# shellcheck shell=bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# tests/lib.sh — sourced by the tests/t*.sh scripts (ZDTM style, TAP output).
#
# Provides: TAP helpers, the paths of the commands and of the worker, a
# fresh store ($OM_STORE) and work dir ($W) per script, unique group ids,
# worker helpers (start_worker, wait_ready, counter, finish, ...), flip_byte, and a
# cleanup trap that leaves no process, group, mount or temp dir behind.
#
# Set OM_KEEP=1 to keep $W and $OM_STORE for a post-mortem.

set -u

# ---------------------------------------------------------------- TAP ----

_T_N=0
_T_FAILED=0
_T_PLANNED=0

diag() {
	local line
	for line in "$@"; do
		printf '# %s\n' "$line"
	done
}

# Print a file's content as diagnostics (first 40 lines).
diag_file() {
	[ -s "$1" ] || return 0
	sed -n '1,40s/^/#   /p' "$1"
}

plan() {
	_T_PLANNED=$1
	echo "1..$1"
}

pass() {
	_T_N=$((_T_N + 1))
	echo "ok $_T_N - $*"
}

fail() {
	_T_N=$((_T_N + 1))
	_T_FAILED=$((_T_FAILED + 1))
	echo "not ok $_T_N - $*"
}

skip() { # skip NAME REASON
	_T_N=$((_T_N + 1))
	echo "ok $_T_N - $1 # SKIP ${2:-}"
}

# ok NAME COND... : a test that passes when the (shell) condition holds.
ok() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; return 1; fi
}

# not CMD... : negation usable as a COND of ok.
not() {
	! "$@"
}

# wait_until SECS CMD... : CMD succeeds within SECS (polled every 0.1 s).
wait_until() {
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -lt "$end" ]; do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# check NAME CMD... : run CMD (output captured, shown on failure); pass if it exits 0.
check() {
	local name=$1
	shift
	run "$@"
	if [ "$RC" -eq 0 ]; then
		pass "$name"
	else
		fail "$name"
		diag "command: $* (exit $RC)"
		diag_file "$OUT"
		diag_file "$ERR"
		return 1
	fi
}

# check_rc EXPECTED NAME CMD... : pass if CMD exits with EXPECTED.
check_rc() {
	local want=$1 name=$2
	shift 2
	run "$@"
	if [ "$RC" -eq "$want" ]; then
		pass "$name"
	else
		fail "$name"
		diag "command: $* (exit $RC, expected $want)"
		diag_file "$OUT"
		diag_file "$ERR"
		return 1
	fi
}

# is GOT WANT NAME
is() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3"
		diag "got:      '$1'" "expected: '$2'"
		return 1
	fi
}

# like FILE-OR-STRING ERE NAME : pass if the file (or the string) matches ERE.
like() {
	local src=$1 re=$2 name=$3
	if [ -f "$src" ]; then
		if grep -Eq -- "$re" "$src"; then pass "$name"; return 0; fi
		fail "$name"
		diag "no line of $src matches /$re/"
		diag_file "$src"
	else
		if printf '%s\n' "$src" | grep -Eq -- "$re"; then pass "$name"; return 0; fi
		fail "$name"
		diag "'$src' does not match /$re/"
	fi
	return 1
}

done_testing() {
	[ "$_T_PLANNED" -gt 0 ] || echo "1..$_T_N"
	echo "# $((_T_N - _T_FAILED)) passed, $_T_FAILED failed"
	if [ "$_T_PLANNED" -gt 0 ] && [ "$_T_PLANNED" -ne "$_T_N" ]; then
		echo "# planned $_T_PLANNED tests but ran $_T_N"
		exit 1
	fi
	[ "$_T_FAILED" -eq 0 ] || exit 1
	exit 0
}

# ------------------------------------------------------------ preflight ----

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP need root"
	exit 0
fi

_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${OM_SRCDIR:=$(cd "$_LIB_DIR/.." && pwd)}"
: "${OM_BUILDDIR:=$OM_SRCDIR}"
export OM_SRCDIR OM_BUILDDIR

OMCKPT=$OM_BUILDDIR/omckpt
OMRESTORE=$OM_BUILDDIR/omrestore
JOINGROUP=$OM_BUILDDIR/joingroup
SHOWGROUP=$OM_BUILDDIR/showgroup
RESETGROUP=$OM_BUILDDIR/resetgroup
OMRUN=$OM_BUILDDIR/omrun
OMDECODE=$OM_BUILDDIR/omdecode
WORKER=${OM_WORKER:-$OM_BUILDDIR/tests/zdtm/worker}

for _b in "$OMCKPT" "$OMRESTORE" "$JOINGROUP" "$SHOWGROUP" "$RESETGROUP" "$OMRUN" "$OMDECODE" "$WORKER"; do
	if [ ! -x "$_b" ]; then
		echo "Bail out! $_b is missing: build first (make && make check builds the worker)"
		exit 1
	fi
done
unset _b

# Commands never take long in these tests; a hung one must not hang the suite.
OM_TIMEOUT=${OM_TIMEOUT:-120}

OM_STORE=$(mktemp -d /tmp/omstore.XXXXXX)
export OM_STORE
W=$(mktemp -d /tmp/omwork.XXXXXX)
chmod 755 "$W"
# CRIU's scratch images and logs: the script's own, removed with it
export OM_WORKDIR=$W/scratch
export OM_CGROUP=${OM_CGROUP:-v2}

# ---------------------------------------------------------- bookkeeping ----

declare -A WPID=()    # worker name -> pid
declare -A WOWN=()    # worker name -> 1 when started by this script (needs `wait`)
declare -A WDONE=()   # worker name -> 1 once finished
_TRACKED=()           # other pids to kill at exit
_GROUPS_USED=()       # "backend:group" pairs to reset at exit
_MOUNTS=()            # mount points to unmount at exit
_GROUP_OFFSET=0
_GROUP_NEXT=0

# run CMD... : run with a timeout; sets RC and the files $OUT / $ERR.
_RUN_N=0
run() {
	_RUN_N=$((_RUN_N + 1))
	OUT=$W/run.$_RUN_N.out
	ERR=$W/run.$_RUN_N.err
	timeout -k 5 "$OM_TIMEOUT" "$@" </dev/null >"$OUT" 2>"$ERR"
	RC=$?
	return 0
}

# has_segment ID : a SysV shm segment with that id exists (ipcs -i exits 0 either way).
has_segment() { awk -v id="$1" 'NR > 1 && $2 == id { f = 1 } END { exit !f }' /proc/sysvipc/shm; }

track_pid() {
	_TRACKED+=("$@")
}

# group_ids OFFSET : choose the script's id range (OFFSET + 100 + $$ % 800 ...).
group_ids() {
	_GROUP_OFFSET=$1
	_GROUP_NEXT=$((_GROUP_OFFSET + 100 + $$ % 800))
}

# new_group : set G to a group id unused by anybody, for backend $OM_CGROUP.
new_group() {
	local tries=0
	while :; do
		G=$_GROUP_NEXT
		_GROUP_NEXT=$((_GROUP_NEXT + 1))
		tries=$((tries + 1))
		if ! "$SHOWGROUP" "$G" >/dev/null 2>&1 || [ $tries -gt 50 ]; then
			break
		fi
	done
	_GROUPS_USED+=("$OM_CGROUP:$G")
	export G
}

# cg_root [BACKEND] : the cgroup hierarchy omtools uses for the backend.
cg_root() {
	case ${1:-$OM_CGROUP} in
	v1) echo /sys/fs/cgroup/freezer ;;
	*)
		if [ -e /sys/fs/cgroup/unified/cgroup.procs ]; then
			echo /sys/fs/cgroup/unified
		else
			echo /sys/fs/cgroup
		fi
		;;
	esac
}

have_backend() {
	case $1 in
	v1) [ -e /sys/fs/cgroup/freezer/cgroup.procs ] ;;
	v2) [ -e /sys/fs/cgroup/unified/cgroup.procs ] || [ -e /sys/fs/cgroup/cgroup.controllers ] ;;
	*) return 1 ;;
	esac
}

# in_cgroup PID [GROUP] : PID is listed in a cgroup.procs under omtools/g<GROUP>.
in_cgroup() {
	local pid=$1 grp=${2:-$G} dir
	dir=$(cg_root "$OM_CGROUP")/omtools/g$grp
	[ -d "$dir" ] || return 1
	find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -qx -- "$pid"
}

# ---------------------------------------------------------------- procs ----

# free_pid : a PID nobody uses (near pid_max).
free_pid() {
	local p=$(($(cat /proc/sys/kernel/pid_max) - 7))
	while [ -e "/proc/$p" ]; do p=$((p - 1)); done
	echo "$p"
}

# alive PID : /proc/PID exists and is not a zombie.
alive() {
	local st
	[ -n "${1:-}" ] || return 1
	st=$(awk '/^State:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# proc_state PID : the one-letter state (R, S, D, T, Z...), empty if gone.
proc_state() {
	awk '/^State:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null
}

# _wait_none TIMEOUT TEST LABEL PID... : wait until TEST PID fails for every PID.
_wait_none() {
	local t=$1 test=$2 label=$3 p still
	shift 3
	local end=$((SECONDS + t))
	while :; do
		still=
		for p in "$@"; do
			"$test" "$p" && still="$still $p"
		done
		[ -z "$still" ] && return 0
		if [ $SECONDS -ge $end ]; then
			diag "$label:$still"
			return 1
		fi
		sleep 0.1
	done
}

_pid_taken() { [ -e "/proc/$1" ]; }

# all_gone TIMEOUT PID... : wait until no PID is alive.
all_gone() {
	local t=$1
	shift
	_wait_none "$t" alive "still alive" "$@"
}

# pids_free TIMEOUT PID... : wait until no /proc/PID exists at all (zombies
# included: a zombie still holds its pid, and a restore needs the pids free;
# orphans are reaped by init, which may take a moment in some containers).
pids_free() {
	local t=$1
	shift
	_wait_none "$t" _pid_taken "pids still taken" "$@"
}

# all_alive PID... : every PID is alive.
all_alive() {
	local p bad=
	for p in "$@"; do
		alive "$p" || bad="$bad $p"
	done
	[ -z "$bad" ] && return 0
	diag "not alive:$bad"
	return 1
}

# reap [PID...] : collect the zombies among the given (default: all) background
# processes of this shell; never blocks on one that still runs.
reap() {
	local p
	# shellcheck disable=SC2046
	[ $# -gt 0 ] || set -- $(jobs -p)
	for p in "$@"; do
		alive "$p" || wait "$p" 2>/dev/null
	done
	return 0
}

# not_stopped PID... : no PID is frozen or stuck (state D or T).
not_stopped() {
	local p st bad=
	for p in "$@"; do
		st=$(proc_state "$p")
		case $st in
		D | T | t | "") bad="$bad $p:${st:-gone}" ;;
		esac
	done
	[ -z "$bad" ] && return 0
	diag "stopped or gone:$bad"
	return 1
}

# no_generation DIR : DIR holds neither gen-* nor .tmp-* entries.
no_generation() {
	local left
	left=$(find "$1" -mindepth 1 -maxdepth 1 \( -name 'gen-*' -o -name '.tmp-*' \) 2>/dev/null)
	[ -z "$left" ] && return 0
	diag "left in $1:" "$left"
	return 1
}

# flip_byte FILE : invert the byte in the middle of FILE, in place.
flip_byte() {
	local f=$1 size off b
	size=$(stat -c %s "$f")
	off=$((size / 2))
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((b ^ 0xff)))" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}

# ---------------------------------------------------------------- worker ----

# start_worker NAME [worker args...] : omrun the worker in group $G; sets WPID[NAME].
start_worker() {
	local name=$1 pid
	shift
	timeout -k 5 "$OM_TIMEOUT" "$OMRUN" -g "$G" -o "$W/$name.log" -- \
		"$WORKER" --dir "$W" --name "$name" "$@" </dev/null >"$W/$name.omrun.out" 2>"$W/$name.omrun.err"
	local rc=$?
	pid=$(head -n1 "$W/$name.omrun.out" 2>/dev/null | tr -d '[:space:]')
	if [ $rc -ne 0 ] || ! [[ $pid =~ ^[0-9]+$ ]]; then
		diag "omrun for worker $name failed (exit $rc, output '$pid')"
		diag_file "$W/$name.omrun.err"
		return 1
	fi
	WPID[$name]=$pid
	return 0
}

# start_plain_worker NAME [worker args...] : a worker of the script itself, in its own session.
start_plain_worker() {
	local name=$1
	shift
	setsid "$WORKER" --dir "$W" --name "$name" "$@" </dev/null >"$W/$name.log" 2>&1 &
	WPID[$name]=$!
	WOWN[$name]=1
	return 0
}

# wait_ready NAME [TIMEOUT=20]
wait_ready() {
	local name=$1 end=$((SECONDS + ${2:-20}))
	while [ $SECONDS -lt "$end" ]; do
		if grep -q 'ready=1' "$W/$name.status" 2>/dev/null; then
			return 0
		fi
		if [ -e "$W/$name.result" ]; then
			diag "worker $name ended early: $(cat "$W/$name.result")"
			return 1
		fi
		sleep 0.1
	done
	diag "worker $name not ready after ${2:-20} s"
	return 1
}

# status_field NAME FIELD : one field of the status file (retries a torn read).
status_field() {
	local v
	for _ in 1 2 3 4 5; do
		v=$(grep -o "$2=[0-9,]*" "$W/$1.status" 2>/dev/null | head -n1)
		v=${v#*=}
		if [ -n "$v" ] || [ "$2" = children ]; then
			echo "$v"
			return 0
		fi
		sleep 0.02
	done
	return 1
}

counter() {
	status_field "$1" counter
}

# children NAME : the worker's child pids, space separated.
children() {
	local c
	c=$(status_field "$1" children)
	echo "${c//,/ }"
}

# pids_of NAME... : parent and children pids of the named workers.
pids_of() {
	local n
	for n in "$@"; do
		echo "${WPID[$n]}"
		# shellcheck disable=SC2046
		printf '%s\n' $(children "$n")
	done
}

restores() {
	status_field "$1" restores
}

# snap NAME... : "NAME=COUNTER:RESTORES" for each worker, to compare with after
# a checkpoint (continued_restored, continued_running).
snap() {
	local n c r
	for n in "$@"; do
		if r=$(restores "$n") && c=$(counter "$n"); then
			echo "$n=$c:$r"
		else
			echo "$n=?:?"
		fi
	done
}

# _after_snap NAME=C:R WANT_RESTORES... : the check behind continued_*.
# The worker itself counts the restores it lived through (its start time in
# /proc/self/stat changes while its memory does not) and records the counter
# it continued from (restored_at). A program restarted afresh has restores=0
# and a counter from 0; one restored from an older image has fewer restores
# or an older restored_at than the snapshot: both fail here.
_after_snap() {
	local kv=$1 want=$2 name c r now nr at end bad=
	name=${kv%%=*}
	c=${kv#*=}
	r=${c#*:}
	c=${c%%:*}
	if ! [[ $c =~ ^[0-9]+$ && $r =~ ^[0-9]+$ ]]; then
		diag "$name: bad snapshot '$kv'"
		return 1
	fi
	want=$((r + want))
	end=$((SECONDS + ${RESTORE_WAIT:-5}))
	while :; do # the worker notices a restore on its next tick (10 ms)
		nr=$(restores "$name") || nr=
		[ -n "$nr" ] && [ "$nr" -ge "$want" ] && break
		[ $SECONDS -ge $end ] && break
		sleep 0.1
	done
	if [ "${nr:-x}" != "$want" ]; then
		diag "$name: restores ${nr:-?}, expected $want (was $r before):" \
			"  $([ "${nr:-0}" -lt "$want" ] && echo "it did not live through a restore (restarted afresh, or restored from an older image)" || echo "restored more often than expected")"
		return 1
	fi
	if [ "$want" -gt "$r" ]; then
		at=$(status_field "$name" restored_at)
		if [ -z "$at" ] || [ "$at" -lt "$c" ]; then
			diag "$name: continued from counter ${at:-?} after its restore, below $c recorded before the checkpoint (memory went back)"
			bad=1
		fi
	fi
	end=$((SECONDS + 5))
	while now=$(counter "$name") && [ -n "$now" ] && [ "$now" -le "${at:-$c}" ] && [ $SECONDS -lt $end ]; do
		sleep 0.1
	done
	if [ -z "$now" ] || [ "$now" -le "${at:-$c}" ]; then
		diag "$name: counter ${now:-?} does not advance past ${at:-$c}"
		bad=1
	fi
	[ -z "$bad" ]
}

# continued_restored SNAP... : each worker (snapshots from snap) was restored
# exactly once since its snapshot, continued from at least the snapshot's
# counter, and counts on.
continued_restored() {
	local kv rc=0
	for kv in "$@"; do _after_snap "$kv" 1 || rc=1; done
	return $rc
}

# continued_running SNAP... : each worker was not restored since its snapshot
# (a --leave-running checkpoint, a failed one) and counts on from there.
continued_running() {
	local kv rc=0
	for kv in "$@"; do _after_snap "$kv" 0 || rc=1; done
	return $rc
}

# advancing NAME [SECS=1] : the counter grows within SECS.
advancing() {
	local a b
	a=$(counter "$1") || return 1
	sleep "${2:-1}"
	b=$(counter "$1") || return 1
	if [ "$b" -gt "$a" ]; then return 0; fi
	diag "counter of $1 stuck at $a -> $b"
	return 1
}

# finish NAME : SIGTERM the worker, wait <= 20 s for NAME.result, check PASS.
finish() {
	local name=$1 pid=${WPID[$1]:-} end=$((SECONDS + 20))
	[ -n "$pid" ] || { diag "finish: unknown worker $name"; return 1; }
	kill -TERM "$pid" 2>/dev/null
	while [ ! -e "$W/$name.result" ] && [ $SECONDS -lt $end ] && alive "$pid"; do
		sleep 0.1
	done
	sleep 0.1 # a dead worker may have written its result just before exiting
	WDONE[$name]=1
	if [ -n "${WOWN[$name]:-}" ]; then
		end=$((SECONDS + 5))
		while alive "$pid" && [ $SECONDS -lt $end ]; do sleep 0.1; done
		reap "$pid"
	fi
	if [ ! -e "$W/$name.result" ]; then
		diag "worker $name (pid $pid) wrote no result within 20 s (state '$(proc_state "$pid")')"
		return 1
	fi
	if [ "$(cat "$W/$name.result")" != PASS ]; then
		diag "worker $name: $(cat "$W/$name.result")"
		return 1
	fi
	return 0
}

# finish_ok NAME : finish as a TAP test.
finish_ok() {
	ok "worker $1 finishes PASS" finish "$1"
}

# members [GROUP] : the pids showgroup lists (empty on error).
members() {
	"$SHOWGROUP" "${1:-$G}" 2>/dev/null | awk '$2 == "with" {print $1}'
}

# ---------------------------------------------------------------- cleanup ----

_cleanup() {
	local n p pair cg grp m
	set +u
	for n in "${!WPID[@]}"; do
		[ -n "${WDONE[$n]}" ] && continue
		for p in $(pids_of "$n" 2>/dev/null); do
			alive "$p" && kill -9 "$p" 2>/dev/null
		done
	done
	for p in "${_TRACKED[@]}"; do
		alive "$p" && kill -9 "$p" 2>/dev/null
	done
	for pair in "${_GROUPS_USED[@]}"; do
		cg=${pair%%:*}
		grp=${pair#*:}
		for p in $(OM_CGROUP=$cg members "$grp"); do
			kill -9 "$p" 2>/dev/null
		done
		OM_CGROUP=$cg timeout 30 "$RESETGROUP" "$grp" >/dev/null 2>&1
	done
	wait 2>/dev/null
	# POSIX shm of killed workers (a worker that finishes removes its own)
	for n in "${!WPID[@]}"; do
		rm -f /dev/shm/omtools-worker-"$n"-*
	done
	for m in "${_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null
	done
	if [ -z "${OM_KEEP:-}" ]; then
		rm -rf "$W" "$OM_STORE"
	else
		echo "# kept $W and $OM_STORE"
	fi
}
trap _cleanup EXIT
trap 'exit 130' INT TERM
