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

# ---- a zstd bomb that the manifest vouches for ----
# Someone with write access to the store replaces the largest image by a few
# KiB that expand to 512 MiB of zeros (padded with a zstd skippable frame to
# the recorded stored size) and puts its SHA-256 into the manifest (whose own
# checksum is recomputed): every checksum matches. omrestore extracts into a
# scratch tmpfs only a little larger than the generation's raw bytes: the
# bomb must be cut at the size the manifest records for it (exit 4, naming
# it), not fill the scratch space.
bomb_into() { # bomb_into IMAGE MANIFEST BOMB
	python3 - "$@" <<'PY'
import hashlib, struct, sys
img, man, bombf = sys.argv[1:4]
old = open(img, 'rb').read()
bomb = open(bombf, 'rb').read()
pad = len(old) - len(bomb) - 8
if pad < 0:
    sys.exit("the bomb is larger than the image")
bomb += struct.pack('<II', 0x184D2A50, pad) + bytes(pad)  # a zstd skippable frame
m = bytearray(open(man, 'rb').read())
old_sha = hashlib.sha256(old).digest()
i = m.find(old_sha)
if i < 0 or m.find(old_sha, i + 1) >= 0:
    sys.exit("the image's SHA-256 is not in the manifest exactly once")
m[i:i + 32] = hashlib.sha256(bomb).digest()
m[-32:] = hashlib.sha256(bytes(m[:-32])).digest()
open(img, 'wb').write(bomb)
open(man, 'wb').write(bytes(m))
PY
}
head -c 512M /dev/zero | zstd -q -c >"$W/bomb.zst"
ok "a 512 MiB zstd bomb of $(stat -c %s "$W/bomb.zst") bytes goes into $(basename "$big") and the manifest" \
	bomb_into "$big" "$gen/manifest.om" "$W/bomb.zst"
check "omdecode --verify accepts it: every checksum matches" "$OMDECODE" --verify "$gen"
raw=$("$OMDECODE" --json "$gen" | grep -o '"raw_bytes":[0-9]*' | head -1 | cut -d: -f2)
small=$W/smallwork
mkdir -p "$small"
if [ -n "$raw" ] && mount -t tmpfs -o size=$((raw / 1048576 + 32))m omtools-t40 "$small"; then
	_MOUNTS+=("$small")
	OM_WORKDIR=$small check_rc 4 "omrestore with the bomb in a scratch tmpfs of $((raw / 1048576 + 32)) MiB exits 4" \
		"$OMRESTORE" -g "$G"
	like "$ERR" "$(basename "$big") decompresses to more than [0-9]+ bytes" \
		"... naming $(basename "$big") and the size it may not pass"
	ok "... and restores nothing" none_alive
	ok "... and leaves no image in the scratch dir" test -z "$(find "$small" -name '*.img' 2>/dev/null)"
	umount "$small"
else
	fail "mount a scratch tmpfs for the bomb (raw bytes '$raw')"
fi
repair "$big"
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
