#!/bin/bash
# t_many_jobs - a message of more jobs than its workers may hold results
# for: with one worker, default_destination_recipient_limit = 1 and a
# message of 20 recipients (20 jobs, more than twice QMGR_UNCOMMITTED_MAX),
# the worker goes on from job to job until the message is done, and the
# messages queued after it are delivered too. The results of a message
# wait for a commit only once all its jobs are done (qmgr/message.c), so
# they never hold its worker back before then.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
rq_set smtpout_workers 1
rq_set default_destination_recipient_limit 1
maildrop_fill 1 wide 0 20
ok $? "one message of 20 recipients waiting in maildrop"
maildrop_fill 3 after
ok $? "three messages of one recipient after it"
"$RELAYQ" start
ok $? "relayq start"
wait_for 60 all_tried 23
check "the 20 recipients went out as 20 transactions" -- \
    test "$(sink_count 'msgid=<wide-1@relayq.test>')" -eq 20
check "the 3 messages after it arrived" -- \
    test "$(sink_count 'msgid=<after-[123]@relayq.test>')" -eq 3
wait_for 30 queue_empty
ok $? "the queue is empty"
check "nothing was deferred" -- test "$(log_count 'status=deferred')" -eq 0
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
