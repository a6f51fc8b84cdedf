//! Store work for proctors: the snapshot of an exam's sessions when a proctor starts watching,
//! and warnings (an audited action that reaches the candidate's laptop).

use signaling::{DeviceState, Liveness, SessionId, SessionStatus, SessionView, UserId};
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::error::Error;
use crate::events::policy::Policy;
use crate::state::{AppState, HubSignal};

/// The sessions of `exam`, or `None` when the exam does not exist.
pub async fn snapshot(state: &AppState, exam: Uuid) -> Result<Option<Vec<SessionView>>, Error> {
    let policy: Option<Option<serde_json::Value>> =
        sqlx::query_scalar("SELECT proctoring_policy FROM exams WHERE id = $1")
            .bind(exam)
            .fetch_optional(&state.db)
            .await?;
    let Some(policy) = policy else {
        return Ok(None);
    };
    let flag_at = Policy::from_stored(exam, policy.as_ref()).flag_at;
    let rows: Vec<(Uuid, Uuid, SessionStatus, f64)> = sqlx::query_as(
        "SELECT id, candidate_id, status, violation_score FROM sessions
          WHERE exam_id = $1 ORDER BY started_at, id",
    )
    .bind(exam)
    .fetch_all(&state.db)
    .await?;
    Ok(Some(
        rows.into_iter()
            .map(|(id, candidate, status, score)| SessionView {
                session_id: SessionId::from_uuid(id),
                status,
                violation_score: score,
                liveness: Liveness {
                    laptop: DeviceState::Unknown,
                    mobile: DeviceState::Unknown,
                },
                last_event: None,
                flagged: flag_at.map(|f| score >= f),
                candidate_id: Some(UserId::from_uuid(candidate)),
            })
            .collect(),
    ))
}

/// Records a WARN action and sends the warning to the laptop; false when the session does not
/// exist.
pub async fn warn(
    state: &AppState,
    actor: Uuid,
    session: Uuid,
    message: &str,
) -> Result<bool, Error> {
    let mut tx = state.db.begin().await?;
    let exists: Option<bool> = sqlx::query_scalar("SELECT true FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Ok(false);
    }
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: Some(session),
            actor_id: Some(actor),
            target_user_id: None,
            action_type: "WARN",
            reason: message,
            payload: Some(serde_json::json!({"via": "websocket"})),
        },
    )
    .await?;
    tx.commit().await?;
    state.signal(HubSignal::Warn {
        session_id: session,
        message: message.to_string(),
    });
    Ok(true)
}
