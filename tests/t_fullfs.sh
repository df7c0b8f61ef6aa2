#!/bin/bash
# t_fullfs - a full file system under maildrop/: relayq sendmail exits
# EX_TEMPFAIL with a clear message and leaves no partial file; once there
# is room, a message is accepted again. Needs root to mount a small tmpfs;
# skipped otherwise.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "1..0 # SKIP needs root to mount a small file system"
    exit 0
fi
rq_setup
mkdir -p "$T/queue/maildrop"
if ! mount -t tmpfs -o size=256k,mode=1730 tmpfs "$T/queue/maildrop" 2>/dev/null; then
    echo "1..0 # SKIP cannot mount a tmpfs here"
    exit 0
fi
trap 'umount "$T/queue/maildrop" 2>/dev/null; rq_cleanup' EXIT

head -c 400000 /dev/zero | tr '\0' 'x' | fold -w 76 >"$T/big"
{ printf 'Subject: too big for the disk\n\n'; cat "$T/big"; } |
    "$RELAYQ" sendmail -f a@example.com b@example.com 2>"$T/err"
ok $(($? != 75)) "a message larger than the free space: exit EX_TEMPFAIL (75)"
check "one line saying why" -- sh -c "test \$(wc -l <'$T/err') -eq 1 && grep -q 'No space left on device' '$T/err'"
check "no partial file is left in maildrop" -- test -z "$(ls -A "$T/queue/maildrop")"

printf 'Subject: small\n\nhello\n' | "$RELAYQ" sendmail -f a@example.com b@example.com
ok $? "a small message still fits and is accepted"
check "exactly one file in maildrop" -- test "$(ls -A "$T/queue/maildrop" | wc -l)" -eq 1
umount "$T/queue/maildrop"
ok $? "the small file system is unmounted"
tap_end
