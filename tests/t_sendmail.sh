#!/bin/sh
# t_sendmail.sh - relayq sendmail, check and mailq without any daemon running
#
# Each case runs the real command against a temporary queue directory and
# configuration, then checks the exit code (sysexits.h), the one line on
# standard error, and what is (or, for every failure, is not) in maildrop/.
# TAP output; no daemons, no sleeps; everything lives under one temporary
# directory that is removed on exit.

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
RELAYQ=$top_builddir/cli/relayq
# The front runs the full command for everything but sendmail's messages.
RELAYQ_COMMAND=$top_builddir/cli/relayq-command
export RELAYQ_COMMAND

if [ ! -x "$RELAYQ" ]; then
    echo "1..0 # SKIP $RELAYQ is not built"
    exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/t_sendmail.XXXXXX") || exit 1
# Root's mailq looks as mail_owner (nobody, below): it must reach the queue's parent.
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

q=$tmp/queue
mkdir -p "$q/maildrop"
conf=$tmp/relayq.conf
cat >"$conf" <<EOF
# test configuration
queue_directory = $q
daemon_directory = $tmp/libexec
myhostname = host.example.com
myorigin = example.org
relayhost = [127.0.0.1]:2525
mail_owner = $(id -un)
message_size_limit = 2k
EOF
unset RELAYQ_CONFIG

n=0
failed=0
echo "1..60"

# ok COND-STATUS DESCRIPTION - one TAP line from the status of the last test
ok() {
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=1
        [ -s "$tmp/err" ] && sed 's/^/# stderr: /' "$tmp/err"
    fi
}

# run ARGS... - relayq with stdin from $tmp/in; sets $rc, fills $tmp/out and $tmp/err
run() {
    "$RELAYQ" "$@" <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}

# files - number of files in maildrop/
files() {
    ls -A "$q/maildrop" | wc -l | tr -d ' '
}

# the_file - the one maildrop file
the_file() {
    ls -d "$q"/maildrop/* 2>/dev/null | head -n 1
}

# envelope / content - the parts of the one maildrop file
envelope() {
    sed '/^$/q' "$(the_file)"
}
content() {
    sed '1,/^$/d' "$(the_file)"
}

# clean - empty maildrop/ between cases
clean() {
    rm -f "$q"/maildrop/* "$q"/maildrop/.[!.]* 2>/dev/null
}

# fails CODE PATTERN DESCRIPTION - three results: exit code, one matching error line, no file
fails() {
    [ "$rc" -eq "$1" ]
    ok $? "$3: exit $1 (got $rc)"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -e "$2" "$tmp/err"
    ok $? "$3: one line on stderr matching \"$2\""
    [ "$(files)" -eq 0 ]
    ok $? "$3: nothing in maildrop"
    clean
}

# --- a message with two recipients: one file, the right envelope
printf 'Subject: test\n\nhello\n' >"$tmp/in"
run sendmail -c "$conf" -f sender@example.com alice@example.com bob
[ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ]
ok $? "two recipients: exit 0, silent"
[ "$(files)" -eq 1 ] && ! ls "$q/maildrop" | grep -q '^tmp\.'
ok $? "two recipients: exactly one file, no temporary left"
env=$(envelope)
printf '%s\n' "$env" | grep -qx 'type=maildrop' &&
    printf '%s\n' "$env" | grep -qx 'sender=sender@example.com' &&
    printf '%s\n' "$env" | grep -qx "uid=$(id -u)" &&
    [ "$(printf '%s\n' "$env" | grep -c '^rcpt=')" -eq 2 ] &&
    printf '%s\n' "$env" | grep -qx 'rcpt=alice@example.com' &&
    printf '%s\n' "$env" | grep -qx 'rcpt=bob'
ok $? "two recipients: envelope has the sender and both recipients, the bare one left for pickup's @myorigin"
[ "$(content)" = "$(printf 'Subject: test\n\nhello')" ]
ok $? "two recipients: content as submitted"
ls "$q/maildrop" | grep -Eq '^[0-9]+\.[0-9]{6}\.[0-9]+\.[0-9a-f]+$'
ok $? "file name is SECONDS.MICROSECONDS.PID.RANDOM"
clean

# --- the default sender and the null sender
run sendmail -c "$conf" alice@example.com
! envelope | grep -q '^sender='
ok $? "no -f: no sender in the file, pickup names the user"
clean
run sendmail -c "$conf" -f '<>' alice@example.com
envelope | grep -qx 'sender='
ok $? "-f '<>': the null sender"
clean

# --- -t: recipients from To, Cc, Bcc (folded), Bcc dropped, command line added
cat >"$tmp/in" <<'EOF'
From: Sender <sender@example.com>
To: Alice <alice@example.com>, bob@example.net
Cc: "Carol C." <carol@example.com>,
	dave
Bcc: secret@example.com
Subject: extract

body line
To: not-a-header@example.com
EOF
run sendmail -c "$conf" -t extra@example.com
[ "$rc" -eq 0 ] && [ "$(files)" -eq 1 ]
ok $? "-t: exit 0, one file"
env=$(envelope)
for r in alice@example.com bob@example.net carol@example.com dave@example.org \
    secret@example.com extra@example.com; do
    printf '%s\n' "$env" | grep -qx "rcpt=$r" || break
done
[ $? -eq 0 ] && [ "$(printf '%s\n' "$env" | grep -c '^rcpt=')" -eq 6 ]
ok $? "-t: To, folded Cc, Bcc and command-line recipients, nothing from the body"
! content | grep -qi '^bcc:' && content | grep -q '^Cc: "Carol C."' &&
    content | grep -q '^To: not-a-header@example.com'
ok $? "-t: Bcc header removed, other headers and the body kept"
clean

printf 'Subject: none\n\nbody\n' >"$tmp/in"
run sendmail -c "$conf" -t
fails 65 'no recipient addresses found in message header' "-t without recipient headers"

# --- a lone dot ends the message, unless -i or -oi
printf 'Subject: dots\n\nbefore\n.\nafter\n' >"$tmp/in"
run sendmail -c "$conf" alice@example.com
[ "$rc" -eq 0 ] && [ "$(content)" = "$(printf 'Subject: dots\n\nbefore')" ]
ok $? "a lone dot ends the message"
clean
run sendmail -c "$conf" -i alice@example.com
[ "$rc" -eq 0 ] && [ "$(content)" = "$(printf 'Subject: dots\n\nbefore\n.\nafter')" ]
ok $? "-i: a lone dot is data"
clean
run sendmail -c "$conf" -oi alice@example.com
[ "$rc" -eq 0 ] && [ "$(content)" = "$(printf 'Subject: dots\n\nbefore\n.\nafter')" ]
ok $? "-oi: a lone dot is data"
clean
printf 'Subject: dots\n\n..\n. \nend\n' >"$tmp/in"
run sendmail -c "$conf" alice@example.com
[ "$rc" -eq 0 ] && [ "$(content)" = "$(printf 'Subject: dots\n\n..\n. \nend')" ]
ok $? "only a line of exactly one dot ends the message"
clean

# --- ignored sendmail flags, DSN options
printf 'Subject: flags\n\nx\n' >"$tmp/in"
run sendmail -c "$conf" -odi -oem -v -B 8BITMIME -bm -U -L label -N success,delay \
    -R hdrs -V env-1 -F 'Full Name' alice@example.com
env=$(envelope)
[ "$rc" -eq 0 ] && printf '%s\n' "$env" | grep -qx 'notify=success,delay' &&
    printf '%s\n' "$env" | grep -qx 'ret=hdrs' &&
    printf '%s\n' "$env" | grep -qx 'envid=env-1' &&
    printf '%s\n' "$env" | grep -qx 'fullname=Full Name'
ok $? "common sendmail flags ignored; -N -R -V -F in the envelope"
clean

# --- every bad input: one line, its exit code, nothing queued
printf 'Subject: bad\n\nx\n' >"$tmp/in"
run sendmail -c "$conf"
fails 64 'no recipients specified' "no recipients"

crlf=$(printf 'a\r\nb@example.com')
run sendmail -c "$conf" "$crlf"
fails 65 'bad recipient address.*line break' "recipient with CR/LF"

run sendmail -c "$conf" 'two words@example.com'
fails 65 'bad recipient address "two words@example.com"' "recipient with bad syntax"

run sendmail -c "$conf" 'alice@exa mple.com'
fails 65 'bad recipient address' "recipient with a bad domain"

run sendmail -c "$conf" -N never,success alice@example.com
fails 64 'bad -N value' "-N never with others"

awk 'BEGIN { print "Subject: big\n"; for (i = 0; i < 100; i++) print "0123456789012345678901234567890123456789" }' >"$tmp/in"
run sendmail -c "$conf" alice@example.com
fails 65 'message is larger than message_size_limit (2048 bytes)' "message over message_size_limit"

printf 'Subject: bad\n\nx\n' >"$tmp/in"
run sendmail -c "$tmp" alice@example.com
fails 78 "$tmp: cannot read" "unreadable configuration (a directory)"

run sendmail -c "$tmp/missing.conf" alice@example.com
fails 78 "$tmp/missing.conf: cannot open" "missing configuration"

cp "$conf" "$tmp/bad.conf"
echo 'smtpout_workers = many' >>"$tmp/bad.conf"
line=$(wc -l <"$tmp/bad.conf" | tr -d ' ')
run sendmail -c "$tmp/bad.conf" alice@example.com
fails 78 "^relayq: fatal: $tmp/bad.conf:$line: bad value \"many\" for smtpout_workers" \
    "configuration with a bad value"

mv "$q/maildrop" "$q/maildrop.away"
run sendmail -c "$conf" alice@example.com
[ "$rc" -eq 73 ] && grep -q "queue directory $q/maildrop does not exist" "$tmp/err"
ok $? "missing maildrop: exit 73 and the reason"
mv "$q/maildrop.away" "$q/maildrop"

# A file size limit makes the write fail like a full disk would.
sed 's/^message_size_limit.*/message_size_limit = 0/' "$conf" >"$tmp/nolimit.conf"
awk 'BEGIN { print "Subject: big\n"; for (i = 0; i < 2000; i++) print "0123456789012345678901234567890123456789" }' >"$tmp/in"
(
    ulimit -f 2
    "$RELAYQ" sendmail -c "$tmp/nolimit.conf" alice@example.com <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
)
rc=$?
fails 75 'cannot queue the message: write' "write failure"

# --- invoked as sendmail
ln -s "$(cd "$(dirname "$RELAYQ")" && pwd)/relayq" "$tmp/sendmail"
printf 'Subject: alias\n\nx\n' >"$tmp/in"
"$tmp/sendmail" -C "$conf" -oi alice@example.com <"$tmp/in" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 0 ] && [ "$(files)" -eq 1 ]
ok $? "invoked as sendmail (with Postfix's -C)"
clean

run sendmail -c "$conf" -q
[ "$rc" -eq 69 ] && grep -q 'the mail system is down' "$tmp/err"
ok $? "sendmail -q is relayq flush: qmgr not running gives exit 69"

# --- relayq check
run check -c "$tmp/bad.conf"
[ "$rc" -eq 78 ] && grep -q "$tmp/bad.conf:$line: bad value \"many\" for smtpout_workers" "$tmp/err"
ok $? "check: a bad value gives file:line: reason and exit 78"

mkdir -p "$tmp/libexec"
for d in master pickup qmgr showq smtpout; do
    printf '#!/bin/sh\nexit 0\n' >"$tmp/libexec/$d"
    chmod 755 "$tmp/libexec/$d"
done
# As root, check also asks for what master needs as mail_owner.
[ "$(id -u)" -eq 0 ] && printf 'mail_owner = nobody\nsetgid_group = mail\n' >>"$conf"
run check -c "$conf"
[ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && grep -q "no problems found" "$tmp/out"
ok $? "check: a good configuration passes, naming the file it read"

rm "$tmp/libexec/qmgr"
sed 's/^relayhost.*/relayhost =/' "$conf" >"$tmp/norelay.conf"
run check -c "$tmp/norelay.conf"
[ "$rc" -eq 78 ] && grep -q 'relayhost is empty' "$tmp/err" &&
    grep -q "daemon_directory $tmp/libexec: no executable \"qmgr\"" "$tmp/err"
ok $? "check: every problem is reported (empty relayhost, missing daemon)"

# --- mailq on a queue that was never created
run mailq -c "$conf"
[ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "Mail queue is empty" ]
ok $? "mailq: no queue database is an empty queue"

run mailq -c "$conf" --json
[ "$rc" -eq 0 ] && [ ! -s "$tmp/out" ]
ok $? "mailq --json: an empty queue prints nothing"

run flush -c "$conf" -i not-a-queue-id
[ "$rc" -eq 64 ] && grep -q 'bad queue id "not-a-queue-id"' "$tmp/err"
ok $? "flush: a bad queue id is a usage error"

run flush -c "$conf"
[ "$rc" -eq 69 ] && grep -q "the mail system is down (cannot connect to $q/public/control" "$tmp/err"
ok $? "flush: qmgr not running gives exit 69"

run status -c "$conf"
[ "$rc" -eq 1 ] && grep -q 'the mail system is not running' "$tmp/out"
ok $? "status: not running, exit 1"

[ "$(files)" -eq 0 ]
ok $? "maildrop is empty at the end"

exit $failed
