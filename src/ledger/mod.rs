//! The durable record of migrations and deploys, and the coordination of a fleet. One
//! host keeps it embedded (SQLite in the state dir); a fleet shares PostgreSQL. The rest
//! of berth talks to the [`Ledger`] trait only.

mod postgres;
mod sqlite;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use postgres::{PgLedger, PgTarget};
pub use sqlite::SqliteLedger;

/// How a migration run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationOutcome {
    /// Exit code 0: never runs again for this image.
    Succeeded,
    /// Non-zero exit: retried with backoff.
    Failed,
    /// Killed after its timeout: retried with backoff.
    TimedOut,
}

impl MigrationOutcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationOutcome::Succeeded => "succeeded",
            MigrationOutcome::Failed => "failed",
            MigrationOutcome::TimedOut => "timed-out",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "succeeded" => MigrationOutcome::Succeeded,
            "timed-out" => MigrationOutcome::TimedOut,
            _ => MigrationOutcome::Failed,
        }
    }
}

/// One migration run, keyed by (project, migration, image digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// The project.
    pub project: String,
    /// The migration's name.
    pub migration: String,
    /// The digest of the image it ran from.
    pub digest: String,
    /// The image reference.
    pub image: String,
    /// The desired-state commit, when known.
    pub commit: Option<String>,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// End time, RFC 3339.
    pub ended_at: String,
    /// The container's exit code (137 when killed).
    pub exit_code: i64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: MigrationOutcome,
    /// The last 100 lines of output, secrets masked.
    pub output: String,
    /// Runs recorded for this key (failed ones included).
    pub attempts: u32,
    /// The host that ran it (or the operator who settled it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// What a host asks before it starts a migration's container.
#[derive(Debug, Clone)]
pub struct MigrationClaim {
    /// The project.
    pub project: String,
    /// The migration.
    pub migration: String,
    /// The image digest it runs for.
    pub digest: String,
    /// The image reference.
    pub image: String,
    /// The desired-state commit, when known.
    pub commit: Option<String>,
    /// The asking host.
    pub host: String,
    /// The container it is about to start.
    pub container: String,
}

/// The answer to a [`MigrationClaim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Recorded as started by the asking host: it may start the container.
    Granted,
    /// It already succeeded.
    Succeeded,
    /// Another host recorded it as started and has not recorded a result.
    RunningElsewhere(StartedMigration),
}

/// A migration recorded as started whose result is not recorded yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedMigration {
    /// The project.
    pub project: String,
    /// The migration.
    pub migration: String,
    /// The image digest.
    pub digest: String,
    /// The host running it.
    pub host: String,
    /// Its container there.
    pub container: String,
    /// When it was recorded as started, RFC 3339.
    pub since: String,
}

/// A rollout lease one host of a fleet holds on a service now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHeld {
    /// The service.
    pub service: String,
    /// The host holding it.
    pub host: String,
    /// When it lapses unless renewed, RFC 3339.
    pub expires_at: String,
}

/// An operator's settlement of a migration: `berth migrations resolve`.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The project; may be left out when the store knows only one project with this
    /// migration and digest.
    pub project: Option<String>,
    /// The migration.
    pub migration: String,
    /// The image digest.
    pub digest: String,
    /// Succeeded or failed.
    pub outcome: MigrationOutcome,
    /// Who settled it (recorded).
    pub by: String,
}

/// What a host holds while it replaces a service's replicas under `update.max_hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    /// The project.
    pub project: String,
    /// The service.
    pub service: String,
    /// The holding host.
    pub host: String,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAnswer {
    /// Held (or renewed) until the lease time passes.
    Held,
    /// Refused: these hosts hold every lease.
    Busy(Vec<String>),
}

/// The message for a resolution of a migration that already succeeded.
pub(crate) fn already_succeeded(m: &MigrationRecord) -> String {
    format!(
        "migration {} for {} already succeeded (ended {}); a success is final and is not resolved again",
        m.migration, m.digest, m.ended_at
    )
}

/// A service's part in one deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDeploy {
    /// The service.
    pub service: String,
    /// The image before, when one ran.
    pub from: Option<String>,
    /// The image asked for.
    pub to: Option<String>,
    /// `converged`, `failed`, `rolled-back`, `blocked`, `removed`.
    pub outcome: String,
    /// The error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A migration's part in one deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRun {
    /// The migration.
    pub migration: String,
    /// Its outcome.
    pub outcome: MigrationOutcome,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// One `apply` (or agent reconcile) that changed something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    /// Assigned by the ledger.
    pub id: i64,
    /// The project.
    pub project: String,
    /// The host that made the deploy.
    #[serde(default)]
    pub host: Option<String>,
    /// The desired-state commit, when known.
    pub commit: Option<String>,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// End time, RFC 3339.
    pub ended_at: String,
    /// Per changed service.
    pub services: Vec<ServiceDeploy>,
    /// Migrations run.
    pub migrations: Vec<MigrationRun>,
}

/// Failures of the ledger's store.
#[derive(Debug, thiserror::Error)]
#[error("ledger {path}: {message}")]
pub struct LedgerError {
    /// The store's location.
    pub path: String,
    /// What failed.
    pub message: String,
}

/// The durable record berth keeps, and what hosts of a fleet agree on through it.
///
/// The fleet methods have single-host defaults: on one host every claim and lease is
/// granted at once (the migration container itself is the record of a run under way).
#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// Where the record lives, for logs and status (never with a password).
    fn describe(&self) -> String;
    /// True when several hosts share this store.
    fn is_shared(&self) -> bool {
        false
    }
    /// Checks that the store answers; flushes what was kept while it did not.
    async fn check(&self) -> Result<(), LedgerError> {
        Ok(())
    }
    /// The finished record of a migration for an image, if one ever finished.
    async fn migration(
        &self,
        project: &str,
        migration: &str,
        digest: &str,
    ) -> Result<Option<MigrationRecord>, LedgerError>;
    /// Records, in one transaction, that `claim.host` starts the migration, unless it
    /// succeeded or another host's run is under way. Only a `Granted` claim may start
    /// the container; an error means nothing may start.
    async fn claim_migration(&self, _claim: &MigrationClaim) -> Result<Claim, LedgerError> {
        Ok(Claim::Granted)
    }
    /// Stores a finished run, replacing an earlier one of the same key and counting it.
    /// A success is final.
    async fn record_migration(&self, record: &MigrationRecord) -> Result<(), LedgerError>;
    /// Settles a migration by hand.
    async fn resolve_migration(
        &self,
        resolution: &Resolution,
    ) -> Result<MigrationRecord, LedgerError>;
    /// Migrations recorded as started with no result yet.
    async fn started_migrations(
        &self,
        _project: Option<&str>,
    ) -> Result<Vec<StartedMigration>, LedgerError> {
        Ok(Vec::new())
    }
    /// Appends a deploy and returns its id.
    async fn record_deploy(&self, deploy: &DeployRecord) -> Result<i64, LedgerError>;
    /// Deploys of a project, newest first, optionally only those touching `service`.
    async fn deploys(
        &self,
        project: Option<&str>,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, LedgerError>;
    /// Takes or renews a lease to replace a service's replicas; at most `max` hosts
    /// hold one at a time, and each lapses after `ttl` unless renewed.
    async fn acquire_lease(
        &self,
        _key: &LeaseKey,
        _max: u32,
        _ttl: Duration,
    ) -> Result<LeaseAnswer, LedgerError> {
        Ok(LeaseAnswer::Held)
    }
    /// Gives a lease back.
    async fn release_lease(&self, _key: &LeaseKey) -> Result<(), LedgerError> {
        Ok(())
    }
    /// The rollout leases of a project held now (not lapsed), by service and host.
    async fn leases(&self, _project: &str) -> Result<Vec<LeaseHeld>, LedgerError> {
        Ok(Vec::new())
    }
    /// Records that `host` runs `target` of a service, converged and healthy.
    async fn record_converged(
        &self,
        _project: &str,
        _service: &str,
        _host: &str,
        _target: &str,
    ) -> Result<(), LedgerError> {
        Ok(())
    }
    /// Since when `host` has run `target` of a service converged, if it does.
    async fn converged_since(
        &self,
        _project: &str,
        _service: &str,
        _host: &str,
        _target: &str,
    ) -> Result<Option<String>, LedgerError> {
        Ok(None)
    }
}

/// How long ago an RFC 3339 time was; `None` when it does not parse.
pub fn age_of(t: &str) -> Option<Duration> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (time::OffsetDateTime::now_utc() - t).unsigned_abs())
}

/// Now, RFC 3339 in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
