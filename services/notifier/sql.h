/* sql.h - every statement the notifier sends to PostgreSQL. The outcome of
 * a delivery and its event (events.notifier.email.*) are one statement; the
 * claims, and the emails sent, of one loop turn share one statement each. */
#ifndef NOTIFIER_SQL_H
#define NOTIFIER_SQL_H

#include "outbox.h"

/* An email as its events show it. */
#define EMAIL_JSON                                                                      \
    "json_build_object('id', id, 'messageId', message_id, 'from', sender, "             \
    "'to', to_json(recipients), 'subject', subject, 'attempts', attempts"

#define NOTIFIER_SQL(X)                                                                \
    /* Starts an attempt for each command of $1, a JSON array of objects     */ \
    /* {id, messageId, from, to, subject, requestId} with distinct ids: a new  */ \
    /* command, or one waiting for a retry or whose process died during an    */ \
    /* attempt. A command with no row returned is already sent or failed.     */ \
    X(CLAIM,                                                                           \
      "INSERT INTO emails (id, message_id, sender, recipients, subject, request_id, "  \
      "state, attempts) SELECT c->>'id', c->>'messageId', c->>'from', "                \
      "ARRAY(SELECT json_array_elements_text(c->'to')), c->>'subject', "               \
      "c->>'requestId', 'sending', 1 FROM json_array_elements($1::json) c "            \
      "ON CONFLICT (id) DO UPDATE SET state = 'sending', attempts = emails.attempts + 1, " \
      "updated_at = now() WHERE emails.state IN ('queued', 'sending') "                \
      "RETURNING id, attempts")                                                        \
    /* The emails of $1, a JSON array of ids, were accepted by the relay       */ \
    /* (emails_sent: 002_emails_sent.sql).                                     */ \
    X(SENT,                                                                            \
      "WITH m AS (SELECT * FROM emails_sent(ARRAY("                                    \
      "SELECT json_array_elements_text($1::json)))), "                                 \
      "e AS (" OUTBOX_EMIT("notifier", "events.notifier.email.sent", "request_id",       \
                           EMAIL_JSON ")", "m") ") "                                   \
      "SELECT count(*) FROM m")                                                        \
    X(FAILED,                                                                          \
      "WITH m AS (UPDATE emails SET state = 'failed', last_error = $2, "               \
      "next_attempt_at = NULL, updated_at = now() "                                    \
      "WHERE id = $1 AND state IN ('queued', 'sending') RETURNING *), "                \
      "e AS (" OUTBOX_EMIT("notifier", "events.notifier.email.failed", "request_id",     \
                           EMAIL_JSON ", 'error', last_error)", "m") ") "              \
      "SELECT count(*) FROM m")                                                        \
    X(RETRY,                                                                           \
      "UPDATE emails SET state = 'queued', last_error = $2, updated_at = now(), "      \
      "next_attempt_at = now() + $3::bigint * interval '1 millisecond' "               \
      "WHERE id = $1 AND state = 'sending'")

enum notifier_sql {
#define X(name, text) SQL_##name,
    NOTIFIER_SQL(X)
#undef X
    SQL_COUNT
};

extern const char *const notifier_sql[SQL_COUNT];

#endif
