//! The hub's store work, done off the actor: SYSTEM events, socket-id columns, and heartbeat
//! keys written to Redis in coalesced pipelines (every heartbeat of the last flush interval in
//! one round trip, each key once). A failing Redis opens a telemetry gap instead of producing
//! heartbeat losses.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::events::system::{self, SystemEvent};
use crate::hub::Effect;
use crate::hub::{device_str, Device};
use crate::state::AppState;

/// How often buffered heartbeat keys are flushed.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Flush early when this many distinct keys are waiting.
const FLUSH_AT: usize = 4096;

/// Runs until the hub's effect channel closes or shutdown.
pub async fn run(state: AppState, mut effects: mpsc::UnboundedReceiver<Effect>) {
    let ttl = state.config.heartbeat_interval * 3;
    let mut pending: HashSet<(Uuid, Device)> = HashSet::new();
    let mut gap = false;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            effect = effects.recv() => match effect {
                Some(Effect::HeartbeatKey { session_id, device }) => {
                    pending.insert((session_id, device));
                    if pending.len() >= FLUSH_AT {
                        flush(&state, &mut pending, ttl, &mut gap).await;
                    }
                }
                Some(other) => apply(&state, other).await,
                None => break,
            },
            _ = tick.tick() => {
                if !pending.is_empty() || gap {
                    flush(&state, &mut pending, ttl, &mut gap).await;
                }
            }
        }
    }
}

async fn flush(
    state: &AppState,
    pending: &mut HashSet<(Uuid, Device)>,
    ttl: Duration,
    gap: &mut bool,
) {
    let mut pipe = redis::pipe();
    for (session, device) in pending.iter() {
        pipe.cmd("SET")
            .arg(state.keys.heartbeat(*session, device_str(*device)))
            .arg(chrono::Utc::now().timestamp_millis())
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .ignore();
    }
    // During a gap, probe with a PING even when no heartbeat waits.
    pipe.cmd("PING").ignore();
    let mut conn = state.redis.clone();
    let result =
        tokio::time::timeout(Duration::from_secs(2), pipe.query_async::<()>(&mut conn)).await;
    match result {
        Ok(Ok(())) => {
            metrics::counter!("hub_heartbeat_keys_written_total").increment(pending.len() as u64);
            pending.clear();
            if *gap {
                *gap = false;
                tracing::info!("heartbeat store reachable again: telemetry gap closed");
                state.hub.telemetry_gap(false).await;
            }
        }
        Ok(Err(_)) | Err(_) => {
            // Keys are rewritten at the next heartbeat; keeping them would only grow.
            pending.clear();
            if !*gap {
                *gap = true;
                metrics::counter!("hub_telemetry_gaps_total").increment(1);
                tracing::warn!("heartbeat store unreachable: telemetry gap opened");
                state.hub.telemetry_gap(true).await;
            }
        }
    }
}

async fn apply(state: &AppState, effect: Effect) {
    let result = match effect {
        Effect::SystemEvent {
            at,
            session_id,
            event_type,
            severity,
            meta,
        } => {
            system::record(
                state,
                &SystemEvent::new(session_id, event_type, severity, meta).at(at),
            )
            .await
        }
        Effect::SocketId {
            session_id,
            device,
            peer,
        } => {
            let column = match device {
                Device::Laptop => "candidate_socket_id",
                Device::Mobile => "mobile_socket_id",
            };
            sqlx::query(&format!("UPDATE sessions SET {column} = $2 WHERE id = $1"))
                .bind(session_id)
                .bind(peer.map(|p| p.to_string()))
                .execute(&state.db)
                .await
                .map(|_| ())
                .map_err(Into::into)
        }
        Effect::ClearMobile { session_id } => {
            // The rejected or unpaired phone's renewable credential stops working too.
            match sqlx::query(
                "UPDATE sessions SET mobile_device_token_hash = NULL,
                        mobile_device_fingerprint = NULL
                  WHERE id = $1",
            )
            .bind(session_id)
            .execute(&state.db)
            .await
            {
                Ok(_) => {
                    crate::pairing::clear_mobile_device(&state.redis, &state.keys, session_id).await
                }
                Err(e) => Err(e.into()),
            }
        }
        Effect::HeartbeatKey { .. } => Ok(()),
    };
    if let Err(e) = result {
        metrics::counter!("hub_effect_failures_total").increment(1);
        tracing::warn!(error = %e, "hub store work failed");
    }
}
