"""The users API (seeds 003 and 004 merged): seed 003's curl examples, seed
004's Postman sequence in its order, and bad input."""
import uuid
from concurrent.futures import ThreadPoolExecutor

from common import check, expect, statement
from harness import wait_until


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


def test_books_kept_with_the_user(stack):
    """users.books, kept by each add, answers as user_books would: for books
    added at once, for a user whose books were written by SQL, and byte for
    byte when rendered from the table instead."""
    uid = "shelf-" + uuid.uuid4().hex[:6]
    pk = expect(stack.request("POST", "/users", {"userId": uid, "name": "Shelf"}), 200).json()["id"]
    stack.psql("INSERT INTO user_books (user_pk, isbn, name, author) VALUES "
               "(%d, 'sql-1', 'By hand', 'psql'), (%d, 'sql-2', 'By hand', 'psql')" % (pk, pk))

    def add(i):
        return expect(stack.request("POST", "/users/%s/books" % uid,
                                    {"isbn": "c-%02d" % i, "name": "Book %d" % i,
                                     "author": "Writer"}), 200).json()

    with ThreadPoolExecutor(8) as pool:
        check(all(r == {"success": True} for r in pool.map(add, range(20))), "20 adds")
        # Adds that begin while another add (the service's own statement, run
        # by hand) holds the user's row, and read a snapshot without its book:
        # they must still append after it, on both connections.
        add_sql = statement("tracker", "WITH u AS", "INSERT INTO user_books")
        s = stack.psql_session()
        try:
            s.stdin.write("PREPARE add(text, text, text, text, text) AS %s;\nBEGIN;\n"
                          "EXECUTE add('%s', 'sql-3', 'By hand', 'psql', NULL);\n"
                          "SELECT 'added';\n" % (add_sql, uid))
            s.stdin.flush()
            lines = [s.stdout.readline().strip() for _ in range(2)]
            check(lines[0].isdigit() and lines[1] == "added", "an add in flight: %r" % lines)
            waiting = pool.map(add, range(20, 22))  # one per connection
            wait_until(lambda: int(stack.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%%INSERT INTO user_books%%'")) >= 2, 10, "two adds waiting")
        finally:
            s.stdin.write("COMMIT;\n\\q\n")
            s.stdin.flush()
            s.wait(10)
        check(all(r == {"success": True} for r in waiting), "2 waiting adds")
    stored = stack.request("GET", "/users/%s" % uid)
    in_table = stack.psql("SELECT string_agg(isbn, ' ' ORDER BY id) FROM user_books "
                          "WHERE user_pk = %d" % pk).split()
    isbns = [b["isbn"] for b in expect(stored, 200).json()["books"]]
    check(isbns[:2] == ["sql-1", "sql-2"] and
          sorted(isbns[2:]) == ["c-%02d" % i for i in range(22)] + ["sql-3"],
          "every book once: %r" % isbns)
    check(isbns == in_table, "stored in the table's order: %r vs %r" % (isbns, in_table))
    stack.psql("UPDATE users SET books = NULL WHERE id = %d" % pk)
    rendered = stack.request("GET", "/users/%s" % uid)
    check(stored.body == rendered.body, "stored %r, rendered %r" % (stored.body, rendered.body))


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
