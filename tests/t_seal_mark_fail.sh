#!/bin/bash
# t_seal_mark_fail - the sealed-only mark (doc/internals.md, "Encryption at
# rest") survives a failed commit: with encryption on and the last clear
# message delivered, qmgr's first commit of the mark fails (RELAYQ_FAIL_AT=
# qmgr-seal-commit=EIO, a fault-injection build); qmgr warns, keeps
# delivering, tries again and marks the queue, once. Then a clear message
# added behind relayq's back is set aside, as t_sealed_only shows without
# the failure.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

fault_build_or_skip "an injected failure of the sealed-only mark"
QSTORE_FILL=$top_builddir/tests/qstore_fill
rq_setup
sink_start
fault_marker seal
KEYS=$T/queue.keys
"$QSTORE_FILL" "$T/queue" -n 2 --ids C0000 --map-size 256
ok $? "two messages queued in the clear, before encryption"
[ "$(id -u)" -eq 0 ] && chown -R nobody "$T/queue"
"$RELAYQ" keygen >"$KEYS"
chmod 600 "$KEYS"
[ "$(id -u)" -eq 0 ] && chown nobody "$KEYS"
rq_set queue_encryption_key_file "$KEYS"
RELAYQ_FAIL_AT=qmgr-seal-commit=EIO RELAYQ_CRASH_MARKER=$MARKER "$RELAYQ" start
ok $? "relayq start with a key file and the mark's commit armed to fail"
wait_for 60 log_has 1 'qmgr\[[0-9]*\]: fault injection: EIO at qmgr-seal-commit'
ok $? "the first commit of the mark fails"
wait_for 60 log_has 1 'qmgr\[[0-9]*\]: warning: cannot mark the queue sealed-only: .*; trying again'
ok $? "qmgr warns that it will try again"
wait_for 60 log_has 1 'qmgr\[[0-9]*\]: no clear message is left in the queue: it is sealed-only from now on'
ok $? "then the queue is marked sealed-only"
inject 1 sealed && wait_for 30 sink_has 3
ok $? "sealed mail is delivered meanwhile"
check "the mark is logged once, after the warning" -- sh -c "
    [ \$(grep -c 'it is sealed-only from now on' '$MAILLOG') -eq 1 ] &&
    grep -n 'cannot mark the queue sealed-only\|it is sealed-only from now on' '$MAILLOG' |
        head -n 1 | grep -q 'cannot mark'"
"$RELAYQ" stop
ok $? "relayq stop"

[ "$(id -u)" -eq 0 ] && chown -R root "$T/queue"
"$QSTORE_FILL" "$T/queue" -n 1 --ids D0000 --map-size 256
ok $? "a clear message added while relayq is stopped"
[ "$(id -u)" -eq 0 ] && chown -R nobody "$T/queue"
"$RELAYQ" start
ok $? "relayq start"
wait_for 30 log_has 1 ': D0000[0-9A-Za-z]*: clear queue record in messages, in a queue sealed-only since .*: set aside'
ok $? "the clear message is refused: the mark was kept"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
