//! The one retry policy: exponential backoff with jitter, as a crash-looping pod backs
//! off, and a bound on attempts so nothing ever loops hot.

use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;

/// How failed attempts at one target are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Attempts in all (the first one included) before the target is marked failed.
    pub max_attempts: u32,
    /// Random spread of each delay, 0.0 to 1.0.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 10 s doubling to a 5 min cap, 3 attempts.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            max_attempts: 3,
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The delays between attempts: one fewer than `max_attempts`.
    pub fn schedule(&self) -> RetrySchedule {
        RetrySchedule {
            backoff: ExponentialBackoff {
                current_interval: self.initial,
                initial_interval: self.initial,
                randomization_factor: self.jitter,
                multiplier: 2.0,
                max_interval: self.max,
                max_elapsed_time: None,
                ..Default::default()
            },
            left: self.max_attempts.saturating_sub(1),
        }
    }
}

/// The delays of one target's retries, from the policy.
pub struct RetrySchedule {
    backoff: ExponentialBackoff,
    left: u32,
}

impl Iterator for RetrySchedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.backoff.next_backoff()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_doubles_from_ten_seconds_within_jitter() {
        let delays: Vec<Duration> = RetryPolicy::default().schedule().collect();
        assert_eq!(delays.len(), 2, "3 attempts mean 2 waits");
        for (d, base) in delays.iter().zip([10.0, 20.0]) {
            let s = d.as_secs_f64();
            assert!(s >= base * 0.9 && s <= base * 1.1, "{s} vs {base}");
        }
    }

    #[test]
    fn delays_are_capped() {
        let p = RetryPolicy {
            max_attempts: 12,
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let delays: Vec<u64> = p.schedule().map(|d| d.as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300, 300, 300, 300]);
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let p = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(p.schedule().count(), 0);
    }
}
