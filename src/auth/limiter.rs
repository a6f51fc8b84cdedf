//! Failed-login throttling that slows the attacker, never the account holder.
//!
//! Failures are counted in fixed windows per (account, client IP) and per client IP, never
//! per account alone: someone who knows a class's emails can exhaust the counters of their
//! own address, but a candidate logging in from anywhere else still gets in.
//!
//! Every attempt first checks both limits and *reserves* a failure of its (account, IP) in one
//! atomic step (a Lua script in Redis), so parallel guesses at one account cannot slip past
//! its limit between a check and an increment; a correct password then clears that counter.
//! The per-IP counter grows only when a failure is known: a lab of candidates behind one NAT
//! address logging in at the same second must not be refused for logins still being checked.
//! Parallel wrong guesses at *different* accounts can therefore pass the per-IP limit by the
//! number in flight at once, which password hashing bounds (`HUB_HASH_CONCURRENCY` and its
//! queue).
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
use crate::store::redis::{best_effort, Keys, CACHE_WAIT};

/// How long the in-process fallback is used after Redis failed.
pub const REDIS_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Entries the in-process fallback holds before it drops expired windows.
const LOCAL_PRUNE_AT: usize = 100_000;

/// Checks every key against its limit and, when none is reached, counts one in the first.
/// KEYS: the (account, IP) counter, then the IP counter; ARGV: the window in seconds, then one
/// limit per key. Returns `{1, the first key's count}` when reserved, `{0, seconds left in the
/// blocking key's window}` when refused.
const RESERVE: &str = r"
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = 1 end
    return {0, ttl}
  end
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {1, n}
";

/// Counts one failure in KEYS[1], starting its window (ARGV[1] seconds) on the first.
const FAILED: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
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
    /// [`RESERVE`] and [`FAILED`], loaded (by SHA) once.
    reserve_script: redis::Script,
    failed_script: redis::Script,
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
            failed_script: redis::Script::new(FAILED),
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

    /// A wrong password: counts the failure against the client's address too.
    pub async fn failed(&self, redis: &ConnectionManager, r: &Reservation) {
        if r.local {
            self.local.failed(&r.keys[1], self.window, Instant::now());
            return;
        }
        let mut script = self.failed_script.prepare_invoke();
        script.key(&r.keys[1]).arg(self.window.as_secs().max(1));
        let mut conn = redis.clone();
        let counted = best_effort(
            "counting a failed login",
            script.invoke_async::<i64>(&mut conn),
        )
        .await;
        if counted.is_none() {
            // Redis went away between the reservation and now: count it here.
            self.local.failed(&r.keys[1], self.window, Instant::now());
        }
    }

    /// A correct password: clears the account's failures from this client.
    pub async fn succeeded(&self, redis: &ConnectionManager, r: Reservation) {
        if r.local {
            self.local.clear(&r.keys[0]);
            return;
        }
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&r.keys[0]);
        let mut conn = redis.clone();
        best_effort(
            "clearing the login counter",
            cmd.query_async::<i64>(&mut conn),
        )
        .await;
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
    /// the first; returns its count.
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
        let (n, start) = state[0];
        counters.insert(keys[0].clone(), (n + 1, start));
        Ok(n + 1)
    }

    /// Counts one failure in `key` (the same rule as [`FAILED`]).
    fn failed(&self, key: &str, window: Duration, now: Instant) {
        let mut counters = self.lock();
        let entry = counters.entry(key.to_string()).or_insert((0, now));
        if now.duration_since(entry.1) >= window {
            *entry = (0, now);
        }
        entry.0 += 1;
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
    fn local_windows_limit_an_address_by_its_failures_only() {
        let w = LocalWindows::default();
        let window = Duration::from_secs(60);
        let t0 = Instant::now();
        // Logins being checked do not count against the address...
        for i in 0..20 {
            assert!(w
                .reserve(&keys(&format!("u{i}"), "ip"), &[10, 5], window, t0)
                .is_ok());
        }
        // ...failures do.
        for _ in 0..5 {
            w.failed("ip", window, t0);
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
        assert!(w
            .reserve(&keys("u9", "ip"), &[10, 5], window, t0 + window)
            .is_ok());
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
