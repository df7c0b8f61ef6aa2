# tests/lib.sh - shared helpers of the integration tests (sourced, bash)
#
# Each test sources this file, calls rq_setup to get a scratch directory
# with a configuration, a private copy of the daemons and a queue, starts
# the test SMTP server and relayq, and talks to relayq only through the
# relayq command. Everything started is stopped by rq_cleanup (trap EXIT).
# Waits are bounded polls on a condition, never a bare sleep.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
RELAYQ=$top_builddir/cli/relayq
# The front runs the full command for everything but sendmail's messages.
RELAYQ_COMMAND=$top_builddir/cli/relayq-command
export RELAYQ_COMMAND
SMTPSINK=$top_builddir/tests/smtpsink/smtpsink

TAP_COUNT=0
TAP_FAILED=0

# ok - report one TAP result: ok CONDITION-STATUS DESCRIPTION
ok() {
    local status=$1
    shift
    TAP_COUNT=$((TAP_COUNT + 1))
    if [ "$status" -eq 0 ]; then
        echo "ok $TAP_COUNT - $*"
    else
        echo "not ok $TAP_COUNT - $*"
        TAP_FAILED=$((TAP_FAILED + 1))
    fi
}

# check - run a command and report it as one TAP result: check DESCRIPTION -- COMMAND...
check() {
    local desc=$1
    shift
    [ "$1" = "--" ] && shift
    if "$@"; then ok 0 "$desc"; else ok 1 "$desc"; fi
}

# diag - a TAP comment
diag() {
    printf '%s\n' "$*" | sed 's/^/# /'
}

# tap_end - print the plan and exit with the result; a daemon's sanitizer
# report in the maillog (master sends their standard error there) fails the
# test even when everything else passed
tap_end() {
    if [ -n "${MAILLOG:-}" ] && [ -f "$MAILLOG" ]; then
        if grep -Eq 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$MAILLOG"; then
            ok 1 "no sanitizer report from the daemons"
            grep -E -A12 'ERROR: AddressSanitizer|runtime error:' "$MAILLOG" | head -n 40 | sed 's/^/# /'
        else
            ok 0 "no sanitizer report from the daemons"
        fi
    fi
    echo "1..$TAP_COUNT"
    [ "$TAP_FAILED" -eq 0 ]
}

# wait_for - poll a shell condition every 0.1 s for at most SECONDS: wait_for SECONDS COMMAND...
wait_for() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    "$@"
}

# rq_setup - scratch directory, daemons and configuration; sets T and CONF
rq_setup() {
    T=$(mktemp -d /tmp/relayq-test.XXXXXX)
    chmod 755 "$T"
    mkdir -p "$T/libexec" "$T/sink"
    for d in master pickup qmgr showq smtpout metrics; do
        cp "$top_builddir/$d/$d" "$T/libexec/$d"
    done
    CONF=$T/relayq.conf
    MAILLOG=$T/maillog
    local owner=""
    if [ "$(id -u)" -eq 0 ]; then
        # The daemons run as nobody; mail reaches them through group mail, as
        # a real installation's relayq is setgid to its own setgid_group.
        owner="mail_owner = nobody
setgid_group = mail"
        chown nobody "$T/sink" 2>/dev/null || true
    fi
    cat >"$CONF" <<CONF
# relayq test configuration
queue_directory = $T/queue
daemon_directory = $T/libexec
maillog_file = $MAILLOG
myhostname = relayq.test
relayhost = [127.0.0.1]:${SINK_PORT:-1}
smtpout_workers = 4
# One connection per process, so that smtpout_workers counts connections
# (tests of several sessions per process set it themselves).
smtpout_sessions_per_worker = 1
queue_map_size = 256m
# The SMTP listener: off unless a test turns it on (a test never takes port 25).
smtpd_listen =
$owner
CONF
    export RELAYQ_CONFIG=$CONF
    trap rq_cleanup EXIT
}

# rq_set - change or add a parameter: rq_set NAME VALUE
rq_set() {
    local name=$1 value=$2
    if grep -q "^$name = " "$CONF"; then
        sed -i "s|^$name = .*|$name = $value|" "$CONF"
    else
        echo "$name = $value" >>"$CONF"
    fi
}

# sink_start - start the test SMTP server; sets SINK_PORT, SINK_PID, SINK_LOG
sink_start() {
    SINK_LOG=$T/sink/log
    rm -f "$T/sink/port"
    "$SMTPSINK" --listen "127.0.0.1:${SINK_WANT_PORT:-0}" --port-file "$T/sink/port" \
        --log "$SINK_LOG" --pid-file "$T/sink/pid" "$@" 2>>"$T/sink/stderr" &
    SINK_PID=$!
    wait_for 10 test -s "$T/sink/port" || return 1
    SINK_PORT=$(cat "$T/sink/port")
    SINK_WANT_PORT=$SINK_PORT
    rq_set relayhost "[127.0.0.1]:$SINK_PORT"
}

# sink_stop - stop the test SMTP server and wait for it
sink_stop() {
    if [ -n "${SINK_PID:-}" ]; then
        kill "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
        SINK_PID=
    fi
}

# sink_messages - messages the server accepted
sink_messages() {
    local n
    n=$(grep -c '^message ' "$SINK_LOG" 2>/dev/null)
    echo "${n:-0}"
}

# sink_connections - connections the server accepted
sink_connections() {
    local n
    n=$(grep -c '^connect ' "$SINK_LOG" 2>/dev/null)
    echo "${n:-0}"
}

# sink_has - whether the server accepted at least N messages: sink_has N
sink_has() {
    [ "$(sink_messages)" -ge "$1" ]
}

# sink_has_distinct - whether at least N distinct Message-IDs arrived: sink_has_distinct N
sink_has_distinct() {
    [ "$(grep '^message ' "$SINK_LOG" 2>/dev/null | sed 's/.*msgid=\([^ ]*\).*/\1/' | sort -u | wc -l)" -ge "$1" ]
}

# log_has - whether the maillog has at least N lines matching a pattern: log_has N PATTERN
log_has() {
    local n
    n=$(grep -c -- "$2" "$MAILLOG" 2>/dev/null)
    [ "${n:-0}" -ge "$1" ]
}

# timed_start - start relayq and wait until the server has N messages;
# sets ELAPSED (seconds, one decimal) from the start: timed_start N LIMIT
timed_start() {
    local start end status
    start=$(date +%s.%N)
    "$RELAYQ" start || return 1
    wait_for "$2" sink_has "$1"
    status=$?
    end=$(date +%s.%N)
    ELAPSED=$(python3 -c "print(f'{$end - $start:.1f}')")
    return $status
}

# between - whether LOW <= VALUE <= HIGH, decimals allowed: between LOW VALUE HIGH
between() {
    python3 -c "import sys; sys.exit(0 if $1 <= $2 <= $3 else 1)"
}

# master_pid - the running master's pid, or nothing
master_pid() {
    cat "$T/queue/pid/master.pid" 2>/dev/null
}

# child_pid - pid of one running relayq daemon of this test: child_pid NAME
child_pid() {
    pgrep -f "^$T/libexec/$1 " | head -n 1
}

# smtpout_reloads_at_least - whether the smtpout processes logged N reloads in all
smtpout_reloads_at_least() {
    [ "$(log_count 'smtpout\[[0-9]+\]: reload -- ')" -ge "$1" ]
}

# reload_smtpout - relayq reload, and wait until every running smtpout re-read the configuration
reload_smtpout() {
    local before procs
    before=$(log_count 'smtpout\[[0-9]+\]: reload -- ')
    procs=$(pgrep -fc "^$T/libexec/smtpout ")
    "$RELAYQ" reload >/dev/null && wait_for 10 smtpout_reloads_at_least $((before + procs))
}

# free_port - a TCP port of 127.0.0.1 that nothing listens on now
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# queue_empty - whether mailq says the queue is empty
queue_empty() {
    [ "$("$RELAYQ" mailq 2>/dev/null)" = "Mail queue is empty" ]
}

# inject - queue COUNT messages with relayq sendmail, PARALLEL at a time: inject COUNT [TAG]
inject() {
    local count=$1 tag=${2:-m}
    seq 1 "$count" | xargs -P 4 -I{} sh -c \
        'printf "Subject: test {}\nMessage-ID: <'"$tag"'-{}@relayq.test>\n\nbody {}\n" | "$0" sendmail -f sender@example.com rcpt{}@example.com' \
        "$RELAYQ"
}

# rq_cleanup - stop everything this test started and remove its files
rq_cleanup() {
    if [ -n "${T:-}" ]; then
        "$RELAYQ" stop >/dev/null 2>&1
        local pid
        pid=$(master_pid)
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        # Every process run from the test directory: daemons, and the real
        # programs behind a test's wrappers ($T/real/...).
        pkill -9 -f "^$T/" 2>/dev/null
        sink_stop
        if [ -n "${KEEP_TEST_DIR:-}" ]; then
            echo "# kept $T" >&2
        else
            # A daemon that was still exiting may add a file as rm walks.
            wait_for 5 rm -rf "$T" 2>/dev/null
        fi
    fi
}

# --- TLS, AUTH and bulk injection (the connection pool tests) ---

# sink_count - lines of the server's log matching an extended regexp: sink_count REGEX
sink_count() {
    local n
    n=$(grep -Ec -- "$1" "$SINK_LOG" 2>/dev/null)
    echo "${n:-0}"
}

# log_count - lines of the maillog matching an extended regexp: log_count REGEX
log_count() {
    local n
    n=$(grep -Ec -- "$1" "$MAILLOG" 2>/dev/null)
    echo "${n:-0}"
}

# sink_ids_once - whether exactly N messages arrived, each Message-ID once: sink_ids_once N
sink_ids_once() {
    grep '^message ' "$SINK_LOG" 2>/dev/null | sed 's/.*msgid=\([^ ]*\).*/\1/' | sort >"$T/ids"
    [ "$(uniq -d "$T/ids" | wc -l)" -eq 0 ] && [ "$(wc -l <"$T/ids")" -eq "$1" ]
}

# tls_setup - test CA, server certificate and the server's AUTH user;
# sets TLS_DIR, SASL_USER, SASL_PASS and SINK_TLS_ARGS (an array: STARTTLS
# and AUTH offered and required): tls_setup [USER [PASSWORD]]
tls_setup() {
    TLS_DIR=$T/tls
    "$top_srcdir/tests/certs.sh" "$TLS_DIR" || return 1
    chmod 755 "$TLS_DIR"
    SASL_USER=${1:-relayq@example.com}
    SASL_PASS=${2:-Pa55-w0rd.secret}
    printf '%s:%s\n' "$SASL_USER" "$SASL_PASS" >"$T/sink/users"
    SINK_TLS_ARGS=(--tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server-key.pem"
        --auth-file "$T/sink/users" --require-auth --require-tls)
}

# sasl_set - write relayq's credentials file for the running test server
# and turn AUTH on. The file is replaced atomically, mode 0600, owned by
# mail_owner (nobody) when the test runs as root, since the daemons run as
# that user: sasl_set USER SECRET
sasl_set() {
    SASL_MAP=$T/sasl_passwd
    local tmp=$T/sasl_passwd.tmp
    (umask 077 && printf '[127.0.0.1]:%s %s:%s\n' "$SINK_PORT" "$1" "$2" >"$tmp") || return 1
    chmod 0600 "$tmp"
    if [ "$(id -u)" -eq 0 ]; then chown nobody "$tmp" || return 1; fi
    mv -f "$tmp" "$SASL_MAP"
    rq_set smtp_sasl_auth_enable yes
    rq_set smtp_sasl_password_maps "$SASL_MAP"
}

# secure_upstream - start the test server with STARTTLS and AUTH required
# (extra arguments go to the server) and configure relayq for it: TLS
# level encrypt, AUTH with the right secret. With RELAYQ_TEST_PLAIN=1 both
# speak plain SMTP instead, to tell a TLS or AUTH fault from a connection
# lifecycle fault: secure_upstream [SMTPSINK-ARGS...]
secure_upstream() {
    if [ -n "${RELAYQ_TEST_PLAIN:-}" ]; then
        diag "RELAYQ_TEST_PLAIN: plain SMTP, no TLS, no AUTH"
        sink_start "$@" || return 1
        rq_set smtp_tls_security_level none
        return 0
    fi
    tls_setup || return 1
    sink_start "${SINK_TLS_ARGS[@]}" "$@" || return 1
    rq_set smtp_tls_security_level encrypt
    rq_set smtp_tls_CAfile "$TLS_DIR/ca.pem"
    sasl_set "$SASL_USER" "$SASL_PASS"
}

# maildrop_fill - put COUNT messages straight into maildrop/ while relayq
# is stopped (thousands per second, where one `relayq sendmail` process per
# message manages a few hundred). The files follow doc/internals.md
# ("maildrop files"): envelope record, then the message; message i has
# recipient rcpt<i>@example.com and Message-ID <TAG-i@relayq.test>, and
# about SIZE bytes of body (lines of 76 characters) when SIZE is given.
# Pickup reads them as it reads what sendmail leaves:
# With RCPTS, each message has that many recipients (rcptI-K@example.com).
# FILL_QUEUE: another queue directory than $T/queue (another instance).
# maildrop_fill COUNT [TAG [SIZE [RCPTS]]]
maildrop_fill() {
    local count=$1 tag=${2:-m} size=${3:-0} rcpts=${4:-1}
    local queue=${FILL_QUEUE:-$T/queue}
    if [ ! -d "$queue/maildrop" ]; then
        # The first start creates the queue tree.
        "$RELAYQ" start >/dev/null && "$RELAYQ" stop >/dev/null || return 1
    fi
    python3 - "$queue/maildrop" "$count" "$tag" "$size" "$rcpts" <<'PY'
import os, secrets, sys, time
mdir, count, tag, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
nrcpt = int(sys.argv[5])
filler = ("x" * 76 + "\n") * (size // 77)
owner = None
if os.getuid() == 0:
    import pwd
    pw = pwd.getpwnam("nobody")
    owner = (pw.pw_uid, pw.pw_gid)
uid = owner[0] if owner else os.getuid()
for i in range(1, count + 1):
    now = time.time()
    rcpts = "".join(f"rcpt=rcpt{i}-{k}@example.com\n" for k in range(1, nrcpt + 1)) \
        if nrcpt > 1 else f"rcpt=rcpt{i}@example.com\n"
    data = (f"type=maildrop\nversion=1\nuid={uid}\nposted={int(now)}\n"
            f"sender=sender@example.com\n{rcpts}\n"
            f"Subject: test {i}\nMessage-ID: <{tag}-{i}@relayq.test>\n\nbody {i}\n{filler}")
    tmp = os.path.join(mdir, f"tmp.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data.encode())
    if owner:
        os.fchown(fd, *owner)
    os.close(fd)
    os.rename(tmp, os.path.join(
        mdir, f"{int(now)}.{int(now * 1e6) % 1000000:06d}.{os.getpid()}.{secrets.token_hex(4)}"))
PY
}

# all_tried - whether the maillog has a delivery status for at least N
# recipients (sent, deferred or bounced): a wait that ends early when
# delivery fails instead of running out its time: all_tried N
all_tried() {
    [ "$(log_count ': to=<[^>]*>, .* status=(sent|deferred|bounced) ')" -ge "$1" ]
}

# fill_and_deliver - N messages into maildrop, relayq started, and every
# one delivered with the queue empty after; one TAP result a step:
# fill_and_deliver N TAG
fill_and_deliver() {
    local n=$1 tag=$2
    maildrop_fill "$n" "$tag"
    ok $? "$n messages waiting in maildrop"
    "$RELAYQ" start
    ok $? "relayq start"
    wait_for 300 all_tried "$n"
    ok $? "relayq tried every message"
    wait_for 10 sink_has "$n"
    ok $? "$n messages arrived at the server ($(sink_messages))"
    wait_for 30 queue_empty
    ok $? "mailq prints 'Mail queue is empty'"
}

# --- the metrics tests' workload ---

# metrics_workload - the mail of the metrics tests, relayq stopped: the test
# server started refusing BOUNCED recipients for good (550) and DEFERRED
# once (450), relayq retrying them within seconds, and N messages waiting
# in maildrop (message i to rcpt<i>@example.com, Message-ID <TAG-i@...>).
# The refused recipients are spread out (one every N/BOUNCED messages from
# the 7th, one every N/DEFERRED from the 3rd; with 1,000/50/100 the two
# never meet): a relay that defers transaction after transaction on one
# connection is taken as loaded, and relayq slows down for it. One TAP
# result a step: metrics_workload N BOUNCED DEFERRED TAG
metrics_workload() {
    local n=$1 bounced=$2 deferred=$3 tag=$4 i replies=()
    for i in $(seq 7 $((n / bounced)) "$n"); do
        replies+=(--rcpt-reply "rcpt$i@example.com=550 5.1.1 no such user")
    done
    for i in $(seq 3 $((n / deferred)) "$n"); do
        replies+=(--rcpt-reply "rcpt$i@example.com=450 4.2.1 mailbox unavailable@1")
    done
    sink_start "${replies[@]}"
    ok $? "the test server on 127.0.0.1:$SINK_PORT"
    rq_set minimal_backoff_time 1s
    rq_set maximal_backoff_time 2s
    rq_set queue_run_delay 1s
    maildrop_fill "$n" "$tag"
    ok $? "$n messages waiting in maildrop"
}

# received_is - relayq stats --json counts N messages received from
# SOURCE (maildrop, sendmail, smtp), as pickup told qmgr: received_is SOURCE N
received_is() {
    "$RELAYQ" stats --json 2>/dev/null | python3 -c 'import json, sys
sys.exit(0 if json.load(sys.stdin)["received"][sys.argv[1]] == int(sys.argv[2]) else 1)' "$1" "$2"
}

# notices_is - relayq stats --json counts N notices to senders of KIND
# (failure, delay, success) committed since qmgr started: notices_is KIND N
notices_is() {
    "$RELAYQ" stats --json 2>/dev/null | python3 -c 'import json, sys
sys.exit(0 if json.load(sys.stdin)["notices"][sys.argv[1]] == int(sys.argv[2]) else 1)' "$1" "$2"
}

# sink_refused - recipients the test server refused with a reply of a
# class (5: for good, 4: for now): sink_refused CLASS
sink_refused() {
    sink_count "^reject conn=.* cmd=RCPT reply=$1"
}

# --- fault points (the fault-injection build) ---

# fault_build_or_skip - in a build without --enable-fault-injection, check
# that the binaries carry no trace of the fault points, skip the rest of
# the test saying WHAT needs them, and exit: fault_build_or_skip WHAT
fault_build_or_skip() {
    grep -q '^#define RELAYQ_FAULT_INJECTION 1' "$top_builddir/config.h" && return 0
    local bins traces
    bins=("$top_builddir"/{master/master,pickup/pickup,qmgr/qmgr,smtpout/smtpout,cli/relayq,showq/showq})
    traces=$(grep -alE 'RELAYQ_CRASH_AT|RELAYQ_FAIL_AT|fault injection' "${bins[@]}" | tr '\n' ' ')
    check "production binaries carry no fault point${traces:+: $traces}" -- \
        test -z "$traces" -a -x "${bins[0]}" -a -x "${bins[1]}" -a -x "${bins[2]}" -a -x "${bins[3]}"
    TAP_COUNT=$((TAP_COUNT + 1))
    echo "ok $TAP_COUNT # SKIP $1: built without --enable-fault-injection"
    tap_end
    exit
}

# fault_marker - a directory the daemons (mail_owner when the test runs as
# root) may create the fault marker in; sets MARKER to FILE in it:
# fault_marker FILE
fault_marker() {
    mkdir -p "$T/fault"
    [ "$(id -u)" -eq 0 ] && chown nobody "$T/fault"
    MARKER=$T/fault/$1
}

# round_log - the maillog lines from line $from on (the current round)
round_log() {
    tail -n +"$from" "$MAILLOG" 2>/dev/null
}

# --- shared limits (several instances and a Redis server) ---

# redis_start - a private redis-server on a free port of 127.0.0.1, no
# persistence; sets REDIS_PORT, REDIS_PID (the same port again when
# REDIS_PORT is set: a restart)
redis_start() {
    mkdir -p "$T/redis"
    REDIS_PORT=${REDIS_PORT:-$(free_port)}
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --dir "$T/redis" --logfile "$T/redis/log" --daemonize no >/dev/null 2>&1 &
    REDIS_PID=$!
    wait_for 10 redis_up
}

# redis_up - whether the test's redis-server answers
redis_up() {
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
}

# redis_stop - stop the test's redis-server by its pid and wait for it
redis_stop() {
    if [ -n "${REDIS_PID:-}" ]; then
        kill "$REDIS_PID" 2>/dev/null
        kill -CONT "$REDIS_PID" 2>/dev/null # a test that stopped it
        wait "$REDIS_PID" 2>/dev/null
        REDIS_PID=
    fi
}

# redis_kill - kill the test's redis-server (SIGKILL, as a crash) and wait for it
redis_kill() {
    if [ -n "${REDIS_PID:-}" ]; then
        { kill -9 "$REDIS_PID" && wait "$REDIS_PID"; } 2>/dev/null
        REDIS_PID=
    fi
}

# instances_setup - N instances of relayq, each with its own queue and
# configuration ($T/iK/relayq.conf, queue $T/iK/queue, syslog_name
# relayq-iK), all logging to $MAILLOG and sending to the test's server,
# sharing limits through the test's Redis: instances_setup N
instances_setup() {
    local k
    INSTANCES=$1
    for ((k = 1; k <= INSTANCES; k++)); do
        mkdir -p "$T/i$k"
        sed -e "s|^queue_directory = .*|queue_directory = $T/i$k/queue|" "$CONF" >"$T/i$k/relayq.conf"
        printf 'syslog_name = relayq-i%s\nshared_limits_server = redis://127.0.0.1:%s/0\n' \
            "$k" "$REDIS_PORT" >>"$T/i$k/relayq.conf"
    done
}

# shared_setup - the scratch directory, a Redis server, the test SMTP
# server (with the extra arguments) whose relay gets POLICY in
# destination_policy_maps, and N instances sharing limits (one TAP
# result): shared_setup N POLICY [SINK_ARGS...]
shared_setup() {
    local n=$1 policy=$2
    shift 2
    rq_setup
    trap instances_cleanup EXIT
    redis_start
    ok $? "redis-server started on 127.0.0.1:$REDIS_PORT"
    sink_start "$@"
    printf '[127.0.0.1]:%s %s\n' "$SINK_PORT" "$policy" >"$T/policy"
    rq_set destination_policy_maps "$T/policy"
    instances_setup "$n"
}

# on_instances - run a relayq command for every instance: on_instances ARGS...
on_instances() {
    local k status=0
    for ((k = 1; k <= INSTANCES; k++)); do
        RELAYQ_CONFIG=$T/i$k/relayq.conf "$RELAYQ" "$@" || status=1
    done
    return $status
}

# instances_fill - N messages into each instance's maildrop: instances_fill N TAG
instances_fill() {
    local k
    for ((k = 1; k <= INSTANCES; k++)); do
        RELAYQ_CONFIG=$T/i$k/relayq.conf FILL_QUEUE=$T/i$k/queue maildrop_fill "$1" "$2-i$k" || return 1
    done
}

# instances_cleanup - stop the instances and Redis, then what rq_cleanup stops
instances_cleanup() {
    on_instances stop >/dev/null 2>&1
    redis_stop
    rq_cleanup
}

# sink_rate - messages per second the server accepted, from its own
# timestamps (smtpsink --timestamps), between its first and last message
# matching a pattern: sink_rate [PATTERN]
sink_rate() {
    grep '^message ' "$SINK_LOG" | grep -- "${1:-.}" | sed -n 's/.* t=\([0-9]*\)$/\1/p' |
        python3 -c '
import sys
t = sorted(int(x) for x in sys.stdin)
print(f"{(len(t) - 1) * 1000 / (t[-1] - t[0]):.2f}" if len(t) > 1 and t[-1] > t[0] else "0")'
}

# sink_peak_connections - the most connections the server had open at once,
# from the order of its "connect" and "close" lines
sink_peak_connections() {
    awk '/^connect conn=/ { n++; if (n > peak) peak = n } /^close conn=/ { n-- }
        END { print peak + 0 }' "$SINK_LOG" 2>/dev/null
}
