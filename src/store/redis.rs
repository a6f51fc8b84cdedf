//! Redis: one multiplexed, auto-reconnecting connection and the key layout. Every key the hub
//! writes goes through [`Keys`] so it carries the configured prefix.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::Error;

/// Connects with bounded timeouts so an unreachable Redis fails fast instead of hanging.
pub async fn connect(url: &str) -> Result<ConnectionManager, Error> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1);
    Ok(ConnectionManager::new_with_config(client, config).await?)
}

/// How long best-effort cache work (a counter, a cache entry) waits for Redis before going on
/// without it: Redis answers in well under a millisecond, and a partitioned one never does, so
/// a login or a refresh must not wait out the connection's full response timeout.
pub const CACHE_WAIT: Duration = Duration::from_millis(500);

/// Runs best-effort Redis work for at most [`CACHE_WAIT`]; `what` names it in the warning when
/// it fails or does not answer.
pub async fn best_effort<T>(
    what: &str,
    work: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Option<T> {
    match tokio::time::timeout(CACHE_WAIT, work).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "{what} failed");
            None
        }
        Err(_) => {
            tracing::warn!("{what} failed: Redis did not answer");
            None
        }
    }
}

/// Builds prefixed Redis keys (the data model's key names after the prefix).
#[derive(Debug, Clone)]
pub struct Keys {
    /// Prepended to every key, e.g. `hub:`.
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys {
            prefix: prefix.into(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `refresh:{jti}`: cached metadata of a live refresh token (Postgres is the authority).
    pub fn refresh(&self, jti: &str) -> String {
        format!("{}refresh:{jti}", self.prefix)
    }

    /// Failed-login counter of one account from one client address (keyed by the email's
    /// hash, not the email).
    pub fn login_failures_account_ip(&self, email_hash: &str, ip: &str) -> String {
        format!("{}login-fail:acct-ip:{email_hash}:{ip}", self.prefix)
    }

    /// Failed-login counter of one client address.
    pub fn login_failures_ip(&self, ip: &str) -> String {
        format!("{}login-fail:ip:{ip}", self.prefix)
    }
}

impl Keys {
    /// `pairing:{sha256(token)}`: a live one-time pairing token (the raw token is never stored).
    pub fn pairing(&self, token_hash: &str) -> String {
        format!("{}pairing:{token_hash}", self.prefix)
    }

    /// The hash of the one live pairing token of a session (so minting revokes the old one).
    pub fn pairing_of_session(&self, session_id: uuid::Uuid) -> String {
        format!("{}pairing-session:{session_id}", self.prefix)
    }

    /// `mobile-device:{sessionId}`: the paired phone's fingerprint and pairing time.
    pub fn mobile_device(&self, session_id: uuid::Uuid) -> String {
        format!("{}mobile-device:{session_id}", self.prefix)
    }

    /// `heartbeat:{sessionId}:{role}`: present while the device heartbeats (TTL 3 × interval).
    pub fn heartbeat(&self, session_id: uuid::Uuid, role: &str) -> String {
        format!("{}heartbeat:{session_id}:{role}", self.prefix)
    }

    /// `check-room:{roomId}`: a candidate's media-check room (the candidate's id).
    pub fn check_room(&self, room: uuid::Uuid) -> String {
        format!("{}check-room:{room}", self.prefix)
    }

    /// Failed pairing claims of one client address.
    pub fn pairing_failures_ip(&self, ip: &str) -> String {
        format!("{}pairing-fail:ip:{ip}", self.prefix)
    }
}
