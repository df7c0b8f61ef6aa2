#!/bin/bash
# t_tls_pool - the pool's reason to exist: 10,000 messages, 4 smtpout
# workers, an upstream that requires STARTTLS and AUTH, reuse limits out of
# reach: each worker encrypts and authenticates once, so the server sees
# exactly 4 TLS handshakes and 4 AUTHs, and every message arrives once.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=${POOL_MESSAGES:-10000}
rq_setup
secure_upstream
ok $? "test SMTP server requires STARTTLS and AUTH on 127.0.0.1:$SINK_PORT"
rq_set smtpout_workers 4
rq_set smtp_connection_reuse_count_limit 0
rq_set smtp_connection_reuse_time_limit 3600s

fill_and_deliver $N pool

tls=$(sink_count '^tls conn=')
auth_ok=$(sink_count '^auth conn=[0-9]+ .* result=ok$')
conns=$(sink_connections)
diag "server: $conns connections, $tls TLS handshakes, $auth_ok AUTHs"
check "exactly 4 TLS handshakes at the server ($tls)" -- test "$tls" -eq 4
check "exactly 4 successful AUTHs at the server ($auth_ok)" -- test "$auth_ok" -eq 4
check "AUTH as the configured user" -- \
    test "$(sink_count "^auth conn=[0-9]+ mech=[A-Z0-9]+ user=$SASL_USER result=ok$")" -eq 4
check "no AUTH failed" -- test "$(sink_count 'result=fail')" -eq 0
check "exactly 4 TCP connections ($conns)" -- test "$conns" -eq 4
check "TLS 1.2 or newer on every connection" -- \
    test "$(sink_count '^tls conn=[0-9]+ proto=TLS1\.[23] ')" -eq "$tls"
check "every Message-ID arrived exactly once" -- sink_ids_once $N
check "every Message-ID is one of ours" -- \
    test "$(grep -c '^<pool-[0-9]*@relayq.test>$' "$T/ids")" -eq $N
check "$N delivery lines with status=sent" -- test "$(log_count 'status=sent')" -eq $N
check "no deferral and no bounce" -- test "$(log_count 'status=(deferred|bounced)')" -eq 0
check "connections carried thousands of messages (conn_use of 4 digits)" -- \
    grep -Eq 'conn_use=[0-9]{4,}' "$MAILLOG"

"$RELAYQ" stop
ok $? "relayq stop"
check "every connection closed with QUIT" -- test "$(sink_count '^close conn=[0-9]+ reason=quit')" -eq "$conns"
tap_end
