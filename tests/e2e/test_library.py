"""The lending library (seed 000) through the gateway: every route, every
error of the contract, the demo's sequence and the one-open-loan rule."""
import json
import threading
import uuid

from common import check, expect, fresh

J = {"Content-Type": "application/json"}


def err(resp, status, code):
    expect(resp, status)
    body = resp.json()
    check(list(body) == ["Code", "Message"] and body["Code"] == code and body["Message"],
          "error shape: %r" % body)
    return body


def add_book(stack, title=None, first="Ursula K.", last="Le Guin"):
    title = title or "Book " + uuid.uuid4().hex[:8]
    r = expect(stack.request("POST", "/api/books", {"Books.Title": title,
                                                    "Authors.FirstName": first,
                                                    "Authors.LastName": last}), 200)
    body = r.json()
    check(list(body) == ["Authors.AuthorID", "Books.BookID"], body)
    return body["Books.BookID"], body["Authors.AuthorID"]


def add_patron(stack, first="Dolly", last="Patron"):
    r = expect(stack.request("POST", "/api/patrons", {"FirstName": first, "LastName": last}), 200)
    return r.json()["Patrons.PatronID"]


def test_index(stack):
    body = expect(stack.request("GET", "/api/"), 200).json()
    check(list(body) == ["description"] and body["description"], body)


def test_add_book_reuses_author(stack):
    last = "Author" + uuid.uuid4().hex[:6]
    b1, a1 = add_book(stack, "First", "Jane", last)
    b2, a2 = add_book(stack, "Second", "Jane", last)
    b3, a3 = add_book(stack, "Third", "John", last)
    check(a1 == a2 and a3 != a1 and b1 < b2 < b3, "author reused: %r" % ([(b1, a1), (b2, a2)],))
    books = expect(stack.request("GET", "/api/books/%d" % a1), 200).json()["books"]
    check(books == [{"Books.BookID": b1, "Books.Title": "First", "Authors.AuthorID": a1,
                     "Authors.FirstName": "Jane", "Authors.LastName": last},
                    {"Books.BookID": b2, "Books.Title": "Second", "Authors.AuthorID": a1,
                     "Authors.FirstName": "Jane", "Authors.LastName": last}], books)
    raw = stack.request("GET", "/api/books/%d" % a3).body
    check(raw.startswith('{"books":[{"Books.BookID":%d,"Books.Title":"Third",' % b3),
          "compact, keys in the original's order: %s" % raw)
    authors = expect(stack.request("GET", "/api/authors"), 200).json()["authors"]
    mine = [a for a in authors if a["Authors.LastName"] == last]
    check(mine == [{"Authors.AuthorID": a1, "Authors.FirstName": "Jane", "Authors.LastName": last},
                   {"Authors.AuthorID": a3, "Authors.FirstName": "John",
                    "Authors.LastName": last}], mine)
    check([a["Authors.AuthorID"] for a in authors] == sorted(a["Authors.AuthorID"]
                                                             for a in authors), "ordered by id")
    check(expect(stack.request("GET", "/api/books/999999"), 200).json() == {"books": []},
          "unknown author: empty list")


def test_concurrent_new_author_created_once(stack):
    last = "Same" + uuid.uuid4().hex[:6]
    out = []
    threads = [threading.Thread(target=lambda i=i: out.append(add_book(stack, "T%d" % i,
                                                                       "Co", last)))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    check(len(out) == 8 and len({a for _, a in out}) == 1, "one author: %r" % out)


def test_book_lists_follow_every_writer(stack):
    """A book as the lists show it (books.doc) is kept by PostgreSQL for any
    writer: a book inserted by SQL, an author renamed by SQL."""
    last = "Sql" + uuid.uuid4().hex[:6]
    b1, a1 = add_book(stack, "By the API", "Ann", last)
    b2 = int(stack.psql("INSERT INTO books (title, authorid) VALUES ('By hand', %d) "
                        "RETURNING bookid" % a1))

    def listed():
        return expect(stack.request("GET", "/api/books/%d" % a1), 200).json()["books"]

    check(listed() == [{"Books.BookID": b, "Books.Title": t, "Authors.AuthorID": a1,
                        "Authors.FirstName": "Ann", "Authors.LastName": last}
                       for b, t in ((b1, "By the API"), (b2, "By hand"))], listed())
    stack.psql("UPDATE authors SET firstname = 'Anne' WHERE authorid = %d" % a1)
    check([b["Authors.FirstName"] for b in listed()] == ["Anne", "Anne"], listed())
    page = expect(stack.request("GET", "/api/books?limit=1&offset=%d" % (
        int(stack.psql("SELECT count(*) FROM books WHERE bookid < %d" % b2)))), 200).json()
    check(page["books"][0]["Books.Title"] == "By hand" and
          page["books"][0]["Authors.FirstName"] == "Anne", page)


def test_add_book_bad_input(stack):
    good = {"Books.Title": "T", "Authors.FirstName": "A", "Authors.LastName": "B"}
    cases = [
        ("{", "invalid JSON"),
        ("[]", "must be a JSON object"),
        (dict(good, **{"Books.Title": 5}), "'Books.Title' must be a string"),
        ({k: v for k, v in good.items() if k != "Authors.LastName"}, "Missing required field 'Authors.LastName'"),
        (dict(good, extra=1), "Unknown field 'extra'"),
        (dict(good, **{"Books.Title": ""}), "must not be empty"),
        (dict(good, **{"Books.Title": "x" * 501}), "at most 500"),
        (dict(good, **{"Books.Title": "a\u0000b"}), "NUL"),
    ]
    before = stack.psql("SELECT count(*) FROM books")
    for body, why in cases:
        b = err(stack.request("POST", "/api/books", body if isinstance(body, dict) else body,
                              J), 400, "BadRequestError")
        check(why in b["Message"], "%r -> %r" % (body, b))
    err(stack.request("POST", "/api/books", "x", {"Content-Type": "text/plain"}), 415,
        "UnsupportedMediaType")
    check(stack.psql("SELECT count(*) FROM books") == before, "nothing written")


def test_injection_is_data(stack):
    title = "'; DROP TABLE books; --"
    b, a = add_book(stack, title, "Robert'); DROP TABLE authors;--", "Tables")
    books = expect(stack.request("GET", "/api/books/%d" % a), 200).json()["books"]
    check(books[0]["Books.Title"] == title, books)


def test_text_is_verbatim_in_page_and_event(stack):
    # Spaces, quotes, backslashes and JSON's own signs inside a title stay as
    # sent: in the page (books.doc, which PostgreSQL stores compact) and in
    # the book.added event (PostgreSQL's json, its blanks dropped by the relay).
    title = 'A  "quoted" title, {with} [signs]: \\ \t tab \u00e9\u20ac  '
    rid = "txt-" + uuid.uuid4().hex[:8]
    r = expect(stack.request("POST", "/api/books", {"Books.Title": title,
                                                    "Authors.FirstName": " Spaced  ",
                                                    "Authors.LastName": "Name"},
                             {"X-Request-Id": rid}), 200).json()
    b, a = r["Books.BookID"], r["Authors.AuthorID"]
    book = {"Books.BookID": b, "Books.Title": title, "Authors.AuthorID": a,
            "Authors.FirstName": " Spaced  ", "Authors.LastName": "Name"}
    raw = expect(stack.request("GET", "/api/books/%d" % a), 200).body
    check(json.loads(raw)["books"] == [book], raw)
    check(raw == json.dumps({"books": [book]}, separators=(",", ":"), ensure_ascii=False),
          "compact, nothing else changed: %s" % raw)
    stack.wait_outbox_empty("library")
    added = [e["event"]["data"] for e in stack.events("--idle-ms", "700",
                                                      "events.library.book.added")
             if e["event"]["requestid"] == rid]
    check(added == [book], added)


def test_lists_paging(stack):
    for _ in range(3):
        add_book(stack)
    every = expect(stack.request("GET", "/api/books"), 200).json()["books"]
    ids = [b["Books.BookID"] for b in every]
    check(ids == sorted(ids) and len(ids) >= 3, "ordered by id")
    page = expect(stack.request("GET", "/api/books?limit=2&offset=1"), 200).json()["books"]
    check([b["Books.BookID"] for b in page] == ids[1:3], page)
    check(expect(stack.request("GET", "/api/books?offset=%d" % len(ids)), 200).json()
          == {"books": []}, "past the end")
    for path in ("/api/books", "/api/authors", "/api/patrons", "/api/lending",
                 "/api/books/1"):
        for q in ("limit=0", "limit=-1", "limit=x", "offset=-1", "offset=1.5", "limit=10001",
                  "limit=99999999999"):
            b = err(stack.request("GET", "%s?%s" % (path, q)), 400, "BadRequestError")
            check(q.split("=")[0] in b["Message"], b)
    err(stack.request("GET", "/api/books/abc"), 400, "BadRequestError")


def test_patrons(stack):
    p1 = add_patron(stack, "Ada", "Lovelace")
    r = expect(stack.request("POST", "/api/patrons", {"Patrons.FirstName": "Pierre",
                                                      "Patrons.LastName": "Curie"}), 200)
    p2 = r.json()["Patrons.PatronID"]
    check(p2 > p1, "ids grow")
    patrons = expect(stack.request("GET", "/api/patrons/"), 200).json()["patrons"]
    check({"Patrons.PatronID": p2, "Patrons.FirstName": "Pierre",
           "Patrons.LastName": "Curie"} in patrons, patrons)
    for body in ({"Patrons.FirstName": "Pierre"}, {"FirstName": "A", "Patrons.LastName": "B"},
                 {"FirstName": "A"}, {"FirstName": "A", "LastName": "B", "Age": 3},
                 {"FirstName": 1, "LastName": "B"}, {"FirstName": "", "LastName": "B"}, []):
        err(stack.request("POST", "/api/patrons", body), 400, "BadRequestError")
    expect(stack.request("DELETE", "/api/patrons/%d" % p1), 200, "null")
    err(stack.request("DELETE", "/api/patrons/%d" % p1), 404, "NotFoundError")
    err(stack.request("DELETE", "/api/patrons/x"), 400, "BadRequestError")


def test_lend_and_return(stack):
    book, _ = add_book(stack)
    patron, other = add_patron(stack), add_patron(stack, "Other", "One")
    expect(stack.request("PUT", "/api/lending/%d/%d" % (book, patron)), 200, "null")
    err(stack.request("PUT", "/api/lending/%d/%d" % (book, other)), 409, "ConflictError")
    err(stack.request("PUT", "/api/lending/%d/%d" % (book, patron)), 409, "ConflictError")
    loans = expect(stack.request("GET", "/api/lending"), 200).json()["books"]
    mine = [l for l in loans if l["Books.BookID"] == book]
    check(len(mine) == 1, loans)
    loan = mine[0]
    check(list(loan) == ["Lending.LendingID", "Books.BookID", "Books.Title", "Authors.AuthorID",
                         "Authors.FirstName", "Authors.LastName", "Patrons.PatronID",
                         "Patrons.FirstName", "Patrons.LastName", "Lending.Lent",
                         "Lending.Returned"], loan)
    today = stack.psql("SELECT to_char(current_date, 'YYYY-MM-DD')")
    check(loan["Lending.Lent"] == today and loan["Lending.Returned"] is None, loan)
    # The patron with a book out cannot go.
    err(stack.request("DELETE", "/api/patrons/%d" % patron), 409, "ConflictError")
    err(stack.request("DELETE", "/api/lending/%d/%d" % (book, other)), 404, "NotFoundError")
    expect(stack.request("DELETE", "/api/lending/%d/%d" % (book, patron)), 200, "null")
    err(stack.request("DELETE", "/api/lending/%d/%d" % (book, patron)), 404, "NotFoundError")
    check(not [l for l in expect(stack.request("GET", "/api/lending"), 200).json()["books"]
               if l["Books.BookID"] == book], "returned: not listed")
    check(stack.psql("SELECT to_char(returned, 'YYYY-MM-DD') FROM lending WHERE bookid = %d"
                     % book) == today, "Returned set to today")
    # Lent again after the return; then the patron, books returned, can go.
    expect(stack.request("PUT", "/api/lending/%d/%d" % (book, other)), 200, "null")
    expect(stack.request("DELETE", "/api/lending/%d/%d" % (book, other)), 200, "null")
    expect(stack.request("DELETE", "/api/patrons/%d" % patron), 200, "null")
    check(stack.psql("SELECT count(*) FROM lending WHERE bookid = %d" % book) == "2",
          "history kept")
    err(stack.request("PUT", "/api/lending/999999/%d" % other), 404, "NotFoundError")
    err(stack.request("PUT", "/api/lending/%d/999999" % book), 404, "NotFoundError")
    err(stack.request("PUT", "/api/lending/a/%d" % other), 400, "BadRequestError")
    err(stack.request("DELETE", "/api/lending/%d/b" % book), 400, "BadRequestError")


def test_one_open_loan_under_concurrency(stack):
    book, _ = add_book(stack)
    patrons = [add_patron(stack, "P%d" % i, "Racer") for i in range(16)]
    statuses = []
    barrier = threading.Barrier(len(patrons))

    def lend(p):
        barrier.wait(10)
        statuses.append(stack.request("PUT", "/api/lending/%d/%d" % (book, p)).status)

    threads = [threading.Thread(target=lend, args=(p,)) for p in patrons]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    check(sorted(statuses) == [200] + [409] * 15, "exactly one lend wins: %r" % statuses)
    check(stack.psql("SELECT count(*) FROM lending WHERE bookid = %d AND returned IS NULL"
                     % book) == "1", "one open loan in the database")


def test_gathered_loans_answer_each_request(stack):
    """Loans that arrive in the same turn of the library's loop share a
    statement (request_gather; 50 at once here): each request still gets its
    own answer and its own event, and a statement that fails is run again
    for each request alone, so only the request that breaks it fails."""
    books = [add_book(stack)[0] for _ in range(24)]
    spare = add_book(stack)[0]
    patron, other = add_patron(stack, "G", "One"), add_patron(stack, "G", "Two")
    tag = uuid.uuid4().hex[:8]
    # Each book lent by two patrons at once (one wins), a book and a patron
    # that do not exist, and returns of loans that are not open.
    asks = [("PUT", b, p, "%s-%d-%d" % (tag, b, p)) for b in books for p in (patron, other)]
    asks += [("PUT", 2**31 - 1, patron, tag + "-nobook"),
             ("PUT", spare, 2**31 - 1, tag + "-nopatron"),
             ("DELETE", books[1], 2**31 - 1, tag + "-noloan")]
    answers = {}
    barrier = threading.Barrier(len(asks))

    def run(method, book, who, rid):
        barrier.wait(10)
        r = stack.request(method, "/api/lending/%d/%d" % (book, who), None,
                          {"X-Request-Id": rid})
        answers[rid] = (r.status, r.json())

    threads = [threading.Thread(target=run, args=a) for a in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for b in books:
        got = sorted(answers["%s-%d-%d" % (tag, b, p)][0] for p in (patron, other))
        check(got == [200, 409], "book %d: %r" % (b, got))
    check(answers[tag + "-nobook"][0] == 404 and answers[tag + "-nopatron"][0] == 404 and
          answers[tag + "-noloan"][0] == 404, answers)
    winners = {b: p for b in books for p in (patron, other)
               if answers["%s-%d-%d" % (tag, b, p)][0] == 200}
    open_loans = stack.psql("SELECT string_agg(bookid || ':' || patronid, ',' ORDER BY bookid) "
                            "FROM lending WHERE returned IS NULL AND bookid = ANY('{%s}')"
                            % ",".join(map(str, books)))
    check(open_loans == ",".join("%d:%d" % (b, winners[b]) for b in books), open_loans)

    # A statement that fails: a trigger refuses one book's return; the other
    # returns gathered with it still succeed.
    stack.psql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
               "$$BEGIN RAISE EXCEPTION 'refused'; END$$; "
               "CREATE TRIGGER refuse BEFORE UPDATE ON lending FOR EACH ROW "
               "WHEN (OLD.bookid = %d) EXECUTE FUNCTION refuse()" % books[5])
    try:
        barrier = threading.Barrier(len(books))
        asks = [("DELETE", b, winners[b], "%s-r-%d" % (tag, b)) for b in books]
        threads = [threading.Thread(target=run, args=a) for a in asks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    finally:
        stack.psql("DROP TRIGGER refuse ON lending; DROP FUNCTION refuse()")
    statuses = {b: answers["%s-r-%d" % (tag, b)][0] for b in books}
    check(statuses == {b: 500 if b == books[5] else 200 for b in books}, statuses)

    stack.wait_outbox_empty("library")
    events = [e for e in stack.events("--idle-ms", "700", "events.library.>")
              if (e["event"]["requestid"] or "").startswith(tag)]
    lent = sorted((e["event"]["requestid"], e["event"]["data"]["Books.BookID"],
                   e["event"]["data"]["Patrons.PatronID"]) for e in events
                  if e["subject"] == "events.library.book.lent")
    check(lent == sorted(("%s-%d-%d" % (tag, b, p), b, p) for b, p in winners.items()),
          "one lent event per winner, with its request id: %r" % lent)
    returned = sorted((e["event"]["requestid"], e["event"]["data"]["Books.BookID"])
                      for e in events if e["subject"] == "events.library.book.returned")
    check(returned == sorted(("%s-r-%d" % (tag, b), b) for b in books if b != books[5]),
          "one returned event per return: %r" % returned)


def test_wrong_method_and_unknown_path(stack):
    """The gateway's own errors on library routes speak Chalice too."""
    resp = stack.request("POST", "/api/lending")
    err(resp, 405, "MethodNotAllowedError")
    check("GET" in (resp.header("allow") or ""), resp)
    expect(stack.request("GET", "/api/nothing"), 404)


def test_events(stack):
    rid = "lib-" + uuid.uuid4().hex[:8]
    h = {"X-Request-Id": rid}
    book, _ = add_book(stack)
    r = stack.request("POST", "/api/patrons", {"FirstName": "E", "LastName": "V"}, h)
    patron = r.json()["Patrons.PatronID"]
    expect(stack.request("PUT", "/api/lending/%d/%d" % (book, patron), None, h), 200)
    expect(stack.request("DELETE", "/api/lending/%d/%d" % (book, patron), None, h), 200)
    expect(stack.request("DELETE", "/api/patrons/%d" % patron, None, h), 200)
    stack.wait_outbox_empty("library")
    mine = [e for e in stack.events("--idle-ms", "700", "events.library.>")
            if e["event"]["requestid"] == rid]
    check([e["subject"] for e in mine] == ["events.library.patron.added",
                                           "events.library.book.lent",
                                           "events.library.book.returned",
                                           "events.library.patron.deleted"],
          [e["subject"] for e in mine])
    lent = mine[1]["event"]["data"]
    check(lent["Books.BookID"] == book and lent["Patrons.PatronID"] == patron and
          lent["Lending.Returned"] is None, lent)
    check(mine[2]["event"]["data"]["Lending.Returned"] is not None, mine[2])


def test_demo_sequence(stack):
    """The original demo's sequence (trailing-slash URLs) on the loaded catalogue."""
    import os
    import subprocess
    from harness import ROOT
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(stack.pg_port), PGUSER="postgres",
               PGDATABASE="app")
    seed = subprocess.run([os.path.join(ROOT, "scripts", "seed-library.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    check(seed.returncode == 0 and seed.stdout.startswith("Added "), seed.stdout + seed.stderr)
    demo = subprocess.run([os.path.join(ROOT, "scripts", "demo-library.py"),
                           "http://127.0.0.1:%d/api/" % stack.http_port],
                          capture_output=True, text=True, timeout=60)
    out = demo.stdout
    check(demo.returncode == 0, out + demo.stderr)
    n_books = int(stack.psql("SELECT count(*) FROM books"))
    check("Got %d books" % n_books in out and "Found " in out, out[:500])
    check("Adding patron 'Dolly Patron'" in out and "Books currently lent are:" in out, out)
    # The exact HTTP sequence, as the gateway logged it.
    import json as _json
    import re
    seq = []
    with open(os.path.join(stack.tmp, "gateway.log")) as f:
        for line in f:
            m = re.match(r"(GET|POST|PUT|DELETE) (/api/\S*) -> (\d+)",
                         _json.loads(line).get("msg", ""))
            if m:
                seq.append((m.group(1), re.sub(r"\d+", "N", m.group(2)), m.group(3)))
    check(seq[-7:] == [("GET", "/api/books/", "200"), ("GET", "/api/patrons/", "200"),
                       ("POST", "/api/patrons/", "200"), ("GET", "/api/patrons/", "200"),
                       ("PUT", "/api/lending/N/N", "200"), ("GET", "/api/lending/", "200"),
                       ("DELETE", "/api/lending/N/N", "200")], seq[-7:])


@fresh
def test_library_stopped_gives_chalice_503(stack):
    check(stack.stop("library") == 0, "library exits 0")
    err(stack.request("GET", "/api/books"), 503, "ServiceUnavailableError")
    expect(stack.request("GET", "/api/items"), 200)  # the tracker is unaffected
