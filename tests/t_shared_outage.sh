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
# Instance 1 runs the metrics daemon: its scrapes show the shared rate
# (30), the instances (3) and the fallback (0 while sharing, 1 during the
# outage, 0 after), and pass "promtool check metrics" without a word;
# during the outage its mailq says the local shares are in force, before
# Postfix's total line.
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

# scrape FILE - one scrape of instance 1's /metrics into a file
scrape() { curl -sf --max-time 10 -o "$1" "$URL"; }
# sample FILE SERIES - the value of one series of a scrape ("" when absent)
sample() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }
# fallback_is V - instance 1's scrape says relayq_shared_fallback V
fallback_is() {
    scrape "$T/scrape" && [ "$(sample "$T/scrape" "relayq_shared_fallback{$DEST}")" = "$1" ]
}
# promtool_silent FILE - promtool check metrics passes on a scrape without a word
promtool_silent() {
    promtool check metrics <"$1" >"$T/promtool.out" 2>&1 && test ! -s "$T/promtool.out"
}

shared_setup 3 rate=30 --timestamps
PORT=$(free_port)
printf 'metrics_listen = 127.0.0.1:%s\n' "$PORT" >>"$T/i1/relayq.conf"
URL=http://127.0.0.1:$PORT/metrics
DEST="destination=\"127.0.0.1:$SINK_PORT\""
instances_fill 600 out
ok $? "600 messages in each instance's maildrop"
on_instances start
ok $? "three instances started"
wait_for 30 counted_three
ok $? "each instance counted 3 instances in the group"
wait_for 60 sink_has 150
ok $? "sharing: 150 messages delivered"
wait_for 10 fallback_is 0
ok $? "metrics: relayq_shared_fallback is 0 while sharing"
check "metrics: the shared rate is 30 per second" -- \
    test "$(sample "$T/scrape" "relayq_shared_limit{$DEST,limit=\"rate\"}")" = 30
check "metrics: 3 instances share it" -- \
    test "$(sample "$T/scrape" "relayq_shared_instances{$DEST}")" = 3
check "metrics: no concurrency or daily limit is shown (none is set)" -- \
    sh -c "! grep -q 'limit=\"\(concurrency\|daily\)\"' '$T/scrape'"
check "promtool check metrics passes on it without a word" -- promtool_silent "$T/scrape"
sed 's/^/# /' "$T/promtool.out" | head -n 10

# Redis dies; the mail goes on at the local shares.
redis_kill
down_ms=$(now_ms)
at_kill=$(sink_messages)
wait_for 30 log_has 3 'shared limits unavailable'
ok $? "every instance logged the fallback"
wait_for 10 fallback_is 1
ok $? "metrics: relayq_shared_fallback is 1 during the outage"
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" mailq >"$T/mailq.out"
check "mailq says the local shares are in force, before its last line" -- \
    test "$(tail -n 2 "$T/mailq.out" | head -n 1)" = "Shared limits of 127.0.0.1:$SINK_PORT: server unavailable; this instance applies its local share of each limit"
check "and Postfix's total line stays last" -- grep -Eq '^-- [0-9]+ Kbytes in [0-9]+ Requests\.$' <(tail -n 1 "$T/mailq.out")
check "promtool check metrics passes on it without a word" -- promtool_silent "$T/scrape"
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
wait_for 10 fallback_is 0
ok $? "metrics: relayq_shared_fallback is 0 again after it"
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
