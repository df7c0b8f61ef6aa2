#!/bin/bash
# t_deaddest - a relay that is down suspends its destination: 2,000 queued
# messages do not each try a connection and do not wait out a backoff.
# qmgr probes the relay once per destination_probe_interval; when it is
# back, every message goes out at once, each exactly once. With a failover
# list the next relay takes the mail while the first is suspended.
#
# Bounds asserted (doc/internals.md, "Dead destinations"): the deferrals
# "Connection refused" logged during the outage are at most the jobs in
# flight when the first failure came back (one per worker: smtpout_workers)
# plus one per probe (outage / interval + 2).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=2000
WORKERS=4
INTERVAL=2
OUTAGE=30

rq_setup
# Find a free port by starting and stopping the server, then leave it down.
sink_start
sink_stop
rq_set smtpout_workers $WORKERS
rq_set minimal_backoff_time 3600s
rq_set maximal_backoff_time 3600s
rq_set destination_probe_interval ${INTERVAL}s

maildrop_fill $N dead
ok $? "$N messages waiting in maildrop"
"$RELAYQ" start
ok $? "relayq start with the only relay down"
wait_for 30 log_has 1 "127.0.0.1:$SINK_PORT: destination suspended: connect to 127.0.0.1\[127.0.0.1\]:$SINK_PORT: Connection refused; next probe in ${INTERVAL}s"
ok $? "the first refused connection suspends the destination, logged with its reason"
DOWN_AT=$(date +%s.%N)

# Every message waits for the probe, with the reason and the suspension.
suspended_listed() {
    "$RELAYQ" mailq >"$T/mailq" 2>/dev/null
    [ "$(grep -c "(connect to 127.0.0.1\[127.0.0.1\]:$SINK_PORT: Connection refused (destination suspended, next probe at [0-9][0-9]:[0-9][0-9]:[0-9][0-9]))" "$T/mailq")" -eq $N ]
}
wait_for 60 suspended_listed
ok $? "mailq shows all $N messages deferred: destination suspended, with the next probe time"
"$RELAYQ" stats --json >"$T/stats.json"
check "relayq stats says the destination is suspended" -- \
    grep -q "\"name\": \"127.0.0.1:$SINK_PORT\", [^}]*\"suspended\": 1" "$T/stats.json"
"$RELAYQ" stats >"$T/stats.txt"
check "relayq stats in text says so too, with the mail parked" -- \
    grep -Eq '^  suspended: down for [0-9]+ s, next probe in [0-9]+ s, [0-9]+ messages parked$' "$T/stats.txt"
"$RELAYQ" mailq --json >"$T/mailq.json"
check "no attempt counted: nothing waits for the 3600 s backoff" -- \
    python3 -c "
import json, sys, time
late = [m['queue_id'] for m in map(json.loads, open('$T/mailq.json')) if m['next_attempt'] > time.time() + 300]
sys.exit(1 if late else 0)"

# The outage itself: a bounded wait, the only one of this test.
remaining=$(python3 -c "import time; print(max(0.0, $DOWN_AT + $OUTAGE - time.time()))")
sleep "$remaining"
sink_start --maildir "$T/sink"
ok $? "relay back on the same port after about $OUTAGE s"
UP_AT=$(date +%s.%N)
wait_for 10 sink_has $N
ok $? "all $N delivered within 10 s of the relay coming back ($(sink_messages))"
check "each message arrived exactly once" -- sink_ids_once $N
check "one suspension logged" -- test "$(log_count 'destination suspended')" -eq 1
check "the resume is logged with the mail it released" -- \
    log_has 1 "127.0.0.1:$SINK_PORT: destination resumed after [0-9]*s, $N messages released"
outage=$(python3 -c "import math; print(math.ceil($UP_AT - $DOWN_AT))")
refused=$(log_count "status=deferred \(connect to 127.0.0.1\[127.0.0.1\]:$SINK_PORT: Connection refused\)")
bound=$((WORKERS + outage / INTERVAL + 2))
diag "outage ${outage}s, interval ${INTERVAL}s: $refused connection attempts logged as deferrals (bound $bound)"
check "at most one connection attempt per worker, then one per probe ($refused <= $bound)" -- \
    test "$refused" -le "$bound"
check "the probes did happen: more than the first failures" -- test "$refused" -gt $WORKERS
wait_for 30 queue_empty
ok $? "the queue is empty"
"$RELAYQ" stop
ok $? "relayq stop"

# Failover: the first relay of the list is down, the second takes the mail.
DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rq_set relayhost "[127.0.0.1]:$DEAD, [127.0.0.1]:$SINK_PORT"
M=200
maildrop_fill $M failover
"$RELAYQ" start
ok $? "relayq start with a failover list whose first relay is down"
wait_for 60 sink_has $((N + M))
ok $? "the second relay took all $M messages, without the 3600 s backoff ($(sink_messages))"
check "each failover message arrived exactly once" -- sink_ids_once $((N + M))
check "the first relay is suspended" -- log_has 1 "127.0.0.1:$DEAD: destination suspended: connect to"
check "the log says where the mail went" -- \
    log_has 1 "relay 127.0.0.1:$DEAD unreachable: trying 127.0.0.1:$SINK_PORT"
refused=$(log_count "status=deferred \(connect to 127.0.0.1\[127.0.0.1\]:$DEAD: Connection refused\)")
check "the dead relay was not tried once per message ($refused attempts)" -- test "$refused" -le 20
wait_for 30 queue_empty
ok $? "the queue is empty"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
