#!/bin/bash
# t_stale_reader - a process killed inside a read transaction of the queue
# (a `relayq mailq` stopped in the middle, an smtpout killed while reading
# a body) must not pin LMDB's old pages until the map fills: qmgr frees
# the dead reader's slot within seconds and says so, and then 5,000
# messages of 60 KB (about five times the 64 MB map) go through without
# the queue ever filling. Without qmgr's periodic check the map filled
# within the first waves (750 of the 5,000 arrived, then pickup found the
# queue full and qmgr could not record results).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

HOLD=$top_builddir/tests/qstore_hold_reader
WAVES=20
PER_WAVE=250
N=$((WAVES * PER_WAVE))
SIZE=61440

rq_setup
rq_set queue_map_size 64m
sink_start
ok $? "test SMTP server started"
"$RELAYQ" start
ok $? "relayq start with a 64 MB queue map"

# daemons_opened_queue - whether qmgr, pickup and the 4 workers have the
# queue open: a process that opens it frees dead readers' slots itself
# (qstore_open), silently, so the dead reader must come after them.
daemons_opened_queue() {
    local pid count=0
    for pid in $(pgrep -f "^$T/libexec/(qmgr|pickup|smtpout)"); do
        grep -qF "$T/queue/db/data.mdb" "/proc/$pid/maps" 2>/dev/null && count=$((count + 1))
    done
    [ "$count" -ge 6 ]
}
wait_for 30 daemons_opened_queue
ok $? "qmgr, pickup and the 4 workers have the queue open"

# A reader that dies inside its read transaction.
"$HOLD" "$T/queue/db" >"$T/hold.out" 2>"$T/hold.err" &
hold_pid=$!
wait_for 10 grep -q '^ready' "$T/hold.out"
ok $? "a process holds a read transaction on the queue ($(cat "$T/hold.out" "$T/hold.err"))"
kill -KILL "$hold_pid"
wait "$hold_pid" 2>/dev/null
ok $(($? != 137)) "it is killed with SIGKILL inside the transaction"
wait_for 30 log_has 1 'qmgr\[[0-9]*\]: cleared 1 stale queue reader left by dead processes'
ok $? "qmgr clears the dead reader's slot and logs it"

# The mail comes in waves, each delivered before the next: the queue itself
# stays small, so only pinned pages could fill the map.
waves=0
for wave in $(seq 1 $WAVES); do
    maildrop_fill $PER_WAVE "w$wave" $SIZE || break
    wait_for 300 sink_has $((wave * PER_WAVE)) || break
    waves=$wave
done
ok $((waves != WAVES)) "$WAVES waves of $PER_WAVE messages of 60 KB each delivered in turn ($(sink_messages) arrived)"
check "all $N distinct messages arrived" -- sink_has_distinct $N
check "pickup never found the queue full" -- test "$(log_count 'queue is full')" -eq 0
check "qmgr always recorded delivery results" -- \
    test "$(log_count 'cannot record delivery results')" -eq 0
check "no message was deferred" -- test "$(log_count 'status=deferred')" -eq 0
wait_for 30 queue_empty
ok $? "mailq prints 'Mail queue is empty'"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
