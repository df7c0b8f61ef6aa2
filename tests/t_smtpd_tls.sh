#!/bin/bash
# t_smtpd_tls - submission from outside mynetworks: STARTTLS, implicit TLS and AUTH
#
# relayq listens on two ports of 127.0.0.1: smtpd_listen (STARTTLS offered)
# and smtpd_tls_listen (TLS from the first byte, port 465 style), with a
# certificate, a key and a password file made by "relayq passwd".
# mynetworks is 127.0.0.2/32, so the tests' client (127.0.0.1) may relay
# only once authenticated. Shown here:
#  - before TLS, EHLO offers STARTTLS but not AUTH, and AUTH is refused
#    with 538 5.7.11 (no password crosses the wire in the clear);
#  - Python's smtplib: STARTTLS, AUTH PLAIN, a message relayed; the
#    Received: line says ESMTPSA and the TLS cipher, the log has the TLS
#    line and "client=..., sasl_method=PLAIN, sasl_username=alice";
#  - the same client with TLS but without AUTH is refused at RCPT (554
#    5.7.1 Relay access denied), a wrong password is 535 5.7.8, and
#    neither queues anything;
#  - smtplib over implicit TLS (SMTP_SSL) with AUTH LOGIN;
#  - swaks with STARTTLS and AUTH LOGIN;
#  - a STARTTLS with a command pipelined after it in the same packet:
#    the command is never answered (it was sent in the clear);
#  - start refuses a password file without a certificate, and a
#    certificate without its key;
#  - smtpd_client_connection_count_limit counts per client address: a
#    third session of 127.0.0.1 is closed unanswered (one warning naming
#    the client) while 127.0.0.3 is still greeted.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

rq_setup
sink_start
ok $? "test SMTP server listens on 127.0.0.1:$SINK_PORT"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sh "$top_srcdir/tests/certs.sh" "$T/certs" >/dev/null
echo 'correct horse' | "$RELAYQ" passwd alice >"$T/smtpd.passwd"
ok $? "relayq passwd makes alice's line ($(cut -c1-16 "$T/smtpd.passwd")...)"
chmod 600 "$T/smtpd.passwd"
[ "$(id -u)" -eq 0 ] && chown nobody "$T/smtpd.passwd"

# start refuses half a TLS setup, naming what is missing.
rq_set smtpd_listen ""
rq_set smtpd_sasl_password_file "$T/smtpd.passwd"
"$RELAYQ" start >"$T/start.out" 2>&1
[ $? -ne 0 ] && grep -q "AUTH is offered only over TLS" "$T/start.out"
ok $? "start refuses a password file without a certificate ($(tail -n 1 "$T/start.out"))"
rq_set smtpd_tls_cert_file "$T/certs/server.pem"
"$RELAYQ" start >"$T/start.out" 2>&1
[ $? -ne 0 ] && grep -q "smtpd_tls_cert_file and smtpd_tls_key_file go together" "$T/start.out"
ok $? "start refuses a certificate without its key ($(tail -n 1 "$T/start.out"))"

PORT=$(free_port)
TLS_PORT=$(free_port)
rq_set smtpd_listen "127.0.0.1:$PORT"
rq_set smtpd_tls_listen "127.0.0.1:$TLS_PORT"
rq_set smtpd_tls_key_file "$T/certs/server-key.pem"
rq_set mynetworks "127.0.0.2/32"
rq_set smtpd_client_connection_count_limit 2
"$RELAYQ" start
ok $? "relayq start with STARTTLS on $PORT, implicit TLS on $TLS_PORT, AUTH"

# The client: each case prints one line of what it saw.
python3 - "$PORT" "$TLS_PORT" "$T/certs/ca.pem" >"$T/client.out" 2>&1 <<'PY'
import smtplib, ssl, sys

port, tls_port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False


def case(name, fn):
    try:
        print(name, fn())
    except smtplib.SMTPException as e:
        print(name, "error", repr(e))
    sys.stdout.flush()


def plain_ehlo():
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    s.ehlo()
    features = sorted(s.esmtp_features)
    code, text = s.docmd("AUTH", "PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=")
    s.quit()
    return "features=%s auth=%d %s" % (",".join(features), code, text.decode())


def starttls_auth():
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    s.starttls(context=ctx)
    s.ehlo()
    auth = s.esmtp_features.get("auth", "")
    s.login("alice", "correct horse")
    s.sendmail("app@example.org", ["tls-auth@example.com"],
               "Subject: starttls\r\nMessage-ID: <starttls-auth@client.test>\r\n\r\nhello\r\n")
    s.quit()
    return "sent auth=%s" % auth


def starttls_noauth():
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    s.starttls(context=ctx)
    s.ehlo()
    s.mail("app@example.org")
    code, text = s.rcpt("noauth@example.com")
    s.quit()
    return "rcpt=%d %s" % (code, text.decode())


def wrong_password():
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    s.starttls(context=ctx)
    s.ehlo()
    try:
        s.login("alice", "wrong horse")
        return "accepted"
    except smtplib.SMTPAuthenticationError as e:
        return "refused %d %s" % (e.smtp_code, e.smtp_error.decode())
    finally:
        s.quit()


def implicit_login():
    s = smtplib.SMTP_SSL("127.0.0.1", tls_port, local_hostname="client.test", timeout=30,
                         context=ctx)
    s.ehlo()
    s.user, s.password = "alice", "correct horse"
    code, text = s.auth("LOGIN", s.auth_login)
    s.sendmail("app@example.org", ["implicit@example.com"],
               "Subject: implicit\r\nMessage-ID: <implicit@client.test>\r\n\r\nhello\r\n")
    s.quit()
    return "sent login=%d" % code


case("plain_ehlo", plain_ehlo)
case("starttls_auth", starttls_auth)
case("starttls_noauth", starttls_noauth)
case("wrong_password", wrong_password)
case("implicit_login", implicit_login)
PY
line() { grep "^$1 " "$T/client.out"; }

line plain_ehlo | grep -q "starttls" && ! line plain_ehlo | grep -q "features=[^ ]*auth" &&
    line plain_ehlo | grep -q "auth=538 5.7.11"
ok $? "before TLS: STARTTLS offered, AUTH not, and refused with 538 ($(line plain_ehlo))"
line starttls_auth | grep -q "^starttls_auth sent auth= *PLAIN LOGIN"
ok $? "smtplib: STARTTLS, AUTH PLAIN, message accepted ($(line starttls_auth))"
wait_for 30 grep -q "msgid=<starttls-auth@client.test>" "$SINK_LOG"
ok $? "the authenticated message arrives"
log_has 1 "relayq/pickup\[[0-9]*\]: Anonymous TLS connection established from unknown\[127.0.0.1\]: TLSv1\.[23] with cipher" &&
    log_has 1 "relayq/pickup\[[0-9]*\]: [0-9A-Za-z]*: client=unknown\[127.0.0.1\], sasl_method=PLAIN, sasl_username=alice"
ok $? "logged: the TLS connection, and client= with sasl_method and sasl_username"
line starttls_noauth | grep -q "rcpt=554 5.7.1 .*Relay access denied"
ok $? "TLS without AUTH from outside mynetworks: refused ($(line starttls_noauth))"
line wrong_password | grep -q "refused 535 5.7.8"
ok $? "a wrong password: 535 5.7.8 ($(line wrong_password))"
log_has 1 "warning: unknown\[127.0.0.1\]: SASL authentication failed for user \"alice\""
ok $? "the failed AUTH is logged with the user, never the password"
! grep -q "wrong horse\|correct horse" "$MAILLOG"
ok $? "no password in the log"
line implicit_login | grep -q "^implicit_login sent login=235"
ok $? "smtplib over implicit TLS, AUTH LOGIN ($(line implicit_login))"
wait_for 30 grep -q "msgid=<implicit@client.test>" "$SINK_LOG"
ok $? "the implicit-TLS message arrives"

if command -v swaks >/dev/null; then
    swaks --server 127.0.0.1 --port "$PORT" --tls --auth LOGIN --auth-user alice \
        --auth-password 'correct horse' --from admin@example.org --to swaks-tls@example.com \
        --helo swaks.test >"$T/swaks.out" 2>&1
    ok $? "swaks with STARTTLS and AUTH LOGIN hands a message over"
    wait_for 30 grep -q "rcpts=<swaks-tls@example.com>" "$SINK_LOG"
    ok $? "swaks's message arrives"
else
    ok 0 "# SKIP swaks is not installed"
    ok 0 "# SKIP swaks is not installed"
fi

# STARTTLS with NOOP pipelined behind it in the clear: the NOOP is dropped.
python3 - "$PORT" "$T/certs/ca.pem" >"$T/inject.out" 2>&1 <<'PY'
import socket, ssl, sys

port, ca = int(sys.argv[1]), sys.argv[2]
sock = socket.create_connection(("127.0.0.1", port), timeout=30)
f = sock.makefile("rb")
f.readline()
sock.sendall(b"EHLO inject.test\r\n")
while f.readline()[3:4] == b"-":
    pass
sock.sendall(b"STARTTLS\r\nNOOP injected\r\n")
print("starttls", f.readline().decode().strip())
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
tls = ctx.wrap_socket(sock)
tls.sendall(b"QUIT\r\n")
reply = tls.recv(1024).decode().strip()
print("after", reply)
PY
grep -q "^starttls 220 2.0.0" "$T/inject.out" && grep -q "^after 221 " "$T/inject.out"
ok $? "a command pipelined after STARTTLS is never answered ($(tr '\n' ' ' <"$T/inject.out"))"

# Per client: two sessions of 127.0.0.1 held open, a third is closed at once
# without a greeting, while 127.0.0.3 is still greeted.
python3 - "$PORT" >"$T/percap.out" 2>&1 <<'PY'
import socket, sys

port = int(sys.argv[1])


def greet(src):
    s = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(src, 0))
    return s, s.recv(512).decode().strip()


held = [greet("127.0.0.1") for _ in range(2)]
third, reply = greet("127.0.0.1")
print("third", repr(reply))
other, reply = greet("127.0.0.3")
print("other", reply)
for s, _ in held + [(third, ""), (other, "")]:
    s.close()
PY
grep -q "^third ''" "$T/percap.out" && grep -q "^other 220 " "$T/percap.out"
ok $? "smtpd_client_connection_count_limit = 2: a third session of one client is refused, another client's is not ($(tr '\n' ' ' <"$T/percap.out"))"
log_has 1 "warning: smtpd_listen: client 127.0.0.1 has 2 connections: refusing more of its connections"
ok $? "the refusal is logged once, naming the client"

wait_for 30 queue_empty
ok $? "nothing is left in the queue"
[ "$(grep -c "msgid=<" "$SINK_LOG")" -eq 3 ]
ok $? "exactly the three authenticated messages were relayed"
"$RELAYQ" stop
ok $? "relayq stop"
tap_end
