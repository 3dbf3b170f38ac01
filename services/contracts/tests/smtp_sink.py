"""An SMTP sink for the notification tests (aiosmtpd, installed in .tools/venv by scripts/test).

Listens on 127.0.0.1:PORT and writes every message it accepts as JSON into DIR (envelope sender
and recipients, subject, Message-ID, text body), one file each, renamed into place so a reader
never sees half a file. Like a real server in trouble it answers "451 try again later" to the
first --defer DATA commands (noting each in DIR/deferred.log), and "550 no such user" to
recipients at --refuse-domain. Prints "ready" once it listens; stops when stdin closes.

    python smtp_sink.py PORT DIR [--defer N] [--refuse-domain DOMAIN]
"""

import argparse
import email
import email.policy
import json
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, defer, refuse_domain):
        self.out = out
        self.defer = defer
        self.refuse = refuse_domain.lower()
        self.taken = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and address.lower().endswith("@" + self.refuse):
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.defer > 0:
            self.defer -= 1
            with open(os.path.join(self.out, "deferred.log"), "a") as f:
                f.write("451\n")
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        self.taken += 1
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "message_id": str(message["message-id"]),
            "body": body.get_content() if body is not None else "",
        }
        path = os.path.join(self.out, "%04d.json" % self.taken)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("dir")
    parser.add_argument("--defer", type=int, default=0)
    parser.add_argument("--refuse-domain", default="")
    args = parser.parse_args()
    controller = Controller(
        Sink(args.dir, args.defer, args.refuse_domain), hostname="127.0.0.1", port=args.port
    )
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
