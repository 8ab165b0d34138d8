//! Migrations: once per image, before any gated container starts, and never twice,
//! whatever crashes in between.

use std::time::Duration;

use super::support::{desired, Bench};
use crate::executor::Outcome;
use crate::ledger::MigrationOutcome;
use crate::plan::Desired;
use crate::runtime::memory::{Behaviour, Op};

const V1: &str = "app:v1";
const V2: &str = "app:v2";
const RUN_V1: &str = "shop-migrate-migrate-111111111111";
const RUN_V2: &str = "shop-migrate-migrate-222222222222";

/// `api` and `worker` on one image, and a migration from `api` that gates both.
fn stack(image: &str, timeout: &str) -> Desired {
    desired(&format!(
        "project: shop
services:
  api:
    image: {image}
    update: {{ monitor: 1s }}
  worker:
    image: {image}
    update: {{ monitor: 1s }}
migrations:
  migrate:
    from: api
    command: [\"alembic\", \"upgrade\", \"head\"]
    timeout: {timeout}
"
    ))
}

/// A bench whose images have known digests and whose migration takes 2 s.
fn bench(code: i64) -> Bench {
    let b = Bench::new();
    b.engine
        .set_digest(V1, &format!("sha256:{}", "1".repeat(64)))
        .set_digest(V2, &format!("sha256:{}", "2".repeat(64)))
        .behave_named(
            "shop-migrate-",
            Behaviour::no_check()
                .exits_after(Duration::from_secs(2), code)
                .output("upgrading\nboom"),
        );
    b
}

#[tokio::test(start_paused = true)]
async fn a_migration_runs_once_before_any_gated_container_starts() {
    let b = bench(0);
    let r = b.executor.apply(&stack(V1, "10m")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    let actions = b.engine.actions();
    assert_eq!(
        &actions[..5],
        [
            "create-network shop_default",
            "pull app:v1",
            &format!("create {RUN_V1}"),
            &format!("start {RUN_V1}"),
            // Removed only once the ledger holds the result.
            &format!("remove {RUN_V1}"),
        ]
    );
    // Both gated services waited for the one run.
    assert_eq!(b.engine.count(Op::Create), 3);
    let runs = b.ledger.migrations();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, MigrationOutcome::Succeeded);
    assert_eq!(runs[0].output, "upgrading\nboom");
    assert_eq!(r.migrations.len(), 1);

    // Not again for the same image: a change of something else moves no migration.
    b.engine.clear_calls();
    let r = b
        .executor
        .apply(&desired(
            "project: shop
services:
  api:
    image: app:v1
    replicas: 2
    update: { monitor: 1s }
  worker:
    image: app:v1
    update: { monitor: 1s }
migrations:
  migrate:
    from: api
    command: [\"alembic\", \"upgrade\", \"head\"]
",
        ))
        .await
        .unwrap();
    assert!(r.converged(), "{r:?}");
    // A replica serves already: the new slot joins the alias once it passed its gate.
    assert_eq!(
        b.engine.actions(),
        [
            "create shop-api-2-next",
            "start shop-api-2-next",
            "reconnect shop-api-2-next shop_default [api]",
            "rename shop-api-2-next shop-api-2",
        ]
    );
    assert!(r.migrations.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_leaves_the_gated_services_as_they_were() {
    let b = bench(0);
    b.executor.apply(&stack(V1, "10m")).await.unwrap();
    b.engine
        .behave_named(
            RUN_V2,
            Behaviour::no_check()
                .exits_after(Duration::from_secs(2), 1)
                .output("upgrading\nboom"),
        )
        .clear_calls();
    let r = b.executor.apply(&stack(V2, "10m")).await.unwrap();
    for s in &r.services {
        let Outcome::Failed { error, .. } = &s.outcome else {
            panic!("{s:?}");
        };
        assert_eq!(
            *error,
            format!(
                "migration migrate exited with code 1; last output: upgrading | boom; {} was not changed",
                s.service
            )
        );
    }
    assert_eq!(
        b.engine.running(),
        ["shop-api-1 app:v1", "shop-worker-1 app:v1"]
    );
    assert_eq!(b.engine.count(Op::Create), 1, "one run, shared by both");
    let failed: Vec<_> = b
        .ledger
        .migrations()
        .into_iter()
        .filter(|m| m.image == V2)
        .collect();
    assert_eq!(failed[0].outcome, MigrationOutcome::Failed);
    assert_eq!(failed[0].exit_code, 1);
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_recording_and_removing_the_run_does_not_run_it_again() {
    let b = bench(0);
    // The removal fails once: what a crash right after the ledger write leaves.
    b.engine.fail_next(Op::Remove, RUN_V1, 1);
    let r = b.executor.apply(&stack(V1, "10m")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    assert!(b.engine.container(RUN_V1).is_some(), "left behind");

    b.engine.clear_calls();
    let r = b.executor.apply(&stack(V1, "10m")).await.unwrap();
    assert!(r.converged(), "{r:?}");
    // The leftover is settled (its result is on record already) and removed; nothing
    // runs again.
    assert_eq!(b.engine.actions(), [format!("remove {RUN_V1}")]);
    assert!(b.engine.container(RUN_V1).is_none());
    let runs = b.ledger.migrations();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, MigrationOutcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_run_under_way_when_berth_died_is_awaited_never_doubled() {
    let b = bench(0);
    b.engine.behave_named(
        RUN_V1,
        Behaviour::no_check().exits_after(Duration::from_secs(30), 0),
    );
    // berth dies 5 s into the run: the apply is dropped mid-way.
    let desired = stack(V1, "10m");
    let cut = tokio::time::timeout(Duration::from_secs(5), b.executor.apply(&desired)).await;
    assert!(cut.is_err(), "the apply should still be waiting");
    assert!(b.ledger.migrations().is_empty());

    let started = tokio::time::Instant::now();
    let r = b.executor.apply(&desired).await.unwrap();
    assert!(r.converged(), "{r:?}");
    // The run that was under way finished at 30 s, and was recorded.
    assert!(started.elapsed() >= Duration::from_secs(25));
    assert_eq!(
        b.engine.calls_of(&[Op::Create]).first().unwrap(),
        &format!("create {RUN_V1}")
    );
    assert_eq!(
        b.engine
            .calls_of(&[Op::Create])
            .iter()
            .filter(|c| c.contains("migrate"))
            .count(),
        1
    );
    assert_eq!(
        b.ledger.migrations()[0].outcome,
        MigrationOutcome::Succeeded
    );
}

#[tokio::test(start_paused = true)]
async fn a_migration_past_its_timeout_is_killed_and_recorded_as_timed_out() {
    let b = bench(0);
    b.engine
        .behave_named(RUN_V1, Behaviour::no_check().output("waiting for a lock"));
    let started = tokio::time::Instant::now();
    let r = b.executor.apply(&stack(V1, "5s")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(5));
    let kill_at = b
        .engine
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Kill)
        .map(|c| c.at)
        .unwrap();
    // The timeout counts from the container's start as the engine recorded it (to the
    // millisecond, on the wall clock), so it may end a hair early.
    assert!(
        kill_at > Duration::from_millis(4_990) && kill_at <= Duration::from_secs(5),
        "{kill_at:?}"
    );
    let runs = b.ledger.migrations();
    assert_eq!(runs[0].outcome, MigrationOutcome::TimedOut);
    assert_eq!(runs[0].exit_code, 137);
    let Outcome::Failed { error, .. } = &r.services[0].outcome else {
        panic!("{r:?}");
    };
    assert!(
        error.starts_with("migration migrate timed out after"),
        "{error}"
    );
    assert!(b.engine.running().is_empty());
}
