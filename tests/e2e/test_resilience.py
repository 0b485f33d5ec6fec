"""test_resilience.py - a service stopped, PostgreSQL restarted, SIGTERM with
requests in flight: every answer comes, fast, and nothing restarts."""
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import harness

from common import check, expect, fresh, new_item


def hold_lock(stack):
    s = stack.psql_session()
    s.stdin.write("BEGIN; LOCK TABLE work_items IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n")
    s.stdin.flush()
    check(s.stdout.readline().strip() == "locked", "lock taken")
    return s


def release(s):
    s.stdin.write("ROLLBACK;\n\\q\n")
    s.stdin.flush()
    s.wait(10)


@fresh
def test_tracker_stopped_gives_503_fast(stack):
    check(stack.stop("tracker") == 0, "tracker exits 0")
    for _ in range(5):
        t0 = time.monotonic()
        r = stack.request("GET", "/api/items")
        took = time.monotonic() - t0
        expect(r, 503)
        check(took < 0.1, "503 within 100 ms, took %.3fs" % took)
        check(r.header("retry-after") == "1", r.headers)


@fresh
def test_postgres_restart(stack):
    new_item(stack)
    pids = (stack.pid("tracker"), stack.pid("gateway"))
    stack.pg_stop()
    for _ in range(5):
        t0 = time.monotonic()
        r = stack.request("GET", "/api/items/1")
        check(r.status == 503, "during the outage: %r" % r)
        check(time.monotonic() - t0 < 1.0, "fails fast")
    stack.pg_start()
    accepted = time.monotonic()
    while True:
        r = stack.request("GET", "/api/items/1")
        if r.status == 200:
            break
        check(time.monotonic() - accepted < 5, "200 within 5 s of PostgreSQL accepting")
        time.sleep(0.05)
    check(stack.alive("tracker") and stack.alive("gateway"), "nothing restarted")
    check((stack.pid("tracker"), stack.pid("gateway")) == pids, "same processes")


def in_flight_then_signal(stack, victim, n=20):
    i = new_item(stack)
    lock = hold_lock(stack)
    try:
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(stack.request, "GET", "/api/items/%d" % i, None, None, 20)
                       for _ in range(n)]
            # Every request is waiting for the tracker, whose queries wait on the lock.
            deadline = time.monotonic() + 10
            while "gateway_http_requests_in_flight %d\n" % n not in \
                    stack.request("GET", "/metrics").body:
                check(time.monotonic() < deadline, "requests in flight")
                time.sleep(0.02)
            check(stack.psql("SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type"
                             " = 'Lock' AND application_name = 'tracker'") == "t",
                  "the tracker's queries wait on the lock")
            proc = stack.procs[victim]
            proc.send_signal(15)
            time.sleep(0.2)
            check(proc.poll() is None, "%s waits for requests in flight" % victim)
            release(lock)
            lock = None
            answers = [f.result(20) for f in futures]
        check(all(a.status == 200 for a in answers), [a for a in answers if a.status != 200])
        check(proc.wait(15) == 0, "%s exits 0" % victim)
    finally:
        if lock:
            release(lock)


@fresh
def test_sigterm_tracker_with_requests_in_flight(stack):
    in_flight_then_signal(stack, "tracker")
    expect(stack.request("GET", "/api/items"), 503)


@fresh
def test_sigterm_gateway_with_requests_in_flight(stack):
    in_flight_then_signal(stack, "gateway")


def test_bad_setting_stops_a_service_naming_it(stack):
    """A wrong value is refused at start, before any connection, with the
    variable's name; the service running beside it is not disturbed."""
    for name, value in [("PGGSSENCMODE", "sometimes"), ("LOG_LEVEL", "loud"),
                        ("DB_POOL_SIZE", "0"), ("NOTIFIER_CONCURRENCY", "many")]:
        binary = "notifier" if name.startswith("NOTIFIER") else "library"
        env = dict(stack.env(), **{name: value, "HEALTH_PORT": "0"})
        p = subprocess.run([os.path.join(harness.BIN_DIR, binary)], env=env, timeout=10,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        check(p.returncode != 0, "%s=%s refused (exit %d)" % (name, value, p.returncode))
        check(name in p.stderr, "%s named in %r" % (name, p.stderr[-300:]))
    expect(stack.request("GET", "/api/books?limit=1"), 200)
