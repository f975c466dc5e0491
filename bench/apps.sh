#!/bin/bash
# bench/apps.sh — checkpoint time, restore time and image size of each real
# application of tests/apps/ (the `# figures:` line every a*.sh script prints
# for its migration of the loaded application), as one table.
#
#   bash bench/apps.sh            (as root, from the source tree, after a build
#                                  and `make check` built tests/apps/fdapp;
#                                  env OM_BUILDDIR=build by default)
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
OM_BUILDDIR=${OM_BUILDDIR:-$SRC/build}
export OM_BUILDDIR
[ "$(id -u)" = 0 ] || { echo "bench/apps.sh: run as root" >&2; exit 1; }

fails=
printf '%-10s %9s %12s %10s %10s %11s %7s\n' app processes checkpoint_s restore_s raw_MiB stored_MiB tests
for t in "$SRC"/tests/apps/a[0-9]*.sh; do
	out=$(bash "$t" 2>&1)
	fig=$(printf '%s\n' "$out" | sed -n 's/^# figures: //p' | head -1)
	res=$(printf '%s\n' "$out" | sed -n 's/^# \([0-9]*\) passed, \([0-9]*\) failed$/\1\/\2/p')
	case $res in */0) ;; *) # a failure: show what failed, after the table
		fails="$fails$(basename "$t"):
$(printf '%s\n' "$out" | grep -v '^ok ' | head -40)
" ;; esac
	[ -n "$fig" ] || { echo "$(basename "$t"): no figures (tests $res)"; continue; }
	# APP processes=N checkpoint_s=S restore_s=S raw_mib=M stored_mib=M
	# shellcheck disable=SC2086
	set -- $fig
	printf '%-10s %9s %12s %10s %10s %11s %7s\n' "$1" "${2#*=}" "${3#*=}" "${4#*=}" "${5#*=}" "${6#*=}" \
		"${res:-?}"
done
[ -z "$fails" ] || printf '\nfailed tests (passed/failed above):\n%s' "$fails"
