#!/bin/bash
# t_valgrind - the whole path with every daemon and the command under
# valgrind memcheck: 50 messages through sendmail, pickup, qmgr and two
# smtpout workers, mailq, stats and a graceful stop, all through the full
# command (relayq-command: the front is static, see below). Every process must
# end with no memcheck error and nothing definitely or indirectly lost.
# Skipped (not failed) when valgrind is not installed or when the suite
# runs under AddressSanitizer, which cannot run inside valgrind.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

if ! command -v valgrind >/dev/null 2>&1; then
    echo "1..0 # SKIP valgrind is not installed"
    exit 0
fi
if nm -A "$top_builddir/cli/relayq" 2>/dev/null | grep -q __asan_init; then
    echo "1..0 # SKIP a sanitizer build cannot run under valgrind"
    exit 0
fi

rq_setup
mkdir -p "$T/vg" "$T/real"
chmod 777 "$T/vg"
VG="valgrind --quiet --vgdb=no --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --track-fds=no"
for d in master pickup qmgr smtpout; do
    mv "$T/libexec/$d" "$T/real/$d"
    # master runs the daemons by these names; each runs under memcheck.
    printf '#!/bin/sh\nexec %s --log-file=%s/vg/%s.%%p %s/real/%s "$@"\n' \
        "$VG" "$T" "$d" "$T" "$d" >"$T/libexec/$d"
    chmod 755 "$T/libexec/$d"
done
chmod 755 "$T/real"
sink_start
rq_set smtpout_workers 2
# The full command, sendmail included: the front is a static program, whose
# malloc memcheck cannot follow, and its code (sendmail.c) is the full
# command's too. The sanitizer build checks the front itself (dynamic there).
REAL_RELAYQ=$RELAYQ_COMMAND
RELAYQ="$T/relayq-vg"
printf '#!/bin/sh\nexec %s --log-file=%s/vg/relayq.%%p %s "$@"\n' "$VG" "$T" "$REAL_RELAYQ" >"$RELAYQ"
chmod 755 "$RELAYQ"

"$RELAYQ" start
ok $? "relayq start with every daemon under valgrind"
wait_for 60 test -S "$T/queue/private/qmgr"
N=50
for i in $(seq 1 $N); do
    printf 'Subject: vg %s\nMessage-ID: <vg-%s@relayq.test>\n\nbody\n' "$i" "$i" |
        "$REAL_RELAYQ" sendmail -f sender@example.com "rcpt$i@example.com" || break
done
printf 'Subject: vg\n\nbody\n' | "$RELAYQ" sendmail -f sender@example.com last@example.com
ok $? "relayq sendmail under valgrind"
wait_for 120 sink_has $((N + 1))
ok $? "all messages delivered"
"$RELAYQ" mailq >/dev/null
ok $? "relayq mailq under valgrind"
"$RELAYQ" stats >/dev/null
ok $? "relayq stats under valgrind"
"$RELAYQ" stop
ok $? "relayq stop"
# stopped - whether no daemon of this test is left
stopped() { [ -z "$(pgrep -f "$T/real/")" ]; }
wait_for 60 stopped
ok $? "every daemon exited"

logs=$(ls "$T"/vg/* 2>/dev/null | wc -l)
check "memcheck reports were written ($logs)" -- test "$logs" -ge 8
# With --quiet, memcheck writes nothing unless it has something to report.
bad=$(find "$T/vg" -type f -size +0 | sort)
check "no memcheck error or leak in any process" -- test -z "$bad"
for f in $bad; do
    diag "$f:"
    diag "$(head -n 40 "$f")"
done
tap_end
