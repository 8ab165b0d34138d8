//! The health gate on its own, against the memory engine's scripted health.

use std::time::Duration;

use tokio::time::Instant;

use crate::executor::gate::{GateFailure, RolloutGate};
use crate::runtime::memory::{Behaviour, MemoryEngine};
use crate::runtime::{ContainerSpec, Engine, HealthState};

/// A started container of an image that behaves so.
async fn started(engine: &MemoryEngine, behaviour: Behaviour, restart: bool) -> String {
    engine.add_image("app:v1").behave("app:v1", behaviour);
    let spec = ContainerSpec {
        name: "shop-api-1".into(),
        image: "app:v1".into(),
        restart,
        ..ContainerSpec::default()
    };
    let id = engine.create(&spec).await.unwrap();
    engine.start(&id).await.unwrap();
    id
}

fn gate(deadline: u64, monitor: u64) -> RolloutGate {
    RolloutGate {
        deadline: Duration::from_secs(deadline),
        monitor: Duration::from_secs(monitor),
        poll: Duration::from_millis(100),
    }
}

#[tokio::test(start_paused = true)]
async fn a_replica_passes_once_it_has_been_healthy_for_the_monitor_time() {
    let e = MemoryEngine::new();
    let id = started(&e, Behaviour::healthy_after(2), true).await;
    let t = Instant::now();
    gate(60, 5).pass(&e, &id).await.unwrap();
    // Healthy at its second check (2 s), then 5 s of monitor.
    assert_eq!(t.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_replica_never_healthy_fails_just_after_the_deadline() {
    let e = MemoryEngine::new();
    let id = started(&e, Behaviour::never_healthy(), true).await;
    let t = Instant::now();
    let err = gate(10, 5).pass(&e, &id).await.unwrap_err();
    assert_eq!(t.elapsed(), Duration::from_millis(10_100));
    assert!(
        matches!(
            err,
            GateFailure::Deadline {
                health: HealthState::Starting,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "was not healthy within 10s (health: Starting)"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_replica_fails_at_once_not_at_the_deadline() {
    let e = MemoryEngine::new();
    let id = started(&e, Behaviour::unhealthy_after(3), true).await;
    let t = Instant::now();
    let err = gate(120, 5).pass(&e, &id).await.unwrap_err();
    assert_eq!(t.elapsed(), Duration::from_secs(3));
    assert_eq!(
        err.to_string(),
        "became unhealthy; last check: check failed"
    );
}

#[tokio::test(start_paused = true)]
async fn the_monitor_catches_a_replica_that_turns_unhealthy_after_passing_its_check() {
    let e = MemoryEngine::new();
    let id = started(&e, Behaviour::healthy_then_unhealthy(1, 4), true).await;
    let t = Instant::now();
    let err = gate(120, 10).pass(&e, &id).await.unwrap_err();
    assert_eq!(t.elapsed(), Duration::from_secs(4));
    assert!(matches!(err, GateFailure::Unhealthy { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_exits_fails_with_its_code_and_last_output() {
    let e = MemoryEngine::new();
    let b = Behaviour::never_healthy()
        .exits_after(Duration::from_secs(2), 3)
        .output("booting\nno DATABASE_URL\n");
    let id = started(&e, b, false).await;
    let t = Instant::now();
    let err = gate(120, 5).pass(&e, &id).await.unwrap_err();
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(2) && took <= Duration::from_millis(2_100));
    assert_eq!(
        err.to_string(),
        "exited with code 3; last output: booting | no DATABASE_URL"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_by_the_restart_policy_during_the_gate_is_an_exit() {
    let e = MemoryEngine::new();
    let b = Behaviour::healthy_after(1).exits_after(Duration::from_secs(3), 137);
    let id = started(&e, b, true).await;
    let err = gate(120, 10).pass(&e, &id).await.unwrap_err();
    assert!(
        matches!(err, GateFailure::Exited { code: 137, .. }),
        "{err:?}"
    );
    // Docker brought it back: it runs, and the gate still refused it.
    assert_eq!(e.running(), ["shop-api-1 app:v1"]);
}

#[tokio::test(start_paused = true)]
async fn without_a_health_check_running_for_the_monitor_time_passes() {
    let e = MemoryEngine::new();
    let id = started(&e, Behaviour::no_check(), true).await;
    let t = Instant::now();
    gate(60, 5).pass(&e, &id).await.unwrap();
    assert_eq!(t.elapsed(), Duration::from_secs(5));
}
