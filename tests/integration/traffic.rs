//! Zero downtime, counted: clients request every service without pause while berth rolls
//! it out in each way it can, on the service's alias directly and through Caddy with the
//! reference configuration's proxy options (see `support::traffic`).
//!
//! CI runs 12 rollouts; `BERTH_ROLLOUTS=N` runs about N (`BERTH_RELIABILITY=long`: 200).

use std::path::Path;

use crate::support::traffic::{per_thousand, Traffic, KINDS};

fn rollouts() -> usize {
    match std::env::var("BERTH_ROLLOUTS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) => n,
        None if std::env::var("BERTH_RELIABILITY").as_deref() == Ok("long") => 200,
        None => 12,
    }
}

#[test]
fn every_kind_of_rollout_keeps_requests_flowing_directly_and_through_caddy() {
    let mut t = Traffic::start("traffic", Path::new(env!("CARGO_BIN_EXE_berth")));
    let rounds = rollouts().div_ceil(KINDS.len()).max(1);
    for round in 1..=rounds {
        t.round(round);
    }
    let seen = t.finish();

    t.joins.sort_unstable();
    eprintln!(
        "{} rollouts in {rounds} rounds; {} joins: median {} ms, max {} ms; addresses not handed back: {}",
        rounds * KINDS.len(),
        t.joins.len(),
        t.joins.get(t.joins.len() / 2).copied().unwrap_or_default(),
        t.joins.last().copied().unwrap_or_default(),
        t.moved,
    );
    // berth's networks have subnets of their own, so every address comes back.
    assert_eq!(t.moved, 0, "addresses not handed back");
    let mut failures = Vec::new();
    for (name, by_kind) in &seen {
        for (k, r) in by_kind {
            eprintln!(
                "{name:<24} {k:<7} {:>6} requests {:>3} failed ({:.2} per 1,000) {:?}",
                r.ok + r.fail,
                r.fail,
                per_thousand(r),
                r.bodies
            );
            assert!(r.ok > 0, "{name} {k}: no request succeeded");
            if *k != "shrink" {
                assert!(
                    r.bodies.contains_key("v1") && r.bodies.contains_key("v2"),
                    "{name} {k}: {:?}",
                    r.bodies
                );
            }
            // A client that does not retry is only counted: README ("Zero downtime")
            // says what it can still see of Docker's endpoint changes.
            if *name != "direct, no retry" && r.fail > 0 {
                failures.push(format!("{name} {k}: {} failed", r.fail));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:?}\nCaddy: {:#?}",
        t.proxy_errors()
    );
}
