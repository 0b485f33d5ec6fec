"""POST /api/items:report: the active work items emailed as the original
did (seed-apis.md §3.3), through the notifier to a real SMTP server."""
import csv
import io
import os
import re
import subprocess
import time

from common import check, expect, fresh, new_item
import harness
from harness import wait_until
from mailsink import MailSink, wait_consumer

SINK = MailSink()
ENV = {"SMTP_URL": SINK.url, "MAIL_FROM": "reports@example.com",
       "NOTIFIER_RETRY_MIN_MS": "200", "NOTIFIER_RETRY_MAX_MS": "800"}
RULE = "-" * 70
SNAPSHOT = re.compile(r"Snapshot of (\d+) active work items taken at "
                      r"\d\d:\d\d on [A-Z][a-z]{2} \d\d \d{4}\.")
TRICKY = {"name": "ünï \"q\"", "guide": "g,<x>", "status": "a\r\nb",
          "description": 'a<b "c", d & \'e\'\nnew line ü €'}


def report(stack, email="boss@example.com", status=200):
    wait_consumer(stack)
    r = expect(stack.request("POST", "/api/items:report", {"email": email}), status)
    return r.json()


def add_items(stack, n, **over):
    out = []
    for i in range(n):
        item = {"name": "user-%d" % i, "guide": "guide %d" % i, "description": "item %d" % i,
                "status": "open"}
        item.update(over)
        item["id"] = new_item(stack, **item)
        out.append(item)
    return out


def archive(stack, item):
    expect(stack.request("PUT", "/api/items/%d:archive" % item["id"]), 200)


def expected_csv(items):
    """What the original's csv.DictWriter wrote."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["description", "guide", "status", "username", "archived"],
                       extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    w.writerows([dict(i, username=i["name"], archived=False) for i in items])
    return buf.getvalue()


def esc(s):
    """Jinja's autoescape (markupsafe)."""
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def expected_html(items, snapshot):
    """templates/report.html as Flask rendered it."""
    out = ('<!doctype html>\n<html lang="en">\n  <head>\n    <meta charset="utf-8">\n'
           "    <title>Work items</title>\n  </head>\n  <body>\n    <h1>Work items</h1>\n"
           "    <p>%s</p>\n    \n" % snapshot)
    if len(items) > 10:
        return out + "    <p>See attachment for work items table.</p>\n    \n  </body>\n</html>"
    out += '    <hr/>\n    <table class="table">\n      <thead>\n      <tr>\n'
    for h in ("Description", "Guide", "Status", "User name", "Archived"):
        out += '        <th scope="col">%s</th>\n' % h
    out += "      </tr>\n      </thead>\n      <tbody>\n      "
    for i in items:
        out += "\n      <tr>\n"
        for v in (i["description"], i["guide"], i["status"], i["name"], "No"):
            out += "        <td>%s</td>\n" % esc(v)
        out += "      </tr>\n      "
    return out + "\n      </tbody>\n    </table>\n    \n  </body>\n</html>"


def received(stack, message_id):
    [m] = SINK.wait_for(message_id)
    check(m["Subject"] == "Work items", m["Subject"])
    check(m["From"] == "reports@example.com" and m["To"] == "boss@example.com",
          (m["From"], m["To"]))
    check(m["Message-ID"] == "<%s@example.com>" % message_id, m["Message-ID"])
    return m


def bodies(alt):
    check(alt.get_content_type() == "multipart/alternative", alt.get_content_type())
    text, html = alt.get_payload()
    check(text.get_content_type() == "text/plain" and html.get_content_type() == "text/html",
          "text then html")
    text_bytes, html_bytes = text.get_payload(decode=True), html.get_payload(decode=True)
    snapshot = SNAPSHOT.search(text_bytes.decode())
    check(snapshot, "snapshot line in %r" % text_bytes[:200])
    return text_bytes, html_bytes, snapshot.group(0)


@fresh(**ENV)
def test_four_items_in_the_body(stack):
    items = add_items(stack, 6)
    archive(stack, items[1])
    archive(stack, items[4])
    active = [i for i in items if i not in (items[1], items[4])]
    mid = report(stack)["MessageId"]
    m = received(stack, mid)
    text, html, snapshot = bodies(m)
    check(snapshot.startswith("Snapshot of 4 active"), snapshot)
    want_text = "Work items\n\n%s\n%s\n%s" % (snapshot, RULE, expected_csv(active))
    check(text == want_text.encode(), "text part:\n%r\nwant:\n%r" % (text, want_text))
    check(html == expected_html(active, snapshot).encode(), "html part: %r" % html)
    check(html.count(b"<tr>") == 5, "a header row and four item rows")
    for gone in (items[1], items[4]):
        check(gone["description"].encode() not in text + html, "archived item listed")


@fresh(**ENV)
def test_twelve_items_as_an_attachment(stack):
    items = add_items(stack, 13)
    archive(stack, items[0])
    active = items[1:]
    mid = report(stack)["MessageId"]
    m = received(stack, mid)
    check(m.get_content_type() == "multipart/mixed", m.get_content_type())
    alt, att = m.get_payload()
    text, html, snapshot = bodies(alt)
    check(snapshot.startswith("Snapshot of 12 active"), snapshot)
    want_text = "Work items\n\n%s\n%s\nSee attachment for work items table." % (snapshot, RULE)
    check(text == want_text.encode(), "text part: %r" % text)
    check(html == expected_html(active, snapshot).encode(), "html part: %r" % html)
    check(att.get_content_type() == "application/octet-stream", att.get_content_type())
    check(att.get_content_disposition() == "attachment" and att.get_filename() == "work_items.csv",
          att["Content-Disposition"])
    check(att.get_payload(decode=True) == expected_csv(active).encode(), "csv bytes")
    check(b"item 0\r\n" not in att.get_payload(decode=True), "archived item listed")


@fresh(**ENV)
def test_tricky_text_survives(stack):
    small = add_items(stack, 1, **TRICKY)
    mid = report(stack)["MessageId"]
    text, html, snapshot = bodies(received(stack, mid))
    csv_part = text.split((RULE + "\n").encode(), 1)[1]
    check(csv_part == expected_csv(small).encode(), "csv: %r" % csv_part)
    check(list(csv.reader(io.StringIO(csv_part.decode(), newline="")))[1] ==
          [TRICKY["description"], TRICKY["guide"], TRICKY["status"], TRICKY["name"], "False"],
          "csv reads back")
    check(html == expected_html(small, snapshot).encode(), "html: %r" % html)
    check("<td>a&lt;b &#34;c&#34;, d &amp; &#39;e&#39;\nnew line ü €</td>".encode() in html,
          "escaped cell")
    # Over ten: the same text in the attachment.
    big = small + add_items(stack, 10, **TRICKY)
    mid = report(stack)["MessageId"]
    att = received(stack, mid).get_payload()[1]
    check(att.get_payload(decode=True) == expected_csv(big).encode(), "attachment csv")


def test_bad_email_is_400_and_queues_nothing(stack):
    wait_consumer(stack)
    before = stack.nats_gather("$JS.API.STREAM.INFO.MAIL")[0]["state"]["last_seq"]
    for body in ({}, {"email": ""}, {"email": "no-at-sign"}, {"email": "a@b"},
                 {"email": "two@@example.com"}, {"email": "sp ace@example.com"},
                 {"email": "x@example.com\r\nBcc: y@example.com"}, {"email": 5},
                 {"email": "a@example.com", "other": 1}, {"email": "a" * 250 + "@example.com"}):
        r = expect(stack.request("POST", "/api/items:report", body), 400)
        check(isinstance(r.json().get("error"), str), r)
    r = expect(stack.request("POST", "/api/items:report", "not json",
                             {"Content-Type": "application/json"}), 400)
    after = stack.nats_gather("$JS.API.STREAM.INFO.MAIL")[0]["state"]["last_seq"]
    check(after == before, "nothing queued: %d -> %d" % (before, after))
    expect(stack.request("GET", "/api/items:report"), 405)


def test_queued_while_the_notifier_is_down(stack):
    wait_consumer(stack)
    check(stack.stop("notifier") == 0, "notifier stopped")
    mid = report(stack)["MessageId"]
    check(not SINK.received(mid), "not sent yet")
    stack.start("notifier")
    received(stack, mid)
    wait_until(lambda: stack.psql("SELECT state FROM emails WHERE id = '%s'" % mid) == "sent",
               5, "recorded as sent")


@fresh(services=["tracker"], **ENV)
def test_503_when_the_notifier_never_ran(stack):
    """No notifier has ever run, so no MAIL stream captures the command's
    subject: the publish has no responders and the report is 503 at once,
    with nothing queued. Once the notifier has made its stream, the same
    request is queued and sent."""
    r = stack.nats_gather("$JS.API.STREAM.INFO.MAIL")
    check(r and r[0].get("error", {}).get("err_code") == 10059, "no MAIL stream: %r" % r)
    add_items(stack, 2)
    t0 = time.monotonic()
    r = expect(stack.request("POST", "/api/items:report", {"email": "boss@example.com"}), 503)
    elapsed = time.monotonic() - t0
    check(r.json() == {"error": "The email service is not available; try again later."}, r)
    check(elapsed < 2, "at once (no responders), not after a timeout: %.2fs" % elapsed)
    with open(os.path.join(stack.tmp, "tracker.log"), errors="replace") as f:
        check("not queued: no stream for the subject" in f.read(), "the tracker logs why")
    check(stack.psql("SELECT count(*) FROM emails") == "0", "no email recorded")
    stack.start("notifier")
    mid = report(stack)["MessageId"]
    received(stack, mid)


def test_tracker_refuses_a_mail_from_that_is_not_an_address(stack):
    """The notifier would drop every report from such a sender: the tracker
    refuses to start with it instead, saying why."""
    for bad in ("reports", "a b@example.com", "x@example.com\r\nBcc: y@example.com"):
        out = subprocess.run([os.path.join(harness.BIN_DIR, "tracker")], capture_output=True,
                             text=True, timeout=20, env=dict(stack.env(), MAIL_FROM=bad))
        check(out.returncode == 1, "exit 1 for %r, got %d" % (bad, out.returncode))
        check("MAIL_FROM" in out.stderr + out.stdout, (bad, out.stderr))
