#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t10-miggroup.sh — miggroup basics (omrun, joingroup, showgroup, resetgroup)
# on both cgroup backends.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 1000

# member_of PID : showgroup $G lists PID.
member_of() {
	members | grep -qx -- "$1"
}

for cg in v2 v1; do
	export OM_CGROUP=$cg
	if ! have_backend "$cg"; then
		skip "backend $cg" "cgroup $cg hierarchy not mounted"
		continue
	fi
	new_group
	diag "backend $cg, group $G"

	# ---- omrun + showgroup ----
	ok "[$cg] omrun starts a worker in group $G" start_worker "w$cg" --mem 8 --children 2
	ok "[$cg] worker ready" wait_ready "w$cg"
	wp=${WPID[w$cg]}
	read -r -a kids <<<"$(children "w$cg")"
	is "${#kids[@]}" 2 "[$cg] worker has 2 children"

	check "[$cg] showgroup $G" "$SHOWGROUP" "$G"
	sg=$OUT
	for p in "$wp" "${kids[@]}"; do
		like "$sg" "^$p with commandline .*worker.* belongs to $G\$" "[$cg] showgroup lists $p in seed format"
	done
	ok "[$cg] showgroup output is sorted by pid" cmp -s <(awk '{print $1}' "$sg") <(awk '{print $1}' "$sg" | sort -n)

	check "[$cg] showgroup --json $G" "$SHOWGROUP" --json "$G"
	js=$OUT
	ok "[$cg] showgroup --json is valid JSON" python3 -c 'import json,sys; json.load(sys.stdin)' <"$js"
	jpids=$(python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["group"] == int(sys.argv[1]), "group %r" % d["group"]
print(" ".join(str(m["pid"]) for t in d["trees"] for m in t["members"]))
' "$G" <"$js" 2>&1)
	for p in "$wp" "${kids[@]}"; do
		like " $jpids " " $p " "[$cg] JSON lists $p"
	done
	like "$(python3 -c 'import json,sys; print(" ".join(str(t["root"]) for t in json.load(sys.stdin)["trees"]))' <"$js" 2>&1)" \
		"(^| )$wp( |\$)" "[$cg] JSON has a tree rooted at the worker"

	for p in "$wp" "${kids[@]}"; do
		ok "[$cg] pid $p is in $(cg_root "$cg")/omtools/g$G" in_cgroup "$p"
	done

	# ---- joingroup of processes the script started ----
	sleep 1000 &
	s1=$!
	bash -c 'trap "sleep 1001 &" USR1; sleep 1000 & while :; do wait; done' &
	b=$!
	track_pid "$s1" "$b"
	bc=
	for _ in $(seq 50); do
		bc=$(pgrep -P "$b" -x sleep | head -n1)
		[ -n "$bc" ] && break
		sleep 0.1
	done
	track_pid "$bc"

	check "[$cg] joingroup $s1 $b $G" "$JOINGROUP" "$s1" "$b" "$G"
	like "$OUT" "^miggroup = $G\$" "[$cg] joingroup prints the group"
	like "$OUT" "^processes = $s1 $b\$" "[$cg] joingroup prints the processes"
	like "$OUT" "^process $s1 joins the miggroup $G now\$" "[$cg] joingroup announces $s1"
	like "$OUT" "^process $b joins the miggroup $G now\$" "[$cg] joingroup announces $b"
	ok "[$cg] $s1 is a member" member_of "$s1"
	ok "[$cg] $b is a member" member_of "$b"
	ok "[$cg] existing child $bc of $b is a member" member_of "$bc"
	ok "[$cg] $s1 is in the cgroup" in_cgroup "$s1"
	ok "[$cg] $bc is in the cgroup" in_cgroup "$bc"

	kill -USR1 "$b"
	nc=
	for _ in $(seq 50); do
		nc=$(pgrep -P "$b" -f '^sleep 1001$' | head -n1)
		[ -n "$nc" ] && break
		sleep 0.1
	done
	track_pid "$nc"
	ok "[$cg] $b forked a new child after joining" test -n "$nc"
	ok "[$cg] the new child $nc is a member" member_of "$nc"
	ok "[$cg] the new child $nc is in the cgroup" in_cgroup "$nc"

	# ---- joingroup PID 0 takes a process out ----
	sleep 1000 &
	s2=$!
	track_pid "$s2"
	check "[$cg] joingroup $s2 $G" "$JOINGROUP" "$s2" "$G"
	ok "[$cg] $s2 is a member" member_of "$s2"
	check "[$cg] joingroup $s2 0" "$JOINGROUP" "$s2" 0
	ok "[$cg] $s2 is no member any more" not member_of "$s2"

	# ---- resetgroup ----
	check "[$cg] resetgroup $G" "$RESETGROUP" "$G"
	for p in "$wp" "${kids[@]}" "$s1" "$b" "$bc"; do
		like "$OUT" "^reset $p\$" "[$cg] resetgroup resets $p"
	done
	check_rc 3 "[$cg] showgroup of the reset group exits 3" "$SHOWGROUP" "$G"
	ok "[$cg] ... and prints nothing on stdout" test ! -s "$OUT"
	ok "[$cg] $wp left the cgroup" not in_cgroup "$wp"
	ok "[$cg] $s1 left the cgroup" not in_cgroup "$s1"
	ok "[$cg] reset processes keep running" all_alive "$wp" "${kids[@]}" "$s1" "$b" "$bc"
	finish_ok "w$cg"

	kill -9 "$s1" "$s2" "$b" "$bc" "$nc" 2>/dev/null
	reap "$s1" "$s2" "$b"

	# ---- members go back to the cgroup they came from ----
	home=$(cg_root)/omtest-$$-$cg
	mkdir -p "$home"
	sleep 1000 &
	s4=$!
	track_pid "$s4"
	echo "$s4" >"$home/cgroup.procs"
	check "[$cg] joingroup $s4 (from cgroup $(basename "$home")) $G" "$JOINGROUP" "$s4" "$G"
	ok "[$cg] ... it is in the group" in_cgroup "$s4"
	check "[$cg] resetgroup $G" "$RESETGROUP" "$G"
	ok "[$cg] ... $s4 is back in its own cgroup" grep -qx "$s4" "$home/cgroup.procs"
	check "[$cg] joingroup $s4 $G again" "$JOINGROUP" "$s4" "$G"
	check "[$cg] joingroup $s4 0" "$JOINGROUP" "$s4" 0
	ok "[$cg] ... back in its own cgroup again" grep -qx "$s4" "$home/cgroup.procs"
	kill -9 "$s4" 2>/dev/null
	reap "$s4"
	rmdir "$home" 2>/dev/null

	# ---- errors ----
	sleep 1000 &
	s3=$!
	track_pid "$s3"
	np=$(free_pid)
	check_rc 3 "[$cg] joingroup of a nonexistent pid exits 3" "$JOINGROUP" "$np" "$G"
	like "$ERR" "$np" "[$cg] ... and names pid $np on stderr"
	check_rc 2 "[$cg] joingroup with a non-numeric group exits 2" "$JOINGROUP" "$s3" abc
	check_rc 2 "[$cg] joingroup with a negative group exits 2" "$JOINGROUP" "$s3" -5
	check_rc 2 "[$cg] showgroup 0 exits 2" "$SHOWGROUP" 0
	check_rc 2 "[$cg] joingroup of PID 1 exits 2" "$JOINGROUP" 1 "$G"
	kp=$("$OMRUN" -g "$G" -- sleep 1000)
	track_pid "$kp"
	keeper=$(ps -o ppid= -p "$kp" | tr -d ' ')
	check_rc 2 "[$cg] joingroup of omrun's keeper ($keeper) exits 2" "$JOINGROUP" "$keeper" "$((G + 1))"
	like "$ERR" "keeper" "[$cg] ... and says it is a keeper"
	kill -9 "$kp" 2>/dev/null
	kill -9 "$s3" 2>/dev/null
	reap "$s3"
done

done_testing
