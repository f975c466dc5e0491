#!/bin/bash
# shellcheck disable=SC2317  # functions are invoked indirectly through ok/check
# a70-user.sh — process trees running as an unprivileged user in a miggroup:
#  - `runuser -u nobody -- worker` (runuser stays as root, the worker and its
#    children run as nobody),
#  - `setpriv --reuid nobody ... worker` (the whole tree is nobody's).
# Migration, then --leave-running, kill and restore of that generation; after
# each restore the processes are still nobody's, the counters continue and
# the workers' own checks (heap, files, children) pass at the end. CRIU reads
# the rlimits of another user's process from /proc/PID/limits when prlimit()
# is refused (patches/criu/0001).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
# shellcheck source=tests/apps/apps.sh
. "$(dirname "$0")/apps.sh"
group_ids 17000
need_cmd runuser setpriv
id nobody >/dev/null 2>&1 || { echo "Bail out! no user nobody"; exit 1; }
NOBODY=$(id -u nobody)

export OM_CGROUP=v2
new_group
chmod 1777 "$W" # the workers, as nobody, write their status and data files there

uid_of() { awk '/^Uid:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null; }
# all_nobody PID... : every PID runs as nobody
all_nobody() {
	local p bad=
	for p in "$@"; do
		[ "$(uid_of "$p")" = "$NOBODY" ] || bad="$bad $p:$(uid_of "$p")"
	done
	[ -z "$bad" ] && return 0
	diag "not nobody's (pid:uid):$bad"
	return 1
}
ahead() { # NAME VALUE : counter of NAME above VALUE
	local now
	now=$(counter "$1")
	[ -n "$now" ] && [ "$now" -gt "$2" ] && return 0
	diag "counter of $1: $now, not above $2"
	return 1
}

ok "runuser -u nobody -- worker started in group $G" omrun_app ru runuser -u nobody -- \
	"$WORKER" --dir "$W" --name ru --mem 16 --children 2
ok "setpriv --reuid nobody -- worker started in group $G" omrun_app sp setpriv --reuid="$NOBODY" \
	--regid="$(id -g nobody)" --clear-groups -- "$WORKER" --dir "$W" --name sp --mem 16 --children 1
ok "... both ready" eval "wait_ready ru && wait_ready sp"
WPID[ru]=$(status_field ru pid)
WPID[sp]=$(status_field sp pid)
runuser_pid=${APID[ru]}
ok "... runuser ($runuser_pid) is root's" test "$(uid_of "$runuser_pid")" = 0
# shellcheck disable=SC2046
ok "... the workers and their children are nobody's" all_nobody $(pids_of ru sp)
pids=$(members | tr '\n' ' ')
nobodys=$(pids_of ru sp | tr '\n' ' ')

a=$(counter ru)
b=$(counter sp)
timed "$OMCKPT" -g "$G"
tc=$T_SECS
ok "omckpt -g $G (migration)" test "$RC" -eq 0 || diag_file "$ERR"
# shellcheck disable=SC2086
ok "... every process is gone" pids_free 20 $pids
timed "$OMRESTORE" -g "$G"
tr=$T_SECS
ok "omrestore -g $G" test "$RC" -eq 0 || diag_file "$ERR"
ckpt_restore_figures user "$OM_STORE/groups/$G/gen-1" "$tc" "$tr"
is "$(members | tr '\n' ' ')" "$pids" "... the same processes are back in the group"
# shellcheck disable=SC2086
ok "... still nobody's" all_nobody $nobodys
ok "... runuser is still root's" test "$(uid_of "$runuser_pid")" = 0
ok "... the workers carry on" eval "advancing ru && advancing sp"
ok "... from where they were" eval "ahead ru $a && ahead sp $b"

check "omckpt --leave-running -g $G" "$OMCKPT" --leave-running -g "$G"
ok "... they keep running" eval "advancing ru && advancing sp"
ok "the group killed" kill_group
check "omrestore -g $G --generation 2" "$OMRESTORE" -g "$G" --generation 2
# shellcheck disable=SC2086
ok "... nobody's again" all_nobody $nobodys
ok "... they carry on from generation 2" eval "advancing ru && advancing sp"

finish_ok ru
finish_ok sp
ok "runuser exits with its worker" wait_until 10 not alive "$runuser_pid"
done_testing
