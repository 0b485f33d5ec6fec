/* outbox.h - domain events that are never lost once their change commits.
 *
 * A statement that changes state also inserts its event into the outbox
 * table (lib/migrations/001_outbox.sql), in the same statement and so in the
 * same transaction: OUTBOX_EMIT() below writes that part of the SQL. The
 * relay publishes the service's pending rows to JetStream in commit order,
 * each with Nats-Msg-Id set to the event id so that a row published twice
 * (the process died before the delete) is dropped by the stream's duplicate
 * window, and deletes them only after their PubAck, with the statement that
 * reads the next rows (lib/migrations/005_outbox_next.sql).
 *
 * The relay wakes when a request's statement that emits has committed
 * (outbox_kick), when NATS comes back, at start (rows a previous run left),
 * and every sweep interval for rows written by other processes (a replica
 * that died, the catalogue loader). It also creates the stream, idempotently. */
#ifndef CORE_OUTBOX_H
#define CORE_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "bus.h"
#include "db.h"

/* SQL for a data-modifying CTE that inserts one event per row of the CTE
 * 'rows': 'data' is a json expression over those rows, 'request_id' the
 * parameter holding the request id. With the setting app.events = 'off'
 * (EVENTS_ENABLED=false) nothing is inserted: the same statement without
 * its outbox cost, for measuring it. Use it as
 *   "WITH x AS (INSERT ... RETURNING ...), e AS (" OUTBOX_EMIT(...) ") SELECT ... FROM x" */
#define OUTBOX_EMIT(source, subject, request_id, data, rows)                               \
    "INSERT INTO outbox (source, subject, request_id, data) SELECT '" source "', '" subject \
    "', " request_id ", " data " FROM " rows                                               \
    " WHERE current_setting('app.events', true) IS DISTINCT FROM 'off'"

/* The relay's own statement, appended by the runtime to every service's list. */
enum { OUTBOX_SQL_NEXT, OUTBOX_SQL_COUNT };
extern const char *const outbox_sql[OUTBOX_SQL_COUNT];

struct outbox_config {
    const char *source;   /* the service name, the rows' 'source' */
    const char *stream;   /* JetStream stream holding events.> */
    long max_age_s;       /* stream retention; 0 keeps events until max_bytes */
    long max_bytes;       /* stream size bound; -1 none */
    long replicas;        /* stream replicas (1 locally, 3 on a cluster) */
    long sweep_ms;        /* look for rows written by others this often */
    int batch;            /* rows per pass */
    int first_stmt;       /* index of outbox_sql[0] in the pool's statement list */
};

struct outbox;

struct outbox *outbox_new(uv_loop_t *loop, struct bus *bus, struct db *db,
                          const struct outbox_config *cfg);

/* A statement that may have written outbox rows has committed. */
void outbox_kick(struct outbox *ob);

/* NATS went up or down (from the bus's on_state). */
void outbox_on_bus(struct outbox *ob, bool connected);

/* True once the stream exists (for readiness). */
bool outbox_ready(const struct outbox *ob);

struct outbox_stats {
    uint64_t published, duplicates, failures, passes;
};
void outbox_get_stats(const struct outbox *ob, struct outbox_stats *out);

/* Lets the pass in progress finish (its rows published and deleted, or left
 * for the next start), then calls 'done' on the loop; starts no new pass. */
void outbox_close(struct outbox *ob, void (*done)(void *arg), void *arg);
void outbox_free(struct outbox *ob);

#endif
