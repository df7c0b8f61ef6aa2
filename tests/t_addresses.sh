#!/bin/bash
# t_addresses - a relay name with several addresses: each is tried in
# turn when a connection fails, the one that failed is remembered, and a
# lookup or a connection that waits never holds up the process's other
# sessions.
#
# The name relay.test has three loopback addresses in the test's own
# /etc/hosts, bind-mounted over the real one in a private mount namespace
# (unshare -m; with an nsswitch.conf of "hosts: files" likewise, so the
# lookup goes to that file whatever the machine's name services are):
# nothing listens on 127.0.0.2 (refused), 127.0.0.3 is a black hole (the
# test server's --stall CONNECT keeps its listen queue full, so connect(2)
# waits for smtp_connect_timeout), 127.0.0.4 takes the mail. All three on
# one port; relayhost = [relay.test]:PORT (brackets: no MX lookup). The
# machine's /etc/hosts is never touched. Needs root (CI runs as root).
#
# Then the names that give no usable address, through transport_maps: a
# name the file does not know (missing.test) defers with "Host or domain
# name not found. Name service error for name=missing.test: ...", and
# once the test adds it to the file, relayq flush delivers; with
# inet_protocols = ipv6 a name with only IPv4 addresses (v4only.test),
# and an IPv4 address literal, defer with "no address of NAME is usable:
# it has only IPv4 addresses and inet_protocols = ipv6", and with
# inet_protocols = all again relayq flush delivers them.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ -z "${RQ_ADDRESSES_NS:-}" ]; then
    if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
        echo "1..0 # SKIP needs root and unshare -m for a private /etc/hosts"
        exit 0
    fi
    RQ_ADDRESSES_NS=1 exec unshare -m bash "$0" "$@"
fi
# In the namespace: no mount made here may reach the machine's.
mount --make-rprivate /
ok $? "a private mount namespace"

rq_setup
cat >"$T/hosts" <<HOSTS
127.0.0.1 localhost
127.0.0.2 relay.test
127.0.0.3 relay.test
127.0.0.4 relay.test
127.0.0.4 v4only.test
HOSTS
printf 'hosts: files\n' >"$T/nsswitch.conf"
chmod 644 "$T/hosts" "$T/nsswitch.conf"
mount --bind "$T/hosts" /etc/hosts && mount --bind "$T/nsswitch.conf" /etc/nsswitch.conf
ok $? "relay.test has three addresses in this namespace's /etc/hosts"
check "the lookup gives them in order" -- \
    test "$(getent ahostsv4 relay.test | awk '$2 == "STREAM" {print $1}' | tr '\n' ' ')" = \
    "127.0.0.2 127.0.0.3 127.0.0.4 "

# A second destination, example.org, on a plain server at 127.0.0.1.
sink_start --maildir "$T/sink"
ok $? "the plain server for example.org on 127.0.0.1:$SINK_PORT"
P=$(free_port)
mkdir -p "$T/good" "$T/hole"
"$SMTPSINK" --listen "127.0.0.4:$P" --log "$T/good/log" --port-file "$T/good/port" \
    2>>"$T/good/stderr" &
GOOD_PID=$!
"$SMTPSINK" --listen "127.0.0.3:$P" --stall CONNECT:600 --log "$T/hole/log" \
    --port-file "$T/hole/port" 2>>"$T/hole/stderr" &
HOLE_PID=$!
# These two servers are stopped by pid too, whatever happens.
trap 'kill "$GOOD_PID" "$HOLE_PID" 2>/dev/null; rq_cleanup' EXIT
wait_for 10 test -s "$T/good/port" -a -s "$T/hole/port"
ok $? "a server on 127.0.0.4:$P, a black hole on 127.0.0.3:$P, nothing on 127.0.0.2:$P"

cat >"$T/transport" <<MAP
example.org [127.0.0.1]:$SINK_PORT
missing.example [missing.test]:$P
v4.example [v4only.test]:$P
literal.example [127.0.0.4]:$P
MAP
rq_set relayhost "[relay.test]:$P"
rq_set transport_maps "texthash:$T/transport"
rq_set smtp_tls_security_level none
rq_set smtp_connect_timeout 10s
# One process with two sessions: both share its event loop.
rq_set smtpout_workers 1
rq_set smtpout_sessions_per_worker 2
# Every message on a new connection, so each one chooses an address.
rq_set smtp_connection_reuse_count_limit 1
"$RELAYQ" start
ok $? "relayq start"

# send TAG RCPT - queue one message
send() {
    printf 'Subject: %s\nMessage-ID: <%s@relayq.test>\n\nhello\n' "$1" "$1" |
        "$RELAYQ" sendmail -f sender@example.com "$2"
}
good_has() { [ "$(grep -c '^message ' "$T/good/log" 2>/dev/null)" -ge "$1" ]; }
refused="connect to relay\.test\[127\.0\.0\.2\]:$P: Connection refused"
timedout="connect to relay\.test\[127\.0\.0\.3\]:$P: Connection timed out"

send first rcpt@example.com
wait_for 30 log_has 1 "$refused"
ok $? "the first address refuses; the session moves on to the black hole"
for i in 1 2 3 4 5; do send "org-$i" "rcpt$i@example.org"; done
wait_for 8 sink_has 5
ok $? "meanwhile the other session delivers to example.org ($(sink_messages) of 5)"
check "... while the first still waits on the black hole" -- test "$(log_count "$timedout")" -eq 0
wait_for 30 good_has 1
ok $? "after one connect timeout the third address takes the first message"
check "the black hole cost one connect timeout" -- test "$(log_count "$timedout")" -eq 1
check "the delivery names the address that worked" -- \
    log_has 1 "to=<rcpt@example.com>, relay=relay.test\[127.0.0.4\]:$P, .* status=sent"

N=10
for i in $(seq 1 $N); do send "next-$i" "next$i@example.com"; done
wait_for 30 good_has $((N + 1))
ok $? "$N more messages, each on its own connection, reach 127.0.0.4"
check "the black hole is avoided after its one timeout" -- test "$(log_count "$timedout")" -eq 1
check "the refusing address is avoided after its one refusal" -- test "$(log_count "$refused")" -eq 1
check "no message went through 127.0.0.3" -- \
    test "$(log_count "relay=relay\.test\[127\.0\.0\.3\]")" -eq 0
wait_for 10 queue_empty
ok $? "every message delivered: the queue is empty"

# --- a name that does not resolve, then does ---
good_got() { grep -q "^message .*msgid=<$1@relayq.test>" "$T/good/log"; }
send unknown rcpt@missing.example
wait_for 30 log_has 1 'to=<rcpt@missing.example>, .*status=deferred'
ok $? "a relay name that does not resolve: deferred"
check "Host or domain name not found, naming the name" -- log_has 1 \
    'to=<rcpt@missing.example>, relay=none, .*dsn=4\.4\.3, status=deferred (Host or domain name not found\. Name service error for name=missing\.test: '
echo "127.0.0.4 missing.test" >>"$T/hosts"
check "the name resolves once it is in /etc/hosts" -- getent ahostsv4 missing.test
"$RELAYQ" flush >/dev/null
wait_for 30 good_got unknown
ok $? "relayq flush delivers it"
check "through the name" -- \
    log_has 1 "to=<rcpt@missing.example>, relay=missing\.test\[127\.0\.0\.4\]:$P, .*status=sent"

# --- inet_protocols leaves no address ---
rq_set inet_protocols ipv6
reload_smtpout
ok $? "inet_protocols = ipv6, reloaded"
send v4only rcpt@v4.example
send literal rcpt@literal.example
wait_for 30 log_has 1 'to=<rcpt@v4.example>, .*status=deferred'
ok $? "a relay name with only IPv4 addresses: deferred"
check "no address is usable, naming the name, the family and inet_protocols" -- log_has 1 \
    'to=<rcpt@v4.example>, relay=none, .*dsn=4\.4\.3, status=deferred (no address of v4only\.test is usable: it has only IPv4 addresses and inet_protocols = ipv6)'
wait_for 30 log_has 1 'to=<rcpt@literal.example>, .*status=deferred'
ok $? "an IPv4 address literal: deferred"
check "for the same reason" -- log_has 1 \
    'to=<rcpt@literal.example>, relay=none, .*status=deferred (no address of 127\.0\.0\.4 is usable: it has only IPv4 addresses and inet_protocols = ipv6)'
check "neither reached the server" -- sh -c "! grep -Eq 'msgid=<(v4only|literal)@' '$T/good/log'"
rq_set inet_protocols all
reload_smtpout
ok $? "inet_protocols = all, reloaded"
"$RELAYQ" flush >/dev/null
both_got() { good_got v4only && good_got literal; }
wait_for 30 both_got
ok $? "relayq flush delivers both"
wait_for 10 queue_empty
ok $? "the queue is empty again"

"$RELAYQ" stop
ok $? "relayq stop"
kill "$GOOD_PID" "$HOLE_PID"
wait "$GOOD_PID" "$HOLE_PID" 2>/dev/null
tap_end
