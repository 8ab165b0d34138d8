//! What an apply leaves on record: the deploy history, and, in a fleet, which release
//! this host runs converged (what other hosts' canary waits read).

use std::collections::BTreeMap;

use super::{fleet, ApplyReport, Executor};
use crate::ledger::{now_rfc3339, DeployRecord, MigrationRun, ServiceDeploy};
use crate::plan::Desired;
use crate::runtime::{ObservedContainer, Role};

impl Executor {
    /// With a shared ledger, records that this host runs the service's release healthy
    /// (what canary waits read); once per release, not on every resync.
    pub(super) async fn record_converged(&self, desired: &Desired, name: &str) {
        let (Some(d), Some(host)) = (desired.services.get(name), self.opts.host.as_deref()) else {
            return;
        };
        if !self.ledger.is_shared() {
            return;
        }
        let target = fleet::fleet_target(d);
        let known = self
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .is_some_and(|t| *t == target);
        if known {
            return;
        }
        match self
            .ledger
            .record_converged(&desired.spec.project, name, host, &target)
            .await
        {
            Ok(()) => {
                self.recorded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_string(), target);
            }
            Err(e) => tracing::warn!(service = name, error = %e, "converged release not recorded"),
        }
    }

    /// Appends the apply to the deploy history when it changed or tried anything.
    pub(super) async fn record_deploy(
        &self,
        desired: &Desired,
        observed: &[ObservedContainer],
        report: &ApplyReport,
        started_at: String,
    ) {
        let services: Vec<ServiceDeploy> = report
            .services
            .iter()
            .filter(|s| s.attempted())
            .map(|s| {
                let mut before: BTreeMap<&str, usize> = BTreeMap::new();
                for c in observed
                    .iter()
                    .filter(|c| c.service == s.service && c.role == Role::Replica)
                {
                    *before.entry(c.image.as_str()).or_default() += 1;
                }
                let from = before
                    .into_iter()
                    .max_by_key(|(_, n)| *n)
                    .map(|(i, _)| i.to_string());
                ServiceDeploy {
                    service: s.service.clone(),
                    from,
                    to: desired
                        .services
                        .get(&s.service)
                        .map(|d| d.spec.image.full.clone()),
                    outcome: s.outcome_word().to_string(),
                    error: s.error(),
                }
            })
            .collect();
        let migrations: Vec<MigrationRun> = report
            .migrations
            .iter()
            .filter_map(|m| m.run.clone())
            .collect();
        if services.is_empty() && migrations.is_empty() {
            return;
        }
        let record = DeployRecord {
            id: 0,
            host: self.opts.host.clone(),
            project: report.project.clone(),
            commit: self.opts.commit.clone(),
            started_at,
            ended_at: now_rfc3339(),
            services,
            migrations,
        };
        if let Err(e) = self.ledger.record_deploy(&record).await {
            tracing::error!(error = %e, "deploy not recorded in the ledger");
        }
    }
}
