#!/bin/bash
# t_verify - smtp_tls_security_level = verify with smtp_tls_CAfile naming a
# CA that did not sign the server's certificate: the messages are deferred
# with GnuTLS's verification failure as the reason in mailq, and the
# server never sees AUTH (nor a message). With the right CA file, a
# reload and a flush, they are delivered: the refusal was the certificate.
# (The backoff is 2-4 s, so a retry that raced the reload is repeated.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=3
rq_setup
secure_upstream
ok $? "test SMTP server requires STARTTLS and AUTH on 127.0.0.1:$SINK_PORT"
rq_set smtp_tls_security_level verify
rq_set smtp_tls_CAfile "$TLS_DIR/other-ca.pem"
# Short backoff: a retry that races the reload below comes again soon.
rq_set minimal_backoff_time 2s
rq_set maximal_backoff_time 4s
"$RELAYQ" start
ok $? "relayq start (level verify, a CA file that did not sign the server's certificate)"
wait_for 10 test -S "$T/queue/private/qmgr"
inject $N verify
ok $? "$N messages queued"

wait_for 30 log_has $N 'status=deferred'
ok $? "every message was tried and deferred"
"$RELAYQ" mailq >"$T/mailq"
check "mailq lists $N requests" -- grep -q "in $N Requests" "$T/mailq"
# GnuTLS's words for a chain that does not end at a trusted CA
# (gnutls_certificate_verification_status_print): "The certificate is NOT
# trusted. The certificate issuer is unknown."
check "mailq gives GnuTLS's reason for each message" -- \
    test "$(grep -Eic 'NOT trusted|issuer is unknown' "$T/mailq")" -eq $N
check "the maillog's deferral names the certificate failure" -- \
    grep -Eiq 'status=deferred \(.*(NOT trusted|issuer is unknown)' "$MAILLOG"
check "nothing bounced" -- test "$(log_count 'status=bounced')" -eq 0
check "the server saw a TLS connection attempt" -- test "$(sink_connections)" -ge 1
check "the server never saw AUTH" -- test "$(sink_count '^auth ')" -eq 0
check "the server never saw MAIL FROM or a message" -- \
    test "$(sink_count 'cmd=MAIL|^message ')" -eq 0
diag "mailq: $(grep -m1 -Ei 'trusted|issuer' "$T/mailq" | sed 's/^ *//')"

rq_set smtp_tls_CAfile "$TLS_DIR/ca.pem"
"$RELAYQ" reload
ok $? "relayq reload with the CA that signed the server's certificate"
"$RELAYQ" flush
ok $? "relayq flush"
wait_for 30 sink_has $N
ok $? "all $N delivered after the fix ($(sink_messages))"
check "every Message-ID arrived exactly once" -- sink_ids_once $N
check "the verified connection authenticated" -- test "$(sink_count '^auth conn=.* result=ok$')" -ge 1
wait_for 10 queue_empty
ok $? "mailq prints 'Mail queue is empty'"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
