#!/bin/bash
# t_shared_outage - three instances share rate=30 through Redis; Redis is
# killed in the middle of the run and started again once 600 messages
# (20 s at the shared rate) arrived without it. Every instance logs the
# fallback once and applies its local share (1/3 each: the instances
# counted 3 before), so the combined rate during the outage stays within
# the shares (at most 30 per second, +10%); each logs once that sharing
# resumed; every message arrives exactly once. Then Redis is stopped
# (SIGSTOP), not killed: requests time out, the instances fall back again
# without waiting on it, and come back when it continues (SIGCONT).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# counted_three - whether every instance logged a group of 3
counted_three() {
    local k
    for k in 1 2 3; do
        grep -q "relayq-i$k/qmgr.*shared limits: 3 instances in the group" "$MAILLOG" || return 1
    done
}

# sink_rate_between - messages per second the server accepted between two
# wall-clock times in ms: sink_rate_between FROM_MS TO_MS
sink_rate_between() {
    grep '^message ' "$SINK_LOG" | sed -n 's/.* t=\([0-9]*\)$/\1/p' | python3 -c '
import sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
n = sum(1 for x in sys.stdin if lo <= int(x) <= hi)
print(f"{n * 1000 / (hi - lo):.2f}")' "$1" "$2"
}

now_ms() {
    date +%s%3N
}

shared_setup 3 rate=30 --timestamps
instances_fill 600 out
ok $? "600 messages in each instance's maildrop"
on_instances start
ok $? "three instances started"
wait_for 30 counted_three
ok $? "each instance counted 3 instances in the group"
wait_for 60 sink_has 150
ok $? "sharing: 150 messages delivered"

# Redis dies; the mail goes on at the local shares.
redis_kill
down_ms=$(now_ms)
at_kill=$(sink_messages)
wait_for 30 log_has 3 'shared limits unavailable'
ok $? "every instance logged the fallback"
wait_for 60 sink_has $((at_kill + 600))
ok $? "600 messages delivered while Redis was down"
up_ms=$(now_ms)
redis_start
ok $? "redis-server started again on the same port"
outage_rate=$(sink_rate_between "$((down_ms + 1000))" "$up_ms")
diag "during the outage the server saw $outage_rate messages per second"
check "the combined rate stayed within the fallback shares: at most 33 per second ($outage_rate)" -- \
    between 0 "$outage_rate" 33
wait_for 30 log_has 3 'shared limits available again'
ok $? "every instance logged that sharing resumed"
for k in 1 2 3; do
    check "instance $k logged the fallback once" -- \
        test "$(log_count "relayq-i$k/qmgr.*shared limits unavailable")" -eq 1
    check "instance $k used a share of 1/3" -- \
        grep -q "relayq-i$k/qmgr.*shared limits unavailable .*using a local share of 0.333 of each limit" "$MAILLOG"
done

# Redis stops answering, without closing: the requests time out.
kill -STOP "$REDIS_PID"
at_stop=$(sink_messages)
wait_for 30 log_has 6 'shared limits unavailable'
ok $? "a server that stopped answering: every instance fell back again"
check "the reason is the timeout" -- grep -q 'shared limits unavailable (.*request timed out)' "$MAILLOG"
wait_for 30 sink_has $((at_stop + 90))
ok $? "delivery went on meanwhile ($(($(sink_messages) - at_stop)) messages)"
kill -CONT "$REDIS_PID"
wait_for 30 log_has 6 'shared limits available again'
ok $? "every instance came back to the shared limits"

wait_for 120 sink_has 1800
ok $? "all 1,800 messages delivered"
check "each message arrived exactly once" -- sink_ids_once 1800
check "no message deferred or bounced" -- test "$(log_count 'status=(deferred|bounced)')" -eq 0
on_instances stop
tap_end
