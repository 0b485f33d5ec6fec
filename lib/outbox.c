/* outbox.c - the relay from the outbox table to JetStream (see outbox.h).
 *
 * One pass at a time: select up to 'batch' pending rows in seq order,
 * publish them all (pipelined on the one NATS connection, so JetStream
 * stores them in that order), wait for every PubAck, delete the rows that
 * were acknowledged. A kick during a pass, or a full batch, runs the next
 * pass at once; a failure retries after a capped backoff. Everything runs on
 * the loop: the bus delivers replies there, the pool its results. */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "js.h"
#include "jsontext.h"
#include "log.h"

/* Both through functions that never scan the heap (003_outbox_relay.sql).
 * The delete starts with VALUES, not SELECT: a write, with its own Sync. */
const char *const outbox_sql[OUTBOX_SQL_COUNT] = {
    [OUTBOX_SQL_PENDING] = "SELECT seq, id, subject, event FROM outbox_pending($1, $2)",
    [OUTBOX_SQL_DONE] = "VALUES (outbox_delete($1, $2::bigint[]))",
};

enum { COL_SEQ, COL_ID, COL_SUBJECT, COL_EVENT };

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum state {
    ST_NO_STREAM, /* waiting for NATS, or to retry creating the stream */
    ST_ENSURING,  /* a stream create or update request is out */
    ST_IDLE,
    ST_SELECTING,
    ST_PUBLISHING,
    ST_DELETING,
};

struct ack {
    struct outbox *ob;
    char seq[24];
    bool ok;
};

struct outbox {
    uv_loop_t *loop;
    struct bus *bus;
    struct db *db;
    struct outbox_config cfg;
    char limit[16];
    uv_timer_t timer;   /* the retry backoff, or the sweep while idle */
    enum state state;
    bool kicked;        /* a commit happened during the pass */
    bool failed;        /* this pass met an error: back off */
    bool stream_gone;   /* a publish found no stream: create it again */
    long backoff_ms;
    struct ack *acks;   /* cfg.batch entries */
    int n, outstanding;
    struct outbox_stats stats;
    void (*done)(void *arg);
    void *done_arg;
    bool closing;
};

static void pass(struct outbox *ob);
static void ensure_stream(struct outbox *ob);

static void on_timer(uv_timer_t *t)
{
    struct outbox *ob = t->data;

    if (ob->state == ST_NO_STREAM)
        ensure_stream(ob);
    else
        pass(ob);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct outbox *ob = h->data;

    ob->done(ob->done_arg);
}

/* Between passes: finish a close, or arm the timer for what comes next. */
static void rest(struct outbox *ob, enum state state)
{
    ob->state = state;
    if (ob->closing) {
        uv_close((uv_handle_t *)&ob->timer, on_timer_closed);
        return;
    }
    if (ob->failed) {
        ob->failed = false;
        ob->backoff_ms = ob->backoff_ms ? ob->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (ob->backoff_ms > BACKOFF_MAX_MS)
            ob->backoff_ms = BACKOFF_MAX_MS;
        uv_timer_start(&ob->timer, on_timer, (uint64_t)ob->backoff_ms, 0);
        return;
    }
    ob->backoff_ms = 0;
    if (state == ST_IDLE && ob->kicked) {
        pass(ob);
        return;
    }
    if (state == ST_IDLE && ob->cfg.sweep_ms > 0)
        uv_timer_start(&ob->timer, on_timer, (uint64_t)ob->cfg.sweep_ms, 0);
}

/* ---- the stream ---------------------------------------------------------- */

static json_t *stream_config(const struct outbox *ob)
{
    const int64_t sec = 1000000000;
    int64_t max_age = (int64_t)ob->cfg.max_age_s * sec;
    int64_t window = 2 * 60 * sec; /* the duplicate window must not exceed max_age */

    if (max_age > 0 && window > max_age)
        window = max_age;
    return json_pack("{s:s, s:[s], s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "name", ob->cfg.stream,
                     "subjects", "events.>", "retention", "limits", "storage", "file", "max_age",
                     (json_int_t)max_age, "max_bytes", (json_int_t)ob->cfg.max_bytes,
                     "num_replicas", (json_int_t)ob->cfg.replicas, "duplicate_window",
                     (json_int_t)window, "discard", "old");
}

static void on_stream_ready(void *arg, int code, const char *why)
{
    struct outbox *ob = arg;

    if (code == 0) {
        log_info(NULL, "events stream %s ready", ob->cfg.stream);
        ob->kicked = true; /* rows a previous run left */
        rest(ob, ST_IDLE);
        return;
    }
    log_warn(NULL, "events stream %s: %s; retrying", ob->cfg.stream, why);
    ob->failed = true;
    rest(ob, ST_NO_STREAM);
}

static void ensure_stream(struct outbox *ob)
{
    json_t *config;

    if (ob->state != ST_NO_STREAM || ob->closing || !bus_connected(ob->bus))
        return;
    uv_timer_stop(&ob->timer);
    ob->state = ST_ENSURING;
    config = stream_config(ob);
    if (config == NULL) {
        ob->failed = true;
        rest(ob, ST_NO_STREAM);
        return;
    }
    js_stream_ensure(ob->bus, config, on_stream_ready, ob); /* may answer at once */
    json_decref(config);
}

/* ---- one pass ------------------------------------------------------------ */

static void on_deleted(void *arg, const struct db_result *r)
{
    struct outbox *ob = arg;

    if (r->err) {
        /* Published but still pending: the next pass publishes them again
         * and the stream drops the duplicates. */
        log_warn(NULL, "outbox: delete failed (%s); rows stay pending", r->message);
        ob->failed = true;
    } else {
        ob->stats.published += strtoull(PQgetvalue(r->res, 0, 0), NULL, 10);
        if (ob->n == ob->cfg.batch)
            ob->kicked = true; /* maybe more behind a full batch */
    }
    rest(ob, ob->stream_gone ? ST_NO_STREAM : ST_IDLE);
    ob->stream_gone = false;
}

/* Every PubAck is in: delete the rows JetStream stored. */
static void delete_acked(struct outbox *ob)
{
    size_t size = (size_t)ob->n * 24 + 3, used = 0;
    char *list = malloc(size);
    int acked = 0;

    if (list == NULL)
        abort();
    list[used++] = '{';
    for (int i = 0; i < ob->n; i++) {
        if (!ob->acks[i].ok)
            continue;
        used += (size_t)snprintf(list + used, size - used, "%s%s", acked ? "," : "",
                                 ob->acks[i].seq);
        acked++;
    }
    snprintf(list + used, size - used, "}");
    if (acked == 0) {
        free(list);
        ob->failed = true;
        rest(ob, ob->stream_gone ? ST_NO_STREAM : ST_IDLE);
        ob->stream_gone = false;
        return;
    }
    ob->state = ST_DELETING;
    db_query(ob->db, ob->cfg.first_stmt + OUTBOX_SQL_DONE, 2,
             (const char *[]){ob->cfg.source, list}, on_deleted, ob);
    free(list);
}

static void on_ack(void *arg, enum bus_status status, natsMsg *reply)
{
    struct ack *a = arg;
    struct outbox *ob = a->ob;

    if (status == BUS_OK) {
        json_t *j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0,
                               NULL);

        a->ok = j && json_object_get(j, "error") == NULL && json_object_get(j, "seq");
        if (a->ok && json_is_true(json_object_get(j, "duplicate")))
            ob->stats.duplicates++;
        json_decref(j);
        bus_msg_free(reply);
    } else if (status == BUS_NO_RESPONDERS) {
        ob->stream_gone = true; /* nobody stores events.>: the stream was deleted */
    }
    if (!a->ok) {
        ob->stats.failures++;
        ob->failed = true;
    }
    if (--ob->outstanding == 0)
        delete_acked(ob);
}

static void on_pending(void *arg, const struct db_result *r)
{
    struct outbox *ob = arg;

    if (r->err) {
        log_warn(NULL, "outbox: reading pending events failed: %s", r->message);
        ob->failed = true;
        rest(ob, ST_IDLE);
        return;
    }
    ob->n = PQntuples(r->res);
    if (ob->n == 0) {
        rest(ob, ST_IDLE);
        return;
    }
    ob->state = ST_PUBLISHING;
    ob->outstanding = ob->n;
    for (int i = 0; i < ob->n; i++) {
        struct ack *a = &ob->acks[i];
        const char *headers[] = {"Nats-Msg-Id", PQgetvalue(r->res, i, COL_ID)};
        char *event = PQgetvalue(r->res, i, COL_EVENT); /* ours until the callback returns */
        enum bus_status why;
        size_t len;
        uint64_t sent;

        a->ob = ob;
        a->ok = false;
        snprintf(a->seq, sizeof(a->seq), "%s", PQgetvalue(r->res, i, COL_SEQ));
        len = json_text_compact(event, (size_t)PQgetlength(r->res, i, COL_EVENT));
        sent = bus_request(ob->bus, PQgetvalue(r->res, i, COL_SUBJECT), headers, 1, event,
                           (int)len, 0, on_ack, a, &why);
        if (!sent) {
            /* Not connected: the rest would fail alike; on_ack's count ends
             * the pass once the ones already sent are answered. */
            ob->failed = true;
            ob->stats.failures++;
            ob->outstanding -= ob->n - i;
            if (ob->outstanding == 0)
                delete_acked(ob);
            return;
        }
    }
}

static void pass(struct outbox *ob)
{
    if (ob->state != ST_IDLE) {
        ob->kicked = true;
        return;
    }
    if (ob->closing)
        return;
    uv_timer_stop(&ob->timer);
    ob->kicked = false;
    ob->stats.passes++;
    ob->state = ST_SELECTING;
    db_query(ob->db, ob->cfg.first_stmt + OUTBOX_SQL_PENDING, 2,
             (const char *[]){ob->cfg.source, ob->limit}, on_pending, ob);
}

/* ---- the interface ------------------------------------------------------- */

struct outbox *outbox_new(uv_loop_t *loop, struct bus *bus, struct db *db,
                          const struct outbox_config *cfg)
{
    struct outbox *ob = calloc(1, sizeof(*ob));

    if (ob == NULL || cfg->batch < 1 || (ob->acks = calloc((size_t)cfg->batch,
                                                           sizeof(*ob->acks))) == NULL) {
        free(ob);
        return NULL;
    }
    ob->loop = loop;
    ob->bus = bus;
    ob->db = db;
    ob->cfg = *cfg;
    snprintf(ob->limit, sizeof(ob->limit), "%d", cfg->batch);
    uv_timer_init(loop, &ob->timer);
    ob->timer.data = ob;
    ob->state = ST_NO_STREAM;
    return ob;
}

void outbox_kick(struct outbox *ob)
{
    if (ob->state == ST_IDLE)
        pass(ob);
    else
        ob->kicked = true;
}

void outbox_on_bus(struct outbox *ob, bool connected)
{
    if (!connected)
        return;
    ob->backoff_ms = 0;
    if (ob->state == ST_NO_STREAM)
        ensure_stream(ob);
    else
        outbox_kick(ob); /* rows that waited for NATS */
}

bool outbox_ready(const struct outbox *ob)
{
    return ob->state >= ST_IDLE;
}

void outbox_get_stats(const struct outbox *ob, struct outbox_stats *out)
{
    *out = ob->stats;
}

void outbox_close(struct outbox *ob, void (*done)(void *arg), void *arg)
{
    log_info(NULL, "outbox: %" PRIu64 " events published (%" PRIu64 " duplicates) in %" PRIu64
             " passes, %" PRIu64 " failures",
             ob->stats.published, ob->stats.duplicates, ob->stats.passes, ob->stats.failures);
    ob->closing = true;
    ob->done = done;
    ob->done_arg = arg;
    uv_timer_stop(&ob->timer);
    if (ob->state == ST_IDLE || ob->state == ST_NO_STREAM)
        rest(ob, ob->state);
}

void outbox_free(struct outbox *ob)
{
    if (ob) {
        free(ob->acks);
        free(ob);
    }
}
