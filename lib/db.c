/* db.c - a pool of non-blocking libpq connections, each driven by a uv_poll_t.
 * Each connection runs in pipeline mode: queries are sent as they come and
 * their results come back in order.
 *
 * Syncs. Statements up to a Sync form one implicit transaction, and libpq
 * sends its buffer at every Sync, as the server answers each Sync with its
 * own write. A write statement is always followed by its own Sync, so it
 * commits alone and is answered only once committed. Reads (statements
 * starting with SELECT) are not: the reads a loop iteration sends on one
 * connection share one Sync, sent just before the loop waits for I/O, so a
 * burst of N reads costs one send and one server wake-up instead of N. A
 * read is answered as soon as its results are in. When a statement in such
 * a group fails, the server skips the rest of the group (PIPELINE_ABORTED);
 * those are sent again, which is why every query that joins a group keeps
 * a copy of its values. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define JANITOR_MS 50

#define STMT_PREPARES (-1) /* the batch of prepares sent on connect */
#define STMT_SYNC (-2)     /* the Sync that ends a group of reads */

struct query {
    struct query *next;
    int stmt;         /* or STMT_PREPARES, STMT_SYNC */
    int nparams;
    char **values;    /* copied only while waiting for a connection */
    db_cb cb;         /* NULL once answered (timed out while running) */
    void *arg;
    uint64_t deadline;
    PGresult *res;
    bool failed;      /* a prepare failed */
    bool sync_after;  /* a write: its own Sync follows, answered at it */
    bool ended;       /* its results are in (the NULL after them came) */
    bool aborted;     /* skipped: an earlier statement of its group failed */
};

/* Queries in order: waiting for a connection, or sent on one. */
struct fifo {
    struct query *head, *tail;
    int n;
};

enum conn_state { C_DOWN, C_CONNECTING, C_PREPARING, C_READY };

struct conn {
    struct db *db;
    PGconn *pg;
    uv_poll_t *poll;   /* heap: the socket may change while connecting */
    int fd, events;
    enum conn_state state;
    unsigned epoch;    /* bumped whenever the connection is dropped */
    struct fifo sent;  /* results pending, in send order */
    int unsynced;      /* sent since the last Sync */
    uv_timer_t retry;
    long backoff;
};

struct db {
    uv_loop_t *loop;
    struct db_config cfg;
    char **stmt_names;
    bool *reads;       /* statement i is a read: it may share a Sync */
    struct conn *conns;
    uv_prepare_t syncer; /* sends the Syncs a loop iteration left owed */
    struct fifo waiting;
    struct query *free_queries;
    uv_timer_t janitor;
    bool closing;
    int open_handles;
    void (*close_done)(void *);
    void *close_arg;
    struct db_stats stats;
};

static const char *const err_names[] = {
    "ok", "unavailable", "timeout", "busy", "conflict", "not_found", "invalid", "internal",
};

const char *db_err_name(enum db_err err)
{
    return err_names[err];
}

enum db_err db_map_sqlstate(const char *st)
{
    static const struct {
        const char *prefix;
        enum db_err err;
    } map[] = {
        {"23505", DB_ERR_CONFLICT},    {"23P01", DB_ERR_CONFLICT},
        {"40001", DB_ERR_CONFLICT},    {"40P01", DB_ERR_CONFLICT},
        {"23503", DB_ERR_NOT_FOUND},   {"23502", DB_ERR_INVALID},
        {"23514", DB_ERR_INVALID},     {"22", DB_ERR_INVALID},
        {"57014", DB_ERR_TIMEOUT},     {"08", DB_ERR_UNAVAILABLE},
        {"57P", DB_ERR_UNAVAILABLE},   {"53", DB_ERR_UNAVAILABLE},
    };

    if (st == NULL || *st == '\0')
        return DB_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strncmp(st, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].err;
    return DB_ERR_INTERNAL;
}

static struct query *query_new(struct db *db)
{
    struct query *q = db->free_queries;

    if (q)
        db->free_queries = q->next;
    else if ((q = malloc(sizeof(*q))) == NULL)
        abort();
    memset(q, 0, sizeof(*q));
    return q;
}

static void query_free(struct db *db, struct query *q)
{
    free(q->values);
    if (q->res)
        PQclear(q->res);
    q->next = db->free_queries;
    db->free_queries = q;
}

/* Copies the parameter values into one block the query owns. */
static void query_keep_values(struct query *q, const char *const *values)
{
    size_t len = (size_t)(q->nparams + 1) * sizeof(char *);
    char *p;

    if (q->values || values == NULL)
        return;
    for (int i = 0; i < q->nparams; i++)
        if (values[i])
            len += strlen(values[i]) + 1;
    if ((q->values = malloc(len)) == NULL)
        abort();
    p = (char *)(q->values + q->nparams + 1);
    for (int i = 0; i < q->nparams; i++) {
        size_t n;

        if (values[i] == NULL) {
            q->values[i] = NULL;
            continue;
        }
        n = strlen(values[i]) + 1;
        q->values[i] = memcpy(p, values[i], n);
        p += n;
    }
    q->values[q->nparams] = NULL;
}

static void fifo_push(struct fifo *f, struct query *q)
{
    q->next = NULL;
    if (f->tail)
        f->tail->next = q;
    else
        f->head = q;
    f->tail = q;
    f->n++;
}

static void fifo_unshift(struct fifo *f, struct query *q)
{
    q->next = f->head;
    f->head = q;
    if (f->tail == NULL)
        f->tail = q;
    f->n++;
}

static struct query *fifo_pop(struct fifo *f)
{
    struct query *q = f->head;

    if (q) {
        f->head = q->next;
        if (f->head == NULL)
            f->tail = NULL;
        f->n--;
    }
    return q;
}

/* Counts an answer and gives it to 'cb': the one place a caller hears back. */
static void answer(struct db *db, db_cb cb, void *arg, enum db_err err, const char *sqlstate,
                   const char *message, PGresult *res)
{
    struct db_result r = {err, sqlstate ? sqlstate : "", message ? message : "",
                          err == DB_OK ? res : NULL};

    db->stats.queries++;
    if (err != DB_OK)
        db->stats.errors++;
    if (err == DB_ERR_TIMEOUT)
        db->stats.timeouts++;
    cb(arg, &r);
}

/* Answers 'q' if nobody has heard back for it yet: 'q' stays to be freed. */
static void query_notify(struct db *db, struct query *q, enum db_err err, const char *sqlstate,
                         const char *message)
{
    db_cb cb = q->cb;

    if (cb) {
        q->cb = NULL;
        answer(db, cb, q->arg, err, sqlstate, message, q->res);
    }
}

/* Answers 'q' (at most once, as above), then frees it. */
static void query_answer(struct db *db, struct query *q, enum db_err err, const char *sqlstate,
                         const char *message)
{
    query_notify(db, q, err, sqlstate, message);
    query_free(db, q);
}

static void conn_connect(struct conn *c);
static void conn_drop(struct conn *c, const char *why);
static void conn_poll(struct conn *c, int events);
static void on_sync(uv_prepare_t *p);

static bool any_ready(const struct db *db)
{
    for (int i = 0; i < db->cfg.pool_size; i++)
        if (db->conns[i].state == C_READY)
            return true;
    return false;
}

static void fail_waiting(struct db *db, enum db_err err, const char *why)
{
    struct query *q;

    while ((q = fifo_pop(&db->waiting)) != NULL)
        query_answer(db, q, err, NULL, why);
}

/* Ends the group of queries sent on 'c' since the last Sync, and sends
 * them. A write carries its Sync; a group of reads gets an entry of its
 * own, as some of them may be answered before it is sent. Returns -1 if
 * the connection broke. */
static int conn_sync(struct conn *c)
{
    struct db *db = c->db;

    if (db->reads[c->sent.tail->stmt]) {
        struct query *m = query_new(db);

        m->stmt = STMT_SYNC;
        m->deadline = uv_now(db->loop) + (uint64_t)db->cfg.timeout_ms;
        fifo_push(&c->sent, m);
    } else {
        c->sent.tail->sync_after = true;
    }
    c->unsynced = 0;
    if (!PQpipelineSync(c->pg))
        return -1;
    switch (PQflush(c->pg)) {
    case 0:
        return 0;
    case 1:
        conn_poll(c, UV_READABLE | UV_WRITABLE);
        return 0;
    default:
        return -1;
    }
}

/* Sends 'q' on 'c' and appends it to the connection's in-flight list; a
 * read's Sync waits for the end of the loop iteration (on_sync). Returns -1
 * if the connection broke before 'q' was queued on it (it is then still the
 * caller's), -2 after (conn_drop answers it). */
static int conn_send(struct conn *c, struct query *q, const char *const *values)
{
    struct db *db = c->db;

    if (c->unsynced > 0) { /* joins a group: may have to be sent again */
        query_keep_values(q, values);
        values = (const char *const *)q->values;
    }
    if (!PQsendQueryPrepared(c->pg, db->stmt_names[q->stmt], q->nparams, values, NULL, NULL,
                             0))
        return -1;
    fifo_push(&c->sent, q);
    c->unsynced++;
    if (!db->reads[q->stmt])
        return conn_sync(c) == 0 ? 0 : -2;
    uv_prepare_start(&db->syncer, on_sync);
    return 0;
}

/* Before the loop waits for I/O: the Syncs of this iteration's reads. */
static void on_sync(uv_prepare_t *p)
{
    struct db *db = p->data;

    uv_prepare_stop(p);
    for (int i = 0; i < db->cfg.pool_size; i++) {
        struct conn *c = &db->conns[i];

        if (c->state == C_READY && c->unsynced > 0 && conn_sync(c) != 0)
            conn_drop(c, PQerrorMessage(c->pg));
    }
}

/* Sends 'q' on 'c'; if the connection broke, 'q' is answered and 'c' dropped. */
static void send_or_drop(struct conn *c, struct query *q, const char *const *values)
{
    int rc = conn_send(c, q, values);

    if (rc == -1)
        query_answer(c->db, q, DB_ERR_UNAVAILABLE, NULL, PQerrorMessage(c->pg));
    if (rc != 0)
        conn_drop(c, PQerrorMessage(c->pg));
}

static struct conn *least_busy(struct db *db)
{
    struct conn *best = NULL;

    for (int i = 0; i < db->cfg.pool_size; i++) {
        struct conn *c = &db->conns[i];

        if (c->state == C_READY && (best == NULL || c->sent.n < best->sent.n))
            best = c;
    }
    return best;
}

/* Moves waiting queries onto connections with room in their pipelines. */
static void dispatch_waiting(struct db *db)
{
    struct conn *c;

    while (db->waiting.head && (c = least_busy(db)) != NULL &&
           c->sent.n < db->cfg.pipeline_depth) {
        struct query *q = fifo_pop(&db->waiting);

        send_or_drop(c, q, (const char *const *)q->values);
    }
}

void db_query(struct db *db, int stmt, int nparams, const char *const *values, db_cb cb,
              void *arg)
{
    struct query *q;
    struct conn *c;

    if (db->closing || !any_ready(db)) {
        answer(db, cb, arg, DB_ERR_UNAVAILABLE, NULL, "no database connection", NULL);
        return;
    }
    q = query_new(db);
    q->stmt = stmt;
    q->nparams = nparams;
    q->cb = cb;
    q->arg = arg;
    q->deadline = uv_now(db->loop) + (uint64_t)db->cfg.timeout_ms;

    c = least_busy(db);
    if (db->waiting.head == NULL && c->sent.n < db->cfg.pipeline_depth) {
        send_or_drop(c, q, values);
        return;
    }
    if (db->waiting.n >= db->cfg.queue_max) {
        query_answer(db, q, DB_ERR_BUSY, NULL, "database queue full");
        return;
    }
    /* Waiting: the caller's values may not outlive this call. */
    query_keep_values(q, values);
    fifo_push(&db->waiting, q);
}

/* Answers 'q', whose results (and Sync, if it had one) are all in; or sends
 * it again if the server skipped it. Returns false if that broke 'c'. */
static bool conn_finish(struct conn *c, struct query *q)
{
    struct db *db = c->db;
    unsigned epoch = c->epoch;

    if (q->stmt == STMT_SYNC) {
        query_free(db, q);
        return true;
    }
    if (q->stmt == STMT_PREPARES) {
        bool failed = q->failed;
        char msg[256];

        snprintf(msg, sizeof(msg), "%s", q->res ? PQresultErrorMessage(q->res) : "no result");
        query_free(db, q);
        if (failed) {
            log_error(NULL, "db: preparing statements failed: %s", msg);
            conn_drop(c, "prepare failed");
            return false;
        }
        c->state = C_READY;
        c->backoff = BACKOFF_MIN_MS;
        log_info(NULL, "db: connection %d ready", (int)(c - db->conns));
    } else if (q->aborted && q->cb && q->values == NULL && q->nparams > 0) {
        query_answer(db, q, DB_ERR_INTERNAL, NULL, "skipped, and its values are gone");
    } else if (q->aborted && q->cb) {
        /* Skipped, never run: first in line to be sent again. */
        if (q->res)
            PQclear(q->res);
        q->res = NULL;
        q->failed = q->sync_after = q->ended = q->aborted = false;
        fifo_unshift(&db->waiting, q);
        db->stats.resent++;
    } else if (!q->failed) {
        query_answer(db, q, DB_OK, NULL, NULL);
    } else {
        const char *state = q->res ? PQresultErrorField(q->res, PG_DIAG_SQLSTATE) : NULL;
        char msg[512];

        snprintf(msg, sizeof(msg), "%s", q->res ? PQresultErrorMessage(q->res) : "");
        msg[strcspn(msg, "\n")] = '\0';
        query_answer(db, q, db_map_sqlstate(state), state, msg);
    }
    if (c->epoch != epoch)
        return false; /* a callback's query broke this connection */
    dispatch_waiting(db);
    return c->epoch == epoch;
}

/* Takes every result that has arrived; answers queries in send order. A
 * query's results end with a NULL; a Sync's with PGRES_PIPELINE_SYNC. */
static void conn_read_results(struct conn *c)
{
    int nulls = 0;

    while (c->sent.head && !PQisBusy(c->pg)) {
        struct query *q = c->sent.head;
        PGresult *r = PQgetResult(c->pg);

        if (r == NULL) {
            /* The prepares are one entry with a NULL after each prepare;
             * a second NULL in a row: nothing more has come. */
            if (q->ended || q->stmt < 0) {
                if (++nulls > 1)
                    break;
                continue;
            }
            nulls = 0;
            q->ended = true;
            if (q->sync_after)
                continue; /* answered at its Sync: a write, after its commit */
        } else {
            ExecStatusType st = PQresultStatus(r);

            nulls = 0;
            if (st != PGRES_PIPELINE_SYNC) {
                if (st == PGRES_PIPELINE_ABORTED)
                    q->aborted = true;
                else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
                    q->failed = true;
                if (q->res == NULL && st != PGRES_PIPELINE_ABORTED)
                    q->res = r;
                else
                    PQclear(r);
                continue;
            }
            PQclear(r);
        }
        fifo_pop(&c->sent);
        if (!conn_finish(c, q))
            return;
    }
}

static void on_poll(uv_poll_t *h, int status, int events);

static void handle_released(struct db *db)
{
    if (--db->open_handles == 0 && db->close_done)
        db->close_done(db->close_arg);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    free(h);
    handle_released(c->db);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_released(h->data);
}

/* Polls the connection's current socket for 'events'. */
static void conn_poll(struct conn *c, int events)
{
    int fd = PQsocket(c->pg);

    if (c->poll && fd != c->fd) {
        uv_close((uv_handle_t *)c->poll, on_poll_closed);
        c->poll = NULL;
    }
    if (c->poll == NULL) {
        if ((c->poll = malloc(sizeof(*c->poll))) == NULL)
            abort();
        uv_poll_init_socket(c->db->loop, c->poll, fd);
        c->poll->data = c;
        c->db->open_handles++;
        c->fd = fd;
        c->events = 0;
    }
    if (events != c->events) {
        uv_poll_start(c->poll, events, on_poll);
        c->events = events;
    }
}

static void conn_ready_for_queries(struct conn *c)
{
    struct db *db = c->db;
    struct query *q;

    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    for (int i = 0; i < db->cfg.nsql; i++) {
        if (!PQsendPrepare(c->pg, db->stmt_names[i], db->cfg.sql[i], 0, NULL)) {
            conn_drop(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (!PQpipelineSync(c->pg)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    q = query_new(db);
    q->stmt = STMT_PREPARES;
    q->deadline = uv_now(db->loop) + (uint64_t)db->cfg.timeout_ms;
    fifo_push(&c->sent, q);
    c->state = C_PREPARING;
    conn_poll(c, PQflush(c->pg) == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct conn *c = h->data;

    if (c->state == C_CONNECTING) {
        switch (PQconnectPoll(c->pg)) {
        case PGRES_POLLING_READING:
            conn_poll(c, UV_READABLE);
            return;
        case PGRES_POLLING_WRITING:
            conn_poll(c, UV_WRITABLE);
            return;
        case PGRES_POLLING_OK:
            conn_ready_for_queries(c);
            return;
        default:
            conn_drop(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (status < 0) {
        conn_drop(c, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        int rc = PQflush(c->pg);

        if (rc < 0) {
            conn_drop(c, PQerrorMessage(c->pg));
            return;
        }
        conn_poll(c, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(c->pg)) {
            conn_drop(c, PQerrorMessage(c->pg));
            return;
        }
        conn_read_results(c);
        if (c->state != C_DOWN && PQstatus(c->pg) == CONNECTION_BAD)
            conn_drop(c, PQerrorMessage(c->pg));
    }
}

static void on_retry(uv_timer_t *t)
{
    conn_connect(t->data);
}

/* Answers everything in flight on 'c' as unavailable, closes it and tries
 * again after the backoff. */
static void conn_drop(struct conn *c, const char *why)
{
    struct db *db = c->db;
    struct query *q;
    char msg[256];

    if (c->state == C_DOWN)
        return;
    snprintf(msg, sizeof(msg), "%s", why && *why ? why : "connection lost");
    msg[strcspn(msg, "\n")] = '\0';
    c->epoch++;
    c->state = C_DOWN;
    c->unsynced = 0;
    if (c->poll) {
        uv_close((uv_handle_t *)c->poll, on_poll_closed);
        c->poll = NULL;
    }
    PQfinish(c->pg);
    c->pg = NULL;
    while ((q = fifo_pop(&c->sent)) != NULL)
        query_answer(db, q, DB_ERR_UNAVAILABLE, NULL, msg);
    if (!db->closing) {
        log_warn(NULL, "db: connection %d down (%s); retrying in %ld ms", (int)(c - db->conns),
                 msg, c->backoff);
        db->stats.reconnects++;
        uv_timer_start(&c->retry, on_retry, (uint64_t)c->backoff, 0);
        c->backoff = c->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff * 2;
    }
    if (!any_ready(db))
        fail_waiting(db, DB_ERR_UNAVAILABLE, "no database connection");
}

static void conn_connect(struct conn *c)
{
    struct db *db = c->db;
    char timeout[24];
    const char *keys[] = {"host", "port", "user", "dbname", "application_name", "options",
                          "connect_timeout", "keepalives", "gssencmode", NULL};
    char options[256];
    const char *vals[10];

    /* Generic plans: a prepared statement is planned once per connection.
     * PostgreSQL would otherwise keep re-planning statements whose custom
     * plans look cheaper, e.g. any with LIMIT $1: for the books list that
     * planning cost more than the query (pgbench: 11k -> 24k TPS). Every
     * statement here is small and index-driven, so one plan fits all. */
    snprintf(options, sizeof(options),
             "-c statement_timeout=%ld -c plan_cache_mode=force_generic_plan %s",
             db->cfg.timeout_ms, db->cfg.options ? db->cfg.options : "");
    snprintf(timeout, sizeof(timeout), "%ld", (db->cfg.timeout_ms + 999) / 1000);
    vals[0] = db->cfg.host;
    vals[1] = db->cfg.port;
    vals[2] = db->cfg.user;
    vals[3] = db->cfg.dbname;
    vals[4] = db->cfg.app_name;
    vals[5] = options;
    vals[6] = timeout;
    vals[7] = "1";
    vals[8] = db->cfg.gssencmode ? db->cfg.gssencmode : "disable";
    vals[9] = NULL;

    c->pg = PQconnectStartParams(keys, vals, 0);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        c->state = C_CONNECTING; /* so that conn_drop runs */
        conn_drop(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    c->state = C_CONNECTING;
    conn_poll(c, UV_WRITABLE);
}

/* Expires waiting queries, and queries running past their deadline (whose
 * result is then dropped when it comes). */
static void on_janitor(uv_timer_t *t)
{
    struct db *db = t->data;
    uint64_t now = uv_now(db->loop);

    while (db->waiting.head && db->waiting.head->deadline <= now)
        query_answer(db, fifo_pop(&db->waiting), DB_ERR_TIMEOUT, NULL,
                     "waited too long for a connection");
    for (int i = 0; i < db->cfg.pool_size; i++) {
        struct conn *c = &db->conns[i];

        for (struct query *q = c->sent.head; q && q->deadline <= now; q = q->next) {
            if (q->stmt == STMT_PREPARES) {
                conn_drop(c, "preparing statements timed out");
                break;
            }
            if (q->cb) {
                query_notify(db, q, DB_ERR_TIMEOUT, NULL, "query deadline passed");
            } else if (q->deadline + (uint64_t)db->cfg.timeout_ms <= now) {
                /* statement_timeout did not end it: the server is gone. */
                conn_drop(c, "no answer from the server");
                break;
            }
        }
    }
}

struct db *db_new(uv_loop_t *loop, const struct db_config *cfg)
{
    struct db *db;

    if (cfg->pool_size < 1 || cfg->pipeline_depth < 1 || cfg->queue_max < 0 ||
        cfg->timeout_ms < 1)
        return NULL;
    if ((db = calloc(1, sizeof(*db))) == NULL)
        abort();
    db->loop = loop;
    db->cfg = *cfg;
    db->stmt_names = calloc((size_t)cfg->nsql, sizeof(char *));
    db->reads = calloc((size_t)cfg->nsql, sizeof(bool));
    db->conns = calloc((size_t)cfg->pool_size, sizeof(struct conn));
    if (db->stmt_names == NULL || db->reads == NULL || db->conns == NULL)
        abort();
    for (int i = 0; i < cfg->nsql; i++) {
        const char *sql = cfg->sql[i] + strspn(cfg->sql[i], " \t\r\n(");
        char name[16];

        snprintf(name, sizeof(name), "s%d", i);
        if ((db->stmt_names[i] = strdup(name)) == NULL)
            abort();
        db->reads[i] = strncasecmp(sql, "SELECT", 6) == 0;
    }
    uv_prepare_init(loop, &db->syncer);
    db->syncer.data = db;
    uv_timer_init(loop, &db->janitor);
    db->janitor.data = db;
    uv_timer_start(&db->janitor, on_janitor, JANITOR_MS, JANITOR_MS);
    db->open_handles = 2;
    for (int i = 0; i < cfg->pool_size; i++) {
        struct conn *c = &db->conns[i];

        c->db = db;
        c->backoff = BACKOFF_MIN_MS;
        uv_timer_init(loop, &c->retry);
        c->retry.data = c;
        db->open_handles++;
        conn_connect(c);
    }
    return db;
}

bool db_ready(const struct db *db)
{
    return !db->closing && any_ready(db);
}

void db_get_stats(const struct db *db, struct db_stats *out)
{
    *out = db->stats;
    out->connections_ready = out->connections_down = out->inflight = 0;
    for (int i = 0; i < db->cfg.pool_size; i++) {
        const struct conn *c = &db->conns[i];

        if (c->state == C_READY)
            out->connections_ready++;
        else
            out->connections_down++;
        out->inflight += c->sent.n;
    }
    out->waiting = db->waiting.n;
}

void db_close(struct db *db, void (*done)(void *arg), void *arg)
{
    db->closing = true;
    db->close_done = done;
    db->close_arg = arg;
    fail_waiting(db, DB_ERR_UNAVAILABLE, "shutting down");
    for (int i = 0; i < db->cfg.pool_size; i++) {
        struct conn *c = &db->conns[i];

        conn_drop(c, "shutting down");
        uv_timer_stop(&c->retry);
        c->retry.data = db;
        uv_close((uv_handle_t *)&c->retry, on_timer_closed);
    }
    db->janitor.data = db;
    uv_close((uv_handle_t *)&db->janitor, on_timer_closed);
    uv_close((uv_handle_t *)&db->syncer, on_timer_closed);
}

void db_free(struct db *db)
{
    while (db->free_queries) {
        struct query *q = db->free_queries;

        db->free_queries = q->next;
        free(q);
    }
    for (int i = 0; i < db->cfg.nsql; i++)
        free(db->stmt_names[i]);
    free(db->stmt_names);
    free(db->reads);
    free(db->conns);
    free(db);
}
