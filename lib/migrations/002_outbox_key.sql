-- The relay reads and deletes by (source, seq): one index serves both as the
-- primary key, instead of a key on seq plus a second index.
ALTER TABLE outbox DROP CONSTRAINT outbox_pkey;
DROP INDEX outbox_source_seq;
ALTER TABLE outbox ADD PRIMARY KEY (source, seq);
