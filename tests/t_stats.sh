#!/bin/bash
# t_stats - the pool is visible: relayq stats reports, per destination,
# the connections opened, open, busy and idle, closed with their reasons,
# messages per connection, TLS handshakes and resumptions, AUTH successes
# and failures, as the server saw them; delivery lines carry conn_use=N.
# The upstream speaks implicit TLS (smtp_tls_wrappermode, port-465 style)
# and requires AUTH; the reuse limit is 100 messages per connection.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
tls_setup
sink_start --tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server-key.pem" --implicit-tls \
    --auth-file "$T/sink/users" --require-auth
ok $? "an implicit-TLS upstream with AUTH on 127.0.0.1:$SINK_PORT"
rq_set smtp_tls_wrappermode yes
rq_set smtp_tls_security_level verify
rq_set smtp_tls_CAfile "$TLS_DIR/ca.pem"
sasl_set "$SASL_USER" "$SASL_PASS"
rq_set smtp_connection_reuse_count_limit 100
rq_set smtpout_workers 2

N=500
maildrop_fill $N stats
"$RELAYQ" start
ok $? "relayq start"
wait_for 60 sink_has $N
ok $? "$N messages delivered over implicit TLS"
wait_for 10 queue_empty

"$RELAYQ" stats --json >"$T/stats.json"
ok $? "relayq stats --json"
"$RELAYQ" stats >"$T/stats.txt"
ok $? "relayq stats"
diag "$(head -n 6 "$T/stats.txt")"

# field - one figure of the destination from the JSON
field() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["destinations"]
print([x for x in d if x["name"] == sys.argv[2]][0][sys.argv[3]])' "$T/stats.json" "127.0.0.1:$SINK_PORT" "$1"
}
conns=$(sink_connections)
tls=$(sink_count '^tls conn=')
resumed=$(sink_count '^tls conn=.* resumed=yes')
auth=$(sink_count '^auth conn=.* result=ok$')
closed_by_reuse=$(sink_count '^close conn=.* reason=quit messages=100$')
diag "server: $conns connections, $tls handshakes ($resumed resumed), $auth AUTHs"
check "opened matches the server's connections ($conns)" -- test "$(field opened)" -eq "$conns"
check "TLS handshakes match the server's ($tls)" -- test "$(field tls)" -eq "$tls"
check "TLS resumptions match the server's ($resumed)" -- test "$(field tls_resumed)" -eq "$resumed"
check "AUTH successes match the server's ($auth)" -- test "$(field auth_ok)" -eq "$auth"
check "no AUTH failure" -- test "$(field auth_fail)" -eq 0
check "messages delivered: $N" -- test "$(field messages)" -eq $N
check "connections closed at the reuse limit are counted as such" -- \
    test "$(field closed_reuse_count)" -ge "$closed_by_reuse" -a "$closed_by_reuse" -ge 4
check "open = opened - closed, all idle now" -- \
    test "$(field open)" -eq $(($(field opened) - $(field closed))) -a "$(field busy)" -eq 0 \
    -a "$(field idle)" -eq "$(field open)"
check "messages per connection near the reuse limit" -- \
    python3 -c "import sys; sys.exit(0 if 50 <= $(field messages_per_connection) <= 100 else 1)"
check "the text report has the pool line" -- grep -q "connections: .* open (.* busy, .* idle), .* opened" "$T/stats.txt"
check "delivery lines carry conn_use up to 100" -- grep -q 'conn_use=100,' "$MAILLOG"
check "no delivery line goes past the reuse limit" -- sh -c "! grep -Eq 'conn_use=(10[1-9]|1[1-9][0-9]|[2-9][0-9]{2})' '$MAILLOG'"
check "a Postfix-style TLS line per connection" -- \
    test "$(grep -c 'TLS connection established to 127.0.0.1\[127.0.0.1\]' "$MAILLOG")" -eq "$conns"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
