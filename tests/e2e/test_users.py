"""The users API (seeds 003 and 004 merged): seed 003's curl examples, seed
004's Postman sequence in its order, and bad input."""
import uuid

from common import check, expect


def test_seed_003_curl_examples(stack):
    r = expect(stack.request("POST", "/users", '{"name": "John", "userId": "someUserId"}',
                             {"Content-Type": "application/json"}), 200)
    body = r.json()
    check(body["userId"] == "someUserId" and body["name"] == "John" and
          isinstance(body["id"], int), body)
    got = expect(stack.request("GET", "/users/someUserId"), 200).json()
    check(got == dict(body, books=[]), got)
    missing = expect(stack.request("GET", "/users/nobody-" + uuid.uuid4().hex), 404)
    check(missing.body == '{"error":"Could not find user with provided \\"userId\\""}',
          missing.body)
    # A given userId that exists is replaced: same id, the new name.
    again = expect(stack.request("POST", "/users", {"userId": "someUserId",
                                                    "name": "Johnny"}), 200).json()
    check(again == {"id": body["id"], "userId": "someUserId", "name": "Johnny"}, again)


def test_seed_004_postman_sequence(stack):
    # 1. GET / is not part of this API (the library owns /api/); 2..6 follow.
    danny = expect(stack.request("POST", "/users", {"name": "Danny"}), 200).json()
    check(danny["userId"] == str(danny["id"]) and danny["id"] >= 3, danny)
    alice = expect(stack.request("GET", "/users/0"), 200).json()
    check(alice == {"id": 0, "userId": "0", "name": "Alice", "books": []}, alice)
    every = expect(stack.request("GET", "/users"), 200)
    keys = list(every.json())
    check(keys[:3] == ["0", "1", "2"] and str(danny["id"]) in keys, keys)
    check(every.json()["1"] == {"name": "Bob", "books": []}, every.json()["1"])
    check(expect(stack.request("DELETE", "/users/0"), 200).json() == {"success": True}, "del")
    r = stack.request("POST", "/users/0/books", {"isbn": "1234567", "name": "A new book",
                                                 "author": "It's me"})
    check(expect(r, 200).json() == {"success": False}, "the user is gone: " + r.body)
    check(expect(stack.request("DELETE", "/users/0"), 200).json() == {"success": False},
          "deleting twice")
    check("0" not in expect(stack.request("GET", "/users"), 200).json(), "deleted ids absent")


def test_books_of_a_user(stack):
    uid = "reader-" + uuid.uuid4().hex[:6]
    expect(stack.request("POST", "/users", {"userId": uid, "name": "Reader"}), 200)
    books = [{"isbn": "978-0", "name": "Dune", "author": "Frank Herbert"},
             {"isbn": "978-0", "name": "Dune", "author": "Frank Herbert"},
             {"isbn": "978-1", "name": "Emma", "author": "Jane Austen"}]
    for b in books:
        check(expect(stack.request("POST", "/users/%s/books" % uid, b), 200).json()
              == {"success": True}, b)
    got = expect(stack.request("GET", "/users/%s" % uid), 200).json()
    check(got["books"] == books, "in order, duplicates kept: %r" % got)
    check(expect(stack.request("GET", "/users"), 200).json()[uid] ==
          {"name": "Reader", "books": books}, "listed with books")
    for bad in ({"isbn": "1", "name": "x"}, {"isbn": 1, "name": "x", "author": "y"},
                {"isbn": "1", "name": "x", "author": "y", "year": 2000}, "{"):
        expect(stack.request("POST", "/users/%s/books" % uid, bad,
                             {"Content-Type": "application/json"}), 400)
    check(len(expect(stack.request("GET", "/users/%s" % uid), 200).json()["books"]) == 3,
          "nothing written")


def test_bad_input(stack):
    before = stack.psql("SELECT count(*) FROM users")
    for body, why in (({}, 'Please provide both \\"userId\\" and \\"name\\"'),
                      ({"userId": "x"}, "Please provide both"),
                      ({"name": ""}, "Please provide both"),
                      ({"name": None}, "'name' must be a string"),
                      ({"name": "a", "userId": 5}, "'userId' must be a string"),
                      ({"name": "a", "userId": ""}, "Please provide both"),
                      ({"name": "a" * 201}, "at most 200"),
                      ({"name": "a", "role": "admin"}, "Unknown field 'role'"),
                      ("[1]", "JSON object"), ("{", "invalid JSON")):
        r = expect(stack.request("POST", "/users", body, {"Content-Type": "application/json"}),
                   400)
        check(why in r.body and list(r.json()) == ["error"], "%r -> %s" % (body, r.body))
    check(stack.psql("SELECT count(*) FROM users") == before, "nothing written")


def test_hostile_strings_are_data(stack):
    uid = "x'; DROP TABLE users; --"
    body = expect(stack.request("POST", "/users", {"userId": uid, "name": "Bobby \"Tables\" \u00e9"}),
                  200).json()
    got = expect(stack.request("GET", "/users/x%27%3B%20DROP%20TABLE%20users%3B%20--"),
                 200).json()
    check(got["userId"] == uid and got["name"] == "Bobby \"Tables\" \u00e9" and
          got["id"] == body["id"], got)


def test_user_events(stack):
    rid = "u-" + uuid.uuid4().hex[:8]
    h = {"X-Request-Id": rid}
    uid = "ev-" + uuid.uuid4().hex[:6]
    expect(stack.request("POST", "/users", {"userId": uid, "name": "E"}, h), 200)
    expect(stack.request("POST", "/users", {"userId": uid, "name": "F"}, h), 200)
    expect(stack.request("POST", "/users/%s/books" % uid, {"isbn": "1", "name": "B",
                                                           "author": "A"}, h), 200)
    expect(stack.request("DELETE", "/users/%s" % uid, None, h), 200)
    stack.wait_outbox_empty("tracker")
    mine = [e for e in stack.events("--idle-ms", "700", "events.tracker.user.>")
            if e["event"]["requestid"] == rid]
    check([e["subject"] for e in mine] == ["events.tracker.user.created",
                                           "events.tracker.user.replaced",
                                           "events.tracker.user.book_added",
                                           "events.tracker.user.deleted"],
          [e["subject"] for e in mine])
    check(mine[0]["event"]["data"]["userId"] == uid and mine[1]["event"]["data"]["name"] == "F",
          mine[:2])
