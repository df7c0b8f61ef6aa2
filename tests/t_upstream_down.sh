#!/bin/bash
# t_upstream_down - with the relay down, mail stays queued and mailq shows
# the connection error as each message's reason; once the relay is back,
# relayq flush (which probes the suspended destination at once) delivers
# everything.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
# Find a free port by starting and stopping the server, then leave it down.
sink_start
sink_stop
# Probes far apart: the mail waits for the flush below.
rq_set destination_probe_interval 300s
"$RELAYQ" start
ok $? "relayq start with the relay down"

N=20
inject $N down
ok $? "$N messages queued"
# The first refused connection suspends the destination: the others wait
# for its probe (doc/internals.md, "Dead destinations") and show why.
all_deferred() {
    "$RELAYQ" mailq >"$T/mailq"
    [ "$(grep -c "(connect to 127.0.0.1\[127.0.0.1\]:$SINK_PORT: Connection refused (destination suspended, next probe at [0-9:]*))" "$T/mailq")" -eq $N ]
}
wait_for 30 all_deferred
ok $? "every message is deferred with the connection error as the reason"
check "mailq lists $N requests" -- grep -q "in $N Requests" "$T/mailq"
"$RELAYQ" mailq --json >"$T/mailq.json"
check "mailq --json has one object per message with next_attempt" -- \
    test "$(grep -c '"next_attempt"' "$T/mailq.json")" -eq $N
check "the JSON carries the delay reason" -- grep -q '"delay_reason": *"connect to 127.0.0.1' "$T/mailq.json"

sink_start --maildir "$T/sink"
ok $? "relay back on the same port"
# Deferred mail waits for the next probe (300 s): nothing moves without a flush.
check "nothing is delivered before the flush" -- test "$(sink_messages)" -eq 0
"$RELAYQ" flush
ok $? "relayq flush"
wait_for 30 sink_has $N
ok $? "all $N delivered after the flush ($(sink_messages))"
wait_for 10 queue_empty
ok $? "the queue is empty"
"$RELAYQ" flush -i NOTAQUEUEID 2>"$T/err"
check "flush -i with a bad id is a usage error" -- test $? -eq 64
check "the error names the bad id" -- grep -q 'NOTAQUEUEID' "$T/err"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
