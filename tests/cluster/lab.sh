# shellcheck shell=bash
# shellcheck disable=SC2034  # OMLAB, LABDIR and LAB are the tests' own
# tests/cluster/lab.sh — the omlab cluster of a test (t92, t93, t94): sourced
# after tests/lib.sh, then `lab_init NAME NET PORT` (each test its own lab
# name, network and etcd port, so that two can run at once). Gives:
#   lab ARGS...          omlab on this lab, bounded ($LAB_TIMEOUT, 180 s)
#   on K CMD...          CMD inside node K (lib.sh's run: $RC, $OUT, $ERR)
#   conf KEY             a setting of the lab's host.conf (etcd_ca, ...)
#   ectl ARGS...         etcdctl on the lab's etcd (TLS, bounded)
#   wait_for SECS CMD... until CMD succeeds, at most SECS (its stderr dropped)
#   owner_of G, owned_by G K, alive_node K, dead_node K
#   omd_log K, logged_on K PATTERN...   node K's omd logs (every life of it)
#   start_on K G NAME ARGS...  a ZDTM worker in group G on node K (WPID[NAME]:
#                        its PID in the node), finish_on K NAME: its PASS
# At exit the lab goes down (after the omd logs, and $LAB_LOGS, are shown
# when a check failed), then lib.sh's own cleanup runs.

lab_init() {
	OMLAB=$OM_SRCDIR/cluster/omlab
	NAME=$1
	NET=$2
	PORT=$3
	LABDIR=/var/lib/omlab/$NAME
	LAB=(--name "$NAME" --net "$NET" --port "$PORT")
	trap _lab_exit EXIT
}
LAB_LOGS=()

lab() { timeout -k 5 "${LAB_TIMEOUT:-180}" "$OMLAB" "${LAB[@]}" "$@"; }
on() {
	local k=$1
	shift
	run "$OMLAB" "${LAB[@]}" exec "$k" -- "$@"
}
conf() { awk -F' *= *' -v k="$1" '$1 == k {print $2}' "$LABDIR/host.conf"; }
ectl() {
	ETCDCTL_API=3 timeout 20 etcdctl --endpoints "https://127.0.0.1:$PORT" --cacert "$(conf etcd_ca)" \
		--cert "$(conf etcd_cert)" --key "$(conf etcd_key)" "$@"
}
cleanup_lab() { LAB_TIMEOUT=120 lab down >/dev/null 2>&1; }
_lab_exit() {
	local f l
	if [ "$_T_FAILED" -gt 0 ]; then
		for f in "$LABDIR"/node*/omd*.log "${LAB_LOGS[@]}"; do
			[ -f "$f" ] || continue
			diag "--- ${f#"$LABDIR"/} (last 30 lines)"
			tail -n 30 "$f" | while IFS= read -r l; do diag "$l"; done
		done
	fi
	cleanup_lab
	_cleanup
}

wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}
owner_of() { ectl get --print-value-only "/omtools/groups/$1" | grep -o '"node":"[0-9]*"' | cut -d'"' -f4; }
owned_by() { [ "$(owner_of "$1")" = "$2" ]; }
alive_node() { ectl get --keys-only "/omtools/nodes/$1" | grep -q .; }
dead_node() { ! alive_node "$1"; }
omd_log() { cat "$LABDIR/node$1"/omd*.log 2>/dev/null; }
logged_on() {
	local k=$1 p
	shift
	for p in "$@"; do
		omd_log "$k" | grep -q -- "$p" || return 1
	done
}
start_on() {
	local k=$1 g=$2 name=$3
	shift 3
	on "$k" omrun -g "$g" -o "$W/$name.log" -- "$WORKER" --dir "$W" --name "$name" "$@"
	WPID[$name]=$(head -n1 "$OUT" | tr -d '[:space:]')
	WDONE[$name]=1 # a PID of the node's namespace: lib.sh must not kill it on the host
	[ "$RC" -eq 0 ] && [[ ${WPID[$name]} =~ ^[0-9]+$ ]] && wait_ready "$name" 30 && return 0
	diag "omrun on node $k exited $RC"
	diag_file "$ERR"
	return 1
}
finish_on() {
	local pid=${WPID[$2]} end=$((SECONDS + 120)) # 256 MiB checked on a loaded machine
	"$OMLAB" "${LAB[@]}" exec "$1" -- kill -TERM "$pid"
	while [ ! -e "$W/$2.result" ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
	if [ "$(cat "$W/$2.result" 2>/dev/null)" != PASS ]; then
		diag "worker $2: $(cat "$W/$2.result" 2>/dev/null || echo 'no result')"
		return 1
	fi
}
