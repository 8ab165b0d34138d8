//! The fleet's waits, through the ledger's coordination answers: the canary, the rollout
//! lease, another host's migration; and what ends a wait early.

use std::time::Duration;

use super::support::{api, Bench, MemoryLedger};
use crate::executor::{ApplyControl, Outcome};
use crate::ledger::StartedMigration;
use crate::runtime::memory::Op;

/// Long ago: a canary that has run the release healthy for ages.
const LONG_AGO: &str = "2020-01-01T00:00:00Z";

/// A bench for host `name` of a fleet.
fn host(name: &str, fleet_wait: Duration) -> Bench {
    Bench::with(
        |o| {
            o.host = Some(name.into());
            o.fleet_wait = fleet_wait;
        },
        MemoryLedger::shared(),
    )
}

/// A bench for host `h2` of a fleet.
fn host_h2(fleet_wait: Duration) -> Bench {
    host("h2", fleet_wait)
}

/// `api` on `app:v1`, gated by a migration.
fn migrating_api() -> crate::plan::Desired {
    super::support::desired(
        "project: shop
services:
  api:
    image: app:v1
migrations:
  migrate:
    from: api
    command: [\"migrate\"]
",
    )
}

fn canary_stack() -> crate::plan::Desired {
    api("app:v1", 1, "    update: { monitor: 1s, canary: h1 }\n")
}

fn first_create_at(b: &Bench) -> Option<Duration> {
    b.engine
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Create)
        .map(|c| c.at)
}

#[tokio::test(start_paused = true)]
async fn a_host_waits_for_the_canary_to_run_the_release_healthy() {
    let b = host_h2(Duration::from_secs(60));
    b.ledger
        .script_converged("h1", &[None, None, None, Some(LONG_AGO)]);
    let r = b.executor.apply(&canary_stack()).await.unwrap();
    assert_eq!(r.services[0].outcome, Outcome::Converged);
    // Three looks that found nothing, 500 ms apart.
    assert_eq!(first_create_at(&b), Some(Duration::from_millis(1_500)));
    let looks = b
        .ledger
        .calls()
        .into_iter()
        .filter(|c| c == "canary api on h1")
        .count();
    assert_eq!(looks, 4);
    // And h2 says that it runs the release now, once.
    assert_eq!(b.ledger.recorded_converged().len(), 1);
    b.executor.apply(&canary_stack()).await.unwrap();
    assert_eq!(b.ledger.recorded_converged().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_canary_that_does_not_come_leaves_the_service_waiting_not_failed() {
    let b = host_h2(Duration::from_secs(5));
    b.ledger.script_converged("h1", &[None]);
    let started = tokio::time::Instant::now();
    let r = b.executor.apply(&canary_stack()).await.unwrap();
    assert_eq!(
        r.services[0].outcome,
        Outcome::Waiting {
            reason: "waiting for canary host h1 to run this release healthy for 1s".into()
        }
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(b.engine.count(Op::Create), 0);
    assert!(!r.converged());
}

#[tokio::test(start_paused = true)]
async fn the_canary_host_itself_does_not_wait() {
    let b = Bench::with(|o| o.host = Some("h1".into()), MemoryLedger::shared());
    let r = b.executor.apply(&canary_stack()).await.unwrap();
    assert_eq!(r.services[0].outcome, Outcome::Converged);
    assert_eq!(first_create_at(&b), Some(Duration::ZERO));
    assert!(!b.ledger.calls().iter().any(|c| c.starts_with("canary")));
}

#[tokio::test(start_paused = true)]
async fn a_busy_lease_is_waited_for_then_held_and_given_back() {
    let b = host_h2(Duration::from_secs(60));
    b.ledger.script_busy(&[&["h1"], &["h1"]]);
    let stack = api("app:v1", 1, "    update: { monitor: 1s, max_hosts: 1 }\n");
    let r = b.executor.apply(&stack).await.unwrap();
    assert_eq!(r.services[0].outcome, Outcome::Converged);
    assert_eq!(first_create_at(&b), Some(Duration::from_millis(1_000)));
    let released = b.ledger.released();
    assert_eq!(released.len(), 1);
    assert_eq!(
        (released[0].service.as_str(), released[0].host.as_str()),
        ("api", "h2")
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_desired_state_ends_a_fleet_wait_at_once() {
    let b = host_h2(Duration::from_secs(600));
    b.ledger.script_converged("h1", &[None]);
    let control = ApplyControl::default();
    let supersede = control.supersede.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        supersede.cancel();
    });
    let started = tokio::time::Instant::now();
    let r = b
        .executor
        .apply_with(&canary_stack(), &control)
        .await
        .unwrap();
    assert!(started.elapsed() <= Duration::from_millis(3_500));
    let Outcome::Waiting { reason } = &r.services[0].outcome else {
        panic!("{r:?}");
    };
    assert!(
        reason.ends_with("looking at the desired state first, which may have changed"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_fleet_wait_holds_the_service() {
    let b = host_h2(Duration::from_secs(600));
    b.ledger.script_converged("h1", &[None]);
    let control = ApplyControl::default();
    let cancel = control.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel.cancel();
    });
    let r = b
        .executor
        .apply_with(&canary_stack(), &control)
        .await
        .unwrap();
    assert!(
        matches!(r.services[0].outcome, Outcome::Held { .. }),
        "{r:?}"
    );
    assert_eq!(b.engine.count(Op::Create), 0);
}

#[tokio::test(start_paused = true)]
async fn a_migration_started_by_another_host_is_awaited_and_never_run_here() {
    let b = host_h2(Duration::from_secs(3));
    let digest = format!("sha256:{}", "1".repeat(64));
    b.engine.set_digest("app:v1", &digest);
    b.ledger.claim_elsewhere(StartedMigration {
        project: "shop".into(),
        migration: "migrate".into(),
        digest: digest.clone(),
        host: "h1".into(),
        container: "shop-migrate-migrate-111111111111".into(),
        since: crate::ledger::now_rfc3339(),
    });
    let stack = migrating_api();
    let r = b.executor.apply(&stack).await.unwrap();
    let Outcome::Waiting { reason } = &r.services[0].outcome else {
        panic!("{r:?}");
    };
    assert!(
        reason.starts_with("waiting for the result of migration migrate on host h1"),
        "{reason}"
    );
    assert_eq!(b.engine.count(Op::Create), 0);
}

#[tokio::test(start_paused = true)]
async fn a_coordination_store_that_does_not_answer_starts_no_migration() {
    let b = host_h2(Duration::from_secs(3));
    b.ledger.set_down(true);
    let stack = migrating_api();
    let r = b.executor.apply(&stack).await.unwrap();
    let Outcome::Waiting { reason } = &r.services[0].outcome else {
        panic!("{r:?}");
    };
    assert!(
        reason.contains("no migration starts that cannot be recorded"),
        "{reason}"
    );
    assert_eq!(b.engine.count(Op::Create), 0);
}

/// A host's run that the engine stopped (exit 143) is recorded as failed, but its
/// container is left behind; another host claims the migration and runs it. When the
/// first host settles the leftover, it must not record the failure again over the other
/// host's claim: that freed the claim, and both hosts ran the migration at once.
#[tokio::test(start_paused = true)]
async fn a_leftover_run_settled_again_does_not_overwrite_another_hosts_claim() {
    use crate::runtime::memory::Behaviour;
    let b = host("h1", Duration::from_secs(3));
    let digest = format!("sha256:{}", "1".repeat(64));
    let run = "shop-migrate-migrate-111111111111";
    b.engine
        .set_digest("app:v1", &digest)
        .behave_named(
            run,
            Behaviour::no_check().exits_after(Duration::from_secs(2), 143),
        )
        .fail_next(Op::Remove, run, 1);
    let stack = migrating_api();
    let r = b.executor.apply(&stack).await.unwrap();
    assert!(r.services[0].outcome.is_failed(), "{r:?}");
    assert!(b.engine.container(run).is_some(), "left behind");
    // h2 claims the failed migration and runs it.
    let h2 = StartedMigration {
        project: "shop".into(),
        migration: "migrate".into(),
        digest: digest.clone(),
        host: "h2".into(),
        container: run.into(),
        since: crate::ledger::now_rfc3339(),
    };
    b.ledger.claim_elsewhere(h2.clone());
    b.engine.clear_calls();
    let r = b.executor.apply(&stack).await.unwrap();
    // The leftover goes; the failure is not recorded twice; h1 waits for h2's run.
    let Outcome::Waiting { reason } = &r.services[0].outcome else {
        panic!("{r:?}");
    };
    assert!(
        reason.starts_with("waiting for the result of migration migrate on host h2"),
        "{reason}"
    );
    assert_eq!(b.engine.actions(), [format!("remove {run}")]);
    let runs = b.ledger.migrations();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].attempts, 1);
}
