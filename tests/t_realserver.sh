#!/bin/bash
# t_realserver - relayq against a real SMTP server it was not written with:
# aiosmtpd from Debian's python3-aiosmtpd, configured (tests/aiosmtpd_server.py)
# to require STARTTLS before anything and AUTH before MAIL. relayq verifies
# the server's certificate against the test CA, authenticates, and every
# message is stored by the server exactly once, as sent, over TLS and as
# the configured user. A missing python3-aiosmtpd is a failure, not a skip:
# scripts/deps.sh installs it, and a skip would hide a broken install step.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# Debian's interpreter, which has Debian's python3-aiosmtpd (a python3
# earlier on PATH, e.g. from pyenv, does not see /usr/lib/python3/dist-packages).
PY=${AIOSMTPD_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
    ok 1 "$PY can import aiosmtpd (Debian package python3-aiosmtpd; scripts/deps.sh installs it)"
    tap_end
    exit
fi

N=50
rq_setup
tls_setup
ok $? "test CA and server certificate"
mkdir -p "$T/aio/mail"
"$PY" "$top_srcdir/tests/aiosmtpd_server.py" --listen 127.0.0.1 --port-file "$T/aio/port" \
    --log "$T/aio/log" --maildir "$T/aio/mail" --tls-cert "$TLS_DIR/server.pem" \
    --tls-key "$TLS_DIR/server-key.pem" --auth-file "$T/sink/users" 2>"$T/aio/stderr" &
AIO_PID=$!
# rq_cleanup stops the test SMTP server by SINK_PID: let it stop this one.
SINK_PID=$AIO_PID
wait_for 15 test -s "$T/aio/port"
ok $? "aiosmtpd listens on 127.0.0.1"
SINK_PORT=$(cat "$T/aio/port")
SINK_LOG=$T/aio/log
rq_set relayhost "[127.0.0.1]:$SINK_PORT"
rq_set smtp_tls_security_level verify
rq_set smtp_tls_CAfile "$TLS_DIR/ca.pem"
sasl_set "$SASL_USER" "$SASL_PASS"

"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"
inject $N real
ok $? "$N messages queued"
wait_for 60 all_tried $N
ok $? "relayq tried every message"
wait_for 10 sink_has $N
ok $? "aiosmtpd accepted all $N ($(sink_messages))"
wait_for 10 queue_empty
ok $? "mailq prints 'Mail queue is empty'"
check "$N delivery lines with status=sent" -- test "$(log_count 'status=sent ')" -eq $N
check "no deferral and no bounce" -- test "$(log_count 'status=(deferred|bounced)')" -eq 0

check "every Message-ID arrived exactly once" -- sink_ids_once $N
check "every message came over TLS 1.2 or 1.3" -- \
    test "$(sink_count '^message tls=TLSv1\.[23] ')" -eq $N
check "every message came authenticated as $SASL_USER" -- \
    test "$(sink_count "^message .* auth=$SASL_USER ")" -eq $N
auths=$(sink_count '^auth .* result=ok$')
check "AUTH succeeded, once per connection at most 4 times ($auths)" -- test "$auths" -ge 1 -a "$auths" -le 4
check "no AUTH failed" -- test "$(sink_count 'result=fail$')" -eq 0
check "the envelope is the one given to sendmail" -- \
    grep -q '^message .* from=<sender@example.com> rcpts=<rcpt7@example.com> .* msgid=<real-7@relayq.test> ' "$SINK_LOG"
name=$(grep -m1 'msgid=<real-7@relayq.test>' "$SINK_LOG" | sed 's/.* file=//')
f=$T/aio/mail/${name:-missing}
check "the stored message has its body" -- grep -qs '^body 7' "$f"
check "the stored message has its Subject" -- grep -qs '^Subject: test 7' "$f"
check "pickup's Received header reached the server" -- grep -qs '^Received: by relayq.test' "$f"

"$RELAYQ" stop
ok $? "relayq stop"
kill "$AIO_PID" 2>/dev/null
wait "$AIO_PID" 2>/dev/null
SINK_PID=
check "aiosmtpd wrote nothing to stderr" -- test ! -s "$T/aio/stderr"
tap_end
