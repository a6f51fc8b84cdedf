//! Finished segments into the artifact store (encrypted under the session's data key) and
//! the `recordings` table; the queries the API and the retention job use.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::Digest;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::segmenter::Recorded;
use crate::error::Error;
use crate::state::AppState;

/// A stored segment as the API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingView {
    /// Its id.
    pub id: Uuid,
    /// `camera`, `screen`, `microphone` or `phone-camera`.
    pub source: String,
    /// `video` or `audio`.
    pub kind: String,
    /// Wall-clock time of its first frame.
    pub started_at: DateTime<Utc>,
    /// Its end.
    pub ended_at: DateTime<Utc>,
    /// Its length on the media clock.
    pub duration_ms: i64,
    /// Size of the WebM file.
    pub bytes: i64,
}

/// Stores finished segments, `concurrency` at a time, until the recorder closes the queue; a
/// segment that cannot be stored (after one retry) becomes a SYSTEM event `RECORDING_FAILED`
/// and a metric.
pub async fn run(state: AppState, mut segments: mpsc::Receiver<Recorded>, concurrency: usize) {
    let queued = futures::stream::poll_fn(|cx| segments.poll_recv(cx));
    futures::StreamExt::for_each_concurrent(queued, concurrency.max(1), |r| store_one(&state, r))
        .await;
}

async fn store_one(state: &AppState, r: Recorded) {
    let mut result = save(state, &r).await;
    if result.is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        result = save(state, &r).await;
    }
    match result {
        Ok(id) => {
            metrics::counter!("recording_stored_bytes_total").increment(r.bytes.len() as u64);
            tracing::debug!(%id, session = %r.track.session_id, "recording segment stored");
        }
        Err(e) => {
            metrics::counter!("recording_failures_total", "stage" => "store").increment(1);
            tracing::warn!(error = %e, session = %r.track.session_id, "recording segment lost");
            let event = crate::events::system::SystemEvent::new(
                r.track.session_id,
                "RECORDING_FAILED",
                3,
                Some(serde_json::json!({
                    "source": r.track.source.as_str(),
                    "startedAt": r.started_at,
                    "endedAt": r.ended_at,
                    "cause": "the recording could not be stored",
                })),
            );
            if let Err(e) = crate::events::system::record(state, &event).await {
                tracing::warn!(error = %e, "recording failure not recorded");
            }
        }
    }
}

/// Encrypts and stores one segment, then lists it.
async fn save(state: &AppState, r: &Recorded) -> Result<Uuid, Error> {
    let id = Uuid::now_v7();
    state
        .artifacts
        .put_recording(&state.db, r.track.session_id, id, &r.bytes)
        .await?;
    sqlx::query(
        "INSERT INTO recordings (id, session_id, source, kind, codec, publisher, started_at,
                                 ended_at, duration_ms, frames, byte_size, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id)
    .bind(r.track.session_id)
    .bind(r.track.source.as_str())
    .bind(r.codec.kind())
    .bind(r.codec.as_str())
    .bind(r.track.publisher)
    .bind(r.started_at)
    .bind(r.ended_at)
    .bind(i64::try_from(r.duration_ms).unwrap_or(i64::MAX))
    .bind(i64::try_from(r.frames).unwrap_or(i64::MAX))
    .bind(r.bytes.len() as i64)
    .bind(hex::encode(sha2::Sha256::digest(&r.bytes)))
    .execute(&state.db)
    .await?;
    Ok(id)
}

/// A session's segments, oldest first.
pub async fn list(db: &sqlx::PgPool, session: Uuid) -> Result<Vec<RecordingView>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, source, kind, started_at, ended_at, duration_ms, byte_size AS bytes
           FROM recordings WHERE session_id = $1 ORDER BY started_at, id",
    )
    .bind(session)
    .fetch_all(db)
    .await?)
}

/// One segment's decrypted WebM and its media type; `None` when unknown.
pub async fn fetch(
    state: &AppState,
    session: Uuid,
    id: Uuid,
) -> Result<Option<(&'static str, Vec<u8>)>, Error> {
    let kind: Option<String> =
        sqlx::query_scalar("SELECT kind FROM recordings WHERE id = $1 AND session_id = $2")
            .bind(id)
            .bind(session)
            .fetch_optional(&state.db)
            .await?;
    let Some(kind) = kind else {
        return Ok(None);
    };
    let content_type = if kind == "audio" {
        "audio/webm"
    } else {
        "video/webm"
    };
    Ok(state
        .artifacts
        .get_recording(&state.db, session, id)
        .await?
        .map(|bytes| (content_type, bytes)))
}
