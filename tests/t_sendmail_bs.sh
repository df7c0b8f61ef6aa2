#!/bin/bash
# t_sendmail_bs - the sendmail habits of applications and scripts:
#   1. "sendmail -bs" driven by Python's smtplib over a socket pair (as
#      Symfony Mailer, Laravel and SwiftMailer drive it): two messages in
#      one session, one with DSN parameters, each arrives at the relay
#      exactly once with its envelope; bad addresses are refused 501 and
#      nothing of them is queued; a script writing bare LF works too;
#   2. recipient arguments written as address lists ("Name <a@b>",
#      "a@x,b@y", "\"Doe, Jr\" <a@b>, c@d"): the relay gets exactly those;
#   3. "sendmail -q" delivers deferred mail at once, as relayq flush;
#   4. "sendmail -bi" and newaliases: exit 0, one note on stderr;
#      "mailq -v" lists the queue as mailq does.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if ! command -v python3 >/dev/null; then
    echo "1..0 # SKIP python3 not found"
    exit 0
fi

# sink_line - the sink's "message" line of one Message-ID: sink_line TAG
sink_line() {
    grep "^message .* msgid=<$1@relayq.test> " "$SINK_LOG" 2>/dev/null | head -n 1
}

# sink_got - whether the message with Message-ID TAG arrived: sink_got TAG
sink_got() {
    [ -n "$(sink_line "$1")" ]
}

# results - turn "STATUS DESCRIPTION" lines into TAP results
results() {
    local status desc
    while read -r status desc; do
        ok "$status" "$desc"
    done
}

rq_setup
# Deferred mail waits an hour unless flushed: only "sendmail -q" can move it.
rq_set minimal_backoff_time 3600s
rq_set maximal_backoff_time 3600s
sink_start --maildir "$T/sink" --dsn
ok $? "test SMTP server with DSN listens on 127.0.0.1:$SINK_PORT"
"$RELAYQ" start
ok $? "relayq start"

# --- 1. sendmail -bs under smtplib
python3 - "$RELAYQ" >"$T/bs.out" 2>"$T/bs.err" <<'PY'
import smtplib, socket, subprocess, sys

relayq = sys.argv[1]


class PipeSMTP(smtplib.SMTP):
    """smtplib over a socket pair whose other end is the child's stdin and stdout."""

    def _get_socket(self, host, port, timeout):
        ours, theirs = socket.socketpair()
        ours.settimeout(60)
        self.child = subprocess.Popen([relayq, "sendmail", "-bs"], stdin=theirs, stdout=theirs)
        theirs.close()
        return ours


def result(cond, desc):
    print(f"{0 if cond else 1} {desc}", flush=True)


def message(tag):
    return (f"From: App <app@example.com>\r\nSubject: bs {tag}\r\n"
            f"Message-ID: <{tag}@relayq.test>\r\n\r\nbody {tag}\r\n.leading dot\r\n")


s = PipeSMTP()
code, greeting = s.connect()
result(code == 220, f"-bs greets 220 ({greeting.decode(errors='replace')})")
code, _ = s.ehlo("app.example.com")
features = s.esmtp_features
result(code == 250 and all(k in features for k in
                           ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "dsn")),
       f"EHLO offers PIPELINING SIZE 8BITMIME ENHANCEDSTATUSCODES DSN ({sorted(features)})")
refused = s.sendmail("alice@example.com", ["bob@example.com", "carol@example.com"], message("bs-1"))
result(refused == {}, "first message: both recipients accepted, 250 to the final dot")
refused = s.sendmail("alice@example.com", ["dave@example.com"], message("bs-2"),
                     mail_options=["RET=HDRS", "ENVID=bs+2B2"],
                     rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;dave@example.com"])
result(refused == {}, "second message, with RET, ENVID, NOTIFY and ORCPT: accepted")
code, text = s.mail("bad address@@example.com")
result(code == 501, f"a bad sender address is refused 501 ({code} {text.decode(errors='replace')})")
s.rset()
code, _ = s.mail("alice@example.com")
rcode, rtext = s.rcpt("x@@example.com")
dcode, _ = s.docmd("DATA")
result(code == 250 and rcode == 501 and dcode == 503,
       f"a bad recipient is refused 501, DATA then 503 ({rcode} {rtext.decode(errors='replace')}, {dcode})")
s.rset()
try:
    s.sendmail("alice@example.com", ["bad@-.example.com"], message("bs-bad"))
    result(False, "sendmail() to a bad recipient raises")
except smtplib.SMTPRecipientsRefused as e:
    codes = [c for c, _ in e.recipients.values()]
    result(codes == [501], f"sendmail() to a bad recipient raises SMTPRecipientsRefused {codes}")
code, _ = s.quit()
result(code == 221, "QUIT: 221")
result(s.child.wait(timeout=60) == 0, "relayq sendmail -bs exits 0")
PY
results <"$T/bs.out"
[ -s "$T/bs.err" ] && diag "$(cat "$T/bs.err")"
check "python ran the whole session" -- test "$(wc -l <"$T/bs.out")" -eq 9

wait_for 30 sink_got bs-2
ok $? "both -bs messages arrived"
line1=$(sink_line bs-1)
line2=$(sink_line bs-2)
diag "$line1"
diag "$line2"
check "bs-1: envelope sender and both recipients exact" -- \
    grep -q ' from=<alice@example.com> rcpts=<bob@example.com>,<carol@example.com> ' <<<"$line1"
check "bs-2: envelope exact" -- \
    grep -q ' from=<alice@example.com> rcpts=<dave@example.com> ' <<<"$line2"
check "bs-2: RET=HDRS and ENVID=bs+2B2 reached the relay" -- \
    grep -Eq ' mail_params=<([^>]* )?RET=HDRS ENVID=bs\+2B2>' <<<"$line2"
check "bs-2: NOTIFY and ORCPT of the recipient reached the relay" -- \
    grep -q ' rcpt_params=<NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dave@example.com>$' <<<"$line2"
check "the dot-stuffed line arrived as one dot" -- \
    grep -rqx $'\\.leading dot\r\\?' "$T/sink"
wait_for 10 queue_empty
ok $? "the queue is empty"
check "each message arrived exactly once, the refused one never" -- sink_ids_once 2
check "the session is logged: connect, two maildrop files, disconnect" -- \
    grep -Eq "sendmail\[[0-9]+\]: disconnect from local\[uid=$(id -u)\] ehlo=1 mail=4/5 rcpt=3/5 data=2/3 rset=3 quit=1" "$MAILLOG"
check "pickup recorded the submitter's uid" -- \
    log_has 2 "uid=$(id -u) from=<alice@example.com>"

# A script that writes bare LF and pipelines everything at once.
printf 'HELO script\nMAIL FROM:<cron@example.com>\nRCPT TO:<ops@example.com>\nDATA\nSubject: lf\nMessage-ID: <bs-lf@relayq.test>\n\nfrom a script\n.\nQUIT\n' |
    "$RELAYQ" sendmail -bs >"$T/lf.out"
ok $? "-bs from a script with bare LF: exit 0"
check "... replies 220 250 250 250 354 250 221" -- \
    test "$(cut -c1-3 "$T/lf.out" | tr '\n' ' ')" = "220 250 250 250 354 250 221 "
wait_for 30 sink_got bs-lf
ok $? "... and the message arrived"

# --- 2. recipient arguments as address lists
printf 'Subject: lists\nMessage-ID: <lists@relayq.test>\n\nbody\n' |
    "$RELAYQ" sendmail -f s@example.com 'Ann Other <ann@example.com>' 'x@example.com,y@example.com' \
        '"Doe, Jr" <jr@example.com>, z@example.com' plain@example.com
ok $? "sendmail with 'Name <a@b>', 'a@x,b@y' and '\"Doe, Jr\" <a@b>, c@d' arguments"
wait_for 30 sink_got lists
ok $? "the message arrived"
line=$(sink_line lists)
diag "$line"
check "the envelope recipients are exactly the six addresses" -- \
    grep -q ' rcpts=<ann@example.com>,<x@example.com>,<y@example.com>,<jr@example.com>,<z@example.com>,<plain@example.com> ' <<<"$line"
printf 'Subject: bad\n\nbody\n' | "$RELAYQ" sendmail -f s@example.com 'Ann <ann@example.com' 2>"$T/err"
check "an unbalanced list is refused with EX_DATAERR" -- test $? -eq 65
check "... naming it" -- grep -q 'bad recipient list "Ann <ann@example.com"' "$T/err"

# --- 3. sendmail -q is relayq flush
sink_stop
printf 'Subject: q\nMessage-ID: <q@relayq.test>\n\nbody\n' |
    "$RELAYQ" sendmail -f s@example.com later@example.com
ok $? "a message queued with the relay down"
wait_for 30 log_has 1 'to=<later@example.com>.*status=deferred'
ok $? "it is deferred (backoff one hour)"
sink_start --maildir "$T/sink" --dsn
ok $? "relay back on the same port"
check "nothing moves without a flush" -- test -z "$(sink_line q)"
"$RELAYQ" sendmail -q
ok $? "sendmail -q: exit 0"
wait_for 30 sink_got q
ok $? "the deferred message arrived after sendmail -q"

# --- 4. -bi, newaliases, mailq -v
mkdir -p "$T/bin"
ln -s "$RELAYQ" "$T/bin/newaliases"
ln -s "$RELAYQ" "$T/bin/mailq"
"$RELAYQ" sendmail -bi 2>"$T/err"
check "sendmail -bi: exit 0" -- test $? -eq 0
check "... one line on stderr: no aliases" -- \
    test "$(wc -l <"$T/err")" -eq 1 -a -n "$(grep 'no aliases' "$T/err")"
"$T/bin/newaliases" 2>"$T/err"
check "newaliases: exit 0" -- test $? -eq 0
check "... one line on stderr: no aliases" -- \
    test "$(wc -l <"$T/err")" -eq 1 -a -n "$(grep 'no aliases' "$T/err")"
wait_for 10 queue_empty
"$T/bin/mailq" -v >"$T/mailq.out" 2>"$T/err"
check "mailq -v: exit 0" -- test $? -eq 0
check "... the same listing as mailq" -- test "$(cat "$T/mailq.out")" = "$("$RELAYQ" mailq)"
check "... Mail queue is empty" -- grep -qx 'Mail queue is empty' "$T/mailq.out"

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
