"""test_elwing.py - the Elwing work-item client's exact request sequence
(seed-apis.md 3.5), with its preflights, checked as the browser would."""
from concurrent.futures import ThreadPoolExecutor

from common import check

ORIGIN = "http://localhost:3000"


def call(stack, method, path, body=None, preflight_headers=None):
    """What fetch() does: a preflight for non-simple requests, then the call."""
    if preflight_headers is not None:
        h = {"Origin": ORIGIN, "Access-Control-Request-Method": method}
        if preflight_headers:
            h["Access-Control-Request-Headers"] = preflight_headers
        p = stack.request("OPTIONS", path, headers=h)
        check(p.status == 200, "preflight %s %s: %r" % (method, path, p))
        check(p.header("access-control-allow-origin") == ORIGIN, p.headers)
        check(method in p.header("access-control-allow-methods"), p.headers)
        if preflight_headers:
            check(p.header("access-control-allow-headers") == preflight_headers, p.headers)
    headers = {"Origin": ORIGIN}
    if body is not None:
        headers["content-type"] = "application/json"
    r = stack.request(method, path, body, headers)
    check(r.status == 200, "%s %s: %r" % (method, path, r))
    check(r.body != "", "Elwing throws on an empty body")
    check(r.header("access-control-allow-origin") == ORIGIN, r.headers)
    return r.json()


def test_elwing_sequence(stack):
    call(stack, "GET", "/api/items")
    call(stack, "GET", "/api/items?archived=false")
    new_id = call(stack, "POST", "/api/items",
                  '{"name":"Me","guide":"dotnet","description":"Try Elwing",'
                  '"status":"new","archived":false}', preflight_headers="content-type")
    check(isinstance(new_id, int), new_id)
    active = call(stack, "GET", "/api/items?archived=false")
    check(any(i["id"] == str(new_id) and i["name"] == "Me" for i in active), active)
    second = call(stack, "POST", "/api/items",
                  '{"name":"You","guide":"rust","description":"Second","status":"",'
                  '"archived":false}', preflight_headers="content-type")
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda i: call(stack, "PUT", "/api/items/%d:archive" % i,
                                            preflight_headers=""), [new_id, second]))
    check(done == [None, None], done)
    active = call(stack, "GET", "/api/items?archived=false")
    check(all(i["id"] not in (str(new_id), str(second)) for i in active), active)
    archived = call(stack, "GET", "/api/items?archived=true")
    check({str(new_id), str(second)} <= {i["id"] for i in archived}, archived)
