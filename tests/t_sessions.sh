#!/bin/bash
# t_sessions - several SMTP sessions in one smtpout process. With
# smtpout_workers = 2 and smtpout_sessions_per_worker = 8, master runs two
# smtpout processes, and qmgr gives jobs to their 16 sessions: 400 messages
# against a relay that answers every command 20 ms late go out over more
# connections than there are processes, never more than 16 at once, each
# message once; relayq stats counts the connections the relay sees, and a
# stop QUITs every one of them before both processes exit.
# A session whose job is in flight when qmgr dies introduces itself to
# the new qmgr only once the job is done: the new qmgr's jobs are not
# handed to a session that cannot take them, and every message arrives.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start --delay 20
rq_set smtpout_workers 2
rq_set smtpout_sessions_per_worker 8
N=400

# at_once_max - the most connections the relay held at once, from its log
at_once_max() {
    awk '/^connect / { n++; if (n > max) max = n } /^close / { n-- } END { print max + 0 }' \
        "$SINK_LOG"
}
# field - one figure of the destination from relayq stats --json
field() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["destinations"]
print([x for x in d if x["name"] == sys.argv[2]][0][sys.argv[3]])' "$T/stats.json" "127.0.0.1:$SINK_PORT" "$1"
}

fill_and_deliver $N sess
check "each message arrived once" -- sink_ids_once $N
check "two smtpout processes" -- test "$(pgrep -c -f "^$T/libexec/smtpout ")" -eq 2
conns=$(sink_connections)
most=$(at_once_max)
diag "$conns connections, at most $most at once"
check "more connections than processes: sessions share a process ($conns)" -- test "$conns" -gt 2
check "never more connections at once than sessions ($most <= 16)" -- test "$most" -le 16
check "no connection was refused or lost" -- test "$(sink_count '^close conn=.* reason=(error|eof)')" -eq 0
"$RELAYQ" stats --json >"$T/stats.json"
ok $? "relayq stats --json"
open=$(($(sink_connections) - $(sink_count '^close conn=')))
check "stats: opened = the relay's connections ($conns)" -- test "$(field opened)" -eq "$conns"
check "stats: open = the connections the relay holds ($open)" -- test "$(field open)" -eq "$open"
check "stats: $N messages delivered" -- test "$(field messages)" -eq $N

"$RELAYQ" stop
ok $? "relayq stop"
check "both smtpout processes ended" -- test "$(pgrep -c -f "^$T/libexec/smtpout ")" -eq 0
# quit_all - whether every connection the relay saw ended with QUIT
quit_all() {
    [ "$(sink_count '^close conn=.* reason=quit ')" -eq "$(sink_connections)" ]
}
wait_for 10 quit_all
ok $? "every connection ended with QUIT"

# --- qmgr dies while a session's job is in flight ---
sink_stop
: >"$SINK_LOG"
sink_start --stall DOT:10@1
rq_set smtpout_workers 1
rq_set smtpout_sessions_per_worker 1
"$RELAYQ" start
ok $? "relayq start: one process, one session"
inject 1 flight
wait_for 30 grep -q '^stall conn=.* cmd=DOT' "$SINK_LOG"
ok $? "the session waits for the reply to the final dot"
# new_qmgr - whether a qmgr other than the one killed runs
new_qmgr() {
    local pid
    pid=$(child_pid qmgr)
    [ -n "$pid" ] && [ "$pid" != "$qmgr" ]
}
qmgr=$(child_pid qmgr)
kill -9 "$qmgr"
wait_for 30 new_qmgr
ok $? "master started a new qmgr"
inject 2 after
wait_for 60 sink_has_distinct 3
ok $? "the message in flight and the two queued after arrived ($(sink_messages) messages)"
wait_for 30 queue_empty
ok $? "the queue is empty"
check "no job reached a session that was busy" -- test "$(log_count 'came while another job')" -eq 0
check "the session introduced itself after its job" -- \
    log_has 1 'qmgr is gone; result of job .* not reported'
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
