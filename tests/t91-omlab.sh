#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t91-omlab.sh — omlab, the playground cluster on one machine: `up 3` makes
# three nodes, each with its own address on the lab's bridge, its own PID
# (PID 1 is the node's holder), IPC, mount (/dev/shm, /run/omtools, cgroup
# mounts rooted at the node's subtree), UTS and cgroup namespaces, the shared
# store and the host's /tmp visible; etcd answers a node's certificate and
# refuses none and a forged one; omrun/showgroup/joingroup/omckpt/omrestore
# work inside a node, and a group migrates from node 1 to node 2 (its process
# then lives in node 2's PID namespace); `kill 2` kills all of node 2, `start
# 2` brings it back; `up` twice is harmless; `down` leaves nothing behind.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

LAB=t91
NET=10.77.91
PORT=23981 # peer 23982: clear of t92 (23892, peer 23893)
LABDIR=/var/lib/omlab/$LAB
OMLAB=$OM_SRCDIR/cluster/omlab
CG2=/sys/fs/cgroup/unified/omlab-$LAB
CG1=/sys/fs/cgroup/freezer/omlab-$LAB
# the commands inside the nodes are the build's (omlab exec passes PATH on)
export PATH=$OM_BUILDDIR:$PATH
G=5

omd_opt=--no-omd
[ -x "$OM_BUILDDIR/omd" ] && omd_opt=

for t in etcd etcdctl openssl ip nsenter unshare ping ipcmk ipcs; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "1..0 # SKIP $t is missing"
		exit 0
	fi
done
if [ ! -e /sys/fs/cgroup/unified/cgroup.procs ]; then
	echo "1..0 # SKIP no cgroup2 at /sys/fs/cgroup/unified"
	exit 0
fi

lab() { timeout -k 5 120 "$OMLAB" --name "$LAB" "$@"; }
# on K CMD... : run CMD on node K (output in $OUT/$ERR, status in $RC)
on() {
	local k=$1
	shift
	run "$OMLAB" --name "$LAB" exec "$k" -- "$@"
}
out() { tr -d '[:space:]' <"$OUT"; }
holder() { cat "$LABDIR/node$1/holder.pid" 2>/dev/null; }
etcd_pid() { cat "$LABDIR/etcd.pid" 2>/dev/null; }

_t91_cleanup() {
	timeout -k 5 120 "$OMLAB" --name "$LAB" down >/dev/null 2>&1 || true
}
trap '_t91_cleanup; _cleanup' EXIT

# a leftover of an earlier run that was killed
_t91_cleanup

plan 68

# ---- usage ----
check "omlab --help" "$OMLAB" --help
check_rc 2 "no command: usage error (2)" "$OMLAB"
check_rc 2 "up without N: usage error (2)" "$OMLAB" --name "$LAB" up
check_rc 1 "exec on a lab that is not up: failure (1)" "$OMLAB" --name "$LAB" exec 1 -- true

# ---- up ----
if ! check "omlab up 3${omd_opt:+ $omd_opt}" "$OMLAB" --name "$LAB" --net "$NET" --port "$PORT" $omd_opt up 3; then
	diag_file "$LABDIR/etcd.log"
	echo "Bail out! the lab did not come up"
	exit 1
fi
H1=$(holder 1) H2=$(holder 2) H3=$(holder 3) E=$(etcd_pid)
ok "holders recorded and alive" all_alive "$H1" "$H2" "$H3" "$E"

# ---- network ----
addr_ok() {
	local k
	for k in 1 2 3; do
		on "$k" ip -4 -o addr show dev eth0
		grep -q "inet $NET.$((10 + k))/24" "$OUT" || { diag "node $k:" "$(cat "$OUT" "$ERR")"; return 1; }
	done
}
ok "each node has its own address A.B.C.(10+K)" addr_ok
check "ping node 1 -> node 2 over the bridge" "$OMLAB" --name "$LAB" exec 1 -- ping -c 1 -W 3 "$NET.12"
check "ping node 3 -> node 1" "$OMLAB" --name "$LAB" exec 3 -- ping -c 1 -W 3 "$NET.11"
check "ping node 2 -> the host side A.B.C.1" "$OMLAB" --name "$LAB" exec 2 -- ping -c 1 -W 3 "$NET.1"
on 2 hostname
is "$(out)" node2 "node 2's hostname is node2"

# ---- PID namespace ----
# node K hands out PIDs from K*(pid_max/(N+1)) on, as separate machines would
STRIDE=$(($(cat /proc/sys/kernel/pid_max) / 4))
in_range() { # in_range K : the PID in $OUT is one of node K's
	local p
	p=$(out)
	[[ $p =~ ^[0-9]+$ ]] && [ "$p" -gt $(($1 * STRIDE)) ] && [ "$p" -lt $((($1 + 1) * STRIDE)) ] && return 0
	diag "PID '$p' is not in node $1's range $(($1 * STRIDE))..$((($1 + 1) * STRIDE - 1))"
	return 1
}
on 1 sh -c 'echo $$'
ok "a command on node 1 has a PID of node 1's range ($(out))" in_range 1
on 3 sh -c 'echo $$'
ok "... one on node 3 one of node 3's ($(out))" in_range 3
on 1 readlink /proc/self/ns/pid
is "$(out)" "$(readlink "/proc/$H1/ns/pid")" "it is in the PID namespace of node 1's holder"
on 2 cat /proc/1/cmdline
ok "PID 1 of node 2 is the holder" grep -q holder.sh "$OUT"
wait_gone_bounded() {
	local end=$((SECONDS + 5))
	until no_zombie; do
		[ "$SECONDS" -lt "$end" ] || { diag "PID $ORPHAN of node 1: $(cat "$OUT")"; return 1; }
		sleep 0.2
	done
}
# an orphan that exits later is reaped by the node's PID 1
on 1 sh -c '(sleep 0.3; exit 0) >/dev/null 2>&1 & echo $!'
ORPHAN=$(out)
no_zombie() {
	on 1 sh -c "test -e /proc/$ORPHAN || echo gone"
	[ "$(out)" = gone ]
}
ok "an orphan of node 1 is reaped by its PID 1 (no zombie)" wait_gone_bounded
on 1 cat /proc/self/cgroup
ok "inside node 1 its cgroup is the root (cgroup namespace)" grep -qx '0::/' "$OUT"

# ---- IPC namespace, /dev/shm ----
on 1 ipcmk -M 4096
SHMID=$(grep -o '[0-9]\+' "$OUT" | head -n1)
ok "ipcmk -M 4096 on node 1" test -n "$SHMID"
seg_on() { on "$1" ipcs -m; awk -v id="$SHMID" '$2 == id {f = 1} END {exit !f}' "$OUT"; }
ok "the segment is listed on node 1" seg_on 1
ok "... and not on node 2 (own IPC namespace)" not seg_on 2
check "a file in node 1's /dev/shm" "$OMLAB" --name "$LAB" exec 1 -- sh -c 'echo x >/dev/shm/t91-probe'
shm_elsewhere() {
	on 2 test -e /dev/shm/t91-probe
	[ "$RC" -eq 0 ] || [ -e /dev/shm/t91-probe ]
}
ok "... is neither in node 2's nor in the host's /dev/shm" not shm_elsewhere

# ---- shared store, host /tmp ----
store_shared() {
	local k
	for k in 1 2 3; do
		on "$k" sh -c "echo $k >$LABDIR/store/probe-$k" || return 1
		[ "$RC" -eq 0 ] || { diag "node $k cannot write the store"; diag_file "$ERR"; return 1; }
	done
	on 2 cat "$LABDIR/store/probe-1" "$LABDIR/store/probe-3"
	[ "$(out)" = 13 ] && [ "$(cat "$LABDIR/store/probe-2")" = 2 ]
}
ok "the store is shared and writable from every node" store_shared
rm -f "$LABDIR"/store/probe-*
echo t91 >"$W/tmp-probe"
on 3 cat "$W/tmp-probe"
is "$(out)" t91 "the host's /tmp is visible on node 3"

# ---- etcd: TLS with client certificates ----
ectl() { # ectl NODE CERTARGS... -- etcdctl ARGS
	local k=$1
	shift
	on "$k" env ETCDCTL_API=3 etcdctl --endpoints="https://$NET.1:$PORT" --cacert=/etc/omtools/ca.crt \
		--dial-timeout=3s --command-timeout=5s "$@"
}
ectl 1 --cert=/etc/omtools/node.crt --key=/etc/omtools/node.key put /t91/probe hello
is "$RC" 0 "etcd accepts node 1's certificate (put)"
ectl 3 --cert=/etc/omtools/node.crt --key=/etc/omtools/node.key get --print-value-only /t91/probe
is "$(out)" hello "node 3 reads it back with its own certificate"
ectl 2 get /t91/probe
ok "etcd refuses a client without a certificate" test "$RC" -ne 0
ectl 2 --cert="$LABDIR/pki/intruder.crt" --key="$LABDIR/pki/intruder.key" get /t91/probe
ok "etcd refuses the intruder's certificate (CN=node1, another CA)" test "$RC" -ne 0
if [ -x "$OM_BUILDDIR/omstat" ] && [ -z "$omd_opt" ]; then
	run env OM_CONFIG="$LABDIR/host.conf" "$OM_BUILDDIR/omstat"
	like "$(cat "$OUT")" "^3 +$NET\.13 +alive" "omstat on the host with host.conf (admin certificate) sees the nodes"
else
	skip "omstat on the host with host.conf" "no omd/omstat in $OM_BUILDDIR"
fi
like "$LABDIR/node2/etc/omtools.conf" '^etcd = https://10\.77\.91\.1:23981$' "node 2's omtools.conf names the etcd"

# ---- miggroups inside a node ----
on 1 omrun -g "$G" -- sleep 1000
P=$(out)
ok "omrun -g $G -- sleep 1000 on node 1 (PID $P)" test "$RC" -eq 0 -a -n "$P"
on 1 showgroup "$G"
like "$(cat "$OUT")" "^$P with commandline sleep 1000 belongs to $G" "showgroup $G on node 1 lists it"
host_member() { # host_member K : the host PID of the group's process on node K
	cat "$CG2/node$1/omtools/g$G"/t*/cgroup.procs 2>/dev/null | head -n1
}
HP=$(host_member 1)
ok "its cgroup is under the node's subtree on the host ($CG2/node1/omtools/g$G)" test -n "$HP"
nspid_inner() { awk '/^NSpid:/ {print $NF}' "/proc/$1/status" 2>/dev/null; }
is "$(nspid_inner "$HP")" "$P" "host PID $HP is PID $P inside node 1"
on 1 sh -c 'sleep 1000 >/dev/null 2>&1 & echo $!'
J=$(out)
check "joingroup $J 6 on node 1" "$OMLAB" --name "$LAB" exec 1 -- joingroup "$J" 6
JH=$(cat "$CG2"/node1/omtools/g6/t*/cgroup.procs 2>/dev/null | head -n1)
on 1 showgroup --all
ok "showgroup --all on node 1 lists groups $G and 6" grep -q "belongs to 6" "$OUT"
# (a cluster-aware showgroup may name the group's node; no member is listed)
not_on_2() { on 2 showgroup "$G"; ! grep -q "with commandline" "$OUT" && [ -z "$(host_member 2)" ]; }
ok "node 2 has no member of node 1's group" not_on_2

check "omckpt -g $G --leave-running on node 1" "$OMLAB" --name "$LAB" exec 1 -- omckpt -g "$G" --leave-running
ok "the process keeps running" alive "$HP"
kill -9 "$HP"
ok "killed" all_gone 10 "$HP"
check "omrestore -g $G on node 1" "$OMLAB" --name "$LAB" exec 1 -- omrestore -g "$G"
on 1 showgroup "$G"
like "$(cat "$OUT")" "^$P with commandline sleep 1000 belongs to $G" "restored with PID $P on node 1"
HP=$(host_member 1)

# ---- migration node 1 -> node 2 ----
check "omckpt -g $G on node 1 (migration: the group stops)" "$OMLAB" --name "$LAB" exec 1 -- omckpt -g "$G"
ok "its process is gone from node 1" all_gone 10 "$HP"
check "omrestore -g $G on node 2" "$OMLAB" --name "$LAB" exec 2 -- omrestore -g "$G"
on 2 showgroup "$G"
like "$(cat "$OUT")" "^$P with commandline sleep 1000 belongs to $G" "showgroup $G on node 2 lists PID $P"
HP2=$(host_member 2)
ok "its cgroup is under node 2's subtree on the host" test -n "$HP2"
is "$(readlink "/proc/$HP2/ns/pid" 2>/dev/null)" "$(readlink "/proc/$H2/ns/pid")" "it lives in node 2's PID namespace"

# ---- power cut, restart ----
# also a group of node 2 frozen in the v1 freezer (a frozen process cannot die there)
FP=
if have_backend v1; then
	on 2 env OM_CGROUP=v1 omrun -g 9 -- sleep 1000
	FP=$(head -n1 "$CG1/node2/omtools/g9/t$(out)/cgroup.procs" 2>/dev/null)
	if [ -n "$FP" ]; then
		echo FROZEN >"$CG1/node2/omtools/g9/t$(out)/freezer.state"
		ok "a v1 group of node 2, frozen" test "$(cat "$CG1/node2/omtools/g9/t$(out)/freezer.state")" = FROZEN
	else
		fail "a v1 group of node 2, frozen"
		diag_file "$ERR"
	fi
else
	skip "a v1 group of node 2, frozen" "no v1 freezer"
fi
check "omlab kill 2" "$OMLAB" --name "$LAB" kill 2
ok "node 2's holder and the group's processes are dead" all_gone 10 "$H2" "$HP2" ${FP:+"$FP"}
ok "the cgroups below node 2 are gone" not test -e "$CG2/node2/omtools" -o -e "$CG1/node2/omtools"
lab status --json >"$W/status.json" 2>&1
if command -v jq >/dev/null 2>&1; then
	is "$(jq -r '.nodes[1].alive, .nodes[0].alive, .etcd.state' "$W/status.json" | tr '\n' ' ')" "false true up " \
		"status --json: node 2 dead, node 1 alive, etcd up"
else
	like "$W/status.json" '"node":2,[^}]*"alive":false' "status --json: node 2 dead"
fi
check_rc 1 "exec on a dead node fails (1)" "$OMLAB" --name "$LAB" exec 2 -- true
check "omlab start 2" "$OMLAB" --name "$LAB" start 2
H2B=$(holder 2)
ok "node 2 has a new holder" test -n "$H2B" -a "$H2B" != "$H2"
check "node 1 reaches node 2 again" "$OMLAB" --name "$LAB" exec 1 -- ping -c 1 -W 3 "$NET.12"
if [ -z "$omd_opt" ]; then
	omd_state() { proc_state "$(cat "$LABDIR/node1/omd.pid" 2>/dev/null)"; }
	paused() { lab pause 1 >/dev/null && [ "$(omd_state)" = T ] && lab status | grep -q "^node 1 .*omd paused"; }
	resumed() { lab resume 1 >/dev/null && wait_until_state S R; }
	wait_until_state() {
		local end=$((SECONDS + 5))
		while [ "$SECONDS" -lt "$end" ]; do
			case $(omd_state) in "$1" | "$2") return 0 ;; esac
			sleep 0.1
		done
		diag "omd of node 1 in state '$(omd_state)'"
		return 1
	}
	ok "pause 1: node 1's omd is stopped, status says paused" paused
	ok "resume 1: it runs again" resumed
else
	skip "pause 1" "no omd in $OM_BUILDDIR"
	skip "resume 1" "no omd in $OM_BUILDDIR"
fi

# ---- up twice, down ----
check "up 3 again: already up (0)" "$OMLAB" --name "$LAB" --net "$NET" --port "$PORT" $omd_opt up 3
check_rc 1 "up 2 while up with 3: refused (1)" "$OMLAB" --name "$LAB" up 2
H1=$(holder 1) H3=$(holder 3)
check "omlab down" "$OMLAB" --name "$LAB" down
ok "no process left (holders, etcd)" all_gone 10 "$H1" "$H2B" "$H3" "$E" "$JH"
ok "no network namespace left" not grep -q "omlab-$LAB-" <(ip netns list)
ok "no link left" not grep -Eq "(oml-$LAB|ov-$LAB-)" <(ip -o link show)
ok "no cgroup left" not test -e "$CG2" -o -e "$CG1"
ok "no directory and no mount left" not test -e "$LABDIR" -o -n "$(grep "$LABDIR" /proc/self/mountinfo)"
check "down again: nothing to do (0)" "$OMLAB" --name "$LAB" down

done_testing
