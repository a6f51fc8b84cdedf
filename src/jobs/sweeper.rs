//! The sweeper: tells devices when their time is up, and auto-submits sessions whose time
//! and autosave grace have run out (AUTO_SUBMITTED).
//!
//! A session's time runs out at `expires_at`, but saves sent in its last second may still be in
//! flight: autosave accepts them until `expires_at + HUB_AUTOSAVE_GRACE_SECS`, so the session
//! stays STARTED until then and is ended only after it. At `expires_at` its devices get
//! `time-up` (through [`HubSignal::TimeUp`]) so the page stops taking input while its queued
//! saves drain.
//!
//! Each session is claimed with `FOR UPDATE SKIP LOCKED` and ended through
//! `store::sessions::end_session`, so a manual submit racing the sweeper, or several hubs
//! sweeping at once, end it exactly once. It runs once at start-up (sessions that expired while
//! no hub ran end promptly), then every `sweep_interval`.

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::model::SessionStatus;
use crate::state::{AppState, HubSignal};
use crate::store::sessions;

/// Why the sweeper ended a session (sent to its devices).
pub const TIME_UP: &str = "time is up";

/// Spawns the sweeper on `state.tasks`.
pub fn spawn(state: &AppState) {
    let s = state.clone();
    state.tasks.spawn(async move {
        let mut tick = tokio::time::interval(s.config.exams.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut notices = TimeUpNotices::default();
        loop {
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                // The first tick fires at once: the start-up sweep.
                _ = tick.tick() => {
                    if let Err(e) = notices.send(&s).await {
                        tracing::warn!(error = %e, "time-up notices failed; retrying next tick");
                    }
                    if let Err(e) = sweep_once(&s).await {
                        tracing::warn!(error = %e, "sweep failed; retrying next tick");
                    }
                }
            }
        }
    });
}

/// Finds the sessions whose time ran out since the last tick and signals [`HubSignal::TimeUp`]
/// for each, once per process. A new process starts its watermark one grace back, so the
/// devices of sessions inside their grace hear it again after a restart.
#[derive(Debug, Default)]
pub struct TimeUpNotices {
    /// Expiries up to this instant (Postgres clock) were announced.
    since: Option<DateTime<Utc>>,
}

impl TimeUpNotices {
    /// Announces what ran out since the last call; returns how many.
    pub async fn send(&mut self, state: &AppState) -> Result<usize, Error> {
        let grace = state.config.exams.autosave_grace;
        let since = match self.since {
            Some(s) => s,
            None => {
                let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
                    .fetch_one(&state.db)
                    .await?;
                now - chrono::Duration::from_std(grace).unwrap_or_default()
            }
        };
        let (due, now) = sessions::timed_out_since(&state.db, since).await?;
        let grace_ends =
            |at: DateTime<Utc>| at + chrono::Duration::from_std(grace).unwrap_or_default();
        for s in &due {
            state.signal(HubSignal::TimeUp {
                session_id: s.id,
                exam_id: s.exam_id,
                expires_at: s.expires_at,
                grace_ends_at: grace_ends(s.expires_at),
            });
        }
        self.since = Some(now);
        Ok(due.len())
    }
}

/// Ends every STARTED session past its expiry and grace, one claim at a time; returns how many
/// this call ended (others may have been ended concurrently by another sweeper or a submit).
pub async fn sweep_once(state: &AppState) -> Result<usize, Error> {
    let grace = state.config.exams.autosave_grace;
    let mut ended = 0;
    while !state.shutdown.is_cancelled() {
        let mut tx = state.db.begin().await?;
        let Some(id) = sessions::claim_expired(&mut tx, grace).await? else {
            break;
        };
        if state
            .end_session(tx, id, SessionStatus::AutoSubmitted, TIME_UP)
            .await?
            .is_some()
        {
            ended += 1;
        }
    }
    if ended > 0 {
        tracing::info!(ended, "auto-submitted expired sessions");
    }
    Ok(ended)
}
