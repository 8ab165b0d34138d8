//! What the benchmarks share: the spread of a set of timings, and how a time is shown.

use std::time::Duration;

/// The median, minimum and maximum of a set of timings.
pub struct Stats {
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Stats {
    /// The spread of `times` (at least one).
    pub fn of(mut times: Vec<Duration>) -> Stats {
        times.sort();
        Stats {
            median: times[times.len() / 2],
            min: times[0],
            max: times[times.len() - 1],
        }
    }
}

/// `d` in milliseconds, with `decimals` places.
pub fn ms(d: Duration, decimals: usize) -> String {
    format!("{:.*} ms", decimals, d.as_secs_f64() * 1e3)
}
