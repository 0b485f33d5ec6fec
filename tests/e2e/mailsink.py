"""mailsink.py - a real SMTP server on a free loopback port for the
notifier's tests (aiosmtpd, Debian's python3-aiosmtpd, in its own thread),
whose answers a test sets, and helpers to queue commands and read mail."""
import asyncio
import email
import email.policy
import glob
import json
import os
import socket
import sys
import threading
import time
import uuid

try:
    from aiosmtpd.controller import Controller
except ImportError:  # Debian's package, under a python3 that is not Debian's
    sys.path.append("/usr/lib/python3/dist-packages")
    from aiosmtpd.controller import Controller

from harness import free_port, wait_until

HOLD_MAX_S = 30  # a held RCPT answers after this at the latest


class MailSink:
    """mode: "ok"; "tempfail" (451 to DATA); "permfail" (550 to RCPT).
    hold: while set, RCPT waits (a delivery stuck mid-transaction).
    slow: {recipient: seconds} the reply to the end of those messages takes.
    idle_timeout_s: a session silent this long is closed by the server."""

    def __init__(self, idle_timeout_s=300):
        self.port = free_port()
        self.mode = "ok"
        self.hold = False
        self.slow = {}
        self.in_data = 0     # messages whose data has arrived
        self.lock = threading.Lock()
        self.messages = []   # (mail_from, [rcpt], bytes)
        self.rcpts = 0       # RCPT commands seen
        self.refused = 0     # transactions answered 4xx or 5xx
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     timeout=idle_timeout_s)
        self.controller.start()

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts += 1
        deadline = time.monotonic() + HOLD_MAX_S
        while self.hold and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.mode == "permfail":
            with self.lock:
                self.refused += 1
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.in_data += 1
        await asyncio.sleep(max([self.slow.get(r, 0) for r in envelope.rcpt_tos] + [0]))
        if self.mode == "tempfail":
            with self.lock:
                self.refused += 1
            return "451 4.3.0 Try again later"
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"

    def reset(self):
        with self.lock:
            self.messages.clear()
            self.rcpts = self.refused = self.in_data = 0
        self.mode, self.hold, self.slow = "ok", False, {}

    def received(self, message_id=None):
        """Parsed messages, those whose Message-ID holds 'message_id' if given."""
        with self.lock:
            raw = [m[2] for m in self.messages]
        msgs = [email.message_from_bytes(b, policy=email.policy.default) for b in raw]
        return [m for m in msgs if message_id is None or message_id in m["Message-ID"]]

    def wait_for(self, message_id, timeout=15):
        wait_until(lambda: self.received(message_id), timeout, "email %s" % message_id)
        return self.received(message_id)

    def stop(self):
        self.controller.stop()


def parse_eml(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def mail_files(stack):
    return sorted(glob.glob(os.path.join(stack.tmp, "mail", "*.eml")))


def wait_consumer(stack, timeout=15):
    """Until the notifier's durable consumer exists (it creates the stream)."""
    def ok():
        r = stack.nats_gather("$JS.API.CONSUMER.INFO.MAIL.notifier", wait=0.3)
        return r and "error" not in r[0]
    wait_until(ok, timeout, "the notifier's consumer")


def js_publish(stack, subject, payload, msg_id, timeout=5):
    """Publishes to JetStream with Nats-Msg-Id over NATS's text protocol and
    returns the PubAck (parsed)."""
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    hdr = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.encode()
    with socket.create_connection(("127.0.0.1", stack.nats_port), timeout) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB _INBOX.p 1\r\n'
                  b"HPUB %s _INBOX.p %d %d\r\n%s%s\r\n"
                  % (subject.encode(), len(hdr), len(hdr) + len(body), hdr, body))
        while True:
            line = f.readline()
            if not line:
                raise AssertionError("no PubAck")
            if line.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                size = int(line.split()[-1])
                data = f.read(size + 2)[:size]
                if line.startswith(b"HMSG "):
                    data = data[int(line.split()[-2]):]
                return json.loads(data) if data else {}


def command(rcpt, **over):
    cmd = {"id": str(uuid.uuid4()), "from": "sender@example.com", "to": [rcpt],
           "subject": "hello", "text": "plain body"}
    cmd.update(over)
    return cmd


def email_row(stack, cid):
    out = stack.psql("SELECT state || '|' || attempts || '|' || coalesce(last_error, '') "
                     "FROM emails WHERE id = '%s'" % cid)
    if not out:
        return None
    state, attempts, error = out.split("|", 2)
    return state, int(attempts), error
