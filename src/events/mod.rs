//! Proctoring events: the event store (one trait, a Postgres and a MongoDB implementation),
//! validation, the batched ingest, violation scoring, the exam policy, encrypted frame
//! artifacts and the retention job.
//!
//! This module must not know the WebSocket wire format (that is `signaling`'s) nor HTTP
//! (that is `http/events.rs` and `http/artifacts.rs`): it takes validated [`NewEvent`]s and
//! hands back facts.

pub mod artifacts;
pub mod feed;
pub mod ingest;
pub mod mongo;
pub mod policy;
pub mod postgres;
pub mod retention;
pub mod scoring;
pub mod system;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::store::cursor::Cursor;

/// Where an event comes from (Postgres `event_source`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Source {
    /// The candidate's laptop (browser).
    Laptop,
    /// The paired phone.
    Mobile,
    /// The hub itself (liveness, duplicate connections, telemetry gaps…).
    System,
}

impl Source {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Laptop => "LAPTOP",
            Source::Mobile => "MOBILE",
            Source::System => "SYSTEM",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LAPTOP" => Some(Source::Laptop),
            "MOBILE" => Some(Source::Mobile),
            "SYSTEM" => Some(Source::System),
            _ => None,
        }
    }
}

/// A validated event ready to be stored (serialisable: a node passes committed events on to
/// the session's home, which scores them).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEvent {
    /// Row id, a UUIDv7 chosen at ingest: time-ordered, so rows append to the primary-key
    /// index instead of landing on random pages, and `(timestamp, id)` ties break in arrival
    /// order.
    pub id: Uuid,
    /// The producer's idempotency key.
    pub event_id: Uuid,
    /// The session it belongs to.
    pub session_id: Uuid,
    /// The session's exam (watchers and policies are per exam).
    pub exam_id: Uuid,
    /// The session's candidate.
    pub candidate_id: Uuid,
    /// Who sent it.
    pub source: Source,
    /// `^[A-Z][A-Z0-9_]{0,63}$`.
    pub event_type: String,
    /// 1–10.
    pub severity: i16,
    /// When it happened (the client's claim, bounded by the server clock), millisecond precision.
    pub timestamp: DateTime<Utc>,
    /// When the hub received it, millisecond precision.
    pub received_at: DateTime<Utc>,
    /// Free-form details, at most 8 KiB serialized.
    pub meta: Option<Value>,
    /// An encrypted artifact of the same session.
    pub frame_ref: Option<String>,
}

/// A stored event, as queries return it.
pub type StoredEvent = NewEvent;

/// Filters of a per-session query; results are ordered by `(timestamp, id)`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this type.
    pub event_type: Option<String>,
    /// Only this source.
    pub source: Option<Source>,
    /// Only events at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only events strictly after this `(timestamp, id)` (the previous page's end).
    pub after: Option<Cursor>,
    /// At most this many (callers ask for one more than a page to learn whether more exist).
    pub limit: i64,
}

/// Per-session counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Events per `eventType`.
    pub by_type: BTreeMap<String, i64>,
    /// Events per source (`LAPTOP`, `MOBILE`, `SYSTEM`).
    pub by_source: BTreeMap<String, i64>,
    /// All events.
    pub total: i64,
}

/// What scoring needs of one stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringInput {
    /// Row id (tie-break).
    pub id: Uuid,
    /// Who sent it.
    pub source: Source,
    /// Its type.
    pub event_type: String,
    /// 1–10.
    pub severity: i16,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
}

impl From<&NewEvent> for ScoringInput {
    fn from(e: &NewEvent) -> Self {
        ScoringInput {
            id: e.id,
            source: e.source,
            event_type: e.event_type.clone(),
            severity: e.severity,
            timestamp: e.timestamp,
        }
    }
}

/// Why the event store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Unreachable or overloaded: retry later.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the data (a bug upstream): retrying the same data will not help.
    #[error("event store refused the write: {0}")]
    Rejected(String),
}

/// The event store. Object-safe so the hub holds an `Arc<dyn EventStore>` chosen at start-up.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores `events` (one multi-row write); an `event_id` already stored is skipped, so a
    /// retried batch stores nothing twice. Returns the `event_id`s that were new.
    async fn append(&self, events: &[NewEvent]) -> Result<Vec<Uuid>, StoreError>;

    /// One session's events matching `query`, ordered by `(timestamp, id)`.
    async fn query(
        &self,
        session: Uuid,
        query: &EventQuery,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Counts of one session's events by type and source.
    async fn counts(&self, session: Uuid) -> Result<Counts, StoreError>;

    /// Deletes events older than `cutoff` of the listed sessions (the retention job lists
    /// only sessions not under review); returns how many were deleted.
    async fn delete_older_than(
        &self,
        cutoff: DateTime<Utc>,
        sessions: &[Uuid],
    ) -> Result<u64, StoreError>;

    /// Removes what is personal in the listed sessions' events (their `meta` and
    /// `frameRef`), keeping type, source, severity and time, on which scores and review
    /// decisions rest; returns how many events were changed.
    async fn erase_personal(&self, sessions: &[Uuid]) -> Result<u64, StoreError>;

    /// Everything scoring needs of one session's events, ordered by `(timestamp, id)`.
    async fn scoring_inputs(&self, session: Uuid) -> Result<Vec<ScoringInput>, StoreError>;

    /// [`EventStore::scoring_inputs`] of several sessions: an entry for every session asked
    /// for (empty when it has no events). The default asks one session at a time; a store
    /// that can answer in one query should.
    async fn scoring_inputs_of(
        &self,
        sessions: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<ScoringInput>>, StoreError> {
        let mut out = HashMap::with_capacity(sessions.len());
        for &session in sessions {
            out.insert(session, self.scoring_inputs(session).await?);
        }
        Ok(out)
    }
}

/// The shared handle the hub keeps.
pub type SharedStore = Arc<dyn EventStore>;

/// Truncates to whole milliseconds: both stores then hold the very same instant (MongoDB keeps
/// milliseconds only), so cursors and orderings agree.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
