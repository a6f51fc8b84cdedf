//! The retention job: deletes events, artifacts and recordings older than the configured
//! number of days, except those of sessions under review, and sent webhook messages. Spawned on `AppState::tasks`, runs once shortly after
//! start and then every `HUB_RETENTION_INTERVAL_SECS` (daily by default), and stops with the
//! shutdown token.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Error;
use crate::state::AppState;

/// A session is *under review* while a person still has to decide on it: it has ended
/// (`status <> 'STARTED'`) and its `review_decision` is still `PENDING`. Nothing of such a
/// session is purged until the decision is taken; the hub never takes it automatically.
pub const UNDER_REVIEW: &str = "(s.review_decision = 'PENDING' AND s.status <> 'STARTED')";

/// Sessions handled per round trip.
const PAGE: i64 = 1000;

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Events deleted.
    pub events: u64,
    /// Artifacts deleted (object and row).
    pub artifacts: u64,
    /// Recording segments deleted (object and row).
    pub recordings: u64,
    /// Webhook messages deleted (with their deliveries and attempts).
    pub webhook_messages: u64,
}

/// Deletes everything older than `cutoff` that is not under review.
pub async fn purge(state: &AppState, cutoff: DateTime<Utc>) -> Result<Purged, Error> {
    let mut purged = Purged::default();
    // Events: per page of sessions not under review that may hold events older than the
    // cutoff (event timestamps are at most MAX_AGE before the session's start).
    let horizon = cutoff + super::validate::MAX_AGE;
    let mut after = Uuid::nil();
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT s.id FROM sessions s
              WHERE s.started_at < $1 AND NOT {UNDER_REVIEW} AND s.id > $2
              ORDER BY s.id LIMIT $3"
        ))
        .bind(horizon)
        .bind(after)
        .bind(PAGE)
        .fetch_all(&state.db)
        .await?;
        let Some(last) = ids.last() else { break };
        after = *last;
        purged.events += state
            .event_store
            .delete_older_than(cutoff, &ids)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        if (ids.len() as i64) < PAGE {
            break;
        }
    }
    // Artifacts and recordings: the object first, then its row (a crash in between leaves a
    // row whose object is gone, which reads as not found and is purged again next time).
    purged.artifacts = purge_objects(state, cutoff, Stored::Artifacts).await?;
    purged.recordings = purge_objects(state, cutoff, Stored::Recordings).await?;
    // Webhook messages none of whose deliveries still waits (delivered or given up).
    purged.webhook_messages = sqlx::query(
        "DELETE FROM webhook_messages m
          WHERE m.created_at < $1
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                             WHERE d.message_id = m.id AND d.state = 'PENDING')",
    )
    .bind(cutoff)
    .execute(&state.db)
    .await?
    .rows_affected();
    Ok(purged)
}

/// The encrypted objects listed in Postgres.
#[derive(Clone, Copy)]
enum Stored {
    /// Frame artifacts (`artifacts`).
    Artifacts,
    /// Recording segments (`recordings`).
    Recordings,
}

impl Stored {
    fn table(self) -> &'static str {
        match self {
            Stored::Artifacts => "artifacts",
            Stored::Recordings => "recordings",
        }
    }
}

/// Deletes the objects of `what` older than `cutoff` whose sessions are not under review,
/// object then row, a page at a time; returns how many.
async fn purge_objects(
    state: &AppState,
    cutoff: DateTime<Utc>,
    what: Stored,
) -> Result<u64, Error> {
    let table = what.table();
    let mut purged = 0;
    loop {
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(&format!(
            "SELECT o.id, o.session_id FROM {table} o JOIN sessions s ON s.id = o.session_id
              WHERE o.created_at < $1 AND NOT {UNDER_REVIEW}
              ORDER BY o.created_at LIMIT $2"
        ))
        .bind(cutoff)
        .bind(PAGE)
        .fetch_all(&state.db)
        .await?;
        if rows.is_empty() {
            break;
        }
        purged += delete_rows(state, what, &rows).await?;
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    Ok(purged)
}

/// Deletes the objects of `rows` (`(id, session)`), then their rows; returns how many.
async fn delete_rows(state: &AppState, what: Stored, rows: &[(Uuid, Uuid)]) -> Result<u64, Error> {
    for (id, session) in rows {
        match what {
            Stored::Artifacts => state.artifacts.delete_object(*session, *id).await?,
            Stored::Recordings => state.artifacts.delete_recording(*session, *id).await?,
        }
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    sqlx::query(&format!("DELETE FROM {} WHERE id = ANY($1)", what.table()))
        .bind(&ids)
        .execute(&state.db)
        .await?;
    Ok(ids.len() as u64)
}

/// Deletes every artifact and recording of `sessions`, whatever their age or review state
/// (an erasure); returns (artifacts, recordings).
pub async fn delete_session_objects(
    state: &AppState,
    sessions: &[Uuid],
) -> Result<(u64, u64), Error> {
    let mut counts = [0u64; 2];
    for (n, what) in [Stored::Artifacts, Stored::Recordings]
        .into_iter()
        .enumerate()
    {
        loop {
            let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(&format!(
                "SELECT id, session_id FROM {} WHERE session_id = ANY($1) LIMIT $2",
                what.table()
            ))
            .bind(sessions)
            .bind(PAGE)
            .fetch_all(&state.db)
            .await?;
            if rows.is_empty() {
                break;
            }
            counts[n] += delete_rows(state, what, &rows).await?;
        }
    }
    Ok((counts[0], counts[1]))
}

/// Runs the purge periodically until shutdown.
pub async fn run(state: AppState) {
    let every = state.config.retention_interval;
    // The first run a minute after start, not during start-up's busiest moment.
    let first = tokio::time::Instant::now() + every.min(std::time::Duration::from_secs(60));
    let mut tick = tokio::time::interval_at(first, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            _ = tick.tick() => {
                let cutoff = Utc::now() - chrono::Duration::days(i64::from(state.config.retention_days));
                match purge(&state, cutoff).await {
                    Ok(p) => {
                        metrics::counter!("hub_retention_events_deleted_total").increment(p.events);
                        metrics::counter!("hub_retention_artifacts_deleted_total").increment(p.artifacts);
                        tracing::info!(events = p.events, artifacts = p.artifacts, recordings = p.recordings, "retention purge done");
                    }
                    Err(e) => tracing::warn!(error = %e, "retention purge failed; retrying next time"),
                }
            }
        }
    }
}
