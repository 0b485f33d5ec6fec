-- The transactional outbox every service shares (proto/asyncapi.yaml): a
-- statement that changes state inserts its event here in the same
-- transaction; the service's relay publishes pending rows to JetStream in
-- seq order with Nats-Msg-Id = id and deletes them after the PubAck.
CREATE TABLE outbox (
    seq        bigserial   PRIMARY KEY,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    source     text        NOT NULL,          -- the service that owns the row
    subject    text        NOT NULL CHECK (subject LIKE 'events.%'),
    time       timestamptz NOT NULL DEFAULT clock_timestamp(),
    request_id text,                          -- X-Request-Id that caused it
    data       json        NOT NULL           -- json keeps the key order
);
CREATE INDEX outbox_source_seq ON outbox (source, seq);
