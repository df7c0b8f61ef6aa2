#!/bin/bash
# t_idle - an upstream that closes connections idle for more than 5 s
# (with an unsolicited 421, as Postfix's smtpd and many providers do), and
# one message every 10 s for a minute: relayq notices the closed
# connection or retries on a fresh one at once, so each message is
# delivered on its first attempt and no delivery failure is logged. Takes
# about 60 s: the fixed pacing against the server's idle timer is the test.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

ROUNDS=6 INTERVAL=10 IDLE=5
rq_setup
secure_upstream --idle-close $IDLE
ok $? "test SMTP server closes connections idle for ${IDLE} s, on 127.0.0.1:$SINK_PORT"
"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"
ok $? "qmgr is listening"

for ((i = 1; i <= ROUNDS; i++)); do
    t0=$SECONDS
    printf 'Subject: idle %d\nMessage-ID: <idle-%d@relayq.test>\n\nbody %d\n' $i $i $i |
        "$RELAYQ" sendmail -f sender@example.com "idle$i@example.com"
    ok $? "message $i queued"
    # Delivery takes well under a second; 4 s leaves room and stays inside
    # the server's idle window, so message i+1 always finds the
    # connection of message i closed by the server.
    wait_for 4 sink_has $i
    ok $? "message $i arrived within 4 s"
    if [ $i -lt $ROUNDS ]; then
        sleep $((INTERVAL - (SECONDS - t0)))
    fi
done

check "$ROUNDS messages arrived, each Message-ID once" -- sink_ids_once $ROUNDS
idle_closed=$(sink_count '^close conn=[0-9]+ reason=idle')
diag "server: $(sink_connections) connections, $idle_closed closed as idle"
check "the server closed idle connections under relayq (${idle_closed})" -- \
    test "$idle_closed" -ge $((ROUNDS - 1))
for ((i = 1; i <= ROUNDS; i++)); do
    lines=$(grep -c "to=<idle$i@example.com>, .* status=" "$MAILLOG")
    check "message $i: one delivery attempt, status=sent (${lines} status lines)" -- \
        test "$lines" -eq 1 -a "$(log_count "to=<idle$i@example.com>, .* status=sent ")" -eq 1
done
check "no status=deferred anywhere in the maillog" -- test "$(log_count 'status=deferred')" -eq 0
check "no status=bounced anywhere in the maillog" -- test "$(log_count 'status=bounced')" -eq 0
# (A daemon's start-up warning about reaching qmgr is no delivery failure.)
check "no warning about the relay, and no lost connection or timeout" -- \
    test "$(log_count 'warning: .*127\.0\.0\.1\[|lost connection|timed out|: (fatal|panic): ')" -eq 0
wait_for 10 queue_empty
ok $? "mailq prints 'Mail queue is empty'"

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
