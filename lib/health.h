/* health.h - a minimal HTTP/1.1 listener for orchestrator probes, answered
 * from the loop: GET /livez is 200 while the loop turns, GET /readyz is 200
 * while ready() says so and 503 otherwise. One request a connection. */
#ifndef CORE_HEALTH_H
#define CORE_HEALTH_H

#include <stdbool.h>
#include <uv.h>

struct health;

/* NULL (and a log line) when the address cannot be bound. */
struct health *health_new(uv_loop_t *loop, const char *host, int port,
                          bool (*ready)(void *arg), void *arg);

/* Stops listening; connections in progress end on their own. NULL is fine. */
void health_close(struct health *h);

/* Adds a condition to this process's /readyz: 200 only while ready(arg)
 * holds as well as the listener's own. For work that runs beside a
 * service's endpoints (service.h's start hook), whose listener
 * service_run() owns. At most HEALTH_MAX_REQUIRED; call it on the loop. */
#define HEALTH_MAX_REQUIRED 4
void health_require(bool (*ready)(void *arg), void *arg);

#endif
