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

/// What one contestant's run gave.
struct Outcome {
    seen: Seen,
    /// Wall time of each round's `berth apply`, in seconds.
    rounds: Vec<f64>,
    joins: Vec<u64>,
    moved: usize,
}

fn run(label: &str, bin: PathBuf, rounds: usize) -> Outcome {
    let mut t = Traffic::start(label, &bin);
    let mut times = Vec::new();
    for round in 1..=rounds {
        let started = std::time::Instant::now();
        t.round(round);
        times.push(started.elapsed().as_secs_f64());
        eprintln!("{label}: round {round}/{rounds}");
    }
    Outcome {
        seen: t.finish(),
        rounds: times,
        joins: std::mem::take(&mut t.joins),
        moved: t.moved,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The duration of one reconnect (inspect, disconnect, connect asking for the same
/// address, inspect) of a running container on a network berth made, with nothing else
/// going on: the moment a replica's interface is away when it joins or leaves its alias.
fn reconnect_alone(samples: usize) -> Vec<f64> {
    use berth::runtime::{DockerEngine, Engine};
    let p = support::Project::new("reconnect");
    let net = format!("{}_default", p.name());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = DockerEngine::connect().await.unwrap();
        let labels = [("berth.project".to_string(), p.name().to_string())].into();
        engine.create_network(&net, labels).await.unwrap();
        let name = p.child("c");
        support::docker([
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &net,
            &support::images().app_v1,
        ]);
        let mut ms = Vec::new();
        let before = engine.inspect(&name).await.unwrap().networks[0]
            .address
            .clone();
        for i in 0..samples {
            let aliases = if i % 2 == 0 {
                vec!["svc".to_string()]
            } else {
                Vec::new()
            };
            let t = std::time::Instant::now();
            let after = engine.reconnect(&net, &name, aliases).await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(after, before, "the address came back");
        }
        ms
    })
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
    let results: Vec<(&str, Outcome)> = thread::scope(|s| {
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
            for (_, o) in &results {
                let r = &o.seen.iter().find(|(c, _)| *c == client).unwrap().1[kind];
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
    let mut alone = reconnect_alone(40);
    alone.sort_by(f64::total_cmp);
    println!(
        "\none reconnect alone ({} samples): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        alone.len(),
        alone[alone.len() / 2],
        alone[0],
        alone[alone.len() - 1]
    );
    for (label, o) in &results {
        let mut rounds = o.rounds.clone();
        println!(
            "\n{label}: a round (every kind rolled out once) took {:.1} s median, {:.1}–{:.1} s",
            median(&mut rounds),
            rounds[0],
            rounds[rounds.len() - 1]
        );
        let mut j = o.joins.clone();
        j.sort_unstable();
        if !j.is_empty() {
            println!(
                "{label}: {} joins of the alias after the gate: median {} ms, min {} ms, max {} ms; addresses not handed back: {}",
                j.len(),
                j[j.len() / 2],
                j[0],
                j[j.len() - 1],
                o.moved
            );
        }
    }
}
