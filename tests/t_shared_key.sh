#!/bin/bash
# t_shared_key - shared limits are an account's: two instances send through
# one relay, each with its own SMTP AUTH user, and share "rate=50" through
# Redis. Shown here, from the keys in Redis (what an operator looks at):
#  - each account has its own rate key, "relayq:rate:HOST:PORT/USER"; a
#    user name outside the characters of shared_key= (here one with a
#    space) is named by the hex of its BLAKE2b-128 hash;
#  - after "relayq reload" puts the same credential on both, both send
#    under one key;
#  - shared_key= in destination_policy_maps overrides the default key.
# Instance 2 names the Redis server "localhost": its rate key shows that
# it found the server by that name. All the mail arrives each time.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# rate_keys - the rate keys in Redis, sorted, on one line
rate_keys() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --scan --pattern 'relayq:rate:*' | sort | tr '\n' ' '
}

# forget_rate_keys - remove the rate keys, so that the next ones show who sends
forget_rate_keys() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --scan --pattern 'relayq:rate:*' |
        xargs -r redis-cli -h 127.0.0.1 -p "$REDIS_PORT" del >/dev/null
}

# send_each - one message from each instance, with a tag: send_each TAG
send_each() {
    local k
    for k in 1 2; do
        printf 'Subject: %s\nMessage-ID: <%s-i%s@relayq.test>\n\nhi\n' "$1" "$1" "$k" |
            RELAYQ_CONFIG=$T/i$k/relayq.conf "$RELAYQ" sendmail -f "$1@example.org" "$1@example.com" ||
            return 1
    done
}

# sasl_file - a credentials file for the test's relay, as sasl_set writes one: sasl_file PATH USER SECRET
sasl_file() {
    (umask 077 && printf '[127.0.0.1]:%s %s:%s\n' "$SINK_PORT" "$2" "$3" >"$1") || return 1
    if [ "$(id -u)" -eq 0 ]; then chown nobody "$1" || return 1; fi
}

rq_setup
trap instances_cleanup EXIT
redis_start
ok $? "redis-server started on 127.0.0.1:$REDIS_PORT"
tls_setup
other_user="bob smith"
printf '%s:%s\n' "$other_user" "b0b-secret" >>"$T/sink/users"
sink_start "${SINK_TLS_ARGS[@]}"
ok $? "test SMTP server requires STARTTLS and AUTH (two users) on 127.0.0.1:$SINK_PORT"
rq_set smtp_tls_security_level encrypt
rq_set smtp_tls_CAfile "$TLS_DIR/ca.pem"
sasl_set "$SASL_USER" "$SASL_PASS"
printf '[127.0.0.1]:%s rate=50\n' "$SINK_PORT" >"$T/policy"
rq_set destination_policy_maps "$T/policy"
instances_setup 2
sasl_file "$T/sasl_other" "$other_user" "b0b-secret"
CONF=$T/i2/relayq.conf rq_set smtp_sasl_password_maps "$T/sasl_other"
# Instance 2 names the server: its qmgr looks the name up off its loop.
CONF=$T/i2/relayq.conf rq_set shared_limits_server "redis://localhost:$REDIS_PORT/0"
on_instances start
ok $? "two instances started, with different users (instance 2 names Redis as localhost)"

send_each accounts
wait_for 30 sink_has 2
ok $? "both messages arrive"
hashed=$(python3 -c 'import hashlib, sys; print(hashlib.blake2b(sys.argv[1].encode(), digest_size=16).hexdigest())' "$other_user")
want=$(printf 'relayq:rate:127.0.0.1:%s/%s\n' "$SINK_PORT" "$SASL_USER" "$SINK_PORT" "$hashed" | sort | tr '\n' ' ')
[ "$(rate_keys)" = "$want" ]
ok $? "one rate key per account, the odd user name hashed ($(rate_keys))"

# The same credential on both: one key.
forget_rate_keys
CONF=$T/i2/relayq.conf rq_set smtp_sasl_password_maps "$SASL_MAP"
RELAYQ_CONFIG=$T/i2/relayq.conf "$RELAYQ" reload &&
    wait_for 10 log_has 1 "relayq-i2/qmgr\[[0-9]*\]: reload -- "
ok $? "instance 2's qmgr reloaded with instance 1's credential"
send_each same
wait_for 30 sink_has 4
ok $? "both messages arrive"
[ "$(rate_keys)" = "relayq:rate:127.0.0.1:$SINK_PORT/$SASL_USER " ]
ok $? "both send under the one account's key ($(rate_keys))"

# shared_key= names the limits whatever the credential.
forget_rate_keys
printf '[127.0.0.1]:%s rate=50 shared_key=pool\n' "$SINK_PORT" >"$T/policy"
on_instances reload && wait_for 10 log_has 3 "relayq-i[12]/qmgr\[[0-9]*\]: reload -- "
ok $? "both qmgrs reloaded with shared_key=pool"
send_each pooled
wait_for 30 sink_has 6
ok $? "both messages arrive"
[ "$(rate_keys)" = "relayq:rate:pool " ]
ok $? "shared_key= is the key ($(rate_keys))"
check "no message deferred or bounced" -- test "$(log_count 'status=\(deferred\|bounced\)')" -eq 0
on_instances stop
ok $? "the instances stopped"
tap_end
