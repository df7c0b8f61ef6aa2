#!/usr/bin/env python3
"""control_client - a misbehaving command on qmgr's public/control, for tests

Usage: control_client.py SOCKET CASE

Connects to SOCKET, reads qmgr's hello record and then plays CASE:

  oversize   sends one request that never ends, 5 MB of one attribute;
             prints "closed" when qmgr hangs up before it is all sent or
             right after, "open" otherwise.
  flood      sends "stats" requests and never reads a reply, until qmgr
             hangs up (at most 400,000 requests); prints "closed N" with
             the requests sent, or "open N".
  pipelined  sends a "list" request and a "stats" request in one write;
             prints the type and reason of each reply record, one a line.
  idle       sends nothing and waits at most 120 s for qmgr to hang up;
             prints "closed" or "open".

The records are those of common/util/ipc.c: lines name=value, an empty
line after each record.
"""
import socket
import sys


def read_record(sock, buf):
    """One record as a list of (name, value), or None at end of file."""
    while b"\n\n" not in buf[0]:
        data = sock.recv(65536)
        if not data:
            return None
        buf[0] += data
    raw, buf[0] = buf[0].split(b"\n\n", 1)
    return [tuple(line.split(b"=", 1)) for line in raw.split(b"\n")]


def hung_up(sock, timeout):
    """Whether the peer closes the connection within timeout seconds."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def main():
    path, case = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    buf = [b""]
    hello = read_record(sock, buf)
    if hello is None or hello[0] != (b"type", b"hello"):
        print("no hello")
        return 1
    if case == "oversize":
        sock.settimeout(30)
        try:
            sock.sendall(b"type=stats\nx=" + b"a" * (5 * 1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            print("closed")
            return 0
        print("closed" if hung_up(sock, 30) else "open")
    elif case == "flood":
        sock.settimeout(30)
        sent = 0
        try:
            while sent < 400000:
                sock.sendall(b"type=stats\n\n" * 100)
                sent += 100
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        print(("closed %d" if hung_up(sock, 30) else "open %d") % sent)
    elif case == "pipelined":
        sock.settimeout(30)
        sock.sendall(b"type=list\njson=0\n\ntype=stats\n\n")
        for _ in range(2):
            rec = read_record(sock, buf)
            if rec is None:
                break
            fields = dict(rec)
            print("%s %s" % (fields[b"type"].decode(), fields.get(b"reason", b"").decode()))
    elif case == "idle":
        print("closed" if hung_up(sock, 120) else "open")
    else:
        print("unknown case")
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main())
