#!/usr/bin/env bash
# scripts/setup.sh — install everything omtools needs on Debian 12, build
# CRIU 4.2.1 from Debian's source with the patches omtools carries
# (patches/criu/), accept it only after a real dump/restore smoke test, then
# build and install omtools itself. Idempotent: the second run reuses what it
# built; a CRIU from an older setup is replaced.
#
#   scripts/setup.sh            install deps + CRIU + build + install omtools
#   scripts/setup.sh --deps     packages, CRIU, and the smoke test (omtools built in build/, not installed)
#   scripts/setup.sh --demo     everything above, then run scripts/demo.sh
#   scripts/setup.sh --check    deps + build, then the whole test suite (scripts/check.sh)
#
# Environment: OM_PREFIX (default /usr/local), OM_CACHE (default /var/cache/omtools)
set -euo pipefail

CRIU_VERSION=4.2.1
CRIU_DEBIAN_VERSION=4.2.1-1
CRIU_SUITE=sid
CRIU_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
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
      # cluster/: the etcd client (libcurl, json-c), etcd itself for omlab and the tests, openssl for its CA
      libcurl4-openssl-dev libjson-c-dev etcd-server etcd-client openssl iputils-ping
      xz-utils iproute2 procps psmisc clang libclang-rt-14-dev clang-format python3 bc
      # omckpt --tcp-established: the network lock (iptables is not used)
      nftables
      # tests/apps: the real applications and their clients
      redis-server redis-tools sqlite3 gzip util-linux
      # a80-postgres.sh (server and psql), a90-mpi.sh (mpicc, mpirun)
      postgresql-15 postgresql-client-15 openmpi-bin libopenmpi-dev)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing packages: ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Our CRIU: Debian's CRIU source (sid) plus the patches omtools carries in
# patches/criu/ (each says why it exists). A build is identified by the
# version and a hash of the patches; an older CRIU left by an earlier setup
# (4.1.1, or the same version with other patches) is rebuilt and replaced.
# It is accepted only once `omckpt --check` has really dumped and restored a
# process with it (below), not on `criu check` alone, which passes on VMs
# where every dump hangs.
PATCH_DIR=$TOP/patches/criu
criu_build_id() {
	{
		echo "$CRIU_VERSION"
		cat "$PATCH_DIR"/*.patch 2>/dev/null
	} | sha256sum | cut -c1-16
}
BUILD_ID=$(criu_build_id)
STAMP=$PREFIX/share/omtools/criu.build
installed_id=$(cat "$STAMP" 2>/dev/null || true)

if [ "$installed_id" = "$CRIU_VERSION $BUILD_ID" ] && [ -x "$PREFIX/sbin/criu" ] &&
	PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig:$PREFIX/lib/x86_64-linux-gnu/pkgconfig" pkg-config --exists criu; then
	ldconfig
	log "using CRIU $CRIU_VERSION (build $BUILD_ID) at $PREFIX/sbin/criu"
else
	[ -n "$installed_id" ] && log "replacing CRIU build '$installed_id' by $CRIU_VERSION $BUILD_ID"
	[ -z "$installed_id" ] && [ -x "$PREFIX/sbin/criu" ] &&
		log "replacing $("$PREFIX/sbin/criu" --version 2>/dev/null | head -1) at $PREFIX/sbin/criu by $CRIU_VERSION $BUILD_ID"
	mkdir -p "$CACHE"
	tarball="$CACHE/criu_$CRIU_VERSION.orig.tar.xz"
	if [ ! -f "$tarball" ] || ! echo "$CRIU_SHA256  $tarball" | sha256sum -c --status; then
		log "fetching CRIU $CRIU_VERSION source through apt ($CRIU_SUITE deb-src)"
		list=/etc/apt/sources.list.d/omtools-$CRIU_SUITE-src.sources
		if [ ! -f "$list" ]; then
			cat >"$list" <<EOS
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $CRIU_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
		fi
		apt-get update -qq
		dl=$(mktemp -d)
		chmod 777 "$dl"
		# apt-get source fails on the Debian tarball afterwards; the orig tarball is what we need
		(cd "$dl" && apt-get source -qq --download-only "criu=$CRIU_DEBIAN_VERSION" >/dev/null 2>&1) || true
		[ -f "$dl/criu_$CRIU_VERSION.orig.tar.xz" ] || die "apt-get source did not fetch criu_$CRIU_VERSION.orig.tar.xz"
		mv "$dl/criu_$CRIU_VERSION.orig.tar.xz" "$tarball"
		rm -rf "$dl"
		echo "$CRIU_SHA256  $tarball" | sha256sum -c --status || die "checksum mismatch for $tarball"
	fi
	src="$CACHE/criu-$CRIU_VERSION-$BUILD_ID"
	if [ ! -x "$src/criu/criu" ] || [ ! -f "$src/lib/c/libcriu.so" ]; then
		log "building CRIU $CRIU_VERSION with $(ls "$PATCH_DIR"/*.patch 2>/dev/null | wc -l) carried patch(es) in $src"
		rm -rf "$src"
		mkdir -p "$src"
		tar -xJf "$tarball" -C "$src" --strip-components=1
		for p in "$PATCH_DIR"/*.patch; do
			[ -f "$p" ] || continue
			patch -d "$src" -p1 --forward --batch <"$p" >>"$CACHE/criu-build.log" 2>&1 ||
				die "carried patch $(basename "$p") does not apply to CRIU $CRIU_VERSION (log: $CACHE/criu-build.log)"
			log "  applied $(basename "$p")"
		done
		make -C "$src" -j"$(nproc)" criu lib >"$CACHE/criu-build.log" 2>&1 ||
			{ tail -30 "$CACHE/criu-build.log" >&2; die "CRIU build failed (log: $CACHE/criu-build.log)"; }
	fi
	log "installing CRIU $CRIU_VERSION into $PREFIX"
	make -C "$src" PREFIX="$PREFIX" SKIP_PIP_INSTALL=1 install-criu install-lib >>"$CACHE/criu-build.log" 2>&1 ||
		{ tail -30 "$CACHE/criu-build.log" >&2; die "CRIU install failed"; }
	ldconfig
	mkdir -p "$(dirname "$STAMP")"
	echo "$CRIU_VERSION $BUILD_ID" >"$STAMP"
	log "CRIU $("$PREFIX/sbin/criu" --version | head -1) ready"
fi

# build omtools (in build/), then accept CRIU only if the smoke test passes
build_omtools() {
	cd "$TOP"
	[ -x configure ] || ./autogen.sh >/dev/null 2>&1 || die "autogen.sh failed"
	export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig:$PREFIX/lib/x86_64-linux-gnu/pkgconfig:$PREFIX/lib64/pkgconfig:${PKG_CONFIG_PATH:-}"
	mkdir -p build
	cd build
	[ -f Makefile ] || ../configure --prefix="$PREFIX" --sysconfdir=/etc --localstatedir=/var >configure.out 2>&1 ||
		{ tail -20 configure.out >&2; die "configure failed"; }
	make -j"$(nproc)" >make.out 2>&1 || { tail -40 make.out >&2; die "build failed"; }
	cd "$TOP"
}
smoke_test() {
	local out
	out=$(OM_CRIU="$PREFIX/sbin/criu" OM_WORKDIR=$(mktemp -d /tmp/omsmoke.XXXXXX) \
		timeout -k 5 300 "$TOP/build/omckpt" --check 2>&1) ||
		{ printf '%s\n' "$out" >&2; die "CRIU at $PREFIX/sbin/criu fails the smoke test (omckpt --check above)"; }
	printf '%s\n' "$out" | sed -n 's/^ *smoke test: /smoke test: /p' | cut -c1-60 | sed 's/^/[setup] /' >&2
}

[ "$mode" = --deps ] && { build_omtools; smoke_test; exit 0; }
if [ "$mode" = --check ]; then
	build_omtools
	smoke_test
	exec bash "$TOP/scripts/check.sh"
fi

log "building omtools in $TOP/build"
build_omtools
smoke_test
cd "$TOP/build"
make install >install.out 2>&1 || { tail -20 install.out >&2; die "install failed"; }
ldconfig
log "omtools installed into $PREFIX"
[ "$mode" = --demo ] && exec bash "$TOP/scripts/demo.sh"
exit 0
