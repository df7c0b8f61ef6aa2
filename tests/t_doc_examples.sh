#!/bin/bash
# t_doc_examples - every configuration example of README.md and doc/, and
# the installed relayq.conf.example with all its settings enabled, passes
# `relayq check`, so an example works when pasted.
#
# tests/doc_examples.py finds the examples: relayq.conf blocks ("name =
# value" lines) and table blocks in the entry of a *_maps parameter. A
# relayq.conf example is checked as written except for what names this
# machine: the queue and daemon directories, the users, the log file and
# the files of *_maps, key and CA parameters point into the scratch
# directory (a table file is the docs' own example for that parameter when
# there is one). Parameters of the installation that an example leaves out
# come from the test's configuration. A table example is checked as the
# file of its parameter. Each result names the example's file and line.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
EX=$T/examples
mkdir -p "$EX"
found=$(python3 "$top_srcdir/tests/doc_examples.py" "$EX" "$top_srcdir/README.md" \
    "$top_srcdir"/doc/*.md "$top_srcdir"/doc/*.1 "$top_srcdir"/doc/*.5 \
    "$top_builddir/doc/relayq.conf.example")
ok $? "the examples of README.md and doc/ are read ($found found)"
check "README.md has configuration examples" -- grep -q 'README.md' $(grep -l source "$EX"/*)
check "relayq.conf(5) has configuration examples" -- grep -q 'relayq.conf.5' $(grep -l source "$EX"/*)
check "the installed example configuration, every setting enabled, is one" -- \
    grep -q 'relayq.conf.example' $(grep -l source "$EX"/*)

# owned_by_daemons - a file the daemons (mail_owner when root) may read and nobody else
owned_by_daemons() {
    chmod 600 "$1"
    if [ "$(id -u)" -eq 0 ]; then chown nobody "$1"; fi
}

# table_for - the scratch file for a table parameter: the docs' example of it, or empty
table_for() {
    local param=$1 file=$T/$1 example
    example=$(grep -lx "# param: $param" "$EX"/*.map 2>/dev/null | head -n 1)
    if [ -n "$example" ]; then
        grep -v '^# \(param\|source\): ' "$example" >"$file"
    else
        : >"$file"
    fi
    owned_by_daemons "$file"
    echo "$file"
}

"$RELAYQ" keygen >"$T/queue.keys"
owned_by_daemons "$T/queue.keys"
: >"$T/ca.pem"

# The values that name this machine, as "name=value" lines for awk.
machine="queue_directory=$T/queue
daemon_directory=$T/libexec
maillog_file=$MAILLOG
queue_encryption_key_file=$T/queue.keys
smtp_tls_CAfile=$T/ca.pem"
for p in smtp_sasl_password_maps transport_maps sender_dependent_relayhost_maps \
    destination_policy_maps smtp_tls_policy_maps; do
    machine="$machine
$p=$(table_for $p)"
done
for p in mail_owner setgid_group; do
    v=$(sed -n "s/^$p = //p" "$CONF")
    [ -n "$v" ] && machine="$machine
$p=$v"
done

# example_conf - an example with this machine's values: example_conf EXAMPLE OUT
example_conf() {
    printf '%s\n' "$machine" | awk -v out="$2" '
        FNR == NR { i = index($0, "="); value[substr($0, 1, i - 1)] = substr($0, i + 1); next }
        match($0, /^[A-Za-z_][A-Za-z0-9_]* = /) {
            name = substr($0, 1, RLENGTH - 3)
            if (name in value) { print name " = " value[name] > out; seen[name] = 1; next }
        }
        { print > out }
        END {
            for (name in value)
                if (!(name in seen) && name != "queue_encryption_key_file" &&
                    name != "smtp_tls_CAfile" && name !~ /_maps$/)
                    print name " = " value[name] > out
        }' - "$1"
}

# check_example - relayq check on a configuration, reported with the example's source
check_example() {
    local conf=$1 source=$2
    if "$RELAYQ" check -c "$conf" >"$T/check.out" 2>&1; then
        ok 0 "$source: relayq check passes"
    else
        ok 1 "$source: relayq check passes"
        sed 's/^/# /' "$T/check.out"
        sed 's/^/# | /' "$conf"
    fi
}

for example in "$EX"/*.conf; do
    source=$(sed -n 's/^# source: //p' "$example")
    example_conf "$example" "$example.checked"
    check_example "$example.checked" "$source"
done

for example in "$EX"/*.map; do
    source=$(sed -n 's/^# source: //p' "$example")
    param=$(sed -n 's/^# param: //p' "$example")
    conf=$example.conf
    cp "$CONF" "$conf"
    echo "$param = $(table_for "$param")" >>"$conf"
    [ "$param" = smtp_sasl_password_maps ] && echo "smtp_sasl_auth_enable = yes" >>"$conf"
    check_example "$conf" "$source ($param)"
done

tap_end
