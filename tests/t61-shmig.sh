#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t61-shmig.sh — shmig: shared memory and SysV IPC of the host IPC namespace
# travel with a miggroup (tests/zdtm/shmapp.c checks its own data from the
# inside). Every scenario twice: as a migration (omckpt -g G: the group's
# segments and /dev/shm files are gone from the node, and whatever is left is
# removed, as on another node) and as omckpt --leave-running, kill of every
# member, removal of the segments and files, omrestore --generation N (and
# once more leaving the group's own segments and files, changed since the
# checkpoint, on the node for omrestore to take back):
#   - SysV shm counters of two trees under a SysV semaphore (+ 8 MiB pattern);
#   - a POSIX shm ring with named semaphores, reader forked and unrelated
#     (the writer's semaphores as sem_open created them, and opened again);
#   - MAP_SHARED|MAP_ANONYMOUS and memfd memory of a parent and 3 children;
#   - a SysV message queue and a set of 5 semaphores with known values.
# Refusals (exit 5, group thawed and running, no generation, the message names
# the process): a segment attached by an outsider, a /dev/shm file mapped by an
# outsider or only held open by one, shared anonymous memory and a memfd of a
# member and its parent outside the group, a named semaphore created by an
# outsider (its mapping shows glibc's unlinked temporary name), memfd and
# shared anonymous memory across two trees of the group.
# omrestore refuses (exit 6) when a foreign segment holds the key or the id,
# and succeeds once it is removed. omdecode shows the saved segments.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 6100

SHMAPP=${OM_SHMAPP:-$OM_BUILDDIR/tests/zdtm/shmapp}
if [ ! -x "$SHMAPP" ]; then
	echo "Bail out! $SHMAPP is missing: make check builds it"
	exit 1
fi
# the cgroup backend: $OM_CGROUP (lib.sh: v2 unless set)
# python3 itself, not a wrapper script (its comm is the interpreter's)
PY=$(python3 -c 'import sys; print(sys.executable)')

# keys and /dev/shm names of this run (the node's IPC namespace is shared with
# whatever else runs here)
KBASE=$((0x4f4d0000 + ($$ % 4000) * 16))
_KEYS=()
_SHMS=()
key() { # key N : K becomes the N-th key of this run, in hex
	K=$(printf '0x%08x' $((KBASE + $1)))
	_KEYS+=("$K")
}
shmname() { # shmname TAG : SHM becomes a /dev/shm name of this run
	SHM=omt61-$$-$1
	_SHMS+=("$SHM")
}

# shm_files NAME : the /dev/shm files of a shmapp posix ring
shm_files() { echo "/dev/shm/$1 /dev/shm/sem.$1-items /dev/shm/sem.$1-space"; }

# ipc_id m|s|q KEY : the id of the segment, semaphore set or queue with KEY (empty if none)
ipc_id() {
	ipcs -"$1" 2>/dev/null | awk -v k="$2" '$1 == k {print $2; exit}'
}

# ipc_gone KEY... -- FILE... : no SysV object holds a KEY and no FILE exists
ipc_gone() {
	local k t left=
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		for t in m s q; do
			[ -n "$(ipc_id "$t" "$1")" ] && left="$left $t:$1"
		done
		shift
	done
	[ $# -gt 0 ] && shift
	for k in "$@"; do
		[ -e "$k" ] && left="$left $k"
	done
	[ -z "$left" ] && return 0
	diag "still on the node:$left"
	return 1
}

# remove_ipc KEY... -- FILE... : what another node would not have
remove_ipc() {
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		ipcrm -M "$1" 2>/dev/null
		ipcrm -S "$1" 2>/dev/null
		ipcrm -Q "$1" 2>/dev/null
		shift
	done
	[ $# -gt 0 ] && shift
	rm -f "$@"
	return 0
}

_ipc_cleanup() {
	local k n
	for k in "${_KEYS[@]}"; do remove_ipc "$k"; done
	for n in "${_SHMS[@]}"; do
		# shellcheck disable=SC2046
		rm -f $(shm_files "$n") "/dev/shm/sem.$n"
	done
	for k in "${_FOREIGN[@]}"; do ipcrm -m "$k" 2>/dev/null; done
}
_FOREIGN=()
trap '_cleanup; _ipc_cleanup' EXIT

# mkseg KEY [ID] : a foreign 4 KiB segment with KEY (0: IPC_PRIVATE), at id ID if given; prints its id
mkseg() {
	python3 - "$@" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
key = int(sys.argv[1], 0)
if len(sys.argv) > 2:
    with open("/proc/sys/kernel/shm_next_id", "w") as f:
        f.write(sys.argv[2])
i = libc.shmget(ctypes.c_int(key if key < 2**31 else key - 2**32), ctypes.c_size_t(4096), 0o1600)
if i < 0:
    sys.exit("shmget: " + os.strerror(ctypes.get_errno()))
print(i)
EOF
}

# damage KEY WORD : overwrite word WORD of the pattern (after the 4 KiB header) of the segment with KEY
damage() {
	python3 - "$@" <<'EOF'
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
key = int(sys.argv[1], 0)
i = libc.shmget(ctypes.c_int(key if key < 2**31 else key - 2**32), ctypes.c_size_t(0), 0)
p = libc.shmat(i, None, 0)
if i < 0 or p in (None, ctypes.c_void_p(-1).value):
    sys.exit("cannot attach the segment")
ctypes.c_uint64.from_address(p + 4096 + 8 * int(sys.argv[2])).value ^= 0xff
libc.shmdt(ctypes.c_void_p(p))
EOF
}

# app NAME MODE [args] : shmapp as a new tree of $G (omrun)
app() { WORKER=$SHMAPP start_worker "$@"; }
# outsider NAME MODE [args] : shmapp started by the script, in no group
outsider() { WORKER=$SHMAPP start_plain_worker "$@"; }

ready() {
	local n
	for n in "$@"; do wait_ready "$n" 30 || return 1; done
}

# kill_members PID... : kill -9 every member of $G and every PID, wait until they are gone
kill_members() {
	local p
	# shellcheck disable=SC2046
	kill -9 $(members) "$@" 2>/dev/null
	all_gone 10 "$@" || return 1
	for p in "$@"; do reap "$p"; done
	return 0
}

# cycle LABEL migrate|keep|leftover GEN "KEYS -- FILES" NAME... : one checkpoint
# and restore of $G. keep: --leave-running, kill, remove what the group left,
# restore; leftover: the same but the group's own segments and files stay on
# the node (changed by the programs after the checkpoint) for omrestore to
# take back with the saved contents
cycle() {
	local label=$1 how=$2 gen=$3 objs=$4 snapv pids ids_before ids_after k keys=()
	shift 4
	local names=("$@")
	# shellcheck disable=SC2206
	local objv=($objs)
	for k in "${objv[@]}"; do [ "$k" = -- ] && break; keys+=("$k"); done
	mapfile -t pids < <(pids_of "${names[@]}" | grep .)
	mapfile -t snapv < <(snap "${names[@]}")
	ids_before=$(for k in "${keys[@]}"; do echo "$k m$(ipc_id m "$k") s$(ipc_id s "$k") q$(ipc_id q "$k")"; done)
	if [ "$how" = migrate ]; then
		check "[$label] omckpt -g $G (migration, generation $gen)" "$OMCKPT" -g "$G" || return 1
		ok "[$label] ... every process is gone" all_gone 10 "${pids[@]}"
		ok "[$label] ... the group's segments, semaphores, queues and /dev/shm files are gone from the node" \
			ipc_gone "${objv[@]}"
	else
		check "[$label] omckpt --leave-running -g $G (generation $gen)" "$OMCKPT" --leave-running -g "$G" ||
			return 1
		ok "[$label] ... the programs run on, not restored" continued_running "${snapv[@]}"
		[ "${#objv[@]}" -gt 1 ] &&
			ok "[$label] ... the segments and files stay while the group runs" not ipc_gone "${objv[@]}"
		[ "$how" = leftover ] && sleep 0.5 # they change what the checkpoint saved
		ok "[$label] ... kill -9 of every member" kill_members "${pids[@]}"
	fi
	if [ "$how" = leftover ]; then
		ok "[$label] ... the group's own segments and files are left on the node" not ipc_gone "${objv[@]}"
	else
		# shellcheck disable=SC2086
		remove_ipc $objs
		ok "[$label] ... nothing of the group is left on the node (as on another node)" ipc_gone "${objv[@]}"
	fi
	ok "[$label] ... the pids are free" pids_free 15 "${pids[@]}"
	check "[$label] omrestore -g $G --generation $gen" "$OMRESTORE" -g "$G" --generation "$gen" || return 1
	ok "[$label] ... every process is back with its pid" all_alive "${pids[@]}"
	ids_after=$(for k in "${keys[@]}"; do echo "$k m$(ipc_id m "$k") s$(ipc_id s "$k") q$(ipc_id q "$k")"; done)
	[ "${#keys[@]}" -gt 0 ] &&
		is "$ids_after" "$ids_before" "[$label] ... the SysV objects are back with the same keys and ids"
	ok "[$label] ... each program saw its restore, checked its data and counts on from where it was" \
		continued_restored "${snapv[@]}"
}

# ================================================================ scenarios ====

# ---- SysV shm counters of two trees under a SysV semaphore ----
new_group
key 1
diag "sysv: group $G, key $K"
ok "[sysv] tree a (creates segment $K and its semaphore)" app sa sysv --key "$K" --role a
ok "[sysv] ... ready" ready sa
ok "[sysv] tree b (attaches it)" app sb sysv --key "$K" --role b
ok "[sysv] ... ready" ready sb
ok "[sysv] both count" eval "advancing sa && advancing sb 0.3"
cycle sysv migrate 1 "$K --" sa sb
check "[sysv] omdecode gen-1" "$OMDECODE" "$OM_STORE/groups/$G/gen-1"
tr '[:upper:]' '[:lower:]' <"$OUT" | grep -v -- --key >"$OUT.lc"
like "$OUT.lc" "0x${K#0x}|(^|[^0-9a-fx])${K#0x}([^0-9a-f]|\$)|(^|[^0-9])$((K))([^0-9]|\$)" \
	"[sysv] ... it shows the saved segment (key $K)"
cycle sysv keep 2 "$K --" sa sb
cycle sysv leftover 3 "$K --" sa sb
finish_ok sa
finish_ok sb
ok "[sysv] the programs removed their segment and semaphore" ipc_gone "$K"

# ---- POSIX shm ring with named semaphores: reader forked, and unrelated ----
new_group
shmname pf
PF=$SHM
shmname pu
PU=$SHM
diag "posix: group $G, /dev/shm/$PF and /dev/shm/$PU"
ok "[posix] writer with a forked reader over /dev/shm/$PF" app pf posix --shm-name "$PF"
ok "[posix] writer over /dev/shm/$PU" app pw posix --shm-name "$PU" --unrelated --role writer
ok "[posix] an unrelated reader of /dev/shm/$PU (another tree)" app pr posix --shm-name "$PU" --unrelated --role reader
ok "[posix] ... ready" ready pf pw pr
ok "[posix] records flow" eval "advancing pf && advancing pw 0.3 && advancing pr 0.3"
files="$(shm_files "$PF") $(shm_files "$PU")"
cycle posix migrate 1 "-- $files" pf pw pr
check "[posix] omdecode gen-1" "$OMDECODE" "$OM_STORE/groups/$G/gen-1"
grep -v -- --shm-name "$OUT" >"$OUT.files" # not the trees' command lines
like "$OUT.files" "$PF" "[posix] ... it shows /dev/shm/$PF"
like "$OUT" "sem\.$PU-items" "[posix] ... and the named semaphore sem.$PU-items"
cycle posix keep 2 "-- $files" pf pw pr
finish_ok pf
finish_ok pw
finish_ok pr
# shellcheck disable=SC2086
ok "[posix] the programs removed their /dev/shm files" ipc_gone -- $files

# ---- the same ring, the writer having opened its semaphores again by name ----
# (its mappings show sem.NAME, not glibc's unlinked temporary names)
new_group
shmname rf
RF=$SHM
shmname ru
RU=$SHM
ok "[posix-reopened] writer with a forked reader over /dev/shm/$RF" app rf posix --shm-name "$RF" --reopen-sems
ok "[posix-reopened] writer over /dev/shm/$RU" app rw posix --shm-name "$RU" --unrelated --role writer --reopen-sems
ok "[posix-reopened] an unrelated reader" app rr posix --shm-name "$RU" --unrelated --role reader
ok "[posix-reopened] ... ready" ready rf rw rr
files="$(shm_files "$RF") $(shm_files "$RU")"
cycle posix-reopened migrate 1 "-- $files" rf rw rr
cycle posix-reopened keep 2 "-- $files" rf rw rr
cycle posix-reopened leftover 3 "-- $files" rf rw rr
finish_ok rf
finish_ok rw
finish_ok rr

# ---- shared anonymous memory and a memfd: a parent and 3 children ----
new_group
diag "anon: group $G"
ok "[anon] parent + 3 children over MAP_SHARED|MAP_ANONYMOUS and a memfd" app an anon --children 3
ok "[anon] ... ready" ready an
ok "[anon] ... counting" advancing an
cycle anon migrate 1 "--" an
cycle anon keep 2 "--" an
finish_ok an

# ---- SysV message queue and semaphore values ----
new_group
key 2
diag "sysv-msg: group $G, key $K"
ok "[msg] a queue of 10 messages and 5 semaphores (1..5), key $K" app mq sysv-msg --key "$K"
ok "[msg] ... ready" ready mq
ok "[msg] ... rotating" advancing mq
cycle msg migrate 1 "$K --" mq
check "[msg] omdecode gen-1" "$OMDECODE" "$OM_STORE/groups/$G/gen-1"
# (not the tree's command line, which holds --key too)
tr '[:upper:]' '[:lower:]' <"$OUT" | grep -v -- --key >"$OUT.lc"
like "$OUT.lc" "sem.*${K#0x}|${K#0x}.*sem" "[msg] ... it shows the semaphore set (key $K)"
like "$OUT.lc" "(msg|queue).*${K#0x}|${K#0x}.*(msg|queue)" "[msg] ... and the message queue (key $K)"
like "$OUT" "1,2,3,4,[56]" "[msg] ... with the semaphore values 1,2,3,4,5|6"
cycle msg keep 2 "$K --" mq
cycle msg leftover 3 "$K --" mq
finish_ok mq
ok "[msg] the program removed its queue and semaphores" ipc_gone "$K"

# ================================================================ refusals ====

# refused LABEL PID... ["" COMM] : omckpt -g $G exits 5 naming every PID as
# "PID (COMM)" (COMM shmapp by default); the group runs on (NAMES in $RUN), no
# generation
refused() {
	local label=$1 p pids=() comm=shmapp
	shift
	while [ $# -gt 0 ] && [ -n "$1" ]; do pids+=("$1"); shift; done
	[ $# -gt 1 ] && comm=$2
	mapfile -t snapv < <(snap "${RUN[@]}")
	check_rc 5 "[$label] omckpt -g $G refuses with exit 5" "$OMCKPT" -g "$G"
	for p in "${pids[@]}"; do
		like "$ERR" "(^|[^0-9])$p \($comm\)" "[$label] ... the message names $p ($comm)"
	done
	ok "[$label] ... the group is thawed and runs on" continued_running "${snapv[@]}"
	ok "[$label] ... no generation is written" no_generation "$OM_STORE/groups/$G"
}

# ---- a segment also attached by a process outside the group ----
new_group
key 3
ok "[outsider-sysv] tree a in the group creates segment $K" app oa sysv --key "$K" --role a
ok "[outsider-sysv] ... ready" ready oa
outsider ob sysv --key "$K" --role b
track_pid "${WPID[ob]}"
ok "[outsider-sysv] an outsider (${WPID[ob]}) attaches it" ready ob
RUN=(oa ob)
refused outsider-sysv "${WPID[ob]}"
ok "[outsider-sysv] ... the segment is still there" test -n "$(ipc_id m "$K")"
finish_ok oa
finish_ok ob

# ---- a /dev/shm file mapped by a process outside the group ----
new_group
shmname po
PO=$SHM
ok "[outsider-posix] a writer in the group over /dev/shm/$PO" app ow posix --shm-name "$PO" --unrelated --role writer
outsider or posix --shm-name "$PO" --unrelated --role reader
track_pid "${WPID[or]}"
ok "[outsider-posix] ... and an outside reader (${WPID[or]}) mapping it are ready" ready ow or
RUN=(ow or)
refused outsider-posix "${WPID[or]}"
# shellcheck disable=SC2046
ok "[outsider-posix] ... the files are still there" not ipc_gone -- $(shm_files "$PO")
finish_ok ow
finish_ok or

# ---- a /dev/shm file only held open (no mapping) by a process outside the group ----
new_group
shmname ph
PH=$SHM
ok "[outsider-fd] a writer in the group over /dev/shm/$PH" app hw posix --shm-name "$PH" --reopen-sems
ok "[outsider-fd] ... ready" ready hw
setsid "$PY" -c 'import sys, time
f = open(sys.argv[1], "rb")
open(sys.argv[2], "w").close()
while True:
    time.sleep(0.1)' "/dev/shm/$PH" "$W/ph.ready" </dev/null >"$W/ph.log" 2>&1 &
ph_out=$!
track_pid "$ph_out"
for _ in $(seq 100); do [ -e "$W/ph.ready" ] && break; sleep 0.1; done
ok "[outsider-fd] an outsider ($ph_out) holds /dev/shm/$PH open" test -e "$W/ph.ready"
RUN=(hw)
refused outsider-fd "$ph_out" "" python3
ok "[outsider-fd] ... /dev/shm/$PH is still there" test -e "/dev/shm/$PH"
finish_ok hw
kill -9 "$ph_out" 2>/dev/null
reap "$ph_out"

# ---- shared anonymous memory of a member and its parent outside the group ----
new_group
outsider ap anon --children 1
ok "[outsider-anon] a parent outside the group with a child over shared anonymous memory and a memfd" ready ap
ap_child=$(children ap)
check "[outsider-anon] joingroup the child ($ap_child) alone" "$JOINGROUP" "$ap_child" "$G"
RUN=(ap)
refused outsider-anon "${WPID[ap]}"
finish_ok ap

# ---- a named semaphore created by an outsider, opened by a member ----
# glibc's sem_open creates /dev/shm/sem.XXXXXX, maps it, links it to
# sem.NAME and unlinks the temporary name: the creator's mapping shows as
# "/dev/shm/sem.XXXXXX (deleted)" while the file lives on as sem.NAME
shmname so
SO=$SHM
cat >"$W/semhold.py" <<'EOF2'
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.sem_open.restype = ctypes.c_void_p
flags = os.O_CREAT | os.O_EXCL if sys.argv[2] == "create" else 0
s = libc.sem_open(sys.argv[1].encode(), flags, 0o600, 1)
if not s or s == ctypes.c_void_p(-1).value:
    sys.exit("sem_open: " + os.strerror(ctypes.get_errno()))
open(sys.argv[3], "w").close()
while True:
    time.sleep(0.1)
EOF2
new_group
setsid "$PY" "$W/semhold.py" "/$SO" create "$W/so-create.ready" </dev/null >"$W/so-create.log" 2>&1 &
so_out=$!
track_pid "$so_out"
for _ in $(seq 100); do [ -e "$W/so-create.ready" ] && break; sleep 0.1; done
run "$OMRUN" -g "$G" -o "$W/so-open.log" -- "$PY" "$W/semhold.py" "/$SO" open "$W/so-open.ready"
so_in=$(head -n1 "$OUT" | tr -d '[:space:]')
track_pid "$so_in"
for _ in $(seq 100); do [ -e "$W/so-open.ready" ] && break; sleep 0.1; done
ok "[outsider-sem] an outsider ($so_out) created sem.$SO, a member ($so_in) opened it" \
	test -e "$W/so-create.ready" -a -e "$W/so-open.ready" -a -e "/dev/shm/sem.$SO"
check_rc 5 "[outsider-sem] omckpt -g $G refuses with exit 5" "$OMCKPT" -g "$G"
like "$ERR" "(^|[^0-9])$so_out \(" "[outsider-sem] ... the message names the outsider $so_out"
ok "[outsider-sem] ... both still run" eval "all_alive $so_out $so_in && not_stopped $so_out $so_in"
ok "[outsider-sem] ... sem.$SO is still on the node" test -e "/dev/shm/sem.$SO"
ok "[outsider-sem] ... no generation is written" no_generation "$OM_STORE/groups/$G"
kill -9 "$so_out" "$so_in" 2>/dev/null
reap "$so_out"

# ---- a memfd shared by two trees of the group ----
new_group
ok "[cross-memfd] tree a passes a memfd to tree b" app xa anon-cross --via memfd --role a --sock "$W/x.sock"
ok "[cross-memfd] tree b maps it" app xb anon-cross --via memfd --role b --sock "$W/x.sock"
ok "[cross-memfd] ... ready" ready xa xb
RUN=(xa xb)
refused cross-memfd "${WPID[xa]}" "${WPID[xb]}"
finish_ok xa
finish_ok xb

# ---- MAP_SHARED|MAP_ANONYMOUS memory shared by two trees of the group ----
new_group
run setsid "$SHMAPP" anon-cross --via anon --dir "$W" --name xv
is "$RC" 0 "[cross-anon] a launcher forks two session leaders sharing anonymous memory"
for i in 0 1; do
	WPID[xv-$i]=$(status_field "xv-$i" pid)
	track_pid "${WPID[xv-$i]}"
done
ok "[cross-anon] ... both ready" ready xv-0 xv-1
check "[cross-anon] joingroup each as a tree of its own" "$JOINGROUP" "${WPID[xv-0]}" "${WPID[xv-1]}" "$G"
RUN=(xv-0 xv-1)
refused cross-anon "${WPID[xv-0]}" "${WPID[xv-1]}"
finish_ok xv-0
finish_ok xv-1

# ======================================================= restore refused ====

new_group
key 4
ok "[busy] two trees over segment $K" eval "app ea sysv --key $K --role a && ready ea && app eb sysv --key $K --role b && ready eb"
mapfile -t epids < <(pids_of ea eb | grep .)
eid=$(ipc_id m "$K")

# busy WHAT : migrate $G, put a foreign segment on the node that takes the
# group's key (WHAT=key) or its segment's id (WHAT=id); omrestore must exit 6
# and succeed once the foreign segment is gone
busy() {
	local what=$1 esnap fid
	esnap=$(snap ea eb)
	check "[busy-$what] omckpt -g $G" "$OMCKPT" -g "$G" || return 1
	remove_ipc "$K"
	ok "[busy-$what] ... the pids are free" pids_free 15 "${epids[@]}"
	if [ "$what" = key ]; then
		fid=$(mkseg "$K")
		_FOREIGN+=("$fid")
		ok "[busy-$what] a foreign segment ($fid) now holds key $K" test -n "$(ipc_id m "$K")"
	else
		fid=$(mkseg 0 "$eid")
		_FOREIGN+=("$fid")
		is "$fid" "$eid" "[busy-$what] a foreign private segment takes id $eid"
	fi
	check_rc 6 "[busy-$what] omrestore refuses with exit 6" "$OMRESTORE" -g "$G"
	tr '[:upper:]' '[:lower:]' <"$ERR" >"$ERR.lc"
	if [ "$what" = key ]; then
		like "$ERR.lc" "${K#0x}|$((K))" "[busy-$what] ... the message names the key"
	else
		like "$ERR" "(^|[^0-9])$eid([^0-9]|\$)" "[busy-$what] ... the message names the id $eid"
	fi
	ok "[busy-$what] ... nothing is restored" all_gone 2 "${epids[@]}"
	is "$(ipc_id m "$K")" "$([ "$what" = key ] && echo "$fid")" "[busy-$what] ... the foreign segment is untouched"
	ipcrm -m "$fid"
	check "[busy-$what] omrestore succeeds once it is removed" "$OMRESTORE" -g "$G" || return 1
	# shellcheck disable=SC2086
	ok "[busy-$what] ... the trees carry on" continued_restored $esnap
	is "$(ipc_id m "$K")" "$eid" "[busy-$what] ... with the segment's id"
}
busy key
busy id
finish_ok ea
finish_ok eb

# ================================== the checks are not blind (no shmig) ====
key 5
outsider da sysv --key "$K" --role a
outsider db sysv --key "$K" --role b
ok "[sanity] a pair of sysv programs" ready da db
damage "$K" 777
ok "[sanity] a word flipped in their segment: they say FAIL" not finish da
like "$W/da.result" "pattern word 777 differs" "[sanity] ... naming the word"
finish db >/dev/null 2>&1

done_testing
