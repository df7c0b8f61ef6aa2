#!/bin/bash
# t_rate - per-destination rate limits:
#  - destination_rate_limit = 20 (messages per second): 1,000 messages take
#    50 s +- 10 % with 4 workers;
#  - a relay that answers "421 4.7.0 too many messages" above 50 messages
#    per second: relayq settles near that rate, bounces nothing, and pushes
#    nothing to the long backoff (minimal_backoff_time stays 300 s, so a
#    message that went there would not arrive during the test).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start

# preload - queue N messages while relayq is stopped, so that delivery is
# measured alone: preload N TAG
preload() {
    "$RELAYQ" start && "$RELAYQ" stop || return 1
    inject "$1" "$2"
}

rq_set destination_rate_limit 20
preload 1000 rate
ok $? "1000 messages waiting in maildrop"
start=$(date +%s.%N)
"$RELAYQ" start
wait_for 120 sink_has 1000
ok $? "all 1000 delivered"
end=$(date +%s.%N)
elapsed=$(python3 -c "print(f'{$end - $start:.1f}')")
diag "1000 messages at destination_rate_limit = 20 took $elapsed s"
check "they took 50 s +- 10 % ($elapsed s)" -- \
    python3 -c "import sys; sys.exit(0 if 45 <= $elapsed <= 55 else 1)"
"$RELAYQ" stop

# Throttling: the relay refuses more than 50 messages a second.
sink_stop
rm -f "$SINK_LOG"
sink_start --rate-limit 50
rq_set destination_rate_limit 0
preload 1000 thr
start=$(date +%s.%N)
"$RELAYQ" start
wait_for 90 sink_has 1000
ok $? "all 1000 delivered through a relay that throttles above 50 messages/s"
end=$(date +%s.%N)
rate=$(python3 -c "print(f'{1000 / ($end - $start):.1f}')")
diag "throttled run: $rate messages/s on average"
check "relayq settled near the relay's rate (35 to 55 messages/s: $rate)" -- \
    python3 -c "import sys; sys.exit(0 if 35 <= $rate <= 55 else 1)"
check "the relay did throttle (421 replies seen)" -- grep -q 'relay asks to slow down' "$MAILLOG"
check "no message bounced" -- sh -c "! grep -q 'status=bounced' '$MAILLOG'"
wait_for 10 queue_empty
ok $? "the queue is empty: nothing waits in the long backoff"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
