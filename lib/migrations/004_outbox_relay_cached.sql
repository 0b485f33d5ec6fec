-- The relay's two functions again, in PL/pgSQL: a SQL function with a SET
-- clause is parsed and planned at every call, and the relay calls them once
-- a pass, so at a few events a pass that was most of its cost in
-- PostgreSQL. PL/pgSQL keeps each statement's plan for the session, made
-- under the function's SET clause: still the (source, seq) key, never the
-- heap of dead rows a queue table collects between vacuums.
CREATE OR REPLACE FUNCTION outbox_pending(src text, n int)
RETURNS TABLE (seq bigint, id uuid, subject text, event text)
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
BEGIN
    RETURN QUERY
    SELECT o.seq, o.id, o.subject, json_build_object('specversion', '1.0', 'id', o.id,
        'source', o.source, 'type', substr(o.subject, 8), 'time', o.time,
        'requestid', o.request_id, 'datacontenttype', 'application/json', 'data', o.data)::text
    FROM outbox o WHERE o.source = src ORDER BY o.seq LIMIT n;
END
$$;

CREATE OR REPLACE FUNCTION outbox_delete(src text, seqs bigint[]) RETURNS bigint
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    deleted bigint;
BEGIN
    DELETE FROM outbox WHERE source = src AND seq = ANY (seqs);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
