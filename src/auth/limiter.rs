//! Failed-login throttling with Redis fixed-window counters, per account and per client IP.
//! Redis may lose them (that only forgets some failures); when Redis is down, logins go on
//! unthrottled and the gap is logged and counted, so an outage of the cache never locks
//! candidates out of an exam.

use redis::aio::ConnectionManager;
use std::time::Duration;

/// Current failure count and seconds left in the window, for each key.
pub async fn counts(
    redis: &ConnectionManager,
    keys: &[&str],
) -> Result<Vec<(u32, u64)>, redis::RedisError> {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("GET").arg(*k).cmd("TTL").arg(*k);
    }
    let mut conn = redis.clone();
    let raw: Vec<(Option<u32>, i64)> = pipe.query_async(&mut conn).await?;
    Ok(raw
        .into_iter()
        .map(|(n, ttl)| (n.unwrap_or(0), ttl.max(1) as u64))
        .collect())
}

/// Counts one failure against each key, starting a window of `window` on the first.
pub async fn record_failure(
    redis: &ConnectionManager,
    keys: &[&str],
    window: Duration,
) -> Result<Vec<u32>, redis::RedisError> {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("INCR")
            .arg(*k)
            .cmd("EXPIRE")
            .arg(*k)
            .arg(window.as_secs().max(1))
            .arg("NX")
            .ignore();
    }
    let mut conn = redis.clone();
    pipe.query_async(&mut conn).await
}

/// Clears a counter (after a successful login).
pub async fn reset(redis: &ConnectionManager, key: &str) -> Result<(), redis::RedisError> {
    let mut conn = redis.clone();
    redis::cmd("DEL").arg(key).query_async(&mut conn).await
}

/// Delay before answering a failed login: nothing for the first three failures, then growing
/// by 250 ms per failure up to 2 s. Slows guessing without holding honest users up.
pub fn progressive_delay(failures: u32) -> Duration {
    let extra = failures.saturating_sub(3);
    Duration::from_millis((u64::from(extra) * 250).min(2000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_then_caps() {
        assert_eq!(progressive_delay(0), Duration::ZERO);
        assert_eq!(progressive_delay(3), Duration::ZERO);
        assert_eq!(progressive_delay(4), Duration::from_millis(250));
        assert_eq!(progressive_delay(100), Duration::from_secs(2));
    }
}
