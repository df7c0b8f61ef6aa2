#!/bin/bash
# t_control_limits - no local user stops delivery through relayq's sockets
# (doc/security.md). An ordinary user (uid 54321, in setgid_group so that
# it reaches public/) opens 200 connections to each of public/control,
# public/pickup and public/master and never reads; 40 of the control ones
# ask for the queue listing of 2,000 queued messages and never read it,
# and 20 more stop in the middle of a request. Meanwhile 2,000 new
# messages are delivered: the time is at most 1.5 times that of the same
# delivery without the flood (measured before and after it, in this
# test), qmgr's own memory (RssAnon) grows by less than 10 MB, and the
# per-user caps of the sockets (32 on public/control, 16 on the others)
# hold and are logged once per socket, not once per connection. The listing
# an ordinary user gets, written by qmgr's helper showq, is the listing root
# gets; the helpers the flood's listings start run as SCHED_IDLE; with no
# showq to start, or a queue showq cannot read, the user is told why and
# qmgr carries on.
# Needs root and setpriv, to act as another user.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
    echo "1..0 # SKIP needs root and setpriv to act as another user"
    exit 0
fi
QSTORE_FILL=$top_builddir/tests/qstore_fill
STRANGER=54321
N=2000

rq_setup
sink_start
# 2,000 deferred messages wait an hour: a listing has something to list.
"$QSTORE_FILL" "$T/queue" -n $N --deferred --map-size 256
ok $? "qstore_fill: $N deferred messages"
chown -R nobody "$T/queue"
"$RELAYQ" start
ok $? "relayq start"
# qmgr_answers - whether qmgr takes requests
qmgr_answers() { "$RELAYQ" stats >/dev/null 2>&1; }
wait_for 30 qmgr_answers
ok $? "qmgr answers"

# as_stranger - run a command as an ordinary user of setgid_group (mail)
as_stranger() {
    setpriv --reuid=$STRANGER --regid=$STRANGER --groups "$(getent group mail | cut -d: -f3)" "$@"
}
as_stranger "$RELAYQ" mailq >"$T/stranger.txt" 2>"$T/stranger.err"
ok $? "an ordinary user lists the queue through qmgr"
diag "$(head -c 300 "$T/stranger.err")"
"$RELAYQ" mailq >"$T/root.txt"
check "through showq, the same $N messages root lists" -- sh -c \
    "cmp -s '$T/stranger.txt' '$T/root.txt' && grep -q '^-- .* Kbytes in $N Requests.\$' '$T/root.txt'"
as_stranger "$RELAYQ" mailq --json >"$T/stranger.json"
"$RELAYQ" mailq --json >"$T/root.json"
check "and as JSON" -- sh -c "cmp -s '$T/stranger.json' '$T/root.json' && [ \$(wc -l <'$T/root.json') -eq $N ]"
mv "$T/libexec/showq" "$T/showq.away"
as_stranger "$RELAYQ" mailq >/dev/null 2>"$T/nohelper.err"
status=$?
[ $status -ne 0 ] && grep -q "cannot start the listing helper $T/libexec/showq" "$T/nohelper.err" &&
    grep -q "warning: cannot start the listing helper" "$MAILLOG"
ok $? "without showq the user's mailq fails with the reason (exit $status: $(head -c 200 "$T/nohelper.err"))"
mv "$T/showq.away" "$T/libexec/showq"
qmgr_answers
ok $? "and qmgr still answers"
# A queue showq cannot open: the user gets showq's reason, not a listing.
mode=$(stat -c %a "$T/queue/db")
chmod 000 "$T/queue/db"
as_stranger "$RELAYQ" mailq >"$T/noread.txt" 2>"$T/noread.err"
status=$?
chmod "$mode" "$T/queue/db"
[ $status -ne 0 ] && [ ! -s "$T/noread.txt" ] && grep -q "Permission denied" "$T/noread.err" &&
    grep -q "showq.*warning: cannot list the queue" "$MAILLOG"
ok $? "a queue showq cannot read: the user's mailq fails with the reason (exit $status: $(head -c 200 "$T/noread.err"))"

# deliver TAG - queue N messages and wait until the relay has them all;
# sets ELAPSED (seconds)
delivered=0
deliver() {
    local start end
    start=$(date +%s.%N)
    maildrop_fill $N "$1" || return 1
    delivered=$((delivered + N))
    wait_for 300 sink_has_distinct $delivered
    local status=$?
    end=$(date +%s.%N)
    ELAPSED=$(python3 -c "print(f'{$end - $start:.2f}')")
    return $status
}
# qmgr_rss_kb - qmgr's own memory (RssAnon, kB)
qmgr_rss_kb() {
    awk '/^RssAnon:/ { print $2 }' "/proc/$(child_pid qmgr)/status"
}

deliver before
ok $? "$N messages delivered without the flood in $ELAPSED s"
before=$ELAPSED
rss_before=$(qmgr_rss_kb)

# The flood: connections that never read, as the ordinary user (with the
# system's python: the ordinary user may not reach root's own).
mkdir "$T/flood"
chown $STRANGER "$T/flood"
setpriv --reuid=$STRANGER --regid=$STRANGER --groups "$(getent group mail | cut -d: -f3)" \
    /usr/bin/python3 - "$T/queue" "$T/flood/out" >"$T/flood/stdout" 2>&1 <<'PY' &
import os, socket, sys, time
queue, out = sys.argv[1], sys.argv[2]
held, refused = {}, {}
def connect(name, send=b""):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(os.path.join(queue, name))
        if send:
            s.sendall(send)
    except OSError:
        refused[name] = refused.get(name, 0) + 1
        s.close()
        return None
    held.setdefault(name, []).append(s)
    return s
for i in range(200):
    for name in ("public/control", "public/pickup", "public/master"):
        request = b"type=list\njson=0\n\n" if name == "public/control" and i < 40 else b""
        connect(name, request)
for i in range(20):
    connect("public/control", b"type=list\njso")
with open(out + ".tmp", "w") as fp:
    for name, socks in sorted(held.items()):
        fp.write(f"{name} {len(socks)} connected {refused.get(name, 0)} refused\n")
os.rename(out + ".tmp", out)
while True:  # never read; ended by the test, by pid
    time.sleep(3600)
PY
flood_pid=$!
# Ended by its pid, also when the test stops early.
trap 'kill "$flood_pid" 2>/dev/null; rq_cleanup' EXIT
wait_for 30 test -s "$T/flood/out"
ok $? "an ordinary user holds connections to every public socket: $(tr '\n' ';' <"$T/flood/out")"
# showq_idle - the listing helpers run, every one of them as SCHED_IDLE
showq_idle() {
    local pids pid
    pids=$(pgrep -f "^showq -c $CONF") || return 1
    for pid in $pids; do
        chrt -p "$pid" 2>/dev/null | grep -q "policy: SCHED_IDLE" || return 1
    done
}
check "the listing helpers the flood started run on the CPU time delivery leaves (SCHED_IDLE)" \
    wait_for 30 showq_idle

deliver during
ok $? "$N messages delivered during the flood in $ELAPSED s"
during=$ELAPSED
rss_during=$(qmgr_rss_kb)
kill "$flood_pid"
wait "$flood_pid" 2>/dev/null

deliver after
ok $? "$N messages delivered after the flood in $ELAPSED s"
after=$ELAPSED
slowest=$(python3 -c "print(max($before, $after))")
check "delivery during the flood took at most 1.5 times as long ($during s against $slowest s)" -- \
    python3 -c "import sys; sys.exit(0 if $during <= 1.5 * $slowest else 1)"
# AddressSanitizer keeps freed memory in quarantine: its RssAnon says nothing.
if ldd "$top_builddir/qmgr/qmgr" 2>/dev/null | grep -q libasan; then
    TAP_COUNT=$((TAP_COUNT + 1))
    echo "ok $TAP_COUNT - qmgr's own memory # SKIP AddressSanitizer build ($rss_before kB, then $rss_during kB)"
else
    check "qmgr's own memory grew by less than 10 MB ($rss_before kB, then $rss_during kB)" -- \
        test $((rss_during - rss_before)) -lt 10240
fi
for sock in public/control public/pickup public/master; do
    check "$sock held the user to its per-user cap, and said so" -- \
        log_has 1 "$sock: uid $STRANGER has [0-9]* connections: refusing more of its connections"
done
check "each cap is logged once per episode, not per connection" -- \
    test "$(log_count 'refusing')" -le 12
check "qmgr is still there, and answers" -- qmgr_answers
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
