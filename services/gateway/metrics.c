/* metrics.c - the gateway's Prometheus counters, in fixed arrays. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>

static const int statuses[] = {200, 201, 204, 400, 404, 405, 409, 413, 415, 422,
                               500, 502, 503, 504};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))
#define OTHER NSTATUS /* any status not listed */

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static uint64_t requests[ROUTES_MAX + 1][NSTATUS + 1];
static uint64_t histogram[NBUCKETS + 1]; /* last: +Inf only */
static uint64_t observations;
static double seconds_sum;

void metrics_count(int route, int status, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i;

    for (i = 0; i < NSTATUS && statuses[i] != status; i++)
        ;
    requests[route][i]++;
    for (i = 0; i < NBUCKETS && s > buckets[i]; i++)
        ;
    histogram[i]++;
    observations++;
    seconds_sum += s;
}

struct out {
    char *buf;
    size_t size, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->len >= o->size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    o->len += n > 0 ? (size_t)n : 0;
    if (o->len > o->size)
        o->len = o->size;
}

size_t metrics_render(char *buf, size_t size, const struct route_table *t,
                      const struct bus_stats *bs, long in_flight, long connections,
                      double start_time)
{
    struct out o = {buf, size, 0};
    uint64_t cumulative = 0;

    put(&o, "# HELP gateway_http_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE gateway_http_requests_total counter\n");
    for (int r = 0; r <= ROUTES_MAX; r++) {
        if (r < ROUTES_MAX && r >= t->n)
            continue;
        for (size_t s = 0; s <= NSTATUS; s++) {
            if (requests[r][s] == 0)
                continue;
            if (r == ROUTE_UNMATCHED)
                put(&o, "gateway_http_requests_total{route=\"unmatched\",code=\"");
            else
                put(&o, "gateway_http_requests_total{route=\"%s %s\",code=\"",
                    t->routes[r].method, t->routes[r].pattern);
            if (s == OTHER)
                put(&o, "other\"} %llu\n", (unsigned long long)requests[r][s]);
            else
                put(&o, "%d\"} %llu\n", statuses[s], (unsigned long long)requests[r][s]);
        }
    }
    put(&o, "# HELP gateway_http_request_duration_seconds Time from request to response.\n"
            "# TYPE gateway_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < NBUCKETS; i++) {
        cumulative += histogram[i];
        put(&o, "gateway_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
            (unsigned long long)cumulative);
    }
    put(&o, "gateway_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
            "gateway_http_request_duration_seconds_sum %.6f\n"
            "gateway_http_request_duration_seconds_count %llu\n",
        (unsigned long long)observations, seconds_sum, (unsigned long long)observations);
    put(&o, "# HELP gateway_http_requests_in_flight Requests waiting for a service.\n"
            "# TYPE gateway_http_requests_in_flight gauge\n"
            "gateway_http_requests_in_flight %ld\n"
            "# HELP gateway_http_connections Open client connections.\n"
            "# TYPE gateway_http_connections gauge\n"
            "gateway_http_connections %ld\n",
        in_flight, connections);
    put(&o, "# HELP gateway_nats_requests_total NATS requests by outcome.\n"
            "# TYPE gateway_nats_requests_total counter\n"
            "gateway_nats_requests_total{outcome=\"ok\"} %llu\n"
            "gateway_nats_requests_total{outcome=\"timeout\"} %llu\n"
            "gateway_nats_requests_total{outcome=\"no_responders\"} %llu\n"
            "gateway_nats_requests_total{outcome=\"unavailable\"} %llu\n"
            "# HELP gateway_nats_connected Whether the NATS connection is up.\n"
            "# TYPE gateway_nats_connected gauge\n"
            "gateway_nats_connected %d\n",
        (unsigned long long)bs->replies, (unsigned long long)bs->timeouts,
        (unsigned long long)bs->no_responders, (unsigned long long)bs->unavailable,
        bs->connected ? 1 : 0);
    put(&o, "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds %.3f\n",
        start_time);
    return o.len;
}
