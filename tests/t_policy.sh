#!/bin/bash
# t_policy - per-destination overrides from destination_policy_maps: a
# rate for one relay (200 messages at rate=40 take at least 199/40 s, less
# a margin for the clocks: never faster; a busy machine may make them
# slower, which says nothing about the limit) and a concurrency of 1 (four
# idle workers, yet one connection at a time).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
printf '# relay -> limits\n[127.0.0.1]:%s rate=40\n' "$SINK_PORT" >"$T/policy"
rq_set destination_policy_maps "$T/policy"
"$RELAYQ" check
ok $? "relayq check accepts the table"

maildrop_fill 200 pol
timed_start 200 60
ok $? "relayq start; 200 messages delivered"
diag "200 messages at rate=40 took $ELAPSED s"
check "the relay's rate=40 held: not under 4.2 s ($ELAPSED s)" -- between 4.2 "$ELAPSED" 60
"$RELAYQ" stop

printf '[127.0.0.1]:%s concurrency=1\n' "$SINK_PORT" >"$T/policy"
rm -f "$SINK_LOG"
sink_stop
sink_start
maildrop_fill 100 one
"$RELAYQ" start
wait_for 60 sink_has 100
ok $? "100 messages delivered with concurrency=1"
check "one connection carried them all ($(sink_connections))" -- test "$(sink_connections)" -eq 1
"$RELAYQ" stop

printf '[127.0.0.1]:%s concurrency=many\n' "$SINK_PORT" >"$T/policy"
"$RELAYQ" start
wait_for 10 log_has 1 'destination_policy_maps'
ok $? "a bad setting stops qmgr with the reason"
check "the reason names the entry and the setting" -- \
    grep -q "destination_policy_maps: $T/policy: entry \"\[127.0.0.1\]:$SINK_PORT\": bad setting \"concurrency=many\"" "$MAILLOG"
"$RELAYQ" stop
tap_end
