//! Cross-node notices: what changed a session outside its home (a terminate or warning over
//! HTTP on another node, an ending by any node's sweeper, an unpair, a deactivated user)
//! reaches the home's devices within a moment.
//!
//! After COMMIT, [`crate::state::AppState::signal`] hands every [`HubSignal`] to the local
//! hub and to [`publish`], which sends it to the inbox (`{prefix}inbox:{nodeId}`, Redis
//! pub/sub) of the node that holds the exam's home (every other node for a deactivated
//! user). Each node [`subscribe`]s its own inbox on a dedicated connection and resubscribes
//! after any drop. A notice lost between COMMIT and PUBLISH, or while a subscription was
//! down, is covered by the reconcile loop ([`reconcile`]), which re-reads the status of the
//! sessions whose devices the node serves.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Cluster;
use crate::events::NewEvent;
use crate::model::SessionStatus;
use crate::state::HubSignal;

/// What travels between nodes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "notice", content = "body", rename_all = "camelCase")]
pub enum Notice {
    /// Something the home's hub must act on.
    Signal(HubSignal),
    /// Proctoring events another node committed for sessions of an exam this node is the
    /// home of: the home scores them (one scoring writer per session).
    Events(Vec<NewEvent>),
}

/// The inbox channel of `node`.
pub fn inbox(prefix: &str, node: &str) -> String {
    format!("{prefix}inbox:{node}")
}

/// The sending side of the bus, behind one trait so another broker (NATS) could replace
/// Redis.
pub trait Bus: Send + Sync {
    /// Sends `payload` to `node`'s inbox.
    fn send(
        &self,
        node: &str,
        payload: String,
    ) -> impl std::future::Future<Output = Result<(), redis::RedisError>> + Send;
}

/// Redis pub/sub as the bus.
pub struct RedisBus {
    redis: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisBus {
    /// Publishes on `redis` under `prefix`.
    pub fn new(redis: redis::aio::ConnectionManager, prefix: &str) -> RedisBus {
        RedisBus {
            redis,
            prefix: prefix.to_string(),
        }
    }
}

impl Bus for RedisBus {
    async fn send(&self, node: &str, payload: String) -> Result<(), redis::RedisError> {
        let mut conn = self.redis.clone();
        redis::cmd("PUBLISH")
            .arg(inbox(&self.prefix, node))
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
    }
}

/// Sends every signal the API committed to the node(s) that must act on it, in order.
pub async fn publish(
    cluster: Arc<Cluster>,
    bus: impl Bus,
    db: sqlx::PgPool,
    mut rx: mpsc::UnboundedReceiver<HubSignal>,
    shutdown: CancellationToken,
) {
    loop {
        let signal = tokio::select! {
            () = shutdown.cancelled() => return,
            s = rx.recv() => match s {
                Some(s) => s,
                None => return,
            },
        };
        let targets = match targets(&cluster, &db, &signal).await {
            Ok(t) => t,
            Err(e) => {
                // The reconcile loop re-reads endings; warnings and pairings are best effort.
                tracing::warn!(error = %e, "cannot route a notice");
                metrics::counter!("hub_cluster_notices_lost_total").increment(1);
                continue;
            }
        };
        if targets.is_empty() {
            continue;
        }
        let payload = match serde_json::to_string(&Notice::Signal(signal)) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a notice");
                continue;
            }
        };
        for node in targets {
            match bus.send(&node, payload.clone()).await {
                Ok(()) => metrics::counter!("hub_cluster_notices_sent_total").increment(1),
                Err(e) => {
                    tracing::warn!(error = %e, node, "notice not published");
                    metrics::counter!("hub_cluster_notices_lost_total").increment(1);
                }
            }
        }
    }
}

/// The nodes other than this one that must hear `signal`.
async fn targets(
    cluster: &Cluster,
    db: &sqlx::PgPool,
    signal: &HubSignal,
) -> Result<Vec<String>, crate::error::Error> {
    let exam = match signal {
        HubSignal::UserRevoked { .. } => {
            // A user's sockets may be on any node.
            return Ok(cluster
                .nodes()
                .into_iter()
                .map(|n| n.node_id)
                .filter(|n| n != cluster.node_id())
                .collect());
        }
        HubSignal::SessionEnded { exam_id, .. }
        | HubSignal::SessionStarted { exam_id, .. }
        | HubSignal::SessionChanged { exam_id, .. }
        | HubSignal::TimeUp { exam_id, .. }
        | HubSignal::TimeExtended { exam_id, .. } => *exam_id,
        HubSignal::Warn { session_id, .. }
        | HubSignal::PairingClaimed { session_id, .. }
        | HubSignal::UnpairMobile { session_id } => {
            match crate::store::sessions_lookup::by_id(db, *session_id).await? {
                Some(f) => f.exam_id,
                None => return Ok(Vec::new()),
            }
        }
    };
    if cluster.owns(exam) {
        return Ok(Vec::new());
    }
    Ok(cluster
        .leases()
        .owner(exam)
        .await?
        .filter(|owner| owner != cluster.node_id())
        .into_iter()
        .collect())
}

/// Listens on this node's inbox and hands every notice to the local hub (signals) or the
/// local feed (events to score); after a drop it resubscribes (with backoff) and wakes the
/// reconcile loop, which covers what was missed.
pub async fn subscribe(
    redis_url: String,
    channel: String,
    signals: broadcast::Sender<HubSignal>,
    feed: mpsc::Sender<Vec<NewEvent>>,
    gap: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let connected = async {
            let client = redis::Client::open(redis_url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = shutdown.cancelled() => return,
            r = connected => r,
        };
        let mut pubsub = match pubsub {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "inbox subscription failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if !first {
            tracing::info!("inbox subscription back: reconciling");
            metrics::counter!("hub_cluster_resubscribed_total").increment(1);
            gap.notify_one();
        }
        first = false;
        let mut messages = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => return,
                m = messages.next() => m,
            };
            let Some(msg) = msg else {
                tracing::warn!("inbox subscription dropped; resubscribing");
                break;
            };
            let payload: String = match msg.get_payload() {
                Ok(p) => p,
                Err(_) => continue,
            };
            match serde_json::from_str::<Notice>(&payload) {
                Ok(Notice::Signal(signal)) => {
                    metrics::counter!("hub_cluster_notices_received_total").increment(1);
                    let _ = signals.send(signal);
                }
                Ok(Notice::Events(events)) => {
                    metrics::counter!("hub_cluster_events_received_total")
                        .increment(events.len() as u64);
                    let _ = feed.send(events).await;
                }
                Err(e) => tracing::warn!(error = %e, "unreadable notice ignored"),
            }
        }
    }
}

/// Passes events committed here for sessions whose exam another node is the home of to
/// that home, which scores them; returns the events this node scores itself (its own
/// exams', those of exams with no home, and all of them when Redis cannot say).
pub async fn route_events(
    cluster: &Cluster,
    bus: &impl Bus,
    events: Vec<NewEvent>,
) -> Vec<NewEvent> {
    let mut by_exam: std::collections::HashMap<Uuid, Vec<NewEvent>> =
        std::collections::HashMap::new();
    for e in events {
        by_exam.entry(e.exam_id).or_default().push(e);
    }
    let mut mine = Vec::new();
    for (exam, events) in by_exam {
        let owner = if cluster.owns(exam) {
            None
        } else {
            match cluster.leases().owner(exam).await {
                Ok(owner) => owner.filter(|o| o != cluster.node_id()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot find an exam's home: scoring here");
                    None
                }
            }
        };
        let Some(owner) = owner else {
            mine.extend(events);
            continue;
        };
        let n = events.len() as u64;
        let payload = match serde_json::to_string(&Notice::Events(events.clone())) {
            Ok(p) => p,
            Err(_) => {
                mine.extend(events);
                continue;
            }
        };
        match bus.send(&owner, payload).await {
            Ok(()) => metrics::counter!("hub_cluster_events_forwarded_total").increment(n),
            Err(e) => {
                tracing::warn!(error = %e, "cannot pass events to their home: scoring here");
                mine.extend(events);
            }
        }
    }
    mine
}

/// Re-reads the status of `sessions` (those with devices on this node) and tells the hub of
/// every one that ended meanwhile, as the notice would have.
pub async fn reconcile(
    db: &sqlx::PgPool,
    sessions: &[Uuid],
    signals: &broadcast::Sender<HubSignal>,
) -> Result<usize, sqlx::Error> {
    if sessions.is_empty() {
        return Ok(0);
    }
    let ended: Vec<(Uuid, Uuid, SessionStatus, Option<String>)> = sqlx::query_as(
        "SELECT id, exam_id, status, ended_reason FROM sessions
          WHERE id = ANY($1) AND status <> 'STARTED'",
    )
    .bind(sessions)
    .fetch_all(db)
    .await?;
    let n = ended.len();
    for (session_id, exam_id, status, reason) in ended {
        let _ = signals.send(HubSignal::SessionEnded {
            session_id,
            exam_id,
            status,
            reason: reason.unwrap_or_default(),
        });
    }
    if n > 0 {
        metrics::counter!("hub_cluster_reconciled_endings_total").increment(n as u64);
    }
    Ok(n)
}
