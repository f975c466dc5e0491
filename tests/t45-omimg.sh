#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t45-omimg.sh — omimg, the store's management command: a worker group with
# three generations; list (text and JSON), show of G, G/GEN and a path
# (trees, processes, ratio, node, kernel, CRIU version, age), verify (every
# checksum; a flipped byte: exit 4 naming the file), rm of an old generation
# (gone from list, the newest still restores and the worker continues), rm of
# a pinned generation refused (exit 6 naming the holder), gc of a dead
# writer's .tmp-*, a .prune-* and an old manifest-less gen-N (--dry-run
# first), --store, --pids (omckpt -p), usage errors, --help; omdecode still
# prints the same manifests.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 4500
export OM_CGROUP=v2
# a node name of its own, so the manifests and the leftovers of this node are known
export OM_NODE=t45node

OMIMG=$OM_BUILDDIR/omimg
if [ ! -x "$OMIMG" ]; then
	echo "Bail out! $OMIMG is missing: build first"
	exit 1
fi

# json FILE PYTHON-EXPR : evaluate EXPR with d = the JSON document of FILE; pass if true.
json() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
r = eval("(" + sys.argv[2] + "\n)")
if not r:
    print("# JSON check failed:", sys.argv[2])
    print("#", json.dumps(d)[:1500])
sys.exit(0 if r else 1)' "$1" "$2"
}

# make_pin FILE SECONDS : a pin as om_gen_pin writes it (storage/README.md, "Pins"):
# the file .pin-<GEN>-<node>-<pid>-<n> holding its expiry, wall clock in ms.
make_pin() {
	echo "$(($(date +%s%3N) + $2 * 1000))" >"$1"
}

# gens_listed FILE : the generation numbers of group $G in omimg list's text output.
gens_listed() {
	awk -v g="$G" '$1 == g && $2 ~ /^[0-9]+$/ {print $2}' "$1" | tr '\n' ' ' | sed 's/ $//'
}

new_group
gdir=$OM_STORE/groups/$G
ok "omrun a worker in group $G" start_worker w --mem 16 --children 2
ok "worker ready" wait_ready w
mapfile -t wpids < <(pids_of w)
for i in 1 2; do
	check "omckpt --leave-running -g $G (generation $i)" "$OMCKPT" --leave-running -g "$G"
done
c3=$(snap w)
check "omckpt --leave-running -g $G (generation 3)" "$OMCKPT" --leave-running -g "$G"
ok "three generations" test -f "$gdir/gen-3/manifest.om"

# ---- list ----
check "omimg list" "$OMIMG" list
like "$OUT" "^GROUP +GEN +TIME \(UTC\) +AGE +NODE +TREES +PROCS +RAW +STORED +RATIO +FENCE +PINNED" "... a header"
is "$(gens_listed "$OUT")" "1 2 3" "... generations 1 2 3 of group $G"
like "$OUT" "^$G +3 +20[0-9-]+T[0-9:]+Z +[0-9]+ (s|min).* +t45node +1 +3 +[0-9.]+ [KMG]?i?B +[0-9.]+ [KMG]?i?B +[0-9]+\.[0-9][0-9] +- +-\$" \
	"... the newest: time, age, node, 1 tree, 3 processes, sizes, ratio, no fence, no pin"
check "omimg list --json" "$OMIMG" list --json
ok "... parses: group $G with generations 1 2 3, each 1 tree, 3 processes, node, ratio raw/stored, not pinned" json "$OUT" \
	"[g['generation'] for x in d['groups'] if x['id'] == $G for g in x['generations']] == [1, 2, 3] and
	 all(g['n_trees'] == 1 and g['processes'] == 3 and g['node'] == 't45node' and abs(g['ratio'] - g['raw_bytes'] / g['stored_bytes']) < 0.001 and
	     g['raw_bytes'] > g['stored_bytes'] > 0 and g['pinned'] is False and g['pinned_by'] is None and
	     0 <= g['age_seconds'] < 600 and g['fence'] is None
	     for x in d['groups'] if x['id'] == $G for g in x['generations']) and
	 [x['fence'] for x in d['groups'] if x['id'] == $G] == [None] and d['store'] == '$OM_STORE' and d['kind'] == 'groups'"
check "omimg list -g $G --json" "$OMIMG" list -g "$G" --json
ok "... only group $G" json "$OUT" "[x['id'] for x in d['groups']] == [$G]"
check_rc 3 "omimg list -g of a group without generations exits 3" "$OMIMG" list -g $((G + 50000))
like "$ERR" "no generation of miggroup $((G + 50000))" "... and says so"

# ---- show ----
check "omimg show $G (the newest)" "$OMIMG" show "$G"
for re in "^manifest: +$gdir/gen-3/manifest.om\$" "^generation: +3\$" "^node: +t45node\$" "^kernel: +$(uname -r)\$" \
	"^criu version: +[0-9]+\.[0-9]+" "^age: +[0-9]+ (s|min)" "^trees: +1\$" "^processes: +3\$" \
	"^stored bytes: +[0-9]+ .*, ratio [0-9]+\.[0-9][0-9]\$" "^store fence: +none\$" "^pinned: +no\$" \
	"^ +${WPID[w]} +[0-9]+ .*worker"; do
	like "$OUT" "$re" "... /$re/"
done
check "omimg show $G/2" "$OMIMG" show "$G/2"
like "$OUT" "^generation: +2\$" "... generation 2"
check "omimg show $G/gen-1" "$OMIMG" show "$G/gen-1"
like "$OUT" "^generation: +1\$" "... generation 1"
check "omimg show PATH (a generation directory)" "$OMIMG" show "$gdir/gen-2"
like "$OUT" "^generation: +2\$" "... generation 2"
ok "... without the store's pin and fence (a bare path)" not grep -q "^pinned:" "$OUT"
check "omimg show PATH (a manifest file) --json" "$OMIMG" show --json "$gdir/gen-1/manifest.om"
criu_v=$(/usr/local/sbin/criu --version 2>/dev/null | awk '/^Version:/ {print $2}')
ok "... parses: generation 1, trees, processes, ratio, node, kernel, CRIU $criu_v" json "$OUT" \
	"d['generation'] == 1 and len(d['trees']) == 1 and len(d['trees'][0]['procs']) == 3 and d['processes'] == 3 and
	 abs(d['ratio'] - d['raw_bytes'] / d['stored_bytes']) < 0.001 and d['node'] == 't45node' and d['kernel'] == '$(uname -r)' and
	 d['criu_version'].startswith('${criu_v:-x}') and d['age_seconds'] >= 0"
check "omimg show $G/3 --json" "$OMIMG" show "$G/3" --json
ok "... with the store's pin and fence" json "$OUT" \
	"d['generation'] == 3 and d['pinned'] is False and d['store_fence'] is None and d['trees'][0]['root_pid'] == ${WPID[w]}"
check_rc 3 "omimg show of a missing generation exits 3" "$OMIMG" show "$G/77"
like "$ERR" "generation 77 of group $G not found" "... and names it"
check_rc 3 "omimg show of a missing path exits 3" "$OMIMG" show "$W/nothing/gen-1"
check_rc 3 "... also one that is not a reference: $G/2/x" "$OMIMG" show "$G/2/x"

# omdecode is omimg show of a path: the same lines, its flags as before
check "omdecode gen-2" "$OMDECODE" "$gdir/gen-2"
"$OMIMG" show "$gdir/gen-2" >"$W/show2.txt" 2>&1
is "$(grep -v '^age:' "$OUT")" "$(grep -v '^age:' "$W/show2.txt")" "... prints what omimg show PATH prints"
check "omdecode --verify --json gen-2" "$OMDECODE" --verify --json "$gdir/gen-2"
ok "... verified" json "$OUT" "d['verified'] is True and d['generation'] == 2"

# ---- verify ----
check "omimg verify $G/all" "$OMIMG" verify "$G/all"
is "$(grep -Ec "^miggroup $G generation [123]: ok, [0-9]+ files" "$OUT")" 3 "... every generation ok"
check "omimg verify $G (the newest) --json" "$OMIMG" verify --json "$G"
ok "... generation 3 ok" json "$OUT" "d['ok'] is True and [g['generation'] for g in d['generations']] == [3] and d['generations'][0]['files'] > 0"
big=$(find "$gdir/gen-1" -name '*.zst' -printf '%s %p\n' | sort -rn | awk 'NR == 1 {print $2}')
cp -p "$big" "$W/backup.zst"
flip_byte "$big"
check_rc 4 "omimg verify $G/1 with a flipped byte exits 4" "$OMIMG" verify "$G/1"
like "$ERR" "checksum mismatch in $big\$" "... naming the file"
check_rc 4 "omimg verify $G/all exits 4" "$OMIMG" verify "$G/all" --json
ok "... generation 1 bad, 2 and 3 ok" json "$OUT" \
	"d['ok'] is False and [(g['generation'], g['ok']) for g in d['generations']] == [(1, False), (2, True), (3, True)] and
	 '${big##*/}' in d['generations'][0]['error']"
check_rc 4 "omimg verify PATH exits 4 too" "$OMIMG" verify "$gdir/gen-1"
cat "$W/backup.zst" >"$big"
check "omimg verify $G/1 once repaired" "$OMIMG" verify "$G/1"

# ---- the store's fence of a group taken over (storage/README.md, "Fencing": .fence holds TOKEN NODE GEN) ----
echo "5 othernode 2" >"$gdir/.fence"
check "omimg list -g $G with a fence" "$OMIMG" list -g "$G"
like "$OUT" "^$G +fence: token 5, taken over by othernode from generation 2\$" "... a line says the store's fence"
check "omimg list -g $G --json with a fence" "$OMIMG" list -g "$G" --json
ok "... the group's fence object" json "$OUT" "d['groups'][0]['fence'] == {'token': 5, 'node': 'othernode', 'generation': 2}"
check "omimg show $G with a fence" "$OMIMG" show "$G"
like "$OUT" "^store fence: +5 \(taken over by othernode from generation 2\)\$" "... show says it too"
rm -f "$gdir/.fence"

# ---- rm ----
check "omimg rm $G/1" "$OMIMG" rm "$G/1"
like "$OUT" "^miggroup $G: generation 1 removed \([0-9.]+ [KMG]?i?B\)\$" "... says so, with its size"
ok "... gen-1 is gone" not test -e "$gdir/gen-1"
check "omimg list -g $G" "$OMIMG" list -g "$G"
is "$(gens_listed "$OUT")" "2 3" "... lists generations 2 and 3"
check_rc 3 "omimg rm of a removed generation exits 3" "$OMIMG" rm "$G/1"

# a pin of generation 2 by a live process of this node (the format of storage/store.h)
sleep 600 &
pinner=$!
track_pid "$pinner"
pin=$gdir/.pin-2-t45node-$pinner-0
make_pin "$pin" 600
check_rc 6 "omimg rm of a pinned generation exits 6" "$OMIMG" rm "$G/2"
like "$ERR" "pinned by process $pinner on node t45node" "... naming the holder (node and PID)"
ok "... gen-2 is still there" test -f "$gdir/gen-2/manifest.om"
check "omimg list -g $G --json" "$OMIMG" list -g "$G" --json
ok "... shows generation 2 pinned by process $pinner on node t45node" json "$OUT" \
	"[(g['generation'], g['pinned'], g['pinned_by']) for g in d['groups'][0]['generations']] == [(2, True, 'process $pinner on node t45node'), (3, False, None)]"
check "omimg show $G/2" "$OMIMG" show "$G/2"
like "$OUT" "^pinned: +yes, by process $pinner on node t45node\$" "... pinned, by whom"
like "$("$OMIMG" list -g "$G")" "^$G +2 .* process $pinner on node t45node\$" "... and the text of list"
kill "$pinner" 2>/dev/null
wait "$pinner" 2>/dev/null

# the newest generation still restores, and the worker continues
kill -9 "${wpids[@]}" 2>/dev/null
ok "the worker is killed" all_gone 5 "${wpids[@]}"
ok "its pids are free" pids_free 15 "${wpids[@]}"
check "omrestore -g $G (generation 3)" "$OMRESTORE" -g "$G"
ok "the worker continues from generation 3" continued_restored "$c3"

# ---- gc ----
dead=$(free_pid)
mkdir -p "$gdir/.tmp-t45node-$dead-0/tree-1" "$gdir/.prune-1-t45node-$dead" "$gdir/gen-99/tree-1"
head -c 10000 /dev/urandom >"$gdir/.tmp-t45node-$dead-0/tree-1/pages-1.img.zst"
head -c 20000 /dev/urandom >"$gdir/.prune-1-t45node-$dead/x.zst"
head -c 30000 /dev/urandom >"$gdir/gen-99/tree-1/pages-1.img.zst"
touch -d '2 days ago' "$gdir/gen-99/tree-1/pages-1.img.zst" "$gdir/gen-99/tree-1" "$gdir/gen-99"
check "omimg gc --dry-run" "$OMIMG" gc --dry-run
for d in ".tmp-t45node-$dead-0" ".prune-1-t45node-$dead" gen-99; do
	like "$OUT" "^would remove $OM_STORE/groups/$G/$d \([0-9.]+ [KMG]?i?B\): ." "... would remove $d, with the reason"
	ok "... $d is still there" test -d "$gdir/$d"
done
check "omimg gc --dry-run --json --max-age 1000000" "$OMIMG" gc --dry-run --json --max-age 1000000
ok "... a generation without a manifest younger than --max-age stays; the dead processes' leftovers do not" json "$OUT" \
	"d['dry_run'] is True and
	 {i['path']: i['bytes'] for i in d['items'] if '/$G/' in i['path']} == {'groups/$G/.tmp-t45node-$dead-0': 10000,
	  'groups/$G/.prune-1-t45node-$dead': 20000, 'groups/$G/.pin-2-t45node-$pinner-0': $(stat -c %s "$pin")} and
	 all(i['why'] for i in d['items'])"
check "omimg gc --json" "$OMIMG" gc --json
ok "... removed the four" json "$OUT" \
	"d['dry_run'] is False and {'groups/$G/.tmp-t45node-$dead-0', 'groups/$G/.prune-1-t45node-$dead', 'groups/$G/gen-99', 'groups/$G/.pin-2-t45node-$pinner-0'} <= {i['path'] for i in d['items']} and
	 d['bytes'] >= 60000 and d['work_dir']['swept'] is True"
for d in ".tmp-t45node-$dead-0" ".prune-1-t45node-$dead" gen-99; do
	ok "... $d is gone" not test -e "$gdir/$d"
done
ok "... the pin of the dead process is gone" not test -e "$pin"
check "omimg list -g $G after gc" "$OMIMG" list -g "$G"
is "$(gens_listed "$OUT")" "2 3" "... still generations 2 and 3"
check "omimg verify $G/all after gc" "$OMIMG" verify "$G/all"
check "a second gc" "$OMIMG" gc
like "$OUT" "^$OM_STORE: 0 items, 0 B freed\$" "... finds nothing"

# ---- --store, and the trees of omckpt -p (--pids) ----
check "omimg -s STORE list (no \$OM_STORE)" env -u OM_STORE "$OMIMG" -s "$OM_STORE" list -g "$G"
is "$(gens_listed "$OUT")" "2 3" "... the same generations"
check_rc 4 "omimg list of a store that does not exist exits 4" "$OMIMG" list --store "$W/no-store"
like "$ERR" "open store .*no-store" "... naming it"
start_plain_worker lone --mem 8 --children 0
ok "a lone worker ready" wait_ready lone
lp=${WPID[lone]}
for i in 1 2; do
	check "omckpt --leave-running -p $lp (generation $i)" "$OMCKPT" --leave-running -p "$lp"
done
check "omimg list --pids -g $lp --json" "$OMIMG" list --pids -g "$lp" --json
ok "... PID $lp with generations 1 2, one process" json "$OUT" \
	"d['kind'] == 'pids' and [(x['id'], [g['generation'] for g in x['generations']]) for x in d['pids']] == [($lp, [1, 2])] and
	 d['pids'][0]['generations'][0]['processes'] == 1"
check "omimg show --pids $lp" "$OMIMG" show --pids "$lp"
like "$OUT" "^single pid: +$lp\$" "... the tree of PID $lp"
check "omimg rm --pids $lp/1" "$OMIMG" rm --pids "$lp/1" --json
ok "... says so in JSON" json "$OUT" "d['removed']['kind'] == 'pids' and d['removed']['id'] == $lp and d['removed']['generation'] == 1 and d['removed']['stored_bytes'] > 0"
ok "... gen-1 of PID $lp is gone" not test -e "$OM_STORE/pids/$lp/gen-1"
check "omimg verify --pids $lp/all" "$OMIMG" verify --pids "$lp/all"
like "$OUT" "^PID $lp generation 2: ok" "... generation 2 is left and ok"
finish_ok lone

# ---- usage ----
check_rc 2 "omimg without a command exits 2" "$OMIMG"
check_rc 2 "an unknown command exits 2" "$OMIMG" frobnicate
check_rc 2 "an unknown option exits 2" "$OMIMG" list --no-such-option
for a in 0 "$G/0" "$G/x" "$G/-1" "0$G" "$G/all"; do
	check_rc 2 "omimg show $a exits 2" "$OMIMG" show "$a"
done
check_rc 2 "omimg rm without GEN exits 2" "$OMIMG" rm "$G"
check_rc 2 "omimg rm $G/all exits 2" "$OMIMG" rm "$G/all"
check_rc 2 "omimg list with an argument exits 2" "$OMIMG" list "$G"
check_rc 2 "omimg show without an argument exits 2" "$OMIMG" show
check_rc 2 "--dry-run with list exits 2" "$OMIMG" list --dry-run
check_rc 2 "--max-age that is not seconds exits 2" "$OMIMG" gc --max-age 1h
check_rc 2 "-g with show exits 2" "$OMIMG" show -g "$G" "$G"
check_rc 0 "omimg --help" "$OMIMG" --help
like "$OUT" "^Usage: omimg list" "... prints usage on stdout"
check_rc 0 "omimg --version" "$OMIMG" --version
like "$OUT" "^omimg \(omtools\) " "... prints the version"

finish_ok w
done_testing
