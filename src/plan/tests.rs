//! Planning as plain data: desired and observed in, actions with reasons out.

use super::*;
use crate::model::{load_tree, MemTree};
use crate::plan::Host;
use crate::runtime::{HealthState, ObservedContainer, Role, RunState};

const STACK: &str = "\
project: shop
services:
  api:
    image: &app registry.example.com/api:sha-1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    replicas: 3
    env: { API_KEY: hunter2-committed, LOG: json }
    health: { test: [\"CMD\", \"true\"] }
  worker:
    image: *app
    health: { test: [\"NONE\"] }
  proxy:
    image: caddy:2.7
    ports: [\"80:80\"]
    volumes: [\"./files/Caddyfile:/etc/caddy/Caddyfile:ro\"]
    health: { test: [\"NONE\"] }
";

fn desired_from(yaml: &str, caddyfile: &str) -> Desired {
    let tree = MemTree::new()
        .with("berth.yaml", yaml)
        .with("files/Caddyfile", caddyfile);
    let loaded = load_tree(&tree, "berth.yaml").unwrap();
    Desired::resolve(
        loaded
            .spec
            .unwrap_or_else(|| panic!("{}", loaded.diagnostics)),
        std::path::Path::new("/etc/berth/shop"),
    )
}

fn desired() -> Desired {
    desired_from(STACK, ":80 { respond ok }")
}

/// A running, healthy replica exactly as the desired state describes it.
pub(crate) fn replica(d: &Desired, service: &str, slot: u32) -> ObservedContainer {
    let s = &d.services[service];
    ObservedContainer {
        id: format!("id-{service}-{slot}"),
        name: format!("shop-{service}-{slot}"),
        service: service.into(),
        slot,
        role: Role::Replica,
        spec_hash: s.hash.clone(),
        parts: Some(s.parts_label()),
        commit: None,
        image: s.spec.image.full.clone(),
        migration: None,
        state: RunState::Running,
        health: HealthState::Healthy,
        created: 1,
    }
}

/// Every replica of `d`, running and healthy.
pub(crate) fn converged(d: &Desired) -> Vec<ObservedContainer> {
    d.services
        .values()
        .flat_map(|s| (1..=s.spec.replicas).map(|slot| replica(d, &s.spec.name, slot)))
        .collect()
}

fn service<'p>(p: &'p Plan, name: &str) -> &'p ServicePlan {
    p.services.iter().find(|s| s.service == name).unwrap()
}

#[test]
fn nothing_running_creates_every_service() {
    let d = desired();
    let p = plan(&d, &[]);
    let actions: Vec<(&str, Action)> = p
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("api", Action::Create),
            ("proxy", Action::Create),
            ("worker", Action::Create)
        ]
    );
    assert_eq!(service(&p, "api").reasons, ["3 replicas of sha-1111111"]);
    assert_eq!(
        service(&p, "api").steps,
        [
            Step::Create { slot: 1 },
            Step::Create { slot: 2 },
            Step::Create { slot: 3 }
        ]
    );
    assert!(!p.in_sync());
}

#[test]
fn matching_containers_are_in_sync() {
    let d = desired();
    let p = plan(&d, &converged(&d));
    assert!(p.in_sync(), "{p:?}");
    assert!(p.services.iter().all(|s| s.steps.is_empty()));
}

#[test]
fn a_new_image_replaces_with_the_short_shas() {
    let old = desired();
    let new = desired_from(
        &STACK.replace("sha-1111111aaa", "sha-2222222aaa"),
        ":80 { respond ok }",
    );
    let p = plan(&new, &converged(&old));
    let api = service(&p, "api");
    assert_eq!(api.action, Action::Replace);
    assert_eq!(api.reasons, ["image sha-1111111 → sha-2222222"]);
    assert_eq!(api.steps.len(), 3);
    assert_eq!(service(&p, "worker").action, Action::Replace);
    assert_eq!(service(&p, "proxy").action, Action::InSync);
}

#[test]
fn an_env_change_names_the_key_never_the_value() {
    let old = desired();
    let new = desired_from(
        &STACK.replace("hunter2-committed", "correct-horse"),
        ":80 { respond ok }",
    );
    let p = plan(&new, &converged(&old));
    let api = service(&p, "api");
    assert_eq!(api.reasons, ["env API_KEY changed"]);
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("hunter2") && !text.contains("correct-horse"));
    assert!(!old.services["api"].parts_label().contains("hunter2"));
}

#[test]
fn an_env_file_change_is_a_replace() {
    let d = desired();
    let base = d.services["api"].spec.clone();
    let a = DesiredService::new(
        base.clone(),
        EnvFile::Loaded(vec![("DATABASE_URL".into(), "postgres://a".into())]),
        &crate::plan::desired::ObjectNames::of(&d.spec),
    );
    let b = DesiredService::new(
        base,
        EnvFile::Loaded(vec![("DATABASE_URL".into(), "postgres://b".into())]),
        &crate::plan::desired::ObjectNames::of(&d.spec),
    );
    assert_ne!(a.hash, b.hash);
    assert_eq!(
        describe_change(&a.parts, &b.parts),
        ["env_file content changed"]
    );
    assert!(!a.parts_label().contains("postgres"));
}

#[test]
fn a_mounted_file_change_is_a_replace() {
    let old = desired();
    let new = desired_from(STACK, ":80 { respond changed }");
    let p = plan(&new, &converged(&old));
    assert_eq!(service(&p, "proxy").action, Action::Replace);
    assert_eq!(
        service(&p, "proxy").reasons,
        ["file files/Caddyfile changed"]
    );
    assert_eq!(service(&p, "api").action, Action::InSync);
}

#[test]
fn replicas_are_not_part_of_the_hash() {
    let a = desired();
    let b = desired_from(
        &STACK.replace("replicas: 3", "replicas: 1"),
        ":80 { respond ok }",
    );
    assert_eq!(a.services["api"].hash, b.services["api"].hash);
}

#[test]
fn scaling_down_removes_the_highest_slots_first() {
    let old = desired();
    let new = desired_from(
        &STACK.replace("replicas: 3", "replicas: 1"),
        ":80 { respond ok }",
    );
    let p = plan(&new, &converged(&old));
    let api = service(&p, "api");
    assert_eq!(api.action, Action::ScaleDown);
    assert_eq!(api.reasons, ["scale 3 → 1"]);
    assert_eq!(
        api.steps,
        [
            Step::Remove {
                slot: 3,
                container: "shop-api-3".into()
            },
            Step::Remove {
                slot: 2,
                container: "shop-api-2".into()
            },
        ]
    );
}

/// The container of `observed` named `name`.
fn named<'o>(observed: &'o mut [ObservedContainer], name: &str) -> &'o mut ObservedContainer {
    observed.iter_mut().find(|c| c.name == name).unwrap()
}

/// The stack with api scaled 3 → 1.
fn api_scaled_to_one() -> Desired {
    desired_from(
        &STACK.replace("replicas: 3", "replicas: 1"),
        ":80 { respond ok }",
    )
}

/// Asserts that scaling api to one replica removes only `removed`, and keeps `kept`
/// until the replica that stays is healthy.
fn assert_scale_down(observed: &[ObservedContainer], removed: (u32, &str), kept: &str) {
    let api = service(&plan(&api_scaled_to_one(), observed), "api").clone();
    assert_eq!(
        api.reasons,
        [
            "scale 3 → 1".to_string(),
            format!("{kept} kept until the replicas that stay are healthy")
        ]
    );
    assert_eq!(
        api.steps,
        [Step::Remove {
            slot: removed.0,
            container: removed.1.into()
        }]
    );
}

#[test]
fn a_scale_down_keeps_a_healthy_replica_while_the_one_that_stays_restarts() {
    // Replica 1 crashed and its restart is not healthy yet; 2 and 3 serve.
    let mut observed = converged(&desired());
    named(&mut observed, "shop-api-1").health = HealthState::Starting;
    assert_scale_down(&observed, (3, "shop-api-3"), "shop-api-2");
    // Once it is healthy, the kept one goes.
    let healthy: Vec<_> = converged(&desired())
        .into_iter()
        .filter(|c| c.name != "shop-api-3")
        .collect();
    let api = service(&plan(&api_scaled_to_one(), &healthy), "api").clone();
    assert_eq!(
        api.steps,
        [Step::Remove {
            slot: 2,
            container: "shop-api-2".into()
        }]
    );
}

/// Found by the fleet's chaos: right after an engine restart every replica is starting
/// again, its first health check yet to answer. A scale-down then removed them all but
/// the one kept, and the service had no healthy replica until that one was.
#[test]
fn a_scale_down_right_after_an_engine_restart_keeps_a_replica_whose_check_has_not_answered() {
    let mut observed = converged(&desired());
    for c in observed.iter_mut().filter(|c| c.service == "api") {
        c.health = HealthState::Starting;
    }
    assert_scale_down(&observed, (3, "shop-api-3"), "shop-api-2");
    // One that serves is kept before one that may.
    named(&mut observed, "shop-api-3").health = HealthState::Healthy;
    assert_scale_down(&observed, (2, "shop-api-2"), "shop-api-3");
}

/// A replica Docker is restarting says nothing of its health (its status is
/// "Restarting (1) …"): it does not serve, so it keeps no extra from going.
#[test]
fn a_replica_being_restarted_by_docker_does_not_count_as_serving() {
    let mut observed = converged(&desired());
    let one = named(&mut observed, "shop-api-1");
    one.state = RunState::Restarting;
    one.health = HealthState::None;
    assert_scale_down(&observed, (3, "shop-api-3"), "shop-api-2");
}

#[test]
fn a_missing_replica_is_scaled_up() {
    let d = desired();
    let observed: Vec<_> = converged(&d)
        .into_iter()
        .filter(|c| c.name != "shop-api-3")
        .collect();
    let p = plan(&d, &observed);
    let api = service(&p, "api");
    assert_eq!(api.action, Action::ScaleUp);
    assert_eq!(api.reasons, ["replica 3 missing"]);
    assert_eq!(api.steps, [Step::Create { slot: 3 }]);
}

#[test]
fn an_exited_replica_is_restarted() {
    let d = desired();
    let mut observed = converged(&d);
    let c = named(&mut observed, "shop-api-2");
    c.state = RunState::Exited(Some(1));
    let p = plan(&d, &observed);
    let api = service(&p, "api");
    assert_eq!(api.action, Action::Restart);
    assert_eq!(api.reasons, ["shop-api-2 exited with code 1"]);
    assert_eq!(
        api.steps,
        [Step::Restart {
            slot: 2,
            container: "shop-api-2".into()
        }]
    );
}

#[test]
fn a_service_gone_from_the_desired_state_is_removed() {
    let d = desired();
    let mut observed = converged(&d);
    let mut old = replica(&d, "worker", 1);
    old.service = "mailer".into();
    old.name = "shop-mailer-1".into();
    observed.push(old);
    let p = plan(&d, &observed);
    let mailer = service(&p, "mailer");
    assert_eq!(mailer.action, Action::Remove);
    assert_eq!(
        mailer.reasons,
        ["service is no longer in the desired state of this host"]
    );
    assert_eq!(
        mailer.steps,
        [Step::Remove {
            slot: 1,
            container: "shop-mailer-1".into()
        }]
    );
}

#[test]
fn a_leftover_replacement_beside_its_replica_is_removed() {
    let d = desired();
    let mut observed = converged(&d);
    let mut cand = replica(&d, "api", 1);
    cand.role = Role::Candidate;
    cand.name = "shop-api-1-next".into();
    observed.push(cand);
    let p = plan(&d, &observed);
    let api = service(&p, "api");
    assert_eq!(api.action, Action::ScaleDown);
    assert_eq!(
        api.steps,
        [Step::Remove {
            slot: 1,
            container: "shop-api-1-next".into()
        }]
    );
    assert_eq!(
        api.reasons,
        ["leftover replacement shop-api-1-next removed"]
    );
}

/// `d` converged, but slot 1 of api holds only its replacement `shop-api-1-next`
/// (last), of the same spec.
fn lone_next(d: &Desired) -> Vec<ObservedContainer> {
    let mut observed: Vec<_> = converged(d)
        .into_iter()
        .filter(|c| c.name != "shop-api-1")
        .collect();
    let mut cand = replica(d, "api", 1);
    cand.role = Role::Candidate;
    cand.name = "shop-api-1-next".into();
    observed.push(cand);
    observed
}

#[test]
fn a_healthy_replacement_alone_in_its_slot_is_adopted() {
    let d = desired();
    let p = plan(&d, &lone_next(&d));
    assert_eq!(
        service(&p, "api").steps,
        [Step::Adopt {
            slot: 1,
            container: "shop-api-1-next".into()
        }]
    );
}

/// A rollout cut short (an engine restart) left slot 1 with only its healthy `-next`,
/// and the desired state moved on (a revert) before the agent came back: the lone
/// replacement serves, so it is promoted and replaced start-first, never removed first
/// (that left the service without a healthy replica on the host).
#[test]
fn a_serving_replacement_of_another_spec_alone_in_its_slot_is_promoted_then_replaced() {
    let d = desired();
    let mut observed = lone_next(&d);
    let cand = observed.last_mut().unwrap();
    cand.spec_hash = "an-older-spec".into();
    cand.parts = None;
    let p = plan(&d, &observed);
    let api = service(&p, "api");
    assert_eq!(
        api.steps,
        [
            Step::Adopt {
                slot: 1,
                container: "shop-api-1-next".into()
            },
            Step::Replace {
                slot: 1,
                container: "shop-api-1-next".into()
            }
        ]
    );
    assert_eq!(
        api.reasons,
        [
            "replacement shop-api-1-next promoted to slot 1",
            "container spec changed"
        ]
    );
    // Not serving: started over.
    let mut observed = observed.clone();
    let cand = named(&mut observed, "shop-api-1-next");
    cand.health = HealthState::Unhealthy;
    let p = plan(&d, &observed);
    assert_eq!(
        service(&p, "api").steps,
        [
            Step::Remove {
                slot: 1,
                container: "shop-api-1-next".into()
            },
            Step::Create { slot: 1 }
        ]
    );
}

#[test]
fn duplicates_in_a_slot_keep_the_desired_one() {
    let old = desired();
    let new = desired_from(
        &STACK.replace("sha-1111111aaa", "sha-2222222aaa"),
        ":80 { respond ok }",
    );
    let mut observed = converged(&new);
    let mut stale = replica(&old, "worker", 1);
    stale.name = "shop-worker-1-old".into();
    observed.push(stale);
    let p = plan(&new, &observed);
    assert_eq!(
        service(&p, "worker").steps,
        [Step::Remove {
            slot: 1,
            container: "shop-worker-1-old".into()
        }]
    );
}

#[test]
fn a_host_resolves_only_what_is_placed_on_it() {
    let yaml = STACK.replace(
        "  worker:\n",
        "  worker:\n    placement: { hosts: [batch-1] }\n",
    ) + "migrations:\n  migrate:\n    from: worker\n    command: [\"true\"]\n";
    let tree = MemTree::new()
        .with("berth.yaml", yaml.as_str())
        .with("files/Caddyfile", ":80");
    let spec = load_tree(&tree, "berth.yaml").unwrap().spec.unwrap();
    let web = Desired::resolve_for(
        spec.clone(),
        &Host {
            name: "web-1".into(),
            labels: Default::default(),
            env_dir: None,
            keys: Default::default(),
        },
    );
    assert_eq!(web.services.keys().collect::<Vec<_>>(), ["api", "proxy"]);
    assert!(
        web.spec.migrations.is_empty(),
        "a migration runs where its `from` service runs"
    );
    let batch = Desired::resolve_for(
        spec,
        &Host {
            name: "batch-1".into(),
            labels: Default::default(),
            env_dir: None,
            keys: Default::default(),
        },
    );
    assert!(batch.services.contains_key("worker"));
    assert_eq!(batch.spec.migrations["migrate"].gates, ["api", "worker"]);
    // What runs of a service placed elsewhere is pruned on this host.
    let all = desired();
    let p = plan(&web, &converged(&all));
    assert_eq!(
        p.services
            .iter()
            .find(|s| s.service == "worker")
            .unwrap()
            .action,
        Action::Remove
    );
}

#[test]
fn the_fleet_target_is_the_release_not_the_hosts_env_file() {
    use crate::executor::fleet::fleet_target;
    let d = desired();
    let base = d.services["api"].spec.clone();
    let names = crate::plan::desired::ObjectNames::of(&d.spec);
    let on = |url: &str| {
        DesiredService::new(
            base.clone(),
            EnvFile::Loaded(vec![("DATABASE_URL".into(), url.into())]),
            &names,
        )
    };
    // Each host's own env file: same release.
    assert_eq!(
        fleet_target(&on("postgres://a")),
        fleet_target(&on("postgres://b"))
    );
    // A new image or committed env: another release.
    let mut bumped = base.clone();
    bumped.image = d.services["proxy"].spec.image.clone();
    assert_ne!(
        fleet_target(&DesiredService::new(bumped, EnvFile::None, &names)),
        fleet_target(&on("postgres://a"))
    );
    let mut env = base.clone();
    env.env.insert("LOG".into(), "text".into());
    assert_ne!(
        fleet_target(&DesiredService::new(env, EnvFile::None, &names)),
        fleet_target(&DesiredService::new(base, EnvFile::None, &names))
    );
}
