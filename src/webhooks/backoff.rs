//! When to try a failed delivery again: a pure function of the attempt count and the
//! delivery's age, so the policy is tested without clocks or sockets.

use std::time::Duration;

use super::WebhookConfig;

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this delay.
    Retry(Duration),
    /// The delivery is older than `retry_for`: mark it failed.
    GiveUp,
}

/// After the `attempts`-th failed attempt of a delivery created `age` ago: retry after
/// `base · 2^(attempts-1)` (capped at `max`, spread by `jitter` ∈ [0, 1) over up to a fifth
/// more), or give up once the next try would fall after `retry_for`.
pub fn after_failure(cfg: &WebhookConfig, attempts: u32, age: Duration, jitter: f64) -> Next {
    let exp = attempts.saturating_sub(1).min(30);
    let raw = cfg.backoff_base.saturating_mul(1u32 << exp);
    let delay = raw.min(cfg.backoff_max);
    let delay = delay + delay.mul_f64(jitter.clamp(0.0, 1.0) * 0.2);
    if age + delay > cfg.retry_for {
        Next::GiveUp
    } else {
        Next::Retry(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> WebhookConfig {
        WebhookConfig::default()
    }

    #[test]
    fn first_retries_come_within_seconds_then_back_off() {
        let c = cfg();
        let delays: Vec<Duration> = (1..=6)
            .map(|n| match after_failure(&c, n, Duration::ZERO, 0.0) {
                Next::Retry(d) => d,
                Next::GiveUp => panic!("gave up early"),
            })
            .collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16, 32].map(Duration::from_secs).to_vec()
        );
    }

    #[test]
    fn delays_are_capped() {
        let c = cfg();
        assert_eq!(
            after_failure(&c, 40, Duration::from_secs(60), 0.0),
            Next::Retry(Duration::from_secs(3600))
        );
    }

    #[test]
    fn jitter_spreads_by_at_most_a_fifth() {
        let c = cfg();
        assert_eq!(
            after_failure(&c, 3, Duration::ZERO, 0.999_999),
            Next::Retry(Duration::from_secs(4).mul_f64(1.0 + 0.999_999 * 0.2))
        );
    }

    #[test]
    fn gives_up_after_a_day() {
        let c = cfg();
        assert_eq!(
            after_failure(&c, 30, Duration::from_secs(23 * 3600 + 1800), 0.0),
            Next::GiveUp
        );
        assert!(matches!(
            after_failure(&c, 30, Duration::from_secs(22 * 3600), 0.0),
            Next::Retry(_)
        ));
    }

    #[test]
    fn a_whole_day_holds_about_thirty_attempts() {
        let c = cfg();
        let (mut age, mut attempts) = (Duration::ZERO, 0);
        while let Next::Retry(d) = after_failure(&c, attempts + 1, age, 0.0) {
            age += d;
            attempts += 1;
        }
        assert!(age <= c.retry_for);
        assert!((25..40).contains(&attempts), "{attempts} attempts in a day");
    }
}
