#!/bin/bash
# t_policy - per-destination overrides from destination_policy_maps: a
# rate for one relay (200 messages at rate=40 take at least 199/40 s, less
# a margin for the clocks: never faster; a busy machine may make them
# slower, which says nothing about the limit) and a concurrency of 1 (four
# idle workers, yet one connection at a time). A bad setting is refused
# by relayq check, relayq start and qmgr's reload, with the entry named.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# qmgr_answers - whether qmgr is up and answers a stats request
qmgr_answers() {
    "$RELAYQ" stats >/dev/null 2>&1
}

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
bad="destination_policy_maps: $T/policy: entry \"\[127.0.0.1\]:$SINK_PORT\": bad setting \"concurrency=many\""
"$RELAYQ" check >"$T/check.out" 2>&1
check "relayq check refuses a bad setting, naming the entry" -- grep -q "$bad" "$T/check.out"
"$RELAYQ" start >"$T/start.out" 2>&1
test $? -ne 0
ok $? "relayq start refuses it too"
check "with the entry and the setting" -- grep -q "$bad" "$T/start.out"

# qmgr checks a table it reloads: a bad one is refused, the old one stays.
printf '[127.0.0.1]:%s concurrency=1\n' "$SINK_PORT" >"$T/policy"
"$RELAYQ" start && wait_for 30 qmgr_answers
ok $? "relayq start with a good table; qmgr answers"
printf '[127.0.0.1]:%s concurrency=many\n' "$SINK_PORT" >"$T/policy"
"$RELAYQ" reload
wait_for 10 log_has 1 "destination_policy_maps not reloaded: $bad"
ok $? "qmgr refuses the bad table on reload, with the reason"
"$RELAYQ" stop
tap_end
