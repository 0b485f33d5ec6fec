/* outbox.c - the relay from the outbox table to JetStream (see outbox.h).
 *
 * One pass at a time, one statement a pass: delete the rows the previous
 * pass saw acknowledged and read up to 'batch' pending rows in seq order;
 * publish them all (pipelined on the one NATS connection, so JetStream
 * stores them in that order) and wait for every PubAck. A pass that
 * published runs the next at once, to delete what it published; one that
 * found nothing rests until a kick. A failure retries after a capped
 * backoff. Everything runs on the loop: the bus delivers replies there, the
 * pool its results. */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "js.h"
#include "jsontext.h"
#include "log.h"

/* A function that never scans the heap (005_outbox_next.sql). The statement
 * starts with WITH, not SELECT: it deletes, so it is a write, with its own
 * Sync (db.c). */
const char *const outbox_sql[OUTBOX_SQL_COUNT] = {
    [OUTBOX_SQL_NEXT] = "WITH next AS (SELECT * FROM outbox_next($1, $2::bigint[], $3)) "
                        "SELECT seq, id, subject, at, request_id, data FROM next",
};

enum { COL_SEQ, COL_ID, COL_SUBJECT, COL_TIME, COL_REQUEST_ID, COL_DATA };

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum state {
    ST_NO_STREAM, /* waiting for NATS, or to retry creating the stream */
    ST_ENSURING,  /* a stream create or update request is out */
    ST_IDLE,
    ST_READING,   /* outbox_next: deleting the acknowledged, reading on */
    ST_PUBLISHING,
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
    char *source_json;   /* cfg.source as a JSON string, for the envelopes */
    struct strbuf event; /* the envelope being published */
    struct strbuf acked; /* {seq,...}: what the next pass deletes */
    int nacked;
    uv_timer_t timer;    /* the retry backoff, or the sweep while idle */
    enum state state;
    bool kicked;         /* a commit happened during the pass */
    bool failed;         /* this pass met an error: back off */
    bool stream_gone;    /* a publish found no stream: create it again */
    bool final_sent;     /* closing: the last delete is out */
    long backoff_ms;
    struct ack *acks;    /* cfg.batch entries */
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

static void final_delete(struct outbox *ob);

/* Between passes: finish a close, or arm the timer for what comes next. */
static void rest(struct outbox *ob, enum state state)
{
    ob->state = state;
    if (ob->closing) {
        if (state == ST_IDLE && ob->nacked > 0 && !ob->final_sent)
            final_delete(ob);
        else
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

/* Row 'i' as the event published (proto/asyncapi.yaml): CloudEvents' field
 * names in their order, compact. */
static void envelope(struct outbox *ob, const PGresult *res, int i)
{
    struct strbuf *e = &ob->event;
    const char *subject = PQgetvalue(res, i, COL_SUBJECT);
    size_t data;

    e->len = 0;
    sb_adds(e, "{\"specversion\":\"1.0\",\"id\":\"");
    sb_adds(e, PQgetvalue(res, i, COL_ID));
    sb_adds(e, "\",\"source\":");
    sb_adds(e, ob->source_json);
    sb_adds(e, ",\"type\":");
    /* The subject without "events." (the table's CHECK holds that prefix). */
    json_text_string(e, subject + 7, (size_t)PQgetlength(res, i, COL_SUBJECT) - 7);
    sb_adds(e, ",\"time\":"); /* to_json(time): a JSON string already */
    sb_add(e, PQgetvalue(res, i, COL_TIME), (size_t)PQgetlength(res, i, COL_TIME));
    sb_adds(e, ",\"requestid\":");
    if (PQgetisnull(res, i, COL_REQUEST_ID))
        sb_adds(e, "null");
    else
        json_text_string(e, PQgetvalue(res, i, COL_REQUEST_ID),
                         (size_t)PQgetlength(res, i, COL_REQUEST_ID));
    sb_adds(e, ",\"datacontenttype\":\"application/json\",\"data\":");
    data = e->len;
    sb_add(e, PQgetvalue(res, i, COL_DATA), (size_t)PQgetlength(res, i, COL_DATA));
    e->len = data + json_text_compact(e->data + data, e->len - data);
    sb_add(e, "}", 1);
}

/* Nothing for the next pass to delete: an empty array. */
static void forget_acked(struct outbox *ob)
{
    ob->acked.len = 0;
    sb_adds(&ob->acked, "{}");
    ob->nacked = 0;
}

/* Every PubAck of the pass is in: the next pass deletes the rows JetStream
 * stored, and runs at once so that they do not wait for the next write. */
static void published(struct outbox *ob)
{
    forget_acked(ob);
    ob->acked.len = 1; /* keep the empty array's '{' */
    for (int i = 0; i < ob->n; i++) {
        if (!ob->acks[i].ok)
            continue;
        if (ob->nacked++ > 0)
            sb_add(&ob->acked, ",", 1);
        sb_adds(&ob->acked, ob->acks[i].seq);
    }
    sb_add(&ob->acked, "}", 1);
    ob->stats.published += (uint64_t)ob->nacked;
    if (ob->nacked > 0)
        ob->kicked = true;
    rest(ob, ob->stream_gone ? ST_NO_STREAM : ST_IDLE);
    ob->stream_gone = false;
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
        published(ob);
}

static void on_next(void *arg, const struct db_result *r)
{
    struct outbox *ob = arg;

    if (r->err) {
        /* The acknowledged rows stay, to be deleted by the next pass: were
         * they published again meanwhile, the stream drops the duplicates. */
        log_warn(NULL, "outbox: reading pending events failed: %s", r->message);
        ob->failed = true;
        rest(ob, ST_IDLE);
        return;
    }
    forget_acked(ob); /* deleted */
    ob->n = PQntuples(r->res);
    if (ob->n == 0 || ob->closing) {
        rest(ob, ST_IDLE);
        return;
    }
    ob->state = ST_PUBLISHING;
    ob->outstanding = ob->n;
    for (int i = 0; i < ob->n; i++) {
        struct ack *a = &ob->acks[i];
        const char *headers[] = {"Nats-Msg-Id", PQgetvalue(r->res, i, COL_ID)};
        enum bus_status why;

        a->ob = ob;
        a->ok = false;
        snprintf(a->seq, sizeof(a->seq), "%s", PQgetvalue(r->res, i, COL_SEQ));
        envelope(ob, r->res, i);
        if (!bus_request(ob->bus, PQgetvalue(r->res, i, COL_SUBJECT), headers, 1,
                         ob->event.data, (int)ob->event.len, 0, on_ack, a, &why)) {
            /* Not connected: the rest would fail alike; on_ack's count ends
             * the pass once the ones already sent are answered. */
            ob->failed = true;
            ob->stats.failures++;
            ob->outstanding -= ob->n - i;
            if (ob->outstanding == 0)
                published(ob);
            return;
        }
    }
}

static void next(struct outbox *ob, const char *limit)
{
    ob->state = ST_READING;
    db_query(ob->db, ob->cfg.first_stmt + OUTBOX_SQL_NEXT, 3,
             (const char *[]){ob->cfg.source, ob->acked.data, limit}, on_next, ob);
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
    next(ob, ob->limit);
}

/* Closing after a pass that published: its rows deleted, none read. */
static void final_delete(struct outbox *ob)
{
    ob->final_sent = true;
    next(ob, "0");
}

/* ---- the interface ------------------------------------------------------- */

struct outbox *outbox_new(uv_loop_t *loop, struct bus *bus, struct db *db,
                          const struct outbox_config *cfg)
{
    struct outbox *ob = calloc(1, sizeof(*ob));
    struct strbuf source = {0};

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
    json_text_string(&source, cfg->source, strlen(cfg->source));
    ob->source_json = source.data; /* now ob's */
    forget_acked(ob);
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
        free(ob->source_json);
        sb_free(&ob->acked);
        sb_free(&ob->event);
        free(ob);
    }
}
