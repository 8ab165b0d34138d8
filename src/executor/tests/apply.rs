//! One apply across services: dependency order, what blocks and holds a service, the
//! cost of a resync, retries within an apply, and what `--concurrency` bounds.

use std::time::Duration;

use tokio::time::Instant;

use super::support::{desired, Bench, MemoryLedger};
use crate::executor::{ApplyControl, Outcome, RetryPolicy};
use crate::plan::Desired;
use crate::runtime::memory::{Behaviour, Op};

fn proxied(api_image: &str) -> Desired {
    desired(&format!(
        "project: shop
services:
  api:
    image: {api_image}
    update: {{ monitor: 2s, deadline: 10s }}
  proxy:
    image: caddy:2.7
    depends_on: [api]
    update: {{ monitor: 2s }}
"
    ))
}

fn outcome<'r>(r: &'r crate::executor::ApplyReport, service: &str) -> &'r Outcome {
    &r.services
        .iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("no {service} in {r:?}"))
        .outcome
}

fn at(b: &Bench, call: &str) -> Duration {
    b.engine
        .calls()
        .into_iter()
        .find(|c| c.to_string() == call)
        .unwrap_or_else(|| panic!("no `{call}` in {:?}", b.engine.actions()))
        .at
}

#[tokio::test(start_paused = true)]
async fn a_service_starts_only_once_what_it_depends_on_has_passed_its_gate() {
    let b = Bench::new();
    let r = b.executor.apply(&proxied("app:v1")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    // api: healthy at 1 s, monitored for 2 s.
    assert_eq!(at(&b, "create shop-api-1"), Duration::ZERO);
    assert_eq!(at(&b, "create shop-proxy-1"), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_failed_dependency_blocks_its_dependents() {
    let b = Bench::new();
    b.engine.behave("app:v1", Behaviour::unhealthy_after(1));
    let r = b.executor.apply(&proxied("app:v1")).await.unwrap();
    assert!(!r.converged());
    assert!(
        matches!(outcome(&r, "api"), Outcome::Failed { .. }),
        "{r:?}"
    );
    assert_eq!(*outcome(&r, "proxy"), Outcome::Blocked { by: "api".into() });
    assert!(b.engine.container("shop-proxy-1").is_none());
    assert_eq!(
        r.services
            .iter()
            .find(|s| s.service == "proxy")
            .unwrap()
            .error()
            .unwrap(),
        "depends on api, which did not converge"
    );
}

#[tokio::test(start_paused = true)]
async fn a_converged_project_costs_one_list_call_and_changes_nothing() {
    let b = Bench::new();
    b.executor.apply(&proxied("app:v1")).await.unwrap();
    b.engine.clear_calls();
    let r = b.executor.apply(&proxied("app:v1")).await.unwrap();
    assert!(r.services.iter().all(|s| s.outcome == Outcome::InSync));
    assert_eq!(b.engine.calls_of(&[Op::ListProject]), ["list shop"]);
    assert_eq!(b.engine.calls().len(), 1, "{:?}", b.engine.calls());
    assert!(b.ledger.deploys().len() == 1, "nothing new recorded");
}

#[tokio::test(start_paused = true)]
async fn a_held_service_is_not_touched_and_says_why() {
    let b = Bench::new();
    b.executor.apply(&proxied("app:v1")).await.unwrap();
    b.engine.clear_calls();
    let mut control = ApplyControl::default();
    control
        .exclude
        .insert("api".into(), "paused (berth resume to go on)".into());
    let r = b
        .executor
        .apply_with(&proxied("app:v2"), &control)
        .await
        .unwrap();
    assert_eq!(
        *outcome(&r, "api"),
        Outcome::Held {
            reason: "paused (berth resume to go on)".into()
        }
    );
    assert!(!b.engine.actions().iter().any(|a| a.contains("shop-api")));
    assert_eq!(b.engine.running()[0], "shop-api-1 app:v1");
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_is_retried_within_the_apply_after_the_backoff() {
    let b = Bench::with(
        |o| {
            o.retry = RetryPolicy {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(300),
                max_attempts: 3,
                jitter: 0.0,
            }
        },
        MemoryLedger::local(),
    );
    b.engine.fail_next(Op::Create, "shop-api-1", 2);
    let started = Instant::now();
    let r = b.executor.apply(&proxied("app:v1")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    let api = r.services.iter().find(|s| s.service == "api").unwrap();
    assert_eq!(api.attempts, 3);
    // 10 s, then 20 s, then the gate (3 s); then the proxy's gate (3 s).
    let creates: Vec<Duration> = b
        .engine
        .calls()
        .into_iter()
        .filter(|c| c.op == Op::Create && c.target == "shop-api-1")
        .map(|c| c.at)
        .collect();
    assert_eq!(
        creates,
        [
            Duration::ZERO,
            Duration::from_secs(10),
            Duration::from_secs(30)
        ]
    );
    assert_eq!(started.elapsed(), Duration::from_secs(36));
}

#[tokio::test(start_paused = true)]
async fn every_apply_that_changed_something_is_in_the_history() {
    let b = Bench::new();
    b.executor.apply(&proxied("app:v1")).await.unwrap();
    b.executor.apply(&proxied("app:v2")).await.unwrap();
    let deploys = b.ledger.deploys();
    assert_eq!(deploys.len(), 2);
    let api = &deploys[1].services[0];
    assert_eq!(
        (api.service.as_str(), api.from.as_deref(), api.to.as_deref()),
        ("api", Some("app:v1"), Some("app:v2"))
    );
    assert_eq!(api.outcome, "converged");
}

/// Three services that depend on nothing, each with a 3 s gate.
fn three(image: &str) -> Desired {
    desired(&format!(
        "project: shop
services:
  a:
    image: {image}
    update: {{ monitor: 2s }}
  b:
    image: {image}
    update: {{ monitor: 2s }}
  c:
    image: {image}
    update: {{ monitor: 2s }}
"
    ))
}

#[tokio::test(start_paused = true)]
async fn concurrency_bounds_engine_calls_not_health_waits() {
    let b = Bench::with(|o| o.concurrency = 1, MemoryLedger::local());
    let started = Instant::now();
    let r = b.executor.apply(&three("app:v1")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    // One call at a time, but nobody waits for another service's gate.
    for s in ["a", "b", "c"] {
        assert_eq!(at(&b, &format!("start shop-{s}-1")), Duration::ZERO);
    }
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn concurrency_bounds_pulls_in_flight() {
    let stack = desired(
        "project: shop
services:
  api:
    image: app:v1
    update: { monitor: 1s }
  web:
    image: web:v1
    update: { monitor: 1s }
",
    );
    for (limit, second_pull_done) in [(1, 10), (4, 5)] {
        let b = Bench::with(|o| o.concurrency = limit, MemoryLedger::local());
        b.engine
            .slow_pull("app:v1", Duration::from_secs(5))
            .slow_pull("web:v1", Duration::from_secs(5));
        b.executor.apply(&stack).await.unwrap();
        // Every image is here before any container is created.
        let last_create = [at(&b, "create shop-api-1"), at(&b, "create shop-web-1")];
        assert_eq!(
            last_create,
            [Duration::from_secs(second_pull_done); 2],
            "with --concurrency {limit}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn one_apply_looks_at_the_engine_once_before_and_once_after_whatever_the_services() {
    let b = Bench::new();
    b.executor.apply(&three("app:v1")).await.unwrap();
    assert_eq!(b.engine.count(Op::ListProject), 2);
    b.engine.clear_calls();
    let r = b.executor.apply(&three("app:v2")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    assert_eq!(b.engine.count(Op::ListProject), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_plans_again_from_a_fresh_look() {
    let b = Bench::with(
        |o| {
            o.retry = RetryPolicy {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(300),
                max_attempts: 2,
                jitter: 0.0,
            }
        },
        MemoryLedger::local(),
    );
    b.engine.fail_next(Op::Start, "shop-a-1", 1);
    let r = b.executor.apply(&three("app:v1")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    // Before, after, and one for the retry of `a`.
    assert_eq!(
        b.engine
            .calls()
            .into_iter()
            .filter(|c| c.op == Op::ListProject)
            .map(|c| c.at)
            .collect::<Vec<_>>(),
        [
            Duration::ZERO,
            Duration::from_secs(10),
            Duration::from_secs(13)
        ]
    );
    // The failed start's container was removed; the retry made a new one.
    assert_eq!(b.engine.count(Op::Create), 4);
}
