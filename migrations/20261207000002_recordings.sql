-- Session recordings (issue 18): each published track of a recorded session, as WebM
-- segments encrypted under the session's data key in the artifact store
-- ({session_id}/rec/{id}); this table lists them. Exams choose whether they are recorded.
ALTER TABLE exams ADD COLUMN record_media boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN exams.record_media IS 'Whether the relay records the media of this exam''s sessions (camera, screen, microphone, phone camera) for review.';

CREATE TABLE recordings (
    id            uuid PRIMARY KEY,
    session_id    uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    source        text NOT NULL CHECK (source IN ('camera', 'screen', 'microphone', 'phone-camera')),
    kind          text NOT NULL CHECK (kind IN ('video', 'audio')),
    codec         text NOT NULL,
    publisher     uuid NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    duration_ms   bigint NOT NULL CHECK (duration_ms >= 0),
    frames        bigint NOT NULL CHECK (frames >= 0),
    byte_size     bigint NOT NULL CHECK (byte_size >= 0),
    sha256        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE recordings IS 'WebM segments of recorded tracks; bytes encrypted in the artifact store. sha256 is of the plaintext WebM. Purged by the retention job unless the session is under review.';
CREATE INDEX recordings_session_idx ON recordings (session_id, started_at);
CREATE INDEX recordings_created_idx ON recordings (created_at);
