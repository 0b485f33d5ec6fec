/* sql.h - every statement the tracker sends to PostgreSQL, prepared on each
 * connection; handlers name them by enum and pass only $n parameters. */
#ifndef TRACKER_SQL_H
#define TRACKER_SQL_H

#define ITEM_COLUMNS "iditem, description, guide, status, username, archived"

#define TRACKER_SQL(X)                                                                 \
    X(ITEMS_LIST, "SELECT " ITEM_COLUMNS " FROM work_items ORDER BY iditem")           \
    X(ITEMS_LIST_BY_ARCHIVED,                                                          \
      "SELECT " ITEM_COLUMNS " FROM work_items WHERE archived = $1 ORDER BY iditem")   \
    X(ITEM_GET, "SELECT " ITEM_COLUMNS " FROM work_items WHERE iditem = $1")           \
    X(ITEM_CREATE,                                                                     \
      "INSERT INTO work_items (username, guide, description, status) "                 \
      "VALUES ($1, $2, $3, $4) RETURNING iditem")                                      \
    X(ITEM_ARCHIVE, "UPDATE work_items SET archived = true WHERE iditem = $1 RETURNING iditem")

enum tracker_sql {
#define X(name, text) SQL_##name,
    TRACKER_SQL(X)
#undef X
    SQL_COUNT
};

extern const char *const tracker_sql[SQL_COUNT];

#endif
