#!/bin/bash
# t_route - routing: transport_maps sends a recipient domain to its own
# relay, sender_dependent_relayhost_maps does the same for a sender, one
# message to both kinds of recipient is split between relays, a relay list
# fails over to the next relay at once, and a broken table on reload is
# refused while the old one stays in force.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
PORT_A=$SINK_PORT

# A second relay, B, with its own log.
mkdir -p "$T/sinkb"
"$SMTPSINK" --listen 127.0.0.1:0 --port-file "$T/sinkb/port" --log "$T/sinkb/log" &
SINKB_PID=$!
wait_for 10 test -s "$T/sinkb/port"
PORT_B=$(cat "$T/sinkb/port")
trap 'kill $SINKB_PID 2>/dev/null; wait $SINKB_PID 2>/dev/null; rq_cleanup' EXIT

cat >"$T/transport" <<MAP
# recipient domain -> relay
example.org     smtp:[127.0.0.1]:$PORT_B
.sub.example.net [127.0.0.1]:$PORT_B
MAP
cat >"$T/sender_relay" <<MAP
@vip.example    [127.0.0.1]:$PORT_B
MAP
rq_set transport_maps "texthash:$T/transport"
rq_set sender_dependent_relayhost_maps "$T/sender_relay"
"$RELAYQ" start
ok $? "relayq start with transport_maps and sender_dependent_relayhost_maps"

msg() { printf 'Subject: route\nMessage-ID: <%s@relayq.test>\n\nhello\n' "$1"; }
msg plain | "$RELAYQ" sendmail -f a@example.com x@example.com
msg org | "$RELAYQ" sendmail -f a@example.com y@example.org
msg sub | "$RELAYQ" sendmail -f a@example.com z@deep.sub.example.net
msg vip | "$RELAYQ" sendmail -f boss@vip.example w@example.com
msg both | "$RELAYQ" sendmail -f a@example.com p@example.com q@example.org

in_a() { grep -q "^message .*msgid=<$1@relayq.test>" "$SINK_LOG"; }
in_b() { grep -q "^message .*msgid=<$1@relayq.test>" "$T/sinkb/log"; }
both_done() { in_a both && in_b both; }
wait_for 20 both_done
ok $? "the split message reached both relays"
check "a recipient with no table entry goes to relayhost" -- in_a plain
check "transport_maps sends example.org to relay B" -- in_b org
check "a .parent entry covers subdomains" -- in_b sub
check "sender_dependent_relayhost_maps sends @vip.example's mail to relay B" -- in_b vip
check "relay A saw only its own recipients of the split message" -- \
    grep -q '^message .*rcpts=<p@example.com> .*msgid=<both@relayq.test>' "$SINK_LOG"
check "relay B saw only its own recipients of the split message" -- \
    grep -q '^message .*rcpts=<q@example.org> .*msgid=<both@relayq.test>' "$T/sinkb/log"
check "nothing arrived twice" -- test "$(($(sink_messages) + $(grep -c '^message ' "$T/sinkb/log")))" -eq 6
wait_for 10 queue_empty
ok $? "the queue is empty"

# Failover: the first relay of the list does not answer (a port nobody
# listens on: bound once, then released).
DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rq_set relayhost "[127.0.0.1]:$DEAD, [127.0.0.1]:$SINK_PORT"
"$RELAYQ" reload
wait_for 10 log_has 1 'qmgr.*: reload -- '
msg failover | "$RELAYQ" sendmail -f a@example.com f@example.com
has_failover() { in_a failover; }
wait_for 15 has_failover
ok $? "with the first relay down, the message goes to the next one at once"
check "the log says why" -- grep -q "relay 127.0.0.1:$DEAD unreachable: trying 127.0.0.1:$SINK_PORT" "$MAILLOG"

# A broken table on reload is refused; the old tables stay.
echo "example.org [127.0.0.1:bad" >>"$T/transport"
"$RELAYQ" check 2>"$T/err"
ok $(($? == 0)) "relayq check finds the broken transport map"
check "check names the table and the entry" -- grep -q "transport_maps: $T/transport: entry \"example.org\"" "$T/err"
"$RELAYQ" reload
wait_for 10 log_has 1 'routing tables not reloaded'
ok $? "a broken transport map is refused on reload, with the reason logged"
check "the reason names the file and entry" -- grep -q "transport_maps: $T/transport: entry \"example.org\"" "$MAILLOG"
msg after | "$RELAYQ" sendmail -f a@example.com y2@example.org
has_after() { in_b after; }
wait_for 15 has_after
ok $? "the old tables are still in force"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
