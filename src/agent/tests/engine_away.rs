//! An engine that goes away (dockerd stopped or restarting) and comes back: reported at
//! once, held against no release, converged when it answers.

use std::sync::Arc;
use std::time::Duration;

use super::super::{triggers, Trigger};
use super::support::Agent;
use crate::executor::tests::support::{api, MemoryLedger};
use crate::runtime::memory::{MemoryEngine, Op};

fn one(image: &str) -> crate::plan::Desired {
    api(image, 1, "    update: { monitor: 1s, deadline: 10s }\n")
}

fn engine_down(a: &Agent) -> Option<String> {
    a.status.try_read().ok()?.engine_down.clone()
}

fn engine_up(a: &Agent) -> i64 {
    a.metrics.engine_up.get()
}

#[tokio::test(start_paused = true)]
async fn a_service_failed_by_an_engine_gone_away_is_not_counted_against_its_release() {
    let engine = MemoryEngine::new();
    // The engine goes away between the create and the start: the start fails, and so
    // does the question whether the engine answers at all.
    engine.fail(Op::Start, "*").fail(Op::ListManaged, "*");
    let a = Agent::start_with(engine.clone(), MemoryLedger::local(), one("app:v1"), |c| {
        c.retry.max_attempts = 1;
    });
    a.trigger(Trigger::Control);
    a.until(Duration::from_secs(5), |a| engine_down(a).is_some())
        .await;
    assert_eq!(engine_up(&a), 0);
    {
        let st = a.status.read().await;
        assert!(st.failed_targets.is_empty(), "{:?}", st.failed_targets);
        let why = st.unhealthy_because().unwrap_or_default();
        assert!(
            why.starts_with("the Docker engine does not answer: "),
            "{why}"
        );
    }
    engine.heal(Op::Start).heal(Op::ListManaged);
    // One attempt only, and it is still there: the release converges.
    a.until(Duration::from_secs(60), |a| {
        a.engine.running() == ["shop-api-1 app:v1"]
    })
    .await;
    a.until(Duration::from_secs(5), |a| engine_down(a).is_none())
        .await;
    assert_eq!(engine_up(&a), 1);
    assert!(a.status.read().await.failed_targets.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_idle_agent_reports_the_engine_gone_as_soon_as_its_event_stream_breaks() {
    let engine = MemoryEngine::new();
    let a = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    triggers::engine_events(
        Arc::new(engine.clone()),
        a.triggers.clone(),
        a.shutdown.clone(),
    );
    a.trigger(Trigger::Control);
    a.until(Duration::from_secs(30), |a| a.reconciles() == 1)
        .await;
    assert_eq!(engine.running(), ["shop-api-1 app:v1"]);
    // Idle: no resync for an hour. The engine stops.
    engine
        .fail(Op::ListProject, "shop")
        .fail(Op::ListManaged, "*");
    let broken = tokio::time::Instant::now();
    engine.break_events();
    a.until(Duration::from_secs(5), |a| engine_down(a).is_some())
        .await;
    assert!(
        broken.elapsed() < Duration::from_millis(100),
        "{:?}",
        broken.elapsed()
    );
    assert_eq!(engine_up(&a), 0);
    // It answers again: the stream's return wakes the loop, which reports it back
    // without waiting out its own backoff.
    engine.heal(Op::ListProject).heal(Op::ListManaged);
    let back = tokio::time::Instant::now();
    a.until(Duration::from_secs(60), |a| engine_down(a).is_none())
        .await;
    assert!(
        back.elapsed() <= Duration::from_secs(2),
        "{:?}",
        back.elapsed()
    );
    assert_eq!(engine_up(&a), 1);
    assert_eq!(engine.running(), ["shop-api-1 app:v1"]);
    assert_eq!(engine.count(Op::Create), 1);
}
