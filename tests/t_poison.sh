#!/bin/bash
# t_poison - a message whose delivery kills its delivery process: the
# first loss makes it due again at once (a qmgr restart loses every job
# in flight, and the mail is not to blame); a second loss makes it a
# poison message, logged as such and deferred with the ordinary backoff
# (an attempt counted), not retried in a loop. A flush still delivers it.
#
# The relay stalls the first two DATA commands, so the one worker is
# inside the delivery when the test kills it (kill -9, by pid): twice.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

QSTORE_SCHEDULE=$top_builddir/tests/qstore_schedule

rq_setup
sink_start --stall DATA:600@2
ok $? "test SMTP server started: it stalls the first two DATA commands"
rq_set smtpout_workers 1
"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"
inject 1 poison
ok $? "one message queued"
qid=$(grep -o '[0-9A-Za-z]*: uid=' "$MAILLOG" | head -n 1 | cut -d: -f1)

# kill_worker_in_delivery - wait for the Nth connection, kill the worker inside it: kill_worker_in_delivery N
kill_worker_in_delivery() {
    local pid
    wait_for 60 sh -c "test \$(grep -c '^connect ' '$SINK_LOG') -ge $1 &&
        test \$(grep -c 'went away during delivery' '$MAILLOG') -ge $(($1 - 1))"
    ok $? "delivery $1 reached the relay"
    pid=$(child_pid smtpout)
    kill -9 "$pid"
    ok $? "kill -9 of the delivery process (pid $pid) during delivery $1"
}

kill_worker_in_delivery 1
wait_for 30 log_has 1 "$qid: delivery process pid [0-9]* went away during delivery: retrying"
ok $? "qmgr saw the first loss"
kill_worker_in_delivery 2
wait_for 30 log_has 1 "$qid: 2 delivery processes died delivering this message: deferred with backoff (attempt 1)"
ok $? "the second loss makes it a poison message, logged as such"
"$QSTORE_SCHEDULE" "$T/queue/db" >"$T/schedule"
ok $? "the queue's schedule agrees with the envelope"
check "one attempt counted, next attempt after the backoff (about 300 s)" -- \
    awk -v qid="$qid" -v now="$(date +%s)" '$1 == qid {
        split($2, n, "="); found = ($3 == "attempts=1" && n[2] >= now + 200) }
        END { exit !found }' "$T/schedule"
check "no third delivery started" -- test "$(sink_connections)" -eq 2
"$RELAYQ" flush
ok $? "relayq flush"
wait_for 60 sink_has 1
ok $? "the flush delivers it"
wait_for 30 queue_empty
ok $? "the queue ends empty"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
