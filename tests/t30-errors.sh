#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t30-errors.sh — negative tests: unknown/empty groups, a read-only store, a
# process CRIU refuses to dump, missing generations, taken pids, a tree that
# cannot be restored, usage errors. One backend (v2) is enough here.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 3000
export OM_CGROUP=v2

same_members() { # same_members "BEFORE" : showgroup lists exactly BEFORE again
	local now
	now=$(members | tr '\n' ' ')
	[ "$now" = "$1" ] && return 0
	diag "members before: $1" "members now:    $now"
	return 1
}

# ---- unknown and empty groups ----
new_group
g0=$G
check_rc 3 "showgroup of a group that never existed exits 3" "$SHOWGROUP" "$g0"
check_rc 3 "omckpt -g of an empty group exits 3" "$OMCKPT" -g "$g0"
like "$ERR" "[^ ]" "... with a message on stderr"
check_rc 3 "omrestore -g of a group without generation exits 3" "$OMRESTORE" -g "$g0"

# ---- read-only store ----
new_group
ok "omrun a worker in group $G" start_worker ro --mem 16 --children 1
ok "worker ready" wait_ready ro
ropids=$(pids_of ro | tr '\n' ' ')
rostore=$W/rostore
mkdir -p "$rostore"
if mount --bind "$rostore" "$rostore" && _MOUNTS+=("$rostore") &&
	mount -o remount,bind,ro "$rostore"; then
	before=$(snap ro)
	OM_STORE=$rostore run "$OMCKPT" -g "$G"
	is "$RC" 4 "omckpt into a read-only store exits 4"
	[ "$RC" -eq 4 ] || diag_file "$ERR"
	like "$ERR" "$rostore" "... and the message names the store path"
	# shellcheck disable=SC2086
	ok "... the group's processes are not frozen" not_stopped $ropids
	ok "... the worker keeps counting from before the attempt, never restored" continued_running "$before"
	ok "... no generation in the read-only store" no_generation "$rostore/groups/$G"
	umount "$rostore"
else
	skip "omckpt into a read-only store" "cannot make a read-only bind mount"
fi

# ---- a process CRIU refuses to dump: one half of an external unix stream connection ----
sock=$W/listener.sock
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
conns = []
while True:
    conns.append(s.accept()[0])
' "$sock" </dev/null >/dev/null 2>&1 &
lsn=$!
track_pid "$lsn"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
run "$OMRUN" -g "$G" -o "$W/client.log" -- python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
open(sys.argv[2], "w").close()
time.sleep(100000)
' "$sock" "$W/client.connected"
cl=$(head -n1 "$OUT" | tr -d '[:space:]')
track_pid "$cl"
for _ in $(seq 50); do [ -e "$W/client.connected" ] && break; sleep 0.1; done
ok "a client connected to an outside listener runs in group $G" eval "[ -e '$W/client.connected' ] && alive '$cl'"
# Precondition, checked with CRIU itself: it refuses this process.
mkdir -p "$W/criu-probe"
timeout 60 criu dump --leave-running --shell-job -t "$cl" -D "$W/criu-probe" -o dump.log >/dev/null 2>&1
ok "criu itself refuses to dump the client (precondition)" test $? -ne 0
grep -m1 'Error (criu/sk-unix' "$W/criu-probe/dump.log" 2>/dev/null | sed 's/^/# criu: /'

before=$(snap ro)
check_rc 5 "omckpt of a group holding an undumpable process exits 5" "$OMCKPT" -g "$G"
# shellcheck disable=SC2086
ok "... the group's processes are thawed" not_stopped $ropids "$cl"
ok "... the worker keeps counting from before the attempt, never restored" continued_running "$before"
ok "... no generation and no leftover .tmp-* in the store" no_generation "$OM_STORE/groups/$G"
kill -9 "$cl"
ok "the undumpable client is removed" all_gone 5 "$cl"
check "omckpt -g $G succeeds without it" "$OMCKPT" -g "$G"
ok "... and writes gen-1" test -f "$OM_STORE/groups/$G/gen-1/manifest.om"
# shellcheck disable=SC2086
ok "... and the worker is gone" all_gone 5 $ropids
# shellcheck disable=SC2086
pids_free 15 $ropids

# ---- missing generations ----
check_rc 3 "omrestore --generation 99 exits 3" "$OMRESTORE" -g "$G" --generation 99
# shellcheck disable=SC2086
ok "... and starts nothing" all_gone 1 $ropids

# ---- restore while the original processes run ----
check "omrestore -g $G" "$OMRESTORE" -g "$G"
# shellcheck disable=SC2086
ok "... the worker is back" all_alive $ropids
check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
before=$(members | tr '\n' ' ')
# live keepers of the group (an exited keeper stays a zombie until PID 1 reaps it)
keepers() { ps -eo stat=,comm= | awk -v n="omkeeper-g$G" '$2 == n && $1 !~ /^Z/' | wc -l; }
nkeepers=$(keepers)
check_rc 6 "omrestore while the processes still run exits 6" "$OMRESTORE" -g "$G" --pid-wait 1
taken=0
for p in $ropids; do grep -q "$p" "$ERR" && taken=1; done
ok "... and the message names a taken pid" test "$taken" -eq 1
[ "$taken" -eq 1 ] || diag_file "$ERR"
ok "... and nothing new is started (same members)" same_members "$before"
ok "... and no keeper was started for it" test "$(keepers)" -eq "$nkeepers"
finish_ok ro

# ---- a restore where the second tree fails ----
new_group
ok "omrun worker A in group $G" start_worker A --mem 16 --children 1
ok "omrun worker B in group $G" start_worker B --mem 16 --children 1
ok "A and B ready" eval "wait_ready A && wait_ready B"
# Trees restore in ascending root-pid order: "first" is the lower root pid
# (normally A, unless the pids wrapped), "second" the one that will fail.
first=A second=B
if [ "${WPID[A]}" -gt "${WPID[B]}" ]; then
	first=B second=A
	diag "pids wrapped: B (${WPID[B]}) restores before A (${WPID[A]})"
fi
apids=$(pids_of "$first" | tr '\n' ' ')
bpids=$(pids_of "$second" | tr '\n' ' ')
check "omckpt -g $G of A and B" "$OMCKPT" -g "$G"
# shellcheck disable=SC2086
all_gone 5 $apids $bpids
# shellcheck disable=SC2086
pids_free 15 $apids $bpids
rm -f "$W/$second.data"
run "$OMRESTORE" -g "$G"
is "$RC" 5 "omrestore fails with exit 5 when the second tree ($second) cannot be restored"
[ "$RC" -eq 5 ] || diag_file "$ERR"
like "$ERR" "(^|[^0-9])${WPID[$second]}([^0-9]|\$)" "... and the message names its root pid ${WPID[$second]}"
like "$ERR" "Can't open file [^;]*$second\\.data" "... and CRIU's first error, the file it cannot open (the cause, not its echoes)"
like "$ERR" "renamed, removed or resized after the checkpoint" "... and says what happened to that file"
# shellcheck disable=SC2086
ok "... the already restored first tree ($first) is killed again" all_gone 5 $apids
# shellcheck disable=SC2086
ok "... no pid of the second tree is alive" all_gone 1 $bpids

# ---- a process on a terminal it does not own (started from a shell) ----
new_group
setsid script -qfc "$WORKER --dir $W --name tty --mem 8 --children 1" /dev/null </dev/null >/dev/null 2>&1 &
track_pid $!
ok "a worker on a pseudo-terminal is ready" wait_ready tty
ttypid=$(status_field tty pid)
track_pid "$ttypid"
WPID[tty]=$ttypid
check "it joins group $G" "$JOINGROUP" "$ttypid" "$G"
check_rc 1 "omckpt of a group with a foreign terminal exits 1" "$OMCKPT" -g "$G"
like "$ERR" "terminal /dev/pts/[0-9]+" "... and names the terminal"
like "$ERR" "omrun" "... and says how to start it instead"
ok "... the worker keeps running" advancing tty
ok "... and no generation is written" test ! -e "$OM_STORE/groups/$G/gen-1"
finish_ok tty

# ---- omckpt --check: what a checkpoint needs here ----
check "omckpt --check" "$OMCKPT" --check
like "$OUT" "^criu: .*criu [0-9]+\.[0-9]+" "... reports CRIU's version"
like "$OUT" "smoke test: ok .*dumped and restored, and all of them work" "... and a smoke test that really dumped and restored"
like "$OUT" "hardware breakpoints: (yes|no)" "... and whether hardware breakpoints work"
like "$OUT" "^cgroup: v[12] freezer at " "... reports the cgroup freezer"
like "$OUT" "^store: +$OM_STORE \(writable\)" "... reports the store writable"
check "omckpt --check --json" "$OMCKPT" --check --json
ok "... prints one JSON object with the smoke result" python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["criu"]["smoke_ok"] is True and d["ok"] is True' "$OUT"
touch "$W/notadir"
check_rc 4 "omckpt --check with a store that cannot be made exits 4" "$OMCKPT" --check --store "$W/notadir/store"
check_rc 5 "omckpt --check without CRIU exits 5" env OM_CRIU=/nonexistent "$OMCKPT" --check
like "$ERR" "cannot run CRIU" "... and says CRIU cannot be run"

# ---- usage errors ----
check_rc 2 "omckpt without -g/-p exits 2" "$OMCKPT"
for cmd in "$OMCKPT" "$OMRESTORE" "$JOINGROUP" "$SHOWGROUP" "$RESETGROUP" "$OMRUN" "$OMDECODE"; do
	n=$(basename "$cmd")
	check_rc 2 "$n with an unknown option exits 2" "$cmd" --no-such-option
	check_rc 0 "$n --help exits 0" "$cmd" --help
	like "$OUT" "[Uu]sage" "$n --help prints usage on stdout"
	check_rc 0 "$n --version exits 0" "$cmd" --version
done

done_testing
