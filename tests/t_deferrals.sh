#!/bin/bash
# t_deferrals - a relay that defers every transaction without saying
# "slow down" (450 to each RCPT TO): after 3 such transactions in a row
# smtpout closes the connection (reason "deferrals" in relayq stats) and
# opens a new one for the next job, and qmgr slows the destination down.
# One worker carries 6 messages: 2 connections, each closed after 3.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

M=6
rq_setup
sink_start --reply "RCPT:450 4.2.0 mailbox unavailable"
ok $? "test SMTP server started: it defers every recipient"
rq_set smtpout_workers 1
rq_set minimal_backoff_time 1h
rq_set maximal_backoff_time 2h
maildrop_fill $M defer
ok $? "$M messages waiting in maildrop"
"$RELAYQ" start
ok $? "relayq start"
wait_for 60 log_has $M 'status=deferred'
ok $? "all $M messages were tried and deferred"
wait_for 30 log_has 2 'transactions in a row deferred: closing it'
ok $? "smtpout closed its connection after 3 deferred transactions, twice"
check "the relay saw 2 connections for $M messages" -- test "$(sink_connections)" -eq 2
check "qmgr slowed the destination down" -- log_has 1 'relay asks to slow down: rate now'
"$RELAYQ" stats --json >"$T/stats.json"
check "relayq stats counts the closes as deferrals" -- \
    grep -q '"closed_deferrals": 2' "$T/stats.json"
check "no message bounced" -- sh -c "! grep -q 'status=bounced' '$MAILLOG'"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
