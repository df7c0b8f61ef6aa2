#!/bin/bash
# t_rcptlimit - recipients per transaction (relayq.conf(5),
# default_destination_recipient_limit): a message with 250 recipients
# reaches the relay as ceil(250/50) = 5 transactions, every recipient once.
# A relay that answers 452 4.5.3 after 20 (or 30) recipients gets no more
# RCPT TO in that transaction (without PIPELINING: none after the 452;
# with it: at most the 100 in flight); the recipients not tried are
# deferred with 4.5.3 and sent soon in new transactions, not after a
# backoff, and none is bounced or received twice. Last, smtpsink itself:
# a client that pipelines 20,000 commands gets every reply.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=250
RCPTS=$(seq -f 'u%03g@example.com' 1 $N)

# send_many - one message from TAG@example.com to the 250 recipients: send_many TAG
send_many() {
    # shellcheck disable=SC2086 # one argument per recipient
    printf 'Subject: %s\nMessage-ID: <%s@relayq.test>\n\nbody\n' "$1" "$1" |
        "$RELAYQ" sendmail -f "$1@example.com" $RCPTS
}

# transactions - the server's message lines from TAG: transactions TAG
transactions() {
    sink_count "^message .* from=<$1@example.com> "
}

# arrived - whether the server holds N distinct recipients of TAG: arrived TAG
arrived() {
    [ "$(grep "^message .* from=<$1@example.com> " "$SINK_LOG" 2>/dev/null |
        sed 's/.* rcpts=\([^ ]*\) .*/\1/' | tr ',' '\n' | sort -u | wc -l)" -ge $N ]
}

# transaction_sizes - the RCPT TO commands of each of TAG's transactions,
# "accepted+refused" per line, from the server's log: transaction_sizes TAG
transaction_sizes() {
    python3 - "$SINK_LOG" "$1" <<'PY'
import re, sys
refused = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"reject conn=(\d+) cmd=RCPT reply=(\d+)", line)
    if m:
        refused[m[1]] = refused.get(m[1], 0) + 1
        continue
    m = re.match(r"message conn=(\d+) seq=\d+ from=<([^>]*)> rcpts=(\S*) ", line)
    if m:
        if m[2] == sys.argv[2] + "@example.com":
            print(f"{len(re.findall('<', m[3]))}+{refused.get(m[1], 0)}")
        refused[m[1]] = 0
PY
}

# once_each - every recipient of TAG arrived exactly once: once_each TAG
once_each() {
    grep "^message .* from=<$1@example.com> " "$SINK_LOG" | sed 's/.* rcpts=\([^ ]*\) .*/\1/' |
        tr ',' '\n' | sort >"$T/got.$1"
    seq -f '<u%03g@example.com>' 1 $N | sort >"$T/want"
    cmp -s "$T/got.$1" "$T/want"
}

rq_setup
sink_start
"$RELAYQ" start
ok $? "relayq starts"

# 1. The default limit: 50 recipients per job, so 5 transactions.
send_many plain
ok $? "sendmail queues a message with $N recipients"
wait_for 30 arrived plain
ok $? "all $N recipients arrive"
check "in $(transactions plain) transactions, ceil($N/50) = 5" -- test "$(transactions plain)" -eq 5
check "each transaction carries 50 recipients" -- \
    test "$(transaction_sizes plain | sort -u)" = "50+0"
check "every recipient exactly once" -- once_each plain
check "nothing was deferred" -- test "$(log_count 'status=deferred')" -eq 0
"$RELAYQ" stop
sink_stop

# 2. A relay that takes 20 recipients per transaction, no PIPELINING: one
# RCPT TO answered 452, then DATA for the 20 and the rest left for later.
rm -f "$SINK_LOG"
sink_start --no-pipelining --max-rcpts 20
start=$(date +%s)
"$RELAYQ" start && send_many limited
ok $? "a message with $N recipients for a relay that takes 20 per transaction"
wait_for 45 arrived limited
ok $? "all $N recipients arrive in $(($(date +%s) - start)) s ($(transactions limited) transactions), no backoff (minimal_backoff_time: 300 s)"
transaction_sizes limited >"$T/sizes.limited"
diag "accepted+refused RCPT TO per transaction: $(sort "$T/sizes.limited" | uniq -c | tr -s ' \n' ' ')"
check "no RCPT TO after a 452: at most 20 accepted and 1 refused per transaction" -- python3 -c '
import sys
sizes = [tuple(map(int, l.split("+"))) for l in open(sys.argv[1])]
sys.exit(0 if sizes and all(a <= 20 and r <= 1 for a, r in sizes) else 1)' "$T/sizes.limited"
check "every recipient exactly once" -- once_each limited
check "the recipients not tried were deferred with 4.5.3 and the reason" -- log_has 1 \
    "dsn=4.5.3, status=deferred (not tried: host 127.0.0.1\[127.0.0.1\] limited the number of recipients per transaction (452 4.5.3 Error: too many recipients)"
check "none bounced" -- test "$(log_count 'status=bounced')" -eq 0
check "a recipient limit does not slow the destination down" -- \
    test "$(log_count 'asks to slow down')" -eq 0
"$RELAYQ" stop
sink_stop

# 3. With PIPELINING and a per-relay limit of 250 (one job): the relay takes
# 30; the client has at most 100 RCPT TO in flight, so it stops within 100.
rm -f "$SINK_LOG"
sink_start --max-rcpts 30
printf '[127.0.0.1]:%s recipient_limit=250\n' "$SINK_PORT" >"$T/policy"
rq_set destination_policy_maps "$T/policy"
"$RELAYQ" start && send_many piped
ok $? "a message with $N recipients, one job, for a relay that takes 30"
wait_for 45 arrived piped
ok $? "all $N recipients arrive ($(transactions piped) transactions)"
transaction_sizes piped >"$T/sizes.piped"
diag "accepted+refused RCPT TO per transaction: $(sort "$T/sizes.piped" | uniq -c | tr -s ' \n' ' ')"
check "the first transaction stopped after 100 RCPT TO of 250" -- \
    test "$(head -n 1 "$T/sizes.piped")" = "30+70"
check "no transaction got more than 30 accepted and 100 RCPT TO" -- python3 -c '
import sys
sizes = [tuple(map(int, l.split("+"))) for l in open(sys.argv[1])]
sys.exit(0 if sizes and all(a <= 30 and a + r <= 100 for a, r in sizes) else 1)' "$T/sizes.piped"
check "every recipient exactly once" -- once_each piped
check "none bounced" -- test "$(log_count 'status=bounced')" -eq 0
"$RELAYQ" stop
printf '[127.0.0.1]:%s recipient_limit=0\n' "$SINK_PORT" >"$T/policy"
"$RELAYQ" start >"$T/start.out" 2>&1
test $? -ne 0
ok $? "relayq start refuses recipient_limit=0"
check "the reason names the entry and gives the range" -- grep -q \
    "destination_policy_maps: $T/policy: entry \"\[127.0.0.1\]:$SINK_PORT\": bad setting \"recipient_limit=0\" (.*recipient_limit=1..10000)" "$T/start.out"
"$RELAYQ" stop >/dev/null 2>&1
sink_stop

# 4. smtpsink: 20,000 pipelined RCPT TO (19,000 of them refused) in one
# write; the replies pile up past its output limit (SINK_OUT_HIGH), and
# once they drain the commands still buffered must be answered too.
rm -f "$SINK_LOG"
sink_start
check "smtpsink answers 20,000 pipelined commands" -- python3 - "$SINK_PORT" <<'PY'
import socket, sys, threading
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
cmds = b"EHLO client.test\r\nMAIL FROM:<a@example.com>\r\n"
cmds += b"".join(b"RCPT TO:<r%05d@example.com>\r\n" % i for i in range(20000)) + b"QUIT\r\n"
threading.Thread(target=s.sendall, args=(cmds,), daemon=True).start()
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
finals = [l for l in data.split(b"\r\n") if len(l) >= 4 and l[3:4] == b" "]
codes = [l[:3] for l in finals]
print(f"# {len(finals)} replies: {codes.count(b'250')} x 250, {codes.count(b'452')} x 452", file=sys.stderr)
sys.exit(0 if len(finals) == 1 + 1 + 1 + 20000 + 1 and codes.count(b"452") == 19000 else 1)
PY
sink_stop
tap_end
