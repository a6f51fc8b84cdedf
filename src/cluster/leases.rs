//! The node registry and exam-home leases in Redis. Every lease operation is one Lua script,
//! so it is atomic against every other node: two nodes can never both hold an exam.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use uuid::Uuid;

/// Takes `KEYS[1]` (an exam's home) for `ARGV[1]` (this node) for `ARGV[2]` ms when it is free,
/// or when its owner's node key (`ARGV[3]` .. owner) has expired; returns the owner after.
const ACQUIRE: &str = r"
local owner = redis.call('GET', KEYS[1])
if (not owner) or (owner ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. owner) == 0) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner
";

/// Extends `KEYS[1]` by `ARGV[2]` ms only while `ARGV[1]` owns it; 1 when extended.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes `KEYS[1]` only while `ARGV[1]` owns it; 1 when released.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Whether a node takes new exams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Takes new homes.
    Serving,
    /// Shutting down: keeps what it has for the grace, takes nothing new.
    Draining,
}

impl NodeState {
    fn as_str(self) -> &'static str {
        match self {
            NodeState::Serving => "serving",
            NodeState::Draining => "draining",
        }
    }
}

/// A registered node as other nodes see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// New at every process start.
    pub node_id: String,
    /// Where its WebSocket is reached (the `redirect` target).
    pub ws_url: String,
    /// Its public media address.
    pub media_addr: String,
    /// Serving or draining.
    pub state: NodeState,
    /// Its load (e.g. open sockets); homes go to the less loaded.
    pub load: u32,
    /// Where it runs.
    pub region: String,
}

/// Who holds an exam's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Mine,
    /// Another node (its id).
    Other(String),
}

/// This node's registry entry and leases.
pub struct Leases {
    redis: ConnectionManager,
    prefix: String,
    node_id: String,
    /// How long a lease lives without renewal (renew about every third of it).
    lease_ttl: Duration,
    /// How long the node key lives without a refresh.
    node_ttl: Duration,
    acquire: redis::Script,
    renew: redis::Script,
    release: redis::Script,
}

impl Leases {
    /// A node with a fresh id under `prefix` (the hub's Redis key prefix).
    pub fn new(
        redis: ConnectionManager,
        prefix: &str,
        lease_ttl: Duration,
        node_ttl: Duration,
    ) -> Self {
        Self::named(redis, prefix, "hub", lease_ttl, node_ttl)
    }

    /// A node whose fresh id starts with `name` (readable in the registry and in logs).
    pub fn named(
        redis: ConnectionManager,
        prefix: &str,
        name: &str,
        lease_ttl: Duration,
        node_ttl: Duration,
    ) -> Self {
        let suffix = Uuid::new_v4().simple().to_string();
        Leases {
            redis,
            prefix: prefix.to_string(),
            node_id: format!("{name}-{}", &suffix[..12]),
            lease_ttl,
            node_ttl,
            acquire: redis::Script::new(ACQUIRE),
            renew: redis::Script::new(RENEW),
            release: redis::Script::new(RELEASE),
        }
    }

    /// This process's node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Who holds `exam`'s home now, if anyone (no change).
    pub async fn owner(&self, exam: Uuid) -> Result<Option<String>, redis::RedisError> {
        let mut conn = self.redis.clone();
        redis::cmd("GET")
            .arg(self.home_key(exam))
            .query_async(&mut conn)
            .await
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }

    fn home_key(&self, exam: Uuid) -> String {
        format!("{}exam-home:{exam}", self.prefix)
    }

    fn ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Writes (or refreshes) this node's registry entry; it expires after the node TTL unless
    /// refreshed again.
    pub async fn announce(
        &self,
        ws_url: &str,
        media_addr: &str,
        region: &str,
        state: NodeState,
        load: u32,
    ) -> Result<(), redis::RedisError> {
        let key = self.node_key(&self.node_id);
        let mut conn = self.redis.clone();
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("wsUrl", ws_url.to_string()),
                    ("mediaAddr", media_addr.to_string()),
                    ("state", state.as_str().to_string()),
                    ("load", load.to_string()),
                    ("region", region.to_string()),
                ],
            )
            .ignore()
            .pexpire(&key, Self::ms(self.node_ttl) as i64)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    /// Removes this node's registry entry (a clean stop).
    pub async fn withdraw(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.redis.clone();
        redis::cmd("DEL")
            .arg(self.node_key(&self.node_id))
            .query_async(&mut conn)
            .await
    }

    /// Every registered node (those whose key has not expired).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, redis::RedisError> {
        let mut conn = self.redis.clone();
        let pattern = format!("{}node:*", self.prefix);
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(200)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut nodes = Vec::with_capacity(keys.len());
        for key in keys {
            let fields: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await?;
            let Some(node_id) = key.strip_prefix(&format!("{}node:", self.prefix)) else {
                continue;
            };
            if fields.is_empty() {
                continue; // expired between SCAN and HGETALL
            }
            nodes.push(NodeInfo {
                node_id: node_id.to_string(),
                ws_url: fields.get("wsUrl").cloned().unwrap_or_default(),
                media_addr: fields.get("mediaAddr").cloned().unwrap_or_default(),
                state: if fields.get("state").map(String::as_str) == Some("serving") {
                    NodeState::Serving
                } else {
                    NodeState::Draining
                },
                load: fields
                    .get("load")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(u32::MAX),
                region: fields.get("region").cloned().unwrap_or_default(),
            });
        }
        Ok(nodes)
    }

    /// Takes `exam`'s home for this node when it is free or its owner's node is gone;
    /// otherwise says who owns it.
    pub async fn acquire(&self, exam: Uuid) -> Result<Owner, redis::RedisError> {
        let node = self.node_id.clone();
        self.acquire_for(exam, &node).await
    }

    /// Takes `exam`'s home for `node` (this one or the one placement chose) when it is free
    /// or its owner's node is gone; otherwise says who owns it.
    pub async fn acquire_for(&self, exam: Uuid, node: &str) -> Result<Owner, redis::RedisError> {
        let mut conn = self.redis.clone();
        let owner: String = self
            .acquire
            .key(self.home_key(exam))
            .arg(node)
            .arg(Self::ms(self.lease_ttl))
            .arg(format!("{}node:", self.prefix))
            .invoke_async(&mut conn)
            .await?;
        Ok(if owner == self.node_id {
            Owner::Mine
        } else {
            Owner::Other(owner)
        })
    }

    /// Extends this node's lease on `exam`; false when it is no longer this node's (the node
    /// must then let the exam go).
    pub async fn renew(&self, exam: Uuid) -> Result<bool, redis::RedisError> {
        let mut conn = self.redis.clone();
        let extended: i64 = self
            .renew
            .key(self.home_key(exam))
            .arg(&self.node_id)
            .arg(Self::ms(self.lease_ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(extended == 1)
    }

    /// Gives `exam`'s home up if this node holds it; true when it did.
    pub async fn release(&self, exam: Uuid) -> Result<bool, redis::RedisError> {
        let mut conn = self.redis.clone();
        let released: i64 = self
            .release
            .key(self.home_key(exam))
            .arg(&self.node_id)
            .invoke_async(&mut conn)
            .await?;
        Ok(released == 1)
    }
}
