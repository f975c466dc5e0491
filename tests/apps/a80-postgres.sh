#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a80-postgres.sh — Debian's PostgreSQL 15 in a miggroup, with its shared
# memory: the postmaster keeps a small SysV segment (the "interlock", key from
# the data directory's inode) attached by every server process, its buffers in
# an anonymous shared mapping, and dynamic shared memory as
# /dev/shm/PostgreSQL.<n> files (dynamic_shared_memory_type = posix).
#
# A fresh cluster (initdb as postgres in $W) on a free loopback port, loaded
# with 200k rows through psql. Every read compares
#   SELECT count(*), sum(hashtext(v)) FROM t
# with the same figures computed by the server from generate_series (what the
# table must hold after the writes made so far), never with a number the test
# remembered from the server itself.
#
# Two variants, each: migration (omckpt; the processes, their SysV segments
# and /dev/shm/PostgreSQL.* files are gone from the node — whatever is left is
# removed, as on another node), omrestore, the data reads back, a new
# connection over TCP and over the unix socket, writes (INSERT 1000 rows,
# UPDATE); then --leave-running, a hard stop (SIGKILL, segments and files
# removed), omrestore of that generation, reads and writes again. Nothing is
# written between a --leave-running checkpoint and the kill: the data files
# on disk are not part of the checkpoint, the restored server must find them
# as its memory left them (a CHECKPOINT before each omckpt leaves no dirty
# buffer behind either). At the end a clean shutdown (SIGINT, "fast"), whose
# log has no PANIC, and the server starts again on the same data directory.
#  - host: started normally as its own user (setpriv as postgres, own
#    session), then grouped with `joingroup POSTMASTER G`: its SysV segment
#    lives in the host IPC namespace (shmig carries it: same key, same shmid).
#  - isolated: `omrun --isolate` (fresh PID and IPC namespaces, om-init as
#    PID 1, setpriv as postgres for the server): its SysV segment is in its own
#    IPC namespace (CRIU carries it), its /dev/shm files are the host's. (Raw
#    CRIU needs a root PID 1 there: the parasite of an unprivileged init cannot
#    mount the namespace's /proc; om-init is root's.)
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 18000
PGBIN=/usr/lib/postgresql/15/bin
need_cmd psql runuser setpriv ipcs ipcrm "$PGBIN/initdb" "$PGBIN/postgres"
id postgres >/dev/null 2>&1 || { echo "Bail out! no user postgres (the postgresql-15 package makes it)"; exit 1; }
PGUID=$(id -u postgres)
PGGID=$(id -g postgres)

export OM_CGROUP=v2
PG=$W/pg
DATA=$PG/data
SOCK=$PG/sock
mkdir -p "$SOCK"
chown -R postgres:postgres "$PG"
port=$(free_port)
N=0 # rows the table must hold
K=0 # UPDATE steps made (step k appends 'u' to v where id % 100 = k)

sql() { # SQL... : psql as postgres over the unix socket, unaligned output
	runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$port" -d postgres "$@" 2>>"$W/psql.err"
}
sql_tcp() {
	runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -d postgres "$@" 2>>"$W/psql.err"
}
ready() { [ "$(sql -c 'select 42')" = 42 ]; }
table_sum() { "${1:-sql}" -c 'SELECT count(*), sum(hashtext(v)) FROM t'; }
want_sum() {
	sql -c "SELECT count(*), sum(hashtext(CASE WHEN g % 100 BETWEEN 1 AND $K THEN md5(g::text) || 'u'
		ELSE md5(g::text) END)) FROM generate_series(1, $N) g"
}
# data_ok [sql|sql_tcp] : a new connection reads what the table must hold
data_ok() {
	local got want
	got=$(table_sum "${1:-sql}")
	want=$(want_sum)
	[ -n "$got" ] && [ "$got" = "$want" ] && return 0
	diag "count|sum(hashtext(v)) of t is '$got', expected '$want' ($N rows, $K updates)"
	diag_file "$W/psql.err"
	return 1
}
# writes : 1000 more rows (as the earlier UPDATE steps left their ids) and one
# UPDATE step, in one session
writes() {
	local out
	out=$(sql -c "INSERT INTO t SELECT g, CASE WHEN g % 100 BETWEEN 1 AND $K THEN md5(g::text) || 'u'
		ELSE md5(g::text) END FROM generate_series($((N + 1)), $((N + 1000))) g" \
		-c "UPDATE t SET v = v || 'u' WHERE id % 100 = $((K + 1))" -c 'SELECT count(*) FROM t')
	[ "$out" = $((N + 1000)) ] || { diag "after the writes: '$out'"; diag_file "$W/psql.err"; return 1; }
	N=$((N + 1000))
	K=$((K + 1))
}
# the postmaster's children, when no client backend is left (a psql that
# exited leaves its backend exiting for a moment: not a state to checkpoint)
no_backend() { ! pgrep -P "$1" -f '^postgres: postgres ' >/dev/null; }
settle() { # PM : CHECKPOINT (no dirty buffer), then wait until no backend is left
	sql -c CHECKPOINT && wait_until 20 no_backend "$1"
}
# host_segs PID : "key shmid" of the SysV segments PID has attached (its
# /SYSV<key> mappings, inode = shmid) that are in the host IPC namespace
host_segs() {
	local key id
	awk '$6 ~ /^\/SYSV[0-9a-f]+$/ {print "0x" substr($6, 6), $5}' "/proc/$1/maps" 2>/dev/null | sort -u |
		while read -r key id; do
			ipcs -m | awk -v k="$key" -v id="$id" '$1 == k && $2 == id {print $1, $2}'
		done
}
# created_in_host PID : shmids of host segments PID created
created_in_host() { ipcs -m -p | awk -v p="$1" '$1 ~ /^[0-9]+$/ && $3 == p {print $1}'; }
flat() { printf '%s\n' "$1" | grep . | tr '\n' ' '; } # LINES : one line, space separated
seg_exists() { ipcs -m | awk -v id="$1" '$2 == id {f = 1} END {exit !f}'; }
segs_left() { # SEGS : the shmids of SEGS ("key shmid" lines) that still exist
	local id
	while read -r _ id; do
		[ -n "$id" ] && seg_exists "$id" && echo "$id"
	done <<<"$1"
	return 0
}
dsm_files() { find /dev/shm -maxdepth 1 -name 'PostgreSQL.*' -user postgres -printf '%f\n' 2>/dev/null | sort; }
# gone_from_node SEGS FILES : after a migration the segments and files are gone;
# whatever is left is reported, then removed (the restore happens "elsewhere")
gone_from_node() {
	local id f left=
	while read -r _ id; do
		[ -n "$id" ] || continue
		if seg_exists "$id"; then
			left="$left shmid=$id"
			ipcrm -m "$id"
		fi
	done <<<"$1"
	for f in $2; do
		if [ -e "/dev/shm/$f" ]; then
			left="$left /dev/shm/$f"
			rm -f "/dev/shm/$f"
		fi
	done
	[ -z "$left" ] && return 0
	diag "left on the node (removed now):$left"
	return 1
}
# remove_all SEGS FILES : a hard stop on another node leaves nothing here either
remove_all() {
	local id f
	while read -r _ id; do
		[ -n "$id" ] && seg_exists "$id" && ipcrm -m "$id"
	done <<<"$1"
	for f in $2; do rm -f "/dev/shm/$f"; done
	return 0
}
tree_root() { "$SHOWGROUP" --json "$G" 2>/dev/null | grep -o '"root":[0-9]*' | head -1 | cut -d: -f2; }
postmaster_of() { # ROOT : the postmaster in the tree (ROOT itself or its descendant running postgres -D)
	local p
	[ -n "${1:-}" ] || return 1
	for p in $1 $(pgrep -P "$1") $(for c in $(pgrep -P "$1"); do pgrep -P "$c"; done); do
		if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^$PGBIN/postgres -D"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
no_panic() {
	! grep -E 'PANIC|server process .* was terminated' "$1" && return 0
	diag "$1 says:"
	grep -E 'PANIC|terminated' "$1" | sed 's/^/#   /' | head -5
	return 1
}

# autovacuum off: a VACUUM or ANALYZE between a --leave-running checkpoint
# and the kill would write to the data files and WAL, which the restored
# memory knows nothing about (the only background writer that could act in
# that window; CHECKPOINT leaves the others nothing to write)
# a server killed by a failed run leaves its segment and files: remove them
_pg_segs=
_pg_files=
_a80_cleanup() {
	_cleanup
	local id f
	for id in $_pg_segs; do
		ipcs -m | awk -v id="$id" '$2 == id && $6 == 0 {f = 1} END {exit !f}' && ipcrm -m "$id"
	done
	for f in $_pg_files; do rm -f "/dev/shm/$f"; done
	return 0
}
trap _a80_cleanup EXIT

PGARGS=(-D "$DATA" -p "$port" -k "$SOCK" -c listen_addresses=127.0.0.1 -c autovacuum=off)

initdb_pg() { runuser -u postgres -- "$PGBIN/initdb" -D "$DATA" -A trust -U postgres --no-sync >"$W/initdb.log" 2>&1; }
ok "initdb as postgres" initdb_pg || diag_file "$W/initdb.log"

# flows VARIANT ROOT PM LOG HOSTSHM : migration, then --leave-running + kill, then clean stop
flows() {
	local v=$1 root=$2 pm=$3 log=$4 hostshm=$5 segs files pids tc tr gen

	ok "[$v] postgres answers" wait_until 30 ready
	if [ "$N" -eq 0 ]; then
		ok "[$v] 200000 rows loaded through psql" sql -c 'CREATE TABLE t (id int PRIMARY KEY, v text)' \
			-c 'INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 200000) g'
		N=200000
	fi
	ok "[$v] ... they read back" data_ok
	ok "[$v] the server's processes are all postgres's" eval \
		"[ -z \"\$(pgrep -P $pm -u 0)\" ] && [ \"\$(stat -c %u /proc/$pm)\" = $PGUID ]"
	segs=
	if [ "$hostshm" = 1 ]; then
		segs=$(host_segs "$pm")
		ok "[$v] the postmaster has a SysV segment in the host IPC namespace ($(flat "$segs"))" test -n "$segs"
	fi
	files=$(dsm_files)
	_pg_segs="$_pg_segs $(awk '{print $2}' <<<"$segs")"
	_pg_files="$_pg_files $files"
	ok "[$v] ... and /dev/shm files ($(flat "$files"))" test -n "$files"

	# ---- migration ----
	ok "[$v] no client left, no dirty buffer" settle "$pm"
	pids=$(members | tr '\n' ' ')
	timed "$OMCKPT" -g "$G"
	tc=$T_SECS
	if ! ok "[$v] omckpt -g $G (migration)" test "$RC" -eq 0; then
		diag_file "$ERR"
		diag "[$v] the server was not checkpointed: nothing to restore, the variant ends here"
		kill_group
		remove_all "$segs" "$files"
		return 1
	fi
	# shellcheck disable=SC2086
	ok "[$v] ... the server is gone" pids_free 20 $pids
	ok "[$v] ... its SysV segments and /dev/shm files are gone" gone_from_node "$segs" "$files"
	ok "[$v] ... nothing answers" not ready
	timed "$OMRESTORE" -g "$G"
	tr=$T_SECS
	if ! ok "[$v] omrestore -g $G" test "$RC" -eq 0; then
		diag_file "$ERR"
		diag "[$v] nothing restored: the variant ends here"
		return 1
	fi
	gen=$(find "$OM_STORE/groups/$G" -maxdepth 1 -name 'gen-*' | sort -t- -k2 -n | tail -1)
	[ "$v" = host ] && ckpt_restore_figures postgres "$gen" "$tc" "$tr"
	if [ "$v" = host ]; then
		is "$(members | tr '\n' ' ')" "$pids" "[$v] ... the same processes are back"
	else
		root=$(tree_root)
		pm=$(postmaster_of "$root")
		track_pid "$root"
		ok "[$v] ... the tree is back (root $root, postmaster $pm)" test -n "$pm"
	fi
	if [ "$hostshm" = 1 ]; then
		is "$(host_segs "$pm")" "$segs" "[$v] ... its SysV segment is back: same key, same shmid"
	fi
	is "$(flat "$(dsm_files)")" "$(flat "$files")" "[$v] ... its /dev/shm files are back"
	ok "[$v] ... a new connection reads the same data" data_ok
	ok "[$v] ... over TCP too" data_ok sql_tcp
	ok "[$v] ... it takes writes (INSERT 1000 rows, UPDATE)" writes
	ok "[$v] ... a new connection sees them ($N rows)" data_ok

	# ---- periodic: --leave-running, hard stop, restore of that generation ----
	ok "[$v] no client left, no dirty buffer" settle "$pm"
	segs=
	[ "$hostshm" = 1 ] && segs=$(host_segs "$pm")
	files=$(dsm_files)
	pids=$(members | tr '\n' ' ')
	check "[$v] omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
	gen=$(find "$OM_STORE/groups/$G" -maxdepth 1 -name 'gen-*' | sort -t- -k2 -n | tail -1)
	gen=${gen##*gen-}
	# a new connection, but no read of t: a read may prune the pages the
	# UPDATE left dead tuples in, and write WAL after the checkpoint
	ok "[$v] ... the server keeps serving" ready
	ok "[$v] ... its SysV segment and /dev/shm files stay" eval \
		"[ \"\$(flat \"\$(dsm_files)\")\" = \"\$(flat \"\$files\")\" ] && { [ -z \"\$segs\" ] || [ \"\$(host_segs $pm)\" = \"\$segs\" ]; }"
	ok "[$v] hard stop (SIGKILL of the group)" kill_group
	# shellcheck disable=SC2086
	ok "[$v] ... the server is gone" pids_free 20 $pids
	remove_all "$segs" "$files"
	ok "[$v] ... no segment, no /dev/shm file left" eval \
		"[ -z \"\$(dsm_files)\" ] && [ -z \"\$(segs_left \"\$segs\")\" ]"
	if ! check "[$v] omrestore -g $G --generation $gen" "$OMRESTORE" -g "$G" --generation "$gen"; then
		diag "[$v] nothing restored: the variant ends here"
		return 1
	fi
	if [ "$v" != host ]; then
		root=$(tree_root)
		pm=$(postmaster_of "$root")
		track_pid "$root"
	fi
	if [ "$hostshm" = 1 ]; then
		is "$(host_segs "$pm")" "$segs" "[$v] ... its SysV segment is back: same key, same shmid"
	fi
	is "$(flat "$(dsm_files)")" "$(flat "$files")" "[$v] ... its /dev/shm files are back"
	ok "[$v] ... a new connection reads the data of generation $gen" data_ok
	ok "[$v] ... it takes writes" writes
	ok "[$v] ... a new connection sees them ($N rows)" data_ok sql_tcp

	# ---- clean stop ----
	pids=$(members | tr '\n' ' ')
	ok "[$v] no client left" wait_until 20 no_backend "$pm"
	kill -INT "$pm"
	# shellcheck disable=SC2086
	ok "[$v] fast shutdown (SIGINT): every process exits" pids_free 30 $pids
	like "$log" "database system is shut down" "[$v] ... the log says it shut down"
	ok "[$v] ... no PANIC, no crashed server process in the log" no_panic "$log"
	ok "[$v] ... it removed its /dev/shm files" test -z "$(dsm_files)"
	[ "$hostshm" = 1 ] && ok "[$v] ... and its SysV segment" test -z "$(segs_left "$segs")"
	return 0
}

VARIANTS=${A80_VARIANTS:-host iso} # a subset by hand: A80_VARIANTS=iso

# ---- host: started as postgres in its own session, then joined ----
if [[ " $VARIANTS " == *" host "* ]]; then
	new_group
	log=$W/pg-host.log
	(setsid setpriv --reuid="$PGUID" --regid="$PGGID" --init-groups -- "$PGBIN/postgres" "${PGARGS[@]}" \
		</dev/null >>"$log" 2>&1 &)
	ok "[host] postgres started as its own user" wait_until 30 test -s "$DATA/postmaster.pid"
	pm=$(head -n1 "$DATA/postmaster.pid")
	track_pid "$pm"
	ok "[host] ... it answers" wait_until 30 ready
	check "[host] joingroup $pm $G (the postmaster and its children)" "$JOINGROUP" "$pm" "$G"
	is "$(members | wc -l)" "$(($(pgrep -P "$pm" | wc -l) + 1))" "[host] ... the group has the postmaster and its children"
	flows host "$pm" "$pm" "$log" 1
fi

# ---- isolated: own PID and IPC namespaces ----
if [[ " $VARIANTS " == *" iso "* ]]; then
	new_group
	log=$W/pg-iso.log
	run "$OMRUN" -g "$G" --isolate -o "$log" -- setpriv --reuid="$PGUID" --regid="$PGGID" --init-groups -- \
		"$PGBIN/postgres" "${PGARGS[@]}"
	root=$(head -n1 "$OUT" | tr -d '[:space:]')
	ok "[iso] omrun -g $G --isolate -- setpriv ... postgres (om-init $root)" test "$RC" -eq 0 || diag_file "$ERR"
	ok "[iso] ... om-init is the tree's root" test "$root" = "$(tree_root)"
	wait_until 20 postmaster_of "$root"
	track_pid "$root"
	pm=$(postmaster_of "$root")
	ok "[iso] the postmaster ($pm) runs in the group" test -n "$pm"
	ok "[iso] ... in its own IPC namespace" test "$(readlink "/proc/$pm/ns/ipc")" != "$(readlink /proc/self/ns/ipc)"
	ok "[iso] ... it created no SysV segment in the host's" test -z "$(created_in_host "$pm")"
	flows iso "$root" "$pm" "$log" 0
fi

# ---- and it starts again on the same data ----
log=$W/pg-again.log
(setsid setpriv --reuid="$PGUID" --regid="$PGGID" --init-groups -- "$PGBIN/postgres" "${PGARGS[@]}" \
	</dev/null >>"$log" 2>&1 &)
ok "postgres starts again on the data directory" wait_until 30 ready
pm=$(head -n1 "$DATA/postmaster.pid")
track_pid "$pm"
ok "... without crash recovery" not grep -q 'database system was not properly shut down' "$log"
ok "... the data of all the writes is there ($N rows)" data_ok
kill -INT "$pm"
ok "... and it stops" pids_free 30 "$pm"
done_testing
