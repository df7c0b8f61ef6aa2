#!/bin/bash
# t_postfix_habits - a Postfix operator's commands: queue names on delete,
# hold, release and requeue ("delete ALL deferred" deletes only deferred
# mail, with held, active and incoming mail beside it); postqueue and
# postsuper through links of those names; relayq config and postconf;
# unknown Postfix parameters all reported in one error with hints.
#
# The four queues are made to hold still: the relay is down while the
# first messages are tried (deferred, with a backoff of an hour), one is
# put on hold, then a relay that never answers MAIL FROM keeps one message
# active, and qmgr_message_active_limit = 1 keeps the next one incoming.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
rq_set qmgr_message_active_limit 1
rq_set minimal_backoff_time 1h
rq_set maximal_backoff_time 1h
rq_set queue_run_delay 1h
mkdir -p "$T/bin"
for name in postqueue postsuper postconf; do
    ln -s "$RELAYQ" "$T/bin/$name"
done

# --- relayq config and postconf (no daemons needed) ---

"$RELAYQ" config -n >"$T/out" 2>"$T/err"
ok $? "relayq config -n"
grep -E '^[a-z_0-9]+ =( |$)' "$CONF" | sort >"$T/want"
check "config -n prints what the file sets, sorted" -- diff -u "$T/want" "$T/out"
"$RELAYQ" config >"$T/out"
ok $? "relayq config"
check "config prints every parameter sorted by name" -- sort -c "$T/out"
check "as many as the defaults" -- test "$(wc -l <"$T/out")" -eq "$("$RELAYQ" config -d | wc -l)"
check "with the file's values" -- grep -qx "queue_directory = $T/queue" "$T/out"
check "and the defaults for the rest" -- grep -qx 'smtp_connect_timeout = 30s' "$T/out"
check "config -d NAME... prints defaults in the order given" -- \
    test "$("$RELAYQ" config -d smtpout_workers myorigin)" = "$(printf 'smtpout_workers = 4\nmyorigin = $myhostname')"
check "config NAME keeps \$name as written" -- test "$("$RELAYQ" config myorigin)" = 'myorigin = $myhostname'
check "config -x expands it" -- test "$("$RELAYQ" config -x myorigin)" = 'myorigin = relayq.test'
"$RELAYQ" config nosuch_thing mydomain >"$T/out" 2>"$T/err"
ok $(($? != 64)) "config with unknown names is a usage error"
check "one line names both" -- test "$(grep -c 'unknown parameter "nosuch_thing".*unknown parameter "mydomain"' "$T/err")" -eq 1
check "with the hint for the Postfix one" -- grep -q '"mydomain" (a Postfix parameter relayq does not implement: write the domain in myorigin)' "$T/err"
check "and nothing printed" -- test ! -s "$T/out"
check "postconf -c CONFIG_DIR -h NAME prints the value" -- \
    test "$(env -u RELAYQ_CONFIG "$T/bin/postconf" -c "$T" -h queue_directory)" = "$T/queue"
"$T/bin/postconf" myhostname=x.example 2>"$T/err"
ok $(($? != 64)) "postconf NAME=VALUE is refused"

# Three Postfix parameters a null client's main.cf has: one error lists all.
cp "$CONF" "$T/bad.conf"
cat >>"$T/bad.conf" <<'CONF'
inet_interfaces = loopback-only
mydestination =
default_transport = smtp
CONF
base=$(grep -c '' "$CONF")
"$RELAYQ" config -c "$T/bad.conf" >/dev/null 2>"$T/err"
ok $(($? != 78)) "a configuration with three Postfix parameters is refused (EX_CONFIG)"
check "in one line" -- test "$(wc -l <"$T/err")" -eq 1
check "naming inet_interfaces with its line and hint" -- \
    grep -q "$T/bad.conf:$((base + 1)): unknown parameter \"inet_interfaces\" (a Postfix parameter; in relayq use smtpd_listen" "$T/err"
check "naming mydestination with its line and hint" -- \
    grep -q "$T/bad.conf:$((base + 2)): unknown parameter \"mydestination\" (a Postfix parameter relayq does not need: it delivers nothing locally" "$T/err"
check "naming default_transport with its line and equivalent" -- \
    grep -q "$T/bad.conf:$((base + 3)): unknown parameter \"default_transport\" (a Postfix parameter; in relayq use relayhost" "$T/err"

# --- the four queues ---

# The relay defers the first four messages with an ordinary 451 (a relay
# that is down would suspend the destination instead, and release its mail
# when the relay came back).
sink_start --reply 'MAIL:451 4.3.0 mailbox unavailable@4'
"$RELAYQ" start
ok $? "relayq start with a relay that defers"
send() {
    printf 'Subject: habits\n\nhello\n' | "$RELAYQ" sendmail -f sender@example.com "$1"
}
send d1@a.example.com
send d2@b.example.org
send d3@c.example.net
send h1@example.com
wait_for 60 log_has 4 'status=deferred'
ok $? "four messages deferred by the relay"

# id_of - the queue id of the message to a recipient
id_of() {
    "$RELAYQ" mailq --json | grep -- "\"$1\"" | sed 's/.*"queue_id": "\([^"]*\)".*/\1/'
}
# queue_of - the queue mailq --json puts a message in
queue_of() {
    "$RELAYQ" mailq --json | grep -- "\"$1\"" | sed 's/.*"queue_name": "\([^"]*\)".*/\1/'
}
# next_attempt_of - a message's next attempt time
next_attempt_of() {
    "$RELAYQ" mailq --json | grep -- "\"$1\"" | sed 's/.*"next_attempt": \([0-9]*\).*/\1/'
}
# in_queue - whether a message is in a queue: in_queue ID NAME
in_queue() {
    [ "$(queue_of "$1")" = "$2" ]
}
d1=$(id_of d1@a.example.com)
d2=$(id_of d2@b.example.org)
d3=$(id_of d3@c.example.net)
h1=$(id_of h1@example.com)
"$RELAYQ" hold "$h1" 2>/dev/null
ok $? "hold one message"

# A relay that never answers MAIL FROM keeps the next message active.
sink_stop
sink_start --stall MAIL:600
send i1@example.com
i1_active() { i1=$(id_of i1@example.com) && [ -n "$i1" ] && in_queue "$i1" active; }
wait_for 30 i1_active
ok $? "a message stuck at the relay is active"
send i2@example.com
i2_there() { i2=$(id_of i2@example.com) && [ -n "$i2" ]; }
wait_for 30 i2_there
ok $? "the next message is queued"
check "and waits, never tried, in incoming (active limit 1)" -- in_queue "$i2" incoming
check "deferred mail is in deferred" -- sh -c "[ \"\$(\"$RELAYQ\" mailq --json | grep -c '\"queue_name\": \"deferred\"')\" -eq 3 ]"
check "held mail is in hold" -- in_queue "$h1" hold

# --- postqueue ---

"$T/bin/postqueue" -p >"$T/out"
ok $? "postqueue -p"
check "is the mailq listing" -- diff -u <("$RELAYQ" mailq) "$T/out"
check "with the active message marked *" -- grep -q "^$i1\*" "$T/out"
env -u RELAYQ_CONFIG "$T/bin/postqueue" -c "$T" -j >"$T/out"
ok $? "postqueue -c CONFIG_DIR -j"
check "is mailq --json" -- test "$(wc -l <"$T/out")" -eq 6 -a "$(grep -c '"queue_name"' "$T/out")" -eq 6
before=$(next_attempt_of "$d2")
"$T/bin/postqueue" -i "$d1"
ok $? "postqueue -i QUEUE_ID"
wait_for 10 log_has 1 'flush: 1 message made due'
ok $? "one message made due"
check "that one" -- test "$(next_attempt_of "$d1")" -le "$(date +%s)"
check "not another" -- test "$(next_attempt_of "$d2")" = "$before"
"$T/bin/postqueue" -s b.example.org
ok $? "postqueue -s SITE"
wait_for 10 log_has 2 'flush: 1 message made due'
ok $? "the message for that site made due"
check "it is" -- test "$(next_attempt_of "$d2")" -le "$(date +%s)"
"$T/bin/postqueue" -f
ok $? "postqueue -f"
wait_for 10 log_has 3 'flush: 1 message made due'
ok $? "the last deferred message made due"
check "it is" -- test "$(next_attempt_of "$d3")" -le "$(date +%s)"
check "held mail is not flushed" -- test "$(next_attempt_of "$h1")" -gt "$(date +%s)" -o "$(next_attempt_of "$h1")" -eq 0
"$T/bin/postqueue" -p -f 2>"$T/err"
ok $(($? != 64)) "postqueue with two modes is a usage error"
check "that shows the usage" -- grep -q '^usage: postqueue ' "$T/err"

# --- queue names on the relayq commands ---

"$RELAYQ" delete --dry-run ALL deferred >"$T/out" 2>/dev/null
ok $? "delete --dry-run ALL deferred"
check "lists the three deferred messages" -- diff -u <(printf '%s\n' "$d1" "$d2" "$d3" | sort) <(sort "$T/out")
"$RELAYQ" delete ALL deferred 2>"$T/err"
ok $? "delete ALL deferred"
check "deletes three messages" -- grep -q 'Deleted: 3 messages$' "$T/err"
check "the held one stays" -- in_queue "$h1" hold
check "the active one stays" -- in_queue "$i1" active
check "the incoming one stays" -- in_queue "$i2" incoming
check "nothing else is left" -- test "$("$RELAYQ" mailq --json | wc -l)" -eq 3

"$RELAYQ" hold ALL incoming 2>"$T/err"
ok $? "hold ALL incoming"
check "holds one message" -- grep -q 'Placed on hold: 1 message$' "$T/err"
check "the incoming one" -- in_queue "$i2" hold
"$RELAYQ" release ALL deferred 2>"$T/err"
check "release ALL deferred finds no held mail there" -- grep -q 'Released from hold: 0 messages$' "$T/err"
"$RELAYQ" requeue --dry-run ALL active >"$T/out" 2>/dev/null
check "requeue --dry-run ALL active lists the active message" -- test "$(cat "$T/out")" = "$i1"
"$RELAYQ" release ALL hold 2>"$T/err"
ok $? "release ALL hold"
check "releases both held messages" -- grep -q 'Released from hold: 2 messages$' "$T/err"
check "the one tried before is deferred again" -- in_queue "$h1" deferred
check "the one never tried is incoming again" -- in_queue "$i2" incoming
"$RELAYQ" requeue ALL deferred 2>"$T/err"
ok $? "requeue ALL deferred"
check "requeues one message" -- grep -q 'Requeued: 1 message$' "$T/err"
check "which starts over in incoming" -- in_queue "$h1" incoming

"$RELAYQ" delete ALL bogus 2>"$T/err"
ok $(($? != 64)) "an unknown queue name is a usage error"
check "that lists the valid names" -- grep -q 'unknown queue name "bogus" (valid: active, deferred, hold, incoming)' "$T/err"
"$RELAYQ" hold "$i2" deferred "$h1" 2>/dev/null
ok $(($? != 64)) "a queue id after a queue name is a usage error"
check "and nothing changed" -- in_queue "$i2" incoming

# --- postsuper ---

"$T/bin/postsuper" -h ALL incoming 2>"$T/err"
ok $? "postsuper -h ALL incoming"
check "holds both incoming messages" -- grep -q 'Placed on hold: 2 messages$' "$T/err"
check "they are held" -- sh -c "[ \"\$(\"$RELAYQ\" mailq --json | grep -c '\"queue_name\": \"hold\"')\" -eq 2 ]"
"$T/bin/postsuper" -H ALL 2>"$T/err"
ok $? "postsuper -H ALL"
check "releases them" -- grep -q 'Released from hold: 2 messages$' "$T/err"
"$T/bin/postsuper" -h "$h1" -r "$i2" 2>"$T/err"
ok $? "postsuper -h ID -r ID in one call"
check "holds one" -- grep -q 'Placed on hold: 1 message$' "$T/err"
check "requeues the other" -- grep -q 'Requeued: 1 message$' "$T/err"
check "the held one is in hold" -- in_queue "$h1" hold
"$T/bin/postsuper" -d ALL hold 2>"$T/err"
ok $? "postsuper -d ALL hold"
check "deletes the held message only" -- grep -q 'Deleted: 1 message$' "$T/err"
check "it is gone" -- test -z "$(id_of h1@example.com)"
"$T/bin/postsuper" -d ALL bogus 2>"$T/err"
ok $(($? != 64)) "postsuper with an unknown queue name is a usage error"
check "that lists the valid names" -- grep -q 'valid: active, deferred, hold, incoming' "$T/err"
"$T/bin/postsuper" 2>"$T/err"
ok $(($? != 64)) "postsuper without an operation is a usage error"
check "active and incoming mail is still there" -- test "$("$RELAYQ" mailq --json | wc -l)" -eq 2
echo "$i2" | "$T/bin/postsuper" -d - incoming 2>"$T/err"
ok $? "postsuper -d - QUEUE_NAME (ids on standard input)"
check "deletes it" -- grep -q 'Deleted: 1 message$' "$T/err"
check "only the active message is left" -- test "$("$RELAYQ" mailq --json | wc -l)" -eq 1

sink_stop
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
