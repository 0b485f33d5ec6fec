#!/usr/bin/env python3
"""bench.py - the ./dev bench figures: GET /api/items/{random id} through
gateway -> NATS -> tracker -> PostgreSQL, beside pgbench -S -M prepared on
the same PostgreSQL in the same run. Prints figures; asserts nothing."""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

ITEMS = 10000
DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))


def sh(cmd, **kw):
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300, **kw)


def pgbench(stack):
    out = sh([harness.PGBIN + "/pgbench", "-h", "127.0.0.1", "-p", str(stack.pg_port), "-U",
              "postgres", "-S", "-M", "prepared", "-c", "16", "-j", "2", "-T", str(DURATION),
              "bench"]).stdout
    return float(re.search(r"tps = ([0-9.]+)", out).group(1))


def wrk(stack, script, connections, extra=()):
    out = sh(["wrk", "-t", "2", "-c", str(connections), "-d", "%ds" % DURATION, "--latency",
              "-s", os.path.join(HERE, script)] + list(extra) +
             ["http://127.0.0.1:%d" % stack.http_port]).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(r"\s%s%%\s+([0-9.]+)(us|ms|s)" % pct, out)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        lat[pct] = float(m.group(1)) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat, int(errors.group(1)) if errors else 0


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def main():
    stack = harness.Stack(env={"LOG_LEVEL": "info"})
    try:
        stack.up()
        stack.psql("INSERT INTO work_items (description, guide, status, username) "
                   "SELECT 'item ' || i, 'python', 'open', 'user-' || (i %% 50) "
                   "FROM generate_series(1, %d) i" % ITEMS)
        stack.psql("CREATE DATABASE bench", db="postgres")
        sh([harness.PGBIN + "/pgbench", "-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p",
            str(stack.pg_port), "-U", "postgres", "bench"])
        time.sleep(1)  # let the load settle after the inserts before any measurement
        idle = {n: rss_kib(stack.pid(n)) for n in ("gateway", "tracker", "nats")}

        tps1 = pgbench(stack)
        rps, lat, errors = wrk(stack, "items_get.lua", CONNECTIONS)
        tps2 = pgbench(stack)
        mean_tps = (tps1 + tps2) / 2

        # Half the peak rate: each connection waits before its next request.
        target = rps / 2
        delay_ms = 2
        conns = max(2, int(round(target * delay_ms / 1000.0)))
        half_rps, half_lat, half_err = wrk(stack, "items_get_paced.lua", conns)

        print()
        print("pgbench -S -M prepared -c 16 -j 2: %.0f TPS before, %.0f after, mean %.0f"
              % (tps1, tps2, mean_tps))
        print("GET /api/items/{random id} (wrk -t2 -c%d -d%ds): %.0f req/s, p50 %.3f ms, "
              "p99 %.3f ms, non-2xx %d" % (CONNECTIONS, DURATION, rps, lat["50"], lat["99"],
                                          errors))
        print("ratio to pgbench: %.2f (target >= 0.6)" % (rps / mean_tps))
        print("at about half the peak (%d paced connections, %d ms pause): %.0f req/s, "
              "p50 %.3f ms, p99 %.3f ms (target p99 <= 2 ms), non-2xx %d"
              % (conns, delay_ms, half_rps, half_lat["50"], half_lat["99"], half_err))
        print("idle RSS: " + ", ".join("%s %.1f MiB" % (n, k / 1024.0)
                                       for n, k in idle.items()) + " (target <= 10 MiB each "
              "for gateway and services)")
    finally:
        stack.down()
        stack.cleanup()


if __name__ == "__main__":
    main()
