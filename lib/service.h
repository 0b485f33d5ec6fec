/* service.h - a service is data: its subjects and handlers, its SQL and the
 * error shape its clients read. service_run() does the rest: config, loop,
 * NATS queue-group subscriptions, the PostgreSQL pool, graceful SIGTERM. */
#ifndef CORE_SERVICE_H
#define CORE_SERVICE_H

#include <stdarg.h>
#include <stddef.h>
#include <jansson.h>
#include "db.h"
#include "jsontext.h"

struct request;
struct bus;
struct cfg_key;
struct outbox;

/* What a service's start hook gets: the runtime's parts, set up, before the
 * loop runs. */
struct service_ctx {
    uv_loop_t *loop;
    struct bus *bus;
    struct db *db;
    struct outbox *outbox; /* outbox_kick() it after a statement that emits */
};

/* Handles one request on the loop; must end, now or later, in exactly one
 * request_reply*() or request_error*() call. */
typedef void (*handler_fn)(struct request *req);

struct endpoint {
    const char *subject;
    handler_fn fn;
};

struct service_def {
    const char *name;                  /* queue group, log "service", NATS name */
    const struct endpoint *endpoints;  /* ends with {NULL, NULL} */
    const char *const *sql;            /* prepared on every connection */
    int nsql;
    /* Builds the error body this API's clients read, e.g. {"error": msg}. */
    json_t *(*error_body)(int status, const char *message);
    /* Optional: the service's own settings, read with the runtime's and
     * shown by --config; the table ends with a NULL name. */
    const struct cfg_key *cfg;
    /* Optional: work beside the endpoints (e.g. a JetStream consumer).
     * 'start' runs before the loop: 0, or -1 to fail start-up. 'stop' runs
     * on SIGTERM once subscriptions are drained and requests answered: it
     * ends that work, closes its handles, then calls done(arg) on the loop. */
    int (*start)(const struct service_ctx *ctx);
    void (*stop)(void (*done)(void *arg), void *arg);
    /* Optional: NATS connected again, or lost (on the loop). After a
     * reconnect the server may be another one, or have lost JetStream's
     * store: work that set up streams or consumers sets them up again. */
    void (*bus_state)(bool connected);
};

/* Runs the service until SIGTERM or SIGINT, then stops taking work, finishes
 * what is in flight, drains NATS, closes PostgreSQL and returns 0. Returns 1
 * on a configuration or start-up error. */
int service_run(const struct service_def *def, int argc, char **argv);

/* A request as the gateway sent it (proto/envelope.md). Strings are valid
 * until the reply; handlers may read every field. */
struct request {
    const char *method;
    const char *path;
    const char *query;         /* raw, without '?'; "" when none */
    const char *id;            /* X-Request-Id */
    const char *content_type;  /* NULL when none */
    const char *body;
    int body_len;
    struct db *db;
    struct bus *bus;
    void *data;                /* free for the handler */
};

/* The path parameter 'name' (already decoded), or NULL. */
const char *request_param(struct request *req, const char *name);

/* The decoded value of query parameter 'name' (first occurrence), or NULL.
 * Lives until the reply. */
const char *request_query(struct request *req, const char *name);

/* A list's ?limit=&offset= as statement parameters. */
struct page {
    const char *limit;   /* NULL: all rows (LIMIT NULL) */
    const char *offset;  /* "0" when absent */
};
#define PAGE_MAX 10000   /* the largest limit accepted */

/* Reads the page, or answers 400 and returns false. */
bool request_page(struct request *req, struct page *p);

/* Parses the body as one JSON value (duplicate keys rejected). Returns a
 * borrowed value that lives until the reply, or NULL with *err set to a
 * client-readable reason. */
json_t *request_json(struct request *req, const char **err);

struct field;
/* The body parsed and checked against 'fields' (check.h): a borrowed
 * object, or NULL after answering 400 with the reason. */
json_t *request_body(struct request *req, const struct field *fields);

/* Allocates memory that is freed with the request. Never returns NULL. */
void *request_alloc(struct request *req, size_t size);

/* Replies with 'status' and 'body' serialised compactly (steals the
 * reference; NULL sends the JSON null). Ends the request: 'req' is freed. */
void request_reply(struct request *req, int status, json_t *body);

/* Replies with JSON text a statement built (a json column: json_build_object,
 * json_agg), passed on without parsing it again: PostgreSQL's json is valid
 * JSON, and is compacted in place, which PQgetvalue's memory allows.
 * Ends the request. */
void request_reply_json_text(struct request *req, int status, char *json, size_t len);

/* Replies with row 'row' of 'res' as an object: the keys of 'cols' in their
 * order, each with its column's value (jsontext.h). Ends the request. */
void request_reply_row(struct request *req, int status, const PGresult *res, int row,
                       const struct json_column *cols, int ncols);

/* Replies with every row of 'res' so, as {"<list>": [...]}, or as a bare
 * array when 'list' is NULL. Ends the request. */
void request_reply_rows(struct request *req, int status, const char *list, const PGresult *res,
                        const struct json_column *cols, int ncols);

/* Replies with column 0 of every row of 'res', compact JSON text a statement
 * built for each (json_text_values()), as {"<list>": [...]}, or as a bare
 * array when 'list' is NULL. Ends the request. */
void request_reply_values(struct request *req, int status, const char *list, const PGresult *res);

/* Replies with the service's error body. Ends the request. */
void request_error(struct request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Replies to a failed query with the status its error maps to (busy and
 * unavailable 503, timeout 504, conflict 409, not found 404, invalid 400,
 * internal 500) and logs it. Ends the request. */
void request_db_error(struct request *req, const struct db_result *r);

/* Runs statement 'stmt' for this request: 'cb' gets the request back. */
typedef void (*request_db_cb)(struct request *req, const struct db_result *r);
void request_query_db(struct request *req, int stmt, int nparams, const char *const *values,
                      request_db_cb cb);

/* Group commit for one kind of write: the requests of a kind that arrive in
 * one turn of the loop (NATS hands over what it read together) share one
 * statement and one transaction when there are at least GATHER_MIN of them,
 * and none waits for another turn. Fewer run statement 'one' each, with
 * their own parameters (params() fills 'nparams' values, NULL for SQL
 * NULL); more run 'many', whose $1 is a JSON array holding each request's
 * values as an array of strings. Either returns one row per request, in
 * their order, alike. 'cb' gets each request with the result and its row,
 * or with the error (row -1). A statement of many that fails is sent again
 * for each request alone, so an error reaches only the request that causes
 * it. */
#define GATHER_MIN 4     /* fewer go one by one, which costs less */
#define GATHER_MAX 64    /* requests in one statement */
#define GATHER_PARAMS 8
struct gather {
    int one, many, nparams;
    void (*params)(struct request *req, const char **values);
    void (*cb)(struct request *req, const struct db_result *r, int row);
    struct request *queue[GATHER_MAX];
    int n;
    struct gather *next;  /* in the list of those with requests this turn */
    bool listed;
};
#define GATHER(one_, many_, nparams_, params_, cb_)                                        \
    {.one = (one_), .many = (many_), .nparams = (nparams_), .params = (params_), .cb = (cb_)}
void request_gather(struct request *req, struct gather *g);

#endif
