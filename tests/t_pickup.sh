#!/bin/sh
# t_pickup.sh - the pickup daemon against a real queue in a temporary directory
#
# Builds maildrop files by hand (envelope record, then the message), runs
# pickup in the background and checks with the LMDB tools (lmdb-utils)
# that files become messages exactly once: batches, added headers, CRLF,
# corrupt files, the picked entries that make pickup idempotent, a kill -9
# in the middle of a run, and a full map. Prints TAP.

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
PICKUP="$top_builddir/pickup/pickup"

echo "1..30"
n=0
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1"
}
check() { # check "description" command...
    desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

if [ ! -x "$PICKUP" ] || ! command -v mdb_stat >/dev/null 2>&1; then
    while [ $n -lt 30 ]; do
        n=$((n + 1))
        echo "ok $n # SKIP pickup or mdb_stat (lmdb-utils) not found"
    done
    exit 0
fi

dir=$(mktemp -d /tmp/t_pickup.XXXXXX) || exit 1
# The daemons refuse to run as root: as root, pickup runs as nobody, from a
# copy of the binary in the scratch directory (the build tree may be one
# nobody cannot enter), which nobody owns; what the test writes for it must
# be readable whatever the caller's umask.
as_daemon=
if [ "$(id -u)" -eq 0 ]; then
    cp "$PICKUP" "$dir/pickup" || exit 1
    PICKUP=$dir/pickup
    chown nobody "$dir" || exit 1
    umask 022
    as_daemon="setpriv --reuid=nobody --regid=nogroup --clear-groups"
fi
pid=
cleanup() {
    if [ -n "$qmgr_pid" ]; then
        kill "$qmgr_pid" 2>/dev/null
        wait "$qmgr_pid" 2>/dev/null
    fi
    if [ -n "$pid" ]; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# setup_queue QDIR MAPSIZE - the directories master would create, and a config
setup_queue() {
    mkdir -p "$1/maildrop" "$1/private" "$1/public" "$1/pid" "$1/db" "$1/corrupt"
    cat >"$1.conf" <<EOF
queue_directory = $1
maillog_file = $dir/maillog
relayhost = [127.0.0.1]:1
myhostname = test.example
queue_map_size = $2
EOF
    if [ -n "$as_daemon" ]; then chown -R nobody "$1"; fi
}

# start_pickup QDIR - run pickup in the background as master does: with
# public/pickup made for it and passed as descriptor 3, named in the
# environment (as nobody when root; python and setpriv exec it, so $! is
# pickup's pid)
start_pickup() {
    python3 -c '
import os, socket, sys
path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
s.listen(128)
s.setblocking(False)
os.dup2(s.fileno(), 3)
os.environ["RELAYQ_LISTEN_FDS"] = "1"
os.environ["RELAYQ_LISTEN_FDNAMES"] = "public/pickup"
os.execvp(sys.argv[2], sys.argv[2:])' "$1/public/pickup" $as_daemon "$PICKUP" -c "$1.conf" 2>>"$dir/stderr" &
    pid=$!
}

# stop_pickup - SIGTERM, and the exit status
stop_pickup() {
    kill -TERM "$pid"
    wait "$pid"
    status=$?
    pid=
    return $status
}

# wait_for COMMAND... - poll up to 10 s, every 0.1 s
wait_for() {
    i=0
    while [ $i -lt 100 ]; do
        if "$@"; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# count DB QDIR - entries in a named database
count() {
    mdb_stat -s "$1" "$2/db" 2>/dev/null | awk '/Entries:/ { print $2 }'
}
count_is() { [ "$(count "$1" "$2")" = "$3" ]; }
files_in() { ls -A "$1" | wc -l | tr -d ' '; }
files_is() { [ "$(files_in "$1")" = "$2" ]; }
log_has() { grep -q -- "$1" "$dir/maillog" 2>/dev/null; }
log_count() { grep -c -- "$1" "$dir/maillog" 2>/dev/null; }

# drop QDIR NAME SENDER [FULLNAME] - a maildrop file; the message is on stdin
drop() {
    {
        printf 'type=maildrop\nversion=1\nuid=%s\nposted=%s\nsender=%s\n' "$(id -u)" \
            "$(date +%s)" "$3"
        if [ -n "$4" ]; then printf 'fullname=%s\n' "$4"; fi
        printf 'rcpt=bob@example.net\nrcpt=carol@example.org\n\n'
        cat
    } >"$1/maildrop/tmp.$2"
    mv "$1/maildrop/tmp.$2" "$1/maildrop/$2"
}

# body_of QDIR QID - the stored content, LMDB's printable dump form (CRLF is \0d\0a)
body_of() {
    mdb_dump -p -s bodies "$1/db" | awk -v key=" $2" '
        take { printf "%s", substr($0, 2); take = 0; next }
        substr($0, 1, length(key)) == key { take = 1 }'
}

# qid_of SENDER - the queue id pickup logged for a sender
qid_of() {
    grep "from=<$1>" "$dir/maillog" | tail -n 1 | sed 's/.*: \([0-9A-Za-z]*\): uid=.*/\1/'
}

q="$dir/q"
setup_queue "$q" 64m

# 1-7: a batch of 50 files dropped before pickup starts
i=0
while [ $i -lt 50 ]; do
    printf 'Subject: test %d\n\nbody %d\n' $i $i | drop "$q" "1700000000.$$.$i" alice@example.com
    i=$((i + 1))
done
# A stand-in for qmgr on private/qmgr: says hello, writes down what it gets.
qmgr_pid=
if command -v python3 >/dev/null 2>&1; then
    python3 - "$q/private/qmgr" "$dir/qmgr.got" <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)  # pickup may run as nobody
s.listen(5)
s.settimeout(20)
c, _ = s.accept()
c.settimeout(20)
c.sendall(b"type=hello\nprotocol=relayq-qmgr-1\n\n")
with open(sys.argv[2], "wb") as out:
    while True:
        d = c.recv(4096)
        if not d:
            break
        out.write(d)
        out.flush()
EOF
    qmgr_pid=$!
    wait_for test -S "$q/private/qmgr"
fi
start_pickup "$q"
check "pickup listens on public/pickup" wait_for test -S "$q/public/pickup"
check "50 maildrop files become 50 messages" wait_for count_is messages "$q" 50
check "the maildrop files are removed" wait_for files_is "$q/maildrop" 0
check "each message is due now (50 schedule entries)" count_is schedule "$q" 50
check "one log line per message, Postfix pickup style" \
    test "$(log_count ": uid=$(id -u) from=<alice@example.com>")" = 50
check "picked entries are deleted after the unlinks" wait_for count_is picked "$q" 0
check "qmgr gets a wake-up on private/qmgr after the commit" sh -c '
    [ -z "$1" ] || grep -qx "type=wakeup" "$2"' sh "$qmgr_pid" "$dir/qmgr.got"

# 8-15: headers and line ends; the public/pickup wake-up
printf 'Subject: hdr\nTo: bob@example.net\n\nline 1\nline 2\rline 3' |
    drop "$q" "1700000001.$$.hdr" hdr@example.com "Alice Example"
printf 'from: Someone <some@example.com>\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-Id: <x@y>\n\nhi\n' |
    drop "$q" "1700000001.$$.has" has@example.com
printf 'no header here\nsecond line\n' | drop "$q" "1700000001.$$.nohdr" ""
check "three more messages" wait_for count_is messages "$q" 53
qid=$(qid_of hdr@example.com)
body=$(body_of "$q" "$qid")
check "Received: is added first" sh -c '
    case "$1" in "Received: by test.example (relayq) id $2; "*) exit 0 ;; esac; exit 1' \
    sh "$body" "$qid"
check "Date:, Message-ID: and From: (with the full name) are added" sh -c '
    case "$1" in
    *"\\0d\\0aDate: "*"\\0d\\0aMessage-ID: <"*".$2@test.example>\\0d\\0aFrom: Alice Example <hdr@example.com>\\0d\\0a\\0d\\0aline 1"*) exit 0 ;;
    esac; exit 1' sh "$body" "$qid"
check "bare LF and bare CR become CRLF, the last line is terminated" sh -c '
    case "$1" in *"line 1\\0d\\0aline 2\\0d\\0aline 3\\0d\\0a") exit 0 ;; esac; exit 1' \
    sh "$body"
body=$(body_of "$q" "$(qid_of has@example.com)")
check "existing headers are not duplicated (names compare case-insensitively)" sh -c '
    case "$1" in *"Message-ID:"*|*"\\0d\\0aFrom:"*|*"\\0d\\0aDate:"*) exit 1 ;; esac; exit 0' \
    sh "$body"
body=$(body_of "$q" "$(qid_of "")")
check "without a header section: headers added, then an empty line, then the text" sh -c '
    case "$1" in *"\\0d\\0aFrom: MAILER-DAEMON@test.example\\0d\\0a\\0d\\0ano header here\\0d\\0a"*) exit 0 ;; esac
    exit 1' sh "$body"
printf 'Subject: wake\n\nx\n' | drop "$q" "1700000001.$$.wake" wake@example.com
check "public/pickup says hello and takes a wake-up" sh -c '
    command -v python3 >/dev/null || exit 0
    python3 - "$1" <<EOF
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
hello = b""
while not hello.endswith(b"\n\n"):
    hello += s.recv(100)
assert hello == b"type=hello\nprotocol=relayq-pickup-1\n\n", hello
s.sendall(b"type=wakeup\n\n")
s.close()
EOF' sh "$q/public/pickup"
wait_2s() { i=0; while [ $i -lt 20 ]; do "$@" && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
check "the wake-up makes pickup scan at once (within 2 s, not 5)" wait_2s count_is messages "$q" 54

# 16-18: corrupt files move aside and do not stop the files after them
printf 'this is not an envelope\n\n' >"$q/maildrop/1700000002.$$.bad"
printf 'Subject: nul\000\n\nx\n' | drop "$q" "1700000002.$$.nul" nul@example.com
printf 'Subject: after\n\nx\n' | drop "$q" "1700000002.$$.zafter" after@example.com
check "a file that is not a maildrop file goes to corrupt/" \
    wait_for test -f "$q/corrupt/1700000002.$$.bad"
check "a NUL byte in the header section goes to corrupt/, with a warning" sh -c '
    test -f "$1/corrupt/1700000002.$2.nul" &&
    grep -q "warning: maildrop/1700000002.$2.nul: NUL byte in the message header section: moved to corrupt/" "$3"' \
    sh "$q" $$ "$dir/maillog"
check "the file after them is queued" wait_for count_is messages "$q" 55

# 19-22: idempotence: a file already in picked is removed, not queued again
check "SIGTERM: pickup exits 0" stop_pickup
printf '1700000003.%s.dup\n0000000BBBBBB\nghost.1\n0000000CCCCCC\n' $$ |
    mdb_load -T -s picked "$q/db"
printf 'Subject: dup\n\nx\n' | drop "$q" "1700000003.$$.dup" dup@example.com
start_pickup "$q"
check "a file whose name is in picked is removed" wait_for test ! -e "$q/maildrop/1700000003.$$.dup"
check "... and not queued a second time" sh -c \
    '[ "$(mdb_stat -s messages "$1/db" | awk "/Entries:/ { print \$2 }")" = 55 ] &&
     ! grep -q "from=<dup@example.com>" "$2"' sh "$q" "$dir/maillog"
check "stale picked entries are cleaned" wait_for count_is picked "$q" 0

# 23-24: kill -9 in the middle of a run loses and duplicates nothing
stop_pickup
awk -v dir="$q/maildrop" -v tag="$$" -v uid="$(id -u)" 'BEGIN {
    for (i = 0; i < 3000; i++) {
        f = sprintf("%s/1700000004.%s.%d", dir, tag, i)
        printf "type=maildrop\nversion=1\nuid=%s\nposted=1700000004\nsender=crash@example.com\n", uid > f
        printf "rcpt=bob@example.net\n\nSubject: crash %d\n\nx\n", i > f
        close(f)
    } }'
start_pickup "$q"
i=0
while [ $i -lt 1000 ] && ! log_has "from=<crash@example.com>"; do
    sleep 0.01
    i=$((i + 1))
done
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=
echo "# killed with $(count messages "$q") messages queued, $(files_in "$q/maildrop") files waiting"
start_pickup "$q"
check "after kill -9 and a restart every file is queued" wait_for files_is "$q/maildrop" 0
check "... exactly once (3055 messages)" count_is messages "$q" 3055

# 25-30: a full map: mail waits in maildrop/, one warning, nothing lost
check "SIGTERM again: exit 0" stop_pickup
f="$dir/f"
setup_queue "$f" 1m
i=0
while [ $i -lt 16 ]; do
    head -c 60000 /dev/zero | tr '\0' 'x' | fold -w 76 |
        sed '1s/^/Subject: big\n\n/' | drop "$f" "1700000005.$$.$i" big@example.com
    i=$((i + 1))
done
: >"$dir/maillog"
start_pickup "$f"
check "a full map leaves the mail in maildrop/ with a warning naming the reserve" \
    wait_for log_has "warning: queue is full: queue map has .* the reserve of 256 KB for delivery records (queue_map_size); leaving mail in maildrop until deliveries free room"
queued=$(count messages "$f")
check "pickup took the messages that fit above the reserve ($queued)" test "$queued" -gt 0
check "one warning; nothing lost ($queued queued, $(files_in "$f/maildrop") waiting)" sh -c \
    '[ "$(grep -c "queue is full" "$1")" = 1 ] && [ $(($2 + $3)) = 16 ]' \
    sh "$dir/maillog" "$queued" "$(files_in "$f/maildrop")"
stop_pickup
sed -i 's/^queue_map_size = .*/queue_map_size = 64m/' "$f.conf"
start_pickup "$f"
check "with room, all 16 are queued and maildrop/ is empty" sh -c '
    wait_for() { i=0; while [ $i -lt 100 ]; do "$@" && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
    ok() { [ "$(mdb_stat -s messages "$1/db" | awk "/Entries:/ { print \$2 }")" = 16 ] &&
           [ -z "$(ls -A "$1/maildrop")" ]; }
    wait_for ok "$1"' sh "$f"
check "no fatal or panic in the log" sh -c '! grep -q -e "fatal:" -e "panic:" "$1"' sh "$dir/maillog"
