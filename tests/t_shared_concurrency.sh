#!/bin/bash
# t_shared_concurrency - three instances with 4 workers each share
# concurrency=3 for one relay through Redis: the test server, which
# answers every command 20 ms late so that connections overlap, never has
# more than 3 connections open at once (counted from its own log), and
# all 600 messages arrive, each once. An instance whose mail ran out
# closes its idle connections, so the others get the slots. relayq stats
# (text and --json) names the three instances (myhostname:queue_directory).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

shared_setup 3 concurrency=3 --delay 20
instances_fill 200 conc
ok $? "200 messages in each instance's maildrop"
on_instances start
ok $? "three instances with 4 workers each started"
wait_for 180 sink_has 600
ok $? "all 600 messages delivered ($(sink_messages))"
check "each message arrived once" -- sink_ids_once 600
peak=$(sink_peak_connections)
diag "the server saw at most $peak connections at once, $(sink_connections) in all"
check "never more than 3 connections at once ($peak)" -- test "$peak" -le 3
check "the slots were used ($peak at once)" -- test "$peak" -ge 2
for k in 1 2 3; do
    check "instance $k delivered its mail" -- test "$(sink_count "msgid=<conc-i$k-")" -eq 200
done
check "no instance fell back to a local share" -- test "$(log_count 'shared limits unavailable')" -eq 0
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" stats >"$T/stats.out"
grep 'shared with' "$T/stats.out" | sed 's/^/# /'
check "relayq stats shows the shared concurrency and the group" -- \
    grep -Eq '^  shared with 3 instances: concurrency 3, [0-3] leases held here;$' "$T/stats.out"
grep '^  instances:' "$T/stats.out" | sed 's/^/# /'
for k in 1 2 3; do
    check "relayq stats names instance $k (myhostname:queue_directory)" -- \
        grep -Eq "^  instances: (.*, )?relayq.test:$T/i$k/queue(,|$)" "$T/stats.out"
done
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" stats --json >"$T/stats.json"
check "relayq stats --json has the figures" -- \
    grep -q '"shared": 1, "shared_rate_milli": 0, "shared_concurrency": 3, ' "$T/stats.json"
check "and the three instances' names" -- python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["destinations"][0]
names = sorted(d["shared_instance_names"])
want = sorted(f"{sys.argv[2]}:{sys.argv[3]}/i{k}/queue" for k in (1, 2, 3))
sys.exit(names != want)' "$T/stats.json" "relayq.test" "$T"
on_instances stop
tap_end
