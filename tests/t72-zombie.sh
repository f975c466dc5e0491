#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t72-zombie.sh — a process tree holding an unreaped zombie child (a zombie is
# in no cgroup) is checkpointed and restored whole: CRIU restores the zombie,
# and its parent reaps it afterwards with the exit status it had. As a group
# (omckpt -g), as one tree of a group (-p) and as a tree in no group (-p);
# both backends. The helper is tests/zdtm/zombie.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 7200

ZOMBIE=${OM_ZOMBIE:-$OM_BUILDDIR/tests/zdtm/zombie}
if [ ! -x "$ZOMBIE" ]; then
	echo "Bail out! $ZOMBIE is missing: make check builds it"
	exit 1
fi

declare -A ZP=()

# zready NAME : the helper wrote its first status (its signal handlers are set)
zready() {
	for _ in $(seq 200); do
		[ -s "$W/$1.status" ] && return 0
		sleep 0.05
	done
	diag "helper $1 not ready after 10 s"
	return 1
}
# zstart NAME : omrun the helper in $G
zstart() {
	local out
	rm -f "$W/$1.status"
	out=$(timeout -k 5 "$OM_TIMEOUT" "$OMRUN" -g "$G" -- "$ZOMBIE" --dir "$W" --name "$1" 2>"$W/$1.omrun.err") || return 1
	ZP[$1]=$out
	track_pid "$out"
	zready "$1"
}
# zstart_plain NAME : the helper in no group, in its own session
zstart_plain() {
	rm -f "$W/$1.status"
	setsid "$ZOMBIE" --dir "$W" --name "$1" </dev/null >/dev/null 2>&1 &
	ZP[$1]=$!
	track_pid "$!"
	zready "$1"
}
# zfield NAME FIELD : ask the helper for its status (SIGUSR1) and read FIELD
zfield() {
	local f=$W/$1.status v
	rm -f "$f"
	kill -USR1 "${ZP[$1]}" 2>/dev/null || return 1
	for _ in $(seq 100); do
		if [ -s "$f" ]; then
			v=$(grep -o "$2=[0-9]*" "$f")
			echo "${v#*=}"
			return 0
		fi
		sleep 0.02
	done
	return 1
}
# has_zombie NAME : the helper's child is a zombie whose parent is the helper
has_zombie() {
	local z
	z=$(zfield "$1" zombie) || return 1
	[ "$(proc_state "$z")" = Z ] || { diag "child $z of $1 is in state '$(proc_state "$z")'"; return 1; }
	[ "$(awk '{print $4}' "/proc/$z/stat")" = "${ZP[$1]}" ] || { diag "child $z: parent is not ${ZP[$1]}"; return 1; }
}
# zadvancing NAME : its counter grows
zadvancing() {
	local a b
	a=$(zfield "$1" counter) || return 1
	sleep 0.5
	b=$(zfield "$1" counter) || return 1
	[ "$b" -gt "$a" ] || { diag "counter of $1 stuck at $a -> $b"; return 1; }
}
# zfinish NAME : SIGTERM; it must reap its zombie (exit status 7) and write PASS
zfinish() {
	local r=$W/$1.result
	kill -TERM "${ZP[$1]}"
	for _ in $(seq 100); do
		[ -e "$r" ] && break
		sleep 0.05
	done
	[ "$(cat "$r" 2>/dev/null)" = PASS ] || { diag "$1: $(cat "$r" 2>/dev/null || echo no result)"; return 1; }
}
# zpids NAME : the helper and its zombie
zpids() { echo "${ZP[$1]} $(zfield "$1" zombie)"; }

for cg in v2 v1; do
	have_backend $cg || { skip "[$cg] backend" "not available here"; continue; }
	export OM_CGROUP=$cg
	new_group
	diag "backend $cg, group $G"
	ok "[$cg] omrun the zombie-holding helper z in $G" zstart z
	ok "[$cg] ... it holds an unreaped zombie child" has_zombie z
	ok "[$cg] omrun a second one, y" zstart y
	ok "[$cg] ... y holds one too" has_zombie y
	zp=$(zpids z)
	yp=$(zpids y)

	# the whole group, migration
	check "[$cg] omckpt -g $G of trees holding zombies" "$OMCKPT" -g "$G"
	unlike_in_miggroup() { ! grep -q "is in miggroup" "$ERR"; }
	ok "[$cg] ... no 'is in miggroup' refusal" unlike_in_miggroup
	# shellcheck disable=SC2086
	ok "[$cg] ... the group is stopped" all_gone 10 ${zp%% *} ${yp%% *}
	# shellcheck disable=SC2086
	pids_free 15 $zp $yp
	check "[$cg] omrestore -g $G" "$OMRESTORE" -g "$G"
	ok "[$cg] ... z runs on" zadvancing z
	ok "[$cg] ... with its zombie child restored" has_zombie z
	ok "[$cg] ... y too" has_zombie y
	is "$(zpids z)" "$zp" "[$cg] ... same PIDs for z and its zombie"

	# one tree of the group by PID
	check "[$cg] omckpt -p (root of z) in $G" "$OMCKPT" -p "${ZP[z]}"
	# shellcheck disable=SC2086
	pids_free 15 $zp
	check "[$cg] omrestore -p (root of z)" "$OMRESTORE" -p "${ZP[z]}"
	ok "[$cg] ... z runs on" zadvancing z
	ok "[$cg] ... with its zombie" has_zombie z
	ok "[$cg] ... back in $G" in_cgroup "${ZP[z]}"
	ok "[$cg] z reaps its zombie with the right status" zfinish z
	ok "[$cg] y reaps its zombie with the right status" zfinish y

	# a tree in no group
	ok "[$cg] start a helper in no group" zstart_plain n
	ok "[$cg] ... it holds a zombie" has_zombie n
	np=$(zpids n)
	check "[$cg] omckpt -p of a tree in no group holding a zombie" "$OMCKPT" -p "${ZP[n]}"
	# shellcheck disable=SC2086
	ok "[$cg] ... it is stopped" all_gone 10 ${np%% *}
	reap "${ZP[n]}"
	# shellcheck disable=SC2086
	pids_free 15 $np
	check "[$cg] omrestore -p of it" "$OMRESTORE" -p "${ZP[n]}"
	ok "[$cg] ... runs on with its zombie" has_zombie n
	ok "[$cg] ... and reaps it with the right status" zfinish n
done

done_testing
