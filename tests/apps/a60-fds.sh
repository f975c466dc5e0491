#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a60-fds.sh — a process (fdapp.c) holding a timerfd, an eventfd, a signalfd,
# an inotify watch and an epoll over them, a flock() lock and an fcntl()
# record lock (omckpt always passes CRIU's file_locks): migration, then
# --leave-running, kill and restore of that generation. After each restore:
# the timer still ticks, the eventfd kept its counter, the signalfd receives,
# inotify still reports, epoll still wakes for all three, and another
# process's attempt at either lock fails until fdapp lets them go.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 16000
need_cmd flock python3
FDAPP=$APPS_BUILDDIR/fdapp
[ -x "$FDAPP" ] || { echo "Bail out! $FDAPP is missing: make check builds it"; exit 1; }

export OM_CGROUP=v2
new_group
D=$W/fd
mkdir -p "$D/watch"
ST=$D/status

field() { last_field "$ST" "$1"; }
healthy() { last_line "$ST" | grep -q ' ok$'; }
ticking() {
	local a b end=$((SECONDS + 5))
	a=$(field ticks)
	while [ $SECONDS -lt $end ]; do
		sleep 0.1
		b=$(field ticks)
		if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] && healthy; then return 0; fi
	done
	diag "fdapp: $(tail -n 3 "$ST" 2>/dev/null)"
	return 1
}
sigs_above() { [ "$(field sigs)" -gt "$1" ]; }
inotify_is() { [ "$(field inotify)" = "$1" ]; }
# signal_gets N : SIGUSR1 through the signalfd; the eventfd read gives N
signal_gets() {
	local s
	s=$(field sigs)
	kill -USR1 "$pid"
	wait_until 5 sigs_above "$s" || return 1
	[ "$(field evfd)" = "$1" ] && return 0
	diag "eventfd counter read: $(field evfd), expected $1"
	return 1
}
# inotify_sees NAME : a file created in watch/ is reported
inotify_sees() {
	: >"$D/watch/$1"
	wait_until 5 inotify_is "$1" && return 0
	diag "fdapp: $(tail -n 3 "$ST" 2>/dev/null)"
	return 1
}
flock_held() { not flock -n "$D/flock.file" true; }
fcntl_held() {
	not python3 -c 'import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0)' "$D/fcntl.file" 2>/dev/null
}
all_work() { # LABEL EVFD
	ok "$1: the timer ticks (epoll wakes for the timerfd)" ticking
	ok "$1: SIGUSR1 arrives through the signalfd, the eventfd counter is $2" signal_gets "$2"
	ok "$1: inotify reports a new file" inotify_sees "file-${1// /-}"
	ok "$1: the flock() lock is held: another process's flock -n fails" flock_held
	ok "$1: the fcntl() lock is held: another process's F_SETLK fails" fcntl_held
}

ok "fdapp started in group $G" omrun_app fdapp "$FDAPP" "$D"
pid=${APID[fdapp]}
ok "... it runs" wait_until 10 healthy
all_work "before" 1000

timed "$OMCKPT" -g "$G"
tc=$T_SECS
ok "omckpt -g $G (migration)" test "$RC" -eq 0 || diag_file "$ERR"
ok "... fdapp is gone" pids_free 20 "$pid"
ok "... its locks went with it" eval "not flock_held && not fcntl_held"
timed "$OMRESTORE" -g "$G"
tr=$T_SECS
ok "omrestore -g $G" test "$RC" -eq 0 || diag_file "$ERR"
ckpt_restore_figures fds "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
all_work "restored" 1001

check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
all_work "left running" 1002
ok "the group killed" kill_group
check "omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2
# generation 2 was taken when the counter was 1002
all_work "generation 2" 1002

kill -USR2 "$pid"
ok "fdapp ends at SIGUSR2 (through the signalfd)" wait_until 10 grep -qx "done" "$ST"
ok "... and exits" pids_free 20 "$pid"
ok "... the locks are free again" eval "not flock_held && not fcntl_held"
done_testing
