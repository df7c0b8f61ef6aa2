#!/bin/bash
# t_root_reads - root's commands never parse what mail_owner wrote with
# root's privileges (doc/security.md): `relayq mailq`, `show`, `qshape`
# and `stats` run by root give up root for mail_owner for good before
# they open the queue or ask qmgr (cli/relayq.c,
# relayq_read_as_mail_owner). Shown two ways on a queue of 2,000
# messages: root's mailq, caught while it writes its listing, runs as
# mail_owner with no other group and cannot take root back; and with
# the queue's LMDB file given to a third user, root's mailq, show and
# qshape fail with "Permission denied" where root itself could read it.
# Needs root.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the point is what root gives up"
    exit 0
fi
QSTORE_FILL=$top_builddir/tests/qstore_fill
N=2000

rq_setup
"$QSTORE_FILL" "$T/queue" -n $N --deferred --ids R0000 --map-size 256
ok $? "qstore_fill: $N deferred messages"
chown -R nobody "$T/queue"

# Root's mailq, read one line at a time: after the first line it is still
# running (the listing is bigger than a pipe holds), and /proc says who it is.
python3 - "$RELAYQ" >"$T/who" <<'PY'
import subprocess, sys
p = subprocess.Popen([sys.argv[1], "mailq"], stdout=subprocess.PIPE)
first = p.stdout.readline()
status = dict(line.split(":", 1) for line in open(f"/proc/{p.pid}/status"))
lines = 1 + sum(1 for _ in p.stdout)
print("uid", " ".join(status["Uid"].split()))
print("gid", " ".join(status["Gid"].split()))
print("groups", " ".join(status["Groups"].split()))
print("header", first.decode().split()[0] if first else "-")
print("exit", p.wait())
print("entries", lines)
PY
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
check "root's mailq runs as mail_owner: real, effective, saved and filesystem uid" -- \
    grep -qx "uid $NOBODY $NOBODY $NOBODY $NOBODY" "$T/who"
check "with mail_owner's group alone" -- sh -c \
    "grep -qx 'gid $NOGROUP $NOGROUP $NOGROUP $NOGROUP' '$T/who' && grep -qx 'groups $NOGROUP' '$T/who'"
check "and still lists the queue" -- sh -c \
    "grep -qx 'header -Queue' '$T/who' && grep -qx 'exit 0' '$T/who'"
diag "$(tr '\n' ' ' <"$T/who")"

# The LMDB file given to a third user: root could read it, mail_owner cannot.
chown daemon "$T/queue/db/data.mdb"
chmod 0600 "$T/queue/db/data.mdb"
"$RELAYQ" mailq >/dev/null 2>"$T/mailq.err"
ok $(($? == 0)) "root's mailq cannot open a queue file mail_owner may not read"
diag "$(cat "$T/mailq.err")"
check "and says why" -- grep -q 'Permission denied' "$T/mailq.err"
"$RELAYQ" show R00000000001 >/dev/null 2>"$T/show.err"
ok $(($? == 0)) "nor can root's show"
check "and says why" -- grep -q 'Permission denied' "$T/show.err"
"$RELAYQ" qshape >/dev/null 2>"$T/qshape.err"
ok $(($? == 0)) "nor can root's qshape"
check "and says why" -- grep -q 'Permission denied' "$T/qshape.err"

# Given back, everything reads it again.
chown nobody "$T/queue/db/data.mdb"
check "with the file mail_owner's again, root's mailq lists the $N messages" -- \
    test "$("$RELAYQ" mailq --json | wc -l)" -eq $N
tap_end
