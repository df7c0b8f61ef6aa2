#!/bin/bash
# scripts/demo.sh - install what is missing, build, and show relayq at work:
# start it on a scratch queue relaying to the test SMTP server on
# 127.0.0.1, send a few hundred messages with relayq sendmail, show mailq
# while they are in flight and a delivery summary at the end, then stop
# everything it started.
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top_srcdir/_build}
export BUILD_DIR
COUNT=${1:-300}

"$top_srcdir/scripts/deps.sh" || exit 1
"$top_srcdir/scripts/build.sh" >/dev/null || exit 1

DEMO=$(mktemp -d /tmp/relayq-demo.XXXXXX)
chmod 755 "$DEMO"
RELAYQ=$BUILD_DIR/cli/relayq
SINK_PID=
cleanup() {
    "$RELAYQ" -c "$DEMO/relayq.conf" stop 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    rm -rf "$DEMO"
}
trap cleanup EXIT

mkdir -p "$DEMO/libexec"
for d in master pickup qmgr showq smtpout; do cp "$BUILD_DIR/$d/$d" "$DEMO/libexec/"; done
"$BUILD_DIR/tests/smtpsink/smtpsink" --listen 127.0.0.1:0 --port-file "$DEMO/port" \
    --log "$DEMO/upstream.log" --stall DOT:0.02 &
SINK_PID=$!
for _ in $(seq 100); do [ -s "$DEMO/port" ] && break; sleep 0.05; done
PORT=$(cat "$DEMO/port")
owner=""
[ "$(id -u)" -eq 0 ] && owner="mail_owner = nobody"
cat >"$DEMO/relayq.conf" <<CONF
# relayq demo: a scratch queue relaying to the test server on 127.0.0.1:$PORT
queue_directory = $DEMO/queue
daemon_directory = $DEMO/libexec
maillog_file = $DEMO/maillog
myhostname = relayq.demo
relayhost = [127.0.0.1]:$PORT
smtpout_workers = 4
$owner
CONF
export RELAYQ_CONFIG=$DEMO/relayq.conf

echo "== relayq start (upstream: test SMTP server on 127.0.0.1:$PORT)"
"$RELAYQ" start || { cat "$DEMO/maillog"; exit 1; }
"$RELAYQ" status

echo "== sending $COUNT messages with relayq sendmail"
start=$(date +%s.%N)
seq 1 "$COUNT" | xargs -P 4 -I{} sh -c \
    'printf "Subject: demo {}\n\nmessage {}\n" | "$0" sendmail -f demo@relayq.demo user{}@example.com' \
    "$RELAYQ"

echo "== relayq mailq while mail is in flight (first lines)"
"$RELAYQ" mailq | head -n 12

for _ in $(seq 600); do
    [ "$(grep -c '^message ' "$DEMO/upstream.log")" -ge "$COUNT" ] && break
    sleep 0.1
done
for _ in $(seq 100); do
    [ "$("$RELAYQ" mailq)" = "Mail queue is empty" ] && break
    sleep 0.1
done
end=$(date +%s.%N)
echo "== relayq mailq at the end"
"$RELAYQ" mailq

delivered=$(grep -c 'status=sent' "$DEMO/maillog")
connections=$(grep -c '^connect ' "$DEMO/upstream.log")
echo "== delivery summary"
echo "messages sent:          $COUNT"
echo "delivered (status=sent): $delivered"
echo "received upstream:      $(grep -c '^message ' "$DEMO/upstream.log")"
echo "TCP connections opened: $connections"
echo "messages per connection: $((delivered / (connections ? connections : 1)))"
echo "elapsed:                $(python3 -c "print(round($end - $start, 2))") s"
echo "a delivery log line:"
grep 'status=sent' "$DEMO/maillog" | tail -n 1
echo "== relayq stop"
"$RELAYQ" stop
