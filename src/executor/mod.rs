//! Carries out a plan against the engine: pulls first, then per service, in
//! dependency order, health-gated rolling updates that roll back on failure.

pub mod auth;
pub mod container;
pub mod fleet;
pub mod gate;
pub mod migrate;
pub mod redact;
mod rollout;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::time::Instant;

use crate::ledger::{now_rfc3339, DeployRecord, Ledger, MigrationRun, ServiceDeploy};
pub use crate::plan::Action;
use crate::plan::{plan, Desired, Step};
use crate::runtime::{Engine, Role, RuntimeError};

use migrate::{MigrationFailure, MigrationRunner};

pub use crate::retry::RetryPolicy;
pub use gate::{GateFailure, RolloutGate};
pub use redact::Redactor;

/// What the caller asks of one apply beyond the desired state.
#[derive(Debug, Clone, Default)]
pub struct ApplyControl {
    /// Services not to touch this time, with why (paused, failed, backing off).
    pub exclude: BTreeMap<String, String>,
    /// Cancelled when berth is asked to stop: the step in flight finishes, nothing new
    /// starts, and no service is left below its healthy count.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Cancelled when the desired state may have changed (a push, a poll, an operator):
    /// a wait for the fleet (another host's migration, the canary, a lease) ends early,
    /// so that a new commit — a revert, say — is looked at first.
    pub supersede: tokio_util::sync::CancellationToken,
}

/// How `apply` behaves.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Where berth keeps what it writes on the host (mounted repository files).
    pub state_dir: PathBuf,
    /// The commit being applied, recorded in labels.
    pub commit: Option<String>,
    /// This host's name, recorded in labels.
    pub host: Option<String>,
    /// Retries of a failed service within this run, and their delays.
    pub retry: RetryPolicy,
    /// Services converged at the same time.
    pub concurrency: usize,
    /// Pause between taking a replica off its networks and stopping it.
    pub drain: Duration,
    /// How often the health gate looks.
    pub poll: Duration,
    /// Remove services that left the desired state.
    pub prune: bool,
    /// With a shared ledger, the longest a service waits for the fleet (canary,
    /// rollout lease) within one apply before it is reported as waiting.
    pub fleet_wait: Duration,
    /// The host paths this host allows, checked again on the file system right before
    /// a container that mounts one is created.
    pub allow_host_paths: Vec<crate::model::AllowedHostPath>,
    /// Services that containers berth did not create still serve (`berth adopt` is
    /// replacing docker compose's): their first replicas join the service's alias only
    /// once they have passed their gate, as in a rolling update.
    pub served_elsewhere: BTreeSet<String>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/berth"),
            commit: None,
            host: None,
            retry: RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
            concurrency: 4,
            drain: Duration::from_secs(1),
            poll: Duration::from_millis(50),
            prune: true,
            fleet_wait: Duration::from_secs(600),
            allow_host_paths: Vec::new(),
            served_elsewhere: BTreeSet::new(),
        }
    }
}

/// How one service ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing needed doing.
    InSync,
    /// Changed, and now converged.
    Converged,
    /// Could not be converged; what ran before keeps running.
    Failed {
        /// What went wrong (secrets masked).
        error: String,
        /// What still serves.
        serving: String,
        /// True when the replicas already moved were put back.
        rolled_back: bool,
    },
    /// Not touched because a service it depends on failed.
    Blocked {
        /// The failed dependency.
        by: String,
    },
    /// Not changed because it was removed from the desired state and pruning is off.
    Skipped,
    /// Left alone this time, with why (paused, failed until the desired state changes,
    /// waiting for its next retry, berth stopping).
    Held {
        /// Why.
        reason: String,
    },
    /// Not changed yet because the fleet comes first: the canary host, another host's
    /// rollout lease or migration, or a coordination store that does not answer. Tried
    /// again soon; what runs keeps running.
    Waiting {
        /// For what.
        reason: String,
    },
}

/// The report of one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// The service.
    pub service: String,
    /// What the plan said.
    pub action: Action,
    /// Why.
    pub reasons: Vec<String>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
    /// Wall time spent on it, in milliseconds.
    pub millis: u64,
}

impl ServiceReport {
    /// The outcome in the one word history, status and metrics use: `in-sync`,
    /// `converged`, `removed`, `failed`, `rolled-back`, `blocked`, `not-pruned`, `held`,
    /// `waiting`.
    pub fn outcome_word(&self) -> &'static str {
        match &self.outcome {
            Outcome::InSync => "in-sync",
            Outcome::Converged if self.action == Action::Remove => "removed",
            Outcome::Converged => "converged",
            Outcome::Failed {
                rolled_back: true, ..
            } => "rolled-back",
            Outcome::Failed { .. } => "failed",
            Outcome::Blocked { .. } => "blocked",
            Outcome::Skipped => "not-pruned",
            Outcome::Held { .. } => "held",
            Outcome::Waiting { .. } => "waiting",
        }
    }

    /// Why the service did not converge, when it did not.
    pub fn error(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Failed { error, .. } => Some(error.clone()),
            Outcome::Blocked { by } => Some(format!("depends on {by}, which did not converge")),
            Outcome::Held { reason } | Outcome::Waiting { reason } => Some(reason.clone()),
            _ => None,
        }
    }

    /// True when the apply changed (or tried to change) the service.
    pub fn attempted(&self) -> bool {
        !matches!(
            self.outcome,
            Outcome::InSync | Outcome::Skipped | Outcome::Held { .. } | Outcome::Waiting { .. }
        )
    }
}

/// The report of one `apply`.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The project.
    pub project: String,
    /// Per service, by name.
    pub services: Vec<ServiceReport>,
    /// Migrations that ran (or failed) in this apply.
    pub migrations: Vec<MigrationReport>,
    /// What runs, per service, after the apply.
    pub observed: BTreeMap<String, ServiceObserved>,
}

/// What runs of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceObserved {
    /// Desired replicas (0 for a service no longer desired).
    pub desired: u32,
    /// Replicas running.
    pub running: u32,
    /// Replicas running and healthy (or running without a health check).
    pub healthy: u32,
    /// Running replicas by image.
    pub images: BTreeMap<String, u32>,
}

/// Counts what runs per service, from one observation.
pub fn observe(
    desired: &Desired,
    observed: &[crate::runtime::ObservedContainer],
) -> BTreeMap<String, ServiceObserved> {
    let mut out: BTreeMap<String, ServiceObserved> = desired
        .services
        .iter()
        .map(|(name, d)| {
            (
                name.clone(),
                ServiceObserved {
                    desired: d.spec.replicas,
                    ..Default::default()
                },
            )
        })
        .collect();
    for c in observed
        .iter()
        .filter(|c| c.role == Role::Replica && c.is_up())
    {
        let o = out.entry(c.service.clone()).or_default();
        o.running += 1;
        if matches!(
            c.health,
            crate::runtime::HealthState::Healthy | crate::runtime::HealthState::None
        ) {
            o.healthy += 1;
        }
        *o.images.entry(c.image.clone()).or_default() += 1;
    }
    out
}

/// A migration's part in one apply.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    /// The migration.
    pub migration: String,
    /// The run, when one finished.
    #[serde(flatten)]
    pub run: Option<MigrationRun>,
    /// The error, when it did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ApplyReport {
    /// True when no service failed or was blocked.
    pub fn converged(&self) -> bool {
        self.services.iter().all(|s| {
            !matches!(
                s.outcome,
                Outcome::Failed { .. } | Outcome::Blocked { .. } | Outcome::Waiting { .. }
            )
        })
    }
}

/// A failure that stops the whole apply (as opposed to one service).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The engine could not be used.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The state directory could not be written.
    #[error("state dir {path}: {error}")]
    StateDir {
        /// The path.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
    /// A network or volume of the desired state is not berth's to use: one that exists
    /// without berth's label, or an `external` one that does not exist.
    #[error("{0}")]
    Ownership(String),
}

/// Carries out plans against one engine.
pub struct Executor {
    engine: Arc<dyn Engine>,
    ledger: Arc<dyn Ledger>,
    opts: ApplyOptions,
    /// With a shared ledger: the fleet target last recorded as converged, by service.
    recorded: std::sync::Mutex<HashMap<String, String>>,
    /// The secrets of every desired state applied so far.
    secrets: std::sync::Mutex<Redactor>,
}

type MigrationCell = tokio::sync::OnceCell<Result<Option<MigrationRun>, MigrationFailure>>;

impl Executor {
    /// An executor over `engine`, recording in `ledger`.
    pub fn new(engine: Arc<dyn Engine>, ledger: Arc<dyn Ledger>, opts: ApplyOptions) -> Self {
        Self {
            engine,
            ledger,
            opts,
            recorded: Default::default(),
            secrets: Default::default(),
        }
    }

    /// The commit recorded in labels and history from now on.
    pub fn set_commit(&mut self, commit: Option<String>) {
        self.opts.commit = commit;
    }

    fn migrations<'a>(&'a self, redactor: &'a Redactor) -> MigrationRunner<'a> {
        MigrationRunner {
            control: None,
            engine: self.engine.as_ref(),
            ledger: self.ledger.clone(),
            opts: &self.opts,
            redactor,
        }
    }

    /// Converges the project once: every service is tried, failures are reported per
    /// service.
    pub async fn apply(&self, desired: &Desired) -> Result<ApplyReport, ApplyError> {
        self.apply_with(desired, &ApplyControl::default()).await
    }

    /// [`Executor::apply`] with services held back and a way to stop early.
    pub async fn apply_with(
        &self,
        desired: &Desired,
        control: &ApplyControl,
    ) -> Result<ApplyReport, ApplyError> {
        let project = desired.spec.project.as_str();
        let started_at = now_rfc3339();
        let redactor = {
            let mut seen = self.secrets.lock().expect("secrets lock");
            seen.absorb(&Redactor::from_desired(desired));
            seen.clone()
        };
        let observed = self.engine.list_project(project).await?;
        self.migrations(&redactor)
            .settle_leftovers(desired, &observed)
            .await;
        let the_plan = plan(desired, &observed);
        let changing: Vec<&str> = the_plan.changes().map(|s| s.service.as_str()).collect();
        if !changing.is_empty() {
            self.ensure_objects(desired).await?;
        }
        // Images first: nothing is stopped before every image it needs is here.
        let pull_errors = self.pull_images(desired, &the_plan).await;

        // Migrations whose gated services change in this run, with the image digest of
        // their `from` service; each runs at most once, awaited by every gated service.
        let mut gating: HashMap<String, Vec<(String, String, Arc<MigrationCell>)>> = HashMap::new();
        let mut cells: Vec<(String, Arc<MigrationCell>)> = Vec::new();
        for m in desired.spec.migrations.values() {
            let moving = m.gates.iter().any(|g| {
                the_plan.services.iter().any(|sp| {
                    &sp.service == g
                        && sp
                            .steps
                            .iter()
                            .any(|s| matches!(s, Step::Create { .. } | Step::Replace { .. }))
                })
            });
            let Some(from) = desired.migration_container(m) else {
                continue;
            };
            if !moving
                || pull_errors.contains_key(&m.from)
                || (m.job.is_some() && m.gates.iter().any(|g| pull_errors.contains_key(g)))
            {
                continue;
            }
            let digest = match self.engine.image_digest(&from.spec.image.full).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(migration = %m.name, error = %e, "image digest unknown; the migration waits for the image");
                    continue;
                }
            };
            let cell = Arc::new(MigrationCell::new());
            cells.push((m.name.clone(), cell.clone()));
            for g in &m.gates {
                gating.entry(g.clone()).or_default().push((
                    m.name.clone(),
                    digest.clone(),
                    cell.clone(),
                ));
            }
        }

        let levels = dependency_levels(desired, &the_plan);
        let mut done: HashMap<String, Outcome> = HashMap::new();
        let mut reports = Vec::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.opts.concurrency.max(1)));
        for level in levels {
            let futures = level.into_iter().map(|name| {
                let sp = the_plan
                    .services
                    .iter()
                    .find(|s| s.service == name)
                    .expect("planned")
                    .clone();
                let blocked_by = desired
                    .services
                    .get(&name)
                    .map(|d| d.spec.depends_on.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .find(|dep| {
                        matches!(
                            done.get(dep),
                            Some(Outcome::Failed { .. } | Outcome::Blocked { .. })
                        )
                    });
                let pull_error = pull_errors.get(&name).cloned();
                let semaphore = semaphore.clone();
                let redactor = &redactor;
                let gates = gating.get(&name).cloned().unwrap_or_default();
                let held = control.exclude.get(&name).cloned();
                async move {
                    let start = Instant::now();
                    if let (Some(reason), false) = (held, sp.action == Action::InSync) {
                        return ServiceReport {
                            service: name,
                            action: sp.action,
                            reasons: sp.reasons.iter().map(|r| redactor.redact(r)).collect(),
                            outcome: Outcome::Held { reason },
                            attempts: 0,
                            millis: 0,
                        };
                    }
                    if control.cancel.is_cancelled() && sp.action != Action::InSync {
                        return ServiceReport {
                            service: name,
                            action: sp.action,
                            reasons: sp.reasons.iter().map(|r| redactor.redact(r)).collect(),
                            outcome: Outcome::Held {
                                reason: rollout::SHUTDOWN.into(),
                            },
                            attempts: 0,
                            millis: 0,
                        };
                    }
                    let mut migration_error = None;
                    let mut migration_wait = None;
                    if sp.action != Action::InSync && blocked_by.is_none() && pull_error.is_none() {
                        for (m, digest, cell) in &gates {
                            let result = cell
                                .get_or_init(|| {
                                    self.migrate_with_retries(desired, m, digest, redactor, control)
                                })
                                .await;
                            if let Err(f) = result {
                                let message = format!("{}; {name} was not changed", f.message);
                                if f.wait {
                                    migration_wait = Some(message);
                                } else {
                                    migration_error = Some(message);
                                }
                                break;
                            }
                        }
                    }
                    let (outcome, attempts) = if sp.action == Action::InSync {
                        (Outcome::InSync, 0)
                    } else if let Some(by) = blocked_by {
                        (Outcome::Blocked { by }, 0)
                    } else if let Some(reason) = migration_wait {
                        (Outcome::Waiting { reason }, 0)
                    } else if let Some(error) = pull_error.or(migration_error) {
                        let serving = self.serving(project, &name).await;
                        (
                            Outcome::Failed {
                                error,
                                serving,
                                rolled_back: false,
                            },
                            1,
                        )
                    } else if sp.action == Action::Remove && !self.opts.prune {
                        (Outcome::Skipped, 0)
                    } else {
                        self.converge_in_fleet(
                            desired, &name, sp.action, redactor, &semaphore, control,
                        )
                        .await
                    };
                    if matches!(outcome, Outcome::InSync | Outcome::Converged) {
                        self.record_converged(desired, &name).await;
                    }
                    // Only a replacement has anything to roll back.
                    let outcome = match outcome {
                        Outcome::Failed {
                            error,
                            serving,
                            rolled_back,
                        } => Outcome::Failed {
                            error,
                            serving,
                            rolled_back: rolled_back && sp.action == Action::Replace,
                        },
                        other => other,
                    };
                    ServiceReport {
                        service: name,
                        action: sp.action,
                        reasons: sp.reasons.iter().map(|r| redactor.redact(r)).collect(),
                        outcome,
                        attempts,
                        millis: start.elapsed().as_millis() as u64,
                    }
                }
            });
            for r in join_all(futures).await {
                done.insert(r.service.clone(), r.outcome.clone());
                reports.push(r);
            }
        }
        // Networks only go when something changed, so that a resync of a converged
        // project costs one list call and nothing more.
        if self.opts.prune && !changing.is_empty() {
            self.prune_networks(desired).await;
        }
        reports.sort_by(|a, b| a.service.cmp(&b.service));
        let migrations: Vec<MigrationReport> = cells
            .iter()
            .filter_map(|(name, cell)| {
                let result = cell.get()?;
                match result {
                    Ok(None) => None,
                    Ok(Some(run)) => Some(MigrationReport {
                        migration: name.clone(),
                        run: Some(run.clone()),
                        error: None,
                    }),
                    Err(f) => Some(MigrationReport {
                        migration: name.clone(),
                        run: f.run.clone(),
                        error: Some(f.message.clone()),
                    }),
                }
            })
            .collect();
        // A reconcile that changed nothing costs one list call; one that did looks again.
        let after = if changing.is_empty() {
            observe(desired, &observed)
        } else {
            match self.engine.list_project(project).await {
                Ok(now) => observe(desired, &now),
                Err(_) => observe(desired, &observed),
            }
        };
        let report = ApplyReport {
            project: project.to_string(),
            services: reports,
            migrations,
            observed: after,
        };
        self.record_deploy(desired, &observed, &report, started_at)
            .await;
        Ok(report)
    }

    /// Converges one service, first passing the fleet's gate (canary, rollout lease)
    /// when the ledger is shared and the service's replicas are to be replaced.
    async fn converge_in_fleet(
        &self,
        desired: &Desired,
        name: &str,
        action: Action,
        redactor: &Redactor,
        semaphore: &tokio::sync::Semaphore,
        control: &ApplyControl,
    ) -> (Outcome, u32) {
        let staged = self.ledger.is_shared()
            && matches!(action, Action::Create | Action::Replace | Action::Restart);
        let lease = match desired.services.get(name).filter(|_| staged) {
            Some(d) => {
                let gate = fleet::FleetGate {
                    ledger: &self.ledger,
                    project: &desired.spec.project,
                    host: self.opts.host.as_deref().unwrap_or_default(),
                    wait: self.opts.fleet_wait,
                    control,
                };
                match gate.admit(d).await {
                    Ok(lease) => lease,
                    Err(fleet::Hold::Wait(reason)) => return (Outcome::Waiting { reason }, 0),
                    Err(fleet::Hold::Superseded) => {
                        return (
                            Outcome::Waiting {
                                reason: "the desired state may have changed".into(),
                            },
                            0,
                        )
                    }
                    Err(fleet::Hold::Shutdown) => {
                        return (
                            Outcome::Held {
                                reason: rollout::SHUTDOWN.into(),
                            },
                            0,
                        )
                    }
                }
            }
            None => None,
        };
        let result = {
            let _permit = semaphore.acquire().await.expect("semaphore open");
            self.converge_with_retries(desired, name, redactor, &control.cancel)
                .await
        };
        if let Some(lease) = lease {
            lease.release().await;
        }
        result
    }

    /// With a shared ledger, records that this host runs the service's release healthy
    /// (what canary waits read); once per release, not on every resync.
    async fn record_converged(&self, desired: &Desired, name: &str) {
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
    async fn record_deploy(
        &self,
        desired: &Desired,
        observed: &[crate::runtime::ObservedContainer],
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

    async fn migrate_with_retries(
        &self,
        desired: &Desired,
        name: &str,
        digest: &str,
        redactor: &Redactor,
        control: &ApplyControl,
    ) -> Result<Option<MigrationRun>, MigrationFailure> {
        let m = &desired.spec.migrations[name];
        let mut delays = self.opts.retry.schedule();
        loop {
            let runner = MigrationRunner {
                control: Some(control),
                ..self.migrations(redactor)
            };
            match runner.ensure(desired, m, digest).await {
                Ok(run) => return Ok(run),
                Err(f) => {
                    tracing::warn!(migration = name, error = %f.message, "migration failed");
                    match delays.next() {
                        Some(delay) => {
                            tracing::info!(
                                migration = name,
                                delay_ms = delay.as_millis() as u64,
                                "retrying after backoff"
                            );
                            tokio::time::sleep(delay).await;
                        }
                        None => return Err(f),
                    }
                }
            }
        }
    }

    async fn converge_with_retries(
        &self,
        desired: &Desired,
        name: &str,
        redactor: &Redactor,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> (Outcome, u32) {
        let mut delays = self.opts.retry.schedule();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.converge_service(desired, name, cancel).await;
            match result {
                Ok(()) => return (Outcome::Converged, attempts),
                Err(rollout::StepFailure::Shutdown) => {
                    return (
                        Outcome::Held {
                            reason: rollout::SHUTDOWN.into(),
                        },
                        attempts,
                    )
                }
                Err(rollout::StepFailure::Failed { message, rollback }) => {
                    // What the rollback did, not what was configured: a slot that
                    // could not be put back makes the outcome a plain failure.
                    let (e, rolled_back) = match rollback {
                        Some(Ok(())) => (message, true),
                        Some(Err(why)) => (format!("{message}; rolling back failed: {why}"), false),
                        None => (message, false),
                    };
                    let error = redactor.redact(&e);
                    tracing::warn!(service = name, attempt = attempts, error = %error, "service failed to converge");
                    match delays.next() {
                        Some(delay) => {
                            tracing::info!(
                                service = name,
                                delay_ms = delay.as_millis() as u64,
                                "retrying after backoff"
                            );
                            tokio::time::sleep(delay).await;
                        }
                        None => {
                            let serving = self.serving(&desired.spec.project, name).await;
                            return (
                                Outcome::Failed {
                                    error,
                                    serving,
                                    rolled_back,
                                },
                                attempts,
                            );
                        }
                    }
                }
            }
        }
    }

    /// Plans one service afresh from the engine and carries the plan out.
    async fn converge_service(
        &self,
        desired: &Desired,
        name: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), rollout::StepFailure> {
        let project = &desired.spec.project;
        let observed = self
            .engine
            .list_project(project)
            .await
            .map_err(|e| rollout::StepFailure::from(e.to_string()))?;
        let the_plan = plan(desired, &observed);
        let Some(sp) = the_plan.services.into_iter().find(|s| s.service == name) else {
            return Ok(());
        };
        let by_name: HashMap<&str, &crate::runtime::ObservedContainer> =
            observed.iter().map(|c| (c.name.as_str(), c)).collect();
        let ctx = rollout::Rollout {
            engine: self.engine.as_ref(),
            opts: &self.opts,
            project,
            desired: desired.services.get(name),
            cancel,
        };
        ctx.run(&sp.steps, &by_name).await
    }

    /// "2 replicas of sha-1111111 still serve", from a fresh look at the engine.
    async fn serving(&self, project: &str, service: &str) -> String {
        let Ok(observed) = self.engine.list_project(project).await else {
            return "unknown (the engine did not answer)".into();
        };
        let mut by_image: BTreeMap<String, u32> = BTreeMap::new();
        for c in observed
            .iter()
            .filter(|c| c.service == service && c.role == Role::Replica && c.is_up())
        {
            *by_image
                .entry(crate::plan::desired::short(&c.image))
                .or_default() += 1;
        }
        if by_image.is_empty() {
            return "no replica is running".into();
        }
        let parts: Vec<String> = by_image
            .into_iter()
            .map(|(img, n)| format!("{n} replica{} of {img}", if n == 1 { "" } else { "s" }))
            .collect();
        format!("{} still serving", parts.join(" and "))
    }

    /// Creates missing networks and volumes, and writes mounted repository files.
    async fn ensure_objects(&self, desired: &Desired) -> Result<(), ApplyError> {
        let project = &desired.spec.project;
        let labels = container::project_labels(project);
        let names = crate::plan::desired::ObjectNames::of(&desired.spec);
        let adopted = crate::adopt::Adopted::read(&self.opts.state_dir, project).map_err(|e| {
            ApplyError::StateDir {
                path: crate::adopt::Adopted::path(&self.opts.state_dir)
                    .display()
                    .to_string(),
                error: e,
            }
        })?;
        let listed = self.engine.list_networks(project).await?;
        self.remove_twins(&listed).await;
        let nets: BTreeSet<String> = listed.into_iter().map(|n| n.name).collect();
        for (name, n) in &desired.spec.networks {
            let full = names.network(name);
            if self
                .owned(
                    project,
                    "network",
                    "networks",
                    name,
                    &full,
                    n.external,
                    nets.contains(&full),
                    adopted.networks.contains(&full),
                )
                .await?
            {
                tracing::info!(project, network = %full, action = "create-network");
                match self.engine.create_network(&full, labels.clone()).await {
                    Ok(()) | Err(RuntimeError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let vols: BTreeSet<String> = self
            .engine
            .list_volumes(project)
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
        for (name, v) in &desired.spec.volumes {
            let full = names.volume(name);
            if self
                .owned(
                    project,
                    "volume",
                    "volumes",
                    name,
                    &full,
                    v.external,
                    vols.contains(&full),
                    adopted.volumes.contains(&full),
                )
                .await?
            {
                tracing::info!(project, volume = %full, action = "create-volume");
                self.engine.create_volume(&full, labels.clone()).await?;
            }
        }
        for s in desired.services.values().chain(desired.jobs.values()) {
            for m in &s.spec.volumes {
                match &m.source {
                    crate::model::MountSource::RepoFile(f) => {
                        write_repo_file(&self.opts.state_dir, &f.content)?
                    }
                    crate::model::MountSource::RepoDir(d) => {
                        write_repo_dir(&self.opts.state_dir, d)?
                    }
                    crate::model::MountSource::HostData(rel) => {
                        container::host_data(&self.opts.state_dir, project, rel, true).map_err(
                            |error| ApplyError::StateDir {
                                path: container::data_root(&self.opts.state_dir, project)
                                    .join(rel)
                                    .display()
                                    .to_string(),
                                error: std::io::Error::other(error),
                            },
                        )?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Pulls what `apply` would pull first: the images of services to create or
    /// replace that this host does not have. By service, the pulls that failed.
    pub async fn pull(&self, desired: &Desired) -> Result<HashMap<String, String>, ApplyError> {
        let observed = self.engine.list_project(&desired.spec.project).await?;
        let the_plan = plan(desired, &observed);
        Ok(self.pull_images(desired, &the_plan).await)
    }

    /// Pulls, in parallel, every image a create or replace needs and the host lacks.
    /// Returns the error of each service whose image could not be had.
    async fn pull_images(
        &self,
        desired: &Desired,
        the_plan: &crate::plan::Plan,
    ) -> HashMap<String, String> {
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for sp in the_plan.changes() {
            let needs = sp
                .steps
                .iter()
                .any(|s| matches!(s, Step::Create { .. } | Step::Replace { .. }));
            if let (true, Some(d)) = (needs, desired.services.get(&sp.service)) {
                wanted
                    .entry(d.spec.image.full.clone())
                    .or_default()
                    .push(sp.service.clone());
            }
        }
        // A compose job's image is needed by the services it gates.
        for m in desired.spec.migrations.values() {
            let Some(job) = desired.jobs.get(&m.name).filter(|_| m.job.is_some()) else {
                continue;
            };
            let gated: Vec<String> = m
                .gates
                .iter()
                .filter(|g| wanted.values().any(|s| s.contains(g)))
                .cloned()
                .collect();
            if !gated.is_empty() {
                let entry = wanted.entry(job.spec.image.full.clone()).or_default();
                for g in gated {
                    if !entry.contains(&g) {
                        entry.push(g);
                    }
                }
            }
        }
        let pulls = wanted.into_iter().map(|(image, services)| async move {
            match self.engine.has_image(&image).await {
                Ok(true) => return (services, None),
                Ok(false) => {}
                Err(e) => return (services, Some(e.to_string())),
            }
            let started = Instant::now();
            tracing::info!(image = %image, action = "pull");
            let result = self.engine.pull(&image, auth::registry_auth(&image)).await;
            match result {
                Ok(()) => {
                    tracing::info!(image = %image, action = "pulled", duration_ms = started.elapsed().as_millis() as u64);
                    (services, None)
                }
                Err(e) => (services, Some(format!("{e}; nothing of this service was stopped"))),
            }
        });
        let mut errors = HashMap::new();
        for (services, err) in join_all(pulls).await {
            if let Some(e) = err {
                for s in services {
                    errors.insert(s, e.clone());
                }
            }
        }
        errors
    }

    /// Docker lets two networks share a name; a create that an `apply` killed mid-way
    /// left to the daemon can finish after the next `apply` made the network too, and
    /// then every container start on it fails as ambiguous. The twins of a name are
    /// removed until one is left (one in use stays).
    async fn remove_twins(&self, listed: &[crate::runtime::ObservedObject]) {
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in listed {
            by_name.entry(&n.name).or_default().push(&n.id);
        }
        for (name, ids) in by_name.into_iter().filter(|(_, ids)| ids.len() > 1) {
            let mut left = ids.len();
            for id in ids {
                if left == 1 {
                    break;
                }
                match self.engine.remove_network(id).await {
                    Ok(()) => {
                        left -= 1;
                        tracing::warn!(network = %name, id, action = "remove-network", "a second network of the same name removed");
                    }
                    Err(e) => {
                        tracing::debug!(network = %name, id, error = %e, "twin network in use")
                    }
                }
            }
        }
    }

    /// Removes project networks the desired state no longer names; a network still in
    /// use stays until the next run.
    async fn prune_networks(&self, desired: &Desired) {
        let project = &desired.spec.project;
        let Ok(nets) = self.engine.list_networks(project).await else {
            return;
        };
        let wanted: BTreeSet<String> = desired
            .spec
            .networks
            .keys()
            .map(|n| container::object_name(project, n))
            .collect();
        for n in nets.into_iter().filter(|n| !wanted.contains(&n.name)) {
            if let Err(e) = self.engine.remove_network(&n.name).await {
                tracing::debug!(network = %n.name, error = %e, "network not removed yet");
            } else {
                tracing::info!(project = %project, network = %n.name, action = "remove-network");
            }
        }
    }
}

fn write_repo_file(state_dir: &std::path::Path, content: &[u8]) -> Result<(), ApplyError> {
    let path = container::repo_file_path(state_dir, content);
    if path.exists() {
        return Ok(());
    }
    let fail = |error| ApplyError::StateDir {
        path: path.display().to_string(),
        error,
    };
    let dir = path.parent().expect("files dir");
    std::fs::create_dir_all(dir).map_err(fail)?;
    // Written aside and renamed, so a container never mounts half a file.
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::write(&tmp, content).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(())
}

/// Writes a repository directory under the state dir, once per content: into a
/// directory aside, renamed into place whole.
fn write_repo_dir(
    state_dir: &std::path::Path,
    dir: &crate::model::RepoDir,
) -> Result<(), ApplyError> {
    let path = container::repo_dir_path(state_dir, dir);
    if path.exists() {
        return Ok(());
    }
    let fail = |error| ApplyError::StateDir {
        path: path.display().to_string(),
        error,
    };
    let parent = path.parent().expect("files dir");
    let tmp = parent.join(format!(".tmp-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(fail)?;
    for (rel, content) in &dir.files {
        // The loader only takes names read from the tree, joined below the directory.
        let file = tmp.join(rel);
        if let Some(p) = file.parent() {
            std::fs::create_dir_all(p).map_err(fail)?;
        }
        std::fs::write(&file, content).map_err(fail)?;
    }
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(())
}

/// Whether berth must create a network or volume (`kind`, declared as `section.name`,
/// named `full` in Docker): not when it is berth's already (`labelled`) or `external`
/// (which must exist); an error when it exists without berth's label, since it is
/// somebody else's (compose names its objects the same way).
impl Executor {
    #[allow(clippy::too_many_arguments)]
    async fn owned(
        &self,
        project: &str,
        kind: &str,
        section: &str,
        name: &str,
        full: &str,
        external: bool,
        labelled: bool,
        adopted: bool,
    ) -> Result<bool, ApplyError> {
        if labelled && !external {
            return Ok(false);
        }
        let exists = match kind {
            "network" => self.engine.network_exists(full).await?,
            _ => self.engine.volume_exists(full).await?,
        };
        if external {
            return if exists {
                Ok(false)
            } else {
                Err(ApplyError::Ownership(format!(
                    "external {kind} `{full}` does not exist; create it (`docker {kind} create {full}`), or drop `{section}.{name}.external` to let berth make `{project}_{name}`"
                )))
            };
        }
        if exists && adopted {
            // Handed over by the host's operator (`berth adopt`): used as it is, and,
            // having no berth label, never changed or removed.
            return Ok(false);
        }
        if exists {
            return Err(ApplyError::Ownership(format!(
                "{kind} `{full}` exists but berth did not create it (it has no berth.project={project} label); declare `{section}.{name}: {{ external: true }}` under its own name to use an object made elsewhere, or remove it; if docker compose made it, the host's operator hands it over with `berth adopt --project {project} --state-dir {}` and this desired state's --file or --repo (README: \"Switching from docker compose\")",
                self.opts.state_dir.display()
            )));
        }
        Ok(true)
    }
}

/// Services grouped so that each group depends only on earlier groups.
fn dependency_levels(desired: &Desired, the_plan: &crate::plan::Plan) -> Vec<Vec<String>> {
    let mut level: HashMap<String, usize> = HashMap::new();
    fn depth(
        name: &str,
        desired: &Desired,
        level: &mut HashMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(l) = level.get(name) {
            return *l;
        }
        let deps = desired
            .services
            .get(name)
            .map(|d| d.spec.depends_on.clone())
            .unwrap_or_default();
        // Validation rules out cycles; the guard only keeps a bad input from recursing forever.
        let l = if guard > 64 {
            0
        } else {
            deps.iter()
                .map(|d| depth(d, desired, level, guard + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        level.insert(name.to_string(), l);
        l
    }
    let mut levels: Vec<Vec<String>> = Vec::new();
    for sp in &the_plan.services {
        let l = depth(&sp.service, desired, &mut level, 0);
        if levels.len() <= l {
            levels.resize(l + 1, Vec::new());
        }
        levels[l].push(sp.service.clone());
    }
    levels
}
