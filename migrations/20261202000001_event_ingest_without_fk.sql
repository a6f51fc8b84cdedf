-- Event ingest without a per-row foreign-key check.
--
-- The foreign key from proctoring_events to sessions ran one RI trigger (a lookup plus a
-- FOR KEY SHARE lock on the session row) for every stored event, the largest per-row cost of
-- the batched ingest after the indexes. The ingest already keeps only events whose session
-- exists (its INSERT joins sessions), which is the check that matters; what the foreign key
-- still gave, the cascade on delete, is kept by a statement-level trigger: deleting sessions
-- (rare, administrative) deletes their events in one statement.
ALTER TABLE proctoring_events DROP CONSTRAINT IF EXISTS proctoring_events_session_id_fkey;

CREATE FUNCTION proctoring_events_follow_sessions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM proctoring_events e USING gone WHERE e.session_id = gone.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_delete_their_events
    AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION proctoring_events_follow_sessions();

COMMENT ON FUNCTION proctoring_events_follow_sessions() IS 'Deletes the events of deleted sessions (what ON DELETE CASCADE did before the per-row foreign key was dropped for ingest speed).';
