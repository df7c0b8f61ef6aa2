#!/bin/bash
# t_front - the relayq users run is a front: it queues sendmail's messages
# itself and runs the full command (relayq-command) for the rest
#
# Shown here:
#  - the front links no user, group or host lookup (glibc's NSS), and is
#    a static program when configure made it one;
#  - a message without -f reaches the relay from the submitting user's
#    login name at myorigin, its bare recipient qualified with myorigin,
#    both when handed over to pickup and through a maildrop file written
#    while relayq is stopped (the file holds neither, and belongs to the
#    owner of maildrop/, mail_owner, when root wrote it);
#  - every other command goes through the full command: mailq, sendmail
#    -bp; a full command that cannot be run is a clear error (EX_OSFILE);
#  - as a uid with no login name (root only), the front installed
#    set-group-id is refused without -f (EX_DATAERR, "no login name",
#    nothing queued) and queues with -f; its maildrop file written while
#    pickup is down goes to corrupt/ with that reason in the log.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
rq_set myorigin origin.example
LOGIN=$(id -un)

# --- what the front is linked with ---
nss_symbols() {
    { nm "$RELAYQ" 2>/dev/null; nm -D "$RELAYQ" 2>/dev/null; } |
        awk '{ print $NF }' |
        grep -Ex 'getpw(nam|uid|ent)(_r)?|getgr(nam|gid|ent)(_r)?|getgrouplist|getaddrinfo|gethostbyname2?(_r)?|getlogin(_r)?|__nss_[a-z_]+'
}
check "the front uses no user, group or host lookup" -- test -z "$(nss_symbols)"
nss_symbols | sed 's/^/# linked: /'
if grep -q '^FRONT_LDFLAGS = -static' "$top_builddir/Makefile"; then
    check "configured static, the front has no program interpreter" -- \
        sh -c "! readelf -l '$RELAYQ' | grep -q 'Requesting program interpreter'"
else
    diag "the front is linked dynamically in this build (FRONT_LDFLAGS is not -static)"
fi

# --- a message without -f, handed over ---
sink_start
"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/public/pickup"
printf 'Subject: own sender\n\nbody\n' | "$RELAYQ" sendmail bob
ok $? "sendmail without -f, to a bare recipient: exit 0"
wait_for 30 sink_has 1
check "it arrives from the login name at myorigin, to the recipient at myorigin" -- \
    grep -q "^message .* from=<$LOGIN@origin.example> rcpts=<bob@origin.example> " "$SINK_LOG"
check "pickup logs that sender with the uid" -- \
    log_has 1 "uid=$(id -u) from=<$LOGIN@origin.example>"

# --- the same through a maildrop file, relayq stopped ---
"$RELAYQ" stop
ok $? "relayq stop"
wait_for 10 sh -c "! '$RELAYQ' status >/dev/null 2>&1"
printf 'Subject: own sender, filed\n\nbody\n' | "$RELAYQ" sendmail carol
ok $? "relayq stopped: sendmail without -f still exits 0"
file=$(find "$T/queue/maildrop" -type f ! -name 'tmp.*' | head -n 1)
check "the file names no sender and leaves the recipient bare" -- \
    sh -c "[ -n '$file' ] && ! sed '/^\$/q' '$file' | grep -q '^sender=' && sed '/^\$/q' '$file' | grep -qx 'rcpt=carol'"
check "the file belongs to the owner of maildrop/ (root's goes to mail_owner), mode 600 or 644" -- \
    sh -c "[ \"\$(stat -c %U '$file')\" = \"\$(stat -c %U '$T/queue/maildrop')\" ] && stat -c %a '$file' | grep -Eqx '600|644'"
"$RELAYQ" start
ok $? "relayq start again"
wait_for 30 sink_has 2
check "the filed message arrives from the login name, to carol at myorigin" -- \
    grep -q "^message .* from=<$LOGIN@origin.example> rcpts=<carol@origin.example> " "$SINK_LOG"

# --- the rest runs the full command ---
"$RELAYQ" mailq >"$T/mailq.out" 2>&1
check "relayq mailq runs through the front" -- grep -qx 'Mail queue is empty' "$T/mailq.out"
"$RELAYQ" sendmail -bp >"$T/bp.out" 2>&1
check "sendmail -bp is mailq" -- grep -qx 'Mail queue is empty' "$T/bp.out"
RELAYQ_COMMAND=$T/no-such-command "$RELAYQ" mailq >"$T/nocmd.out" 2>&1
rc=$?
check "a full command that is not there: exit 72 (EX_OSFILE), naming it" -- \
    sh -c "[ $rc -eq 72 ] && grep -q 'cannot run the relayq command $T/no-such-command: No such file or directory' '$T/nocmd.out'"

# --- a user with no login name (root only) ---
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1; then
    diag "skipping the user without a login name: needs root and setpriv"
    tap_end
    exit
fi
STRANGER=54321
mkdir "$T/sg"
cp "$RELAYQ" "$T/sg/relayq"
chgrp mail "$T/sg/relayq"
chmod 2755 "$T/sg/relayq"
stranger() {
    setpriv --reuid=$STRANGER --regid=$STRANGER --clear-groups "$T/sg/relayq" "$@"
}
if ! stranger sendmail -bi >/dev/null 2>&1; then
    diag "skipping the user without a login name: this build cannot run set-group-id (sanitizer runtime)"
    tap_end
    exit
fi
check "uid $STRANGER has no login name here" -- sh -c "! getent passwd $STRANGER >/dev/null"
before=$(sink_messages)
printf 'Subject: nobody knows me\n\nbody\n' | stranger -c "$CONF" sendmail dave >"$T/stranger.out" 2>&1
rc=$?
check "without -f: exit 65 (EX_DATAERR), saying why and what to do" -- \
    sh -c "[ $rc -eq 65 ] && grep -q 'uid $STRANGER has no login name: give the sender with sendmail -f' '$T/stranger.out'"
printf 'Subject: known sender\nMessage-ID: <stranger-f@relayq.test>\n\nbody\n' |
    stranger -c "$CONF" sendmail -f someone@example.com dave
ok $? "with -f: exit 0"
wait_for 30 sink_has $((before + 1))
check "only the message with -f arrived" -- \
    sh -c "[ $(sink_messages) -eq $((before + 1)) ] && grep -q 'from=<someone@example.com> rcpts=<dave@origin.example> .*msgid=<stranger-f@relayq.test>' '$SINK_LOG'"

# The same user while relayq is stopped: the file is written, pickup refuses it later.
"$RELAYQ" stop
wait_for 10 sh -c "! '$RELAYQ' status >/dev/null 2>&1"
printf 'Subject: filed, nobody knows me\n\nbody\n' | stranger -c "$CONF" sendmail erin
ok $? "relayq stopped: the file is written (exit 0; pickup decides)"
"$RELAYQ" start
ok $? "relayq start again"
check "pickup sets the file aside in corrupt/ with the reason" -- \
    wait_for 30 log_has 1 "uid $STRANGER has no login name"
check "and it is in corrupt/" -- \
    sh -c "[ \$(find '$T/queue/corrupt' -type f | wc -l) -eq 1 ]"
check "nothing more arrived" -- test "$(sink_messages)" -eq $((before + 1))

tap_end
