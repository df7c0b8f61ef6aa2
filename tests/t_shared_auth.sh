#!/bin/bash
# t_shared_auth - three instances send through one relay with one
# credential, shared through Redis; the password is wrong. The first
# instance's AUTH is rejected (535): it records the rejection in Redis, and
# the two instances started after it hold their mail for the relay with a
# reason that says so instead of logging in themselves, so the server sees
# one failed AUTH in the suspension interval (60 s, as smtpout's own), not
# three. No message is bounced.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# sink_auth_failures - failed AUTH exchanges the server saw
sink_auth_failures() {
    sink_count '^auth .* result=fail'
}

# auth_failed - whether the server rejected an AUTH
auth_failed() {
    [ "$(sink_auth_failures)" -ge 1 ]
}

# held_everywhere - whether instances 2 and 3 hold their 3 messages for the credential
held_everywhere() {
    local k
    for k in 2 3; do
        [ "$(RELAYQ_CONFIG=$T/i$k/relayq.conf "$RELAYQ" mailq | grep -c 'credential is suspended for every instance')" -ge 3 ] ||
            return 1
    done
}

rq_setup
trap instances_cleanup EXIT
redis_start
ok $? "redis-server started on 127.0.0.1:$REDIS_PORT"
secure_upstream
ok $? "test SMTP server requires STARTTLS and AUTH on 127.0.0.1:$SINK_PORT"
sasl_set "$SASL_USER" "not-the-password"
rq_set smtpout_workers 1
instances_setup 3
instances_fill 3 auth
ok $? "3 messages in each instance's maildrop"

RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" start
ok $? "instance 1 started"
wait_for 30 auth_failed
ok $? "the server rejected instance 1's AUTH"
wait_for 30 log_has 1 'relayq-i1/qmgr.*SASL authentication rejected by the relay .seen by relayq.test:.*/i1/queue.; the credential is suspended for every instance'
ok $? "instance 1 suspended the credential for every instance"

RELAYQ_CONFIG=$T/i2/relayq.conf "$RELAYQ" start && RELAYQ_CONFIG=$T/i3/relayq.conf "$RELAYQ" start
ok $? "instances 2 and 3 started"
wait_for 30 held_everywhere
ok $? "instances 2 and 3 hold their mail with the reason"
RELAYQ_CONFIG=$T/i2/relayq.conf "$RELAYQ" mailq | grep -m 1 'suspended for every instance' | sed 's/^/# /'
check "the server saw one failed AUTH, not three ($(sink_auth_failures))" -- test "$(sink_auth_failures)" -eq 1
check "no message bounced" -- test "$(log_count 'status=bounced')" -eq 0
check "the server received nothing" -- test "$(sink_messages)" -eq 0
on_instances stop
tap_end
