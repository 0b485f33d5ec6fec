"""The EC2 inventory (seed 001) through the gateway: the original's five
integration checks, its README's examples, every bad input of the contract,
one transaction per POST, DELETE, the package search and its index at 100,000
instances, and one event per change."""
import json
import re
import threading
import uuid
from urllib.parse import quote

from common import check, expect, statement
from harness import wait_until

J = {"Content-Type": "application/json"}
RECORD_KEYS = ["aws_instance_id", "aws_region", "aws_account", "creation_date_utc", "packages"]
DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.0$")


def new_id(prefix="i-"):
    return prefix + uuid.uuid4().hex[:12]


def pkgs(*pairs):
    return [{"package_name": n, "package_version": v} for n, v in pairs]


def ready(stack):
    wait_until(lambda: stack._get_ok("/ec2/ready-probe"), 15, "inventory answering")


def url(iid):
    return "/ec2/" + quote(iid, safe="")


def add(stack, iid, packages=(), region="us-east-1", account="123456789012", headers=None):
    body = {"aws_region": region, "aws_account": account, "packages": list(packages)}
    r = expect(stack.request("POST", url(iid), body, headers), 200)
    check(r.json() == {"new_record": body}, r)
    return body


def get(stack, iid):
    return expect(stack.request("GET", url(iid)), 200).json()


def err(resp, status, why=None):
    expect(resp, status)
    body = resp.json()
    check(list(body) == ["error_message"] and isinstance(body["error_message"], str),
          "error shape: %r" % body)
    check(why is None or why in body["error_message"], "want %r in %r" % (why, body))
    return body["error_message"]


def test_original_integration_checks(stack):
    """tests/test_api.py of the original, its five checks."""
    ready(stack)
    iid = new_id()
    body = {"aws_account": "123456789012", "aws_region": "us-east-1",
            "packages": pkgs(("p1", "v1"), ("p2", "v2"))}
    new = expect(stack.request("POST", url(iid), body), 200).json()["new_record"]
    check(new["aws_region"] == body["aws_region"] and new["aws_account"] == body["aws_account"]
          and new["packages"] == body["packages"], new)
    err(stack.request("POST", url(iid), body), 400, "Duplicate entry")
    err(stack.request("POST", url(new_id()), {"invalid_field_name": "x"}), 400,
        "Unknown field 'invalid_field_name'")
    found = get(stack, iid)
    check(found["record_found"] is True and found["record"]["aws_instance_id"] == iid, found)
    expect(stack.request("GET", url(str(uuid.uuid4()))), 200,
           '{"record":{},"record_found":false}')


def test_readme_examples(stack):
    ready(stack)
    body = {"aws_region": "123456789012", "aws_account": "123456789012",
            "packages": pkgs(("package-1", "v1"), ("package-1", "v2"), ("package-2", "v1"),
                             ("package-3", "v1"))}
    # The body as the README sends it, echoed compactly, keys in its order.
    sent = json.dumps(body, indent=4)
    expect(stack.request("POST", "/ec2/instance-002", sent, J), 200,
           '{"new_record":%s}' % json.dumps(body, separators=(",", ":")))
    r = expect(stack.request("POST", "/ec2/instance-002", sent, J), 400)
    check(r.body == '{"error_message":"An error occurred (BadRequestException) when calling the '
          'ExecuteSql operation: Duplicate entry \'instance-002\' for key \'PRIMARY\'"}', r)
    r = expect(stack.request("GET", "/ec2/instance-002"), 200)
    rec = r.json()["record"]
    check(list(rec) == RECORD_KEYS and DATE.match(rec["creation_date_utc"]), rec)
    now = stack.psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')")
    check(rec["creation_date_utc"][:13] == now[:13], "UTC: %s vs %s" % (rec, now))
    check(r.body == '{"record":{"aws_instance_id":"instance-002","aws_region":"123456789012",'
          '"aws_account":"123456789012","creation_date_utc":"%s","packages":%s},'
          '"record_found":true}' % (rec["creation_date_utc"],
                                    json.dumps(body["packages"], separators=(",", ":"))),
          "compact, the seed's keys, packages in the order sent: %s" % r.body)
    expect(stack.request("GET", "/ec2/instance-003"), 200, '{"record":{},"record_found":false}')


def test_bad_input(stack):
    ready(stack)
    good = {"aws_region": "us-east-1", "aws_account": "123456789012",
            "packages": pkgs(("p", "1"))}

    def but(**over):
        b = dict(good)
        b.update(over)
        return {k: v for k, v in b.items() if v is not None}

    def pkg(**over):  # the second package changed
        p = {"package_name": "p", "package_version": "1"}
        p.update(over)
        return but(packages=pkgs(("q", "1")) + [{k: v for k, v in p.items() if v is not None}])

    cases = [
        ("", "body must contain AMI mandatory attributes"),
        ("{", "invalid JSON"),
        ("null", "invalid JSON"),
        ('{"aws_region":"a","aws_region":"b"}', "invalid JSON"),
        ("[]", "must be a JSON object"),
        ("{}", "Missing required field 'aws_region'"),
        (but(aws_region=None), "Missing required field 'aws_region'"),
        (but(aws_account=None), "Missing required field 'aws_account'"),
        (but(packages=None), "Missing required field 'packages'"),
        (but(extra=1), "Unknown field 'extra'"),
        (but(aws_region=5), "Field 'aws_region' must be a string"),
        (but(aws_account=123456789012), "Field 'aws_account' must be a string"),
        (but(packages="p"), "Field 'packages' must be an array"),
        (but(packages={"package_name": "p"}), "Field 'packages' must be an array"),
        (but(packages=["p"]), "packages[0] must be an object"),
        (but(packages=pkgs(("a", "1")) + [None]), "packages[1] must be an object"),
        (pkg(package_name=1), "packages[1]: Field 'package_name' must be a string"),
        (pkg(package_version=None), "packages[1]: Missing required field 'package_version'"),
        (pkg(package_name=None), "packages[1]: Missing required field 'package_name'"),
        (pkg(extra="x"), "packages[1]: Unknown field 'extra'"),
        (pkg(package_version=["1"]), "packages[1]: Field 'package_version' must be a string"),
        (but(aws_region="r" * 31), "Field 'aws_region' must be at most 30 characters"),
        (but(aws_account="1" * 14), "Field 'aws_account' must be at most 13 characters"),
        (pkg(package_name="n" * 101), "Field 'package_name' must be at most 100 characters"),
        (pkg(package_version="v" * 51), "Field 'package_version' must be at most 50 characters"),
        (but(aws_region=""), "Field 'aws_region' must not be empty"),
        (but(aws_account=""), "Field 'aws_account' must not be empty"),
        (pkg(package_name=""), "packages[1]: Field 'package_name' must not be empty"),
        (pkg(package_version=""), "packages[1]: Field 'package_version' must not be empty"),
        (but(aws_region="a\u0000b"), "NUL"),
    ]
    before = stack.psql("SELECT (SELECT count(*) FROM ec2) || '/' || "
                        "(SELECT count(*) FROM package) || '/' || (SELECT count(*) FROM outbox)")
    iid = new_id()
    for body, why in cases:
        sent = body if isinstance(body, str) else json.dumps(body)
        err(stack.request("POST", url(iid), sent, J), 400, why)
    err(stack.request("POST", url("x" * 256), good), 400, "1 to 255 characters")
    err(stack.request("GET", url("x" * 256)), 400, "1 to 255 characters")
    err(stack.request("DELETE", url("x" * 256)), 400, "1 to 255 characters")
    err(stack.request("POST", "/ec2/%FF%FE", good), 400, "UTF-8")
    expect(stack.request("POST", url(iid), "x", {"Content-Type": "text/plain"}), 415)
    check(stack.psql("SELECT (SELECT count(*) FROM ec2) || '/' || "
                     "(SELECT count(*) FROM package) || '/' || (SELECT count(*) FROM outbox)")
          == before, "nothing written")
    check(get(stack, iid)["record_found"] is False, "not stored")
    # At the limits, in characters, not bytes.
    long_id = "\u00e9" * 255
    add(stack, long_id, pkgs(("\u20ac" * 100, "\u00fc" * 50)), region="\u00e9" * 30,
        account="\u00e9" * 13)
    rec = get(stack, long_id)["record"]
    check(rec["aws_instance_id"] == long_id and rec["packages"][0]["package_name"] ==
          "\u20ac" * 100 and rec["aws_region"] == "\u00e9" * 30, rec)
    # An instance with no packages.
    iid = new_id()
    add(stack, iid, [])
    check(get(stack, iid)["record"]["packages"] == [], "no packages")


def test_injection_is_data(stack):
    ready(stack)
    iid = "x'; DROP TABLE ec2_package; --"
    packages = pkgs(("'; DROP TABLE ec2; --", "1' OR '1'='1"), ('"; DELETE FROM package', "\\"),
                    ("\u00fc\u20ac\U0001F600 $1 %s", "$$;--"))
    add(stack, iid, packages, region="'; DROP TABLE ec2; --", account="');--")
    rec = get(stack, iid)["record"]
    check(rec["aws_instance_id"] == iid and rec["aws_region"] == "'; DROP TABLE ec2; --" and
          rec["aws_account"] == "');--" and rec["packages"] == packages, rec)
    found = expect(stack.request("GET", "/ec2?package_name=" + quote(packages[0]["package_name"])),
                   200).json()["records"]
    check([r["aws_instance_id"] for r in found] == [iid], found)
    check(stack.psql("SELECT count(*) FROM pg_tables WHERE tablename IN "
                     "('ec2', 'package', 'ec2_package')") == "3", "tables still there")


def test_package_order_and_repeats(stack):
    ready(stack)
    tag = uuid.uuid4().hex[:6]
    iid = new_id()
    order = pkgs(("z-" + tag, "v1"), ("a-" + tag, "v2"), ("m-" + tag, "v1"), ("a-" + tag, "v1"))
    add(stack, iid, order)
    check(get(stack, iid)["record"]["packages"] == order, "the order sent")
    iid = new_id()
    repeated = pkgs(("b-" + tag, "1"), ("a-" + tag, "1"), ("b-" + tag, "1"), ("c-" + tag, "1"),
                    ("a-" + tag, "1"))
    add(stack, iid, repeated)  # echoed as sent
    check(get(stack, iid)["record"]["packages"] == repeated[:2] + repeated[3:4],
          "each pair once, at its first place")
    check(stack.psql("SELECT count(*) FROM ec2_package WHERE aws_instance_id = '%s'" % iid)
          == "3", "three links")
    # Shared package rows: each pair once in the package table.
    check(stack.psql("SELECT string_agg(package_version, ',' ORDER BY package_version) "
                     "FROM package WHERE package_name = 'a-%s'" % tag) == "1,v1,v2",
          "a 1, a v1 and a v2 once each")


def test_failed_post_stores_nothing(stack):
    """The instance, the packages, the links and the event are one statement:
    a part the database refuses after the instance insert undoes it all."""
    ready(stack)
    tag = uuid.uuid4().hex[:8]
    iid = new_id()
    stack.psql("ALTER TABLE ec2_package ADD CONSTRAINT test_refused "
               "CHECK (package_version <> 'refused-by-db')")
    try:
        before = stack.psql("SELECT count(*) FROM outbox")
        err(stack.request("POST", url(iid), {
            "aws_region": "r", "aws_account": "a",
            "packages": pkgs(("new-" + tag, "1"), ("new2-" + tag, "refused-by-db"))}), 400)
        check(stack.psql("SELECT count(*) FROM ec2 WHERE aws_instance_id = '%s'" % iid) == "0",
              "no instance")
        check(stack.psql("SELECT count(*) FROM package WHERE package_name LIKE '%%%s'" % tag)
              == "0", "no packages")
        check(stack.psql("SELECT count(*) FROM outbox") == before, "no event")
    finally:
        stack.psql("ALTER TABLE ec2_package DROP CONSTRAINT test_refused")
    add(stack, iid, pkgs(("new-" + tag, "1"), ("new2-" + tag, "refused-by-db")))
    check(len(get(stack, iid)["record"]["packages"]) == 2, "stored once allowed")


def test_concurrent_adds(stack):
    ready(stack)
    tag = uuid.uuid4().hex[:6]
    iid, statuses, barrier = new_id(), [], threading.Barrier(8)
    body = {"aws_region": "r", "aws_account": "a", "packages": pkgs(("c-" + tag, "1"))}

    def same():
        barrier.wait(10)
        statuses.append(stack.request("POST", url(iid), body).status)

    threads = [threading.Thread(target=same) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    check(sorted(statuses) == [200] + [400] * 7, "one add wins: %r" % statuses)
    # New packages shared by concurrent adds, sent in opposite orders.
    shared = pkgs(*[("s%d-%s" % (i, tag), "1") for i in range(6)])
    ids, statuses, barrier = [new_id() for _ in range(8)], [], threading.Barrier(8)

    def other(n, i):
        barrier.wait(10)
        order = shared if n % 2 else shared[::-1]
        statuses.append(stack.request("POST", url(i), {"aws_region": "r", "aws_account": "a",
                                                       "packages": order}).status)

    threads = [threading.Thread(target=other, args=(n, i)) for n, i in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    check(statuses == [200] * 8, "all added: %r" % statuses)
    check(stack.psql("SELECT count(*) FROM package WHERE package_name LIKE 's%%-%s'" % tag)
          == "6", "each package once")


def test_delete(stack):
    ready(stack)
    tag = uuid.uuid4().hex[:6]
    iid = new_id()
    add(stack, iid, pkgs(("d-" + tag, "1")))
    expect(stack.request("DELETE", url(iid)), 200, '{"deleted":true}')
    expect(stack.request("GET", url(iid)), 200, '{"record":{},"record_found":false}')
    check(stack.psql("SELECT count(*) FROM ec2_package WHERE aws_instance_id = '%s'" % iid)
          == "0", "links gone")
    check(stack.psql("SELECT count(*) FROM package WHERE package_name = 'd-%s'" % tag) == "1",
          "the shared package stays")
    err(stack.request("DELETE", url(iid)), 404, "not found")
    err(stack.request("DELETE", url(new_id())), 404, "not found")
    add(stack, iid, pkgs(("d-" + tag, "2")))  # the id can be used again
    check(get(stack, iid)["record"]["packages"] == pkgs(("d-" + tag, "2")), "re-added")


def test_search_by_package(stack):
    ready(stack)
    tag = uuid.uuid4().hex[:6]
    a, b, c, d = ("%s-%s" % (tag, x) for x in "abcd")
    add(stack, d, pkgs(("one-" + tag, "1"), ("one-" + tag, "2")))
    add(stack, a, pkgs(("one-" + tag, "1"), ("two-" + tag, "1")))
    add(stack, b, pkgs(("one-" + tag, "2")))
    add(stack, c, pkgs(("two-" + tag, "1")))

    def ids(query):
        r = expect(stack.request("GET", "/ec2?" + query), 200)
        check(r.body.startswith('{"records":['), r)
        return [x["aws_instance_id"] for x in r.json()["records"]]

    check(ids("package_name=one-" + tag) == [a, b, d], "each instance once, by id")
    check(ids("package_name=one-%s&package_version=1" % tag) == [a, d], "with version")
    check(ids("package_version=2&package_name=one-" + tag) == [b, d], "either order")
    check(ids("package_name=two-" + tag) == [a, c], "two")
    check(ids("package_name=none-" + tag) == [], "none")
    check(ids("package_name=one-%s&package_version=9" % tag) == [], "no such version")
    records = expect(stack.request("GET", "/ec2?package_name=two-" + tag), 200).json()["records"]
    check(records == [get(stack, a)["record"], get(stack, c)["record"]], "records as GET shows")
    expect(stack.request("DELETE", url(a)), 200)
    check(ids("package_name=two-" + tag) == [c], "deleted instance gone")
    check(ids("package_name=" + quote("a&b=c " + tag, safe="")) == [], "encoded")
    add(stack, a, pkgs(("one-" + tag, "1")))
    check(ids("package_name=one-%s&limit=2" % tag) == [a, b], "the first page")
    check(ids("package_name=one-%s&limit=2&offset=2" % tag) == [d], "the second page")
    check(ids("offset=1&package_name=one-" + tag) == [b, d], "from an offset")
    check(ids("package_name=one-%s&package_version=1&limit=1&offset=1" % tag) == [d],
          "a page of a version")
    for query, why in (("", "'package_name' is required"),
                       ("package_version=1", "'package_name' is required"),
                       ("package_name=", "'package_name' must be 1 to 100"),
                       ("package_name=" + "n" * 101, "'package_name' must be 1 to 100"),
                       ("package_name=x&package_version=", "'package_version' must be 1 to 50"),
                       ("package_name=x&package_version=" + "v" * 51, "'package_version'"),
                       ("package_name=%FF", "UTF-8"),
                       ("package_name=x&limit=0", "'limit' must be an integer from 1 to 10000"),
                       ("package_name=x&limit=10001", "'limit' must be an integer"),
                       ("package_name=x&limit=2x", "'limit' must be an integer"),
                       ("package_name=x&offset=-1", "'offset' must be an integer from 0"),
                       ("package_name=x&page=3", "accepts package_name, package_version, "
                                                 "limit and offset only"),
                       ("pkg=x", "accepts package_name, package_version")):
        err(stack.request("GET", "/ec2?" + query), 400, why)
    err(stack.request("GET", "/ec2/"), 400, "required")
    r = expect(stack.request("PUT", "/ec2/x"), 405)
    check(set(r.header("allow").replace(" ", "").split(",")) >= {"GET", "POST", "DELETE"}, r)


def running(fragment):
    return statement("inventory", "SELECT coalesce(x.record", fragment)


def test_search_uses_indexes_at_100k_instances(stack):
    ready(stack)
    stack.psql(
        "INSERT INTO ec2 (aws_instance_id, aws_region, aws_account) "
        "SELECT 'load-' || lpad(g::text, 6, '0'), 'eu-west-1', '123456789012' "
        "FROM generate_series(1, 100000) g; "
        "INSERT INTO package SELECT 'load-pkg-' || g, 'v' || v "
        "FROM generate_series(0, 999) g, generate_series(1, 3) v; "
        "INSERT INTO package VALUES ('load-openssl', '3.0'); "
        "INSERT INTO ec2_package SELECT 'load-' || lpad(g::text, 6, '0'), "
        "'load-pkg-' || (g % 1000), 'v' || (g % 3 + 1), 1 FROM generate_series(1, 100000) g; "
        "INSERT INTO ec2_package SELECT 'load-' || lpad(g::text, 6, '0'), 'load-openssl', "
        "'3.0', 2 FROM generate_series(1, 100000) g; "
        "INSERT INTO package VALUES ('load-libc', '2.36'); "
        "INSERT INTO ec2_package SELECT 'load-' || lpad(g::text, 6, '0'), 'load-libc', "
        "'2.36', 3 FROM generate_series(50001, 62000) g; "
        "ANALYZE ec2; ANALYZE package; ANALYZE ec2_package")
    queries = ((running("m.package_name = $1)"), "'load-pkg-7', NULL, 0"),
               (running("m.package_version = $2)"), "'load-pkg-7', 'v2', NULL, 0"))
    for sql, args in queries:
        for mode in ("force_custom_plan", "force_generic_plan"):
            plan = stack.psql("SET plan_cache_mode = %s; PREPARE q AS %s; "
                              "EXPLAIN EXECUTE q(%s)" % (mode, sql, args))
            check("Index" in plan and "ec2_package_by_package" in plan and
                  "Seq Scan" not in plan,
                  "%s: %s" % (mode, plan))
    records = expect(stack.request("GET", "/ec2?package_name=load-pkg-7"), 200).json()["records"]
    check(len(records) == 100 and records[0]["aws_instance_id"] == "load-000007" and
          records[0]["packages"] == pkgs(("load-pkg-7", "v2"), ("load-openssl", "3.0")),
          records[:1])
    r = expect(stack.request("GET", "/ec2?package_name=load-pkg-7&package_version=v2"), 200)
    v2 = [x["aws_instance_id"] for x in records if x["packages"][0]["package_version"] == "v2"]
    check([x["aws_instance_id"] for x in r.json()["records"]] == v2 and len(v2) > 20,
          "the v2 ones: %d" % len(v2))
    page = expect(stack.request("GET", "/ec2?package_name=load-openssl&limit=3&offset=5"),
                  200).json()["records"]
    check([x["aws_instance_id"] for x in page] == ["load-000006", "load-000007", "load-000008"],
          "a page of the 100,000: %r" % page)
    # 12,000 records are about 3.5 MB, over NATS's max_payload (2 MB): they
    # travel in parts and come whole, in order.
    every = expect(stack.request("GET", "/ec2?package_name=load-libc"), 200).json()["records"]
    check(len(every) == 12000 and
          [x["aws_instance_id"] for x in every] == sorted(x["aws_instance_id"] for x in every),
          "all 12,000, ordered: %d" % len(every))
    check(len(expect(stack.request("GET", "/ec2?package_name=load-libc&limit=5000"),
                     200).json()["records"]) == 5000, "5,000 of them")


def test_record_rendered_once(stack):
    """The POST stores the record GET shows; a row written by other means (no
    stored record) is rendered from the tables, the same bytes."""
    ready(stack)
    iid = new_id()
    add(stack, iid, pkgs(("zlib", "1.2"), ("bash", "5.2"), ("zlib", "1.2")))
    stored = stack.psql("SELECT record IS NOT NULL FROM ec2 WHERE aws_instance_id = '%s'" % iid)
    check(stored == "t", "the POST stored the record: %r" % stored)
    first = stack.request("GET", url(iid))
    stack.psql("UPDATE ec2 SET record = NULL WHERE aws_instance_id = '%s'" % iid)
    second = stack.request("GET", url(iid))
    check(first.status == second.status == 200 and first.body == second.body,
          "stored %r, rendered %r" % (first.body, second.body))
    check(first.json()["record"]["packages"] == pkgs(("zlib", "1.2"), ("bash", "5.2")),
          first.json())


def test_events(stack):
    ready(stack)
    rid_add, rid_dup, rid_del, rid_gone = ("inv-" + uuid.uuid4().hex[:8] for _ in range(4))
    iid = new_id()
    add(stack, iid, pkgs(("ev", "2"), ("ev", "1"), ("ev", "2")), headers={"X-Request-Id": rid_add})
    record = get(stack, iid)["record"]
    err(stack.request("POST", url(iid), {"aws_region": "r", "aws_account": "a", "packages": []},
                      {"X-Request-Id": rid_dup}), 400)
    expect(stack.request("DELETE", url(iid), None, {"X-Request-Id": rid_del}), 200)
    err(stack.request("DELETE", url(iid), None, {"X-Request-Id": rid_gone}), 404)
    stack.wait_outbox_empty("inventory")
    events = stack.events("--idle-ms", "700", "events.inventory.>")

    def of(rid):
        return [e for e in events if e["event"]["requestid"] == rid]

    added, deleted = of(rid_add), of(rid_del)
    check(len(added) == 1 and len(deleted) == 1, "one event each: %r" % (added + deleted))
    check(not of(rid_dup) and not of(rid_gone), "a refused change emits nothing")
    check(added[0]["subject"] == "events.inventory.instance.added" and
          deleted[0]["subject"] == "events.inventory.instance.deleted", (added, deleted))
    check(added[0]["stream_seq"] < deleted[0]["stream_seq"], "commit order")
    for e, kind in ((added[0], "added"), (deleted[0], "deleted")):
        ev = e["event"]
        check(ev["source"] == "inventory" and ev["type"] == "inventory.instance." + kind, ev)
        check(ev["data"] == record and list(ev["data"]) == RECORD_KEYS,
              "the record as GET shows it: %r vs %r" % (ev["data"], record))
