/* sql.h - every statement the tracker sends to PostgreSQL, prepared on each
 * connection; handlers name them by enum and pass only $n parameters. */
#ifndef TRACKER_SQL_H
#define TRACKER_SQL_H

#include "outbox.h"

#define ITEM_COLUMNS "iditem, description, guide, status, username, archived"

/* An item as the API shows it, for events: keys sorted, id as text. */
#define ITEM_JSON                                                                       \
    "json_build_object('archived', archived, 'description', description, 'guide', guide, " \
    "'id', iditem::text, 'name', username, 'status', status)"

#define TRACKER_SQL(X)                                                                 \
    X(ITEMS_LIST, "SELECT " ITEM_COLUMNS " FROM work_items ORDER BY iditem")           \
    X(ITEMS_LIST_BY_ARCHIVED,                                                          \
      "SELECT " ITEM_COLUMNS " FROM work_items WHERE archived = $1 ORDER BY iditem")   \
    X(ITEM_GET, "SELECT " ITEM_COLUMNS " FROM work_items WHERE iditem = $1")           \
    X(ITEM_CREATE,                                                                     \
      "WITH item AS (INSERT INTO work_items (username, guide, description, status) "   \
      "VALUES ($1, $2, $3, $4) RETURNING *), "                                         \
      "event AS (" OUTBOX_EMIT("tracker", "events.tracker.item.added", "$5", ITEM_JSON, \
                               "item") ") "                                            \
      "SELECT iditem FROM item")                                                       \
    /* Archiving an archived item changes nothing and emits nothing. */                \
    X(ITEM_ARCHIVE,                                                                    \
      "WITH item AS (UPDATE work_items SET archived = true WHERE iditem = $1 "         \
      "AND NOT archived RETURNING *), "                                                \
      "event AS (" OUTBOX_EMIT("tracker", "events.tracker.item.archived", "$2",         \
                               ITEM_JSON, "item") ") "                                 \
      "SELECT iditem FROM item UNION ALL "                                             \
      "SELECT iditem FROM work_items WHERE iditem = $1 AND archived LIMIT 1")

/* Users (seeds 003 and 004). Book row 'b' as the API shows it. */
#define BOOK_JSON "json_build_object('isbn', b.isbn, 'name', b.name, 'author', b.author)"

/* User row 'u''s books as a JSON array, oldest first: the one its book adds
 * kept (users.books), or rendered from user_books for a user whose books
 * were written otherwise. */
#define USER_BOOKS(u)                                                                  \
    "coalesce(" u ".books, (SELECT json_agg(" BOOK_JSON " ORDER BY b.id) "             \
    "FROM user_books b WHERE b.user_pk = " u ".id), '[]')"
#define USER_JSON "json_build_object('id', u.id, 'userId', u.user_id, 'name', u.name)"

#define USERS_SQL(X)                                                                   \
    X(USERS_LIST, "SELECT u.user_id, u.name, " USER_BOOKS("u") " FROM users u ORDER BY u.id") \
    X(USER_GET,                                                                        \
      "SELECT json_build_object('id', u.id, 'userId', u.user_id, 'name', u.name, "      \
      "'books', " USER_BOOKS("u") ") FROM users u WHERE u.user_id = $1")            \
    /* No userId given: the id as text (a clash with a given one is retried). */       \
    X(USER_ADD,                                                                        \
      "WITH u AS (INSERT INTO users (id, user_id, name) SELECT n, n::text, $1 "         \
      "FROM nextval('users_id_seq') n RETURNING *), "                                  \
      "e AS (" OUTBOX_EMIT("tracker", "events.tracker.user.created", "$2", USER_JSON, "u") ") " \
      "SELECT id, user_id, name FROM u")                                               \
    /* A given userId that exists is replaced (seed 003): same id, new name. */        \
    X(USER_PUT,                                                                        \
      "WITH u AS (INSERT INTO users (user_id, name) VALUES ($1, $2) "                  \
      "ON CONFLICT (user_id) DO UPDATE SET name = EXCLUDED.name "                      \
      "RETURNING *, xmax = 0 AS created), "                                            \
      "c AS (" OUTBOX_EMIT("tracker", "events.tracker.user.created", "$3", USER_JSON,   \
                           "(SELECT * FROM u WHERE created) u") "), "                             \
      "r AS (" OUTBOX_EMIT("tracker", "events.tracker.user.replaced", "$3", USER_JSON,  \
                           "(SELECT * FROM u WHERE NOT created) u") ") "                          \
      "SELECT id, user_id, name FROM u")                                               \
    X(USER_DELETE,                                                                     \
      "WITH u AS (DELETE FROM users WHERE user_id = $1 RETURNING *), "                 \
      "e AS (" OUTBOX_EMIT("tracker", "events.tracker.user.deleted", "$2", USER_JSON, "u") ") " \
      "SELECT id FROM u")                                                              \
    /* The user's row is locked before the book is inserted, so that books    \
     * added at once get ids in the order they are appended to users.books;   \
     * the append reads the row's latest version (a concurrent add that       \
     * committed first is kept). */                                           \
    X(USER_BOOK_ADD,                                                                   \
      "WITH u AS (SELECT id, user_id FROM users WHERE user_id = $1 FOR UPDATE), "      \
      "b AS (INSERT INTO user_books (user_pk, isbn, name, author) "                    \
      "SELECT id, $2, $3, $4 FROM u RETURNING *), "                                    \
      "s AS (UPDATE users x SET books = (SELECT json_agg(j ORDER BY n) FROM ("         \
      "SELECT j, n FROM json_array_elements(" USER_BOOKS("x") ") WITH ORDINALITY AS o(j, n) " \
      "UNION ALL SELECT " BOOK_JSON ", 9223372036854775807) a) "                       \
      "FROM b WHERE x.id = b.user_pk), "                                               \
      "e AS (" OUTBOX_EMIT("tracker", "events.tracker.user.book_added", "$5",           \
                           "json_build_object('userId', u.user_id, 'isbn', b.isbn, "   \
                           "'name', b.name, 'author', b.author)",                      \
                           "b JOIN u ON u.id = b.user_pk") ") "                        \
      "SELECT id FROM b")

enum tracker_sql {
#define X(name, text) SQL_##name,
    TRACKER_SQL(X)
    USERS_SQL(X)
#undef X
    SQL_COUNT
};

extern const char *const tracker_sql[SQL_COUNT];

#endif
