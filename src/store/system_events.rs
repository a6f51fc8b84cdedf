//! Events the hub itself raises (source `SYSTEM`): heartbeat lost or back, device changed,
//! duplicate connection, telemetry gap. Written straight to the Postgres event store.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Error;

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
        }
    }
}

/// Appends `event`, filling exam and candidate from the session; a retry with the same
/// `event_id` stores nothing twice.
pub async fn append(db: &PgPool, event: &SystemEvent) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO proctoring_events
             (id, event_id, session_id, exam_id, candidate_id, source, event_type, severity,
              \"timestamp\", meta)
         SELECT $1, $2, s.id, s.exam_id, s.candidate_id, 'SYSTEM', $3, $4, now(), $5
           FROM sessions s WHERE s.id = $6
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(event.event_id)
    .bind(event.event_type)
    .bind(event.severity)
    .bind(&event.meta)
    .bind(event.session_id)
    .execute(db)
    .await?;
    Ok(())
}
