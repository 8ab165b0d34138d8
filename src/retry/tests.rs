use super::*;

fn secs(delays: impl Iterator<Item = Duration>) -> Vec<f64> {
    delays.map(|d| d.as_secs_f64()).collect()
}

fn exact(initial: u64, max: u64) -> Backoff {
    Backoff {
        jitter: 0.0,
        ..Backoff::new(Duration::from_secs(initial), Duration::from_secs(max))
    }
}

#[test]
fn without_jitter_delays_double_to_the_cap() {
    let delays = secs(exact(10, 300).delays().take(9));
    assert_eq!(
        delays,
        [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0, 300.0]
    );
    let delays = secs(exact(1, 30).delays().take(7));
    assert_eq!(delays, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
}

#[test]
fn jitter_stays_within_its_range_and_spreads() {
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let bases = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0];
    let mut below = 0;
    let mut above = 0;
    for _ in 0..200 {
        for (d, base) in backoff.delays().zip(bases) {
            let s = d.as_secs_f64();
            assert!(
                s >= base * (1.0 - JITTER) && s <= base * (1.0 + JITTER) + 1e-9,
                "{s} vs {base}"
            );
            if s < base {
                below += 1;
            } else if s > base {
                above += 1;
            }
        }
    }
    // 1,400 draws: a generator that never strays to one side is not random.
    assert!(below > 100 && above > 100, "below {below}, above {above}");
}

#[test]
fn reset_starts_over() {
    let mut delays = exact(1, 30).delays();
    let first: Vec<Duration> = delays.by_ref().take(4).collect();
    assert_eq!(delays.next_delay(), Duration::from_secs(16));
    delays.reset();
    assert_eq!(delays.next_delay(), first[0]);
    assert_eq!(delays.next_delay(), Duration::from_secs(2));
}

#[test]
fn a_first_delay_above_the_cap_is_the_cap() {
    let delays = secs(exact(60, 30).delays().take(3));
    assert_eq!(delays, [30.0, 30.0, 30.0]);
}

#[test]
fn every_spreads_one_period() {
    let period = Duration::from_secs(30);
    for d in Backoff::every(period, 0.1).delays().take(500) {
        assert!(
            d >= Duration::from_secs(27) && d <= Duration::from_secs(33),
            "{d:?}"
        );
    }
    let fixed: Vec<Duration> = Backoff::every(period, 0.0).delays().take(3).collect();
    assert_eq!(fixed, [period; 3]);
}

#[test]
fn the_default_policy_doubles_from_ten_seconds_within_jitter() {
    let delays = secs(RetryPolicy::default().schedule());
    assert_eq!(delays.len(), 2, "3 attempts mean 2 waits");
    for (s, base) in delays.iter().zip([10.0, 20.0]) {
        assert!(*s >= base * 0.9 && *s <= base * 1.1, "{s} vs {base}");
    }
}

#[test]
fn a_policy_caps_its_delays_and_counts_its_attempts() {
    let p = RetryPolicy {
        max_attempts: 12,
        jitter: 0.0,
        ..RetryPolicy::default()
    };
    let delays: Vec<u64> = p.schedule().map(|d| d.as_secs()).collect();
    assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300, 300, 300, 300]);
    for attempts in [0, 1] {
        let p = RetryPolicy {
            max_attempts: attempts,
            ..RetryPolicy::default()
        };
        assert_eq!(p.schedule().count(), 0, "{attempts} attempts: no retry");
    }
}
