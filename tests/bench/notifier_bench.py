#!/usr/bin/env python3
"""notifier_bench.py - how many emails per second the notifier hands to a
local SMTP sink, beside the sink's own ceiling measured in the same run.

  python3 tests/bench/notifier_bench.py [--messages N] [--connections 8,32]
                                        [--in-hand 4]

Postfix's smtp-sink (a server that accepts and discards mail) listens on a
free loopback port; smtp-source (postfix's load generator, connections kept
open like the notifier's) gives the sink's ceiling with as many sessions as
the notifier gets SMTP connections. For each count the notifier is stopped,
N small commands are queued on JetStream (their PubAck rate is printed too),
then the notifier is started with SMTP_MAX_CONNECTIONS at that count and
NOTIFIER_CONCURRENCY at --in-hand times it (a command spends most of its
time outside SMTP: claimed, recorded, acked, the next one on its way), and
timed until PostgreSQL records every email as sent; the rate is from the
first sent_at to the last. The CPU each process spent per email follows.
Prints figures; asserts nothing.
Needs the `postfix` package (installed without starting its daemon when
missing) and a build in build/ (BIN_DIR overrides)."""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402
from bench import cpu_s, machine_busy_s  # noqa: E402
from harness import free_port, wait_until  # noqa: E402

SINK, SOURCE = "/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"
SUBJECT = "notifier.email.send"
DEADLINE_S = 300  # for one drain


def ensure_postfix():
    if os.path.exists(SINK) and os.path.exists(SOURCE):
        return
    print("installing postfix (for smtp-sink and smtp-source; its daemon stays off)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["debconf-set-selections"], check=True,
                   input=b"postfix postfix/main_mailer_type select No configuration\n")
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "postfix"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                   stdout=subprocess.DEVNULL)


def start_sink(port):
    cmd = [SINK] + (["-u", "nobody"] if os.geteuid() == 0 else []) + ["127.0.0.1:%d" % port,
                                                                       "1024"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: harness.Stack._port_open(port), 5, "smtp-sink")
    return p


def sink_ceiling(port, messages, sessions):
    t0 = time.monotonic()
    subprocess.run([SOURCE, "-d", "-s", str(sessions), "-m", str(messages), "-l", "600",
                    "-f", "bench@example.com", "-t", "sink@example.com", "127.0.0.1:%d" % port],
                   check=True, timeout=DEADLINE_S)
    return messages / (time.monotonic() - t0)


def queue(stack, n, batch=500):
    """Publishes n commands (about 600 bytes of MIME each) and waits for
    every PubAck; returns the PubAcks per second."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", stack.nats_port), 10) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB _INBOX.bench.* 1\r\n')
        for start in range(0, n, batch):
            frames = []
            for i in range(start, min(n, start + batch)):
                cid = str(uuid.uuid4())
                body = json.dumps({"id": cid, "from": "bench@example.com",
                                   "to": ["sink@example.com"], "subject": "bench %d" % i,
                                   "text": "x" * 200}).encode()
                hdr = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % cid.encode()
                frames.append(b"HPUB %s _INBOX.bench.%d %d %d\r\n%s%s\r\n"
                              % (SUBJECT.encode(), i, len(hdr), len(hdr) + len(body), hdr, body))
            s.sendall(b"".join(frames))
            got = 0
            while got < len(frames):
                line = f.readline()
                if not line:
                    raise SystemExit("NATS closed the connection")
                if line.startswith(b"PING"):
                    s.sendall(b"PONG\r\n")
                elif line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                    size = int(line.split()[-1])
                    ack = f.read(size + 2)[:size]
                    if b'"error"' in ack:
                        raise SystemExit("publish refused: %r" % ack)
                    got += 1
    return n / (time.monotonic() - t0)


def children_cpu_s(ppid):
    """CPU of ppid's live children (PostgreSQL's backends and workers)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == ppid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class CpuSplit:
    """CPU seconds by process during a drain: who the emails cost."""

    def __init__(self, stack, sink):
        self.probes = {"postgres": lambda: children_cpu_s(stack.pg_pid),
                       "nats-server": lambda: cpu_s(stack.pid("nats")),
                       "smtp-sink": lambda: cpu_s(sink.pid),
                       "machine": machine_busy_s}
        self.start = {k: f() for k, f in self.probes.items()}

    def per_email_us(self, n, notifier_cpu):
        d = {k: f() - self.start[k] for k, f in self.probes.items()}
        d["notifier"] = notifier_cpu
        d["other"] = d["machine"] - sum(v for k, v in d.items() if k != "machine")
        return ", ".join("%s %.0f" % (k, v * 1e6 / n) for k, v in d.items())


class Db:
    """One psql session for the whole run: a psql started per poll costs
    more CPU than the notifier's own work between two polls."""

    def __init__(self, stack):
        self.p = stack.psql_session()

    def query(self, sql):
        self.p.stdin.write(sql + ";\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit("psql exited")
        return line.strip()

    def close(self):
        self.p.stdin.write("\\q\n")
        self.p.stdin.flush()
        self.p.wait(10)


def drain(stack, sink, db, n, connections, concurrency):
    """Starts the notifier on a full queue; returns (emails/s from the first
    send to the last, seconds including start-up, notifier CPU seconds, CPU
    microseconds per email by process).
    The rate comes from the emails' own sent_at, so polling every 0.2 s for
    the end costs next to nothing and loses no precision."""
    since = db.query("SELECT clock_timestamp()")
    progress = ("SELECT count(*) || ' ' || coalesce(extract(epoch FROM max(sent_at) - "
                "min(sent_at)), 0) FROM emails WHERE state = 'sent' AND sent_at >= '%s'" % since)
    split = CpuSplit(stack, sink)
    t0 = time.monotonic()
    stack.env_extra["SMTP_MAX_CONNECTIONS"] = str(connections)
    stack.env_extra["NOTIFIER_CONCURRENCY"] = str(concurrency)
    pid = stack.start("notifier").pid
    while True:
        done, span = db.query(progress).split()
        if int(done) >= n:
            break
        if time.monotonic() - t0 > DEADLINE_S:
            raise SystemExit("only %s of %d sent in %d s" % (done, n, DEADLINE_S))
        time.sleep(0.2)
    total = time.monotonic() - t0
    cpu = cpu_s(pid)
    per_email = split.per_email_us(n, cpu)
    stack.stop("notifier")
    return ((n - 1) / float(span) if float(span) > 0 else float("nan")), total, cpu, per_email


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--connections", default="8,32",
                    help="comma-separated SMTP connection counts (default 8,32)")
    ap.add_argument("--in-hand", type=int, default=4,
                    help="NOTIFIER_CONCURRENCY per SMTP connection (default 4)")
    args = ap.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    ensure_postfix()
    port = free_port()
    sink = start_sink(port)
    stack = harness.Stack(services=["notifier"],
                          env={"SMTP_URL": "smtp://127.0.0.1:%d" % port, "LOG_LEVEL": "warn",
                               "NOTIFIER_ACK_WAIT_MS": "120000", "DB_POOL_SIZE": "4"})
    try:
        stack.up()
        wait_until(lambda: (stack.nats_gather("$JS.API.CONSUMER.INFO.MAIL.notifier") or
                            [{"error": 1}])[0].get("error") is None, 15, "the consumer")
        stack.stop("notifier")
        print("%d emails of ~0.6 KB each, smtp-sink on 127.0.0.1:%d, %d cores"
              % (args.messages, port, os.cpu_count()))
        print("%-34s %12s" % ("", "emails/s"))
        ceiling = 0
        for c in levels:
            rate = sink_ceiling(port, args.messages, c)
            ceiling = max(ceiling, rate)
            print("%-34s %12.0f" % ("sink ceiling (smtp-source, %d conns)" % c, rate))
        db = Db(stack)
        for c in levels:
            qrate = queue(stack, args.messages)
            rate, total, cpu, per_email = drain(stack, sink, db, args.messages, c,
                                                c * args.in_hand)
            print("%-34s %12.0f   %.2fx the sink's best (target 0.5); %.1f s from start-up, "
                  "notifier CPU %.1f s, queued at %.0f/s"
                  % ("notifier, %d conns, %d in hand" % (c, c * args.in_hand), rate,
                     rate / ceiling, total, cpu, qrate))
            print("  CPU us per email: %s" % per_email)
        db.close()
    finally:
        stack.down()
        stack.cleanup()
        sink.terminate()
        sink.wait(5)


if __name__ == "__main__":
    if shutil.which("psql") is None:
        raise SystemExit("psql is needed (postgresql-client)")
    main()
