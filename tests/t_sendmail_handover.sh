#!/bin/bash
# t_sendmail_handover - relayq sendmail hands its message to a running pickup
#
# With relayq running, "relayq sendmail" gives pickup the whole message over
# public/pickup and exits once pickup has committed it; no maildrop file is
# made. Shown here:
#  - 40 concurrent sendmails all exit 0, nothing ever reaches maildrop/,
#    pickup logs each message with the submitter's uid, and each arrives
#    exactly once; relayq stats counts them received from sendmail;
#  - a sendmail that pickup greets late (pickup stopped for 3 s), or that
#    runs before pickup has started (master made public/pickup), still
#    hands its message over rather than write a file;
#  - as another user (root only: setpriv), the log names that user's uid,
#    whatever the envelope it sent claims;
#  - "sendmail -bs" answers 250 with the queue id pickup committed;
#  - a message over 1 MB goes through a maildrop file, as does every
#    message while relayq is stopped; both arrive once relayq runs;
#  - a client that sends a bad envelope straight to public/pickup gets
#    "refused status=rejected", and nothing is queued;
#  - a "tmp.*" file in maildrop/ older than an hour (a sendmail killed
#    while writing) is removed by pickup with a log line; a fresh one is
#    left alone.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
# submit.py SOCKET FILE - hand a maildrop-form file to pickup as sendmail does; prints the reply
cat >"$T/submit.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
while f.readline() not in (b"\n", b""):
    pass
body = open(sys.argv[2], "rb").read()
s.sendall(b"type=submit\nsize=%d\n\n" % len(body) + body)
reply = b""
while not reply.endswith(b"\n\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.decode().replace("\n", " ").strip())
PY
sink_start
ok $? "test SMTP server listens on 127.0.0.1:$SINK_PORT"
"$RELAYQ" start
ok $? "relayq start"

# 40 at once, 8 in parallel: each exits 0 only once pickup committed it.
seq 1 40 | xargs -P 8 -I{} sh -c \
    'printf "Subject: handover {}\nMessage-ID: <ho-{}@relayq.test>\n\nbody {}\n" | "$0" sendmail -f app@example.org rcpt{}@example.com || echo "exit $? for {}"' \
    "$RELAYQ" >"$T/inject.out" 2>&1
[ ! -s "$T/inject.out" ]
ok $? "40 concurrent sendmails exit 0 ($(head -n 1 "$T/inject.out"))"
log_has 40 "relayq/pickup\[[0-9]*\]: [0-9A-Za-z]*: uid=$(id -u) from=<app@example.org>"
ok $? "pickup logs each with the submitter's uid"
! grep -q "relayq/sendmail.*maildrop/\|relayq/pickup\[[0-9]*\]: maildrop/" "$MAILLOG"
ok $? "no maildrop file was made for them"
wait_for 30 sink_has 40
ok $? "the 40 arrive"
[ "$(grep -o 'msgid=<ho-[0-9]*@relayq.test>' "$SINK_LOG" | sort -u | wc -l)" -eq 40 ] &&
    [ "$(grep -c 'msgid=<ho-' "$SINK_LOG")" -eq 40 ]
ok $? "each exactly once"
wait_for 10 received_is sendmail 40
ok $? "relayq stats counts the 40 received from sendmail (handed over)"
received_is maildrop 0
ok $? "and none from maildrop"

# A pickup that greets late (stopped, as a long commit on a busy disk
# keeps it): sendmail waits for it rather than write a file.
running_for() {
    [ "$(ps -o etimes= -p "$1" 2>/dev/null)" -ge "$2" ] 2>/dev/null
}
pickup=$(child_pid pickup)
kill -STOP "$pickup"
printf 'Subject: late\nMessage-ID: <late@relayq.test>\n\nhi\n' |
    "$RELAYQ" sendmail -f late@example.org late@example.com &
late=$!
wait_for 30 running_for "$late" 3
ok $? "a sendmail waits 3 s for a stopped pickup's greeting"
kill -CONT "$pickup"
wait "$late"
ok $? "it exits 0 once pickup goes on"
wait_for 10 received_is sendmail 41 && received_is maildrop 0
ok $? "pickup took it over the socket, not from maildrop/"

if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    stranger=$(id -u daemon)
    printf 'Subject: stranger\nMessage-ID: <stranger@relayq.test>\n\nhi\n' |
        setpriv --reuid="$stranger" --regid="$stranger" --groups "$(getent group mail | cut -d: -f3)" \
            "$RELAYQ" sendmail -f stranger@example.org stranger@example.com
    ok $? "another user's sendmail exits 0"
    wait_for 10 log_has 1 "relayq/pickup\[[0-9]*\]: [0-9A-Za-z]*: uid=$stranger from=<stranger@example.org>"
    ok $? "the log names that user's uid ($stranger)"
    # A forged envelope on the socket: uid=0 claimed, the kernel's uid logged.
    printf 'type=maildrop\nversion=1\nuid=0\nposted=1700000000\nsender=forged@example.org\nrcpt=forged@example.com\n\nSubject: forged\nMessage-ID: <forged@relayq.test>\n\nhi\n' >"$T/forged.msg"
    chmod 644 "$T/forged.msg"
    setpriv --reuid="$stranger" --regid="$stranger" --groups "$(getent group mail | cut -d: -f3)" \
        /usr/bin/python3 "$T/submit.py" "$T/queue/public/pickup" "$T/forged.msg" >"$T/forged.out" 2>&1
    grep -q "^type=queued queue_id=" "$T/forged.out"
    ok $? "a client on the socket itself gets its message queued ($(cat "$T/forged.out"))"
    wait_for 10 log_has 1 "relayq/pickup\[[0-9]*\]: [0-9A-Za-z]*: uid=$stranger from=<forged@example.org>"
    ok $? "an envelope's uid=0 from an ordinary user is not believed"
else
    for _ in 1 2 3 4; do ok 0 "# SKIP needs root and setpriv to act as another user"; done
fi

# sendmail -bs: the 250 names the queue id.
printf 'EHLO bs.test\r\nMAIL FROM:<bs@example.org>\r\nRCPT TO:<bs@example.com>\r\nDATA\r\nSubject: bs\r\nMessage-ID: <bs@relayq.test>\r\n\r\nhi\r\n.\r\nQUIT\r\n' |
    "$RELAYQ" sendmail -bs >"$T/bs.out" 2>&1
qid=$(sed -n 's/^250 2.0.0 Ok: queued as \([0-9A-Za-z]*\)\r*$/\1/p' "$T/bs.out")
[ -n "$qid" ] && log_has 1 "relayq/pickup\[[0-9]*\]: $qid: uid=$(id -u) from=<bs@example.org>"
ok $? "sendmail -bs: 250 with the queue id pickup committed ($qid)"

# A bad envelope straight to the socket: refused for good.
printf 'this is not an envelope\n\nhello\n' >"$T/bad.msg"
python3 "$T/submit.py" "$T/queue/public/pickup" "$T/bad.msg" >"$T/bad.out" 2>&1
grep -q "^type=refused status=rejected reason=bad envelope: " "$T/bad.out"
ok $? "a bad envelope on the socket is refused for good ($(cat "$T/bad.out"))"

# Over 1 MB: a maildrop file.
python3 -c 'import sys; sys.stdout.write("Subject: big\nMessage-ID: <big@relayq.test>\n\n" + ("x" * 1000 + "\n") * 1200)' |
    "$RELAYQ" sendmail -f big@example.org big@example.com
ok $? "a 1.2 MB message is queued"
wait_for 30 grep -q "msgid=<big@relayq.test>" "$SINK_LOG" &&
    log_has 1 "relayq/pickup\[[0-9]*\]: [0-9A-Za-z]*: uid=$(id -u) from=<big@example.org>"
ok $? "it arrives"

# A stale tmp.* file goes, a fresh one stays.
touch -d '2 hours ago' "$T/queue/maildrop/tmp.1.stale"
touch "$T/queue/maildrop/tmp.2.fresh"
[ "$(id -u)" -eq 0 ] && chown nobody "$T/queue/maildrop/tmp.1.stale" "$T/queue/maildrop/tmp.2.fresh"
printf 'Subject: nudge\n\nhi\n' | "$RELAYQ" sendmail -f nudge@example.org nudge@example.com
"$RELAYQ" stop
ok $? "relayq stop"
# Stopped: the file path. The scan at the next start takes it and removes the stale tmp.
printf 'Subject: offline\nMessage-ID: <offline@relayq.test>\n\nhi\n' |
    "$RELAYQ" sendmail -f offline@example.org offline@example.com
ok $? "with relayq stopped, sendmail exits 0"
[ "$(ls "$T/queue/maildrop" | grep -vc '^tmp\.')" -eq 1 ]
ok $? "its message waits in maildrop/"
"$RELAYQ" start
ok $? "relayq start"
wait_for 30 grep -q "msgid=<offline@relayq.test>" "$SINK_LOG"
ok $? "the waiting message arrives"
wait_for 30 test ! -e "$T/queue/maildrop/tmp.1.stale" &&
    log_has 1 "relayq/pickup\[[0-9]*\]: maildrop/tmp.1.stale: removed: an unfinished submission, untouched for [0-9]* s"
ok $? "the stale tmp.* file is removed, with a log line"
[ -e "$T/queue/maildrop/tmp.2.fresh" ]
ok $? "the fresh one is left alone"
rm -f "$T/queue/maildrop/tmp.2.fresh"
wait_for 30 queue_empty
ok $? "the queue drains"
"$RELAYQ" stop
ok $? "relayq stop"

# A pickup slow to start (it waits on a FIFO): public/pickup is master's,
# so a sendmail run as soon as "relayq start" returns waits for pickup
# rather than write a file.
mv "$T/libexec/pickup" "$T/libexec/pickup.real"
mkfifo -m 666 "$T/pickup.go"
printf '#!/bin/sh
read -r go <"%s"
exec "%s" "$@"
' "$T/pickup.go" "$T/libexec/pickup.real" >"$T/libexec/pickup"
chmod 755 "$T/libexec/pickup"
"$RELAYQ" start
ok $? "relayq start, with a pickup that waits to be let go"
printf 'Subject: early\nMessage-ID: <early@relayq.test>\n\nhi\n' |
    "$RELAYQ" sendmail -f early@example.org early@example.com &
early=$!
wait_for 30 running_for "$early" 3
ok $? "a sendmail waits 3 s for the pickup that has not started"
echo go >"$T/pickup.go"
wait "$early"
ok $? "it exits 0 once pickup runs"
wait_for 10 received_is sendmail 1 && received_is maildrop 0
ok $? "pickup took it over the socket, not from maildrop/"
wait_for 30 grep -q "msgid=<early@relayq.test>" "$SINK_LOG"
ok $? "it arrives"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
