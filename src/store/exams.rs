//! The `exams`, `questions` and `exam_assignments` tables.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::Error;
use crate::model::{ExamStatus, QuestionType};

/// An exam as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExamRow {
    /// Primary key.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Shown to candidates before they start.
    pub instructions: String,
    /// Lifecycle state.
    pub status: ExamStatus,
    /// Time each candidate gets (plus their extra time), bounded by `ends_at`.
    pub duration_minutes: i32,
    /// Sessions may start from here...
    pub starts_at: DateTime<Utc>,
    /// ...until here, and never run past it.
    pub ends_at: DateTime<Utc>,
    /// The admin who created it.
    pub created_by_user_id: Uuid,
    /// Whether each session gets its own question order.
    pub randomize_questions: bool,
    /// Event weights and thresholds, stored as given (`None`: defaults).
    pub proctoring_policy: Option<serde_json::Value>,
    /// Whether the relay records its sessions' media.
    pub record_media: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An exam as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamView {
    /// Id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Instructions.
    pub instructions: String,
    /// Lifecycle state.
    pub status: ExamStatus,
    /// Minutes per candidate.
    pub duration_minutes: i32,
    /// Window start.
    pub starts_at: DateTime<Utc>,
    /// Window end.
    pub ends_at: DateTime<Utc>,
    /// Per-session order?
    pub randomize_questions: bool,
    /// Proctoring policy, as given.
    pub proctoring_policy: Option<serde_json::Value>,
    /// Whether the relay records its sessions' camera, screen, microphone and phone camera.
    pub record_media: bool,
    /// Author.
    pub created_by_user_id: Uuid,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<ExamRow> for ExamView {
    fn from(e: ExamRow) -> Self {
        ExamView {
            id: e.id,
            title: e.title,
            instructions: e.instructions,
            status: e.status,
            duration_minutes: e.duration_minutes,
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            randomize_questions: e.randomize_questions,
            proctoring_policy: e.proctoring_policy,
            record_media: e.record_media,
            created_by_user_id: e.created_by_user_id,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A question as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuestionRow {
    /// Primary key.
    pub id: Uuid,
    /// Its exam.
    pub exam_id: Uuid,
    /// Type.
    #[sqlx(rename = "type")]
    pub kind: QuestionType,
    /// The question text.
    pub prompt: String,
    /// MCQ: `[{id, text}]`; other types: as given.
    pub options_json: serde_json::Value,
    /// MCQ: `{correct: [optionId…]}`; other types: an optional rubric. Never sent to candidates.
    pub answer_key_json: Option<serde_json::Value>,
    /// Full marks.
    pub points: i32,
    /// Position in the authored order.
    pub order_index: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A question as staff see it, answer key included.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionView {
    /// Id.
    pub id: Uuid,
    /// Exam.
    pub exam_id: Uuid,
    /// Type.
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// Text.
    pub prompt: String,
    /// Options.
    pub options: serde_json::Value,
    /// Answer key (staff only).
    pub answer_key: Option<serde_json::Value>,
    /// Full marks.
    pub points: i32,
    /// Authored position.
    pub order_index: i32,
}

impl From<QuestionRow> for QuestionView {
    fn from(q: QuestionRow) -> Self {
        QuestionView {
            id: q.id,
            exam_id: q.exam_id,
            kind: q.kind,
            prompt: q.prompt,
            options: q.options_json,
            answer_key: q.answer_key_json,
            points: q.points,
            order_index: q.order_index,
        }
    }
}

/// A question as a candidate sees it: deliberately no answer key field at all.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateQuestion {
    /// Id.
    pub id: Uuid,
    /// Type.
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// Text.
    pub prompt: String,
    /// Options.
    pub options: serde_json::Value,
    /// Full marks.
    pub points: i32,
}

impl From<QuestionRow> for CandidateQuestion {
    fn from(q: QuestionRow) -> Self {
        CandidateQuestion {
            id: q.id,
            kind: q.kind,
            prompt: q.prompt,
            options: q.options_json,
            points: q.points,
        }
    }
}

/// Finds an exam.
pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ExamRow>, Error> {
    Ok(sqlx::query_as("SELECT * FROM exams WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?)
}

/// Finds an exam and locks it for the rest of the transaction (question and state edits
/// serialise on the exam row, so "only while DRAFT" holds against a concurrent publish).
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> Result<ExamRow, Error> {
    sqlx::query_as("SELECT * FROM exams WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "exam" })
}

/// The questions of an exam in authored order.
pub async fn questions(db: impl PgExecutor<'_>, exam_id: Uuid) -> Result<Vec<QuestionRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT * FROM questions WHERE exam_id = $1 ORDER BY order_index, created_at, id",
    )
    .bind(exam_id)
    .fetch_all(db)
    .await?)
}

/// One question of an exam.
pub async fn question(
    db: impl PgExecutor<'_>,
    exam_id: Uuid,
    question_id: Uuid,
) -> Result<QuestionRow, Error> {
    sqlx::query_as("SELECT * FROM questions WHERE id = $1 AND exam_id = $2")
        .bind(question_id)
        .bind(exam_id)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "question" })
}

/// An assignment with its candidate, as staff see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentView {
    /// Assignment id.
    pub id: Uuid,
    /// The candidate.
    pub candidate_id: Uuid,
    /// Their name.
    pub name: String,
    /// Their email.
    pub email: String,
    /// Extra minutes (accommodation).
    pub extra_time_minutes: i32,
    /// When assigned.
    pub assigned_at: DateTime<Utc>,
}

/// One page of an exam's assignments, ordered by `(assigned_at, id)`.
pub async fn assignments(
    db: impl PgExecutor<'_>,
    exam_id: Uuid,
    after: Option<crate::store::cursor::Cursor>,
    limit: i64,
) -> Result<Vec<AssignmentView>, Error> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.candidate_id, u.name, u.email, a.extra_time_minutes, a.assigned_at
           FROM exam_assignments a JOIN users u ON u.id = a.candidate_id
          WHERE a.exam_id = $1
            AND ($2::timestamptz IS NULL OR (a.assigned_at, a.id) > ($2, $3))
          ORDER BY a.assigned_at, a.id LIMIT $4",
    )
    .bind(exam_id)
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(db)
    .await?)
}
