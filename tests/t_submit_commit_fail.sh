#!/bin/bash
# t_submit_commit_fail - pickup's group commit of submitted mail fails
#
# Without fault injection:
#  - a message with a NUL byte in its header is refused 554 5.6.0 with the
#    reason, and it alone: the next message of the same SMTP session is
#    queued and arrives.
# In a fault-injection build (RELAYQ_FAIL_AT=pickup-submit-commit=ERROR):
#  - the commit of an SMTP client's message fails with ENOSPC: the client
#    is answered 452 4.3.1, pickup warns, and the client's next message in
#    the same session is answered 250 and arrives; the refused one never
#    does;
#  - the commit of a message sendmail hands over fails: pickup refuses it,
#    sendmail writes the maildrop file instead and exits 0, and the
#    message arrives exactly once;
#  - with EIO the client is answered 451 4.3.0, and again the next message
#    goes through.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rq_set smtpd_listen "127.0.0.1:$PORT"

# send TAG... - one SMTP session, one message per TAG (a TAG starting with
# "nul" has a NUL byte in its Subject:); prints "TAG CODE" per message
send() {
    python3 - "$PORT" "$@" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=30)
for tag in sys.argv[2:]:
    subject = "a\0b" if tag.startswith("nul") else tag
    body = "Subject: %s\r\nMessage-ID: <%s@client.test>\r\n\r\n%s\r\n" % (subject, tag, tag)
    try:
        s.sendmail("app@example.org", ["%s@example.com" % tag], body)
        print(tag, 250)
    except smtplib.SMTPDataError as e:
        print(tag, e.smtp_code, e.smtp_error.decode())
s.quit()
PY
}
# arrived TAG - how many times the message TAG reached the server
arrived() {
    grep -c "msgid=<$1@client.test>" "$SINK_LOG"
}
# refused_then_queued TAG REPLY WHAT DELIVERED - the message TAG is refused
# with REPLY, the next one of the same session (after-TAG) is queued and
# arrives once, the server then having DELIVERED messages
refused_then_queued() {
    send "$1" "after-$1" >"$T/$1.out" 2>&1
    grep -q "^$1 $2" "$T/$1.out" && grep -q "^after-$1 250" "$T/$1.out"
    ok $? "$3: $2; the next message: 250 ($(tr '\n' ' ' <"$T/$1.out"))"
    wait_for 30 sink_has "$4"
    check "the next message arrives once" [ "$(arrived "after-$1")" -eq 1 ]
}

"$RELAYQ" start
ok $? "relayq start"
refused_then_queued nul1 "554 5.6.0 Error: message not accepted: NUL byte in the message header" \
    "a NUL byte in the header" 1
check "pickup logs the refusal" log_has 1 \
    "relayq/pickup\[[0-9]*\]: warning: unknown\[127.0.0.1\]: message not queued: NUL byte in the message header"
"$RELAYQ" stop
ok $? "relayq stop"

fault_build_or_skip "an injected failure of pickup's submission commit"
fault_marker submit

RELAYQ_FAIL_AT=pickup-submit-commit=ENOSPC RELAYQ_CRASH_MARKER=$MARKER "$RELAYQ" start
ok $? "relayq start with pickup's submission commit armed to fail with ENOSPC"
refused_then_queued full1 "452 4.3.1 Insufficient system storage" "the failed commit" 2
check "the fault fired in pickup" log_has 1 \
    "relayq/pickup\[[0-9]*\]: fault injection: ENOSPC at pickup-submit-commit"
check "pickup warns that the message was not queued" log_has 1 \
    "relayq/pickup\[[0-9]*\]: warning: cannot queue 1 message of SMTP clients and sendmail: "

rm -f "$MARKER"
printf 'Subject: handed over\nMessage-ID: <handover@client.test>\n\nhi\n' |
    "$RELAYQ" sendmail -f app@example.org handover@example.com
ok $? "sendmail exits 0 although pickup's commit of its message failed"
check "the fault fired again, at sendmail's message" log_has 2 \
    "relayq/pickup\[[0-9]*\]: fault injection: ENOSPC at pickup-submit-commit"
wait_for 30 sink_has 3
check "sendmail's message arrives, through its maildrop file, exactly once" \
    [ "$(arrived handover)" -eq 1 ]
"$RELAYQ" stop
ok $? "relayq stop"

rm -f "$MARKER"
RELAYQ_FAIL_AT=pickup-submit-commit=EIO RELAYQ_CRASH_MARKER=$MARKER "$RELAYQ" start
ok $? "relayq start with the commit armed to fail with EIO"
refused_then_queued eio1 "451 4.3.0 Error: queue file write error" "EIO" 4
"$RELAYQ" stop
ok $? "relayq stop"
for tag in nul1 full1 eio1; do
    [ "$(arrived $tag)" -eq 0 ] || break
done
ok $? "no refused message was ever delivered"
tap_end
