/* bus.c - one NATS connection on a libuv loop, through nats.c's libuv adapter.
 *
 * Requests: the adapter makes nats.c read the socket on the loop thread, and
 * bus_subscribe subscriptions are synchronous ones, so a message read is
 * queued in its subscription without waking any thread; a uv_check handle,
 * which runs right after the loop's I/O callbacks, takes the queued messages
 * and dispatches them on the loop: no thread hand-off per message.
 * Replies come two ways. A request's NATS reply subject is <inbox>.<token>;
 * the server's no-responders status goes there, and so does the answer of
 * a responder that knows only standard NATS (JetStream, say). That inbox is
 * an asynchronous subscription, because a synchronous one turns a
 * no-responders status into an error without its subject, and the subject
 * says which request it ends: nats.c delivers those on its own thread, which
 * only pushes them onto a bounded ring and wakes the loop (uv_async_send), as
 * it does for state changes. Requests made with BUS_REPLY_TO also carry the
 * header Reply-To: <inbox>.r.<token>, and our services answer there: a
 * synchronous subscription, taken on the loop like any other, so the hot
 * path never crosses threads. Request matching and timeouts happen on the
 * loop. */

#include "bus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <nats/adapters/libuv.h>
/* RAND_set_rand_method is deprecated in OpenSSL 3 but kept; see kernel_rand. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/rand.h>

#include "cfg.h"
#include "log.h"

#define RING_CAP 4096 /* replies handed over and not yet taken by the loop */

struct handoff {
    natsMsg *msg;
};

#define PROBE_MIN_MS 100        /* first-connect probe backoff */
#define PROBE_MAX_MS 2000
#define NO_SLOT UINT32_MAX

struct bus_sub {
    struct bus *bus;
    natsSubscription *sub;  /* NULL until the first connection */
    bus_msg_cb cb;          /* NULL for the reply inbox */
    void *arg;
    char *subject, *queue;
    bool drained;
};

/* An outstanding bus_request; slots are reused, 'gen' tells reuses apart. */
struct slot {
    uint32_t gen;
    uint32_t next_free;
    bool used;
    bus_reply_cb cb;
    void *arg;
    uint64_t deadline;           /* uv_now() milliseconds */
    struct slot *prev, *next;    /* outstanding requests, oldest first */
    struct assembly *parts;      /* a multi-part reply arriving, or NULL */
};

/* A reply sent in parts (bus_reply), put back together in one buffer. */
struct assembly {
    natsMsg *first;        /* part 1, for its headers */
    unsigned have, count;  /* parts received, parts announced */
    size_t len, size;      /* bytes received, bytes announced */
    char data[];
};

struct bus {
    uv_loop_t *loop;
    struct bus_config cfg;
    natsOptions *opts;
    natsConnection *nc;
    uv_async_t wakeup;
    uv_check_t take;       /* takes queued messages after each I/O phase */
    uv_timer_t drain_poll; /* while subscriptions drain */
    uv_timer_t timer;      /* the oldest request's deadline, or the connect probe */
    uv_tcp_t probe;
    uv_connect_t probe_req;
    uv_getaddrinfo_t probe_dns;
    char probe_host[256], probe_port[8];
    long probe_backoff;
    bool probing, connect_done, freeing;
    int handles_open;  /* until their close callbacks */

    /* Shared with nats.c threads, under 'lock'. */
    uv_mutex_t lock;
    uv_cond_t not_full;
    struct handoff ring[RING_CAP];
    uint32_t head, count;
    bool wake_pending, shared_connected, shared_closed, refuse;

    /* Loop-only state. */
    struct handoff batch[RING_CAP];
    bool connected, closed, draining;
    char inbox[64], inbox_wildcard[72], fast_wildcard[72];
    struct bus_sub inbox_sub, fast_sub; /* <inbox>.*, <inbox>.r.* */
    struct bus_sub **subs;
    int nsubs;
    void (*subs_done)(void *);
    void *subs_done_arg;
    void (*close_done)(void *);
    void *close_done_arg;

    struct slot *slots;
    uint32_t nslots, free_head;
    size_t assembling;  /* bytes of the assemblies in progress */
    struct slot *oldest, *newest;
    struct bus_stats stats;
};

static void wake(struct bus *bus)
{
    /* Called with bus->lock held; one uv_async_send per batch. */
    if (!bus->wake_pending) {
        bus->wake_pending = true;
        uv_async_send(&bus->wakeup);
    }
}

/* nats.c delivery thread: hand a reply over, waiting while the ring is full
 * (back-pressure rather than loss; nats.c's own pending limits apply
 * upstream of us). */
static void on_nats_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct bus *bus = closure;

    uv_mutex_lock(&bus->lock);
    while (bus->count == RING_CAP && !bus->refuse)
        uv_cond_wait(&bus->not_full, &bus->lock);
    if (bus->refuse) {
        uv_mutex_unlock(&bus->lock);
        bus_msg_free(msg);
        return;
    }
    bus->ring[(bus->head + bus->count) % RING_CAP] = (struct handoff){msg};
    bus->count++;
    wake(bus);
    uv_mutex_unlock(&bus->lock);
}

static void on_nats_state(natsConnection *nc, void *closure)
{
    struct bus *bus = closure;
    natsConnStatus st = natsConnection_Status(nc);

    uv_mutex_lock(&bus->lock);
    bus->shared_connected = st == NATS_CONN_STATUS_CONNECTED;
    if (st == NATS_CONN_STATUS_CLOSED)
        bus->shared_closed = true;
    if (!bus->refuse) /* after bus_free the loop may be closed already */
        wake(bus);
    uv_mutex_unlock(&bus->lock);
}

static void on_nats_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    log_warn(NULL, "nats: %s", natsStatus_GetText(err));
}

static uint64_t handle_of(const struct bus *bus, const struct slot *s)
{
    return (uint64_t)s->gen << 32 | (uint64_t)(s - bus->slots);
}

static struct slot *slot_of(struct bus *bus, uint64_t handle)
{
    uint32_t idx = (uint32_t)handle, gen = (uint32_t)(handle >> 32);

    if (idx >= bus->nslots || !bus->slots[idx].used || bus->slots[idx].gen != gen)
        return NULL;
    return &bus->slots[idx];
}

static void slot_release(struct bus *bus, struct slot *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        bus->oldest = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        bus->newest = s->prev;
    if (s->parts) {
        bus->assembling -= s->parts->size;
        bus_msg_free(s->parts->first);
        free(s->parts);
        s->parts = NULL;
    }
    s->used = false;
    s->next_free = bus->free_head;
    bus->free_head = (uint32_t)(s - bus->slots);
    bus->stats.pending--;
}

static void arm_timer(struct bus *bus);

/* Ends request 's' with 'status'; the slot is free before the callback
 * runs, so the callback may send new requests. */
static void finish(struct bus *bus, struct slot *s, enum bus_status status, natsMsg *reply)
{
    bus_reply_cb cb = s->cb;
    void *arg = s->arg;

    slot_release(bus, s);
    cb(arg, status, reply);
}

/* "i/n" with 1 <= i <= n. */
static int parse_part(const char *v, unsigned *i, unsigned *n)
{
    const char *slash = v ? strchr(v, '/') : NULL;
    char first[16];
    long a, b;

    if (slash == NULL || (size_t)(slash - v) >= sizeof(first))
        return -1;
    memcpy(first, v, (size_t)(slash - v));
    first[slash - v] = '\0';
    if (cfg_parse_int(first, 1, INT32_MAX, &a) != 0 ||
        cfg_parse_int(slash + 1, a, INT32_MAX, &b) != 0)
        return -1;
    *i = (unsigned)a;
    *n = (unsigned)b;
    return 0;
}

/* The whole reply as one message: the assembled bytes with part 1's
 * headers, without the part headers. */
static natsMsg *assembled(const struct assembly *a)
{
    const char **keys = NULL;
    natsMsg *m = NULL;
    int nkeys = 0;

    if (natsMsg_Create(&m, natsMsg_GetSubject(a->first), NULL, a->data, (int)a->len) != NATS_OK)
        return NULL;
    if (natsMsgHeader_Keys(a->first, &keys, &nkeys) != NATS_OK)
        nkeys = 0;
    for (int k = 0; k < nkeys && m; k++) {
        const char *v = bus_header(a->first, keys[k]);

        if (strcmp(keys[k], BUS_HEADER_PART) == 0 || strcmp(keys[k], BUS_HEADER_SIZE) == 0)
            continue;
        if (v && natsMsgHeader_Set(m, keys[k], v) != NATS_OK) {
            bus_msg_free(m);
            m = NULL;
        }
    }
    free((void *)keys);
    return m;
}

/* Adds part 'msg' of request 's''s reply, taking the message; ends the
 * request when the last part is in, or at the first part out of order, of
 * the wrong size, malformed or over the bound. */
static void on_part(struct bus *bus, struct slot *s, natsMsg *msg)
{
    struct assembly *a = s->parts;
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    enum bus_status fail = BUS_BAD_REPLY;
    unsigned i, n;
    natsMsg *whole;

    if (parse_part(bus_header(msg, BUS_HEADER_PART), &i, &n) != 0 || n < 2)
        goto fail;
    if (i == 1) {
        long size;

        if (a || cfg_parse_int(bus_header(msg, BUS_HEADER_SIZE), 0, INT32_MAX, &size) != 0)
            goto fail;
        fail = BUS_TOO_LARGE;
        /* 'assembling' never passes the bound, so this cannot overflow. */
        if (bus->assembling + (size_t)size > (size_t)bus->cfg.max_assembly ||
            (a = malloc(sizeof(*a) + (size_t)size)) == NULL)
            goto fail;
        fail = BUS_BAD_REPLY;
        *a = (struct assembly){.count = n, .size = (size_t)size};
        s->parts = a;
        bus->assembling += a->size;
    } else if (a == NULL || i != a->have + 1 || n != a->count) {
        goto fail;
    }
    if (len > a->size - a->len)
        goto fail;
    memcpy(a->data + a->len, natsMsg_GetData(msg), len);
    a->len += len;
    a->have = i;
    if (i == 1)
        a->first = msg; /* for its headers; freed with the slot */
    else
        bus_msg_free(msg);
    msg = NULL;
    if (i < n)
        return;
    if (a->len != a->size)
        goto fail;
    if ((whole = assembled(a)) == NULL) {
        fail = BUS_UNAVAILABLE;
        goto fail;
    }
    bus->stats.replies++;
    finish(bus, s, BUS_OK, whole);
    return;
fail:
    bus_msg_free(msg);
    finish(bus, s, fail, NULL);
}

static void on_reply(struct bus *bus, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg);
    size_t plen = strlen(bus->inbox);
    struct slot *s = NULL;
    char *end;

    if (strncmp(subj, bus->inbox, plen) == 0 && subj[plen] == '.') {
        const char *token = subj + plen + 1;
        uint64_t handle;

        if (token[0] == 'r' && token[1] == '.')
            token += 2;
        handle = strtoull(token, &end, 16);
        if (*end == '\0')
            s = slot_of(bus, handle);
    }
    if (s == NULL) { /* cancelled or timed out: nobody waits for it */
        bus_msg_free(msg);
        return;
    }
    if (natsMsg_IsNoResponders(msg)) {
        bus_msg_free(msg);
        bus->stats.no_responders++;
        finish(bus, s, BUS_NO_RESPONDERS, NULL);
        return;
    }
    if (bus_header(msg, BUS_HEADER_PART)) {
        on_part(bus, s, msg);
        return;
    }
    bus->stats.replies++;
    finish(bus, s, BUS_OK, msg);
}

static void fail_all_pending(struct bus *bus)
{
    while (bus->oldest) {
        bus->stats.unavailable++;
        finish(bus, bus->oldest, BUS_UNAVAILABLE, NULL);
    }
}

/* Dispatches what 'bs' has queued; returns how many. */
static int take(struct bus *bus, struct bus_sub *bs)
{
    int n = 0, msgs = 0, bytes;
    natsMsg *msg;

    while (bs->sub && natsSubscription_GetPending(bs->sub, &msgs, &bytes) == NATS_OK &&
           msgs > 0) {
        natsStatus st = natsSubscription_NextMsg(&msg, bs->sub, 0);

        if (st == NATS_NO_RESPONDERS) /* a status on a plain subject: nobody's */
            continue;
        if (st != NATS_OK)
            break;
        n++;
        if (bs->cb == NULL) {
            on_reply(bus, msg);
        } else {
            bus->stats.received++;
            bs->cb(bs->arg, msg);
        }
    }
    return n;
}

static void take_all(struct bus *bus)
{
    int n = 0;

    if (bus->nc == NULL || bus->freeing)
        return;
    n += take(bus, &bus->fast_sub);
    for (int i = 0; i < bus->nsubs; i++)
        n += take(bus, bus->subs[i]);
    if (n > 0)
        arm_timer(bus);
}

static void on_take(uv_check_t *check)
{
    take_all(check->data);
}

static void on_wakeup(uv_async_t *async)
{
    struct bus *bus = async->data;
    uint32_t n;
    bool connected, closed;

    uv_mutex_lock(&bus->lock);
    n = bus->count;
    for (uint32_t i = 0; i < n; i++)
        bus->batch[i] = bus->ring[(bus->head + i) % RING_CAP];
    bus->head = (bus->head + n) % RING_CAP;
    bus->count = 0;
    bus->wake_pending = false;
    connected = bus->shared_connected;
    closed = bus->shared_closed;
    uv_cond_broadcast(&bus->not_full);
    uv_mutex_unlock(&bus->lock);

    for (uint32_t i = 0; i < n; i++)
        on_reply(bus, bus->batch[i].msg);
    if (n > 0)
        arm_timer(bus);
    take_all(bus); /* messages read before the state changed come first */

    if (connected != bus->connected) {
        bus->connected = connected;
        log_info(NULL, "nats %s", connected ? "connected" : "disconnected");
        if (!connected)
            fail_all_pending(bus);
        if (bus->cfg.on_state)
            bus->cfg.on_state(bus->cfg.arg, connected);
    }
    if (closed && !bus->closed) {
        bus->closed = true;
        bus->connected = false;
        fail_all_pending(bus);
        if (bus->close_done)
            bus->close_done(bus->close_done_arg);
    }
}

static void on_timer(uv_timer_t *t);

/* Request deadlines: all requests share one timeout, so the oldest expires
 * first and one timer suffices. */
static void arm_timer(struct bus *bus)
{
    uint64_t now = uv_now(bus->loop);

    if (!bus->connect_done)
        return; /* the timer drives the connect probe until then */
    if (bus->oldest == NULL) {
        uv_timer_stop(&bus->timer);
        return;
    }
    uv_timer_start(&bus->timer, on_timer,
                   bus->oldest->deadline > now ? bus->oldest->deadline - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct bus *bus = t->data;
    uint64_t now = uv_now(bus->loop);

    while (bus->oldest && bus->oldest->deadline <= now) {
        bus->stats.timeouts++;
        finish(bus, bus->oldest, BUS_TIMEOUT, NULL);
    }
    arm_timer(bus);
}

/* --- First connection ------------------------------------------------------
 * nats.c's libuv adapter must attach a connection's first socket from the
 * loop thread, so nats.c's own retry-on-failed-connect (which connects from
 * its reconnect thread) cannot be used. Instead a non-blocking TCP probe
 * waits on the loop until the first server accepts connections; only then is
 * natsConnection_Connect called, which completes its handshake at once. After
 * that first success, nats.c reconnects by itself, forever. */

static void probe_later(struct bus *bus);

static void parse_first_server(struct bus *bus)
{
    const char *u = bus->cfg.url, *p, *end;
    size_t n;

    end = strchr(u, ',');
    if (end == NULL)
        end = u + strlen(u);
    if ((p = strstr(u, "://")) != NULL && p < end)
        u = p + 3;
    for (p = u; p < end && *p != '/'; p++)
        if (*p == '@')
            u = p + 1;
    end = p;
    if (*u == '[') { /* [ipv6]:port */
        p = memchr(u, ']', (size_t)(end - u));
        n = p ? (size_t)(p - u - 1) : 0;
        snprintf(bus->probe_host, sizeof(bus->probe_host), "%.*s", (int)n, u + 1);
        p = p && p + 1 < end && p[1] == ':' ? p + 2 : NULL;
    } else {
        p = memchr(u, ':', (size_t)(end - u));
        n = (size_t)((p ? p : end) - u);
        snprintf(bus->probe_host, sizeof(bus->probe_host), "%.*s", (int)n, u);
        p = p ? p + 1 : NULL;
    }
    snprintf(bus->probe_port, sizeof(bus->probe_port), "%.*s", p ? (int)(end - p) : 4,
             p ? p : "4222");
    if (bus->probe_host[0] == '\0')
        snprintf(bus->probe_host, sizeof(bus->probe_host), "127.0.0.1");
}

static int subscribe(struct bus *bus, struct bus_sub *bs);

static void connect_now(struct bus *bus)
{
    natsStatus s;

    s = natsConnection_Connect(&bus->nc, bus->opts);
    if (s != NATS_OK) {
        log_warn(NULL, "nats connect to %s: %s", bus->cfg.url, natsStatus_GetText(s));
        probe_later(bus);
        return;
    }
    bus->connect_done = true;
    uv_timer_stop(&bus->timer);
    for (int i = 0; i < bus->nsubs; i++)
        if (subscribe(bus, bus->subs[i]) != 0)
            abort(); /* only fails on a bad subject or no memory: a bug */
    on_nats_state(bus->nc, bus);
}

/* The struct itself is never freed: a nats.c thread may still be returning
 * from a last callback (closed, disconnected) into it until nats_Close().
 * Buses are made once per process, so one is kept here, reachable. */
static struct bus *volatile retired;

static void free_if_done(struct bus *bus)
{
    if (bus->freeing && !bus->probing && bus->handles_open == 0)
        retired = bus;
}

static void on_probe_closed(uv_handle_t *h)
{
    struct bus *bus = h->data;

    bus->probing = false;
    if (bus->closed || bus->freeing) {
        free_if_done(bus);
        return;
    }
    if (bus->probe_req.data) /* the probe connected */
        connect_now(bus);
    else
        probe_later(bus);
}

static void on_probe_connected(uv_connect_t *req, int status)
{
    struct bus *bus = req->handle->data;

    req->data = status == 0 ? bus : NULL;
    uv_close((uv_handle_t *)&bus->probe, on_probe_closed);
}

static void on_probe_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct bus *bus = req->data;

    if (status != 0 || bus->closed || bus->freeing) {
        if (res)
            uv_freeaddrinfo(res);
        bus->probing = false;
        if (bus->closed || bus->freeing)
            free_if_done(bus);
        else
            probe_later(bus);
        return;
    }
    uv_tcp_init(bus->loop, &bus->probe);
    bus->probe.data = bus;
    bus->probe_req.data = NULL;
    if (uv_tcp_connect(&bus->probe_req, &bus->probe, res->ai_addr, on_probe_connected) != 0)
        uv_close((uv_handle_t *)&bus->probe, on_probe_closed);
    uv_freeaddrinfo(res);
}

static void on_probe_timer(uv_timer_t *t)
{
    struct bus *bus = t->data;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};

    if (bus->closed || bus->probing)
        return;
    bus->probing = true;
    bus->probe_dns.data = bus;
    if (uv_getaddrinfo(bus->loop, &bus->probe_dns, on_probe_resolved, bus->probe_host,
                       bus->probe_port, &hints) != 0) {
        bus->probing = false;
        probe_later(bus);
    }
}

static void probe_later(struct bus *bus)
{
    uv_timer_start(&bus->timer, on_probe_timer, (uint64_t)bus->probe_backoff, 0);
    bus->probe_backoff = bus->probe_backoff * 2 > PROBE_MAX_MS ? PROBE_MAX_MS
                                                                : bus->probe_backoff * 2;
}

/* OpenSSL's randomness straight from the kernel's CSPRNG (getrandom).
 *
 * nats.c seeds its NUIDs (the inbox and reply-subject names) with RAND_bytes
 * when the library opens. OpenSSL's own generator would first load its
 * configuration, the default provider and a DRBG: about 2 MiB of libcrypto
 * paged in, a fifth of an idle service's memory, for eight bytes. The DRBG
 * seeds itself from getrandom anyway. TLS keys, if TLS is ever configured,
 * still come from the provider's own generator. */
static int kernel_rand_bytes(unsigned char *buf, int num)
{
    while (num > 0) {
        ssize_t n = getrandom(buf, (size_t)num, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return 0;
        buf += n;
        num -= (int)n;
    }
    return 1;
}

static int kernel_rand_status(void)
{
    return 1;
}

static const RAND_METHOD kernel_rand = {
    .bytes = kernel_rand_bytes,
    .pseudorand = kernel_rand_bytes,
    .status = kernel_rand_status,
};

static natsStatus make_options(struct bus *bus)
{
    natsOptions *o = NULL;
    natsStatus s;

    s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, bus->cfg.url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, bus->cfg.name);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(o, bus->loop, natsLibuv_Attach, natsLibuv_Read,
                                     natsLibuv_Write, natsLibuv_Detach);
    /* Publishes leave on this loop iteration's write event: no flusher delay,
     * and everything published in one iteration goes out in one write. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, 250, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, 20000);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_nats_state, bus);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_nats_state, bus);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_nats_state, bus);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_nats_error, bus);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    bus->opts = o;
    return NATS_OK;
}

struct bus *bus_new(uv_loop_t *loop, const struct bus_config *cfg)
{
    struct bus *bus = calloc(1, sizeof(*bus));
    natsInbox *inbox = NULL;
    natsStatus s;

    if (bus == NULL)
        abort();
    bus->loop = loop;
    bus->cfg = *cfg;
    bus->nslots = (uint32_t)cfg->max_pending;
    bus->slots = calloc(bus->nslots, sizeof(*bus->slots));
    if (bus->slots == NULL)
        abort();
    for (uint32_t i = 0; i < bus->nslots; i++) {
        bus->slots[i].gen = 0;
        bus->slots[i].next_free = i + 1 < bus->nslots ? i + 1 : NO_SLOT;
    }
    bus->free_head = bus->nslots ? 0 : NO_SLOT;
    bus->inbox_sub.bus = bus;
    bus->fast_sub.bus = bus;
    bus->probe_backoff = PROBE_MIN_MS;

    RAND_set_rand_method(&kernel_rand); /* before nats.c opens: see kernel_rand */
    natsLibuv_Init();
    natsLibuv_SetThreadLocalLoop(loop);
    s = make_options(bus);
    if (s == NATS_OK)
        s = natsInbox_Create(&inbox);
    if (s != NATS_OK) {
        log_error(NULL, "nats setup: %s", natsStatus_GetText(s));
        natsOptions_Destroy(bus->opts);
        free(bus->slots);
        free(bus);
        return NULL;
    }
    snprintf(bus->inbox, sizeof(bus->inbox), "%s", inbox);
    natsInbox_Destroy(inbox);

    uv_mutex_init(&bus->lock);
    uv_cond_init(&bus->not_full);
    uv_async_init(loop, &bus->wakeup, on_wakeup);
    bus->wakeup.data = bus;
    uv_check_init(loop, &bus->take);
    bus->take.data = bus;
    uv_check_start(&bus->take, on_take);
    uv_timer_init(loop, &bus->drain_poll);
    bus->drain_poll.data = bus;
    uv_timer_init(loop, &bus->timer);
    bus->timer.data = bus;
    parse_first_server(bus);
    on_probe_timer(&bus->timer);
    return bus;
}

bool bus_connected(const struct bus *bus)
{
    return bus->connected;
}

int64_t bus_max_payload(const struct bus *bus)
{
    return bus->nc ? natsConnection_GetMaxPayload(bus->nc) : 0;
}

/* Subscriptions asked for before the first connection are made once it is
 * up; nats.c replays them on every reconnect. */
static int subscribe(struct bus *bus, struct bus_sub *bs)
{
    const char *subject = bs->subject;
    natsStatus s;

    if (bs == &bus->inbox_sub)
        s = natsConnection_Subscribe(&bs->sub, bus->nc, subject, on_nats_reply, bus);
    else if (bs->queue)
        s = natsConnection_QueueSubscribeSync(&bs->sub, bus->nc, subject, bs->queue);
    else
        s = natsConnection_SubscribeSync(&bs->sub, bus->nc, subject);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(bs->sub, 65536, 64 * 1024 * 1024);
    if (s != NATS_OK) {
        log_error(NULL, "nats subscribe %s: %s", subject, natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

int bus_subscribe(struct bus *bus, const char *subject, const char *queue, bus_msg_cb cb,
                  void *arg)
{
    struct bus_sub *bs, **subs;

    bs = calloc(1, sizeof(*bs));
    subs = realloc(bus->subs, (size_t)(bus->nsubs + 1) * sizeof(*subs));
    if (bs == NULL || subs == NULL)
        abort();
    bus->subs = subs;
    *bs = (struct bus_sub){.bus = bus, .cb = cb, .arg = arg, .subject = strdup(subject),
                           .queue = queue ? strdup(queue) : NULL};
    if (bs->subject == NULL || (queue && bs->queue == NULL))
        abort();
    if (bus->nc && subscribe(bus, bs) != 0) {
        free(bs->subject);
        free(bs->queue);
        free(bs);
        return -1;
    }
    bus->subs[bus->nsubs++] = bs;
    return 0;
}

static natsMsg *make_msg(const char *subject, const char *reply, const char *const *headers,
                         int nheaders, const char *data, int len)
{
    natsMsg *m = NULL;

    if (natsMsg_Create(&m, subject, reply, data, len) != NATS_OK)
        return NULL;
    for (int i = 0; i < nheaders; i++) {
        if (natsMsgHeader_Set(m, headers[2 * i], headers[2 * i + 1]) != NATS_OK) {
            bus_msg_free(m);
            return NULL;
        }
    }
    return m;
}

int bus_publish(struct bus *bus, const char *subject, const char *const *headers, int nheaders,
                const char *data, int len)
{
    natsMsg *m;
    natsStatus s;

    if (bus->nc == NULL || bus->closed)
        return -1;
    m = make_msg(subject, NULL, headers, nheaders, data, len);
    if (m == NULL)
        return -1;
    s = natsConnection_PublishMsg(bus->nc, m);
    bus_msg_free(m);
    return s == NATS_OK ? 0 : -1;
}

#define PART_HEADROOM 1024 /* the part's headers and protocol line */
#define REPLY_HEADERS_MAX 8 /* a reply's own headers, beside the part's two */

int bus_reply(struct bus *bus, const char *subject, const char *const *headers, int nheaders,
              const char *data, size_t len)
{
    const char *h[2 * REPLY_HEADERS_MAX + 4];
    char part[48], size[24];
    int64_t max = bus_max_payload(bus) - PART_HEADROOM;
    size_t chunk, n;

    if (max <= 0 || len <= (size_t)max)
        return bus_publish(bus, subject, headers, nheaders, data, (int)len);
    if (nheaders > REPLY_HEADERS_MAX)
        return -1;
    chunk = (size_t)max;
    n = (len + chunk - 1) / chunk;
    memcpy(h, headers, sizeof(*h) * 2 * (size_t)nheaders);
    h[2 * nheaders] = BUS_HEADER_PART;
    h[2 * nheaders + 1] = part;
    h[2 * nheaders + 2] = BUS_HEADER_SIZE;
    h[2 * nheaders + 3] = size;
    snprintf(size, sizeof(size), "%zu", len);
    for (size_t i = 0; i < n; i++) {
        size_t off = i * chunk, take = len - off < chunk ? len - off : chunk;

        snprintf(part, sizeof(part), "%zu/%zu", i + 1, n);
        /* Headers go with part 1 only; the others carry their number. */
        if (i == 0 ? bus_publish(bus, subject, h, nheaders + 2, data, (int)take)
                   : bus_publish(bus, subject, h + 2 * nheaders, 1, data + off, (int)take))
            return -1;
    }
    return 0;
}

static int ensure_inbox(struct bus *bus)
{
    if (bus->inbox_sub.sub)
        return 0;
    snprintf(bus->inbox_wildcard, sizeof(bus->inbox_wildcard), "%s.*", bus->inbox);
    snprintf(bus->fast_wildcard, sizeof(bus->fast_wildcard), "%s.r.*", bus->inbox);
    bus->inbox_sub.subject = bus->inbox_wildcard;
    bus->fast_sub.subject = bus->fast_wildcard;
    if (subscribe(bus, &bus->fast_sub) != 0)
        return -1;
    if (subscribe(bus, &bus->inbox_sub) != 0) {
        natsSubscription_Destroy(bus->fast_sub.sub);
        bus->fast_sub.sub = NULL;
        return -1;
    }
    return 0;
}

uint64_t bus_request(struct bus *bus, const char *subject, const char *const *headers,
                     int nheaders, const char *data, int len, unsigned flags, bus_reply_cb cb,
                     void *arg, enum bus_status *why)
{
    char reply[96], fast[96];
    struct slot *s;
    uint64_t handle;
    natsMsg *m;
    natsStatus st;

    *why = BUS_UNAVAILABLE;
    if (!bus->connected || bus->closed || bus->free_head == NO_SLOT || ensure_inbox(bus) != 0) {
        bus->stats.unavailable++;
        return 0;
    }
    s = &bus->slots[bus->free_head];
    if (++s->gen == 0)
        s->gen = 1;
    handle = handle_of(bus, s);
    snprintf(reply, sizeof(reply), "%s.%" PRIx64, bus->inbox, handle);
    m = make_msg(subject, reply, headers, nheaders, data, len);
    if (m && (flags & BUS_REPLY_TO)) {
        snprintf(fast, sizeof(fast), "%s.r.%" PRIx64, bus->inbox, handle);
        if (natsMsgHeader_Set(m, BUS_HEADER_REPLY_TO, fast) != NATS_OK) {
            bus_msg_free(m);
            m = NULL;
        }
    }
    if (m == NULL) {
        bus->stats.unavailable++;
        return 0;
    }
    st = natsConnection_PublishMsg(bus->nc, m);
    bus_msg_free(m);
    if (st != NATS_OK) {
        bus->stats.unavailable++;
        return 0;
    }

    bus->free_head = s->next_free;
    s->used = true;
    s->cb = cb;
    s->arg = arg;
    s->deadline = uv_now(bus->loop) + (uint64_t)bus->cfg.request_timeout_ms;
    s->next = NULL;
    s->prev = bus->newest;
    if (bus->newest)
        bus->newest->next = s;
    else
        bus->oldest = s;
    bus->newest = s;
    bus->stats.pending++;
    bus->stats.requests++;
    if (bus->oldest == s)
        arm_timer(bus);
    *why = BUS_OK;
    return handle;
}

void bus_cancel(struct bus *bus, uint64_t handle)
{
    struct slot *s = slot_of(bus, handle);

    if (s)
        slot_release(bus, s);
}

/* While draining: take what is queued, and let nats.c see each empty
 * subscription (NextMsg on an empty draining subscription completes its
 * drain, once the server has confirmed the unsubscribe). */
static void on_drain_poll(uv_timer_t *t)
{
    struct bus *bus = t->data;
    int finished = 0;

    take_all(bus);
    for (int i = 0; i < bus->nsubs; i++) {
        struct bus_sub *bs = bus->subs[i];
        natsMsg *msg;

        if (bs->drained) {
            finished++;
            continue;
        }
        if (natsSubscription_NextMsg(&msg, bs->sub, 0) == NATS_OK) {
            bus->stats.received++; /* arrived between take_all and here */
            bs->cb(bs->arg, msg);
        }
        if (natsSubscription_DrainCompletionStatus(bs->sub) != NATS_ILLEGAL_STATE) {
            /* Complete, but a synchronous subscription stays registered
             * until unsubscribed, and the connection's drain waits for it. */
            natsSubscription_Unsubscribe(bs->sub);
            bs->drained = true;
            finished++;
        }
    }
    if (finished < bus->nsubs)
        return;
    uv_timer_stop(&bus->drain_poll);
    bus->draining = false;
    bus->subs_done(bus->subs_done_arg);
}

void bus_stop_subscriptions(struct bus *bus, void (*done)(void *arg), void *arg)
{
    int started = 0;

    bus->subs_done = done;
    bus->subs_done_arg = arg;
    for (int i = 0; i < bus->nsubs; i++) {
        struct bus_sub *bs = bus->subs[i];

        if (bs->sub != NULL && natsSubscription_Drain(bs->sub) == NATS_OK) {
            started++;
        } else {
            /* Never subscribed, or closed: nothing more will arrive. */
            if (bs->sub != NULL)
                natsSubscription_Unsubscribe(bs->sub);
            bs->drained = true;
        }
    }
    log_info(NULL, "draining %d subscriptions", started);
    bus->draining = true;
    uv_timer_start(&bus->drain_poll, on_drain_poll, 0, 5);
}

void bus_close(struct bus *bus, void (*done)(void *arg), void *arg)
{
    bus->close_done = done;
    bus->close_done_arg = arg;
    if (bus->nc == NULL || bus->closed) {
        /* Never connected: stop probing; on_wakeup reports the close. */
        uv_timer_stop(&bus->timer);
        uv_mutex_lock(&bus->lock);
        bus->shared_closed = true;
        wake(bus);
        uv_mutex_unlock(&bus->lock);
        return;
    }
    /* Drain flushes what is buffered, then closes; the closed callback
     * reaches on_wakeup. */
    if (natsConnection_DrainTimeout(bus->nc, 5000) != NATS_OK)
        natsConnection_Close(bus->nc);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct bus *bus = h->data;

    bus->handles_open--;
    free_if_done(bus);
}

void bus_free(struct bus *bus)
{
    uv_mutex_lock(&bus->lock);
    bus->refuse = true;
    uv_cond_broadcast(&bus->not_full);
    uv_mutex_unlock(&bus->lock);
    bus->freeing = true;
    for (int i = 0; i < bus->nsubs; i++) {
        natsSubscription_Destroy(bus->subs[i]->sub);
        free(bus->subs[i]->subject);
        free(bus->subs[i]->queue);
        free(bus->subs[i]);
    }
    free(bus->subs);
    natsSubscription_Destroy(bus->inbox_sub.sub);
    natsSubscription_Destroy(bus->fast_sub.sub);
    natsConnection_Destroy(bus->nc);
    natsOptions_Destroy(bus->opts);
    /* Replies handed over but never taken. */
    for (uint32_t i = 0; i < bus->count; i++)
        bus_msg_free(bus->ring[(bus->head + i) % RING_CAP].msg);
    free(bus->slots);
    bus->handles_open = 4;
    uv_close((uv_handle_t *)&bus->timer, on_handle_closed);
    uv_close((uv_handle_t *)&bus->wakeup, on_handle_closed);
    uv_close((uv_handle_t *)&bus->take, on_handle_closed);
    uv_close((uv_handle_t *)&bus->drain_poll, on_handle_closed);
}

void bus_get_stats(const struct bus *bus, struct bus_stats *out)
{
    *out = bus->stats;
    out->connected = bus->connected;
}

const char *bus_status_name(enum bus_status status)
{
    static const char *const names[] = {
        [BUS_OK] = "ok",
        [BUS_TIMEOUT] = "timeout",
        [BUS_NO_RESPONDERS] = "no responders",
        [BUS_UNAVAILABLE] = "unavailable",
        [BUS_TOO_LARGE] = "too large",
        [BUS_BAD_REPLY] = "bad reply",
    };

    return names[status];
}

#ifdef HAVE_NATSMSG_FREE
void natsMsg_free(void *msg); /* exported by libnats, not declared in nats.h */
#endif

void bus_msg_free(natsMsg *msg)
{
    if (msg == NULL)
        return;
#ifdef HAVE_NATSMSG_FREE
    natsMsg_free(msg);
#else
    natsMsg_Destroy(msg);
#endif
}

const char *bus_reply_subject(natsMsg *msg)
{
    const char *to = bus_header(msg, BUS_HEADER_REPLY_TO);

    if (to == NULL || *to == '\0')
        to = natsMsg_GetReply(msg);
    return to && *to ? to : NULL;
}

const char *bus_header(natsMsg *msg, const char *key)
{
    const char *v = NULL;

    if (natsMsgHeader_Get(msg, key, &v) != NATS_OK)
        return NULL;
    return v;
}
