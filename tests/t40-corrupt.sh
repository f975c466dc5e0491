#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t40-corrupt.sh — a damaged store must be refused (exit 4, the bad file
# named, nothing restored); once repaired, the restore works. Leftover
# temporary directories of interrupted writers are ignored.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
group_ids 4000
export OM_CGROUP=v2

# flip_byte FILE : invert the byte in the middle of FILE, in place.
flip_byte() {
	local f=$1 size off b
	size=$(stat -c %s "$f")
	off=$((size / 2))
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((b ^ 0xff)))" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}

# repair FILE : put the backup copy back (same inode, same mode).
repair() {
	local f=$1
	cat "$W/backup/${f##*/}" >"$f"
}

# none_alive : no pid of the worker is alive.
none_alive() {
	# shellcheck disable=SC2086
	all_gone 2 $xpids
}

new_group
ok "omrun a worker in group $G" start_worker x --mem 64 --children 1
ok "worker ready" wait_ready x
xpids=$(pids_of x | tr '\n' ' ')
check "omckpt -g $G" "$OMCKPT" -g "$G"
# shellcheck disable=SC2086
ok "the worker is gone" all_gone 5 $xpids
# shellcheck disable=SC2086
ok "its pids are free" pids_free 15 $xpids

gen=$OM_STORE/groups/$G/gen-1
mkdir -p "$W/backup"
mapfile -t zst < <(find "$gen" -name '*.zst' -printf '%s %p\n' | sort -rn | awk '{print $2}')
ok "the generation holds at least two .zst files" test "${#zst[@]}" -ge 2
big=${zst[0]:-$gen/missing.zst}
other=${zst[1]:-$gen/missing2.zst}
for f in "$big" "$other" "$gen/manifest.om"; do cp -p "$f" "$W/backup/" 2>/dev/null; done
diag "largest: $big" "other:   $other"

# ---- a flipped byte in the largest image ----
flip_byte "$big"
ok "a byte of $(basename "$big") is flipped" not cmp -s "$big" "$W/backup/$(basename "$big")"
check_rc 4 "omrestore of a corrupted image exits 4" "$OMRESTORE" -g "$G"
like "$ERR" "$(basename "$big")" "... and names $(basename "$big")"
ok "... and restores nothing" none_alive
check_rc 4 "omdecode --verify finds the corruption (exit 4)" "$OMDECODE" --verify "$gen"
like "$(cat "$OUT" "$ERR")" "$(basename "$big")" "... and names the file"
repair "$big"

# ---- a truncated image ----
truncate -s $(($(stat -c %s "$other") / 2)) "$other"
check_rc 4 "omrestore of a truncated image exits 4" "$OMRESTORE" -g "$G"
like "$ERR" "$(basename "$other")" "... and names $(basename "$other")"
ok "... and restores nothing" none_alive
repair "$other"

# ---- a corrupted manifest ----
flip_byte "$gen/manifest.om"
check_rc 4 "omrestore with a corrupted manifest exits 4" "$OMRESTORE" -g "$G"
like "$ERR" "manifest" "... and says the manifest is bad"
ok "... and restores nothing" none_alive
repair "$gen/manifest.om"

# ---- leftovers of interrupted writers are ignored ----
# A .tmp-* copy with a broken manifest, and a gen-N without a manifest: were
# either taken for the newest generation, the restore would fail.
tmpgen=$OM_STORE/groups/$G/.tmp-deadnode-99999-1
cp -a "$gen" "$tmpgen"
flip_byte "$tmpgen/manifest.om"
mkdir "$OM_STORE/groups/$G/gen-7"
check "omdecode still works beside a .tmp-* directory" "$OMDECODE" "$gen"
check "omdecode --verify of the repaired generation" "$OMDECODE" --verify "$gen"
check "omrestore -g $G ignores .tmp-* and incomplete gen-7, restores gen-1" "$OMRESTORE" -g "$G"
# shellcheck disable=SC2086
ok "the worker is back" all_alive $xpids
ok "its counter advances" advancing x
finish_ok x

done_testing
