/* notifier.h - the consumer of send-email commands (proto/notifier.md): a
 * durable JetStream push consumer whose messages the bus hands to the loop;
 * each command is claimed in PostgreSQL, rendered as MIME, delivered over
 * SMTP (or written to MAIL_DIR) and its outcome recorded with its event
 * before it is acknowledged. */
#ifndef NOTIFIER_NOTIFIER_H
#define NOTIFIER_NOTIFIER_H

#include "service.h"

struct notifier_config {
    const char *smtp_url, *smtp_user, *smtp_password, *mail_dir, *mail_from, *stream;
    long smtp_timeout_ms, smtp_max_connections, concurrency, ack_wait_ms;
    long max_attempts, retry_min_ms, retry_max_ms, stream_replicas, stream_max_bytes;
};

extern struct notifier_config notifier_cfg;

/* The service's start and stop hooks (service.h). */
int notifier_start(const struct service_ctx *ctx);
void notifier_stop(void (*done)(void *arg), void *arg);
void notifier_bus_state(bool connected);

#endif
