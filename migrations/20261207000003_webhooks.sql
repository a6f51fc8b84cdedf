-- Webhooks (Standard Webhooks): endpoints registered by admins, a transactional outbox of
-- messages written in the same transaction as the change they report, one delivery per
-- (message, subscribed endpoint), and every attempt.

CREATE TABLE webhook_endpoints (
    id             uuid PRIMARY KEY,
    url            text NOT NULL,
    description    text NOT NULL DEFAULT '',
    event_types    text[] NOT NULL,
    secret         text NOT NULL,
    enabled        boolean NOT NULL DEFAULT true,
    disabled_at    timestamptz,
    disabled_reason text,
    failing_since  timestamptz,
    created_by     uuid REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE webhook_endpoints IS 'Receivers of webhooks. secret is the whsec_ signing key (shown once at creation). failing_since is set by the first failed attempt after a success; an endpoint failing for HUB_WEBHOOK_DISABLE_AFTER_SECS is disabled.';

CREATE TABLE webhook_messages (
    id          uuid PRIMARY KEY,
    event_type  text NOT NULL,
    session_id  uuid,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE webhook_messages IS 'The outbox: one row per change reported, written in the change''s transaction, only when some enabled endpoint subscribes to its type. id is the webhook-id header; body is {type, timestamp, data} and holds ids, never names or emails.';
CREATE INDEX webhook_messages_session_idx ON webhook_messages (session_id);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id      uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    order_key       uuid NOT NULL,
    state           text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE webhook_deliveries IS 'One message to one endpoint. Deliveries with the same (endpoint_id, order_key) — the session — go out one at a time in seq order. A sender claims a delivery by setting lease_until (FOR UPDATE SKIP LOCKED); a lease that runs out is claimed again (at least once).';
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (endpoint_id, order_key, seq) WHERE state = 'PENDING';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC, id);

CREATE TABLE webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    status       integer,
    error        text,
    duration_ms  integer NOT NULL,
    node         text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- A session flagged by the violation policy (the first time its score reached the policy's
-- flag threshold): the trigger of the session.flagged webhook.
ALTER TABLE sessions ADD COLUMN flagged_at timestamptz;

-- Erasure of a user's personal data (GDPR Article 17): the row stays as a pseudonym.
ALTER TABLE users ADD COLUMN erased_at timestamptz;
