#!/bin/bash
# t_passwd - "relayq passwd USER" makes the lines of smtpd_sasl_password_file
#
# The password comes from standard input (one line, its newline dropped);
# the line printed is USER:HASH with an argon2id hash at libsodium's
# interactive cost, a fresh salt each time, and nothing else on standard
# output. A file of such lines loads as pickup loads it
# (tests/passwd_verify) and the passwords verify. No configuration is
# needed. Bad usage and bad user names exit 64 with the usage line or the
# reason; an empty password, one with a NUL, and one longer than 1024
# bytes exit 65.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

VERIFY=$top_builddir/tests/passwd_verify
D=$(mktemp -d /tmp/relayq-passwd.XXXXXX)
trap 'rm -rf "$D"' EXIT
# Nothing is read from a configuration: point at one that does not exist.
export RELAYQ_CONFIG=$D/no-such.conf
HASH_RE='\$argon2id\$v=19\$m=65536,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}'

echo secret | "$RELAYQ" passwd alice >"$D/out" 2>"$D/err"
ok $? "echo secret | relayq passwd alice exits 0"
check "it prints one line alice:\$argon2id\$... at the interactive cost" -- \
    grep -Eqx "alice:$HASH_RE" "$D/out"
check "standard output holds that line only" -- test "$(wc -l <"$D/out")" -eq 1
check "nothing on standard error" -- test ! -s "$D/err"

printf 'p: w d\nsecond line\n' | "$RELAYQ" passwd bob@example.com >>"$D/out"
ok $? "a password with a colon and spaces, for an address"
printf 'no newline' | "$RELAYQ" passwd carol >>"$D/out"
ok $? "a password without a final newline"
echo secret | "$RELAYQ" passwd dave >>"$D/out"
check "the same password hashes differently each time (a fresh salt)" -- \
    test "$(sed -n 1p "$D/out" | cut -d: -f2)" != "$(sed -n 4p "$D/out" | cut -d: -f2)"

{
    echo "# made by relayq passwd"
    cat "$D/out"
} >"$D/smtpd_passwd"
chmod 600 "$D/smtpd_passwd"
verify() {
    "$VERIFY" "$D/smtpd_passwd" "$1" "$2"
}
check "the file loads and alice's password verifies" -- test "$(verify alice secret)" = OK
check "a wrong password for alice fails" -- test "$(verify alice secret2)" = FAILED
check "only the first line of input is the password" -- test "$(verify bob@example.com 'p: w d')" = OK
check "the newline is not part of the password" -- test "$(verify bob@example.com $'p: w d\n')" = FAILED
check "a password given without a newline verifies" -- test "$(verify carol 'no newline')" = OK
check "an unknown user fails" -- test "$(verify erin secret)" = FAILED

# usage_case DESCRIPTION EXPECTED-STATUS EXPECTED-STDERR-TEXT ARGS... (input: "secret")
usage_case() {
    local desc=$1 status=$2 text=$3 got
    shift 3
    echo secret | "$RELAYQ" passwd "$@" >"$D/out" 2>"$D/err"
    got=$?
    if [ "$got" -eq "$status" ] && grep -qF -- "$text" "$D/err" && [ ! -s "$D/out" ]; then
        ok 0 "$desc: exit $status"
    else
        ok 1 "$desc: exit $got, wanted $status with \"$text\""
        diag "$(cat "$D/err")"
    fi
}
usage_case "no user" 64 "usage: relayq passwd USER"
usage_case "two users" 64 "usage: relayq passwd USER" alice bob
usage_case "an option" 64 "usage: relayq passwd USER" -x alice
usage_case "a colon in the user" 64 'bad user name "a:b": colon in user name' a:b
usage_case "a space in the user" 64 'bad user name "a b": space in user name' "a b"
usage_case "an empty user" 64 'bad user name "": empty user name' ""
usage_case "a user starting with #" 64 'user name starting with "#"' "#alice"
usage_case "a user of 256 bytes" 64 "user name longer than 255 bytes" "$(printf 'u%.0s' {1..256})"

# input_case DESCRIPTION EXPECTED-STDERR-TEXT (standard input from the caller)
input_case() {
    "$RELAYQ" passwd alice >"$D/out" 2>"$D/err"
    local got=$?
    if [ "$got" -eq 65 ] && grep -qF -- "$2" "$D/err" && [ ! -s "$D/out" ]; then
        ok 0 "$1: exit 65"
    else
        ok 1 "$1: exit $got, wanted 65 with \"$2\""
    fi
}
# (a function fed by a pipe would count its result in a subshell)
input_case "no input" "empty password refused" </dev/null
input_case "an empty line" "empty password refused" < <(echo)
input_case "a NUL in the password" "password with a NUL byte refused" < <(printf 'a\0b\n')
input_case "a password of 1025 bytes" "password longer than 1024 bytes refused" \
    < <(head -c 1025 /dev/zero | tr '\0' x)
head -c 1024 /dev/zero | tr '\0' x | "$RELAYQ" passwd alice >"$D/out"
ok $? "a password of 1024 bytes is hashed"
check "relayq --help lists passwd" -- sh -c '"$1" --help | grep -q "relayq passwd USER"' sh "$RELAYQ"
tap_end
