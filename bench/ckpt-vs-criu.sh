#!/usr/bin/env bash
# bench/ckpt-vs-criu.sh — omckpt/omrestore against raw CRIU, same processes, same run.
#
# Starts a miggroup of NTREES process trees (the ZDTM worker: MEM MiB of patterned heap
# per parent plus a child, and one python3 process holding MEM MiB of compressible text),
# then for ROUNDS rounds measures
#   raw:  criu dump --leave-running of every tree (images on local disk, uncompressed)
#         criu restore -d of every tree
#   om:   omckpt --leave-running -g G (periodic; also how long the group was frozen)
#         omckpt -g G (freeze, dump, zstd, sha256, fsync, publish, stop)
#         omrestore -g G (verify, decompress, restore, rejoin)
# and prints times and image sizes with their ratios om/raw (lower is better).
# Usage (as root): bash bench/ckpt-vs-criu.sh   (env: NTREES=3 MEM=64 ROUNDS=3 OM_BUILDDIR=build)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${OM_BUILDDIR:-$TOP/build}
NTREES=${NTREES:-3} MEM=${MEM:-64} ROUNDS=${ROUNDS:-3}
CRIU=${OM_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
[ -x /usr/local/sbin/criu ] && CRIU=${OM_CRIU:-/usr/local/sbin/criu}
make -C "$B" tests/zdtm/worker >/dev/null
W=$B/tests/zdtm/worker
T=$(mktemp -d /tmp/ombench.XXXXXX)
export OM_STORE=$T/store OM_WORKDIR=$T/work
G=$((5000 + $$ % 1000))
trap 'for p in $(pids); do kill -9 $p 2>/dev/null; done; "$B/resetgroup" -q $G 2>/dev/null; rm -rf "$T"' EXIT

pids() { "$B/showgroup" --json $G 2>/dev/null | grep -o '"pid":[0-9]*' | cut -d: -f2; }
roots() { "$B/showgroup" --json $G 2>/dev/null | grep -o '"root":[0-9]*' | cut -d: -f2; }
now() { date +%s.%N; }
wait_gone() { for p in "$@"; do while [ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; do sleep 0.01; done; done; }
wait_free() { for p in "$@"; do for _ in $(seq 500); do [ -e /proc/$p ] || break; sleep 0.01; done; done; }

for i in $(seq "$NTREES"); do
	"$B/omrun" -g $G -- "$W" --dir "$T" --name w$i --mem "$MEM" --children 1 >/dev/null
done
"$B/omrun" -g $G -- python3 -c "import time; a = bytearray(b'omtools checkpoint text ' * ($MEM * 1048576 // 24)); time.sleep(1e6)" >/dev/null
for i in $(seq "$NTREES"); do until grep -q ready=1 "$T/w$i.status" 2>/dev/null; do sleep 0.1; done; done
sleep 1

raw_dump=0 raw_rst=0 om_dump=0 om_rst=0 raw_size=0 om_size=0 om_frozen=0 om_periodic=0
for r in $(seq "$ROUNDS"); do
	# raw CRIU: dump every tree (leave running), then kill, then restore every tree
	R=$(roots); P=$(pids)
	rm -rf "$T/raw"; mkdir -p "$T/raw"
	t0=$(now)
	for root in $R; do
		mkdir -p "$T/raw/$root"
		"$CRIU" dump -t "$root" -D "$T/raw/$root" --leave-running --shell-job -o dump.log 2>/dev/null ||
			{ echo "raw criu dump failed, see $T/raw/$root/dump.log" >&2; exit 1; }
	done
	t1=$(now)
	raw_dump=$(echo "$raw_dump + $t1 - $t0" | bc)
	raw_size=$(du -sb "$T/raw" | cut -f1)
	# om, periodic: --leave-running; the group is frozen only while CRIU dumps
	t0=$(now)
	"$B/omckpt" -q --leave-running -g $G
	t1=$(now)
	om_periodic=$(echo "$om_periodic + $t1 - $t0" | bc)
	gen=$(ls -d "$OM_STORE/groups/$G"/gen-* | sort -t- -k2 -n | tail -1)
	fz=$("$B/omdecode" --json "$gen" | grep -o '"freeze_seconds":[0-9.e-]*' | cut -d: -f2)
	om_frozen=$(echo "$om_frozen + $fz" | bc -l)
	# om, migration: checkpoint the same group (it is stopped afterwards)
	t0=$(now)
	"$B/omckpt" -q -g $G
	t1=$(now)
	om_dump=$(echo "$om_dump + $t1 - $t0" | bc)
	gen=$(ls -d "$OM_STORE/groups/$G"/gen-* | sort -t- -k2 -n | tail -1)
	om_size=$(du -sb "$gen" | cut -f1)
	wait_free $P
	# raw CRIU restore of the raw images
	t0=$(now)
	for root in $R; do
		"$CRIU" restore -D "$T/raw/$root" -d --shell-job -o restore.log 2>/dev/null ||
			{ echo "raw criu restore failed, see $T/raw/$root/restore.log" >&2; exit 1; }
	done
	t1=$(now)
	raw_rst=$(echo "$raw_rst + $t1 - $t0" | bc)
	for p in $P; do kill -9 "$p" 2>/dev/null || true; done
	wait_free $P
	# om restore of the generation
	t0=$(now)
	"$B/omrestore" -q -W 30 -g $G
	t1=$(now)
	om_rst=$(echo "$om_rst + $t1 - $t0" | bc)
	sleep 0.5
done

ratio() { echo "scale=2; $1 / $2" | bc; }
mib() { echo "scale=1; $1 / 1048576" | bc; }
printf 'workload: %d trees x (%d MiB patterned heap + child) + %d MiB text, %d rounds\n' "$NTREES" "$MEM" "$MEM" "$ROUNDS"
printf '%-28s %10s %10s %8s\n' "" "omtools" "raw CRIU" "ratio"
printf '%-28s %9.2fs %9.2fs %8s\n' "checkpoint (per round)" "$(echo "$om_dump / $ROUNDS" | bc -l)" "$(echo "$raw_dump / $ROUNDS" | bc -l)" "$(ratio "$om_dump" "$raw_dump")"
printf '%-28s %9.2fs %9.2fs %8s\n' "  --leave-running" "$(echo "$om_periodic / $ROUNDS" | bc -l)" "$(echo "$raw_dump / $ROUNDS" | bc -l)" "$(ratio "$om_periodic" "$raw_dump")"
printf '%-28s %9.2fs %9.2fs %8s\n' "  of which group frozen" "$(echo "$om_frozen / $ROUNDS" | bc -l)" "$(echo "$raw_dump / $ROUNDS" | bc -l)" "$(ratio "$om_frozen" "$raw_dump")"
printf '%-28s %9.2fs %9.2fs %8s\n' "restore (per round)" "$(echo "$om_rst / $ROUNDS" | bc -l)" "$(echo "$raw_rst / $ROUNDS" | bc -l)" "$(ratio "$om_rst" "$raw_rst")"
printf '%-28s %8sMi %8sMi %8s\n' "image size" "$(mib "$om_size")" "$(mib "$raw_size")" "$(ratio "$om_size" "$raw_size")"
