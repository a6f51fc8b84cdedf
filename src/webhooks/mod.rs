//! Webhooks, after the Standard Webhooks spec: admins register endpoints for event types; a
//! change that should be reported writes a message to the outbox ([`outbox::enqueue`]) in its
//! own transaction, so a committed change always produces its webhook and a rolled-back one
//! never does; [`sender::run`] (on every hub process) claims due deliveries with
//! `FOR UPDATE SKIP LOCKED`, signs and sends them, and retries with exponential backoff
//! ([`backoff`]) for up to a day, in order per session. [`guard`] refuses endpoints on
//! private addresses.

pub mod backoff;
pub mod guard;
pub mod outbox;
pub mod sender;

use std::time::Duration;

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    SESSION_STARTED,
    SESSION_ENDED,
    SESSION_FLAGGED,
    REVIEW_DECIDED,
    SCORE_GRADED,
    PAIRING_CLAIMED,
];
/// A candidate started a session.
pub const SESSION_STARTED: &str = "session.started";
/// A session ended: submitted, auto-submitted or terminated (`status`, `reason`).
pub const SESSION_ENDED: &str = "session.ended";
/// A session's violation score reached its policy's flag threshold (once per session).
pub const SESSION_FLAGGED: &str = "session.flagged";
/// A person decided a session's review.
pub const REVIEW_DECIDED: &str = "review.decided";
/// A session's score became final (every question graded).
pub const SCORE_GRADED: &str = "score.graded";
/// A phone claimed a session's pairing token.
pub const PAIRING_CLAIMED: &str = "pairing.claimed";
/// The test message of `POST /webhooks/{id}/ping` (sent only to that endpoint).
pub const PING: &str = "webhook.ping";

/// Delivery settings (`HUB_WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Whether endpoints on loopback addresses are accepted (tests, local receivers).
    pub allow_loopback: bool,
    /// Whether endpoints on private, link-local and other non-public addresses are accepted
    /// (an LMS on the institution's own network).
    pub allow_private: bool,
    /// Requests in flight per hub process.
    pub concurrency: usize,
    /// Requests in flight per endpoint, across all hub processes.
    pub per_endpoint: i64,
    /// Time one request may take (connect, send, response).
    pub timeout: Duration,
    /// How long a delivery is retried before it is given up.
    pub retry_for: Duration,
    /// How long an endpoint may fail without a success before it is disabled.
    pub disable_after: Duration,
    /// The first retry's delay; each next one doubles.
    pub backoff_base: Duration,
    /// The longest delay between two attempts.
    pub backoff_max: Duration,
    /// How often each process looks for due deliveries.
    pub poll: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_loopback: false,
            allow_private: false,
            concurrency: 32,
            per_endpoint: 8,
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(24 * 3600),
            disable_after: Duration::from_secs(24 * 3600),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
            poll: Duration::from_millis(500),
        }
    }
}
