//! The one retry policy: exponential backoff with jitter, as a crash-looping pod backs
//! off, and a bound on attempts so nothing ever loops hot.
//!
//! Every wait berth takes after a failure comes from here: a failed service or
//! migration (10 s doubling to 5 min), a notification (2 s doubling to 1 min), the
//! engine or the coordination store not answering (1 s doubling to 30 s), the Docker
//! event stream (0.5 s doubling to 30 s). The spread of a poll period comes from here
//! too. The backoff crate computes the delays; its jitter is drawn from `rand`'s
//! thread-local generator, so hosts that fail together do not retry in lockstep.

use std::time::Duration;

use backoff::backoff::Backoff as _;
use backoff::ExponentialBackoff;

/// The spread of every delay unless a policy says otherwise: ±10 %.
pub(crate) const JITTER: f64 = 0.1;

/// Delays that start at `initial` and double up to `max`, each spread by ±`jitter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    /// The first delay (before jitter).
    pub initial: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
    /// Random spread of each delay, 0.0 to 1.0: a delay `d` becomes one in
    /// `[d × (1 − jitter), d × (1 + jitter)]`.
    pub jitter: f64,
}

impl Backoff {
    /// `initial` doubling to `max`, ±10 %.
    pub(crate) const fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            jitter: JITTER,
        }
    }

    /// `period` every time, ±`jitter`: the spread of a poll, so that hosts started
    /// together do not poll together.
    pub(crate) const fn every(period: Duration, jitter: f64) -> Self {
        Self {
            initial: period,
            max: period,
            jitter,
        }
    }

    /// The delays, without end.
    pub(crate) fn delays(&self) -> Delays {
        let max = self.max;
        let initial = self.initial.min(max);
        Delays {
            backoff: ExponentialBackoff {
                current_interval: initial,
                initial_interval: initial,
                randomization_factor: self.jitter.clamp(0.0, 1.0),
                multiplier: 2.0,
                max_interval: max,
                max_elapsed_time: None,
                ..ExponentialBackoff::default()
            },
            max,
        }
    }
}

/// An endless schedule of delays; [`Delays::reset`] starts it over after a success.
#[derive(Debug)]
pub(crate) struct Delays {
    backoff: ExponentialBackoff,
    max: Duration,
}

impl Delays {
    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        // Without an elapsed-time limit the crate never ends a schedule.
        self.backoff.next_backoff().unwrap_or(self.max)
    }

    /// Starts over from the first delay.
    pub(crate) fn reset(&mut self) {
        self.backoff.reset();
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

/// How failed attempts at one target are retried: a backoff, and how many attempts in
/// all before the target is given up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Attempts in all (the first one included) before the target is marked failed.
    /// Zero counts as one.
    pub max_attempts: u32,
    /// Random spread of each delay, 0.0 to 1.0.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// A deploy's: 10 s doubling to a 5 min cap, 3 attempts, ±10 %.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            max_attempts: 3,
            jitter: JITTER,
        }
    }
}

impl RetryPolicy {
    /// The delays between attempts: one fewer than `max_attempts`.
    pub(crate) fn schedule(&self) -> RetrySchedule {
        self.backoff()
            .delays()
            .take(self.max_attempts.max(1) as usize - 1)
    }

    /// Its backoff, without the bound on attempts.
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.initial,
            max: self.max,
            jitter: self.jitter,
        }
    }
}

/// The delays of one target's retries, from its policy.
pub(crate) type RetrySchedule = std::iter::Take<Delays>;

#[cfg(test)]
mod tests;
