-- Encrypted frame artifacts (issue 5): per-session data keys, stored only wrapped by the
-- configured master key, and the artifacts themselves (bytes live in the object store).

CREATE TABLE session_data_keys (
    session_id  uuid PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    wrapped_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE session_data_keys IS 'One random AES-256 data key per session, wrapped (AES-256-GCM, session id as associated data) by HUB_ARTIFACT_MASTER_KEY. The plain key is never stored.';

CREATE TABLE artifacts (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'video/webm')),
    byte_size    bigint NOT NULL CHECK (byte_size >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE artifacts IS 'Frame artifacts (the frameRef of events): encrypted bytes at {session_id}/{id} in the object store under the session data key. Purged by the retention job unless the session is under review.';
CREATE INDEX artifacts_session_idx ON artifacts (session_id);
CREATE INDEX artifacts_created_idx ON artifacts (created_at);
