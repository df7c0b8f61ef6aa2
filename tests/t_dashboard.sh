#!/bin/bash
# t_dashboard - doc/relayq-dashboard.json, the Grafana dashboard, loads:
# it is valid JSON, and every PromQL expression in it names only metrics
# that relayq exports, as a real scrape of a running relayq's /metrics
# shows them (tests/dashboard_check.py; a histogram's _bucket, _sum and
# _count series map to its family). relayq delivers a few messages first,
# so that the series of a destination exist. A dashboard with a metric
# relayq does not export is refused.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

DASHBOARD=$top_srcdir/doc/relayq-dashboard.json
CHECK=$top_srcdir/tests/dashboard_check.py

rq_setup
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if d["panels"] else 1)' \
    "$DASHBOARD"
ok $? "doc/relayq-dashboard.json is JSON with panels"

sink_start
ok $? "the test server on 127.0.0.1:$SINK_PORT"
PORT=$(free_port)
rq_set metrics_listen "127.0.0.1:$PORT"
maildrop_fill 5 dash
ok $? "5 messages waiting in maildrop"
"$RELAYQ" start
ok $? "relayq start"
wait_for 30 sink_has 5
ok $? "the server has 5 messages ($(sink_messages))"

# scraped - a scrape of /metrics with a destination's figures in it
scraped() {
    curl -sf --max-time 10 -o "$T/scrape" "http://127.0.0.1:$PORT/metrics" &&
        grep -q '^relayq_recipients_total{.*status="sent"} 5$' "$T/scrape"
}
wait_for 10 scraped
ok $? "a scrape of /metrics counts the 5 recipients sent"

python3 "$CHECK" "$DASHBOARD" "$T/scrape" >"$T/check.out" 2>&1
ok $? "every expression of the dashboard names metrics relayq exports"
sed 's/^/# /' "$T/check.out"

sed 's/relayq_queue_map_used_ratio/relayq_queue_map_use_ratio/' "$DASHBOARD" >"$T/bad.json"
python3 "$CHECK" "$T/bad.json" "$T/scrape" >"$T/check.out" 2>&1
check "a dashboard with a metric relayq does not export is refused" -- test $? -eq 1
check "and the metric is named" -- grep -q 'not exported: relayq_queue_map_use_ratio' "$T/check.out"

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
