//! Proctor and admin routes on sessions: the exam's session list with liveness, staff actions
//! (WARN, TERMINATE, EXTEND_TIME, UNPAIR_MOBILE, ALLOW_DEVICE_CHANGE), review decisions, grading and scores. Every
//! mutation writes its `admin_actions` row in the transaction of the change, and the real-time
//! side is told through a [`HubSignal`] after COMMIT.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::error::Error;
use crate::http::extract::{Admin, Json, Path, Query, Staff};
use crate::http::page::{self, Cursor, Page, PageQuery};
use crate::model::{QuestionType, ReviewDecision, SessionStatus};
use crate::state::{AppState, HubSignal};
use crate::store::exams;
use crate::store::sessions::{self, ScoreView};

/// The routes of this module (`GET /exams/{id}/sessions` is mounted by `http::sessions`,
/// which owns that path's POST).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(act, list_actions))
        .routes(routes!(review))
        .routes(routes!(grade))
        .routes(routes!(score))
}

/// Liveness of a session's two devices as the dashboard shows it, with the WebSocket's values:
/// `ONLINE` (its heartbeat key is live), `LOST` (the session is in progress — so the laptop
/// started it, and the phone if one paired — but no heartbeat is live), `UNKNOWN` (no phone
/// paired, the session ended, or the heartbeat store cannot be read: a gap is never a loss).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Liveness {
    /// The laptop.
    pub laptop: &'static str,
    /// The phone.
    pub mobile: &'static str,
}

/// What decides a device's liveness besides its heartbeat key.
struct DeviceFacts {
    session_id: Uuid,
    laptop_seen: bool,
    mobile_seen: bool,
}

/// Reads the heartbeat keys of `sessions` in one pipelined round trip.
async fn liveness(state: &AppState, sessions: &[DeviceFacts]) -> Vec<Liveness> {
    let mut pipe = redis::pipe();
    for s in sessions {
        pipe.cmd("EXISTS")
            .arg(state.keys.heartbeat(s.session_id, "laptop"))
            .cmd("EXISTS")
            .arg(state.keys.heartbeat(s.session_id, "mobile"));
    }
    let mut conn = state.redis.clone();
    let keys: Option<Vec<bool>> = if sessions.is_empty() {
        Some(Vec::new())
    } else {
        pipe.query_async(&mut conn).await.ok()
    };
    let word = |live: Option<bool>, seen: bool| match (live, seen) {
        (None, _) => "UNKNOWN",
        (Some(true), _) => "ONLINE",
        (Some(false), true) => "LOST",
        (Some(false), false) => "UNKNOWN",
    };
    sessions
        .iter()
        .enumerate()
        .map(|(i, s)| Liveness {
            laptop: word(keys.as_ref().map(|k| k[2 * i]), s.laptop_seen),
            mobile: word(keys.as_ref().map(|k| k[2 * i + 1]), s.mobile_seen),
        })
        .collect()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CandidateRef {
    id: Uuid,
    name: String,
    email: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StaffSession {
    id: Uuid,
    candidate: CandidateRef,
    status: SessionStatus,
    review_decision: ReviewDecision,
    violation_score: f64,
    liveness: Liveness,
    started_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct StaffSessionRow {
    id: Uuid,
    candidate_id: Uuid,
    name: String,
    email: String,
    status: SessionStatus,
    review_decision: ReviewDecision,
    violation_score: f64,
    started_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
    laptop_seen: bool,
    mobile_seen: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionListQuery {
    status: Option<SessionStatus>,
    /// Only sessions with this review decision (e.g. the review queue: `PENDING`).
    review_decision: Option<ReviewDecision>,
    /// `true`: only ended sessions; `false`: only STARTED ones.
    ended: Option<bool>,
    /// Items per page (1..=500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /exams/{id}/sessions`: the exam's sessions, oldest start first.
#[utoipa::path(get,
    path = "/api/v1/exams/{id}/sessions",
    tag = "proctoring",
    params(("id" = Uuid, Path, description = "Exam id"), SessionListQuery),
    responses((status = 200, description = "A page of sessions", body = Page<StaffSession>)))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(exam_id): Path<Uuid>,
    Query(q): Query<SessionListQuery>,
) -> Result<Json<Page<StaffSession>>, Error> {
    let (limit, cursor) = page::parse(q.limit, q.cursor)?;
    exams::by_id(&state.db, exam_id)
        .await?
        .ok_or(Error::NotFound { what: "exam" })?;
    let rows: Vec<StaffSessionRow> = sqlx::query_as(
        "SELECT s.id, s.candidate_id, u.name, u.email, s.status, s.review_decision,
                s.violation_score, s.started_at, s.expires_at, s.submitted_at,
                s.status = 'STARTED' AS laptop_seen,
                s.status = 'STARTED' AND s.mobile_paired_at IS NOT NULL AS mobile_seen
           FROM sessions s JOIN users u ON u.id = s.candidate_id
          WHERE s.exam_id = $1 AND ($2::session_status IS NULL OR s.status = $2)
            AND ($3::timestamptz IS NULL OR (s.started_at, s.id) > ($3, $4))
            AND ($6::review_decision IS NULL OR s.review_decision = $6)
            AND ($7::bool IS NULL OR (s.status <> 'STARTED') = $7)
          ORDER BY s.started_at, s.id LIMIT $5",
    )
    .bind(exam_id)
    .bind(q.status)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .bind(q.review_decision)
    .bind(q.ended)
    .fetch_all(&state.db)
    .await?;
    let page = Page::from_rows(rows, limit, |r| Cursor {
        at: r.started_at,
        id: r.id,
    });
    let facts: Vec<DeviceFacts> = page
        .items
        .iter()
        .map(|r| DeviceFacts {
            session_id: r.id,
            laptop_seen: r.laptop_seen,
            mobile_seen: r.mobile_seen,
        })
        .collect();
    let live = liveness(&state, &facts).await;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .zip(live)
            .map(|(r, liveness)| StaffSession {
                liveness,
                id: r.id,
                candidate: CandidateRef {
                    id: r.candidate_id,
                    name: r.name,
                    email: r.email,
                },
                status: r.status,
                review_decision: r.review_decision,
                violation_score: r.violation_score,
                started_at: r.started_at,
                expires_at: r.expires_at,
                submitted_at: r.submitted_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// What staff may do to a session.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ActionType {
    Warn,
    Terminate,
    ExtendTime,
    UnpairMobile,
    AllowDeviceChange,
}

impl ActionType {
    fn as_str(self) -> &'static str {
        match self {
            ActionType::Warn => "WARN",
            ActionType::Terminate => "TERMINATE",
            ActionType::ExtendTime => "EXTEND_TIME",
            ActionType::UnpairMobile => "UNPAIR_MOBILE",
            ActionType::AllowDeviceChange => "ALLOW_DEVICE_CHANGE",
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ActionBody {
    action_type: ActionType,
    reason: String,
    payload: Option<Value>,
}

/// An `admin_actions` row as the API shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminActionView {
    /// Id.
    pub id: Uuid,
    /// Session concerned.
    pub session_id: Option<Uuid>,
    /// Who (`null`: the hub).
    pub actor_id: Option<Uuid>,
    /// What.
    pub action_type: String,
    /// Why.
    pub reason: String,
    /// Details.
    #[sqlx(rename = "payload_json")]
    pub payload: Option<Value>,
    /// When.
    pub created_at: DateTime<Utc>,
}

async fn action_view(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<AdminActionView, Error> {
    Ok(sqlx::query_as(
        "SELECT id, session_id, actor_id, action_type, reason, payload_json, created_at
           FROM admin_actions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await?)
}

fn closed() -> Error {
    Error::conflict("SESSION_CLOSED", "the session has already ended")
}

/// `POST /sessions/{id}/actions` → 201 the AdminAction.
#[utoipa::path(post,
    path = "/api/v1/sessions/{id}/actions",
    tag = "proctoring",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = ActionBody,
    responses((status = 201, description = "Recorded and applied", body = AdminActionView),
        (status = 409, description = "`SESSION_CLOSED`", body = crate::http::openapi::ErrorBody)))]
async fn act(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(id): Path<Uuid>,
    Json(body): Json<ActionBody>,
) -> Result<(StatusCode, Json<AdminActionView>), Error> {
    if body.reason.chars().count() > 2000 {
        return Err(Error::invalid("reason", "at most 2000 characters"));
    }
    let minutes = match body.action_type {
        ActionType::ExtendTime => {
            let m = body
                .payload
                .as_ref()
                .and_then(|p| p.get("minutes"))
                .and_then(Value::as_i64)
                .filter(|m| (1..=600).contains(m))
                .ok_or_else(|| Error::invalid("payload.minutes", "an integer between 1 and 600"))?;
            Some(m)
        }
        _ => None,
    };
    if body
        .payload
        .as_ref()
        .is_some_and(|p| p.to_string().len() > 16 * 1024)
    {
        return Err(Error::invalid("payload", "at most 16 KiB"));
    }
    let mut tx = state.db.begin().await?;
    let session = sessions::lock(&mut *tx, id).await?;
    let action_id = audit::record(
        &mut *tx,
        AuditEntry {
            session_id: Some(id),
            actor_id: Some(staff.user_id),
            target_user_id: Some(session.candidate_id),
            action_type: body.action_type.as_str(),
            reason: &body.reason,
            payload: body.payload.clone(),
        },
    )
    .await?;
    let view = action_view(&mut *tx, action_id).await?;
    match body.action_type {
        ActionType::Warn => {
            if session.status != SessionStatus::Started {
                return Err(closed());
            }
            tx.commit().await?;
            state.signal(HubSignal::Warn {
                session_id: id,
                message: body.reason,
            });
        }
        ActionType::Terminate => {
            // The same guarded ending as submit and the sweeper; the audit row commits with it.
            let reason = if body.reason.trim().is_empty() {
                "terminated by a proctor"
            } else {
                body.reason.as_str()
            };
            state
                .end_session(tx, id, SessionStatus::Terminated, reason)
                .await?
                .ok_or_else(closed)?;
        }
        ActionType::ExtendTime => {
            let moved: Option<DateTime<Utc>> = sqlx::query_scalar(
                "UPDATE sessions SET expires_at = expires_at + make_interval(mins => $2)
                  WHERE id = $1 AND status = 'STARTED'
                  RETURNING expires_at",
            )
            .bind(id)
            .bind(minutes.and_then(|m| i32::try_from(m).ok()).unwrap_or(0))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(expires_at) = moved else {
                return Err(closed());
            };
            tx.commit().await?;
            // The devices' countdowns and the watchers' grids move at once.
            state.signal(HubSignal::TimeExtended {
                session_id: id,
                exam_id: session.exam_id,
                expires_at,
            });
        }
        ActionType::UnpairMobile => {
            // The phone's renewable credential goes with it.
            sqlx::query(
                "UPDATE sessions SET mobile_socket_id = NULL, mobile_paired_at = NULL,
                        mobile_device_token_hash = NULL, mobile_device_fingerprint = NULL
                  WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            state.signal(HubSignal::UnpairMobile { session_id: id });
        }
        ActionType::AllowDeviceChange => {
            // The next resume from another laptop moves the session there, once.
            let allowed = sqlx::query(
                "UPDATE sessions SET device_change_allowed = true
                  WHERE id = $1 AND status = 'STARTED'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if allowed == 0 {
                return Err(closed());
            }
            tx.commit().await?;
        }
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /sessions/{id}/actions`, oldest first.
#[utoipa::path(get,
    path = "/api/v1/sessions/{id}/actions",
    tag = "proctoring",
    params(("id" = Uuid, Path, description = "Session id"), PageQuery),
    responses((status = 200, description = "A page of actions", body = Page<AdminActionView>)))]
async fn list_actions(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<AdminActionView>>, Error> {
    let (limit, cursor) = (q.limit()?, q.cursor()?);
    sessions::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "session" })?;
    let rows: Vec<AdminActionView> = sqlx::query_as(
        "SELECT id, session_id, actor_id, action_type, reason, payload_json, created_at
           FROM admin_actions
          WHERE session_id = $1
            AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
          ORDER BY created_at, id LIMIT $4",
    )
    .bind(id)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |a| Cursor {
        at: a.created_at,
        id: a.id,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReviewBody {
    /// `APPROVED` or `REJECTED`.
    decision: ReviewDecision,
    #[schema(max_length = 2000)]
    reason: String,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReviewView {
    id: Uuid,
    status: SessionStatus,
    review_decision: ReviewDecision,
    review_reason: Option<String>,
    reviewed_by: Option<Uuid>,
    reviewed_at: Option<DateTime<Utc>>,
}

/// `POST /sessions/{id}/review`: one decision per ended session, by a person.
#[utoipa::path(post,
    path = "/api/v1/sessions/{id}/review",
    tag = "proctoring",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = ReviewBody,
    responses((status = 200, description = "Decided", body = ReviewView),
        (status = 409, description = "`SESSION_NOT_ENDED`, `REVIEW_ALREADY_DECIDED`", body = crate::http::openapi::ErrorBody)))]
async fn review(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(id): Path<Uuid>,
    Json(body): Json<ReviewBody>,
) -> Result<Json<ReviewView>, Error> {
    if body.decision == ReviewDecision::Pending {
        return Err(Error::invalid("decision", "APPROVED or REJECTED"));
    }
    if body.reason.chars().count() > 2000 {
        return Err(Error::invalid("reason", "at most 2000 characters"));
    }
    let mut tx = state.db.begin().await?;
    let session = sessions::lock(&mut *tx, id).await?;
    if session.status == SessionStatus::Started {
        return Err(Error::conflict(
            "SESSION_NOT_ENDED",
            "a session can be reviewed only after it ended",
        ));
    }
    let view: ReviewView = sqlx::query_as(
        "UPDATE sessions SET review_decision = $2, review_reason = $3, reviewed_by = $4,
                reviewed_at = now()
          WHERE id = $1 AND review_decision = 'PENDING' AND status <> 'STARTED'
          RETURNING id, status, review_decision, review_reason, reviewed_by, reviewed_at",
    )
    .bind(id)
    .bind(body.decision)
    .bind(&body.reason)
    .bind(staff.user_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        Error::conflict(
            "REVIEW_ALREADY_DECIDED",
            "this session has already been reviewed",
        )
    })?;
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: Some(id),
            actor_id: Some(staff.user_id),
            target_user_id: Some(session.candidate_id),
            action_type: "REVIEW",
            reason: &body.reason,
            payload: Some(json!({"decision": body.decision})),
        },
    )
    .await?;
    crate::webhooks::outbox::enqueue(
        &mut *tx,
        crate::webhooks::REVIEW_DECIDED,
        Some(id),
        json!({"sessionId": id, "examId": session.exam_id, "candidateId": session.candidate_id,
               "decision": view.review_decision, "reason": view.review_reason,
               "reviewedBy": view.reviewed_by, "reviewedAt": view.reviewed_at}),
    )
    .await?;
    tx.commit().await?;
    state.signal(HubSignal::SessionChanged {
        session_id: id,
        exam_id: session.exam_id,
    });
    Ok(Json(view))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GradesBody {
    #[schema(min_items = 1, max_items = 500)]
    grades: Vec<GradeItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GradeItem {
    question_id: Uuid,
    /// Between 0 and the question's points.
    #[schema(minimum = 0)]
    points: f64,
}

/// `PUT /sessions/{id}/grades` (ADMIN): grades CODING and SUBJECTIVE answers of an ended
/// session; re-grading replaces the earlier grade. Audited as GRADE with the previous points.
#[utoipa::path(put,
    path = "/api/v1/sessions/{id}/grades",
    tag = "proctoring",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = GradesBody,
    responses((status = 200, description = "The score now", body = crate::store::sessions::ScoreView),
        (status = 409, description = "`SESSION_NOT_ENDED`", body = crate::http::openapi::ErrorBody)))]
async fn grade(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<GradesBody>,
) -> Result<Json<ScoreView>, Error> {
    if body.grades.is_empty() || body.grades.len() > exams_max() {
        return Err(Error::invalid("grades", "between 1 and 500 grades"));
    }
    let mut tx = state.db.begin().await?;
    let session = sessions::lock(&mut *tx, id).await?;
    if session.status == SessionStatus::Started {
        return Err(Error::conflict(
            "SESSION_NOT_ENDED",
            "a session can be graded only after it ended",
        ));
    }
    let questions: HashMap<Uuid, (QuestionType, i32)> = exams::questions(&mut *tx, session.exam_id)
        .await?
        .into_iter()
        .map(|q| (q.id, (q.kind, q.points)))
        .collect();
    let answered: HashMap<Uuid, Option<f64>> = sqlx::query_as::<_, (Uuid, Option<f64>)>(
        "SELECT question_id, points::float8 FROM answers
          WHERE session_id = $1 AND response_json <> 'null'::jsonb",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let mut seen = HashSet::new();
    for (i, g) in body.grades.iter().enumerate() {
        let (kind, max) = questions.get(&g.question_id).ok_or_else(|| {
            Error::invalid(
                format!("grades[{i}].questionId"),
                "not a question of this session's exam",
            )
        })?;
        if *kind == QuestionType::Mcq {
            return Err(Error::invalid(
                format!("grades[{i}].questionId"),
                "MCQ questions are scored automatically",
            ));
        }
        if !seen.insert(g.question_id) {
            return Err(Error::invalid(
                format!("grades[{i}].questionId"),
                "graded twice in one request",
            ));
        }
        if !g.points.is_finite() || g.points < 0.0 || g.points > f64::from(*max) {
            return Err(Error::invalid(
                format!("grades[{i}].points"),
                format!("between 0 and {max}"),
            ));
        }
        if !answered.contains_key(&g.question_id) && g.points != 0.0 {
            return Err(Error::invalid(
                format!("grades[{i}].points"),
                "an unanswered question can only be graded 0",
            ));
        }
    }
    let ids: Vec<Uuid> = body.grades.iter().map(|_| Uuid::new_v4()).collect();
    let qids: Vec<Uuid> = body.grades.iter().map(|g| g.question_id).collect();
    let points: Vec<f64> = body.grades.iter().map(|g| g.points).collect();
    // An unanswered question gets a `null` response row that only carries the grade.
    sqlx::query(
        "INSERT INTO answers (id, session_id, question_id, answer_type, response_json, version,
                             points, graded_by, graded_at)
         SELECT g.id, $1, g.qid, q.type, 'null'::jsonb, 0, g.points::numeric, $5, now()
           FROM UNNEST($2::uuid[], $3::uuid[], $4::float8[]) AS g(id, qid, points)
           JOIN questions q ON q.id = g.qid
         ON CONFLICT (session_id, question_id) DO UPDATE
            SET points = EXCLUDED.points, graded_by = EXCLUDED.graded_by,
                graded_at = EXCLUDED.graded_at",
    )
    .bind(id)
    .bind(&ids)
    .bind(&qids)
    .bind(&points)
    .bind(admin.user_id)
    .execute(&mut *tx)
    .await?;
    let score = sessions::rescore(&mut tx, id, session.exam_id).await?;
    let previous: HashMap<String, Option<f64>> = qids
        .iter()
        .map(|q| (q.to_string(), answered.get(q).copied().flatten()))
        .collect();
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: Some(id),
            actor_id: Some(admin.user_id),
            target_user_id: Some(session.candidate_id),
            action_type: "GRADE",
            reason: "",
            payload: Some(json!({
                "grades": body.grades.iter().map(|g| json!({"questionId": g.question_id, "points": g.points})).collect::<Vec<_>>(),
                "previous": previous,
                "finalScore": score.final_score,
            })),
        },
    )
    .await?;
    if score.graded_at.is_some() {
        crate::webhooks::outbox::enqueue(
            &mut *tx,
            crate::webhooks::SCORE_GRADED,
            Some(id),
            json!({"sessionId": id, "examId": session.exam_id,
                   "candidateId": session.candidate_id,
                   "objectiveScore": score.objective_score,
                   "subjectiveScore": score.subjective_score,
                   "finalScore": score.final_score, "gradedAt": score.graded_at}),
        )
        .await?;
    }
    tx.commit().await?;
    state.signal(HubSignal::SessionChanged {
        session_id: id,
        exam_id: session.exam_id,
    });
    Ok(Json(score))
}

fn exams_max() -> usize {
    usize::try_from(crate::http::exams::MAX_QUESTIONS).unwrap_or(500)
}

/// `GET /sessions/{id}/score` (staff).
#[utoipa::path(get,
    path = "/api/v1/sessions/{id}/score",
    tag = "proctoring",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, description = "The score", body = crate::store::sessions::ScoreView),
        (status = 409, description = "`SESSION_NOT_ENDED`", body = crate::http::openapi::ErrorBody)))]
async fn score(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(id): Path<Uuid>,
) -> Result<Json<ScoreView>, Error> {
    let session = sessions::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "session" })?;
    match sessions::score(&state.db, id).await? {
        Some(s) => Ok(Json(s)),
        None if session.status == SessionStatus::Started => Err(Error::conflict(
            "SESSION_NOT_ENDED",
            "a session has a score only after it ended",
        )),
        None => Err(Error::NotFound { what: "score" }),
    }
}
