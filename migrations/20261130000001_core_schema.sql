-- Proctor Hub core schema: the relational data model (users, exams, questions, assignments,
-- sessions, answers, scores, admin actions, refresh sessions) plus the Postgres event store.
-- Table and column names are the data model's, in snake_case.

CREATE TYPE user_role AS ENUM ('CANDIDATE', 'ADMIN', 'PROCTOR');
CREATE TYPE exam_status AS ENUM ('DRAFT', 'PUBLISHED', 'ARCHIVED');
CREATE TYPE question_type AS ENUM ('MCQ', 'CODING', 'SUBJECTIVE');
CREATE TYPE session_status AS ENUM ('STARTED', 'SUBMITTED', 'AUTO_SUBMITTED', 'TERMINATED');
CREATE TYPE review_decision AS ENUM ('PENDING', 'APPROVED', 'REJECTED');
CREATE TYPE event_source AS ENUM ('LAPTOP', 'MOBILE', 'SYSTEM');

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    password_hash text NOT NULL,
    role          user_role NOT NULL,
    is_active     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email))
);
COMMENT ON TABLE users IS 'People who use the hub: admins author exams, proctors watch, candidates sit exams. Emails are stored lower-cased.';
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_role_idx ON users (role, created_at, id);

CREATE TABLE exams (
    id                  uuid PRIMARY KEY,
    title               text NOT NULL,
    instructions        text NOT NULL DEFAULT '',
    status              exam_status NOT NULL DEFAULT 'DRAFT',
    duration_minutes    integer NOT NULL CHECK (duration_minutes > 0),
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    created_by_user_id  uuid NOT NULL REFERENCES users (id),
    randomize_questions boolean NOT NULL DEFAULT false,
    proctoring_policy   jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT exams_window CHECK (starts_at < ends_at)
);
COMMENT ON TABLE exams IS 'An exam and its window. Lifecycle DRAFT -> PUBLISHED -> ARCHIVED only; proctoring_policy holds event weights and thresholds (NULL = defaults).';
CREATE INDEX exams_status_idx ON exams (status, starts_at);

CREATE TABLE exam_assignments (
    id                 uuid PRIMARY KEY,
    exam_id            uuid NOT NULL REFERENCES exams (id) ON DELETE CASCADE,
    candidate_id       uuid NOT NULL REFERENCES users (id),
    assigned_at        timestamptz NOT NULL DEFAULT now(),
    extra_time_minutes integer NOT NULL DEFAULT 0 CHECK (extra_time_minutes >= 0),
    CONSTRAINT exam_assignments_exam_candidate_key UNIQUE (exam_id, candidate_id)
);
COMMENT ON TABLE exam_assignments IS 'Which candidate may sit which exam, with per-candidate extra time (accommodations).';
CREATE INDEX exam_assignments_candidate_idx ON exam_assignments (candidate_id);

CREATE TABLE questions (
    id              uuid PRIMARY KEY,
    exam_id         uuid NOT NULL REFERENCES exams (id) ON DELETE CASCADE,
    type            question_type NOT NULL,
    prompt          text NOT NULL,
    options_json    jsonb NOT NULL DEFAULT '[]'::jsonb,
    answer_key_json jsonb,
    points          integer NOT NULL CHECK (points >= 0),
    order_index     integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE questions IS 'Questions of an exam. answer_key_json never leaves the server towards a candidate.';
CREATE INDEX questions_exam_order_idx ON questions (exam_id, order_index, id);

CREATE TABLE sessions (
    id                  uuid PRIMARY KEY,
    exam_id             uuid NOT NULL REFERENCES exams (id),
    candidate_id        uuid NOT NULL REFERENCES users (id),
    status              session_status NOT NULL DEFAULT 'STARTED',
    review_decision     review_decision NOT NULL DEFAULT 'PENDING',
    started_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    submitted_at        timestamptz,
    ended_reason        text,
    auto_score          numeric(12, 2),
    violation_score     double precision NOT NULL DEFAULT 0,
    device_fingerprint  text,
    ip_address          text,
    webrtc_room_id      uuid NOT NULL,
    candidate_socket_id text,
    mobile_socket_id    text,
    mobile_paired_at    timestamptz,
    question_order      uuid[] NOT NULL DEFAULT '{}',
    review_reason       text,
    reviewed_by         uuid REFERENCES users (id),
    reviewed_at         timestamptz,
    CONSTRAINT sessions_exam_candidate_key UNIQUE (exam_id, candidate_id),
    CONSTRAINT sessions_webrtc_room_key UNIQUE (webrtc_room_id),
    CONSTRAINT sessions_ended_has_time CHECK ((status = 'STARTED') = (submitted_at IS NULL))
);
COMMENT ON TABLE sessions IS 'One sitting of one exam by one candidate. expires_at is computed once by the server at start; STARTED -> SUBMITTED | AUTO_SUBMITTED | TERMINATED through guarded updates only. question_order is the per-session order shown to the candidate.';
CREATE INDEX sessions_exam_candidate_idx ON sessions (exam_id, candidate_id);
CREATE INDEX sessions_status_idx ON sessions (status);
CREATE INDEX sessions_due_idx ON sessions (expires_at) WHERE status = 'STARTED';
CREATE INDEX sessions_candidate_idx ON sessions (candidate_id);

CREATE TABLE answers (
    id            uuid PRIMARY KEY,
    session_id    uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    question_id   uuid NOT NULL REFERENCES questions (id),
    answer_type   question_type NOT NULL,
    response_json jsonb NOT NULL,
    version       bigint NOT NULL CHECK (version >= 0),
    latency_ms    integer,
    points        numeric(12, 2),
    graded_by     uuid REFERENCES users (id),
    graded_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT answers_session_question_key UNIQUE (session_id, question_id)
);
COMMENT ON TABLE answers IS 'Autosaved answers: one row per (session, question); version only ever increases. points/graded_* hold the automatic (MCQ) or human grade.';

CREATE TABLE scores (
    id               uuid PRIMARY KEY,
    session_id       uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    objective_score  numeric(12, 2) NOT NULL DEFAULT 0,
    subjective_score numeric(12, 2) NOT NULL DEFAULT 0,
    final_score      numeric(12, 2) NOT NULL DEFAULT 0,
    graded_at        timestamptz,
    CONSTRAINT scores_session_key UNIQUE (session_id)
);
COMMENT ON TABLE scores IS 'The score of an ended session: objective (MCQ, automatic) + subjective (graded by a person). graded_at is set once every non-MCQ answer has a grade.';

CREATE TABLE admin_actions (
    id             uuid PRIMARY KEY,
    session_id     uuid REFERENCES sessions (id) ON DELETE CASCADE,
    actor_id       uuid REFERENCES users (id),
    target_user_id uuid REFERENCES users (id),
    action_type    text NOT NULL,
    reason         text NOT NULL DEFAULT '',
    payload_json   jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE admin_actions IS 'Audit trail: every staff mutation (session actions, reviews, grades, user changes) and security events (refresh-token reuse). actor_id NULL means the hub itself.';
CREATE INDEX admin_actions_session_idx ON admin_actions (session_id, created_at, id);
CREATE INDEX admin_actions_created_idx ON admin_actions (created_at, id);

CREATE TABLE refresh_sessions (
    id                 uuid PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_jti          text NOT NULL,
    family_id          uuid NOT NULL,
    parent_jti         text,
    replaced_by_jti    text,
    used_at            timestamptz,
    device_fingerprint text,
    ip_address         text,
    expires_at         timestamptz NOT NULL,
    family_expires_at  timestamptz NOT NULL,
    revoked_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refresh_sessions_token_jti_key UNIQUE (token_jti)
);
COMMENT ON TABLE refresh_sessions IS 'Refresh tokens. token_jti is the SHA-256 of the opaque token (the token itself is never stored). Rotation spends a row (used_at, replaced_by_jti) and inserts its successor in the same family; replay outside the grace revokes the family.';
CREATE INDEX refresh_sessions_user_expires_idx ON refresh_sessions (user_id, expires_at);
CREATE INDEX refresh_sessions_family_idx ON refresh_sessions (family_id);

CREATE TABLE proctoring_events (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL,
    session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    exam_id      uuid NOT NULL,
    candidate_id uuid NOT NULL,
    source       event_source NOT NULL,
    event_type   text NOT NULL CHECK (event_type ~ '^[A-Z][A-Z0-9_]{0,63}$'),
    severity     smallint NOT NULL CHECK (severity BETWEEN 1 AND 10),
    "timestamp"  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    meta         jsonb,
    frame_ref    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT proctoring_events_event_id_key UNIQUE (event_id)
);
COMMENT ON TABLE proctoring_events IS 'The Postgres event store (used when no MongoDB is configured): the ProctoringEvent collection of the data model. event_id is the client-chosen id that makes retries idempotent.';
CREATE INDEX proctoring_events_session_ts_idx ON proctoring_events (session_id, "timestamp", id);
CREATE INDEX proctoring_events_exam_idx ON proctoring_events (exam_id);
CREATE INDEX proctoring_events_candidate_idx ON proctoring_events (candidate_id);
CREATE INDEX proctoring_events_type_idx ON proctoring_events (event_type);
CREATE INDEX proctoring_events_ts_idx ON proctoring_events ("timestamp");
