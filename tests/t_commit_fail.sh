#!/bin/bash
# t_commit_fail - a commit of delivery results that fails once changes
# nothing in qmgr's memory: the retry writes the same change set, so every
# message ends with exactly one schedule entry, its attempt counted once,
# and its delay notice queued once (and counted once by relayq stats).
#
# M messages that arrived two hours ago (delay_warning_time is one hour)
# wait in a queue filled by tests/qstore_fill; the relay defers every
# recipient. qmgr's second commit of results is failed once through the
# fault-injection build (RELAYQ_FAIL_AT=qstore-before-commit:2=ERROR:
# pickup, which has no mail to take, makes one commit at start and qmgr
# is the only other writer). Round one fails it with EIO (the pass
# retries the whole group commit), round two with MDB_MAP_FULL (qmgr then
# records one message per transaction). After each round, with relayq
# stopped, tests/qstore_schedule compares the schedule with the envelopes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

M=20
QSTORE_FILL=$top_builddir/tests/qstore_fill
QSTORE_SCHEDULE=$top_builddir/tests/qstore_schedule

fault_build_or_skip "injected commit failures"

rq_setup
fault_marker fired
sink_start --reply "RCPT:450 4.2.0 mailbox unavailable"
ok $? "test SMTP server started: it defers every recipient"
rq_set delay_warning_time 1h
# No second attempt during the test.
rq_set minimal_backoff_time 1h
rq_set maximal_backoff_time 2h
# Two transactions a connection: never the three deferred in a row that
# make smtpout close it and qmgr slow the relay (t_deferrals).
rq_set smtp_connection_reuse_count_limit 2

# originals_line - qstore_schedule's lines of the round's original messages
originals_line() {
    grep -v '^bad: \|^messages=' "$T/schedule" | grep -c "attempts=$1 "
}

# only_delay_notices - relayq stats counts no failure and no success notice
only_delay_notices() { notices_is failure 0 && notices_is success 0; }

round=0
for err in EIO MDB_MAP_FULL; do
    round=$((round + 1))
    from=1
    [ -f "$MAILLOG" ] && from=$(($(wc -l <"$MAILLOG") + 1))
    rm -rf "$T/queue"
    "$QSTORE_FILL" "$T/queue" -n $M --arrival $(($(date +%s) - 7200)) -a 60 --map-size 256 \
        --ids "R${round}000" >/dev/null
    ok $? "$err: $M messages in the queue, two hours old"
    [ "$(id -u)" -eq 0 ] && chown -R nobody "$T/queue"
    rm -f "$MARKER"
    RELAYQ_FAIL_AT=qstore-before-commit:2=$err RELAYQ_CRASH_MARKER=$MARKER "$RELAYQ" start >/dev/null
    ok $? "$err: relayq start with the failure armed"
    wait_for 60 sh -c "tail -n +$from '$MAILLOG' |
        grep -q 'qmgr\[[0-9]*\]: fault injection: $err at qstore-before-commit (pass 2)'"
    ok $? "$err: a commit of qmgr's delivery results fails with $err"
    wait_for 60 sh -c "test \$(tail -n +$from '$MAILLOG' | grep -c 'sender delay notification') -ge $M"
    ok $? "$err: a delay notice for each message"
    # The notices are deferred too: then every message has had its attempt.
    wait_for 60 sh -c "test \$(tail -n +$from '$MAILLOG' | grep -c 'status=deferred') -ge $((2 * M))"
    ok $? "$err: all $M messages and their $M notices were tried and deferred"
    check "$err: qmgr recorded the results after the failure" -- \
        test "$(round_log | grep -c 'qmgr\[[0-9]*\]: warning: cannot record delivery results')" -eq 1
    check "$err: relayq stats counts the $M delay notices once, after the commit" -- \
        notices_is delay $M
    check "$err: and no failure or success notice" -- only_delay_notices
    "$RELAYQ" stop >/dev/null
    ok $? "$err: relayq stop"
    "$QSTORE_SCHEDULE" "$T/queue/db" >"$T/schedule"
    ok $? "$err: every message has exactly the one schedule entry its envelope names"
    grep '^bad: ' "$T/schedule" | sed 's/^/# /'
    check "$err: $((2 * M)) messages in the queue (originals and notices)" -- \
        grep -qx "messages=$((2 * M)) entries=$((2 * M)) bad=0" "$T/schedule"
    check "$err: each message has its attempt counted once" -- \
        test "$(originals_line 1)" -eq $((2 * M))
    check "$err: exactly one delay notice per message" -- \
        test "$(round_log | grep -c 'sender delay notification')" -eq $M
    check "$err: no message is due before the backoff" -- \
        awk -v now="$(date +%s)" '/ next=/ { split($2, n, "="); if (n[2] < now + 3000) exit 1 }' \
        "$T/schedule"
done
tap_end
