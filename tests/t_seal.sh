#!/bin/bash
# t_seal - encryption at rest (queue_encryption_key_file):
#  - relayq keygen makes a key line; relayq check refuses a key file others
#    can read; relayq sendmail refuses (EX_TEMPFAIL) while pickup has not
#    published the maildrop key; relayq start refuses a malformed key file;
#  - maildrop files and data.mdb hold no sender, recipient or body text;
#    a maildrop file altered on disk goes to corrupt/ with the reason;
#  - a key rotation (a new last line, relayq reload) seals new mail under
#    the new key id while mail sealed under the old one stays readable;
#  - a recipient record and a body record altered in data.mdb (relayq
#    stopped) are logged, set aside, shown as such and never delivered,
#    while every other message, old key or new, arrives intact.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

TAMPER=$top_builddir/tests/qstore_tamper
rq_setup
rq_set minimal_backoff_time 2s
rq_set maximal_backoff_time 2s
KEYS=$T/queue.keys
DB=$T/queue/db

# key_file_owned - a key file the daemons (mail_owner when root) may read: key_file_owned FILE
key_file_owned() {
    chmod 600 "$1"
    [ "$(id -u)" -eq 0 ] && chown nobody "$1"
    return 0
}

"$RELAYQ" keygen >"$KEYS"
check "relayq keygen prints a first key line, id 1" -- grep -Eq '^1:[A-Za-z0-9+/]{43}=$' "$KEYS"
key_file_owned "$KEYS"
rq_set queue_encryption_key_file "$KEYS"
check "relayq check accepts the key file" -- "$RELAYQ" check
chmod 640 "$KEYS"
"$RELAYQ" check 2>"$T/check.err"
ok $((! $?)) "relayq check refuses a key file the group can read"
check "... naming the file and the reason" -- \
    grep -q "queue.keys: refusing key file: group or other users have access" "$T/check.err"
chmod 600 "$KEYS"
printf '# a key cut short\n7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n' >"$T/bad.keys"
key_file_owned "$T/bad.keys"
rq_set queue_encryption_key_file "$T/bad.keys"
"$RELAYQ" start 2>"$T/start.err"
ok $((! $?)) "relayq start refuses a malformed key file"
check "... naming the file, the line and the reason" -- \
    grep -q "bad.keys:2: key 7 is not 32 bytes" "$T/start.err"
rq_set queue_encryption_key_file "$KEYS"

printf 'Subject: early\n\nearly\n' | "$RELAYQ" sendmail -f a@example.com b@example.com 2>"$T/early.err"
ok $(($? != 75)) "relayq sendmail exits EX_TEMPFAIL before pickup published its maildrop key"
check "... and says why" -- grep -q "queue_encryption_key_file is set, but the maildrop key" "$T/early.err"

# The relay is down: mail stays queued, sealed.
"$RELAYQ" start
ok $? "relayq start with a key file"
wait_for 10 test -s "$T/queue/public/maildrop_key"
ok $? "pickup publishes the maildrop public key"
check "... under key id 1" -- grep -Eq '^1 [A-Za-z0-9+/]{43}=$' "$T/queue/public/maildrop_key"
"$RELAYQ" stop

# send - one message with a secret sender, recipient and body: send TAG
send() {
    printf 'Subject: sealed %s\nMessage-ID: <%s@relayq.test>\n\nthe secret body text %s\n' "$1" "$1" "$1" |
        "$RELAYQ" sendmail -f "secret-sender@example.com" "secret-rcpt-$1@example.com"
}
for i in 1 2 3 4; do send "old$i" || break; done
ok $? "relayq sendmail seals four messages while relayq is stopped"
check "maildrop holds four sealed files" -- test "$(grep -l '^RQDROP1' "$T"/queue/maildrop/* | wc -l)" -eq 4
check "no maildrop file holds the sender, a recipient or the body" -- \
    test -z "$(grep -la 'secret' "$T"/queue/maildrop/*)"
bad_file=$(ls "$T/queue/maildrop" | tail -n 1)
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(200); b=f.read(1); f.seek(200); f.write(bytes([b[0]^1]))' \
    "$T/queue/maildrop/$bad_file"

"$RELAYQ" start
wait_for 10 log_has 1 "maildrop/$bad_file: sealed file: fails authentication: moved to corrupt/"
ok $? "a maildrop file altered on disk goes to corrupt/ with the reason"
# queued - whether mailq lists N messages: queued N
queued() { [ "$("$RELAYQ" mailq --json 2>/dev/null | wc -l)" -eq "$1" ]; }
wait_for 10 queued 3
ok $? "the three good files are queued"
check "data.mdb holds no sender, recipient or body text" -- \
    test "$(grep -ac 'secret' "$DB/data.mdb")" -eq 0
# qid_of - the queue id of the message to a recipient: qid_of ADDRESS
qid_of() {
    "$RELAYQ" mailq --json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if any(r["address"] == sys.argv[1] for r in m["recipients"]):
        print(m["queue_id"])' "$1"
}
old1=$(qid_of secret-rcpt-old1@example.com)
old2=$(qid_of secret-rcpt-old2@example.com)
old3=$(qid_of secret-rcpt-old3@example.com)
check "relayq show names key id 1 for the envelope and the content" -- \
    sh -c "'$RELAYQ' show $old1 | grep -q '^sealed: envelope key 1, content key 1$'"

# Rotation: a new last line seals new mail; the old key still opens old mail.
"$RELAYQ" keygen >>"$KEYS"
check "relayq keygen picks the next id, 2" -- grep -Eq '^2:[A-Za-z0-9+/]{43}=$' "$KEYS"
"$RELAYQ" reload
wait_for 10 grep -q '^2 ' "$T/queue/public/maildrop_key"
ok $? "after relayq reload, pickup publishes the key with id 2"
wait_for 10 log_has 1 'qmgr.*: reload -- '
send new1 && send new2
wait_for 10 queued 5
ok $? "two new messages are queued"
new1=$(qid_of secret-rcpt-new1@example.com)
check "a new message is sealed under key id 2" -- \
    sh -c "'$RELAYQ' show $new1 | grep -q '^sealed: envelope key 2, content key 2$'"
check "an old message's content is still under key id 1 and reads" -- \
    sh -c "'$RELAYQ' show $old3 | grep -q '^sealed: envelope key [12], content key 1$' &&
           '$RELAYQ' show $old3 | grep -q 'Subject: sealed old3'"
"$RELAYQ" stop
ok $? "relayq stop"

# Alter two old messages behind relayq's back: a recipient, and the content.
"$TAMPER" "$DB" recipients "$old1" >/dev/null
ok $? "a byte of $old1's recipient record is altered in data.mdb"
"$TAMPER" "$DB" bodies "$old2" >/dev/null
ok $? "a byte of $old2's content record is altered in data.mdb"

mkdir -p "$T/mail"
sink_start --maildir "$T/mail"
"$RELAYQ" start
# delivered - the three intact messages arrived
delivered() { sink_has 3 && queued 2; }
wait_for 30 delivered
ok $? "the three intact messages (old key and new) are delivered"
check "$old1 is logged and set aside" -- \
    log_has 1 "$old1: queue record in recipients fails authentication: set aside"
check "$old2 is logged and set aside" -- \
    log_has 1 "$old2: queue record in bodies fails authentication: set aside"
check "neither altered message reached the relay" -- \
    test "$(grep -c -e 'secret-rcpt-old1' -e 'secret-rcpt-old2' "$SINK_LOG")" -eq 0
check "the old-key message arrived intact" -- grep -rq 'the secret body text old3' "$T/mail"
check "the new-key messages arrived intact" -- \
    sh -c "grep -rq 'the secret body text new1' '$T/mail' && grep -rq 'the secret body text new2' '$T/mail'"
"$RELAYQ" mailq >"$T/mailq.out"
check "mailq shows both as set aside" -- \
    test "$(grep -c 'set aside: queue record in .* fails authentication' "$T/mailq.out")" -eq 2
check "relayq show says why $old1 is set aside and shows none of its recipients" -- \
    sh -c "'$RELAYQ' show $old1 >'$T/show.out' &&
           grep -q '^state: set aside (queue record in recipients fails authentication)' '$T/show.out' &&
           ! grep -q 'secret-rcpt' '$T/show.out'"
"$RELAYQ" delete "$old1" "$old2" >/dev/null
ok $? "relayq delete removes the messages set aside"
wait_for 10 queue_empty
ok $? "the queue is empty"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
