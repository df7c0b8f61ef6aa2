#!/bin/bash
# t_full_errors - a commit of pickup that fails with ENOSPC (a full file
# system) or MDB_TXN_FULL (a transaction too large) is "queue full", not
# an error: pickup keeps running, says why in one warning, backs off, and
# then takes the mail; nothing is lost and master never restarts pickup.
#
# The failure is injected once per round through the fault-injection
# build: RELAYQ_FAIL_AT=qstore-before-commit:2=ERROR fails the second
# commit of the first process that makes two, which is pickup's first
# batch (its first commit is the start-up tidy of picked entries, and
# qmgr commits nothing before pickup has queued mail). In a build without
# fault injection the test checks that the binaries carry no trace of the
# hook and skips the rest.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

M=100
ERRORS="ENOSPC MDB_TXN_FULL"

fault_build_or_skip "injected commit failures"

rq_setup
fault_marker fired
sink_start
ok $? "test SMTP server started"

# round_count - lines of this round's log matching an extended regexp: round_count REGEX
round_count() {
    round_log | grep -Ec -- "$1"
}

# tag_distinct - distinct Message-IDs of one round that arrived: tag_distinct TAG
tag_distinct() {
    grep -o "msgid=<$1-[0-9]*@relayq.test>" "$SINK_LOG" 2>/dev/null | sort -u | wc -l
}

# tag_arrived - whether every message of a round arrived: tag_arrived TAG
tag_arrived() {
    [ "$(tag_distinct "$1")" -ge "$M" ]
}

for err in $ERRORS; do
    from=1
    [ -f "$MAILLOG" ] && from=$(($(wc -l <"$MAILLOG") + 1))
    maildrop_fill "$M" "$err"
    ok $? "$err: $M messages waiting in maildrop"
    rm -f "$MARKER"
    RELAYQ_FAIL_AT=qstore-before-commit:2=$err RELAYQ_CRASH_MARKER=$MARKER "$RELAYQ" start >/dev/null
    ok $? "$err: relayq start with the failure armed"
    wait_for 60 sh -c "tail -n +$from '$MAILLOG' |
        grep -q 'pickup\[[0-9]*\]: fault injection: $err at qstore-before-commit (pass 2)'"
    ok $? "$err: pickup's first batch fails to commit with $err"
    wait_for 60 tag_arrived "$err"
    ok $? "$err: all $M messages arrived ($(tag_distinct "$err"))"
    wait_for 30 queue_empty
    ok $? "$err: the queue is empty"
    check "$err: maildrop is empty" -- test -z "$(ls "$T/queue/maildrop")"
    check "$err: pickup said why, once" -- \
        test "$(round_count "pickup\[[0-9]+\]: warning: queue is full: commit: .*\($err\)")" -eq 1 \
        -a "$(round_count 'queue is full')" -eq 1
    check "$err: pickup backed off, then resumed" -- \
        test "$(round_count 'pickup\[[0-9]+\]: queue has room again: resuming pickup')" -eq 1
    check "$err: master never restarted pickup (one pickup pid, no exit logged)" -- \
        test "$(round_log | grep -o 'pickup\[[0-9]*\]' | sort -u | wc -l)" -eq 1 \
        -a "$(round_count "process $T/libexec/pickup pid")" -eq 0
    check "$err: nothing delivered twice" -- \
        test "$(grep -c "msgid=<$err-[0-9]*@relayq.test>" "$SINK_LOG")" -eq "$M"
    "$RELAYQ" stop >/dev/null
    ok $? "$err: relayq stop"
done
tap_end
