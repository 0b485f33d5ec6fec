/* js.c - JetStream on the loop, over the bus (see js.h). */
#include "js.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

struct call {
    js_publish_cb pub_cb;
    js_api_cb api_cb;
    void *arg;
};

static struct call *call_new(js_publish_cb pub_cb, js_api_cb api_cb, void *arg)
{
    struct call *c = malloc(sizeof(*c));

    if (c == NULL)
        abort();
    *c = (struct call){pub_cb, api_cb, arg};
    return c;
}

/* The reply's JSON, or NULL; '*code' is its error code, or 0. */
static json_t *parse(natsMsg *reply, int *code, const char **text)
{
    json_t *j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, NULL);
    json_t *err = json_object_get(j, "error");

    *code = j ? 0 : -1;
    *text = j ? "ok" : "not a JetStream reply";
    if (err) {
        *code = (int)json_integer_value(json_object_get(err, "err_code"));
        *text = json_string_value(json_object_get(err, "description"));
        if (*code <= 0)
            *code = -1;
        if (*text == NULL)
            *text = "JetStream error";
    }
    return j;
}

static const char *status_text(enum bus_status status)
{
    return status == BUS_NO_RESPONDERS ? "no stream for the subject" : bus_status_name(status);
}

static void on_pub_ack(void *arg, enum bus_status status, natsMsg *reply)
{
    struct call c = *(struct call *)arg;
    static const enum js_status map[] = {
        [BUS_OK] = JS_OK, [BUS_TIMEOUT] = JS_TIMEOUT, [BUS_NO_RESPONDERS] = JS_NO_STREAM,
        [BUS_UNAVAILABLE] = JS_UNAVAILABLE, [BUS_TOO_LARGE] = JS_REFUSED,
        [BUS_BAD_REPLY] = JS_REFUSED,
    };
    enum js_status st = map[status];
    const char *text = status_text(status);
    char why[256];
    json_t *j = NULL;
    int code;

    free(arg);
    if (reply) {
        j = parse(reply, &code, &text);
        if (code != 0 || json_object_get(j, "seq") == NULL)
            st = JS_REFUSED;
    }
    snprintf(why, sizeof(why), "%s", text);
    json_decref(j);
    bus_msg_free(reply);
    c.pub_cb(c.arg, st, why);
}

void js_publish(struct bus *bus, const char *subject, const char *msg_id, const char *data,
                int len, js_publish_cb cb, void *arg)
{
    const char *headers[] = {"Nats-Msg-Id", msg_id};
    struct call *c = call_new(cb, NULL, arg);
    enum bus_status why;

    if (!bus_request(bus, subject, headers, 1, data, len, 0, on_pub_ack, c, &why))
        on_pub_ack(c, why, NULL); /* bus_request calls nothing on failure */
}

static void on_api_reply(void *arg, enum bus_status status, natsMsg *reply)
{
    struct call c = *(struct call *)arg;
    const char *text = status_text(status);
    char why[256];
    json_t *j = NULL;
    int code = -1;

    free(arg);
    if (reply)
        j = parse(reply, &code, &text);
    snprintf(why, sizeof(why), "%s", text);
    json_decref(j);
    bus_msg_free(reply);
    c.api_cb(c.arg, code, why);
}

void js_api(struct bus *bus, const char *what, const char *body, js_api_cb cb, void *arg)
{
    char subject[256];
    struct call *c = call_new(NULL, cb, arg);
    enum bus_status why;

    snprintf(subject, sizeof(subject), "$JS.API.%s", what);
    if (!bus_request(bus, subject, NULL, 0, body, (int)strlen(body), 0, on_api_reply, c,
                     &why))
        on_api_reply(c, why, NULL);
}

#define JS_ERR_STREAM_NAME_IN_USE 10058 /* the stream exists with another configuration */

struct ensure {
    struct bus *bus;
    char *config;
    char name[128];
    bool updating;
    js_api_cb cb;
    void *arg;
};

static void ensure_step(struct ensure *e);

static void on_ensure_reply(void *arg, int code, const char *error)
{
    struct ensure *e = arg;

    if (code == JS_ERR_STREAM_NAME_IN_USE && !e->updating) {
        e->updating = true;
        ensure_step(e);
        return;
    }
    e->cb(e->arg, code, error);
    free(e->config);
    free(e);
}

static void ensure_step(struct ensure *e)
{
    char what[160];

    snprintf(what, sizeof(what), "STREAM.%s.%s", e->updating ? "UPDATE" : "CREATE", e->name);
    js_api(e->bus, what, e->config, on_ensure_reply, e); /* may answer at once */
}

void js_stream_ensure(struct bus *bus, const json_t *config, js_api_cb cb, void *arg)
{
    const char *name = json_string_value(json_object_get(config, "name"));
    struct ensure *e;

    if (name == NULL || *name == '\0' || strlen(name) >= sizeof(e->name)) {
        cb(arg, -1, "stream configuration without a usable name");
        return;
    }
    e = malloc(sizeof(*e));
    if (e == NULL || (e->config = json_dumps(config, JSON_COMPACT)) == NULL)
        abort();
    e->bus = bus;
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->updating = false;
    e->cb = cb;
    e->arg = arg;
    ensure_step(e);
}

static int reply_to(struct bus *bus, natsMsg *msg, const char *body)
{
    const char *reply = natsMsg_GetReply(msg);

    if (reply == NULL || *reply == '\0')
        return -1;
    return bus_publish(bus, reply, NULL, 0, body, (int)strlen(body));
}

int js_ack(struct bus *bus, natsMsg *msg)
{
    return reply_to(bus, msg, "+ACK");
}

int js_nak(struct bus *bus, natsMsg *msg, long delay_ms)
{
    char body[64];

    if (delay_ms <= 0)
        return reply_to(bus, msg, "-NAK");
    snprintf(body, sizeof(body), "-NAK {\"delay\":%ld000000}", delay_ms);
    return reply_to(bus, msg, body);
}

int js_in_progress(struct bus *bus, natsMsg *msg)
{
    return reply_to(bus, msg, "+WPI");
}

int js_term(struct bus *bus, natsMsg *msg)
{
    return reply_to(bus, msg, "+TERM");
}
