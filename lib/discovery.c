/* discovery.c - $SRV.PING / INFO / STATS, shaped as nats.go's micro package
 * answers them (types io.nats.micro.v1.*_response). */
#include "discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "log.h"

enum verb { PING, INFO, STATS, NVERBS };

static const char *const verbs[NVERBS] = {"PING", "INFO", "STATS"};

struct endpoint_stats {
    uint64_t requests, errors, processing_ns;
    int last_status;
};

struct verb_arg {
    struct discovery *d;
    enum verb verb;
};

struct discovery {
    struct bus *bus;
    const char *name, *version;
    const char *const *subjects;
    int n;
    char id[24];
    char started[32];
    struct endpoint_stats *stats;
    struct verb_arg args[NVERBS];
};

/* The fields every response starts with. */
static json_t *response(const struct discovery *d, enum verb v)
{
    static const char *const types[NVERBS] = {
        "io.nats.micro.v1.ping_response", "io.nats.micro.v1.info_response",
        "io.nats.micro.v1.stats_response"};

    return json_pack("{s:s, s:s, s:s, s:s, s:{}}", "type", types[v], "name", d->name, "id", d->id,
                     "version", d->version, "metadata");
}

static json_t *endpoints(const struct discovery *d, bool with_stats)
{
    json_t *list = json_array();

    for (int i = 0; i < d->n; i++) {
        const struct endpoint_stats *s = &d->stats[i];
        json_t *e = json_pack("{s:s, s:s, s:s, s:n}", "name", d->subjects[i], "subject",
                              d->subjects[i], "queue_group", d->name, "metadata");
        char last[16] = "";

        if (with_stats) {
            if (s->last_status >= 500)
                snprintf(last, sizeof(last), "%d", s->last_status);
            json_object_update_new(
                e, json_pack("{s:I, s:I, s:s, s:I, s:I, s:n}", "num_requests",
                             (json_int_t)s->requests, "num_errors", (json_int_t)s->errors,
                             "last_error", last, "processing_time",
                             (json_int_t)s->processing_ns, "average_processing_time",
                             (json_int_t)(s->requests ? s->processing_ns / s->requests : 0),
                             "data"));
        }
        json_array_append_new(list, e);
    }
    return list;
}

static void on_request(void *arg, natsMsg *msg)
{
    const struct verb_arg *va = arg;
    const struct discovery *d = va->d;
    const char *reply = natsMsg_GetReply(msg);
    json_t *body = response(d, va->verb);
    char *text;

    if (va->verb == INFO)
        json_object_set_new(body, "description", json_string(""));
    if (va->verb != PING)
        json_object_set_new(body, "endpoints", endpoints(d, va->verb == STATS));
    if (va->verb == STATS)
        json_object_set_new(body, "started", json_string(d->started));
    text = json_dumps(body, JSON_COMPACT);
    if (text && reply && *reply)
        bus_publish(d->bus, reply, NULL, 0, text, (int)strlen(text));
    free(text);
    json_decref(body);
    bus_msg_free(msg);
}

struct discovery *discovery_new(struct bus *bus, const char *name, const char *version,
                                const char *const *subjects, int n)
{
    struct discovery *d = calloc(1, sizeof(*d));
    unsigned char rnd[11];
    time_t now = time(NULL);

    if (d == NULL || (d->stats = calloc((size_t)n + 1, sizeof(*d->stats))) == NULL)
        abort();
    d->bus = bus;
    d->name = name;
    d->version = version;
    d->subjects = subjects;
    d->n = n;
    if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0)
        memset(rnd, 0, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(d->id + 2 * i, 3, "%02x", rnd[i]);
    strftime(d->started, sizeof(d->started), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    for (int v = 0; v < NVERBS; v++) {
        char subject[3][160];

        d->args[v] = (struct verb_arg){d, (enum verb)v};
        snprintf(subject[0], sizeof(subject[0]), "$SRV.%s", verbs[v]);
        snprintf(subject[1], sizeof(subject[1]), "$SRV.%s.%s", verbs[v], name);
        snprintf(subject[2], sizeof(subject[2]), "$SRV.%s.%s.%s", verbs[v], name, d->id);
        for (int k = 0; k < 3; k++) {
            /* No queue group: every instance answers. */
            if (bus_subscribe(bus, subject[k], NULL, on_request, &d->args[v]) != 0) {
                discovery_free(d);
                return NULL;
            }
        }
    }
    return d;
}

void discovery_record(struct discovery *d, int i, int status, uint64_t ns)
{
    struct endpoint_stats *s;

    if (d == NULL || i < 0 || i >= d->n)
        return;
    s = &d->stats[i];
    s->requests++;
    s->processing_ns += ns;
    if (status >= 500) {
        s->errors++;
        s->last_status = status;
    }
}

void discovery_free(struct discovery *d)
{
    if (d) {
        free(d->stats);
        free(d);
    }
}
