#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t05-patches.sh — the CRIU patches omtools carries (patches/criu/): each has
# the header that says why it exists and which test proves it, the test it
# names exists, and the CRIU in use is the build of exactly these patches and
# passes the smoke test (a process of another user dumped and restored:
# patch 0001 where root lacks CAP_SYS_RESOURCE).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

P=$OM_SRCDIR/patches/criu
mapfile -t patches < <(find "$P" -name '*.patch' | sort)
plan $((${#patches[@]} * 5 + 3))
for p in "${patches[@]}"; do
	n=$(basename "$p")
	for field in Subject Why Test Upstream; do
		ok "$n has a '$field:' line in its header" grep -q "^$field: [^ ]" "$p"
	done
	# the Test: field and its indented continuation lines
	tests=$(awk '/^Test: /{on=1; print; next} on && /^  /{print; next} {on=0}' "$p" |
		grep -o 'tests/[A-Za-z0-9_/.-]*[A-Za-z0-9_]' | sort -u)
	missing=
	for t in $tests; do
		[ -e "$OM_SRCDIR/$t" ] || missing="$missing $t"
	done
	ok "$n names tests that exist (${tests//$'\n'/ })" test -n "$tests" -a -z "$missing"
done
stamp=/usr/local/share/omtools/criu.build
want=$( {
	sed -n 's/^CRIU_VERSION=//p' "$OM_SRCDIR/scripts/setup.sh"
	cat "${patches[@]}"
} | sha256sum | cut -c1-16)
ok "the installed CRIU is the build of these patches ($want)" grep -q " $want\$" "$stamp"
check "omckpt --check: CRIU dumps and restores a process of another user" "$OMCKPT" --check
like "$OUT" "smoke test: ok .*uid 65534" "... the smoke test ran as uid 65534 (nobody)"
