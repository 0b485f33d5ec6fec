-- The relay's one statement per pass (lib/outbox.c): deletes the rows
-- JetStream acknowledged in the previous pass, then returns the next ones
-- as plain columns, the relay writing each event's envelope itself.
-- Measured with pgbench on passes of 30 rows: outbox_pending, which built
-- the envelope with json_build_object, ran 17,600 passes/s; the same rows
-- as columns 36,000-37,500. A pass under load also saves the delete's own
-- statement and commit. Sequential scans stay off, as in 004.
--
-- outbox_pending and outbox_delete stay for replicas of the previous
-- version while a rolling update replaces them.
CREATE FUNCTION outbox_next(src text, acked bigint[], n int)
RETURNS TABLE (seq bigint, id uuid, subject text, at text, request_id text, data json)
LANGUAGE plpgsql SET enable_seqscan = off AS $$
BEGIN
    IF cardinality(acked) > 0 THEN
        DELETE FROM outbox o WHERE o.source = src AND o.seq = ANY (acked);
    END IF;
    RETURN QUERY
    SELECT o.seq, o.id, o.subject, to_json(o.time)::text, o.request_id, o.data
    FROM outbox o WHERE o.source = src ORDER BY o.seq LIMIT n;
END
$$;
