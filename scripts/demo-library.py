#!/usr/bin/env python3
"""demo-library.py - the original lending library demo (library_demo.py
demo_rest), the same HTTP sequence against the running gateway.

Usage: demo-library.py [BASE_URL]    (default http://127.0.0.1:8080/api/)

 1. GET books/                 -> "Got N books", the first five
 2. GET patrons/               -> "Found N patrons"
 3. POST patrons/ {"FirstName":"Dolly","LastName":"Patron"}
 4. GET patrons/               -> the patrons, pretty-printed
 5. PUT lending/{book}/{patron} -> a random book of step 1 to the FIRST patron
    (a book already out answers 409: another random book is tried, a few times)
 6. GET lending/               -> the books lent
 7. DELETE lending/{book}/{patron} -> the book returned

Every request has a 5 s timeout. Any answer other than 2xx prints its status
and body and ends the demo with exit status 1. Python standard library only."""
import json
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
from pprint import pprint

DEFAULT_BASE = "http://127.0.0.1:8080/api/"
TIMEOUT = 5          # seconds, per request
LEND_TRIES = 10      # random books tried when the chosen one is already out


# The demo talks to the gateway directly, whatever http_proxy says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Failed(Exception):
    """A request failed: the message says which and why."""


def call(method, url, body=None, allow=()):
    """Sends one request; returns (status, decoded JSON body). A status in
    'allow' is returned like a success; any other non-2xx raises Failed."""
    data, headers = None, {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with OPENER.open(req, timeout=TIMEOUT) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
        e.close()
        if status not in allow:
            raise Failed("%s %s -> %d %s" % (method, url, status,
                                              raw.decode("utf-8", "replace")))
    except (urllib.error.URLError, OSError) as e:   # refused, timed out, reset
        reason = getattr(e, "reason", e)
        raise Failed("%s %s -> no answer: %s" % (method, url, reason))
    if status // 100 != 2:
        return status, None         # an allowed refusal: the caller decides
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        raise Failed("%s %s -> %d, not JSON: %r" % (method, url, status, raw[:200]))


def lend_random_book(lending_url, books, patron):
    """Lends a random book to the patron; returns the book. A book already out
    (409) is put aside and another one is tried, LEND_TRIES times at most."""
    candidates = list(books)
    for _ in range(min(LEND_TRIES, len(candidates))):
        book = candidates.pop(random.randrange(len(candidates)))
        print("Lending the book '%s' to %s." % (book["Books.Title"],
                                                 patron["Patrons.FirstName"]))
        url = urllib.parse.urljoin(lending_url, "%d/%d" % (book["Books.BookID"],
                                                             patron["Patrons.PatronID"]))
        status, _ = call("PUT", url, allow=(409,))
        print("Response: %d" % status)
        if status != 409:
            return book
        print("That book is already out; choosing another one.")
    raise Failed("no book could be lent: the %d tried were all out" %
                 min(LEND_TRIES, len(books)))


def demo(base):
    books_url = urllib.parse.urljoin(base, "books/")
    patrons_url = urllib.parse.urljoin(base, "patrons/")
    lending_url = urllib.parse.urljoin(base, "lending/")

    print("Getting books from %s." % books_url)
    status, body = call("GET", books_url)
    print("Response: %d" % status)
    books = body["books"]
    print("Got %d books. The first five are:" % len(books))
    pprint(books[:5])
    if not books:
        raise Failed("the library has no books: load them with scripts/seed-library.py")

    print("Getting patrons from %s." % patrons_url)
    status, body = call("GET", patrons_url)
    print("Response: %d" % status)
    print("Found %d patrons. Let's add one." % len(body["patrons"]))
    print("Adding patron 'Dolly Patron' to the library.")
    status, body = call("POST", patrons_url, {"FirstName": "Dolly", "LastName": "Patron"})
    print("Response: %d %s" % (status, json.dumps(body)))
    status, body = call("GET", patrons_url)
    patrons = body["patrons"]
    print("Now the library has %d patrons. They are:" % len(patrons))
    pprint(patrons)

    patron = patrons[0]    # the first patron, as the original: not necessarily Dolly
    book = lend_random_book(lending_url, books, patron)

    status, body = call("GET", lending_url)
    print("Response: %d" % status)
    print("Books currently lent are:")
    pprint(body["books"])

    print("Returning '%s'." % book["Books.Title"])
    status, _ = call("DELETE", urllib.parse.urljoin(
        lending_url, "%d/%d" % (book["Books.BookID"], patron["Patrons.PatronID"])))
    print("Response: %d" % status)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print("usage: demo-library.py [BASE_URL]   (default %s)" % DEFAULT_BASE,
              file=sys.stderr)
        return 2
    base = argv[1] if len(argv) == 2 else DEFAULT_BASE
    if not base.endswith("/"):
        base += "/"          # urljoin would otherwise replace the last segment
    print("-" * 88)
    print("Demonstrating how to call the lending library REST API.")
    try:
        demo(base)
    except Failed as e:
        print("demo-library: %s" % e, file=sys.stderr)
        return 1
    except (KeyError, TypeError, IndexError) as e:
        print("demo-library: unexpected answer shape: %s: %s" % (type(e).__name__, e),
              file=sys.stderr)
        return 1
    print("-" * 88)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
