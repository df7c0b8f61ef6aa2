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
    echo "# $*"
}

# tap_end - print the plan and exit with the result
tap_end() {
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
    for d in master pickup qmgr smtpout; do
        cp "$top_builddir/$d/$d" "$T/libexec/$d"
    done
    CONF=$T/relayq.conf
    MAILLOG=$T/maillog
    local owner=""
    if [ "$(id -u)" -eq 0 ]; then
        owner="mail_owner = nobody"
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
queue_map_size = 256m
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
    [ "$(grep '^message ' "$SINK_LOG" 2>/dev/null | sed 's/.*msgid=//' | sort -u | wc -l)" -ge "$1" ]
}

# log_has - whether the maillog has at least N lines matching a pattern: log_has N PATTERN
log_has() {
    local n
    n=$(grep -c -- "$2" "$MAILLOG" 2>/dev/null)
    [ "${n:-0}" -ge "$1" ]
}

# master_pid - the running master's pid, or nothing
master_pid() {
    cat "$T/queue/pid/master.pid" 2>/dev/null
}

# child_pid - pid of one running relayq daemon of this test: child_pid NAME
child_pid() {
    pgrep -f "^$T/libexec/$1 " | head -n 1
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
        pkill -9 -f "^$T/libexec/" 2>/dev/null
        sink_stop
        if [ -n "${KEEP_TEST_DIR:-}" ]; then
            echo "# kept $T" >&2
        else
            rm -rf "$T"
        fi
    fi
}
