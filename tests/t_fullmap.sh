#!/bin/bash
# t_fullmap - a queue map too small for the mail that waits: pickup stops
# taking files from maildrop/ with a warning, relayq sendmail keeps
# accepting, and once the relay is back and deliveries free room (qmgr
# records them even in a full map) pickup resumes; every message arrives
# and nothing is lost.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
sink_stop
rq_set queue_map_size 1m
"$RELAYQ" start
ok $? "relayq start with a 1 MB queue map and the relay down"

N=60
body=$(head -c 30000 /dev/zero | tr '\0' 'x' | fold -w 76)
for i in $(seq 1 $N); do
    printf 'Subject: big %s\nMessage-ID: <big-%s@relayq.test>\n\n%s\n' "$i" "$i" "$body" |
        "$RELAYQ" sendmail -f sender@example.com "rcpt$i@example.com" || break
done
ok $? "relayq sendmail accepted all $N messages of 30 KB"
wait_for 30 log_has 1 'queue is full'
ok $? "pickup says the queue is full"
check "mail waits in maildrop, not lost" -- test "$(ls "$T/queue/maildrop" | wc -l)" -gt 0

sink_start
"$RELAYQ" flush
# all_in - every message arrived
all_in() { sink_has_distinct $N; }
wait_for 120 all_in
ok $? "once the relay is back, all $N messages arrive"
wait_for 30 queue_empty
ok $? "the queue is empty"
check "maildrop is empty" -- test -z "$(ls "$T/queue/maildrop")"
check "pickup resumed" -- grep -q 'queue has room again' "$MAILLOG"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
