#!/bin/bash
# t_chaos - mail injected while a killer sends SIGKILL to a random relayq
# process (master included: then "relayq start" again) each time a share of
# the mail has arrived.
# At the end every message has arrived, duplicates are counted (they stay
# within what was in flight at each kill), nothing remains queued and the
# LMDB environment reads back whole.
#
# The suite runs a short version; for the long one:
#   CHAOS_MESSAGES=20000 CHAOS_KILLS=60 tests/t_chaos.sh
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

N=${CHAOS_MESSAGES:-2000}
KILLS=${CHAOS_KILLS:-8}
rq_setup
sink_start
"$RELAYQ" start
ok $? "relayq start"
wait_for 10 test -S "$T/queue/private/qmgr"

inject "$N" chaos &
injector=$!

# chaos_victims - the running processes of this relayq, master included
chaos_victims() {
    # master runs as "master -c FILE"; the daemons by their full path.
    (master_pid; pgrep -f "^$T/libexec/(qmgr|pickup|smtpout) ") | grep .
}

# chaos_moved - mail moved since the last kill, or all of it is there: chaos_moved COUNT
chaos_moved() {
    [ "$(sink_messages)" -ge "$1" ] || sink_has_distinct "$N"
}

# The pace of the chaos is the mail's, not the clock's: the next kill
# comes once STEP more messages have arrived since the last one (or all
# have), so a slow machine sees the same kills at the same points.
kills=0 master_kills=0
step=$((N / (2 * KILLS) > 0 ? N / (2 * KILLS) : 1))
for ((k = 0; k < KILLS; k++)); do
    wait_for 120 chaos_moved $(($(sink_messages) + step))
    wait_for 60 chaos_victims >/dev/null
    victim=$(chaos_victims | shuf -n 1)
    # Make sure master is among the victims at least once.
    [ $k -eq 4 ] && victim=$(master_pid)
    name=$(ps -o comm= -p "$victim")
    kill -9 "$victim" 2>/dev/null || continue
    kills=$((kills + 1))
    if [ "$name" = master ]; then
        master_kills=$((master_kills + 1))
        # The daemons follow their master (SIGTERM on its death); start anew.
        wait_for 30 sh -c "! pgrep -f '^$T/libexec/(qmgr|pickup|smtpout) ' >/dev/null"
        wait_for 30 "$RELAYQ" start >/dev/null 2>&1
    fi
done
diag "kills: $kills, of master: $master_kills"
ok $((kills < KILLS || master_kills < 1)) "the killer struck $kills times of $KILLS, master $master_kills"
wait "$injector"
ok $? "all $N messages accepted by relayq sendmail"
"$RELAYQ" status >/dev/null 2>&1 || "$RELAYQ" start
wait_for 180 sink_has_distinct "$N"
ok $? "every one of the $N messages arrived"
dups=$(($(sink_messages) - N))
diag "duplicates: $dups (kills: $kills)"
check "duplicates stay within what was in flight ($dups for $kills kills)" -- \
    test "$dups" -le $((kills * 4 + 4))
wait_for 30 queue_empty
ok $? "nothing remains queued"
check "the LMDB environment reads back whole" -- sh -c \
    "mdb_stat -a '$T/queue/db' >/dev/null 2>&1 && test \"\$(mdb_stat -s messages '$T/queue/db' | sed -n 's/.*Entries: //p')\" -eq 0"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
