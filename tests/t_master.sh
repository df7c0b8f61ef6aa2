#!/bin/sh
# t_master.sh - master against fake daemons: detach, lock, status socket,
# restart after a crash, throttling, reload, graceful stop, config errors.
#
# The daemons are shell scripts in a temporary daemon_directory that log
# "NAME start PID ARGS" (and "hup", "term", "fail") to $tmp/events and then
# idle; master itself is the real program from $top_builddir. Run as root,
# master drops to mail_owner = nobody, so the temporary tree is opened up
# for that user. Every wait is a bounded poll on a condition.

top_builddir=${top_builddir:-.}
master_bin=$top_builddir/master/master
case $master_bin in /*) ;; *) master_bin=$(pwd)/$master_bin ;; esac

echo "1..42"

if [ ! -x "$master_bin" ]; then
    echo "Bail out! $master_bin not built"
    exit 1
fi

# As root the children run as nobody, who must reach the tree: /tmp, not a
# private $TMPDIR.
base=${TMPDIR:-/tmp}
[ "$(id -u)" -eq 0 ] && base=/tmp
tmp=$(mktemp -d "$base/t_master.XXXXXX") || exit 1
chmod 755 "$tmp"
events=$tmp/events
maillog=$tmp/maillog
conf=$tmp/relayq.conf
lockfile=$tmp/q/pid/master.pid
sock=$tmp/q/public/master
: >"$events"
chmod 666 "$events"

count=0
failed=0
master_pid=
fg_pid=

# cleanup - stop every process this test started, then remove the tree
cleanup() {
    for pid in $master_pid $fg_pid; do
        kill -TERM "$pid" 2>/dev/null
    done
    if [ -f "$events" ]; then
        for pid in $(awk '$2 == "start" { print $3 }' "$events"); do
            kill -KILL "$pid" 2>/dev/null
        done
    fi
    for pid in $master_pid $fg_pid; do
        kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# result - print one TAP line: result STATUS DESCRIPTION
result() {
    count=$((count + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $count - $2"
    else
        echo "not ok $count - $2"
        failed=1
    fi
}

# check - run a command as a test: check DESCRIPTION COMMAND...
check() {
    desc=$1
    shift
    "$@"
    result $? "$desc"
}

# wait_for - poll a command every 0.05 s for up to SECONDS: wait_for SECONDS COMMAND...
wait_for() {
    limit=$(($1 * 20))
    shift
    i=0
    while [ $i -lt $limit ]; do
        "$@" && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# starts - how many processes of NAME have started
starts() {
    awk -v n="$1" '$1 == n && $2 == "start"' "$events" | wc -l
}

# pids - the pids of started processes of NAME, in start order
pids() {
    awk -v n="$1" '$1 == n && $2 == "start" { print $3 }' "$events"
}

# count_is - compare the number of EVENT lines of NAME: count_is NAME EVENT OP NUMBER
count_is() {
    n_events=$(awk -v n="$1" -v e="$2" '$1 == n && $2 == e' "$events" | wc -l)
    test "$n_events" "$3" "$4"
}

# alive - every pid given is running
alive() {
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null || return 1
    done
    return 0
}

# all_gone - none of the pids given runs
all_gone() {
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 1
    done
    return 0
}

# logged - the maillog has a line matching the extended regex
logged() {
    grep -Eq "$1" "$maillog" 2>/dev/null
}

# has - TEXT has a line matching the extended regex: has TEXT REGEX
has() {
    printf '%s\n' "$1" | grep -Eq "$2"
}

# lines - how many lines of TEXT match the extended regex
lines() {
    printf '%s\n' "$1" | grep -Ec "$2"
}

# status_query - send REQUEST (\n for newlines) to public/master; print the reply
status_query() {
    perl -MIO::Socket::UNIX -e '
        my ($path, $req) = @ARGV;
        $SIG{ALRM} = sub { exit 3 };
        alarm 5;
        my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path) or exit 2;
        $req =~ s/\\n/\n/g;
        syswrite($s, $req);
        my $data = "";
        while ((() = $data =~ /\n\n/g) < 2) {
            my $n = sysread($s, my $buf, 4096);
            last if !$n;
            $data .= $buf;
        }
        print $data;' "$sock" "$1"
}

# Fake daemons: each logs its start with its arguments, logs and survives
# SIGHUP, logs and exits 0 on SIGTERM. pickup fails at once while
# $tmp/pickup_fail exists.
mkdir "$tmp/libexec"
for name in qmgr pickup smtpout; do
    cat >"$tmp/libexec/$name" <<EOF
#!/bin/sh
if [ $name = pickup ] && [ -e "$tmp/pickup_fail" ]; then
    echo "$name fail \$\$" >>"$events"
    exit 1
fi
echo "$name start \$\$ \$*" >>"$events"
child=
trap 'echo "$name hup \$\$" >>"$events"' HUP
trap 'kill \$child 2>/dev/null; echo "$name term \$\$" >>"$events"; exit 0' TERM
while :; do
    sleep 1 &
    child=\$!
    wait \$child
done
EOF
    chmod 755 "$tmp/libexec/$name"
done

# write_conf - the test configuration with smtpout_workers = N
write_conf() {
    cat >"$conf" <<EOF
# t_master.sh configuration
queue_directory = $tmp/q
daemon_directory = $tmp/libexec
maillog_file = $tmp/maillog
mail_owner = nobody
setgid_group = mail
myhostname = relayq.test
relayhost = [127.0.0.1]:1
smtpout_workers = $1
smtpd_listen =
queue_map_size = 4m
EOF
    chmod 644 "$conf"
}
write_conf 2

# 1-4: start detached, with a relative configuration name
out=$( cd "$tmp" && "$master_bin" -c relayq.conf 2>&1 9>"$tmp/inherited" )
check "master detaches and the parent exits 0 ($out)" [ $? -eq 0 ]
wait_for 10 count_is smtpout start -ge 2 && wait_for 10 count_is qmgr start -ge 1 &&
    wait_for 10 count_is pickup start -ge 1
check "qmgr, pickup and 2 smtpout started" [ "$(starts qmgr)$(starts pickup)$(starts smtpout)" = 112 ]
check "children get the absolute configuration name" \
    grep -q "^qmgr start [0-9]* -c $conf\$" "$events"
wait_for 10 test -s "$lockfile"
master_pid=$(cat "$lockfile" 2>/dev/null)
check "pid file holds the running master's pid" alive "$master_pid"

check "descriptors of the invoker are not inherited" \
    [ ! -e "/proc/$master_pid/fd/9" -a ! -e "/proc/$(pids qmgr | head -1)/fd/9" ]

# 5: the lock is held
check "the lock on pid/master.pid is held" sh -c "! flock -n '$lockfile' true"

# 6-7: root hands the queue and the children to mail_owner
if [ "$(id -u)" -eq 0 ]; then
    uid=$(awk '/^Uid:/ { print $2 }' "/proc/$(pids qmgr | head -1)/status")
    check "children run as mail_owner nobody" [ "$uid" = "$(id -u nobody)" ]
    check "queue directory belongs to mail_owner" [ "$(stat -c %U "$tmp/q/db")" = nobody ]
else
    result 0 "children run as the invoking user # SKIP not root"
    check "queue directory belongs to the invoking user" [ "$(stat -c %u "$tmp/q/db")" = "$(id -u)" ]
fi

# 8: the queue exists for readers
check "the LMDB environment was created" [ -f "$tmp/q/db/data.mdb" ]

# 9: startup log line
check "startup is logged" logged "relayq/master\[$master_pid\]: daemon started -- version [^ ]+, configuration $conf\$"

# 10: a second master refuses to run
out=$("$master_bin" -c "$conf" 2>&1)
check "a second master fails (exit $?)" [ $? -ne 0 ]
check "... saying it is already running ($out)" \
    has "$out" "fatal: the mail system is already running \(pid $master_pid\)"

# 11-13: the status socket
reply=$(status_query 'type=status\n\n')
check "status: hello, then type=status with master's pid" \
    has "$(printf '%s\n' "$reply" | tr '\n' ' ')" \
    "^type=hello protocol=relayq-master-1  type=status pid=$master_pid "
check "status: 4 running children" [ "$(lines "$reply" '^child=[a-z]+ [1-9][0-9]* running$')" -eq 4 ]
check "status: restarts=0" has "$reply" '^restarts=0$'
reply=$(status_query 'type=bogus\n\n')
check "status: an unknown request gets type=error with a reason" \
    has "$(printf '%s\n' "$reply" | tr '\n' ' ')" "type=error reason=.*bogus"

# 14: garbage gets the client disconnected, master carries on
status_query 'no equals sign\n\n' >/dev/null
reply=$(status_query 'type=status\n\n')
check "status: a malformed request only costs the client its connection" \
    has "$reply" '^type=status$'

# 15-16: a crashed child is restarted and the crash logged
victim=$(pids smtpout | head -1)
kill -KILL "$victim"
wait_for 10 count_is smtpout start -ge 3
check "smtpout killed by signal 9 is restarted" [ "$(starts smtpout)" -eq 3 ]
check "the crash is logged Postfix-style" \
    wait_for 5 logged "warning: process $tmp/libexec/smtpout pid $victim killed by signal 9\$"

# 17-20: a child that keeps failing is throttled, then recovers
touch "$tmp/pickup_fail"
kill -KILL "$(pids pickup | tail -1)"
wait_for 15 logged "warning: $tmp/libexec/pickup: process keeps dying: delaying restart by 2 s\$"
check "pickup failing at once: restart delayed (log line)" \
    logged "warning: $tmp/libexec/pickup: process keeps dying: delaying restart by 1 s\$"
check "... and its exit status logged" \
    logged "warning: process $tmp/libexec/pickup pid [0-9]+ exit status 1\$"
fails=$(awk '$1 == "pickup" && $2 == "fail"' "$events" | wc -l)
check "no tight restart loop ($fails failed starts before the 2 s delay)" \
    [ "$fails" -ge 3 -a "$fails" -le 5 ]
reply=$(status_query 'type=status\n\n')
check "status shows pickup waiting" has "$reply" '^child=pickup 0 waiting$'
rm -f "$tmp/pickup_fail"
check "pickup runs again after the delay" wait_for 10 count_is pickup start -ge 2

# 21-23: reload with 3 workers
write_conf 3
before=$(starts smtpout)
kill -HUP "$master_pid"
wait_for 10 count_is smtpout start -ge $((before + 1))
check "SIGHUP with smtpout_workers = 3 starts a third smtpout" [ "$(starts smtpout)" -eq $((before + 1)) ]
check "reload is logged" logged "relayq/master\[$master_pid\]: reload -- version [^ ]+, configuration $conf\$"
check "children get the SIGHUP" wait_for 10 count_is qmgr hup -ge 1

# 24: reload with 1 worker stops two
write_conf 1
kill -HUP "$master_pid"
check "SIGHUP with smtpout_workers = 1 stops two smtpout" wait_for 10 count_is smtpout term -ge 2

# 25: a bad configuration on reload keeps the old one
echo "smtpout_workers = lots" >>"$conf"
bad_line=$(wc -l <"$conf")
kill -HUP "$master_pid"
check "a bad configuration on reload is a warning" \
    wait_for 10 logged "warning: reload: $conf:$bad_line: .*smtpout_workers.*keeping the old configuration"

# 26-28: SIGTERM stops everything
children=$(awk '$2 == "start" { print $3 }' "$events")
kill -TERM "$master_pid"
check "master exits on SIGTERM" wait_for 15 all_gone "$master_pid"
check "all children are gone" wait_for 5 all_gone $children
check "the lock is free" flock -n "$lockfile" true
check "the socket is removed" [ ! -e "$sock" ]
check "the stop is logged" logged "relayq/master\[$master_pid\]: terminating on signal 15\$"
master_pid=

# 29: foreground mode, SIGTERM, exit 0
write_conf 1
"$master_bin" -f -c "$conf" 2>"$tmp/fg.err" &
fg_pid=$!
wait_for 10 test -S "$sock"
wait_for 10 logged "relayq/master\[$fg_pid\]: daemon started"
kill -TERM "$fg_pid"
wait "$fg_pid"
rc=$?
fg_pid=
check "master -f runs in the foreground and exits 0 on SIGTERM (rc=$rc)" [ "$rc" -eq 0 ]

# 30-31: a master whose queue directory is removed under it stops
"$master_bin" -f -c "$conf" 2>>"$tmp/fg.err" &
fg_pid=$!
wait_for 10 logged "relayq/master\[$fg_pid\]: daemon started"
rm -rf "$tmp/q"
check "master stops when its queue directory is removed" wait_for 20 all_gone "$fg_pid"
fg_pid=
check "... and says why" logged "warning: $tmp/q/pid/master.pid was removed or replaced: the queue directory is gone; stopping"

# 30: a bad value is reported with file and line, before anything starts
cat >"$tmp/bad.conf" <<EOF
queue_directory = $tmp/q2
daemon_directory = $tmp/libexec
relayhost = [127.0.0.1]:1
smtpout_workers = many
EOF
out=$("$master_bin" -c "$tmp/bad.conf" 2>&1)
check "a bad value: master exits non-zero (exit $?)" [ $? -ne 0 ]
check "... with FILE:LINE: reason on stderr ($out)" has "$out" "^.*fatal: $tmp/bad.conf:4: .*smtpout_workers"
check "... before creating anything" [ ! -e "$tmp/q2" ]

# an empty relayhost is refused: relayq only relays
sed -e '/^relayhost/d' -e '/^smtpout_workers/d' "$tmp/bad.conf" >"$tmp/norelay.conf"
out=$("$master_bin" -f -c "$tmp/norelay.conf" 2>&1)
check "an empty relayhost: master exits non-zero (exit $?)" [ $? -ne 0 ]
check "... saying why ($out)" has "$out" "fatal: $tmp/norelay.conf: relayhost is empty: relayq only relays"

exit $failed
