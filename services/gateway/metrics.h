/* metrics.h - the gateway's Prometheus counters: requests by route and
 * status, a latency histogram, requests in flight, connections. Fixed-size:
 * nothing grows with traffic. */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "routes.h"

#define ROUTE_UNMATCHED ROUTES_MAX /* the row for 404, 405, probes and preflights */

/* Counts one answered request of route 'route' (an index in the table, or
 * ROUTE_UNMATCHED) that took 'ns' nanoseconds. */
void metrics_count(int route, int status, uint64_t ns);

/* Writes the exposition text into buf (at most size bytes); returns its
 * length. */
size_t metrics_render(char *buf, size_t size, const struct route_table *t,
                      const struct bus_stats *bs, long in_flight, long connections,
                      double start_time);

#endif
