#!/bin/bash
# t_auth_fail - a wrong password (the server answers 535): the messages are
# deferred, not bounced, and mailq shows the server's reply as the reason;
# once the credentials file is fixed and `relayq reload` is run, they are
# delivered by the next retry on their own (minimal_backoff_time = 2s,
# maximal_backoff_time = 4s; no flush).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=3
rq_setup
secure_upstream
ok $? "test SMTP server requires STARTTLS and AUTH on 127.0.0.1:$SINK_PORT"
sasl_set "$SASL_USER" "not-the-password"
ok $? "credentials file with a wrong password"
rq_set minimal_backoff_time 2s
rq_set maximal_backoff_time 4s
"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"
inject $N authfail
ok $? "$N messages queued"

wait_for 30 log_has $N 'status=deferred'
ok $? "every message was tried and deferred"
"$RELAYQ" mailq >"$T/mailq"
check "mailq lists $N requests" -- grep -q "in $N Requests" "$T/mailq"
check "mailq gives the server's 535 reply as the reason of each" -- \
    test "$(grep -c '535 5\.7\.8 Error: authentication failed' "$T/mailq")" -eq $N
check "the deferral in the maillog carries the 535 reply" -- \
    grep -Eq 'dsn=4\.[0-9]+\.[0-9]+, status=deferred \(.*535 5\.7\.8 Error: authentication failed' "$MAILLOG"
check "nothing bounced" -- test "$(log_count 'status=bounced')" -eq 0
check "the server saw failed AUTHs and no successful one" -- \
    test "$(sink_count '^auth conn=.* result=fail$')" -ge 1 -a "$(sink_count '^auth conn=.* result=ok$')" -eq 0
check "the server received no message" -- test "$(sink_messages)" -eq 0
check "the secret is not in the maillog" -- test "$(log_count 'not-the-password')" -eq 0
# Still deferred after a few retries: 535 is not a reason to bounce.
wait_for 15 log_has $((2 * N)) 'status=deferred'
ok $? "retried on its own with the short backoff, deferred again"
check "still nothing bounced after the retries" -- test "$(log_count 'status=bounced')" -eq 0
"$RELAYQ" mailq >"$T/mailq"
check "mailq still lists $N requests" -- grep -q "in $N Requests" "$T/mailq"

sasl_set "$SASL_USER" "$SASL_PASS"
ok $? "credentials file fixed"
"$RELAYQ" reload
ok $? "relayq reload"
wait_for 30 sink_has $N
ok $? "all $N delivered by the next retry, without a flush ($(sink_messages))"
check "every Message-ID arrived exactly once" -- sink_ids_once $N
check "the server saw a successful AUTH as $SASL_USER" -- \
    test "$(sink_count "^auth conn=[0-9]+ mech=[A-Z0-9]+ user=$SASL_USER result=ok$")" -ge 1
wait_for 10 queue_empty
ok $? "mailq prints 'Mail queue is empty'"
check "$N delivery lines with status=sent" -- test "$(log_count 'status=sent ')" -eq $N
check "no secret in the maillog" -- test "$(log_count "not-the-password|$SASL_PASS")" -eq 0
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
