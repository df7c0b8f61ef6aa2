#!/bin/bash
# t_metrics - the Prometheus endpoint: with metrics_listen set, master
# starts the metrics daemon, which serves /metrics on that address. 1,000
# messages go to the test server, which refuses 50 recipients for good
# (550) and 100 once (450). A scrape taken while mail flows, and one at
# the end, pass "promtool check metrics" without a word; at the end the
# counters say what the server saw: recipients sent (the 950 messages
# and the 50 bounce notices), bounced 50, deferred 100; the queue is
# empty, and relayq stats --json gives the same figures. The histograms
# count what the counters count: time in queue and SMTP transaction time
# one per delivered message, messages per connection one per closed
# connection; the recipients by DSN class put the 50 bounced under 5.x
# and the 100 deferred under 4.x; the 1,000 messages were received from
# maildrop; the 50 bounced made 50 failure notices, and no delay or
# success notice was queued; qmgr's and pickup's commits show their time and batch size
# (pickup's batches add up to the 1,000). After pickup is killed, both
# readers count one restart of it. Then 20 messages of 3 recipients each,
# the relay (slow) taking the first of each and deferring the others:
# relayq_queue_recipients{state="all"} is the 60 queued (a recipient sent
# counts until its message leaves), state="active" three times the active
# messages, and relayq stats says the same; once the relay takes the
# rest, both are 0. Other
# paths get 404, other methods 405; a bad metrics_listen is refused by
# relayq check.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=1000
BOUNCED=50
DEFERRED=100

rq_setup
rq_set metrics_listen "127.0.0.1:9465:1"
"$RELAYQ" check >"$T/check.out" 2>&1
status=$?
ok $((status == 0)) "relayq check refuses metrics_listen = 127.0.0.1:9465:1 (exit $status)"
check "and names the parameter" -- grep -q "metrics_listen" "$T/check.out"
rq_set metrics_listen "127.0.0.1:9465, 127.0.0.1:9466"
"$RELAYQ" check >"$T/check.out" 2>&1
status=$?
ok $((status == 0)) "relayq check refuses two addresses (exit $status)"
check "and says one only" -- grep -q "one address only" "$T/check.out"

PORT=$(free_port)
rq_set metrics_listen "127.0.0.1:$PORT"
"$RELAYQ" check >"$T/check.out" 2>&1
ok $? "relayq check takes metrics_listen = 127.0.0.1:$PORT"

metrics_workload $N $BOUNCED $DEFERRED metrics

URL=http://127.0.0.1:$PORT/metrics
# scrape FILE - one scrape of /metrics into a file
scrape() { curl -sf --max-time 10 -o "$1" "$URL"; }
# sample FILE SERIES - the value of one series of a scrape ("" when absent)
sample() { awk -v s="$2" '$1 == s { print $2 }' "$1"; }
DEST="destination=\"127.0.0.1:$SINK_PORT\""
# delivered_some - the test server has some of the mail, not all of it yet
delivered_some() { [ "$(sink_messages)" -ge 50 ]; }

"$RELAYQ" start
ok $? "relayq start"
wait_for 10 scrape "$T/first"
ok $? "metrics answers on 127.0.0.1:$PORT"
wait_for 60 delivered_some
scrape "$T/mid"
ok $? "a scrape while mail flows (the server has $(sink_messages) messages)"
promtool check metrics <"$T/mid" >"$T/promtool.out" 2>&1
ok $? "promtool check metrics passes on it"
check "without a word" -- test ! -s "$T/promtool.out"
sed 's/^/# /' "$T/promtool.out" | head -n 10

wait_for 120 sink_has $N
ok $? "the server has $N messages ($(sink_messages))"
wait_for 30 queue_empty
ok $? "the queue is empty"
# settled - the last result is counted: every recipient sent or bounced
settled() {
    scrape "$T/end" &&
        [ "$(sample "$T/end" "relayq_recipients_total{$DEST,status=\"sent\"}")" = "$(sink_messages)" ] &&
        [ "$(sample "$T/end" "relayq_recipients_total{$DEST,status=\"bounced\"}")" = "$BOUNCED" ]
}
wait_for 10 settled
ok $? "the counters caught up"
promtool check metrics <"$T/end" >"$T/promtool.out" 2>&1
ok $? "promtool check metrics passes at the end"
check "without a word" -- test ! -s "$T/promtool.out"
sed 's/^/# /' "$T/promtool.out" | head -n 10

sent=$(sample "$T/end" "relayq_recipients_total{$DEST,status=\"sent\"}")
check "recipients sent = the messages the server took ($(sink_messages)): $sent" -- \
    test "$sent" = "$(sink_messages)"
check "messages delivered = the same: $(sample "$T/end" "relayq_messages_delivered_total{$DEST}")" -- \
    test "$(sample "$T/end" "relayq_messages_delivered_total{$DEST}")" = "$(sink_messages)"
refused=$(sink_refused 5)
check "recipients bounced = what the server refused for good ($refused)" -- \
    test "$(sample "$T/end" "relayq_recipients_total{$DEST,status=\"bounced\"}")" = "$refused" \
    -a "$refused" -eq $BOUNCED
refused=$(sink_refused 4)
check "recipients deferred = what the server refused for now ($refused)" -- \
    test "$(sample "$T/end" "relayq_recipients_total{$DEST,status=\"deferred\"}")" = "$refused" \
    -a "$refused" -eq $DEFERRED
check "opened connections = the server's ($(sink_connections))" -- \
    test "$(sample "$T/end" "relayq_connections_opened_total{$DEST}")" = "$(sink_connections)"
for state in active waiting deferred hold aside maildrop; do
    check "relayq_queue_messages{state=\"$state\"} is 0" -- \
        test "$(sample "$T/end" "relayq_queue_messages{state=\"$state\"}")" = 0
done
for state in all active; do
    check "relayq_queue_recipients{state=\"$state\"} is 0" -- \
        test "$(sample "$T/end" "relayq_queue_recipients{state=\"$state\"}")" = 0
done
check "qmgr is up" -- test "$(sample "$T/end" relayq_qmgr_up)" = 1
check "the build is named" -- grep -q '^relayq_build_info{version="[^"]*"} 1$' "$T/end"
check "the destination is not suspended" -- \
    test "$(sample "$T/end" "relayq_destination_suspended{$DEST}")" = 0
check "every family has HELP and TYPE" -- \
    test "$(grep -c '^# HELP ' "$T/end")" -eq "$(grep -c '^# TYPE ' "$T/end")"

# The new families: histograms, DSN classes, sources, throttling
delivered=$(sample "$T/end" "relayq_messages_delivered_total{$DEST}")
for h in relayq_queue_time_seconds relayq_smtp_transaction_seconds; do
    check "$h: one observation per delivered message ($(sample "$T/end" "${h}_count{$DEST}"))" -- \
        test "$(sample "$T/end" "${h}_count{$DEST}")" = "$delivered"
    check "and its +Inf bucket holds them all" -- \
        test "$(sample "$T/end" "${h}_bucket{$DEST,le=\"+Inf\"}")" = "$delivered"
done
closed=$(awk -v d="$DEST" 'index($1, "relayq_connections_closed_total{" d ",") == 1 { n += $2 } END { print n + 0 }' "$T/end")
check "messages per connection: one observation per closed connection ($closed)" -- \
    test "$(sample "$T/end" "relayq_connection_messages_count{$DEST}")" = "$closed"
# dsn_sum STATUS CLASS - recipients of a status whose DSN class starts with CLASS
dsn_sum() {
    awk -v p="relayq_recipients_dsn_total{$DEST,status=\"$1\",dsn_class=\"$2" \
        'index($1, p) == 1 { n += $2 } END { print n + 0 }' "$T/end"
}
check "the $BOUNCED bounced are DSN class 5.x ($(dsn_sum bounced 5.))" -- \
    test "$(dsn_sum bounced 5.)" = $BOUNCED -a "$(dsn_sum bounced)" = $BOUNCED
check "the $DEFERRED deferred are DSN class 4.x ($(dsn_sum deferred 4.))" -- \
    test "$(dsn_sum deferred 4.)" = $DEFERRED -a "$(dsn_sum deferred)" = $DEFERRED
check "the sent are DSN class 2.x ($(dsn_sum sent 2.))" -- test "$(dsn_sum sent 2.)" = "$sent"
check "received from maildrop: the $N injected" -- \
    test "$(sample "$T/end" "relayq_messages_received_total{source=\"maildrop\"}")" = $N
check "nothing from SMTP or handed over" -- \
    test "$(sample "$T/end" "relayq_messages_received_total{source=\"smtp\"}")" = 0 \
    -a "$(sample "$T/end" "relayq_messages_received_total{source=\"sendmail\"}")" = 0
check "a failure notice for each of the $BOUNCED bounced ($(sample "$T/end" "relayq_dsn_notices_total{kind=\"failure\"}"))" -- \
    test "$(sample "$T/end" "relayq_dsn_notices_total{kind=\"failure\"}")" = $BOUNCED
check "no delay notice (no delay_warning_time), no success notice" -- \
    test "$(sample "$T/end" "relayq_dsn_notices_total{kind=\"delay\"}")" = 0 \
    -a "$(sample "$T/end" "relayq_dsn_notices_total{kind=\"success\"}")" = 0
commits=$(sample "$T/end" relayq_qmgr_commit_seconds_count)
check "qmgr's commits: as many times as batch sizes ($commits)" -- \
    test "$commits" -gt 0 -a "$(sample "$T/end" relayq_qmgr_commit_batch_messages_count)" = "$commits"
check "their batches hold every finalized message (at least $N)" -- \
    test "$(sample "$T/end" relayq_qmgr_commit_batch_messages_sum)" -ge $N
check "pickup's commits queued the $N messages ($(sample "$T/end" relayq_pickup_commit_batch_messages_sum))" -- \
    test "$(sample "$T/end" relayq_pickup_commit_batch_messages_sum)" = $N
check "as many commit times as batches" -- test "$(sample "$T/end" relayq_pickup_commit_seconds_count)" \
    = "$(sample "$T/end" relayq_pickup_commit_batch_messages_count)"
check "throttle events and the rate are shown" -- \
    test -n "$(sample "$T/end" "relayq_throttle_events_total{$DEST}")" \
    -a -n "$(sample "$T/end" "relayq_destination_rate_limit{$DEST}")"

# relayq stats --json counts the same
"$RELAYQ" stats --json >"$T/stats.json"
ok $? "relayq stats --json"
# field KEY - one figure of the destination in the JSON
field() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print([x for x in d["destinations"] if x["name"] == sys.argv[2]][0][sys.argv[3]])' \
        "$T/stats.json" "127.0.0.1:$SINK_PORT" "$1"
}
check "relayq stats says the same: sent $(field rcpt_sent), bounced $(field rcpt_bounced), deferred $(field rcpt_deferred)" -- \
    test "$(field rcpt_sent)" = "$sent" -a "$(field rcpt_bounced)" = $BOUNCED \
    -a "$(field rcpt_deferred)" = $DEFERRED
# hist NAME - count and sum of one of the destination's histograms in the JSON
hist() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
h = [x for x in d["histograms"] if x["name"] == sys.argv[2] and x["destination"] == sys.argv[3]][0]
print(h["count"], h["buckets"]["+Inf"])' "$T/stats.json" "$1" "127.0.0.1:$SINK_PORT"
}
# (from the JSON's own counters: a connection may close between the two)
check "and the same histograms: queue time $(hist queue_time)" -- \
    test "$(hist queue_time)" = "$(field messages) $(field messages)"
check "messages per connection $(hist conn_messages)" -- \
    test "$(hist conn_messages)" = "$(field closed) $(field closed)"
check "the same DSN classes and throttling" -- \
    test "$(field rcpt_bounced_5.1)" = $BOUNCED -a "$(field throttles)" = \
    "$(sample "$T/end" "relayq_throttle_events_total{$DEST}")"
check "and the same sources" -- python3 -c 'import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["received"]["maildrop"] == int(sys.argv[2]) else 1)' \
    "$T/stats.json" $N
check "and the same notices" -- python3 -c 'import json, sys
n = json.load(open(sys.argv[1]))["notices"]
sys.exit(0 if n == {"failure": int(sys.argv[2]), "delay": 0, "success": 0} else 1)' \
    "$T/stats.json" $BOUNCED
check "and the same map use" -- python3 -c 'import json, sys
q = json.load(open(sys.argv[1]))["queue"]
sys.exit(0 if q["map_size"] == int(sys.argv[2]) and q["messages"] == 0 else 1)' \
    "$T/stats.json" "$(sample "$T/end" relayq_queue_map_size_bytes)"

# OpenMetrics when asked, 404 and 405 otherwise
curl -sf --max-time 10 -H 'Accept: application/openmetrics-text; version=1.0.0' -D "$T/om.head" \
    -o "$T/om" "$URL"
ok $? "a scrape that asks for OpenMetrics"
check "gets that media type" -- grep -qi '^content-type: application/openmetrics-text' "$T/om.head"
check "and ends with # EOF" -- test "$(tail -n 1 "$T/om")" = "# EOF"
check "a counter's family has no _total in OpenMetrics" -- grep -q '^# TYPE relayq_recipients counter$' "$T/om"
check "the text format's does" -- grep -q '^# TYPE relayq_recipients_total counter$' "$T/end"
check "another path is 404" -- \
    test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" = 404
check "POST is 405" -- \
    test "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -d x "$URL")" = 405

# Restarts per daemon: master counts them, both readers ask master
check "no daemon restarted so far" -- \
    test "$(sample "$T/end" "relayq_daemon_restarts_total{daemon=\"pickup\"}")" = 0 \
    -a "$(sample "$T/end" "relayq_daemon_restarts_total{daemon=\"qmgr\"}")" = 0 \
    -a "$(sample "$T/end" "relayq_daemon_restarts_total{daemon=\"smtpout\"}")" = 0
pickup_pid=$("$RELAYQ" status | awk '$1 == "pickup" && $2 == "pid" { print $3 }')
kill -9 "$pickup_pid"
ok $? "pickup (pid $pickup_pid) killed"
# pickup_restarted - a scrape counts one restart of pickup
pickup_restarted() {
    scrape "$T/restart" &&
        [ "$(sample "$T/restart" "relayq_daemon_restarts_total{daemon=\"pickup\"}")" = 1 ]
}
wait_for 30 pickup_restarted
ok $? "the metrics count one restart of pickup"
"$RELAYQ" stats --json >"$T/stats.json"
check "and relayq stats --json too" -- python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["restarts"]
sys.exit(0 if r["pickup"] == 1 and r["qmgr"] == 0 else 1)' "$T/stats.json"
promtool check metrics <"$T/restart" >"$T/promtool.out" 2>&1
ok $? "promtool check metrics passes on that scrape"
check "without a word" -- test ! -s "$T/promtool.out"

# Recipients by state: messages of RCPTS recipients each; the relay takes
# the first recipient of each and defers the others, then takes them all
MSGS=20
RCPTS=3
replies=()
for i in $(seq 1 $MSGS); do
    for k in $(seq 2 $RCPTS); do
        replies+=(--rcpt-reply "rcpt$i-$k@example.com=450 4.2.1 not now, for the test")
    done
done
sink_stop
# Each reply 100 ms late: the retries keep some messages in delivery.
sink_start --delay 100 "${replies[@]}"
ok $? "the test server again, slow, deferring all recipients but the first of each message"
maildrop_fill $MSGS rcpts 0 $RCPTS
ok $? "$MSGS messages of $RCPTS recipients each waiting in maildrop"
# first_sent - the server took the first recipient of every message
first_sent() { [ "$(sink_count '^message .* rcpts=<rcpt[0-9]*-1@example.com> ')" -ge $MSGS ]; }
wait_for 60 first_sent
ok $? "the server took the first recipient of each message, alone"
# some_active - a scrape taken while messages are in delivery
some_active() {
    scrape "$T/rcpts" && [ "$(sample "$T/rcpts" 'relayq_queue_messages{state="active"}')" -gt 0 ]
}
wait_for 30 some_active
ok $? "a scrape while the retries are in delivery"
check "relayq_queue_recipients{state=\"all\"}: the $((MSGS * RCPTS)) queued, the sent still counted" -- \
    test "$(sample "$T/rcpts" 'relayq_queue_recipients{state="all"}')" = $((MSGS * RCPTS)) \
    -a "$(sample "$T/rcpts" 'relayq_queue_messages{state="maildrop"}')" = 0
active_msgs=$(sample "$T/rcpts" 'relayq_queue_messages{state="active"}')
active_rcpts=$(sample "$T/rcpts" 'relayq_queue_recipients{state="active"}')
check "active recipients: $RCPTS for each of the $active_msgs active messages ($active_rcpts)" -- \
    test -n "$active_msgs" -a "$active_rcpts" = $((active_msgs * RCPTS))
promtool check metrics <"$T/rcpts" >"$T/promtool.out" 2>&1
ok $? "promtool check metrics passes on that scrape"
check "without a word" -- test ! -s "$T/promtool.out"
sed 's/^/# /' "$T/promtool.out" | head -n 10
"$RELAYQ" stats --json >"$T/stats.json"
check "relayq stats --json counts the same recipients" -- python3 -c 'import json, sys
q = json.load(open(sys.argv[1]))["queue"]
sys.exit(0 if q["recipients"] == int(sys.argv[2]) and
         q["active_recipients"] == q["active"] * int(sys.argv[3]) else 1)' \
    "$T/stats.json" $((MSGS * RCPTS)) $RCPTS
"$RELAYQ" stats >"$T/stats.txt"
check "and the text report names them" -- \
    grep -q "^queue: $MSGS messages ($((MSGS * RCPTS)) recipients), [0-9]* active ([0-9]* recipients)" \
    "$T/stats.txt"
sink_stop
sink_start
ok $? "the test server takes mail again"
wait_for 60 queue_empty
ok $? "the $MSGS messages are delivered"
# none_left - a scrape counts no recipient, in all or active
none_left() {
    scrape "$T/rcpts" &&
        [ "$(sample "$T/rcpts" 'relayq_queue_recipients{state="all"}')" = 0 ] &&
        [ "$(sample "$T/rcpts" 'relayq_queue_recipients{state="active"}')" = 0 ]
}
wait_for 10 none_left
ok $? "then relayq_queue_recipients is 0 for all and active"

"$RELAYQ" stop
ok $? "relayq stop"
check "the metrics daemon is gone with master" -- sh -c "! curl -s --max-time 2 -o /dev/null '$URL'"
tap_end
