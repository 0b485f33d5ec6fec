#!/usr/bin/env python3
"""seed-library.py - loads the lending library's catalogue into PostgreSQL.

Usage: seed-library.py [FILE]    (default: data/library/catalogue.json)

FILE is in Open Library's subjects format (openlibrary.org/subjects/<name>.json,
the source the original demo used): works[].title and works[].authors[0].name;
the catalogue shipped with the project uses the same format. A work without
authors is skipped. An author's name is split on whitespace: the last word is
the LastName, the words before it, joined by single spaces, the FirstName ("" for
a one-word name).

The whole file is checked before anything is written: a malformed one is refused
with a message naming the first problem, exit status 1, and nothing is loaded.
Then one psql transaction adds what is missing: an author with the same first and
last name is reused, a book with the same title and author is not added again,
and each book added inserts its events.library.book.added row into the outbox
(the library's relay publishes it). Loading the same file twice adds nothing the
second time. Prints "Added N books and M authors." with the counts inserted.

Connection: PGHOST, PGPORT, PGUSER, PGDATABASE (and PGPASSWORD) as psql reads them.
The data reaches psql on its stdin as a COPY, never inside SQL text."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FILE = os.path.join(ROOT, "data", "library", "catalogue.json")
MAX_TITLE = 500

# One transaction (psql --single-transaction). The COPY data follows this text on
# the same stdin: one line holding a JSON array of [title, firstname, lastname].
# SHARE ROW EXCLUSIVE on books lets readers and loans go on but keeps a concurrent
# loader, or a concurrent POST /api/books, from adding the same book meanwhile.
SQL = r"""
SET LOCAL lock_timeout = '10s';
LOCK TABLE books IN SHARE ROW EXCLUSIVE MODE;
CREATE TEMP TABLE seed_in (doc json) ON COMMIT DROP;
CREATE TEMP TABLE seed_rows (ord bigint, title text, firstname text, lastname text)
    ON COMMIT DROP;
COPY seed_in (doc) FROM STDIN;
@DATA@
\.
INSERT INTO seed_rows
SELECT e.ord, e.row ->> 0, e.row ->> 1, e.row ->> 2
FROM seed_in, json_array_elements(seed_in.doc) WITH ORDINALITY AS e (row, ord);

WITH added AS (
    INSERT INTO authors (firstname, lastname)
    SELECT firstname, lastname FROM seed_rows
    GROUP BY firstname, lastname ORDER BY min(ord)
    ON CONFLICT (firstname, lastname) DO NOTHING
    RETURNING authorid)
SELECT count(*) AS authors_added FROM added \gset

WITH wanted AS (
    SELECT DISTINCT ON (r.title, a.authorid) r.ord, r.title, a.authorid
    FROM seed_rows r JOIN authors a USING (firstname, lastname)
    ORDER BY r.title, a.authorid, r.ord),
added AS (
    INSERT INTO books (title, authorid)
    SELECT w.title, w.authorid FROM wanted w
    WHERE NOT EXISTS (SELECT 1 FROM books b
                      WHERE b.title = w.title AND b.authorid = w.authorid)
    ORDER BY w.ord
    RETURNING bookid, title, authorid),
events AS (
    INSERT INTO outbox (source, subject, data)
    SELECT 'library', 'events.library.book.added',
           json_build_object('Books.BookID', n.bookid, 'Books.Title', n.title,
                             'Authors.AuthorID', n.authorid,
                             'Authors.FirstName', a.firstname,
                             'Authors.LastName', a.lastname)
    FROM added n JOIN authors a USING (authorid)
    WHERE current_setting('app.events', true) IS DISTINCT FROM 'off'
    ORDER BY n.bookid
    RETURNING seq)
SELECT count(*) AS books_added, (SELECT count(*) FROM events) AS events_added
FROM added \gset

\echo seed-library-counts :books_added :authors_added
"""


class Malformed(Exception):
    """The input file is not what the loader accepts; the message names where."""


def nonempty_string(value, where, limit=None):
    if not isinstance(value, str) or not value.strip():
        raise Malformed("%s: expected a non-empty string" % where)
    if "\0" in value:
        raise Malformed("%s: contains a NUL character" % where)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed("%s: not valid Unicode (a lone surrogate)" % where)
    if limit is not None and len(value) > limit:
        raise Malformed("%s: longer than %d characters" % (where, limit))
    return value


def split_name(name):
    """'Ursula K. Le Guin' -> ('Ursula K. Le', 'Guin'); 'Homer' -> ('', 'Homer')."""
    words = name.split()
    return " ".join(words[:-1]), words[-1]


def parse(raw):
    """Returns ([(title, firstname, lastname)...], works skipped for no author)."""
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise Malformed("not UTF-8 text (%s)" % e)
    except ValueError as e:
        raise Malformed("not valid JSON: %s" % e)
    if not isinstance(doc, dict):
        raise Malformed("expected a JSON object with a \"works\" array")
    works = doc.get("works")
    if not isinstance(works, list):
        raise Malformed("works: expected an array" if "works" in doc
                        else "no \"works\" array")
    rows, skipped = [], 0
    for i, work in enumerate(works):
        where = "works[%d]" % i
        if not isinstance(work, dict):
            raise Malformed("%s: expected an object" % where)
        title = nonempty_string(work.get("title"), where + ".title", MAX_TITLE)
        authors = work.get("authors")
        if authors is None or authors == []:
            skipped += 1
            continue
        if not isinstance(authors, list):
            raise Malformed("%s.authors: expected an array" % where)
        if not isinstance(authors[0], dict):
            raise Malformed("%s.authors[0]: expected an object" % where)
        name = nonempty_string(authors[0].get("name"), where + ".authors[0].name")
        rows.append((title,) + split_name(name))
    return rows, skipped


def copy_text(value):
    """One field of COPY's text format; the JSON text holds no tab or newline."""
    return value.replace("\\", "\\\\")


def load(rows):
    """Runs the transaction; returns (books added, authors added)."""
    data = copy_text(json.dumps(rows, ensure_ascii=True, separators=(",", ":")))
    env = dict(os.environ)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c client_min_messages=warning").strip()
    try:
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                              "--single-transaction", "-f", "-"],
                             input=SQL.replace("@DATA@", data, 1), capture_output=True, text=True, env=env,
                             timeout=300)
    except FileNotFoundError:
        raise SystemExit("seed-library: psql not found on PATH")
    except subprocess.TimeoutExpired:
        raise SystemExit("seed-library: psql did not finish within 300 s; nothing loaded")
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit("seed-library: psql failed (exit %d); nothing loaded" %
                         out.returncode)
    for line in out.stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "seed-library-counts":
            return int(words[1]), int(words[2])
    raise SystemExit("seed-library: unexpected psql output: %r" % out.stdout[-500:])


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print("usage: seed-library.py [FILE]   (default %s)" %
              os.path.relpath(DEFAULT_FILE), file=sys.stderr)
        return 2
    path = argv[1] if len(argv) == 2 else DEFAULT_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        print("seed-library: %s: %s" % (path, e.strerror), file=sys.stderr)
        return 1
    try:
        rows, skipped = parse(raw)
    except Malformed as e:
        print("seed-library: %s: %s; nothing loaded" % (path, e), file=sys.stderr)
        return 1
    if skipped:
        print("seed-library: skipped %d work%s without an author" %
              (skipped, "" if skipped == 1 else "s"), file=sys.stderr)
    books, authors = load(rows)
    print("Added %d books and %d authors." % (books, authors))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
