/* db.h - a pool of non-blocking libpq connections on a libuv loop.
 * Every statement is prepared on every (re)connection and planned once
 * (plan_cache_mode=force_generic_plan); queries are pipelined
 * on each connection; waiting queries sit in a bounded FIFO with a deadline;
 * broken connections come back with capped exponential backoff. */
#ifndef CORE_DB_H
#define CORE_DB_H

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>

struct db;

struct db_config {
    const char *host, *port, *user, *dbname;  /* PGPASSWORD etc. come from libpq's environment */
    const char *gssencmode;   /* libpq's gssencmode; NULL: "disable" */
    const char *app_name;     /* application_name */
    const char *options;      /* more "-c name=value" settings, or NULL */
    /* Statement texts, prepared as "s0", "s1", ... One that starts with
     * SELECT is taken for a read, which may share an implicit transaction
     * with other reads: it must not write (db.c, "Syncs"). */
    const char *const *sql;
    int nsql;
    int pool_size;            /* connections */
    int pipeline_depth;       /* queries in flight on one connection */
    int queue_max;            /* queries waiting for a connection */
    long timeout_ms;          /* deadline of a query, from db_query to its result */
};

/* Every database failure a handler can see; SQLSTATEs are mapped in db.c. */
enum db_err {
    DB_OK = 0,
    DB_ERR_UNAVAILABLE,  /* no connection up, or it broke under the query */
    DB_ERR_TIMEOUT,      /* deadline passed, waiting or running */
    DB_ERR_BUSY,         /* the wait queue is full */
    DB_ERR_CONFLICT,     /* 23505 unique, 23P01 exclusion, 40001 serialization */
    DB_ERR_NOT_FOUND,    /* 23503 foreign key */
    DB_ERR_INVALID,      /* class 22 (data), 23502 not null, 23514 check */
    DB_ERR_INTERNAL,     /* anything else: our fault */
};

struct db_result {
    enum db_err err;
    const char *sqlstate;  /* "" when the error did not come from PostgreSQL */
    const char *message;   /* for logs, never for clients */
    PGresult *res;         /* PGRES_TUPLES_OK or PGRES_COMMAND_OK with DB_OK, else NULL */
};

/* Receives a query's outcome on the loop; 'r' and its PGresult are freed
 * when the callback returns. */
typedef void (*db_cb)(void *arg, const struct db_result *r);

/* Creates the pool and starts connecting; never blocks. NULL on bad config. */
struct db *db_new(uv_loop_t *loop, const struct db_config *cfg);

/* Runs prepared statement 'stmt' with 'nparams' text parameters (NULL is SQL
 * NULL; the values are copied). Calls 'cb' exactly once on the loop; with
 * every connection down, or the queue full, it does so before returning:
 * fail fast. */
void db_query(struct db *db, int stmt, int nparams, const char *const *values, db_cb cb,
              void *arg);

/* True while at least one connection is ready for queries. */
bool db_ready(const struct db *db);

struct db_stats {
    int connections_ready, connections_down;
    int inflight, waiting;
    uint64_t queries, errors, timeouts, reconnects;
    uint64_t resent;  /* skipped by the server after a failure in their group */
};
void db_get_stats(const struct db *db, struct db_stats *out);

/* Fails what is waiting, closes every connection and calls 'done' on the
 * loop once the handles are released; then db_free(). */
void db_close(struct db *db, void (*done)(void *arg), void *arg);
void db_free(struct db *db);

const char *db_err_name(enum db_err err);

/* The error a SQLSTATE maps to (the one place where they are mapped). */
enum db_err db_map_sqlstate(const char *sqlstate);

#endif
