/* discovery.h - the NATS service API that nats.go's micro package answers
 * ($SRV.PING, $SRV.INFO, $SRV.STATS, each also as .<name> and .<name>.<id>),
 * so that `nats micro ls`-style tools find every service instance, its
 * endpoints and their counters. nats.c has no micro package; this is it. */
#ifndef CORE_DISCOVERY_H
#define CORE_DISCOVERY_H

#include <stdint.h>
#include "bus.h"

struct discovery;

/* 'subjects' (n of them) are the endpoints, served in queue group 'name'.
 * Returns NULL after logging when a subscription fails. */
struct discovery *discovery_new(struct bus *bus, const char *name, const char *version,
                                const char *const *subjects, int n);

/* One request of endpoint 'i' answered with 'status' after 'ns' nanoseconds;
 * 5xx answers count as errors. */
void discovery_record(struct discovery *d, int i, int status, uint64_t ns);

void discovery_free(struct discovery *d);

#endif
