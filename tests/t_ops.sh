#!/bin/bash
# t_ops - the operator's commands: hold then flush leaves held mail alone;
# release then flush delivers it; delete ALL --dry-run lists and changes
# nothing; selectors narrow the set; delete removes; requeue starts over;
# a flush of one id touches only that message.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
# A relay that defers every message (not one that is down: that would
# suspend the destination, and its return would release all of its mail).
sink_start --reply "MAIL:450 4.2.0 not now, for the test"
"$RELAYQ" start
ok $? "relayq start with a relay that defers all mail"

send() {
    printf 'Subject: ops\n\nhello\n' | "$RELAYQ" sendmail -f "$1" "$2"
}
send alice@example.com a1@example.com
send alice@example.com a2@example.com
send bob@example.net b1@example.org
send bob@example.net b2@example.org
send carol@example.com c1@example.com
wait_for 30 log_has 5 'status=deferred'
ok $? "five messages are deferred by the relay"
sink_stop

# ids_of - the queue ids of messages with a recipient matching a pattern
ids_of() {
    "$RELAYQ" mailq --json | grep -- "$1" | sed 's/.*"queue_id": "\([^"]*\)".*/\1/'
}
# next_attempt_of - a message's next_attempt from mailq --json
next_attempt_of() {
    "$RELAYQ" mailq --json | grep "\"$1\"" | sed 's/.*"next_attempt": \([0-9]*\).*/\1/'
}

"$RELAYQ" hold --domain example.org ALL 2>"$T/err"
ok $? "hold --domain example.org ALL"
check "the summary counts two messages" -- grep -q 'Placed on hold: 2 messages' "$T/err"
check "mailq marks the held messages with !" -- test "$("$RELAYQ" mailq | grep -c '^[0-9A-Za-z]\{12\}!')" -eq 2
check "mailq --json says hold" -- test "$("$RELAYQ" mailq --json | grep -c '"queue_name": "hold"')" -eq 2

"$RELAYQ" delete --dry-run ALL >"$T/dry" 2>"$T/err"
ok $? "delete --dry-run ALL"
check "it lists every message" -- test "$(wc -l <"$T/dry")" -eq 5
check "it says nothing changed" -- grep -q 'dry run, nothing changed): 5 messages' "$T/err"
check "and nothing changed" -- test "$("$RELAYQ" mailq --json | wc -l)" -eq 5

"$RELAYQ" hold --dry-run --sender alice@example.com ALL >"$T/dry" 2>/dev/null
check "a --sender selector picks that sender's messages" -- test "$(wc -l <"$T/dry")" -eq 2

# A flush of one id touches only that message.
c1=$(ids_of c1@example.com)
a2=$(ids_of a2@example.com)
before=$(next_attempt_of "$a2")
sink_start
"$RELAYQ" flush -i "$c1"
ok $? "flush -i one id"
has_c1() { grep -q 'to=<c1@example.com>.*status=sent' "$MAILLOG"; }
wait_for 20 has_c1
ok $? "that message is delivered"
check "the log says one message was made due" -- grep -q 'flush: 1 message made due' "$MAILLOG"
check "another deferred message kept its next attempt time" -- \
    test "$(next_attempt_of "$a2")" = "$before"
check "and was not delivered" -- sh -c "! grep -q 'to=<a2@example.com>.*status=sent' '$MAILLOG'"

"$RELAYQ" flush
ok $? "flush everything"
# unheld_sent - both deferred messages that are not held were delivered
unheld_sent() {
    log_has 1 'to=<a1@example.com>.*status=sent' && log_has 1 'to=<a2@example.com>.*status=sent'
}
wait_for 20 unheld_sent
ok $? "the deferred messages that are not held are delivered"
check "held mail is left alone by flush" -- sh -c "! grep -q 'to=<b[12]@example.org>.*status=sent' '$MAILLOG'"
check "two held messages remain" -- test "$("$RELAYQ" mailq --json | wc -l)" -eq 2

b1=$(ids_of b1@example.org)
"$RELAYQ" delete "$b1" 2>"$T/err"
ok $? "delete one held message"
check "the summary counts it" -- grep -q 'Deleted: 1 message$' "$T/err"
check "the log says removed" -- grep -q "$b1: removed" "$MAILLOG"
check "it is gone from the queue" -- test "$("$RELAYQ" mailq --json | grep -c "$b1")" -eq 0

"$RELAYQ" release ALL 2>"$T/err"
ok $? "release ALL"
check "one message released" -- grep -q 'Released from hold: 1 message$' "$T/err"
"$RELAYQ" flush
wait_for 20 log_has 1 'to=<b2@example.org>.*status=sent'
ok $? "release then flush delivers it"
wait_for 10 queue_empty
ok $? "the queue is empty"

# requeue: a deferred message starts over and is delivered when the relay is back.
sink_stop
send dave@example.com d1@example.com
wait_for 30 log_has 1 'to=<d1@example.com>.*status=deferred'
d1=$(ids_of d1@example.com)
sink_start
"$RELAYQ" requeue "$d1" 2>"$T/err"
ok $? "requeue a deferred message"
check "the summary counts it" -- grep -q 'Requeued: 1 message$' "$T/err"
wait_for 20 log_has 1 'to=<d1@example.com>.*status=sent'
ok $? "a requeued message is tried again at once and delivered"

"$RELAYQ" hold NOTAQUEUEID 2>"$T/err"
ok $(($? != 64)) "a bad queue id is a usage error"
check "that names the id" -- grep -q 'NOTAQUEUEID' "$T/err"
"$RELAYQ" hold ALL "$d1" 2>/dev/null
ok $(($? != 64)) "ALL with queue ids is a usage error"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
