"""The notifier: email commands from JetStream delivered over SMTP to a real
SMTP server (mailsink.py) or written as .eml files, each command sent once
through redeliveries, retries and a crash, its outcome in PostgreSQL and
on the events stream."""
import base64
import http.client
import json
import os
import shutil
import signal
import time
import uuid

from common import check, fresh
from harness import free_port, wait_until
from mailsink import (MailSink, command, email_row, js_publish, mail_files, parse_eml,
                      wait_consumer)

SINK = MailSink()
SMTP_ENV = {"SMTP_URL": SINK.url, "SMTP_TIMEOUT_MS": "2000", "NOTIFIER_ACK_WAIT_MS": "3000",
            "NOTIFIER_RETRY_MIN_MS": "200", "NOTIFIER_RETRY_MAX_MS": "800",
            "NOTIFIER_MAX_ATTEMPTS": "50"}
ENV = SMTP_ENV
SUBJECT = "notifier.email.send"


def queue(stack, cmd, msg_id=None):
    wait_consumer(stack)
    ack = js_publish(stack, SUBJECT, cmd, msg_id or cmd["id"])
    check("error" not in ack and ack.get("stream") == "MAIL", "PubAck: %r" % ack)
    return ack


def notifier_events(stack, cid):
    stack.wait_outbox_empty("notifier")
    return [e for e in stack.events("--idle-ms", "700", "events.notifier.>")
            if e["event"]["data"]["id"] == cid]


def test_mime_of_a_full_command(stack):
    SINK.reset()
    blob = bytes(range(256)) * 3
    subject = 'Ünïcødé <"report">, line\nbreak ' + "€" * 30
    cmd = command("boss@example.com", subject=subject, text="text ü\r\nline 2",
                  html="<p>html ü</p>", to=["boss@example.com", "copy@example.org"],
                  attachments=[{"filename": "data.bin", "content": base64.b64encode(blob).decode()},
                               {"filename": "résumé.csv", "contentType": "text/csv",
                                "content": base64.b64encode(b"a,b\r\n").decode()}],
                  requestId="req-mime")
    queue(stack, cmd)
    [m] = SINK.wait_for(cmd["id"])
    check(m["Subject"] == subject.replace("\n", " "), "subject: %r" % m["Subject"])
    check(m["From"] == "sender@example.com", m["From"])
    check([a.addr_spec for a in m["To"].addresses] == cmd["to"], m["To"])
    check(m["Message-ID"] == "<%s@example.com>" % cmd["id"], m["Message-ID"])
    check(m["Date"] is not None and m["MIME-Version"] == "1.0", "Date, MIME-Version")
    check(m.get_content_type() == "multipart/mixed", m.get_content_type())
    alt, att1, att2 = m.get_payload()
    check(alt.get_content_type() == "multipart/alternative", alt.get_content_type())
    text, html = alt.get_payload()
    check(text.get_content_type() == "text/plain" and text.get_content_charset() == "utf-8",
          text["Content-Type"])
    check(text.get_payload(decode=True) == "text ü\r\nline 2".encode(), "text bytes")
    check(html.get_content() == "<p>html ü</p>", "html")
    check(att1.get_filename() == "data.bin" and att1.get_payload(decode=True) == blob,
          "binary attachment")
    check(att1.get_content_type() == "application/octet-stream", att1.get_content_type())
    check(att2.get_filename() == "résumé.csv" and att2.get_content_type() == "text/csv",
          "utf-8 file name: %r" % att2.get_filename())
    raw = SINK.messages[-1][2]
    check(all(b < 128 for b in raw) and max(len(x) for x in raw.split(b"\r\n")) <= 78,
          "7-bit, short lines")
    check(email_row(stack, cmd["id"]) == ("sent", 1, ""), email_row(stack, cmd["id"]))
    [ev] = notifier_events(stack, cmd["id"])
    check(ev["subject"] == "events.notifier.email.sent", ev["subject"])
    check(ev["event"]["source"] == "notifier" and ev["event"]["requestid"] == "req-mime",
          ev["event"])
    d = ev["event"]["data"]
    check(d["to"] == cmd["to"] and d["attempts"] == 1 and d["subject"] == subject, d)


def test_text_only_and_html_only(stack):
    SINK.reset()
    a = command("a@example.com", text="only text")
    b = command("b@example.com", html="<b>only html</b>")
    del b["text"]
    queue(stack, a)
    queue(stack, b)
    [ma] = SINK.wait_for(a["id"])
    [mb] = SINK.wait_for(b["id"])
    check(ma.get_content_type() == "text/plain" and ma.get_content() == "only text", "text")
    check(mb.get_content_type() == "text/html" and mb.get_content() == "<b>only html</b>",
          "html")


def test_same_command_twice_sends_once(stack):
    SINK.reset()
    cmd = command("twice@example.com")
    queue(stack, cmd)
    dup = js_publish(stack, SUBJECT, cmd, cmd["id"])
    check(dup.get("duplicate") is True, "the stream drops the repeat: %r" % dup)
    SINK.wait_for(cmd["id"])
    # Past the stream's window (another Nats-Msg-Id): the row stops it.
    queue(stack, cmd, msg_id=str(uuid.uuid4()))
    wait_until(lambda: stack.psql("SELECT count(*) FROM emails WHERE id = '%s'" % cmd["id"])
               == "1", 5, "row")
    time.sleep(1.0)
    check(len(SINK.received(cmd["id"])) == 1, "one email")
    check(email_row(stack, cmd["id"])[:2] == ("sent", 1), email_row(stack, cmd["id"]))


def test_451_retried_until_it_recovers(stack):
    SINK.reset()
    SINK.mode = "tempfail"
    cmd = command("later@example.com")
    queue(stack, cmd)
    wait_until(lambda: SINK.refused >= 3, 15, "three refused attempts")
    row = email_row(stack, cmd["id"])
    check(row[0] in ("queued", "sending") and "451" in row[2], "row while failing: %r" % (row,))
    SINK.mode = "ok"
    [m] = SINK.wait_for(cmd["id"])
    time.sleep(1.5)
    check(len(SINK.received(cmd["id"])) == 1, "sent once")
    state, attempts, error = email_row(stack, cmd["id"])
    check(state == "sent" and attempts >= 4 and error == "", (state, attempts, error))
    [ev] = notifier_events(stack, cmd["id"])
    check(ev["subject"] == "events.notifier.email.sent", ev)


def test_550_fails_without_retry(stack):
    SINK.reset()
    SINK.mode = "permfail"
    cmd = command("nobody@example.com")
    queue(stack, cmd)
    wait_until(lambda: (email_row(stack, cmd["id"]) or ("",))[0] == "failed", 10, "failed")
    time.sleep(1.5)  # several retry delays: none comes
    check(SINK.rcpts == 1, "one attempt, got %d" % SINK.rcpts)
    state, attempts, error = email_row(stack, cmd["id"])
    check(attempts == 1 and "550" in error, (state, attempts, error))
    [ev] = notifier_events(stack, cmd["id"])
    check(ev["subject"] == "events.notifier.email.failed", ev)
    check("550" in ev["event"]["data"]["error"], ev["event"]["data"])
    SINK.reset()


def test_malformed_command_is_dropped(stack):
    SINK.reset()
    bad = command("x@example.com", to=["not an address"])
    queue(stack, bad)
    js_publish(stack, SUBJECT, b"{not json", str(uuid.uuid4()))
    good = command("y@example.com")
    queue(stack, good)
    SINK.wait_for(good["id"])
    check(email_row(stack, bad["id"]) is None, "no row for a malformed command")
    check(not SINK.received(bad["id"]), "nothing sent")
    # Terminated, not redelivered: the work queue is empty.
    wait_until(lambda: stack.nats_gather("$JS.API.STREAM.INFO.MAIL")[0]["state"]["messages"]
               == 0, 5, "an empty work queue")


def test_killed_mid_send_sent_once_after_restart(stack):
    SINK.reset()
    SINK.hold = True
    cmd = command("crash@example.com")
    queue(stack, cmd)
    wait_until(lambda: SINK.rcpts >= 1, 10, "the attempt under way")
    stack.stop("notifier", sig=signal.SIGKILL)
    SINK.hold = False
    check(email_row(stack, cmd["id"])[:2] == ("sending", 1), email_row(stack, cmd["id"]))
    time.sleep(0.5)
    check(not SINK.received(cmd["id"]), "nothing arrived from the killed attempt")
    stack.start("notifier")
    [m] = SINK.wait_for(cmd["id"], timeout=20)  # after AckWait (3 s)
    time.sleep(1.5)
    check(len(SINK.received(cmd["id"])) == 1, "exactly once")
    check(email_row(stack, cmd["id"])[:2] == ("sent", 2), email_row(stack, cmd["id"]))


def test_sigterm_mid_send_finishes_it(stack):
    SINK.reset()
    SINK.hold = True
    cmd = command("term@example.com")
    queue(stack, cmd)
    wait_until(lambda: SINK.rcpts >= 1, 10, "the attempt under way")
    proc = stack.procs["notifier"]
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    check(proc.poll() is None, "waits for the delivery under way")
    SINK.hold = False
    check(proc.wait(10) == 0, "exit code 0")
    check(len(SINK.received(cmd["id"])) == 1, "sent once")
    check(email_row(stack, cmd["id"]) == ("sent", 1, ""), email_row(stack, cmd["id"]))
    stack.start("notifier")
    time.sleep(1.0)
    check(len(SINK.received(cmd["id"])) == 1, "not again after the restart")


def test_sigterm_while_idle_exits_cleanly(stack):
    wait_consumer(stack)
    check(stack.stop("notifier") == 0, "exit code 0")
    stack.start("notifier")
    SINK.reset()
    cmd = command("after@example.com")
    queue(stack, cmd)
    SINK.wait_for(cmd["id"])


@fresh
def test_file_transport_writes_a_valid_eml(stack):
    cmd = command("file@example.com", subject="Fïle", html="<i>x</i>",
                  attachments=[{"filename": "a.txt", "content": base64.b64encode(b"hi").decode()}])
    queue(stack, cmd)
    wait_until(lambda: mail_files(stack), 10, "an .eml file")
    [path] = mail_files(stack)
    check(path.endswith("/%s.eml" % cmd["id"]), path)
    m = parse_eml(path)
    check(m["Subject"] == "Fïle" and m["Message-ID"] == "<%s@example.com>" % cmd["id"],
          (m["Subject"], m["Message-ID"]))
    alt, att = m.get_payload()
    check([p.get_content() for p in alt.get_payload()] == ["plain body", "<i>x</i>"],
          "bodies")
    check(att.get_payload(decode=True) == b"hi" and att.get_filename() == "a.txt", "attachment")
    check(m.defects == [] and all(not p.defects for p in m.walk()), "no parser defects")
    check(email_row(stack, cmd["id"]) == ("sent", 1, ""), email_row(stack, cmd["id"]))


def readyz(port):
    """The status of GET /readyz on a health listener, or None when closed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


@fresh
def test_readyz_waits_for_the_mail_stream_and_nats(stack):
    """/readyz is 503 until the notifier has its stream and consumer, though
    NATS, PostgreSQL and the events stream are there, and while NATS is down."""
    wait_consumer(stack)
    check(stack.stop("notifier") == 0, "notifier stopped")
    # Another stream holds the subjects, so MAIL cannot be made until it goes.
    r = stack.nats_gather("$JS.API.STREAM.DELETE.MAIL")
    check(r and r[0].get("success") is True, "MAIL deleted: %r" % r)
    blocker = {"name": "BLOCKER", "subjects": ["notifier.email.>"], "storage": "memory"}
    r = stack.nats_gather("$JS.API.STREAM.CREATE.BLOCKER", payload=json.dumps(blocker).encode())
    check(r and "error" not in r[0], "BLOCKER created: %r" % r)
    log = os.path.join(stack.tmp, "notifier.log")
    seen = os.path.getsize(log)
    port = free_port()
    stack.start("notifier", env={"HEALTH_PORT": str(port)})

    def setup_failed():
        with open(log, errors="replace") as f:
            f.seek(seen)
            return "mail stream: " in f.read()
    wait_until(setup_failed, 10, "the notifier failing to make its stream")
    for _ in range(10):  # across several set-up retries
        status = readyz(port)
        check(status == 503, "/readyz without the mail stream: %r" % status)
        time.sleep(0.1)
    r = stack.nats_gather("$JS.API.STREAM.DELETE.BLOCKER")
    check(r and r[0].get("success") is True, "BLOCKER deleted: %r" % r)
    wait_until(lambda: readyz(port) == 200, 10, "/readyz 200 once the stream is made")
    wait_consumer(stack, timeout=1)

    stack.stop("nats")
    wait_until(lambda: readyz(port) == 503, 10, "/readyz 503 with NATS down")
    stack.start("nats")
    wait_until(lambda: readyz(port) == 200, 20, "/readyz 200 with NATS back")
    cmd = command("ready@example.com")
    ack = js_publish(stack, SUBJECT, cmd, cmd["id"])
    check(ack.get("stream") == "MAIL", "PubAck: %r" % ack)
    wait_until(lambda: email_row(stack, cmd["id"]) == ("sent", 1, ""), 10, "the email sent")


@fresh(**SMTP_ENV)
def test_stream_made_again_when_nats_comes_back_without_its_store(stack):
    """NATS restarts with an empty JetStream store: the notifier makes its
    stream and consumer again as soon as it reconnects, not at its next
    periodic check a minute later, and takes commands again."""
    wait_consumer(stack)
    stack.stop("nats")
    shutil.rmtree(os.path.join(stack.tmp, "nats"))
    stack.start("nats")
    r = stack.nats_gather("$JS.API.STREAM.INFO.MAIL")
    check(r and r[0].get("error", {}).get("err_code") == 10059, "the store is empty: %r" % r)
    wait_consumer(stack, timeout=15)
    SINK.reset()
    cmd = command("again@example.com")
    queue(stack, cmd)
    SINK.wait_for(cmd["id"])


def test_stream_with_another_configuration_is_updated(stack):
    """The notifier finds its MAIL stream configured otherwise (another
    max_bytes here): it updates the stream to its own configuration and
    takes commands again."""
    def info():
        return stack.nats_gather("$JS.API.STREAM.INFO.MAIL")[0]["config"]

    wait_consumer(stack)
    want = info()["max_bytes"]
    check(stack.stop("notifier") == 0, "notifier stopped")
    changed = dict(info(), max_bytes=want // 2)
    r = stack.nats_gather("$JS.API.STREAM.UPDATE.MAIL", payload=json.dumps(changed).encode())
    check(r and "error" not in r[0] and info()["max_bytes"] == want // 2, "changed: %r" % r)
    stack.start("notifier")
    wait_until(lambda: info()["max_bytes"] == want, 10, "the stream's own max_bytes back")
    SINK.reset()
    cmd = command("updated@example.com")
    queue(stack, cmd)
    SINK.wait_for(cmd["id"])


@fresh(SMTP_URL=SINK.url.replace("://", "://mailer:s3cr3t-pw@"))
def test_smtp_credentials_stay_out_of_the_log(stack):
    log = next(p for p in stack.logs if os.path.basename(p).startswith("notifier"))
    wait_until(lambda: "delivering through" in open(log).read(), 10, "notifier started")
    text = open(log).read()
    check("s3cr3t-pw" not in text and "mailer" not in text, text[-500:])
    check("delivering through %s" % SINK.url in text, text[-500:])


def test_smtp_connections_are_bounded(stack):
    """More deliveries at once than SMTP_MAX_CONNECTIONS: the extra ones wait
    for a connection instead of opening one each (a relay that is flooded
    with connections stops greeting them)."""
    SINK.reset()
    stack.stop("notifier")
    stack.start("notifier", env={"NOTIFIER_CONCURRENCY": "6", "SMTP_MAX_CONNECTIONS": "2"})
    SINK.hold = True
    wait_consumer(stack)
    cmds = [command("bounded%d@example.com" % i) for i in range(6)]
    for cmd in cmds:
        js_publish(stack, SUBJECT, cmd, cmd["id"])
    wait_until(lambda: SINK.rcpts >= 2, 10, "two deliveries under way")
    wait_until(lambda: stack.psql("SELECT count(*) FROM emails WHERE id IN (%s)" % ",".join(
        "'%s'" % c["id"] for c in cmds)) == "6", 10, "all six claimed")
    time.sleep(0.3)  # the other four have started: none may reach the server
    check(SINK.rcpts == 2, "two connections, so two transactions, got %d" % SINK.rcpts)
    SINK.hold = False
    for cmd in cmds:
        SINK.wait_for(cmd["id"])
        check(email_row(stack, cmd["id"])[:2] == ("sent", 1), email_row(stack, cmd["id"]))
    stack.stop("notifier")
    stack.start("notifier")


def test_slow_relay_holds_up_only_its_own_email(stack):
    """The relay takes its time to accept one message (its reply to the end
    of the data): the next emails go out meanwhile, over other connections.
    libcurl waits for that reply inside curl, blocking, so this holds only
    because deliveries run off the loop."""
    SINK.reset()
    SINK.slow = {"slow@example.com": 1.5}  # below SMTP_TIMEOUT_MS
    slow = command("slow@example.com")
    queue(stack, slow)
    wait_until(lambda: SINK.in_data >= 1, 10, "the slow message's data sent")
    fast = [command("fast%d@example.com" % i) for i in range(3)]
    for cmd in fast:
        queue(stack, cmd)
    for cmd in fast:
        SINK.wait_for(cmd["id"])
    check(not SINK.received(slow["id"]), "the fast emails arrived before the slow one's reply")
    SINK.wait_for(slow["id"])
    wait_until(lambda: email_row(stack, slow["id"])[:2] == ("sent", 1), 10, "slow one sent once")
    for cmd in fast:
        check(email_row(stack, cmd["id"])[:2] == ("sent", 1), email_row(stack, cmd["id"]))


def test_many_at_once_each_sent_once(stack):
    """Commands queued while the notifier is down arrive together: they are
    claimed, and recorded as sent, many to a statement. Each is still sent
    once, recorded once and announced once."""
    SINK.reset()
    stack.stop("notifier")
    cmds = [command("many%d@example.com" % i) for i in range(60)]
    wait_consumer(stack)
    for cmd in cmds:
        check("error" not in js_publish(stack, SUBJECT, cmd, cmd["id"]), "queued")
    stack.start("notifier", env={"NOTIFIER_CONCURRENCY": "32"})
    for cmd in cmds:
        SINK.wait_for(cmd["id"])
    ids = ",".join("'%s'" % c["id"] for c in cmds)
    wait_until(lambda: stack.psql("SELECT count(*) FROM emails WHERE id IN (%s) AND state = "
                                  "'sent' AND attempts = 1" % ids) == "60", 10, "60 rows sent")
    check(len(SINK.messages) == 60, "60 emails received, got %d" % len(SINK.messages))
    stack.wait_outbox_empty("notifier")
    sent = [e["event"]["data"]["id"] for e in
            stack.events("--idle-ms", "700", "events.notifier.email.sent")]
    check(sorted(i for i in sent if i in {c["id"] for c in cmds}) == sorted(c["id"] for c in cmds),
          "one email.sent event each")
    stack.stop("notifier")
    stack.start("notifier")


def established_to(port):
    """Open TCP connections to 127.0.0.1:port, as the kernel lists them."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if int(r[2].split(":")[1], 16) == port and r[3] == "01")


def test_relay_closing_idle_connections(stack):
    """A relay that closes an idle session (as most do after a while): the
    next email goes out on a new connection, and so do those after it."""
    sink = MailSink(idle_timeout_s=0.5)
    try:
        stack.stop("notifier")
        stack.start("notifier", env={"SMTP_URL": sink.url, "SMTP_MAX_CONNECTIONS": "1"})
        for round_ in range(3):
            cmds = [command("idle%d.%d@example.com" % (round_, i)) for i in range(3)]
            for cmd in cmds:
                queue(stack, cmd)
            for cmd in cmds:
                sink.wait_for(cmd["id"])
                check(email_row(stack, cmd["id"])[:2] == ("sent", 1), email_row(stack, cmd["id"]))
            wait_until(lambda: established_to(sink.port) == 0, 5, "the relay to hang up")
        check(len(sink.messages) == 9, "nine emails, got %d" % len(sink.messages))
    finally:
        sink.stop()
        stack.stop("notifier")
        stack.start("notifier")
