#!/bin/bash
# t_reload_log - "relayq reload" moves every process's log to the file that
# maillog_file names now: after the file was renamed away (rotation without
# copytruncate), and after maillog_file or syslog_name changed. A message
# delivered after each reload has its pickup, qmgr and smtpout lines in the
# new file, tagged with the new syslog_name, and none in the old one.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
# The daemons create the new file themselves: its directory is theirs
# (a real installation's logrotate "create" does that for /var/log).
mkdir "$T/log"
[ "$(id -u)" -eq 0 ] && chown nobody "$T/log"
MAILLOG=$T/log/maillog
rq_set maillog_file "$MAILLOG"
rq_set smtpout_workers 2
sink_start
ok $? "test SMTP server listens on 127.0.0.1:$SINK_PORT"
"$RELAYQ" start
ok $? "relayq start"

# send - one message to a recipient: send LOCALPART
send() {
    printf 'Subject: %s\n\n%s\n' "$1" "$1" |
        "$RELAYQ" sendmail -f sender@example.com "$1@example.com"
}

# sent_in - the queue id of a message delivered to LOCALPART as FILE logs
# it, with NAME as the log tag: sent_in FILE NAME LOCALPART
sent_in() {
    sed -n "s|.* $2/smtpout\[[0-9]*\]: \([0-9A-Za-z]*\): to=<$3@example.com>, .* status=sent .*|\1|p" \
        "$1" 2>/dev/null | head -n 1
}

# delivered_in - whether FILE logs the delivery to LOCALPART with the tag
# NAME: delivered_in FILE NAME LOCALPART
delivered_in() {
    test -n "$(sent_in "$@")"
}

# reloaded_in - whether master and each daemon logged its reload in FILE
# with the tag NAME: reloaded_in FILE NAME
reloaded_in() {
    grep -q " $2/master\[[0-9]*\]: reload -- " "$1" 2>/dev/null &&
        grep -q " $2/qmgr\[[0-9]*\]: reload -- " "$1" &&
        grep -q " $2/pickup\[[0-9]*\]: reload -- " "$1" &&
        [ "$(grep -c " $2/smtpout\[[0-9]*\]: reload -- " "$1")" -ge 2 ]
}

# whole_path_in - whether FILE has the pickup, qmgr and smtpout lines of
# the message QID, tagged NAME: whole_path_in FILE NAME QID
whole_path_in() {
    grep -q " $2/pickup\[[0-9]*\]: $3: uid=[0-9]* from=<sender@example.com>" "$1" &&
        grep -q " $2/qmgr\[[0-9]*\]: $3: from=<sender@example.com>, size=" "$1" &&
        grep -q " $2/qmgr\[[0-9]*\]: $3: removed" "$1"
}

# stderr_of - the file a process's standard error is open on: stderr_of PID
stderr_of() {
    readlink "/proc/$1/fd/2"
}

send before
ok $? "a message is queued"
wait_for 30 delivered_in "$MAILLOG" relayq before
ok $? "its delivery is logged as relayq/smtpout"

# Rotation: the file renamed away, then reload.
mv "$MAILLOG" "$MAILLOG.1"
"$RELAYQ" reload
ok $? "relayq reload after the log file was renamed"
wait_for 20 reloaded_in "$MAILLOG" relayq
ok $? "master, qmgr, pickup and both smtpout log their reload in a new file at the configured name"
send rotated
wait_for 30 delivered_in "$MAILLOG" relayq rotated
ok $? "a message sent after the reload: its delivery is in the new file"
qid=$(sent_in "$MAILLOG" relayq rotated)
check "... with its pickup and qmgr lines" -- whole_path_in "$MAILLOG" relayq "$qid"
check "... and none of its lines in the renamed file" -- \
    test -n "$qid" -a "$(grep -c "$qid" "$MAILLOG.1")" -eq 0
check "the renamed file keeps what was logged before" -- delivered_in "$MAILLOG.1" relayq before
check "master's standard error (its children's stray output) follows to the new file" -- \
    test "$(stderr_of "$(master_pid)")" = "$MAILLOG"
check "so does a daemon's" -- test "$(stderr_of "$(child_pid qmgr)")" = "$MAILLOG"

# A new maillog_file and a new syslog_name.
OLDLOG=$MAILLOG
MAILLOG=$T/log/maillog.new
rq_set maillog_file "$MAILLOG"
rq_set syslog_name relayq-eu
"$RELAYQ" reload
ok $? "relayq reload with a new maillog_file and syslog_name = relayq-eu"
wait_for 20 reloaded_in "$MAILLOG" relayq-eu
ok $? "master and every daemon log their reload to the new path as relayq-eu/NAME"
send renamed
wait_for 30 delivered_in "$MAILLOG" relayq-eu renamed
ok $? "a message sent after the reload: its delivery is logged there as relayq-eu/smtpout"
qid=$(sent_in "$MAILLOG" relayq-eu renamed)
check "... with its relayq-eu/pickup and relayq-eu/qmgr lines" -- whole_path_in "$MAILLOG" relayq-eu "$qid"
check "... and none of its lines in the old file" -- \
    test -n "$qid" -a "$(grep -c "$qid" "$OLDLOG")" -eq 0
check "no line of the new file has the old tag" -- test "$(grep -c ' relayq/' "$MAILLOG")" -eq 0

"$RELAYQ" stop
ok $? "relayq stop"
check "the stop is logged in the new file" -- grep -q ' relayq-eu/master\[[0-9]*\]: terminating on signal 15' "$MAILLOG"
tap_end
