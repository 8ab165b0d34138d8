//! A status and a history of a given size, as an agent would hold them: what the
//! page's unit tests and its benchmark (`benches/page.rs`) render.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::executor::progress::{Board, Event};
use crate::ledger::{DeployRecord, MigrationOutcome, MigrationRun, ServiceDeploy};
use crate::source::CommitInfo;
use crate::status::{AgentStatus, LastDeploy, ServiceStatus};

/// One service in sync.
pub(crate) fn service(
    image: &str,
    running: &[(&str, u32)],
    healthy: u32,
    desired: u32,
) -> ServiceStatus {
    ServiceStatus {
        desired_image: Some(image.into()),
        running_images: running.iter().map(|(i, n)| (i.to_string(), *n)).collect(),
        desired,
        running: running.iter().map(|(_, n)| n).sum(),
        healthy,
        failed_target: None,
        last_deploy: Some(LastDeploy {
            at: "2026-11-29T21:00:00Z".into(),
            commit: "0123456789abcdef0123".into(),
            outcome: "converged".into(),
        }),
        last_outcome: "in-sync".into(),
        last_error: None,
        paused: false,
        canary: None,
    }
}

/// A status like the agent's after a reconcile, `n` services in sync.
pub(crate) fn status(n: usize) -> AgentStatus {
    let mut services = BTreeMap::new();
    for i in 0..n {
        services.insert(
            format!("svc-{i:03}"),
            service(
                "registry.example/app:v2",
                &[("registry.example/app:v2", 2)],
                2,
                2,
            ),
        );
    }
    AgentStatus {
        host: crate::plan::Host {
            name: "web-1".into(),
            labels: BTreeMap::new(),
            env_dir: None,
            keys: Default::default(),
        },
        repo: "https://github.com/acme/deploy.git".into(),
        branch: "main".into(),
        applied_commit: Some(CommitInfo {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            summary: "Roll api to v2".into(),
            author: "Ada".into(),
        }),
        head: Some("0123456789abcdef0123456789abcdef01234567".into()),
        last_error: None,
        last_reconcile: Some("2026-11-29T21:00:01Z".into()),
        last_reconcile_ms: Some(840),
        fetch_failures: 0,
        services,
        failed_targets: Vec::new(),
        paused: false,
        coordination: "local (sqlite)".into(),
        degraded: None,
        engine_down: None,
        started_migrations: Vec::new(),
        rollout: Board::default(),
        last_reconcile_at: None,
        stale_after: Duration::from_secs(60),
    }
}

/// `n` deploys, each of every service in `services`.
pub(crate) fn deploys(n: i64, services: &[&str]) -> Vec<DeployRecord> {
    (1..=n)
        .rev()
        .map(|id| DeployRecord {
            id,
            project: "shop".into(),
            host: Some("web-1".into()),
            commit: Some(format!("{id:040x}")),
            started_at: format!("2026-11-29T20:{:02}:00Z", id % 60),
            ended_at: format!("2026-11-29T20:{:02}:30Z", id % 60),
            services: services
                .iter()
                .map(|s| ServiceDeploy {
                    service: s.to_string(),
                    from: Some("app:v1".into()),
                    to: Some("app:v2".into()),
                    outcome: if id % 3 == 0 {
                        "rolled-back"
                    } else {
                        "converged"
                    }
                    .into(),
                    error: (id % 3 == 0)
                        .then(|| "new replica shop-api-1-next was not healthy".into()),
                })
                .collect(),
            migrations: vec![MigrationRun {
                migration: "schema".into(),
                outcome: MigrationOutcome::Succeeded,
                duration_ms: 1500,
            }],
        })
        .collect()
}

/// `services` services, `history` deploys of them all, and a rollout of the first in
/// flight: the benchmark's page.
#[doc(hidden)]
pub struct Sample(AgentStatus, Vec<DeployRecord>);

impl Sample {
    /// A status of `services` services with `history` deploys.
    pub fn new(services: usize, history: usize) -> Self {
        let mut st = status(services);
        for e in [
            Event::ServiceStarted {
                service: "svc-000".into(),
                image: "registry.example/app:v3".into(),
            },
            Event::Gate {
                service: "svc-000".into(),
                slot: 1,
                container: "shop-svc-000-1-next".into(),
                deadline_ms: 1_800_000_030_000,
                monitor_ms: 5_000,
            },
        ] {
            st.rollout.apply(&e);
        }
        let names: Vec<String> = st.services.keys().take(10).cloned().collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Self(st, deploys(history as i64, &names))
    }

    /// The whole page, as `GET /` answers it.
    pub fn render(&self) -> String {
        super::render_page(&self.0, &self.1, None, 1_800_000_000_000)
    }
}
