//! Requests failed during rollouts, per kind of rollout and per client (retrying once or
//! never, directly on the alias or through Caddy), for this build and, with
//! `BERTH_BEFORE=PATH`, another `berth` binary side by side: both run the same rounds at
//! the same time, each on its own project and network.
//!
//! `cargo bench --bench traffic [-- ROUNDS]` (default 10 rounds; a round is one rollout
//! of each kind). Not a test: it asserts only that every apply converged.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::thread;

use support::traffic::{per_thousand, Traffic, CLIENTS, KIND_NAMES};
use support::ClientReport;

type Seen = Vec<(
    &'static str,
    std::collections::BTreeMap<&'static str, ClientReport>,
)>;

fn run(label: &str, bin: PathBuf, rounds: usize) -> (Seen, Vec<u64>, usize) {
    let mut t = Traffic::start(label, &bin);
    for round in 1..=rounds {
        t.round(round);
        eprintln!("{label}: round {round}/{rounds}");
    }
    let seen = t.finish();
    (seen, std::mem::take(&mut t.joins), t.moved)
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    support::images();
    support::caddy_image();
    let mut contestants = vec![("this build", PathBuf::from(env!("CARGO_BIN_EXE_berth")))];
    if let Ok(before) = std::env::var("BERTH_BEFORE") {
        contestants.push(("before", PathBuf::from(before)));
    }
    let results: Vec<(&str, (Seen, Vec<u64>, usize))> = thread::scope(|s| {
        let handles: Vec<_> = contestants
            .iter()
            .map(|(label, bin)| {
                let bin = bin.clone();
                let name = if *label == "before" {
                    "tbefore"
                } else {
                    "tafter"
                };
                (*label, s.spawn(move || run(name, bin, rounds)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(l, h)| (l, h.join().unwrap()))
            .collect()
    });

    println!("{rounds} rounds, one rollout of each kind per round; failures per 1,000 requests (failed / requests)\n");
    let mut header = "| kind | client |".to_string();
    for (label, _) in &results {
        header.push_str(&format!(" {label} |"));
    }
    println!("{header}");
    println!("|---|---|{}", "---|".repeat(results.len()));
    for (kind, what) in KIND_NAMES {
        for (client, _, _) in CLIENTS {
            let mut row = format!("| {kind} ({what}) | {client} |");
            for (_, (seen, _, _)) in &results {
                let r = &seen.iter().find(|(c, _)| *c == client).unwrap().1[kind];
                row.push_str(&format!(
                    " {:.2} ({}/{}) |",
                    per_thousand(r),
                    r.fail,
                    r.ok + r.fail
                ));
            }
            println!("{row}");
        }
    }
    for (label, (_, joins, moved)) in &results {
        let mut j = joins.clone();
        j.sort_unstable();
        if !j.is_empty() {
            println!(
                "\n{label}: {} joins of the alias after the gate: median {} ms, min {} ms, max {} ms; addresses not handed back: {moved}",
                j.len(),
                j[j.len() / 2],
                j[0],
                j[j.len() - 1]
            );
        }
    }
}
