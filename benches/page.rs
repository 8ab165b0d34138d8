//! The status page's cost: the HTML of `GET /` for 100 services (and 10, 1000) with a
//! rollout in flight and 40 deploys of history, rendered as the agent renders it for
//! each request and each live update. Its size is checked here too (under 200 KB for
//! 100 services). `cargo bench --bench page`.

use std::hint::black_box;

use berth::page::Sample;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("page");
    for n in [10usize, 100, 1000] {
        let sample = Sample::new(n, 40);
        let bytes = sample.render().len();
        eprintln!("page for {n} services: {bytes} bytes");
        if n == 100 {
            assert!(
                bytes < 200 * 1024,
                "the page for 100 services is {bytes} bytes"
            );
        }
        group.bench_with_input(BenchmarkId::new("render", n), &n, |b, _| {
            b.iter(|| black_box(&sample).render())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
