-- The notifier's record of every email command it took (proto/notifier.md):
-- the command id is the key, so a command delivered twice by JetStream finds
-- its row and is not sent again once it is 'sent' or 'failed'.
--   queued   waiting for a retry after a temporary failure (next_attempt_at)
--   sending  an attempt is under way (or its process died during it)
--   sent     the relay accepted it (or it was written to MAIL_DIR)
--   failed   refused for good (5xx), or out of attempts
CREATE TABLE emails (
    id              text        PRIMARY KEY,   -- the command id (Nats-Msg-Id)
    message_id      text        NOT NULL,      -- the Message-ID header, <id@domain>
    sender          text        NOT NULL,
    recipients      text[]      NOT NULL,
    subject         text        NOT NULL,
    request_id      text,                      -- X-Request-Id of the request that asked
    state           text        NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
