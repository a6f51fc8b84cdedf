//! Inbound rate limiting: a token bucket driven by an explicit `now`.

use std::time::Duration;

/// What to do with one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: process the message.
    Allow,
    /// Over the limit: drop the message and reply `RATE_LIMITED`.
    Limited,
    /// Over the limit for too long: close the socket with 4013.
    Close,
}

/// A token bucket (`rate` per second, `burst` capacity) that reads no clock: every call takes
/// `now`, a monotonic offset from any fixed origin.
///
/// It is implemented as the equivalent GCRA ("virtual scheduling"): instead of a token count it
/// keeps the theoretical arrival time of the next message, so all arithmetic is exact integer
/// `Duration` math. Limited messages consume nothing; `strikes` limited messages in a row turn
/// into [`Verdict::Close`].
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Time one token takes to refill (1 s / rate).
    interval: Duration,
    /// How far ahead of `now` the theoretical arrival time may run: (burst − 1) intervals.
    tolerance: Duration,
    /// Theoretical arrival time of the next conforming message.
    tat: Duration,
    /// Limited messages since the last allowed one.
    limited_in_a_row: u32,
    /// Limited messages in a row that close the connection.
    strikes: u32,
}

impl TokenBucket {
    /// A full bucket refilling `per_second` tokens a second, holding at most `burst`, closing
    /// after `strikes` limited messages in a row. Zero values are raised to one.
    pub fn new(per_second: u32, burst: u32, strikes: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        TokenBucket {
            interval,
            tolerance: interval * (burst.max(1) - 1),
            tat: Duration::ZERO,
            limited_in_a_row: 0,
            strikes: strikes.max(1),
        }
    }

    /// Decides about one message arriving at `now`.
    pub fn check(&mut self, now: Duration) -> Verdict {
        let tat = self.tat.max(now);
        if tat - now > self.tolerance {
            self.limited_in_a_row += 1;
            if self.limited_in_a_row >= self.strikes {
                Verdict::Close
            } else {
                Verdict::Limited
            }
        } else {
            self.tat = tat + self.interval;
            self.limited_in_a_row = 0;
            Verdict::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn allows_the_burst_then_limits() {
        let mut b = TokenBucket::new(20, 100, 5);
        for _ in 0..100 {
            assert_eq!(b.check(Duration::ZERO), Verdict::Allow);
        }
        assert_eq!(b.check(Duration::ZERO), Verdict::Limited);
    }

    #[test]
    fn refills_at_the_rate() {
        let mut b = TokenBucket::new(20, 100, 5);
        for _ in 0..100 {
            b.check(Duration::ZERO);
        }
        assert_eq!(b.check(49 * MS), Verdict::Limited);
        assert_eq!(b.check(50 * MS), Verdict::Allow);
        assert_eq!(b.check(50 * MS), Verdict::Limited);
        // A sustained 20/s is always allowed.
        for i in 2..1000u32 {
            assert_eq!(b.check(50 * MS * i), Verdict::Allow);
        }
    }

    #[test]
    fn idle_time_refills_to_the_burst_only() {
        let mut b = TokenBucket::new(20, 100, 5);
        let later = Duration::from_secs(3600);
        for _ in 0..100 {
            assert_eq!(b.check(later), Verdict::Allow);
        }
        assert_eq!(b.check(later), Verdict::Limited);
    }

    #[test]
    fn sustained_abuse_closes_and_an_allowed_message_resets_strikes() {
        let mut b = TokenBucket::new(1, 1, 3);
        assert_eq!(b.check(Duration::ZERO), Verdict::Allow);
        assert_eq!(b.check(Duration::ZERO), Verdict::Limited);
        assert_eq!(b.check(Duration::ZERO), Verdict::Limited);
        assert_eq!(b.check(Duration::from_secs(1)), Verdict::Allow);
        assert_eq!(b.check(Duration::from_secs(1)), Verdict::Limited);
        assert_eq!(b.check(Duration::from_secs(1)), Verdict::Limited);
        assert_eq!(b.check(Duration::from_secs(1)), Verdict::Close);
    }

    #[test]
    fn zero_settings_do_not_panic() {
        let mut b = TokenBucket::new(0, 0, 0);
        assert_eq!(b.check(Duration::ZERO), Verdict::Allow);
        assert_eq!(b.check(Duration::ZERO), Verdict::Close);
    }
}
