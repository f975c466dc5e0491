#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a20-pypool.sh — a Python multiprocessing application (a Pool of 3 workers,
# plus a Process fed over a Queue and answering over a Pipe, see pypool.py)
# in a miggroup: migration, then --leave-running, kill and restore of that
# generation. The application checks every result itself; at the end the
# test checks its round count and total against the sums it computes.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 12000
need_cmd python3

export OM_CGROUP=v2
new_group
ST=$W/pool.status
RES=$W/pool.result

rounds() { last_field "$ST" rounds; }
# advancing_rounds : more rounds within 10 s, and no FAIL
advancing_rounds() {
	local a b end=$((SECONDS + 10))
	a=$(rounds)
	while [ $SECONDS -lt $end ]; do
		sleep 0.2
		grep -q FAIL "$ST" 2>/dev/null && break
		b=$(rounds)
		[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] && return 0
	done
	diag "status: $(tail -n 3 "$ST" 2>/dev/null)"
	return 1
}
# expected_total N : the sum the application must have reached after N rounds
expected_total() {
	python3 -c "print(sum(x * x + r for r in range(1, $1 + 1) for x in range(200)))"
}
nprocs() { members | wc -l; }

ok "the pool application started in group $G" omrun_app pool python3 "$APPS_DIR/pypool.py" "$ST" "$RES"
pid=${APID[pool]}
ok "... it runs rounds" wait_until 30 test -s "$ST"
ok "... and advances" advancing_rounds
n=$(nprocs)
ok "... 5 processes in the group (main, 3 pool workers, the queue worker; $n)" test "$n" -ge 5
pids=$(members | tr '\n' ' ')

timed "$OMCKPT" -g "$G"
tc=$T_SECS
ok "omckpt -g $G (migration)" test "$RC" -eq 0 || diag_file "$ERR"
at=$(rounds)
# shellcheck disable=SC2086
ok "... all its processes are gone" pids_free 20 $pids
timed "$OMRESTORE" -g "$G"
tr=$T_SECS
ok "omrestore -g $G" test "$RC" -eq 0 || diag_file "$ERR"
ckpt_restore_figures pypool "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
is "$(members | tr '\n' ' ')" "$pids" "... the same processes are back"
ok "... rounds go on, every result checked" advancing_rounds
ok "... from where they were (round > $at)" test "$(rounds)" -gt "$at"

check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
ok "... it keeps running" advancing_rounds
ok "the group killed" kill_group
check "omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2
ok "... rounds go on from generation 2" advancing_rounds

kill -TERM "$pid"
ok "the application ends at SIGTERM with a result" wait_until 30 test -s "$RES"
like "$RES" '^rounds=[0-9]+ total=[0-9]+ PASS$' "... PASS"
n=$(grep -o 'rounds=[0-9]*' "$RES" | cut -d= -f2)
is "$(grep -o 'total=[0-9]*' "$RES" | cut -d= -f2)" "$(expected_total "${n:-0}")" "... its total over $n rounds is right"
# shellcheck disable=SC2086
ok "... every process exits" pids_free 20 $pids
done_testing
