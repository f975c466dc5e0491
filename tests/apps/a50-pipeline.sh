#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a50-pipeline.sh — a shell pipeline of several processes,
#   bash -c 'producer | gzip -1 | consumer'
# as one process tree of a miggroup (bash and its three children, the data in
# flight in two pipes and in gzip's and the consumer's memory): migration,
# then --leave-running, kill and restore of that generation. The consumer
# checks every line as it comes; at the end its output (line count and
# SHA-256 of the whole text) must be that of the producer alone.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 15000
need_cmd python3 gzip bash

N=30000
P=$APPS_DIR/pipeline.py
export OM_CGROUP=v2
new_group
ST=$W/consumer.status
OUTF=$W/pipeline.out

lines() { last_field "$ST" lines; }
flowing() {
	local a b end=$((SECONDS + 10))
	a=$(lines)
	while [ $SECONDS -lt $end ]; do
		sleep 0.2
		grep -q FAIL "$ST" 2>/dev/null && break
		b=$(lines)
		if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]; then return 0; fi
	done
	diag "consumer: $(tail -n 3 "$ST" 2>/dev/null)"
	return 1
}
nprocs() { members | wc -l; }

want="lines=$N sha256=$(python3 "$P" produce $N --fast | sha256sum | cut -d' ' -f1)"
GATE=$W/gate # the producer sends its last 1000 lines once this exists
ok "the pipeline started in group $G" omrun_app pipe bash -c \
	"python3 '$P' produce $N '$GATE' | gzip -1 | python3 '$P' consume '$OUTF' '$ST'"
ok "... data flows" eval "wait_until 20 test -s '$ST' && flowing"
is "$(nprocs)" 4 "... bash and its three children are in the group"
pids=$(members | tr '\n' ' ')

timed "$OMCKPT" -g "$G"
tc=$T_SECS
ok "omckpt -g $G (migration)" test "$RC" -eq 0 || diag_file "$ERR"
# shellcheck disable=SC2086
ok "... the pipeline is gone" pids_free 20 $pids
at=$(lines)
timed "$OMRESTORE" -g "$G"
tr=$T_SECS
ok "omrestore -g $G" test "$RC" -eq 0 || diag_file "$ERR"
rm -f "$ST"
wait_until 10 test -s "$ST"
ckpt_restore_figures pipeline "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
is "$(members | tr '\n' ' ')" "$pids" "... the same four processes are back"
ok "... data flows again, every line checked" flowing
ok "... from line $at on" test "$(lines)" -gt "$at"

check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
ok "... it flows on" flowing
ok "the group killed" kill_group
ok "... it had not finished" not test -e "$OUTF"
check "omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2
rm -f "$ST" # the killed run's
ok "... data flows from generation 2" eval "wait_until 10 test -s '$ST' && flowing"
: >"$GATE"

ok "the pipeline runs to its end" wait_until 90 grep -q "done" "$ST"
# shellcheck disable=SC2086
ok "... and exits" pids_free 20 $pids
is "$(cat "$OUTF" 2>/dev/null)" "$want" "its output: $N lines, the producer's SHA-256"
done_testing
