#!/bin/bash
# t_smtpd - mail from SMTP clients through smtpd_listen, as an application hands it over
#
# relayq listens on a port of 127.0.0.1 (smtpd_listen) and relays to the
# test server, which offers DSN. Shown here:
#  - Python's smtplib sends three messages in one session: each is
#    delivered once, with a Received: line naming the client, and the log
#    has Postfix smtpd's "connect from", "QID: client=" and "disconnect
#    from ... commands=" lines, and relayq stats counts 3 received from smtp;
#  - swaks, as an administrator tries a relay, gets its message through;
#  - RET, ENVID, NOTIFY and ORCPT the client gives reach the upstream;
#  - a recipient past smtpd_recipient_limit is answered 452 4.5.3;
#  - with mynetworks not covering the client, every RCPT is refused with
#    554 5.7.1 Relay access denied and nothing is queued;
#  - an smtpd_listen address another program holds stops "relayq start"
#    with the address in the reason, and no relayq process is left;
#  - durability: a client records every message answered 250, another
#    stops in the middle of a message's content, a third has its message
#    refused (552, too big); every relayq process is killed with SIGKILL
#    while the first keeps sending; after a restart every message
#    answered 250 arrives, and neither the cut-off message nor the
#    refused one ever does.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
mkdir "$T/sink/maildir"
[ "$(id -u)" -eq 0 ] && chown nobody "$T/sink/maildir"
sink_start --dsn --maildir "$T/sink/maildir"
ok $? "test SMTP server (with DSN) listens on 127.0.0.1:$SINK_PORT"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
rq_set smtpd_listen "127.0.0.1:$PORT"
rq_set smtpd_recipient_limit 3
rq_set message_size_limit 20000
rq_set smtpout_workers 2
"$RELAYQ" start
ok $? "relayq start with smtpd_listen = 127.0.0.1:$PORT"

# smtp_send TAG [RCPTS] - three messages in one smtplib session; prints the replies
python3 - "$PORT" >"$T/smtplib.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=30)
for i in range(3):
    s.sendmail("app@example.org", ["user%d@example.com" % i],
               "Subject: smtplib %d\r\nMessage-ID: <smtplib-%d@client.test>\r\n\r\nhello %d\r\n" % (i, i, i))
    print("sent", i)
print(s.quit())
PY
ok $? "smtplib: three messages in one session ($(tail -n 1 "$T/smtplib.out"))"
wait_for 30 sink_has 3
ok $? "the three arrive"
for i in 0 1 2; do
    [ "$(grep -c "msgid=<smtplib-$i@client.test>" "$SINK_LOG")" -eq 1 ] || break
done
ok $? "each exactly once"
wait_for 10 received_is smtp 3
ok $? "relayq stats counts them received from smtp"
[ "$(grep -rl "^Received: from client.test (unknown \[127.0.0.1\])" "$T/sink/maildir" | wc -l)" -eq 3 ]
ok $? "each has a Received: line naming the client's HELO and address"
log_has 1 "relayq/pickup\[[0-9]*\]: connect from unknown\[127.0.0.1\]" &&
    log_has 3 "relayq/pickup\[[0-9]*\]: [0-9A-Za-z]*: client=unknown\[127.0.0.1\]" &&
    log_has 1 "relayq/pickup\[[0-9]*\]: disconnect from unknown\[127.0.0.1\] ehlo=1 mail=3 rcpt=3 data=3 quit=1 commands=11"
ok $? "logged as Postfix's smtpd does: connect from, QID: client=, disconnect from ... commands=11"

if command -v swaks >/dev/null; then
    swaks --server 127.0.0.1 --port "$PORT" --from admin@example.org --to swaks@example.com \
        --helo swaks.test >"$T/swaks.out" 2>&1
    ok $? "swaks hands a message over"
    wait_for 30 grep -q "rcpts=<swaks@example.com>" "$SINK_LOG"
    ok $? "swaks's message arrives"
else
    ok 0 "# SKIP swaks is not installed"
    ok 0 "# SKIP swaks is not installed"
fi

# DSN: what the client asks for reaches the upstream.
python3 - "$PORT" >"$T/dsn.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=30)
s.sendmail("app@example.org", ["dsn@example.com"],
           "Subject: dsn\r\nMessage-ID: <dsn-1@client.test>\r\n\r\ndsn\r\n",
           mail_options=["RET=HDRS", "ENVID=app-42"],
           rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;dsn@example.com"])
s.quit()
PY
ok $? "a message with RET, ENVID, NOTIFY and ORCPT is accepted"
wait_for 30 grep -q "msgid=<dsn-1@client.test>" "$SINK_LOG"
line=$(grep "msgid=<dsn-1@client.test>" "$SINK_LOG")
grep -Eq ' mail_params=<([^>]* )?RET=HDRS ENVID=app-42>' <<<"$line" &&
    grep -q ' rcpt_params=<NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dsn@example.com>$' <<<"$line"
ok $? "the upstream gets RET=HDRS ENVID=app-42 and NOTIFY, ORCPT ($line)"

# smtpd_recipient_limit = 3: the fourth recipient is refused, the message goes to three.
python3 - "$PORT" >"$T/limit.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=30)
refused = s.sendmail("app@example.org", ["r%d@example.com" % i for i in range(4)],
                     "Subject: limit\r\nMessage-ID: <limit-1@client.test>\r\n\r\nx\r\n")
print(refused)
s.quit()
PY
grep -q "'r3@example.com': (452, b'4.5.3 Error: too many recipients')" "$T/limit.out"
ok $? "the recipient past smtpd_recipient_limit is answered 452 4.5.3 ($(cat "$T/limit.out"))"

# A client outside mynetworks.
rq_set mynetworks "192.0.2.0/24"
"$RELAYQ" reload
wait_for 20 log_has 1 "relayq/pickup\[[0-9]*\]: reload: changed: .*mynetworks"
ok $? "pickup takes the new mynetworks"
before=$(sink_messages)
python3 - "$PORT" >"$T/denied.out" 2>&1 <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=30)
try:
    s.sendmail("app@example.org", ["far@example.com"], "Subject: denied\r\n\r\nx\r\n")
    print("accepted")
except smtplib.SMTPRecipientsRefused as e:
    print(e.recipients)
s.quit()
PY
grep -q "554, b'5.7.1 <far@example.com>: Relay access denied'" "$T/denied.out"
ok $? "outside mynetworks: 554 5.7.1 Relay access denied ($(cat "$T/denied.out"))"
rq_set mynetworks "127.0.0.0/8"
"$RELAYQ" reload
wait_for 20 log_has 2 "relayq/pickup\[[0-9]*\]: reload: changed: .*mynetworks"
[ "$(sink_messages)" -eq "$before" ] && queue_empty
ok $? "nothing of it was queued"
"$RELAYQ" stop
ok $? "relayq stop"

# An address another program holds.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); open(sys.argv[2], "w").write("up")
time.sleep(120)' "$PORT" "$T/holder.up" &
HOLDER=$!
wait_for 10 test -s "$T/holder.up"
"$RELAYQ" start >"$T/start.out" 2>&1
status=$?
[ "$status" -ne 0 ] && grep -q "listen on 127.0.0.1:$PORT: Address already in use" "$T/start.out"
ok $? "start refuses an address in use, naming it ($(tail -n 1 "$T/start.out"))"
! pgrep -f "^$T/libexec/" >/dev/null
ok $? "no relayq process is left"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null

# Durability under SIGKILL.
"$RELAYQ" start
ok $? "relayq start again"
python3 - "$PORT" "$T" <<'PY' &
import os, smtplib, socket, sys, time
port, t = int(sys.argv[1]), sys.argv[2]

# The cut-off message: content begun, never ended.
cut = socket.create_connection(("127.0.0.1", port))
f = cut.makefile("rb")
f.readline()
cut.sendall(b"EHLO cut.test\r\nMAIL FROM:<app@example.org>\r\nRCPT TO:<cut@example.com>\r\nDATA\r\n")
while not f.readline().startswith(b"354"):
    pass
cut.sendall(b"Message-ID: <cut-1@client.test>\r\nSubject: cut\r\n\r\nhalf of it\r\n")
open(t + "/cut.id", "w").write("cut-1@client.test\n")

# The refused message: larger than message_size_limit, sent whole without
# SIZE= (so that the refusal comes after the content, at the final dot).
s = smtplib.SMTP("127.0.0.1", port, local_hostname="big.test", timeout=30)
s.ehlo()
s.mail("app@example.org")
s.rcpt("big@example.com")
try:
    code = s.data("Message-ID: <big-1@client.test>\r\n\r\n" + ("x" * 70 + "\r\n") * 400)[0]
except smtplib.SMTPDataError as e:
    code = e.smtp_code
open(t + "/refused.id", "w").write("big-1@client.test %d\n" % code)
s.quit()

# The stream: every message answered 250 is recorded before the next is
# sent; after the kill it tries to reconnect until told to stop (at most
# 5000 messages, whatever happens).
acked = open(t + "/acked.ids", "a", buffering=1)
i = 0
while not os.path.exists(t + "/stop") and i < 5000:
    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="stream.test", timeout=10)
        while i < 5000:
            i += 1
            s.sendmail("app@example.org", ["stream@example.com"],
                       "Message-ID: <stream-%d@client.test>\r\n\r\nmessage %d\r\n" % (i, i))
            acked.write("stream-%d@client.test\n" % i)
    except (OSError, smtplib.SMTPException):
        time.sleep(0.05)
PY
CLIENT=$!
acked_at_least() {
    [ "$(wc -l <"$T/acked.ids" 2>/dev/null || echo 0)" -ge "$1" ]
}
wait_for 60 acked_at_least 50
ok $? "the stream client has 50 messages answered 250"
wait_for 10 test -s "$T/refused.id"
grep -q "^big-1@client.test 552$" "$T/refused.id"
ok $? "the too-big message was refused at its final dot ($(cat "$T/refused.id" 2>/dev/null))"
# master's command line is "master -c FILE": it goes by its pid file.
pids="$(master_pid) $(pgrep -f "^$T/libexec/")"
kill -9 $pids
ok $? "every relayq process killed with SIGKILL: $(echo $pids)"
relayq_gone() {
    local pid state
    for pid in $pids; do
        state=$(ps -o stat= -p "$pid" 2>/dev/null)
        [ -n "$state" ] && [ "${state:0:1}" != Z ] && return 1
    done
    return 0
}
wait_for 10 relayq_gone
ok $? "none is left"
touch "$T/stop"
wait "$CLIENT" 2>/dev/null
acked=$(wc -l <"$T/acked.ids")
"$RELAYQ" start
ok $? "relayq start after the kill ($acked messages were answered 250)"
all_acked_arrived() {
    sed -n 's/^message .* msgid=<\([^>]*\)>.*/\1/p' "$SINK_LOG" | sort -u >"$T/arrived.ids"
    [ -z "$(sort -u "$T/acked.ids" | comm -23 - "$T/arrived.ids")" ]
}
wait_for 60 all_acked_arrived
ok $? "every one of the $acked messages answered 250 arrives"
wait_for 30 queue_empty
ok $? "the queue drains"
! grep -q "msgid=<cut-1@client.test>" "$SINK_LOG" && ! grep -q "msgid=<big-1@client.test>" "$SINK_LOG"
ok $? "neither the cut-off message nor the refused one ever arrives"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
