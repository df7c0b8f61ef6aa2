#!/bin/bash
# t_hostile - maildrop input is untrusted (doc/relayq.1, INPUT): files that
# are truncated, unreadable, not regular, hard-linked, full of NUL bytes or
# over the recipient limit go to corrupt/ with a warning naming the file
# and the reason; bare CR and LF, invalid UTF-8, NUL bytes in the body, a
# 10 MB header section, 100,000-octet lines, a missing header/body
# separator and 10,000 recipients are normalised and delivered. Good files
# between the bad ones are each delivered exactly once, and `relayq mailq`
# reports the files in corrupt/.
#
# The 10,000 recipients go out as jobs of default_destination_recipient_limit
# (50), one transaction each, so none meets smtpsink's limit of 1000 per
# transaction (t_rcptlimit covers a relay that answers 452).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
mkdir -p "$T/sink/mail"
[ "$(id -u)" -eq 0 ] && chown nobody "$T/sink/mail"
sink_start --maildir "$T/sink/mail" || {
    ok 1 "smtpsink starts"
    tap_end
    exit 1
}
rq_set message_size_limit 20m
# The first start creates the queue tree; the files are dropped while relayq is stopped.
"$RELAYQ" start >/dev/null && "$RELAYQ" stop >/dev/null
ok $? "relayq creates its queue"

# The files, in the order pickup takes them (oldest first): good ones between the others.
python3 - "$T" <<'PY'
import os, sys, time
T = sys.argv[1]
mdir = os.path.join(T, "queue", "maildrop")
root = os.getuid() == 0
owner = None
if root:
    import pwd
    pw = pwd.getpwnam("nobody")
    owner = (pw.pw_uid, pw.pw_gid)
uid = owner[0] if owner else os.getuid()
seq = 0

def name(tag):
    global seq
    seq += 1
    return f"{int(time.time())}.{seq:06d}.{os.getpid()}.{tag}"

def envelope(tag, rcpts=("rcpt@example.com",)):
    head = (f"type=maildrop\nversion=1\nuid={uid}\nposted={int(time.time())}\n"
            f"sender={tag}@example.com\n")
    return (head + "".join(f"rcpt={r}\n" for r in rcpts) + "\n").encode()

def drop(tag, data, chown=True):
    """Write through a temporary name and rename, as relayq sendmail does."""
    tmp = os.path.join(mdir, f"tmp.{os.getpid()}.{tag}")
    with open(tmp, "wb") as fp:
        fp.write(data)
    if owner and chown:
        os.chown(tmp, *owner)
    final = os.path.join(mdir, name(tag))
    os.rename(tmp, final)
    return final

def good(i):
    drop(f"good-{i}", envelope(f"good-{i}") +
         f"Subject: good {i}\nMessage-ID: <hostile-good-{i}@relayq.test>\n\nbody {i}\n".encode())

def many_rcpts(count):
    label = "x" * 50
    return [f"r{i:05d}@{label}.{label}.example.com" for i in range(count)]

good(1)
full = envelope("trunc-env") + b"Subject: x\n\nbody\n"
drop("trunc-env", full[:full.index(b"rcpt=") + 9])           # cut inside the envelope
good(2)
drop("empty", b"")
drop("crlf", envelope("crlf") + b"Subject: line ends\n\nline1\rline2\nline3\r\nline4")
good(3)
drop("garbage", os.urandom(4096).replace(b"\n", b"x"))
drop("nul-header", envelope("nul-header") + b"Subject: a\0b\n\nbody\n")
drop("nul-body", envelope("nul-body") + b"Subject: nul\n\na\0b\0c\n")
good(4)
drop("utf8", envelope("utf8") + b"Subject: \xff\xfe\xc3(\n\nbad \xc0\xaf \xed\xa0\x80 utf-8\n")
drop("rcpt-10001", envelope("rcpt-10001", many_rcpts(10001)) + b"Subject: x\n\nbody\n")
filler = b"".join(b"X-Filler-%06d: %s\n" % (i, b"f" * 80) for i in range(10 * 1024 * 1024 // 98))
drop("bighdr", envelope("bighdr") + b"Subject: big header\n" + filler + b"\nthe body\n")
good(5)
words = b" ".join(b"w%05d" % i for i in range(100000 // 7))[:100000]
drop("longline", envelope("longline") + b"X-Long: " + words + b"\n\n" + b"0123456789" * 10000 + b"\n")
drop("nosep-hdr", envelope("nosep-hdr") + b"Subject: only headers\nX-Last: no newline")
drop("nosep-body", envelope("nosep-body") + b"just a line of text\nsecond\n")
good(6)
drop("many", envelope("many", many_rcpts(10000)) + b"Subject: ten thousand\n\nbody\n")
os.chmod(drop("unreadable", envelope("unreadable") + b"Subject: x\n\nbody\n", chown=False), 0)
os.symlink("/etc/passwd", os.path.join(mdir, name("symlink")))
os.mkdir(os.path.join(mdir, name("dir")))
with open(os.path.join(T, "linked"), "wb") as fp:
    fp.write(envelope("hardlink") + b"Subject: x\n\nbody\n")
os.link(os.path.join(T, "linked"), os.path.join(mdir, name("hardlink")))
if owner:
    for entry in os.listdir(mdir):
        if entry.endswith((".dir", ".hardlink")):
            os.lchown(os.path.join(mdir, entry), *owner)
good(7)
PY
ok $? "hostile and good files dropped into maildrop/"
# The same through the submission command, which leaves the content to pickup.
python3 -c 'import sys; sys.stdout.buffer.write(b"Subject: sm\r\rone\0two\n\n" + b"x" * 100000)' |
    "$RELAYQ" sendmail -f sm-long@example.com rcpt@example.com
ok $? "sendmail takes a 100,000-octet line, bare CRs and a NUL byte"
printf 'Subject: a\000b\n\nbody\n' | "$RELAYQ" sendmail -f sm-nul-header@example.com rcpt@example.com 2>"$T/nul.err"
ok $(($? != 65)) "sendmail refuses a NUL byte in the header (EX_DATAERR), which pickup would set aside"
check "and says why" -- grep -q 'NUL byte in the message header' "$T/nul.err"

GOOD=7
NORMALISED="crlf nul-body utf8 bighdr longline nosep-hdr nosep-body sm-long"
BAD="trunc-env empty garbage nul-header rcpt-10001 unreadable symlink dir hardlink"

# sink_from - messages the server accepted from a sender tag: sink_from TAG
sink_from() {
    sink_count "^message .* from=<$1@example.com> "
}

# all_in - every good and normalised message arrived, the 10,000 recipients
# are sent, and every bad file is in corrupt/
all_in() {
    local tag
    [ "$(sink_count ' msgid=<hostile-good-')" -ge $GOOD ] || return 1
    for tag in $NORMALISED; do
        [ "$(sink_from "$tag")" -ge 1 ] || return 1
    done
    [ "$(log_count ': to=<r[0-9]{5}@x+\.x+\.example\.com>, .* status=sent ')" -ge 10000 ] || return 1
    [ "$(ls -A "$T/queue/corrupt" | wc -l)" -ge 9 ]
}

start=$(date +%s)
"$RELAYQ" start
ok $? "relayq starts"
wait_for 120 all_in
ok $? "everything is delivered or set aside in $(($(date +%s) - start)) s"

# The bad files: in corrupt/, one warning each naming file and reason.
# bad_file - one file (named .TAG, or from TAG@example.com) was set aside
# with its reason: bad_file TAG REASON
bad_file() {
    local file path
    for path in "$T/queue/corrupt"/*".$1"; do
        [ -e "$path" ] || [ -L "$path" ] || path=$(grep -laF "sender=$1@" "$T/queue/corrupt"/* 2>/dev/null | head -n 1)
        file=${path##*/}
    done
    check "$1: in corrupt/, logged with its reason \"$2\"" -- \
        grep -qF "warning: maildrop/$file: $2: moved to corrupt/" "$MAILLOG"
}
bad_file trunc-env "bad envelope: no envelope: not a relayq maildrop file or truncated"
bad_file empty "bad envelope: no envelope: not a relayq maildrop file or truncated"
bad_file garbage "bad envelope: no envelope: not a relayq maildrop file or truncated"
bad_file nul-header "NUL byte in the message header section"
bad_file rcpt-10001 "bad envelope: more than 10000 recipients"
bad_file unreadable "open: Permission denied"
bad_file symlink "open: Too many levels of symbolic links"
bad_file dir "not a regular file"
bad_file hardlink "file has 2 links"
check "exactly the 9 bad files are in corrupt/, nothing is left in maildrop/" -- sh -c \
    "[ \$(ls -A '$T/queue/corrupt' | wc -l) -eq 9 ] && [ -z \"\$(ls -A '$T/queue/maildrop')\" ]"
check "no bad file reached the server" -- sh -c \
    "! grep -Eq ' from=<(${BAD// /|})@example.com> ' '$SINK_LOG'"

# The good files: each exactly once.
for i in $(seq 1 $GOOD); do
    check "good file $i delivered exactly once" -- \
        test "$(sink_count " msgid=<hostile-good-$i@relayq.test> ")" -eq 1
done

# eml_check - a Python test on what the server stored for a sender tag
# (bytes m; the header section h, the body b): eml_check TAG DESCRIPTION EXPRESSION
eml_check() {
    local tag=$1 desc=$2 expr=$3 file
    file=$(grep -laF "From: $tag@example.com" "$T/sink/mail"/*.eml 2>/dev/null | head -n 1)
    check "$tag: $desc" -- python3 -c "
import sys
m = open(sys.argv[1], 'rb').read()
h, sep, b = m.partition(b'\r\n\r\n')
lines = m.split(b'\r\n')
sys.exit(0 if ($expr) else 1)
" "${file:-/nonexistent}"
}
for tag in $NORMALISED; do
    check "$tag: delivered exactly once" -- test "$(sink_from "$tag")" -eq 1
done
eml_check crlf "bare CR and bare LF arrive as CRLF" \
    "b == b'line1\r\nline2\r\nline3\r\nline4\r\n' and not set(m.replace(b'\r\n', b'')) & set(b'\r\n')"
eml_check nul-body "NUL bytes in the body arrive unchanged" "b == b'a\x00b\x00c\r\n'"
check "nul-body: logged as passed on" -- log_has 1 ': maildrop/[^ ]*\.nul-body: 2 NUL bytes in the message body passed on unchanged'
eml_check utf8 "invalid UTF-8 arrives unchanged in header and body" \
    "b'\r\nSubject: \xff\xfe\xc3(\r\n' in h and b == b'bad \xc0\xaf \xed\xa0\x80 utf-8\r\n'"
eml_check bighdr "the header section ends near header_size_limit (102400)" \
    "102400 - 200 < len(h) < 102400 + 1000 and b'Subject: big header' in h"
eml_check bighdr "every one of the 10 MB of header lines arrives, the rest as body" \
    "sum(1 for l in lines if l.startswith(b'X-Filler-')) == $((10 * 1024 * 1024 / 98)) and b.endswith(b'\r\nthe body\r\n')"
check "bighdr: a warning names the file and header_size_limit" -- log_has 1 \
    'warning: [0-9A-Za-z]*: maildrop/[^ ]*\.bighdr: header section longer than header_size_limit (102400 bytes): the rest of it is kept as message body'
eml_check longline "every line is at most 998 octets plus CRLF" \
    "max(len(l) for l in lines) <= 998 and m.endswith(b'\r\n')"
eml_check longline "the 100,000-octet body line is intact once its line breaks are taken out" \
    "b.replace(b'\r\n', b'') == b'0123456789' * 10000"
eml_check longline "the 100,000-octet header is folded before blanks, intact once unfolded" \
    "b'\r\n w' in h and b'X-Long: ' + b' '.join(b'w%05d' % i for i in range(100000 // 7))[:100000] + b'\r\n' in h.replace(b'\r\n ', b' ')"
check "longline: one log line counts the 2 lines broken up" -- log_has 1 \
    ': maildrop/[^ ]*\.longline: 2 lines longer than 998 octets broken up'
eml_check nosep-hdr "headers only: no empty line, no body" \
    "sep == b'' and b'\r\nX-Last: no newline\r\n' in m"
eml_check nosep-body "text only: headers added, an empty line, then the text" \
    "b == b'just a line of text\r\nsecond\r\n'"
eml_check sm-long "sendmail: CRLF lines of <= 998 octets, the text and the NUL byte intact" \
    "max(len(l) for l in lines) <= 998 and b'\r\nSubject: sm\r\n' in h and b.startswith(b'one\x00two\r\n\r\n') and b[11:].replace(b'\r\n', b'') == b'x' * 100000"

# 10,000 recipients: 50 per transaction, each sent once, none deferred.
check "many: each of the 10,000 recipients received exactly once" -- python3 -c '
import re, sys
seen = []
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("message ") and " from=<many@example.com> " in line:
        seen += re.findall(r"<(r\d{5}@[^>]+)>", line.split(" rcpts=", 1)[1].split(" size=", 1)[0])
sys.exit(0 if len(seen) == 10000 and len(set(seen)) == 10000 else 1)
' "$SINK_LOG"
check "many: 200 transactions of 50 recipients, no 452 from the relay" -- sh -c \
    "[ \$(grep -c '^message .* from=<many@example.com> ' '$SINK_LOG') -eq 200 ] &&
     ! grep -q 'cmd=RCPT reply=452' '$SINK_LOG'"
check "many: nothing bounced" -- test "$(log_count 'status=bounced')" -eq 0

# What the operator sees.
"$RELAYQ" mailq >"$T/mailq.out" 2>"$T/mailq.err"
ok $? "mailq succeeds"
check "mailq: the queue is empty, in Postfix's words, on standard output" -- \
    test "$(cat "$T/mailq.out")" = "Mail queue is empty"
check "mailq: one warning counts the 9 files in corrupt/" -- grep -qx \
    "relayq: warning: 9 files in $T/queue/corrupt/ that pickup could not queue (see relayq(1), INPUT)" \
    "$T/mailq.err"
"$RELAYQ" mailq --json >"$T/mailq.json" 2>"$T/mailq.err"
check "mailq --json: nothing on standard output, the same warning on standard error" -- \
    sh -c "[ ! -s '$T/mailq.json' ] && grep -q 'warning: 9 files in' '$T/mailq.err'"
check "no fatal or panic in the log" -- sh -c "! grep -Eq 'fatal:|panic:' '$MAILLOG'"
tap_end
