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

enum tracker_sql {
#define X(name, text) SQL_##name,
    TRACKER_SQL(X)
#undef X
    SQL_COUNT
};

extern const char *const tracker_sql[SQL_COUNT];

#endif
