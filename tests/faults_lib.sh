# tests/faults_lib.sh - the upstream fault table of t_faults_*.sh (sourced after lib.sh)
#
# Each row of a table is one fault_case: the test SMTP server is started
# afresh on the same port with the fault (smtpsink --reply, --bad-reply,
# --stall, --drop-in-data, most of them with "@1": the fault acts once and
# is gone), one message goes in through `relayq sendmail`, and the row
# checks what a user would see:
#  - deferred: the delivery line says status=deferred with the expected
#    reason, `relayq mailq` shows the reason, and after `relayq flush` the
#    message is delivered, each Message-ID arriving once (twice at most for
#    a fault after the final dot, where the server may have taken the
#    message: the duplicates are counted in FAULT_DUPS);
#  - bounced: status=bounced with the relay's reply, the message never
#    arrived, and the sender gets a DSN (RFC 3464) naming the recipient,
#    its status and the relay's reply;
#  - sent: delivered at the first attempt, each Message-ID once.
# Every row ends with an empty queue. relayq runs through the whole table;
# fault_finish checks that no daemon crashed, panicked or was restarted.
# Two variables shape a row: FAULT_PREFLUSH, a command run (and checked)
# between the deferral and the flush, and FAULT_BODY_SIZE, bytes of
# content added to the message.

FAULT_TIMEOUT=${FAULT_TIMEOUT:-} # every smtp_*_timeout in seconds; empty: the defaults
FAULT_DUPS=0                     # duplicates seen after faults past the final dot
FAULT_ROWS=0

# fault_setup - scratch directory, test CA, relayq configured for the test
# server: STARTTLS at level encrypt and AUTH (or, with "plain", neither),
# stage timeouts of FAULT_TIMEOUT seconds when set, and an hour of
# backoff, so that a deferred message waits for `relayq flush`:
# fault_setup [plain]
fault_setup() {
    rq_setup
    FAULT_PLAIN=${1:-}
    FAULT_SINK_ARGS=()
    if [ -z "$FAULT_PLAIN" ]; then
        tls_setup || return 1
        FAULT_SINK_ARGS=("${SINK_TLS_ARGS[@]}")
    fi
    mkdir -p "$T/mail"
    sink_start "${FAULT_SINK_ARGS[@]}" --maildir "$T/mail" || return 1
    if [ -z "$FAULT_PLAIN" ]; then
        rq_set smtp_tls_security_level encrypt
        rq_set smtp_tls_CAfile "$TLS_DIR/ca.pem"
        sasl_set "$SASL_USER" "$SASL_PASS" || return 1
    else
        rq_set smtp_tls_security_level none
    fi
    local p
    if [ -n "$FAULT_TIMEOUT" ]; then
        for p in connect helo starttls mail rcpt data_init data_xfer data_done; do
            rq_set "smtp_${p}_timeout" "${FAULT_TIMEOUT}s"
        done
    fi
    rq_set minimal_backoff_time 3600s
    rq_set maximal_backoff_time 7200s
    rq_set smtpout_workers 2
    "$RELAYQ" start
}

# fault_go_plain - from here on, plain SMTP: no STARTTLS, no AUTH (relayq restarted)
fault_go_plain() {
    "$RELAYQ" stop >/dev/null || return 1
    FAULT_SINK_ARGS=()
    rq_set smtp_tls_security_level none
    rq_set smtp_sasl_auth_enable no
    fault_sink || return 1
    "$RELAYQ" start
}

# fault_sink - restart the test server on its port with fault options: fault_sink [ARGS...]
fault_sink() {
    sink_stop
    rm -rf "$T/mail"
    mkdir -p "$T/mail"
    sink_start "${FAULT_SINK_ARGS[@]}" --maildir "$T/mail" "$@"
}

# status_line - the first delivery line of a recipient: status_line RCPT
status_line() {
    grep -F "to=<$1>," "$MAILLOG" | grep -E ' status=(sent|deferred|bounced) ' | head -n 1
}

# rcpt_decided - whether a recipient has a delivery line: rcpt_decided RCPT
rcpt_decided() {
    [ -n "$(status_line "$1")" ]
}

# rcpt_sent - whether a recipient was delivered: rcpt_sent RCPT
rcpt_sent() {
    grep -F "to=<$1>," "$MAILLOG" | grep -q ' status=sent '
}

# arrivals - how many times the server took a Message-ID: arrivals ID
arrivals() {
    local n
    n=$(grep '^message ' "$SINK_LOG" | grep -cF "msgid=<$1>")
    echo "${n:-0}"
}

# dsn_for - the stored DSN message to a sender, if any: dsn_for SENDER
dsn_for() {
    local f
    for f in "$T"/mail/*.eml; do
        [ -f "$f" ] || continue
        grep -q '^Subject: Undelivered Mail Returned to Sender' "$f" &&
            grep -qiE "^To: <?$1>?[[:space:]]*$" "$f" && { echo "$f"; return 0; }
    done
    return 1
}

# has_dsn_for - whether the sender's DSN arrived: has_dsn_for SENDER
has_dsn_for() {
    dsn_for "$1" >/dev/null
}

# fault_check_deferred - the row's delivery line is a deferral matching an
# extended regexp: fault_check_deferred NAME REASON LINE
fault_check_deferred() {
    if grep -Eq " status=deferred \(.*$2" <<<"$3"; then
        ok 0 "$1: deferred ${3#* status=deferred }"
    else
        ok 1 "$1: deferred matching /$2/ (got: ${3:-no delivery line})"
    fi
}

# fault_check_arrivals - the message arrived exactly once, or with DUP
# ("-dup": the fault came after the final dot) once or twice, the second
# counted in FAULT_DUPS: fault_check_arrivals NAME ID [DUP]
fault_check_arrivals() {
    local n
    n=$(arrivals "$2")
    if [ -z "${3:-}" ]; then
        check "$1: the message arrived exactly once (got $n)" -- test "$n" -eq 1
    else
        check "$1: the message arrived once or twice (got $n)" -- test "$n" -ge 1 -a "$n" -le 2
        [ "$n" -gt 1 ] && FAULT_DUPS=$((FAULT_DUPS + n - 1))
    fi
}

# fault_case - one row: fault_case NAME EXPECT REASON [SMTPSINK-ARGS...]
# EXPECT is deferred, deferred-dup (the fault came after the final dot: one
# duplicate is allowed and counted), throttled or throttled-dup (the relay
# asked to slow down: deferred, the destination slowed, and retried within
# seconds with no flush and no bounce, although the backoff is an hour),
# bounced or sent; REASON is an
# extended regexp the delivery line's "(...)" text must match; for
# bounced, the relay's reply as text, which the DSN's Diagnostic-Code must
# quote too.
fault_case() {
    local name=$1 expect=$2 reason=$3
    shift 3
    local rcpt="$name@example.com" sender="s-$name@example.com" id="$name@relayq.test"
    local line slowed
    FAULT_ROWS=$((FAULT_ROWS + 1))
    slowed=$(grep -c 'relay asks to slow down' "$MAILLOG" 2>/dev/null)
    if ! fault_sink "$@"; then
        ok 1 "$name: the test server starts with $*"
        return
    fi
    {
        printf 'Subject: fault %s\nMessage-ID: <%s>\n\nbody of %s\n' "$name" "$id" "$name"
        if [ -n "${FAULT_BODY_SIZE:-}" ]; then
            head -c "$FAULT_BODY_SIZE" /dev/zero | tr '\0' x | fold -w 76
            echo
        fi
    } | "$RELAYQ" sendmail -f "$sender" "$rcpt"
    wait_for 30 rcpt_decided "$rcpt"
    line=$(status_line "$rcpt")
    case $expect in
    deferred | deferred-dup)
        fault_check_deferred "$name" "$reason" "$line"
        check "$name: relayq mailq shows the reason" -- \
            grep -Eq "$reason" <<<"$("$RELAYQ" mailq)"
        if [ -n "${FAULT_PREFLUSH:-}" ]; then
            $FAULT_PREFLUSH
            ok $? "$name: the fault is cleared ($FAULT_PREFLUSH)"
        fi
        "$RELAYQ" flush >/dev/null
        wait_for 30 rcpt_sent "$rcpt"
        ok $? "$name: delivered after relayq flush, the fault gone"
        fault_check_arrivals "$name" "$id" "${expect#deferred}"
        ;;
    throttled | throttled-dup)
        fault_check_deferred "$name" "$reason" "$line"
        wait_for 30 rcpt_sent "$rcpt"
        ok $? "$name: retried within seconds with no flush, minimal_backoff_time notwithstanding"
        check "$name: the destination was slowed down" -- \
            test "$(grep -c 'relay asks to slow down' "$MAILLOG")" -gt "${slowed:-0}"
        check "$name: never bounced" -- \
            sh -c "! grep -F 'to=<$rcpt>,' '$MAILLOG' | grep -q ' status=bounced '"
        fault_check_arrivals "$name" "$id" "${expect#throttled}"
        ;;
    bounced)
        if grep -Eq ' dsn=5\.[0-9]+\.[0-9]+, status=bounced \(' <<<"$line" &&
            grep -qF "$reason" <<<"$line"; then
            ok 0 "$name: bounced ${line#* status=bounced }"
        else
            ok 1 "$name: bounced quoting \"$reason\" (got: ${line:-no delivery line})"
        fi
        wait_for 20 has_dsn_for "$sender"
        ok $? "$name: the sender got a DSN"
        check "$name: the DSN names the recipient, a 5.x.x status and the relay's reply" -- \
            python3 "$top_srcdir/tests/dsn_check.py" "$(dsn_for "$sender")" \
            "Final-Recipient=rfc822; $rcpt" "Action=failed" "Status=5." \
            "Diagnostic-Code=smtp; $reason"
        check "$name: the message never arrived" -- test "$(arrivals "$id")" -eq 0
        ;;
    sent)
        if grep -q ' status=sent ' <<<"$line"; then
            ok 0 "$name: sent at the first attempt"
        else
            ok 1 "$name: sent at the first attempt (got: ${line:-no delivery line})"
        fi
        check "$name: the message arrived exactly once" -- test "$(arrivals "$id")" -eq 1
        ;;
    esac
    wait_for 20 queue_empty
    ok $? "$name: the queue is empty"
}

# fault_finish - no daemon crashed, panicked or restarted; stop relayq
fault_finish() {
    diag "$FAULT_ROWS faults, $FAULT_DUPS duplicates after the final dot"
    check "no daemon crashed, panicked or exited with an error" -- \
        sh -c "! grep -E 'killed by signal|exit status [1-9]|\]: (panic|fatal): ' '$MAILLOG'"
    "$RELAYQ" stop
    ok $? "relayq stop"
}
