#!/bin/bash
# t_metrics_prometheus - a real Prometheus server scrapes relayq: the test
# starts prometheus (the Debian package's) on 127.0.0.1 with a scrape
# every second of relayq's metrics_listen and relayq's alert rules
# (doc/relayq-alerts.yml, which "promtool check rules" accepts), delivers
# 300 messages to the test server, 20 of whose recipients it refuses for
# good, and asks Prometheus's query API: the recipients sent and bounced
# it has are what the test server took and refused, and its rules are
# loaded. Prometheus is stopped by its pid.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=300
BOUNCED=20
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

replies=()
for i in $(seq 5 15 $((15 * BOUNCED))); do
    replies+=(--rcpt-reply "rcpt$i@example.com=550 5.1.1 no such user")
done
sink_start "${replies[@]}"
ok $? "the test server on 127.0.0.1:$SINK_PORT"
PORT=$(free_port)
rq_set metrics_listen "127.0.0.1:$PORT"
maildrop_fill $N prom
ok $? "$N messages waiting in maildrop"

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
# prom_agrees - Prometheus's latest sample of the sent and bounced counters
# is what the test server saw
prom_agrees() {
    [ "$(query "relayq_recipients_total{$DEST,status=\"sent\"}")" = "$(sink_messages)" ] &&
        [ "$(query "relayq_recipients_total{$DEST,status=\"bounced\"}")" = \
            "$(sink_count '^reject conn=.* cmd=RCPT reply=5')" ]
}
wait_for 30 prom_agrees
ok $? "prometheus's query API says the server's figures"
diag "sent: $(query "relayq_recipients_total{$DEST,status=\"sent\"}"), server: $(sink_messages);" \
    "bounced: $(query "relayq_recipients_total{$DEST,status=\"bounced\"}"), refused: $(sink_count '^reject conn=.* cmd=RCPT reply=5')"
check "the bounces are the $BOUNCED refused" -- \
    test "$(query "relayq_recipients_total{$DEST,status=\"bounced\"}")" = $BOUNCED
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
