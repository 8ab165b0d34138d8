//! A registry that cannot be reached: the pull is retried on the backoff schedule as
//! often as it takes, held against no release, and the release converges once the
//! registry answers again. A registry that answers "no" still counts.

use std::time::Duration;

use super::super::Trigger;
use super::support::Agent;
use crate::executor::tests::support::{api, MemoryLedger};
use crate::runtime::memory::{MemoryEngine, Op};

fn one(image: &str) -> crate::plan::Desired {
    api(image, 1, "    update: { monitor: 1s, deadline: 10s }\n")
}

#[tokio::test(start_paused = true)]
async fn a_registry_that_cannot_be_reached_is_not_counted_against_the_release() {
    let engine = MemoryEngine::new();
    engine.registry_down(true);
    // Three attempts (10 s doubling): held after 20 s if the pulls were counted.
    let a = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    a.trigger(Trigger::Control);
    // Six pulls: twice --max-attempts, over 10 + 20 + 40 + 80 + 160 s.
    a.until(Duration::from_secs(600), |a| a.engine.count(Op::Pull) >= 6)
        .await;
    {
        let st = a.status.read().await;
        let api = &st.failed_targets[0];
        assert_eq!((api.service.as_str(), api.attempts), ("api", 0));
        assert!(!api.given_up, "{:?}", st.failed_targets);
    }
    // The waits between pulls double to the backoff's cap: no hot loop.
    a.until(Duration::from_secs(600), |a| a.engine.count(Op::Pull) >= 7)
        .await;
    let at: Vec<Duration> = engine
        .calls()
        .iter()
        .filter(|c| c.op == Op::Pull)
        .map(|c| c.at)
        .collect();
    let waits: Vec<u64> = at.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(waits, [10, 20, 40, 80, 160, 300]);
    engine.registry_down(false);
    a.until(Duration::from_secs(600), |a| {
        a.engine.running() == ["shop-api-1 app:v1"]
            && a.status
                .try_read()
                .is_ok_and(|st| st.failed_targets.is_empty())
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_registry_that_refuses_the_image_is_counted_and_holds_the_release() {
    let engine = MemoryEngine::new();
    // Injected pull failures read as the registry's answer (not a transport failure).
    engine.fail(Op::Pull, "app:v1");
    let a = Agent::start(engine.clone(), MemoryLedger::local(), one("app:v1"));
    a.trigger(Trigger::Control);
    a.until(Duration::from_secs(600), |a| {
        a.status
            .try_read()
            .is_ok_and(|st| st.failed_targets.iter().any(|t| t.given_up))
    })
    .await;
    assert_eq!(engine.count(Op::Pull), 3);
    assert_eq!(a.status.read().await.failed_targets[0].attempts, 3);
}
