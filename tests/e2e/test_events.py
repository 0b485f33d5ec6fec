"""Domain events: each state change gives exactly one event on the stream,
in commit order, through NATS outages, crashes and slow subscribers."""
import json
import re
import threading
import uuid

from common import check, expect, fresh
from harness import wait_until


def rid():
    return "t-" + uuid.uuid4().hex[:12]


def of_request(events, request_id):
    return [e for e in events if e["event"]["requestid"] == request_id]


def test_each_change_one_event(stack):
    r1, r2, r3, r4 = rid(), rid(), rid(), rid()
    item = {"name": "ev", "guide": "g", "description": "<d>", "status": "open"}
    created = expect(stack.request("POST", "/api/items", item, {"X-Request-Id": r1}), 200)
    iid = created.body
    expect(stack.request("PUT", "/api/items/%s:archive" % iid, None, {"X-Request-Id": r2}), 200)
    # No change, no event: archiving again, and a refused create.
    expect(stack.request("PUT", "/api/items/%s:archive" % iid, None, {"X-Request-Id": r3}), 200)
    expect(stack.request("POST", "/api/items", {"name": "x"}, {"X-Request-Id": r4}), 400)
    stack.wait_outbox_empty("tracker")
    events = stack.events("--idle-ms", "700", "events.tracker.>")
    added, archived = of_request(events, r1), of_request(events, r2)
    check(len(added) == 1 and len(archived) == 1, "one event each: %r" % events)
    check(not of_request(events, r3) and not of_request(events, r4), "no-op writes emitted")
    a, b = added[0], archived[0]
    check(a["subject"] == "events.tracker.item.added", a)
    check(b["subject"] == "events.tracker.item.archived", b)
    check(a["stream_seq"] < b["stream_seq"], "commit order")
    ev = a["event"]
    check(list(ev) == ["specversion", "id", "source", "type", "time", "requestid",
                       "datacontenttype", "data"], "event keys: %r" % list(ev))
    check(ev["source"] == "tracker" and ev["type"] == "tracker.item.added", ev)
    check(ev["data"] == dict(item, id=iid, archived=False), ev["data"])
    check(b["event"]["data"]["archived"] is True, b)
    check(len(ev["id"]) == 36 and ev["id"] != b["event"]["id"], "uuid ids")
    check(ev["requestid"] == r1 and ev["datacontenttype"] == "application/json", ev)
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d:\d\d", ev["time"]),
          "time as PostgreSQL writes a timestamptz in JSON: %r" % ev["time"])


def test_refused_write_leaves_no_event(stack):
    # The outbox insert is part of the write: a refused or failed write
    # (foreign data error) leaves no event row behind.
    before = stack.psql("SELECT count(*) FROM outbox")
    expect(stack.request("POST", "/api/items", {"name": "n" * 46, "guide": "g",
                                                 "description": "d", "status": "s"}), 400)
    check(stack.psql("SELECT count(*) FROM outbox") == before, "no row for a refused write")


@fresh
def test_nats_outage_events_wait_and_keep_order(stack):
    tag = rid()
    ids = [int(expect(stack.request("POST", "/api/items", {"name": tag, "guide": "g",
                                                           "description": str(i),
                                                           "status": "s"}), 200).body)
           for i in range(5)]
    stack.stop("nats")
    # Committed while NATS is down (as a process that could not publish would
    # leave them): the relay must publish them once NATS is back, in order.
    stack.psql("WITH item AS (INSERT INTO work_items (username, guide, description, status) "
               "SELECT '%s', 'g', 'down' || i, 's' FROM generate_series(1, 5) i RETURNING *) "
               "INSERT INTO outbox (source, subject, data) SELECT 'tracker', "
               "'events.tracker.item.added', json_build_object('id', iditem::text, "
               "'name', username) FROM item ORDER BY iditem" % tag)
    stack.start("nats")
    stack.wait_ready(timeout=15)
    ids += [int(expect(stack.request("POST", "/api/items", {"name": tag, "guide": "g",
                                                            "description": "after",
                                                            "status": "s"}), 200).body)]
    stack.wait_outbox_empty("tracker", timeout=15)
    events = [e for e in stack.events("--idle-ms", "700", "events.tracker.item.added")
              if e["event"]["data"]["name"] == tag]
    got = [int(e["event"]["data"]["id"]) for e in events]
    want = [int(x) for x in stack.psql(
        "SELECT iditem FROM work_items WHERE username = '%s' ORDER BY iditem" % tag).split()]
    check(len(want) == 11 and got == want, "every event once, in commit order: %r vs %r"
          % (got, want))
    by_sql = [e["event"] for e in events if "description" not in e["event"]["data"]]
    check(len(by_sql) == 5 and all(e["requestid"] is None for e in by_sql),
          "rows written without a request id: requestid null: %r" % by_sql)


@fresh
def test_sigkill_after_commit_published_once_after_restart(stack):
    tag = rid()
    stack.stop("tracker")
    # What a tracker killed between its commit and its publish leaves behind.
    stack.psql("WITH item AS (INSERT INTO work_items (username, guide, description, status) "
               "VALUES ('%s', 'g', 'orphan', 's') RETURNING *) "
               "INSERT INTO outbox (source, subject, data) SELECT 'tracker', "
               "'events.tracker.item.added', json_build_object('id', iditem::text, "
               "'name', username) FROM item" % tag)
    # And a tracker killed at an arbitrary point under a write load.
    stack.start("tracker")
    stack.wait_ready()
    answered, stop = [], threading.Event()

    def writer():
        while not stop.is_set():
            try:
                r = stack.request("POST", "/api/items", {"name": tag, "guide": "g",
                                                          "description": "load",
                                                          "status": "s"}, timeout=5)
                if r.status == 200:
                    answered.append(int(r.body))
            except OSError:
                pass

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        from harness import wait_until
        wait_until(lambda: len(answered) >= 40, 20, "40 writes")
        stack.stop("tracker", sig=9)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    stack.start("tracker")
    stack.wait_ready()
    stack.wait_outbox_empty("tracker", timeout=15)
    want = [int(x) for x in stack.psql(
        "SELECT iditem FROM work_items WHERE username = '%s' ORDER BY iditem" % tag).split()]
    got = [int(e["event"]["data"]["id"]) for e in stack.events(
        "--idle-ms", "700", "events.tracker.item.added") if e["event"]["data"]["name"] == tag]
    check(set(answered) <= set(want), "answered writes are committed")
    check(sorted(got) == want, "each committed item once: %d events for %d items, dups %r"
          % (len(got), len(want), sorted({x for x in got if got.count(x) > 1})))


def test_slow_subscriber_gets_every_event(stack):
    tag = rid()
    for i in range(5):
        expect(stack.request("POST", "/api/items", {"name": tag, "guide": "g",
                                                     "description": str(i), "status": "s"}), 200)
    stack.wait_outbox_empty("tracker")
    # Leaves its first 3 deliveries unacked: they come back after 300 ms.
    durable = "slow" + uuid.uuid4().hex[:8]
    mine = lambda evs: [e for e in evs if e["event"]["data"].get("name") == tag]
    total = len(stack.events("--idle-ms", "700", "events.tracker.item.added"))
    events = stack.events("--durable", durable, "--ack-wait-ms", "300", "--skip-acks", "3",
                          "--count", str(total), "--idle-ms", "5000",
                          "events.tracker.item.added")
    acked_ids = {e["event"]["id"] for e in events}
    check(len(acked_ids) == total, "every event delivered: %d of %d" % (len(acked_ids), total))
    check(any(e["deliveries"] > 1 for e in events), "some were redelivered")
    check(len({e["event"]["data"]["description"] for e in mine(events)}) == 5, "all 5 of ours")


def test_stream_with_another_configuration_is_updated(stack):
    """A service that finds the events stream configured otherwise (another
    max_age here) updates it to its own configuration and publishes."""
    def info():
        return stack.nats_gather("$JS.API.STREAM.INFO.EVENTS")[0]["config"]

    want = info()["max_age"]
    check(stack.stop("tracker") == 0, "tracker stopped")
    changed = dict(info(), max_age=3600 * 10**9)
    r = stack.nats_gather("$JS.API.STREAM.UPDATE.EVENTS", payload=json.dumps(changed).encode())
    check(r and "error" not in r[0] and info()["max_age"] == 3600 * 10**9, "changed: %r" % r)
    stack.start("tracker")
    stack.wait_ready()
    wait_until(lambda: info()["max_age"] == want, 10, "the stream's own max_age back")
    request_id = rid()
    expect(stack.request("POST", "/api/items", {"name": "u", "guide": "g", "description": "d",
                                                "status": "s"}, {"X-Request-Id": request_id}),
           200)
    stack.wait_outbox_empty("tracker")
    check(len(of_request(stack.events("--idle-ms", "700", "events.tracker.>"), request_id))
          == 1, "the item's event")


def test_relay_never_scans_the_outbox_heap(stack):
    """The relay's statements are planned once per connection, usually while
    the outbox is empty (here: analysed empty, then the tracker restarts).
    They must still read the outbox by its key, never its heap, which a
    queue table fills with dead rows between vacuums."""
    def counts():
        row = stack.psql("SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                         "WHERE relname = 'outbox'")
        return [int(x) for x in row.split("|")]

    def last_seq():
        return stack.nats_gather("$JS.API.STREAM.INFO.EVENTS")[0]["state"]["last_seq"]

    stack.wait_outbox_empty("tracker")
    stack.psql("ANALYZE outbox")
    check(stack.stop("tracker") == 0, "tracker stopped")
    stack.start("tracker")
    stack.wait_ready()
    seq_scans, idx_scans = counts()
    first = last_seq()
    for i in range(20):
        expect(stack.request("POST", "/api/items", {"name": "s%d" % i, "guide": "g",
                                                    "description": "d", "status": "s"}), 200)
    wait_until(lambda: last_seq() >= first + 20, 10, "the 20 events in the stream")
    # The relay's statistics reach the counters within a second or so.
    wait_until(lambda: counts()[1] >= idx_scans + 2, 10, "the relay's index reads counted")
    check(counts()[0] == seq_scans, "no sequential scan of the outbox: %r -> %r"
          % ((seq_scans, idx_scans), counts()))
