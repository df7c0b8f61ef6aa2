#!/bin/bash
# t_shared_rate - three relayq instances on one machine, each with its own
# queue and configuration, share rate=30 for one relay through a Redis
# server (shared_limits_server): 1,800 messages, 600 in each queue before
# the start, reach the test server at 30 messages per second, +-10%, as
# the server's own timestamps measure it from its first message to its
# last. Alone, each instance would send 30 per second, 90 together.
# Midway the server flushes its scripts: the instances go on (EVAL after
# NOSCRIPT) without falling back to local shares.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

shared_setup 3 rate=30 --timestamps
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" check
ok $? "relayq check accepts shared_limits_server"
sed 's|^shared_limits_server = .*|shared_limits_server = rediss://127.0.0.1:1/0|' \
    "$T/i1/relayq.conf" >"$T/bad.conf"
RELAYQ_CONFIG=$T/bad.conf "$RELAYQ" check >"$T/check.out" 2>&1
check "relayq check refuses a server it cannot use, with the reason" -- \
    grep -q 'shared_limits_server.*TLS is not supported yet' "$T/check.out"

instances_fill 600 rate
ok $? "600 messages in each instance's maildrop"
start=$(date +%s)
on_instances start
ok $? "three instances started"
# The server forgets its scripts (as after a restart the connection did
# not notice): EVALSHA is answered NOSCRIPT, and EVAL takes over.
wait_for 60 sink_has 600
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" script flush >/dev/null
ok $? "the server's scripts flushed after 600 messages"
wait_for 150 sink_has 1800
ok $? "all 1,800 messages delivered ($(sink_messages) after $(($(date +%s) - start)) s)"
rate=$(sink_rate)
diag "the server saw $rate messages per second"
check "the shared rate=30 held over the run: 27 to 33 per second ($rate)" -- between 27 "$rate" 33
check "each message arrived once" -- sink_ids_once 1800
for k in 1 2 3; do
    check "instance $k delivered a part of them" -- test "$(sink_count "msgid=<rate-i$k-")" -gt 100
done
check "no instance fell back to a local share" -- test "$(log_count 'shared limits unavailable')" -eq 0
check "each instance joined the group" -- test "$(log_count 'sharing limits through redis://127.0.0.1')" -ge 3
on_instances stop
tap_end
