# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
# tests/apps/apps.sh — sourced by the tests/apps/a*.sh scripts after
# tests/lib.sh: helpers for real applications run in a miggroup.

# the applications are Debian's (python3, sqlite3, redis, bash, gzip...), not
# whatever an earlier PATH entry (pyenv, /usr/local) offers
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH

APPS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APPS_BUILDDIR=$OM_BUILDDIR/tests/apps

# need_cmd CMD... : bail out (a missing package is a broken setup, not a skip).
need_cmd() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "Bail out! $c is missing (scripts/setup.sh installs it)"
			exit 1
		fi
	done
}

# free_port : a TCP port nobody listens on, on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until SECS CMD... : poll CMD (quietly) until it succeeds, at most SECS seconds.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		if [ $SECONDS -ge $end ]; then
			diag "still failing after the wait: $*"
			return 1
		fi
		sleep 0.1
	done
}

# omrun_app NAME CMD... : omrun CMD in $G (output to $W/NAME.log); sets APID[NAME].
declare -A APID=()
omrun_app() {
	local name=$1 pid
	shift
	run "$OMRUN" -g "$G" -o "$W/$name.log" -- "$@"
	pid=$(head -n1 "$OUT" | tr -d '[:space:]')
	if [ "$RC" -ne 0 ] || ! [[ $pid =~ ^[0-9]+$ ]]; then
		diag "omrun $name failed (exit $RC)"
		diag_file "$ERR"
		return 1
	fi
	APID[$name]=$pid
	track_pid "$pid"
	return 0
}

# last_line FILE : the last complete (newline-ended) line of FILE. The
# applications append a status line per update instead of rewriting a file
# and renaming it: a checkpoint can come while the file is open, and CRIU
# reopens it by its path when that generation is restored, however old. A
# line still being appended (it can cross a page) is not read half-written.
last_line() {
	local l prev=
	while IFS= read -r l; do prev=$l; done < <(tail -n 2 "$1" 2>/dev/null)
	[ -n "$prev" ] && printf '%s\n' "$prev"
}

# last_field FILE KEY : the value of KEY=VALUE in FILE's last complete line.
last_field() { last_line "$1" | grep -o "$2=[^ ]*" | cut -d= -f2; }

# kill_group : SIGKILL every member of $G and wait until the pids are free.
kill_group() {
	local pids
	pids=$(members | tr '\n' ' ')
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -9 $pids 2>/dev/null
	# shellcheck disable=SC2086
	pids_free 20 $pids
}

# group_gone : $G has no member left (after a migration).
group_gone() {
	[ -z "$(members)" ]
}

# timed CMD... : run CMD through `run`; its wall time (s) in T_SECS.
T_SECS=0
timed() {
	local t0 t1
	t0=$(date +%s.%N)
	run "$@"
	t1=$(date +%s.%N)
	T_SECS=$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")
	return "$RC"
}

# ckpt_restore_figures APP GEN_DIR CKPT_S RESTORE_S : one line for the report
# (`# figures: ...`, grepped by bench/apps.sh).
ckpt_restore_figures() {
	local raw stored procs
	raw=$("$OMDECODE" --json "$2" 2>/dev/null | grep -o '"raw_bytes":[0-9]*' | head -1 | cut -d: -f2)
	stored=$("$OMDECODE" --json "$2" 2>/dev/null | grep -o '"stored_bytes":[0-9]*' | head -1 | cut -d: -f2)
	procs=$("$OMDECODE" --json "$2" 2>/dev/null | grep -o '"pid":' | wc -l)
	diag "figures: $1 processes=$procs checkpoint_s=$3 restore_s=$4 raw_mib=$(awk "BEGIN{printf \"%.1f\", ${raw:-0}/1048576}") stored_mib=$(awk "BEGIN{printf \"%.1f\", ${stored:-0}/1048576}")"
}
