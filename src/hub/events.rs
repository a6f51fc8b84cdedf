//! Events reported over the WebSocket: checked against the sender (a laptop reports LAPTOP
//! events, a phone MOBILE events, nobody but the hub SYSTEM events), stored, acknowledged, and
//! pushed to the exam's watchers.

use signaling::{EventReport, LastEvent, ServerMessage, SessionStatus, Timestamp};
use uuid::Uuid;

use crate::hub::{Principal, SessionFact};
use crate::model::TokenRole;
use crate::state::AppState;

/// Accepts one event from a device; returns the `event-ack` or an error `(code, message)`.
pub async fn accept(
    state: &AppState,
    principal: &Principal,
    event: EventReport,
) -> Result<ServerMessage, (&'static str, String)> {
    let source = match principal.role {
        TokenRole::Candidate => "LAPTOP",
        TokenRole::Mobile => "MOBILE",
        TokenRole::Admin | TokenRole::Proctor => {
            return Err((
                "FORBIDDEN",
                "only a candidate's devices report events".into(),
            ))
        }
    };
    if let Some(declared) = event.source {
        if declared.as_str() != source {
            return Err((
                "INVALID_SOURCE",
                format!(
                    "this device reports {source} events, not {}",
                    declared.as_str()
                ),
            ));
        }
    }
    let now = chrono::Utc::now();
    let timestamp = event.timestamp.map_or(now, |t| t.get());
    if timestamp > now + chrono::Duration::seconds(30) {
        return Err(("INVALID_TIMESTAMP", "timestamp is in the future".into()));
    }
    // The device's own live session: a phone's is in its token; a laptop's is its open one.
    let row: Option<(Uuid, Uuid, f64)> = sqlx::query_as(
        "SELECT id, exam_id, violation_score FROM sessions
          WHERE status = 'STARTED' AND (($1::uuid IS NOT NULL AND id = $1) OR ($1::uuid IS NULL AND candidate_id = $2))
          ORDER BY started_at DESC LIMIT 1",
    )
    .bind(principal.session_id)
    .bind(principal.user_id)
    .fetch_optional(&state.db)
    .await
    .map_err(|_| ("STORE_UNAVAILABLE", "the event was not stored; retry".to_string()))?;
    let Some((session_id, exam_id, score)) = row else {
        return Err((
            "NO_ACTIVE_SESSION",
            "no session in progress for this device".into(),
        ));
    };
    sqlx::query(
        "INSERT INTO proctoring_events
             (id, event_id, session_id, exam_id, candidate_id, source, event_type, severity,
              \"timestamp\", meta, frame_ref)
         VALUES ($1, $2, $3, $4, $5, $6::event_source, $7, $8, $9, $10, $11)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(event.event_id.as_uuid())
    .bind(session_id)
    .bind(exam_id)
    .bind(principal.user_id)
    .bind(source)
    .bind(event.event_type.as_str())
    .bind(i16::from(event.severity.get()))
    .bind(timestamp)
    .bind(
        event
            .meta
            .as_ref()
            .map(|m| serde_json::Value::Object(m.as_map().clone())),
    )
    .bind(event.frame_ref.as_ref().map(|f| f.as_str().to_string()))
    .execute(&state.db)
    .await
    .map_err(|_| {
        (
            "STORE_UNAVAILABLE",
            "the event was not stored; retry".to_string(),
        )
    })?;
    state
        .hub
        .update(SessionFact {
            session_id,
            exam_id,
            status: SessionStatus::Started,
            violation_score: score,
            last_event: Some(LastEvent {
                event_id: event.event_id,
                event_type: event.event_type,
                severity: event.severity,
                timestamp: Timestamp::from(timestamp),
            }),
        })
        .await;
    Ok(ServerMessage::EventAck {
        event_id: event.event_id,
    })
}
