#!/bin/bash
# t_421 - an upstream that answers 421 to the MAIL FROM after every 100
# messages of a connection (SES-style "maximum message count per
# session"): all 2,000 messages arrive exactly once and none ever enters
# the retry queue, because a job the server refused with 421 before
# accepting anything is run again at once on a fresh connection.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=2000 K=100
rq_setup
secure_upstream --421-after $K
ok $? "test SMTP server says 421 after $K messages per connection, on 127.0.0.1:$SINK_PORT"
# Reuse limits out of reach: only the server's 421 ends connections.
rq_set smtp_connection_reuse_count_limit 0
rq_set smtp_connection_reuse_time_limit 3600s

maildrop_fill $N s421
ok $? "$N messages waiting in maildrop"
"$RELAYQ" start
ok $? "relayq start"
wait_for 120 all_tried $N
ok $? "relayq tried every message"
wait_for 10 sink_has $N
ok $? "all $N arrived ($(sink_messages))"
check "every Message-ID arrived exactly once" -- sink_ids_once $N
wait_for 30 queue_empty
ok $? "mailq prints 'Mail queue is empty'"

conns=$(sink_connections)
r421=$(sink_count '^reject conn=[0-9]+ cmd=MAIL reply=421')
diag "server: $conns connections, $r421 refused with 421"
check "the server ended connections with 421 (${r421} times)" -- test "$r421" -ge $((N / K / 2))
most=$(grep '^close ' "$SINK_LOG" | sed 's/.*messages=//' | sort -n | tail -n 1)
check "no connection carried more than $K messages (most: ${most:-none})" -- \
    test "${most:-999999}" -le $K
check "$N delivery lines with status=sent" -- test "$(log_count 'status=sent ')" -eq $N
check "no message entered the retry queue (no status=deferred)" -- \
    test "$(log_count 'status=deferred')" -eq 0
check "no bounce" -- test "$(log_count 'status=bounced')" -eq 0
check "no 421 reply reached a delivery status line" -- \
    test "$(log_count 'status=.*421 4\.7\.0')" -eq 0

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
