//! Scale-out on Redis (`../shared/design/SCALEOUT.md`): several hub processes, each exam in
//! progress pinned to one of them (its home), sockets that reach another node redirected,
//! and what changes a session outside its home passed on as a notice.
//!
//! - `placement.rs`: choosing a home among serving nodes (sans-IO: the less loaded of two
//!   random picks under a load limit).
//! - `leases.rs`: the registry keys (`{prefix}node:{nodeId}`, refreshed, expiring) and the
//!   exam-home leases (`{prefix}exam-home:{examId}`), each operation one Lua script so two
//!   nodes can never both own an exam: acquire (take it when free or when its owner's node key
//!   expired), renew-if-mine, release-if-mine.
//! - `node.rs`: this node ([`Cluster`]): where an exam's sockets belong, lease upkeep,
//!   draining.
//! - `notices.rs`: cross-node notices (per-node inboxes on Redis pub/sub) and the reconcile
//!   loop that covers lost ones.
//!
//! A node id is new at every process start, so a restarted process never inherits the leases
//! of its previous life.

pub mod leases;
pub mod node;
pub mod notices;
pub mod placement;

use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

pub use leases::{Leases, NodeInfo, NodeState, Owner};
pub use node::{Cluster, Home};
pub use placement::choose_home;

use crate::state::{AppState, HubSignal};

/// Runs this node's part of the cluster until shutdown, then drains: the registry entry
/// refreshed with the node's load, leases renewed (a lost one lets its exam go), notices
/// published and received, the reconcile loop; at shutdown every lease is released.
pub async fn run(
    state: AppState,
    cluster: Arc<Cluster>,
    notices: mpsc::UnboundedReceiver<HubSignal>,
    feed: mpsc::Sender<Vec<crate::events::NewEvent>>,
) {
    let shutdown = state.shutdown.clone();
    let config = cluster.config().clone();
    let prefix = state.config.redis_prefix.clone();
    let gap = Arc::new(Notify::new());
    state.tasks.spawn(notices::publish(
        cluster.clone(),
        notices::RedisBus::new(state.redis.clone(), &prefix),
        state.db.clone(),
        notices,
        shutdown.clone(),
    ));
    state.tasks.spawn(notices::subscribe(
        state.config.redis_url.clone(),
        notices::inbox(&prefix, cluster.node_id()),
        state.signals.clone(),
        feed,
        gap.clone(),
        shutdown.clone(),
    ));
    let every = |d: std::time::Duration| {
        let mut i = tokio::time::interval(d.max(std::time::Duration::from_millis(50)));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    };
    let mut announce = every(config.node_ttl / 3);
    let mut renew = every(config.lease_ttl / 3);
    let mut reconcile = every(config.reconcile_interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = announce.tick() => {
                let stats = state.hub.stats().await;
                cluster.set_load(u32::try_from(stats.peers).unwrap_or(u32::MAX));
                if let Err(e) = cluster.announce().await {
                    tracing::warn!(error = %e, "node registry refresh failed");
                }
            }
            _ = renew.tick() => {
                let in_use = state.hub.exams_in_use().await;
                for exam in cluster.upkeep(&in_use).await {
                    state.hub.let_go(exam).await;
                }
            }
            () = async {
                tokio::select! {
                    _ = reconcile.tick() => {},
                    () = gap.notified() => {},
                }
            } => {
                let sessions = state.hub.device_sessions().await;
                if let Err(e) = notices::reconcile(&state.db, &sessions, &state.signals).await {
                    tracing::warn!(error = %e, "reconcile failed");
                }
            }
        }
    }
    cluster.drain().await;
}
