#!/usr/bin/env python3
"""dsn_check - parse a delivery status notification stored by the test server.

Usage: dsn_check.py FILE FIELD=VALUE...

Checks that FILE is a multipart/report with report-type=delivery-status
and that its message/delivery-status part has a recipient group in which
every FIELD starts with VALUE (case-insensitive field names; the value
after "rfc822;" or "smtp;" is compared as written). Prints what it found
and exits 0 when everything matches, 1 otherwise.
"""
import email
import email.policy
import sys


def groups(part):
    """The recipient groups of a message/delivery-status part, as dicts."""
    found = []
    for block in part.get_payload():
        fields = {k.lower(): str(v) for k, v in block.items()}
        if "final-recipient" in fields:
            found.append(fields)
    return found


def main():
    path, wanted = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.compat32)
    if msg.get_content_type() != "multipart/report" or \
            msg.get_param("report-type") != "delivery-status":
        print(f"# {path}: not a delivery status notification: {msg.get_content_type()}")
        return 1
    status_parts = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    if not status_parts:
        print(f"# {path}: no message/delivery-status part")
        return 1
    for group in groups(status_parts[0]):
        if all(group.get(k.lower(), "").lower().startswith(v.lower()) for k, v in wanted):
            print("# matched:", group)
            return 0
    print("# no recipient group matches; groups:", groups(status_parts[0]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
