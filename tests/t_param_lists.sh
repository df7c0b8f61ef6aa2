#!/bin/bash
# t_param_lists - each daemon's list of the parameters it reads is whole
#
# A daemon's DAEMON_SPEC names the parameters it reads (PARAM_ID(name) in
# its main file), and a reload logs which of them changed. This test reads
# the sources: every parameter a daemon's own directory reads, by
# var_str/var_int/var_bool(name) or by its name in quotes, must be in its
# list or in the skeleton's daemon_shared_params[] (common/mail/daemon.c);
# every parameter the shared modules read (common/mail, but the registry
# params.c and params_load.c) must be in daemon_shared_params[]. A name
# that is no parameter does not compile: params_list.h.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

src=$top_srcdir
known=$(grep -oE '^    X\([A-Z]+, [a-zA-Z_0-9]+' "$src/common/mail/params_list.h" | awk '{print $2}')
[ "$(echo "$known" | wc -l)" -gt 40 ]
ok $? "params_list.h names $(echo "$known" | wc -l) parameters"

# declared FILE - the names in PARAM_ID(...) of a file's parameter lists
declared() {
    grep -oE 'PARAM_ID\([a-zA-Z_0-9]+\)' "$1" | sed -E 's/PARAM_ID\((.*)\)/\1/' | sort -u
}

# read_by FILES... - the parameters the files read, by accessor or by quoted name
read_by() {
    {
        grep -ohE 'var_(str|int|bool)\([a-zA-Z_0-9]+\)' "$@" | sed -E 's/var_[a-z]+\((.*)\)/\1/'
        grep -ohE '"[a-zA-Z_0-9]+"' "$@" | tr -d '"'
    } | sort -u | grep -xF "$known"
}

shared=$(declared "$src/common/mail/daemon.c")
missing=$(comm -23 <(read_by $(ls "$src"/common/mail/*.c | grep -vE '/params(_load)?\.c$')) <(echo "$shared"))
[ -z "$missing" ]
ok $? "the shared modules read only daemon_shared_params[] (missing: ${missing:-none})"

for d in master pickup qmgr showq smtpout metrics; do
    own=$(sort -u <(declared "$src/$d/$d.c") <(echo "$shared"))
    missing=$(comm -23 <(read_by "$src/$d"/*.c) <(echo "$own"))
    [ -z "$missing" ] && [ -n "$(declared "$src/$d/$d.c")" ]
    ok $? "$d's list holds every parameter $d/ reads (missing: $(echo ${missing:-none}))"
done
tap_end
