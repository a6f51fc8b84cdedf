//! Failed-login throttling that slows the attacker, never the account holder.
//!
//! Failures are counted in fixed windows per (account, client IP) and per client IP, never
//! per account alone: someone who knows a class's emails can exhaust the counters of their
//! own address, but a candidate logging in from anywhere else still gets in. Every attempt
//! first *reserves* a failure in both counters with one atomic check-and-increment (a Lua
//! script in Redis), so parallel guesses cannot slip past the limit between a check and an
//! increment; a correct password then gives its reservation back.
//!
//! Redis may lose the counters (that only forgets some failures). When Redis is down, the
//! same counting runs in this process ([`LocalWindows`]): per process rather than per
//! cluster, but login keeps working and keeps being throttled. After a Redis error the
//! fallback is used for [`REDIS_RETRY_AFTER`] before Redis is tried again, so a partitioned
//! Redis costs one timeout, not one per login.
//!
//! The pairing claim's failure counter (`counts`, `record_failure`) lives here too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use crate::config::AuthConfig;
use crate::store::redis::{Keys, CACHE_WAIT};

/// How long the in-process fallback is used after Redis failed.
pub const REDIS_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Entries the in-process fallback holds before it drops expired windows.
const LOCAL_PRUNE_AT: usize = 100_000;

/// Reserves one failure in each key unless one is at its limit. KEYS: counters; ARGV: the
/// window in seconds, then one limit per key. Returns `{1, count of KEYS[1]}` when reserved,
/// `{0, seconds left in the blocking key's window}` when refused.
const RESERVE: &str = r"
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = 1 end
    return {0, ttl}
  end
end
local first = 0
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  if i == 1 then first = n end
end
return {1, first}
";

/// Gives a reservation back (a login that succeeded was no failure): decrements each key that
/// is still above zero.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 1
";

/// A login attempt's place in the counters.
#[derive(Debug)]
pub struct Reservation {
    /// The (account, IP) and IP counters reserved.
    keys: [String; 2],
    /// Failures of this account from this IP in the window, this attempt included.
    pub failures: u32,
    /// Whether the counters are Redis's or this process's.
    local: bool,
}

/// The attempt is refused: too many failures from this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until the blocking window ends.
    pub retry_after: u64,
}

/// The login throttle: Redis counters with an in-process fallback.
pub struct LoginThrottle {
    /// Limits and window.
    max_account_ip: u32,
    max_ip: u32,
    window: Duration,
    /// The fallback's counters.
    local: LocalWindows,
    /// Until when (ms since `epoch`) Redis is skipped after an error.
    redis_down_until_ms: AtomicU64,
    /// The instant `redis_down_until_ms` counts from.
    epoch: Instant,
    /// [`RESERVE`] and [`RELEASE`], loaded (by SHA) once.
    reserve_script: redis::Script,
    release_script: redis::Script,
}

impl LoginThrottle {
    /// A throttle with `cfg`'s limits.
    pub fn new(cfg: &AuthConfig) -> Self {
        LoginThrottle {
            max_account_ip: cfg.login_max_failures_per_account_ip,
            max_ip: cfg.login_max_failures_per_ip,
            window: cfg.login_window,
            local: LocalWindows::default(),
            redis_down_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            reserve_script: redis::Script::new(RESERVE),
            release_script: redis::Script::new(RELEASE),
        }
    }

    /// Reserves a failure for a login of `account` (a hash of the email) from `ip`, or refuses
    /// it when this client is over a limit.
    pub async fn reserve(
        &self,
        redis: &ConnectionManager,
        keys: &Keys,
        account: &str,
        ip: &str,
    ) -> Result<Reservation, Throttled> {
        let keys = [
            keys.login_failures_account_ip(account, ip),
            keys.login_failures_ip(ip),
        ];
        let limits = [self.max_account_ip, self.max_ip];
        if !self.redis_skipped() {
            let mut script = self.reserve_script.prepare_invoke();
            for k in &keys {
                script.key(k);
            }
            script.arg(self.window.as_secs().max(1));
            for l in limits {
                script.arg(l);
            }
            let mut conn = redis.clone();
            let answer =
                tokio::time::timeout(CACHE_WAIT, script.invoke_async::<(u8, u64)>(&mut conn));
            match answer.await {
                Ok(Ok((1, failures))) => {
                    return Ok(Reservation {
                        keys,
                        failures: u32::try_from(failures).unwrap_or(u32::MAX),
                        local: false,
                    })
                }
                Ok(Ok((_, retry_after))) => return Err(Throttled { retry_after }),
                Ok(Err(e)) => self.redis_failed(&e.to_string()),
                Err(_) => self.redis_failed("no answer in time"),
            }
        }
        let now = Instant::now();
        let failures = self.local.reserve(&keys, &limits, self.window, now)?;
        Ok(Reservation {
            keys,
            failures,
            local: true,
        })
    }

    /// Gives back the reservation of a login that succeeded, and clears the account's
    /// failures from this client.
    pub async fn succeeded(&self, redis: &ConnectionManager, r: Reservation) {
        if r.local {
            self.local.release(&r.keys);
            self.local.clear(&r.keys[0]);
            return;
        }
        let mut script = self.release_script.prepare_invoke();
        script.key(&r.keys[1]);
        let mut conn = redis.clone();
        let work = async {
            script.invoke_async::<i64>(&mut conn).await?;
            redis::cmd("DEL")
                .arg(&r.keys[0])
                .query_async::<i64>(&mut conn)
                .await
        };
        // Not waited for long: a stale counter only delays this client's next failures.
        match tokio::time::timeout(CACHE_WAIT, work).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not clear the login counters"),
            Err(_) => tracing::warn!("could not clear the login counters: Redis did not answer"),
        }
    }

    fn redis_skipped(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        now < self.redis_down_until_ms.load(Ordering::Relaxed)
    }

    fn redis_failed(&self, e: &str) {
        metrics::counter!("hub_login_throttle_fallback_total").increment(1);
        tracing::warn!(error = %e, "login throttling falls back to this process (Redis)");
        let until = self.epoch.elapsed() + REDIS_RETRY_AFTER;
        self.redis_down_until_ms
            .store(until.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Fixed-window counters in this process: key → (count, window start), behind one mutex (it
/// serves only while Redis is down, and logins are bounded by hashing anyway), so a
/// reservation checks and increments both keys at once. Never held across an `.await`.
#[derive(Debug, Default)]
pub struct LocalWindows {
    counters: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LocalWindows {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        // A panic elsewhere cannot leave the counters inconsistent: keep using them.
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The same rule as [`RESERVE`]: refuse when any key is at its limit, else count one in
    /// each; returns the first key's count.
    pub fn reserve(
        &self,
        keys: &[String; 2],
        limits: &[u32; 2],
        window: Duration,
        now: Instant,
    ) -> Result<u32, Throttled> {
        let mut counters = self.lock();
        if counters.len() > LOCAL_PRUNE_AT {
            counters.retain(|_, (_, start)| now.duration_since(*start) < window);
        }
        let current =
            |counters: &HashMap<String, (u32, Instant)>, key: &String| match counters.get(key) {
                Some(&(n, start)) if now.duration_since(start) < window => (n, start),
                _ => (0, now),
            };
        let state = [current(&counters, &keys[0]), current(&counters, &keys[1])];
        for ((n, start), limit) in state.iter().zip(limits) {
            if n >= limit {
                let left = window.saturating_sub(now.duration_since(*start));
                return Err(Throttled {
                    retry_after: left.as_secs().max(1),
                });
            }
        }
        for (key, (n, start)) in keys.iter().zip(state) {
            counters.insert(key.clone(), (n + 1, start));
        }
        Ok(state[0].0 + 1)
    }

    /// Gives one reservation back on the IP counter.
    fn release(&self, keys: &[String; 2]) {
        if let Some(entry) = self.lock().get_mut(&keys[1]) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    /// Forgets a counter.
    fn clear(&self, key: &str) {
        self.lock().remove(key);
    }
}

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

/// Delay before answering a failed login: nothing for the first three failures of an account
/// from one client, then growing by 250 ms per failure up to 2 s. Slows guessing without
/// holding honest users up.
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

    fn keys(account: &str, ip: &str) -> [String; 2] {
        [format!("{account}:{ip}"), ip.to_string()]
    }

    #[test]
    fn local_windows_throttle_the_client_not_the_account() {
        let w = LocalWindows::default();
        let window = Duration::from_secs(900);
        let t0 = Instant::now();
        let attacker = keys("ann", "10.0.0.1");
        for i in 1..=3 {
            assert_eq!(w.reserve(&attacker, &[3, 50], window, t0), Ok(i));
        }
        let refused = w.reserve(&attacker, &[3, 50], window, t0).unwrap_err();
        assert_eq!(refused.retry_after, 900);
        // The same account from another client is untouched.
        assert_eq!(
            w.reserve(&keys("ann", "10.0.0.2"), &[3, 50], window, t0),
            Ok(1)
        );
        // The window ends.
        let later = t0 + window;
        assert_eq!(w.reserve(&attacker, &[3, 50], window, later), Ok(1));
    }

    #[test]
    fn local_windows_limit_an_address_across_accounts_and_give_reservations_back() {
        let w = LocalWindows::default();
        let window = Duration::from_secs(60);
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(w
                .reserve(&keys(&format!("u{i}"), "ip"), &[10, 5], window, t0)
                .is_ok());
        }
        let refused = w
            .reserve(
                &keys("u9", "ip"),
                &[10, 5],
                window,
                t0 + Duration::from_secs(20),
            )
            .unwrap_err();
        assert_eq!(refused.retry_after, 40);
        w.release(&keys("u0", "ip"));
        assert!(w.reserve(&keys("u9", "ip"), &[10, 5], window, t0).is_ok());
    }

    #[test]
    fn parallel_reservations_never_pass_the_limit() {
        let w = std::sync::Arc::new(LocalWindows::default());
        let t0 = Instant::now();
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let w = w.clone();
                    s.spawn(move || {
                        (0..50)
                            .filter(|_| {
                                w.reserve(
                                    &keys("ann", "ip"),
                                    &[100, 1000],
                                    Duration::from_secs(60),
                                    t0,
                                )
                                .is_ok()
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 100);
    }
}
