#!/bin/bash
# t_install - the operator's path: "make install" into a scratch root, the
# command (the front and the full command it runs) set-group-id as the
# install hook leaves it, and every operator
# command run by root and by an ordinary user, each with the exit code it
# must give. Root runs the system; the ordinary user may queue mail and read
# the queue (authorized_mailq_users = anyone) and is refused the rest with
# EX_NOPERM (77), never a crash or a half-start. Also: the configuration is
# read from /etc/relayq whatever the prefix, and "relayq check" says which
# file it read. Needs root, to install set-group-id and act as another user.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
    echo "1..0 # SKIP needs root and setpriv to install set-group-id and act as another user"
    exit 0
fi
rq_setup
STRANGER=54321

# --- make install into a scratch root, setgid to the test's setgid_group ---
DEST=$T/root
make -s -C "$top_builddir" install DESTDIR="$DEST" RELAYQ_SETGID_GROUP=mail >"$T/install.out" 2>&1
ok $? "make install DESTDIR=... succeeds"
IRELAYQ=$(find "$DEST" -type f -name relayq -perm -u+x | head -n 1)
IMASTER=$(find "$DEST" -type f -name master -perm -u+x | head -n 1)
check "the command is installed" -- test -x "$IRELAYQ"
check "the daemons are installed" -- test -x "$IMASTER"
check "the install hook made it set-group-id to setgid_group" -- \
    test "$(stat -c '%a %G' "$IRELAYQ")" = "2755 mail"
# The full command the front runs for all but sendmail's messages, in libexec.
IRELAYQ_COMMAND=$(find "$DEST" -type f -name relayq-command -perm -u+x | head -n 1)
check "the full command is installed in the daemon directory" -- \
    test "$(dirname "$IRELAYQ_COMMAND")" = "$(dirname "$IMASTER")"
check "the install hook made it set-group-id to setgid_group too" -- \
    test "$(stat -c '%a %G' "$IRELAYQ_COMMAND")" = "2755 mail"
# Staged, the front finds the full command where this test says, not where it
# will be installed for good.
RELAYQ_COMMAND=$IRELAYQ_COMMAND
# A sanitizer runtime cannot start set-group-id (it reads /proc/self, which
# the kernel closes to such a process): nothing more to learn here.
if ! setpriv --reuid=$STRANGER --regid=$STRANGER --clear-groups "$IRELAYQ" --help >/dev/null 2>&1; then
    diag "this build of relayq cannot run set-group-id (sanitizer runtime): the rest is skipped"
    tap_end
    exit
fi
rq_set daemon_directory "$(dirname "$IMASTER")"

# --- the built-in configuration path ---
env -u RELAYQ_CONFIG "$IRELAYQ" check >"$T/out" 2>&1
check "without -c, the command reads /etc/relayq/relayq.conf, whatever the prefix" -- \
    grep -q '/etc/relayq/relayq.conf' "$T/out"
"$IRELAYQ" check >"$T/out" 2>&1
ok $? "relayq check passes on the test configuration"
check "relayq check names the file it read" -- \
    grep -qx "relayq check: $CONF: no problems found" "$T/out"

# as_root / as_user - run the installed command, report its exit status
as_root() {
    "$IRELAYQ" "$@" >"$T/out" 2>&1
}
as_user() {
    setpriv --reuid=$STRANGER --regid=$STRANGER --clear-groups "$IRELAYQ" "$@" >"$T/out" 2>&1
}
# expect - run a command and check its exit status: expect WHO STATUS ARGS...
expect() {
    local who=$1 want=$2 have
    shift 2
    "as_$who" "$@"
    have=$?
    ok $((have != want)) "$who: relayq $* exits $want (got $have)"
    [ "$have" = "$want" ] || sed 's/^/# /' "$T/out"
}

# --- what would stop master is caught by check, and by start, first ---
# Postfix's habit: a credentials file owned by root, mode 0600. The daemons
# run as mail_owner and could never read it.
printf '[127.0.0.1]:25 user:secret\n' >"$T/sasl_passwd"
chmod 600 "$T/sasl_passwd"
rq_set smtp_sasl_password_maps "$T/sasl_passwd"
expect root 78 check
check "check names the credentials file and the chown that fixes it" -- \
    grep -q "smtp_sasl_password_maps $T/sasl_passwd: owned by uid 0.*mode 0600.*chown nobody $T/sasl_passwd" "$T/out"
expect root 78 start
check "start refuses it with the same reason" -- grep -q "chown nobody $T/sasl_passwd" "$T/out"
check "and no master was started" -- test -z "$(master_pid)"
chown nobody "$T/sasl_passwd"
expect root 0 check
sed -i '/^smtp_sasl_password_maps/d' "$CONF"
rq_set setgid_group no-such-group-rq
expect root 78 check
check "check finds a missing setgid_group, as master would" -- \
    grep -q 'setgid_group "no-such-group-rq": no such group' "$T/out"
expect root 78 start
rq_set setgid_group mail
rq_set minimal_backoff_time 5000s
expect root 0 check
check "check warns of minimal_backoff_time above maximal_backoff_time" -- \
    grep -q 'warning: .*minimal_backoff_time (5000s) is greater than maximal_backoff_time (4000s)' "$T/out"
sed -i '/^minimal_backoff_time/d' "$CONF"

sink_start
expect root 0 check
expect user 0 check
expect root 0 start
wait_for 10 test -S "$T/queue/public/control"
ok $? "qmgr is listening"
expect user 77 start
expect root 0 status
expect user 0 status

# One message queued by each, then held back by a stopped upstream so that
# mailq, show and flush have something to work on.
sink_stop
printf 'Subject: install\n\nfrom root\n' | as_root sendmail -f root-sender@example.com r1@example.com
ok $? "root queues mail with the installed command"
printf 'Subject: install\n\nfrom a user\n' | as_user sendmail -f user-sender@example.com r2@example.com
ok $? "an ordinary user queues mail with the installed command"
wait_for 30 log_has 2 'status=deferred'
ok $? "both messages are deferred while the upstream is down"
"$IRELAYQ" mailq >"$T/mailq.out" 2>&1
QID=$(awk '/^[0-9A-Za-z]+[*!]? / { sub(/[*!]$/, "", $1); print $1; exit }' "$T/mailq.out")
check "mailq lists a queue id" -- test -n "$QID"
[ -n "$QID" ] || sed 's/^/# /' "$T/mailq.out"

expect root 0 mailq
expect user 0 mailq
expect root 0 show "$QID"
expect user 77 show "$QID"
expect root 0 qshape
expect user 77 qshape
expect user 77 flush
expect user 77 reload
expect root 0 reload
sink_start
expect root 0 flush
wait_for 30 sink_has 2
ok $? "after the flush both messages arrive"
expect user 77 stop
pid=$(master_pid)
expect root 0 stop
wait_for 10 sh -c "! kill -0 $pid 2>/dev/null"
ok $? "master is gone after stop"

# --- mail waiting in maildrop/ while relayq is stopped is counted ---
printf 'Subject: early\n\nbefore start\n' | as_root sendmail -f early@example.com e1@example.com
printf 'Subject: early\n\nbefore start\n' | as_root sendmail -f early@example.com e2@example.com
expect root 0 mailq
check "mailq counts the submissions waiting in maildrop/ and does not call the queue empty" -- \
    sh -c "grep -qx -- '-- 2 Requests in maildrop, waiting for pickup.' '$T/out' && ! grep -q 'Mail queue is empty' '$T/out'"

expect root 0 start
wait_for 30 sink_has 4
ok $? "the two waiting submissions are delivered once relayq starts again"
expect root 0 stop
tap_end
