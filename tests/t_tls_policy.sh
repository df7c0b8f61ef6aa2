#!/bin/bash
# t_tls_policy - smtp_tls_policy_maps: each relay its own TLS policy in one
# instance. The global level is none; relay A's entry says verify, against
# the test CA (CAfile=, not the system store), with the name "localhost"
# (match=) and TLS 1.3 only; relay B, reached through transport_maps,
# says encrypt with TLS 1.2 only. Each connection is made with its own
# policy: A's verified over TLS 1.3, B's encrypted, unverified, over TLS
# 1.2, and mail to a relay without an entry goes in plaintext. A match=
# name the certificate does not carry defers A's mail; relayq check and a
# reload refuse a bad entry, naming it, and the old table stays in force.
# smtpout keeps each relay's parsed policy until a reload: once the table
# is put right, a reload makes the next connections follow it, and relayq
# flush delivers the deferred mail to A.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
tls_setup
ok $? "test CA and server certificate"
SINK_TLS=(--tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server-key.pem")
sink_start "${SINK_TLS[@]}"
PORT_A=$SINK_PORT
# Relay B and relay C (no entry), each with its own log.
for relay in b c; do
    mkdir -p "$T/sink$relay"
    "$SMTPSINK" --listen 127.0.0.1:0 --port-file "$T/sink$relay/port" \
        --log "$T/sink$relay/log" "${SINK_TLS[@]}" &
    eval "SINK_${relay^^}_PID=$!"
    wait_for 10 test -s "$T/sink$relay/port"
done
PORT_B=$(cat "$T/sinkb/port") PORT_C=$(cat "$T/sinkc/port")
trap 'kill $SINK_B_PID $SINK_C_PID 2>/dev/null; wait $SINK_B_PID $SINK_C_PID 2>/dev/null; rq_cleanup' EXIT

cat >"$T/transport" <<MAP
example.org  smtp:[127.0.0.1]:$PORT_B
example.net  smtp:[127.0.0.1]:$PORT_C
MAP
# policy_a MATCH - the policy table, with relay A's match= name
policy_a() {
    cat >"$T/tls_policy" <<MAP
# relay             level    attributes
[127.0.0.1]:$PORT_A verify   CAfile=$TLS_DIR/ca.pem match=$1 protocols=>=TLSv1.3
[127.0.0.1]:$PORT_B encrypt  protocols=TLSv1.2
MAP
}
policy_a localhost
rq_set smtp_tls_security_level none
rq_set transport_maps "texthash:$T/transport"
rq_set smtp_tls_policy_maps "texthash:$T/tls_policy"
"$RELAYQ" check
ok $? "relayq check accepts the table"
"$RELAYQ" start
ok $? "relayq start"

msg() { printf 'Subject: policy\nMessage-ID: <%s@relayq.test>\n\nhello\n' "$1"; }
msg to-a | "$RELAYQ" sendmail -f s@example.com x@example.com
msg to-b | "$RELAYQ" sendmail -f s@example.com y@example.org
msg to-c | "$RELAYQ" sendmail -f s@example.com z@example.net
# got RELAY TAG - whether relay a, b or c received the message
got() {
    local log=$SINK_LOG
    [ "$1" = a ] || log=$T/sink$1/log
    grep -q "^message .*msgid=<$2@relayq.test>" "$log"
}
all_in() { got a to-a && got b to-b && got c to-c; }
wait_for 30 all_in
ok $? "each relay received its message"
check "A: verified with the test CA against the name localhost, over TLS 1.3" -- \
    log_has 1 "Verified TLS connection established to 127.0.0.1\[127.0.0.1\]:$PORT_A: TLSv1.3"
check "B: encrypted, not verified, over TLS 1.2" -- \
    log_has 1 "Untrusted TLS connection established to 127.0.0.1\[127.0.0.1\]:$PORT_B: TLSv1.2"
check "relay A's server saw TLS 1.3" -- grep -q '^tls conn=.* proto=TLS1.3' "$SINK_LOG"
check "relay B's server saw TLS 1.2" -- grep -q '^tls conn=.* proto=TLS1.2' "$T/sinkb/log"
check "C, without an entry, got the global level none: no TLS" -- \
    test "$(grep -c '^tls conn=' "$T/sinkc/log")" -eq 0

# --- a name the certificate does not carry ---
policy_a mail.example.com
"$RELAYQ" reload
wait_for 10 log_has 1 'smtpout.*: reload -- '
msg wrong-name | "$RELAYQ" sendmail -f s@example.com w@example.com
wait_for 30 log_has 1 'to=<w@example.com>, .*status=deferred'
ok $? "match= a name the certificate lacks: deferred"
check "because the certificate did not verify for that name" -- \
    log_has 1 'to=<w@example.com>, .*Server certificate not verified'
check "and A's server got no message" -- test "$(grep -c 'msgid=<wrong-name@' "$SINK_LOG")" -eq 0

# --- a bad entry ---
policy_a localhost
echo "[127.0.0.1]:$PORT_C dane" >>"$T/tls_policy"
"$RELAYQ" check 2>"$T/err"
status=$?
ok $((status == 0)) "relayq check refuses an entry with an unknown level (exit $status)"
check "naming the table, the entry and the word" -- \
    grep -q "smtp_tls_policy_maps $T/tls_policy: the entry for \[127.0.0.1\]:$PORT_C: \"dane\" is not a security level" "$T/err"
"$RELAYQ" reload
wait_for 10 log_has 1 'reload: smtp_tls_policy_maps .*keeping the old table'
ok $? "a reload refuses it and keeps the old table"
msg still-old | "$RELAYQ" sendmail -f s@example.com v@example.com
wait_for 30 log_has 1 'to=<v@example.com>, .*status=deferred'
ok $? "the old table (match=mail.example.com) is still in force"

# --- the table put right: the next connections follow it ---
policy_a localhost
reload_smtpout
ok $? "a reload takes the corrected table"
"$RELAYQ" flush >/dev/null
both_in() { got a wrong-name && got a still-old; }
wait_for 30 both_in
ok $? "relayq flush: A's deferred messages go over connections under the new entry"
check "each logged as sent to A" -- \
    test "$(log_count "to=<[vw]@example.com>, relay=127.0.0.1\[127.0.0.1\]:$PORT_A, .*status=sent")" -eq 2

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
