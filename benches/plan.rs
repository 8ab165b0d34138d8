//! Planning cost: `plan()` for N services × 3 replicas, all in sync (the steady state an
//! agent plans on every resync) and all to replace (a release of everything), and the
//! cost of hashing the desired state. `cargo bench --bench plan`.

use std::hint::black_box;

use berth::model::{load_tree, MemTree};
use berth::plan::{plan, Desired};
use berth::runtime::{HealthState, ObservedContainer, Role, RunState};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn desired(n: usize, tag: &str) -> Desired {
    let mut yaml = String::from("project: bench\nservices:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  s{i}:\n    image: registry.example.com/app{i}:{tag}\n    replicas: 3\n    env: {{ A: \"1\", B: \"2\" }}\n    health: {{ test: [\"CMD\", \"true\"] }}\n"
        ));
    }
    let tree = MemTree::new().with("berth.yaml", yaml);
    Desired::resolve(
        load_tree(&tree, "berth.yaml").unwrap().spec.unwrap(),
        std::path::Path::new("/etc/berth/bench"),
    )
}

fn observed(d: &Desired) -> Vec<ObservedContainer> {
    d.services
        .values()
        .flat_map(|s| {
            (1..=3).map(move |slot| ObservedContainer {
                id: format!("{}-{slot}", s.spec.name),
                name: format!("bench-{}-{slot}", s.spec.name),
                service: s.spec.name.clone(),
                slot,
                role: Role::Replica,
                spec_hash: s.hash.clone(),
                parts: Some(s.parts_label()),
                commit: None,
                image: s.spec.image.full.clone(),
                migration: None,
                state: RunState::Running,
                health: HealthState::Healthy,
                created: 1,
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    for n in [10usize, 100, 1000, 5000] {
        let d = desired(n, "v1");
        let running = observed(&d);
        let next = desired(n, "v2");
        group.bench_with_input(BenchmarkId::new("in_sync", n), &n, |b, _| {
            b.iter(|| plan(black_box(&d), black_box(&running)))
        });
        group.bench_with_input(BenchmarkId::new("replace_all", n), &n, |b, _| {
            b.iter(|| plan(black_box(&next), black_box(&running)))
        });
    }
    group.finish();
    let spec = desired(1000, "v1").spec;
    c.bench_function("resolve_and_hash/1000", |b| {
        b.iter(|| {
            Desired::resolve(
                black_box(spec.clone()),
                std::path::Path::new("/etc/berth/bench"),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
