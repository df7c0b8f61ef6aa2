#!/bin/bash
# t_golden - the operator's listings against golden files: a queue built
# by tests/qstore_fill with fixed content (fixed ids, arrival times, seed;
# TZ=UTC) is listed with `relayq mailq`, `mailq --json`, `qshape`,
# `qshape -s` and `show ID`, and each output must equal its file under
# tests/golden/ (a difference is shown as TAP diagnostics, diff -u).
# qshape's ages depend on the clock: it runs under faketime(1) with the
# clock frozen at the reference time (-f); without faketime those comparisons
# are skipped. No daemon runs.
#
# RELAYQ_UPDATE_GOLDEN=1 rewrites the golden files from the current
# output instead of comparing (check them by eye before committing).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

QSTORE_FILL=$top_builddir/tests/qstore_fill
GOLDEN=$top_srcdir/tests/golden
NOW=1700000000               # the reference time: 2023-11-14 22:13:20 UTC
FAKE_NOW='2023-11-14 22:13:20' # the same, for faketime -f (a time without "@" stands still)
export TZ=UTC

rq_setup

# golden - compare an output file with its golden file, or rewrite it: golden NAME FILE DESCRIPTION
golden() {
    local name=$1 out=$2 desc=$3
    if [ -n "${RELAYQ_UPDATE_GOLDEN:-}" ]; then
        cp "$out" "$GOLDEN/$name"
        ok $? "$desc (golden file $name rewritten)"
        return
    fi
    if diff -u "$GOLDEN/$name" "$out" >"$T/diff"; then
        ok 0 "$desc"
    else
        ok 1 "$desc"
        sed 's/^/# /' "$T/diff"
    fi
}

# skip - a test that cannot run here: skip DESCRIPTION REASON
skip() {
    TAP_COUNT=$((TAP_COUNT + 1))
    echo "ok $TAP_COUNT - $1 # SKIP $2"
}

# The queue: 12 deferred messages over the day before NOW (every 5th on
# hold; 1 to 3 recipients; three sender domains, one the null sender),
# then 3 new ones from the last 4 minutes with DSN parameters, two to a
# domain too long for qshape's domain column.
"$QSTORE_FILL" "$T/queue" -n 12 --arrival $NOW -a 100000 --seed 1 --ids B0000 --deferred --map-size 256 \
    --hold-every 5 -r 3 -d example.com,example.net,mail.example.com \
    -s 'example.org,<>,shop.example'
ok $? "qstore_fill: 12 deferred messages"
"$QSTORE_FILL" "$T/queue" -n 3 --arrival $NOW -a 240 --seed 2 --ids C0000 -r 2 --dsn --map-size 256 \
    -d example.com,a-very-long-subdomain-name.of-the-department.example.com
ok $? "qstore_fill: 3 new messages"
# The queue is mail_owner's, as a real one is: root's commands read it as mail_owner.
[ "$(id -u)" -eq 0 ] && chown -R nobody "$T/queue"

"$RELAYQ" mailq >"$T/mailq.txt" 2>"$T/stderr"
ok $? "mailq succeeds"
golden mailq.txt "$T/mailq.txt" "mailq output is as golden"
"$RELAYQ" mailq --json >"$T/mailq.json" 2>>"$T/stderr"
ok $? "mailq --json succeeds"
golden mailq.json "$T/mailq.json" "mailq --json output is as golden"
check "mailq --json is one JSON object per line" -- python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 15, len(lines)
for line in lines:
    json.loads(line)
' "$T/mailq.json"

"$RELAYQ" show B00000000004 >"$T/show.txt" 2>>"$T/stderr"
ok $? "show of a held, deferred message succeeds"
"$RELAYQ" show C00000000001 >>"$T/show.txt" 2>>"$T/stderr"
ok $? "show of a new message with DSN parameters succeeds"
golden show.txt "$T/show.txt" "show output is as golden"
"$RELAYQ" show B0000000000b >/dev/null 2>"$T/show.err"
check "show of an unknown id exits EX_NOINPUT (66)" -- test $? -eq 66
check "show of an unknown id says so" -- \
    grep -qx 'relayq: fatal: B0000000000b: no such message' "$T/show.err"
"$RELAYQ" show 'B0000!' >/dev/null 2>&1
check "show of a malformed id exits EX_USAGE (64)" -- test $? -eq 64

if command -v faketime >/dev/null 2>&1; then
    faketime -f "$FAKE_NOW" "$RELAYQ" qshape >"$T/qshape.txt" 2>>"$T/stderr"
    ok $? "qshape succeeds"
    golden qshape.txt "$T/qshape.txt" "qshape output is as golden"
    faketime -f "$FAKE_NOW" "$RELAYQ" qshape -s >"$T/qshape_sender.txt" 2>>"$T/stderr"
    ok $? "qshape -s succeeds"
    golden qshape_sender.txt "$T/qshape_sender.txt" "qshape -s output is as golden"
    faketime -f "$FAKE_NOW" "$RELAYQ" qshape --json >"$T/qshape.json" 2>>"$T/stderr"
    ok $? "qshape --json succeeds"
    check "qshape --json has the text table's figures" -- python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
rows = [l.split() for l in open(sys.argv[2]).read().splitlines()[1:]]
assert doc["now"] == int(sys.argv[3]), doc["now"]
assert [b["label"] for b in doc["buckets"]] == open(sys.argv[2]).readline().split()[1:]
got = [["TOTAL", doc["total"]["total"]] + doc["total"]["counts"]]
got += [[d["domain"], d["total"]] + d["counts"] for d in doc["domains"]]
want = [[r[0]] + [int(x) for x in r[1:]] for r in rows]
assert [g[1:] for g in got] == [w[1:] for w in want], (got, want)
' "$T/qshape.json" "$T/qshape.txt" $NOW
else
    for t in "qshape output is as golden" "qshape -s output is as golden" \
        "qshape --json has the text table's figures"; do
        skip "$t" "faketime is not installed"
    done
fi
check "no diagnostics on standard error" -- test ! -s "$T/stderr"
[ -s "$T/stderr" ] && sed 's/^/# /' "$T/stderr"

tap_end
