/* sql.h - every statement the library sends to PostgreSQL, prepared on each
 * connection. Rows come out in the original's shape: "Table.Column" keys in
 * its order, dates as YYYY-MM-DD. A statement that changes state writes its
 * event in the same statement (OUTBOX_EMIT), so in the same transaction. */
#ifndef LIBRARY_SQL_H
#define LIBRARY_SQL_H

#include "outbox.h"

/* Lists take $1 = limit (NULL: all) and $2 = offset. */
#define PAGE " LIMIT $1 OFFSET $2"

/* Book row 'b' of author row 'a' as events show it: as books.doc, which a
 * trigger keeps, compact, for the lists (migrations/002_book_doc.sql,
 * 003_book_doc_compact.sql). */
#define BOOK_JSON                                                                     \
    "json_build_object('Books.BookID', b.bookid, 'Books.Title', b.title, "            \
    "'Authors.AuthorID', a.authorid, 'Authors.FirstName', a.firstname, "              \
    "'Authors.LastName', a.lastname)"
#define PATRON_JSON                                                                   \
    "json_build_object('Patrons.PatronID', p.patronid, 'Patrons.FirstName', p.firstname, " \
    "'Patrons.LastName', p.lastname)"
#define LOAN_JSON                                                                     \
    "json_build_object('Lending.LendingID', l.lendingid, 'Books.BookID', l.bookid, "   \
    "'Patrons.PatronID', l.patronid, 'Lending.Lent', to_char(l.lent, 'YYYY-MM-DD'), "  \
    "'Lending.Returned', to_char(l.returned, 'YYYY-MM-DD'))"

/* The loans a gathered statement is asked for, numbered from 1 as $1 lists
 * them: [book, patron, request id]. */
#define LOANS_ASKED                                                                   \
    "SELECT (x->>0)::int AS bookid, (x->>1)::int AS patronid, x->>2 AS request_id, o " \
    "FROM json_array_elements($1::json) WITH ORDINALITY AS t(x, o)"

#define LIBRARY_SQL(X)                                                                \
    /* A book as the lists show it is books.doc (kept by a trigger). */             \
    X(BOOKS_LIST, "SELECT doc FROM books ORDER BY bookid" PAGE)                       \
    X(BOOKS_BY_AUTHOR, "SELECT doc FROM books WHERE authorid = $3 ORDER BY bookid" PAGE) \
    /* The author is reused when one has the same names (DO UPDATE returns the \
     * row even when a concurrent request just inserted it). */                       \
    X(BOOK_ADD,                                                                       \
      "WITH a AS (INSERT INTO authors (firstname, lastname) VALUES ($2, $3) "         \
      "ON CONFLICT (firstname, lastname) DO UPDATE SET firstname = EXCLUDED.firstname " \
      "RETURNING *), "                                                                \
      "b AS (INSERT INTO books (title, authorid) SELECT $1, authorid FROM a RETURNING *), " \
      "e AS (" OUTBOX_EMIT("library", "events.library.book.added", "$4", BOOK_JSON,    \
                           "b JOIN a USING (authorid)") ") "                          \
      "SELECT authorid, bookid FROM b")                                               \
    X(AUTHORS_LIST,                                                                   \
      "SELECT authorid, firstname, lastname FROM authors ORDER BY authorid" PAGE)     \
    X(PATRONS_LIST,                                                                   \
      "SELECT patronid, firstname, lastname FROM patrons ORDER BY patronid" PAGE)     \
    X(PATRON_ADD,                                                                     \
      "WITH p AS (INSERT INTO patrons (firstname, lastname) VALUES ($1, $2) RETURNING *), " \
      "e AS (" OUTBOX_EMIT("library", "events.library.patron.added", "$3", PATRON_JSON, \
                           "p") ") "                                                  \
      "SELECT patronid FROM p")                                                       \
    /* Returned loans keep their history without the patron; an open loan     \
     * still references it, so the foreign key refuses the delete (23503). */ \
    X(PATRON_DELETE,                                                                  \
      "WITH h AS (UPDATE lending SET patronid = NULL "                                \
      "WHERE patronid = $1 AND returned IS NOT NULL), "                               \
      "p AS (DELETE FROM patrons WHERE patronid = $1 RETURNING *), "                  \
      "e AS (" OUTBOX_EMIT("library", "events.library.patron.deleted", "$2",          \
                           PATRON_JSON, "p") ") "                                     \
      "SELECT patronid FROM p")                                                       \
    X(LOANS_OPEN,                                                                     \
      "SELECT l.lendingid, b.bookid, b.title, a.authorid, a.firstname, a.lastname, "  \
      "p.patronid, p.firstname, p.lastname, to_char(l.lent, 'YYYY-MM-DD'), "          \
      "to_char(l.returned, 'YYYY-MM-DD') "                                            \
      "FROM lending l JOIN books b ON b.bookid = l.bookid "                           \
      "JOIN authors a ON a.authorid = b.authorid "                                    \
      "JOIN patrons p ON p.patronid = l.patronid "                                    \
      "WHERE l.returned IS NULL ORDER BY l.lendingid" PAGE)                           \
    /* Loans are gathered (request_gather): LEND and RETURN take one loan,  */ \
    /* $1 book, $2 patron, $3 request id; the _MANY forms take them all in   */ \
    /* $1, a JSON array of such triples. Each loan asked gets a row saying   */ \
    /* whether it was made (returned). One open loan per book: the unique    */ \
    /* index lets one lend of a book through and the others find it lent,   */ \
    /* in this statement or a concurrent one. An unknown book or patron     */ \
    /* fails the statement (foreign key, 23503).                            */ \
    X(LEND,                                                                           \
      "WITH l AS (INSERT INTO lending (bookid, patronid) VALUES ($1, $2) "             \
      "ON CONFLICT (bookid) WHERE returned IS NULL DO NOTHING RETURNING *), "           \
      "e AS (" OUTBOX_EMIT("library", "events.library.book.lent", "$3", LOAN_JSON,     \
                           "l") ") "                                                  \
      "SELECT EXISTS (SELECT FROM l)")                                                 \
    X(LEND_MANY,                                                                      \
      "WITH c AS (" LOANS_ASKED "), "                                                  \
      "l AS (INSERT INTO lending (bookid, patronid) SELECT bookid, patronid FROM c "   \
      "ORDER BY o ON CONFLICT (bookid) WHERE returned IS NULL DO NOTHING RETURNING *), " \
      "w AS (SELECT DISTINCT ON (l.lendingid) l.*, c.o, c.request_id "                   \
      "FROM l JOIN c USING (bookid, patronid) ORDER BY l.lendingid, c.o), "              \
      "e AS (" OUTBOX_EMIT("library", "events.library.book.lent", "l.request_id",        \
                           LOAN_JSON, "w l") ") "                                         \
      "SELECT w.o IS NOT NULL FROM c LEFT JOIN w USING (o) ORDER BY c.o")                 \
    X(RETURN,                                                                         \
      "WITH l AS (UPDATE lending SET returned = current_date "                        \
      "WHERE bookid = $1 AND patronid = $2 AND returned IS NULL RETURNING *), "       \
      "e AS (" OUTBOX_EMIT("library", "events.library.book.returned", "$3", LOAN_JSON, \
                           "l") ") "                                                  \
      "SELECT EXISTS (SELECT FROM l)")                                                 \
    X(RETURN_MANY,                                                                    \
      "WITH c AS (" LOANS_ASKED "), "                                                  \
      "l AS (UPDATE lending SET returned = current_date FROM c "                        \
      "WHERE lending.bookid = c.bookid AND lending.patronid = c.patronid "              \
      "AND lending.returned IS NULL RETURNING lending.*, c.o, c.request_id), "          \
      "e AS (" OUTBOX_EMIT("library", "events.library.book.returned", "l.request_id",    \
                           LOAN_JSON, "l") ") "                                           \
      "SELECT l.o IS NOT NULL FROM c LEFT JOIN l USING (o) ORDER BY c.o")

enum library_sql {
#define X(name, text) SQL_##name,
    LIBRARY_SQL(X)
#undef X
    SQL_COUNT
};

extern const char *const library_sql[SQL_COUNT];

#endif
