/* js.h - JetStream on the loop, over the bus. JetStream's API is plain NATS
 * request/reply (JSON on $JS.API.*), its PubAck a reply to a publish, and a
 * consumer's acks plain publishes to the message's reply subject; nats.c's
 * own JetStream calls wait for replies and would block the loop (see
 * shared reliability notes), so these go through bus_request/bus_publish and
 * every callback runs on the loop. */
#ifndef CORE_JS_H
#define CORE_JS_H

#include <stdint.h>

#include <jansson.h>

#include "bus.h"

enum js_status {
    JS_OK = 0,       /* stored (a duplicate Nats-Msg-Id counts: it was stored before) */
    JS_NO_STREAM,    /* nobody answers the subject: no stream captures it */
    JS_UNAVAILABLE,  /* not connected, or too many requests pending */
    JS_TIMEOUT,      /* no answer in time: it may or may not be stored */
    JS_REFUSED,      /* the stream refused it (full, too large, ...) */
};

/* Receives the outcome of js_publish on the loop; 'error' says why, for logs. */
typedef void (*js_publish_cb)(void *arg, enum js_status status, const char *error);

/* Publishes 'data' to 'subject' with Nats-Msg-Id 'msg_id' (the stream drops
 * a repeat within its duplicate window) and calls 'cb' exactly once: when
 * the PubAck (or the timeout) arrives, or at once when it cannot be sent. */
void js_publish(struct bus *bus, const char *subject, const char *msg_id, const char *data,
                int len, js_publish_cb cb, void *arg);

/* Receives a JetStream API reply on the loop: 0 when it succeeded, the
 * JetStream error code (e.g. 10058), or -1 with no usable reply. */
typedef void (*js_api_cb)(void *arg, int code, const char *error);

/* Sends "$JS.API.<what>" with the JSON 'body'; 'cb' exactly once, as for
 * js_publish. */
void js_api(struct bus *bus, const char *what, const char *body, js_api_cb cb, void *arg);

/* Makes the stream 'config' (its JetStream configuration, "name" included;
 * borrowed) exist as configured: creates it, or updates it when it exists
 * with another configuration. 'cb' exactly once, as for js_api, with the
 * last step's outcome. */
void js_stream_ensure(struct bus *bus, const json_t *config, js_api_cb cb, void *arg);

/* Replies to a message from a consumer with explicit acks (fire and
 * forget: a lost ack means a redelivery after AckWait). 0 or -1. */
int js_ack(struct bus *bus, natsMsg *msg);
int js_nak(struct bus *bus, natsMsg *msg, long delay_ms); /* redeliver after delay_ms */
int js_in_progress(struct bus *bus, natsMsg *msg);        /* restart AckWait */
int js_term(struct bus *bus, natsMsg *msg);               /* never redeliver */

#endif
