-- emails_sent again, in PL/pgSQL: a SQL function with a SET clause is not
-- inlined, so it was parsed and planned at every call, once per batch of
-- emails sent. PL/pgSQL keeps the statement's plan for the session, made
-- under the function's SET clause: still the primary key, whatever the
-- table's size when the plan was made.
CREATE OR REPLACE FUNCTION emails_sent(ids text[]) RETURNS SETOF emails
LANGUAGE plpgsql SET enable_seqscan = off AS $$
BEGIN
    RETURN QUERY
    UPDATE emails SET state = 'sent', last_error = NULL, sent_at = now(),
                      next_attempt_at = NULL, updated_at = now()
     WHERE id = ANY(ids) AND state IN ('queued', 'sending')
    RETURNING *;
END
$$;
