#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t05-layering.sh — every folder of libom includes only from the folders its
# README allows: lib/ from nothing else, miggroup/ from lib/ and proto/, storage/ from
# lib/ and proto/, ckpt/ and restore/ from lib/, miggroup/, storage/ and
# proto/ (restore/ never from ckpt/: the scratch directory is lib/workdir.c),
# cluster/ from all of those. A command (a file with main()) is a thin file
# over the whole library and may include from any folder.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

declare -A ALLOWED=(
	[lib]="lib"
	[miggroup]="lib proto"
	[storage]="lib proto"
	[shmig]="lib storage proto"
	[ckpt]="lib miggroup storage shmig proto"
	[restore]="lib miggroup storage shmig proto"
	[cluster]="lib miggroup storage shmig ckpt restore proto"
)

# owner HEADER : the folder whose file HEADER is (proto for the generated om.pb-c.h).
owner() {
	local d
	case $1 in
	config.h) echo config; return ;;
	*.pb-c.h) echo proto; return ;;
	esac
	for d in lib miggroup storage ckpt restore shmig cluster kmod; do
		[ -e "$OM_SRCDIR/$d/$1" ] && { echo "$d"; return; }
	done
	echo unknown
}

# layered DIR : every #include "..." of DIR/*.[ch] is from DIR itself or an allowed folder.
layered() {
	local dir=$1 f h o bad=
	for f in "$OM_SRCDIR/$dir"/*.[ch]; do
		grep -q '^int main(' "$f" && continue # a command
		while read -r h; do
			o=$(owner "$h")
			[ "$o" = config ] || [ "$o" = "$dir" ] && continue
			[[ " ${ALLOWED[$dir]} " == *" $o "* ]] || bad="$bad ${f#"$OM_SRCDIR"/}:$h($o/)"
		done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	done
	[ -z "$bad" ] && return 0
	diag "$dir/ includes what its README does not allow:$bad"
	return 1
}

for dir in lib miggroup storage shmig ckpt restore cluster; do
	ok "$dir/ includes only from itself and: ${ALLOWED[$dir]}" layered "$dir"
done
ok "no folder below cluster/ includes from it" sh -c "! grep -l '^#include \"\\(cluster\\|etcd\\|agent\\|migrate\\|sandbox\\|map\\)\\.h\"' \$(grep -L '^int main(' $OM_SRCDIR/lib/*.[ch] $OM_SRCDIR/miggroup/*.[ch] $OM_SRCDIR/storage/*.[ch] $OM_SRCDIR/shmig/*.[ch] $OM_SRCDIR/ckpt/*.[ch] $OM_SRCDIR/restore/*.[ch])"
ok "the scratch directory lives in lib/ (om_workdir in lib/workdir.h)" grep -qs "om_workdir(" "$OM_SRCDIR/lib/workdir.h"

done_testing
