#!/bin/bash
# t_service - relayq as a service, as an administrator meets it:
#  - "make install" into a scratch prefix puts the systemd unit, the
#    logrotate snippet and the example configuration there, with the
#    paths of that installation;
#  - systemd-analyze verify accepts the installed unit (its ExecStart and
#    ExecReload must name the installed relayq, which it checks exists);
#  - the installed logrotate snippet, run by logrotate on a running relayq
#    (only its log name and the owner of the new file changed to this
#    test's), renames the log, creates a new one and reloads relayq, after
#    which the lines go to the new file;
#  - pflogsumm --syslog-name=relayq counts the messages of that log as
#    received and delivered;
#  - relayq works under the unit's capability bounding set and
#    NoNewPrivileges (applied with setpriv; the other sandboxing options
#    need systemd itself).
# A part whose program (systemd-analyze, logrotate, pflogsumm) is absent
# is skipped with the reason.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# skip - report one skipped TAP result: skip DESCRIPTION REASON
skip() {
    TAP_COUNT=$((TAP_COUNT + 1))
    echo "ok $TAP_COUNT - $1 # SKIP $2"
}

rq_setup
S=$T/prefix
UNIT=$S/lib/systemd/system/relayq.service
ROTATE=$S/etc/logrotate.d/relayq

# The test's own make, not a job of the make that runs the tests.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" install \
    prefix="$S" systemdsystemunitdir="$S/lib/systemd/system" >"$T/install.out" 2>&1
if [ $? -eq 0 ]; then
    ok 0 "make install into a scratch prefix"
else
    ok 1 "make install into a scratch prefix"
    tail -n 20 "$T/install.out" | sed 's/^/# /'
fi
for f in sbin/relayq libexec/relayq/master libexec/relayq/pickup libexec/relayq/qmgr libexec/relayq/metrics \
    libexec/relayq/smtpout; do
    check "installed: $f" -- test -x "$S/$f"
done
check "installed: the systemd unit" -- test -f "$UNIT"
check "installed: the logrotate snippet" -- test -f "$ROTATE"
check "installed: the example configuration" -- test -f "$S/share/doc/relayq/relayq.conf.example"
check "the unit starts the installed relayq in the foreground" -- \
    grep -qx "ExecStart=$S/sbin/relayq start -f" "$UNIT"
check "the unit reloads with the installed relayq" -- grep -qx "ExecReload=$S/sbin/relayq reload" "$UNIT"
check "the logrotate snippet reloads with the installed relayq" -- \
    grep -q "^ *$S/sbin/relayq reload" "$ROTATE"
check "the logrotate snippet does not copy and truncate" -- \
    test "$(grep -v '^ *#' "$ROTATE" | grep -c copytruncate)" -eq 0

if command -v systemd-analyze >/dev/null; then
    # Documentation= names man pages: look for the installed ones.
    manopt=--man=yes
    command -v man >/dev/null || manopt=--man=no
    MANPATH=$S/share/man: systemd-analyze verify "$manopt" "$UNIT" >"$T/verify.out" 2>&1
    ok $? "systemd-analyze verify accepts the installed unit"
    check "... without a complaint" -- test ! -s "$T/verify.out"
    sed 's/^/# /' "$T/verify.out"
    # The same unit naming a program that is not there must be refused:
    # the verification above did look at the installed programs.
    mkdir "$T/badunit"
    sed "s|^ExecStart=$S/sbin/relayq|ExecStart=$S/sbin/relayq-missing|" "$UNIT" \
        >"$T/badunit/relayq.service"
    systemd-analyze verify --man=no "$T/badunit/relayq.service" >/dev/null 2>&1
    check "... and refuses it with ExecStart naming a missing program" -- test $? -ne 0
else
    for d in "systemd-analyze verify accepts the installed unit" "... without a complaint" \
        "... and refuses it with ExecStart naming a missing program"; do
        skip "$d" "systemd-analyze not found (Debian package systemd)"
    done
fi

# A running relayq whose log the snippet rotates.
mkdir "$T/log"
owner=$(id -un)
[ "$(id -u)" -eq 0 ] && owner=nobody && chown nobody "$T/log"
MAILLOG=$T/log/relayq.log
rq_set maillog_file "$MAILLOG"
sink_start
ok $? "test SMTP server listens on 127.0.0.1:$SINK_PORT"
"$RELAYQ" start
ok $? "relayq start"
inject 3 before
ok $? "3 messages queued"
wait_for 60 all_tried 3
ok $? "... and delivered"

# logged_after_reload - whether the master's reload is in the new log
logged_after_reload() {
    grep -q ' relayq/master\[[0-9]*\]: reload -- ' "$MAILLOG" 2>/dev/null
}

if command -v logrotate >/dev/null; then
    sed -e "s|^/var/log/relayq.log {|$MAILLOG {|" \
        -e "s|create 0640 relayq adm|create 0640 $owner $(id -gn "$owner")|" "$ROTATE" >"$T/logrotate.conf"
    logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" >"$T/logrotate.out" 2>&1
    ok $? "logrotate runs the installed snippet"
    sed 's/^/# /' "$T/logrotate.out"
    check "... the old log is renamed, and not compressed yet (delaycompress)" -- \
        grep -q 'relayq/smtpout.* status=sent ' "$MAILLOG.1"
    check "... a new log is created for mail_owner" -- \
        test "$(stat -c %U "$MAILLOG" 2>/dev/null)" = "$owner"
    wait_for 20 logged_after_reload
    ok $? "... and relayq reload in postrotate makes master log to the new file"
else
    for d in "logrotate runs the installed snippet" "... the old log is renamed" \
        "... a new log is created" "... and relayq reload in postrotate"; do
        skip "$d" "logrotate not found (Debian package logrotate)"
    done
fi

inject 2 after
ok $? "2 more messages queued"
wait_for 60 all_tried 2
ok $? "... and their delivery is logged in the current log"
wait_for 30 queue_empty
ok $? "the queue is empty"
"$RELAYQ" stop
ok $? "relayq stop"

# pflogsumm reads the rotated and the current log as one.
if command -v pflogsumm >/dev/null; then
    cat "$MAILLOG.1" "$MAILLOG" 2>/dev/null >"$T/all.log"
    pflogsumm --syslog-name=relayq "$T/all.log" >"$T/pflogsumm.out" 2>&1
    ok $? "pflogsumm --syslog-name=relayq reads relayq's log"
    received=$(awk '$2 == "received" { print $1; exit }' "$T/pflogsumm.out")
    delivered=$(awk '$2 == "delivered" { print $1; exit }' "$T/pflogsumm.out")
    check "... and counts 5 received (${received:-none})" -- test "${received:-0}" -eq 5
    check "... and 5 delivered (${delivered:-none})" -- test "${delivered:-0}" -eq 5
    pflogsumm "$T/all.log" >"$T/pflogsumm.postfix" 2>&1
    check "without --syslog-name it finds nothing: the name is what ties them" -- \
        test "$(awk '$2 == "delivered" { print $1; exit }' "$T/pflogsumm.postfix")" = 0
else
    for d in "pflogsumm reads relayq's log" "... 5 received" "... 5 delivered" \
        "without --syslog-name it finds nothing"; do
        skip "$d" "pflogsumm not found (Debian package pflogsumm)"
    done
fi
# The unit's privilege limits (CapabilityBoundingSet, NoNewPrivileges)
# applied with setpriv to "relayq start -f" as root: master's root phase,
# a delivery, "relayq reload" under the same limits (root signalling
# master, which runs as mail_owner) and the graceful stop must all work.
# reloads - master's reload lines in the log
reloads() {
    log_count 'relayq/master\[[0-9]+\]: reload -- '
}
# reloaded_since - whether master logged a reload after the Nth: reloaded_since N
reloaded_since() {
    [ "$(reloads)" -gt "$1" ]
}
LIMIT_TESTS=("relayq start -f runs under the unit's privilege limits" "... and delivers"
    "... relayq reload works under them" "... and SIGTERM stops master gracefully (exit 0)")
if [ "$(id -u)" -ne 0 ]; then
    for d in "${LIMIT_TESTS[@]}"; do skip "$d" "needs root, as the unit's master"; done
elif ! command -v setpriv >/dev/null; then
    for d in "${LIMIT_TESTS[@]}"; do skip "$d" "setpriv not found (Debian package util-linux)"; done
else
    caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr 'A-Z ' 'a-z,' | sed 's/cap_/+/g')
    limit=(setpriv --bounding-set="-all,$caps")
    grep -qx 'NoNewPrivileges=yes' "$UNIT" && limit+=(--no-new-privs)
    diag "limits: ${limit[*]}"
    "${limit[@]}" "$RELAYQ" start -f &
    FG=$!
    wait_for 20 "$RELAYQ" status >/dev/null 2>&1
    ok $? "${LIMIT_TESTS[0]}"
    inject 1 limited
    wait_for 60 sink_has 6
    ok $? "${LIMIT_TESTS[1]}"
    before=$(reloads)
    "${limit[@]}" "$RELAYQ" reload && wait_for 20 reloaded_since "$before"
    ok $? "${LIMIT_TESTS[2]}"
    kill -TERM "$FG"
    wait "$FG"
    ok $? "${LIMIT_TESTS[3]}"
fi
tap_end
