#!/bin/bash
# t_shared_auth - three instances send through one relay with one
# credential, shared through Redis; the password is wrong. The first
# instance's AUTH is rejected (535): it records the rejection in Redis, and
# the two instances started after it hold their mail for the relay with a
# reason that says so instead of logging in themselves, so the server sees
# one failed AUTH in the suspension interval (smtp_sasl_auth_failure_suspend,
# 60 s by default, as smtpout's own), not
# three. No message is bounced. Then the instances restart with
# smtp_sasl_auth_failure_suspend = 4s and retries every second or two (the
# suspension's key in Redis removed, the need of a probe left): the server
# sees failed AUTHs at least 4 s apart (3 s allowed for the test's polling),
# as one instance probes the credential after each suspension, never two.
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
ok $? "the instances stopped"

# A short suspension: one failed AUTH per interval.
# Retries and probes come quickly, so that only the suspension paces the logins.
for k in 1 2 3; do
    for p in "smtp_sasl_auth_failure_suspend 4s" "minimal_backoff_time 1s" \
        "maximal_backoff_time 2s" "queue_run_delay 1s" "destination_probe_interval 1s"; do
        CONF=$T/i$k/relayq.conf rq_set $p
    done
done
RELAYQ_CONFIG=$T/i1/relayq.conf "$RELAYQ" check >/dev/null
ok $? "relayq check takes smtp_sasl_auth_failure_suspend = 4s"
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --scan --pattern 'relayq:auth:*' |
    xargs -r redis-cli -h 127.0.0.1 -p "$REDIS_PORT" del >/dev/null
before=$(sink_auth_failures)
on_instances start
ok $? "three instances started again"
# Poll the failures and note when each one is first seen (ms).
times=()
seen=$before
deadline=$(($(date +%s) + 120))
while [ "$seen" -lt $((before + 3)) ] && [ "$(date +%s)" -lt "$deadline" ]; do
    now=$(sink_auth_failures)
    while [ "$seen" -lt "$now" ]; do
        times+=("$(date +%s%3N)")
        seen=$((seen + 1))
    done
    sleep 0.1
done
check "the server saw 3 more failed AUTHs ($((seen - before)))" -- test "$seen" -ge $((before + 3))
diag "failed AUTHs seen at (ms): ${times[*]}"
for ((i = 1; i < ${#times[@]}; i++)); do
    gap=$((times[i] - times[i - 1]))
    check "failed AUTH $((i + 1)) came $gap ms after the one before: at least one interval" -- \
        test "$gap" -ge 3000
done
check "no message bounced" -- test "$(log_count 'status=bounced')" -eq 0
on_instances stop
tap_end
