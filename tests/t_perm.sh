#!/bin/bash
# t_perm - nobody but root and mail_owner may change the queue: a user
# that is neither cannot flush, hold, release, delete or requeue (EX_NOPERM,
# "permission denied", and nothing changes), while looking (stats) is open
# to all; root can. Needs root, to act as another user; skipped otherwise.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
    echo "1..0 # SKIP needs root and setpriv to act as another user"
    exit 0
fi
rq_setup
cp "$RELAYQ" "$T/relayq"
chmod 755 "$T/relayq"
# stranger - run relayq as a user that is neither root nor mail_owner
stranger() {
    setpriv --reuid=54321 --regid=54321 --clear-groups "$T/relayq" -c "$CONF" "$@"
}
sink_start
sink_stop
"$RELAYQ" start
ok $? "relayq start (mail_owner = nobody)"
printf 'Subject: perm\n\nhello\n' | "$RELAYQ" sendmail -f a@example.com b@example.com
wait_for 30 log_has 1 'status=deferred'
ok $? "one message deferred"
id=$("$RELAYQ" mailq --json | sed 's/.*"queue_id": "\([^"]*\)".*/\1/')

for cmd in "flush" "hold $id" "release ALL" "delete ALL" "requeue $id"; do
    stranger $cmd 2>"$T/err"
    status=$?
    ok $((status != 77)) "another user cannot $cmd: exit $status (EX_NOPERM)"
    check "and is told why" -- grep -q 'permission denied' "$T/err"
done
check "qmgr logged the refusals" -- test "$(grep -c 'refused .* from uid 54321' "$MAILLOG")" -eq 5
check "the message is still there, not held" -- \
    test "$("$RELAYQ" mailq --json | grep -c '"queue_name": "deferred"')" -eq 1
stranger stats >/dev/null 2>&1
ok $? "another user may look at the statistics"
"$RELAYQ" hold "$id" 2>/dev/null
ok $? "root may hold it"
"$RELAYQ" delete ALL 2>/dev/null
ok $? "root may delete it"
wait_for 10 queue_empty
ok $? "the queue is empty"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
