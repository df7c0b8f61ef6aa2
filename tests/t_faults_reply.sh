#!/bin/bash
# t_faults_reply - the relay answers 4xx or 5xx at every step of the
# dialogue (greeting, EHLO, HELO, STARTTLS, AUTH, MAIL FROM, RCPT TO,
# DATA, end of data), over STARTTLS at level encrypt with AUTH, each
# fault once (tests/faults_lib.sh). A 5xx to MAIL FROM, RCPT TO, DATA or
# the final dot bounces the recipient with the relay's reply in the log
# and a DSN to the sender; a 4xx, or any reply before the transaction (the
# relay's setup, not the message) defers it with the reason in `relayq
# mailq`, and `relayq flush` delivers it exactly once; a 421, or a 4xx that
# asks to slow down ("busy"), defers it too but slows the destination and
# retries within seconds, with no flush (tests/t_throttle.sh has the
# replies of real relays).
# The transaction rows run with PIPELINING and without.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/faults_lib.sh"

fault_setup
ok $? "relayq started for a test server with STARTTLS and AUTH on 127.0.0.1:$SINK_PORT"

in_reply() { echo "said: $1 \\(in reply to $2 command\\)"; }

fault_case greeting-421 throttled "refused to talk to me: 421 4.3.2 closing down" \
    --reply 'GREETING:421 4.3.2 closing down@1'
fault_case greeting-554 deferred "refused to talk to me: 554 5.3.2 no service here" \
    --reply 'GREETING:554 5.3.2 no service here@1'
fault_case ehlo-451 deferred "$(in_reply '451 4.3.0 try EHLO later' EHLO)" \
    --reply 'EHLO:451 4.3.0 try EHLO later@1'
# EHLO refused: HELO works, but offers no STARTTLS, which level encrypt needs.
fault_case ehlo-502 deferred "TLS is required, but was not offered by host" \
    --reply 'EHLO:502 5.5.2 EHLO not here@1'
fault_case helo-550 deferred "$(in_reply '550 5.7.1 no HELO either' HELO)" \
    --reply 'EHLO:502 5.5.2 EHLO not here@1' --reply 'HELO:550 5.7.1 no HELO either@1'
fault_case starttls-454 deferred "$(in_reply '454 4.7.0 TLS not available' STARTTLS)" \
    --reply 'STARTTLS:454 4.7.0 TLS not available@1'
fault_case starttls-554 deferred "$(in_reply '554 5.7.0 no TLS here' STARTTLS)" \
    --reply 'STARTTLS:554 5.7.0 no TLS here@1'
fault_case auth-454 deferred "SASL authentication failed; server .* said: 454 4.7.0 auth backend down" \
    --reply 'AUTH:454 4.7.0 auth backend down@1'
# A server that answers every AUTH response, even the "*" that cancels, with 334.
fault_case auth-334-endless deferred \
    "protocol error with .* while performing SASL authentication: 334 challenge after the client cancelled" \
    --reply 'AUTH:334 go on@1'

for pl in "" -np; do
    np=()
    [ -n "$pl" ] && np=(--no-pipelining)
    fault_case "mail-451$pl" deferred "$(in_reply '451 4.3.0 sender check unavailable' 'MAIL FROM')" \
        "${np[@]}" --reply 'MAIL:451 4.3.0 sender check unavailable@1'
    fault_case "mail-421$pl" throttled "$(in_reply '421 4.3.2 going down' 'MAIL FROM')" \
        "${np[@]}" --reply 'MAIL:421 4.3.2 going down@1'
    fault_case "mail-553$pl" bounced "553 5.7.1 sender rejected" \
        "${np[@]}" --reply 'MAIL:553 5.7.1 sender rejected@1'
    fault_case "rcpt-450$pl" throttled "$(in_reply '450 4.2.1 mailbox busy' 'RCPT TO')" \
        "${np[@]}" --reply 'RCPT:450 4.2.1 mailbox busy@1'
    fault_case "rcpt-550$pl" bounced "550 5.1.1 no such user" \
        "${np[@]}" --reply 'RCPT:550 5.1.1 no such user@1'
    fault_case "data-451$pl" deferred "$(in_reply '451 4.3.0 no DATA now' DATA)" \
        "${np[@]}" --reply 'DATA:451 4.3.0 no DATA now@1'
    # A 250 where a 354 belongs says nothing about the message.
    fault_case "data-250$pl" deferred "$(in_reply '250 2.0.0 fine' DATA)" \
        "${np[@]}" --reply 'DATA:250 2.0.0 fine@1'
    fault_case "data-554$pl" bounced "554 5.6.0 content rejected" \
        "${np[@]}" --reply 'DATA:554 5.6.0 content rejected@1'
    fault_case "dot-451$pl" deferred "$(in_reply '451 4.3.0 queue write error' 'end of DATA')" \
        "${np[@]}" --reply 'DOT:451 4.3.0 queue write error@1'
    fault_case "dot-421$pl" throttled-dup "$(in_reply '421 4.3.2 going down' 'end of DATA')" \
        "${np[@]}" --reply 'DOT:421 4.3.2 going down@1'
    fault_case "dot-554$pl" bounced "554 5.7.1 spam rejected" \
        "${np[@]}" --reply 'DOT:554 5.7.1 spam rejected@1'
done

# One transaction, three recipients, three outcomes: RCPT TO refused with
# 550 for one and 450 for another, then 554 to the dot for the one the
# relay took. The 550 and 554 ones bounce, in one DSN; the 450 one is
# deferred and delivered, alone, after the flush.
fault_sink --rcpt-reply 'm-bad@example.com=550 5.1.1 no such user@1' \
    --rcpt-reply 'm-soft@example.com=450 4.2.1 mailbox unavailable@1' --reply 'DOT:554 5.7.1 spam rejected@1'
printf 'Subject: three\nMessage-ID: <multi@relayq.test>\n\nhello\n' |
    "$RELAYQ" sendmail -f s-multi@example.com m-ok@example.com m-bad@example.com m-soft@example.com
wait_for 30 rcpt_decided m-soft@example.com
check "multi: the 550 recipient bounced with its reply" -- \
    grep -q 'to=<m-bad@example.com>, .* dsn=5.1.1, status=bounced (.*550 5.1.1 no such user (in reply to RCPT TO command))' "$MAILLOG"
check "multi: the 450 recipient deferred with its reply" -- \
    grep -q 'to=<m-soft@example.com>, .* dsn=4.2.1, status=deferred (.*450 4.2.1 mailbox unavailable (in reply to RCPT TO command))' "$MAILLOG"
check "multi: the accepted recipient bounced with the reply to the dot" -- \
    grep -q 'to=<m-ok@example.com>, .* dsn=5.7.1, status=bounced (.*554 5.7.1 spam rejected (in reply to end of DATA command))' "$MAILLOG"
wait_for 20 has_dsn_for s-multi@example.com
ok $? "multi: the sender got a DSN"
dsn=$(dsn_for s-multi@example.com)
check "multi: the DSN reports the 550 recipient" -- python3 "$top_srcdir/tests/dsn_check.py" "$dsn" \
    "Final-Recipient=rfc822; m-bad@example.com" "Status=5.1.1" "Diagnostic-Code=smtp; 550 5.1.1 no such user"
check "multi: the DSN reports the 554 recipient" -- python3 "$top_srcdir/tests/dsn_check.py" "$dsn" \
    "Final-Recipient=rfc822; m-ok@example.com" "Status=5.7.1" "Diagnostic-Code=smtp; 554 5.7.1 spam rejected"
check "multi: the DSN leaves out the deferred recipient" -- sh -c "! grep -q 'm-soft@example.com' '$dsn'"
"$RELAYQ" flush >/dev/null
wait_for 30 rcpt_sent m-soft@example.com
ok $? "multi: the 450 recipient is delivered after relayq flush"
check "multi: it arrived once, and alone" -- \
    test "$(grep '^message ' "$SINK_LOG" | grep -F 'msgid=<multi@relayq.test>' | grep -c 'rcpts=<m-soft@example.com> ')" -eq 1 -a \
    "$(arrivals multi@relayq.test)" -eq 1
wait_for 20 queue_empty
ok $? "multi: the queue is empty"

fault_finish
tap_end
