-- The relay's two statements, as functions that never scan the outbox's
-- heap. A prepared statement is planned once per connection (lib/db.h), and
-- connections usually prepare while the outbox is empty: the plan made then
-- is a sequential scan, and a queue table's heap fills with dead rows
-- between vacuums, so every pass would read them all again. A SQL function
-- with a SET clause is not inlined and is planned at each call, and with
-- sequential scans off it reads the (source, seq) key. The event is built
-- here, in CloudEvents' field names (proto/asyncapi.yaml).
CREATE FUNCTION outbox_pending(src text, n int)
RETURNS TABLE (seq bigint, id uuid, subject text, event text)
LANGUAGE sql STABLE SET enable_seqscan = off AS $$
    SELECT o.seq, o.id, o.subject, json_build_object('specversion', '1.0', 'id', o.id,
        'source', o.source, 'type', substr(o.subject, 8), 'time', o.time,
        'requestid', o.request_id, 'datacontenttype', 'application/json', 'data', o.data)::text
    FROM outbox o WHERE o.source = src ORDER BY o.seq LIMIT n
$$;

-- Deletes the rows JetStream acknowledged; returns how many.
CREATE FUNCTION outbox_delete(src text, seqs bigint[]) RETURNS bigint
LANGUAGE sql SET enable_seqscan = off AS $$
    WITH d AS (DELETE FROM outbox WHERE source = src AND seq = ANY (seqs) RETURNING 1)
    SELECT count(*) FROM d
$$;
