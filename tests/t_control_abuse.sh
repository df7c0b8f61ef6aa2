#!/bin/bash
# t_control_abuse - commands on qmgr's public/control that break the
# rules, each played by tests/control_client.py, and qmgr's answer to
# each (doc/internals.md, "Connection limits"): a request longer than
# 4 MB is a protocol error and the connection is closed; a command that
# sends requests and never reads the replies is disconnected once more
# than 8 MB of them wait; a listing asked for with another request behind
# it on the same connection is refused with the reason, and the other
# request is still answered; a command that neither asks nor reads for
# 5 minutes is dropped (qmgr runs under faketime at 20 times the speed of
# the clock, so that takes 15 s). After each, qmgr still answers
# `relayq stats` and a message is still delivered.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if ! command -v faketime >/dev/null 2>&1; then
    echo "1..0 # SKIP needs faketime"
    exit 0
fi
CLIENT="python3 $top_srcdir/tests/control_client.py"

rq_setup
sink_start
rq_set relayhost "[127.0.0.1]:$SINK_PORT"
mkdir -p "$T/real"
chmod 755 "$T/real"
mv "$T/libexec/qmgr" "$T/real/qmgr"
printf '#!/bin/sh\nexec faketime -f "+0 x20" %s/real/qmgr "$@"\n' "$T" >"$T/libexec/qmgr"
chmod 755 "$T/libexec/qmgr"
"$RELAYQ" start
ok $? "relayq start, qmgr under faketime x20"
# qmgr_answers - whether qmgr takes requests
qmgr_answers() { "$RELAYQ" stats >/dev/null 2>&1; }
wait_for 30 qmgr_answers
ok $? "qmgr answers"
SOCKET=$T/queue/public/control
sent=0
# delivers TAG - a message still goes through
delivers() {
    sent=$((sent + 1))
    inject 1 "$1" && wait_for 30 sink_has $sent
}

out=$($CLIENT "$SOCKET" oversize)
[ "$out" = closed ] && log_has 1 "closing connection: record longer than 4194304 bytes"
ok $? "a request of 5 MB: connection closed, 'record longer than 4194304 bytes' logged ($out)"
qmgr_answers && delivers oversize
ok $? "qmgr still answers and delivers"

out=$($CLIENT "$SOCKET" flood)
[[ $out == closed* ]] && log_has 1 "command of uid [0-9]* does not read its replies ([0-9]* bytes waiting): disconnecting"
ok $? "stats requests never read: disconnected past 8 MB of replies, and logged ($out)"
qmgr_answers && delivers flood
ok $? "qmgr still answers and delivers"

out=$($CLIENT "$SOCKET" pipelined)
want="error a listing must be the last request on its connection
stats "
[ "$out" = "$want" ]
ok $? "a listing with a request behind it is refused with the reason, the other answered ($out)"

out=$($CLIENT "$SOCKET" idle)
[ "$out" = closed ] && log_has 1 "command of uid [0-9]* idle for 300 s: disconnecting"
ok $? "a command idle for 5 minutes (of qmgr's clock) is dropped, and logged ($out)"
qmgr_answers && delivers idle
ok $? "qmgr still answers and delivers"

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
