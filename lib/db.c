/* db.c - a pool of non-blocking libpq connections, each driven by a uv_poll_t.
 * Each connection runs in pipeline mode: queries are sent as they come, each
 * followed by its own Sync (so each is its own implicit transaction), and
 * their results come back in order. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define JANITOR_MS 50

struct query {
    struct query *next;
    int stmt;         /* -1: the batch of prepares sent on connect */
    int nparams;
    char **values;    /* copied only while waiting for a connection */
    db_cb cb;         /* NULL once answered (timed out while running) */
    void *arg;
    uint64_t deadline;
    PGresult *res;
    bool failed;      /* a prepare failed */
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
    uv_timer_t retry;
    long backoff;
};

struct db {
    uv_loop_t *loop;
    struct db_config cfg;
    char **stmt_names;
    struct conn *conns;
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
    if (q->values) {
        for (int i = 0; i < q->nparams; i++)
            free(q->values[i]);
        free(q->values);
    }
    if (q->res)
        PQclear(q->res);
    q->next = db->free_queries;
    db->free_queries = q;
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

/* Calls the query's callback at most once, then frees it. */
static void query_answer(struct db *db, struct query *q, enum db_err err, const char *sqlstate,
                         const char *message)
{
    db_cb cb = q->cb;

    if (cb) {
        struct db_result r = {err, sqlstate ? sqlstate : "", message ? message : "",
                              err == DB_OK ? q->res : NULL};
        q->cb = NULL;
        db->stats.queries++;
        if (err != DB_OK)
            db->stats.errors++;
        if (err == DB_ERR_TIMEOUT)
            db->stats.timeouts++;
        cb(q->arg, &r);
    }
    query_free(db, q);
}

static void conn_connect(struct conn *c);
static void conn_drop(struct conn *c, const char *why);
static void conn_poll(struct conn *c, int events);

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

/* Sends 'q' on 'c' and appends it to the connection's in-flight list.
 * Returns -1 if the connection broke (q is then still the caller's). */
static int conn_send(struct conn *c, struct query *q, const char *const *values)
{
    struct db *db = c->db;

    if (!PQsendQueryPrepared(c->pg, db->stmt_names[q->stmt], q->nparams, values, NULL, NULL,
                             0) ||
        !PQpipelineSync(c->pg))
        return -1;
    fifo_push(&c->sent, q);
    switch (PQflush(c->pg)) {
    case 0:
        break;
    case 1:
        conn_poll(c, UV_READABLE | UV_WRITABLE);
        break;
    default:
        return -2; /* queued on c: conn_drop answers it */
    }
    return 0;
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
        struct db_result r = {DB_ERR_UNAVAILABLE, "", "no database connection", NULL};
        db->stats.queries++;
        db->stats.errors++;
        cb(arg, &r);
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
    q->values = calloc((size_t)nparams + 1, sizeof(char *));
    if (q->values == NULL)
        abort();
    for (int i = 0; i < nparams; i++)
        if (values[i] && (q->values[i] = strdup(values[i])) == NULL)
            abort();
    fifo_push(&db->waiting, q);
}

/* Takes every result that has arrived; answers queries in send order. */
static void conn_read_results(struct conn *c)
{
    struct db *db = c->db;
    unsigned epoch = c->epoch;
    int nulls = 0;

    while (c->sent.head && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        struct query *q = c->sent.head;

        if (r == NULL) { /* end of one query's results: its Sync follows */
            if (++nulls > 1)
                break;
            continue;
        }
        nulls = 0;
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            ExecStatusType st = PQresultStatus(r);

            if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
                q->failed = true;
            if (q->res == NULL)
                q->res = r;
            else
                PQclear(r);
            continue;
        }
        PQclear(r);
        fifo_pop(&c->sent);

        if (q->stmt < 0) { /* the prepares */
            bool failed = q->failed;
            char msg[256];

            snprintf(msg, sizeof(msg), "%s",
                     q->res ? PQresultErrorMessage(q->res) : "no result");
            query_free(db, q);
            if (failed) {
                log_error(NULL, "db: preparing statements failed: %s", msg);
                conn_drop(c, "prepare failed");
                return;
            }
            c->state = C_READY;
            c->backoff = BACKOFF_MIN_MS;
            log_info(NULL, "db: connection %d ready", (int)(c - db->conns));
            dispatch_waiting(db);
            if (c->epoch != epoch)
                return;
            continue;
        }

        if (!q->failed) {
            query_answer(db, q, DB_OK, NULL, NULL);
        } else {
            const char *state = q->res ? PQresultErrorField(q->res, PG_DIAG_SQLSTATE) : NULL;
            char msg[512];

            snprintf(msg, sizeof(msg), "%s", q->res ? PQresultErrorMessage(q->res) : "");
            msg[strcspn(msg, "\n")] = '\0';
            query_answer(db, q, db_map_sqlstate(state), state, msg);
        }
        if (c->epoch != epoch)
            return; /* a callback's query broke this connection */
        dispatch_waiting(db);
        if (c->epoch != epoch)
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
    q->stmt = -1;
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
                          "connect_timeout", "keepalives", NULL};
    char options[256];
    const char *vals[9];

    snprintf(options, sizeof(options), "-c statement_timeout=%ld %s", db->cfg.timeout_ms,
             db->cfg.options ? db->cfg.options : "");
    snprintf(timeout, sizeof(timeout), "%ld", (db->cfg.timeout_ms + 999) / 1000);
    vals[0] = db->cfg.host;
    vals[1] = db->cfg.port;
    vals[2] = db->cfg.user;
    vals[3] = db->cfg.dbname;
    vals[4] = db->cfg.app_name;
    vals[5] = options;
    vals[6] = timeout;
    vals[7] = "1";
    vals[8] = NULL;

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
            if (q->stmt < 0) {
                conn_drop(c, "preparing statements timed out");
                break;
            }
            if (q->cb) {
                struct db_result r = {DB_ERR_TIMEOUT, "", "query deadline passed", NULL};
                db_cb cb = q->cb;

                q->cb = NULL;
                db->stats.queries++;
                db->stats.timeouts++;
                cb(q->arg, &r);
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
    db->conns = calloc((size_t)cfg->pool_size, sizeof(struct conn));
    if (db->stmt_names == NULL || db->conns == NULL)
        abort();
    for (int i = 0; i < cfg->nsql; i++) {
        char name[16];

        snprintf(name, sizeof(name), "s%d", i);
        if ((db->stmt_names[i] = strdup(name)) == NULL)
            abort();
    }
    uv_timer_init(loop, &db->janitor);
    db->janitor.data = db;
    uv_timer_start(&db->janitor, on_janitor, JANITOR_MS, JANITOR_MS);
    db->open_handles = 1;
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
    free(db->conns);
    free(db);
}
