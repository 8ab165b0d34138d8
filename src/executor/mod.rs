//! Carries out a plan against the engine: pulls first, then per service, in
//! dependency order, health-gated rolling updates that roll back on failure.
//!
//! One apply looks at the engine once and plans once; each service carries out its
//! part of that plan (a retry, or a wait for the fleet, looks again). The services of a
//! dependency level move at once; `--concurrency` bounds the engine calls in flight,
//! never the waiting.

pub(crate) mod adopted;
pub(crate) mod auth;
mod bounded;
pub(crate) mod container;
mod drain;
mod error;
pub(crate) mod fleet;
pub(crate) mod gate;
mod history;
pub(crate) mod migrate;
mod objects;
mod order;
pub(crate) mod progress;
mod pull;
pub(crate) mod redact;
mod report;
mod rollback;
mod rollout;
mod service;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::ledger::{now_rfc3339, Ledger};
pub(crate) use crate::plan::Action;
use crate::plan::{plan, Desired, Plan, Step};
use crate::runtime::{Engine, RuntimeError};

use migrate::MigrationRunner;
use service::{Gate, MigrationCell, Reconcile};

pub(crate) use crate::retry::RetryPolicy;
pub(crate) use redact::Redactor;
pub(crate) use report::{
    observe, ApplyReport, MigrationReport, Outcome, ServiceObserved, ServiceReport,
};

/// What the caller asks of one apply beyond the desired state.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApplyControl {
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
pub(crate) struct ApplyOptions {
    /// Where berth keeps what it writes on the host (mounted repository files).
    pub state_dir: PathBuf,
    /// The tmpfs where decrypted secret files are written (`--runtime-dir`): never the
    /// state dir.
    pub runtime_dir: PathBuf,
    /// The commit being applied, recorded in labels.
    pub commit: Option<String>,
    /// This host's name, recorded in labels.
    pub host: Option<String>,
    /// Retries of a failed service within this run, and their delays.
    pub retry: RetryPolicy,
    /// Engine calls that make the engine work (creates, starts, pulls, removes) in
    /// flight at once; waits (health gates, migrations, the fleet) hold none.
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
    /// With a shared ledger, how long a rollout lease (`update.max_hosts`) lasts unless
    /// renewed: the longest a host that dies mid-rollout holds the others up.
    pub lease_ttl: Duration,
    /// The host paths this host allows, checked again on the file system right before
    /// a container that mounts one is created.
    pub allow_host_paths: Vec<crate::model::AllowedHostPath>,
    /// Services that containers berth did not create still serve (`berth adopt` is
    /// replacing docker compose's): their first replicas join the service's alias only
    /// once they have passed their gate, as in a rolling update.
    pub served_elsewhere: BTreeSet<String>,
    /// Where registry credentials are found: the Docker config and the `PATH` its
    /// credential helpers are looked up in (the process's, by default).
    pub auth: auth::AuthEnv,
    /// Where progress events go (the agent's status page, a terminal), if anywhere.
    pub progress: Option<progress::Sink>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/berth"),
            runtime_dir: PathBuf::from(crate::secrets::runtime::DEFAULT_RUNTIME_DIR),
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
            lease_ttl: fleet::LEASE_TTL,
            allow_host_paths: Vec::new(),
            served_elsewhere: BTreeSet::new(),
            auth: auth::AuthEnv::from_process(),
            progress: None,
        }
    }
}

/// A failure that stops the whole apply (as opposed to one service).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
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
pub(crate) struct Executor {
    /// The engine, its working calls bounded by `--concurrency`.
    engine: Arc<dyn Engine>,
    ledger: Arc<dyn Ledger>,
    opts: ApplyOptions,
    /// With a shared ledger: the fleet target last recorded as converged, by service.
    recorded: std::sync::Mutex<HashMap<String, String>>,
    /// The secrets of every desired state applied so far.
    secrets: std::sync::Mutex<Redactor>,
}

impl Executor {
    /// An executor over `engine`, recording in `ledger`.
    pub(crate) fn new(
        engine: Arc<dyn Engine>,
        ledger: Arc<dyn Ledger>,
        opts: ApplyOptions,
    ) -> Self {
        Self {
            engine: Arc::new(bounded::Bounded::new(engine, opts.concurrency)),
            ledger,
            opts,
            recorded: Default::default(),
            secrets: Default::default(),
        }
    }

    /// The commit recorded in labels and history from now on.
    pub(crate) fn set_commit(&mut self, commit: Option<String>) {
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
    pub(crate) async fn apply(&self, desired: &Desired) -> Result<ApplyReport, ApplyError> {
        self.apply_with(desired, &ApplyControl::default()).await
    }

    /// [`Executor::apply`] with services held back and a way to stop early.
    pub(crate) async fn apply_with(
        &self,
        desired: &Desired,
        control: &ApplyControl,
    ) -> Result<ApplyReport, ApplyError> {
        let project = desired.spec.project.as_str();
        let started_at = now_rfc3339();
        let redactor = {
            let mut seen = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
            seen.absorb(&Redactor::from_desired(desired));
            seen.clone()
        };
        let observed = self.engine.list_project(project).await?;
        self.migrations(&redactor)
            .settle_leftovers(desired, &observed)
            .await;
        let the_plan = plan(desired, &observed);
        let changing = the_plan.changes().next().is_some();
        if changing {
            self.ensure_objects(desired).await?;
        }
        // Images first: nothing is stopped before every image it needs is here.
        let pull_errors = self.pull_images(desired, &the_plan).await;
        let (gating, cells) = self
            .gating_migrations(desired, &the_plan, &pull_errors)
            .await;
        let r = Reconcile {
            desired,
            control,
            redactor: &redactor,
            by_name: observed.iter().map(|c| (c.name.as_str(), c)).collect(),
            pull_errors,
            gating,
        };
        let mut done: HashMap<String, Outcome> = HashMap::new();
        let mut reports = Vec::new();
        for level in order::dependency_levels(desired, &the_plan) {
            let services = level.into_iter().map(|sp| {
                let blocked_by = desired
                    .services
                    .get(&sp.service)
                    .and_then(|d| {
                        d.spec.depends_on.iter().find(|dep| {
                            matches!(
                                done.get(*dep),
                                Some(Outcome::Failed { .. } | Outcome::Blocked { .. })
                            )
                        })
                    })
                    .cloned();
                self.converge_one(&r, sp, blocked_by)
            });
            for report in join_all(services).await {
                done.insert(report.service.clone(), report.outcome.clone());
                reports.push(report);
            }
        }
        // Networks only go when something changed, so that a resync of a converged
        // project costs one list call and nothing more.
        if self.opts.prune && changing {
            self.prune_networks(desired).await;
        }
        reports.sort_by(|a, b| a.service.cmp(&b.service));
        let migrations = cells
            .iter()
            .filter_map(|(name, cell)| MigrationReport::of(name, cell.get()?))
            .collect();
        // A reconcile that changed nothing costs one list call; one that did looks again.
        let after = if changing {
            match self.engine.list_project(project).await {
                Ok(now) => observe(desired, &now),
                Err(_) => observe(desired, &observed),
            }
        } else {
            observe(desired, &observed)
        };
        let report = ApplyReport {
            project: project.to_string(),
            services: reports,
            migrations,
            observed: after,
            before: observe(desired, &observed),
        };
        self.record_deploy(desired, &observed, &report, started_at)
            .await;
        if changing && report.converged() {
            container::prune_secrets(&self.opts.runtime_dir, desired);
        }
        Ok(report)
    }

    /// The migrations whose gated services change in this apply, with the image digest
    /// of their `from` service; each runs at most once, awaited by every gated service.
    /// By service, what it waits for; and every run, by migration.
    async fn gating_migrations(
        &self,
        desired: &Desired,
        the_plan: &Plan,
        pull_errors: &HashMap<String, pull::PullFailure>,
    ) -> (
        HashMap<String, Vec<Gate>>,
        Vec<(String, Arc<MigrationCell>)>,
    ) {
        let mut gating: HashMap<String, Vec<Gate>> = HashMap::new();
        let mut cells = Vec::new();
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
        (gating, cells)
    }
}
