#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a40-sqlite.sh — a SQLite database written in WAL mode by one process
# (sqlwriter.py, one transaction per row, its -wal and -shm files open and
# mapped) in a miggroup: migration, then --leave-running, kill and restore of
# that generation. The sqlite3 client counts the rows and runs
# PRAGMA integrity_check after each restore and at the end.
#
# CRIU does not snapshot files: a restore needs the files as they were at the
# checkpoint (it refuses a file whose size changed). A migration leaves them
# so; for the periodic checkpoint the writer pauses (SIGUSR1), the database
# files are copied with the generation, and put back before the restore —
# what an administrator does with a filesystem snapshot.
#
# No other SQLite connection opens the database while a restored writer runs:
# CRIU restores the writer's POSIX locks on the -shm file, then drops them by
# closing the descriptor it opened to map that file; a second connection then
# believes it is alone, resets the -shm index and the writer dies of SIGBUS
# (see "WHAT CAN BE CHECKPOINTED" in man omtools). The client checks run when
# the writer has closed the database.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 14000
need_cmd python3 sqlite3

export OM_CGROUP=v2
new_group
D=$W/db
mkdir -p "$D"
DB=$D/app.db
ST=$W/writer.status

rows() { last_field "$ST" rows; }
state_is() { last_line "$ST" | grep -q " $1\$"; }
writing() {
	local a b end=$((SECONDS + 10))
	a=$(rows)
	while [ $SECONDS -lt $end ]; do
		sleep 0.2
		b=$(rows)
		if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] && state_is ok; then return 0; fi
	done
	diag "writer: $(tail -n 3 "$ST" 2>/dev/null)"
	return 1
}
sql() { sqlite3 -batch "$DB" "$@"; }
# db_ok MIN : the client reads at least MIN rows, each row as written, ids 1..N, integrity ok
db_ok() {
	local n max bad integ
	n=$(sql "SELECT count(*) FROM t") || return 1
	max=$(sql "SELECT coalesce(max(id), 0) FROM t")
	bad=$(sql "SELECT count(*) FROM t WHERE v != 'row-' || id")
	integ=$(sql "PRAGMA integrity_check")
	if [ "$n" -ge "$1" ] && [ "$n" = "$max" ] && [ "$bad" = 0 ] && [ "$integ" = ok ]; then return 0; fi
	diag "rows $n (want >= $1), max id $max, bad rows $bad, integrity_check: $integ"
	return 1
}

ok "the writer started in group $G" omrun_app writer python3 -X faulthandler "$APPS_DIR/sqlwriter.py" "$DB" "$ST"
pid=${APID[writer]}
ok "... it writes" wait_until 20 test -s "$ST"
ok "... and goes on" writing
is "$(sql 'PRAGMA journal_mode')" wal "the database is in WAL mode"
ok "... the -wal and -shm files are open in the writer" eval "ls -l /proc/$pid/fd | grep -q 'app.db-wal' && ls -l /proc/$pid/fd | grep -q 'app.db-shm'"

timed "$OMCKPT" -g "$G"
tc=$T_SECS
ok "omckpt -g $G (migration)" test "$RC" -eq 0 || diag_file "$ERR"
ok "... the writer is gone" pids_free 20 "$pid"
at=$(rows)
timed "$OMRESTORE" -g "$G"
tr=$T_SECS
ok "omrestore -g $G" test "$RC" -eq 0 || diag_file "$ERR"
ckpt_restore_figures sqlite "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
ok "... the writer goes on, committing to the WAL it had open" writing
ok "... past row $at" test "$(rows)" -gt "$at"
kill -TERM "$pid"
ok "the writer closes the database at SIGTERM" wait_until 20 state_is "done"
ok "... and exits" pids_free 20 "$pid"
n=$(rows)
is "$(sql 'SELECT count(*) FROM t')" "$n" "sqlite3 counts the $n rows the writer wrote"
is "$(sql 'PRAGMA integrity_check')" ok "PRAGMA integrity_check: ok"
ok "every row as written, ids 1..$n" db_ok "$n"

# ---- periodic, with a copy of the files taken with the generation ----
ok "a writer started again on the database" omrun_app writer2 python3 -X faulthandler "$APPS_DIR/sqlwriter.py" "$DB" "$ST"
pid=${APID[writer2]}
ok "... it goes on from row $n" eval "writing && test \$(rows) -gt $n"
kill -USR1 "$pid"
ok "the writer pauses, the database open" wait_until 10 state_is paused
check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
at=$(rows)
ok "the database files copied with generation 2" cp -a "$DB" "$DB-wal" "$DB-shm" "$W/"
kill -USR2 "$pid"
ok "the writer resumes" writing
ok "the group killed" kill_group
ok "the files of generation 2 put back" cp -a "$W/app.db" "$W/app.db-wal" "$W/app.db-shm" "$D/"
check "omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2
rm -f "$ST"
ok "... the writer is back, paused at row $at" eval "wait_until 10 state_is paused && test \"\$(rows)\" = $at"
kill -USR2 "$pid"
ok "... it resumes and writes" writing

kill -TERM "$pid"
ok "the writer closes the database at SIGTERM" wait_until 20 state_is "done"
ok "... and exits" pids_free 20 "$pid"
n=$(rows)
is "$(sql 'SELECT count(*) FROM t')" "$n" "sqlite3 counts the $n rows the writer wrote"
is "$(sql 'PRAGMA integrity_check')" ok "PRAGMA integrity_check: ok"
ok "every row as written, ids 1..$n" db_ok "$n"
done_testing
