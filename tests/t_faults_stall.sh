#!/bin/bash
# t_faults_stall - the relay stalls past each of relayq's stage timeouts,
# all set to 2 s (tests/faults_lib.sh): the TCP connection
# (smtp_connect_timeout: the server keeps its listen queue full), the
# greeting, EHLO and AUTH (smtp_helo_timeout), STARTTLS and the TLS
# handshake (smtp_starttls_timeout), MAIL FROM, RCPT TO, DATA, the
# content (smtp_data_xfer_timeout: the server stops reading a message
# larger than the socket buffers) and the final dot. Each stall defers
# the message with "conversation with ... timed out while ..." (or
# "Connection timed out") in the log and in `relayq mailq`, and once the
# stall is over `relayq flush` delivers it exactly once. A job waiting
# behind an unanswered keepalive NOOP or RSET goes on a new connection
# after 5 s, whatever smtp_mail_timeout says.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
FAULT_TIMEOUT=2
. "$top_srcdir/tests/faults_lib.sh"

fault_setup
ok $? "relayq started for a test server with STARTTLS and AUTH on 127.0.0.1:$SINK_PORT"

timed_out() { echo "conversation with 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] timed out while $1"; }
stall_over() { wait_for 20 grep -q '^stall-end cmd=CONNECT' "$SINK_LOG"; }

FAULT_PREFLUSH=stall_over
fault_case stall-connect deferred "connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:$SINK_PORT: Connection timed out" \
    --stall CONNECT:$((FAULT_TIMEOUT + 3))
FAULT_PREFLUSH=
fault_case stall-greeting deferred "$(timed_out 'receiving the initial server greeting')" \
    --stall GREETING:30@1
fault_case stall-ehlo deferred "$(timed_out 'performing the EHLO handshake')" --stall EHLO:30@1
fault_case stall-starttls deferred "$(timed_out 'sending STARTTLS')" --stall STARTTLS:30@1
fault_case stall-tls deferred "$(timed_out 'performing the TLS handshake')" --stall TLS:30@1
fault_case stall-auth deferred "$(timed_out 'performing SASL authentication')" --stall AUTH:30@1
fault_case stall-mail deferred "$(timed_out 'sending MAIL FROM')" --stall MAIL:30@1
fault_case stall-rcpt deferred "$(timed_out 'sending RCPT TO')" --stall RCPT:30@1
fault_case stall-data deferred "$(timed_out 'sending DATA command')" --stall DATA:30@1
# More content than the kernel buffers on both sides hold, so that writes block.
FAULT_BODY_SIZE=$(($(awk '{print $3}' /proc/sys/net/ipv4/tcp_wmem 2>/dev/null || echo 4194304) + 1048576))
fault_case stall-body deferred "$(timed_out 'sending message body')" --stall BODY:30@1
FAULT_BODY_SIZE=
fault_case stall-dot deferred-dup "$(timed_out 'sending end of data -- message may be sent more than once')" \
    --stall DOT:30@1

# A job that waits behind a keepalive NOOP or an RSET the relay never
# answers is not held for smtp_mail_timeout (60 s here): after 5 s the
# connection is given up and the job goes on a new one. One worker, so
# that the job has to wait for that connection.
rq_set smtp_mail_timeout 60s
rq_set smtp_keepalive_interval 1s
rq_set smtpout_workers 1
"$RELAYQ" reload >/dev/null
# one_worker - whether exactly one smtpout runs
one_worker() {
    [ "$(pgrep -fc "^$T/libexec/smtpout ")" -eq 1 ]
}
wait_for 20 one_worker
ok $? "relayq reloaded: one worker, smtp_mail_timeout 60s, NOOP every second while idle"

# held_for - send a message and say how long its delivery took: held_for NAME
held_for() {
    local start end
    start=$(date +%s.%N)
    printf 'Subject: %s\nMessage-ID: <%s@relayq.test>\n\nbody\n' "$1" "$1" |
        "$RELAYQ" sendmail -f "s-$1@example.com" "$1@example.com"
    wait_for 40 rcpt_sent "$1@example.com"
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.1f}')"
}
fault_sink --stall NOOP:100@1
printf 'Subject: n1\nMessage-ID: <noop-first@relayq.test>\n\nbody\n' |
    "$RELAYQ" sendmail -f s-noop@example.com noop-first@example.com
wait_for 20 rcpt_sent noop-first@example.com
ok $? "stall-noop: a first message is delivered"
wait_for 10 grep -q '^stall conn=[0-9]* cmd=NOOP' "$SINK_LOG"
ok $? "stall-noop: the relay leaves the keepalive NOOP unanswered"
took=$(held_for noop-second)
check "stall-noop: the next message is delivered in ${took}s, not after 60" -- between 0 "$took" 15
check "stall-noop: the connection was given up" -- log_has 1 'no reply to NOOP while idle; closing'
check "stall-noop: each message arrived once" -- \
    test "$(arrivals noop-first@relayq.test)" -eq 1 -a "$(arrivals noop-second@relayq.test)" -eq 1

# RSET follows a transaction that ended early: here the only recipient's
# 550, and the job waiting behind it is that bounce's DSN.
fault_sink --stall RSET:100@1 --rcpt-reply 'rset-bad@example.com=550 5.1.1 no such user@1'
start=$(date +%s.%N)
printf 'Subject: r\nMessage-ID: <rset@relayq.test>\n\nbody\n' |
    "$RELAYQ" sendmail -f s-rset@example.com rset-bad@example.com
wait_for 40 has_dsn_for s-rset@example.com
ok $? "stall-rset: the 550 recipient bounced and the DSN arrived"
took=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
check "stall-rset: the DSN waited ${took}s for the unanswered RSET, not 60" -- between 0 "$took" 15
wait_for 20 queue_empty
ok $? "stall-rset: the queue is empty"

fault_finish
tap_end
