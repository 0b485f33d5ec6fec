/* bus.h - one NATS connection on a libuv loop, through nats.c's libuv adapter.
 * nats.c delivers on its own threads; the bus hands every message and every
 * state change to the loop (a bounded queue + uv_async_send), so every
 * callback declared here runs on the loop thread. */
#ifndef CORE_BUS_H
#define CORE_BUS_H

#include <stdbool.h>
#include <stdint.h>
#include <nats/nats.h>
#include <uv.h>

struct bus;

struct bus_config {
    const char *url;          /* NATS_URL, comma-separated servers allowed */
    const char *name;         /* connection name the server shows */
    long request_timeout_ms;  /* deadline of every bus_request */
    long max_pending;         /* bound on outstanding bus_requests */
    /* Bytes of multi-part replies (bus_reply) held at once while their
     * parts arrive, across all requests; 0 refuses them (BUS_TOO_LARGE). */
    long max_assembly;
    /* Called on the loop whenever the connection goes up or down; optional. */
    void (*on_state)(void *arg, bool connected);
    void *arg;
};

/* Receives a message on the loop; the callee owns 'msg' (bus_msg_free). */
typedef void (*bus_msg_cb)(void *arg, natsMsg *msg);

enum bus_status {
    BUS_OK = 0,
    BUS_TIMEOUT,        /* a responder exists but did not answer in time */
    BUS_NO_RESPONDERS,  /* nobody subscribes to the subject */
    BUS_UNAVAILABLE,    /* not connected, or closing */
    BUS_TOO_LARGE,      /* a multi-part reply over max_assembly */
    BUS_BAD_REPLY,      /* a multi-part reply with a part missing or malformed */
};

/* Receives the outcome of a bus_request on the loop. 'reply' is non-NULL only
 * with BUS_OK, and the callee owns it. */
typedef void (*bus_reply_cb)(void *arg, enum bus_status status, natsMsg *reply);

struct bus_stats {
    uint64_t requests, replies, timeouts, no_responders, unavailable;
    uint64_t received;   /* messages delivered to bus_subscribe callbacks */
    uint32_t pending;    /* outstanding requests now */
    bool connected;
};

/* Creates the bus and starts connecting; it reconnects forever with backoff
 * and jitter, so NATS may start after us. Must be called on the loop's
 * thread before uv_run. Returns NULL (and logs why) on a bad URL or setup
 * failure. */
struct bus *bus_new(uv_loop_t *loop, const struct bus_config *cfg);

bool bus_connected(const struct bus *bus);

/* Subscribes 'cb' to 'subject', in queue group 'queue' when not NULL.
 * Returns 0 or -1. */
int bus_subscribe(struct bus *bus, const char *subject, const char *queue, bus_msg_cb cb,
                  void *arg) __attribute__((warn_unused_result));

/* Frees a message on this thread. natsMsg_Destroy would pass it to nats.c's
 * garbage-collector thread, waking that thread for nearly every message. */
void bus_msg_free(natsMsg *msg);

/* Where to answer request 'msg': its Reply-To header, else its NATS reply
 * subject; NULL when it expects no answer. */
const char *bus_reply_subject(natsMsg *msg);

/* Publishes 'data' with optional headers ('headers' holds nheaders
 * name/value pairs, flattened). Sent on this loop iteration's write, not
 * held back by a flusher. Returns 0 or -1 (not connected: NATS buffers
 * during a reconnect, up to its own bound). */
int bus_publish(struct bus *bus, const char *subject, const char *const *headers, int nheaders,
                const char *data, int len);

/* The largest message the server accepts, headers included (its
 * max_payload), or 0 before the first connection. */
int64_t bus_max_payload(const struct bus *bus);

/* Answers a request at 'subject' (bus_reply_subject). A reply larger than
 * the server's max_payload goes as numbered parts, in order on this one
 * connection, which bus_request puts back together; the other headers
 * travel with the first part. Returns 0 or -1, as bus_publish. */
#define BUS_HEADER_PART "Bus-Part" /* "i/n", i from 1 */
#define BUS_HEADER_SIZE "Bus-Size" /* the whole reply's bytes, on part 1 */
int bus_reply(struct bus *bus, const char *subject, const char *const *headers, int nheaders,
              const char *data, size_t len);

/* bus_request flags. BUS_REPLY_TO: the responder honours the Reply-To
 * header (bus_reply_subject), so its answer is taken on the loop without a
 * thread hand-off; any other responder still answers the NATS reply
 * subject, only more slowly. Not for JetStream, which would store the
 * header with the message. */
#define BUS_REPLY_TO 1u
#define BUS_HEADER_REPLY_TO "Reply-To"

/* Sends a request and calls 'cb' exactly once on the loop (never before
 * bus_request returns), unless bus_cancel() is called first. A reply sent
 * in parts (bus_reply) reaches 'cb' whole, as one message with the first
 * part's headers. Returns a
 * non-zero handle; on 0 (not connected, too many pending) 'cb' is never
 * called and *why says which. */
uint64_t bus_request(struct bus *bus, const char *subject, const char *const *headers,
                     int nheaders, const char *data, int len, unsigned flags, bus_reply_cb cb,
                     void *arg, enum bus_status *why);

/* Forgets a pending request: its callback will not be called. A late reply
 * is dropped. Unknown or finished handles are ignored. */
void bus_cancel(struct bus *bus, uint64_t handle);

/* Drains every bus_subscribe subscription: no new messages, those already
 * received are still delivered. Calls 'done' on the loop when all are
 * finished. */
void bus_stop_subscriptions(struct bus *bus, void (*done)(void *arg), void *arg);

/* Flushes what is buffered, closes the connection and calls 'done' on the
 * loop once it is closed. Pending requests end with BUS_UNAVAILABLE. */
void bus_close(struct bus *bus, void (*done)(void *arg), void *arg);

/* Releases the bus's NATS objects and handles after bus_close's 'done'; the
 * loop must run once more to close its handles. The struct itself stays
 * allocated, since a nats.c thread may still be returning into it. */
void bus_free(struct bus *bus);

void bus_get_stats(const struct bus *bus, struct bus_stats *out);

/* "ok", "timeout", "no responders" or "unavailable", for logs. */
const char *bus_status_name(enum bus_status status);

/* The value of header 'key' in 'msg', or NULL. */
const char *bus_header(natsMsg *msg, const char *key);

#endif
