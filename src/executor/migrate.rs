//! Migrations: a one-shot container per (migration, image digest), run before any
//! container of a gated service moves to that image, and recorded in the ledger.
//!
//! The container itself is the record that a run is under way on this host: it is found
//! by its labels (a running one is awaited, never doubled; an exited one is recorded
//! from its exit code) and removed only once the ledger holds the result. So a `kill -9`
//! of berth at any point can neither lose a run nor start a second one.
//!
//! Across a fleet, the shared ledger decides: a host records `started` (host, container,
//! time) in the same transaction that checks nobody else did, and only then starts the
//! container. Other hosts wait for the recorded result; a run whose host went away stays
//! `started` until that host comes back or an operator settles it. Safety over
//! liveness: no second run while the first may still be under way.

use std::sync::Arc;
use std::time::Duration;

use super::container::{replica_spec, SpecError};
use super::fleet::Hold;
use super::redact::Redactor;
use super::ApplyOptions;
use crate::ledger::{
    age_of, now_rfc3339, Claim, Ledger, LedgerError, MigrationClaim, MigrationOutcome,
    MigrationRecord, MigrationRun, StartedMigration,
};
use crate::model::MigrationSpec;
use crate::plan::Desired;
use crate::runtime::{
    labels, Engine, HealthConfig, ObservedContainer, Role, RunState, RuntimeError,
};

/// Lines of output kept in the ledger.
const OUTPUT_LINES: usize = 100;
/// Lines of output quoted in an error.
const ERROR_LINES: usize = 5;
/// How often a host waiting for another host's run looks at the ledger.
const FLEET_POLL: Duration = Duration::from_millis(500);
/// Beyond its timeout, how long a run on another host may take to be recorded before
/// the waiting host calls it stuck.
const FLEET_GRACE: Duration = Duration::from_secs(30);

/// Runs migrations for one project.
pub(crate) struct MigrationRunner<'a> {
    pub engine: &'a dyn Engine,
    pub ledger: Arc<dyn Ledger>,
    pub opts: &'a ApplyOptions,
    pub redactor: &'a Redactor,
    /// Ends a wait for another host's run early (berth stopping, a new commit).
    pub control: Option<&'a super::ApplyControl>,
}

/// The container name of a run: `<project>-migrate-<name>-<12 digest digits>`.
pub(crate) fn container_name(project: &str, migration: &str, digest: &str) -> String {
    let hex = digest.split_once(':').map(|x| x.1).unwrap_or(digest);
    format!(
        "{project}-migrate-{migration}-{}",
        &hex[..hex.len().min(12)]
    )
}

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

impl MigrationRunner<'_> {
    /// Records and removes migration containers of the project that have exited,
    /// whatever run left them (a crashed berth, an interrupted apply).
    pub(crate) async fn settle_leftovers(&self, desired: &Desired, observed: &[ObservedContainer]) {
        for c in observed.iter().filter(|c| c.role == Role::Migration) {
            if matches!(c.state, RunState::Exited(_) | RunState::Dead) {
                let name = c.migration.clone().unwrap_or_default();
                let timeout = desired.spec.migrations.get(&name).map(|m| m.timeout);
                if let Err(e) = self
                    .finish(
                        &desired.spec.project,
                        &name,
                        &c.spec_hash,
                        &c.image,
                        &c.id,
                        timeout,
                        None,
                    )
                    .await
                {
                    tracing::warn!(migration = %name, error = %e, "leftover migration container not settled");
                }
            }
        }
    }

    /// Makes sure `m` has succeeded for the image `digest` of its `from` service:
    /// nothing when the ledger says so, else awaits a run under way or starts one.
    /// `Ok(None)` when nothing had to run.
    pub(crate) async fn ensure(
        &self,
        desired: &Desired,
        m: &MigrationSpec,
        digest: &str,
    ) -> Result<Option<MigrationRun>, MigrationFailure> {
        self.ensure_inner(desired, m, digest).await
    }

    async fn ensure_inner(
        &self,
        desired: &Desired,
        m: &MigrationSpec,
        digest: &str,
    ) -> Result<Option<MigrationRun>, MigrationFailure> {
        let project = &desired.spec.project;
        let host = self.opts.host.clone().unwrap_or_default();
        if let Some(r) = self
            .ledger
            .migration(project, &m.name, digest)
            .await
            .map_err(MigrationError::Unrecorded)?
        {
            if r.outcome == MigrationOutcome::Succeeded {
                return Ok(None);
            }
        }
        if let Some(on) = m.run_on.as_deref().filter(|on| *on != host) {
            if !self.ledger.is_shared() {
                tracing::info!(project = %project, migration = %m.name, run_on = on, "migration runs on another host only; without coordination this host does not wait for it");
                return Ok(None);
            }
            return self.await_elsewhere(project, m, digest, on, None).await;
        }
        let from = desired
            .migration_container(m)
            .ok_or_else(|| MigrationError::NoService {
                migration: m.name.clone(),
                from: m.from.clone(),
            })?;
        let name = container_name(project, &m.name, digest);
        let observed = self
            .engine
            .list_project(project)
            .await
            .map_err(MigrationError::engine(format!("list {project}")))?;
        let existing = observed
            .iter()
            .find(|c| c.role == Role::Migration && c.name == name);
        let id = match existing {
            Some(c) => {
                tracing::info!(project = %project, migration = %m.name, container = %name, state = ?c.state, action = "migration-found");
                if c.state == RunState::Created {
                    self.engine
                        .start(&c.id)
                        .await
                        .map_err(MigrationError::engine(format!("start {name}")))?;
                }
                c.id.clone()
            }
            None => {
                let claim = MigrationClaim {
                    project: project.clone(),
                    migration: m.name.clone(),
                    digest: digest.to_string(),
                    image: from.spec.image.full.clone(),
                    commit: self.opts.commit.clone(),
                    host: host.clone(),
                    container: name.clone(),
                };
                // No container starts unless its start is on record first.
                match self
                    .ledger
                    .claim_migration(&claim)
                    .await
                    .map_err(MigrationError::Unrecorded)?
                {
                    Claim::Granted => {}
                    Claim::Succeeded => return Ok(None),
                    Claim::RunningElsewhere(s) => {
                        let on = s.host.clone();
                        return self.await_elsewhere(project, m, digest, &on, Some(s)).await;
                    }
                }
                let mut spec = replica_spec(project, from, 0, &name, self.opts)?;
                // A compose job's container carries its own command.
                if m.job.is_none() {
                    spec.command = Some(m.command.clone());
                }
                spec.ports.clear();
                spec.restart = false;
                spec.health = Some(HealthConfig {
                    test: vec!["NONE".into()],
                    interval: Duration::ZERO,
                    timeout: Duration::ZERO,
                    retries: 0,
                    start_period: Duration::ZERO,
                });
                spec.labels.insert(labels::ROLE.into(), "migration".into());
                spec.labels.insert(labels::MIGRATION.into(), m.name.clone());
                spec.labels.insert(labels::SPEC.into(), digest.to_string());
                spec.labels.remove(labels::SLOT);
                spec.labels.remove(labels::PARTS);
                let id = self
                    .engine
                    .create(&spec)
                    .await
                    .map_err(MigrationError::engine(format!("create {name}")))?;
                tracing::info!(project = %project, migration = %m.name, container = %name, action = "migration-start");
                if let Err(e) = self.engine.start(&id).await {
                    if let Err(gone) = self.engine.remove(&id).await {
                        tracing::warn!(project = %project, migration = %m.name, container = %name, error = %gone, "migration container that did not start not removed; the next run settles it");
                    }
                    return Err(MigrationError::engine(format!("start {name}"))(e).into());
                }
                id
            }
        };
        let run = self
            .finish(
                project,
                &m.name,
                digest,
                &from.spec.image.full,
                &id,
                Some(m.timeout),
                Some(&name),
            )
            .await?;
        match run.outcome {
            MigrationOutcome::Succeeded => Ok(Some(run.summary(&m.name))),
            _ => Err(MigrationFailure {
                run: Some(run.summary(&m.name)),
                error: MigrationError::Run {
                    migration: m.name.clone(),
                    how: run.how(),
                    tail: run.tail(),
                },
            }),
        }
    }

    /// Waits for the result another host records: success lets the gated services move;
    /// a failure or a run that outlives its timeout (its host presumably gone) stops them.
    async fn await_elsewhere(
        &self,
        project: &str,
        m: &MigrationSpec,
        digest: &str,
        on: &str,
        started: Option<StartedMigration>,
    ) -> Result<Option<MigrationRun>, MigrationFailure> {
        let waited = tokio::time::Instant::now();
        let limit = m.timeout + FLEET_GRACE;
        tracing::info!(project, migration = %m.name, host = on, action = "migration-wait", "waiting for the migration's result from another host");
        loop {
            match self.ledger.migration(project, &m.name, digest).await {
                Ok(Some(r)) if r.outcome == MigrationOutcome::Succeeded => {
                    tracing::info!(project, migration = %m.name, host = r.host.as_deref().unwrap_or(on), action = "migration-done-elsewhere");
                    return Ok(None);
                }
                Ok(Some(r)) => {
                    return Err(MigrationError::FailedElsewhere {
                        migration: m.name.clone(),
                        outcome: r.outcome.as_str().replace('-', " "),
                        host: r.host.as_deref().unwrap_or(on).to_string(),
                        exit_code: r.exit_code,
                    }
                    .into());
                }
                Ok(_) => {}
                Err(e) => return Err(MigrationError::Unrecorded(e).into()),
            }
            let age = started
                .as_ref()
                .map(|s| age_of(&s.since).unwrap_or_default())
                .unwrap_or_else(|| waited.elapsed());
            if age > limit {
                let what = match &started {
                    Some(s) => format!(
                        "migration {} for {digest} was started on host {} at {} (container {}) and has no recorded result after {}s, beyond its timeout",
                        m.name, s.host, s.since, s.container, age.as_secs()
                    ),
                    None => format!(
                        "migration {} runs on host {on} only, which has recorded no result for {digest} after {}s",
                        m.name,
                        age.as_secs()
                    ),
                };
                return Err(MigrationError::Stuck {
                    what,
                    host: on.to_string(),
                    migration: m.name.clone(),
                    digest: digest.to_string(),
                }
                .into());
            }
            let waiting = format!(
                "waiting for the result of migration {} on host {on}",
                m.name
            );
            let paused = match self.control {
                Some(control) => super::fleet::pause(FLEET_POLL, control).await,
                None => {
                    tokio::time::sleep(FLEET_POLL).await;
                    Ok(())
                }
            };
            let error = match paused {
                Ok(()) if waited.elapsed() < self.opts.fleet_wait => continue,
                // Reported as waiting, and looked at again on the next reconcile.
                Ok(()) => {
                    MigrationError::Waiting(format!("{waiting} (for {}s so far)", age.as_secs()))
                }
                Err(hold) => match hold.explain(&waiting) {
                    Hold::Shutdown => MigrationError::Shutdown,
                    Hold::Wait(reason) => MigrationError::Waiting(reason),
                    Hold::Superseded => MigrationError::Waiting(waiting),
                },
            };
            return Err(error.into());
        }
    }

    /// Waits for the container (within what is left of its timeout), records the
    /// result, then removes the container.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        project: &str,
        migration: &str,
        digest: &str,
        image: &str,
        id: &str,
        timeout: Option<Duration>,
        shown: Option<&str>,
    ) -> Result<MigrationRunWithOutput, MigrationError> {
        let shown = shown.unwrap_or(id);
        let details = self
            .engine
            .inspect(id)
            .await
            .map_err(MigrationError::engine(format!("inspect {shown}")))?;
        let started_at = details
            .started_at
            .clone()
            .filter(|s| !s.starts_with("0001-"))
            .unwrap_or_else(now_rfc3339);
        let limit = timeout.unwrap_or(Duration::from_secs(600));
        let (exit_code, outcome) = match details.state {
            RunState::Exited(code) => {
                let code = code.or(details.last_exit_code).unwrap_or(-1);
                (
                    code,
                    if code == 0 {
                        MigrationOutcome::Succeeded
                    } else {
                        MigrationOutcome::Failed
                    },
                )
            }
            _ => {
                // The timeout counts from the container's start, also across a restart
                // of berth.
                let left = limit.saturating_sub(age_of(&started_at).unwrap_or_default());
                match tokio::time::timeout(left, self.engine.wait(id)).await {
                    Ok(Ok(code)) => (
                        code,
                        if code == 0 {
                            MigrationOutcome::Succeeded
                        } else {
                            MigrationOutcome::Failed
                        },
                    ),
                    Ok(Err(e)) => {
                        return Err(MigrationError::engine(format!("waiting for {shown}"))(e))
                    }
                    Err(_) => {
                        tracing::warn!(
                            project,
                            migration,
                            action = "migration-timeout",
                            timeout_s = limit.as_secs()
                        );
                        self.engine
                            .kill(id)
                            .await
                            .map_err(MigrationError::engine(format!("kill {shown}")))?;
                        // Killed: its exit is recorded as the timeout's 137, whatever
                        // the engine says.
                        if let Err(e) = self.engine.wait(id).await {
                            tracing::debug!(project, migration, error = %e, "killed migration not awaited");
                        }
                        (137, MigrationOutcome::TimedOut)
                    }
                }
            }
        };
        let after = self.engine.inspect(id).await.ok();
        let ended_at = after
            .and_then(|d| d.finished_at)
            .unwrap_or_else(now_rfc3339);
        let duration_ms = match (parse_time(&started_at), parse_time(&ended_at)) {
            (Some(a), Some(b)) => (b - a).whole_milliseconds().max(0) as u64,
            _ => 0,
        };
        let output = self
            .engine
            .logs_tail(id, OUTPUT_LINES)
            .await
            .unwrap_or_default();
        let output = self.redactor.redact(output.trim_end());
        let record = MigrationRecord {
            project: project.to_string(),
            migration: migration.to_string(),
            digest: digest.to_string(),
            image: image.to_string(),
            commit: self.opts.commit.clone(),
            started_at,
            ended_at,
            exit_code,
            duration_ms,
            outcome,
            output: output.clone(),
            attempts: 0,
            host: self.opts.host.clone(),
        };
        self.ledger
            .record_migration(&record)
            .await
            .map_err(MigrationError::Record)?;
        tracing::info!(
            project,
            migration,
            outcome = outcome.as_str(),
            exit_code,
            duration_ms,
            action = "migration-recorded"
        );
        // Only now that the ledger holds the result may the container go.
        if let Err(e) = self.engine.remove(id).await {
            tracing::warn!(project, migration, error = %e, "migration container not removed; the next run removes it");
        }
        Ok(MigrationRunWithOutput {
            outcome,
            exit_code,
            duration_ms,
            output,
        })
    }
}

/// Why a migration did not succeed, or must be waited for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrationError {
    /// The ledger did not answer: nothing was started, and nothing may start until it
    /// does.
    #[error("{0}; no migration starts that cannot be recorded")]
    Unrecorded(LedgerError),
    /// The run finished but its result could not be recorded; the container stays, and
    /// the next run records it.
    #[error("{0}")]
    Record(LedgerError),
    /// The migration's `from` service is not in the desired state on this host.
    #[error("migration {migration}: no service {from}")]
    NoService {
        /// The migration.
        migration: String,
        /// The service it runs like.
        from: String,
    },
    /// Its container spec could not be built.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An engine call failed.
    #[error("{doing}: {source}")]
    Engine {
        /// What berth was doing.
        doing: String,
        /// What the engine said.
        source: RuntimeError,
    },
    /// It ran here, and failed or timed out.
    #[error("migration {migration} {how}{tail}")]
    Run {
        /// The migration.
        migration: String,
        /// `exited with code 3`, `timed out after 5.0s and was killed`.
        how: String,
        /// `; last output: …` (masked), or nothing.
        tail: String,
    },
    /// Another host ran it, and it did not succeed there.
    #[error("migration {migration} {outcome} on host {host} (exit code {exit_code}); the gated services were not changed")]
    FailedElsewhere {
        /// The migration.
        migration: String,
        /// `failed`, `timed out`.
        outcome: String,
        /// The host that ran it.
        host: String,
        /// Its exit code.
        exit_code: i64,
    },
    /// Another host's run has no result long past its timeout; nobody else may run it.
    #[error("{what}; no other host runs it while that may still happen. When {host} comes back its agent records the result; if it never does, settle it with `berth migrations resolve {migration} --image {digest} --as succeeded|failed`")]
    Stuck {
        /// What is known of the run.
        what: String,
        /// The host it runs on.
        host: String,
        /// The migration.
        migration: String,
        /// The image digest.
        digest: String,
    },
    /// The fleet is not done yet (another host's run); looked at again soon.
    #[error("{0}")]
    Waiting(String),
    /// berth is stopping.
    #[error("berth is stopping; the rest of this rollout continues on its next start")]
    Shutdown,
}

impl MigrationError {
    fn engine(doing: impl Into<String>) -> impl FnOnce(RuntimeError) -> MigrationError {
        let doing = doing.into();
        move |source| MigrationError::Engine { doing, source }
    }

    /// True when nothing failed but the fleet must be waited for: another host's run,
    /// or a ledger that does not answer (so nothing may start).
    pub(crate) fn waits(&self) -> bool {
        matches!(
            self,
            MigrationError::Unrecorded(_)
                | MigrationError::Stuck { .. }
                | MigrationError::Waiting(_)
        )
    }
}

/// A migration that did not succeed: why, and the run when one finished.
#[derive(Debug)]
pub(crate) struct MigrationFailure {
    /// What happened.
    pub error: MigrationError,
    /// The finished run, for the deploy history.
    pub run: Option<MigrationRun>,
}

impl From<MigrationError> for MigrationFailure {
    fn from(error: MigrationError) -> Self {
        Self { error, run: None }
    }
}

impl From<SpecError> for MigrationFailure {
    fn from(error: SpecError) -> Self {
        MigrationError::Spec(error).into()
    }
}

/// A finished run with what the error message needs.
pub(crate) struct MigrationRunWithOutput {
    pub outcome: MigrationOutcome,
    pub exit_code: i64,
    pub duration_ms: u64,
    pub output: String,
}

impl MigrationRunWithOutput {
    /// How it ended, in words.
    fn how(&self) -> String {
        match self.outcome {
            MigrationOutcome::TimedOut => format!(
                "timed out after {:.1}s and was killed",
                self.duration_ms as f64 / 1000.0
            ),
            _ => format!("exited with code {}", self.exit_code),
        }
    }

    /// Its last lines of output, for the error: `; last output: a | b`, or nothing.
    fn tail(&self) -> String {
        let lines: Vec<&str> = self.output.lines().rev().take(ERROR_LINES).collect();
        if lines.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = lines.into_iter().rev().collect();
        format!("; last output: {}", lines.join(" | "))
    }

    /// The part kept in the deploy history.
    pub(crate) fn summary(&self, migration: &str) -> MigrationRun {
        MigrationRun {
            migration: migration.to_string(),
            outcome: self.outcome,
            duration_ms: self.duration_ms,
        }
    }
}
