#!/bin/bash
# t_kill - kill -9 of qmgr, of pickup and of one smtpout during a
# 1000-message run: master restarts each, and every message still arrives.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"

N=1000
inject $N kill &
injector=$!

# kill_and_wait - kill -9 one daemon once some mail has moved, and wait for its successor
kill_and_wait() {
    local name=$1 after=$2 old new
    wait_for 60 sink_has "$after"
    old=$(child_pid "$name")
    kill -9 "$old"
    ok $? "kill -9 $name (pid $old) after $(sink_messages) deliveries"
    wait_for 20 sh -c "p=\$(pgrep -f '^$T/libexec/$name ' | grep -vx '$old' | head -n 1); test -n \"\$p\""
    ok $? "master restarted $name"
}

kill_and_wait qmgr 100
kill_and_wait pickup 300
kill_and_wait smtpout 500
wait "$injector"
ok $? "all $N messages accepted by relayq sendmail"

wait_for 120 sink_has_distinct $N
ok $? "every one of the $N messages arrived"
dups=$(($(sink_messages) - N))
diag "duplicates (in flight at a kill): $dups"
check "duplicates are bounded by what was in flight ($dups)" -- test "$dups" -le 40
wait_for 30 queue_empty
ok $? "the queue ends empty"
check "master logged the kills" -- test "$(grep -c 'killed by signal 9' "$MAILLOG")" -eq 3
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
