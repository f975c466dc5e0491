#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t62-isolate.sh — `omrun -g G --isolate`: the tree starts in new PID and IPC
# namespaces whose init is om-init (PID 1 inside, the tree's root, a member of
# the group before the command starts); the command is PID 2. CRIU dumps and
# recreates the namespaces, so the tree comes back with new host PIDs, also
# when every host PID it had is taken by another process. A command that
# daemonizes leaves its daemon to om-init, which keeps the namespace alive
# until no process is left, then exits with the command's status. SIGTERM to
# om-init reaches the command (or, once it is gone, every process inside).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 6200

# tree_root : the root of the group's only tree, from showgroup --json.
tree_root() { "$SHOWGROUP" --json "$G" 2>/dev/null | grep -o '"root":[0-9]*' | head -1 | cut -d: -f2; }
nmembers() { members | wc -l; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
ppid_of() { awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# nspid PID : the PIDs of PID from the host's namespace inwards ("HOST INNER")
nspid() { awk '/^NSpid:/ {$1 = ""; sub(/^ /, ""); print}' "/proc/$1/status" 2>/dev/null; }
# inner_pids : the PIDs inside the namespace of every member, sorted
inner_pids() {
	local p
	for p in $(members); do nspid "$p" | awk '{print $NF}'; done | sort -n | tr '\n' ' '
}
in_group_all() {
	local p
	for p in $(members); do in_cgroup "$p" || { diag "$p is not in the group's cgroup"; return 1; }; done
}
# own_ipc PID : PID is in another IPC namespace than this script
own_ipc() { [ "$(readlink "/proc/$1/ns/ipc")" != "$(readlink /proc/self/ns/ipc)" ]; }
# shm_only_inside WORKER_PID MIB : the worker's SysV segment (the inode of its
# SYSV mapping is the shmid) is listed, MIB large, by ipcs in its own IPC
# namespace and not in the host's
shm_only_inside() {
	local pid=$1 bytes=$(($2 * 1048576)) id inside host
	id=$(awk '$6 ~ /^\/SYSV/ {print $5; exit}' "/proc/$pid/maps" 2>/dev/null)
	[ -n "$id" ] || { diag "no SysV mapping in /proc/$pid/maps"; return 1; }
	inside=$(nsenter -t "$pid" -i ipcs -m | awk -v id="$id" -v b="$bytes" '$2 == id && $5 == b')
	host=$(ipcs -m | awk -v id="$id" -v b="$bytes" '$2 == id && $5 == b')
	[ -n "$inside" ] || { diag "shmid $id ($bytes bytes) not listed inside"; return 1; }
	[ -z "$host" ] || { diag "shmid $id ($bytes bytes) is listed in the host's namespace: $host"; return 1; }
}
# start_iso NAME CMD... : omrun --isolate in $G; WPID[NAME] = the printed PID (om-init)
start_iso() {
	local name=$1
	shift
	run "$OMRUN" -g "$G" --isolate -o "$W/$name.log" -- "$@"
	WPID[$name]=$(head -n1 "$OUT" | tr -d '[:space:]')
	# the worker's own PIDs are those inside the namespace: lib.sh's cleanup
	# must not kill them on the host (it kills the group's members instead)
	WDONE[$name]=1
	[ "$RC" -eq 0 ] && [[ ${WPID[$name]} =~ ^[0-9]+$ ]] && return 0
	diag "omrun --isolate exited $RC"
	diag_file "$ERR"
	return 1
}
# hold_pid PID : a `sleep 300` of this script gets exactly PID (ns_last_pid);
# a process of somebody else that has it meanwhile is waited for (5 s)
hold_pid() {
	local p=$1 s
	for _ in $(seq 1 50); do
		if ! pids_free 5 "$p"; then
			diag "PID $p is held by another process: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
			return 1
		fi
		echo $((p - 1)) >/proc/sys/kernel/ns_last_pid
		sleep 300 >/dev/null 2>&1 &
		s=$!
		if [ "$s" = "$p" ]; then
			track_pid "$s"
			HELD+=("$s")
			return 0
		fi
		# SIGKILL: a child that has not exec()ed sleep yet would run the
		# script's TERM trap, and with it lib.sh's cleanup
		kill -9 "$s" 2>/dev/null
		wait "$s" 2>/dev/null
	done
	diag "could not get PID $p"
	return 1
}
hold_pids() {
	local p
	for p in "$@"; do hold_pid "$p" || return 1; done
}
# disjoint "A..." "B..." : no PID of the first list is in the second
disjoint() {
	local a b
	for a in $1; do
		for b in $2; do
			[ "$a" != "$b" ] || { diag "PID $a is in both"; return 1; }
		done
	done
}
# om_init_status NAME : the status om-init says it exits with (its last log line)
om_init_status() {
	sed -n 's/^om-init: no process left in the namespace, exiting with status \([0-9]*\)$/\1/p' "$W/$1.log" | tail -1
}

for cg in v2 v1; do
	have_backend $cg || { skip "[$cg] backend" "not available here"; continue; }
	export OM_CGROUP=$cg
	new_group
	diag "backend $cg, group $G"
	n=iso$cg

	# ---- a. the tree: om-init, the worker (PID 2) and its two children ----
	ok "[$cg] omrun -g $G --isolate -- worker --shm 4 --children 2" start_iso "$n" \
		"$WORKER" --dir "$W" --name "$n" --mem 16 --children 2 --threads 1 --shm 4
	init=${WPID[$n]}
	ok "[$cg] ... the worker is ready" wait_ready "$n"
	is "$(comm_of "$init")" om-init "[$cg] ... omrun printed the host PID of om-init ($init)"
	is "$(comm_of "$(ppid_of "$init")")" "omkeeper-g$G" "[$cg] ... a child of the group's keeper"
	is "$(nspid "$init")" "$init 1" "[$cg] ... PID 1 of its own PID namespace"
	is "$(tree_root)" "$init" "[$cg] ... the root of the group's tree"
	is "$(nmembers)" 4 "[$cg] showgroup lists om-init, the worker and its two children"
	is "$(inner_pids)" "1 2 3 4 " "[$cg] ... PIDs 1 to 4 inside"
	is "$(status_field "$n" pid)" 2 "[$cg] the worker is PID 2 inside"
	ok "[$cg] every member is in the group's cgroup" in_group_all
	wpid=$(pgrep -P "$init" | head -1)
	ok "[$cg] the tree has its own IPC namespace" own_ipc "$wpid"
	ok "[$cg] ... the worker's SysV segment is there and not in the host's ipcs -m" shm_only_inside "$wpid" 4

	# ---- b. migration: new host PIDs, same PIDs inside ----
	before=$(snap "$n")
	old=$(members | tr '\n' ' ')
	check "[$cg] omckpt -g $G" "$OMCKPT" -g "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... the tree is gone" pids_free 10 $old
	check "[$cg] omrestore -g $G" "$OMRESTORE" -g "$G"
	init=$(tree_root)
	WPID[$n]=$init
	ok "[$cg] ... the tree is back in the group" test -n "$init"
	like "$OUT" "^$init with commandline .* restored in group $G \(state [A-Za-z]\)\$" "[$cg] ... omrestore names the new root $init"
	is "$(comm_of "$init")" om-init "[$cg] ... its root is om-init"
	is "$(nspid "$init" | awk '{print $2}')" 1 "[$cg] ... still PID 1 inside"
	is "$(nmembers)" 4 "[$cg] ... with its four processes"
	is "$(inner_pids)" "1 2 3 4 " "[$cg] ... PIDs 1 to 4 inside"
	is "$(status_field "$n" pid)" 2 "[$cg] ... the worker is still PID 2"
	ok "[$cg] ... every member is in the group's cgroup" in_group_all
	ok "[$cg] ... it saw its own restore and carries on with its SysV and POSIX shm ($before)" continued_restored "$before"
	wpid=$(pgrep -P "$init" | head -1)
	ok "[$cg] ... in its own IPC namespace, the segment not in the host's" shm_only_inside "$wpid" 4

	# ---- c. every host PID of the tree taken: the restore gets new ones ----
	# (a migration: a --leave-running image of a tree sharing a /dev/shm
	# mapping restores unshared now and then, with or without taken PIDs and
	# also for t60's `unshare` trees: a CRIU matter; d covers --leave-running)
	before=$(snap "$n")
	old=$(members | tr '\n' ' ')
	check "[$cg] omckpt -g $G again" "$OMCKPT" -g "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... the tree is gone ($old)" pids_free 10 $old
	HELD=()
	# shellcheck disable=SC2086
	ok "[$cg] sleepers hold every host PID the tree had ($old)" hold_pids $old
	# shellcheck disable=SC2086
	check "[$cg] omrestore -g $G succeeds with the PIDs taken" "$OMRESTORE" -g "$G" --pid-wait 1
	init=$(tree_root)
	WPID[$n]=$init
	new=$(members | tr '\n' ' ')
	is "$(nmembers)" 4 "[$cg] ... the tree is back with its four processes"
	is "$(comm_of "$init")" om-init "[$cg] ... under om-init ($init)"
	ok "[$cg] ... on new host PIDs ($new)" disjoint "$old" "$new"
	is "$(inner_pids)" "1 2 3 4 " "[$cg] ... PIDs 1 to 4 inside"
	ok "[$cg] ... every member is in the group's cgroup" in_group_all
	ok "[$cg] ... it saw its second restore and carries on, shm shared ($before)" continued_restored "$before"
	ok "[$cg] ... the sleepers still hold their PIDs" all_alive "${HELD[@]}"
	kill -9 "${HELD[@]}" 2>/dev/null
	wait "${HELD[@]}" 2>/dev/null

	# ---- e. SIGTERM to om-init reaches the worker; om-init leaves nothing ----
	finish_ok "$n"
	# shellcheck disable=SC2086
	ok "[$cg] om-init exits when the worker and its children are gone" pids_free 10 $new
	is "$(nmembers)" 0 "[$cg] ... the group is empty"
	like "$W/$n.log" "^om-init: \`$WORKER\` \(PID 2\) exited with status 0\$" "[$cg] ... it logged the worker's exit status"
	is "$(om_init_status "$n")" 0 "[$cg] ... and exits with it"
done

# ---- d. a command that daemonizes: the namespace outlives it ----
export OM_CGROUP=v2
new_group
d=daemon
ok "omrun --isolate -- sh -c 'setsid worker ... & exit 0' (a daemonizing command)" start_iso "$d" \
	sh -c "setsid '$WORKER' --dir '$W' --name $d --mem 8 --children 1 --threads 1 & exit 0"
init=${WPID[$d]}
ok "... the daemon is ready" wait_ready "$d"
is "$(status_field "$d" pid)" 3 "... the daemon is PID 3 inside"
ok "... sh is gone" eval "grep -q '^om-init: \`sh\` (PID 2) exited with status 0\$' '$W/$d.log'"
dpid=$(pgrep -P "$init" | head -1)
is "$(nspid "$dpid" | awk '{print $2}')" 3 "... om-init ($init) adopted the daemon"
is "$(nmembers)" 3 "... the group holds om-init, the daemon and its child"
before=$(snap "$d")
check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
ok "... the daemon keeps running" continued_running "$before"
old=$(members | tr '\n' ' ')
kill -9 "$init"
# shellcheck disable=SC2086
ok "SIGKILL to om-init ends the tree" pids_free 10 $old
check "omrestore -g $G (the --leave-running image)" "$OMRESTORE" -g "$G"
init=$(tree_root)
WPID[$d]=$init
is "$(comm_of "$init")" om-init "... om-init is back ($init)"
is "$(nmembers)" 3 "... with the daemon and its child"
ok "... the daemon carries on from the image ($before)" continued_restored "$before"
new=$(members | tr '\n' ' ')
# SIGTERM to om-init with the command gone: every process inside gets it
finish_ok "$d"
# shellcheck disable=SC2086
ok "om-init exits once the daemon is gone" pids_free 10 $new
is "$(om_init_status "$d")" 0 "... with the status of sh (0)"

# ---- e. om-init exits with the command's status when its last child exits ----
new_group
ok "omrun --isolate -- sh -c 'sleep 1 & sleep 0.5; exit 7'" start_iso st sh -c 'sleep 1 & sleep 0.5; exit 7'
init=${WPID[st]}
ok "... om-init waits for the sleep that outlives sh" eval "sleep 0.8; alive $init && grep -q 'exited with status 7\$' '$W/st.log'"
ok "... and exits when it is gone" pids_free 10 "$init"
is "$(om_init_status st)" 7 "... with the status of sh (7)"
is "$(nmembers)" 0 "... the group is empty"

ok "omrun --isolate -- sh that traps SIGUSR1" start_iso usr1 \
	sh -c 'trap "echo got USR1; exit 9" USR1; echo trapping; while :; do sleep 0.1; done'
init=${WPID[usr1]}
ok "... it runs" eval "for _ in \$(seq 50); do grep -q trapping '$W/usr1.log' && break; sleep 0.1; done; grep -q trapping '$W/usr1.log'"
kill -USR1 "$init"
ok "SIGUSR1 to om-init ends the tree through sh's trap" pids_free 10 "$init"
like "$W/usr1.log" "^got USR1\$" "... sh got it"
is "$(om_init_status usr1)" 9 "... om-init exits with the trap's status (9)"

ok "omrun --isolate -- a missing command" not start_iso missing /nonexistent/cmd
is "$RC" 3 "... exits 3 (command not found)"
is "$(nmembers)" 0 "... and leaves nothing in the group"

# ---- f. usage ----
check_rc 2 "omrun --isolate without -g exits 2" "$OMRUN" --isolate -- true
like "$ERR" "--isolate needs -g G" "... saying so"
check "omrun --help" "$OMRUN" --help
like "$OUT" "--isolate" "... documents --isolate"

done_testing
