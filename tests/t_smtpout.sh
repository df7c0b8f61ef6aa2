#!/bin/bash
# t_smtpout.sh - integration test of the smtpout delivery worker (TAP)
#
# Runs the real smtpout against a real LMDB queue (filled by the
# tests/qstore_put helper), a fake qmgr (a small python3 UNIX-socket server
# that speaks the private/qmgr records: hello, worker, deliver, result)
# and the test SMTP server tests/smtpsink/smtpsink on 127.0.0.1.
# Checks: 20 jobs over one connection, content intact with dot-stuffing
# undone, a 550 recipient bounced while the others are sent, connection
# refused deferred with Postfix's reason, a 421 on a reused connection
# retried on a fresh one without a deferral, qmgr restarting under a live
# SMTP connection, SIGHUP, and SIGTERM ending in QUIT and exit 0. With
# certtool: STARTTLS + AUTH PLAIN once for several jobs, verify against the
# test CA (and TLS session resumption), verify against an unknown CA
# deferred without AUTH, a wrong password deferred (and not retried at
# once), a credentials file of mode 0644 refused, AUTH refused without TLS,
# XOAUTH2 with the token file read again, and level may falling back to
# plaintext when the handshake fails; the fake qmgr notes the type=conn
# events it receives.
# Every wait is a bounded poll on a condition; everything started is
# killed on exit.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
SMTPOUT=${SMTPOUT:-$top_builddir/smtpout/smtpout}
QSTORE_PUT=${QSTORE_PUT:-$top_builddir/tests/qstore_put}
SMTPSINK=${SMTPSINK:-$top_builddir/tests/smtpsink/smtpsink}

T=$(mktemp -d /tmp/t_smtpout.XXXXXX) || exit 1
PIDS=""
TAP_COUNT=0
TAP_FAILED=0

cleanup() {
    local pid
    for pid in $PIDS; do
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ -n "${KEEP_TEST_DIR:-}" ]; then
        echo "# kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

# ok - one TAP result: ok STATUS DESCRIPTION
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

# check - run a command as one TAP result: check DESCRIPTION COMMAND...
check() {
    local desc=$1
    shift
    if "$@"; then ok 0 "$desc"; else ok 1 "$desc"; fi
}

# wait_for - poll a command every 0.1 s for at most SECONDS: wait_for SECONDS COMMAND...
wait_for() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    "$@"
}

for prog in "$SMTPOUT" "$QSTORE_PUT" "$SMTPSINK"; do
    if [ ! -x "$prog" ]; then
        echo "1..0 # SKIP $prog not built"
        exit 0
    fi
done
if ! command -v python3 >/dev/null; then
    echo "1..0 # SKIP python3 not found"
    exit 0
fi

mkdir -p "$T/queue/private" "$T/maildir-"{a,b,c,d,e,f,h,j}
# The daemons refuse to run as root: as root, smtpout runs as nobody (AS_DAEMON
# before the command; setpriv execs it, so $! is smtpout's pid), from a copy of
# the binary in the scratch directory (the build tree may be one nobody cannot
# enter). nobody owns the scratch directory (for the maillog) and the queue,
# and what the test writes for smtpout must be readable whatever the umask.
AS_DAEMON=()
if [ "$(id -u)" -eq 0 ]; then
    cp "$SMTPOUT" "$T/smtpout" || exit 1
    SMTPOUT=$T/smtpout
    chown nobody "$T" "$T/queue" "$T/queue/private" || exit 1
    umask 022
    AS_DAEMON=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
CONF=$T/relayq.conf
MAILLOG=$T/maillog
cat >"$CONF" <<EOF
queue_directory = $T/queue
maillog_file = $MAILLOG
myhostname = relayq.test
queue_map_size = 64m
smtp_keepalive_interval = 1s
smtp_connection_idle_timeout = 300s
smtp_connection_reuse_count_limit = 1000
smtp_connect_timeout = 5s
smtp_helo_timeout = 2s
# the fake qmgr serves one worker
smtpout_sessions_per_worker = 1
EOF

# The fake qmgr: serves the jobs in jobs.json (one JSON object per line,
# appended as the test goes) one at a time, appends each result to
# results.json, notes each worker hello in qmgr.events. A restarted fake
# qmgr skips jobs that already have a result.
cat >"$T/fakeqmgr.py" <<'EOF'
import json, os, re, select, socket, sys, time

sock_path, jobs_path, results_path, events_path = sys.argv[1:5]

def enc(v):
    return str(v).replace('%', '%25').replace('\r', '%0D').replace('\n', '%0A')

def dec(v):
    return re.sub('%([0-9A-Fa-f]{2})', lambda m: chr(int(m.group(1), 16)), v)

def record(rtype, attrs):
    text = 'type=%s\n' % rtype
    for name, value in attrs:
        text += '%s=%s\n' % (name, enc(value))
    return (text + '\n').encode()

def note(line):
    with open(events_path, 'a') as f:
        f.write(line + '\n')

class Chan:
    """Records from the worker; type=conn events are noted in the events file
    as "conn event=... dest=..." and never returned."""
    def __init__(self, sock):
        self.sock, self.buf = sock, b''

    def parse(self):
        while True:
            while self.buf.startswith(b'\n'):
                self.buf = self.buf[1:]
            i = self.buf.find(b'\n\n')
            if i < 0:
                return None
            raw, self.buf = self.buf[:i], self.buf[i + 2:]
            rec = [(k, dec(v)) for k, _, v in
                   (line.partition('=') for line in raw.decode().split('\n'))]
            if rec[0] == ('type', 'conn'):
                note('conn ' + ' '.join('%s=%s' % kv for kv in rec[1:]))
                continue
            return rec

    def pump(self):
        """Take what the socket has; False at the end of the stream."""
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read(self):
        while True:
            rec = self.parse()
            if rec is not None:
                return rec
            if not self.pump():
                return None

def done_ids():
    ids = set()
    if os.path.exists(results_path):
        for line in open(results_path):
            ids.add(json.loads(line)['id'])
    return ids

def next_job(chan):
    """The first job without a result, or None when the worker went away."""
    while True:
        done = done_ids()
        if os.path.exists(jobs_path):
            for line in open(jobs_path):
                job = json.loads(line)
                if job['id'] not in done:
                    return job
        if select.select([chan.sock], [], [], 0.05)[0]:
            if not chan.pump():
                return None
            chan.parse()

try:
    os.unlink(sock_path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sock_path)
os.chmod(sock_path, 0o666)  # smtpout may run as nobody
srv.listen(5)
note('listening')
while True:
    sock, _ = srv.accept()
    chan = Chan(sock)
    sock.sendall(record('hello', [('protocol', 'relayq-qmgr-1')]))
    worker = chan.read()
    if worker is None:
        continue
    note('worker ' + ' '.join('%s=%s' % kv for kv in worker[1:]))
    while True:
        job = next_job(chan)
        if job is None:
            note('worker gone')
            break
        attrs = [(k, job[k]) for k in ('id', 'queue_id', 'relay', 'port', 'sender', 'size',
                                        'arrival_ms', 'active_ms')]
        attrs += [('rcpt', r) for r in job['rcpts']]
        try:
            sock.sendall(record('deliver', attrs))
            result = chan.read()
        except OSError:
            result = None
        if result is None:
            note('worker gone during job %d' % job['id'])
            break
        out = {'rcpts': []}
        for name, value in result:
            if name == 'rcpt':
                out['rcpts'].append(value)
            else:
                out[name] = value
        out['id'] = int(out['id'])
        with open(results_path, 'a') as f:
            f.write(json.dumps(out) + '\n')
EOF

QMGR_SOCK=$T/queue/private/qmgr
JOBS=$T/jobs.json
RESULTS=$T/results.json
EVENTS=$T/qmgr.events
: >"$JOBS"

# start_qmgr - (re)start the fake qmgr; sets QMGR_PID
start_qmgr() {
    rm -f "$EVENTS"
    python3 "$T/fakeqmgr.py" "$QMGR_SOCK" "$JOBS" "$RESULTS" "$EVENTS" 2>>"$T/fakeqmgr.err" &
    QMGR_PID=$!
    PIDS="$PIDS $QMGR_PID"
    wait_for 10 grep -q listening "$EVENTS" 2>/dev/null
}

# start_sink NAME ARGS... - start an smtpsink; sets SINK_PORT and SINK_PID
start_sink() {
    local name=$1
    shift
    "$SMTPSINK" --listen 127.0.0.1:0 --port-file "$T/$name.port" --log "$T/$name.log" \
        --maildir "$T/maildir-$name" "$@" 2>>"$T/$name.err" &
    SINK_PID=$!
    PIDS="$PIDS $SINK_PID"
    wait_for 10 test -s "$T/$name.port"
    SINK_PORT=$(cat "$T/$name.port")
}

# body N - a message whose lines exercise dot-stuffing, with CRLF line ends
body() {
    printf 'Subject: test %s\r\nMessage-ID: <t%s@relayq.test>\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n.\r\n. \r\nlast line of %s\r\n' \
        "$1" "$1" "$1"
}

NEXT_ID=1
# add_job PORT BODYFILE SENDER RCPT... - queue a message and hand qmgr a job for it; sets QID
add_job() {
    local port=$1 file=$2 sender=$3
    shift 3
    QID=$("$QSTORE_PUT" "$T/queue" "$file" "$sender" "$@") || return 1
    # The first message creates the queue's files, as root when the test is.
    if [ ${#AS_DAEMON[@]} -gt 0 ]; then chown -R nobody "$T/queue" || return 1; fi
    python3 - "$NEXT_ID" "$QID" "$port" "$sender" "$(stat -c %s "$file")" "$@" >>"$JOBS" <<'EOF'
import json, sys, time
now = int(time.time() * 1000)
jid, qid, port, sender, size = sys.argv[1:6]
print(json.dumps({'id': int(jid), 'queue_id': qid, 'relay': '127.0.0.1', 'port': int(port),
                  'sender': sender, 'size': int(size), 'arrival_ms': now - 50,
                  'active_ms': now - 20,
                  'rcpts': ['%d %s' % (i, r) for i, r in enumerate(sys.argv[6:])]}))
EOF
    NEXT_ID=$((NEXT_ID + 1))
}

# results - number of results qmgr received
results() {
    if [ -f "$RESULTS" ]; then wc -l <"$RESULTS"; else echo 0; fi
}

# have_results N - whether qmgr received at least N results
have_results() {
    [ "$(results)" -ge "$1" ]
}

# result_of ID - the result record of job ID as JSON
result_of() {
    grep "\"id\": $1[,}]" "$RESULTS"
}

# count PATTERN FILE - lines matching
count() {
    grep -c -- "$1" "$2" 2>/dev/null || true
}

# --- 20 jobs over one persistent connection ---------------------------------

start_qmgr
start_sink a --rcpt-reply 'bad@example.com=550 5.1.1 <bad@example.com>: Recipient address rejected'
PORT_A=$SINK_PORT

"${AS_DAEMON[@]}" "$SMTPOUT" -c "$CONF" ${SMTPOUT_FLAGS:-} 2>>"$T/smtpout.err" &
SMTPOUT_PID=$!
PIDS="$PIDS $SMTPOUT_PID"
check "smtpout announces itself to qmgr" wait_for 10 grep -q "^worker pid=$SMTPOUT_PID" "$EVENTS"

for i in $(seq 1 20); do
    body "$i" >"$T/body$i"
    if [ "$i" -eq 7 ]; then
        add_job "$PORT_A" "$T/body$i" sender@example.com good$i@example.com bad@example.com \
            other$i@example.com
        QID_BAD=$QID
    else
        add_job "$PORT_A" "$T/body$i" sender@example.com good$i@example.com
    fi
done
check "20 results arrive" wait_for 30 have_results 20
check "the relay saw 20 messages" test "$(count '^message ' "$T/a.log")" -eq 20
check "all 20 over one connection" test "$(count '^connect ' "$T/a.log")" -eq 1
check "the content arrives intact (dot-stuffing undone)" cmp -s "$T/body1" "$T/maildir-a/1-1.eml"
check "the 20th message arrives intact too" cmp -s "$T/body20" "$T/maildir-a/1-20.eml"
check "the 550 recipient is bounced" \
    grep -q '"1 bounced 5.1.1 host 127.0.0.1\[127.0.0.1\] said: 550 5.1.1 <bad@example.com>: Recipient address rejected (in reply to RCPT TO command)"' \
    <(result_of 7)
check "the other recipients of that message are sent" \
    test "$(result_of 7 | grep -o '"[02] sent 2.0.0 250 2.0.0 Ok: queued as' | wc -l)" -eq 2
check "results name the relay and keep the connection open" \
    grep -q "\"relay\": \"127.0.0.1\[127.0.0.1\]:$PORT_A\", \"conn\": \"open\"" <(result_of 20)
check "no recipient of the first 20 jobs is deferred" test "$(grep -c deferred "$RESULTS")" -eq 0
check "Postfix-style delivery line with conn_use" \
    grep -Eq "^.* relayq/smtpout\[$SMTPOUT_PID\]: $QID: to=<good20@example.com>, relay=127.0.0.1\[127.0.0.1\]:$PORT_A, conn_use=20, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/0/[0-9.]+, dsn=2.0.0, status=sent \(250 2.0.0 Ok: queued as S20\)$" \
    "$MAILLOG"
check "bounce is logged with status=bounced" \
    grep -q "$QID_BAD: to=<bad@example.com>, relay=127.0.0.1\[127.0.0.1\]:$PORT_A, conn_use=7, .*, dsn=5.1.1, status=bounced (host 127.0.0.1\[127.0.0.1\] said: 550 5.1.1 <bad@example.com>: Recipient address rejected (in reply to RCPT TO command))" \
    "$MAILLOG"

# --- qmgr restarts under a live SMTP connection ------------------------------

kill "$QMGR_PID"
wait "$QMGR_PID" 2>/dev/null
start_qmgr
check "smtpout reconnects to a restarted qmgr" wait_for 10 grep -q "^worker pid=$SMTPOUT_PID" "$EVENTS"
body 21 >"$T/body21"
add_job "$PORT_A" "$T/body21" sender@example.com good21@example.com
check "the job after the qmgr restart is delivered" wait_for 10 have_results 21
check "on the same SMTP connection" test "$(count '^connect ' "$T/a.log")" -eq 1
check "with conn_use=21" grep -q "$QID: to=<good21@example.com>, .*conn_use=21, .*status=sent" "$MAILLOG"

# --- connection refused ------------------------------------------------------

REFUSED_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
body 22 >"$T/body22"
add_job "$REFUSED_PORT" "$T/body22" sender@example.com good22@example.com
check "the refused job gets a result" wait_for 15 have_results 22
check "connection refused: deferred 4.4.1 with Postfix's reason" \
    grep -q "\"0 deferred 4.4.1 connect to 127.0.0.1\[127.0.0.1\]:$REFUSED_PORT: Connection refused\"" \
    <(result_of 22)
check "connection refused: relay=none in the result" grep -q '"relay": "none"' <(result_of 22)
check "connection refused: logged with relay=none" \
    grep -q "$QID: to=<good22@example.com>, relay=none, delay=.*, dsn=4.4.1, status=deferred (connect to 127.0.0.1\[127.0.0.1\]:$REFUSED_PORT: Connection refused)" \
    "$MAILLOG"
check "the old connection was closed with QUIT for the other relay" \
    wait_for 5 grep -q '^close conn=1 reason=quit' "$T/a.log"

# --- 421 on a reused connection ---------------------------------------------

start_sink b --421-after 3
PORT_B=$SINK_PORT
B_QIDS=""
for i in $(seq 23 29); do
    body "$i" >"$T/body$i"
    add_job "$PORT_B" "$T/body$i" sender@example.com good$i@example.com
    B_QIDS="$B_QIDS $QID"
done
check "7 jobs to the 421 relay get results" wait_for 30 have_results 29
check "all 7 were delivered" test "$(count '^message ' "$T/b.log")" -eq 7
check "over 3 connections (421 after every 3 messages)" test "$(count '^connect ' "$T/b.log")" -eq 3
check "the 421 was retried, not deferred" \
    test "$(for id in $(seq 23 29); do result_of "$id"; done | grep -c '"0 sent 2.0.0')" -eq 7
check "no deferral was logged for them" \
    test "$(for q in $B_QIDS; do grep "$q: to=" "$MAILLOG"; done | grep -c 'status=deferred')" -eq 0
check "the retry is logged at info" grep -q 'retrying on a new connection' "$MAILLOG"
check "the retried message counts as the first on the new connection" \
    grep -Eq "to=<good26@example.com>, relay=127.0.0.1\[127.0.0.1\]:$PORT_B, conn_use=1, .*status=sent" \
    "$MAILLOG"

# --- no PIPELINING, SIZE limit ------------------------------------------------

start_sink c --no-pipelining --size 400 \
    --rcpt-reply 'busy@example.com=450 4.2.0 mailbox busy'
PORT_C=$SINK_PORT
body 30 >"$T/body30"
add_job "$PORT_C" "$T/body30" "" good30@example.com busy@example.com bad30@example.com
QID_C=$QID
{ body 31; head -c 2000 /dev/zero | tr '\0' 'x'; printf '\r\n'; } >"$T/body31"
add_job "$PORT_C" "$T/body31" sender@example.com good31@example.com
QID_BIG=$QID
check "jobs to the relay without PIPELINING get results" wait_for 15 have_results 31
check "one command at a time: the accepted recipient is sent" \
    grep -q '"0 sent 2.0.0 250 2.0.0 Ok: queued as' <(result_of 30)
check "a 4xx RCPT reply defers that recipient with Postfix's text" \
    grep -q '"1 deferred 4.2.0 host 127.0.0.1\[127.0.0.1\] said: 450 4.2.0 mailbox busy (in reply to RCPT TO command)"' \
    <(result_of 30)
check "the null sender reaches the relay" grep -q '^message conn=1 seq=1 from=<> rcpts=<good30@example.com>,<bad30@example.com>' "$T/c.log"
check "a message over the relay's SIZE is bounced 5.3.4 without being sent" \
    grep -q "\"0 bounced 5.3.4 message size $(stat -c %s "$T/body31") exceeds size limit 400 of server 127.0.0.1\[127.0.0.1\]\"" \
    <(result_of 31)
check "and the relay never saw it" test "$(count '^message ' "$T/c.log")" -eq 1

# --- a stalled greeting times out --------------------------------------------

start_sink d --stall GREETING:10
PORT_D=$SINK_PORT
body 32 >"$T/body32"
add_job "$PORT_D" "$T/body32" sender@example.com good32@example.com
check "the stalled relay's job gets a result" wait_for 15 have_results 32
check "greeting timeout: deferred 4.4.2 with Postfix's reason" \
    grep -q '"0 deferred 4.4.2 conversation with 127.0.0.1\[127.0.0.1\] timed out while receiving the initial server greeting"' \
    <(result_of 32)
check "greeting timeout: the result says the connection is closed" grep -q '"conn": "closed"' <(result_of 32)

# The last connection to relay b is used again after the detours above.
body 33 >"$T/body33"
add_job "$PORT_B" "$T/body33" sender@example.com good33@example.com
check "a job after the detours gets a result" wait_for 15 have_results 33
check "it was sent" grep -q '"0 sent 2.0.0' <(result_of 33)

# --- SIGHUP: a lower reuse count limit retires connections ------------------

echo "smtp_connection_reuse_count_limit = 2" >>"$CONF"
kill -HUP "$SMTPOUT_PID"
check "SIGHUP reloads the configuration" wait_for 5 grep -q "smtpout\[$SMTPOUT_PID\]: reload -- " "$MAILLOG"
check "smtpout survives SIGHUP" kill -0 "$SMTPOUT_PID"
for i in 34 35 36; do
    body "$i" >"$T/body$i"
    add_job "$PORT_A" "$T/body$i" sender@example.com good$i@example.com
done
check "three more jobs to relay a get results" wait_for 15 have_results 36
check "reuse count limit 2: the second message retires the connection" \
    grep -q '"conn": "closed"' <(result_of 35)
check "reuse count limit 2: the third message needs a new connection" \
    test "$(count '^connect ' "$T/a.log")" -eq 3
check "the retired connection ended with QUIT" wait_for 5 grep -q '^close conn=2 reason=quit messages=2' "$T/a.log"

# --- SIGTERM -----------------------------------------------------------------

kill -TERM "$SMTPOUT_PID"
check "SIGTERM: smtpout exits" wait_for 10 bash -c "! kill -0 $SMTPOUT_PID 2>/dev/null"
wait "$SMTPOUT_PID"
ok $? "SIGTERM: exit status 0"
check "SIGTERM: the idle connection ended with QUIT" wait_for 5 grep -q '^close conn=3 reason=quit messages=1' "$T/a.log"
check "no warnings or panics in the log, besides losing qmgr" \
    test "$(grep 'warning: \|panic: \|fatal: ' "$MAILLOG" | grep -vc 'connection to qmgr')" -eq 0

# --- SIGTERM with a transaction in flight ---------------------------------------

start_sink e --stall DOT:1
PORT_E=$SINK_PORT
"${AS_DAEMON[@]}" "$SMTPOUT" -c "$CONF" ${SMTPOUT_FLAGS:-} 2>>"$T/smtpout.err" &
SMTPOUT_PID=$!
PIDS="$PIDS $SMTPOUT_PID"
check "a second smtpout announces itself" wait_for 10 grep -q "^worker pid=$SMTPOUT_PID" "$EVENTS"
body 37 >"$T/body37"
add_job "$PORT_E" "$T/body37" sender@example.com good37@example.com
wait_for 10 grep -q '^connect ' "$T/e.log"
kill -TERM "$SMTPOUT_PID"
check "SIGTERM in flight: the transaction finishes and its result is sent" wait_for 10 have_results 37
check "SIGTERM in flight: the message was sent" grep -q '"0 sent 2.0.0' <(result_of 37)
check "SIGTERM in flight: smtpout exits" wait_for 10 bash -c "! kill -0 $SMTPOUT_PID 2>/dev/null"
wait "$SMTPOUT_PID"
ok $? "SIGTERM in flight: exit status 0"
check "SIGTERM in flight: QUIT after the transaction" wait_for 5 grep -q '^close conn=1 reason=quit messages=1' "$T/e.log"

# --- TLS and SMTP AUTH -------------------------------------------------------

# tls_conf LINES... - the base configuration plus LINES, then SIGHUP the worker
# and wait until it says it reloaded
RELOADS=0
tls_conf() {
    { cat "$CONF"; echo "smtp_connection_reuse_count_limit = 1000"; printf '%s\n' "$@"; } >"$T/tls.conf"
    if [ -n "${SMTPOUT_PID:-}" ] && kill -0 "$SMTPOUT_PID" 2>/dev/null; then
        RELOADS=$((RELOADS + 1))
        kill -HUP "$SMTPOUT_PID"
        wait_for 10 reloaded
    fi
}
# reloaded - whether the worker logged every reload asked of it
reloaded() {
    [ "$(grep -c "smtpout\[$SMTPOUT_PID\]: reload -- " "$MAILLOG")" -ge "$RELOADS" ]
}

# deliver_one PORT N RCPT - one job, waiting for its result; sets QID, JOB
deliver_one() {
    body "$2" >"$T/body$2"
    add_job "$1" "$T/body$2" sender@example.com "$3"
    JOB=$((NEXT_ID - 1))
    wait_for 20 have_results "$JOB"
}

if ! command -v certtool >/dev/null 2>&1; then
    ok 0 "# SKIP TLS and AUTH cases: no certtool"
else
    # A test CA that signs the relay's certificate, and an unrelated one.
    for ca in ca ca2; do
        certtool --generate-privkey --key-type=ecdsa --outfile "$T/$ca.key" >/dev/null 2>&1
        printf 'cn = relayq test %s\nca\ncert_signing_key\nexpiration_days = 2\n' "$ca" >"$T/$ca.tmpl"
        certtool --generate-self-signed --load-privkey "$T/$ca.key" --template "$T/$ca.tmpl" \
            --outfile "$T/$ca.pem" >/dev/null 2>&1
    done
    certtool --generate-privkey --key-type=ecdsa --outfile "$T/srv.key" >/dev/null 2>&1
    printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\nexpiration_days = 2\ntls_www_server\nsigning_key\n' \
        >"$T/srv.tmpl"
    certtool --generate-certificate --load-privkey "$T/srv.key" --load-ca-certificate "$T/ca.pem" \
        --load-ca-privkey "$T/ca.key" --template "$T/srv.tmpl" --outfile "$T/srv.pem" >/dev/null 2>&1
    check "test certificates made" test -s "$T/srv.pem"

    printf 'alice:secret1\n' >"$T/users-f"
    printf 'bob:token-two\n' >"$T/users-h"
    start_sink f --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" --auth-file "$T/users-f" \
        --require-tls --require-auth
    PORT_F=$SINK_PORT
    start_sink h --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" --auth-file "$T/users-h" \
        --require-tls --require-auth
    PORT_H=$SINK_PORT
    printf 'token-one\n' >"$T/token"
    SASL=$T/sasl_passwd
    printf '# relayq test credentials\n[127.0.0.1]:%s alice:secret1\n\n127.0.0.1:%s bob:xoauth2:%s\n' \
        "$PORT_F" "$PORT_H" "$T/token" >"$SASL"
    chmod 600 "$SASL"
    # smtpout takes a credentials file of root or of the user it runs as, and must read it.
    if [ ${#AS_DAEMON[@]} -gt 0 ]; then chown nobody "$SASL"; fi

    # STARTTLS + AUTH PLAIN once, then several jobs over the one connection.
    tls_conf "smtp_tls_security_level = encrypt" "smtp_sasl_auth_enable = yes" \
        "smtp_sasl_password_maps = texthash:$SASL"
    "${AS_DAEMON[@]}" "$SMTPOUT" -c "$T/tls.conf" ${SMTPOUT_FLAGS:-} 2>>"$T/smtpout.err" &
    SMTPOUT_PID=$!
    PIDS="$PIDS $SMTPOUT_PID"
    RELOADS=0
    check "TLS worker announces itself" wait_for 10 grep -q "^worker pid=$SMTPOUT_PID" "$EVENTS"
    for i in 41 42 43 44 45; do
        body "$i" >"$T/body$i"
        add_job "$PORT_F" "$T/body$i" sender@example.com tls$i@example.com
    done
    FIRST_TLS_JOB=$((NEXT_ID - 5))
    check "STARTTLS+AUTH: 5 results" wait_for 20 have_results $((NEXT_ID - 1))
    check "STARTTLS+AUTH: all 5 sent" \
        test "$(for id in $(seq $FIRST_TLS_JOB $((NEXT_ID - 1))); do result_of "$id"; done | grep -c '"0 sent 2.0.0')" -eq 5
    check "STARTTLS+AUTH: one TLS handshake at the server" test "$(count '^tls conn=' "$T/f.log")" -eq 1
    check "STARTTLS+AUTH: one AUTH PLAIN at the server" \
        test "$(count '^auth conn=1 mech=PLAIN user=alice result=ok' "$T/f.log")" -eq 1
    check "STARTTLS+AUTH: one connection, five messages" \
        test "$(count '^connect ' "$T/f.log")" -eq 1 -a "$(count '^message conn=1 ' "$T/f.log")" -eq 5
    check "STARTTLS+AUTH: Postfix's TLS line (Untrusted without the CA)" \
        grep -Eq "smtpout\[$SMTPOUT_PID\]: Untrusted TLS connection established to 127.0.0.1\[127.0.0.1\]:$PORT_F: TLSv1\.[23] with cipher [A-Z0-9_]+ \([0-9]+/[0-9]+ bits\)$" \
        "$MAILLOG"
    check "STARTTLS+AUTH: qmgr hears open, tls and auth_ok" \
        grep -q "^conn event=auth_ok dest=127.0.0.1:$PORT_F" "$EVENTS"
    check "STARTTLS+AUTH: the secret is not in the log" bash -c "! grep -q secret1 '$MAILLOG'"

    # verify against the test CA; a reuse limit of 2 makes a second, resumed, connection.
    tls_conf "smtp_tls_security_level = verify" "smtp_tls_CAfile = $T/ca.pem" \
        "smtp_sasl_auth_enable = yes" "smtp_sasl_password_maps = $SASL" \
        "smtp_connection_reuse_count_limit = 2"
    check "a TLS policy change closes the idle connection (reason=reload)" \
        wait_for 5 grep -q "^conn event=close dest=127.0.0.1:$PORT_F reason=reload messages=5" "$EVENTS"
    for i in 46 47 48; do deliver_one "$PORT_F" "$i" tls$i@example.com; done
    check "verify: the 3 jobs are sent" \
        test "$(for id in $((NEXT_ID - 3)) $((NEXT_ID - 2)) $((NEXT_ID - 1)); do result_of "$id"; done | grep -c '"0 sent 2.0.0')" -eq 3
    check "verify: Verified TLS connection" \
        grep -q "Verified TLS connection established to 127.0.0.1\[127.0.0.1\]:$PORT_F: TLSv1" "$MAILLOG"
    check "verify: the second connection resumes the TLS session" \
        grep -q "Verified TLS connection established to 127.0.0.1\[127.0.0.1\]:$PORT_F: .* (session resumed)$" "$MAILLOG"
    check "verify: the server saw the resumption" grep -q '^tls conn=3 .*resumed=yes' "$T/f.log"
    check "verify: qmgr hears tls resumed=1" grep -q "^conn event=tls dest=127.0.0.1:$PORT_F resumed=1" "$EVENTS"

    # verify against a CA that did not sign the relay's certificate.
    AUTHS_BEFORE=$(count '^auth ' "$T/f.log")
    tls_conf "smtp_tls_security_level = verify" "smtp_tls_CAfile = $T/ca2.pem" \
        "smtp_sasl_auth_enable = yes" "smtp_sasl_password_maps = $SASL"
    deliver_one "$PORT_F" 49 tls49@example.com
    check "unknown CA: deferred 4.7.5 with GnuTLS's reason" \
        grep -q '"0 deferred 4.7.5 Server certificate not trusted: host 127.0.0.1\[127.0.0.1\]: certificate verification failed: The certificate is NOT trusted. The certificate issuer is unknown."' \
        <(result_of $JOB)
    check "unknown CA: the server never saw AUTH" test "$(count '^auth ' "$T/f.log")" -eq "$AUTHS_BEFORE"

    # A wrong password: deferred (never bounced) with the server's reply.
    sed -i "s/alice:secret1/alice:wrong/" "$SASL"
    tls_conf "smtp_tls_security_level = encrypt" "smtp_sasl_auth_enable = yes" \
        "smtp_sasl_password_maps = $SASL"
    deliver_one "$PORT_F" 50 tls50@example.com
    check "wrong password: deferred with Postfix's wording, class 4" \
        grep -q '"0 deferred 4.7.8 SASL authentication failed; server 127.0.0.1\[127.0.0.1\] said: 535 5.7.8 Error: authentication failed"' \
        <(result_of $JOB)
    check "wrong password: qmgr hears auth_fail" grep -q "^conn event=auth_fail dest=127.0.0.1:$PORT_F" "$EVENTS"
    AUTHS_BEFORE=$(count '^auth ' "$T/f.log")
    deliver_one "$PORT_F" 51 tls51@example.com
    check "wrong password: the next job is deferred without logging in again" \
        test "$(count '^auth ' "$T/f.log")" -eq "$AUTHS_BEFORE" -a \
        "$(result_of $JOB | grep -c '"0 deferred 4.7.0 SASL authentication failed; server')" -eq 1
    sed -i "s/alice:wrong/alice:secret1/" "$SASL"
    tls_conf "smtp_tls_security_level = encrypt" "smtp_sasl_auth_enable = yes" \
        "smtp_sasl_password_maps = $SASL"
    deliver_one "$PORT_F" 52 tls52@example.com
    check "password fixed and reloaded: sent" grep -q '"0 sent 2.0.0' <(result_of $JOB)

    # A credentials file other users can read is refused.
    chmod 644 "$SASL"
    tls_conf "smtp_tls_security_level = encrypt" "smtp_sasl_auth_enable = yes" \
        "smtp_sasl_password_maps = $SASL"
    check "mode 0644: refused with a warning" \
        grep -q "warning: $SASL: refusing credentials file: readable by other users (mode 0644)" "$MAILLOG"
    check "mode 0644: the authenticated connection is retired (reason=reload)" \
        wait_for 5 grep -q "^conn event=close dest=127.0.0.1:$PORT_F reason=reload messages=1" "$EVENTS"
    deliver_one "$PORT_F" 53 tls53@example.com
    check "mode 0644: the job is deferred, not sent" \
        grep -q "\"0 deferred 4.7.0 SASL credentials file not usable: $SASL: refusing credentials file: readable by other users (mode 0644)\"" \
        <(result_of $JOB)
    chmod 600 "$SASL"

    # No TLS at all, AUTH on: the secret stays home.
    tls_conf "smtp_tls_security_level = none" "smtp_sasl_auth_enable = yes" \
        "smtp_sasl_password_maps = $SASL"
    AUTHS_BEFORE=$(count '^auth ' "$T/f.log")
    deliver_one "$PORT_F" 54 tls54@example.com
    check "level none with AUTH: deferred, TLS is not active" \
        grep -q '"0 deferred 4.7.0 SASL authentication refused: TLS is not active on the connection to 127.0.0.1\[127.0.0.1\]"' \
        <(result_of $JOB)
    check "level none with AUTH: nothing was sent to AUTH" test "$(count '^auth ' "$T/f.log")" -eq "$AUTHS_BEFORE"

    # XOAUTH2, the token file read again when it changes.
    tls_conf "smtp_tls_security_level = encrypt" \
        "smtp_sasl_auth_enable = yes" "smtp_sasl_password_maps = hash:$SASL"
    deliver_one "$PORT_H" 55 tls55@example.com
    check "XOAUTH2 with a stale token: deferred" \
        grep -q '"0 deferred 4.7.8 SASL authentication failed; server 127.0.0.1\[127.0.0.1\] said: 535' <(result_of $JOB)
    check "XOAUTH2: the server saw the stale token fail" \
        grep -q '^auth conn=1 mech=XOAUTH2 user=bob result=fail' "$T/h.log"
    printf 'token-two\n' >"$T/token.new"
    mv "$T/token.new" "$T/token"
    deliver_one "$PORT_H" 56 tls56@example.com
    check "XOAUTH2: the new token is read without a reload, and the job sent" \
        grep -q '"0 sent 2.0.0' <(result_of $JOB)
    check "XOAUTH2: the server saw it succeed" grep -q '^auth conn=2 mech=XOAUTH2 user=bob result=ok' "$T/h.log"

    # Level may and a handshake that cannot succeed (the relay speaks only
    # TLS 1.1): the job goes out at once on one plaintext connection.
    start_sink j --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" \
        --tls-priority "NORMAL:-VERS-ALL:+VERS-TLS1.1"
    PORT_J=$SINK_PORT
    tls_conf "smtp_tls_security_level = may"
    deliver_one "$PORT_J" 57 tls57@example.com
    check "may: a failed handshake does not cost the message" grep -q '"0 sent 2.0.0' <(result_of $JOB)
    check "may: the failure is logged, then plaintext on a new connection" \
        grep -q "$QID: TLS handshake with 127.0.0.1\[127.0.0.1\]:$PORT_J failed: .*; retrying on a new connection without TLS" \
        "$MAILLOG"
    check "may: two connections, the message on the second" \
        test "$(count '^connect ' "$T/j.log")" -eq 2 -a "$(count '^message conn=2 ' "$T/j.log")" -eq 1

    kill -TERM "$SMTPOUT_PID"
    check "TLS worker: exits on SIGTERM" wait_for 10 bash -c "! kill -0 $SMTPOUT_PID 2>/dev/null"
    check "TLS worker: no panic, no unexpected warning" \
        test "$(grep "smtpout\[$SMTPOUT_PID\]: \(warning\|panic\|fatal\)" "$MAILLOG" | grep -vc 'refusing credentials\|SASL authentication failed')" -eq 0
fi

echo "1..$TAP_COUNT"
[ "$TAP_FAILED" -eq 0 ]
