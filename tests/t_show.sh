#!/bin/bash
# t_show - `relayq show` on a real run: a message to a recipient the relay
# accepts and to one it defers forever (451), delivered by the real
# daemons through the test SMTP server; after the second deferral, show
# lists the envelope, the headers, both recipients' states and the
# attempt history kept in the queue: every attempt's time, recipient,
# relay 127.0.0.1[127.0.0.1]:PORT, dsn, status and the relay's reply,
# oldest first, matching the maillog's delivery lines once relayq is
# stopped.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
rq_set minimal_backoff_time 1s
rq_set maximal_backoff_time 1s
sink_start --rcpt-reply 'later@example.com=451 4.3.0 mailbox unavailable, come back later'
"$RELAYQ" start
ok $? "relayq start"

printf 'Subject: show me\nMessage-ID: <show@relayq.test>\nX-Odd: tab\there, bell\a\n\nbody\n' |
    "$RELAYQ" sendmail -f sender@example.com ok@example.com later@example.com
ok $? "a message to ok@ and later@ is queued"

wait_for 30 log_has 2 'to=<later@example.com>.*status=deferred'
ok $? "later@ is deferred twice"
check "ok@ is delivered" -- log_has 1 'to=<ok@example.com>.*status=sent'
# A graceful stop ends the retries with every logged attempt recorded, so
# the queue's history and the maillog are compared at rest.
"$RELAYQ" stop >/dev/null
ok $? "relayq stop"

qid=$(grep -m1 'to=<later@example.com>.*status=deferred' "$MAILLOG" |
    sed -n 's/.*: \([0-9A-Zb]\{12\}\): to=<.*/\1/p')
check "the queue id is in the log" -- test -n "$qid"
diag "queue id $qid"

"$RELAYQ" show "$qid" >"$T/show" 2>"$T/show.err"
ok $? "relayq show $qid"
sed 's/^/# | /' "$T/show"
relay="127.0.0.1\[127.0.0.1\]:$SINK_PORT"

# section - the lines of one section of the output: section NAME
section() {
    sed -n "/^\*\*\* $1 \*\*\*\$/,/^\*\*\* /p" "$T/show" | sed '1d;/^\*\*\* /d'
}

check "the envelope names the id" -- grep -qx "queue_id: $qid" "$T/show"
check "the state is deferred (or active, between attempts)" -- \
    grep -Eqx 'state: (deferred|active)' "$T/show"
check "the sender is shown" -- grep -qx 'sender: sender@example.com' "$T/show"
check "at least two attempts are counted" -- \
    test "$(sed -n 's/^attempts: //p' "$T/show")" -ge 2
check "the arrival time is shown" -- \
    grep -Eqx 'arrival_time: [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} [-+][0-9]{4}' "$T/show"
check "the headers are shown" -- \
    sh -c "grep -qx 'Subject: show me' '$T/show' && grep -qx 'Message-ID: <show@relayq.test>' '$T/show'"
check "a control byte in a header is escaped, a tab is kept" -- \
    grep -qF "$(printf 'X-Odd: tab\there, bell\\x07')" "$T/show"
check "the header section ends at the empty line" -- sh -c "! grep -qx body '$T/show'"

section RECIPIENTS >"$T/rcpts"
# rcpt_field - whether a recipient's block has a line: rcpt_field ADDR LINE
rcpt_field() {
    sed -n "/^recipient: $1\$/,/^recipient: /p" "$T/rcpts" | grep -qx -- "$2"
}
check "ok@ is sent" -- rcpt_field ok@example.com '  status: sent'
check "later@ is deferred" -- rcpt_field later@example.com '  status: deferred'
check "later@ shows dsn 4.3.0" -- rcpt_field later@example.com '  dsn: 4.3.0'
check "later@ shows the relay's reply" -- rcpt_field later@example.com \
    '  reply: host 127.0.0.1\[127.0.0.1\] said: 451 4.3.0 mailbox unavailable, come back later (in reply to RCPT TO command)'
check "ok@ shows the relay's reply" -- rcpt_field ok@example.com '  reply: 250 .*'

section ATTEMPTS >"$T/attempts"
check "ok@ has one attempt, sent through the sink" -- test "$(grep -c \
    "^[0-9-]* [0-9:.]* to=<ok@example.com>, relay=$relay, dsn=2\.[0-9.]*, status=sent (250 " \
    "$T/attempts")" -eq 1
n=$(grep -c "^[0-9-]* [0-9:.]* to=<later@example.com>, relay=$relay, dsn=4\.3\.0, status=deferred (.*451 4\.3\.0 mailbox unavailable, come back later" "$T/attempts")
check "later@ has at least two deferred attempts with the reply" -- test "$n" -ge 2
check "every attempt line is one of the two" -- \
    test "$(wc -l <"$T/attempts")" -eq $((n + 1))
check "attempts are listed oldest first" -- sh -c "cut -c1-23 '$T/attempts' | sort -c"
# Each deferral in the maillog is an attempt in the queue.
logged=$(grep -c 'to=<later@example.com>.*status=deferred' "$MAILLOG")
check "the queue's history matches the maillog ($n stored, $logged logged)" -- \
    test "$n" -eq "$logged"
check "show writes nothing on standard error" -- test ! -s "$T/show.err"

"$RELAYQ" show BBBBBBBBBBBB >/dev/null 2>&1
check "an id that is not queued exits EX_NOINPUT (66)" -- test $? -eq 66
tap_end
