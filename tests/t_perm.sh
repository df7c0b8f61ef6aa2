#!/bin/bash
# t_perm - nobody in: started as root, master and its daemons run as
# mail_owner with no way back; the queue is mail_owner's, and the only way
# in for other users is the relayq command installed setgid to setgid_group
# (as Postfix's postdrop), which drops mail and talks to qmgr. Such a user
# may queue mail and look (stats, and mailq while authorized_mailq_users
# allows) but cannot flush, hold, release, delete or requeue (EX_NOPERM,
# "permission denied", nothing changes); without the setgid command, or
# with a configuration of their own, they reach nothing. The daemons refuse
# to run as root; a configuration link swapped while the command reads it
# never lends the group. Needs root, to act as another user; skipped otherwise.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
    echo "1..0 # SKIP needs root and setpriv to act as another user"
    exit 0
fi
rq_setup
STRANGER=54321
# The command as a package installs it: setgid to setgid_group (mail here),
# the front and the full command it runs for all but sendmail's messages
# (the front gives its group up before it runs it).
cp "$RELAYQ" "$T/relayq"
chgrp mail "$T/relayq"
chmod 2755 "$T/relayq"
cp "$RELAYQ_COMMAND" "$T/relayq-command"
chgrp mail "$T/relayq-command"
chmod 2755 "$T/relayq-command"
# as_stranger - run a command as a user that is neither root nor mail_owner
as_stranger() {
    RELAYQ_COMMAND=$T/relayq-command setpriv --reuid=$STRANGER --regid=$STRANGER --clear-groups "$@"
}
# stranger - the setgid relayq as that user
stranger() {
    as_stranger "$T/relayq" -c "$CONF" "$@"
}
# A sanitizer runtime cannot start set-group-id (it reads its options and
# maps from /proc/self, which the kernel closes to such a process).
if ! as_stranger "$T/relayq" --help >/dev/null 2>&1 ||
    ! printf 'x\n' | as_stranger "$T/relayq" sendmail -bi >/dev/null 2>&1; then
    echo "1..0 # SKIP this build of relayq cannot run set-group-id (sanitizer runtime)"
    exit 0
fi
# And a plain copy of the front, without the setgid bit.
mkdir "$T/plain"
cp "$RELAYQ" "$T/plain/relayq"
chmod 755 "$T/plain/relayq"
# mode_owner - "MODE USER:GROUP" of a file
mode_owner() {
    stat -c '%a %U:%G' "$1"
}
# proc_ids - the Uid, Gid and Groups lines of a process, values only
proc_ids() {
    awk '/^(Uid|Gid|Groups):/ { $1 = ""; printf "%s;", $0 }' "/proc/$1/status"
}

sink_start
"$RELAYQ" start
ok $? "relayq start (mail_owner = nobody, setgid_group = mail)"
wait_for 10 test -S "$T/queue/public/control"
ok $? "qmgr is listening"

# --- who the daemons are ---
nobody_ids=$(id -u nobody)
nobody_gid=$(id -g nobody)
want=" $nobody_ids $nobody_ids $nobody_ids $nobody_ids; $nobody_gid $nobody_gid $nobody_gid $nobody_gid; $nobody_gid;"
for d in master pickup qmgr smtpout; do
    if [ "$d" = master ]; then pid=$(master_pid); else pid=$(child_pid "$d"); fi
    have=$(proc_ids "$pid")
    ok $([ "$have" = "$want" ]; echo $?) "$d runs as nobody: real, effective, saved and file ids, no other group ($have)"
done

# --- the queue's modes ---
check "queue directory: mail_owner's, group mail may only pass" -- \
    test "$(mode_owner "$T/queue")" = "710 nobody:mail"
check "maildrop/: group mail may drop files, not list them" -- \
    test "$(mode_owner "$T/queue/maildrop")" = "1730 nobody:mail"
check "public/: group mail may reach the sockets" -- \
    test "$(mode_owner "$T/queue/public")" = "710 nobody:mail"
check "db/ is mail_owner's alone" -- test "$(stat -c %a "$T/queue/db")" = 700
as_stranger ls "$T/queue" >/dev/null 2>&1
ok $(($? == 0)) "another user cannot list the queue directory"

# --- queueing mail ---
printf 'Subject: perm\n\nhello\n' | stranger sendmail -f a@example.com b@example.com
ok $? "another user queues mail through the setgid command"
wait_for 30 sink_has 1
ok $? "and it is delivered"
check "pickup recorded the user who sent it" -- \
    grep -q "uid=$STRANGER" "$MAILLOG"
# Root's maildrop file is given to mail_owner; the log still names root.
printf 'Subject: perm\n\nhello\n' | "$RELAYQ" sendmail -f rootsub@example.com b@example.com
wait_for 30 grep -q "from=<rootsub@example.com>" "$MAILLOG"
check "mail root submits is logged with root's uid, not mail_owner's" -- \
    grep -q "uid=0 from=<rootsub@example.com>" "$MAILLOG"
printf 'Subject: perm\n\nhello\n' | as_stranger "$T/plain/relayq" -c "$CONF" sendmail -f a@example.com b@example.com 2>"$T/err"
status=$?
ok $((status == 0)) "without the setgid bit the user cannot queue mail: exit $status"
check "and is told why" -- grep -q 'ermission denied' "$T/err"
# A configuration the user wrote could aim the group at any directory: the
# command gives the group up for it.
cp "$CONF" "$T/own.conf"
chown $STRANGER "$T/own.conf"
printf 'Subject: perm\n\nhello\n' | as_stranger "$T/relayq" -c "$T/own.conf" sendmail -f a@example.com b@example.com 2>"$T/err"
status=$?
ok $((status == 0)) "with a configuration of the user's own, the group is dropped: exit $status"
check "and the user is told why" -- grep -q 'ermission denied' "$T/err"

# --- changing the queue ---
sink_stop
printf 'Subject: perm\n\nhello\n' | "$RELAYQ" sendmail -f a@example.com c@example.com
wait_for 30 log_has 1 'status=deferred'
ok $? "one message deferred"
id=$("$RELAYQ" mailq --json | sed 's/.*"queue_id": "\([^"]*\)".*/\1/')
for cmd in "flush" "hold $id" "release ALL" "delete ALL" "requeue $id"; do
    stranger $cmd 2>"$T/err"
    status=$?
    ok $((status != 77)) "another user cannot $cmd: exit $status (EX_NOPERM)"
    check "and is told why" -- grep -q 'permission denied' "$T/err"
done
check "qmgr logged the refusals" -- test "$(grep -c "refused .* from uid $STRANGER" "$MAILLOG")" -eq 5
check "the message is still there, not held" -- \
    test "$("$RELAYQ" mailq --json | grep -c '"queue_name": "deferred"')" -eq 1
stranger stats >/dev/null 2>&1
ok $? "another user may look at the statistics"

# --- listing the queue ---
stranger mailq >"$T/mailq" 2>"$T/err"
ok $? "authorized_mailq_users = anyone (the default): another user lists the queue"
check "through qmgr, the same listing root sees" -- \
    test "$(cat "$T/mailq")" = "$("$RELAYQ" mailq)"
check "which names the deferred message" -- grep -q "^$id " "$T/mailq"
stranger mailq --json >"$T/mailq.json"
check "and as JSON" -- grep -q "\"queue_id\": \"$id\"" "$T/mailq.json"
rq_set authorized_mailq_users "root, @adm"
"$RELAYQ" reload
wait_for 10 log_has 1 'qmgr.*: reload -- '
stranger mailq >"$T/mailq" 2>"$T/err"
status=$?
ok $((status != 77)) "authorized_mailq_users = root, @adm: another user may not list the queue (exit $status)"
check "and is told why" -- grep -q 'not in authorized_mailq_users' "$T/err"
check "the listing was not sent" -- test ! -s "$T/mailq"
"$RELAYQ" mailq | grep -q "^$id "
ok $? "root still lists it"
rq_set authorized_mailq_users "$(id -un nobody) root"
"$RELAYQ" reload
wait_for 10 log_has 2 'qmgr.*: reload -- '

"$RELAYQ" hold "$id" 2>/dev/null
ok $? "root may hold it"
"$RELAYQ" delete ALL 2>/dev/null
ok $? "root may delete it"
wait_for 10 queue_empty
ok $? "the queue is empty"

# --- the configuration swapped while the command reads it ---
# The user points -c at a link of their own and swaps it, as fast as a
# process can, between root's configuration and one that aims the queue at
# a directory only group mail may write. Whatever the interleaving, a run
# that read the user's file must not keep the group: nothing may appear in
# that directory. Each run either used root's file (queued) or the user's
# (refused). The system python3: a user cannot run root's own.
mkdir -p "$T/race/target/maildrop"
chown root:mail "$T/race/target" "$T/race/target/maildrop"
chmod 755 "$T/race/target"
chmod 1730 "$T/race/target/maildrop"
sed "s|^queue_directory = .*|queue_directory = $T/race/target|" "$CONF" >"$T/race/user.conf"
chown $STRANGER "$T/race" "$T/race/user.conf"
# setpriv itself, not the function: $! must be the swapper's own pid.
setpriv --reuid=$STRANGER --regid=$STRANGER --clear-groups /usr/bin/python3 -c '
import os, sys
link, tmp = sys.argv[1] + "/link", sys.argv[1] + "/link.tmp"
while True:
    for target in sys.argv[2:]:
        os.symlink(target, tmp)
        os.replace(tmp, link)
' "$T/race" "$CONF" "$T/race/user.conf" &
swapper=$!
wait_for 10 test -L "$T/race/link"
ok $? "the user's link is being swapped"
queued=0 refused=0 other=0
for _ in $(seq 300); do
    printf 'Subject: race\n\nhello\n' |
        as_stranger "$T/relayq" -c "$T/race/link" sendmail -f race@example.com b@example.com 2>"$T/err"
    status=$?
    if [ $status -eq 0 ]; then
        queued=$((queued + 1))
    elif grep -q 'ermission denied' "$T/err"; then
        refused=$((refused + 1))
    else
        other=$((other + 1))
        diag "exit $status: $(cat "$T/err")"
    fi
done
kill "$swapper"
wait "$swapper" 2>/dev/null
diag "300 runs against the swapped link: $queued queued, $refused refused"
check "every run either queued with root's file or was refused with the user's" -- \
    test $other -eq 0
check "both files were read over the runs (the swap raced the command)" -- \
    test $queued -gt 0 -a $refused -gt 0
check "no run kept the group with the user's file: nothing in the group's directory" -- \
    test -z "$(ls -A "$T/race/target/maildrop")"

# --- the daemons refuse root ---
for d in pickup qmgr smtpout; do
    "$T/libexec/$d" -c "$CONF" 2>"$T/err" </dev/null
    status=$?
    ok $((status == 0)) "$d started by hand as root refuses to run (exit $status)"
    check "and says why" -- grep -q 'refusing to run as root' "$T/err"
done

"$RELAYQ" stop
ok $? "relayq stop"

# --- master refuses a setgid_group that would open the queue ---
rq_set setgid_group "$(id -gn nobody)"
"$RELAYQ" start 2>"$T/err"
status=$?
ok $((status == 0)) "setgid_group = mail_owner's own group: start refused (exit $status)"
check "with the reason" -- grep -q "is mail_owner's own group" "$T/err"
rq_set setgid_group no-such-group-here
"$RELAYQ" start 2>"$T/err"
status=$?
ok $((status == 0)) "a setgid_group that does not exist: start refused (exit $status)"
check "with the reason" -- grep -q 'setgid_group "no-such-group-here": no such group' "$T/err"
tap_end
