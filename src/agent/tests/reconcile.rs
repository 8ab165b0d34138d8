//! The loop end to end over the memory engine: what each trigger leads to, and when.

use std::time::Duration;

use super::super::{triggers, PauseState, Trigger};
use super::support::Agent;
use crate::executor::tests::support::{api, MemoryLedger};
use crate::runtime::memory::{Behaviour, MemoryEngine, Op};
use crate::runtime::RunState;

/// `api`, one replica of `image`, healthy at 1 s and monitored for 1 s.
fn one(image: &str) -> crate::plan::Desired {
    api(image, 1, "    update: { monitor: 1s, deadline: 10s }\n")
}

/// When each call of `op` on `target` was made.
fn times(engine: &MemoryEngine, op: Op, target: &str) -> Vec<Duration> {
    engine
        .calls()
        .into_iter()
        .filter(|c| c.op == op && c.target == target)
        .map(|c| c.at)
        .collect()
}

fn secs(s: &[f64]) -> Vec<Duration> {
    s.iter().map(|s| Duration::from_secs_f64(*s)).collect()
}

/// Asserts the gaps between `times` are `gaps` (seconds), each within the retry
/// policy's jitter.
fn assert_gaps_within_jitter(times: &[Duration], gaps: &[f64]) {
    assert_eq!(times.len(), gaps.len() + 1, "{times:?}");
    for (pair, gap) in times.windows(2).zip(gaps) {
        let got = (pair[1] - pair[0]).as_secs_f64();
        let spread = gap * crate::retry::JITTER + 0.001;
        assert!(
            (got - gap).abs() <= spread,
            "{got} s, not {gap} s ±10 %: {times:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn triggers_that_arrive_during_a_reconcile_fold_into_exactly_one_more() {
    let engine = MemoryEngine::new();
    engine.slow_pull("app:v1", Duration::from_secs(10));
    let a = Agent::start(engine, MemoryLedger::local(), one("app:v1"));
    a.trigger(Trigger::Control);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for t in [
        Trigger::DockerEvent,
        Trigger::DockerEvent,
        Trigger::Retry,
        Trigger::Control,
        Trigger::DockerEvent,
    ] {
        a.trigger(t);
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
    // The first reconcile (pull 10 s, gate 2 s), then one more for all five.
    assert_eq!(a.reconciles(), 2);
    assert_eq!(a.triggers_seen(Trigger::DockerEvent), 3);
    assert_eq!(a.triggers_seen(Trigger::Control), 2);
    let lists = times(&a.engine, Op::ListProject, "shop");
    assert_eq!(*lists.last().unwrap(), Duration::from_secs(12));
    assert_eq!(a.engine.count(Op::Create), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_release_backs_off_then_gives_up_and_no_event_brings_it_back() {
    let engine = MemoryEngine::new();
    engine.behave("app:v1", Behaviour::never_healthy());
    let a = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    // Every removal of a failed replica is a `destroy` event that wakes the loop.
    triggers::engine_events(
        std::sync::Arc::new(engine.clone()),
        a.triggers.clone(),
        a.shutdown.clone(),
    );
    a.trigger(Trigger::Control);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    // Each attempt fails its gate 10.1 s after it starts; then 10 s, then 20 s of
    // backoff; after the third, nothing until the desired state changes.
    assert_eq!(
        times(&engine, Op::Create, "shop-api-1"),
        secs(&[0.0, 20.1, 50.2])
    );
    assert!(a.triggers_seen(Trigger::DockerEvent) >= 3);
    let st = a.status.read().await;
    assert_eq!(st.failed_targets.len(), 1);
    assert!(st.failed_targets[0].given_up);
    assert_eq!(st.failed_targets[0].attempts, 3);
    assert!(engine.containers().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_engine_that_fails_is_retried_doubling_until_it_answers() {
    let engine = MemoryEngine::new();
    engine.fail(Op::ListProject, "shop");
    let a = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    a.trigger(Trigger::Control);
    // 1, 2, 4 and 8 s, each ±10 %: the fifth call by 16.5 s, the sixth not before 27.9 s.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let calls = times(&engine, Op::ListProject, "shop");
    assert_eq!(calls[0], Duration::ZERO);
    assert_gaps_within_jitter(&calls, &[1.0, 2.0, 4.0, 8.0]);
    assert!(a
        .status
        .read()
        .await
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("injected failure: list shop")));
    engine.heal(Op::ListProject);
    // The next retry, 16 s (±10 %) after the last, converges.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let created = times(&engine, Op::Create, "shop-api-1");
    assert_eq!(created.len(), 1);
    assert_gaps_within_jitter(&[*calls.last().unwrap(), created[0]], &[16.0]);
    assert_eq!(engine.running(), ["shop-api-1 app:v1"]);
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_dies_is_put_back_as_soon_as_the_engine_says_so() {
    let engine = MemoryEngine::new();
    let a = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    triggers::engine_events(
        std::sync::Arc::new(engine.clone()),
        a.triggers.clone(),
        a.shutdown.clone(),
    );
    a.trigger(Trigger::Control);
    tokio::time::sleep(Duration::from_secs(10)).await;
    engine.crash("shop-api-1", 137).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        times(&engine, Op::Start, "shop-api-1-next"),
        secs(&[10.0]),
        "restarted on the die event, not on a resync"
    );
    assert_eq!(engine.running(), ["shop-api-1 app:v1"]);
}

#[tokio::test(start_paused = true)]
async fn a_paused_service_is_not_healed() {
    let engine = MemoryEngine::new();
    let a = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    triggers::engine_events(
        std::sync::Arc::new(engine.clone()),
        a.triggers.clone(),
        a.shutdown.clone(),
    );
    a.trigger(Trigger::Control);
    a.until(Duration::from_secs(10), |a| a.reconciles() == 1)
        .await;
    let mut pause = PauseState::default();
    pause.pause(Some("api"));
    pause.save(a.dir.path()).unwrap();
    engine.clear_calls();
    engine.crash("shop-api-1", 137).unwrap();
    // The die event wakes the loop; the reconcile it leads to leaves api alone.
    a.until(Duration::from_secs(10), |a| a.reconciles() == 2)
        .await;
    assert_eq!(
        engine.container("shop-api-1").unwrap().state,
        RunState::Exited(Some(137))
    );
    assert!(engine.actions().is_empty(), "{:?}", engine.actions());
    assert!(a.status.read().await.services["api"].paused);
}

#[tokio::test(start_paused = true)]
async fn without_the_coordination_store_nothing_changes_until_it_answers() {
    let engine = MemoryEngine::new();
    let ledger = MemoryLedger::shared();
    ledger.set_down(true);
    let a = Agent::start(engine.clone(), ledger, one("app:v1"));
    a.trigger(Trigger::Control);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(engine.calls().is_empty(), "{:?}", engine.calls());
    assert!(a
        .status
        .read()
        .await
        .degraded
        .as_deref()
        .is_some_and(|d| d.starts_with("the coordination store does not answer")));
    let checks = a.ledger.calls().iter().filter(|c| *c == "check").count();
    assert_eq!(checks, 3, "at 0 s, 1 s and 3 s");
    a.ledger.set_down(false);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(engine.running(), ["shop-api-1 app:v1"]);
    assert!(a.status.read().await.degraded.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_trigger_that_may_bring_a_new_commit_ends_a_wait_for_the_canary() {
    let engine = MemoryEngine::new();
    let ledger = MemoryLedger::shared();
    ledger.script_converged("h0", &[None]);
    let canary = api("app:v1", 1, "    update: { monitor: 1s, canary: h0 }\n");
    let a = Agent::start(engine.clone(), ledger, canary);
    a.trigger(Trigger::Control);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(a.reconciles(), 0, "still waiting for the canary");
    a.trigger(Trigger::Control);
    a.until(Duration::from_secs(1), |a| a.reconciles() == 1)
        .await;
    let st = a.status.read().await;
    assert_eq!(st.last_reconcile_ms, Some(5_000));
    assert!(
        st.services["api"]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("looking at the desired state first")),
        "{:?}",
        st.services["api"]
    );
    assert_eq!(engine.count(Op::Create), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_the_slot_in_flight_finish_and_starts_nothing_more() {
    let engine = MemoryEngine::new();
    let a = Agent::start(engine.clone(), MemoryLedger::local(), {
        api("app:v1", 2, "    update: { monitor: 1s }\n")
    });
    a.trigger(Trigger::Control);
    a.until(Duration::from_secs(10), |a| a.reconciles() == 1)
        .await;
    a.shutdown.cancel();
    a.task.await.unwrap();
    // A second loop, as after a restart, with a new release.
    let b = Agent::start(
        engine.clone(),
        MemoryLedger::local(),
        api("app:v2", 2, "    update: { monitor: 1s }\n"),
    );
    b.trigger(Trigger::Control);
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.shutdown.cancel();
    // The loop ends once the slot in flight has moved.
    tokio::time::timeout(Duration::from_secs(60), b.task)
        .await
        .expect("the loop ends")
        .unwrap();
    assert_eq!(engine.running(), ["shop-api-1 app:v2", "shop-api-2 app:v1"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(engine.count(Op::Create), 3, "nothing after the stop");
    assert!(
        b.triggers.send(Trigger::Control).is_err(),
        "the loop is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn an_event_stream_that_breaks_is_opened_again_and_keeps_waking_the_loop() {
    let engine = MemoryEngine::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = tokio_util::sync::CancellationToken::new();
    triggers::engine_events(std::sync::Arc::new(engine.clone()), tx, stop.clone());
    tokio::time::sleep(Duration::from_millis(10)).await;
    engine.break_events();
    // Broken at 10 ms, opened again half a second (±10 %) later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let opened = times(&engine, Op::Events, "*");
    assert_eq!(opened[0], Duration::ZERO);
    assert_gaps_within_jitter(&[Duration::from_millis(10), opened[1]], &[0.5]);
    assert_eq!(opened.len(), 2);
    engine.add_image("app:v1");
    let spec = crate::runtime::ContainerSpec {
        name: "a".into(),
        image: "app:v1".into(),
        ..Default::default()
    };
    let id = crate::runtime::Engine::create(&engine, &spec)
        .await
        .unwrap();
    crate::runtime::Engine::remove(&engine, &id).await.unwrap();
    assert_eq!(rx.recv().await, Some(Trigger::DockerEvent));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_deploy_is_announced_with_the_images_before_and_after_and_its_commit() {
    let engine = MemoryEngine::new();
    let first = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    first.trigger(Trigger::Control);
    first
        .until(Duration::from_secs(10), |a| a.reconciles() == 1)
        .await;
    first.shutdown.cancel();
    first.task.await.unwrap();

    // The next release, with a notifier that hands over what it would send.
    let (notifier, mut events) =
        crate::notify::Notifier::recording(Some("git@github.com:acme/shop.git"));
    let b = Agent::start_with(engine.clone(), MemoryLedger::local(), one("app:v2"), |c| {
        c.notifier = notifier;
    });
    b.trigger(Trigger::Control);
    b.until(Duration::from_secs(60), |a| a.reconciles() == 1)
        .await;
    let e = events.try_recv().expect("one event");
    assert_eq!(e.kind, crate::notify::EventKind::Deployed);
    assert_eq!(
        (e.project.as_str(), e.service.as_deref(), e.host.as_str()),
        ("shop", Some("api"), "h1")
    );
    assert_eq!(e.images_before, ["app:v1"]);
    assert_eq!(e.image.as_deref(), Some("app:v2"));
    let sha = "c0ffee0000000000000000000000000000000000";
    assert_eq!(e.commit.as_deref(), Some(sha));
    assert_eq!(e.commit_summary.as_deref(), Some("release"));
    assert_eq!(e.commit_author.as_deref(), Some("ops"));
    assert_eq!(
        e.commit_url.as_deref(),
        Some(format!("https://github.com/acme/shop/commit/{sha}").as_str())
    );
    // Announced once per commit and service: a resync of the converged service is not.
    b.trigger(Trigger::Control);
    b.until(Duration::from_secs(60), |a| a.reconciles() == 2)
        .await;
    assert!(events.try_recv().is_err());
}
