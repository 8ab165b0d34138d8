//! Resolving a 1,000-service compose file: `x-` anchors merged into every service with
//! `<<: *defaults`, `${VAR}` interpolation in image tags, ports, replicas and environment
//! from a committed `.env`, loaded through the library from memory (`load_tree` on a
//! `MemTree`) into a validated spec. Beside it, the same stack in format v1 (values written
//! out, anchors and merge keys too). Reports median, min and max per load and the ratio to
//! the 20 ms target, and checks the file is within the input limits.
//! `cargo bench --bench compose [-- ROUNDS]` (default 30).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use berth::model::limits::{Budget, MAX_LINE_BYTES, MAX_NODES, MAX_YAML_BYTES};
use berth::model::{load_tree, MemTree, Spec};
use common::{ms, Stats};

const SERVICES: usize = 1000;
const TARGET: Duration = Duration::from_millis(20);

/// Every tenth service publishes a host port (so it runs one replica, stop-first); the
/// others run `${R:-2}` replicas and expose theirs.
fn publishes(i: usize) -> bool {
    i.is_multiple_of(10)
}

const DOTENV: &str = "\
# committed defaults of the benchmark stack
TAG=sha-3f2c1e9d0b7a
REGISTRY=registry.example.com/team
LOG_LEVEL=info
REGION=eu-west-1
PORT_BASE=2
BIND=127.0.0.1
";

fn compose() -> String {
    let mut y = String::from(
        "name: bench

x-health: &health
  test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:8000/health\"]
  interval: 5s
  timeout: 2s
  retries: 3

x-env: &env
  LOG_LEVEL: ${LOG_LEVEL:-info}
  REGION: ${REGION}
  OTEL_ENDPOINT: http://collector:4317

x-defaults: &defaults
  restart: unless-stopped
  networks: [backend]
  stop_grace_period: 20s
  healthcheck: *health
  deploy:
    replicas: ${R:-2}
    update_config: { order: start-first, monitor: 5s }
    resources: { limits: { memory: 256m, cpus: \"0.5\" } }

x-web: &web
  <<: *defaults
  deploy:
    replicas: ${WEB_R:-1}
    update_config: { order: stop-first, monitor: 5s }
    resources: { limits: { memory: 256m, cpus: \"0.5\" } }

services:
",
    );
    for i in 0..SERVICES {
        if publishes(i) {
            y.push_str(&format!(
                "  s{i}:
    <<: *web
    image: ${{REGISTRY}}/web{i}:${{TAG}}
    ports: [\"${{BIND}}:${{PORT_BASE}}{i:04}:8000\"]
    environment:
      <<: *env
      SERVICE: s{i}
"
            ));
        } else {
            y.push_str(&format!(
                "  s{i}:
    <<: *defaults
    image: ${{REGISTRY}}/app{i}:${{TAG}}
    expose: [\"${{APP_PORT:-8000}}\"]
    environment:
      <<: *env
      SERVICE: s{i}
"
            ));
        }
    }
    y.push_str("\nnetworks:\n  backend: {}\n");
    y
}

/// The same stack in format v1, values written out. Format v1 has no `x-` keys, so the
/// first service's mapping is the anchor the others merge (`<<: *defaults`) and override.
fn v1() -> String {
    let mut y = String::from(
        "project: bench

services:
  s1: &defaults
    image: registry.example.com/team/app1:sha-3f2c1e9d0b7a
    networks: [backend]
    stop_grace: 20s
    health:
      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:8000/health\"]
      interval: 5s
      timeout: 2s
      retries: 3
    replicas: 2
    update: { order: start-first, monitor: 5s }
    resources: { memory: 256m, cpus: 0.5 }
    expose: [8000]
    env: &env
      LOG_LEVEL: info
      REGION: eu-west-1
      OTEL_ENDPOINT: http://collector:4317
      SERVICE: s1
",
    );
    for i in (0..SERVICES).filter(|i| *i != 1) {
        if publishes(i) {
            y.push_str(&format!(
                "  s{i}:
    <<: *defaults
    image: registry.example.com/team/web{i}:sha-3f2c1e9d0b7a
    replicas: 1
    update: {{ order: stop-first, monitor: 5s }}
    expose: []
    ports: [\"127.0.0.1:2{i:04}:8000\"]
    env:
      <<: *env
      SERVICE: s{i}
"
            ));
        } else {
            y.push_str(&format!(
                "  s{i}:
    <<: *defaults
    image: registry.example.com/team/app{i}:sha-3f2c1e9d0b7a
    env:
      <<: *env
      SERVICE: s{i}
"
            ));
        }
    }
    y.push_str("\nnetworks:\n  backend: {}\n");
    y
}

/// The nodes the limits charge for `text` (aliases counted as what they stand for).
fn nodes(text: &str) -> u64 {
    let mut budget = Budget::default();
    let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
    loop {
        let (ev, _) = parser.next_token().expect("parses");
        if ev == yaml_rust2::Event::StreamEnd {
            break;
        }
        budget.check(&ev).expect("within the limits");
    }
    budget.nodes()
}

fn load(tree: &MemTree, config: &str) -> Spec {
    let loaded = load_tree(black_box(tree), config).expect("readable");
    loaded
        .spec
        .unwrap_or_else(|| panic!("{config} is invalid: {}", loaded.diagnostics))
}

/// Loads each tree once per round, interleaved, so that both see the same load of the
/// machine; three rounds of warm-up first.
fn measure(trees: &[&MemTree], rounds: usize) -> Vec<Stats> {
    let mut times = vec![Vec::new(); trees.len()];
    for round in 0..rounds + 3 {
        for (tree, times) in trees.iter().zip(&mut times) {
            let started = Instant::now();
            black_box(load(tree, "bench"));
            if round >= 3 {
                times.push(started.elapsed());
            }
        }
    }
    times.into_iter().map(Stats::of).collect()
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let compose = compose();
    let v1 = v1();
    for (what, text) in [("compose", &compose), ("v1", &v1)] {
        let longest = text.lines().map(str::len).max().unwrap_or(0);
        assert!(text.len() <= MAX_YAML_BYTES, "{what}: {} bytes", text.len());
        assert!(
            longest <= MAX_LINE_BYTES,
            "{what}: a line of {longest} bytes"
        );
        let n = nodes(text);
        assert!(n <= MAX_NODES, "{what}: {n} nodes");
        println!(
            "{what}: {SERVICES} services, {} KiB of {} KiB, longest line {longest} B, {n} of {MAX_NODES} nodes",
            text.len() >> 10,
            MAX_YAML_BYTES >> 10,
        );
    }
    let compose_tree = MemTree::new()
        .with("bench/compose.yaml", compose.as_bytes())
        .with("bench/.env", DOTENV.as_bytes());
    let v1_tree = MemTree::new().with("bench/berth.yaml", v1.as_bytes());
    let c_spec = load(&compose_tree, "bench");
    let v_spec = load(&v1_tree, "bench");
    let measured = measure(&[&compose_tree, &v1_tree], rounds);
    let (c, v) = (&measured[0], &measured[1]);
    assert_eq!(c_spec.services.len(), SERVICES);
    assert_eq!(c_spec.services["s1"].replicas, 2);
    assert_eq!(c_spec.services["s10"].ports[0].host_port, 20010);
    assert_eq!(
        c_spec.services["s1"].image.to_string(),
        "registry.example.com/team/app1:sha-3f2c1e9d0b7a"
    );
    assert_eq!(
        c_spec.services, v_spec.services,
        "both files describe the same stack"
    );
    println!("{rounds} rounds, interleaved, per load into a validated spec:");
    println!("| file | median | min | max | median ÷ 20 ms target | × v1 |");
    println!("|---|---|---|---|---|---|");
    for (what, s) in [("compose", c), ("format v1", v)] {
        println!(
            "| {what} | {} | {} | {} | {:.2} | {:.2} |",
            ms(s.median, 2),
            ms(s.min, 2),
            ms(s.max, 2),
            s.median.as_secs_f64() / TARGET.as_secs_f64(),
            s.median.as_secs_f64() / v.median.as_secs_f64(),
        );
    }
}
