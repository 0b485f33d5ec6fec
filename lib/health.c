/* health.c - probes over plain HTTP/1.1 (see health.h). Requests are tiny:
 * anything that has not sent its request line within HEAD_MAX bytes or
 * TIMEOUT_MS is closed, and at most MAX_CONNS are open at once. */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define HEAD_MAX 1024
#define MAX_CONNS 16
#define TIMEOUT_MS 2000

struct health {
    uv_tcp_t server;
    bool (*ready)(void *arg);
    void *arg;
    int conns;
    bool closed;
};

/* The process's further conditions (health_require). */
static struct {
    bool (*ready)(void *arg);
    void *arg;
} required[HEALTH_MAX_REQUIRED];
static int nrequired;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    struct health *h;
    size_t used;
    int handles;
    char buf[HEAD_MAX];
    char out[160];
};

static void on_conn_handle_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;

    if (--c->handles == 0) {
        c->h->conns--;
        if (c->h->closed && c->h->conns == 0)
            free(c->h);
        free(c);
    }
}

static void conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    }
}

static void on_written(uv_write_t *w, int status)
{
    conn_close(w->data);
}

static void respond(struct conn *c, int status, const char *body)
{
    uv_buf_t buf;
    int len = snprintf(c->out, sizeof(c->out),
                       "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s",
                       status, status == 200 ? "OK" : status == 503 ? "Service Unavailable"
                                                    : status == 404 ? "Not Found" : "Bad Request",
                       strlen(body), body);

    uv_read_stop((uv_stream_t *)&c->tcp);
    buf = uv_buf_init(c->out, (unsigned)len);
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;

    *buf = uv_buf_init(c->buf + c->used, (unsigned)(sizeof(c->buf) - 1 - c->used));
}

static bool is_ready(struct health *h)
{
    if (!h->ready(h->arg))
        return false;
    for (int i = 0; i < nrequired; i++)
        if (!required[i].ready(required[i].arg))
            return false;
    return true;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    char *eol;

    if (n < 0) {
        conn_close(c);
        return;
    }
    c->used += (size_t)n;
    c->buf[c->used] = '\0';
    if ((eol = strstr(c->buf, "\r\n")) == NULL) {
        if (c->used == sizeof(c->buf) - 1)
            respond(c, 400, "request line too long\n");
        return;
    }
    *eol = '\0';
    if (strcmp(c->buf, "GET /livez HTTP/1.1") == 0 || strcmp(c->buf, "GET /livez HTTP/1.0") == 0)
        respond(c, 200, "ok\n");
    else if (strcmp(c->buf, "GET /readyz HTTP/1.1") == 0 ||
             strcmp(c->buf, "GET /readyz HTTP/1.0") == 0)
        is_ready(c->h) ? respond(c, 200, "ready\n") : respond(c, 503, "not ready\n");
    else
        respond(c, 404, "GET /livez or /readyz\n");
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct health *h = server->data;
    struct conn *c;

    if (status != 0 || (c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->h = h;
    c->handles = 2;
    h->conns++;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || h->conns > MAX_CONNS) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_server_closed(uv_handle_t *handle)
{
    struct health *h = handle->data;

    if (--h->conns == 0)
        free(h);
}

struct health *health_new(uv_loop_t *loop, const char *host, int port,
                          bool (*ready)(void *arg), void *arg)
{
    struct health *h = calloc(1, sizeof(*h));
    struct sockaddr_storage addr;
    int rc;

    if (h == NULL)
        abort();
    h->ready = ready;
    h->arg = arg;
    h->conns = 1; /* the listener itself, released by health_close */
    if ((rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr)) != 0 &&
        (rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)) != 0) {
        log_error(NULL, "HEALTH_HOST: '%s' is not an IP address", host);
        free(h);
        return NULL;
    }
    uv_tcp_init(loop, &h->server);
    h->server.data = h;
    if ((rc = uv_tcp_bind(&h->server, (struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&h->server, 64, on_connection)) != 0) {
        log_error(NULL, "health listener on %s:%d: %s", host, port, uv_strerror(rc));
        h->closed = true;
        uv_close((uv_handle_t *)&h->server, on_server_closed); /* frees h */
        return NULL;
    }
    log_info(NULL, "health probes on http://%s:%d/livez and /readyz", host, port);
    return h;
}

void health_require(bool (*ready)(void *arg), void *arg)
{
    if (nrequired == HEALTH_MAX_REQUIRED)
        abort(); /* a bug: raise HEALTH_MAX_REQUIRED */
    required[nrequired].ready = ready;
    required[nrequired].arg = arg;
    nrequired++;
}

void health_close(struct health *h)
{
    if (h == NULL || h->closed)
        return;
    h->closed = true;
    uv_close((uv_handle_t *)&h->server, on_server_closed);
}
