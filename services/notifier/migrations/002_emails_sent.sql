-- The emails a loop turn saw accepted, marked sent in one statement
-- (sql.h, SENT). Always by the primary key: a generic plan made while the
-- table was still small scanned the whole table for every batch, cached
-- until the next ANALYZE (30,000 emails queued at once went out at a fifth
-- of the rate of 10,000). With seq scans priced out, the plan is the index
-- whatever the table's size when it was made.
CREATE FUNCTION emails_sent(ids text[]) RETURNS SETOF emails
LANGUAGE sql SET enable_seqscan = off AS $$
    UPDATE emails SET state = 'sent', last_error = NULL, sent_at = now(),
                      next_attempt_at = NULL, updated_at = now()
     WHERE id = ANY(ids) AND state IN ('queued', 'sending')
    RETURNING *
$$;
