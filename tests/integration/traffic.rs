//! Zero downtime, counted: clients request every service without pause while berth rolls
//! it out in each way it can (start-first one slot and two slots at a time, stop-first,
//! scale down and up again), on the service's alias directly and through Caddy with the
//! reference configuration's proxy options.
//!
//! CI runs 12 rollouts; `BERTH_ROLLOUTS=N` runs about N (`BERTH_RELIABILITY=long`: 200).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{caddy_image, docker_stdout, images, wait_until, ClientLoop, Project};
use crate::{berth, Stack};

/// The services, one per kind of rollout.
const KINDS: [&str; 4] = ["one", "two", "stop", "shrink"];

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

fn stack(project: &str, image: &str, shrink: u32) -> String {
    format!(
        "project: {project}
services:
  one:
    image: {image}
    replicas: 3
    update: {{ order: start-first, parallelism: 1, monitor: 1s }}
  two:
    image: {image}
    replicas: 4
    update: {{ order: start-first, parallelism: 2, monitor: 1s }}
  stop:
    image: {image}
    replicas: 3
    update: {{ order: stop-first, monitor: 1s }}
  shrink:
    image: {v1}
    replicas: {shrink}
    update: {{ monitor: 1s }}
  proxy:
    image: {caddy}
    volumes: [\"./Caddyfile:/etc/caddy/Caddyfile:ro\"]
    update: {{ monitor: 1s }}
",
        v1 = images().app_v1,
        caddy = caddy_image(),
    )
}

/// The options of every `reverse_proxy` block of the reference Caddyfile
/// (`desired/files/Caddyfile`), so that the test proves the configuration users copy.
fn reference_proxy_options() -> String {
    let reference = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("desired/files/Caddyfile"),
    )
    .unwrap();
    let start = reference.find("reverse_proxy api:8000 {").unwrap();
    let block = &reference[start..];
    let open = block.find('{').unwrap();
    let close = block.find('}').unwrap();
    block[open + 1..close].trim().to_string()
}

fn caddyfile() -> String {
    let options = reference_proxy_options();
    let routes: String = KINDS
        .iter()
        .map(|k| {
            format!(
                "\thandle_path /{k}/* {{\n\t\treverse_proxy {k}:8000 {{\n\t\t\t{}\n\t\t}}\n\t}}\n",
                options.replace('\n', "\n\t")
            )
        })
        .collect();
    format!("{{\n\tauto_https off\n}}\n\n:8080 {{\n{routes}}}\n")
}

/// Runs `berth apply` with its default flags, logging JSON; returns the log.
fn apply(s: &Stack) -> String {
    let state = s.state_path().display().to_string();
    let dir = s.path().display().to_string();
    let r = berth([
        "--log-format",
        "json",
        "apply",
        "--file",
        &dir,
        "--state-dir",
        &state,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    r.stderr
}

/// The `duration_ms` of every `join` in a JSON log, and the count of addresses the
/// engine did not hand back.
fn joins(log: &str) -> (Vec<u64>, usize) {
    let mut durations = Vec::new();
    let mut moved = 0;
    for v in log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        match v["action"].as_str() {
            Some("join") => durations.extend(v["duration_ms"].as_u64()),
            Some("address-changed") => moved += 1,
            _ => {}
        }
    }
    (durations, moved)
}

fn running(p: &Project) -> BTreeMap<String, (usize, BTreeMap<String, usize>)> {
    let out = docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--format",
        "{{.Label \"berth.service\"}} {{.Label \"berth.image\"}}",
    ]);
    let mut by: BTreeMap<String, (usize, BTreeMap<String, usize>)> = BTreeMap::new();
    for (service, image) in out.lines().filter_map(|l| l.split_once(' ')) {
        let e = by.entry(service.to_string()).or_default();
        e.0 += 1;
        *e.1.entry(image.to_string()).or_default() += 1;
    }
    by
}

fn targets(t: &[(String, String)]) -> Vec<(&str, &str)> {
    t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn every_kind_of_rollout_keeps_requests_flowing_directly_and_through_caddy() {
    let p = Project::new("traffic");
    let img = images();
    let s = Stack::new();
    s.file("Caddyfile", &caddyfile());
    s.write(&stack(p.name(), &img.app_v1, 4));
    apply(&s);
    let net = format!("{}_default", p.name());
    let direct: Vec<(String, String)> = KINDS
        .iter()
        .map(|k| (k.to_string(), format!("http://{k}:8000/")))
        .collect();
    let proxied: Vec<(String, String)> = KINDS
        .iter()
        .map(|k| (k.to_string(), format!("http://proxy:8080/{k}/")))
        .collect();
    let clients: Vec<(&str, ClientLoop)> = vec![
        (
            "direct, one retry",
            p.client_rounds(&net, &targets(&direct), 1),
        ),
        (
            "direct, no retry",
            p.client_rounds(&net, &targets(&direct), 0),
        ),
        (
            "through Caddy, no retry",
            p.client_rounds(&net, &targets(&proxied), 0),
        ),
    ];
    for (name, c) in &clients {
        assert!(
            wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                KINDS.iter().all(|k| c.report_of(k).ok > 0)
            }),
            "{name}: {:?}",
            KINDS.map(|k| c.report_of(k).lines)
        );
    }

    let rounds = rollouts().div_ceil(KINDS.len()).max(1);
    let (mut durations, mut moved) = (Vec::new(), 0);
    for round in 1..=rounds {
        let (image, shrink) = if round % 2 == 1 {
            (&img.app_v2, 2)
        } else {
            (&img.app_v1, 4)
        };
        s.write(&stack(p.name(), image, shrink));
        let (d, m) = joins(&apply(&s));
        durations.extend(d);
        moved += m;
        let now = running(&p);
        for k in ["one", "two", "stop"] {
            assert_eq!(
                now[k].1.keys().collect::<Vec<_>>(),
                [image],
                "round {round}: {k}"
            );
        }
        assert_eq!(now["shrink"].0, shrink as usize, "round {round}");
    }
    // The last requests of each round finish before the counts are read.
    for (_, c) in &clients {
        let before: usize = KINDS.iter().map(|k| c.report_of(k).ok).sum();
        assert!(wait_until(
            Duration::from_secs(10),
            Duration::from_millis(100),
            || KINDS.iter().map(|k| c.report_of(k).ok).sum::<usize>() > before + KINDS.len()
        ));
        c.stop_only();
    }

    durations.sort_unstable();
    eprintln!(
        "{} rollouts in {rounds} rounds; {} joins: median {} ms, max {} ms; addresses not handed back: {moved}",
        rounds * KINDS.len(),
        durations.len(),
        durations.get(durations.len() / 2).copied().unwrap_or_default(),
        durations.last().copied().unwrap_or_default(),
    );
    // berth's networks have subnets of their own, so every address comes back.
    assert_eq!(moved, 0, "addresses not handed back");
    let mut failures = Vec::new();
    for (name, c) in &clients {
        for k in KINDS {
            let r = c.report_of(k);
            eprintln!(
                "{name:<24} {k:<7} {:>6} requests {:>3} failed ({:.2} per 1,000) {:?}",
                r.ok + r.fail,
                r.fail,
                1000.0 * r.fail as f64 / (r.ok + r.fail).max(1) as f64,
                r.bodies
            );
            assert!(r.ok > 0, "{name} {k}: no request succeeded");
            if k != "shrink" {
                assert!(
                    r.bodies.contains_key("v1") && r.bodies.contains_key("v2"),
                    "{name} {k}: {:?}",
                    r.bodies
                );
            }
            // A client that does not retry is only counted: it can still see what Docker's
            // endpoint teardown does to a request in flight (README, "Zero downtime").
            if *name != "direct, no retry" && r.fail > 0 {
                failures.push(format!("{name} {k}: {} failed", r.fail));
            }
        }
    }
    let proxy_errors: Vec<String> = String::from_utf8_lossy(
        &crate::support::docker(["logs", &format!("{}-proxy-1", p.name())]).stderr,
    )
    .lines()
    .filter(|l| l.contains("error"))
    .map(str::to_string)
    .collect();
    assert!(
        failures.is_empty(),
        "{failures:?}\nCaddy: {proxy_errors:#?}"
    );
}
