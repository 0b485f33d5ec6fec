#!/usr/bin/env python3
"""bench.py - the ./dev bench figures. Each route runs through the whole path
(wrk -> gateway -> NATS -> service -> PostgreSQL) beside pgbench -S -M prepared
on the same PostgreSQL in the same run, and is printed as a ratio to the mean
pgbench TPS. Prints figures; asserts nothing.

  ./dev bench [name ...]     names: items_get, books_list, lend_return, ec2_get,
                             user_get, outbox
Each read route runs at every connection count of BENCH_CONNECTIONS and
reports its peak: the path has more stages than pgbench's client and server,
so it needs more requests in flight to keep them all busy (Little's law).
Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (32,64,128), BENCH_LENDERS
(16), BENCH_WRITERS (64)."""
import calendar
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

ITEMS = 10000
LENDERS = int(os.environ.get("BENCH_LENDERS", "16"))
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "32,64,128").split(",")]
WRITERS = int(os.environ.get("BENCH_WRITERS", "64"))
EMAILS = int(os.environ.get("BENCH_EMAILS", "10000"))


def sh(cmd, **kw):
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300, **kw)


def pgbench(stack):
    out = sh([harness.PGBIN + "/pgbench", "-h", "127.0.0.1", "-p", str(stack.pg_port), "-U",
              "postgres", "-S", "-M", "prepared", "-c", "16", "-j", "2", "-T", str(DURATION),
              "bench"]).stdout
    return float(re.search(r"tps = ([0-9.]+)", out).group(1))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    """CPU seconds the whole machine spent busy (every process, all cores)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:]]
    return (sum(t[:8]) - t[3] - t[4]) / os.sysconf("SC_CLK_TCK")


def wrk(stack, script, connections, threads=2, seconds=DURATION):
    procs = {n: stack.pid(n) for n in ["gateway"] + stack.services + ["nats"]}
    before = {n: cpu_s(p) for n, p in procs.items()}
    before["machine"] = machine_busy_s()
    t0 = time.monotonic()
    out = sh(["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % seconds,
              "--latency", "-s", os.path.join(HERE, script),
              "http://127.0.0.1:%d" % stack.http_port]).stdout
    lat = {}
    for pct in ("50", "99"):
        m = re.search(r"\s%s%%\s+([0-9.]+)(us|ms|s)" % pct, out)
        lat[pct] = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    wall = time.monotonic() - t0
    after = {n: cpu_s(p) for n, p in procs.items()}
    after["machine"] = machine_busy_s()
    cpu = {n: (after[n] - before[n]) / wall for n in before}
    # PostgreSQL's backends and wrk are most of the rest.
    cpu["postgres+wrk+other"] = cpu.pop("machine") - sum(cpu.values())
    return {"rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
            "p50": lat["50"], "p99": lat["99"], "non2xx": int(errors.group(1)) if errors else 0,
            "cpu": cpu}


def memory_kib(pid):
    """RSS, and the process's own share: PSS and private pages (shared
    library pages count in RSS whole, in PSS divided among their users)."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        text = f.read()
    field = lambda name: int(re.search(r"^%s:\s+(\d+)" % name, text, re.M).group(1))
    return (field("Rss"), field("Pss"), field("Private_Clean") + field("Private_Dirty"))


def peak(stack, script):
    """wrk at each connection count; the best run, and a line with every rate."""
    runs = {c: wrk(stack, script, c) for c in CONNECTIONS}
    best = max(runs, key=lambda c: runs[c]["rps"])
    return best, runs[best], "    by connections: " + ", ".join(
        "c%d %.0f/s" % (c, r["rps"]) for c, r in runs.items())


def line(label, r, target, per=1):
    """A route's line, to be printed once the mean pgbench TPS is known."""
    rate = r["rps"] / per
    return lambda tps: (
        "%-40s %7.0f /s  p50 %6.3f ms  p99 %7.3f ms  non-2xx %-4d ratio %.2f (target >= %.1f)"
        "\n    cores used: %s" % (label, rate, r["p50"], r["p99"], r["non2xx"], rate / tps, target,
                               ", ".join("%s %.2f" % kv for kv in r["cpu"].items())))


# ---- scenarios: each returns its lines (text, or line()s awaiting the mean) ----

def items_get(stack):
    c, top, scan = peak(stack, "items_get.lua")
    # Half the peak: paced connections (a random 0-4 ms pause each), their number
    # calibrated by a short run, since wrk has no rate option.
    conns = 8
    for _ in range(3):
        probe = wrk(stack, "items_get_paced.lua", conns, seconds=3)
        conns = max(2, int(round(conns * (top["rps"] / 2) / max(probe["rps"], 1))))
    half = wrk(stack, "items_get_paced.lua", conns)
    return [line("GET /api/items/{id} (c%d)" % c, top, 0.6), scan,
            "  at half the peak (%d paced connections): %.0f /s, p50 %.3f ms, p99 %.3f ms "
            "(target p99 <= 2 ms)" % (conns, half["rps"], half["p50"], half["p99"])]


def books_list(stack):
    c, r, scan = peak(stack, "books_list.lua")
    return [line("GET /api/books?limit=20 (c%d)" % c, r, 0.5), scan]


def lend_return(stack):
    r = wrk(stack, "lend_return.lua", LENDERS, threads=LENDERS)
    return [line("lend + return cycles (%d lenders)" % LENDERS, r, 0.3, per=2)]


def ec2_get(stack):
    c, r, scan = peak(stack, "ec2_get.lua")
    return [line("GET /ec2/{id} (5 packages, c%d)" % c, r, 0.5), scan]


def user_get(stack):
    c, r, scan = peak(stack, "user_get.lua")
    return [line("GET /users/{userId} (2 books, c%d)" % c, r, 0.5), scan]


def event_lag(stack):
    """Events per second and commit-to-subscriber lag under the write load."""
    received = []
    sub = subprocess.Popen([os.path.join(harness.BIN_DIR, "events"), "--url",
                            "nats://127.0.0.1:%d" % stack.nats_port, "--meta", "--new",
                            "--idle-ms", "3000", "events.tracker.item.added"],
                           stdout=subprocess.PIPE, text=True)
    reader = threading.Thread(target=lambda: received.extend(sub.stdout))
    reader.start()
    time.sleep(0.5)  # the subscription is up (--new: only what comes after)
    load = wrk(stack, "items_create.lua", WRITERS)
    sub.wait(DURATION + 30)
    reader.join(10)
    lags = []
    for raw in received:
        e = json.loads(raw)
        t = e["event"]["time"]  # 2026-11-23T09:12:40.754361+00:00, UTC
        whole = calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S"))
        frac = re.match(r"\.(\d+)", t[19:])
        lags.append(e["received_us"] / 1e6 - whole - (float("0." + frac.group(1)) if frac else 0))
    lags.sort()
    if not lags:
        return ["  no events received"]
    return ["  with a subscriber: %d events for %.0f writes answered, %.0f events/s; "
            "commit-to-subscriber lag p50 %.2f ms, p99 %.2f ms"
            % (len(lags), load["rps"] * DURATION, len(lags) / DURATION,
               lags[len(lags) // 2] * 1e3, lags[int(len(lags) * 0.99)] * 1e3)]


def restart(stack, names, **env):
    """Restarts services 'names' with 'env' set (None: unset) for them and
    every later start."""
    for k, v in env.items():
        if v is None:
            stack.env_extra.pop(k, None)
        else:
            stack.env_extra[k] = v
    for name in names:
        stack.stop(name)
        stack.start(name)
    stack.wait_ready()


def outbox(stack):
    """A write route with events on and off, then the lag to a subscriber."""
    on = wrk(stack, "items_create.lua", WRITERS)
    restart(stack, ["tracker"], EVENTS_ENABLED="0")
    off = wrk(stack, "items_create.lua", WRITERS)
    restart(stack, ["tracker"], EVENTS_ENABLED=None)
    return [line("POST /api/items, events on (c%d)" % WRITERS, on, 0),
            line("POST /api/items, events off (c%d)" % WRITERS, off, 0),
            "  the outbox adds %.1f%% to the write's cost (target <= 20%%)"
            % ((off["rps"] / on["rps"] - 1) * 100)] + event_lag(stack)


def notifier(stack):
    """tests/bench/notifier_bench.py, on a stack of its own: emails per
    second handed to smtp-sink, beside the sink's ceiling. Its lines are
    printed as they come and again with the others."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "notifier_bench.py"),
                          "--messages", str(EMAILS)],
                         stdout=subprocess.PIPE, text=True, check=True, timeout=900).stdout
    print(out, end="")
    return ["emails to smtp-sink (%d):" % EMAILS] + [
        "  " + l for l in out.splitlines()
        if l.startswith(("sink ceiling", "notifier,", "  CPU us per email"))]


SCENARIOS = {"items_get": items_get, "books_list": books_list, "lend_return": lend_return,
             "ec2_get": ec2_get, "user_get": user_get, "outbox": outbox, "notifier": notifier}


def post_all(stack, requests, threads=4):
    """POSTs each (path, body) through the gateway on a few kept-alive
    connections; stops at the first answer that is not 200."""
    requests = list(requests)
    failed = []

    def worker(part):
        conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
        try:
            for path, body in part:
                conn.request("POST", path, json.dumps(body),
                             {"Content-Type": "application/json"})
                r = conn.getresponse()
                text = r.read()
                if r.status != 200:
                    failed.append("POST %s: %d %s" % (path, r.status, text[:200]))
                    return
        finally:
            conn.close()

    workers = [threading.Thread(target=worker, args=(requests[i::threads],))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failed:
        raise RuntimeError(failed[0])


def load(stack):
    stack.psql("INSERT INTO work_items (description, guide, status, username) "
               "SELECT 'item ' || i, 'python', 'open', 'user-' || (i %% 50) "
               "FROM generate_series(1, %d) i" % ITEMS)
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(stack.pg_port), PGUSER="postgres",
               PGDATABASE="app")
    print(sh([os.path.join(harness.ROOT, "scripts", "seed-library.py")], env=env).stdout.strip())
    stack.psql("INSERT INTO patrons (firstname, lastname) VALUES ('Bench', 'Patron')")
    # A library with a history: 10,000 returned loans. Analysed empty, the
    # lending table would be planned for as empty (a sequential scan for
    # each return) until autovacuum analyses it again, a minute or more
    # into a run of ten seconds.
    stack.psql("INSERT INTO lending (bookid, patronid, lent, returned) "
               "SELECT i %% 418 + 1, 1, current_date - 30, current_date - 1 "
               "FROM generate_series(1, %d) i" % ITEMS)
    # Instances through their route, as users add them: the POST also stores
    # the record that GET answers with. Events off, as for the rows loaded
    # by SQL: 40,000 events published at once leave nats-server expiring as
    # many Nats-Msg-Ids when their duplicate window (2 min) ends, during the
    # first scenarios (GET /api/items at half its peak: p99 2.5 ms then, 1.7
    # to 1.8 ms without them or once the window has passed).
    restart(stack, ["inventory", "tracker"], EVENTS_ENABLED="0")
    post_all(stack, (("/ec2/i-%d" % i, {
        "aws_region": "us-east-1", "aws_account": "123456789012",
        "packages": [{"package_name": "pkg%d" % p, "package_version": "1.%d" % p}
                     for p in ((i * 7 + k * 11) % 50 + 1 for k in range(1, 6))]})
        for i in range(1, ITEMS + 1)))
    # Users and their books likewise: each add also appends to users.books.
    post_all(stack, (("/users", {"userId": "bench-%d" % i, "name": "User %d" % i})
                     for i in range(1, ITEMS + 1)))
    post_all(stack, (("/users/bench-%d/books" % i,
                      {"isbn": "978-%d" % k, "name": "Book %d" % k, "author": "Author"})
                     for i in range(1, ITEMS + 1) for k in (1, 2)))
    restart(stack, ["inventory", "tracker"], EVENTS_ENABLED=None)
    # Every event of the load published (and its outbox row deleted) first.
    # Then vacuumed as well as analysed: the rows' hint bits and visibility
    # map are set now, and the dead rows gone, not by the first scenario's
    # reads and an autovacuum during its run; and a checkpoint writes the
    # load out before timing.
    for source in stack.services:
        stack.wait_outbox_empty(source, timeout=60)
    stack.psql("VACUUM ANALYZE")
    stack.psql("CREATE DATABASE bench", db="postgres")
    sh([harness.PGBIN + "/pgbench", "-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p",
        str(stack.pg_port), "-U", "postgres", "bench"])
    stack.psql("CHECKPOINT", db="postgres")


def main():
    names = sys.argv[1:] or list(SCENARIOS)
    stack = harness.Stack(env={"LOG_LEVEL": "info"})
    try:
        stack.up()
        load(stack)
        idle = {n: memory_kib(stack.pid(n)) for n in ["gateway"] + stack.services + ["nats"]}
        tps = [pgbench(stack)]
        lines = []
        for name in names:
            lines += SCENARIOS[name](stack)
        tps.append(pgbench(stack))
        mean = sum(tps) / len(tps)
        print()
        print("pgbench -S -M prepared -c16 -j2: %.0f TPS before, %.0f after; ratios use "
              "the mean, %.0f" % (tps[0], tps[1], mean))
        for text in lines:
            print(text(mean) if callable(text) else text)
        print("idle memory, RSS / PSS / private (target RSS <= 10 MiB for the gateway and "
              "each service):")
        for n, (rss, pss, private) in idle.items():
            print("  %-10s %5.1f / %4.1f / %4.1f MiB" % (n, rss / 1024.0, pss / 1024.0,
                                                       private / 1024.0))
    finally:
        stack.down()
        stack.cleanup()


if __name__ == "__main__":
    main()
