//! Taking an exam (CANDIDATE): `/me/exams`, starting or resuming a session, reading it,
//! autosaving answers through the group commit, and submitting. Answer keys never appear in
//! anything this module returns.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::Error;
use crate::events::system::{self, SystemEvent};
use crate::http::extract::{AuthUser, Candidate, ClientIp, Json, Path};
use crate::http::page::Page;
use crate::jobs::autosave::{QuestionMeta, SessionMeta};
use crate::model::{ExamStatus, QuestionType, ReviewDecision, Role, SessionStatus};
use crate::state::AppState;
use crate::store::answers::{self, AnswerWrite, SavedAnswer, WriteResult};
use crate::store::exams::{self, CandidateQuestion};
use crate::store::sessions::{self, DeviceBinding, Ending, NewSession, SessionRow};

/// Largest CODING `code` / SUBJECTIVE `text`, in bytes.
pub const MAX_ANSWER_TEXT: usize = 100 * 1024;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_exams))
        .routes(routes!(start, crate::http::proctor::list_sessions))
        .routes(routes!(show))
        .routes(routes!(save_answer))
        .routes(routes!(submit))
}

/// A session as its candidate (and staff) see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    id: Uuid,
    exam_id: Uuid,
    status: SessionStatus,
    started_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
    ended_reason: Option<String>,
    review_decision: ReviewDecision,
    server_now: DateTime<Utc>,
    webrtc_room_id: Uuid,
    /// Whether the relay records this session's media (the exam's `recordMedia`): the
    /// candidate's page says so.
    record_media: bool,
    questions: Vec<CandidateQuestion>,
    answers: HashMap<Uuid, SavedAnswer>,
    /// Staff only: the points each graded answer got (MCQ scored at the end, the others by a
    /// grader), by question id.
    #[serde(skip_serializing_if = "Option::is_none")]
    grades: Option<HashMap<Uuid, Grade>>,
}

/// A graded answer, as staff read it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Grade {
    #[serde(skip)]
    question_id: Uuid,
    points: f64,
    graded_at: DateTime<Utc>,
    /// `null` for the automatic MCQ scoring.
    graded_by: Option<Uuid>,
}

/// Builds the body: the questions in the session's fixed order, keys stripped, and the saved
/// answers.
async fn session_body(state: &AppState, s: SessionRow) -> Result<SessionBody, Error> {
    let mut by_id: HashMap<Uuid, exams::QuestionRow> = exams::questions(&state.db, s.exam_id)
        .await?
        .into_iter()
        .map(|q| (q.id, q))
        .collect();
    let mut questions: Vec<CandidateQuestion> = s
        .question_order
        .iter()
        .filter_map(|id| by_id.remove(id))
        .map(Into::into)
        .collect();
    // Questions of a published exam never change, so nothing should be left; be safe anyway.
    let mut rest: Vec<exams::QuestionRow> = by_id.into_values().collect();
    rest.sort_by_key(|q| (q.order_index, q.id));
    questions.extend(rest.into_iter().map(Into::into));
    let answers = answers::of_session(&state.db, s.id).await?;
    let record_media: bool = sqlx::query_scalar("SELECT record_media FROM exams WHERE id = $1")
        .bind(s.exam_id)
        .fetch_one(&state.db)
        .await?;
    Ok(SessionBody {
        record_media,
        id: s.id,
        exam_id: s.exam_id,
        status: s.status,
        started_at: s.started_at,
        expires_at: s.expires_at,
        submitted_at: s.submitted_at,
        ended_reason: s.ended_reason,
        review_decision: s.review_decision,
        server_now: Utc::now(),
        webrtc_room_id: s.webrtc_room_id,
        questions,
        answers,
        grades: None,
    })
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct MyExamRow {
    id: Uuid,
    title: String,
    instructions: String,
    duration_minutes: i32,
    extra_time_minutes: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    /// Whether the relay records the exam's media (shown before the exam starts).
    record_media: bool,
    #[serde(skip)]
    session_id: Option<Uuid>,
    #[serde(skip)]
    session_status: Option<SessionStatus>,
    #[serde(skip)]
    session_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct MySession {
    id: Uuid,
    status: SessionStatus,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct MyExam {
    #[serde(flatten)]
    exam: MyExamRow,
    session: Option<MySession>,
}

/// The caller's assigned PUBLISHED exams with their window and the caller's session, if any.
/// All of them on one page (a candidate has few).
#[utoipa::path(get,
    path = "/api/v1/me/exams",
    tag = "sessions",
    responses((status = 200, description = "My assigned, published exams", body = Page<MyExam>)))]
async fn my_exams(
    State(state): State<AppState>,
    Candidate(me): Candidate,
) -> Result<Json<Page<MyExam>>, Error> {
    let rows: Vec<MyExamRow> = sqlx::query_as(
        "SELECT e.id, e.title, e.instructions, e.duration_minutes, a.extra_time_minutes,
                e.starts_at, e.ends_at, e.record_media, s.id AS session_id, s.status AS session_status,
                s.expires_at AS session_expires_at
           FROM exam_assignments a
           JOIN exams e ON e.id = a.exam_id AND e.status = 'PUBLISHED'
           LEFT JOIN sessions s ON s.exam_id = e.id AND s.candidate_id = a.candidate_id
          WHERE a.candidate_id = $1
          ORDER BY e.starts_at, e.id",
    )
    .bind(me.user_id)
    .fetch_all(&state.db)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| MyExam {
            session: match (r.session_id, r.session_status, r.session_expires_at) {
                (Some(id), Some(status), Some(expires_at)) => Some(MySession {
                    id,
                    status,
                    expires_at,
                }),
                _ => None,
            },
            exam: r,
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartBody {
    device_fingerprint: String,
}

/// Starts a session (201), or resumes the caller's STARTED one (200).
#[utoipa::path(post,
    path = "/api/v1/exams/{id}/sessions",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Exam id")),
    request_body = StartBody,
    responses((status = 201, description = "Started", body = SessionBody),
        (status = 200, description = "The STARTED session, resumed", body = SessionBody),
        (status = 403, description = "`NOT_ASSIGNED`", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "`EXAM_NOT_OPEN`, `SESSION_CLOSED`, `DEVICE_MISMATCH`", body = crate::http::openapi::ErrorBody)))]
#[tracing::instrument(skip_all, fields(exam_id = %exam_id))]
async fn start(
    State(state): State<AppState>,
    Candidate(me): Candidate,
    ip: ClientIp,
    Path(exam_id): Path<Uuid>,
    Json(body): Json<StartBody>,
) -> Result<(StatusCode, Json<SessionBody>), Error> {
    let fp = body.device_fingerprint.trim();
    if fp.is_empty() || fp.len() > 256 {
        return Err(Error::invalid(
            "deviceFingerprint",
            "between 1 and 256 characters",
        ));
    }
    let exam = exams::by_id(&state.db, exam_id)
        .await?
        .filter(|e| e.status != ExamStatus::Draft)
        .ok_or(Error::NotFound { what: "exam" })?;
    let extra: Option<i32> = sqlx::query_scalar(
        "SELECT extra_time_minutes FROM exam_assignments WHERE exam_id = $1 AND candidate_id = $2",
    )
    .bind(exam_id)
    .bind(me.user_id)
    .fetch_optional(&state.db)
    .await?;
    let Some(extra) = extra else {
        return Err(Error::forbidden(
            "NOT_ASSIGNED",
            "you are not assigned to this exam",
        ));
    };
    if let Some(existing) = sessions::of_candidate(&state.db, exam_id, me.user_id).await? {
        return resume(&state, existing, fp).await;
    }
    let mut order: Vec<Uuid> = exams::questions(&state.db, exam_id)
        .await?
        .into_iter()
        .map(|q| q.id)
        .collect();
    if exam.randomize_questions {
        order.shuffle(&mut rand::thread_rng());
    }
    let ip_text = ip.text();
    let mut tx = state.db.begin().await?;
    let inserted = sessions::insert_if_open(
        &mut *tx,
        NewSession {
            exam_id,
            candidate_id: me.user_id,
            extra_time_minutes: extra,
            question_order: &order,
            device_fingerprint: fp,
            ip_address: ip_text.as_deref(),
        },
    )
    .await?;
    if let Some(s) = &inserted {
        crate::webhooks::outbox::enqueue(
            &mut *tx,
            crate::webhooks::SESSION_STARTED,
            Some(s.id),
            serde_json::json!({"sessionId": s.id, "examId": s.exam_id,
                               "candidateId": s.candidate_id, "startedAt": s.started_at,
                               "expiresAt": s.expires_at}),
        )
        .await?;
    }
    tx.commit().await?;
    match inserted {
        Some(s) => {
            tracing::info!(session_id = %s.id, "session started");
            remember(&state, &s);
            state.signal(crate::state::HubSignal::SessionStarted {
                session_id: s.id,
                exam_id: s.exam_id,
                candidate_id: s.candidate_id,
            });
            metrics::counter!("hub_sessions_started_total").increment(1);
            Ok((StatusCode::CREATED, Json(session_body(&state, s).await?)))
        }
        // Either a concurrent start won the unique (exam, candidate) race, or the window is
        // closed (by the Postgres clock).
        None => match sessions::of_candidate(&state.db, exam_id, me.user_id).await? {
            Some(existing) => resume(&state, existing, fp).await,
            None => Err(Error::conflict(
                "EXAM_NOT_OPEN",
                "the exam is not open for starting now",
            )),
        },
    }
}

/// Resumes a STARTED session. Inside the autosave grace after its time ran out it still
/// answers (with `expiresAt` in the past), so a page reloaded in the last seconds can read its
/// session and flush its queued saves.
///
/// The session stays with the laptop that started it: a resume from another
/// `deviceFingerprint` is refused with 409 `DEVICE_MISMATCH` and recorded as a
/// `DEVICE_MISMATCH` event, unless staff allowed the change (`ALLOW_DEVICE_CHANGE`), which
/// moves the session to the new laptop once (recorded as `LAPTOP_DEVICE_CHANGED`).
async fn resume(
    state: &AppState,
    s: SessionRow,
    fingerprint: &str,
) -> Result<(StatusCode, Json<SessionBody>), Error> {
    let grace = chrono::Duration::from_std(state.config.exams.autosave_grace).unwrap_or_default();
    if s.status != SessionStatus::Started || s.expires_at + grace < Utc::now() {
        return Err(session_closed());
    }
    if s.device_fingerprint.as_deref() != Some(fingerprint) {
        let binding = sessions::bind_device(&state.db, s.id, fingerprint).await?;
        let event = |kind, severity| {
            SystemEvent::new(
                s.id,
                kind,
                severity,
                Some(serde_json::json!({
                    "deviceFingerprint": fingerprint,
                    "boundFingerprint": s.device_fingerprint,
                })),
            )
        };
        match binding {
            DeviceBinding::Same => {}
            DeviceBinding::Changed => {
                tracing::info!(session_id = %s.id, "session moved to another laptop");
                record_event(state, &event("LAPTOP_DEVICE_CHANGED", 3)).await;
            }
            DeviceBinding::Mismatch => {
                tracing::warn!(session_id = %s.id, "resume from another laptop refused");
                record_event(state, &event("DEVICE_MISMATCH", 6)).await;
                return Err(Error::conflict(
                    "DEVICE_MISMATCH",
                    "this exam was started on another device; ask a proctor to allow the change",
                ));
            }
        }
    }
    remember(state, &s);
    Ok((StatusCode::OK, Json(session_body(state, s).await?)))
}

/// Hands a SYSTEM event about a resume to the ingest (buffered and retried, not waited for);
/// a refusal is logged, never the caller's error.
async fn record_event(state: &AppState, event: &SystemEvent) {
    if let Err(e) = system::record(state, event).await {
        tracing::warn!(error = %e, event_type = event.event_type, "could not store a device event");
    }
}

/// Primes the autosave cache with a session about to be answered.
fn remember(state: &AppState, s: &SessionRow) {
    state.autosave.remember_session(
        s.id,
        SessionMeta {
            candidate_id: s.candidate_id,
            exam_id: s.exam_id,
        },
    );
}

fn session_closed() -> Error {
    Error::conflict("SESSION_CLOSED", "the session has ended or its time is up")
}

/// Loads a session the caller may see: the candidate's own, a phone's bound one, any for
/// staff; anything else is 404.
pub async fn visible_session(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
) -> Result<SessionRow, Error> {
    let s = sessions::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "session" })?;
    let allowed = match caller.role {
        Role::Admin | Role::Proctor => true,
        Role::Candidate => s.candidate_id == caller.user_id,
        Role::Mobile => caller.session_id == Some(s.id) && s.candidate_id == caller.user_id,
    };
    if allowed {
        Ok(s)
    } else {
        Err(Error::NotFound { what: "session" })
    }
}

/// A session: its own candidate, or staff.
#[utoipa::path(get,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, description = "The session", body = SessionBody)))]
async fn show(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<SessionBody>, Error> {
    let s = visible_session(&state, &caller, id).await?;
    let mut body = session_body(&state, s).await?;
    if caller.role.is_staff() {
        let grades: Vec<Grade> = sqlx::query_as(
            "SELECT question_id, points::float8 AS points, graded_at, graded_by FROM answers
              WHERE session_id = $1 AND graded_at IS NOT NULL AND points IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&state.db)
        .await?;
        body.grades = Some(grades.into_iter().map(|g| (g.question_id, g)).collect());
    }
    Ok(Json(body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SaveBody {
    response: Value,
    version: i64,
    latency_ms: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Saved {
    version: i64,
    saved_at: DateTime<Utc>,
}

/// Checks a response against its question: MCQ `{selected: [optionId…]}` (existing, unique),
/// CODING `{language, code}`, SUBJECTIVE `{text}`, each with size limits.
pub fn validate_response(q: &QuestionMeta, r: &Value) -> Result<(), Error> {
    let obj = r
        .as_object()
        .ok_or_else(|| Error::invalid("response", "must be an object"))?;
    let only = |keys: &[&str]| -> Result<(), Error> {
        match obj.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(Error::invalid(format!("response.{k}"), "unknown field")),
            None => Ok(()),
        }
    };
    let text = |key: &str, max: usize| -> Result<(), Error> {
        match obj.get(key).and_then(Value::as_str) {
            Some(s) if s.len() <= max => Ok(()),
            Some(_) => Err(Error::invalid(
                format!("response.{key}"),
                format!("at most {max} bytes"),
            )),
            None => Err(Error::invalid(
                format!("response.{key}"),
                "a string is required",
            )),
        }
    };
    match q.kind {
        QuestionType::Mcq => {
            only(&["selected"])?;
            let selected = obj
                .get("selected")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::invalid("response.selected", "an array of option ids"))?;
            let mut seen = std::collections::HashSet::new();
            for (i, s) in selected.iter().enumerate() {
                let id = s
                    .as_str()
                    .filter(|id| q.option_ids.iter().any(|o| o == id))
                    .ok_or_else(|| {
                        Error::invalid(
                            format!("response.selected[{i}]"),
                            "not an option of this question",
                        )
                    })?;
                if !seen.insert(id) {
                    return Err(Error::invalid(
                        format!("response.selected[{i}]"),
                        "selected twice",
                    ));
                }
            }
            Ok(())
        }
        QuestionType::Coding => {
            only(&["language", "code"])?;
            text("language", 32)?;
            text("code", MAX_ANSWER_TEXT)
        }
        QuestionType::Subjective => {
            only(&["text"])?;
            text("text", MAX_ANSWER_TEXT)
        }
    }
}

/// Autosave: validated here, written by the group commit, acknowledged after COMMIT.
#[utoipa::path(put,
    path = "/api/v1/sessions/{id}/answers/{question_id}",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id"), ("question_id" = Uuid, Path, description = "Question id")),
    request_body = SaveBody,
    responses((status = 200, description = "Stored (the version now stored)", body = Saved),
        (status = 409, description = "`SESSION_CLOSED`", body = crate::http::openapi::ErrorBody)))]
async fn save_answer(
    State(state): State<AppState>,
    Candidate(me): Candidate,
    Path((id, question_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<SaveBody>,
) -> Result<Json<Saved>, Error> {
    let session = state
        .autosave
        .session(id)
        .await?
        .filter(|s| s.candidate_id == me.user_id)
        .ok_or(Error::NotFound { what: "session" })?;
    let question = state
        .autosave
        .question(question_id)
        .await?
        .filter(|q| q.exam_id == session.exam_id)
        .ok_or(Error::NotFound { what: "question" })?;
    if body.version < 0 {
        return Err(Error::invalid("version", "must be 0 or more"));
    }
    if body.latency_ms.is_some_and(|l| !(0..=600_000).contains(&l)) {
        return Err(Error::invalid("latencyMs", "between 0 and 600000"));
    }
    validate_response(&question, &body.response)?;
    let result = state
        .autosave
        .save(AnswerWrite {
            session_id: id,
            question_id,
            kind: question.kind,
            response: body.response,
            version: body.version,
            latency_ms: body.latency_ms,
        })
        .await?;
    match result {
        WriteResult::Stored { version, saved_at } => Ok(Json(Saved { version, saved_at })),
        WriteResult::Closed => Err(session_closed()),
    }
}

/// Ends the caller's session as SUBMITTED. Idempotent: when the session has already ended
/// (a previous submit, the sweeper's auto-submit, or a proctor's terminate) it answers 200
/// with that ending unchanged, so a client retrying a lost response, or racing the clock,
/// always learns how its session actually ended.
#[utoipa::path(post,
    path = "/api/v1/sessions/{id}/submit",
    tag = "sessions",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, description = "Ended", body = Ending)))]
async fn submit(
    State(state): State<AppState>,
    Candidate(me): Candidate,
    Path(id): Path<Uuid>,
) -> Result<Json<Ending>, Error> {
    let s = sessions::by_id(&state.db, id)
        .await?
        .filter(|s| s.candidate_id == me.user_id)
        .ok_or(Error::NotFound { what: "session" })?;
    if s.status == SessionStatus::Started {
        let tx = state.db.begin().await?;
        if let Some(ending) = state
            .end_session(tx, id, SessionStatus::Submitted, "submitted")
            .await?
        {
            return Ok(Json(ending));
        }
    }
    // Already ended (possibly just now by someone else): report that ending.
    let s = sessions::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "session" })?;
    match s.submitted_at {
        Some(submitted_at) => Ok(Json(Ending {
            session_id: s.id,
            exam_id: s.exam_id,
            status: s.status,
            submitted_at,
            candidate_id: s.candidate_id,
        })),
        None => Err(Error::Internal("ended session without an end time".into())),
    }
}
