#!/bin/bash
# t_daemon - the one daemon skeleton (common/mail/daemon.c), as each of
# master, pickup, qmgr and smtpout shows it.
#
# Started by hand: an unknown option or an operand gets the daemon's usage
# line and exit status 2 in every daemon (showq, which takes one operand,
# when it is missing, unknown or followed by another); a configuration with an error
# stops each one with the file and line; run as root, pickup, qmgr and
# smtpout refuse (skipped when the test does not run as root). Under a
# running relayq: a reload with a bad line leaves every daemon on its old
# configuration with one warning each and mail still flows; the good file
# again is logged as "reload -- version V, configuration FILE" by every
# daemon, its new smtp_helo_name as "reload: changed: smtp_helo_name" by
# the workers alone, and a message sent then is delivered.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
ok $? "test SMTP server listens on 127.0.0.1:$SINK_PORT"
rq_set relayhost "[127.0.0.1]:$SINK_PORT"
rq_set smtpout_workers 2

# Run as root, the test runs the daemons as mail_owner, as master starts
# them; master is the one that starts as root.
as_owner=()
[ "$(id -u)" -eq 0 ] && as_owner=(setpriv --reuid=nobody --regid=nogroup --clear-groups)

# run_daemon NAME ARGS... - run a daemon by hand as master would start it;
# sets STATUS and ERR (its standard error)
run_daemon() {
    local name=$1
    shift
    if [ "$name" = master ]; then
        "$T/libexec/$name" "$@" >/dev/null 2>"$T/err"
    else
        "${as_owner[@]}" "$T/libexec/$name" "$@" >/dev/null 2>"$T/err"
    fi
    STATUS=$?
    ERR=$(cat "$T/err")
}

for d in master pickup qmgr smtpout; do
    run_daemon "$d" -x -c "$CONF"
    [ "$STATUS" -eq 2 ] && [[ $ERR == *"usage: $d "* ]]
    ok $? "$d -x: exit 2 with its usage line ($STATUS: $ERR)"
    run_daemon "$d" -c "$CONF" extra
    [ "$STATUS" -eq 2 ] && [[ $ERR == *"usage: $d "* ]]
    ok $? "$d with an operand: exit 2 with its usage line"
done
# showq, qmgr's listing helper, takes one operand: the layout.
for args in "" "xml" "text extra"; do
    run_daemon showq -c "$CONF" $args
    [ "$STATUS" -eq 2 ] && [[ $ERR == *"usage: showq [-v] [-c config_file] text|json"* ]]
    ok $? "showq ${args:-without an operand}: exit 2 with its usage line ($STATUS: $ERR)"
done

cp "$CONF" "$T/bad.conf"
echo "smtpout_workers = many" >>"$T/bad.conf"
bad_line=$(wc -l <"$T/bad.conf")
if [ "$(id -u)" -eq 0 ]; then
    for d in pickup qmgr smtpout; do
        "$T/libexec/$d" -c "$CONF" >/dev/null 2>"$T/err"
        [ $? -eq 1 ] && grep -q "refusing to run as root" "$T/err"
        ok $? "$d run as root refuses ($(cat "$T/err"))"
    done
else
    for d in pickup qmgr smtpout; do ok 0 "# SKIP $d run as root: the test does not run as root"; done
fi
chmod 644 "$T/bad.conf"
for d in master pickup qmgr smtpout; do
    foreground=()
    [ "$d" = master ] && foreground=(-f)
    run_daemon "$d" "${foreground[@]}" -c "$T/bad.conf"
    [ "$STATUS" -eq 1 ] && [[ $ERR == *"$T/bad.conf:$bad_line:"*smtpout_workers* ]]
    ok $? "$d with a bad configuration: exit 1 naming $T/bad.conf:$bad_line ($ERR)"
done
! pgrep -f "^$T/libexec/" >/dev/null
ok $? "none of them left a daemon running"

"$RELAYQ" start
ok $? "relayq start"
send() {
    printf 'Subject: %s\n\n%s\n' "$1" "$1" | "$RELAYQ" sendmail -f sender@example.com "$1@example.com"
}
send first && wait_for 30 sink_has 1
ok $? "a message is delivered"

# warned_all - master, qmgr, pickup and both workers refused the file at line LINE: warned_all LINE
warned_all() {
    [ "$(log_count ": warning: reload: $CONF:$1: .*keeping the old configuration")" -ge 5 ]
}
# reloaded_all - master, qmgr, pickup and both workers logged the reload
reloaded_all() {
    [ "$(log_count ": reload -- version [^ ]+, configuration $CONF\$")" -ge 5 ]
}
cp "$CONF" "$T/good.conf"
echo "smtpout_workers = many" >>"$CONF"
bad_line=$(wc -l <"$CONF")
# relayq reload checks the file itself and refuses this one: signal every
# daemon by hand, as an operator's kill would.
"$RELAYQ" reload 2>/dev/null
kill -HUP "$(master_pid)" "$(child_pid qmgr)" "$(child_pid pickup)"
pkill -HUP -f "^$T/libexec/smtpout "
wait_for 20 warned_all "$bad_line"
ok $? "master, qmgr, pickup and both workers keep the old configuration, warning of line $bad_line"
[ "$(log_count ': reload -- version ')" -eq 0 ]
ok $? "none of them logs a reload"
# The sendmail command reads the file too: it uses the good copy.
RELAYQ_CONFIG=$T/good.conf send second && wait_for 30 sink_has 2
ok $? "mail still flows on the old configuration"

cp "$T/good.conf" "$CONF"
rq_set smtp_helo_name helo.relayq.test
"$RELAYQ" reload
ok $? "relayq reload with the good file and a new smtp_helo_name"
wait_for 20 reloaded_all
ok $? "master, qmgr, pickup and both workers log \"reload -- version V, configuration $CONF\""
[ "$(log_count 'smtpout\[[0-9]+\]: reload: changed: smtp_helo_name$')" -eq 2 ] &&
    [ "$(log_count ': reload: changed: ')" -eq 2 ]
ok $? "only the two workers, which read it, log \"reload: changed: smtp_helo_name\""
send third && wait_for 30 sink_has 3
ok $? "a message sent after the reload is delivered"

"$RELAYQ" stop
ok $? "relayq stop"
tap_end
