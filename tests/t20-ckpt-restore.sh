#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t20-ckpt-restore.sh — the main scenario: checkpoint a miggroup of four
# process trees, restore it with the same pids, check the workers continued
# (each saw its own restore; not restarted), a second --leave-running cycle,
# restore of an older generation, and omckpt/omrestore -p of a lone process;
# on both backends. And that the continuity check fails when it should: for
# a worker restored from an older image and for one started afresh.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 2000

# json_trees FILE : number of entries of the first "trees" list in a JSON document.
json_trees() {
	python3 - "$1" <<'EOF'
import json, sys
def find(o):
    if isinstance(o, dict):
        if isinstance(o.get("trees"), list):
            return o["trees"]
        for v in o.values():
            r = find(v)
            if r is not None:
                return r
    elif isinstance(o, list):
        for v in o:
            r = find(v)
            if r is not None:
                return r
    return None
t = find(json.load(open(sys.argv[1])))
print(-1 if t is None else len(t))
EOF
}

# counters_above NAME=VALUE... : every named worker's counter is > VALUE.
counters_above() {
	local kv name want now bad=
	for kv in "$@"; do
		name=${kv%%=*}
		want=${kv#*=}
		now=$(counter "$name")
		if [ -z "$now" ] || [ "$now" -le "$want" ]; then
			bad="$bad $name:$want->${now:-?}"
		fi
	done
	[ -z "$bad" ] && return 0
	diag "counters not above the recorded values:$bad"
	return 1
}

# listed_by_showgroup PID... : showgroup $G lists every PID.
listed_by_showgroup() {
	local m p bad=
	m=" $(members | tr '\n' ' ') "
	for p in "$@"; do
		[[ $m == *" $p "* ]] || bad="$bad $p"
	done
	[ -z "$bad" ] && return 0
	diag "showgroup $G misses:$bad (lists:$m)"
	return 1
}

# restored_lines FILE PID... : omrestore printed a line for every PID.
restored_lines() {
	local f=$1 p bad=
	shift
	for p in "$@"; do
		grep -Eq "^$p with commandline .* restored in group $G \(state [A-Za-z]\)\$" "$f" || bad="$bad $p"
	done
	[ -z "$bad" ] && return 0
	diag "omrestore printed no line for:$bad"
	diag_file "$f"
	return 1
}

for cg in v2 v1; do
	export OM_CGROUP=$cg
	if ! have_backend "$cg"; then
		skip "backend $cg" "cgroup $cg hierarchy not mounted"
		continue
	fi
	new_group
	diag "backend $cg, group $G"
	a=a$cg b=b$cg c=c$cg p=p$cg
	gdir=$OM_STORE/groups/$G

	ok "[$cg] omrun worker $a" start_worker "$a" --mem 64 --children 1
	ok "[$cg] omrun worker $b (3 threads)" start_worker "$b" --mem 64 --children 2 --threads 3
	ok "[$cg] omrun worker $c" start_worker "$c" --mem 64 --children 1
	start_plain_worker "$p" --mem 32 --children 1
	ok "[$cg] all workers ready" eval "wait_ready $a && wait_ready $b && wait_ready $c && wait_ready $p"
	check "[$cg] joingroup the script's own worker ${WPID[$p]}" "$JOINGROUP" "${WPID[$p]}" "$G"
	mapfile -t all < <(pids_of "$a" "$b" "$c" "$p")
	is "${#all[@]}" 9 "[$cg] 4 workers with 5 children in all"
	ok "[$cg] showgroup lists all 9 processes" listed_by_showgroup "${all[@]}"

	# ---- cycle 1: checkpoint (kills) and restore ----
	mapfile -t c1 < <(snap "$a" "$b" "$c" "$p")
	check "[$cg] omckpt -g $G" "$OMCKPT" -g "$G"
	like "$OUT" "^group $G: generation 1 written to .*\(4 trees, 9 processes, raw [0-9.]+ MiB, stored [0-9.]+ MiB, [0-9.]+ s[^)]*\)" \
		"[$cg] omckpt reports generation 1 with 4 trees and 9 processes"
	ok "[$cg] all processes are gone after the checkpoint" all_gone 5 "${all[@]}"
	reap "${WPID[$p]}"
	ok "[$cg] generation gen-1 exists with a manifest" test -f "$gdir/gen-1/manifest.om"
	is "$(find "$gdir/gen-1" -maxdepth 1 -type d -name 'tree-*' 2>/dev/null | wc -l)" 4 \
		"[$cg] gen-1 has one tree-<root> directory per tree"
	check "[$cg] omdecode gen-1" "$OMDECODE" "$gdir/gen-1"
	dec=$OUT
	for n in "$a" "$b" "$c" "$p"; do
		like "$dec" "(^|[^0-9])${WPID[$n]}([^0-9]|\$)" "[$cg] omdecode mentions root ${WPID[$n]}"
	done
	check "[$cg] omdecode --json gen-1" "$OMDECODE" --json "$gdir/gen-1"
	is "$(json_trees "$OUT" 2>&1)" 4 "[$cg] omdecode --json shows 4 trees"
	check "[$cg] omdecode --verify gen-1" "$OMDECODE" --verify "$gdir/gen-1"

	ok "[$cg] the pids are free again" pids_free 15 "${all[@]}"
	check "[$cg] omrestore -g $G" "$OMRESTORE" -g "$G"
	ok "[$cg] omrestore prints a line per restored process" restored_lines "$OUT" "${all[@]}"
	ok "[$cg] every original pid is alive again" all_alive "${all[@]}"
	ok "[$cg] showgroup lists all restored processes" listed_by_showgroup "${all[@]}"
	bad=
	for pid in "${all[@]}"; do in_cgroup "$pid" || bad="$bad $pid"; done
	is "$bad" "" "[$cg] every restored pid is in the group's cgroup"
	ok "[$cg] every worker saw its own restore and continued from its counter" continued_restored "${c1[@]}"

	# ---- cycle 2: --leave-running, kill, restore generation 2 ----
	mapfile -t c2 < <(snap "$a" "$b" "$c" "$p")
	check "[$cg] omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
	like "$OUT" "^group $G: generation 2 written to " "[$cg] omckpt reports generation 2"
	ok "[$cg] gen-2 exists" test -f "$gdir/gen-2/manifest.om"
	ok "[$cg] processes keep running after --leave-running" all_alive "${all[@]}"
	ok "[$cg] counters advance after --leave-running, no worker saw a restore" continued_running "${c2[@]}"
	ok "[$cg] no process is left frozen" eval "advancing $a && advancing $b 0.5 && advancing $c 0.5 && advancing $p 0.5"

	mapfile -t mem < <(members)
	# shellcheck disable=SC2046
	kill -9 "${all[@]}" $(printf '%s\n' "${mem[@]}") 2>/dev/null
	ok "[$cg] kill -9 of all members" all_gone 5 "${all[@]}"
	reap
	ok "[$cg] the pids are free again" pids_free 15 "${all[@]}"
	check "[$cg] omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2
	ok "[$cg] every pid is back from generation 2" all_alive "${all[@]}"
	ok "[$cg] showgroup lists them again" listed_by_showgroup "${all[@]}"
	ok "[$cg] every worker saw its restore from generation 2 and continued from there" continued_restored "${c2[@]}"
	for n in "$a" "$b" "$c" "$p"; do
		finish_ok "$n"
	done
	ok "[$cg] no worker process is left" all_gone 5 "${all[@]}"
done

# ---- omckpt -p / omrestore -p of a lone process (no group) ----
export OM_CGROUP=v2
start_plain_worker lone --mem 16 --children 1 --threads 2
ok "lone worker ready" wait_ready lone
lp=${WPID[lone]}
mapfile -t lall < <(pids_of lone)
lc=$(snap lone)
check "omckpt -p $lp" "$OMCKPT" -p "$lp"
ok "a generation under \$OM_STORE/pids/$lp/" test -f "$OM_STORE/pids/$lp/gen-1/manifest.om"
ok "lone worker gone after omckpt -p" all_gone 5 "${lall[@]}"
reap "$lp"
ok "lone worker's pids are free" pids_free 15 "${lall[@]}"
check "omrestore -p $lp" "$OMRESTORE" -p "$lp"
ok "lone worker alive again with the same pids" all_alive "${lall[@]}"
ok "lone worker saw its restore and continued" continued_restored "$lc"

# ---- the continuity check can fail: an older image, a fresh start ----
lc=$(snap lone)
check "omckpt --leave-running -p $lp (generation 2)" "$OMCKPT" --leave-running -p "$lp"
ok "lone worker runs on" continued_running "$lc"
lc=$(snap lone)
kill -9 "${lall[@]}" 2>/dev/null
ok "lone worker killed" all_gone 5 "${lall[@]}"
reap "$lp"
ok "lone worker's pids are free" pids_free 15 "${lall[@]}"
check "omrestore -p $lp --generation 1 (older than the snapshot)" "$OMRESTORE" -p "$lp" --generation 1
ok "lone worker alive again" all_alive "${lall[@]}"
ok "continued_restored fails for a worker restored from an older image" not continued_restored "$lc"
finish_ok lone

# a worker started again instead of restored: its counter soon passes the
# recorded value (a counter comparison alone would pass), but it never lived
# through a restore
start_plain_worker fresh --mem 8 --children 1
ok "fresh worker ready" wait_ready fresh
sleep 1
fc=$(snap fresh)
mapfile -t fall < <(pids_of fresh)
kill -9 "${fall[@]}" 2>/dev/null
ok "fresh worker killed" all_gone 5 "${fall[@]}"
reap "${WPID[fresh]}"
start_plain_worker fresh --mem 8 --children 1
ok "... and started again" wait_ready fresh
fcount=${fc#*=}
fcount=${fcount%%:*}
end=$((SECONDS + 20))
while [ "$(counter fresh)" -le "$fcount" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
ok "its counter passed the recorded $fcount (a counter comparison alone is fooled)" counters_above "fresh=$fcount"
ok "continued_restored fails for it" not continued_restored "$fc"
finish_ok fresh

done_testing
