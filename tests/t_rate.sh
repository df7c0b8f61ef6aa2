#!/bin/bash
# t_rate - per-destination rate limits:
#  - destination_rate_limit = 20 (messages per second): 1,000 messages take
#    at least 45 s with 4 workers (50 s less 10 % for the clocks; a busy
#    machine may make them slower, which says nothing about the limit, so
#    only the limit of the wait bounds them from above);
#  - a relay that answers "421 4.7.0 too many messages" above 50 messages
#    per second: relayq stays at or under about that rate, bounces
#    nothing, and pushes nothing to the long backoff (minimal_backoff_time
#    stays 300 s, so a message that went there would not arrive during the
#    test; all 1,000 arriving within the wait shows it did not collapse);
#  - relayq stats shows the rate in force (20, then the one learned) and
#    counts the throttle events.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
# dest_figure KEY - one figure of the (one) destination in relayq stats --json
dest_figure() {
    "$RELAYQ" stats --json | python3 -c 'import json, sys
print(json.load(sys.stdin)["destinations"][0][sys.argv[1]])' "$1"
}

rq_set destination_rate_limit 20
maildrop_fill 1000 rate
ok $? "1000 messages waiting in maildrop"
timed_start 1000 120
ok $? "all 1000 delivered"
diag "1000 messages at destination_rate_limit = 20 took $ELAPSED s"
check "the limit held: not under 45 s ($ELAPSED s)" -- between 45 "$ELAPSED" 120
check "relayq stats shows the rate in force: $(dest_figure rate_limit) messages/s" -- \
    test "$(dest_figure rate_limit)" = 20.0
"$RELAYQ" stop

# Throttling: the relay refuses more than 50 messages a second.
sink_stop
rm -f "$SINK_LOG"
sink_start --rate-limit 50
rq_set destination_rate_limit 0
maildrop_fill 1000 thr
timed_start 1000 90
ok $? "all 1000 delivered through a relay that throttles above 50 messages/s"
rate=$(python3 -c "print(f'{1000 / $ELAPSED:.1f}')")
diag "throttled run: $rate messages/s on average"
check "relayq kept to the relay's rate (at most 55 messages/s: $rate)" -- between 0 "$rate" 55
check "the relay did throttle (421 replies seen)" -- grep -q 'relay asks to slow down' "$MAILLOG"
check "relayq stats counts the throttle events ($(dest_figure throttles)) and a rate learned ($(dest_figure rate_limit))" -- \
    test "$(dest_figure throttles)" -gt 0 -a "$(dest_figure rate_limit)" != 0.0
check "no message bounced" -- sh -c "! grep -q 'status=bounced' '$MAILLOG'"
wait_for 10 queue_empty
ok $? "the queue is empty: nothing waits in the long backoff"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
