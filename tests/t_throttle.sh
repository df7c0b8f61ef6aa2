#!/bin/bash
# t_throttle - every reply of the table of real relays asking to slow down
# (tests/unit_throttle.c: Gmail, Office 365, SES, Postfix, Exim, Haraka,
# Yahoo, Outlook.com, Mailgun), given once by the test server at the
# command it answers: the message is deferred with the reply, the
# destination is slowed down, and it is retried within seconds with no
# flush, no bounce and no backoff, although minimal_backoff_time is an
# hour. One row per reply (tests/faults_lib.sh). relayq stats counts a
# throttle event for each.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
. "$top_srcdir/tests/faults_lib.sh"

fault_setup plain
ok $? "relayq started for a plain test server on 127.0.0.1:$SINK_PORT"

# ere_quote - a text as an extended regexp that matches it literally
ere_quote() {
    sed 's/[][\.*^$(){}+?|]/\\&/g' <<<"$1"
}

row=0
while IFS=$'\t' read -r command reply; do
    row=$((row + 1))
    expect=throttled
    # After the final dot the server had taken the message: once more is allowed.
    [ "$command" = DOT ] && expect=throttled-dup
    fault_case "throttle$row" "$expect" "$(ere_quote "$reply")" --reply "$command:$reply@1"
done < <("$top_builddir/tests/unit_throttle" --slow-down)
check "the table has rows" -- test "$row" -ge 10
# throttles_total - the throttle events relayq stats --json counts over every destination
throttles_total() {
    "$RELAYQ" stats --json | python3 -c 'import json, sys
print(sum(d.get("throttles", 0) for d in json.load(sys.stdin)["destinations"]))'
}
check "relayq stats counts a throttle event for each reply ($(throttles_total) for $row)" -- \
    test "$(throttles_total)" -ge "$row"

fault_finish
tap_end
