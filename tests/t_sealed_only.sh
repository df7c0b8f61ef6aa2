#!/bin/bash
# t_sealed_only - encryption at rest closes the door to clear messages once
# the last one queued before it leaves (doc/internals.md, "Encryption at
# rest"): three messages queued in the clear before the key file was set
# are still delivered; once none is left qmgr marks the queue sealed-only
# and says so; a clear message then added to data.mdb by someone without
# the key (tests/qstore_fill, relayq stopped) is logged, set aside, shown
# as such by mailq and never delivered, while sealed mail goes on.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

QSTORE_FILL=$top_builddir/tests/qstore_fill
rq_setup
sink_start
KEYS=$T/queue.keys

# fill_clear - COUNT clear messages with ids PREFIX..., written past relayq: fill_clear COUNT PREFIX
fill_clear() {
    # qstore_fill runs as root here: the queue is root's while it writes.
    [ "$(id -u)" -eq 0 ] && [ -d "$T/queue" ] && chown -R root "$T/queue"
    "$QSTORE_FILL" "$T/queue" -n "$1" --ids "$2" --map-size 256 || return 1
    [ "$(id -u)" -eq 0 ] && chown -R nobody "$T/queue"
    return 0
}
fill_clear 3 B0000
ok $? "three messages queued in the clear, before encryption"

"$RELAYQ" keygen >"$KEYS"
chmod 600 "$KEYS"
[ "$(id -u)" -eq 0 ] && chown nobody "$KEYS"
rq_set queue_encryption_key_file "$KEYS"
"$RELAYQ" start
ok $? "relayq start with a key file"
# sink_messages_at_least - the server accepted at least N messages: sink_messages_at_least N
sink_messages_at_least() { [ "$(sink_count '^message ')" -ge "$1" ]; }
wait_for 30 sink_messages_at_least 3
ok $? "the three clear messages are delivered"
wait_for 30 log_has 1 'qmgr\[[0-9]*\]: no clear message is left in the queue: it is sealed-only from now on'
ok $? "then qmgr marks the queue sealed-only and says so"
check "only once none was left: the mark comes after the third removal" -- awk '
    /: B0000[0-9A-Za-z]*: removed/ { removed++ }
    /sealed-only from now on/ { found = 1; after = removed == 3; exit }
    END { exit !(found && after) }' "$MAILLOG"
"$RELAYQ" stop
ok $? "relayq stop"

fill_clear 1 Z0000
ok $? "a clear message added to data.mdb by someone without the key"
"$RELAYQ" start
ok $? "relayq start"
printf 'Subject: sealed\nMessage-ID: <sealed-1@relayq.test>\n\nsealed\n' |
    "$RELAYQ" sendmail -f sealed@example.com rcpt@example.com
ok $? "a message through sendmail, sealed"
wait_for 30 log_has 1 ': Z0000[0-9A-Za-z]*: clear queue record in messages, in a queue sealed-only since [0-9T:-]*Z: set aside'
ok $? "the clear message is logged and set aside"
wait_for 30 sink_messages_at_least 4
ok $? "the sealed message is delivered"
check "the clear message is not" -- sh -c "[ \$(grep -c '^message ' '$SINK_LOG') -eq 4 ] && grep -q 'msgid=<sealed-1@relayq.test>' '$SINK_LOG'"
[ "$(grep -c '^message ' "$SINK_LOG")" -eq 4 ] || diag "$(grep '^message ' "$SINK_LOG")"
"$RELAYQ" mailq >"$T/mailq.out"
check "mailq shows it set aside, with the reason" -- \
    grep -q '^Z0000[0-9A-Za-z]*#.*set aside: .*clear queue record in messages, in a queue sealed-only since' "$T/mailq.out"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
