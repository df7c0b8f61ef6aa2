#!/bin/sh
# t_smtpsink.sh - TAP test of tests/smtpsink/smtpsink, the test SMTP relay
#
# Starts smtpsink on 127.0.0.1 port 0 in a temporary directory and talks
# to it with python3 (raw sockets where exact bytes matter, smtplib for
# STARTTLS and AUTH). Reads $top_builddir and $top_srcdir (default: the
# repository root). Every server started is killed on exit.

here=$(cd "$(dirname "$0")/.." && pwd)
top_builddir=${top_builddir:-$here}
top_srcdir=${top_srcdir:-$here}
SINK=$top_builddir/tests/smtpsink/smtpsink

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_smtpsink.XXXXXX") || exit 1
pid=
n=0
failed=0

cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# result - print one TAP line: result STATUS DESCRIPTION
result() {
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=1
    fi
}

# skip - print a skipped TAP line
skip() {
    n=$((n + 1))
    echo "ok $n - $1 # SKIP $2"
}

# start_sink - start smtpsink with a fresh directory $tmp/$1; sets pid, port, dir
start_sink() {
    name=$1
    shift
    dir=$tmp/$name
    mkdir -p "$dir/md"
    "$SINK" --listen 127.0.0.1:0 --port-file "$dir/port" --pid-file "$dir/pid" \
        --log "$dir/log" --maildir "$dir/md" "$@" 2>"$dir/stderr" &
    pid=$!
    i=0
    # Bounded wait for the port file (written once the socket listens).
    while [ ! -s "$dir/port" ] && [ $i -lt 250 ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.02
        i=$((i + 1))
    done
    port=$(cat "$dir/port" 2>/dev/null)
    export port dir
    [ -n "$port" ]
}

# stop_sink - SIGTERM the current server and wait for it
stop_sink() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=
    fi
}

# py - run a python3 check program from stdin with common helpers; exit 0 = pass
py() {
    { cat <<'EOF'
import os, socket, sys, time
PORT = int(os.environ["port"])
DIR = os.environ["dir"]

def fail(msg):
    print("# " + str(msg).replace("\n", "\n# "))
    sys.exit(1)

class Raw:
    """A plain socket speaking line-wise SMTP."""
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        self.f = self.s.makefile("rb")
    def send(self, data):
        self.s.sendall(data)
    def reply(self):
        """Read one (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            l = self.f.readline()
            if not l:
                return (None, lines)
            lines.append(l.decode().rstrip("\r\n"))
            if len(l) < 4 or l[3:4] != b"-":
                return (int(l[:3]), lines)

def log_lines():
    with open(os.path.join(DIR, "log")) as f:
        return f.read().splitlines()

def wait_log(pred, timeout=3.0):
    end = time.time() + timeout
    while time.time() < end:
        for l in log_lines():
            if pred(l):
                return l
        time.sleep(0.02)
    return None

def codes(c, data, n):
    """Send data in one write; the codes of the next n replies (None: closed)."""
    c.send(data)
    return [c.reply()[0] for _ in range(n)]

def stats_reads():
    """SIGUSR1 the server and return reads=N of the new stats line."""
    before = sum(1 for l in log_lines() if l.startswith("stats "))
    with open(os.path.join(DIR, "pid")) as f:
        os.kill(int(f.read()), 10)
    if not wait_log(lambda l: sum(1 for x in log_lines() if x.startswith("stats ")) > before):
        fail("no new stats line")
    return int([l for l in log_lines() if l.startswith("stats ")][-1].split("reads=")[1])

def wait_reads(n):
    """Wait until the server has had at least n reads that returned data."""
    end = time.time() + 3
    while time.time() < end:
        if stats_reads() >= n:
            return
    fail("the server never read %d times" % n)
EOF
      cat; } > "$tmp/check.py"
    python3 "$tmp/check.py"
}

if [ ! -x "$SINK" ]; then
    echo "Bail out! $SINK not built"
    exit 1
fi

echo "1..22"

# --- plain SMTP ---------------------------------------------------------
start_sink plain --size 1000000 --hostname sink.example \
    --rcpt-reply 'bad@example.com=550 5.1.1 no such user' \
    --rcpt-reply 'Soft@Example.com=451 4.3.0 later@2'
result $? "server starts and writes its port file"

grep -q "^listen port=$port\$" "$dir/log" && [ "$(cat "$dir/pid")" = "$pid" ]
result $? "listen event logged, pid file written"

py <<'EOF'
c = Raw()
code, lines = c.reply()
if code != 220 or "sink.example" not in lines[0]:
    fail(lines)
c.send(b"EHLO client.example\r\n")
code, lines = c.reply()
kw = [l[4:] for l in lines[1:]]
for want in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 1000000"):
    if want not in kw:
        fail("missing %s in %s" % (want, kw))
for unwanted in ("STARTTLS", "AUTH PLAIN LOGIN XOAUTH2", "SMTPUTF8", "DSN"):
    if unwanted in kw:
        fail("unexpected %s in %s" % (unwanted, kw))
EOF
result $? "greeting and EHLO keywords"

py <<'EOF'
c = Raw()
c.reply()
# Everything in one write: PIPELINING must answer each command in order.
c.send(b"EHLO x\r\nMAIL FROM:<sender@example.org> SIZE=120\r\n"
       b"RCPT TO:<rcpt@example.com>\r\nRCPT TO:<other@example.com>\r\nDATA\r\n")
codes = [c.reply()[0] for _ in range(5)]
if codes != [250, 250, 250, 250, 354]:
    fail(codes)
body = (b"Message-ID: <t1@example.org>\r\nSubject: dots\r\n\r\n"
        b".leading dot\r\n..two dots\r\n.\r\n\r\n. space\r\nlast\r\n")
stuffed = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                   for l in body.split(b"\r\n")[:-1])
c.send(stuffed + b".\r\nQUIT\r\n")
code, lines = c.reply()
if code != 250:
    fail(lines)
if c.reply()[0] != 221:
    fail("no 221 to QUIT")
with open(os.path.join(DIR, "md", "2-1.eml"), "rb") as f:
    stored = f.read()
if stored != body:
    fail("stored %r, sent %r" % (stored, body))
want = ("message conn=2 seq=1 from=<sender@example.org> "
        "rcpts=<rcpt@example.com>,<other@example.com> size=%d msgid=<t1@example.org> "
        "reads_in_transaction=2 mail_params=<SIZE=120> rcpt_params=-,-" % len(body))
if not wait_log(lambda l: l == want):
    fail("no log line %r in %r" % (want, log_lines()))
EOF
result $? "pipelined message stored, dot-stuffing undone, logged with msgid"

py <<'EOF'
# Each part waits until the server has read the one before (stats reads=N),
# so that every write is one read of its own: 2 + 4 reads in all.
c = Raw()
c.reply()
c.send(b"EHLO x\r\n")
c.reply()
r0 = stats_reads()
if r0 < 1:
    fail("reads=%d after EHLO" % r0)
c.send(b"MAIL FROM:<split@example.org>\r\nRC")
wait_reads(r0 + 1)
if codes(c, b"PT TO:<c@d>\r\nDATA\r\n", 3) != [250, 250, 354]:
    fail("MAIL RCPT DATA")
c.send(b"Message-ID: <split@x>\r\n\r\nbody\r\n")
wait_reads(r0 + 3)
c.send(b".\r\n")
if c.reply()[0] != 250:
    fail("dot")
if not wait_log(lambda l: l.startswith("message ") and "msgid=<split@x> reads_in_transaction=4 " in l):
    fail(log_lines())
if stats_reads() != r0 + 4:
    fail("reads=%d, want %d" % (stats_reads(), r0 + 4))
EOF
result $? "reads are counted exactly: per message from MAIL to the dot, in total in stats"

py <<'EOF'
import smtplib
s = smtplib.SMTP("127.0.0.1", PORT, timeout=5)
refused = s.sendmail("a@example.org", ["ok@example.com", "bad@example.com", "soft@example.com"],
                     "Subject: x\r\n\r\nx\r\n")
if refused != {"bad@example.com": (550, b"5.1.1 no such user"),
               "soft@example.com": (451, b"4.3.0 later")}:
    fail(refused)
if s.docmd("MAIL FROM:<a@example.org>")[0] != 250:
    fail("MAIL")
codes = [s.docmd("RCPT TO:<soft@example.com>")[0] for _ in range(2)]
if codes != [451, 250]:
    fail("soft recipient after @2: %s" % codes)
s.rset()
s.quit()
if not wait_log(lambda l: l.startswith("reject conn=4 cmd=RCPT reply=550")):
    fail("no reject line")
EOF
result $? "--rcpt-reply permanent and counted (@TIMES) replies"

py <<'EOF'
c = Raw()
c.reply()
c.send(b"HELO x\r\nMAIL FROM:<a@b> SIZE=2000000\r\nXYZZY\r\nMAIL FROM:<a@b> FOO=1\r\nRCPT TO:<c@d>\r\n"
       + b"NOOP " + b"x" * 5000 + b"\r\nNOOP\r\nVRFY u\r\nQUIT\r\n")
codes = [c.reply()[0] for _ in range(9)]
if codes != [250, 552, 502, 555, 503, 500, 250, 252, 221]:
    fail(codes)
EOF
result $? "SIZE limit, unknown command, bad parameter, sequence, line length"
stop_sink

# --- fault injection -------------------------------------------------------
start_sink faults --421-after 2 --drop-in-data after --drop-every 3
py <<'EOF'
import smtplib
s = smtplib.SMTP("127.0.0.1", PORT, timeout=5)
for i in range(2):
    s.sendmail("a@b", ["c@d"], "Message-ID: <f%d@x>\r\n\r\nbody\r\n" % i)
try:
    s.sendmail("a@b", ["c@d"], "x\r\n")
    fail("third message accepted")
except smtplib.SMTPSenderRefused as e:
    if e.smtp_code != 421:
        fail(e)
if not wait_log(lambda l: l == "close conn=1 reason=421 messages=2"):
    fail(log_lines())
EOF
result $? "--421-after closes the session with 421"

py <<'EOF'
import smtplib
s = smtplib.SMTP("127.0.0.1", PORT, timeout=5)
try:
    s.sendmail("a@b", ["c@d"], "Message-ID: <drop@x>\r\n\r\nbody\r\n")
    fail("dropped message got a reply")
except smtplib.SMTPServerDisconnected:
    pass
if not wait_log(lambda l: l == "drop conn=2 where=after-dot"):
    fail(log_lines())
if not wait_log(lambda l: l.startswith("message conn=2 seq=3 ") and "msgid=<drop@x> reads_in_transaction=" in l and l.endswith(" mail_params=- rcpt_params=-")):
    fail(log_lines())
EOF
result $? "--drop-in-data after: counted, then dropped without reply"
stop_sink

start_sink stall --stall MAIL:0.6
py <<'EOF'
slow = Raw()
slow.reply()
t0 = time.time()
slow.send(b"HELO x\r\nMAIL FROM:<a@b>\r\n")
fast = Raw()
fast.reply()
fast.send(b"NOOP\r\n")
if fast.reply()[0] != 250 or time.time() - t0 > 0.4:
    fail("stall blocked another connection")
codes = [slow.reply()[0] for _ in range(2)]
if codes != [250, 250] or time.time() - t0 < 0.5:
    fail("MAIL not stalled: %s after %.2fs" % (codes, time.time() - t0))
EOF
result $? "--stall delays one connection without blocking others"
stop_sink

# --- --chunking (BDAT) -------------------------------------------------------------
start_sink chunking --chunking --size 100
py <<'EOF'
c = Raw()
c.reply()
c.send(b"EHLO x\r\n")
if "CHUNKING" not in [l[4:] for l in c.reply()[1]]:
    fail("no CHUNKING")
# MAIL, RCPT and BDAT LAST in one write: one read, answered in order, raw content.
body = b"Message-ID: <b1@x>\r\n\r\n.lead\r\n.\r\nend\r\n"
c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT %d LAST\r\n" % len(body) + body)
codes = [c.reply() for _ in range(3)]
if [x[0] for x in codes] != [250, 250, 250] or "queued as" not in codes[2][1][0]:
    fail(codes)
with open(os.path.join(DIR, "md", "1-1.eml"), "rb") as f:
    if f.read() != body:
        fail("stored content differs")
if not wait_log(lambda l: l.startswith("message conn=1 seq=1 ") and
                ("size=%d msgid=<b1@x> bdat_chunks=1 reads_in_transaction=1 mail_params=-" % len(body)) in l):
    fail(log_lines())
# Chunks split across reads, then an empty LAST chunk.
c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 10\r\nabc")
r = stats_reads()
c.send(b"defghij" + b"BDAT 3\r\nxyz")
wait_reads(r + 1)
c.send(b"BDAT 0 LAST\r\n")
codes = [c.reply() for _ in range(5)]
if [x[0] for x in codes] != [250] * 5 or codes[2][1] != ["250 2.0.0 Ok: 10 octets"]:
    fail(codes)
with open(os.path.join(DIR, "md", "1-2.eml"), "rb") as f:
    if f.read() != b"abcdefghijxyz":
        fail("chunks stored wrong")
if not wait_log(lambda l: l.startswith("message conn=1 seq=2 ") and
                " size=13 msgid=- bdat_chunks=3 reads_in_transaction=3 " in l):
    fail(log_lines())
EOF
result $? "--chunking: CHUNKING offered, MAIL RCPT BDAT LAST in one read, chunks stored raw"

py <<'EOF'
c = Raw()
c.reply()
# EHLO, BDAT without MAIL, NOOP, MAIL, BDAT without RCPT, RCPT, BDAT,
# DATA after BDAT, BDAT over --size (ends the transaction), BDAT without
# MAIL again, a 21-digit size, bad syntax, NOOP.
got = codes(c, b"EHLO x\r\nBDAT 4\r\nRSETNOOP\r\n"
            b"MAIL FROM:<a@b>\r\nBDAT 3\r\nabcRCPT TO:<c@d>\r\nBDAT 2\r\nxyDATA\r\n"
            b"BDAT 101 LAST\r\n" + b"x" * 101 + b"BDAT 1 LAST\r\nz"
            b"BDAT 123456789012345678901\r\nBDAT 5 LASTX\r\nNOOP\r\n", 13)
if got != [250, 503, 250, 250, 503, 250, 250, 503, 552, 503, 501, 501, 250]:
    fail(got)
if any(l.startswith("message conn=2 ") for l in log_lines()):  # logged before any reply
    fail("a refused message was accepted")
EOF
result $? "--chunking: 503 without MAIL/RCPT and for DATA after BDAT, 552 over --size, 501 for a bad size"
stop_sink

start_sink bdatfaults --chunking --drop-in-data after@1 --stall BODY:0.5@1
py <<'EOF'
def bdat_message(tag):
    c = Raw()
    c.reply()
    body = b"Message-ID: <%s@x>\r\n\r\nx\r\n" % tag
    return c, codes(c, b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT %d LAST\r\n"
                    % len(body) + body, 4)
t0 = time.time()
c, got = bdat_message(b"f1")
if got != [250, 250, 250, None] or time.time() - t0 < 0.5:
    fail("stall, then drop after BDAT LAST: %s after %.2fs" % (got, time.time() - t0))
if not wait_log(lambda l: l == "stall conn=1 cmd=BODY ms=500") or \
   not wait_log(lambda l: l == "drop conn=1 where=after-bdat-last") or \
   not wait_log(lambda l: l.startswith("message conn=1 ") and "msgid=<f1@x>" in l):
    fail(log_lines())
t0 = time.time()
c, got = bdat_message(b"f2")
if got != [250, 250, 250, 250] or time.time() - t0 > 0.4:
    fail("healthy again: %s" % got)
if not wait_log(lambda l: "msgid=<f2@x>" in l):
    fail(log_lines())
EOF
result $? "--chunking: --stall BODY and --drop-in-data after act on BDAT (@1: once)"
stop_sink

start_sink bdatdrop --chunking --drop-in-data before --reply 'BDAT:452 4.3.1 full@1'
py <<'EOF'
c = Raw()
c.reply()
# --reply BDAT answers the first chunk and so ends the transaction.
got = codes(c, b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3\r\nabcBDAT 3 LAST\r\nabc"
            b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3 LAST\r\nabc", 8)
if got != [250, 250, 250, 452, 503, 250, 250, None]:
    fail(got)
if not wait_log(lambda l: l == "drop conn=1 where=before-bdat-last"):
    fail(log_lines())
if any(l.startswith("message ") for l in log_lines()):  # logged before the drop
    fail("message stored despite the drop before")
EOF
result $? "--chunking: --reply BDAT answers a chunk; --drop-in-data before drops at BDAT LAST"
stop_sink

# --- --delay ---------------------------------------------------------------------
start_sink delay --delay 300
py <<'EOF'
# The server counts its 300 ms on its loop's millisecond clock, read when the
# command arrived: a reply may come a millisecond before 300 ms of ours.
EARLY = 0.25
t0 = time.time()
c = Raw()
if c.reply()[0] != 220 or time.time() - t0 < EARLY:
    fail("greeting not delayed: %.2fs" % (time.time() - t0))
# Pipelined: every reply 300 ms after its command, in order, not one after another.
t0 = time.time()
got = codes(c, b"EHLO x\r\nNOOP\r\nVRFY u\r\nHELP\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 7)
t = time.time() - t0
if got != [250, 250, 252, 214, 250, 250, 354] or not EARLY <= t < 1.0:
    fail("pipelined: %s after %.2fs" % (got, t))
t0 = time.time()
got = codes(c, b"Message-ID: <delay@x>\r\n\r\nbody\r\n.\r\nQUIT\r\n", 2)
t = time.time() - t0
if got != [250, 221] or not EARLY <= t < 1.0 or c.f.read() != b"":
    fail("end of data and QUIT: %s after %.2fs" % (got, t))
if not wait_log(lambda l: l.startswith("message ") and "msgid=<delay@x> " in l):
    fail(log_lines())
EOF
result $? "--delay: greeting, pipelined replies and the reply to the dot each 300 ms late, in order"

py <<'EOF'
# 20 connections, 5 commands each one after another: 6 x 300 ms apart
# from the greeting, whatever the others do; a server that waited for each
# delay in turn, or polled without a timeout, would fail the time or CPU.
def cpu():
    with open("/proc/%d/stat" % int(open(os.path.join(DIR, "pid")).read())) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
cpu0, t0 = cpu(), time.time()
conns = [Raw() for _ in range(20)]
for c in conns:
    if c.reply()[0] != 220:
        fail("greeting")
for i in range(5):
    for c in conns:
        c.send(b"NOOP\r\n")
    for c in conns:
        if c.reply()[0] != 250:
            fail("NOOP")
t = time.time() - t0
if not 1.8 <= t < 3.5:
    fail("20 connections x 6 replies took %.2fs" % t)
if cpu() - cpu0 > 0.5:
    fail("the server used %.2fs of CPU while waiting" % (cpu() - cpu0))
EOF
result $? "--delay: connections are delayed side by side, without a busy loop"
stop_sink

# --- TLS and AUTH ------------------------------------------------------------
if command -v certtool >/dev/null 2>&1; then
    certtool --generate-privkey --key-type=ecdsa --outfile "$tmp/key.pem" >/dev/null 2>&1
    printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\nexpiration_days = 7\ntls_www_server\n' \
        >"$tmp/cert.tmpl"
    certtool --generate-self-signed --load-privkey "$tmp/key.pem" --template "$tmp/cert.tmpl" \
        --outfile "$tmp/cert.pem" >/dev/null 2>&1
fi
if [ -s "$tmp/cert.pem" ]; then
    printf 'alice:s3cret\n' >"$tmp/users"
    start_sink tls --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
        --auth-file "$tmp/users" --require-tls --require-auth
    py <<'EOF'
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", PORT, timeout=5)
s.ehlo()
if not s.has_extn("starttls") or s.has_extn("auth"):
    fail("before TLS: %s" % s.esmtp_features)
if s.docmd("MAIL FROM:<a@b>")[0] != 530:
    fail("MAIL before STARTTLS accepted")
s.starttls(context=ctx)
s.ehlo()
if s.has_extn("starttls") or "PLAIN" not in s.esmtp_features.get("auth", ""):
    fail("after TLS: %s" % s.esmtp_features)
if s.docmd("MAIL FROM:<a@b>")[0] != 530:
    fail("MAIL before AUTH accepted")
s.login("alice", "s3cret")
# smtplib waits for each reply: MAIL, RCPT, DATA, content and dot are 4 TLS records.
s.sendmail("a@b", ["c@d"], "Message-ID: <tls@x>\r\n\r\nsecret\r\n")
s.quit()
if not wait_log(lambda l: l.startswith("tls conn=1 proto=TLS1.")):
    fail(log_lines())
if not wait_log(lambda l: l == "auth conn=1 mech=PLAIN user=alice result=ok"):
    fail(log_lines())
if not wait_log(lambda l: l.startswith("message conn=1 seq=1 ") and l.endswith("msgid=<tls@x> reads_in_transaction=4 mail_params=- rcpt_params=-")):
    fail(log_lines())
EOF
    result $? "STARTTLS, then AUTH PLAIN with smtplib, then a message"

    py <<'EOF'
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", PORT, timeout=5)
s.starttls(context=ctx)
s.ehlo()
code, _ = s.docmd("AUTH PLAIN AGFsaWNlAHdyb25n")  # alice / wrong
if code != 535:
    fail("wrong password: %d" % code)
if s.docmd("AUTH LOGIN")[1] != b"VXNlcm5hbWU6" or s.docmd("YWxpY2U=")[1] != b"UGFzc3dvcmQ6":
    fail("LOGIN prompts")
if s.docmd("czNjcmV0")[0] != 235:
    fail("AUTH LOGIN")
s.quit()
if not wait_log(lambda l: l == "auth conn=2 mech=PLAIN user=alice result=fail"):
    fail(log_lines())
EOF
    result $? "AUTH failure is 535 and logged; AUTH LOGIN works"
    stop_sink

    start_sink implicit --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --implicit-tls --chunking
    py <<'EOF'
import smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL("127.0.0.1", PORT, timeout=5, context=ctx)
s.sendmail("a@b", ["c@d"], "Subject: x\r\n\r\nx\r\n")
s.quit()
if not wait_log(lambda l: l.startswith("message conn=1 seq=1 ")):
    fail(log_lines())
EOF
    result $? "--implicit-tls"

    py <<'EOF'
import ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=5))
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if len(l) < 4 or l[3:4] != b"-":
            return l[:3]
reply()
s.sendall(b"EHLO x\r\n")
reply()
# One sendall under 16 KB is one TLS record: one read for the whole message.
s.sendall(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 18 LAST\r\nMessage-ID: <r@x>\r\n")
if [reply() for _ in range(3)] != [b"250"] * 3:
    fail("BDAT over TLS")
if not wait_log(lambda l: "msgid=<r@x> bdat_chunks=1 reads_in_transaction=1 " in l):
    fail(log_lines())
EOF
    result $? "TLS: reads count records; MAIL RCPT BDAT LAST in one record is one read"
    stop_sink
else
    skip "STARTTLS, then AUTH PLAIN with smtplib, then a message" "no certtool"
    skip "AUTH failure is 535 and logged; AUTH LOGIN works" "no certtool"
    skip "--implicit-tls" "no certtool"
    skip "TLS: reads count records; MAIL RCPT BDAT LAST in one record is one read" "no certtool"
fi

# --- signals -------------------------------------------------------------------
start_sink signals
kill -USR1 "$pid"
i=0
while ! grep -q '^stats connections=0 messages=0 tls=0 auth_ok=0 auth_fail=0 reads=0$' "$dir/log" &&
    [ $i -lt 100 ]; do
    sleep 0.02
    i=$((i + 1))
done
[ $i -lt 100 ]
result $? "SIGUSR1 logs a stats line"

kill -TERM "$pid"
status=1
i=0
while [ $i -lt 100 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"
        status=$?
        break
    fi
    sleep 0.02
    i=$((i + 1))
done
[ "$status" -eq 0 ]
result $? "SIGTERM stops the server with status 0"
pid=

exit $failed
