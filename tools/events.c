/* events.c - follows the events stream and prints each event as one JSON
 * line: `./dev events [filter]`. It is a plain JetStream subscriber, the
 * same thing any other service would write (see the README):
 *
 *   events [options] [subject filter, default events.>]
 *     --url URL          NATS server (default $NATS_URL or nats://127.0.0.1:4222)
 *     --stream NAME      the stream (default $EVENTS_STREAM or EVENTS)
 *     --durable NAME     a durable consumer: a restart resumes where it acked
 *     --new              only events published from now on (default: all kept)
 *     --count N          exit after N events
 *     --idle-ms T        exit when no event came for T ms (default: never)
 *     --meta             print {"stream_seq","deliveries","received_us","subject","event"}
 *     --ack-wait-ms W    redeliver what is not acked within W ms (default 30000)
 *     --skip-acks N      leave the first N deliveries unacked (they come back
 *                        after the ack wait: a slow or crashing subscriber)
 *
 * A CLI may block, so it uses nats.c's synchronous subscription. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <nats/nats.h>

struct opts {
    const char *url, *stream, *durable, *filter;
    bool new_only, meta;
    long count, idle_ms, ack_wait_ms, skip_acks;
};

static long number(const char *flag, const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s ? s : "", &end, 10);
    if (s == NULL || *s == '\0' || *end != '\0' || errno || v < 0) {
        fprintf(stderr, "events: %s needs a non-negative number\n", flag);
        exit(2);
    }
    return v;
}

static int parse(int argc, char **argv, struct opts *o)
{
    const char *env;

    *o = (struct opts){.url = (env = getenv("NATS_URL")) ? env : "nats://127.0.0.1:4222",
                       .stream = (env = getenv("EVENTS_STREAM")) ? env : "EVENTS",
                       .filter = "events.>", .ack_wait_ms = 30000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--url") == 0 && v)
            o->url = argv[++i];
        else if (strcmp(a, "--stream") == 0 && v)
            o->stream = argv[++i];
        else if (strcmp(a, "--durable") == 0 && v)
            o->durable = argv[++i];
        else if (strcmp(a, "--new") == 0)
            o->new_only = true;
        else if (strcmp(a, "--meta") == 0)
            o->meta = true;
        else if (strcmp(a, "--count") == 0)
            o->count = number(a, argv[++i]);
        else if (strcmp(a, "--idle-ms") == 0)
            o->idle_ms = number(a, argv[++i]);
        else if (strcmp(a, "--ack-wait-ms") == 0)
            o->ack_wait_ms = number(a, argv[++i]);
        else if (strcmp(a, "--skip-acks") == 0)
            o->skip_acks = number(a, argv[++i]);
        else if (a[0] != '-')
            o->filter = a;
        else
            return -1;
    }
    return o->ack_wait_ms > 0 ? 0 : -1;
}

static int print_event(const struct opts *o, natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    struct timespec now;
    int rc;

    if (!o->meta)
        return printf("%.*s\n", natsMsg_GetDataLength(msg), natsMsg_GetData(msg)) < 0 ? -1 : 0;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
        return -1;
    clock_gettime(CLOCK_REALTIME, &now);
    rc = printf("{\"stream_seq\":%llu,\"deliveries\":%llu,\"received_us\":%lld,"
                "\"subject\":\"%s\",\"event\":%.*s}\n",
                (unsigned long long)meta->Sequence.Stream,
                (unsigned long long)meta->NumDelivered,
                (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000, natsMsg_GetSubject(msg),
                natsMsg_GetDataLength(msg), natsMsg_GetData(msg));
    jsMsgMetaData_Destroy(meta);
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    jsCtx *js = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    long seen = 0, skipped = 0;

    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: events [--url URL] [--stream NAME] [--durable NAME] [--new] "
                        "[--count N] [--idle-ms T] [--meta] [--ack-wait-ms W] [--skip-acks N] "
                        "[filter]\n");
        return 2;
    }
    if ((s = natsConnection_ConnectTo(&nc, o.url)) != NATS_OK ||
        (s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
        fprintf(stderr, "events: %s: %s\n", o.url, natsStatus_GetText(s));
        return 1;
    }
    jsSubOptions_Init(&so);
    so.Stream = o.stream;
    so.ManualAck = true;
    so.Config.Durable = o.durable;
    so.Config.DeliverPolicy = o.new_only ? js_DeliverNew : js_DeliverAll;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = (int64_t)o.ack_wait_ms * 1000000;
    if ((s = js_SubscribeSync(&sub, js, o.filter, NULL, &so, &jerr)) != NATS_OK) {
        fprintf(stderr, "events: subscribing to %s on stream %s: %s (%d)\n", o.filter, o.stream,
                nats_GetLastError(NULL), (int)jerr);
        return 1;
    }
    while (o.count == 0 || seen < o.count) {
        natsMsg *msg = NULL;

        s = natsSubscription_NextMsg(&msg, sub, o.idle_ms > 0 ? o.idle_ms : 3600 * 1000);
        if (s == NATS_TIMEOUT && o.idle_ms == 0)
            continue;
        if (s != NATS_OK)
            break;
        if (print_event(&o, msg) != 0 || fflush(stdout) != 0) {
            natsMsg_Destroy(msg);
            break;
        }
        if (skipped < o.skip_acks) {
            skipped++; /* comes back after the ack wait */
        } else {
            natsMsg_Ack(msg, NULL);
            seen++;
        }
        natsMsg_Destroy(msg);
    }
    if (o.durable == NULL)
        natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Drain(nc);
    natsConnection_Destroy(nc);
    nats_Close();
    return s == NATS_OK || s == NATS_TIMEOUT ? 0 : 1;
}
