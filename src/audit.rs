//! The audit trail (`admin_actions`): written in the same transaction as the change it records.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::Error;

/// One audit row to write.
#[derive(Debug)]
pub struct AuditEntry<'a> {
    /// The session concerned, if any.
    pub session_id: Option<Uuid>,
    /// Who did it (`None`: the hub itself).
    pub actor_id: Option<Uuid>,
    /// The user concerned, for user-level actions.
    pub target_user_id: Option<Uuid>,
    /// What was done, UPPER_SNAKE.
    pub action_type: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Details.
    pub payload: Option<serde_json::Value>,
}

impl AuditEntry<'static> {
    /// An action by `actor` on something that is neither a session nor a user (an exam, a
    /// webhook endpoint), described by `payload`.
    pub fn by(actor: Uuid, action_type: &'static str, payload: serde_json::Value) -> Self {
        AuditEntry {
            session_id: None,
            actor_id: Some(actor),
            target_user_id: None,
            action_type,
            reason: "",
            payload: Some(payload),
        }
    }
}

/// Writes `entry`; call it with the transaction of the change.
pub async fn record(db: impl PgExecutor<'_>, entry: AuditEntry<'_>) -> Result<Uuid, Error> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO admin_actions
             (id, session_id, actor_id, target_user_id, action_type, reason, payload_json)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(entry.session_id)
    .bind(entry.actor_id)
    .bind(entry.target_user_id)
    .bind(entry.action_type)
    .bind(entry.reason)
    .bind(entry.payload)
    .execute(db)
    .await?;
    Ok(id)
}
