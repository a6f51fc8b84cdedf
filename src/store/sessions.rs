//! The `sessions` and `scores` tables: starting, ending (the one place every ending goes
//! through), scoring and grading.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use crate::error::Error;
use crate::model::{ReviewDecision, SessionStatus};

/// A session as stored (the columns the API needs).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    /// Primary key.
    pub id: Uuid,
    /// The exam sat.
    pub exam_id: Uuid,
    /// Who sits it.
    pub candidate_id: Uuid,
    /// State.
    pub status: SessionStatus,
    /// Review state.
    pub review_decision: ReviewDecision,
    /// Started (Postgres clock).
    pub started_at: DateTime<Utc>,
    /// Computed once at start (moved only by EXTEND_TIME).
    pub expires_at: DateTime<Utc>,
    /// When it ended, whichever way.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Why it ended.
    pub ended_reason: Option<String>,
    /// Running violation score.
    pub violation_score: f64,
    /// The room of its devices.
    pub webrtc_room_id: Uuid,
    /// The order its questions are shown in, fixed at start.
    pub question_order: Vec<Uuid>,
    /// The laptop it is bound to (set at start; moved only by an allowed device change).
    pub device_fingerprint: Option<String>,
}

/// Columns selected into [`SessionRow`].
pub const SESSION_COLUMNS: &str = "id, exam_id, candidate_id, status, review_decision, \
    started_at, expires_at, submitted_at, ended_reason, violation_score, webrtc_room_id, \
    question_order, device_fingerprint";

/// Finds a session.
pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<SessionRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Finds a session and locks it until the end of the transaction.
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> Result<SessionRow, Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound { what: "session" })
}

/// The session of a candidate for an exam, if any.
pub async fn of_candidate(
    db: impl PgExecutor<'_>,
    exam_id: Uuid,
    candidate_id: Uuid,
) -> Result<Option<SessionRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE exam_id = $1 AND candidate_id = $2"
    ))
    .bind(exam_id)
    .bind(candidate_id)
    .fetch_optional(db)
    .await?)
}

/// What a new session needs besides the exam and the candidate.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// The exam.
    pub exam_id: Uuid,
    /// The candidate.
    pub candidate_id: Uuid,
    /// The candidate's accommodation.
    pub extra_time_minutes: i32,
    /// The order of the questions for this session.
    pub question_order: &'a [Uuid],
    /// The laptop's fingerprint.
    pub device_fingerprint: &'a str,
    /// The client address.
    pub ip_address: Option<&'a str>,
}

/// Inserts a session if the exam is open now (Postgres clock) and the candidate has none.
/// `expires_at = min(now + duration + extra, ends_at)`, computed here, once. Returns `None`
/// when the window is closed or a concurrent start won (the caller tells which).
pub async fn insert_if_open(
    db: impl PgExecutor<'_>,
    new: NewSession<'_>,
) -> Result<Option<SessionRow>, Error> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO sessions (id, exam_id, candidate_id, status, started_at, expires_at,
                               device_fingerprint, ip_address, webrtc_room_id, question_order)
         SELECT $1, e.id, $3, 'STARTED', now(),
                LEAST(now() + make_interval(mins => e.duration_minutes + $4), e.ends_at),
                $5, $6, $7, $8
           FROM exams e
          WHERE e.id = $2 AND e.status = 'PUBLISHED' AND now() >= e.starts_at AND now() < e.ends_at
         ON CONFLICT (exam_id, candidate_id) DO NOTHING
         RETURNING {SESSION_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(new.exam_id)
    .bind(new.candidate_id)
    .bind(new.extra_time_minutes)
    .bind(new.device_fingerprint)
    .bind(new.ip_address)
    .bind(Uuid::new_v4())
    .bind(new.question_order)
    .fetch_optional(db)
    .await?)
}

/// What a resume from a laptop found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceBinding {
    /// The session's own laptop (or the first one to present itself).
    Same,
    /// Another laptop, which staff allowed: the session is now bound to it.
    Changed,
    /// Another laptop, not allowed: nothing changed.
    Mismatch,
}

/// Binds a STARTED session to the laptop `fingerprint` resuming it: the same fingerprint is
/// accepted; another one only when staff allowed a change (`device_change_allowed`, which this
/// consumes, so one allowance moves the session once).
pub async fn bind_device(
    db: &sqlx::PgPool,
    id: Uuid,
    fingerprint: &str,
) -> Result<DeviceBinding, Error> {
    let mut tx = db.begin().await?;
    let row: Option<(Option<String>, bool)> = sqlx::query_as(
        "SELECT device_fingerprint, device_change_allowed FROM sessions WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((current, allowed)) = row else {
        return Err(Error::NotFound { what: "session" });
    };
    let binding = match current.as_deref() {
        Some(c) if c == fingerprint => return Ok(DeviceBinding::Same),
        None => DeviceBinding::Same,
        Some(_) if allowed => DeviceBinding::Changed,
        Some(_) => return Ok(DeviceBinding::Mismatch),
    };
    sqlx::query(
        "UPDATE sessions SET device_fingerprint = $2, device_change_allowed = false WHERE id = $1",
    )
    .bind(id)
    .bind(fingerprint)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(binding)
}

/// How a session ended.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ending {
    /// The session.
    #[serde(skip)]
    pub session_id: Uuid,
    /// Its exam.
    #[serde(skip)]
    pub exam_id: Uuid,
    /// `SUBMITTED`, `AUTO_SUBMITTED` or `TERMINATED`.
    pub status: SessionStatus,
    /// When it ended.
    pub submitted_at: DateTime<Utc>,
    /// Who sat it.
    #[serde(skip)]
    pub candidate_id: Uuid,
}

/// Ends a STARTED session: the one function every ending goes through (submit, the sweeper's
/// auto-submit, a proctor's terminate). In `tx` (which may already hold the caller's audit
/// row) it does the guarded transition `… WHERE status = 'STARTED'`, scores the MCQ answers,
/// writes the `scores` row (graded at once when the exam has only MCQ questions) and commits.
/// [`crate::state::AppState::end_session`] wraps it with what follows the commit (the
/// devices and watchers told).
///
/// Returns `None`, rolling `tx` back, when the session was not STARTED: someone else ended it
/// first, so each session ends exactly once however many enders race.
pub async fn end_session(
    mut tx: Transaction<'static, Postgres>,
    id: Uuid,
    status: SessionStatus,
    reason: &str,
) -> Result<Option<Ending>, Error> {
    debug_assert!(status != SessionStatus::Started, "an ending, not a start");
    let ended: Option<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE sessions SET status = $2, submitted_at = now(), ended_reason = $3
          WHERE id = $1 AND status = 'STARTED'
          RETURNING exam_id, candidate_id, submitted_at",
    )
    .bind(id)
    .bind(status)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((exam_id, candidate_id, submitted_at)) = ended else {
        return Ok(None);
    };
    let graded = score_objective(&mut tx, id, exam_id).await?;
    crate::webhooks::outbox::enqueue(
        &mut *tx,
        crate::webhooks::SESSION_ENDED,
        Some(id),
        serde_json::json!({"sessionId": id, "examId": exam_id, "candidateId": candidate_id,
                           "status": status, "reason": reason, "submittedAt": submitted_at}),
    )
    .await?;
    if let Some(score) = graded {
        crate::webhooks::outbox::enqueue(
            &mut *tx,
            crate::webhooks::SCORE_GRADED,
            Some(id),
            serde_json::json!({"sessionId": id, "examId": exam_id, "candidateId": candidate_id,
                               "objectiveScore": score.objective_score,
                               "subjectiveScore": score.subjective_score,
                               "finalScore": score.final_score, "gradedAt": score.graded_at}),
        )
        .await?;
    }
    tx.commit().await?;
    metrics::counter!("hub_sessions_ended_total", "status" => status.as_str()).increment(1);
    Ok(Some(Ending {
        session_id: id,
        exam_id,
        candidate_id,
        status,
        submitted_at,
    }))
}

/// Scores the MCQ answers of an ending session (the exact set of options → full points, else
/// 0) and writes its `scores` row. Returns the score when it is already final (an exam of MCQ
/// questions only).
async fn score_objective(
    tx: &mut Transaction<'static, Postgres>,
    session_id: Uuid,
    exam_id: Uuid,
) -> Result<Option<ScoreView>, Error> {
    sqlx::query(
        "UPDATE answers a
            SET points = CASE WHEN
                    (SELECT array_agg(DISTINCT x ORDER BY x) FROM jsonb_array_elements_text(
                        CASE WHEN jsonb_typeof(a.response_json -> 'selected') = 'array'
                             THEN a.response_json -> 'selected' ELSE '[]'::jsonb END) x)
                  = (SELECT array_agg(DISTINCT x ORDER BY x) FROM jsonb_array_elements_text(
                        CASE WHEN jsonb_typeof(q.answer_key_json -> 'correct') = 'array'
                             THEN q.answer_key_json -> 'correct' ELSE '[]'::jsonb END) x)
                THEN q.points ELSE 0 END,
                graded_at = now(), graded_by = NULL
           FROM questions q
          WHERE a.session_id = $1 AND q.id = a.question_id AND q.type = 'MCQ'",
    )
    .bind(session_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "WITH obj AS (
             SELECT COALESCE(SUM(a.points), 0) AS s FROM answers a
               JOIN questions q ON q.id = a.question_id AND q.type = 'MCQ'
              WHERE a.session_id = $1),
         manual AS (SELECT count(*) AS n FROM questions WHERE exam_id = $2 AND type <> 'MCQ'),
         upd AS (UPDATE sessions SET auto_score = (SELECT s FROM obj) WHERE id = $1)
         INSERT INTO scores (id, session_id, objective_score, subjective_score, final_score,
                             graded_at)
         SELECT $3, $1, obj.s, 0, obj.s, CASE WHEN manual.n = 0 THEN now() END FROM obj, manual
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id)
    .bind(exam_id)
    .bind(Uuid::new_v4())
    .execute(&mut **tx)
    .await?;
    let score = score(&mut **tx, session_id).await?;
    Ok(score.filter(|s| s.graded_at.is_some()))
}

/// A session's score, numbers as JSON numbers.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreView {
    /// MCQ points (automatic).
    pub objective_score: f64,
    /// Points given by graders.
    pub subjective_score: f64,
    /// objective + subjective.
    pub final_score: f64,
    /// Set once every non-MCQ question has a grade.
    pub graded_at: Option<DateTime<Utc>>,
}

/// The score of a session, if it has ended.
pub async fn score(db: impl PgExecutor<'_>, session_id: Uuid) -> Result<Option<ScoreView>, Error> {
    Ok(sqlx::query_as(
        "SELECT objective_score::float8 AS objective_score,
                subjective_score::float8 AS subjective_score,
                final_score::float8 AS final_score, graded_at
           FROM scores WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(db)
    .await?)
}

/// Recomputes the subjective and final score after grading; `graded_at` is set when every
/// non-MCQ question of the exam has a graded answer, and cleared otherwise.
pub async fn rescore(
    tx: &mut Transaction<'static, Postgres>,
    session_id: Uuid,
    exam_id: Uuid,
) -> Result<ScoreView, Error> {
    Ok(sqlx::query_as(
        "WITH sub AS (
             SELECT COALESCE(SUM(a.points), 0) AS s FROM answers a
               JOIN questions q ON q.id = a.question_id AND q.type <> 'MCQ'
              WHERE a.session_id = $1 AND a.graded_at IS NOT NULL),
         pending AS (
             SELECT count(*) AS n FROM questions q
              WHERE q.exam_id = $2 AND q.type <> 'MCQ'
                AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.session_id = $1
                                   AND a.question_id = q.id AND a.graded_at IS NOT NULL))
         UPDATE scores SET subjective_score = sub.s, final_score = objective_score + sub.s,
                graded_at = CASE WHEN pending.n = 0 THEN now() END
           FROM sub, pending
          WHERE session_id = $1
         RETURNING objective_score::float8 AS objective_score,
                   subjective_score::float8 AS subjective_score,
                   final_score::float8 AS final_score, graded_at",
    )
    .bind(session_id)
    .bind(exam_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Claims one STARTED session whose time and autosave grace have both run out, for the
/// sweeper, skipping rows another ender holds. A session inside its grace stays STARTED so the
/// answers typed in its last second, still in flight, are stored and scored.
pub async fn claim_expired(
    tx: &mut Transaction<'static, Postgres>,
    grace: std::time::Duration,
) -> Result<Option<Uuid>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM sessions
          WHERE status = 'STARTED' AND expires_at < now() - make_interval(secs => $1)
          ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(grace.as_secs_f64())
    .fetch_optional(&mut **tx)
    .await?)
}

/// A STARTED session whose time ran out (its grace may still be running).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TimeUp {
    /// The session.
    pub id: Uuid,
    /// Its exam.
    pub exam_id: Uuid,
    /// When its time ran out.
    pub expires_at: DateTime<Utc>,
}

/// The STARTED sessions whose time ran out in `(since, now]` (Postgres clock), and that `now`,
/// the watermark of the next call.
pub async fn timed_out_since(
    db: impl PgExecutor<'_> + Copy,
    since: DateTime<Utc>,
) -> Result<(Vec<TimeUp>, DateTime<Utc>), Error> {
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(db).await?;
    let rows = sqlx::query_as(
        "SELECT id, exam_id, expires_at FROM sessions
          WHERE status = 'STARTED' AND expires_at > $1 AND expires_at <= $2
          ORDER BY expires_at",
    )
    .bind(since)
    .bind(now)
    .fetch_all(db)
    .await?;
    Ok((rows, now))
}
