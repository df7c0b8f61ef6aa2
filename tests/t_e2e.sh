#!/bin/bash
# t_e2e - the whole path: 1000 messages through relayq sendmail, pickup,
# the queue, qmgr and 4 smtpout workers arrive exactly once at the test
# server over at most 4 connections, and the queue ends empty.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start --maildir "$T/sink"
ok $? "test SMTP server listens on 127.0.0.1:$SINK_PORT"

"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"
ok $? "qmgr is listening"
"$RELAYQ" status >"$T/status" 2>&1
ok $? "relayq status says the mail system runs"
check "status lists 4 smtpout workers" -- test "$(grep -c smtpout "$T/status")" -eq 4

N=1000
inject $N e2e
ok $? "$N messages accepted by relayq sendmail"
wait_for 120 sink_has $N
ok $? "$N messages arrived at the server ($(sink_messages))"
wait_for 30 queue_empty
ok $? "mailq prints 'Mail queue is empty' afterwards"

# Exactly once: every Message-ID once, none twice.
grep '^message ' "$SINK_LOG" | sed 's/.*msgid=\([^ ]*\).*/\1/' | sort >"$T/ids"
check "no message arrived twice" -- test "$(uniq -d "$T/ids" | wc -l)" -eq 0
check "every message arrived" -- test "$(uniq "$T/ids" | wc -l)" -eq $N
conns=$(sink_connections)
check "at most 4 TCP connections were used ($conns)" -- test "$conns" -le 4 -a "$conns" -ge 1

# The content arrives as sent, with the headers pickup adds.
f=$(grep -l 'Message-ID: <e2e-7@relayq.test>' "$T"/sink/*.eml | head -n 1)
check "a stored message has its body" -- grep -q '^body 7' "$f"
check "pickup added Received and Date" -- grep -q '^Received: by relayq.test' "$f"
check "lines end in CRLF" -- grep -q $'\r$' "$f"

# The log speaks Postfix.
check "a delivery log line in Postfix format" -- grep -Eq \
    'relayq/smtpout\[[0-9]+\]: [0-9A-Za-z]{12}: to=<rcpt[0-9]+@example.com>, relay=127.0.0.1\[127.0.0.1\]:[0-9]+, conn_use=[0-9]+, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2.0.0, status=sent \(250 ' "$MAILLOG"
check "qmgr logs removal" -- grep -q ': removed$' "$MAILLOG"
check "connections were reused (conn_use above 100)" -- grep -Eq 'conn_use=[0-9]{3,}' "$MAILLOG"

"$RELAYQ" stop
ok $? "relayq stop"
check "no relayq process is left" -- test -z "$(pgrep -f "^$T/libexec/")"
check "connections were closed with QUIT" -- test "$(grep -c 'reason=quit' "$SINK_LOG")" -eq "$conns"
# Starting before qmgr listens, and qmgr closing first at the stop, are
# normal and log no warning; any other warning is shown here.
grep 'warning: ' "$MAILLOG" | while read -r line; do diag "$line"; done
tap_end
