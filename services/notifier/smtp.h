/* smtp.h - SMTP delivery with libcurl, off the loop: one worker thread per
 * connection (at most max_connections, started when there is work), each
 * keeping its connection to the relay between messages. Outcomes come back
 * on the loop. */
#ifndef NOTIFIER_SMTP_H
#define NOTIFIER_SMTP_H

#include <stddef.h>
#include <uv.h>

struct smtp;

struct smtp_config {
    const char *url;            /* smtp://host[:port][/helo-name] or smtps://... */
    const char *user, *password; /* AUTH when user is not empty */
    long timeout_ms;            /* one delivery, from connect to the final reply */
    long max_connections;       /* deliveries at once */
};

enum smtp_outcome {
    SMTP_SENT,
    SMTP_TEMPORARY, /* 4xx, refused or dropped connection, timeout: try again later */
    SMTP_PERMANENT, /* 5xx: do not try again */
};

/* Receives the outcome on the loop; 'detail' (the server's last reply, or
 * curl's reason) lives until the callback returns. */
typedef void (*smtp_cb)(void *arg, enum smtp_outcome outcome, const char *detail);

/* NULL (and a log line) when curl refuses the configuration. */
struct smtp *smtp_new(uv_loop_t *loop, const struct smtp_config *cfg);

/* Sends 'data' (a whole RFC 5322 message with CRLF line ends, which must
 * stay valid until the callback) from 'from' to the 'nto' recipients; calls
 * 'cb' exactly once, never before returning. */
void smtp_send(struct smtp *s, const char *from, const char *const *to, int nto,
               const char *data, size_t len, smtp_cb cb, void *arg);

/* Abandons deliveries (their callbacks are not called: a transfer under
 * way is ended at curl's next progress check), ends the workers (each says
 * QUIT on its connection), then calls 'done' on the loop and frees 's'.
 * The data of the deliveries abandoned must stay valid until then. */
void smtp_close(struct smtp *s, void (*done)(void *arg), void *arg);

#endif
