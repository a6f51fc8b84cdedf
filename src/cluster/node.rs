//! This process as one node of several: where an exam's sockets belong (`home_of`), the
//! registry entry and lease upkeep, and draining.
//!
//! Placement is by exam (`SCALEOUT.md`, first step): the node a socket first reaches for an
//! exam with no home chooses one among the serving nodes (the less loaded of two random
//! picks, [`super::choose_home`]) and takes the lease for it with the acquire script; every
//! node then sends that exam's sockets to the home with a `redirect` and close 4010. When
//! Redis cannot answer, a node serves what reaches it rather than turn candidates away:
//! Postgres stays the authority, and the leases sort the placement out once Redis is back.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use uuid::Uuid;

use super::leases::{Leases, NodeInfo, NodeState, Owner};
use crate::config::ClusterConfig;

/// Where an exam's sockets belong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Home {
    /// On this node.
    Here,
    /// On another node, reached at this WebSocket URL.
    There(String),
}

/// This node: its id, public addresses, the exams it is the home of, and the registry as it
/// last read it.
pub struct Cluster {
    leases: Leases,
    ws_url: String,
    media_addr: String,
    config: ClusterConfig,
    draining: AtomicBool,
    /// Sockets on this node, as announced in the registry.
    load: AtomicU32,
    /// Exams this node holds the home lease of, and since when.
    owned: Mutex<HashMap<Uuid, Instant>>,
    /// The registry as last read (refreshed with every announce).
    nodes: Mutex<Vec<NodeInfo>>,
}

impl Cluster {
    /// A node with a fresh id; `ws_url` is what other nodes redirect to.
    pub fn new(
        redis: redis::aio::ConnectionManager,
        prefix: &str,
        config: ClusterConfig,
        ws_url: String,
        media_addr: String,
    ) -> Cluster {
        let leases = Leases::named(
            redis,
            prefix,
            &config.node_name,
            config.lease_ttl,
            config.node_ttl,
        );
        Cluster {
            leases,
            ws_url,
            media_addr,
            config,
            draining: AtomicBool::new(false),
            load: AtomicU32::new(0),
            owned: Mutex::new(HashMap::new()),
            nodes: Mutex::new(Vec::new()),
        }
    }

    /// This node's id (new at every start).
    pub fn node_id(&self) -> &str {
        self.leases.node_id()
    }

    /// The URL other nodes redirect this node's exams' sockets to.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The lease operations.
    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// True once the node started draining (SIGTERM): it takes no new homes.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// True while this node holds `exam`'s home.
    pub fn owns(&self, exam: Uuid) -> bool {
        self.owned.lock().expect("owned").contains_key(&exam)
    }

    /// The exams this node holds, with when it took each.
    pub fn owned(&self) -> Vec<(Uuid, Instant)> {
        self.owned
            .lock()
            .expect("owned")
            .iter()
            .map(|(e, t)| (*e, *t))
            .collect()
    }

    fn take(&self, exam: Uuid) {
        self.owned
            .lock()
            .expect("owned")
            .entry(exam)
            .or_insert_with(Instant::now);
    }

    /// Forgets `exam` (its lease was lost or released).
    pub fn forget(&self, exam: Uuid) {
        self.owned.lock().expect("owned").remove(&exam);
    }

    /// Where `exam`'s sockets belong, placing the exam when it has no home yet.
    pub async fn home_of(&self, exam: Uuid) -> Home {
        if self.owns(exam) {
            return Home::Here;
        }
        match self.place(exam).await {
            Ok(home) => home,
            Err(e) => {
                // Never turn sockets away because Redis is unreachable: serve them here.
                tracing::warn!(error = %e, %exam, "placement unavailable: serving the exam here");
                metrics::counter!("hub_cluster_placement_errors_total").increment(1);
                Home::Here
            }
        }
    }

    async fn place(&self, exam: Uuid) -> Result<Home, redis::RedisError> {
        let owner = match self.leases.owner(exam).await? {
            Some(owner) => owner,
            None => {
                let candidate = self.choose();
                match self.leases.acquire_for(exam, &candidate).await? {
                    Owner::Mine => self.node_id().to_string(),
                    Owner::Other(o) => o,
                }
            }
        };
        let owner = if owner == self.node_id() {
            owner
        } else if self.url_of(&owner).is_none() && !self.registered(&owner).await? {
            // Its node key expired: the acquire script takes the exam over.
            match self.leases.acquire(exam).await? {
                Owner::Mine => self.node_id().to_string(),
                Owner::Other(o) => o,
            }
        } else {
            owner
        };
        if owner == self.node_id() {
            self.take(exam);
            metrics::counter!("hub_cluster_homes_taken_total").increment(1);
            return Ok(Home::Here);
        }
        if self.url_of(&owner).is_none() {
            self.refresh_nodes().await?;
        }
        Ok(match self.url_of(&owner) {
            Some(url) => Home::There(url),
            // Registered a moment ago and not listed yet: serve here rather than strand.
            None => Home::Here,
        })
    }

    /// Whether `node`'s registry key exists (re-reading the registry).
    async fn registered(&self, node: &str) -> Result<bool, redis::RedisError> {
        self.refresh_nodes().await?;
        Ok(self.url_of(node).is_some())
    }

    fn url_of(&self, node: &str) -> Option<String> {
        self.nodes
            .lock()
            .expect("nodes")
            .iter()
            .find(|n| n.node_id == node)
            .map(|n| n.ws_url.clone())
    }

    /// The node a new exam goes to: the less loaded of two random serving nodes under the
    /// load limit; this node when the registry offers none (or only while draining, another).
    fn choose(&self) -> String {
        let nodes = self.nodes.lock().expect("nodes").clone();
        let mut rng = rand::thread_rng();
        let draining = self.is_draining();
        let open: Vec<NodeInfo> = nodes
            .into_iter()
            .filter(|n| !(draining && n.node_id == self.node_id()))
            .collect();
        super::choose_home(&open, self.config.max_load, |n| rng.gen_range(0..n))
            .map_or_else(|| self.node_id().to_string(), |n| n.node_id.clone())
    }

    /// Reads the registry.
    pub async fn refresh_nodes(&self) -> Result<(), redis::RedisError> {
        let nodes = self.leases.nodes().await?;
        *self.nodes.lock().expect("nodes") = nodes;
        Ok(())
    }

    /// The registry as last read.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.lock().expect("nodes").clone()
    }

    /// Sets the load announced next.
    pub fn set_load(&self, sockets: u32) {
        self.load.store(sockets, Ordering::Relaxed);
    }

    /// Writes this node's registry entry (serving or draining) and re-reads the registry.
    pub async fn announce(&self) -> Result<(), redis::RedisError> {
        let state = if self.is_draining() {
            NodeState::Draining
        } else {
            NodeState::Serving
        };
        self.leases
            .announce(
                &self.ws_url,
                &self.media_addr,
                &self.config.region,
                state,
                self.load.load(Ordering::Relaxed),
            )
            .await?;
        self.refresh_nodes().await
    }

    /// Renews the leases of the exams still in use here and releases the others (after they
    /// were held for a lease lifetime, so a socket on its way back finds them); returns the
    /// exams whose lease another node holds now, which this node must let go.
    pub async fn upkeep(&self, in_use: &HashSet<Uuid>) -> Vec<Uuid> {
        let mut lost = Vec::new();
        for (exam, since) in self.owned() {
            if !in_use.contains(&exam) && since.elapsed() >= self.config.lease_ttl {
                if let Err(e) = self.leases.release(exam).await {
                    tracing::warn!(error = %e, %exam, "lease release failed");
                }
                self.forget(exam);
                continue;
            }
            match self.leases.renew(exam).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(%exam, "exam-home lease lost: letting the exam go");
                    metrics::counter!("hub_cluster_leases_lost_total").increment(1);
                    self.forget(exam);
                    lost.push(exam);
                }
                // Redis unreachable is no reason to fence: keep serving, retry next time.
                Err(e) => tracing::warn!(error = %e, %exam, "lease renewal failed"),
            }
        }
        lost
    }

    /// Draining (SIGTERM): announced as draining, every lease released, the registry entry
    /// removed, each step bounded so a down Redis cannot hold the shutdown.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        let bound = Duration::from_secs(2);
        let _ = tokio::time::timeout(bound, self.announce()).await;
        for (exam, _) in self.owned() {
            let _ = tokio::time::timeout(bound, self.leases.release(exam)).await;
            self.forget(exam);
        }
        let _ = tokio::time::timeout(bound, self.leases.withdraw()).await;
        tracing::info!(node = self.node_id(), "left the cluster");
    }
}
