#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t60-namespaces.sh — a process tree with its own PID and IPC namespaces (as
# `unshare --pid --ipc --fork` makes it) travels whole: CRIU dumps and
# recreates the namespaces, SysV shared memory inside the IPC namespace and a
# POSIX /dev/shm mapping included. The tree comes back with new PIDs on this
# node; omrestore finds it from its root and rejoins it to the group.
# And the same without namespaces: shmig/ carries SysV shm and /dev/shm files
# of the host IPC namespace (saved, removed from the node, recreated).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 6000

# tree_root : the root of the group's only tree, from showgroup --json.
tree_root() { "$SHOWGROUP" --json "$G" 2>/dev/null | grep -o '"root":[0-9]*' | head -1 | cut -d: -f2; }
nmembers() { members | wc -l; }

for cg in v2 v1; do
	have_backend $cg || { skip "[$cg] backend" "not available here"; continue; }
	export OM_CGROUP=$cg
	new_group
	diag "backend $cg, group $G"
	n=ns$cg

	# the tree: the namespaces' init is the worker, the `unshare` parent stays outside
	setsid unshare --pid --ipc --fork setsid "$WORKER" --dir "$W" --name "$n" --mem 16 --children 2 \
		--threads 2 --shm 4 </dev/null >/dev/null 2>&1 &
	us=$!
	track_pid "$us"
	ok "[$cg] a worker in its own PID and IPC namespaces is ready" wait_ready "$n"
	is "$(status_field "$n" pid)" 1 "[$cg] ... it is PID 1 of its namespace"
	init=$(pgrep -P "$us" | head -1)
	WPID[$n]=$init
	track_pid "$init"
	check "[$cg] joingroup its init ($init)" "$JOINGROUP" "$init" "$G"
	is "$(nmembers)" 3 "[$cg] the group has the init and its two children"
	before=$(snap "$n")
	old=$(members | tr '\n' ' ')

	check "[$cg] omckpt -g $G" "$OMCKPT" -g "$G"
	# shellcheck disable=SC2086
	ok "[$cg] ... the tree is gone" all_gone 5 $old
	wait "$us" 2>/dev/null
	gen=$OM_STORE/groups/$G/gen-1
	check "[$cg] omdecode" "$OMDECODE" "$gen"
	like "$OUT" "own pid ns: +yes" "[$cg] ... the manifest says the tree has its own PID namespace"

	check "[$cg] omrestore -g $G" "$OMRESTORE" -g "$G"
	root=$(tree_root)
	WPID[$n]=$root
	track_pid "$root"
	ok "[$cg] ... the tree is back in the group" test -n "$root"
	is "$(nmembers)" 3 "[$cg] ... with its three processes"
	like "$OUT" "^$root with commandline .* restored in group $G \(state [A-Za-z]\)\$" "[$cg] ... omrestore names the new root $root"
	is "$(status_field "$n" pid)" 1 "[$cg] ... still PID 1 inside"
	ok "[$cg] ... it saw its own restore and carries on from where it was ($before)" continued_restored "$before"
	# shellcheck disable=SC2046
	ok "[$cg] ... its processes are in the group's cgroup" eval "$(for p in $(members); do printf 'in_cgroup %s && ' "$p"; done) true"

	# again, periodic: the restored tree checkpointed with --leave-running
	before=$(snap "$n")
	check "[$cg] omckpt --leave-running of the restored tree" "$OMCKPT" --leave-running -g "$G"
	ok "[$cg] ... it keeps running, not restored" continued_running "$before"
	finish_ok "$n"
done

# ---- shmig: SysV shm and /dev/shm of the host IPC namespace travel too ----
export OM_CGROUP=v2
new_group
ok "a worker with SysV shm in the host IPC namespace" start_worker hostshm --mem 8 --children 1 --shm 2
ok "... ready" wait_ready hostshm
before=$(snap hostshm)
old=$(members | tr '\n' ' ')
check "omckpt -g $G carries its SysV segment and /dev/shm file (shmig)" "$OMCKPT" -g "$G"
# shellcheck disable=SC2086
ok "... the group is gone" all_gone 5 $old
check "omdecode shows them" "$OMDECODE" "$OM_STORE/groups/$G/gen-1"
like "$OUT" "sysv shm: +id [0-9]+ key 0x00000000 size 2097152 mode 0600" "... the SysV segment (IPC_PRIVATE, 2 MiB)"
like "$OUT" "/dev/shm: +omtools-worker-hostshm-" "... the /dev/shm file"
shmid=$(sed -n 's/.*sysv shm: *id \([0-9]*\).*/\1/p' "$OUT" | head -1)
posix=$(sed -n 's|^ */dev/shm: *\([^ ]*\).*|\1|p' "$OUT" | head -1)
ok "... the segment left the node with the group" not has_segment "$shmid"
ok "... so did /dev/shm/$posix" test ! -e "/dev/shm/$posix"
check "omrestore -g $G" "$OMRESTORE" -g "$G"
track_pid "$(status_field hostshm pid)"
ok "... the segment is back with its id $shmid" has_segment "$shmid"
ok "... /dev/shm/$posix is back" test -f "/dev/shm/$posix"
ok "... the worker checked both contents and carries on ($before)" continued_restored "$before"
finish_ok hostshm
ok "... the worker removed them at its end" eval "! has_segment $shmid && test ! -e /dev/shm/$posix"

done_testing
