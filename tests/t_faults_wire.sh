#!/bin/bash
# t_faults_wire - the relay breaks the conversation itself, over STARTTLS
# at level encrypt with AUTH (tests/faults_lib.sh): the connection dropped
# before and after the server took the final dot; a TLS handshake that
# fails (plain text instead of a ServerHello, or only TLS 1.1 on offer);
# AUTH rejected with 535; replies that are no SMTP (a garbage line, a line
# of 100,000 octets without a line end, 5,000 continuation lines, lines
# with different codes) at the greeting, EHLO, MAIL FROM, RCPT TO, DATA
# and the final dot. Each fault defers the message with the reason in the
# log and in `relayq mailq`; `relayq flush` then delivers it once (twice
# at most when the fault came after the server took the message:
# counted). A valid reply of 4 MB to the dot of a message to 200
# recipients is taken as sent, and as bounced. Then, in plain SMTP, an
# EHLO refused with 5xx falls back to HELO and delivers.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/faults_lib.sh"

fault_setup
ok $? "relayq started for a test server with STARTTLS and AUTH on 127.0.0.1:$SINK_PORT"

# reloads_at_least - whether the workers logged N reloads in all: reloads_at_least N
reloads_at_least() {
    [ "$(log_count 'smtpout\[[0-9]+\]: reload -- ')" -ge "$1" ]
}
# reload_workers - relayq reload, and wait until both workers re-read the configuration
reload_workers() {
    local before
    before=$(log_count 'smtpout\[[0-9]+\]: reload -- ')
    "$RELAYQ" reload >/dev/null && wait_for 10 reloads_at_least $((before + 2))
}

host='127\.0\.0\.1\[127\.0\.0\.1\]'
lost="lost connection with $host while sending (message body|end of data)"
fault_case drop-before-dot deferred "$lost" --drop-in-data before@1
fault_case drop-after-dot deferred-dup "$lost" --drop-in-data after@1
fault_case tls-garbage deferred "Cannot start TLS: handshake failure with host $host" \
    --bad-reply TLS:garbage@1
# A server that speaks only TLS 1.1 (relayq wants 1.2 or 1.3) until restarted.
FAULT_PREFLUSH=fault_sink
fault_case tls-version deferred "Cannot start TLS: handshake failure with host $host: .*version" \
    --tls-priority 'NORMAL:-VERS-ALL:+VERS-TLS1.1'
# A rejected credential is remembered for a minute; a reload forgets it.
FAULT_PREFLUSH=reload_workers
fault_case auth-535 deferred "SASL authentication failed; server $host said: 535 5\\.7\\.8 bad credentials" \
    --reply 'AUTH:535 5.7.8 bad credentials@1'
FAULT_PREFLUSH=

perr="protocol error with $host while"
for cmd in GREETING EHLO MAIL RCPT DATA DOT; do
    lc=$(tr A-Z a-z <<<"$cmd")
    dup=deferred
    [ "$cmd" = DOT ] && dup=deferred-dup
    fault_case "garbage-$lc" "$dup" "$perr .*: malformed reply line" --bad-reply "$cmd:garbage@1"
done
for cmd in GREETING EHLO RCPT DOT; do
    lc=$(tr A-Z a-z <<<"$cmd")
    dup=deferred
    [ "$cmd" = DOT ] && dup=deferred-dup
    fault_case "long-$lc" "$dup" "$perr .*: reply line longer than 4096 bytes" --bad-reply "$cmd:long@1"
done
for cmd in GREETING EHLO MAIL DATA DOT; do
    lc=$(tr A-Z a-z <<<"$cmd")
    dup=deferred
    [ "$cmd" = DOT ] && dup=deferred-dup
    fault_case "flood-$lc" "$dup" "$perr .*: reply longer than 1000 lines" --bad-reply "$cmd:flood@1"
done
for cmd in EHLO RCPT DOT; do
    lc=$(tr A-Z a-z <<<"$cmd")
    dup=deferred
    [ "$cmd" = DOT ] && dup=deferred-dup
    fault_case "mixed-$lc" "$dup" "$perr .*: reply code [0-9]+ after [0-9]+ in" --bad-reply "$cmd:mixed@1"
done

# A valid reply of 4 MB (990 continuation lines of 4,000 octets) to the
# final dot of a message to 200 recipients: each recipient's text is cut,
# so the worker's result stays within what qmgr accepts, and the message
# is delivered once (a result qmgr refused would have it sent again).
big_rcpts=$(seq -f 'big%g@example.com' 1 200)
# One transaction for all 200: lift the per-job recipient limit (50).
rq_set default_destination_recipient_limit 1000
qmgr_reloads=$(log_count 'qmgr\[[0-9]+\]: reload -- ')
reload_workers
wait_for 10 log_has $((qmgr_reloads + 1)) 'qmgr\[[0-9]*\]: reload -- '
ok $? "qmgr reloaded with default_destination_recipient_limit = 1000"
# all_big - whether all 200 recipients have a delivery line: all_big STATUS
all_big() {
    [ "$(grep -c "to=<big[0-9]*@example.com>, .* status=$1 " "$MAILLOG")" -ge 200 ]
}
fault_sink --bad-reply DOT:big@1
printf 'Subject: big reply\nMessage-ID: <big@relayq.test>\n\nbody\n' |
    "$RELAYQ" sendmail -f s-big@example.com $big_rcpts
wait_for 30 all_big sent
ok $? "big-dot-200: a 4 MB 250 reply to the dot: all 200 recipients sent"
check "big-dot-200: the message arrived exactly once" -- test "$(arrivals big@relayq.test)" -eq 1
check "big-dot-200: the delivery lines keep a cut reply" -- \
    grep -q "to=<big1@example.com>, .* status=sent (250 big line 1 of 990 bbbb.*\.\.\.)" "$MAILLOG"
check "big-dot-200: qmgr took the worker's result" -- \
    sh -c "! grep -E 'record longer than|went away during delivery' '$MAILLOG'"
wait_for 20 queue_empty
ok $? "big-dot-200: the queue is empty"

# The same with a 554: 200 bounces, one DSN to the sender listing them all.
fault_sink --reply 'DOT:554 5.7.1 rejected@1' --bad-reply DOT:big@1
printf 'Subject: big reject\nMessage-ID: <bigno@relayq.test>\n\nbody\n' |
    "$RELAYQ" sendmail -f s-bigno@example.com $(sed 's/^big/bigno/' <<<"$big_rcpts")
all_bigno() {
    [ "$(grep -c "to=<bigno[0-9]*@example.com>, .* status=bounced " "$MAILLOG")" -ge 200 ]
}
wait_for 30 all_bigno
ok $? "big-dot-554: a 4 MB 554 reply to the dot: all 200 recipients bounced"
check "big-dot-554: the delivery lines quote the reply as the server spoke (no enhanced code), cut, with the derived dsn=" -- \
    grep -q "to=<bigno1@example.com>, .* dsn=5.0.0, status=bounced (host $host said: 554 big line 1 of 990 b*\.\.\. (in reply to end of DATA command))" "$MAILLOG"
wait_for 20 has_dsn_for s-bigno@example.com
ok $? "big-dot-554: the sender got a DSN"
check "big-dot-554: the DSN lists all 200 recipients" -- \
    test "$(grep -c '^Final-Recipient: rfc822; bigno' "$(dsn_for s-bigno@example.com)")" -eq 200
check "big-dot-554: the DSN quotes the reply, cut" -- python3 "$top_srcdir/tests/dsn_check.py" \
    "$(dsn_for s-bigno@example.com)" "Final-Recipient=rfc822; bigno200@example.com" \
    "Status=5.0.0" "Diagnostic-Code=smtp; 554 big line 1 of 990 bbbb"
check "big-dot-554: no line of the DSN is longer than 998 octets" -- \
    test "$(awk '{ if (length($0) > 999) n++ } END { print n + 0 }' "$(dsn_for s-bigno@example.com)")" -eq 0
check "big-dot-554: the message never arrived" -- test "$(arrivals bigno@relayq.test)" -eq 0
wait_for 20 queue_empty
ok $? "big-dot-554: the queue is empty"

fault_go_plain
ok $? "relayq restarted for plain SMTP"
fault_case plain-ehlo-502 sent "" --reply 'EHLO:502 5.5.2 EHLO not here@1'
fault_case plain-garbage-rcpt deferred "$perr sending RCPT TO: malformed reply line" \
    --no-pipelining --bad-reply RCPT:garbage@1

fault_finish
tap_end
