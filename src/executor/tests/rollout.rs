//! Rollouts, order by order, and their rollbacks: the exact engine calls, in order, and
//! what runs afterwards.

use std::time::Duration;

use tokio::time::Instant;

use super::support::{api, Bench};
use crate::executor::{ApplyControl, ApplyReport, Outcome};
use crate::plan::Desired;
use crate::runtime::memory::{Behaviour, Op};
use crate::runtime::Engine;

const V1: &str = "app:v1";
const V2: &str = "app:v2";

/// `api` with two replicas (by default) and a 2 s monitor.
fn stack(image: &str, replicas: u32, update: &str) -> Desired {
    api(
        image,
        replicas,
        &format!("    update: {{ monitor: 2s, deadline: 10s{update} }}\n"),
    )
}

fn outcome(r: &ApplyReport) -> &Outcome {
    &r.services[0].outcome
}

/// A bench with `replicas` of v1 converged, the calls so far forgotten.
async fn on_v1(replicas: u32, update: &str) -> Bench {
    let b = Bench::new();
    let r = b
        .executor
        .apply(&stack(V1, replicas, update))
        .await
        .unwrap();
    assert_eq!(*outcome(&r), Outcome::Converged);
    b.engine.clear_calls();
    b
}

#[tokio::test(start_paused = true)]
async fn a_cold_start_creates_every_slot_at_once_in_the_alias() {
    let b = Bench::new();
    let t = Instant::now();
    let r = b.executor.apply(&stack(V1, 2, "")).await.unwrap();
    assert_eq!(*outcome(&r), Outcome::Converged);
    assert_eq!(
        b.engine.actions(),
        [
            "create-network shop_default",
            "pull app:v1",
            "create shop-api-1",
            "start shop-api-1",
            "create shop-api-2",
            "start shop-api-2",
        ]
    );
    // Healthy at 1 s, then 2 s of monitor: both slots together.
    assert_eq!(t.elapsed(), Duration::from_secs(3));
    let c = b.engine.container("shop-api-2").unwrap();
    assert_eq!(c.aliases["shop_default"], ["api"]);
    assert_eq!(r.observed["api"].healthy, 2);
}

#[tokio::test(start_paused = true)]
async fn start_first_starts_the_new_beside_the_old_and_stops_the_old_once_the_new_passed() {
    let b = on_v1(2, "").await;
    let r = b.executor.apply(&stack(V2, 2, "")).await.unwrap();
    assert_eq!(*outcome(&r), Outcome::Converged);
    assert_eq!(
        b.engine.actions(),
        [
            "pull app:v2",
            "create shop-api-1-next",
            "start shop-api-1-next",
            // Passed its gate: it joins the alias beside the old one...
            "reconnect shop-api-1-next shop_default [api]",
            "rename shop-api-1 shop-api-1-prev",
            "rename shop-api-1-next shop-api-1",
            // ...and only then does the old one leave, drain and stop.
            "reconnect shop-api-1-prev shop_default []",
            "stop shop-api-1-prev",
            "create shop-api-2-next",
            "start shop-api-2-next",
            "reconnect shop-api-2-next shop_default [api]",
            "rename shop-api-2 shop-api-2-prev",
            "rename shop-api-2-next shop-api-2",
            "reconnect shop-api-2-prev shop_default []",
            "stop shop-api-2-prev",
            // Kept for a rollback until every slot passed.
            "remove shop-api-1-prev",
            "remove shop-api-2-prev",
        ]
    );
    assert_eq!(
        b.engine.running(),
        ["shop-api-1 app:v2", "shop-api-2 app:v2"]
    );
}

#[tokio::test(start_paused = true)]
async fn stop_first_stops_the_old_before_the_new_starts() {
    let b = on_v1(1, ", order: stop-first").await;
    let r = b
        .executor
        .apply(&stack(V2, 1, ", order: stop-first"))
        .await
        .unwrap();
    assert_eq!(*outcome(&r), Outcome::Converged);
    assert_eq!(
        b.engine.actions(),
        [
            "pull app:v2",
            "rename shop-api-1 shop-api-1-prev",
            "reconnect shop-api-1-prev shop_default []",
            "stop shop-api-1-prev",
            "create shop-api-1-next",
            "start shop-api-1-next",
            "reconnect shop-api-1-next shop_default [api]",
            "rename shop-api-1-next shop-api-1",
            "remove shop-api-1-prev",
        ]
    );
    assert_eq!(b.engine.running(), ["shop-api-1 app:v2"]);
}

#[tokio::test(start_paused = true)]
async fn a_slot_that_fails_its_gate_rolls_back_the_slots_already_moved() {
    let b = on_v1(2, "").await;
    b.engine
        .behave_named("shop-api-2-next", Behaviour::never_healthy());
    let r = b.executor.apply(&stack(V2, 2, "")).await.unwrap();
    let Outcome::Failed {
        error,
        rolled_back,
        serving,
    } = outcome(&r)
    else {
        panic!("{r:?}");
    };
    assert!(*rolled_back);
    assert_eq!(
        error,
        "new replica shop-api-2-next was not healthy within 10s (health: Starting); the old replica kept serving"
    );
    assert_eq!(serving, "2 replicas of v1 still serving");
    assert_eq!(
        b.engine.running(),
        ["shop-api-1 app:v1", "shop-api-2 app:v1"]
    );
    assert!(
        b.engine.containers().len() == 2,
        "{:?}",
        b.engine.containers()
    );
    // The previous replica of slot 1 is back in the alias before the new one leaves.
    let tail: Vec<String> = b
        .engine
        .actions()
        .into_iter()
        .skip_while(|a| a != "remove shop-api-2-next")
        .collect();
    assert_eq!(
        tail,
        [
            "remove shop-api-2-next",
            "reconnect shop-api-1-prev shop_default []",
            "start shop-api-1-prev",
            "reconnect shop-api-1-prev shop_default [api]",
            "rename shop-api-1 shop-api-1-next",
            "rename shop-api-1-prev shop-api-1",
            "reconnect shop-api-1-next shop_default []",
            "stop shop-api-1-next",
            "remove shop-api-1-next",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollback_that_cannot_restart_the_previous_replica_says_so_and_keeps_the_new_one() {
    let b = on_v1(2, "").await;
    b.engine
        .behave_named("shop-api-2-next", Behaviour::never_healthy())
        .fail(Op::Start, "shop-api-1-prev");
    let r = b.executor.apply(&stack(V2, 2, "")).await.unwrap();
    let Outcome::Failed {
        error, rolled_back, ..
    } = outcome(&r)
    else {
        panic!("{r:?}");
    };
    assert!(
        !rolled_back,
        "a slot that could not be put back is no rollback"
    );
    assert!(
        error.contains("rolling back failed: shop-api-1: previous replica not started again"),
        "{error}"
    );
    // Slot 1 keeps the new replica rather than none; slot 2 never moved.
    assert_eq!(
        b.engine.running(),
        ["shop-api-1 app:v2", "shop-api-2 app:v1"]
    );
}

#[tokio::test(start_paused = true)]
async fn on_failure_pause_leaves_the_moved_slots_on_the_new_release() {
    let b = on_v1(2, ", on_failure: pause").await;
    b.engine
        .behave_named("shop-api-2-next", Behaviour::never_healthy());
    let r = b
        .executor
        .apply(&stack(V2, 2, ", on_failure: pause"))
        .await
        .unwrap();
    assert!(
        matches!(
            outcome(&r),
            Outcome::Failed {
                rolled_back: false,
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(
        b.engine.running(),
        ["shop-api-1 app:v2", "shop-api-2 app:v1"]
    );
    assert!(b.engine.container("shop-api-1-prev").is_none());
}

#[tokio::test(start_paused = true)]
async fn stop_first_puts_the_old_replica_back_when_the_new_one_fails() {
    let b = on_v1(1, ", order: stop-first").await;
    b.engine.behave(V2, Behaviour::unhealthy_after(2));
    let r = b
        .executor
        .apply(&stack(V2, 1, ", order: stop-first"))
        .await
        .unwrap();
    let Outcome::Failed { error, .. } = outcome(&r) else {
        panic!("{r:?}");
    };
    assert!(
        error.ends_with("; the old replica was restarted"),
        "{error}"
    );
    assert_eq!(b.engine.running(), ["shop-api-1 app:v1"]);
    assert_eq!(b.engine.containers().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_create_that_fails_stops_nothing() {
    let b = on_v1(2, "").await;
    b.engine.fail(Op::Create, "shop-api-1-next");
    let r = b.executor.apply(&stack(V2, 2, "")).await.unwrap();
    let Outcome::Failed { error, .. } = outcome(&r) else {
        panic!("{r:?}");
    };
    assert!(
        error.starts_with("create shop-api-1-next: docker: injected failure"),
        "{error}"
    );
    assert_eq!(
        b.engine.actions(),
        ["pull app:v2", "create shop-api-1-next (failed)"]
    );
    assert_eq!(
        b.engine.running(),
        ["shop-api-1 app:v1", "shop-api-2 app:v1"]
    );
}

#[tokio::test(start_paused = true)]
async fn an_image_that_cannot_be_pulled_leaves_the_running_version_untouched() {
    let b = on_v1(2, "").await;
    b.engine.fail(Op::Pull, V2);
    let r = b.executor.apply(&stack(V2, 2, "")).await.unwrap();
    let Outcome::Failed {
        error, rolled_back, ..
    } = outcome(&r)
    else {
        panic!("{r:?}");
    };
    assert_eq!(
        error,
        "pull app:v2: injected failure; nothing of this service was stopped"
    );
    assert!(!rolled_back);
    assert_eq!(b.engine.actions(), ["pull app:v2 (failed)"]);
}

#[tokio::test(start_paused = true)]
async fn a_name_held_by_a_stranger_is_reported_not_taken_over() {
    let b = Bench::new();
    b.engine.add_image("other:1");
    let stranger = crate::runtime::ContainerSpec {
        name: "shop-api-1".into(),
        image: "other:1".into(),
        ..Default::default()
    };
    b.engine.create(&stranger).await.unwrap();
    let r = b.executor.apply(&stack(V1, 1, "")).await.unwrap();
    let Outcome::Failed { error, .. } = outcome(&r) else {
        panic!("{r:?}");
    };
    assert_eq!(
        error,
        "container name shop-api-1 is taken by a container berth does not manage (or of another project); rename or remove it"
    );
    assert_eq!(b.engine.container("shop-api-1").unwrap().image, "other:1");
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_the_slot_in_flight_and_starts_no_other() {
    let b = on_v1(2, "").await;
    let control = ApplyControl::default();
    let cancel = control.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
    });
    let r = b
        .executor
        .apply_with(&stack(V2, 2, ""), &control)
        .await
        .unwrap();
    assert_eq!(
        *outcome(&r),
        Outcome::Held {
            reason: "berth is stopping; the rest of this rollout continues on its next start"
                .into()
        }
    );
    // Slot 1 finished its move (and keeps it: no rollback on shutdown); slot 2 waits
    // for the next start.
    assert_eq!(
        b.engine.running(),
        ["shop-api-1 app:v2", "shop-api-2 app:v1"]
    );
    assert_eq!(b.engine.count(Op::Create), 1);
    assert!(b.engine.container("shop-api-1-prev").is_none());
}

#[tokio::test(start_paused = true)]
async fn scaling_down_drains_then_stops_then_removes_the_extra_slots() {
    let b = on_v1(3, "").await;
    let r = b.executor.apply(&stack(V1, 1, "")).await.unwrap();
    assert_eq!(*outcome(&r), Outcome::Converged);
    let mut actions = b.engine.actions();
    actions.sort();
    assert_eq!(
        actions,
        [
            "reconnect shop-api-2 shop_default []",
            "reconnect shop-api-3 shop_default []",
            "remove shop-api-2",
            "remove shop-api-3",
            "stop shop-api-2",
            "stop shop-api-3",
        ]
    );
    let of_slot_2: Vec<String> = b
        .engine
        .actions()
        .into_iter()
        .filter(|a| a.contains("shop-api-2"))
        .collect();
    assert_eq!(
        of_slot_2,
        [
            "reconnect shop-api-2 shop_default []",
            "stop shop-api-2",
            "remove shop-api-2"
        ]
    );
    assert_eq!(b.engine.running(), ["shop-api-1 app:v1"]);
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_died_is_started_again_outside_the_alias_until_it_passes() {
    let b = on_v1(1, "").await;
    b.engine.crash("shop-api-1", 137).unwrap();
    let r = b.executor.apply(&stack(V1, 1, "")).await.unwrap();
    assert_eq!(*outcome(&r), Outcome::Converged);
    assert_eq!(r.services[0].action, crate::executor::Action::Restart);
    assert_eq!(
        b.engine.actions(),
        [
            "rename shop-api-1 shop-api-1-next",
            "reconnect shop-api-1-next shop_default []",
            "start shop-api-1-next",
            "reconnect shop-api-1-next shop_default [api]",
            "rename shop-api-1-next shop-api-1",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_gone_from_the_desired_state_is_removed_gracefully() {
    let b = Bench::new();
    let both = super::support::desired(
        "project: shop\nservices:\n  api:\n    image: app:v1\n  web:\n    image: web:v1\n",
    );
    b.executor.apply(&both).await.unwrap();
    b.engine.clear_calls();
    let only_api = super::support::desired("project: shop\nservices:\n  api:\n    image: app:v1\n");
    let r = b.executor.apply(&only_api).await.unwrap();
    assert_eq!(
        r.services
            .iter()
            .find(|s| s.service == "api")
            .unwrap()
            .outcome,
        Outcome::InSync
    );
    let web = r.services.iter().find(|s| s.service == "web").unwrap();
    assert_eq!(web.outcome_word(), "removed");
    assert_eq!(
        b.engine.actions(),
        [
            "reconnect shop-web-1 shop_default []",
            "stop shop-web-1",
            "remove shop-web-1",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn what_a_rollback_could_not_tidy_is_reported_with_the_slot_restored() {
    let b = on_v1(2, "").await;
    b.engine
        .behave_named("shop-api-2-next", Behaviour::never_healthy())
        .fail(Op::Rename, "shop-api-1-prev");
    let r = b.executor.apply(&stack(V2, 2, "")).await.unwrap();
    let Outcome::Failed {
        error, rolled_back, ..
    } = outcome(&r)
    else {
        panic!("{r:?}");
    };
    // The previous replica serves again (in the alias); only its name is left wrong,
    // which the next run repairs.
    assert!(*rolled_back);
    assert!(
        error.ends_with(
            "; left for the next run: rename to shop-api-1: docker: injected failure: rename shop-api-1-prev"
        ),
        "{error}"
    );
    let prev = b.engine.container("shop-api-1-prev").unwrap();
    assert_eq!(prev.image, V1);
    assert_eq!(prev.aliases["shop_default"], ["api"]);
}

/// A rollout cut between renaming the old replica `-prev` and the new one to its slot
/// leaves slot 1 with a leftover `-prev` and a lone serving `-next`; when the desired
/// state has moved on meanwhile, the `-next` is promoted and replaced start-first: the
/// service keeps a serving replica throughout.
#[tokio::test(start_paused = true)]
async fn a_lone_serving_replacement_of_an_older_spec_is_replaced_start_first_not_removed() {
    let b = on_v1(1, "").await;
    b.engine.fail_next(Op::Rename, "shop-api-1-next", 1);
    let r = b.executor.apply(&stack(V2, 1, "")).await.unwrap();
    assert!(outcome(&r).is_failed(), "{r:?}");
    let mut names: Vec<String> = b.engine.running();
    names.sort();
    assert_eq!(names, ["shop-api-1-next app:v2", "shop-api-1-prev app:v1"]);
    b.engine.clear_calls();
    let r = b.executor.apply(&stack("app:v3", 1, "")).await.unwrap();
    assert_eq!(*outcome(&r), Outcome::Converged, "{r:?}");
    let actions = b.engine.actions();
    let promoted = actions
        .iter()
        .position(|a| a == "rename shop-api-1-next shop-api-1")
        .unwrap_or_else(|| panic!("{actions:?}"));
    let created = actions
        .iter()
        .position(|a| a == "create shop-api-1-next")
        .unwrap_or_else(|| panic!("{actions:?}"));
    assert!(promoted < created, "{actions:?}");
    // The v2 replica leaves only after v3 passed its gate, by the usual start-first way.
    assert!(
        !actions.iter().any(|a| a == "remove shop-api-1-next"),
        "{actions:?}"
    );
    assert_eq!(b.engine.running(), ["shop-api-1 app:v3"]);
}
