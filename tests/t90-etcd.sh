#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# t90-etcd.sh — the etcd client (cluster/etcd.h) and its sandboxed parser
# against a real etcd (/usr/bin/etcd, 3.4), started here on 127.0.0.1 with
# free high ports and a data dir under $W: first on plain HTTP, then on TLS
# with client-certificate authentication (a throwaway CA, a server
# certificate for IP:127.0.0.1 that is also good for clientAuth: etcd 3.4's
# gateway dials etcd itself with it; and a client certificate, made with
# openssl).
# tests/unit/test-etcd does the work; each etcd is killed and its directory
# removed at exit (lib.sh's trap), and every wait has a deadline.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

ETCD=${OM_ETCD:-/usr/bin/etcd}
TEST_ETCD=$OM_BUILDDIR/tests/unit/test-etcd
if [ ! -x "$ETCD" ] || ! command -v etcdctl >/dev/null || ! command -v openssl >/dev/null; then
	echo "1..0 # SKIP needs $ETCD, etcdctl and openssl"
	exit 0
fi
if [ ! -x "$TEST_ETCD" ]; then
	echo "Bail out! $TEST_ETCD is missing (make check builds it)"
	exit 1
fi

port_free() {
	[ -z "$(ss -Htan "( sport = :$1 or dport = :$1 )" 2>/dev/null)" ]
}

# start_etcd NAME SCHEME [TLS FLAGS...] : start etcd, set EP (its client URL)
# and EPID; 0 once it answers /health (20 s at most, 3 tries on other ports).
start_etcd() {
	local name=$1 scheme=$2 try cp pp dir deadline i
	shift 2
	local -a tlsopts=()
	[ "$scheme" = https ] && tlsopts=(--cacert "$TLS/ca.pem" --cert "$TLS/client.pem" --key "$TLS/client.key")
	for try in 1 2 3; do
		cp=
		for i in $(seq 0 60); do
			local p=$((40000 + ($$ * 7 + try * 997 + i * 13) % 20000))
			if port_free "$p" && port_free $((p + 1)); then cp=$p; break; fi
		done
		[ -n "$cp" ] || return 1
		pp=$((cp + 1))
		dir=$(mktemp -d "$W/etcd-$name.XXXXXX")
		"$ETCD" --name "t90-$name" --data-dir "$dir/data" \
			--listen-client-urls "$scheme://127.0.0.1:$cp" --advertise-client-urls "$scheme://127.0.0.1:$cp" \
			--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
			--initial-cluster "t90-$name=http://127.0.0.1:$pp" --initial-cluster-state new \
			"$@" </dev/null >"$dir/log" 2>&1 &
		EPID=$!
		track_pid "$EPID"
		EP="$scheme://127.0.0.1:$cp"
		ELOG=$dir/log
		deadline=$((SECONDS + 20))
		while [ "$SECONDS" -lt "$deadline" ] && alive "$EPID"; do
			if timeout 5 etcdctl --endpoints "$EP" --dial-timeout=1s --command-timeout=2s "${tlsopts[@]}" \
				endpoint health >/dev/null 2>&1; then
				return 0
			fi
			sleep 0.2
		done
		kill -9 "$EPID" 2>/dev/null
		wait "$EPID" 2>/dev/null
		diag "etcd on $EP did not come up (try $try):"
		diag_file "$dir/log"
	done
	return 1
}

# stop_etcd : SIGTERM, then SIGKILL after 10 s.
stop_etcd() {
	local deadline=$((SECONDS + 10))
	kill "$EPID" 2>/dev/null
	while alive "$EPID" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
	kill -9 "$EPID" 2>/dev/null
	wait "$EPID" 2>/dev/null
	! alive "$EPID"
}

# run_tap NAME CMD... : run a TAP program; one test here, its failures as diagnostics.
run_tap() {
	local name=$1 n f
	shift
	run "$@"
	n=$(grep -c '^ok ' "$OUT")
	f=$(grep -c '^not ok ' "$OUT")
	if [ "$RC" -eq 0 ] && [ "$f" -eq 0 ] && [ "$n" -gt 0 ]; then
		pass "$name ($n tests)"
	else
		fail "$name ($n passed, $f failed, exit $RC)"
		grep -A3 '^not ok ' "$OUT" | sed 's/^/#   /' | head -60
		tail -5 "$OUT" | sed 's/^/#   /'
		diag_file "$ERR"
		diag "etcd's log:"
		tail -n 15 "$ELOG" | sed 's/^/#   /'
	fi
}

# ---- the parser alone ----
run_tap "test-etcd: the sandboxed parser" "$TEST_ETCD"

# ---- plain HTTP ----
if start_etcd plain http; then
	pass "etcd on $EP is up"
	run_tap "test-etcd on plain HTTP" "$TEST_ETCD" "$EP"
	ok "etcd still runs after the tests" alive "$EPID"
	ok "etcd stops on SIGTERM" stop_etcd
else
	fail "etcd (plain HTTP) starts"
fi

# ---- TLS with client certificates ----
TLS=$W/tls
mkdir -p "$TLS"
mkcerts() {
	local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	cd "$TLS" || return 1
	openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj /CN=t90-ca &&
		openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=127.0.0.1 &&
		printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext &&
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
			-extfile server.ext &&
		openssl req "${ec[@]}" -keyout client.key -out client.csr -subj /CN=t90-client &&
		printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 \
			-extfile client.ext
}
certs_made() {
	(mkcerts) >"$W/mkcerts.log" 2>&1 && return 0
	diag_file "$W/mkcerts.log"
	return 1
}
if ok "a throwaway CA, server and client certificates" certs_made &&
	start_etcd tls https --cert-file "$TLS/server.pem" --key-file "$TLS/server.key" \
		--trusted-ca-file "$TLS/ca.pem" --client-cert-auth; then
	pass "etcd on $EP (TLS, client-cert-auth) is up"
	run_tap "test-etcd on TLS with a client certificate" "$TEST_ETCD" "$EP" "$TLS/ca.pem" "$TLS/client.pem" \
		"$TLS/client.key"
	ok "etcd stops on SIGTERM" stop_etcd
else
	fail "etcd (TLS) starts"
fi

done_testing
