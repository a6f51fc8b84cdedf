//! The export: one JSON object written section by section to the response as rows come from
//! the stores, never built whole in memory. Each section is an array of records; names are
//! camelCase like the API's. Secrets (password and token hashes) are left out.

use std::io;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::events::{EventQuery, StoredEvent};
use crate::state::AppState;

/// Bytes buffered before a chunk goes out.
const CHUNK: usize = 64 * 1024;
/// Events read from the event store at a time.
const EVENT_PAGE: i64 = 500;

/// The export's body: a stream of chunks produced by a task of its own. A failure midway
/// ends the stream with an error, so the client sees a truncated (invalid) document rather
/// than a complete-looking partial one.
pub fn stream(state: AppState, user: Uuid) -> mpsc::Receiver<Result<Bytes, io::Error>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut out = Writer {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = write(&state, user, &mut out).await {
            tracing::warn!(%user, error = %e, "export failed midway");
            let _ = out.tx.send(Err(io::Error::other(e))).await;
            return;
        }
        let _ = out.flush().await;
    });
    rx
}

struct Writer {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl Writer {
    async fn raw(&mut self, s: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(s);
        if self.buf.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .send(Ok(chunk))
            .await
            .map_err(|_| "the client went away".to_string())
    }

    async fn value(&mut self, v: &Value) -> Result<(), String> {
        let text = serde_json::to_vec(v).map_err(|e| e.to_string())?;
        self.raw(&text).await
    }
}

/// A section: `,"name":[rows…]` from an SQL query whose rows are `to_jsonb(…)` objects.
async fn section(
    state: &AppState,
    out: &mut Writer,
    name: &str,
    sql: &str,
    user: Uuid,
) -> Result<(), String> {
    out.raw(format!(",\"{name}\":[").as_bytes()).await?;
    let mut rows = sqlx::query_scalar::<_, Value>(sql)
        .bind(user)
        .fetch(&state.db);
    let mut first = true;
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| e.to_string())?;
        if !first {
            out.raw(b",").await?;
        }
        first = false;
        out.value(&camel(row)).await?;
    }
    out.raw(b"]").await
}

/// Converts an object's snake_case keys to camelCase.
fn camel(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut key = String::with_capacity(k.len());
                    let mut up = false;
                    for c in k.chars() {
                        if c == '_' {
                            up = true;
                        } else if up {
                            key.extend(c.to_uppercase());
                            up = false;
                        } else {
                            key.push(c);
                        }
                    }
                    (key, v)
                })
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// The user's sessions (as candidate).
const SESSIONS_OF: &str = "SELECT id FROM sessions WHERE candidate_id = $1";

async fn write(state: &AppState, user: Uuid, out: &mut Writer) -> Result<(), String> {
    let profile: Option<Value> = sqlx::query_scalar(
        "SELECT to_jsonb(u) FROM (SELECT id, email, name, role, is_active, created_at,
                                         updated_at, erased_at FROM users WHERE id = $1) u",
    )
    .bind(user)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| e.to_string())?;
    let profile = profile.ok_or("the user is gone")?;
    out.raw(b"{\"format\":\"proctor-hub-export/1\",\"exportedAt\":")
        .await?;
    out.value(&json!(chrono::Utc::now())).await?;
    out.raw(b",\"user\":").await?;
    out.value(&camel(profile)).await?;

    section(
        state,
        out,
        "assignments",
        "SELECT to_jsonb(a) FROM (SELECT a.id, a.exam_id, e.title AS exam_title, a.assigned_at,
                                        a.extra_time_minutes
                                   FROM exam_assignments a JOIN exams e ON e.id = a.exam_id
                                  WHERE a.candidate_id = $1 ORDER BY a.assigned_at) a",
        user,
    )
    .await?;
    section(
        state,
        out,
        "sessions",
        "SELECT to_jsonb(s) FROM (SELECT id, exam_id, status, review_decision, review_reason,
                                        reviewed_by, reviewed_at, started_at, expires_at,
                                        submitted_at, ended_reason, auto_score,
                                        violation_score, flagged_at, device_fingerprint,
                                        ip_address, webrtc_room_id, mobile_paired_at,
                                        mobile_device_fingerprint, question_order
                                   FROM sessions WHERE candidate_id = $1 ORDER BY started_at) s",
        user,
    )
    .await?;
    section(
        state,
        out,
        "answers",
        "SELECT to_jsonb(a) FROM (SELECT a.id, a.session_id, a.question_id, q.prompt,
                                        a.answer_type, a.response_json AS response, a.version,
                                        a.latency_ms, a.points, a.graded_by, a.graded_at,
                                        a.created_at, a.updated_at
                                   FROM answers a JOIN questions q ON q.id = a.question_id
                                  WHERE a.session_id IN (SELECT id FROM sessions
                                                          WHERE candidate_id = $1)
                                  ORDER BY a.session_id, a.created_at) a",
        user,
    )
    .await?;
    section(
        state,
        out,
        "scores",
        "SELECT to_jsonb(x) FROM (SELECT session_id, objective_score, subjective_score,
                                        final_score, graded_at
                                   FROM scores WHERE session_id IN (SELECT id FROM sessions
                                                                    WHERE candidate_id = $1)) x",
        user,
    )
    .await?;

    // Events, from whichever event store the hub runs on, a page at a time per session.
    out.raw(b",\"events\":[").await?;
    let sessions: Vec<Uuid> = sqlx::query_scalar(SESSIONS_OF)
        .bind(user)
        .fetch_all(&state.db)
        .await
        .map_err(|e| e.to_string())?;
    let mut first = true;
    for session in &sessions {
        let mut after = None;
        loop {
            let q = EventQuery {
                after,
                limit: EVENT_PAGE,
                ..EventQuery::default()
            };
            let page: Vec<StoredEvent> = state
                .event_store
                .query(*session, &q)
                .await
                .map_err(|e| e.to_string())?;
            for e in &page {
                if !first {
                    out.raw(b",").await?;
                }
                first = false;
                out.value(&serde_json::to_value(e).map_err(|e| e.to_string())?)
                    .await?;
            }
            match page.last() {
                Some(last) if page.len() as i64 == EVENT_PAGE => {
                    after = Some(crate::store::cursor::Cursor {
                        at: last.timestamp,
                        id: last.id,
                    });
                }
                _ => break,
            }
        }
    }
    out.raw(b"]").await?;

    section(
        state,
        out,
        "adminActions",
        "SELECT to_jsonb(x) FROM (SELECT id, session_id, actor_id, target_user_id, action_type,
                                        reason, payload_json AS payload, created_at
                                   FROM admin_actions
                                  WHERE target_user_id = $1 OR actor_id = $1
                                     OR session_id IN (SELECT id FROM sessions
                                                        WHERE candidate_id = $1)
                                  ORDER BY created_at) x",
        user,
    )
    .await?;
    section(
        state,
        out,
        "artifacts",
        "SELECT to_jsonb(x) FROM (SELECT id, session_id, content_type, byte_size, created_at,
                                        '/api/v1/artifacts/' || id AS url
                                   FROM artifacts WHERE session_id IN (SELECT id FROM sessions
                                                                       WHERE candidate_id = $1)
                                  ORDER BY created_at) x",
        user,
    )
    .await?;
    section(
        state,
        out,
        "recordings",
        "SELECT to_jsonb(x) FROM (SELECT id, session_id, source, kind, codec, started_at,
                                        ended_at, duration_ms, byte_size, sha256,
                                        '/api/v1/sessions/' || session_id || '/recordings/' || id
                                            AS url
                                   FROM recordings WHERE session_id IN (SELECT id FROM sessions
                                                                        WHERE candidate_id = $1)
                                  ORDER BY started_at) x",
        user,
    )
    .await?;
    section(
        state,
        out,
        "logins",
        "SELECT to_jsonb(x) FROM (SELECT id, family_id, device_fingerprint, ip_address,
                                        created_at, used_at, expires_at, revoked_at
                                   FROM refresh_sessions WHERE user_id = $1
                                  ORDER BY created_at) x",
        user,
    )
    .await?;
    section(
        state,
        out,
        "webhookMessages",
        "SELECT to_jsonb(x) FROM (SELECT id, event_type, session_id, body, created_at
                                   FROM webhook_messages
                                  WHERE session_id IN (SELECT id FROM sessions
                                                        WHERE candidate_id = $1)
                                  ORDER BY created_at) x",
        user,
    )
    .await?;
    out.raw(b"}").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_camel_case() {
        assert_eq!(
            camel(json!({"session_id": 1, "ip_address": null, "id": 2})),
            json!({"sessionId": 1, "ipAddress": null, "id": 2})
        );
    }
}
