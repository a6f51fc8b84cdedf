//! Events the hub itself raises (source `SYSTEM`): heartbeat lost or back, device changed,
//! duplicate connection, telemetry gap. They go through the same batched ingest as the
//! devices' events, with source `SYSTEM` (which no device may claim).

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;
use crate::events::{to_millis, NewEvent, Source};
use crate::state::AppState;
use crate::store::sessions_lookup;

/// One SYSTEM event.
#[derive(Debug, Clone)]
pub struct SystemEvent {
    /// Idempotency key.
    pub event_id: Uuid,
    /// The session concerned.
    pub session_id: Uuid,
    /// UPPER_SNAKE type, e.g. `LAPTOP_HEARTBEAT_LOST`.
    pub event_type: &'static str,
    /// 1–10.
    pub severity: i16,
    /// Details.
    pub meta: Option<Value>,
    /// When it happened (its `timestamp`); the hub's detection time, not the time of writing.
    pub occurred_at: chrono::DateTime<Utc>,
}

impl SystemEvent {
    /// A new event with a fresh id.
    pub fn new(
        session_id: Uuid,
        event_type: &'static str,
        severity: i16,
        meta: Option<Value>,
    ) -> Self {
        SystemEvent {
            event_id: Uuid::new_v4(),
            session_id,
            event_type,
            severity,
            meta,
            occurred_at: Utc::now(),
        }
    }

    /// The same event, stamped with when the hub noticed it.
    pub fn at(mut self, at: chrono::DateTime<Utc>) -> Self {
        self.occurred_at = at;
        self
    }
}

/// The stored form of `event`, with exam and candidate from its session (`None` when the
/// session does not exist).
async fn to_new_event(state: &AppState, event: &SystemEvent) -> Result<Option<NewEvent>, Error> {
    let Some(facts) = sessions_lookup::by_id(&state.db, event.session_id).await? else {
        return Ok(None);
    };
    let now = to_millis(Utc::now());
    Ok(Some(NewEvent {
        id: Uuid::now_v7(),
        event_id: event.event_id,
        session_id: facts.id,
        exam_id: facts.exam_id,
        candidate_id: facts.candidate_id,
        source: Source::System,
        event_type: event.event_type.to_string(),
        severity: event.severity,
        timestamp: to_millis(event.occurred_at),
        received_at: now,
        meta: event.meta.clone(),
        frame_ref: None,
    }))
}

/// Appends `event` through the ingest and waits for it to be stored (a retry with the same
/// `event_id` stores nothing twice); 503 `EVENT_STORE_UNAVAILABLE` when it could not be.
pub async fn append(state: &AppState, event: &SystemEvent) -> Result<(), Error> {
    let Some(e) = to_new_event(state, event).await? else {
        return Ok(());
    };
    state
        .ingest
        .append(vec![e], state.config.events.ack_timeout)
        .await
        .map(|_| ())
        .map_err(|e| super::ingest::to_error(&e))
}

/// Hands `event` to the ingest without waiting (the hub's effects must not stall on the
/// store); it is buffered and retried like every other event.
pub async fn record(state: &AppState, event: &SystemEvent) -> Result<(), Error> {
    let Some(e) = to_new_event(state, event).await? else {
        return Ok(());
    };
    state
        .ingest
        .submit_detached(vec![e])
        .map_err(|e| super::ingest::to_error(&e))
}
