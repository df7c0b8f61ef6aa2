#!/bin/bash
# t_badinput - bad input to relayq gets one clear line, an EX_* exit and
# nothing queued; a broken configuration stops check and start with
# file:line: reason.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
# The queue tree as master leaves it (qdir.c), of which sendmail needs maildrop/.
mkdir -p "$T/queue/maildrop"
chmod 0710 "$T/queue"
chmod 1730 "$T/queue/maildrop"
if [ "$(id -u)" -eq 0 ]; then chown nobody:mail "$T/queue" "$T/queue/maildrop"; fi

# bad_send - expect an exit code, an error matching a pattern, and an empty maildrop
bad_send() {
    local want=$1 pattern=$2 desc=$3
    shift 3
    "$RELAYQ" sendmail "$@" <"$T/msg" 2>"$T/err"
    local got=$?
    ok $((got != want)) "$desc: exit $got (want $want)"
    check "$desc: one line naming the problem" -- sh -c \
        "test \$(wc -l <'$T/err') -eq 1 && grep -q -- '$pattern' '$T/err'"
    check "$desc: nothing queued" -- test -z "$(ls "$T/queue/maildrop")"
}

printf 'Subject: x\n\nhello\n' >"$T/msg"
bad_send 64 'no recipients' "no recipients"
bad_send 65 'line break' "recipient with CR/LF" $'a\r\nb@example.com'
bad_send 65 'bad recipient address' "recipient with bad syntax" 'a b@@example..com'
bad_send 65 'bad sender address' "sender with bad syntax" -f 'x@@y' rcpt@example.com
rq_set message_size_limit 1000
head -c 5000 /dev/zero | tr '\0' 'x' >"$T/msg"
bad_send 65 'message_size_limit' "message over message_size_limit" rcpt@example.com
rq_set message_size_limit 10240000
printf 'Subject: a\0b\n\nhello\n' >"$T/msg"
bad_send 65 'NUL byte in the message header' "a NUL byte in the header" rcpt@example.com
printf 'Subject: a\n b\0c\n\nhello\n' >"$T/msg"
bad_send 65 'NUL byte in the message header' "a NUL byte in a header's continuation line" rcpt@example.com

echo 'smtp_connect_timeout = soon' >>"$CONF"
line=$(wc -l <"$CONF")
"$RELAYQ" check 2>"$T/err"
ok $((${PIPESTATUS[0]} == 0)) "relayq check fails on a bad value"
check "check says file:line: reason" -- grep -q "$CONF:$line: " "$T/err"
"$RELAYQ" start 2>"$T/err"
ok $(($? == 0)) "relayq start refuses a bad configuration"
check "start says file:line: reason" -- grep -q "$CONF:$line: " "$T/err"
check "no master was started" -- test -z "$(master_pid)"
printf 'Subject: x\n\nhello\n' >"$T/msg"
bad_send 78 "$CONF:$line:" "sendmail with a bad configuration" rcpt@example.com
sed -i '$d' "$CONF"

echo 'no_such_parameter = 1' >>"$CONF"
"$RELAYQ" check 2>"$T/err"
ok $(($? == 0)) "relayq check fails on an unknown parameter"
check "the error names the unknown parameter" -- grep -q 'no_such_parameter' "$T/err"
sed -i '$d' "$CONF"

"$RELAYQ" -c "$T/missing.conf" check 2>"$T/err"
ok $(($? == 0)) "relayq check fails on a missing configuration file"
check "the error names the file" -- grep -q "$T/missing.conf" "$T/err"

"$RELAYQ" sendmail rcpt@example.com <"$T/msg"
ok $? "a good message is still accepted afterwards"
check "exactly one file in maildrop" -- test "$(ls "$T/queue/maildrop" | wc -l)" -eq 1
tap_end
