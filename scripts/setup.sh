#!/usr/bin/env bash
# scripts/setup.sh — install everything omtools needs on Debian 12, build a
# working CRIU when the system one does not pass `criu check`, then build and
# install omtools itself.  Idempotent: the second run reuses what it built.
#
#   scripts/setup.sh            install deps + CRIU + build + install omtools
#   scripts/setup.sh --deps     only packages and CRIU
#   scripts/setup.sh --demo     everything above, then run scripts/demo.sh
#   scripts/setup.sh --check    deps + build, then the whole test suite (scripts/check.sh)
#
# Environment: OM_PREFIX (default /usr/local), OM_CACHE (default /var/cache/omtools)
set -euo pipefail

CRIU_VERSION=4.1.1
CRIU_SHA256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
PREFIX=${OM_PREFIX:-/usr/local}
CACHE=${OM_CACHE:-/var/cache/omtools}
TOP=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-install}
case "$mode" in
install | --deps | --demo | --check) ;;
*) echo "usage: $0 [--deps|--demo|--check]" >&2; exit 2 ;;
esac

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (checkpoint/restore needs CAP_SYS_ADMIN and friends)"
export DEBIAN_FRONTEND=noninteractive

PKGS=(build-essential autoconf automake libtool pkg-config
      libzstd-dev zstd libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
      python3-protobuf libnl-3-dev libnet1-dev libcap-dev libbsd-dev
      libgnutls28-dev libnftables-dev uuid-dev libssl-dev libseccomp-dev
      xz-utils iproute2 procps psmisc clang libclang-rt-14-dev clang-format python3 bc
      # omckpt --tcp-established: the network lock (iptables is not used)
      nftables
      # tests/apps: the real applications and their clients
      redis-server redis-tools sqlite3 gzip util-linux)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing packages: ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

criu_ok() { # $1: criu binary
	[ -x "$1" ] && "$1" check >/dev/null 2>&1
}

have_criu=""
if criu_ok "$PREFIX/sbin/criu" && pkg-config --exists criu 2>/dev/null; then
	have_criu="$PREFIX/sbin/criu"
elif command -v criu >/dev/null && criu_ok "$(command -v criu)" && pkg-config --exists criu 2>/dev/null; then
	have_criu=$(command -v criu)
fi

if [ -n "$have_criu" ]; then
	ldconfig
	log "using working CRIU at $have_criu ($("$have_criu" --version | head -1))"
else
	src="$CACHE/criu-$CRIU_VERSION"
	mkdir -p "$CACHE"
	tarball="$CACHE/criu_$CRIU_VERSION.orig.tar.xz"
	if [ ! -f "$tarball" ] || ! echo "$CRIU_SHA256  $tarball" | sha256sum -c --status; then
		log "fetching CRIU $CRIU_VERSION source through apt (trixie deb-src)"
		list=/etc/apt/sources.list.d/omtools-trixie-src.sources
		if [ ! -f "$list" ]; then
			cat >"$list" <<EOS
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
			apt-get update -qq
		fi
		dl=$(mktemp -d)
		chmod 777 "$dl"
		# apt-get source fails on the .dsc afterwards; the orig tarball is what we need
		(cd "$dl" && apt-get source -qq --download-only criu/trixie >/dev/null 2>&1) || true
		[ -f "$dl/criu_$CRIU_VERSION.orig.tar.xz" ] || die "apt-get source did not fetch criu_$CRIU_VERSION.orig.tar.xz"
		mv "$dl/criu_$CRIU_VERSION.orig.tar.xz" "$tarball"
		rm -rf "$dl"
		echo "$CRIU_SHA256  $tarball" | sha256sum -c --status || die "checksum mismatch for $tarball"
	fi
	if [ ! -x "$src/criu/criu" ] || [ ! -f "$src/lib/c/libcriu.so" ]; then
		log "building CRIU $CRIU_VERSION in $src"
		rm -rf "$src"
		mkdir -p "$src"
		tar -xJf "$tarball" -C "$src" --strip-components=1
		make -C "$src" -j"$(nproc)" criu lib >"$CACHE/criu-build.log" 2>&1 ||
			{ tail -30 "$CACHE/criu-build.log" >&2; die "CRIU build failed (log: $CACHE/criu-build.log)"; }
	fi
	log "installing CRIU $CRIU_VERSION into $PREFIX"
	make -C "$src" PREFIX="$PREFIX" SKIP_PIP_INSTALL=1 install-criu install-lib >>"$CACHE/criu-build.log" 2>&1 ||
		{ tail -30 "$CACHE/criu-build.log" >&2; die "CRIU install failed"; }
	ldconfig
	criu_ok "$PREFIX/sbin/criu" || { "$PREFIX/sbin/criu" check >&2 || true; die "built CRIU fails 'criu check'"; }
	log "CRIU $("$PREFIX/sbin/criu" --version | head -1) ready"
fi

[ "$mode" = --deps ] && exit 0
[ "$mode" = --check ] && exec bash "$TOP/scripts/check.sh"

log "building omtools in $TOP/build"
cd "$TOP"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1 || die "autogen.sh failed"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig:$PREFIX/lib/x86_64-linux-gnu/pkgconfig:$PREFIX/lib64/pkgconfig:${PKG_CONFIG_PATH:-}"
mkdir -p build
cd build
[ -f Makefile ] || ../configure --prefix="$PREFIX" --sysconfdir=/etc --localstatedir=/var >configure.out 2>&1 ||
	{ tail -20 configure.out >&2; die "configure failed"; }
make -j"$(nproc)" >make.out 2>&1 || { tail -40 make.out >&2; die "build failed"; }
make install >install.out 2>&1 || { tail -20 install.out >&2; die "install failed"; }
ldconfig
log "omtools installed into $PREFIX"
[ "$mode" = --demo ] && exec bash "$TOP/scripts/demo.sh"
exit 0
