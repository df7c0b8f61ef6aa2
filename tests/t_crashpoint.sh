#!/bin/bash
# t_crashpoint - kill -9 at each named crash point (RELAYQ_CRASH_AT, only in
# a build configured with --enable-fault-injection) and prove that nothing
# is lost, and nothing is sent twice unless the upstream had already
# accepted the message when the crash erased the record of it.
#
# For each point: mail is put into maildrop/, relayq is started with the
# point armed, the process dies there (its "fault injection: crash at"
# line), master restarts it, and then every message has arrived, the
# queue is empty, no picked entry is left over and the LMDB environment
# reads back whole. Duplicates allowed:
#   pickup-mid-txn, pickup-after-commit: none. The transaction holds the
#     file's message and its picked entry together, and the file goes only
#     after the commit: an aborted transaction leaves the file, a committed
#     one the picked entry that says "already queued".
#   smtpout-after-250: at most 1. The upstream has the message, and qmgr
#     never hears of it: the worker's job is retried.
#   qmgr-after-result, qmgr-mid-txn (and qstore-before-commit when qmgr is
#     the process that dies there): at most 8 x smtpout_workers. A worker
#     goes on with its next job while the results it reported wait for
#     their commit, up to QMGR_UNCOMMITTED_MAX (8) of them (qmgr/qmgr.h),
#     so each worker has at most eight deliveries that qmgr has not
#     recorded: results received but not committed when qmgr died, and the
#     job in flight, which ends with nobody to tell. Each duplicate must be a
#     message whose removal qmgr had not logged before the crash: a
#     delivery that qmgr had recorded is never redone.
#
# In a build without fault injection the test checks that the binaries
# carry no trace of the hook and skips the rest.
#
# The suite runs one round per point with 200 messages; the long mode
# runs more rounds with more mail and a random pass count for each:
#   CRASH_ROUNDS=5 CRASH_MESSAGES=2000 tests/t_crashpoint.sh
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

ROUNDS=${CRASH_ROUNDS:-1}
M=${CRASH_MESSAGES:-200}
WORKERS=4
POINTS="pickup-mid-txn pickup-after-commit smtpout-after-250 qmgr-after-result qmgr-mid-txn
qstore-before-commit"

fault_build_or_skip "crash points"

rq_setup
rq_set smtpout_workers $WORKERS
fault_marker crashed
sink_start
ok $? "test SMTP server started"

# pass_count - the pass at which a point fires, within what one round
# surely reaches: the middle of that range in the suite, anywhere in it in
# the long mode: pass_count POINT
pass_count() {
    local most
    case $1 in
    pickup-*) most=$((M / 2)) ;;
    smtpout-after-250) most=$((M / (2 * WORKERS))) ;;
    qmgr-* | qstore-*) most=$((M / (4 * WORKERS))) ;;
    esac
    if [ -z "${CRASH_ROUNDS:-}" ]; then
        echo $(((most + 1) / 2))
    else
        echo $((1 + RANDOM % most))
    fi
}

# tag_ids - the Message-IDs of one round's mail that the server received,
# one line per delivery: tag_ids TAG
tag_ids() {
    grep -o "msgid=<$1-[0-9]*@relayq.test>" "$SINK_LOG" 2>/dev/null
}

# tag_arrived - whether every message of a round arrived: tag_arrived TAG
tag_arrived() {
    [ "$(tag_ids "$1" | sort -u | wc -l)" -ge "$M" ]
}

# db_entries - entries of one of the queue's databases: db_entries NAME
db_entries() {
    mdb_stat -s "$1" "$T/queue/db" 2>/dev/null | sed -n 's/.*Entries: //p'
}

# no_picked_left - whether pickup has forgotten every file it took
no_picked_left() {
    [ "$(db_entries picked)" = 0 ]
}

# restarted - whether the crashed process is gone and master runs as many
# of its program as before: restarted PROG PID
restarted() {
    local want=1
    [ "$1" = smtpout ] && want=$WORKERS
    ! kill -0 "$2" 2>/dev/null && [ "$(pgrep -f "^$T/libexec/$1 " | grep -cvx "$2")" -eq "$want" ]
}

# crash_logged - whether this round's crash line is in the maillog: crash_logged POINT PASS
crash_logged() {
    round_log | grep -q "fault injection: crash at $1 (pass $2)"
}

# db_whole - whether every database of the queue reads back (mdb_stat walks
# the B-trees, mdb_dump reads every record) and holds no message
db_whole() {
    mdb_stat -a "$T/queue/db" >/dev/null && mdb_dump -a "$T/queue/db" >/dev/null &&
        [ "$(db_entries messages)" = 0 ]
}

# recorded_dups - duplicated messages whose delivery qmgr had recorded
# ("QID: removed") before the crash line of the round's log: recorded_dups TAG LOG
recorded_dups() {
    local tag=$1 log=$2 crash n rcpt qid
    crash=$(grep -n 'fault injection: crash at' "$log" | head -n 1 | cut -d: -f1)
    n=0
    for rcpt in $(grep "msgid=<$tag-" "$SINK_LOG" | sed 's/.* rcpts=<\([^>]*\)>.* msgid=\(<[^>]*>\).*/\1 \2/' |
        sort | uniq -d | cut -d' ' -f1); do
        for qid in $(grep -o "]: [0-9A-Z]*: to=<$rcpt>," "$log" | cut -d' ' -f2 | tr -d : | sort -u); do
            if head -n "$crash" "$log" | grep -q "]: $qid: removed\$"; then
                diag "$tag: $qid (to $rcpt) delivered again after qmgr recorded it"
                n=$((n + 1))
            fi
        done
    done
    echo "$n"
}

total_msgs=0 total_crashes=0 total_dups=0 total_lost=0
for round in $(seq 1 "$ROUNDS"); do
    for point in $POINTS; do
        tag=$point-r$round
        at=$(pass_count "$point")
        from=1
        [ -f "$MAILLOG" ] && from=$(($(wc -l <"$MAILLOG") + 1))
        maildrop_fill "$M" "$tag"
        rm -f "$MARKER"
        RELAYQ_CRASH_AT=$point:$at RELAYQ_CRASH_MARKER=$MARKER "$RELAYQ" start >/dev/null
        wait_for 60 crash_logged "$point" "$at"
        crashed=$?
        victim=none
        [ -f "$MARKER" ] && read -r _ victim <"$MARKER"
        wait_for 10 sh -c "tail -n +$from '$MAILLOG' | grep -q ' pid $victim killed by signal 9'"
        prog=$(round_log | sed -n "s|.*process $T/libexec/\([a-z]*\) pid $victim killed by signal 9.*|\1|p" |
            head -n 1)
        if [ "$crashed" -eq 0 ] && [ -n "$prog" ]; then
            total_crashes=$((total_crashes + 1))
            wait_for 30 restarted "$prog" "$victim"
            restart=$?
        else
            restart=1
        fi
        wait_for 120 tag_arrived "$tag"
        wait_for 30 queue_empty
        empty=$?
        wait_for 30 no_picked_left
        picked=$?
        "$RELAYQ" stop >/dev/null
        stopped=$?
        round_log >"$T/round.log"

        got=$(tag_ids "$tag" | wc -l)
        distinct=$(tag_ids "$tag" | sort -u | wc -l)
        dups=$((got - distinct))
        lost=$((M - distinct))
        total_msgs=$((total_msgs + M))
        total_dups=$((total_dups + dups))
        total_lost=$((total_lost + lost))
        case $point:$prog in
        pickup-*:* | qstore-before-commit:pickup) allowed=0 why="pickup never sends" ;;
        smtpout-after-250:*) allowed=1 why="the one message the upstream took" ;;
        *) allowed=$((8 * WORKERS)) why="eight unrecorded deliveries per worker" ;;
        esac
        what="$point:$at ($prog)"
        ok $((crashed || restart)) "$what: crashed there and master restarted it"
        ok $((lost != 0)) "$what: all $M messages arrived ($lost lost)"
        ok $((dups > allowed)) "$what: $dups duplicates, at most $allowed ($why)"
        if [ "$allowed" -gt 1 ]; then
            check "$what: no message delivered again after qmgr recorded it" -- \
                test "$(recorded_dups "$tag" "$T/round.log")" -eq 0
        fi
        ok $((empty || picked || stopped)) "$what: queue empty, no picked entry left, relayq stopped"
        check "$what: the LMDB environment reads back whole" -- db_whole
    done
done
diag "messages: $total_msgs, crashes: $total_crashes, duplicates: $total_dups, lost: $total_lost"
tap_end
