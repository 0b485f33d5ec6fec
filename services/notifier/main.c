/* main.c - the notifier: sends the emails other services ask for through
 * JetStream commands (proto/notifier.md), the SES of this system. */
#include "cfg.h"
#include "notifier.h"
#include "sql.h"

const char *const notifier_sql[SQL_COUNT] = {
#define X(name, text) [SQL_##name] = text,
    NOTIFIER_SQL(X)
#undef X
};

#define C (&notifier_cfg)
static const struct cfg_key cfg[] = {
    CFG_STR("SMTP_URL", &C->smtp_url, "", "smtp:// or smtps:// URL of the relay (STARTTLS when offered); empty: write .eml files into MAIL_DIR"),
    CFG_STR("SMTP_USER", &C->smtp_user, "", "SMTP AUTH user (empty: no AUTH)"),
    CFG_STR("SMTP_PASSWORD", &C->smtp_password, "", "SMTP AUTH password"),
    CFG_INT("SMTP_TIMEOUT_MS", &C->smtp_timeout_ms, "30000", 100, 600000, "deadline of one delivery attempt, connect to final reply"),
    CFG_INT("SMTP_MAX_CONNECTIONS", &C->smtp_max_connections, "8", 1, 1024, "SMTP connections at once; more deliveries wait for one"),
    CFG_STR("MAIL_DIR", &C->mail_dir, "/tmp/elwing-mail", "folder of the <id>.eml files written when SMTP_URL is empty"),
    CFG_STR("MAIL_FROM", &C->mail_from, "noreply@example.com", "sender of the commands that name none"),
    CFG_INT("NOTIFIER_CONCURRENCY", &C->concurrency, "32", 1, 1024, "commands in hand at once (the consumer's MaxAckPending); a few per SMTP connection, since a command spends much of its time outside SMTP"),
    CFG_INT("NOTIFIER_ACK_WAIT_MS", &C->ack_wait_ms, "60000", 1000, 3600000, "a command unanswered this long is redelivered (above SMTP_TIMEOUT_MS)"),
    CFG_INT("NOTIFIER_MAX_ATTEMPTS", &C->max_attempts, "20", 1, 10000, "delivery attempts before an email is marked failed"),
    CFG_INT("NOTIFIER_RETRY_MIN_MS", &C->retry_min_ms, "60000", 10, 86400000, "wait after a first temporary failure; doubles with each one"),
    CFG_INT("NOTIFIER_RETRY_MAX_MS", &C->retry_max_ms, "1800000", 10, 86400000, "longest wait between two attempts"),
    CFG_STR("NOTIFIER_STREAM", &C->stream, "MAIL", "JetStream stream of the commands (notifier.email.>), created if missing"),
    CFG_INT("NOTIFIER_STREAM_REPLICAS", &C->stream_replicas, "1", 1, 5, "stream replicas (3 on a NATS cluster)"),
    CFG_INT("NOTIFIER_STREAM_MAX_BYTES", &C->stream_max_bytes, "1073741824", 1048576, 1099511627776, "the stream's size bound; when full, new commands are refused"),
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static json_t *error_body(int status, const char *message)
{
    return json_pack("{s:s}", "error", message);
}

static const struct endpoint endpoints[] = {
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const struct service_def notifier = {
        .name = "notifier",
        .endpoints = endpoints,
        .sql = notifier_sql,
        .nsql = SQL_COUNT,
        .error_body = error_body,
        .cfg = cfg,
        .start = notifier_start,
        .stop = notifier_stop,
        .bus_state = notifier_bus_state,
    };

    return service_run(&notifier, argc, argv);
}
