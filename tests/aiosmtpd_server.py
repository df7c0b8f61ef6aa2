#!/usr/bin/python3
"""aiosmtpd_server - a real SMTP server (Debian's python3-aiosmtpd) as relayq's upstream

Glue only: the SMTP implementation (STARTTLS, AUTH PLAIN/LOGIN, pipelining,
DATA) is aiosmtpd's. This script configures it the way a submission relay
is set up -- STARTTLS required before anything else, AUTH required before
MAIL, AUTH only over TLS -- checks AUTH against a "user:password" file and
stores each accepted message in --maildir as N.eml, exactly as received.

    aiosmtpd_server.py --port-file F --log F --maildir D
                       --tls-cert C --tls-key K --auth-file U [--listen 127.0.0.1]

Writes the port it listens on (chosen by the kernel) to --port-file once
it accepts connections. Log lines (one per event, flushed at once):
    listen port=N
    auth mech=M user=U result=ok|fail
    message tls=PROTO cipher=C auth=U from=<..> rcpts=<..>[,<..>] size=N msgid=<..> file=N.eml
Runs until SIGTERM or SIGINT.
"""
import argparse
import asyncio
import email.parser
import logging
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Log:
    """The event log: one line per event, flushed so tests can poll it."""

    def __init__(self, path):
        self.fp = open(path, "a", buffering=1)

    def line(self, text):
        self.fp.write(text + "\n")
        self.fp.flush()


class Authenticator:
    """Checks AUTH PLAIN/LOGIN credentials against the users file."""

    def __init__(self, path, log):
        self.users = {}
        with open(path) as fp:
            for raw in fp:
                raw = raw.rstrip("\n")
                if raw and ":" in raw:
                    user, password = raw.split(":", 1)
                    self.users[user] = password
        self.log = log

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = False
        user = "-"
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            ok = self.users.get(user) == auth_data.password.decode("utf-8", "replace")
        self.log.line(f"auth mech={mechanism} user={user} result={'ok' if ok else 'fail'}")
        return AuthResult(success=ok, auth_data=user if ok else None)


class Store:
    """The message handler: store what was accepted, log what it was."""

    def __init__(self, maildir, log):
        self.maildir = maildir
        self.log = log
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = f"{self.count}.eml"
        data = envelope.original_content or envelope.content
        path = os.path.join(self.maildir, name)
        with open(path + ".tmp", "wb") as fp:
            fp.write(data)
        os.rename(path + ".tmp", path)
        headers = email.parser.BytesHeaderParser().parsebytes(data)
        sslobj = server.transport.get_extra_info("ssl_object")
        proto = sslobj.version() if sslobj else "none"
        cipher = sslobj.cipher()[0] if sslobj else "none"
        rcpts = ",".join(f"<{r}>" for r in envelope.rcpt_tos)
        self.log.line(
            f"message tls={proto} cipher={cipher} auth={session.auth_data} "
            f"from=<{envelope.mail_from}> rcpts={rcpts} size={len(data)} "
            f"msgid={headers.get('Message-ID', '-').strip()} file={name}"
        )
        return "250 2.0.0 Ok: stored"


async def serve(args):
    log = Log(args.log)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    authenticator = Authenticator(args.auth_file, log)
    store = Store(args.maildir, log)
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(
            store,
            hostname="aiosmtpd.test",
            tls_context=ctx,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticator,
            loop=loop,
        )

    server = await loop.create_server(factory, host=args.listen, port=0)
    port = server.sockets[0].getsockname()[1]
    log.line(f"listen port={port}")
    with open(args.port_file + ".tmp", "w") as fp:
        fp.write(f"{port}\n")
    os.rename(args.port_file + ".tmp", args.port_file)

    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()
    await server.wait_closed()


def main():
    # aiosmtpd warns about its own use of a deprecated attribute on each AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--tls-cert", required=True)
    p.add_argument("--tls-key", required=True)
    p.add_argument("--auth-file", required=True)
    asyncio.run(serve(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
