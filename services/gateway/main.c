/* main.c - the gateway: an h2o HTTP/1.1 server on libuv that turns each
 * request into a NATS request on its route's subject, and the reply into
 * the HTTP response (proto/envelope.md). */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <h2o.h>
#include <h2o/socket/uv-binding.h>
#include <jansson.h>

#include "bus.h"
#include "cfg.h"
#include "envelope.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "urlenc.h"

extern const char routes_txt[]; /* proto/routes.txt, embedded at build time */

static struct {
    const char *nats_url, *log_level, *host, *routes_file;
    long port, timeout_ms, max_body, max_connections, max_pending, max_large, shutdown_ms;
} cfg;

static const struct cfg_key cfg_keys[] = {
    CFG_STR("NATS_URL", &cfg.nats_url, "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated"),
    CFG_STR("LOG_LEVEL", &cfg.log_level, "info", "debug, info, warn or error"),
    CFG_STR("GATEWAY_HOST", &cfg.host, "127.0.0.1", "address the gateway listens on"),
    CFG_INT("GATEWAY_PORT", &cfg.port, "8080", 1, 65535, "port the gateway listens on"),
    CFG_INT("GATEWAY_TIMEOUT_MS", &cfg.timeout_ms, "5000", 1, 600000, "how long a service may take before 504"),
    CFG_INT("GATEWAY_MAX_BODY", &cfg.max_body, "1048576", 0, 1073741824, "largest request body in bytes; larger gets 413"),
    CFG_INT("GATEWAY_MAX_CONNECTIONS", &cfg.max_connections, "1024", 1, 1000000, "client connections at once; more are closed"),
    CFG_INT("GATEWAY_MAX_PENDING", &cfg.max_pending, "4096", 1, 1000000, "requests waiting for services at once; more get 503"),
    CFG_INT("GATEWAY_MAX_LARGE_REPLIES", &cfg.max_large, "67108864", 0, 1073741824, "bytes of replies larger than one NATS message held at once; over it: 502"),
    CFG_INT("SHUTDOWN_TIMEOUT_MS", &cfg.shutdown_ms, "10000", 0, 600000, "how long SIGTERM waits for requests in flight"),
    CFG_STR("ROUTES_FILE", &cfg.routes_file, "", "route table to use instead of the built-in proto/routes.txt"),
};
#define NKEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

static struct {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer;
    uint64_t drain_deadline;
    struct bus *bus;
    struct route_table routes;
    long connections, in_flight;
    bool stopping;
    uint64_t id_prefix, id_counter;
    double start_time;
} gw;

/* One request waiting for its NATS reply; lives in the request's pool. */
struct pending {
    h2o_req_t *req;
    uint64_t handle;
    uint64_t started;
    int route;
    const char *request_id;
};

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static h2o_iovec_t find_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);

    return i < 0 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static void add_header(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value,
                          len);
}

/* Sends the response with CORS headers (as flask-cors does: the Origin
 * echoed, or '*' without one) and the request id. */
static void add_cors_and_id(h2o_req_t *req, const char *request_id)
{
    h2o_iovec_t origin = find_header(req, H2O_STRLIT("origin"));

    if (origin.base) {
        add_header(req, "access-control-allow-origin", origin.base, origin.len);
        add_header(req, "vary", H2O_STRLIT("Origin"));
    } else {
        add_header(req, "access-control-allow-origin", H2O_STRLIT("*"));
    }
    add_header(req, "x-request-id", request_id, strlen(request_id));
}

static void respond(h2o_req_t *req, const char *request_id, int route, uint64_t started,
                    int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason(status);
    if (content_type)
        add_header(req, "content-type", content_type, strlen(content_type));
    add_cors_and_id(req, request_id);
    req->res.content_length = len;
    metrics_count(route, status, uv_hrtime() - started);
    log_debug(request_id, "%.*s %.*s -> %d in %.3f ms", (int)req->method.len, req->method.base,
              (int)req->path.len, req->path.base, status,
              (double)(uv_hrtime() - started) / 1e6);
    h2o_send_inline(req, body, len);
}

/* An error in the body style of the route's API; 'style_route' names the
 * route whose style applies (NULL: the default), 'route' the metrics row. */
static void respond_error_as(h2o_req_t *req, const char *request_id, int route,
                             const struct route *style_route, uint64_t started, int status,
                             const char *message)
{
    json_t *j = errbody(style_route ? style_route->errors : ERRBODY_ERROR, status, message);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    respond(req, request_id, route, started, status, "application/json",
            text ? text : "{\"error\":\"error\"}", text ? strlen(text) : 17);
    free(text);
}

static void respond_error(h2o_req_t *req, const char *request_id, int route, uint64_t started,
                          int status, const char *message)
{
    respond_error_as(req, request_id, route, route < gw.routes.n ? &gw.routes.routes[route] : NULL,
                     started, status, message);
}

/* The client's X-Request-Id when it is sane, else a fresh one. */
static const char *request_id_of(h2o_req_t *req)
{
    h2o_iovec_t v = find_header(req, H2O_STRLIT("x-request-id"));
    char *id;

    if (v.base && v.len >= 1 && v.len <= 128) {
        size_t i;

        for (i = 0; i < v.len; i++) {
            char c = v.base[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-'))
                break;
        }
        if (i == v.len) {
            id = h2o_mem_alloc_pool(&req->pool, v.len + 1);
            memcpy(id, v.base, v.len);
            id[v.len] = '\0';
            return id;
        }
    }
    id = h2o_mem_alloc_pool(&req->pool, 33);
    snprintf(id, 33, "%016" PRIx64 "%016" PRIx64, gw.id_prefix, ++gw.id_counter);
    return id;
}

static bool is_json(h2o_iovec_t ct)
{
    size_t n = ct.len;
    const char *semi = memchr(ct.base, ';', ct.len);

    if (semi)
        n = (size_t)(semi - ct.base);
    while (n > 0 && ct.base[n - 1] == ' ')
        n--;
    if (n == 16 && strncasecmp(ct.base, "application/json", 16) == 0)
        return true;
    return n > 17 && strncasecmp(ct.base, "application/", 12) == 0 &&
           strncasecmp(ct.base + n - 5, "+json", 5) == 0;
}

static void on_pending_dispose(void *p)
{
    struct pending *pd = p;

    /* The request is gone (answered or abandoned): a late reply finds nothing. */
    if (pd->handle) {
        bus_cancel(gw.bus, pd->handle);
        pd->handle = 0;
        gw.in_flight--;
    }
}

/* What the client hears when the bus ends a request without an answer. */
static const struct {
    int status;
    const char *message;
} bus_failures[] = {
    [BUS_NO_RESPONDERS] = {503, "No service is available for this route right now."},
    [BUS_TIMEOUT] = {504, "The service did not answer in time."},
    [BUS_UNAVAILABLE] = {503, "The message bus is not available."},
    [BUS_TOO_LARGE] = {502, "The answer is too large for the gateway to hold; ask for fewer records."},
    [BUS_BAD_REPLY] = {502, "The service sent an invalid reply."},
};

static void on_reply(void *arg, enum bus_status status, natsMsg *reply)
{
    struct pending *pd = arg;
    h2o_req_t *req = pd->req;
    const char *st, *ct, *allow;
    long code = 200;

    pd->handle = 0;
    gw.in_flight--;
    if (status != BUS_OK) {
        if (status == BUS_NO_RESPONDERS)
            add_header(req, "retry-after", H2O_STRLIT("1"));
        respond_error(req, pd->request_id, pd->route, pd->started, bus_failures[status].status,
                      bus_failures[status].message);
        return;
    }
    st = bus_header(reply, ENV_STATUS);
    if (st && cfg_parse_int(st, 100, 599, &code) != 0) {
        bus_msg_free(reply);
        respond_error(req, pd->request_id, pd->route, pd->started,
                      bus_failures[BUS_BAD_REPLY].status, bus_failures[BUS_BAD_REPLY].message);
        return;
    }
    ct = bus_header(reply, ENV_CONTENT_TYPE);
    allow = bus_header(reply, ENV_ALLOW);
    if (allow)
        add_header(req, "allow", h2o_strdup(&req->pool, allow, SIZE_MAX).base, strlen(allow));
    respond(req, pd->request_id, pd->route, pd->started, (int)code,
            ct ? h2o_strdup(&req->pool, ct, SIZE_MAX).base : "application/json",
            natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply));
    bus_msg_free(reply);
}

static void send_text(h2o_req_t *req, const char *rid, uint64_t started, int status,
                      const char *ct, const char *body)
{
    respond(req, rid, ROUTE_UNMATCHED, started, status, ct, body, strlen(body));
}

/* /livez, /readyz and /metrics; returns false for any other path. */
static bool serve_own(h2o_req_t *req, const char *rid, uint64_t started, h2o_iovec_t path)
{
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/livez"))) {
        send_text(req, rid, started, 200, "application/json", "{\"status\":\"ok\"}");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/readyz"))) {
        if (gw.stopping)
            send_text(req, rid, started, 503, "application/json",
                      "{\"status\":\"stopping\",\"checks\":{\"nats\":\"ok\"}}");
        else if (!bus_connected(gw.bus))
            send_text(req, rid, started, 503, "application/json",
                      "{\"status\":\"unavailable\",\"checks\":{\"nats\":\"down\"}}");
        else
            send_text(req, rid, started, 200, "application/json",
                      "{\"status\":\"ok\",\"checks\":{\"nats\":\"ok\"}}");
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        struct bus_stats bs;
        size_t size = 64 * 1024, len;
        char *buf = h2o_mem_alloc_pool(&req->pool, size);

        bus_get_stats(gw.bus, &bs);
        len = metrics_render(buf, size, &gw.routes, &bs, gw.in_flight, gw.connections,
                             gw.start_time);
        respond(req, rid, ROUTE_UNMATCHED, started, 200, "text/plain; version=0.0.4", buf, len);
    } else {
        return false;
    }
    return true;
}

static void preflight(h2o_req_t *req, const char *rid, uint64_t started, h2o_iovec_t path)
{
    char allow[64], allow_all[80];
    const struct route *r;
    struct route_param params[ROUTE_PARAMS_MAX];
    int np;
    h2o_iovec_t acrh = find_header(req, H2O_STRLIT("access-control-request-headers"));

    /* "OPTIONS" matches no route's method: a known path is ROUTE_NO_METHOD. */
    if (routes_match(&gw.routes, "OPTIONS", path.base, path.len, &r, params, &np, allow,
                     sizeof(allow)) != ROUTE_NO_METHOD) {
        respond_error(req, rid, ROUTE_UNMATCHED, started, 404, "Not found.");
        return;
    }
    snprintf(allow_all, sizeof(allow_all), "%s, OPTIONS", allow);
    add_header(req, "allow", h2o_strdup(&req->pool, allow_all, SIZE_MAX).base,
               strlen(allow_all));
    add_header(req, "access-control-allow-methods",
               H2O_STRLIT("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"));
    if (acrh.base)
        add_header(req, "access-control-allow-headers", acrh.base, acrh.len);
    respond(req, rid, ROUTE_UNMATCHED, started, 200, "text/html; charset=utf-8", "", 0);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    uint64_t started = uv_hrtime();
    const char *rid = request_id_of(req);
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t path = h2o_iovec_init(req->path.base, plen);
    char method[8], allow[64];
    const struct route *r;
    struct route_param params[ROUTE_PARAMS_MAX];
    int np, nh = 0, route;
    const char *headers[2 * (5 + ROUTE_PARAMS_MAX)];
    h2o_iovec_t ct;
    struct pending *pd;
    enum bus_status why;

    if (serve_own(req, rid, started, path))
        return 0;
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
        preflight(req, rid, started, path);
        return 0;
    }
    snprintf(method, sizeof(method), "%.*s", (int)req->method.len, req->method.base);
    switch (routes_match(&gw.routes, method, path.base, path.len, &r, params, &np, allow,
                         sizeof(allow))) {
    case ROUTE_NO_PATH:
        respond_error(req, rid, ROUTE_UNMATCHED, started, 404, "Not found.");
        return 0;
    case ROUTE_NO_METHOD:
        add_header(req, "allow", h2o_strdup(&req->pool, allow, SIZE_MAX).base, strlen(allow));
        respond_error_as(req, rid, ROUTE_UNMATCHED, r, started, 405,
                         "Method not allowed for this path.");
        return 0;
    case ROUTE_FOUND:
        break;
    }
    route = (int)(r - gw.routes.routes);
    ct = find_header(req, H2O_STRLIT("content-type"));
    if (req->entity.base && req->entity.len > 0 && (ct.base == NULL || !is_json(ct))) {
        respond_error(req, rid, route, started, 415,
                      "The request body must be JSON (Content-Type: application/json).");
        return 0;
    }

    headers[nh++] = ENV_METHOD;
    headers[nh++] = h2o_strdup(&req->pool, method, SIZE_MAX).base;
    headers[nh++] = ENV_PATH;
    headers[nh++] = h2o_strdup(&req->pool, path.base, path.len).base;
    headers[nh++] = ENV_REQUEST_ID;
    headers[nh++] = rid;
    if (req->query_at != SIZE_MAX && req->query_at + 1 < req->path.len) {
        headers[nh++] = ENV_QUERY;
        headers[nh++] = h2o_strdup(&req->pool, req->path.base + req->query_at + 1,
                                   req->path.len - req->query_at - 1).base;
    }
    if (ct.base) {
        headers[nh++] = ENV_CONTENT_TYPE;
        headers[nh++] = h2o_strdup(&req->pool, ct.base, ct.len).base;
    }
    for (int i = 0; i < np; i++) {
        size_t klen = sizeof(ENV_PARAM_PREFIX) + params[i].name_len;
        char *key = h2o_mem_alloc_pool(&req->pool, klen);
        char *val = h2o_mem_alloc_pool(&req->pool, params[i].value_len + 1);
        int n = url_decode(params[i].value, params[i].value_len, val, 0);

        for (int k = 0; k < n; k++)
            if ((unsigned char)val[k] < 0x20 || val[k] == 0x7f)
                n = -1;
        if (n < 0) {
            respond_error(req, rid, route, started, 400, "The path holds an invalid escape.");
            return 0;
        }
        snprintf(key, klen, ENV_PARAM_PREFIX "%.*s", (int)params[i].name_len, params[i].name);
        headers[nh++] = key;
        headers[nh++] = val;
    }

    pd = h2o_mem_alloc_shared(&req->pool, sizeof(*pd), on_pending_dispose);
    *pd = (struct pending){.req = req, .started = started, .route = route, .request_id = rid};
    pd->handle = bus_request(gw.bus, r->subject, headers, nh / 2,
                             req->entity.base ? req->entity.base : "", (int)req->entity.len,
                             BUS_REPLY_TO, on_reply, pd, &why);
    if (pd->handle == 0) {
        respond_error(req, rid, route, started, 503, "The message bus is not available.");
        return 0;
    }
    gw.in_flight++;
    return 0;
}

/* ---- the errors h2o answers itself ----------------------------------------- */

/* h2o answers a few errors before any handler runs: a body over
 * GATEWAY_MAX_BODY (413), a broken Content-Length or chunked body (400).
 * It sends them as text/plain on the host's fallback path; this filter, the
 * only one there, gives them the JSON error body of the route's API, CORS
 * headers and a request id, as every other error has. (A request line h2o
 * cannot parse at all still gets its raw "400 Bad Request".) */
struct own_error {
    h2o_ostream_t super;
    h2o_iovec_t body;
};

static void own_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                           size_t bufcnt, h2o_send_state_t state)
{
    struct own_error *e = (struct own_error *)self;
    h2o_iovec_t body = e->body;

    (void)bufs; /* h2o's text, dropped */
    (void)bufcnt;
    e->body = h2o_iovec_init(NULL, 0);
    h2o_ostream_send_next(&e->super, req, &body, body.len ? 1 : 0, state);
}

static void own_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    const char *rid = request_id_of(req);
    const char *query = memchr(req->input.path.base, '?', req->input.path.len);
    size_t plen = query ? (size_t)(query - req->input.path.base) : req->input.path.len;
    int status = req->res.status, route = ROUTE_UNMATCHED, np;
    const struct route *r = NULL;
    struct route_param params[ROUTE_PARAMS_MAX];
    char method[8], allow[64], message[128];
    json_t *j;
    char *text;
    struct own_error *e;

    (void)self;
    snprintf(method, sizeof(method), "%.*s", (int)req->input.method.len,
             req->input.method.base);
    switch (routes_match(&gw.routes, method, req->input.path.base, plen, &r, params, &np, allow,
                         sizeof(allow))) {
    case ROUTE_NO_PATH:
        r = NULL;
        break;
    case ROUTE_NO_METHOD: /* its error style, the unmatched row */
        break;
    case ROUTE_FOUND:
        route = (int)(r - gw.routes.routes);
        break;
    }
    if (status == 413)
        snprintf(message, sizeof(message), "The request body is larger than %ld bytes.",
                 cfg.max_body);
    else
        snprintf(message, sizeof(message), "The request is malformed (%s).",
                 req->res.reason ? req->res.reason : "HTTP");
    j = errbody(r ? r->errors : ERRBODY_ERROR, status, message);
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    e = (struct own_error *)h2o_add_ostream(req, sizeof(*e), slot);
    e->super.do_send = own_error_send;
    e->body = text ? h2o_strdup(&req->pool, text, SIZE_MAX) : h2o_iovec_init(H2O_STRLIT("{}"));
    free(text);
    req->res.content_length = e->body.len;
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        e->body = h2o_iovec_init(NULL, 0);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                   H2O_STRLIT("application/json"), 1);
    add_cors_and_id(req, rid);
    metrics_count(route, status, 0);
    log_info(rid, "%.*s %.*s -> %d: %s", (int)req->input.method.len, req->input.method.base,
             (int)plen, req->input.path.base, status, message);
    h2o_setup_next_ostream(req, &e->super.next);
}

static void on_conn_closed(uv_handle_t *h)
{
    free(h);
    gw.connections--;
}

static void on_accept(uv_stream_t *listener, int status)
{
    uv_tcp_t *conn;
    h2o_socket_t *sock;

    if (status != 0)
        return;
    if ((conn = malloc(sizeof(*conn))) == NULL)
        abort();
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    gw.connections++;
    if (gw.connections > cfg.max_connections) {
        /* Over the cap: close at once rather than let memory grow. */
        uv_close((uv_handle_t *)conn, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed);
    h2o_accept(&gw.accept_ctx, sock);
}

static void on_bus_closed(void *arg)
{
    bus_free(gw.bus);
    gw.bus = NULL;
    log_info(NULL, "stopped");
    uv_stop(gw.loop);
}

/* While stopping: once nothing is in flight (or the deadline passed), close
 * NATS and end the loop. */
static void on_drain_tick(uv_timer_t *t)
{
    if (gw.in_flight > 0 && uv_now(gw.loop) < gw.drain_deadline)
        return;
    if (gw.in_flight > 0)
        log_warn(NULL, "shutdown timeout: %ld requests still in flight", gw.in_flight);
    uv_timer_stop(t);
    bus_close(gw.bus, on_bus_closed, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    if (gw.stopping)
        return;
    gw.stopping = true;
    log_info(NULL, "%s: not accepting; finishing %ld requests in flight",
             signum == SIGTERM ? "SIGTERM" : "SIGINT", gw.in_flight);
    uv_close((uv_handle_t *)&gw.listener, NULL);
    h2o_context_request_shutdown(&gw.ctx);
    gw.drain_deadline = uv_now(gw.loop) + (uint64_t)cfg.shutdown_ms;
    uv_timer_start(&gw.drain_timer, on_drain_tick, 0, 10);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)n + 1)) != NULL) {
        if (fread(text, 1, (size_t)n, f) != (size_t)n) {
            free(text);
            text = NULL;
        } else {
            text[n] = '\0';
        }
    }
    fclose(f);
    return text;
}

static int load_routes(void)
{
    char err[160];
    char *text = NULL;
    int rc;

    if (cfg.routes_file[0] && (text = read_file(cfg.routes_file)) == NULL) {
        fprintf(stderr, "ROUTES_FILE: cannot read '%s'\n", cfg.routes_file);
        return -1;
    }
    rc = routes_parse(&gw.routes, text ? text : routes_txt, err, sizeof(err));
    free(text);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", cfg.routes_file[0] ? cfg.routes_file : "routes.txt", err);
    return rc;
}

static int listen_on(void)
{
    struct sockaddr_in addr;
    int rc;

    if (uv_ip4_addr(cfg.host, (int)cfg.port, &addr) != 0) {
        fprintf(stderr, "GATEWAY_HOST: '%s' is not an IPv4 address\n", cfg.host);
        return -1;
    }
    uv_tcp_init(gw.loop, &gw.listener);
    if ((rc = uv_tcp_bind(&gw.listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&gw.listener, 1024, on_accept)) != 0) {
        fprintf(stderr, "GATEWAY_PORT: cannot listen on %s:%ld: %s\n", cfg.host, cfg.port,
                uv_strerror(rc));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *pathconf;
    h2o_handler_t *handler;
    struct bus_config bc;
    struct timespec now;
    int fd;

    if (argc > 1) {
        if (strcmp(argv[1], "--config") == 0) {
            cfg_print(cfg_keys, NKEYS, stdout);
            return 0;
        }
        fprintf(stderr, "usage: gateway [--config]\n");
        return 1;
    }
    if (cfg_load(cfg_keys, NKEYS, stderr) != 0)
        return 1;
    if (log_init("gateway", cfg.log_level) != 0) {
        fprintf(stderr, "LOG_LEVEL: '%s' is not debug, info, warn or error\n", cfg.log_level);
        return 1;
    }
    if (load_routes() != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    clock_gettime(CLOCK_REALTIME, &now);
    gw.start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    if ((fd = open("/dev/urandom", O_RDONLY)) >= 0) {
        if (read(fd, &gw.id_prefix, sizeof(gw.id_prefix)) != sizeof(gw.id_prefix))
            gw.id_prefix = (uint64_t)now.tv_nsec ^ (uint64_t)getpid();
        close(fd);
    }
    gw.loop = uv_default_loop();

    h2o_config_init(&gw.config);
    gw.config.max_request_entity_size = (size_t)cfg.max_body;
    gw.config.http1.upgrade_to_http2 = 0;
    gw.config.http1.req_timeout = 10000;
    host = h2o_config_register_host(&gw.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(host, "/", 0);
    handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    h2o_create_filter(&host->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream =
        own_error_setup;
    h2o_context_init(&gw.ctx, gw.loop, &gw.config);
    gw.accept_ctx.ctx = &gw.ctx;
    gw.accept_ctx.hosts = gw.config.hosts;

    bc = (struct bus_config){.url = cfg.nats_url, .name = "gateway",
                             .request_timeout_ms = cfg.timeout_ms,
                             .max_pending = cfg.max_pending, .max_assembly = cfg.max_large};
    if ((gw.bus = bus_new(gw.loop, &bc)) == NULL)
        return 1;
    if (listen_on() != 0)
        return 1;
    uv_signal_init(gw.loop, &gw.sigterm);
    uv_signal_init(gw.loop, &gw.sigint);
    uv_signal_start(&gw.sigterm, on_signal, SIGTERM);
    uv_signal_start(&gw.sigint, on_signal, SIGINT);
    uv_timer_init(gw.loop, &gw.drain_timer);

    log_info(NULL, "listening on http://%s:%ld with %d routes; nats %s", cfg.host, cfg.port,
             gw.routes.n, cfg.nats_url);
    uv_run(gw.loop, UV_RUN_DEFAULT);
    return 0;
}
