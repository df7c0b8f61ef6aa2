#!/bin/bash
# t_chunking - CHUNKING (RFC 3030) to a relay that offers it: MAIL FROM,
# the RCPT TOs and "BDAT n LAST" with the whole content go in one write,
# so a message on an open connection costs the relay one read (one round
# trip); the content arrives as queued, lines starting with a dot
# included, not dot-stuffed. Each recipient's outcome is the one DATA
# gives: a refused RCPT TO bounces that recipient alone, a 4xx to the BDAT
# defers the accepted ones "(in reply to BDAT command)" and relayq flush
# delivers them once, a 5xx bounces them, a connection lost before the
# reply defers and the message arrives once after the flush, and a
# message whose every recipient is refused leaves the connection in use.
# smtp_use_chunking = no sends DATA.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
mkdir -p "$T/sink/mail"
chown nobody "$T/sink/mail" 2>/dev/null
rq_set smtpout_workers 1
sink_start --chunking --maildir "$T/sink/mail" \
    --reply 'BDAT:451 4.3.0 try again later@1' \
    --rcpt-reply 'bad@example.com=550 5.1.1 no such user'

# send - one message: send TAG RECIPIENT... (the body has lines that start
# with dots, and one that is a dot alone: -i keeps it in the message)
send() {
    local tag=$1
    shift
    printf 'Subject: %s\nMessage-ID: <%s@relayq.test>\n\nfirst\n.one dot\n..two dots\n.\nlast\n' \
        "$tag" "$tag" | "$RELAYQ" sendmail -i -f sender@example.com "$@"
}
# sink_line - the server's log line of a message: sink_line TAG
sink_line() {
    grep "^message .* msgid=<$1@relayq.test>" "$SINK_LOG"
}
# status_is - whether the maillog's last status for a recipient is STATUS: status_is ADDRESS STATUS
status_is() {
    [ "$(grep "to=<$1>" "$MAILLOG" | tail -n 1 | sed 's/.* status=\([a-z]*\).*/\1/')" = "$2" ]
}
# notices_sent - whether at least N bounce notices to the sender went out: notices_sent N
notices_sent() {
    [ "$(log_count 'to=<sender@example.com>, .*status=sent')" -ge "$1" ]
}

"$RELAYQ" start
ok $? "relayq start"

# --- a 4xx to BDAT ---
send c-first a@example.com
wait_for 30 log_has 1 'to=<a@example.com>, .*status=deferred'
ok $? "a 451 to BDAT defers the recipient"
check "with the relay's reply, in reply to BDAT" -- \
    log_has 1 'to=<a@example.com>, .*dsn=4.3.0, status=deferred (host 127.0.0.1\[127.0.0.1\] said: 451 4.3.0 try again later (in reply to BDAT command))'

# --- one recipient refused, the other takes the content ---
send c-mixed good@example.com bad@example.com
wait_for 30 sink_line c-mixed
ok $? "the message arrived for the accepted recipient"
wait_for 30 status_is bad@example.com bounced
ok $? "the refused recipient bounced"
check "good@ sent" -- status_is good@example.com sent
check "the relay saw the content as BDAT LAST, one chunk" -- sink_line c-mixed | grep -q ' bdat_chunks=1 '
check "the relay got only the accepted recipient" -- sink_line c-mixed | grep -q 'rcpts=<good@example.com> '
# (the bounce notice quotes the header too: the message is the file it heads)
for f in "$T/sink/mail"/*.eml; do
    grep -m1 '^Message-ID:' "$f" | grep -q '<c-mixed@relayq.test>' && mixed_file=$f
done
check "lines that start with a dot arrive as queued, not dot-stuffed" -- \
    test "$(tr -d '\r' <"$mixed_file" | sed -n '/^first$/,/^last$/p' | tr '\n' '|')" = \
    "first|.one dot|..two dots|.|last|"

# --- every recipient refused ---
send c-none bad@example.com
wait_for 30 log_has 2 'to=<bad@example.com>, .*status=bounced'
ok $? "a message whose only recipient is refused bounces"
check "and never reaches the relay" -- test -z "$(sink_line c-none)"

# --- the deferred one, flushed ---
"$RELAYQ" flush >/dev/null
wait_for 30 sink_line c-first
ok $? "relayq flush delivers the deferred message"

# --- many messages on one connection: one read each ---
before=$(sink_connections)
# many_arrived - whether the 20 messages arrived
many_arrived() {
    [ "$(grep -c 'msgid=<c-many-' "$SINK_LOG")" -ge 20 ]
}
inject 20 c-many
wait_for 60 many_arrived
ok $? "20 more messages arrived"
check "each once" -- test "$(grep 'msgid=<c-many-' "$SINK_LOG" | sed 's/.*msgid=\([^ ]*\).*/\1/' | sort -u | wc -l)" -eq 20
check "all as BDAT LAST" -- test "$(grep 'msgid=<c-many-' "$SINK_LOG" | grep -c ' bdat_chunks=1 ')" -eq 20
check "one read a message on the open connection: one round trip" -- \
    test "$(grep 'msgid=<c-many-' "$SINK_LOG" | grep -c ' reads_in_transaction=1 ')" -eq 20
check "on the connection already open (refused recipients did not close it)" -- \
    test "$(sink_connections)" -eq "$before"

# --- a 5xx to BDAT, and a connection lost before the reply ---
sink_stop
sink_start --chunking --reply 'BDAT:554 5.6.0 content refused@1'
send c-refused r@example.com
wait_for 30 status_is r@example.com bounced
ok $? "a 554 to BDAT bounces the recipient"
check "dsn 5.6.0, in reply to BDAT" -- log_has 1 'to=<r@example.com>, .*dsn=5.6.0, status=bounced .*(in reply to BDAT command)'
# Its bounce notice goes to this server first (the next one drops a message).
wait_for 30 notices_sent 3
ok $? "the three bounce notices were delivered"
# A new server: the message goes on a new connection, which is not
# retried at once as a dead reused one would be.
sink_stop
sink_start --chunking --drop-in-data 'before@1'
send c-lost l@example.com
wait_for 30 log_has 1 'to=<l@example.com>, .*status=deferred'
ok $? "a connection lost before the BDAT reply defers"
check "lost connection, as Postfix says it" -- log_has 1 'to=<l@example.com>, .*status=deferred (lost connection with 127.0.0.1\[127.0.0.1\] while '
"$RELAYQ" flush >/dev/null
wait_for 30 sink_line c-lost
ok $? "relayq flush delivers it"
check "once" -- test "$(sink_line c-lost | wc -l)" -eq 1

# --- smtp_use_chunking = no ---
rq_set smtp_use_chunking no
"$RELAYQ" reload
wait_for 10 log_has 1 'smtpout.*: reload -- '
send c-data d@example.com
wait_for 30 sink_line c-data
ok $? "with smtp_use_chunking = no the message arrives"
check "as DATA" -- test -z "$(sink_line c-data | grep ' bdat_chunks=')"

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
