//! The sweeper: auto-submits sessions whose time ran out (AUTO_SUBMITTED). Each session is
//! claimed with `FOR UPDATE SKIP LOCKED` and ended through `store::sessions::end_session`, so a
//! manual submit racing the sweeper, or several hubs sweeping at once, end it exactly once.
//! It runs once at start-up (sessions that expired while no hub ran end promptly), then every
//! `sweep_interval`.

use crate::error::Error;
use crate::model::SessionStatus;
use crate::state::AppState;
use crate::store::sessions;

/// Why the sweeper ended a session (sent to its devices).
pub const TIME_UP: &str = "time is up";

/// Spawns the sweeper on `state.tasks`.
pub fn spawn(state: &AppState) {
    let s = state.clone();
    state.tasks.spawn(async move {
        let mut tick = tokio::time::interval(s.config.exams.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                // The first tick fires at once: the start-up sweep.
                _ = tick.tick() => {
                    if let Err(e) = sweep_once(&s).await {
                        tracing::warn!(error = %e, "sweep failed; retrying next tick");
                    }
                }
            }
        }
    });
}

/// Ends every STARTED session past its expiry, one claim at a time; returns how many this call
/// ended (others may have been ended concurrently by another sweeper or a submit).
pub async fn sweep_once(state: &AppState) -> Result<usize, Error> {
    let mut ended = 0;
    while !state.shutdown.is_cancelled() {
        let mut tx = state.db.begin().await?;
        let Some(id) = sessions::claim_expired(&mut tx).await? else {
            break;
        };
        if sessions::end_session(state, tx, id, SessionStatus::AutoSubmitted, TIME_UP)
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
