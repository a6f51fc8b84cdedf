//! `/exams`: authoring (ADMIN writes, PROCTOR reads): exams with the DRAFT → PUBLISHED →
//! ARCHIVED lifecycle, their questions (editable only while DRAFT) and assignments. Every
//! change is audited in its transaction.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::error::Error;
use crate::http::extract::{Admin, Json, Path, Query, Staff};
use crate::http::page::{self, Cursor, Page, PageQuery};
use crate::model::{ExamStatus, QuestionType};
use crate::state::AppState;
use crate::store::exams::{self, AssignmentView, ExamRow, ExamView, QuestionRow, QuestionView};

/// Most questions one exam may hold.
pub const MAX_QUESTIONS: i64 = 500;
/// Most candidates one assignment request may name.
pub const MAX_ASSIGN: usize = 5000;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(publish))
        .routes(routes!(archive))
        .routes(routes!(list_questions, create_question))
        .routes(routes!(update_question, delete_question))
        .routes(routes!(assign, list_assignments))
        .routes(routes!(unassign))
}

/// Deserializes a field that may be absent (outer `None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateExam {
    #[schema(min_length = 1, max_length = 200, example = "Linear Algebra, final")]
    title: String,
    #[serde(default)]
    #[schema(max_length = 20000)]
    instructions: String,
    #[schema(minimum = 1, maximum = 1440, example = 90)]
    duration_minutes: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    #[serde(default)]
    randomize_questions: bool,
    #[serde(default)]
    proctoring_policy: Option<Value>,
    #[serde(default = "yes")]
    record_media: bool,
}

fn yes() -> bool {
    true
}

/// Checks the fields every exam must satisfy.
fn validate_exam(
    title: &str,
    instructions: &str,
    duration_minutes: i32,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    policy: Option<&Value>,
) -> Result<(), Error> {
    let t = title.trim();
    if t.is_empty() || t.chars().count() > 200 {
        return Err(Error::invalid("title", "between 1 and 200 characters"));
    }
    if instructions.chars().count() > 20_000 {
        return Err(Error::invalid("instructions", "at most 20000 characters"));
    }
    if !(1..=24 * 60).contains(&duration_minutes) {
        return Err(Error::invalid(
            "durationMinutes",
            "between 1 and 1440 minutes",
        ));
    }
    if starts_at >= ends_at {
        return Err(Error::invalid("endsAt", "must be after startsAt"));
    }
    if let Some(p) = policy {
        if !p.is_object() {
            return Err(Error::invalid(
                "proctoringPolicy",
                "must be an object or null",
            ));
        }
        if p.to_string().len() > 64 * 1024 {
            return Err(Error::invalid("proctoringPolicy", "at most 64 KiB"));
        }
    }
    Ok(())
}

/// Create an exam (ADMIN).
#[utoipa::path(post,
    path = "/api/v1/exams",
    tag = "exams",
    request_body = CreateExam,
    responses((status = 201, description = "Created (DRAFT)", body = ExamView)))]
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Json(body): Json<CreateExam>,
) -> Result<(StatusCode, Json<ExamView>), Error> {
    validate_exam(
        &body.title,
        &body.instructions,
        body.duration_minutes,
        body.starts_at,
        body.ends_at,
        body.proctoring_policy.as_ref(),
    )?;
    let mut tx = state.db.begin().await?;
    let exam: ExamRow = sqlx::query_as(
        "INSERT INTO exams (id, title, instructions, duration_minutes, starts_at, ends_at,
                            created_by_user_id, randomize_questions, proctoring_policy,
                            record_media)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(body.title.trim())
    .bind(&body.instructions)
    .bind(body.duration_minutes)
    .bind(body.starts_at)
    .bind(body.ends_at)
    .bind(admin.user_id)
    .bind(body.randomize_questions)
    .bind(&body.proctoring_policy)
    .bind(body.record_media)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "EXAM_CREATED",
            json!({"examId": exam.id, "title": exam.title}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(exam.into())))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    status: Option<ExamStatus>,
    /// Items per page (1..=500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List exams (staff).
#[utoipa::path(get,
    path = "/api/v1/exams",
    tag = "exams",
    params(ListQuery),
    responses((status = 200, description = "A page of exams", body = Page<ExamView>)))]
async fn list(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<ExamView>>, Error> {
    let (limit, cursor) = page::parse(q.limit, q.cursor)?;
    let rows: Vec<ExamRow> = sqlx::query_as(
        "SELECT * FROM exams
          WHERE ($1::exam_status IS NULL OR status = $1)
            AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
          ORDER BY created_at, id LIMIT $4",
    )
    .bind(q.status)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let page = Page::from_rows(rows, limit, |e| Cursor {
        at: e.created_at,
        id: e.id,
    });
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One exam (staff).
#[utoipa::path(get,
    path = "/api/v1/exams/{id}",
    tag = "exams",
    params(("id" = Uuid, Path, description = "Exam id")),
    responses((status = 200, description = "The exam", body = ExamView)))]
async fn show(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(id): Path<Uuid>,
) -> Result<Json<ExamView>, Error> {
    let exam = exams::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "exam" })?;
    Ok(Json(exam.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateExam {
    title: Option<String>,
    instructions: Option<String>,
    duration_minutes: Option<i32>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    randomize_questions: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    proctoring_policy: Option<Option<Value>>,
    record_media: Option<bool>,
}

/// Exams are editable while DRAFT or PUBLISHED (a published window may be moved; sessions
/// already started keep the `expiresAt` computed at their start); ARCHIVED ones are frozen.
#[utoipa::path(patch,
    path = "/api/v1/exams/{id}",
    tag = "exams",
    params(("id" = Uuid, Path, description = "Exam id")),
    request_body = UpdateExam,
    responses((status = 200, description = "Updated", body = ExamView),
        (status = 409, description = "`EXAM_ARCHIVED`", body = crate::http::openapi::ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateExam>,
) -> Result<Json<ExamView>, Error> {
    let mut tx = state.db.begin().await?;
    let before = exams::lock(&mut *tx, id).await?;
    if before.status == ExamStatus::Archived {
        return Err(Error::conflict(
            "EXAM_ARCHIVED",
            "an archived exam is frozen",
        ));
    }
    let title = body.title.clone().unwrap_or(before.title);
    let instructions = body.instructions.clone().unwrap_or(before.instructions);
    let duration = body.duration_minutes.unwrap_or(before.duration_minutes);
    let starts_at = body.starts_at.unwrap_or(before.starts_at);
    let ends_at = body.ends_at.unwrap_or(before.ends_at);
    let randomize = body
        .randomize_questions
        .unwrap_or(before.randomize_questions);
    let policy = body
        .proctoring_policy
        .clone()
        .unwrap_or(before.proctoring_policy);
    let record_media = body.record_media.unwrap_or(before.record_media);
    validate_exam(
        &title,
        &instructions,
        duration,
        starts_at,
        ends_at,
        policy.as_ref(),
    )?;
    let exam: ExamRow = sqlx::query_as(
        "UPDATE exams SET title = $2, instructions = $3, duration_minutes = $4, starts_at = $5,
                ends_at = $6, randomize_questions = $7, proctoring_policy = $8,
                record_media = $9, updated_at = now()
          WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(title.trim())
    .bind(&instructions)
    .bind(duration)
    .bind(starts_at)
    .bind(ends_at)
    .bind(randomize)
    .bind(&policy)
    .bind(record_media)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "EXAM_UPDATED",
            json!({"examId": id, "title": body.title, "durationMinutes": body.duration_minutes,
                   "startsAt": body.starts_at, "endsAt": body.ends_at,
                   "recordMedia": body.record_media}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(exam.into()))
}

/// Publish a DRAFT exam (ADMIN).
#[utoipa::path(post,
    path = "/api/v1/exams/{id}/publish",
    tag = "exams",
    params(("id" = Uuid, Path, description = "Exam id")),
    responses((status = 200, description = "Published", body = ExamView),
        (status = 409, description = "Not DRAFT", body = crate::http::openapi::ErrorBody)))]
async fn publish(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
) -> Result<Json<ExamView>, Error> {
    let mut tx = state.db.begin().await?;
    let exam = exams::lock(&mut *tx, id).await?;
    if exam.status != ExamStatus::Draft {
        return Err(Error::conflict(
            "EXAM_NOT_DRAFT",
            "only a DRAFT exam can be published",
        ));
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM questions WHERE exam_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if n == 0 {
        return Err(Error::invalid(
            "questions",
            "an exam needs at least one question to be published",
        ));
    }
    if exam.starts_at >= exam.ends_at {
        return Err(Error::invalid("endsAt", "must be after startsAt"));
    }
    let to_published = Transition {
        from: ExamStatus::Draft,
        to: ExamStatus::Published,
        action: "EXAM_PUBLISHED",
        refused: ("EXAM_NOT_DRAFT", "only a DRAFT exam can be published"),
    };
    to_published.apply(tx, admin.user_id, id).await
}

/// A change of an exam's status, audited.
struct Transition {
    from: ExamStatus,
    to: ExamStatus,
    /// The audit row's action type.
    action: &'static str,
    /// The 409's code and message when the exam is not in `from`.
    refused: (&'static str, &'static str),
}

impl Transition {
    /// Moves exam `id` (whose row `tx` has locked) from `from` to `to`, records the audit row
    /// and commits; 409 when the exam is not in `from`.
    async fn apply(
        self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        actor: Uuid,
        id: Uuid,
    ) -> Result<Json<ExamView>, Error> {
        let exam: ExamRow = sqlx::query_as(
            "UPDATE exams SET status = $3, updated_at = now()
              WHERE id = $1 AND status = $2 RETURNING *",
        )
        .bind(id)
        .bind(self.from)
        .bind(self.to)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::conflict(self.refused.0, self.refused.1))?;
        audit::record(
            &mut *tx,
            AuditEntry::by(actor, self.action, json!({"examId": id})),
        )
        .await?;
        tx.commit().await?;
        Ok(Json(exam.into()))
    }
}

/// Archive a PUBLISHED exam (ADMIN).
#[utoipa::path(post,
    path = "/api/v1/exams/{id}/archive",
    tag = "exams",
    params(("id" = Uuid, Path, description = "Exam id")),
    responses((status = 200, description = "Archived", body = ExamView),
        (status = 409, description = "Not PUBLISHED", body = crate::http::openapi::ErrorBody)))]
async fn archive(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
) -> Result<Json<ExamView>, Error> {
    let mut tx = state.db.begin().await?;
    exams::lock(&mut *tx, id).await?;
    let to_archived = Transition {
        from: ExamStatus::Published,
        to: ExamStatus::Archived,
        action: "EXAM_ARCHIVED",
        refused: (
            "EXAM_NOT_PUBLISHED",
            "only a PUBLISHED exam can be archived",
        ),
    };
    to_archived.apply(tx, admin.user_id, id).await
}

// ---------------------------------------------------------------------------------------------
// Questions

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateQuestion {
    #[serde(rename = "type")]
    kind: QuestionType,
    prompt: String,
    #[serde(default)]
    options: Option<Value>,
    #[serde(default)]
    answer_key: Option<Value>,
    points: i32,
    order_index: Option<i32>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateQuestion {
    #[serde(rename = "type")]
    kind: Option<QuestionType>,
    prompt: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    options: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    answer_key: Option<Option<Value>>,
    points: Option<i32>,
    order_index: Option<i32>,
}

/// A question's content, validated.
struct QuestionContent {
    kind: QuestionType,
    prompt: String,
    options: Value,
    answer_key: Option<Value>,
    points: i32,
}

/// Checks a question as a whole: MCQ options `[{id, text}]` with unique ids and an answer key
/// `{correct: [optionId…]}` naming at least one existing option, each at most once.
fn validate_question(q: &QuestionContent) -> Result<(), Error> {
    let p = q.prompt.trim();
    if p.is_empty() || p.chars().count() > 20_000 {
        return Err(Error::invalid("prompt", "between 1 and 20000 characters"));
    }
    if !(0..=1000).contains(&q.points) {
        return Err(Error::invalid("points", "between 0 and 1000"));
    }
    if q.options.to_string().len() > 64 * 1024 {
        return Err(Error::invalid("options", "at most 64 KiB"));
    }
    if q.answer_key
        .as_ref()
        .is_some_and(|k| k.to_string().len() > 64 * 1024)
    {
        return Err(Error::invalid("answerKey", "at most 64 KiB"));
    }
    if q.kind != QuestionType::Mcq {
        return Ok(());
    }
    let options = q
        .options
        .as_array()
        .filter(|a| a.len() >= 2 && a.len() <= 50)
        .ok_or_else(|| Error::invalid("options", "an MCQ needs 2 to 50 options [{id, text}]"))?;
    let mut ids = HashSet::new();
    for (i, o) in options.iter().enumerate() {
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .ok_or_else(|| {
                Error::invalid(format!("options[{i}].id"), "a string of 1 to 64 characters")
            })?;
        if o.get("text")
            .and_then(Value::as_str)
            .is_none_or(|t| t.chars().count() > 2000)
        {
            return Err(Error::invalid(
                format!("options[{i}].text"),
                "a string of at most 2000 characters",
            ));
        }
        if o.as_object().is_some_and(|m| m.len() != 2) {
            return Err(Error::invalid(
                format!("options[{i}]"),
                "only id and text are allowed",
            ));
        }
        if !ids.insert(id) {
            return Err(Error::invalid(
                format!("options[{i}].id"),
                "option ids must be unique",
            ));
        }
    }
    let correct = q
        .answer_key
        .as_ref()
        .and_then(|k| k.get("correct"))
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "answerKey.correct",
                "an MCQ needs {correct: [optionId…]} with at least one option",
            )
        })?;
    let mut seen = HashSet::new();
    for (i, c) in correct.iter().enumerate() {
        let id = c.as_str().filter(|id| ids.contains(id)).ok_or_else(|| {
            Error::invalid(
                format!("answerKey.correct[{i}]"),
                "must name an existing option id",
            )
        })?;
        if !seen.insert(id) {
            return Err(Error::invalid(
                format!("answerKey.correct[{i}]"),
                "listed twice",
            ));
        }
    }
    if q.answer_key
        .as_ref()
        .and_then(Value::as_object)
        .is_some_and(|m| m.len() != 1)
    {
        return Err(Error::invalid(
            "answerKey",
            "an MCQ answer key holds only `correct`",
        ));
    }
    Ok(())
}

/// Locks the exam and insists it is DRAFT.
async fn lock_draft(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    exam_id: Uuid,
) -> Result<ExamRow, Error> {
    let exam = exams::lock(&mut **tx, exam_id).await?;
    if exam.status != ExamStatus::Draft {
        return Err(Error::conflict(
            "EXAM_NOT_DRAFT",
            "questions can change only while the exam is DRAFT",
        ));
    }
    Ok(exam)
}

/// The exam's questions with answer keys (staff).
#[utoipa::path(get,
    path = "/api/v1/exams/{id}/questions",
    tag = "questions",
    params(("id" = Uuid, Path, description = "Exam id")),
    responses((status = 200, description = "The questions, in order", body = Page<QuestionView>)))]
async fn list_questions(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(id): Path<Uuid>,
) -> Result<Json<Page<QuestionView>>, Error> {
    exams::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "exam" })?;
    let items = exams::questions(&state.db, id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    // All of them (an exam holds at most MAX_QUESTIONS), so never a next page.
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Add a question (ADMIN, DRAFT exams only).
#[utoipa::path(post,
    path = "/api/v1/exams/{id}/questions",
    tag = "questions",
    params(("id" = Uuid, Path, description = "Exam id")),
    request_body = CreateQuestion,
    responses((status = 201, description = "Created", body = QuestionView),
        (status = 409, description = "`EXAM_NOT_DRAFT`, `TOO_MANY_QUESTIONS`", body = crate::http::openapi::ErrorBody)))]
async fn create_question(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<CreateQuestion>,
) -> Result<(StatusCode, Json<QuestionView>), Error> {
    let content = QuestionContent {
        kind: body.kind,
        prompt: body.prompt,
        options: body.options.unwrap_or_else(|| json!([])),
        answer_key: body.answer_key,
        points: body.points,
    };
    validate_question(&content)?;
    let mut tx = state.db.begin().await?;
    lock_draft(&mut tx, id).await?;
    let (count, next): (i64, i32) = sqlx::query_as(
        "SELECT count(*), COALESCE(MAX(order_index) + 1, 0) FROM questions WHERE exam_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if count >= MAX_QUESTIONS {
        return Err(Error::conflict(
            "TOO_MANY_QUESTIONS",
            format!("an exam holds at most {MAX_QUESTIONS} questions"),
        ));
    }
    let q: QuestionRow = sqlx::query_as(
        "INSERT INTO questions (id, exam_id, type, prompt, options_json, answer_key_json, points,
                                order_index)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
    )
    .bind(Uuid::new_v4())
    .bind(id)
    .bind(content.kind)
    .bind(content.prompt.trim())
    .bind(&content.options)
    .bind(&content.answer_key)
    .bind(content.points)
    .bind(body.order_index.unwrap_or(next))
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "QUESTION_CREATED",
            json!({"examId": id, "questionId": q.id}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(q.into())))
}

/// Change a question (ADMIN, DRAFT exams only).
#[utoipa::path(patch,
    path = "/api/v1/exams/{id}/questions/{qid}",
    tag = "questions",
    params(("id" = Uuid, Path, description = "Exam id"), ("qid" = Uuid, Path, description = "Question id")),
    request_body = UpdateQuestion,
    responses((status = 200, description = "Updated", body = QuestionView),
        (status = 409, description = "`EXAM_NOT_DRAFT`", body = crate::http::openapi::ErrorBody)))]
async fn update_question(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((id, qid)): Path<(Uuid, Uuid)>,
    Json(body): Json<UpdateQuestion>,
) -> Result<Json<QuestionView>, Error> {
    let mut tx = state.db.begin().await?;
    lock_draft(&mut tx, id).await?;
    let before = exams::question(&mut *tx, id, qid).await?;
    let content = QuestionContent {
        kind: body.kind.unwrap_or(before.kind),
        prompt: body.prompt.unwrap_or(before.prompt),
        options: body
            .options
            .unwrap_or(Some(before.options_json))
            .unwrap_or_else(|| json!([])),
        answer_key: body.answer_key.unwrap_or(before.answer_key_json),
        points: body.points.unwrap_or(before.points),
    };
    validate_question(&content)?;
    let q: QuestionRow = sqlx::query_as(
        "UPDATE questions SET type = $2, prompt = $3, options_json = $4, answer_key_json = $5,
                points = $6, order_index = $7, updated_at = now()
          WHERE id = $1 RETURNING *",
    )
    .bind(qid)
    .bind(content.kind)
    .bind(content.prompt.trim())
    .bind(&content.options)
    .bind(&content.answer_key)
    .bind(content.points)
    .bind(body.order_index.unwrap_or(before.order_index))
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "QUESTION_UPDATED",
            json!({"examId": id, "questionId": qid}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(q.into()))
}

/// Delete a question (ADMIN, DRAFT exams only).
#[utoipa::path(delete,
    path = "/api/v1/exams/{id}/questions/{qid}",
    tag = "questions",
    params(("id" = Uuid, Path, description = "Exam id"), ("qid" = Uuid, Path, description = "Question id")),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "`EXAM_NOT_DRAFT`", body = crate::http::openapi::ErrorBody)))]
async fn delete_question(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((id, qid)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, Error> {
    let mut tx = state.db.begin().await?;
    lock_draft(&mut tx, id).await?;
    let gone = sqlx::query("DELETE FROM questions WHERE id = $1 AND exam_id = $2")
        .bind(qid)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(Error::NotFound { what: "question" });
    }
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "QUESTION_DELETED",
            json!({"examId": id, "questionId": qid}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Assignments

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Assign {
    /// The candidates by id…
    #[serde(default)]
    candidate_ids: Vec<Uuid>,
    /// …or by email (a list pasted by an admin); exactly one of the two.
    emails: Option<Vec<String>>,
    extra_time_minutes: Option<i32>,
}

/// The active candidates with these emails, in order; 422 naming every email that is not one.
async fn candidates_by_email(
    db: impl sqlx::PgExecutor<'_>,
    emails: &[String],
) -> Result<Vec<Uuid>, Error> {
    if emails.is_empty() || emails.len() > MAX_ASSIGN {
        return Err(Error::invalid(
            "emails",
            format!("between 1 and {MAX_ASSIGN} emails"),
        ));
    }
    let normalized: Vec<String> = emails
        .iter()
        .map(|e| crate::store::users::normalize_email(e))
        .collect();
    let found: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT email, id FROM users
          WHERE email = ANY($1) AND role = 'CANDIDATE' AND is_active",
    )
    .bind(&normalized)
    .fetch_all(db)
    .await?;
    let by_email: std::collections::HashMap<String, Uuid> = found.into_iter().collect();
    let unknown: Vec<&str> = normalized
        .iter()
        .filter(|e| !by_email.contains_key(*e))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "emails",
            format!("not active candidates: {}", unknown.join(", ")),
        ));
    }
    let mut seen = HashSet::new();
    Ok(normalized
        .iter()
        .filter_map(|e| by_email.get(e).copied())
        .filter(|id| seen.insert(*id))
        .collect())
}

/// Adds (or updates the extra time of) assignments; existing ones not named stay.
#[utoipa::path(put,
    path = "/api/v1/exams/{id}/assignments",
    tag = "assignments",
    params(("id" = Uuid, Path, description = "Exam id")),
    request_body = Assign,
    responses((status = 200, description = "The assignments made", body = Page<AssignmentView>)))]
async fn assign(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(mut body): Json<Assign>,
) -> Result<Json<Page<AssignmentView>>, Error> {
    if let Some(emails) = body.emails.take() {
        if !body.candidate_ids.is_empty() {
            return Err(Error::invalid(
                "emails",
                "give candidateIds or emails, not both",
            ));
        }
        body.candidate_ids = candidates_by_email(&state.db, &emails).await?;
    }
    if body.candidate_ids.is_empty() || body.candidate_ids.len() > MAX_ASSIGN {
        return Err(Error::invalid(
            "candidateIds",
            format!("between 1 and {MAX_ASSIGN} candidate ids"),
        ));
    }
    let unique: HashSet<Uuid> = body.candidate_ids.iter().copied().collect();
    if unique.len() != body.candidate_ids.len() {
        return Err(Error::invalid("candidateIds", "ids must be unique"));
    }
    if let Some(m) = body.extra_time_minutes {
        if !(0..=600).contains(&m) {
            return Err(Error::invalid(
                "extraTimeMinutes",
                "between 0 and 600 minutes",
            ));
        }
    }
    let mut tx = state.db.begin().await?;
    let exam = exams::lock(&mut *tx, id).await?;
    if exam.status == ExamStatus::Archived {
        return Err(Error::conflict(
            "EXAM_ARCHIVED",
            "an archived exam is frozen",
        ));
    }
    let ok: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM users WHERE id = ANY($1) AND role = 'CANDIDATE' AND is_active",
    )
    .bind(&body.candidate_ids)
    .fetch_all(&mut *tx)
    .await?;
    if ok.len() != body.candidate_ids.len() {
        let ok: HashSet<Uuid> = ok.into_iter().collect();
        let bad: Vec<String> = body
            .candidate_ids
            .iter()
            .filter(|c| !ok.contains(c))
            .map(ToString::to_string)
            .collect();
        return Err(Error::invalid(
            "candidateIds",
            format!("not active candidates: {}", bad.join(", ")),
        ));
    }
    let ids: Vec<Uuid> = body.candidate_ids.iter().map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO exam_assignments (id, exam_id, candidate_id, extra_time_minutes)
         SELECT a, $2, c, COALESCE($4, 0) FROM UNNEST($1::uuid[], $3::uuid[]) AS t(a, c)
         ON CONFLICT (exam_id, candidate_id) DO UPDATE
            SET extra_time_minutes = COALESCE($4, exam_assignments.extra_time_minutes)",
    )
    .bind(&ids)
    .bind(id)
    .bind(&body.candidate_ids)
    .bind(body.extra_time_minutes)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "CANDIDATES_ASSIGNED",
            json!({"examId": id, "candidateIds": body.candidate_ids,
                   "extraTimeMinutes": body.extra_time_minutes}),
        ),
    )
    .await?;
    let items = exams::assignments(&mut *tx, id, None, MAX_ASSIGN as i64).await?;
    tx.commit().await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// The exam's assignments (staff).
#[utoipa::path(get,
    path = "/api/v1/exams/{id}/assignments",
    tag = "assignments",
    params(("id" = Uuid, Path, description = "Exam id"), PageQuery),
    responses((status = 200, description = "A page of assignments", body = Page<AssignmentView>)))]
async fn list_assignments(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<AssignmentView>>, Error> {
    let (limit, cursor) = (q.limit()?, q.cursor()?);
    exams::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "exam" })?;
    let rows = exams::assignments(&state.db, id, cursor, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |a| Cursor {
        at: a.assigned_at,
        id: a.id,
    })))
}

/// Remove an assignment (ADMIN).
#[utoipa::path(delete,
    path = "/api/v1/exams/{id}/assignments/{candidate_id}",
    tag = "assignments",
    params(("id" = Uuid, Path, description = "Exam id"), ("candidate_id" = Uuid, Path, description = "Candidate id")),
    responses((status = 204, description = "Unassigned")))]
async fn unassign(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((id, candidate_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, Error> {
    let mut tx = state.db.begin().await?;
    exams::lock(&mut *tx, id).await?;
    let gone = sqlx::query("DELETE FROM exam_assignments WHERE exam_id = $1 AND candidate_id = $2")
        .bind(id)
        .bind(candidate_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(Error::NotFound { what: "assignment" });
    }
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: None,
            actor_id: Some(admin.user_id),
            target_user_id: Some(candidate_id),
            action_type: "CANDIDATE_UNASSIGNED",
            reason: "",
            payload: Some(json!({"examId": id})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mcq(options: Value, key: Option<Value>) -> QuestionContent {
        QuestionContent {
            kind: QuestionType::Mcq,
            prompt: "2+2?".into(),
            options,
            answer_key: key,
            points: 2,
        }
    }

    fn field(r: Result<(), Error>) -> String {
        match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn mcq_rules() {
        let opts = json!([{"id": "a", "text": "3"}, {"id": "b", "text": "4"}]);
        assert!(validate_question(&mcq(opts.clone(), Some(json!({"correct": ["b"]})))).is_ok());
        assert!(
            validate_question(&mcq(opts.clone(), Some(json!({"correct": ["a", "b"]})))).is_ok()
        );
        assert_eq!(
            field(validate_question(&mcq(opts.clone(), None))),
            "answerKey.correct"
        );
        assert_eq!(
            field(validate_question(&mcq(
                opts.clone(),
                Some(json!({"correct": []}))
            ))),
            "answerKey.correct"
        );
        assert_eq!(
            field(validate_question(&mcq(
                opts.clone(),
                Some(json!({"correct": ["z"]}))
            ))),
            "answerKey.correct[0]"
        );
        let dup = json!([{"id": "a", "text": "3"}, {"id": "a", "text": "4"}]);
        assert_eq!(
            field(validate_question(&mcq(
                dup,
                Some(json!({"correct": ["a"]}))
            ))),
            "options[1].id"
        );
        assert_eq!(
            field(validate_question(&mcq(
                json!([]),
                Some(json!({"correct": ["a"]}))
            ))),
            "options"
        );
    }
}
