#!/bin/bash
# t_dsn - DSN parameters go upstream (RFC 3461): relayq sendmail -N/-R/-V
# become RET and ENVID on MAIL FROM (ENVID in xtext) and NOTIFY on each
# RCPT TO when the relay's EHLO offers DSN, with and without PIPELINING;
# a relay without DSN gets none of them and the message is still
# delivered. The relay's DSN support also decides who sends the success
# notice: with DSN upstream the relay does (qmgr sends no "relayed"
# notice), without it qmgr does (and relayq stats counts it). What the
# relay received is read from smtpsink's "message" log line (mail_params=,
# rcpt_params=). Part 4 runs smtpout under a fake qmgr, for what relayq
# sendmail cannot ask for (an ORCPT) and for the strict decoding of the
# new type=deliver attributes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# sink_line - the sink's "message" line of one Message-ID: sink_line TAG
sink_line() {
    grep "^message .* msgid=<$1@relayq.test> " "$SINK_LOG" 2>/dev/null | head -n 1
}

# sink_got - whether the message with Message-ID TAG arrived: sink_got TAG
sink_got() {
    [ -n "$(sink_line "$1")" ]
}

# notices_to - relayed/delivery notices (null sender) that reached ADDRESS: notices_to ADDRESS
notices_to() {
    local n
    n=$(grep -c "^message .* from=<> rcpts=<$1>" "$SINK_LOG" 2>/dev/null)
    echo "${n:-0}"
}

# send - relayq sendmail with DSN options: send TAG RCPT... (uses $DSN_ARGS)
send() {
    local tag=$1
    shift
    printf 'Subject: dsn %s\nMessage-ID: <%s@relayq.test>\n\nbody %s\n' "$tag" "$tag" "$tag" |
        "$RELAYQ" sendmail "${DSN_ARGS[@]}" -f s@example.com "$@"
}

# maildrop_send - the same envelope as "send" (-N success,failure -R hdrs),
# written as a maildrop file, for an ENVID that relayq sendmail -V refuses:
# maildrop_send TAG ENVID RCPT
maildrop_send() {
    python3 - "$T/queue/maildrop" "$@" <<'PY'
import os, secrets, sys, time
mdir, tag, envid, rcpt = sys.argv[1:5]
uid = os.getuid()
if uid == 0:
    import pwd
    pw = pwd.getpwnam("nobody")
    uid = pw.pw_uid
now = time.time()
data = (f"type=maildrop\nversion=1\nuid={uid}\nposted={int(now)}\nsender=s@example.com\n"
        f"notify=success,failure\nret=hdrs\nenvid={envid}\nrcpt={rcpt}\n\n"
        f"Subject: dsn {tag}\nMessage-ID: <{tag}@relayq.test>\n\nbody {tag}\n")
tmp = os.path.join(mdir, f"tmp.{os.getpid()}.{secrets.token_hex(4)}")
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, data.encode())
if os.getuid() == 0:
    os.fchown(fd, uid, -1)
os.close(fd)
os.rename(tmp, os.path.join(mdir, f"{int(now)}.{int(now * 1e6) % 1000000:06d}.{os.getpid()}.x"))
PY
}

if ! command -v python3 >/dev/null; then
    echo "1..0 # SKIP python3 not found"
    exit 0
fi

rq_setup
sink_start --maildir "$T/sink" --dsn
ok $? "test SMTP server with DSN listens on 127.0.0.1:$SINK_PORT"
"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"
ok $? "qmgr is listening"

# 1. The relay offers DSN and PIPELINING.
DSN_ARGS=(-N success,failure -R hdrs -V ENV-1+x)
if send dsn1 a@example.com 2>"$T/sendmail.err"; then
    ok 0 "relayq sendmail -N success,failure -R hdrs -V ENV-1+x"
else
    # relayq sendmail allows no "+" in -V; the queue and smtpout take any printable ENVID.
    diag "relayq sendmail refused -V ENV-1+x: $(cat "$T/sendmail.err")"
    diag "queuing the same envelope as a maildrop file instead"
    maildrop_send dsn1 ENV-1+x a@example.com # pickup scans maildrop/ every 5 s
    ok $? "the same envelope queued through the maildrop directory"
fi
wait_for 20 sink_got dsn1
ok $? "the message arrived at the DSN relay"
line=$(sink_line dsn1)
diag "$line"
check "MAIL FROM carried RET=HDRS and ENVID=ENV-1+2Bx (xtext)" -- \
    grep -Eq ' mail_params=<([^>]* )?RET=HDRS ENVID=ENV-1\+2Bx>' <<<"$line"
check "RCPT TO carried NOTIFY=SUCCESS,FAILURE" -- \
    grep -q ' rcpt_params=<NOTIFY=SUCCESS,FAILURE>$' <<<"$line"
wait_for 10 queue_empty
ok $? "the queue is empty afterwards"
check "smtpout logged the delivery as sent" -- log_has 1 'to=<a@example.com>, .*status=sent'

# 2. DSN without PIPELINING: one RCPT TO per reply, each with its NOTIFY.
sink_stop
sink_start --maildir "$T/sink" --dsn --no-pipelining
ok $? "test SMTP server restarted with DSN, without PIPELINING"
DSN_ARGS=(-N delay -R full -V ENV-2)
send dsn2 b@example.com c@example.com
ok $? "relayq sendmail -N delay -R full -V ENV-2 to two recipients"
wait_for 20 sink_got dsn2
ok $? "the message arrived"
line=$(sink_line dsn2)
diag "$line"
check "MAIL FROM carried RET=FULL ENVID=ENV-2" -- \
    grep -Eq ' mail_params=<([^>]* )?RET=FULL ENVID=ENV-2>' <<<"$line"
check "each RCPT TO carried NOTIFY=DELAY" -- \
    grep -q ' rcpt_params=<NOTIFY=DELAY>,<NOTIFY=DELAY>$' <<<"$line"
wait_for 10 queue_empty
ok $? "the queue is empty afterwards"

# 3. A relay without DSN: no DSN parameter at all, and the mail still goes.
sink_stop
sink_start --maildir "$T/sink"
ok $? "test SMTP server restarted without DSN"
DSN_ARGS=(-N success,failure -R hdrs -V ENV-3)
send dsn3 d@example.com
ok $? "relayq sendmail -N success,failure -R hdrs -V ENV-3"
wait_for 20 sink_got dsn3
ok $? "the message arrived at the relay without DSN"
line=$(sink_line dsn3)
diag "$line"
check "no RET, ENVID, NOTIFY or ORCPT was sent" -- \
    bash -c '! grep -Eq "RET=|ENVID=|NOTIFY=|ORCPT=" <<<"$1"' _ "$line"
check "the recipient had no parameters" -- grep -q ' rcpt_params=-$' <<<"$line"
check "smtpout logged the delivery as sent" -- log_has 1 'to=<d@example.com>, .*status=sent'
# NOTIFY=SUCCESS and a relay that cannot pass it on: relayq says "relayed" itself.
# has_notice - whether a notice to an address arrived: has_notice ADDRESS
has_notice() {
    [ "$(notices_to "$1")" -ge 1 ]
}
wait_for 20 has_notice s@example.com
ok $? "qmgr sent the sender a relayed notice"
# With DSN upstream (parts 1 and 2) the relay sends the success notices, not relayq.
check "only that one: none for the messages the DSN relay took" -- \
    test "$(notices_to s@example.com)" -eq 1
notice=$(grep -l 'relayed' "$T"/sink/*.eml | xargs grep -l 'ENV-3' | head -n 1)
check "the notice says relayed and names ENVID ENV-3" -- test -n "$notice"
# only_success_notice - relayq stats counts that one success notice and no other
only_success_notice() { notices_is success 1 && notices_is failure 0 && notices_is delay 0; }
check "relayq stats counts one success notice, no failure or delay notice" -- only_success_notice
wait_for 10 queue_empty
ok $? "the queue is empty afterwards"

"$RELAYQ" stop
ok $? "relayq stop"

# 4. smtpout alone, fed by a fake qmgr: ORCPT in xtext, NOTIFY=NEVER, the
# result's upstream_dsn=1, and the strict decoder refusing bad DSN
# attributes (smtpout drops the qmgr connection on a record it cannot decode).
QSTORE_PUT=$top_builddir/tests/qstore_put
if [ ! -x "$QSTORE_PUT" ]; then
    diag "part 4 skipped: $QSTORE_PUT not built (make check builds it)"
    tap_end
    exit
fi
sink_stop
sink_start --maildir "$T/sink" --dsn
ok $? "test SMTP server restarted with DSN"
D=$T/direct
mkdir -p "$D/queue/private"
cat >"$D/relayq.conf" <<CONF
queue_directory = $D/queue
maillog_file = $D/maillog
myhostname = relayq.test
queue_map_size = 64m
# the fake qmgr serves one worker
smtpout_sessions_per_worker = 1
CONF
printf 'Subject: direct\r\nMessage-ID: <dsn4@relayq.test>\r\n\r\nbody\r\n' >"$D/body"
QID=$("$QSTORE_PUT" "$D/queue" "$D/body" s@example.com e@example.com f@example.com)
ok $? "a message queued for smtpout alone ($QID)"
# The daemons refuse to run as root: as root, smtpout runs as nobody
# (setpriv execs it, so $! is smtpout's pid) and needs the queue and the
# directory of its maillog.
AS_DAEMON=()
if [ "$(id -u)" -eq 0 ]; then
    chown -R nobody "$D"
    AS_DAEMON=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi

# The fake qmgr sends each job once and notes the result, or null when
# smtpout dropped the connection instead (then it waits for the reconnect).
cat >"$D/fakeqmgr.py" <<'PY'
import json, os, socket, sys, time
sock_path, qid, port, size, out_path = sys.argv[1:6]
now = int(time.time() * 1000)
base = [('id', '1'), ('queue_id', qid), ('relay', '127.0.0.1'), ('port', port),
        ('sender', 's@example.com'), ('size', size), ('arrival_ms', str(now - 50)),
        ('active_ms', str(now - 20)), ('rcpt', '0 e@example.com'), ('rcpt', '1 f@example.com')]
jobs = [
    ('good', [('ret', 'FULL'), ('envid', 'E 1'), ('notify', '0 never'),
              ('orcpt', '0 rfc822;a+b=c@example.com'), ('notify', '1 delay,success')]),
    ('index', [('notify', '7 success')]),
    ('unknown', [('foo', '1')]),
    ('ret', [('ret', 'bogus')]),
    ('twice', [('notify', '0 never'), ('notify', '0 success')]),
]

def record(rtype, attrs):
    return ('type=%s\n' % rtype + ''.join('%s=%s\n' % kv for kv in attrs) + '\n').encode()

def read(sock, buf):
    while True:
        buf[0] = buf[0].lstrip(b'\n')
        i = buf[0].find(b'\n\n')
        if i >= 0:
            raw, buf[0] = buf[0][:i], buf[0][i + 2:]
            rec = [list(l.partition('=')[::2]) for l in raw.decode().split('\n')]
            if rec[0] != ['type', 'conn']:
                return rec
            continue
        data = sock.recv(65536)
        if not data:
            return None
        buf[0] += data

srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sock_path)
os.chmod(sock_path, 0o666)  # smtpout may run as nobody
srv.listen(5)
srv.settimeout(30)
while jobs:
    sock, _ = srv.accept()
    buf = [b'']
    sock.sendall(record('hello', [('protocol', 'relayq-qmgr-1')]))
    if read(sock, buf) is None:
        continue
    while jobs:
        name, extra = jobs.pop(0)
        sock.sendall(record('deliver', base + extra))
        rec = read(sock, buf)
        with open(out_path, 'a') as f:
            f.write(json.dumps({'job': name, 'result': rec}) + '\n')
        if rec is None:
            break
    sock.close()
PY
python3 "$D/fakeqmgr.py" "$D/queue/private/qmgr" "$QID" "$SINK_PORT" "$(stat -c %s "$D/body")" \
    "$D/results" 2>"$D/fakeqmgr.err" &
QMGR_PID=$!
wait_for 10 test -S "$D/queue/private/qmgr"
# rq_setup's copy: the build tree may be one nobody cannot enter.
"${AS_DAEMON[@]}" "$T/libexec/smtpout" -c "$D/relayq.conf" 2>>"$D/smtpout.err" &
SMTPOUT_PID=$!
results_in() { [ "$(cat "$D/results" 2>/dev/null | wc -l)" -ge "$1" ]; }
wait_for 30 results_in 5
ok $? "the fake qmgr saw an outcome of each of its 5 jobs"
kill "$SMTPOUT_PID" "$QMGR_PID" 2>/dev/null
wait "$SMTPOUT_PID" "$QMGR_PID" 2>/dev/null
line=$(sink_line dsn4)
diag "$line"
check "MAIL FROM: RET=FULL (from ret=FULL) and ENVID=E+201 (xtext)" -- \
    grep -Eq ' mail_params=<([^>]* )?RET=FULL ENVID=E\+201>' <<<"$line"
check "RCPT TO: NOTIFY=NEVER ORCPT=rfc822;a+2Bb+3Dc@example.com, then NOTIFY=SUCCESS,DELAY" -- \
    grep -q ' rcpt_params=<NOTIFY=NEVER ORCPT=rfc822;a+2Bb+3Dc@example.com>,<NOTIFY=SUCCESS,DELAY>$' <<<"$line"
result_of() { grep "\"job\": \"$1\"" "$D/results"; }
good=$(result_of good)
check "the result has upstream_dsn=1" -- grep -q '\["upstream_dsn", "1"\]' <<<"$good"
check "both recipients were sent" -- test "$(grep -Eo '"[01] sent ' <<<"$good" | wc -l)" -eq 2
for bad in index unknown ret twice; do
    check "a job with bad DSN attributes ($bad) is refused" -- \
        grep -q '"result": null' <<<"$(result_of "$bad")"
done
check "smtpout logs why" -- bash -c \
    'grep -q "not a recipient of the job" "$1" && grep -q "unexpected attribute foo" "$1" &&
     grep -q "bad ret" "$1" && grep -q "notify for index 0 repeated" "$1"' _ "$D/maillog"
tap_end
