//! Progress events of a real rollout on the in-memory engine, and the board they fold
//! into.

use tokio::sync::mpsc;

use super::{Board, Event, Sink};
use crate::executor::tests::support::{api, Bench, MemoryLedger};

/// Every event, kind and subject only (times vary), in order.
fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::PullStarted { image } => format!("pull {image}"),
            Event::PullProgress { image, .. } => format!("pull-progress {image}"),
            Event::PullDone { image, ok } => format!("pulled {image} {ok}"),
            Event::ServiceStarted { service, image } => format!("start {service} {image}"),
            Event::ReplicaStarted {
                service,
                slot,
                container,
            } => format!("replica {service} {slot} {container}"),
            Event::Gate {
                container,
                monitor_ms,
                ..
            } => format!("gate {container} {monitor_ms}"),
            Event::Draining { containers, .. } => format!("draining {}", containers.join(",")),
            Event::SlotDone { service, slot } => format!("slot-done {service} {slot}"),
            Event::ServiceDone { service, outcome } => format!("done {service} {outcome}"),
        })
        .collect()
}

const UPDATE: &str = "    update: { monitor: 2s, deadline: 10s }\n";

#[tokio::test(start_paused = true)]
async fn a_start_first_rollout_reports_each_slot_its_gate_and_the_drain_in_order() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let b = Bench::with(|o| o.progress = Some(Sink::new(tx)), MemoryLedger::local());
    b.executor.apply(&api("app:v1", 2, UPDATE)).await.unwrap();
    let mut first = Vec::new();
    while let Ok(e) = rx.try_recv() {
        first.push(e);
    }
    b.executor.apply(&api("app:v2", 2, UPDATE)).await.unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    // The cold start: replicas under their own names, gated, no drain.
    assert_eq!(
        kinds(&first),
        [
            "pull app:v1",
            "pulled app:v1 true",
            "start api app:v1",
            "replica api 1 shop-api-1",
            "gate shop-api-1 2000",
            "replica api 2 shop-api-2",
            "gate shop-api-2 2000",
            "slot-done api 1",
            "slot-done api 2",
            "done api converged",
        ]
    );
    assert_eq!(
        kinds(&events),
        [
            "pull app:v2",
            "pulled app:v2 true",
            "start api app:v2",
            "replica api 1 shop-api-1-next",
            "gate shop-api-1-next 2000",
            "draining shop-api-1",
            "slot-done api 1",
            "replica api 2 shop-api-2-next",
            "gate shop-api-2-next 2000",
            "draining shop-api-2",
            "slot-done api 2",
            "done api converged",
        ]
    );
    // The gate's deadline is 10 s after it started, on the wall clock.
    let Some(Event::Gate { deadline_ms, .. }) =
        events.iter().find(|e| matches!(e, Event::Gate { .. }))
    else {
        panic!("no gate event");
    };
    let now = super::unix_ms(std::time::SystemTime::now());
    assert!(*deadline_ms > now && *deadline_ms <= now + 10_000);

    // The board, halfway: slot 1 done, slot 2 gating with slot 1's old replica gone.
    let mut board = Board::default();
    for e in &events[..9] {
        board.apply(e);
    }
    let s = &board.services["api"];
    assert_eq!(s.image, "app:v2");
    assert!(s.slots[&1].done);
    assert_eq!(s.slots[&2].container.as_deref(), Some("shop-api-2-next"));
    assert!(s.slots[&2].deadline_ms.is_some());
    assert!(!s.slots[&2].done);
    assert!(s.draining.is_empty());
    board.apply(&events[9]);
    assert_eq!(board.services["api"].draining, ["shop-api-2"]);
    // At the end nothing is under way.
    for e in &events[10..] {
        board.apply(e);
    }
    assert!(board.is_idle(), "{board:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_sink_an_apply_sends_nothing_and_a_gone_receiver_is_no_error() {
    let (tx, rx) = mpsc::unbounded_channel();
    drop(rx);
    let b = Bench::with(|o| o.progress = Some(Sink::new(tx)), MemoryLedger::local());
    let r = b.executor.apply(&api("app:v1", 1, UPDATE)).await.unwrap();
    assert!(r.converged());
}

#[test]
fn a_failed_pull_leaves_no_pull_on_the_board() {
    let mut board = Board::default();
    board.apply(&Event::PullStarted {
        image: "app:v3".into(),
    });
    board.apply(&Event::PullProgress {
        image: "app:v3".into(),
        layers_done: 1,
        layers: 3,
        bytes: 10,
        bytes_total: 30,
    });
    assert_eq!(board.pulls["app:v3"].layers, 3);
    board.apply(&Event::PullDone {
        image: "app:v3".into(),
        ok: false,
    });
    assert!(board.is_idle());
}
