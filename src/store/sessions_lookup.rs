//! Read-only facts about a session that the real-time side needs (room, owner, status).

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::Error;

/// Who owns a session and where its devices meet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionFacts {
    /// The session.
    pub id: Uuid,
    /// Its exam.
    pub exam_id: Uuid,
    /// The candidate sitting it.
    pub candidate_id: Uuid,
    /// The WebRTC room of its devices and watchers.
    pub webrtc_room_id: Uuid,
    /// True while STARTED (not submitted, auto-submitted or terminated).
    pub is_open: bool,
    /// True for a candidate's media-check room (`http::media_check`), which has no session:
    /// its socket is no device of any session (no liveness, no events).
    pub media_check: bool,
    /// Whether the exam records its sessions' media (`exams.record_media`).
    pub record_media: bool,
}

const COLUMNS: &str = "id, exam_id, candidate_id, webrtc_room_id, status = 'STARTED' AS is_open, \
    false AS media_check, \
    (SELECT e.record_media FROM exams e WHERE e.id = sessions.exam_id) AS record_media";

/// Facts of the session with id `id`.
pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<SessionFacts>, Error> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// Facts of the session whose WebRTC room is `room_id`.
pub async fn by_room(
    db: impl PgExecutor<'_>,
    room_id: Uuid,
) -> Result<Option<SessionFacts>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE webrtc_room_id = $1"
    ))
    .bind(room_id)
    .fetch_optional(db)
    .await?)
}
