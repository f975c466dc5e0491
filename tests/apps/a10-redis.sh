#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a10-redis.sh — redis-server (Debian's package) holding 100k keys in a
# miggroup: migration (omckpt, the group is gone, omrestore) and --leave-running
# then kill and restore of that generation. After each restore a new
# redis-cli connection reads the data back: DBSIZE and a checksum over a
# sample of 1000 keys against the values the loader computed.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 11000
need_cmd redis-server redis-cli python3

N=100000
STEP=100
export OM_CGROUP=v2
new_group
port=$(free_port)
mkdir -p "$W/redis"
cli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
pong() { [ "$(cli ping 2>/dev/null)" = PONG ]; }
dbsize_is() {
	local got
	got=$(cli dbsize 2>/dev/null)
	[ "$got" = "$1" ] && return 0
	diag "DBSIZE is '$got', expected $1"
	return 1
}
# sample_ok : MGET of every STEP-th key gives the values the loader computed
sample_ok() {
	local got want
	# shellcheck disable=SC2046
	got=$(cli --raw mget $(python3 "$APPS_DIR/redisload.py" sample $N $STEP) 2>&1 | sha256sum)
	want=$(python3 "$APPS_DIR/redisload.py" expect $N $STEP | sha256sum)
	[ "$got" = "$want" ] && return 0
	diag "the sample of $((N / STEP)) keys differs from the loaded values"
	return 1
}

ok "redis-server on 127.0.0.1:$port started in group $G" omrun_app redis \
	redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
	--dir "$W/redis" --protected-mode yes
pid=${APID[redis]}
ok "... it answers PING" wait_until 20 pong
run bash -c "python3 '$APPS_DIR/redisload.py' resp $N | redis-cli -h 127.0.0.1 -p $port --pipe"
ok "$N keys loaded through redis-cli --pipe" test "$RC" -eq 0
ok "... DBSIZE $N" dbsize_is $N
ok "... the sample reads back" sample_ok
used=$(cli info memory | awk -F: '/^used_memory:/ {printf "%d", $2 / 1048576}')
diag "redis uses ${used} MiB"

# ---- migration ----
timed "$OMCKPT" -g "$G"
tc=$T_SECS
ok "omckpt -g $G (migration)" test "$RC" -eq 0 || { diag_file "$OUT"; diag_file "$ERR"; }
ok "... redis is gone" pids_free 20 "$pid"
ok "... nothing listens on port $port" not pong
timed "$OMRESTORE" -g "$G"
tr=$T_SECS
ok "omrestore -g $G" test "$RC" -eq 0 || diag_file "$ERR"
ckpt_restore_figures redis "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
ok "... redis-server is back with pid $pid" alive "$pid"
ok "... a new client connects" wait_until 10 pong
ok "... DBSIZE $N" dbsize_is $N
ok "... the sample reads back" sample_ok
ok "... and it takes writes" test "$(cli set after-restore 1)" = OK

# ---- periodic: --leave-running, then kill and restore that generation ----
check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
ok "... redis keeps serving" pong
ok "... DBSIZE $((N + 1))" dbsize_is $((N + 1))
ok "a write after the checkpoint" test "$(cli set after-gen2 1)" = OK
ok "redis killed" kill_group
ok "... nothing listens on port $port" not pong
check "omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2
ok "... a new client connects" wait_until 10 pong
ok "... DBSIZE $((N + 1)): the data of generation 2" dbsize_is $((N + 1))
ok "... the sample reads back" sample_ok
is "$(cli exists after-gen2)" 0 "... the write made after generation 2 is not there"
is "$(cli exists after-restore)" 1 "... the one made before it is"

ok "redis shuts down when asked" eval "cli shutdown nosave >/dev/null 2>&1; pids_free 20 $pid"
done_testing
