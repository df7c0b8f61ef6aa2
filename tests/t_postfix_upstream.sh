#!/bin/bash
# t_postfix_upstream - relayq against Postfix's own smtpd (Debian's postfix
# package), which offers CHUNKING and PIPELINING, with STARTTLS and SMTP
# AUTH required (Cyrus SASL, a sasldb in the test's directory). relayq
# verifies the server's certificate against the test CA and authenticates;
# 1,000 messages arrive at Postfix exactly once each (its cleanup logs
# every Message-ID once), each one from an authenticated client, and all
# of them over BDAT: the bdat= counts of smtpd's disconnect lines total
# 1,000 and no session used DATA. Postfix runs as a private instance
# (`postfix -c DIR`): its own configuration, queue, data directory and
# log file in the test's directory, smtpd on a free port of 127.0.0.1,
# every message discarded once queued. The test stops it in its cleanup.
# Postfix needs root to start; a missing postfix or saslpasswd2 is a
# failure, not a skip: scripts/deps.sh installs postfix and sasl2-bin.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root to start a Postfix instance"
    exit 0
fi
if ! command -v postfix >/dev/null || ! command -v saslpasswd2 >/dev/null; then
    ok 1 "postfix and saslpasswd2 are installed (Debian packages postfix and sasl2-bin; scripts/deps.sh installs them)"
    tap_end
    exit
fi

N=1000

# pf_stop - stop the Postfix instance and whatever of it is left, by pid
pf_stop() {
    [ -n "${PF:-}" ] && [ -f "$PF/conf/main.cf" ] || return 0
    postfix -c "$PF/conf" stop >/dev/null 2>&1
    local pid
    pid=$(awk '{ print $1; exit }' "$PF/queue/pid/master.pid" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        pkill -9 -P "$pid" 2>/dev/null
        kill -9 "$pid" 2>/dev/null
    fi
}

# pf_cleanup - the test's EXIT trap: Postfix first, then relayq and files
pf_cleanup() {
    pf_stop
    rq_cleanup
}

# pf_master_gone - whether no process PID is left, or only a zombie
# (postfix start detached the master: it is not this shell's child):
# pf_master_gone PID
pf_master_gone() {
    [ -n "$1" ] || return 1
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null)
    [ -z "$state" ] || [ "${state#Z}" != "$state" ]
}

# pf_log_count - lines of Postfix's log matching an extended regexp
pf_log_count() {
    local n
    n=$(grep -Ec -- "$1" "$PF/maillog" 2>/dev/null)
    echo "${n:-0}"
}

# pf_queued - whether Postfix's cleanup logged at least N Message-IDs: pf_queued N
pf_queued() {
    [ "$(pf_log_count 'postfix-rq/cleanup\[[0-9]+\]: [0-9A-F]+: message-id=')" -ge "$1" ]
}

# pf_bdat_total - the sum of bdat=N over smtpd's disconnect lines
pf_bdat_total() {
    grep -E 'postfix-rq/smtpd\[[0-9]+\]: disconnect from ' "$PF/maillog" 2>/dev/null |
        sed -n 's/.* bdat=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}

# pf_ids_once - whether cleanup logged exactly the Message-IDs given to
# relayq, each once: pf_ids_once N TAG
pf_ids_once() {
    sed -n 's/.*postfix-rq\/cleanup\[[0-9]*\]: [0-9A-F]*: message-id=<\([^>]*\)>.*/\1/p' \
        "$PF/maillog" | sort >"$T/pf_ids"
    seq 1 "$1" | sed "s/.*/$2-&@relayq.test/" | sort >"$T/want_ids"
    cmp -s "$T/pf_ids" "$T/want_ids"
}

rq_setup
trap pf_cleanup EXIT
tls_setup
ok $? "test CA and server certificate"

# The private Postfix instance.
PF=$T/pf
PF_PORT=$(free_port)
mkdir -p "$PF/conf/sasl" "$PF/queue" "$PF/data"
chown postfix "$PF/data"
# Cyrus SASL: smtpd reads smtpd.conf, which points at the sasldb, from
# cyrus_sasl_config_path; Debian's Postfix looks in $config_directory/sasl
# whatever that parameter says, so both name the same directory.
SASL_REALM=${SASL_USER#*@}
printf '%s' "$SASL_PASS" |
    saslpasswd2 -p -c -f "$PF/conf/sasl/sasldb2" -u "$SASL_REALM" "${SASL_USER%@*}"
ok $? "sasldb with $SASL_USER"
# smtpd reads it as postfix; postfix check wants root to own it.
chgrp postfix "$PF/conf/sasl/sasldb2"
chmod 0640 "$PF/conf/sasl/sasldb2"
cat >"$PF/conf/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $PF/conf/sasl/sasldb2
mech_list: PLAIN LOGIN
EOF
cat >"$PF/conf/main.cf" <<EOF
# A private Postfix instance of t_postfix_upstream: accepts mail on
# 127.0.0.1:$PF_PORT only from TLS clients that authenticated, discards it.
compatibility_level = 3.6
config_directory = $PF/conf
queue_directory = $PF/queue
data_directory = $PF/data
syslog_name = postfix-rq
maillog_file = $PF/maillog
maillog_file_prefixes = $T
myhostname = postfix.test
mydomain = postfix.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
default_transport = discard
relay_transport = discard
local_transport = discard
biff = no
in_flow_delay = 0
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_cert_file = $TLS_DIR/server.pem
smtpd_tls_key_file = $TLS_DIR/server-key.pem
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $PF/conf/sasl
smtpd_sasl_local_domain =
smtpd_client_restrictions = permit_sasl_authenticated, reject
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
EOF
cat >"$PF/conf/master.cf" <<EOF
# No chroot: the services read the test's directory (TLS files, sasldb).
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
postfix -c "$PF/conf" start >"$PF/start.out" 2>&1
ok $? "postfix -c DIR start (a private instance)"
grep -v '^postfix-rq/postfix-script' "$PF/start.out" | sed 's/^/# /'
wait_for 15 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$PF_PORT"
ok $? "Postfix's smtpd listens on 127.0.0.1:$PF_PORT"
SINK_PORT=$PF_PORT

# Postfix's smtpd offers what the test is about, and refuses mail from a
# client that did not authenticate.
ehlo=$(python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO client.test\r\n")
while True:
    line = f.readline().decode()
    print(line.rstrip())
    if line[3:4] != "-":
        break
s.sendall(b"QUIT\r\n")' "$PF_PORT")
check "smtpd offers CHUNKING" -- grep -q '^250-CHUNKING\|^250 CHUNKING' <<<"$ehlo"
check "smtpd offers PIPELINING" -- grep -q '^250-PIPELINING' <<<"$ehlo"
check "smtpd offers STARTTLS" -- grep -q '^250-STARTTLS' <<<"$ehlo"
check "smtpd offers no AUTH before TLS (smtpd_tls_auth_only)" -- bash -c '! grep -q "^250-AUTH" <<<"$1"' _ "$ehlo"

# A client that does TLS but not AUTH cannot send (swaks does not verify
# the certificate).
swaks --server "127.0.0.1:$PF_PORT" --tls --from sender@example.com \
    --to rcpt0@example.com --quit-after RCPT >"$PF/swaks.out" 2>&1
check "smtpd refuses RCPT TO from a TLS client that did not authenticate" -- \
    grep -Eq '^<~?\*+ +554 5\.7\.1 .*Access denied' "$PF/swaks.out"

rq_set relayhost "[127.0.0.1]:$PF_PORT"
rq_set smtp_tls_security_level verify
rq_set smtp_tls_CAfile "$TLS_DIR/ca.pem"
sasl_set "$SASL_USER" "$SASL_PASS"

maildrop_fill $N pf
ok $? "$N messages waiting in maildrop"
start=$(date +%s.%N)
"$RELAYQ" start
ok $? "relayq start"
wait_for 300 all_tried $N
ok $? "relayq tried every message"
wait_for 30 pf_queued $N
ok $? "Postfix queued $N messages ($(pf_log_count 'cleanup\[[0-9]+\]: [0-9A-F]+: message-id='))"
end=$(date +%s.%N)
diag "$N messages relayq -> Postfix in $(python3 -c "print(f'{$end - $start:.1f}')") s"
wait_for 30 queue_empty
ok $? "mailq prints 'Mail queue is empty'"
check "$N delivery lines with status=sent" -- test "$(log_count 'status=sent ')" -eq $N
check "no deferral and no bounce" -- test "$(log_count 'status=(deferred|bounced)')" -eq 0

check "every Message-ID arrived at Postfix exactly once" -- pf_ids_once $N pf
check "every message came from a client authenticated as $SASL_USER" -- \
    test "$(pf_log_count "smtpd\[[0-9]+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\], sasl_method=(PLAIN|LOGIN), sasl_username=$SASL_USER$")" -eq $N
# Wait for the disconnect lines: relayq's idle connections close when it stops.
"$RELAYQ" stop
ok $? "relayq stop"
wait_for 30 test "$(pf_log_count 'smtpd\[[0-9]+\]: disconnect from ')" -ge "$(pf_log_count 'smtpd\[[0-9]+\]: connect from ')"
ok $? "smtpd logged the end of every session"
bdat=$(pf_bdat_total)
check "BDAT: smtpd's disconnect lines count $N bdat commands ($bdat)" -- test "$bdat" -eq $N
check "no session used DATA" -- test "$(pf_log_count 'disconnect from .* data=')" -eq 0
check "every session that sent BDAT did STARTTLS and AUTH first" -- \
    test "$(pf_log_count 'disconnect from .* starttls=1 auth=1 .*bdat=')" -eq "$(pf_log_count 'disconnect from .* bdat=')"
check "no AUTH failed" -- test "$(pf_log_count 'SASL [A-Z]+ authentication failed')" -eq 0
check "Postfix discarded all $N messages" -- \
    test "$(pf_log_count 'discard\[[0-9]+\]: [0-9A-F]+: to=<rcpt[0-9]+@example.com>, .* status=sent ')" -eq $N
# Not counted: cleanup's note that the file system's clock (the test's
# directory may be on another file system than the one the clock is set
# for) runs ahead of the local one, which says nothing about relayq.
pf_problems() {
    grep -E ' (warning|error|fatal|panic): ' "$PF/maillog" 2>/dev/null |
        grep -Ev 'warning: (file system clock is [0-9]+ seconds? ahead of local clock|resetting file time stamps)'
}
check "Postfix logged no warning, error or fatal" -- test -z "$(pf_problems)"
pf_problems | head -n 10 | sed 's/^/# /'

pf_master=$(awk '{ print $1; exit }' "$PF/queue/pid/master.pid")
postfix -c "$PF/conf" stop >/dev/null 2>&1
ok $? "postfix -c DIR stop"
wait_for 10 pf_master_gone "$pf_master"
ok $? "the Postfix master ($pf_master) is gone"
tap_end
