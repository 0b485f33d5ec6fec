/* service.c - service_run(): config, loop, NATS queue-group subscriptions,
 * the PostgreSQL pool, request lifetimes and graceful shutdown. */
#include "service.h"

#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bus.h"
#include "check.h"
#include "cfg.h"
#include "discovery.h"
#include "envelope.h"
#include "health.h"
#include "log.h"
#include "outbox.h"
#include "urlenc.h"

#define SERVICE_VERSION "1.0.0" /* what $SRV.INFO reports */

/* Everything one request owns; freed when it is answered. */
struct req_impl {
    struct request pub;   /* first: handlers see only this */
    struct service *svc;
    natsMsg *msg;
    json_t *json;
    request_db_cb db_cb;
    int stmt;
    int endpoint;
    struct alloc *allocs;
    uint64_t started;
};

struct alloc {
    struct alloc *next;
    max_align_t data[];
};

struct service {
    const struct service_def *def;
    uv_loop_t *loop;
    struct bus *bus;
    struct db *db;
    struct outbox *outbox;
    struct health *health;
    struct discovery *discovery;
    const char **subjects;  /* the endpoints', for discovery */
    size_t nendpoints;
    const char **sql;      /* the service's statements, then the outbox's */
    bool *emits;           /* statement i writes outbox rows */
    uv_signal_t sigterm, sigint;
    uv_timer_t shutdown_timer;
    uv_prepare_t turn_end;       /* sends what request_gather() gathered */
    struct gather *gathering;    /* those holding requests this turn */
    long inflight;
    bool stopping, subs_stopped, closing;
    int exit_code;

    /* configuration */
    const char *nats_url, *log_level, *pg_host, *pg_port, *pg_user, *pg_db, *pg_gssencmode;
    long pool_size, pipeline_depth, queue_max, db_timeout_ms, shutdown_ms, max_inflight;
    const char *events_stream, *health_host;
    long events_enabled, events_max_age_s, events_max_bytes, events_replicas, outbox_sweep_ms;
    long health_port;
};

static struct service svc_global;

static const struct cfg_key cfg_keys[] = {
    CFG_STR("NATS_URL", &svc_global.nats_url, "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated"),
    CFG_STR("LOG_LEVEL", &svc_global.log_level, "info", "debug, info, warn or error"),
    CFG_STR("PGHOST", &svc_global.pg_host, "127.0.0.1", "PostgreSQL host"),
    CFG_STR("PGPORT", &svc_global.pg_port, "5432", "PostgreSQL port"),
    CFG_STR("PGUSER", &svc_global.pg_user, "postgres", "PostgreSQL user (password: PGPASSWORD)"),
    CFG_STR("PGDATABASE", &svc_global.pg_db, "app", "PostgreSQL database"),
    /* Off by default: libpq's "prefer" looks for a Kerberos credential
     * cache at every connect, and paging in Kerberos costs an idle service
     * 0.7 MiB of its memory, for a database that is rarely reached by it. */
    CFG_STR("PGGSSENCMODE", &svc_global.pg_gssencmode, "disable", "GSSAPI encryption to PostgreSQL: disable, prefer or require"),
    CFG_INT("DB_POOL_SIZE", &svc_global.pool_size, "2", 1, 64, "PostgreSQL connections per process"),
    CFG_INT("DB_PIPELINE_DEPTH", &svc_global.pipeline_depth, "64", 1, 1024, "queries in flight on one connection"),
    CFG_INT("DB_QUEUE_MAX", &svc_global.queue_max, "1024", 0, 1000000, "queries waiting for a connection"),
    CFG_INT("DB_TIMEOUT_MS", &svc_global.db_timeout_ms, "5000", 1, 600000, "deadline of one query (also statement_timeout)"),
    CFG_INT("SERVICE_MAX_INFLIGHT", &svc_global.max_inflight, "4096", 1, 1000000, "requests handled at once; more get 503"),
    CFG_INT("SHUTDOWN_TIMEOUT_MS", &svc_global.shutdown_ms, "10000", 0, 600000, "how long SIGTERM waits for requests in flight"),
    CFG_INT("EVENTS_ENABLED", &svc_global.events_enabled, "1", 0, 1, "1: state changes write events; 0: they do not (to measure the outbox's cost)"),
    CFG_STR("EVENTS_STREAM", &svc_global.events_stream, "EVENTS", "JetStream stream of events.>, created if missing"),
    CFG_INT("EVENTS_MAX_AGE_S", &svc_global.events_max_age_s, "604800", 0, 315360000, "how long the stream keeps events (0: until EVENTS_MAX_BYTES)"),
    CFG_INT("EVENTS_MAX_BYTES", &svc_global.events_max_bytes, "1073741824", -1, 1099511627776, "the stream's size bound; oldest events go first (-1: none)"),
    CFG_INT("EVENTS_REPLICAS", &svc_global.events_replicas, "1", 1, 5, "stream replicas (3 on a NATS cluster)"),
    CFG_INT("OUTBOX_SWEEP_MS", &svc_global.outbox_sweep_ms, "5000", 0, 3600000, "how often the relay looks for events other processes left (0: never)"),
    CFG_STR("HEALTH_HOST", &svc_global.health_host, "127.0.0.1", "address of the /livez and /readyz listener"),
    CFG_INT("HEALTH_PORT", &svc_global.health_port, "0", 0, 65535, "port of the /livez and /readyz listener (0: none)"),
};

#define NKEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

static void maybe_finish(struct service *svc);

void *request_alloc(struct request *pub, size_t size)
{
    struct req_impl *r = (struct req_impl *)pub;
    struct alloc *a = malloc(sizeof(*a) + size);

    if (a == NULL)
        abort();
    a->next = r->allocs;
    r->allocs = a;
    return a->data;
}

const char *request_param(struct request *req, const char *name)
{
    char key[64];

    snprintf(key, sizeof(key), ENV_PARAM_PREFIX "%s", name);
    return bus_header(((struct req_impl *)req)->msg, key);
}

const char *request_query(struct request *req, const char *name)
{
    size_t size = strlen(req->query) + 1;
    char *out = request_alloc(req, size);

    return url_query_get(req->query, name, out, size) >= 0 ? out : NULL;
}

bool request_page(struct request *req, struct page *p)
{
    const char *limit = request_query(req, "limit"), *offset = request_query(req, "offset");
    long n;

    if (limit && (check_int32(limit, &n) != 0 || n < 1 || n > PAGE_MAX)) {
        request_error(req, 400, "Query parameter 'limit' must be an integer from 1 to %d.",
                      PAGE_MAX);
        return false;
    }
    if (offset && (check_int32(offset, &n) != 0 || n < 0)) {
        request_error(req, 400, "Query parameter 'offset' must be an integer from 0.");
        return false;
    }
    p->limit = limit;
    p->offset = offset ? offset : "0";
    return true;
}

json_t *request_json(struct request *pub, const char **err)
{
    struct req_impl *r = (struct req_impl *)pub;
    json_error_t jerr;

    if (r->json)
        return r->json;
    if (pub->body_len == 0) {
        *err = "the request body is empty; a JSON object is expected";
        return NULL;
    }
    r->json = json_loadb(pub->body, (size_t)pub->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (r->json == NULL) {
        char *msg = request_alloc(pub, sizeof(jerr.text) + 32);

        snprintf(msg, sizeof(jerr.text) + 32, "invalid JSON: %s", jerr.text);
        *err = msg;
    }
    return r->json;
}

json_t *request_body(struct request *req, const struct field *fields)
{
    const char *why;
    char err[160];
    json_t *body = request_json(req, &why);

    if (body == NULL) {
        request_error(req, 400, "%s", why);
        return NULL;
    }
    if (check_object(body, fields, err, sizeof(err)) != 0) {
        request_error(req, 400, "%s", err);
        return NULL;
    }
    return body;
}

static void request_free(struct req_impl *r)
{
    struct service *svc = r->svc;

    while (r->allocs) {
        struct alloc *a = r->allocs;

        r->allocs = a->next;
        free(a);
    }
    json_decref(r->json);
    bus_msg_free(r->msg);
    free(r);
    svc->inflight--;
    maybe_finish(svc);
}

static void reply_raw(struct req_impl *r, int status, const char *body, size_t len)
{
    const char *reply = bus_reply_subject(r->msg);
    char status_text[8];
    const char *headers[] = {ENV_STATUS, status_text};

    snprintf(status_text, sizeof(status_text), "%d", status);
    if (reply &&
        bus_reply(r->svc->bus, reply, headers, 1, body, len) != 0)
        log_warn(r->pub.id, "reply to %s lost: not connected", r->pub.path);
    discovery_record(r->svc->discovery, r->endpoint, status, uv_hrtime() - r->started);
    log_debug(r->pub.id, "%s %s -> %d in %.3f ms", r->pub.method, r->pub.path, status,
              (double)(uv_hrtime() - r->started) / 1e6);
    request_free(r);
}

/* Replies are serialised on the loop thread into this buffer, which the
 * publish copies: json_dumps would grow a buffer by doubling and copy it
 * once more for every reply (about a quarter of a 20-row list's cost). */
#define REPLY_BUF (64 * 1024)

void request_reply(struct request *pub, int status, json_t *body)
{
    static char buf[REPLY_BUF];
    struct req_impl *r = (struct req_impl *)pub;
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t n;
    char *big;

    if (body == NULL) {
        reply_raw(r, status, "null", 4);
        return;
    }
    n = json_dumpb(body, buf, sizeof(buf), flags);
    if (n > 0 && n <= sizeof(buf)) {
        json_decref(body);
        reply_raw(r, status, buf, n);
        return;
    }
    big = n > 0 ? json_dumps(body, flags) : NULL; /* larger than the buffer */
    json_decref(body);
    if (big == NULL) {
        log_error(pub->id, "could not serialise the reply");
        reply_raw(r, 500, "{\"error\":\"internal error\"}", 26);
        return;
    }
    reply_raw(r, status, big, strlen(big));
    free(big);
}

void request_reply_json_text(struct request *req, int status, char *json, size_t len)
{
    reply_raw((struct req_impl *)req, status, json, json_text_compact(json, len));
}

/* Lists are written into one buffer kept between replies, unless a large
 * one grew it past REPLY_BUF. */
static struct strbuf rows_buf;

static void reply_rows_buf(struct req_impl *r, int status)
{
    reply_raw(r, status, rows_buf.data, rows_buf.len);
    if (rows_buf.cap > REPLY_BUF)
        sb_free(&rows_buf);
    rows_buf.len = 0;
}

void request_reply_row(struct request *req, int status, const PGresult *res, int row,
                       const struct json_column *cols, int ncols)
{
    json_text_rows(&rows_buf, res, row, row + 1, cols, ncols);
    reply_rows_buf((struct req_impl *)req, status);
}

/* {"<list>":[ or [ */
static void list_open(const char *list)
{
    if (list) {
        sb_add(&rows_buf, "{", 1);
        json_text_string(&rows_buf, list, strlen(list));
        sb_add(&rows_buf, ":", 1);
    }
    sb_add(&rows_buf, "[", 1);
}

static void list_close(struct request *req, int status, const char *list)
{
    sb_add(&rows_buf, list ? "]}" : "]", list ? 2 : 1);
    reply_rows_buf((struct req_impl *)req, status);
}

void request_reply_rows(struct request *req, int status, const char *list, const PGresult *res,
                        const struct json_column *cols, int ncols)
{
    list_open(list);
    json_text_rows(&rows_buf, res, 0, PQntuples(res), cols, ncols);
    list_close(req, status, list);
}

void request_reply_values(struct request *req, int status, const char *list, const PGresult *res)
{
    list_open(list);
    json_text_values(&rows_buf, res, 0, PQntuples(res), 0);
    list_close(req, status, list);
}

void request_error(struct request *req, int status, const char *fmt, ...)
{
    struct req_impl *r = (struct req_impl *)req;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    request_reply(req, status, r->svc->def->error_body(status, msg));
}

void request_db_error(struct request *req, const struct db_result *res)
{
    static const struct {
        int status;
        const char *message;
    } answers[] = {
        [DB_OK] = {500, "A storage error occurred."},
        [DB_ERR_UNAVAILABLE] = {503, "Data service not ready. Wait a minute and try again."},
        [DB_ERR_TIMEOUT] = {504, "The data service did not answer in time."},
        [DB_ERR_BUSY] = {503, "Data service not ready. Wait a minute and try again."},
        [DB_ERR_CONFLICT] = {409, "The request conflicts with the current state."},
        [DB_ERR_NOT_FOUND] = {404, "A referenced record does not exist."},
        [DB_ERR_INVALID] = {400, "A value is not valid for its field."},
        [DB_ERR_INTERNAL] = {500, "A storage error occurred."},
    };
    int code = answers[res->err].status;

    if (code >= 500)
        log_warn(req->id, "database %s: %s %s", db_err_name(res->err), res->sqlstate,
                 res->message);
    request_error(req, code, "%s", answers[res->err].message);
}

/* Statement 'stmt' answered: if it wrote events, the relay has work. */
static void after_statement(struct service *svc, int stmt, const struct db_result *res)
{
    if (res->err == DB_OK && svc->emits[stmt])
        outbox_kick(svc->outbox);
}

static void on_request_db(void *arg, const struct db_result *res)
{
    struct req_impl *r = arg;

    after_statement(r->svc, r->stmt, res);
    r->db_cb(&r->pub, res);
}

void request_query_db(struct request *req, int stmt, int nparams, const char *const *values,
                      request_db_cb cb)
{
    struct req_impl *r = (struct req_impl *)req;

    r->db_cb = cb;
    r->stmt = stmt;
    db_query(req->db, stmt, nparams, values, on_request_db, r);
}

/* ---- group commit ------------------------------------------------------ */

/* The requests of one gathered statement, in the order of its $1. */
struct gathered {
    struct gather *g;
    int stmt, n;
    struct request *req[];
};

static void on_gathered(void *arg, const struct db_result *res);

/* A request's values as a JSON array of strings and nulls; NULL when one
 * is not UTF-8. */
static json_t *gather_item(const struct gather *g, struct request *req)
{
    const char *values[GATHER_PARAMS];
    json_t *item = json_array();

    if (item == NULL)
        abort();
    g->params(req, values);
    for (int k = 0; k < g->nparams; k++) {
        json_t *v = values[k] ? json_string(values[k]) : json_null();

        if (v == NULL) {
            json_decref(item);
            return NULL;
        }
        if (json_array_append_new(item, v) != 0)
            abort();
    }
    return item;
}

static void gather_send(struct gather *g, struct request *const *reqs, int n)
{
    struct gathered *b = malloc(sizeof(*b) + (size_t)n * sizeof(b->req[0]));
    const char *values[GATHER_PARAMS];
    json_t *list;
    char *text;

    if (b == NULL)
        abort();
    b->g = g;
    b->stmt = n == 1 ? g->one : g->many;
    b->n = n;
    memcpy(b->req, reqs, (size_t)n * sizeof(b->req[0]));
    if (n == 1) {
        g->params(reqs[0], values);
        db_query(reqs[0]->db, g->one, g->nparams, values, on_gathered, b);
        return;
    }
    if ((list = json_array()) == NULL)
        abort();
    b->n = 0;
    for (int i = 0; i < n; i++) {
        json_t *item = gather_item(g, reqs[i]);

        if (item == NULL) { /* not UTF-8: as PostgreSQL would refuse it alone */
            g->cb(reqs[i], &(const struct db_result){.err = DB_ERR_INVALID, .sqlstate = "",
                                                     .message = "not UTF-8"}, -1);
            continue;
        }
        if (json_array_append_new(list, item) != 0)
            abort();
        b->req[b->n++] = reqs[i];
    }
    if ((text = json_dumps(list, JSON_COMPACT)) == NULL)
        abort();
    json_decref(list);
    db_query(reqs[0]->db, g->many, 1, (const char *const[]){text}, on_gathered, b);
    free(text);
}

static void on_gathered(void *arg, const struct db_result *res)
{
    struct gathered *b = arg;
    struct gather *g = b->g;

    after_statement(&svc_global, b->stmt, res);
    if (res->err == DB_OK && PQntuples(res->res) == b->n) {
        for (int i = 0; i < b->n; i++)
            g->cb(b->req[i], res, i);
    } else if (b->n == 1) {
        struct db_result e = *res;

        if (e.err == DB_OK) { /* the statement broke its promise of a row each */
            e = (struct db_result){.err = DB_ERR_INTERNAL, .sqlstate = "",
                                   .message = "a gathered statement returned no row"};
        }
        g->cb(b->req[0], &e, -1);
    } else {
        log_info(NULL, "a statement of %d requests failed (%s %s): each goes alone", b->n,
                 res->sqlstate, res->message);
        for (int i = 0; i < b->n; i++)
            gather_send(g, &b->req[i], 1);
    }
    free(b);
}

/* Sends what gathered this turn: together, or one by one when few. */
static void gather_flush(struct gather *g)
{
    int n = g->n;

    g->n = 0;
    if (n >= GATHER_MIN) {
        gather_send(g, g->queue, n);
        return;
    }
    for (int i = 0; i < n; i++)
        gather_send(g, &g->queue[i], 1);
}

static void on_turn_end(uv_prepare_t *p)
{
    struct service *svc = p->data;

    uv_prepare_stop(p);
    while (svc->gathering) {
        struct gather *g = svc->gathering;

        svc->gathering = g->next;
        g->listed = false;
        gather_flush(g);
    }
}

void request_gather(struct request *req, struct gather *g)
{
    struct service *svc = &svc_global;

    if (g->nparams > GATHER_PARAMS) { /* a service's table is wrong: fail loudly */
        log_error(req->id, "a gather with %d parameters (at most %d)", g->nparams,
                  GATHER_PARAMS);
        abort();
    }
    g->queue[g->n++] = req;
    if (g->n == GATHER_MAX) { /* full: at once (it stays listed, empty) */
        gather_flush(g);
        return;
    }
    if (!g->listed) {
        g->listed = true;
        g->next = svc->gathering;
        svc->gathering = g;
        uv_prepare_start(&svc->turn_end, on_turn_end);
    }
}

static const char *header_or(natsMsg *msg, const char *key, const char *def)
{
    const char *v = bus_header(msg, key);

    return v ? v : def;
}

static void on_message(void *arg, natsMsg *msg)
{
    const struct endpoint *ep = arg;
    struct service *svc = &svc_global;
    struct req_impl *r = calloc(1, sizeof(*r));

    if (r == NULL)
        abort();
    r->svc = svc;
    r->msg = msg;
    r->endpoint = (int)(ep - svc->def->endpoints);
    r->started = uv_hrtime();
    r->pub.method = header_or(msg, ENV_METHOD, "");
    r->pub.path = header_or(msg, ENV_PATH, "");
    r->pub.query = header_or(msg, ENV_QUERY, "");
    r->pub.id = header_or(msg, ENV_REQUEST_ID, "");
    r->pub.content_type = bus_header(msg, ENV_CONTENT_TYPE);
    r->pub.body = natsMsg_GetData(msg);
    r->pub.body_len = natsMsg_GetDataLength(msg);
    r->pub.db = svc->db;
    r->pub.bus = svc->bus;
    svc->inflight++;
    if (svc->inflight > svc->max_inflight) {
        request_error(&r->pub, 503, "Too many requests in flight; try again.");
        return;
    }
    ep->fn(&r->pub);
}

static void on_closed_handle(uv_handle_t *h)
{
}

static void on_db_closed(void *arg)
{
    struct service *svc = arg;

    db_free(svc->db);
    svc->db = NULL;
    uv_close((uv_handle_t *)&svc->sigterm, on_closed_handle);
    uv_close((uv_handle_t *)&svc->sigint, on_closed_handle);
    uv_close((uv_handle_t *)&svc->shutdown_timer, on_closed_handle);
    uv_close((uv_handle_t *)&svc->turn_end, on_closed_handle);
    log_info(NULL, "stopped");
}

static void on_bus_closed(void *arg)
{
    struct service *svc = arg;

    bus_free(svc->bus);
    svc->bus = NULL;
    db_close(svc->db, on_db_closed, svc);
}

static void on_outbox_closed(void *arg)
{
    struct service *svc = arg;

    outbox_free(svc->outbox);
    svc->outbox = NULL;
    bus_close(svc->bus, on_bus_closed, svc);
}

static void on_service_stopped(void *arg)
{
    struct service *svc = arg;

    uv_timer_stop(&svc->shutdown_timer);
    log_info(NULL, "all work done; publishing what the outbox holds, then closing");
    outbox_close(svc->outbox, on_outbox_closed, svc);
}

/* The last step of a shutdown: nothing is in flight and no more can come. */
static void maybe_finish(struct service *svc)
{
    if (!svc->stopping || svc->closing || !svc->subs_stopped || svc->inflight > 0)
        return;
    svc->closing = true;
    health_close(svc->health);
    if (svc->def->stop)
        svc->def->stop(on_service_stopped, svc); /* the shutdown timer still bounds it */
    else
        on_service_stopped(svc);
}

static void on_subs_stopped(void *arg)
{
    struct service *svc = arg;

    svc->subs_stopped = true;
    maybe_finish(svc);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    struct service *svc = t->data;

    /* Their handlers still hold the bus and the pool: nothing can be closed
     * cleanly under them, so end here and say so. */
    log_error(NULL, "shutdown timeout: %ld requests still in flight; exiting", svc->inflight);
    exit(1);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct service *svc = sig->data;

    if (svc->stopping)
        return;
    svc->stopping = true;
    log_info(NULL, "%s: no new requests; finishing %ld in flight",
             signum == SIGTERM ? "SIGTERM" : "SIGINT", svc->inflight);
    uv_timer_start(&svc->shutdown_timer, on_shutdown_timeout, (uint64_t)svc->shutdown_ms, 0);
    bus_stop_subscriptions(svc->bus, on_subs_stopped, svc);
}

static void on_bus_state(void *arg, bool connected)
{
    struct service *svc = arg;

    if (svc->outbox)
        outbox_on_bus(svc->outbox, connected);
    if (svc->def->bus_state)
        svc->def->bus_state(connected);
}

static bool is_ready(void *arg)
{
    struct service *svc = arg;

    return !svc->stopping && bus_connected(svc->bus) && db_ready(svc->db) &&
           outbox_ready(svc->outbox);
}

/* The service's statements followed by the relay's; a statement that
 * inserts into the outbox kicks the relay when it succeeds. */
static void collect_subjects(struct service *svc, const struct service_def *def)
{
    while (def->endpoints[svc->nendpoints].subject)
        svc->nendpoints++;
    if ((svc->subjects = calloc(svc->nendpoints + 1, sizeof(*svc->subjects))) == NULL)
        abort();
    for (size_t i = 0; i < svc->nendpoints; i++)
        svc->subjects[i] = def->endpoints[i].subject;
}

static void collect_sql(struct service *svc, const struct service_def *def)
{
    int n = def->nsql + OUTBOX_SQL_COUNT;

    svc->sql = calloc((size_t)n, sizeof(*svc->sql));
    svc->emits = calloc((size_t)n, sizeof(*svc->emits));
    if (svc->sql == NULL || svc->emits == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        svc->sql[i] = i < def->nsql ? def->sql[i] : outbox_sql[i - def->nsql];
        svc->emits[i] = strstr(svc->sql[i], "INSERT INTO outbox") != NULL;
    }
}

static size_t nkeys_of(const struct cfg_key *keys)
{
    size_t n = 0;

    while (keys && keys[n].name)
        n++;
    return n;
}

static int usage(const struct service_def *def, int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--config") == 0) {
        cfg_print(cfg_keys, NKEYS, stdout);
        cfg_print(def->cfg, nkeys_of(def->cfg), stdout);
        return 0;
    }
    fprintf(stderr, "usage: %s [--config]\n", def->name);
    return 1;
}

int service_run(const struct service_def *def, int argc, char **argv)
{
    struct service *svc = &svc_global;
    struct bus_config bc;
    struct db_config dc;

    if (argc > 1)
        return usage(def, argc, argv);
    svc->def = def;
    collect_sql(svc, def);
    collect_subjects(svc, def);
    if (cfg_load(cfg_keys, NKEYS, stderr) != 0 ||
        cfg_load(def->cfg, nkeys_of(def->cfg), stderr) != 0)
        return 1;
    if (log_init(def->name, svc->log_level) != 0) {
        fprintf(stderr, "LOG_LEVEL: '%s' is not debug, info, warn or error\n", svc->log_level);
        return 1;
    }
    if (strcmp(svc->pg_gssencmode, "disable") != 0 && strcmp(svc->pg_gssencmode, "prefer") != 0 &&
        strcmp(svc->pg_gssencmode, "require") != 0) {
        fprintf(stderr, "PGGSSENCMODE: '%s' is not disable, prefer or require\n",
                svc->pg_gssencmode);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    svc->loop = uv_default_loop();

    bc = (struct bus_config){.url = svc->nats_url, .name = def->name,
                             .request_timeout_ms = 5000, .max_pending = 1024,
                             .on_state = on_bus_state, .arg = svc};
    svc->bus = bus_new(svc->loop, &bc);
    if (svc->bus == NULL)
        return 1;
    dc = (struct db_config){.host = svc->pg_host, .port = svc->pg_port, .user = svc->pg_user,
                            .dbname = svc->pg_db, .gssencmode = svc->pg_gssencmode,
                            .app_name = def->name,
                            .options = svc->events_enabled ? NULL : "-c app.events=off",
                            .sql = svc->sql, .nsql = def->nsql + OUTBOX_SQL_COUNT,
                            .pool_size = (int)svc->pool_size,
                            .pipeline_depth = (int)svc->pipeline_depth,
                            .queue_max = (int)svc->queue_max,
                            .timeout_ms = svc->db_timeout_ms};
    svc->db = db_new(svc->loop, &dc);
    if (svc->db == NULL)
        return 1;
    svc->outbox = outbox_new(svc->loop, svc->bus, svc->db, &(struct outbox_config){
        .source = def->name, .stream = svc->events_stream, .max_age_s = svc->events_max_age_s,
        .max_bytes = svc->events_max_bytes, .replicas = svc->events_replicas,
        .sweep_ms = svc->outbox_sweep_ms, .batch = 256, .first_stmt = def->nsql});
    if (svc->outbox == NULL)
        return 1;
    if (svc->health_port > 0 &&
        (svc->health = health_new(svc->loop, svc->health_host, (int)svc->health_port,
                                  is_ready, svc)) == NULL)
        return 1;
    for (const struct endpoint *ep = def->endpoints; ep->subject; ep++) {
        if (bus_subscribe(svc->bus, ep->subject, def->name, on_message,
                          (void *)(uintptr_t)ep) != 0)
            return 1;
    }
    if ((svc->discovery = discovery_new(svc->bus, def->name, SERVICE_VERSION, svc->subjects,
                                        (int)(svc->nendpoints))) == NULL)
        return 1;

    uv_signal_init(svc->loop, &svc->sigterm);
    uv_signal_init(svc->loop, &svc->sigint);
    svc->sigterm.data = svc->sigint.data = svc;
    uv_signal_start(&svc->sigterm, on_signal, SIGTERM);
    uv_signal_start(&svc->sigint, on_signal, SIGINT);
    uv_timer_init(svc->loop, &svc->shutdown_timer);
    uv_prepare_init(svc->loop, &svc->turn_end);
    svc->turn_end.data = svc;
    svc->shutdown_timer.data = svc;

    if (def->start && def->start(&(struct service_ctx){.loop = svc->loop, .bus = svc->bus,
                                                       .db = svc->db, .outbox = svc->outbox}) != 0)
        return 1;
    log_info(NULL, "started: nats %s, postgres %s:%s/%s", svc->nats_url, svc->pg_host,
             svc->pg_port, svc->pg_db);
    uv_run(svc->loop, UV_RUN_DEFAULT);
    uv_loop_close(svc->loop);
    nats_Close();
    return svc->exit_code;
}
