//! The system check's media test: before an exam starts (and its timer with it), a candidate
//! may publish into a room of its own, so the page can confirm that its camera reaches the
//! hub's relay through this network. The room lives in Redis for ten minutes, belongs to the
//! candidate alone, and has no session: nobody watches it and nothing in it is recorded.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::Error;
use crate::http::extract::{Candidate, Json, Path};
use crate::model::ExamStatus;
use crate::state::AppState;
use crate::store::{exams, sessions_lookup::SessionFacts};

/// How long a check room can be joined.
pub const CHECK_ROOM_TTL: Duration = Duration::from_secs(600);

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CheckRoom {
    room_id: Uuid,
    expires_at: DateTime<Utc>,
}

/// `POST /exams/{id}/media-check` → 201 `{roomId, expiresAt}` for a candidate assigned to the
/// exam (404 for any other exam, as for everything a candidate may not see).
#[utoipa::path(post,
    path = "/api/v1/exams/{id}/media-check",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Exam id")),
    responses((status = 201, description = "A check room", body = CheckRoom)))]
async fn create(
    State(state): State<AppState>,
    Candidate(me): Candidate,
    Path(exam_id): Path<Uuid>,
) -> Result<(StatusCode, Json<CheckRoom>), Error> {
    exams::by_id(&state.db, exam_id)
        .await?
        .filter(|e| e.status == ExamStatus::Published)
        .ok_or(Error::NotFound { what: "exam" })?;
    let assigned: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM exam_assignments WHERE exam_id = $1 AND candidate_id = $2)",
    )
    .bind(exam_id)
    .bind(me.user_id)
    .fetch_one(&state.db)
    .await?;
    if !assigned {
        return Err(Error::NotFound { what: "exam" });
    }
    let room_id = Uuid::new_v4();
    let mut conn = state.redis.clone();
    redis::cmd("SET")
        .arg(state.keys.check_room(room_id))
        .arg(me.user_id.to_string())
        .arg("EX")
        .arg(CHECK_ROOM_TTL.as_secs())
        .query_async::<()>(&mut conn)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CheckRoom {
            room_id,
            expires_at: Utc::now() + chrono::Duration::from_std(CHECK_ROOM_TTL).unwrap_or_default(),
        }),
    ))
}

/// The facts of `room` when it is a live check room of `candidate`: a room of its own, with
/// no session and no exam anyone watches (its ids are the room's).
pub async fn facts_of(
    state: &AppState,
    room: Uuid,
    candidate: Uuid,
) -> Result<Option<SessionFacts>, Error> {
    let mut conn = state.redis.clone();
    let owner: Option<String> = redis::cmd("GET")
        .arg(state.keys.check_room(room))
        .query_async(&mut conn)
        .await?;
    Ok(
        (owner == Some(candidate.to_string())).then_some(SessionFacts {
            id: room,
            exam_id: room,
            candidate_id: candidate,
            webrtc_room_id: room,
            is_open: true,
            media_check: true,
            record_media: false,
        }),
    )
}
