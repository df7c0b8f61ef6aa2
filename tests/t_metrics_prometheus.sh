#!/bin/bash
# t_metrics_prometheus - a real Prometheus server scrapes relayq: the test
# starts prometheus (the Debian package's) on 127.0.0.1 with a scrape
# every second of relayq's metrics_listen and relayq's alert rules
# (doc/relayq-alerts.yml, which "promtool check rules" accepts), and
# relayq delivers t_metrics's workload (tests/lib.sh, metrics_workload):
# 1,000 messages to the test server, which refuses 50 recipients for good
# (550) and 100 once (450). Prometheus's query API then says what the test
# server saw: the recipients sent (the 950 messages and the 50 bounce
# notices it took), bounced 50 and deferred 100; its rules are loaded and
# none fires. Prometheus is stopped by its pid.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=1000
BOUNCED=50
DEFERRED=100
RULES=$top_srcdir/doc/relayq-alerts.yml

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    echo "1..0 # SKIP prometheus and promtool are not installed (scripts/deps.sh installs them)"
    exit 0
fi
rq_setup
promtool check rules "$RULES" >"$T/rules.out" 2>&1
ok $? "promtool check rules accepts doc/relayq-alerts.yml"
sed 's/^/# /' "$T/rules.out"

PROM_PID=
# prom_stop - stop the Prometheus server this test started, by its pid
prom_stop() {
    if [ -n "$PROM_PID" ]; then
        kill "$PROM_PID" 2>/dev/null
        wait "$PROM_PID" 2>/dev/null
        PROM_PID=
    fi
}
trap 'prom_stop; rq_cleanup' EXIT

PORT=$(free_port)
rq_set metrics_listen "127.0.0.1:$PORT"
metrics_workload $N $BOUNCED $DEFERRED prom

PROM_PORT=$(free_port)
cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: relayq
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
API=http://127.0.0.1:$PROM_PORT/api/v1

# query EXPR - the value of an instant query's first result ("" when none)
query() {
    curl -sf --max-time 5 "$API/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null
}
# prom_ready - Prometheus answers queries
prom_ready() { curl -sf --max-time 5 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null; }
wait_for 60 prom_ready
ok $? "prometheus answers on 127.0.0.1:$PROM_PORT"

"$RELAYQ" start
ok $? "relayq start"
# relayq_scraped - Prometheus has scraped relayq successfully
relayq_scraped() { [ "$(query 'up{job="relayq"}')" = 1 ]; }
wait_for 60 relayq_scraped
ok $? "prometheus scrapes relayq: up is 1"
wait_for 120 sink_has $N
ok $? "the server has $N messages ($(sink_messages))"
wait_for 30 queue_empty
ok $? "the queue is empty"

DEST="destination=\"127.0.0.1:$SINK_PORT\""
# prom_agrees - Prometheus's latest sample of the sent, bounced and
# deferred counters is what the test server saw
prom_agrees() {
    [ "$(query "relayq_recipients_total{$DEST,status=\"sent\"}")" = "$(sink_messages)" ] &&
        [ "$(query "relayq_recipients_total{$DEST,status=\"bounced\"}")" = "$(sink_refused 5)" ] &&
        [ "$(query "relayq_recipients_total{$DEST,status=\"deferred\"}")" = "$(sink_refused 4)" ]
}
wait_for 30 prom_agrees
ok $? "prometheus's query API says the server's figures"
for status in sent bounced deferred; do
    diag "$status: $(query "relayq_recipients_total{$DEST,status=\"$status\"}")"
done
diag "server: $(sink_messages) messages, $(sink_refused 5) refused for good, $(sink_refused 4) for now"
check "the bounces are the $BOUNCED refused for good" -- \
    test "$(query "relayq_recipients_total{$DEST,status=\"bounced\"}")" = $BOUNCED
check "the deferrals are the $DEFERRED refused for now" -- \
    test "$(query "relayq_recipients_total{$DEST,status=\"deferred\"}")" = $DEFERRED
check "the recipients sent are the $N messages less the bounced, and the bounce notices" -- \
    test "$(query "relayq_recipients_total{$DEST,status=\"sent\"}")" = $N
check "the messages delivered are the server's" -- \
    test "$(query "relayq_messages_delivered_total{$DEST}")" = "$(sink_messages)"
check "the queue is empty to prometheus too" -- \
    test "$(query 'sum(relayq_queue_messages)')" = 0
check "prometheus loaded the alert rules" -- sh -c \
    "curl -sf --max-time 5 '$API/rules' | grep -q '\"name\":\"RelayqQmgrDown\"'"
check "and none fires" -- sh -c \
    "curl -sf --max-time 5 '$API/alerts' | python3 -c 'import json, sys; sys.exit(1 if [a for a in json.load(sys.stdin)[\"data\"][\"alerts\"] if a[\"state\"] == \"firing\"] else 0)'"

"$RELAYQ" stop
ok $? "relayq stop"
prom_stop
check "prometheus has stopped" -- sh -c "! curl -sf --max-time 2 'http://127.0.0.1:$PROM_PORT/-/ready'"
tap_end
