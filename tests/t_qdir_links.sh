#!/bin/bash
# t_qdir_links - mail_owner cannot climb to root through the queue tree.
# Master runs qdir_create() as root before it gives root up; a mail_owner
# process could have replaced any entry of the queue with a link to a
# directory outside it. For each kind of planted link (corrupt, pid, db,
# private, public, maildrop, a file inside db/ and pid/) pointing outside
# the queue: relayq check and relayq start refuse with the path named, no
# master runs, and the link's target keeps its owner and mode. With the
# link gone, relayq starts and delivers as before. Needs root.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root: the danger is root following a link"
    exit 0
fi
rq_setup
sink_start
"$RELAYQ" start && "$RELAYQ" stop
ok $? "a first start and stop make the queue tree"

# The targets: a directory and a file outside the queue, root's own.
mkdir "$T/outside"
chmod 0755 "$T/outside"
echo "root's file" >"$T/outside-file"
chmod 0644 "$T/outside-file"
# targets_intact - neither target was given away or changed mode
targets_intact() {
    [ "$(stat -c '%a %U:%G' "$T/outside")" = "755 root:root" ] &&
        [ "$(stat -c '%a %U:%G' "$T/outside-file")" = "644 root:root" ]
}
check "the targets are root's before the test" -- targets_intact

# plant - replace a queue entry with a link (the entry is kept aside): plant ENTRY TARGET
plant() {
    mv "$T/queue/$1" "$T/queue/$1.aside"
    ln -s "$2" "$T/queue/$1"
    chown -h nobody "$T/queue/$1"
}
# unplant - put the entry back: unplant ENTRY
unplant() {
    rm -f "$T/queue/$1"
    mv "$T/queue/$1.aside" "$T/queue/$1"
}

for entry in corrupt pid db private public maildrop db/data.mdb db/lock.mdb pid/master.pid; do
    case $entry in
    */*) target=$T/outside-file ;;
    *) target=$T/outside ;;
    esac
    plant "$entry" "$target"
    "$RELAYQ" check >"$T/check.out" 2>&1
    status=$?
    ok $((status != 78)) "$entry -> outside: relayq check refuses (exit $status)"
    check "$entry: check names the path and says it is a link" -- \
        grep -q "$T/queue/$entry: a symbolic link" "$T/check.out"
    "$RELAYQ" start >"$T/start.out" 2>&1
    status=$?
    ok $((status == 0)) "$entry: relayq start refuses (exit $status)"
    check "$entry: start names the path" -- grep -q "$T/queue/$entry: a symbolic link" "$T/start.out"
    check "$entry: no master runs" -- sh -c "! \"$RELAYQ\" status >/dev/null 2>&1"
    check "$entry: the target kept its owner and mode" -- targets_intact
    unplant "$entry"
done

# A directory that mail_owner did not make, owned by another user.
chown 54321 "$T/queue/corrupt"
"$RELAYQ" check >"$T/check.out" 2>&1
check "a subdirectory owned by a stranger is refused by check, with its owner" -- \
    grep -q "$T/queue/corrupt: owned by uid 54321" "$T/check.out"
chown nobody "$T/queue/corrupt"

"$RELAYQ" check >/dev/null 2>&1
ok $? "with every link gone, relayq check passes"
"$RELAYQ" start
ok $? "and relayq starts"
printf 'Subject: after\n\nthe queue is whole\n' | "$RELAYQ" sendmail -f a@example.com b@example.com
wait_for 30 sink_has 1
ok $? "and delivers"
"$RELAYQ" stop
ok $? "relayq stop"
check "the targets are still root's, unchanged" -- targets_intact
tap_end
