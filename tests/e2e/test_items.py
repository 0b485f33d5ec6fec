"""test_items.py - every work-items case of the contract, over HTTP."""
import json

from common import check, expect, new_item

KEYS = ["archived", "description", "guide", "id", "name", "status"]


def test_create_then_read(stack):
    r = expect(stack.request("POST", "/api/items", {
        "name": "Me", "guide": "dotnet", "description": "Write tests", "status": "open",
        "archived": False}), 200)
    check(r.body.isdigit(), "POST answers a bare number: %r" % r.body)
    item = expect(stack.request("GET", "/api/items/" + r.body), 200).json()
    check(item == {"archived": False, "description": "Write tests", "guide": "dotnet",
                   "id": r.body, "name": "Me", "status": "open"}, item)
    check(list(json.loads(stack.request("GET", "/api/items/" + r.body).body)) == KEYS,
          "keys sorted")


def test_list_filters_and_order(stack):
    ids = [new_item(stack, description="n%d" % i) for i in range(3)]
    expect(stack.request("PUT", "/api/items/%d:archive" % ids[1]), 200, "null")
    everything = expect(stack.request("GET", "/api/items"), 200).json()
    got = [int(i["id"]) for i in everything]
    check(got == sorted(got), "ordered by id: %r" % got)
    for value, want in (("true", True), ("false", False), ("1", True), ("0", False),
                        ("True", True)):
        items = expect(stack.request("GET", "/api/items?archived=" + value), 200).json()
        check(items and all(i["archived"] is want for i in items), (value, items))
    archived = [int(i["id"]) for i in stack.request("GET", "/api/items?archived=true").json()]
    check(ids[1] in archived and ids[0] not in archived, archived)
    r = expect(stack.request("GET", "/api/items?archived=maybe"), 400)
    check("archived" in r.json()["error"], r)


def test_get_errors(stack):
    r = expect(stack.request("GET", "/api/items/999999"), 404)
    check(isinstance(r.json()["error"], str), r)
    r = expect(stack.request("GET", "/api/items/abc"), 400)
    check("integer" in r.json()["error"], r)
    expect(stack.request("GET", "/api/items/99999999999"), 400)


def test_create_validation(stack):
    good = {"name": "n", "guide": "g", "description": "d", "status": "s"}
    before = stack.psql("SELECT count(*) FROM work_items")
    for field in good:
        body = dict(good)
        del body[field]
        r = expect(stack.request("POST", "/api/items", body), 400)
        check(field in r.json()["error"], r)
    for bad in (None, 1, True, [], {}):
        r = expect(stack.request("POST", "/api/items", dict(good, name=bad)), 400)
        check("name" in r.json()["error"], r)
    r = expect(stack.request("POST", "/api/items", dict(good, colour="red")), 400)
    check("colour" in r.json()["error"], r)
    r = expect(stack.request("POST", "/api/items", dict(good, guide="x" * 46)), 400)
    check("guide" in r.json()["error"], r)
    expect(stack.request("POST", "/api/items", dict(good, name="é" * 46)), 400)
    expect(stack.request("POST", "/api/items", "{not json",
                         {"Content-Type": "application/json"}), 400)
    expect(stack.request("POST", "/api/items", "[1,2]",
                         {"Content-Type": "application/json"}), 400)
    expect(stack.request("POST", "/api/items", '{"name":"a","name":"b"}',
                         {"Content-Type": "application/json"}), 400)
    expect(stack.request("POST", "/api/items", None), 400)
    check(stack.psql("SELECT count(*) FROM work_items") == before, "nothing written")


def test_create_edges_accepted(stack):
    i = new_item(stack, name="é" * 45, guide="g" * 45, description="", status="")
    item = stack.request("GET", "/api/items/%d" % i).json()
    check(item["name"] == "é" * 45 and item["description"] == "", item)
    i = new_item(stack, archived=True, id="77")
    check(stack.request("GET", "/api/items/%d" % i).json()["archived"] is False, "ignored")
    evil = "'; DROP TABLE work_items; --"
    i = new_item(stack, description=evil, name="<b>\"x\"</b>")
    item = stack.request("GET", "/api/items/%d" % i).json()
    check(item["description"] == evil and item["name"] == "<b>\"x\"</b>", item)


def test_archive(stack):
    i = new_item(stack)
    expect(stack.request("PUT", "/api/items/%d:archive" % i), 200, "null")
    check(stack.request("GET", "/api/items/%d" % i).json()["archived"] is True, "archived")
    expect(stack.request("PUT", "/api/items/%d:archive" % i), 200, "null")
    r = expect(stack.request("PUT", "/api/items/999999:archive"), 404)
    check(isinstance(r.json()["error"], str), r)
    expect(stack.request("PUT", "/api/items/%d:garbage" % i), 400,
           '{"error":"Unrecognized action garbage. The only allowed action is \'archive\'."}')
    expect(stack.request("PUT", "/api/items/%d" % i), 400,
           '{"error":"Unrecognized action None. The only allowed action is \'archive\'."}')
    expect(stack.request("PUT", "/api/items/x:archive"), 400)


def test_a_list_larger_than_the_reply_buffer_comes_whole(stack):
    """Replies are serialised into a 64 KiB buffer first; a larger one (here
    about 200 KiB of non-ASCII text) is serialised apart, whole and intact."""
    text = "é€ \"q\" " * 40
    stack.psql("INSERT INTO work_items (username, guide, description, status) "
               "SELECT 'big', 'g', '%s' || i, 's' FROM generate_series(1, 600) i" % text)
    r = expect(stack.request("GET", "/api/items?archived=false"), 200)
    check(len(r.body) > 128 * 1024, "larger than the buffer: %d bytes" % len(r.body))
    big = [i for i in r.json() if i["name"] == "big"]
    check(len(big) == 600, "every row: %d" % len(big))
    check(sorted(i["description"] for i in big) == sorted(text + str(i) for i in range(1, 601)),
          "text intact")
    small = expect(stack.request("GET", "/api/items/%s" % big[0]["id"]), 200).json()
    check(small == big[0], (small, big[0]))


def test_a_list_over_max_payload_comes_in_parts(stack):
    """About 6 MB of items, three times NATS's max_payload (2 MB): the
    tracker sends the list in parts, split inside multi-byte characters, and
    the gateway answers it whole and in order."""
    text = "ü€𝄞 <\",\\>" * 100
    stack.psql("INSERT INTO work_items (username, guide, description, status) "
               "SELECT 'huge', 'g', '%s' || i, 's' FROM generate_series(1, 3000) i" % text)
    r = expect(stack.request("GET", "/api/items?archived=false", timeout=30), 200)
    check(len(r.body.encode()) > 5 * 1024 * 1024, "over 5 MB: %d bytes" % len(r.body))
    items = r.json()
    huge = [i for i in items if i["name"] == "huge"]
    check([i["description"] for i in huge] == [text + str(i) for i in range(1, 3001)],
          "every row intact, in order: %d" % len(huge))
    check([int(i["id"]) for i in items] == sorted(int(i["id"]) for i in items), "by id")
