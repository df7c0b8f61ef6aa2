#!/bin/bash
# t_rcpt_budget - qmgr_message_recipient_limit bounds the recipients of the
# active set: with a limit of 10 and messages of 4 recipients, qmgr loads a
# message only while the active set holds fewer than 10 recipients, and
# every message is still delivered. The check replays qmgr's own log: each
# "(queue active)" line adds its nrcpt, each "removed" line takes it away,
# and no activation may start from 10 or more.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

M=20
rq_setup
sink_start
rq_set qmgr_message_recipient_limit 10
maildrop_fill $M budget 0 4
ok $? "$M messages of 4 recipients waiting in maildrop"
"$RELAYQ" start
ok $? "relayq start"
wait_for 60 sink_has_distinct $M
ok $? "all $M messages arrived"
wait_for 30 queue_empty
ok $? "the queue is empty"
"$RELAYQ" stop
ok $? "relayq stop"
check "qmgr activated all $M messages" -- test "$(log_count 'nrcpt=4 \(queue active\)')" -eq $M
check "no message was loaded while 10 or more recipients were active" -- awk '
    /qmgr\[[0-9]+\]: [0-9A-Za-z]+: from=<.*nrcpt=[0-9]+ \(queue active\)/ {
        if (active >= 10) { print "# " $0 " with " active " active"; bad = 1 }
        match($0, /nrcpt=[0-9]+/); n = substr($0, RSTART + 6, RLENGTH - 6)
        qid = $0; sub(/.*qmgr\[[0-9]+\]: /, "", qid); sub(/:.*/, "", qid)
        rcpts[qid] = n; active += n; if (active > most) most = active
    }
    /qmgr\[[0-9]+\]: [0-9A-Za-z]+: removed/ {
        qid = $0; sub(/.*qmgr\[[0-9]+\]: /, "", qid); sub(/:.*/, "", qid)
        active -= rcpts[qid]
    }
    END { print "# most recipients active at once: " most; exit bad }' "$MAILLOG"
tap_end
