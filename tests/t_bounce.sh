#!/bin/bash
# t_bounce - per-recipient outcomes, bounces and expiry:
#  - one message to three recipients, one answered 550 and one 451 twice:
#    the 250 one is delivered once, the 550 one is bounced with a DSN that
#    the sender receives (parsed: report-type, Final-Recipient, Status 5.x.x,
#    Diagnostic-Code), the 451 one is delivered on the third attempt;
#  - with the relay down longer than a short maximal_queue_lifetime, the
#    sender receives one DSN naming the last deferral reason and the
#    message leaves the queue.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
rq_set minimal_backoff_time 1s
rq_set maximal_backoff_time 2s
sink_start --maildir "$T/sink" \
    --rcpt-reply 'bad@example.com=550 5.1.1 <bad@example.com>: no such user' \
    --rcpt-reply 'soft@example.com=451 4.3.0 mailbox unavailable@2'
"$RELAYQ" start
ok $? "relayq start"

printf 'Subject: three recipients\nMessage-ID: <three@relayq.test>\n\nhello\n' |
    "$RELAYQ" sendmail -f sender@example.com ok@example.com bad@example.com soft@example.com
ok $? "a message to three recipients is queued"

# rcpt_arrivals - how many times the server accepted a recipient
rcpt_arrivals() {
    grep '^message ' "$SINK_LOG" | grep -c "<$1>"
}
# has_sent - whether the log has the recipient's status=sent line
has_sent() {
    grep -q "to=<$1>.*status=sent" "$MAILLOG"
}
wait_for 30 has_sent soft@example.com
ok $? "the 451 recipient is delivered in the end"
check "the 451 recipient was deferred exactly twice first" -- \
    test "$(grep -c 'to=<soft@example.com>.*status=deferred' "$MAILLOG")" -eq 2
check "the deferral reason is the relay's reply" -- \
    grep -q 'to=<soft@example.com>.*status=deferred (host 127.0.0.1\[127.0.0.1\] said: 451 4.3.0 mailbox unavailable' "$MAILLOG"
check "the 250 recipient arrived exactly once" -- test "$(rcpt_arrivals ok@example.com)" -eq 1
check "the 451 recipient arrived exactly once" -- test "$(rcpt_arrivals soft@example.com)" -eq 1
check "the 550 recipient is logged as bounced" -- \
    grep -q 'to=<bad@example.com>.*dsn=5.1.1, status=bounced' "$MAILLOG"

# has_dsn - whether a message from the null sender reached sender@example.com
has_dsn() {
    grep -q '^message .*from=<> rcpts=<sender@example.com>' "$SINK_LOG"
}
wait_for 20 has_dsn
ok $? "a DSN from the null sender reached the sender"
check "exactly one DSN was sent" -- \
    test "$(grep -c '^message .*from=<> rcpts=<sender@example.com>' "$SINK_LOG")" -eq 1
dsn=$(grep -l '^Subject: Undelivered Mail Returned to Sender' "$T"/sink/*.eml | head -n 1)
check "the DSN is stored by the server" -- test -n "$dsn"
check "the DSN reports bad@example.com failed with 5.1.1 and the relay's words" -- \
    python3 "$top_srcdir/tests/dsn_check.py" "$dsn" \
    "Final-Recipient=rfc822; bad@example.com" "Action=failed" "Status=5.1.1" \
    "Diagnostic-Code=smtp; 550 5.1.1 <bad@example.com>: no such user"
check "the DSN does not mention the delivered recipients" -- \
    sh -c "! grep -q 'Final-Recipient: rfc822; ok@example.com' '$dsn'"
check "the DSN returns the original message" -- grep -q '^Message-ID: <three@relayq.test>' "$dsn"
wait_for 10 queue_empty
ok $? "the queue is empty afterwards"

# Expiry: the relay is down for longer than the message may stay queued.
"$RELAYQ" stop
sink_stop
rq_set maximal_queue_lifetime 3s
"$RELAYQ" start
printf 'Subject: doomed\nMessage-ID: <doomed@relayq.test>\n\nhello\n' |
    "$RELAYQ" sendmail -f sender@example.com far@example.com
expired() {
    grep -q 'message expired after' "$MAILLOG"
}
wait_for 30 expired
ok $? "the message expires after maximal_queue_lifetime"
check "its recipient is reported as bounced with the last deferral reason" -- \
    grep -q 'sender non-delivery notification' "$MAILLOG"
mkdir -p "$T/sink2"
before=$(sink_messages)
sink_start --maildir "$T/sink2"
"$RELAYQ" flush
has_dsn2() {
    [ "$(grep -c '^message .*from=<> rcpts=<sender@example.com>' "$SINK_LOG")" -gt 1 ]
}
wait_for 20 has_dsn2
ok $? "once the relay is back, the sender receives the DSN"
check "one DSN only" -- test "$(sink_messages)" -eq $((before + 1))
dsn=$(ls "$T"/sink2/*.eml | head -n 1)
check "the DSN names the last deferral reason" -- \
    python3 "$top_srcdir/tests/dsn_check.py" "$dsn" \
    "Final-Recipient=rfc822; far@example.com" "Action=failed" \
    "Diagnostic-Code=X-Relayq; connect to 127.0.0.1[127.0.0.1]"
check "the expired message never reached the relay" -- \
    sh -c "! grep -q 'rcpts=<far@example.com>' '$SINK_LOG'"
wait_for 10 queue_empty
ok $? "the message left the queue"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
