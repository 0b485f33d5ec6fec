"""test_library_seed.py - the catalogue loader (scripts/seed-library.py): the
shipped catalogue, Open Library's subjects format, idempotence, the outbox
events, and malformed files refused with nothing loaded. Each test loads into a
database of its own, created on the stack's PostgreSQL and migrated with
scripts/migrate.sh, so no other module's rows are seen or touched."""
import itertools
import json
import os
import subprocess
import sys

from common import check
from harness import ROOT

LOADER = os.path.join(ROOT, "scripts", "seed-library.py")
MIGRATE = os.path.join(ROOT, "scripts", "migrate.sh")
CATALOGUE = os.path.join(ROOT, "data", "library", "catalogue.json")
BOOK_KEYS = ["Books.BookID", "Books.Title", "Authors.AuthorID", "Authors.FirstName",
             "Authors.LastName"]
_serial = itertools.count(1)


def pg_env(stack, db):
    return dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(stack.pg_port),
                PGUSER="postgres", PGDATABASE=db)


def new_db(stack):
    """An empty, migrated database for one test."""
    db = "library_seed_%d" % next(_serial)
    stack.psql("DROP DATABASE IF EXISTS %s" % db, db="postgres")
    stack.psql("CREATE DATABASE %s" % db, db="postgres")
    subprocess.run([MIGRATE], env=pg_env(stack, db), check=True,
                   stdout=subprocess.DEVNULL, timeout=60)
    return db


def write(stack, name, content):
    """A file in the stack's folder: bytes as they are, a str as UTF-8, else JSON."""
    if not isinstance(content, (str, bytes)):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path = os.path.join(stack.tmp, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


def seed(stack, db, path=None):
    return subprocess.run([sys.executable, LOADER] + ([path] if path else []),
                          env=pg_env(stack, db), capture_output=True, text=True, timeout=120)


def added(out):
    """The loader's last stdout line, checked to be its summary."""
    check(out.returncode == 0, "loader exit %d: %s" % (out.returncode, out.stderr))
    lines = out.stdout.splitlines()
    check(lines and lines[-1].startswith("Added "), "summary line: %r" % out.stdout)
    return lines[-1]


def query(stack, db, sql):
    """The JSON value of one SQL expression."""
    return json.loads(stack.psql("SELECT coalesce((%s), '[]'::json)" % sql, db=db))


def counts(stack, db):
    return stack.psql("SELECT (SELECT count(*) FROM books), (SELECT count(*) FROM authors),"
                      " (SELECT count(*) FROM outbox)", db=db)


def books(stack, db):
    """[[title, firstname, lastname]...] in BookID order."""
    return query(stack, db, "SELECT json_agg(json_build_array(b.title, a.firstname, "
                 "a.lastname) ORDER BY b.bookid) FROM books b JOIN authors a USING (authorid)")


def subjects(works):
    """A file as openlibrary.org/subjects/<name>.json returns it."""
    return {"key": "/subjects/spiders", "name": "spiders", "subject_type": "subject",
            "work_count": len(works), "works": works}


def work(title, *names):
    return {"key": "/works/OL%dW" % next(_serial), "title": title, "edition_count": 1,
            "cover_id": None, "authors": [{"key": "/authors/OL%dA" % next(_serial),
                                           "name": n} for n in names]}


def test_catalogue_loads_into_empty_library(stack):
    with open(CATALOGUE) as f:
        doc = json.load(f)
    works = doc["works"]
    check(len(works) >= 220, "catalogue holds %d works" % len(works))
    check(all(w["title"].isascii() and w["authors"][0]["name"].isascii() for w in works),
          "catalogue is ASCII")
    db = new_db(stack)
    out = seed(stack, db)                      # no argument: the shipped catalogue
    line = added(out)
    n_books = int(stack.psql("SELECT count(*) FROM books", db=db))
    n_authors = int(stack.psql("SELECT count(*) FROM authors", db=db))
    check(n_books >= 200, "%d books" % n_books)
    check(out.stdout == "Added %d books and %d authors.\n" % (n_books, n_authors),
          "exact output: %r" % out.stdout)
    check(line == "Added %d books and %d authors." % (n_books, n_authors), line)
    names = {w["authors"][0]["name"] for w in works}
    check(n_authors == len(names), "%d authors, %d distinct names" % (n_authors, len(names)))
    dup = stack.psql("SELECT count(*) FROM (SELECT title, authorid FROM books "
                     "GROUP BY 1, 2 HAVING count(*) > 1) d", db=db)
    check(dup == "0", "no book twice: %s" % dup)
    # Books come in the file's order, each with its own author's split name.
    want = []
    for w in works:
        parts = w["authors"][0]["name"].split()
        row = [w["title"], " ".join(parts[:-1]), parts[-1]]
        if row not in want:
            want.append(row)
    check(books(stack, db) == want, "books in file order with their authors")


def test_loading_twice_adds_nothing(stack):
    db = new_db(stack)
    first = added(seed(stack, db))
    check(first != "Added 0 books and 0 authors.", first)
    before = counts(stack, db)
    out = seed(stack, db)
    check(out.returncode == 0 and out.stdout == "Added 0 books and 0 authors.\n",
          "second load: %r %r" % (out.stdout, out.stderr))
    check(counts(stack, db) == before, "counts %s -> %s" % (before, counts(stack, db)))


def test_one_outbox_event_per_book(stack):
    db = new_db(stack)
    added(seed(stack, db))
    events = query(stack, db, "SELECT json_agg(json_build_object('source', source, "
                   "'subject', subject, 'data', data, 'id', id) ORDER BY seq) FROM outbox")
    rows = query(stack, db, "SELECT json_agg(json_build_object('Books.BookID', b.bookid, "
                 "'Books.Title', b.title, 'Authors.AuthorID', a.authorid, "
                 "'Authors.FirstName', a.firstname, 'Authors.LastName', a.lastname) "
                 "ORDER BY b.bookid) FROM books b JOIN authors a USING (authorid)")
    check(len(events) == len(rows) >= 200, "%d events, %d books" % (len(events), len(rows)))
    check(all(e["source"] == "library" and e["subject"] == "events.library.book.added"
              for e in events), events[:2])
    check(all(list(e["data"]) == BOOK_KEYS for e in events), "keys in order: %r" % events[0])
    check([e["data"] for e in events] == rows, "one event per book, in BookID order")
    check(len({e["id"] for e in events}) == len(events), "distinct event ids")
    added(seed(stack, db))
    check(stack.psql("SELECT count(*) FROM outbox", db=db) == str(len(events)),
          "a second load emits nothing")


def test_open_library_format_and_name_split(stack):
    db = new_db(stack)
    no_authors_key = {"key": "/works/OL9W", "title": "A work without an authors key"}
    doc = subjects([
        work("The Odyssey", "Homer"),
        work("Julie of the Wolves", "Jean Craighead George"),
        work("The Iliad", "Homer"),
        work("The Dispossessed", "  Ursula   K. Le\tGuin "),
        work("Good Omens", "Terry Pratchett", "Neil Gaiman"),      # the first author only
        work("A work nobody wrote"),                               # authors: []
        no_authors_key,
        work("The Iliad", "Homer"),                                # twice in the file
    ])
    out = seed(stack, db, write(stack, "ol.json", doc))
    check(out.stdout == "Added 5 books and 4 authors.\n", "output %r" % out.stdout)
    check("2" in out.stderr and "without an author" in out.stderr,
          "skipped works counted: %r" % out.stderr)
    authors = query(stack, db, "SELECT json_agg(json_build_array(firstname, lastname) "
                    "ORDER BY authorid) FROM authors")
    check(authors == [["", "Homer"], ["Jean Craighead", "George"], ["Ursula K. Le", "Guin"],
                      ["Terry", "Pratchett"]], authors)
    check(books(stack, db) == [["The Odyssey", "", "Homer"],
                               ["Julie of the Wolves", "Jean Craighead", "George"],
                               ["The Iliad", "", "Homer"],
                               ["The Dispossessed", "Ursula K. Le", "Guin"],
                               ["Good Omens", "Terry", "Pratchett"]], books(stack, db))

    # An author already there is reused; a book already there (however it came,
    # here as POST /api/books would add it) is not added again; the same title
    # by another author is another book.
    stack.psql("WITH a AS (INSERT INTO authors (firstname, lastname) VALUES "
               "('Mary', 'Shelley') RETURNING authorid) "
               "INSERT INTO books (title, authorid) SELECT 'Frankenstein', authorid FROM a",
               db=db)
    out = seed(stack, db, write(stack, "ol2.json", subjects([
        work("Frankenstein", "Mary Shelley"),
        work("The Odyssey", "Homer"),
        work("Hymns", "Homer"),
        work("The Odyssey", "Emily Wilson"),
    ])))
    check(out.stdout == "Added 2 books and 1 authors.\n", "output %r" % out.stdout)
    check(stack.psql("SELECT count(*) FROM authors WHERE lastname = 'Homer'", db=db) == "1",
          "Homer reused")
    check(stack.psql("SELECT count(*) FROM books WHERE title = 'Frankenstein'", db=db) == "1",
          "Frankenstein not added again")
    check(books(stack, db)[-2:] == [["Hymns", "", "Homer"], ["The Odyssey", "Emily", "Wilson"]],
          books(stack, db))
    check(stack.psql("SELECT count(*) FROM outbox", db=db) == "7", "an event per book added")


def test_values_are_data_not_sql(stack):
    db = new_db(stack)
    titles = ["It's \"quoted\"", "back\\slash \\N", "\\.", "'); DROP TABLE books; --",
              ":'data' :data :\"data\"", "$$dollar$$ $x$", "tab\there\nnewline",
              "Caf\u00e9 \u00fcber \u2603 \U0001f577", "x" * 500]
    doc = subjects([work(t, "Flannery O'Connor") for t in titles])
    out = seed(stack, db, write(stack, "odd.json", doc))
    check(out.stdout == "Added %d books and 1 authors.\n" % len(titles), out.stdout + out.stderr)
    check([b[0] for b in books(stack, db)] == titles, books(stack, db))
    check(books(stack, db)[0][1:] == ["Flannery", "O'Connor"], books(stack, db)[0])


def test_malformed_files_refused_and_nothing_loaded(stack):
    db = new_db(stack)
    added(seed(stack, db, write(stack, "base.json", subjects([work("Base", "Some Body")]))))
    before = counts(stack, db)
    good = [work("Fresh title %d" % i, "New Author%d" % i) for i in range(3)]

    def doc(*bad):
        return json.dumps(subjects(good + list(bad)))

    cases = [
        ("not JSON", '{"works": [', "not valid JSON"),
        ("not UTF-8", b'{"works": [{"title": "\xff", "authors": []}]}', "UTF-8"),
        ("no works", json.dumps({"name": "spiders", "work_count": 0}), "\"works\""),
        ("an array", json.dumps([work("T", "A B")]), "\"works\""),
        ("works not an array", json.dumps({"works": {"title": "T"}}),
         "works: expected an array"),
        ("a work not an object", doc("The Hobbit"), "works[3]: expected an object"),
        ("a number title", doc({"title": 1984, "authors": [{"name": "George Orwell"}]}),
         "works[3].title: expected a non-empty string"),
        ("no title", doc({"authors": [{"name": "George Orwell"}]}),
         "works[3].title: expected a non-empty string"),
        ("an empty title", doc(work("", "George Orwell")),
         "works[3].title: expected a non-empty string"),
        ("a title too long", doc(work("x" * 501, "George Orwell")), "works[3].title"),
        ("a NUL in a title", doc(work("a\u0000b", "George Orwell")), "works[3].title"),
        ("an empty author name", doc(work("Animal Farm", "")),
         "works[3].authors[0].name: expected a non-empty string"),
        ("a blank author name", doc(work("Animal Farm", " \t ")),
         "works[3].authors[0].name: expected a non-empty string"),
        ("a number author name", doc({"title": "Animal Farm", "authors": [{"name": 7}]}),
         "works[3].authors[0].name: expected a non-empty string"),
        ("authors not an array", doc({"title": "Animal Farm", "authors": "George Orwell"}),
         "works[3].authors: expected an array"),
        ("an author not an object", doc({"title": "Animal Farm", "authors": ["George Orwell"]}),
         "works[3].authors[0]: expected an object"),
    ]
    for name, content, message in cases:
        out = seed(stack, db, write(stack, "bad.json", content))
        check(out.returncode != 0, "%s: exit %d" % (name, out.returncode))
        check(message in out.stderr and out.stderr.startswith("seed-library: "),
              "%s: message %r" % (name, out.stderr))
        check("Added" not in out.stdout, "%s: %r" % (name, out.stdout))
        check(counts(stack, db) == before, "%s: tables changed" % name)
    out = seed(stack, db, os.path.join(stack.tmp, "no-such-file.json"))
    check(out.returncode != 0 and "no-such-file.json" in out.stderr, out.stderr)


def test_one_transaction_all_or_nothing(stack):
    """A failure inside the database, after authors and books were inserted,
    leaves nothing behind."""
    db = new_db(stack)
    stack.psql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
               "IF NEW.data->>'Books.Title' = 'Boom' THEN RAISE EXCEPTION 'refused'; END IF; "
               "RETURN NEW; END $$; CREATE TRIGGER refuse BEFORE INSERT ON outbox "
               "FOR EACH ROW EXECUTE FUNCTION refuse()", db=db)
    before = counts(stack, db)
    out = seed(stack, db, write(stack, "boom.json", subjects(
        [work("Fine %d" % i, "Any One") for i in range(5)] + [work("Boom", "Other One")])))
    check(out.returncode != 0 and "refused" in out.stderr, (out.returncode, out.stderr))
    check("Added" not in out.stdout, out.stdout)
    check(counts(stack, db) == before == "0|0|0", counts(stack, db))


def test_concurrent_loads_add_each_book_once(stack):
    """Loaders running at once add each book once, also when the authors are
    already there (no unique-index wait on them to line the loaders up)."""
    db = new_db(stack)
    env = pg_env(stack, db)
    for authors_there in (False, True):
        if authors_there:
            stack.psql("DELETE FROM outbox; DELETE FROM books", db=db)
        procs = [subprocess.Popen([sys.executable, LOADER], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        check(all(p.returncode == 0 for p in procs), outs)
        n_books = int(stack.psql("SELECT count(*) FROM books", db=db))
        n_authors = 0 if authors_there else int(stack.psql("SELECT count(*) FROM authors",
                                                           db=db))
        summaries = sorted(o[0] for o in outs)
        check(n_books >= 200 and summaries == ["Added 0 books and 0 authors.\n"] * 3 +
              ["Added %d books and %d authors.\n" % (n_books, n_authors)], summaries)
        check(stack.psql("SELECT count(*) FROM outbox", db=db) == str(n_books),
              "one event per book")
