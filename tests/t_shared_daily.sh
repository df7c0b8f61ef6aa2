#!/bin/bash
# t_shared_daily - daily=500 for one relay, kept in Redis as a rolling
# window of hourly counts. The window is set up in Redis as if 499
# messages had gone this hour; of 3 new messages, the first (the 500th)
# is sent and the other two (the 501st and 502nd) are deferred with a
# reason naming the quota, not sent. Then the window is shifted as if 25
# hours had passed (the hour's count moved 25 hours back, so the server's
# clock finds it expired): after "relayq flush" the two go out, and the
# destination is logged as resumed. While the quota holds the mail,
# mailq says so before Postfix's total line, which stays last.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# redis - a command to the test's server
redis() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

# deferred_with_quota - whether mailq shows N recipients deferred for the quota
deferred_with_quota() {
    [ "$(RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" mailq | grep -c 'daily quota of 500 messages')" -ge "$1" ]
}

shared_setup 1 daily=500
sed '/^shared_limits_server = /d' "$T/i1/relayq.conf" >"$T/alone.conf"
RELAYQ_CONFIG=$T/alone.conf "$RELAYQ" check >"$T/check.out" 2>&1
check "relayq check warns that daily= is not enforced without a server" -- \
    grep -q "entry \"\[127.0.0.1\]:$SINK_PORT\": daily= is kept by shared_limits_server, which is not set" "$T/check.out"
hour=$(($(redis time | head -n 1) / 3600))
key="relayq:daily:127.0.0.1:$SINK_PORT"
redis hset "$key" "$hour" 499 >/dev/null
ok $? "the window holds 499 messages of this hour"
instances_fill 3 day
on_instances start
ok $? "relayq started with 3 messages"
wait_for 30 sink_has 1
ok $? "the 500th message was sent"
wait_for 30 log_has 1 "daily quota of 500 messages for 127.0.0.1:$SINK_PORT reached (rolling 24 h); deliveries resume in"
ok $? "the quota reached is logged once, with when deliveries resume"
wait_for 30 deferred_with_quota 2
ok $? "the 501st and 502nd are deferred with a reason naming the quota"
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" mailq >"$T/mailq.out"
grep 'daily quota' "$T/mailq.out" | head -n 1 | sed 's/^/# /'
grep '^Shared limits' "$T/mailq.out" | sed 's/^/# /'
check "mailq ends with the relay's quota used up, then Postfix's total line" -- \
    test "$(tail -n 2 "$T/mailq.out" | head -n 1)" = "Shared limits of 127.0.0.1:$SINK_PORT: the daily quota (500 messages) is used up by 1 instance; its mail is deferred until the window frees a slot"
check "the total line stays last" -- grep -Eq '^-- [0-9]+ Kbytes in 2 Requests\.$' <(tail -n 1 "$T/mailq.out")
check "only the 500th reached the server" -- test "$(sink_messages)" -eq 1
check "the quota was logged once" -- test "$(log_count 'daily quota of 500 messages for .* reached .rolling 24 h.; deliveries resume in')" -eq 1
check "the window counts 500" -- test "$(redis hget "$key" "$hour")" -eq 500
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" stats >"$T/stats.out"
grep 'shared with' "$T/stats.out" | sed 's/^/# /'
check "relayq stats shows the shared quota used up" -- \
    grep -q '^  shared with 1 instance: daily 500, 0 left;$' "$T/stats.out"
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" stats --json >"$T/stats.json"
check "relayq stats --json: the quota used up, 500 used" -- \
    grep -q '"shared_daily": 500, "shared_daily_known": 1, "shared_daily_left": 0, "shared_daily_used": 500,' "$T/stats.json"

# 25 hours later: the hour's count has left the window.
redis hdel "$key" "$hour" >/dev/null
redis hset "$key" $((hour - 25)) 500 >/dev/null
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" flush
ok $? "relayq flush"
wait_for 30 sink_has 3
ok $? "once the window moved on, the deferred messages were sent"
check "each message arrived once" -- sink_ids_once 3
check "the destination was resumed" -- log_has 1 "127.0.0.1:$SINK_PORT: destination resumed after"
check "the expired hour was dropped from the window" -- test -z "$(redis hget "$key" $((hour - 25)))"
on_instances stop
tap_end
