#!/bin/bash
# t_bulk - hold, release and delete ALL on a queue of 20,000 messages
# (tests/qstore_fill): each succeeds with the right count, and mailq and
# qshape agree afterwards; the ids come on request (--ids), every one of
# them; delivery goes on while an operation runs (fresh mail is delivered
# between its first batch and its last, and `relayq stats` is answered);
# a command that goes away cancels its operation, which stops with the
# count it had done; and (in a build with fault injection) a batch whose
# commit fails is tried again and the count is still right.
#
# Delivery during an operation is shown by counting, not timing: the hold
# ALL prints its ids into a pipe that the test does not read until the fresh
# message has been delivered. qmgr starts no batch while more than 128 KB
# of replies wait unread in the socket and its own buffer, and the pipe and
# the command hold less than 200 KB more, so the operation cannot end before
# the test lets the command read: 20,000 ids are about 440 KB.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

QSTORE_FILL=$top_builddir/tests/qstore_fill
N=20000

rq_setup
# A deferred message waits an hour: the relay that defers mail below sees
# each released message once.
rq_set minimal_backoff_time 3600
"$QSTORE_FILL" "$T/queue" -n $N --deferred -d example.com,example.net --map-size 256
ok $? "qstore_fill: $N deferred messages"
[ "$(id -u)" -eq 0 ] && chown -R nobody "$T/queue"
sink_start
"$RELAYQ" start
ok $? "relayq start"
# qmgr_answers - whether qmgr takes requests (master starts it after start returns)
qmgr_answers() { "$RELAYQ" stats >/dev/null 2>&1; }
wait_for 30 qmgr_answers
ok $? "qmgr answers"

# held_count, total_count - messages on hold, and all messages, as mailq lists them
held_count() { "$RELAYQ" mailq | grep -c '^[0-9A-Za-z]\{12\}!'; }
total_count() { "$RELAYQ" mailq --json | wc -l; }
# qshape_total - the message count qshape -s gives
qshape_total() { "$RELAYQ" qshape -s | awk '$1 == "TOTAL" { print $2 }'; }
# mailq_ids - every queue id mailq lists, sorted
mailq_ids() { "$RELAYQ" mailq --json | sed 's/.*"queue_id": "\([^"]*\)".*/\1/' | sort; }
# line_of - the maillog line number of the first (or with "last", last) match: line_of PATTERN [last]
line_of() {
    grep -n -- "$1" "$MAILLOG" | { if [ "${2:-}" = last ]; then tail -n 1; else head -n 1; fi; } | cut -d: -f1
}

# --- hold ALL, its ids held back in a pipe while fresh mail goes through ---
{
    "$RELAYQ" hold --ids ALL 2>"$T/hold.err"
    echo $? >"$T/hold.rc"
} | {
    wait_for 120 test -e "$T/go"
    cat >"$T/hold.ids"
} &
HOLD_PID=$!
wait_for 60 log_has 1 'hold: batch 1:'
ok $? "hold ALL commits its first batch"
printf 'Subject: fresh\n\nfresh mail\n' | "$RELAYQ" sendmail -f fresh@example.org fresh@example.org
wait_for 60 log_has 1 'to=<fresh@example.org>.*status=sent'
ok $? "fresh mail is delivered while hold ALL runs"
"$RELAYQ" stats >"$T/stats" 2>&1
ok $? "qmgr answers relayq stats while hold ALL runs"
check "hold ALL had not finished when the fresh mail was delivered" -- \
    sh -c "! grep -q 'hold: $N messages' '$MAILLOG'"
touch "$T/go"
wait "$HOLD_PID"
check "hold ALL exits 0" -- test "$(cat "$T/hold.rc")" = 0
check "it counts $N messages" -- grep -q "Placed on hold: $N messages$" "$T/hold.err"
first=$(line_of 'hold: batch 1:')
sent=$(line_of 'to=<fresh@example.org>.*status=sent')
last=$(line_of 'hold: batch [0-9]*:' last)
diag "hold batches: log lines $first..$last, the fresh delivery at line $sent"
check "the log has the fresh delivery between the first and the last batch" -- \
    test "$first" -lt "$sent" -a "$sent" -lt "$last"
check "--ids printed $N distinct ids" -- test "$(sort -u "$T/hold.ids" | wc -l)" -eq $N
mailq_ids >"$T/mailq.ids"
sort "$T/hold.ids" | cmp -s - "$T/mailq.ids"
ok $? "the ids printed are the ids mailq lists"
check "mailq shows $N held messages" -- test "$(held_count)" -eq $N
check "qshape counts $N messages" -- test "$(qshape_total)" = $N

# --- release ALL, cancelled when its command is killed ---
# From here the relay defers: released mail is tried once and stays.
sink_stop
sink_start --reply "MAIL:450 4.2.0 not now, for the test"
mkfifo "$T/fifo"
"$RELAYQ" release --ids ALL >"$T/fifo" 2>/dev/null &
REL_PID=$!
exec 3<"$T/fifo" # open, never read: the command blocks once the pipe is full
wait_for 60 log_has 1 'release: batch 1:'
ok $? "release ALL commits its first batch"
kill "$REL_PID"
wait "$REL_PID" 2>/dev/null
exec 3<&-
wait_for 30 log_has 1 'release: cancelled after [0-9]* messages: the command went away'
ok $? "the killed command's release is cancelled, and the log says so"
released=$(sed -n 's/.*release: cancelled after \([0-9]*\) messages.*/\1/p' "$MAILLOG")
diag "cancelled after $released of $N messages"
check "it had released some but not all" -- test "$released" -gt 0 -a "$released" -lt $N
check "the messages it did not reach are still held" -- test "$(held_count)" -eq $((N - released))

"$RELAYQ" release ALL 2>"$T/err"
ok $? "release ALL"
check "it counts the $((N - released)) still held" -- grep -q "Released from hold: $((N - released)) messages$" "$T/err"
check "mailq shows no held message" -- test "$(held_count)" -eq 0
check "and all $N messages" -- test "$(total_count)" -eq $N

# --- delete ALL ---
"$RELAYQ" delete ALL 2>"$T/err"
ok $? "delete ALL"
check "it counts $N messages" -- grep -q "Deleted: $N messages$" "$T/err"
wait_for 60 queue_empty
ok $? "mailq says the queue is empty"
check "qshape counts no message" -- test "$(qshape_total)" = 0
check "every message was logged as removed" -- test "$(log_count ': removed$')" -ge $N

# --- a batch whose commit fails is tried again ---
fault_build_or_skip "a failing batch commit"
"$RELAYQ" stop
ok $? "relayq stop"
# qstore_fill runs as root here: the queue is root's while it writes.
[ "$(id -u)" -eq 0 ] && chown -R root "$T/queue"
"$QSTORE_FILL" "$T/queue" -n 5000 --deferred --map-size 256
ok $? "qstore_fill: 5000 more messages"
[ "$(id -u)" -eq 0 ] && chown -R nobody "$T/queue"
fault_marker bulk
RELAYQ_FAIL_AT=qmgr-bulk-commit:2=EIO RELAYQ_CRASH_MARKER=$MARKER "$RELAYQ" start 2>"$T/err"
ok $? "relayq start, the second batch commit armed to fail with EIO"
diag "$(cat "$T/err")"
wait_for 30 qmgr_answers
ok $? "qmgr answers"
"$RELAYQ" hold ALL 2>"$T/err"
ok $? "hold ALL"
diag "$(cat "$T/err")"
check "the fault fired" -- log_has 1 'fault injection: EIO at qmgr-bulk-commit'
check "the log says the batch is tried again" -- log_has 1 'hold: batch 2 not recorded: .*trying again'
check "it counts 5000 messages" -- grep -q "Placed on hold: 5000 messages$" "$T/err"
check "mailq shows 5000 held messages" -- test "$(held_count)" -eq 5000
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
