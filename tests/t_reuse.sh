#!/bin/bash
# t_reuse - smtp_connection_reuse_count_limit = 1000: 10,000 messages over
# a STARTTLS + AUTH upstream use between 10 and 14 connections, none
# carries more than 1000 messages, each new connection authenticates once,
# and a worker's reconnection resumes its TLS session.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=${REUSE_MESSAGES:-10000}
LIMIT=1000
rq_setup
secure_upstream
ok $? "test SMTP server on 127.0.0.1:$SINK_PORT"
rq_set smtpout_workers 4
rq_set smtp_connection_reuse_count_limit $LIMIT
rq_set smtp_connection_reuse_time_limit 3600s

fill_and_deliver $N reuse
check "every Message-ID arrived exactly once" -- sink_ids_once $N
check "no deferral and no bounce" -- test "$(log_count 'status=(deferred|bounced)')" -eq 0

conns=$(sink_connections)
lo=$((N / LIMIT)) hi=$((N / LIMIT + 4))
check "$N messages used between $lo and $hi connections ($conns)" -- \
    test "$conns" -ge $lo -a "$conns" -le $hi
most=$(grep '^close ' "$SINK_LOG" | sed 's/.*messages=//' | sort -n | tail -n 1)
check "no connection carried more than $LIMIT messages (most: ${most:-none})" -- \
    test "${most:-0}" -le $LIMIT -a "${most:-0}" -ge 1
top=$(grep -o 'conn_use=[0-9]*' "$MAILLOG" | cut -d= -f2 | sort -n | tail -n 1)
check "conn_use in the maillog goes up to the limit and no further (${top:-none})" -- \
    test "${top:-0}" -eq $LIMIT
if [ -z "${RELAYQ_TEST_PLAIN:-}" ]; then
    tls=$(sink_count '^tls conn=')
    auth_ok=$(sink_count '^auth conn=.* result=ok$')
    resumed=$(sink_count '^tls conn=.* resumed=yes')
    diag "server: $conns connections, $tls TLS handshakes ($resumed resumed), $auth_ok AUTHs"
    check "one TLS handshake per connection ($tls)" -- test "$tls" -eq "$conns"
    check "one AUTH per connection ($auth_ok)" -- test "$auth_ok" -eq "$conns"
    check "reconnections resume the TLS session ($resumed of $((conns - 4)) or more)" -- \
        test "$resumed" -ge $((conns - 4)) -a "$resumed" -ge 1
fi

"$RELAYQ" stop
ok $? "relayq stop"
check "every connection closed with QUIT" -- \
    test "$(sink_count '^close conn=[0-9]+ reason=quit')" -eq "$(sink_connections)"
tap_end
