//! Per-connection limits, with the defaults from RELIABILITY.md.

use std::time::Duration;

/// Largest text frame accepted, in bytes (64 KiB); larger frames close the socket with 1009.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest `sdp` in a `signal` offer or answer, in bytes.
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// Largest `meta` object of an `event`, serialized, in bytes.
pub const MAX_META_BYTES: usize = 8 * 1024;
/// Longest proctor warning text, in characters.
pub const MAX_WARNING_CHARS: usize = 1000;
/// Longest access token accepted in `auth`, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Limits applied to one WebSocket connection. All are configurable; `Default` gives the
/// documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest inbound frame in bytes; over it the socket closes with 1009.
    pub max_message_bytes: usize,
    /// Time allowed for the first frame, `auth`; after it the socket closes with 4502.
    pub auth_timeout: Duration,
    /// Interval between server pings on an authenticated socket.
    pub ping_interval: Duration,
    /// Time allowed for the pong after a ping; after it the socket closes with 4012.
    pub pong_timeout: Duration,
    /// Outbound queue bound in messages; overflow closes the socket with 4008.
    pub outbound_queue_messages: usize,
    /// Outbound queue bound in bytes; overflow closes the socket with 4008.
    pub outbound_queue_bytes: usize,
    /// Sustained inbound rate, in messages per second.
    pub inbound_per_second: u32,
    /// Inbound burst allowance (ICE trickle arrives in bursts).
    pub inbound_burst: u32,
    /// Rate-limited messages in a row after which the socket closes with 4013.
    pub rate_limit_strikes: u32,
    /// Interval at which clients send `heartbeat`; liveness TTL is three of these.
    pub heartbeat_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: MAX_MESSAGE_BYTES,
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            outbound_queue_messages: 256,
            outbound_queue_bytes: 1024 * 1024,
            inbound_per_second: 20,
            inbound_burst: 100,
            rate_limit_strikes: 20,
            heartbeat_interval: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// How long a heartbeat keeps a device "online": three heartbeat intervals.
    pub fn heartbeat_ttl(&self) -> Duration {
        self.heartbeat_interval * 3
    }

    /// The heartbeat interval in whole milliseconds, as sent in `authed`.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        u64::try_from(self.heartbeat_interval.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_reliability_md() {
        let l = Limits::default();
        assert_eq!(l.max_message_bytes, 65536);
        assert_eq!(l.auth_timeout, Duration::from_secs(10));
        assert_eq!(l.ping_interval, Duration::from_secs(20));
        assert_eq!(l.pong_timeout, Duration::from_secs(10));
        assert_eq!(
            (l.outbound_queue_messages, l.outbound_queue_bytes),
            (256, 1 << 20)
        );
        assert_eq!((l.inbound_per_second, l.inbound_burst), (20, 100));
        assert_eq!(l.heartbeat_interval_ms(), 5000);
        assert_eq!(l.heartbeat_ttl(), Duration::from_secs(15));
    }
}
