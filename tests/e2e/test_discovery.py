"""The NATS service API ($SRV.*), as nats.go's micro package answers it."""
from common import check, expect
from harness import wait_until


def test_ping_finds_every_service(stack):
    # Services subscribe once connected; the stack's readiness only covers
    # the gateway and the tracker, so allow the others a bounded moment.
    got = {}

    def all_answer():
        got["replies"] = stack.nats_gather("$SRV.PING")
        return sorted(r["name"] for r in got["replies"]) == sorted(stack.services)

    try:
        wait_until(all_answer, 10, "every service answering $SRV.PING")
    except Exception:
        check(False, "every service answers: %r" % [r["name"] for r in got["replies"]])
    replies = got["replies"]
    for r in replies:
        check(r["type"] == "io.nats.micro.v1.ping_response" and len(r["id"]) == 22 and
              r["version"] == "1.0.0", r)
    one = stack.nats_gather("$SRV.PING.tracker")
    check(len(one) == 1 and one[0]["name"] == "tracker", one)
    by_id = stack.nats_gather("$SRV.PING.tracker." + one[0]["id"])
    check(by_id == one, by_id)
    check(stack.nats_gather("$SRV.PING.tracker.nosuchid", wait=0.3) == [], "unknown id: silent")


def test_info_lists_endpoints(stack):
    info = stack.nats_gather("$SRV.INFO.library")
    check(len(info) == 1, info)
    eps = info[0]["endpoints"]
    check(info[0]["type"] == "io.nats.micro.v1.info_response", info)
    check({"name": "library.lending.lend", "subject": "library.lending.lend",
           "queue_group": "library", "metadata": None} in eps, eps)


def test_stats_count_requests(stack):
    before = {e["name"]: e for e in stack.nats_gather("$SRV.STATS.tracker")[0]["endpoints"]}
    for _ in range(3):
        expect(stack.request("GET", "/api/items"), 200)
    stats = stack.nats_gather("$SRV.STATS.tracker")[0]
    after = {e["name"]: e for e in stats["endpoints"]}
    lst = after["tracker.items.list"]
    check(lst["num_requests"] - before["tracker.items.list"]["num_requests"] == 3, lst)
    check(lst["processing_time"] > 0 and lst["average_processing_time"] > 0, lst)
    check(stats["type"] == "io.nats.micro.v1.stats_response" and stats["started"].endswith("Z"),
          stats)
