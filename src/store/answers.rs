//! The `answers` table: the multi-row autosave upsert (used by the group-commit batcher in
//! `jobs::autosave`) and reading a session's saved answers.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::Error;
use crate::model::QuestionType;

/// One save to write. Within one call to [`upsert_batch`] each `(session_id, question_id)`
/// must appear once (ON CONFLICT cannot touch a row twice in one statement).
#[derive(Debug, Clone)]
pub struct AnswerWrite {
    /// The session.
    pub session_id: Uuid,
    /// The question, one of the session's exam (the caller has checked: a question's exam
    /// and type never change once the exam has left DRAFT, and only then can it be answered).
    pub question_id: Uuid,
    /// The question's type, stored beside the answer.
    pub kind: QuestionType,
    /// The validated response.
    pub response: serde_json::Value,
    /// The client's version of this answer.
    pub version: i64,
    /// Client-measured latency, for metrics.
    pub latency_ms: Option<i32>,
}

/// What happened to one [`AnswerWrite`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WriteResult {
    /// The version now stored (ours, or a newer one already there) and when it was saved.
    Stored {
        /// The stored version.
        version: i64,
        /// When the stored version was written.
        saved_at: DateTime<Utc>,
    },
    /// The session is not STARTED, is past its expiry plus grace, or is gone: nothing was
    /// written.
    Closed,
}

#[derive(sqlx::FromRow)]
struct Row {
    session_id: Uuid,
    question_id: Uuid,
    accepted: bool,
    version: Option<i64>,
    saved_at: Option<DateTime<Utc>>,
}

/// Writes `writes` with one `INSERT … SELECT … FROM UNNEST(…) ON CONFLICT … DO UPDATE … WHERE
/// answers.version < EXCLUDED.version`, run as a statement of its own (its own transaction,
/// committed when it returns: one round trip, no BEGIN and COMMIT around it, which under load
/// each cost a wake-up of the hub and of the backend). The sessions are locked FOR SHARE and
/// checked STARTED and not past `expires_at + grace` in the same statement, so an ending
/// (which updates the session row) either waits for this batch or makes it see the session
/// closed: no answer lands after the MCQ scoring of an ending. Returns one result per write,
/// in order, only after COMMIT.
///
/// Sessions are found with `= ANY(array)` so the plan stays index-friendly even before the
/// table has statistics (a join against the UNNEST was 10x slower then). The question is not
/// looked up again: the caller checked it belongs to the session's exam, and its type comes
/// with the write. A new row's id is made by Postgres (`gen_random_uuid()`), only for the
/// rows it inserts.
pub async fn upsert_batch(
    db: &mut sqlx::PgConnection,
    writes: &[AnswerWrite],
    grace: Duration,
) -> Result<Vec<WriteResult>, Error> {
    let n = writes.len();
    let mut sessions = Vec::with_capacity(n);
    let mut questions = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut responses = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    for w in writes {
        sessions.push(w.session_id);
        questions.push(w.question_id);
        kinds.push(w.kind);
        responses.push(&w.response);
        versions.push(w.version);
        latencies.push(w.latency_ms);
    }
    let rows: Vec<Row> = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::question_type[], $4::jsonb[],
                                  $5::int8[], $6::int4[])
                 AS t(session_id, question_id, answer_type, response, version, latency_ms)
         ), open_sessions AS (
             SELECT s.id FROM sessions s
              WHERE s.id = ANY($1::uuid[])
                AND s.status = 'STARTED'
                AND now() <= s.expires_at + make_interval(secs => $7)
              ORDER BY s.id
              FOR SHARE
         ), accepted AS (
             SELECT i.* FROM input i JOIN open_sessions o ON o.id = i.session_id
         ), stored AS (
             INSERT INTO answers (id, session_id, question_id, answer_type, response_json,
                                  version, latency_ms)
             SELECT gen_random_uuid(), session_id, question_id, answer_type, response, version,
                    latency_ms
               FROM accepted ORDER BY session_id, question_id
             ON CONFLICT (session_id, question_id) DO UPDATE
                SET response_json = EXCLUDED.response_json, version = EXCLUDED.version,
                    latency_ms = EXCLUDED.latency_ms, updated_at = now()
              WHERE answers.version < EXCLUDED.version
             RETURNING session_id, question_id, version, updated_at
         )
         SELECT i.session_id, i.question_id, (a.session_id IS NOT NULL) AS accepted,
                s.version, s.updated_at AS saved_at
           FROM input i
           LEFT JOIN accepted a ON a.session_id = i.session_id AND a.question_id = i.question_id
           LEFT JOIN stored s ON s.session_id = i.session_id AND s.question_id = i.question_id",
    )
    .bind(&sessions)
    .bind(&questions)
    .bind(&kinds)
    .bind(&responses)
    .bind(&versions)
    .bind(&latencies)
    .bind(grace.as_secs_f64())
    .fetch_all(&mut *db)
    .await?;

    let mut by_key: HashMap<(Uuid, Uuid), WriteResult> = HashMap::with_capacity(n);
    let mut stale: Vec<(Uuid, Uuid)> = Vec::new();
    for r in rows {
        let key = (r.session_id, r.question_id);
        match (r.accepted, r.version, r.saved_at) {
            (false, _, _) => {
                by_key.insert(key, WriteResult::Closed);
            }
            (true, Some(version), Some(saved_at)) => {
                by_key.insert(key, WriteResult::Stored { version, saved_at });
            }
            // Accepted but not written: an equal or newer version is stored (a replay or an
            // out-of-order save), committed before ours. Read it in a new statement, which sees
            // the latest commit.
            (true, _, _) => stale.push(key),
        }
    }
    if !stale.is_empty() {
        let (s, q): (Vec<Uuid>, Vec<Uuid>) = stale.iter().copied().unzip();
        let current: Vec<(Uuid, Uuid, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT a.session_id, a.question_id, a.version, a.updated_at FROM answers a
               JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(session_id, question_id)
                 ON a.session_id = k.session_id AND a.question_id = k.question_id",
        )
        .bind(&s)
        .bind(&q)
        .fetch_all(&mut *db)
        .await?;
        for (session_id, question_id, version, saved_at) in current {
            by_key.insert(
                (session_id, question_id),
                WriteResult::Stored { version, saved_at },
            );
        }
    }
    writes
        .iter()
        .map(|w| {
            by_key
                .get(&(w.session_id, w.question_id))
                .copied()
                .ok_or_else(|| Error::Internal("autosave row missing from its batch".into()))
        })
        .collect()
}

/// A saved answer as the candidate's client sees it on resume.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedAnswer {
    /// The stored response.
    pub response: serde_json::Value,
    /// Its version.
    pub version: i64,
}

/// The saved answers of a session, keyed by question id (a grade given to an unanswered
/// question leaves a `null` response row, which is not an answer).
pub async fn of_session(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
) -> Result<HashMap<Uuid, SavedAnswer>, Error> {
    let rows: Vec<(Uuid, serde_json::Value, i64)> = sqlx::query_as(
        "SELECT question_id, response_json, version FROM answers
          WHERE session_id = $1 AND response_json <> 'null'::jsonb",
    )
    .bind(session_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(q, response, version)| (q, SavedAnswer { response, version }))
        .collect())
}
