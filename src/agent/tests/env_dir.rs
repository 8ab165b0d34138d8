//! Host-side rotation over the memory engine: a change in the env directory, read again
//! when the directory's watch (or the resync) wakes the loop, replaces exactly the
//! services that read the changed file.

use std::time::Duration;

use super::super::Trigger;
use super::support::Agent;
use crate::executor::tests::support::MemoryLedger;
use crate::model::{load_tree, MemTree};
use crate::plan::{Desired, Host};
use crate::runtime::memory::MemoryEngine;

/// The ID of `service`'s one running container.
fn id_of(a: &Agent, service: &str) -> Option<String> {
    let running = a.engine.running();
    a.engine
        .containers()
        .into_iter()
        .find(|c| c.service() == service && running.contains(&c.name))
        .map(|c| c.id)
}

#[tokio::test(start_paused = true)]
async fn an_env_dir_change_rolls_exactly_the_services_that_read_the_changed_file() {
    let env = tempfile::tempdir().unwrap();
    std::fs::write(env.path().join("api.env"), "A=1\n").unwrap();
    std::fs::write(env.path().join("web.env"), "TOKEN=one-planted\n").unwrap();
    let mut yaml = String::from("project: shop\nservices:\n");
    for service in ["api", "web"] {
        yaml.push_str(&format!(
            "  {service}:\n    image: app:v1\n    env_file: {}\n    update: {{ monitor: 1s, deadline: 10s }}\n",
            env.path().join(format!("{service}.env")).display()
        ));
    }
    let loaded = load_tree(&MemTree::new().with("berth.yaml", yaml), "berth.yaml").unwrap();
    let host = Host {
        name: "h1".into(),
        env_dir: Some(env.path().to_path_buf()),
        ..Default::default()
    };
    let desired = Desired::resolve_for(loaded.spec.unwrap(), &host);
    let a = Agent::start_with(MemoryEngine::new(), MemoryLedger::local(), desired, |c| {
        c.host = host.clone()
    });
    a.trigger(Trigger::Control);
    a.until(Duration::from_secs(30), |a| {
        id_of(a, "api").is_some() && id_of(a, "web").is_some()
    })
    .await;
    let (api, web) = (id_of(&a, "api"), id_of(&a, "web"));

    std::fs::write(env.path().join("web.env"), "TOKEN=two-planted\n").unwrap();
    a.trigger(Trigger::EnvDir);
    a.until(Duration::from_secs(30), |a| {
        id_of(a, "web").is_some_and(|id| Some(id) != web)
    })
    .await;
    assert_eq!(id_of(&a, "api"), api, "api reads no changed file");
    // Nothing else is pending: another wake-up changes nothing.
    let created = a.engine.count(crate::runtime::memory::Op::Create);
    a.trigger(Trigger::Resync);
    let done = a.reconciles() + 1;
    a.until(Duration::from_secs(30), |a| a.reconciles() >= done).await;
    assert_eq!(a.engine.count(crate::runtime::memory::Op::Create), created);
    a.shutdown.cancel();
}
