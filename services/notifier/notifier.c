/* notifier.c - the consumer of send-email commands (see notifier.h).
 *
 * JetStream: a durable push consumer with explicit acks delivers to a plain
 * subject that the bus subscribes to, so messages arrive on the loop like
 * requests do; acks are publishes (lib/js.h). MaxAckPending is the
 * concurrency bound, so at most that many commands are ours at once; more
 * (after a consumer change) wait in a FIFO of the same bound.
 *
 * One command: CLAIM (insert or take its row; no row means it was sent or
 * failed already, so a redelivery is only acked), render the MIME message,
 * deliver it, then record the outcome and its event in one statement and
 * only then ack. Claims share a statement, and so do the emails sent:
 * while one is out, the next gathers what arrives (flush_queue), so one
 * transaction serves many commands under load. A temporary failure
 * records the error and naks with the backoff as delay, so JetStream holds
 * the command until its next attempt; a process that dies mid-attempt
 * leaves the command unacked, and JetStream redelivers it after AckWait. */
#include "notifier.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "js.h"
#include "log.h"
#include "mime.h"
#include "email_command.h"
#include "health.h"
#include "outbox.h"
#include "smtp.h"
#include "sql.h"

#define CONSUMER "notifier"
#define DELIVER_SUBJECT "notifier.deliver" /* outside the stream's subjects */
#define MAX_RECIPIENTS 50
#define MAX_ATTACHMENTS 10
#define SETUP_MIN_MS 250
#define SETUP_MAX_MS 5000
#define RECHECK_MS 60000   /* ensure the stream and consumer again (a JetStream reset) */
#define DB_RETRY_MS 1000   /* redelivery delay when PostgreSQL failed us */
#define BATCH_MAX 128      /* commands in one claim, or emails in one SENT */

struct notifier_config notifier_cfg;

struct delivery {
    natsMsg *msg;
    json_t *cmd;
    const char *id, *from, *subject, *text, *html, *request_id;
    const char *to[MAX_RECIPIENTS];
    int nto;
    struct mime_attachment att[MAX_ATTACHMENTS];
    struct strbuf att_data[MAX_ATTACHMENTS];
    int natt;
    char message_id[MIME_ID_MAX + 260];
    struct strbuf mime;
    long attempts;
    bool waited;         /* sat in the FIFO: restart AckWait before the attempt */
    long retry_ms;
    char error[512];     /* the file transport's */
    uv_work_t work;      /* the file transport */
    struct delivery *next;
};

/* Deliveries in order, linked through 'next'; a delivery is in at most one. */
struct queue {
    struct delivery *head, *tail;
    long n;
};

/* The deliveries of one claim or SENT statement, in the order of its $1. */
struct batch {
    int n;
    struct delivery *d[];
};

static struct {
    struct service_ctx ctx;
    struct smtp *smtp;        /* NULL: write files into MAIL_DIR */
    uv_timer_t setup_timer;
    long setup_backoff;
    bool ready;               /* the stream and consumer exist */
    long active;              /* claimed and not yet answered */
    struct queue waiting;     /* beyond NOTIFIER_CONCURRENCY, same bound */
    struct queue to_claim, sent; /* for the next statement of each kind */
    int claims_out, sents_out;   /* statements of each kind PostgreSQL has */
    uv_prepare_t flusher;     /* sends them before the loop waits for I/O */
    bool stopping;
    int handles_open;
    void (*stop_done)(void *arg);
    void *stop_arg;
} N;

static void start(struct delivery *d);
static void on_flush(uv_prepare_t *p);

/* ---- commands ------------------------------------------------------------ */

static void push(struct queue *q, struct delivery *d)
{
    d->next = NULL;
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
    q->n++;
}

static struct delivery *pop(struct queue *q)
{
    struct delivery *d = q->head;

    if (d) {
        q->head = d->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->n--;
    }
    return d;
}

static void delivery_free(struct delivery *d)
{
    for (int i = 0; i < d->natt; i++)
        sb_free(&d->att_data[i]);
    sb_free(&d->mime);
    json_decref(d->cmd);
    bus_msg_free(d->msg);
    free(d);
}

static const struct field command_fields[] = {
    {"id", F_STRING, true, MIME_ID_MAX},
    {"from", F_STRING, false, 254},
    {"to", F_ARRAY, true, 0},
    {"subject", F_STRING, true, 998},
    {"text", F_STRING, false, 0},
    {"html", F_STRING, false, 0},
    {"attachments", F_ARRAY, false, 0},
    {"requestId", F_STRING, false, 256},
    {NULL, 0, false, 0},
};

static const struct field attachment_fields[] = {
    {"filename", F_STRING, true, 255},
    {"contentType", F_STRING, false, 127},
    {"content", F_STRING, true, 0},
    {NULL, 0, false, 0},
};

/* "type/subtype" of token characters: nothing that could end the header. */
static bool content_type_ok(const char *t)
{
    int slashes = 0;

    for (; *t; t++) {
        if (*t == '/')
            slashes++;
        else if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
                   (*t >= '0' && *t <= '9') || strchr("!#$&^_.+-", *t)))
            return false;
    }
    return slashes == 1;
}

static int parse_attachments(struct delivery *d, json_t *list, char *err, size_t errsize)
{
    size_t i;
    json_t *a;

    if (json_array_size(list) > MAX_ATTACHMENTS) {
        snprintf(err, errsize, "more than %d attachments", MAX_ATTACHMENTS);
        return -1;
    }
    json_array_foreach(list, i, a) {
        const char *type, *data;

        if (check_object(a, attachment_fields, err, errsize) != 0)
            return -1;
        type = field_text(a, "contentType");
        if (type == NULL)
            type = "application/octet-stream";
        data = field_text(a, "content");
        if (!content_type_ok(type)) {
            snprintf(err, errsize, "attachment %zu: bad contentType", i);
            return -1;
        }
        d->natt++;
        if (mime_unbase64(&d->att_data[i], data, strlen(data)) != 0) {
            snprintf(err, errsize, "attachment %zu: content is not base64", i);
            return -1;
        }
        d->att[i] = (struct mime_attachment){field_text(a, "filename"), type, d->att_data[i].data,
                                             d->att_data[i].len};
    }
    return 0;
}

/* The command in 'msg' checked (proto/notifier.md), owning 'msg'; or NULL
 * after logging why, 'msg' still the caller's. */
static struct delivery *parse(natsMsg *msg)
{
    struct delivery *d = calloc(1, sizeof(*d));
    json_t *cmd, *to, *addr;
    char err[256] = "";
    size_t i;

    if (d == NULL)
        abort();
    d->msg = msg;
    d->cmd = cmd = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
                              JSON_REJECT_DUPLICATES, NULL);
    if (cmd == NULL) {
        snprintf(err, sizeof(err), "not a JSON object");
    } else if (check_object(cmd, command_fields, err, sizeof(err)) == 0) {
        d->id = field_text(cmd, "id");
        d->from = field_text(cmd, "from");
        if (d->from == NULL)
            d->from = notifier_cfg.mail_from;
        d->subject = field_text(cmd, "subject");
        d->text = field_text(cmd, "text");
        d->html = field_text(cmd, "html");
        d->request_id = field_text(cmd, "requestId");
        to = json_object_get(cmd, "to");
        if (!mime_id_ok(d->id))
            snprintf(err, sizeof(err), "id: 1 to %d characters of A-Z a-z 0-9 . _ -", MIME_ID_MAX);
        else if (!mime_address_ok(d->from))
            snprintf(err, sizeof(err), "from: not an email address");
        else if (json_array_size(to) == 0 || json_array_size(to) > MAX_RECIPIENTS)
            snprintf(err, sizeof(err), "to: 1 to %d addresses", MAX_RECIPIENTS);
        else if (d->text == NULL && d->html == NULL)
            snprintf(err, sizeof(err), "text or html is required");
        json_array_foreach(to, i, addr) {
            if (err[0] || i >= MAX_RECIPIENTS)
                break;
            d->to[d->nto++] = json_string_value(addr);
            if (d->to[i] == NULL || !mime_address_ok(d->to[i]))
                snprintf(err, sizeof(err), "to[%zu]: not an email address", i);
        }
        if (!err[0])
            parse_attachments(d, json_object_get(d->cmd, "attachments"), err, sizeof(err));
    }
    if (err[0]) {
        log_error(NULL, "dropping a malformed command (%.64s): %s",
                  bus_header(msg, "Nats-Msg-Id") ? bus_header(msg, "Nats-Msg-Id") : "no id", err);
        d->msg = NULL;
        delivery_free(d);
        return NULL;
    }
    snprintf(d->message_id, sizeof(d->message_id), "<%s@%s>", d->id, strchr(d->from, '@') + 1);
    return d;
}

static void finish_stop(void);

static void flush_later(void)
{
    uv_prepare_start(&N.flusher, on_flush);
}

/* The command is answered (acked or naked): take the next one. */
static void done(struct delivery *d)
{
    delivery_free(d);
    N.active--;
    while (N.waiting.n > 0 && N.active < notifier_cfg.concurrency)
        start(pop(&N.waiting));
    if (N.stopping && N.active == 0)
        finish_stop();
}

/* The outcome of 'd' is recorded, or not ('r->err'): answer the command. */
static void answer(struct delivery *d, const struct db_result *r)
{
    if (r->err) {
        /* Not recorded: let JetStream bring it back; an email already sent
         * goes out again (at least once), with the same Message-ID. */
        log_warn(d->request_id, "email %s: recording the outcome failed (%s); redelivering",
                 d->id, r->message);
        js_nak(N.ctx.bus, d->msg, DB_RETRY_MS);
    } else {
        js_ack(N.ctx.bus, d->msg);
    }
    done(d);
}

static void on_failed_recorded(void *arg, const struct db_result *r)
{
    if (!r->err)
        outbox_kick(N.ctx.outbox);
    answer(arg, r);
}

static void on_sent_recorded(void *arg, const struct db_result *r)
{
    struct batch *b = arg;

    N.sents_out--;
    if (N.sent.n > 0)
        flush_later();
    if (!r->err)
        outbox_kick(N.ctx.outbox);
    for (int i = 0; i < b->n; i++)
        answer(b->d[i], r);
    free(b);
}

static void record_sent(struct delivery *d)
{
    log_info(d->request_id, "email %s sent to %d recipient(s), attempt %ld", d->id, d->nto,
             d->attempts);
    push(&N.sent, d);
    flush_later();
}

static void record_failed(struct delivery *d, const char *error)
{
    log_warn(d->request_id, "email %s failed for good after %ld attempt(s): %s", d->id,
             d->attempts, error);
    db_query(N.ctx.db, SQL_FAILED, 2, (const char *[]){d->id, error}, on_failed_recorded, d);
}

static void on_retry_recorded(void *arg, const struct db_result *r)
{
    struct delivery *d = arg;

    if (r->err)
        log_warn(d->request_id, "email %s: recording the retry failed (%s)", d->id, r->message);
    js_nak(N.ctx.bus, d->msg, d->retry_ms);
    done(d);
}

/* Exponential backoff from NOTIFIER_RETRY_MIN_MS, capped, plus up to 25%
 * jitter so that messages failed together do not retry together. */
static long backoff_ms(long attempts)
{
    long d = notifier_cfg.retry_min_ms;

    for (long i = 1; i < attempts && d < notifier_cfg.retry_max_ms; i++)
        d *= 2;
    if (d > notifier_cfg.retry_max_ms)
        d = notifier_cfg.retry_max_ms;
    return d + (long)((unsigned long)rand() % (unsigned long)(d / 4 + 1));
}

static void retry_later(struct delivery *d, const char *error)
{
    char delay[24], why[512];

    if (d->attempts >= notifier_cfg.max_attempts) {
        snprintf(why, sizeof(why), "%s (gave up after %ld attempts)", error, d->attempts);
        record_failed(d, why);
        return;
    }
    d->retry_ms = backoff_ms(d->attempts);
    snprintf(delay, sizeof(delay), "%ld", d->retry_ms);
    log_warn(d->request_id, "email %s: attempt %ld failed (%s); next in %s ms", d->id,
             d->attempts, error, delay);
    db_query(N.ctx.db, SQL_RETRY, 3, (const char *[]){d->id, error, delay}, on_retry_recorded, d);
}

static void on_delivered(void *arg, enum smtp_outcome outcome, const char *detail)
{
    struct delivery *d = arg;

    if (outcome == SMTP_SENT)
        record_sent(d);
    else if (outcome == SMTP_PERMANENT)
        record_failed(d, detail);
    else
        retry_later(d, detail);
}

/* ---- the file transport: <id>.eml in MAIL_DIR, written off the loop ------ */

static void write_file(uv_work_t *w)
{
    struct delivery *d = w->data;
    char tmp[PATH_MAX], path[PATH_MAX];
    size_t off = 0;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s/.%s.eml.tmp", notifier_cfg.mail_dir, d->id);
    snprintf(path, sizeof(path), "%s/%s.eml", notifier_cfg.mail_dir, d->id);
    d->error[0] = '\0';
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        snprintf(d->error, sizeof(d->error), "MAIL_DIR: open: %s", strerror(errno));
        return;
    }
    while (off < d->mime.len) {
        ssize_t n = write(fd, d->mime.data + off, d->mime.len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(d->error, sizeof(d->error), "MAIL_DIR: write: %s", strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    if (!d->error[0] && fsync(fd) != 0)
        snprintf(d->error, sizeof(d->error), "MAIL_DIR: fsync: %s", strerror(errno));
    close(fd);
    if (!d->error[0] && rename(tmp, path) != 0)
        snprintf(d->error, sizeof(d->error), "MAIL_DIR: rename: %s", strerror(errno));
    if (d->error[0])
        unlink(tmp);
}

static void on_file_written(uv_work_t *w, int status)
{
    struct delivery *d = w->data;

    if (d->error[0])
        on_delivered(d, SMTP_TEMPORARY, d->error);
    else
        on_delivered(d, SMTP_SENT, "");
}

/* ---- one attempt ----------------------------------------------------------- */

static void attempt(struct delivery *d)
{
    struct mime_message m = {.from = d->from, .to = d->to, .nto = d->nto,
                             .subject = d->subject, .text = d->text, .html = d->html,
                             .attachments = d->att, .nattachments = d->natt, .id = d->id,
                             .date = time(NULL)};

    if (d->waited)
        js_in_progress(N.ctx.bus, d->msg);
    mime_build(&d->mime, &m);
    if (N.smtp) {
        smtp_send(N.smtp, d->from, d->to, d->nto, d->mime.data, d->mime.len, on_delivered, d);
        return;
    }
    d->work.data = d;
    if (uv_queue_work(N.ctx.loop, &d->work, write_file, on_file_written) != 0)
        on_delivered(d, SMTP_TEMPORARY, "could not queue the file write");
}

/* The row RETURNING gave for 'id', or -1. */
static int row_of(const PGresult *res, const char *id)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), id) == 0)
            return i;
    return -1;
}

static void claimed(struct delivery *d, const struct db_result *r)
{
    char why[64];
    int row;

    if (r->err) {
        log_warn(d->request_id, "email %s: claim failed (%s); redelivering", d->id, r->message);
        js_nak(N.ctx.bus, d->msg, DB_RETRY_MS);
        done(d);
        return;
    }
    if ((row = row_of(r->res, d->id)) < 0) {
        log_info(d->request_id, "email %s: already sent or failed; acking the redelivery", d->id);
        js_ack(N.ctx.bus, d->msg);
        done(d);
        return;
    }
    d->attempts = strtol(PQgetvalue(r->res, row, 1), NULL, 10);
    if (d->attempts > notifier_cfg.max_attempts) { /* its attempts kept dying with the process */
        snprintf(why, sizeof(why), "gave up after %ld attempts", d->attempts - 1);
        record_failed(d, why);
        return;
    }
    attempt(d);
}

static void on_claimed(void *arg, const struct db_result *r)
{
    struct batch *b = arg;

    N.claims_out--;
    if (N.to_claim.n > 0)
        flush_later();
    for (int i = 0; i < b->n; i++)
        claimed(b->d[i], r);
    free(b);
}

static json_t *claim_json(const struct delivery *d)
{
    return json_pack("{s:s, s:s, s:s, s:O, s:s, s:s?}", "id", d->id, "messageId", d->message_id,
                     "from", d->from, "to", json_object_get(d->cmd, "to"), "subject",
                     d->subject, "requestId", d->request_id);
}

static json_t *id_json(const struct delivery *d)
{
    return json_string(d->id);
}

static bool in_batch(const struct batch *b, const char *id)
{
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->d[i]->id, id) == 0)
            return true;
    return false;
}

/* Takes up to BATCH_MAX deliveries from 'q' into one statement 'stmt', whose $1
 * is the JSON array of item() of each. A command in hand twice (redelivered
 * while its first delivery was still ours) is given back to JetStream
 * rather than claimed twice in one statement. */
static void send_batch(struct queue *q, int stmt, json_t *(*item)(const struct delivery *),
                       db_cb cb)
{
    struct batch *b = malloc(sizeof(*b) + BATCH_MAX * sizeof(b->d[0]));
    long n = BATCH_MAX;
    json_t *list = json_array();
    char *text;

    if (b == NULL || list == NULL)
        abort();
    b->n = 0;
    while (n-- > 0 && q->n > 0) {
        struct delivery *d = pop(q);

        if (in_batch(b, d->id)) {
            js_nak(N.ctx.bus, d->msg, DB_RETRY_MS);
            done(d);
            continue;
        }
        if (json_array_append_new(list, item(d)) != 0)
            abort();
        b->d[b->n++] = d;
    }
    if ((text = json_dumps(list, JSON_COMPACT)) == NULL)
        abort();
    json_decref(list);
    db_query(N.ctx.db, stmt, 1, (const char *[]){text}, cb, b);
    free(text);
}

/* Group commit: one statement of a kind at a time, a second only for a
 * full batch. What arrives while one is out waits for its answer and goes
 * in the next, so under load a statement carries many rows (PostgreSQL's
 * cost is mostly per statement: an email alone in its statements cost it
 * four to five times what one of ten did), and an idle notifier sends each
 * at once. */
static void flush_queue(struct queue *q, int *out, int stmt,
                        json_t *(*item)(const struct delivery *), db_cb cb)
{
    while (q->n > 0 && (*out == 0 || q->n >= BATCH_MAX)) {
        (*out)++;
        send_batch(q, stmt, item, cb);
    }
}

static void on_flush(uv_prepare_t *p)
{
    uv_prepare_stop(p);
    flush_queue(&N.to_claim, &N.claims_out, SQL_CLAIM, claim_json, on_claimed);
    flush_queue(&N.sent, &N.sents_out, SQL_SENT, id_json, on_sent_recorded);
}

static void start(struct delivery *d)
{
    N.active++;
    push(&N.to_claim, d);
    flush_later();
}

static void on_command(void *arg, natsMsg *msg)
{
    struct delivery *d;

    if (N.stopping) { /* drained after the stop: give it back at once */
        js_nak(N.ctx.bus, msg, 0);
        bus_msg_free(msg);
        return;
    }
    if ((d = parse(msg)) == NULL) {
        js_term(N.ctx.bus, msg);
        bus_msg_free(msg);
        return;
    }
    if (N.active < notifier_cfg.concurrency) {
        start(d);
    } else if (N.waiting.n < notifier_cfg.concurrency) {
        d->waited = true;
        push(&N.waiting, d);
    } else {
        js_nak(N.ctx.bus, msg, DB_RETRY_MS);
        delivery_free(d);
    }
}

/* ---- the stream and the consumer ----------------------------------------- */

static void on_setup_timer(uv_timer_t *t);

static void setup_later(long ms)
{
    if (!N.stopping)
        uv_timer_start(&N.setup_timer, on_setup_timer, (uint64_t)ms, 0);
}

static void setup_failed(const char *what, const char *why)
{
    log_warn(NULL, "%s: %s; retrying", what, why);
    N.ready = false; /* not consuming as configured until it succeeds */
    N.setup_backoff = N.setup_backoff * 2 > SETUP_MAX_MS ? SETUP_MAX_MS : N.setup_backoff * 2;
    setup_later(N.setup_backoff);
}

static void on_consumer(void *arg, int code, const char *why)
{
    if (code != 0) {
        setup_failed("mail consumer", why);
        return;
    }
    if (!N.ready)
        log_info(NULL, "consuming %s from stream %s (durable %s, %ld at once)",
                 NOTIFIER_SEND_SUBJECT, notifier_cfg.stream, CONSUMER, notifier_cfg.concurrency);
    N.ready = true;
    N.setup_backoff = SETUP_MIN_MS;
    setup_later(RECHECK_MS);
}

static void ensure_consumer(void)
{
    char what[128];
    json_t *body = json_pack(
        "{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:I, s:s}}", "stream_name",
        notifier_cfg.stream, "config", "durable_name", CONSUMER, "deliver_subject",
        DELIVER_SUBJECT, "deliver_group", CONSUMER, "deliver_policy", "all", "ack_policy",
        "explicit", "ack_wait", (json_int_t)notifier_cfg.ack_wait_ms * 1000000, "max_deliver", -1,
        "max_ack_pending", (json_int_t)notifier_cfg.concurrency, "replay_policy", "instant");
    char *text = json_dumps(body, JSON_COMPACT);

    snprintf(what, sizeof(what), "CONSUMER.DURABLE.CREATE.%s.%s", notifier_cfg.stream, CONSUMER);
    js_api(N.ctx.bus, what, text, on_consumer, NULL);
    free(text);
    json_decref(body);
}

static void on_stream(void *arg, int code, const char *why)
{
    (void)arg;
    if (code != 0) {
        setup_failed("mail stream", why);
        return;
    }
    ensure_consumer();
}

/* WorkQueue retention: a command leaves the stream when it is acked. Full,
 * the stream refuses new commands rather than dropping old ones. */
static void ensure_stream(void)
{
    json_t *cfg = json_pack("{s:s, s:[s], s:s, s:s, s:I, s:s, s:I, s:I}", "name",
                            notifier_cfg.stream, "subjects", NOTIFIER_STREAM_SUBJECTS,
                            "retention", "workqueue", "storage", "file", "max_bytes",
                            (json_int_t)notifier_cfg.stream_max_bytes, "discard", "new",
                            "duplicate_window", (json_int_t)120 * 1000000000,
                            "num_replicas", (json_int_t)notifier_cfg.stream_replicas);

    if (cfg == NULL) {
        setup_failed("mail stream", "no memory for its configuration");
        return;
    }
    js_stream_ensure(N.ctx.bus, cfg, on_stream, NULL);
    json_decref(cfg);
}

static void on_setup_timer(uv_timer_t *t)
{
    if (N.stopping)
        return;
    if (!bus_connected(N.ctx.bus)) {
        setup_later(SETUP_MIN_MS);
        return;
    }
    ensure_stream();
}

/* Back on NATS: the stream and consumer are checked at once rather than at
 * the next recheck, for the store may be new. */
void notifier_bus_state(bool connected)
{
    if (connected && N.handles_open > 0 && !N.stopping) {
        N.setup_backoff = SETUP_MIN_MS;
        setup_later(0);
    }
}

/* ---- start and stop ------------------------------------------------------ */

/* Part of /readyz (with the service's NATS, PostgreSQL and events stream):
 * the MAIL stream and the consumer are in place and NATS is connected. */
static bool consuming(void *arg)
{
    return N.ready && !N.stopping && bus_connected(N.ctx.bus);
}

int notifier_start(const struct service_ctx *ctx)
{
    const struct notifier_config *c = &notifier_cfg;

    N.ctx = *ctx;
    if (c->ack_wait_ms <= c->smtp_timeout_ms) {
        log_error(NULL, "NOTIFIER_ACK_WAIT_MS must exceed SMTP_TIMEOUT_MS");
        return -1;
    }
    if (!mime_address_ok(c->mail_from)) {
        log_error(NULL, "MAIL_FROM '%s' is not an email address", c->mail_from);
        return -1;
    }
    if (*c->smtp_url) {
        struct smtp_config sc = {.url = c->smtp_url, .user = c->smtp_user,
                                 .password = c->smtp_password, .timeout_ms = c->smtp_timeout_ms,
                                 .max_connections = c->smtp_max_connections};

        if ((N.smtp = smtp_new(ctx->loop, &sc)) == NULL)
            return -1;
        /* Never the user:password@ a URL may hold. */
        const char *scheme_end = strstr(c->smtp_url, "://");
        const char *host = scheme_end ? scheme_end + 3 : c->smtp_url;
        const char *at = strchr(host, '@');
        const char *slash = strchr(host, '/');

        if (at && (slash == NULL || at < slash))
            host = at + 1;
        log_info(NULL, "delivering through %.*s%s",
                 scheme_end ? (int)(scheme_end + 3 - c->smtp_url) : 0, c->smtp_url, host);
    } else {
        if (mkdir(c->mail_dir, 0755) != 0 && errno != EEXIST) {
            log_error(NULL, "MAIL_DIR %s: %s", c->mail_dir, strerror(errno));
            return -1;
        }
        log_info(NULL, "SMTP_URL is empty: writing each email as <id>.eml into %s", c->mail_dir);
    }
    srand((unsigned)uv_hrtime() ^ (unsigned)getpid());
    if (bus_subscribe(ctx->bus, DELIVER_SUBJECT, CONSUMER, on_command, NULL) != 0)
        return -1;
    health_require(consuming, NULL);
    uv_timer_init(ctx->loop, &N.setup_timer);
    uv_prepare_init(ctx->loop, &N.flusher);
    N.handles_open = 2;
    N.setup_backoff = SETUP_MIN_MS;
    setup_later(0);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    if (--N.handles_open == 0)
        N.stop_done(N.stop_arg);
}

static void on_smtp_closed(void *arg)
{
    on_handle_closed(NULL);
}

static void finish_stop(void)
{
    log_info(NULL, "every command in hand answered; closing");
    uv_close((uv_handle_t *)&N.setup_timer, on_handle_closed);
    uv_close((uv_handle_t *)&N.flusher, on_handle_closed);
    if (N.smtp) {
        N.handles_open++;
        smtp_close(N.smtp, on_smtp_closed, NULL);
        N.smtp = NULL;
    }
}

void notifier_stop(void (*stop_done)(void *arg), void *arg)
{
    N.stopping = true;
    N.stop_done = stop_done;
    N.stop_arg = arg;
    uv_timer_stop(&N.setup_timer);
    /* Waiting ones go back to JetStream now; attempts under way finish. */
    while (N.waiting.n > 0) {
        struct delivery *d = pop(&N.waiting);

        js_nak(N.ctx.bus, d->msg, 0);
        delivery_free(d);
    }
    log_info(NULL, "stopping: %ld deliveries under way", N.active);
    if (N.active == 0)
        finish_stop();
}
