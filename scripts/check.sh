#!/usr/bin/env bash
# scripts/check.sh — the whole test suite, as CI runs it (via scripts/setup.sh --check):
#   0. clang-format --dry-run over every C file
#   1. build/        normal build, `make check` (unit tests + ZDTM-style suite, TAP)
#   2. build-asan/   ASAN+UBSAN build, `make check` again
#   3. build-fuzz/   libFuzzer build of every parser of untrusted bytes, a short run each
#   4. `make distcheck` (tarball builds, installs, passes its own check)
# Ends with one line "N passed, N failed" over all test results.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
export PKG_CONFIG_PATH="/usr/local/lib/pkgconfig:/usr/local/lib/x86_64-linux-gnu/pkgconfig:${PKG_CONFIG_PATH:-}"
JOBS=$(nproc)
FUZZ_SECONDS=${OM_FUZZ_SECONDS:-30}
passed=0 failed=0

log() { printf '\n=== %s\n' "$*"; }
count() { # $1: build dir: add its test-suite.log counts
	local f="$1/test-suite.log" p fl
	[ -f "$f" ] || return 0
	p=$(sed -n 's/^# PASS: *//p' "$f" | head -1)
	fl=$(( $(sed -n 's/^# FAIL: *//p' "$f" | head -1) + $(sed -n 's/^# ERROR: *//p' "$f" | head -1) + $(sed -n 's/^# XPASS: *//p' "$f" | head -1) ))
	passed=$((passed + ${p:-0}))
	failed=$((failed + fl))
}
step_failed() { failed=$((failed + 1)); echo "FAILED: $*"; }

[ -x configure ] || ./autogen.sh >/dev/null 2>&1 || { echo "autogen failed"; exit 1; }
if [ -f Makefile ]; then
	echo "the source tree is configured in place; run 'make distclean' first (builds go to build*/)" >&2
	exit 1
fi

build() { # $1 dir, rest: configure args
	local dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" && { [ -f Makefile ] || ../configure --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var "$@" >configure.out 2>&1 || { tail -20 configure.out; exit 1; }; } && make -j"$JOBS" >make.out 2>&1 || { tail -40 make.out; exit 1; })
}

run_check() { # $1 dir
	if (cd "$1" && make -j"$JOBS" check); then :; else
		cat "$1"/test-suite.log 2>/dev/null | tail -150
	fi
	count "$1"
}

log "code format (.clang-format)"
if clang-format --dry-run -Werror $(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*') >format.out 2>&1; then
	passed=$((passed + 1)); echo "ok - every C file is formatted"
else
	head -40 format.out; step_failed "clang-format (run: clang-format -i \$(git ls-files '*.c' '*.h'))"
fi
rm -f format.out

# The suite restores processes with their own PIDs, and the cluster tests
# (omlab nodes, each a PID namespace) use host PIDs by the thousand: with the
# kernel's default pid_max (32768) the counter wraps within a run and a
# process of the suite itself can take a PID a restore needs (exit 6, which
# is right, but not what a test meant to check). A larger pid_max makes that
# as rare as on a real node.
if [ "$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 0)" -lt 4194304 ]; then
	echo 4194304 >/proc/sys/kernel/pid_max 2>/dev/null || echo "note: pid_max stays $(cat /proc/sys/kernel/pid_max)"
fi

log "normal build and test suite"
if build build; then run_check build; else step_failed "build"; fi

log "ASAN+UBSAN build and test suite"
if build build-asan --enable-sanitizers; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_check build-asan
else step_failed "sanitizer build"; fi

log "fuzzers (${FUZZ_SECONDS}s each)"
if CC=clang build build-fuzz --enable-fuzzers --disable-shared; then
	for f in build-fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name=$(basename "$f")
		corpus=$(mktemp -d)
		case $name in
		fuzz_decompress) cp -r tests/fuzz/corpus-zst/. "$corpus"/ ;;
		fuzz_json) cp -r tests/fuzz/corpus-json/. "$corpus"/ ;;
		fuzz_map) cp -r tests/fuzz/corpus-map/. "$corpus"/ ;;
		*) cp -r tests/fuzz/corpus/. "$corpus"/ ;;
		esac
		if "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$corpus" >"build-fuzz/$name.out" 2>&1; then
			passed=$((passed + 1)); echo "ok - $name ran ${FUZZ_SECONDS}s without a crash"
		else
			tail -40 "build-fuzz/$name.out"; step_failed "$name"
		fi
		rm -rf "$corpus"
	done
else step_failed "fuzzer build"; fi

if [ "${OM_SKIP_DISTCHECK:-0}" != 1 ]; then
	log "make distcheck"
	if (cd build && make -j"$JOBS" distcheck >distcheck.out 2>&1); then
		passed=$((passed + 1)); echo "ok - make distcheck"
	else
		tail -60 build/distcheck.out; step_failed "make distcheck"
	fi
fi

# The digest: every failed check with the diagnostics its test printed under
# it (the command, its exit status, its stderr), a few lines each, last in
# the output where a CI page that keeps only the tail still shows them.
digest() {
	local f
	for f in build/tests/*.log build/tests/*/*.log build-asan/tests/*.log build-asan/tests/*/*.log; do
		[ -f "$f" ] || continue
		grep -qE '^(not ok|Bail out)' "$f" 2>/dev/null || continue
		echo "--- $f"
		# a check's diagnostics come before its line (what it waited for)
		# and after it (the command, its exit status and stderr)
		awk '/^(not ok|Bail out)/ { for (i = 0; i < nb; i++) print b[i]; nb = 0; n = 12; print; next }
		     /^#/ { if (n > 0) { print; n--; next } if (nb == 6) { for (i = 1; i < 6; i++) b[i - 1] = b[i]; nb = 5 } b[nb++] = $0; next }
		     { n = 0; nb = 0 }' "$f" | head -60
	done
}
if [ "$failed" -gt 0 ]; then
	log "failed checks and their diagnostics"
	digest
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
