#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t55-retention.sh — periodic checkpoints and what the store keeps (v2):
# `omckpt --leave-running --keep N` keeps exactly the newest N generations while
# the group runs on; `keep =` of omtools.conf is the default; `--all` takes every
# group of the node, one line (or JSON object) each; a prune never removes a
# generation that a restore on another node is reading (its pin); omckpt killed
# with SIGKILL at each phase (OM_FAULT=kill:freezing|dumping|compressing|
# publishing|pruning) leaves the group running (its thaw guard), the earlier
# generations restorable and its leftovers, which the next run removes;
# `omrestore --takeover` refused and allowed as omrestore(8) says; without etcd
# the store's fence (.fence, storage/README.md "Fencing") follows the group:
# the takeover fences the old node out (its omckpt exits 7 before freezing,
# naming the node that took over), a plain move back moves the fence again.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 9300
OMIMG=$OM_BUILDDIR/omimg
if [ ! -x "$OMIMG" ]; then
	echo "Bail out! $OMIMG is missing: build first"
	exit 1
fi
# this node's name as omtools sees it (om_node_name: the host name up to its first dot)
HERE=$(uname -n)
HERE=${HERE%%.*}

export OM_CGROUP=v2
have_backend v2 || {
	skip "v2 backend" "not available here"
	done_testing
}
gdir() { echo "$OM_STORE/groups/$G"; }
gens() { (cd "$(gdir)" 2>/dev/null && ls -d gen-* 2>/dev/null | sed 's/gen-//' | sort -n | tr '\n' ' ' | sed 's/ $//'); }
newest() { gens | awk '{print $NF}'; }
# the store's fence of $G: "TOKEN NODE GEN", or "none"
fence() { cat "$(gdir)/.fence" 2>/dev/null || echo none; }
# manifest_fence_is T NODE : the newest generation's manifest records fence T,
# was written on NODE, and omimg shows the store's fence as T held by NODE
manifest_fence_is() {
	"$OMIMG" show "$G" --json >"$W/show.json" || return 1
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
t, node = int(sys.argv[2]), sys.argv[3]
sf = d.get("store_fence") or {}
if d["fence"] == t and d["node"] == node and sf.get("token") == t and sf.get("node") == node:
    sys.exit(0)
print("# fence %r node %r store_fence %r" % (d.get("fence"), d.get("node"), d.get("store_fence")))
sys.exit(1)' "$W/show.json" "$1" "$2"
}
json_frozen() { "$SHOWGROUP" --json "$G" | grep -q "\"frozen\":$1"; }
leftovers() { (cd "$(gdir)" && ls -d .tmp-* .prune-* 2>/dev/null | tr '\n' ' '); }
no_leftovers() {
	local l
	l=$(leftovers)
	[ -z "$l" ] && return 0
	diag "left over: $l"
	return 1
}
# no_guard : no omckpt-guard of group $G (its command line is omckpt's, "... -g G")
# within 10 s; the guards of other groups (other tests running alongside) do not count
our_guards() { pgrep -ax omckpt-guard | grep -E -- "-g $G( |\$)"; }
no_guard() {
	local end=$((SECONDS + 10))
	while [ $SECONDS -lt $end ]; do
		our_guards >/dev/null || return 0
		sleep 0.2
	done
	diag "an omckpt-guard of group $G is still there: $(our_guards)"
	return 1
}
# eventually_running NAME : the worker counts again within 10 s
eventually_running() {
	local end=$((SECONDS + 10))
	while [ $SECONDS -lt $end ]; do
		advancing "$1" 0.5 2>/dev/null && return 0
	done
	diag "worker $1 does not count"
	return 1
}

# ------------------------------------------------------------- keep N ----
new_group
diag "group $G"
ok "omrun worker k in group $G" start_worker k --mem 16 --children 2
ok "worker ready" wait_ready k
kpids=$(pids_of k | tr '\n' ' ')
S=$(snap k)
for i in 1 2 3 4 5; do
	run "$OMCKPT" --leave-running --keep 3 -g "$G"
	[ "$RC" -eq 0 ] || break
done
is "$RC" 0 "five omckpt --leave-running --keep 3"
is "$(gens)" "3 4 5" "... exactly the newest 3 generations are kept (3 4 5)"
like "$OUT" "generation 5 written to .*left running\); pruned 2" "... the last run says it pruned generation 2"
ok "... the group never stopped: k counts on, not restored" continued_running "$S"
# shellcheck disable=SC2086
ok "... with all its processes" all_alive $kpids
ok "... and no leftovers" no_leftovers

# keep = in the settings file is the default; --keep 0 keeps them all
printf 'keep = 2\n' >"$W/keep.conf"
check "omckpt --leave-running with keep = 2 in \$OM_CONFIG" env OM_CONFIG="$W/keep.conf" "$OMCKPT" --leave-running -g "$G"
is "$(gens)" "5 6" "... keeps 2 (5 6)"
check "omckpt --keep 0 overrides it" env OM_CONFIG="$W/keep.conf" "$OMCKPT" --leave-running --keep 0 -g "$G"
is "$(gens)" "5 6 7" "... and keeps them all"
check_rc 2 "--keep x is a usage error" "$OMCKPT" --leave-running --keep x -g "$G"
check_rc 2 "-g with --all is a usage error" "$OMCKPT" --all -g "$G"

# ---------------------------------------------------------------- --all ----
G1=$G
new_group
G2=$G
ok "omrun worker a2 in group $G2" start_worker a2 --mem 8
ok "worker ready" wait_ready a2
S=$(snap k a2 | tr "\n" " ")
run "$OMCKPT" --all --leave-running --keep 2 --json
# --all takes every group of the machine: a group of a test running beside
# this one may be busy (exit 6 for it); this test's own groups must be ok
ok "omckpt --all --leave-running --keep 2 --json (exit 0, or only other tests' groups failed)" python3 -c '
import json, sys
rc, mine = int(sys.argv[2]), {int(sys.argv[3]), int(sys.argv[4])}
objs = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
bad = [x for x in objs if not x["ok"]]
sys.exit(0 if (rc == 0 and not bad) or (rc != 0 and bad and all(x["group"] not in mine for x in bad)) else 1)' \
	"$(cat "$OUT")" "$RC" "$G1" "$G2" || diag_file "$ERR"
for g in "$G1" "$G2"; do
	ok "... one JSON object for group $g, ok" python3 -c '
import json, sys
objs = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
o = [x for x in objs if x["group"] == int(sys.argv[2])]
sys.exit(0 if len(o) == 1 and o[0]["ok"] and o[0]["generation"] >= 1 and o[0]["left_running"] else 1)' "$(cat "$OUT")" "$g"
done
G=$G1
is "$(gens)" "7 8" "... group $G1 keeps 2 (7 8)"
G=$G2
is "$(gens)" "1" "... group $G2 has its first"
# shellcheck disable=SC2086
ok "... both groups counted on" continued_running $S

# --------------------------------------------- a pin from another node ----
# A restore on node `far` (its own run dir and work dir) reads generation 7 of
# G1 and holds it (OM_FAULT=restore-pause-pinned); meanwhile this node prunes
# to 1: generation 7 stays, 8 goes. Once the restore is over, 7 goes too.
G=$G1
FAR=(env OM_NODE=far OM_RUNDIR="$W/far-run" OM_WORKDIR="$W/far-work" OM_FAULT=restore-pause-pinned:8)
mkdir -p "$W/far-run" "$W/far-work"
"${FAR[@]}" "$OMRESTORE" -g "$G" -G 7 --takeover --force -W 0 >"$W/far.out" 2>"$W/far.err" &
farpid=$!
pinned() { compgen -G "$(gdir)/.pin-7-far-*" >/dev/null; }
ok "the restore on node far pins generation 7" wait_until 10 pinned
run "$OMCKPT" --leave-running --keep 1 --json -g "$G"
is "$RC" 0 "omckpt --keep 1 while far reads generation 7"
is "$(gens)" "7 9" "... keeps the pinned 7 and the new 9, prunes 8"
ok "... and says 7 was kept because it is pinned" python3 -c '
import json, sys
o = json.loads(sys.argv[1])
sys.exit(0 if o["kept_pinned"] == [7] and o["pruned"] == [8] else 1)' "$(cat "$OUT")"
wait "$farpid"
farrc=$?
is "$farrc" 6 "far's restore ends (exit 6: the group's PIDs run here)"
ok "... and unpins" not pinned
is "$(fence)" none "... a takeover refused before restoring anything (PIDs taken) raises no fence"
check "the next omckpt --keep 1" "$OMCKPT" --leave-running --keep 1 -g "$G"
is "$(gens)" "10" "... prunes 7 and 9"

# ------------------------------------------------- kill -9 at each phase ----
for phase in freezing dumping compressing publishing pruning; do
	before=$(gens)
	S=$(snap k)
	run env OM_FAULT=kill:$phase "$OMCKPT" --leave-running --keep 2 -g "$G"
	is "$RC" 137 "[$phase] omckpt killed (OM_FAULT=kill:$phase)"
	ok "[$phase] ... the group runs (thawed)" eventually_running k
	ok "[$phase] ... and is not frozen" json_frozen false
	ok "[$phase] ... its guard is gone" no_guard
	# shellcheck disable=SC2086
	ok "[$phase] ... all its processes live" all_alive $kpids
	ok "[$phase] ... k was never restored" continued_running "$S"
	case $phase in
	compressing | publishing)
		ok "[$phase] ... its unfinished generation is left (.tmp-*)" compgen -G "$(gdir)/.tmp-*"
		is "$(gens)" "$before" "[$phase] ... no new generation"
		;;
	pruning)
		ok "[$phase] ... a generation half pruned is left (.prune-*)" compgen -G "$(gdir)/.prune-*"
		;;
	*)
		is "$(gens)" "$before" "[$phase] ... no new generation"
		;;
	esac
	newest=$(gens | awk '{print $NF}')
	ok "[$phase] ... the newest generation ($newest) verifies" "$OMDECODE" --verify "$(gdir)/gen-$newest"
	check "[$phase] the next omckpt --leave-running --keep 2" "$OMCKPT" --leave-running --keep 2 -g "$G"
	ok "[$phase] ... removed the leftovers" no_leftovers
	is "$(echo "$(gens)" | wc -w)" 2 "[$phase] ... 2 generations kept"
done

# a migration (no --leave-running) killed while dumping: thawed, runs on
run env OM_FAULT=kill:dumping "$OMCKPT" -g "$G"
is "$RC" 137 "[migration] omckpt killed while dumping"
ok "[migration] ... the group runs" eventually_running k
ok "[migration] ... its guard is gone" no_guard

# the previous generation restores: stop the group, restore the newest
newest=$(gens | awk '{print $NF}')
S=$(snap k)
check "omckpt -g $G (migration)" "$OMCKPT" -g "$G"
# shellcheck disable=SC2086
ok "... the group is gone" all_gone 10 $kpids
# shellcheck disable=SC2086
pids_free 15 $kpids
check "omrestore -g $G" "$OMRESTORE" -g "$G"
ok "... k continues from the newest generation" continued_restored "$S"
is "$(fence)" none "... a plain restore without a fence creates none"

# ------------------------------------------------------------ takeover ----
# a generation of this node, taken with the group left running
check "omckpt --leave-running" "$OMCKPT" --leave-running -g "$G"
check_rc 6 "omrestore --takeover while the group still runs here: exit 6" "$OMRESTORE" -g "$G" --takeover
like "$ERR" "still runs on this node" "... naming why"
check_rc 2 "--force without --takeover: exit 2" "$OMRESTORE" -g "$G" --force
# a generation of another node (dumped as node `far`, left running there)
kpids=$(pids_of k | tr '\n' ' ')
S=$(snap k)
check "node far: omckpt --leave-running" env OM_NODE=far "$OMCKPT" --leave-running -g "$G"
"$RESETGROUP" "$G" >/dev/null 2>&1
# shellcheck disable=SC2086
kill -9 $kpids 2>/dev/null
# shellcheck disable=SC2086
ok "(far's copy is gone here)" all_gone 10 $kpids
# shellcheck disable=SC2086
pids_free 15 $kpids
check_rc 2 "omrestore of far's left-running generation without --takeover: exit 2" "$OMRESTORE" -g "$G"
like "$ERR" "takeover" "... naming --takeover"
check_rc 2 "omrestore --takeover of another node's generation without --force: exit 2" \
	"$OMRESTORE" -g "$G" --takeover
like "$ERR" "add --force" "... asking for --force"
is "$(fence)" none "... the refused takeovers raised no fence"
fargen=$(newest)
check "omrestore --takeover --force" "$OMRESTORE" -g "$G" --takeover --force
ok "... k continues from far's generation" continued_restored "$S"

# ----------------------------------------------- the fence without etcd ----
# the takeover fenced far out: .fence names this node, token 1, from far's generation
is "$(fence)" "1 $HERE $fargen" "the takeover raised .fence: token 1, node $HERE, generation $fargen"
# far comes back (it was only cut off) and its cron runs omckpt: refused
# before anything is frozen (kill:freezing would SIGKILL it once frozen)
before=$(gens)
S=$(snap k)
check_rc 7 "node far: omckpt --leave-running is fenced: exit 7" \
	env OM_NODE=far OM_FAULT=kill:freezing "$OMCKPT" --leave-running -g "$G"
like "$ERR" "fenced: node $HERE took the group over \(token 1, from generation $fargen\); this node's copy is stale" \
	"... naming this node, the token and the generation"
is "$(gens)" "$before" "... no new generation"
ok "... the group is not frozen" json_frozen false
ok "... and runs on here, not restored" continued_running "$S"
# this node, the owner now, checkpoints under token 1
check "omckpt --leave-running here" "$OMCKPT" --leave-running -g "$G"
ok "... its manifest records fence 1 (omimg show --json)" manifest_fence_is 1 "$HERE"
# a plain move back to far (omckpt here, omrestore there) moves the fence there
kpids=$(pids_of k | tr '\n' ' ')
S=$(snap k)
check "omckpt -g $G (migration)" "$OMCKPT" -g "$G"
# shellcheck disable=SC2086
ok "... the group is gone" all_gone 10 $kpids
# shellcheck disable=SC2086
pids_free 15 $kpids
mig=$(newest)
check "node far: omrestore -g $G (a plain restore, no --takeover)" env OM_NODE=far "$OMRESTORE" -g "$G"
ok "... k continues" continued_restored "$S"
is "$(fence)" "2 far $mig" "... .fence follows the group to far: token 2, generation $mig"
check "node far: omckpt --leave-running" env OM_NODE=far "$OMCKPT" --leave-running -g "$G"
ok "... its manifest records fence 2" manifest_fence_is 2 far
before=$(gens)
check_rc 7 "this node's omckpt --leave-running is fenced now: exit 7" "$OMCKPT" --leave-running -g "$G"
like "$ERR" "fenced: node far took the group over \(token 2, from generation $mig\)" "... naming far and token 2"
is "$(gens)" "$before" "... no new generation"
is "$(fence)" "2 far $mig" "... the fence is unchanged"
finish_ok k
finish_ok a2
done_testing
