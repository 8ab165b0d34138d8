//! The agent's side of its status: the state before the first reconcile, and what one
//! apply changes in it. The status itself ([`crate::status`]) is shared with the HTTP
//! listener.

use std::collections::BTreeMap;

use super::failures::FailedTargets;
use super::pause::PauseState;
use super::AgentConfig;
use crate::executor::{ApplyReport, Outcome};
use crate::ledger::now_rfc3339;
use crate::source::CommitInfo;
use crate::status::{AgentStatus, LastDeploy, ServiceStatus};
use crate::urls::redact_urls_in;

impl AgentStatus {
    /// The state before the first reconcile.
    pub(crate) fn new(config: &AgentConfig) -> Self {
        Self {
            host: config.host.clone(),
            repo: config.source.display_url(),
            branch: config.source.branch.clone(),
            applied_commit: None,
            head: None,
            last_error: None,
            last_reconcile: None,
            last_reconcile_ms: None,
            fetch_failures: 0,
            services: BTreeMap::new(),
            failed_targets: Vec::new(),
            paused: false,
            coordination: config.ledger.describe(),
            degraded: None,
            engine_down: None,
            started_migrations: Vec::new(),
            rollout: Default::default(),
            last_reconcile_at: None,
            // Two missed resyncs, or three missed polls, whichever is longer.
            stale_after: (config.resync * 2).max(config.interval * 3),
        }
    }

    /// Takes in the report of one apply.
    pub(crate) fn apply_report(
        &mut self,
        commit: &CommitInfo,
        desired: &crate::plan::Desired,
        report: &ApplyReport,
        failures: &FailedTargets,
        pause: &PauseState,
    ) {
        self.paused = pause.all;
        self.failed_targets = failures.list();
        let previous = std::mem::take(&mut self.services);
        for s in &report.services {
            let outcome = s.outcome_word();
            // While held, the failure that led there stays the error to read.
            let error = match &s.outcome {
                Outcome::Held { .. } | Outcome::Waiting { .. } => previous
                    .get(&s.service)
                    .and_then(|p| p.last_error.clone())
                    .or_else(|| s.error()),
                _ => s.error(),
            };
            let changed = s.attempted();
            let last_deploy = if changed {
                Some(LastDeploy {
                    at: now_rfc3339(),
                    commit: commit.sha.clone(),
                    outcome: outcome.into(),
                })
            } else {
                previous.get(&s.service).and_then(|p| p.last_deploy.clone())
            };
            let observed = report.observed.get(&s.service).cloned().unwrap_or_default();
            self.services.insert(
                s.service.clone(),
                ServiceStatus {
                    desired_image: desired
                        .services
                        .get(&s.service)
                        .map(|d| d.spec.image.full.clone()),
                    running_images: observed.images,
                    desired: observed.desired,
                    running: observed.running,
                    healthy: observed.healthy,
                    failed_target: self
                        .failed_targets
                        .iter()
                        .find(|t| t.service == s.service)
                        .cloned(),
                    last_deploy,
                    last_outcome: outcome.into(),
                    last_error: error.map(|e| redact_urls_in(&e)),
                    paused: pause.is_paused(&s.service),
                    canary: desired
                        .services
                        .get(&s.service)
                        .and_then(|d| d.spec.update.canary.clone()),
                },
            );
        }
    }
}
