/* sql.h - every statement the inventory sends to PostgreSQL, prepared on each
 * connection. A record comes out as one JSON value in the original's shape
 * and key order; a statement that changes state writes its event in the same
 * statement (OUTBOX_EMIT), so in the same transaction. */
#ifndef INVENTORY_SQL_H
#define INVENTORY_SQL_H

#include "outbox.h"

/* An instance's packages in the order they were sent: 'from' names rows 'k'
 * with package_name, package_version and ordinal. */
#define PACKAGES_JSON(from)                                                            \
    "(SELECT coalesce(json_agg(json_build_object('package_name', k.package_name, "     \
    "'package_version', k.package_version) ORDER BY k.ordinal), '[]') FROM " from ")"

/* The record of instance row 'x' as GET shows it, the date as the original's
 * Data API rendered a DATETIME. */
#define RECORD_JSON(packages_from)                                                     \
    "json_build_object('aws_instance_id', x.aws_instance_id, 'aws_region', x.aws_region, " \
    "'aws_account', x.aws_account, 'creation_date_utc', "                               \
    "to_char(x.creation_date_utc, 'YYYY-MM-DD HH24:MI:SS') || '.0', "                   \
    "'packages', " PACKAGES_JSON(packages_from) ")"

#define STORED_PACKAGES "ec2_package k WHERE k.aws_instance_id = x.aws_instance_id"

/* Instance row 'x''s record: the one its POST stored, or rendered from the
 * tables for a row written otherwise. */
#define STORED_RECORD "coalesce(x.record, " RECORD_JSON(STORED_PACKAGES) ")"

/* 'page' is "LIMIT $n OFFSET $m" (a NULL limit: all rows). */
#define RECORDS_RUNNING(condition, page)                                               \
    "SELECT " STORED_RECORD " FROM ec2 x WHERE x.aws_instance_id IN "    \
    "(SELECT m.aws_instance_id FROM ec2_package m WHERE " condition ") "                \
    "ORDER BY x.aws_instance_id " page

#define INVENTORY_SQL(X)                                                               \
    /* $1 id, $2 region, $3 account, $4 the packages as a JSON array, $5 the  \
     * request id. One statement, so one transaction: a refused part stores  \
     * nothing. A pair sent twice is kept once, at its first place; shared    \
     * package rows are inserted in key order (no deadlock between two adds). */ \
    X(INSTANCE_ADD,                                                                    \
      "WITH k AS (SELECT DISTINCT ON (p->>'package_name', p->>'package_version') "     \
      "p->>'package_name' AS package_name, p->>'package_version' AS package_version, " \
      "ord AS ordinal FROM json_array_elements($4::json) WITH ORDINALITY AS e(p, ord) " \
      "ORDER BY p->>'package_name', p->>'package_version', ord), "                     \
      "x AS (INSERT INTO ec2 (aws_instance_id, aws_region, aws_account, "              \
      "creation_date_utc, record) SELECT x.*, " RECORD_JSON("k") " FROM (VALUES ($1, $2, " \
      "$3, date_trunc('second', now() AT TIME ZONE 'UTC'))) AS x(aws_instance_id, "   \
      "aws_region, aws_account, creation_date_utc) RETURNING *), "                     \
      "p AS (INSERT INTO package (package_name, package_version) "                     \
      "SELECT package_name, package_version FROM k ORDER BY 1, 2 ON CONFLICT DO NOTHING), " \
      "l AS (INSERT INTO ec2_package (aws_instance_id, package_name, package_version, ordinal) " \
      "SELECT x.aws_instance_id, k.package_name, k.package_version, k.ordinal FROM x, k), " \
      "e AS (" OUTBOX_EMIT("inventory", "events.inventory.instance.added", "$5",        \
                           RECORD_JSON("k"), "x") ") "                                 \
      "SELECT aws_instance_id FROM x")                                                 \
    /* The whole body, passed on as PostgreSQL wrote it. */                    \
    X(INSTANCE_GET, "SELECT '{\"record\":' || " STORED_RECORD "::text || "             \
                    "',\"record_found\":true}' FROM ec2 x WHERE x.aws_instance_id = $1") \
    /* The event's packages are read before the cascade removes them (every   \
     * part of a statement sees the rows as they were when it started). */    \
    X(INSTANCE_DELETE,                                                                 \
      "WITH x AS (DELETE FROM ec2 WHERE aws_instance_id = $1 RETURNING *), "           \
      "e AS (" OUTBOX_EMIT("inventory", "events.inventory.instance.deleted", "$2",      \
                           RECORD_JSON(STORED_PACKAGES), "x") ") "                     \
      "SELECT aws_instance_id FROM x")                                                 \
    /* Both use ec2_package_by_package, then the primary keys. */             \
    X(RUNNING_PACKAGE, RECORDS_RUNNING("m.package_name = $1", "LIMIT $2 OFFSET $3"))   \
    X(RUNNING_PACKAGE_VERSION,                                                         \
      RECORDS_RUNNING("m.package_name = $1 AND m.package_version = $2",                \
                      "LIMIT $3 OFFSET $4"))

enum inventory_sql {
#define X(name, text) SQL_##name,
    INVENTORY_SQL(X)
#undef X
    SQL_COUNT
};

extern const char *const inventory_sql[SQL_COUNT];

#endif
