//! The agent's Prometheus metrics. Each is updated from one place (the report of a
//! reconcile), so the log lines and the series never drift apart.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::executor::{Action, ApplyReport, Outcome};

/// `{project, service}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServiceLabels {
    /// The project.
    pub project: String,
    /// The service.
    pub service: String,
}

/// `{project, service, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeployLabels {
    /// The project.
    pub project: String,
    /// The service.
    pub service: String,
    /// converged, failed, rolled-back, blocked, removed.
    pub outcome: String,
}

/// `{outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    /// How it ended.
    pub outcome: String,
}

/// `{project, migration, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MigrationLabels {
    /// The project.
    pub project: String,
    /// The migration.
    pub migration: String,
    /// succeeded, failed, timed-out.
    pub outcome: String,
}

/// `{project, commit}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CommitLabels {
    /// The project.
    pub project: String,
    /// The applied commit.
    pub commit: String,
}

/// `{route, transport, outcome}` of a state-changing request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ControlLabels {
    /// The route (`/hooks/git`, `/control/reconcile`).
    pub route: String,
    /// `tcp` or `unix` (the control socket).
    pub transport: String,
    /// accepted, refused-no-secret, refused-bad-signature.
    pub outcome: String,
}

/// `{trigger}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TriggerLabels {
    /// What woke the loop: start, watch, poll, webhook, docker-event, resync, retry,
    /// control.
    pub trigger: String,
}

/// Every series the agent exports.
pub(crate) struct Metrics {
    registry: Registry,
    /// Seconds per reconcile.
    pub reconcile_duration: Histogram,
    /// Reconciles by outcome (converged, failed, error).
    pub reconciles: Family<OutcomeLabels, Counter>,
    /// Service deploys by outcome.
    pub deploys: Family<DeployLabels, Counter>,
    /// Rollbacks by service.
    pub rollbacks: Family<ServiceLabels, Counter>,
    /// Replicas put back after dying, being removed or stopped by hand.
    pub drift_corrections: Family<ServiceLabels, Counter>,
    /// Migration runs by outcome.
    pub migration_runs: Family<MigrationLabels, Counter>,
    /// Failed fetches of the desired-state repository.
    pub git_fetch_errors: Counter,
    /// 1 for the commit being converged.
    pub applied_commit: Family<CommitLabels, Gauge>,
    /// Desired replicas per service.
    pub desired_replicas: Family<ServiceLabels, Gauge>,
    /// Running replicas per service.
    pub running_replicas: Family<ServiceLabels, Gauge>,
    /// Healthy replicas per service.
    pub healthy_replicas: Family<ServiceLabels, Gauge>,
    /// Targets backing off or given up.
    pub failed_targets: Gauge,
    /// Commits refused (invalid or unsigned).
    pub invalid_commits: Counter,
    /// Commits loaded and validated: each new head, and those before a refused head.
    pub commits_examined: Counter,
    /// 1 while the coordination store answers (always 1 with the local ledger).
    pub coordination_up: Gauge,
    /// 1 while the Docker engine answers.
    pub engine_up: Gauge,
    /// State-changing requests (webhook, control) by route, transport and outcome.
    pub control_requests: Family<ControlLabels, Counter>,
    /// Triggers taken into a reconcile, by kind: each counted once, by the reconcile
    /// it wakes or joins.
    pub reconcile_triggers: Family<TriggerLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// Registers every series under the `berth_` prefix, each labelled with the host
    /// when one is given (a fleet's series then tell hosts apart).
    pub(crate) fn new(host: Option<&str>) -> Self {
        let labels = host.map(|h| {
            (
                std::borrow::Cow::Borrowed("host"),
                std::borrow::Cow::Owned(h.to_string()),
            )
        });
        let mut registry = Registry::with_prefix_and_labels("berth", labels.into_iter());
        let m = Self {
            reconcile_duration: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
            reconciles: Family::default(),
            deploys: Family::default(),
            rollbacks: Family::default(),
            drift_corrections: Family::default(),
            migration_runs: Family::default(),
            git_fetch_errors: Counter::default(),
            applied_commit: Family::default(),
            desired_replicas: Family::default(),
            running_replicas: Family::default(),
            healthy_replicas: Family::default(),
            failed_targets: Gauge::default(),
            invalid_commits: Counter::default(),
            commits_examined: Counter::default(),
            coordination_up: Gauge::default(),
            engine_up: Gauge::default(),
            control_requests: Family::default(),
            reconcile_triggers: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reconcile_duration_seconds",
            "Time per reconcile",
            m.reconcile_duration.clone(),
        );
        registry.register("reconciles", "Reconciles by outcome", m.reconciles.clone());
        registry.register("deploys", "Service deploys by outcome", m.deploys.clone());
        registry.register("rollbacks", "Rollouts rolled back", m.rollbacks.clone());
        registry.register(
            "drift_corrections",
            "Replicas put back after drifting",
            m.drift_corrections.clone(),
        );
        registry.register(
            "migration_runs",
            "Migration runs by outcome",
            m.migration_runs.clone(),
        );
        registry.register(
            "git_fetch_errors",
            "Failed fetches of the desired state",
            m.git_fetch_errors.clone(),
        );
        registry.register(
            "applied_commit_info",
            "The commit being converged",
            m.applied_commit.clone(),
        );
        registry.register(
            "desired_replicas",
            "Desired replicas",
            m.desired_replicas.clone(),
        );
        registry.register(
            "running_replicas",
            "Running replicas",
            m.running_replicas.clone(),
        );
        registry.register(
            "healthy_replicas",
            "Healthy replicas",
            m.healthy_replicas.clone(),
        );
        registry.register(
            "failed_targets",
            "Services backing off or held after failing",
            m.failed_targets.clone(),
        );
        registry.register(
            "invalid_commits",
            "Commits refused as invalid or unsigned",
            m.invalid_commits.clone(),
        );
        registry.register(
            "commits_examined",
            "Commits loaded and validated: each new head, and those before a refused head",
            m.commits_examined.clone(),
        );
        registry.register(
            "coordination_up",
            "1 while the coordination store answers",
            m.coordination_up.clone(),
        );
        registry.register(
            "engine_up",
            "1 while the Docker engine answers",
            m.engine_up.clone(),
        );
        registry.register(
            "control_requests",
            "State-changing requests to the listener by route, transport and outcome",
            m.control_requests.clone(),
        );
        registry.register(
            "reconcile_triggers",
            "Triggers taken into a reconcile, by kind",
            m.reconcile_triggers.clone(),
        );
        m.coordination_up.set(1);
        m.engine_up.set(1);
        Self { registry, ..m }
    }

    /// The text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }

    /// Takes in the report of one reconcile.
    pub(crate) fn record(
        &self,
        commit: &str,
        report: &ApplyReport,
        seconds: f64,
        failed_targets: usize,
    ) {
        let project = report.project.clone();
        let svc = |service: &str| ServiceLabels {
            project: project.clone(),
            service: service.to_string(),
        };
        self.reconcile_duration.observe(seconds);
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: if report.converged() {
                    "converged"
                } else {
                    "failed"
                }
                .into(),
            })
            .inc();
        for s in &report.services {
            let outcome = s.attempted().then(|| s.outcome_word());
            if let Some(outcome) = outcome {
                self.deploys
                    .get_or_create(&DeployLabels {
                        project: project.clone(),
                        service: s.service.clone(),
                        outcome: outcome.into(),
                    })
                    .inc();
            }
            if matches!(
                s.outcome,
                Outcome::Failed {
                    rolled_back: true,
                    ..
                }
            ) {
                self.rollbacks.get_or_create(&svc(&s.service)).inc();
            }
            if s.outcome == Outcome::Converged
                && matches!(s.action, Action::Restart | Action::ScaleUp)
            {
                self.drift_corrections.get_or_create(&svc(&s.service)).inc();
            }
        }
        for m in &report.migrations {
            if let Some(run) = &m.run {
                self.migration_runs
                    .get_or_create(&MigrationLabels {
                        project: project.clone(),
                        migration: m.migration.clone(),
                        outcome: run.outcome.as_str().into(),
                    })
                    .inc();
            }
        }
        self.applied_commit.clear();
        self.applied_commit
            .get_or_create(&CommitLabels {
                project: project.clone(),
                commit: commit.to_string(),
            })
            .set(1);
        // Services that left the desired state drop out of the gauges.
        self.desired_replicas.clear();
        self.running_replicas.clear();
        self.healthy_replicas.clear();
        for (name, o) in &report.observed {
            self.desired_replicas
                .get_or_create(&svc(name))
                .set(o.desired as i64);
            self.running_replicas
                .get_or_create(&svc(name))
                .set(o.running as i64);
            self.healthy_replicas
                .get_or_create(&svc(name))
                .set(o.healthy as i64);
        }
        self.failed_targets.set(failed_targets as i64);
    }
}
