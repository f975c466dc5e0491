#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a30-tcp.sh — a TCP server with a listening socket and established
# connections, omckpt --tcp-established (CRIU's TCP repair under omtools'
# nftables network lock):
#  - a client outside the group keeps its connection across a migration of
#    the server on this node: bytes checked both ways by both sides;
#  - a client in another tree of the same group (a loopback connection with
#    both ends in the group) travels with the group: migration, restore "as
#    on another node" (the group is gone, restored from the store under
#    another node name), and --leave-running then kill and restore;
#  - the lock: the nftables table is there while the group is away, and gone
#    after the restore; without --tcp-established CRIU refuses (exit 5) and the
#    group keeps running.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 13000
need_cmd python3 nft

TCPAPP=$APPS_DIR/tcpapp.py
export OM_CGROUP=v2
new_group
port=$(free_port)
lock=omtools_g$G

# n_of FILE : the count in a status file (n=...), empty on FAIL
n_of() { last_line "$1" | grep -o '^n=[0-9]*\|[ ]n=[0-9]*' | head -1 | tr -dc 0-9; }
status_ok() {
	last_line "$W/$1" | grep -Eq ' ok$|^n=[0-9]+ ok$' && return 0
	diag "$1: $(tail -n 3 "$W/$1" 2>/dev/null)"
	return 1
}
# moving NAME : the count of status file NAME grows within 10 s (TCP retransmits
# of packets the lock dropped back off exponentially), and it says ok
moving() {
	local a b end=$((SECONDS + 10))
	a=$(n_of "$W/$1")
	while [ $SECONDS -lt $end ]; do
		sleep 0.2
		b=$(n_of "$W/$1")
		if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]; then
			status_ok "$1"
			return
		fi
		# restored from an older generation: the file may still show the
		# higher count written before the kill; count from the new value
		if [ -n "$b" ] && { [ -z "$a" ] || [ "$b" -lt "$a" ]; }; then
			a=$b
		fi
	done
	diag "$1 stuck: $(tail -n 3 "$W/$1" 2>/dev/null)"
	diag "$(ss -tanoi "( sport = :$port or dport = :$port )")"
	return 1
}
has_lock() { nft list table inet "$lock" >/dev/null 2>&1; }
listening() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), timeout=1).close()"; }

ok "server in group $G listens on 127.0.0.1:$port" omrun_app server "$TCPAPP" server "$port" "$W/server"
ok "... it accepts" wait_until 20 listening
ok "client in another tree of the group connects" omrun_app inner "$TCPAPP" client "$port" "$W/inner"
setsid "$TCPAPP" client "$port" "$W/outer" </dev/null >"$W/outer.log" 2>&1 &
outer=$!
track_pid "$outer"
ok "client outside the group connects" wait_until 10 test -s "$W/outer"
ok "... both clients exchange numbers" eval "moving inner && moving outer && moving server"
spid=${APID[server]}
ipid=${APID[inner]}

# ---- without --tcp-established: CRIU refuses, the group keeps running ----
check_rc 5 "omckpt without --tcp-established fails (exit 5)" "$OMCKPT" -g "$G"
like "$ERR" "Connected TCP socket, consider using --tcp-established option" "... CRIU's reason is shown"
ok "... the connections keep running" eval "moving inner && moving outer"

# ---- migration on this node, the outside client waits ----
timed "$OMCKPT" --tcp-established -g "$G"
tc=$T_SECS
ok "omckpt --tcp-established -g $G (migration)" test "$RC" -eq 0 || diag_file "$ERR"
ok "... server and inner client are gone" pids_free 20 "$spid" "$ipid"
ok "... the outside client is alive, waiting" alive "$outer"
ok "... the network lock (nft table inet $lock) holds the connections" has_lock
check "omdecode" "$OMDECODE" "$OM_STORE/groups/$G/gen-1"
like "$OUT" "tcp established: +yes \(3 connections locked\)" "... the manifest records 3 connection ends"
like "$OUT" "127\.0\.0\.1:$port <-> 127\.0\.0\.1:[0-9]+" "... with the server's port"
before=$(n_of "$W/outer")
sleep 1
is "$(n_of "$W/outer")" "$before" "... the outside client got nothing while the server was away"
timed "$OMRESTORE" -g "$G"
tr=$T_SECS
ok "omrestore -g $G" test "$RC" -eq 0 || diag_file "$ERR"
ckpt_restore_figures tcp "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
ok "... the lock is released" not has_lock
ok "... the outside client carries on over the same connection, bytes checked both ways" moving outer
ok "... so does the client inside the group" moving inner
ok "... and the server" moving server
ok "... the listening socket accepts a new connection" listening

# ---- the outside client leaves; the group moves "to another node" ----
kill -TERM "$outer"
ok "the outside client stops cleanly" wait_until 10 grep -q "done" "$W/outer"
reap "$outer"
check "omckpt --tcp-established -g $G (migration)" "$OMCKPT" -T -g "$G"
ok "... the group is gone" eval "pids_free 20 $spid $ipid && group_gone"
check "omrestore -g $G on node b (from the store)" env OM_NODE=apps-node-b "$OMRESTORE" -g "$G"
ok "... the loopback connection inside the group carries on" moving inner
ok "... the server too" moving server
ok "... no lock left" not has_lock

# ---- periodic: --leave-running, kill, restore that generation ----
check "omckpt --tcp-established --leave-running -g $G" "$OMCKPT" -T -R -g "$G"
ok "... the lock is released at once" not has_lock
ok "... the group keeps talking" eval "moving inner && moving server"
ok "the group killed" kill_group
check "omrestore -g $G --generation 3" "$OMRESTORE" -g "$G" --generation 3
ok "... the connection inside the group carries on from generation 3" moving inner
ok "... the server too" moving server
ok "... the listening socket accepts" listening

kill -TERM "$ipid"
ok "the inner client stops cleanly, no mismatch ever" wait_until 10 grep -q "done" "$W/inner"
ok "... the server saw no mismatch" status_ok server
done_testing
